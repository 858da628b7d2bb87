//! Video access tokens: the [`VideoTokenIssuer`] trait and its request and token types.
//!
//! A host issues a token only after a factor is proven (see the room gate in `docs/video.md`).

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::Result;
use crate::secret::Secret;

pub mod gate;
#[cfg(feature = "twilio")]
pub use crate::twilio::access_token as twilio;

/// Default token lifetime: one hour, as Twilio's helper libraries use.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Longest lifetime Twilio accepts for an access token: 24 hours.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What to put in a video access token.
///
/// ```
/// use std::time::Duration;
/// use keyward::video::VideoTokenRequest;
/// let req = VideoTokenRequest::new("alice").room("My Room").ttl(Duration::from_secs(600));
/// assert_eq!(req.room.as_deref(), Some("My Room"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoTokenRequest {
    /// The participant's identity (at most 128 characters for Twilio Video).
    pub identity: String,
    /// The room name or room SID the token admits to; `None` admits to any room.
    pub room: Option<String>,
    /// Lifetime of the token.
    pub ttl: Duration,
}

impl VideoTokenRequest {
    /// A token for `identity`, any room, default lifetime.
    pub fn new(identity: impl Into<String>) -> Self {
        VideoTokenRequest {
            identity: identity.into(),
            room: None,
            ttl: DEFAULT_TTL,
        }
    }

    /// Restricts the token to one room.
    pub fn room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }

    /// Sets the lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// A signed access token. The JWT is a bearer credential: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    jwt: Secret,
    /// The identity inside the token.
    pub identity: String,
    /// The room inside the token's video grant, if any.
    pub room: Option<String>,
    /// Issuing time (`jti` suffix, default `nbf`).
    pub issued_at: SystemTime,
    /// Expiry (`exp`).
    pub expires_at: SystemTime,
}

impl AccessToken {
    /// Wraps a signed token produced by an issuer.
    pub fn new(
        jwt: impl Into<Secret>,
        identity: impl Into<String>,
        room: Option<String>,
        issued_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        AccessToken {
            jwt: jwt.into(),
            identity: identity.into(),
            room,
            issued_at,
            expires_at,
        }
    }

    /// The compact JWT to hand to the client SDK.
    pub fn jwt(&self) -> &str {
        self.jwt.expose_str().unwrap_or_default()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("jwt", &self.jwt)
            .field("identity", &self.identity)
            .field("room", &self.room)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Issues signed access tokens for video rooms.
///
/// # Contract
/// - Validates the request ([`InvalidInput`](crate::ErrorKind::InvalidInput) for an empty or
///   over-long identity, a zero or over-long lifetime) before signing anything.
/// - Uses the issuer's injected clock for the token times.
/// - Stores nothing.
///
/// Hold it as `Arc<dyn VideoTokenIssuer>`.
#[async_trait]
pub trait VideoTokenIssuer: Send + Sync + fmt::Debug {
    /// Signs a token for `request`.
    async fn issue(&self, request: VideoTokenRequest) -> Result<AccessToken>;
}
