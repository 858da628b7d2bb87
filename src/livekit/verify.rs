//! [`LiveKitTokenVerifier`]: decodes and verifies LiveKit access tokens.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::Deserialize;

use super::{LiveKitApiKey, VideoGrants};
use crate::clock::{Clock, SystemClock};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedLiveKitToken {
    /// `sub`: the participant identity.
    pub identity: String,
    /// `iss`: the API key that signed.
    pub issuer: String,
    /// The display name ("" when absent).
    pub name: String,
    /// The participant kind ("" when absent).
    pub kind: String,
    /// Participant metadata ("" when absent).
    pub metadata: String,
    /// The video grant, when present.
    pub video: Option<VideoGrants>,
    /// Attributes, in token order.
    pub attributes: Vec<(String, String)>,
    /// `nbf`, when present.
    pub not_before: Option<SystemTime>,
    /// `exp`.
    pub expires_at: SystemTime,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    sub: String,
    iss: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    video: Option<VideoGrants>,
    #[serde(default)]
    attributes: Option<OrderedStrings>,
    #[serde(default)]
    nbf: Option<u64>,
    exp: u64,
}

/// A JSON object of strings, in document order.
struct OrderedStrings(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedStrings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OrderedStrings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OrderedStrings, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(OrderedStrings(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Verifies LiveKit tokens signed with one API key: HS256 only, the signature compared in
/// constant time, `iss` equal to the key, `exp` required, `exp` and `nbf` against the injected
/// clock with a leeway (one minute by default, as the SDKs use). Every failure is
/// [`InvalidToken`](ErrorKind::InvalidToken) (or [`Expired`](ErrorKind::Expired) for a token past
/// `exp`).
pub struct LiveKitTokenVerifier {
    key: LiveKitApiKey,
    clock: Arc<dyn Clock>,
    leeway: Duration,
}

impl fmt::Debug for LiveKitTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveKitTokenVerifier")
            .field("key", &self.key)
            .field("clock", &self.clock)
            .field("leeway", &self.leeway)
            .finish()
    }
}

fn invalid(what: &'static str) -> Error {
    Error::new(ErrorKind::InvalidToken, what)
}

impl LiveKitTokenVerifier {
    /// A verifier for tokens of `key`, on the system clock, one minute of leeway.
    pub fn new(key: LiveKitApiKey) -> Self {
        LiveKitTokenVerifier {
            key,
            clock: Arc::new(SystemClock),
            leeway: Duration::from_secs(60),
        }
    }

    /// Checks `exp` and `nbf` against this environment's clock (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self
    }

    /// Accepts this much clock difference on `exp` and `nbf`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<VerifiedLiveKitToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("a jwt has three dot-separated parts"));
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| invalid("jwt part is not base64url"))
        };
        let header: Header = serde_json::from_slice(&decode(header)?)
            .map_err(|_| invalid("jwt header is not json"))?;
        if header.alg != "HS256" || header.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err(invalid("only HS256 jwts are accepted"));
        }
        let signed_len = token.len() - signature.len() - 1;
        let signed = token
            .get(..signed_len)
            .ok_or_else(|| invalid("malformed jwt"))?;
        hmac::verify(self.key.hmac_key(), signed.as_bytes(), &decode(signature)?)
            .map_err(|_| invalid("jwt signature does not verify"))?;
        let claims: Payload = serde_json::from_slice(&decode(payload)?)
            .map_err(|_| invalid("jwt claims are malformed"))?;
        if claims.iss != self.key.key {
            return Err(invalid("jwt issued by another api key"));
        }
        let now = self.clock.now();
        let expires_at = UNIX_EPOCH + Duration::from_secs(claims.exp);
        if now > expires_at + self.leeway {
            return Err(Error::new(ErrorKind::Expired, "token expired"));
        }
        let not_before = claims.nbf.map(|n| UNIX_EPOCH + Duration::from_secs(n));
        if let Some(nbf) = not_before
            && nbf > now + self.leeway
        {
            return Err(invalid("token not valid yet"));
        }
        let attributes = claims.attributes.map(|a| a.0).unwrap_or_default();
        Ok(VerifiedLiveKitToken {
            identity: claims.sub,
            issuer: claims.iss,
            name: claims.name,
            kind: claims.kind,
            metadata: claims.metadata,
            video: claims.video,
            attributes,
            not_before,
            expires_at,
        })
    }
}
