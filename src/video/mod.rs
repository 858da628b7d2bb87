//! Video access tokens: the [`VideoTokenIssuer`] trait and its request and token types.
//!
//! A token is issued only on a proven factor: [`VideoTokenIssuer::issue`] takes a
//! [`FactorProof`] (an approved code or a verified passkey assertion), which only a successful
//! check builds. The room gate (`docs/video.md`) runs the whole flow.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;
use crate::otp::Approved;
use crate::secret::Secret;
use crate::totp::TotpApproved;
use crate::webauthn::VerifiedAssertion;

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
///
/// # Serde
/// Serialized as `{"token": <the JWT>, "identity", "room", "issued_at", "expires_at"}`, the times
/// in whole Unix seconds as in the JWT's claims (a sub-second part is dropped; issuers give whole
/// seconds). **Serializing writes the JWT in clear**: that is the point (the participant's client
/// needs it, or a host caches it), so serialize a token only into the answer to that participant
/// or into storage you would trust with the token itself, never into a log. Deserializing checks
/// the shape only; it does not verify the signature (the issuer's verifier does).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use keyward::video::AccessToken;
/// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let token = AccessToken::new("h.p.s", "alice", Some("My Room".into()), at, at + Duration::from_secs(600));
/// let json = serde_json::to_string(&token)?;
/// assert_eq!(
///     json,
///     r#"{"token":"h.p.s","identity":"alice","room":"My Room","issued_at":1700000000,"expires_at":1700000600}"#
/// );
/// assert_eq!(serde_json::from_str::<AccessToken>(&json)?, token);
/// # Ok::<(), serde_json::Error>(())
/// ```
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

/// The serde form of an [`AccessToken`] (borrowed when writing).
#[derive(Serialize, Deserialize)]
struct AccessTokenWire<S> {
    token: S,
    identity: S,
    room: Option<S>,
    issued_at: u64,
    expires_at: u64,
}

fn unix_seconds<E: serde::ser::Error>(at: SystemTime) -> std::result::Result<u64, E> {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| E::custom("a token time before the Unix epoch"))
}

impl Serialize for AccessToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        AccessTokenWire {
            token: self.jwt(),
            identity: self.identity.as_str(),
            room: self.room.as_deref(),
            issued_at: unix_seconds(self.issued_at)?,
            expires_at: unix_seconds(self.expires_at)?,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let wire = AccessTokenWire::<String>::deserialize(deserializer)?;
        let at = |secs: u64| {
            std::time::UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(|| serde::de::Error::custom("a token time out of range"))
        };
        Ok(AccessToken::new(
            wire.token,
            wire.identity,
            wire.room,
            at(wire.issued_at)?,
            at(wire.expires_at)?,
        ))
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

/// The proven factor a token is issued on. Only a successful check builds its contents
/// ([`OtpProvider::check`](crate::OtpProvider::check) for a code,
/// [`TotpProvider::check`](crate::totp::TotpProvider::check) for an authenticator-app code,
/// [`AuthenticatorVerifier::finish_authentication`](crate::AuthenticatorVerifier::finish_authentication)
/// for a passkey), so a host cannot issue a token without one by accident.
///
/// ```
/// use keyward::video::FactorProof;
/// use keyward::backend::{self, AssertionParts};
/// let proof = FactorProof::from(backend::verified_assertion(AssertionParts::new(
///     b"cred".to_vec(),
///     b"user".to_vec(),
///     1,
/// )));
/// assert_eq!(proof.factor(), "passkey");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorProof {
    /// A one-time code the provider approved.
    Code(Approved),
    /// A WebAuthn assertion that verified.
    Passkey(VerifiedAssertion),
    /// An authenticator-app code (TOTP or HOTP) the provider accepted.
    Totp(TotpApproved),
}

impl FactorProof {
    /// The factor's name: `otp`, `passkey` or `totp`.
    pub fn factor(&self) -> &'static str {
        match self {
            FactorProof::Code(_) => "otp",
            FactorProof::Passkey(_) => "passkey",
            FactorProof::Totp(_) => "totp",
        }
    }
}

impl From<Approved> for FactorProof {
    fn from(approved: Approved) -> Self {
        FactorProof::Code(approved)
    }
}

impl From<TotpApproved> for FactorProof {
    fn from(approved: TotpApproved) -> Self {
        FactorProof::Totp(approved)
    }
}

impl From<VerifiedAssertion> for FactorProof {
    fn from(assertion: VerifiedAssertion) -> Self {
        FactorProof::Passkey(assertion)
    }
}

/// Issues signed access tokens for video rooms, each on a proven factor.
///
/// # Contract
/// - Issues only on a [`FactorProof`]; binding the proof to the request's identity (this code's
///   destination, this passkey's user handle belong to that participant) is the caller's job,
///   which the room gate does.
/// - Validates the request ([`InvalidInput`](crate::ErrorKind::InvalidInput) for an empty or
///   over-long identity, a zero or over-long lifetime) before signing anything.
/// - Uses the issuer's injected clock for the token times.
/// - Stores nothing.
///
/// Hold it as `Arc<dyn VideoTokenIssuer>`.
#[async_trait]
pub trait VideoTokenIssuer: Send + Sync + fmt::Debug {
    /// Signs a token for `request`, on the factor `proof` proves.
    async fn issue(&self, proof: FactorProof, request: VideoTokenRequest) -> Result<AccessToken>;
}
