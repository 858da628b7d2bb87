//! LiveKit access tokens (feature `livekit`): HS256 JWTs signed with a LiveKit API key, the same
//! bytes LiveKit's official Python server SDK (`livekit-api`) produces for the same inputs and
//! time, and accepted by the JavaScript SDK's `TokenVerifier` (`livekit-server-sdk`).
//!
//! - [`LiveKitApiKey`]: the API key (the token's `iss`) and its secret.
//! - [`LiveKitTokenBuilder`]: identity (`sub`), [`VideoGrants`] (room, roomJoin, canPublish,
//!   canSubscribe, canPublishData and the rest), name, metadata, attributes, kind, ttl;
//!   [`LiveKitTokenBuilder::sign`] is a pure function of its inputs and `now`.
//! - [`LiveKitTokenIssuer`]: the [`VideoTokenIssuer`] for LiveKit, on an injected [`Clock`].
//! - [`LiveKitTokenVerifier`]: decodes and verifies such tokens.
//!
//! The claims are written in the order the Python SDK writes them (`name`, `kind`, `metadata`,
//! `video`, `attributes`, `sha256`, `roomPreset`, then `sub`, `iss`, `nbf`, `exp`), empty
//! values left out as it does, non-ASCII escaped as Python's `json.dumps` escapes it; the
//! header is PyJWT's `{"alg":"HS256","typ":"JWT"}` (`tests/vectors/livekit/golden.json`).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use keyward::livekit::{LiveKitApiKey, LiveKitTokenBuilder, VideoGrants};
//! let key = LiveKitApiKey::new("APIkeyward0001", "keyward-livekit-secret-0123456789abcdef")?;
//! let jwt = LiveKitTokenBuilder::new("alice")
//!     .video(VideoGrants::join("My Room"))
//!     .ttl(Duration::from_secs(600))
//!     .sign(&key, UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
//! assert!(jwt.expose_str().unwrap().starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
//! # Ok::<(), keyward::Error>(())
//! ```

mod json;
mod verify;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::video::{AccessToken, FactorProof, MAX_TTL, VideoTokenIssuer, VideoTokenRequest};

pub use verify::{LiveKitTokenVerifier, MAX_TOKEN_LEN, VerifiedLiveKitToken};

/// The Python SDK's default lifetime: six hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6 * 3600);

/// PyJWT's header for HS256, as it writes it.
const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// A LiveKit API key and its secret. `Debug` shows the key, never the secret.
#[derive(Clone)]
pub struct LiveKitApiKey {
    key: String,
    /// The HMAC-SHA256 key of the secret, built once (not on every token).
    hmac: hmac::Key,
}

impl LiveKitApiKey {
    /// The key (`API…`) and its secret; both must be non-empty.
    pub fn new(key: impl Into<String>, secret: impl Into<Secret>) -> Result<Self> {
        let key = key.into();
        let secret = secret.into();
        if key.is_empty() || secret.is_empty() {
            return Err(Error::config("the livekit api key and secret must be set"));
        }
        Ok(LiveKitApiKey {
            key,
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
        })
    }

    /// Reads `LIVEKIT_API_KEY` and `LIVEKIT_API_SECRET` (as the SDKs do) through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        match (var("LIVEKIT_API_KEY"), var("LIVEKIT_API_SECRET")) {
            (Some(key), Some(secret)) => LiveKitApiKey::new(key.trim(), Secret::from(secret)),
            _ => Err(Error::config("set LIVEKIT_API_KEY and LIVEKIT_API_SECRET")),
        }
    }

    /// The API key (the tokens' `iss`).
    pub fn key(&self) -> &str {
        &self.key
    }

    fn hmac_key(&self) -> &hmac::Key {
        &self.hmac
    }
}

impl fmt::Debug for LiveKitApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveKitApiKey")
            .field("key", &self.key)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

fn default_true() -> bool {
    true
}

/// LiveKit's `video` grant. Fields left `None` (or an empty `room`) are not written, as the
/// Python SDK leaves them out; `can_publish`, `can_subscribe` and `can_publish_data` are always
/// written (default `true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VideoGrants {
    /// May create rooms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room_create: Option<bool>,
    /// May list rooms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room_list: Option<bool>,
    /// May record rooms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room_record: Option<bool>,
    /// May administer `room`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room_admin: Option<bool>,
    /// May join `room`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room_join: Option<bool>,
    /// The room the grant is for ("" for none).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub room: String,
    /// The room a participant may be forwarded to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub destination_room: Option<String>,
    /// May publish tracks.
    #[serde(default = "default_true")]
    pub can_publish: bool,
    /// May subscribe to tracks.
    #[serde(default = "default_true")]
    pub can_subscribe: bool,
    /// May publish data messages.
    #[serde(default = "default_true")]
    pub can_publish_data: bool,
    /// Track sources it may publish (`camera`, `microphone`, `screen_share`, ...); supersedes
    /// `can_publish` when set.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub can_publish_sources: Option<Vec<String>>,
    /// May update its own metadata.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub can_update_own_metadata: Option<bool>,
    /// May administer ingresses.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ingress_admin: Option<bool>,
    /// Invisible to other participants.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hidden: Option<bool>,
    /// A recorder (deprecated by LiveKit).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recorder: Option<bool>,
    /// May register as an agent worker.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<bool>,
    /// May manage an agent session.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub can_manage_agent_session: Option<bool>,
    /// May subscribe to metrics.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub can_subscribe_metrics: Option<bool>,
}

impl Default for VideoGrants {
    fn default() -> Self {
        VideoGrants {
            room_create: None,
            room_list: None,
            room_record: None,
            room_admin: None,
            room_join: None,
            room: String::new(),
            destination_room: None,
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            can_publish_sources: None,
            can_update_own_metadata: None,
            ingress_admin: None,
            hidden: None,
            recorder: None,
            agent: None,
            can_manage_agent_session: None,
            can_subscribe_metrics: None,
        }
    }
}

impl VideoGrants {
    /// Join `room` with the default permissions (publish, subscribe, data).
    pub fn join(room: impl Into<String>) -> Self {
        VideoGrants {
            room_join: Some(true),
            room: room.into(),
            ..VideoGrants::default()
        }
    }
}

/// Attributes in the order given (the Python SDK keeps its dict's order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Attributes(Vec<(String, String)>);

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The claims in the Python SDK's order.
#[derive(Serialize)]
struct Claims<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    kind: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    video: Option<&'a VideoGrants>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a Attributes>,
    #[serde(skip_serializing_if = "str::is_empty")]
    sha256: &'a str,
    #[serde(rename = "roomPreset", skip_serializing_if = "str::is_empty")]
    room_preset: &'a str,
    sub: &'a str,
    iss: &'a str,
    nbf: u64,
    exp: u64,
}

/// What to put in a LiveKit access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKitTokenBuilder {
    identity: String,
    name: String,
    kind: String,
    metadata: String,
    video: Option<VideoGrants>,
    attributes: Option<Attributes>,
    sha256: String,
    room_preset: String,
    ttl: Duration,
}

impl LiveKitTokenBuilder {
    /// A token for participant `identity` (the `sub`), no grant, six hours.
    pub fn new(identity: impl Into<String>) -> Self {
        LiveKitTokenBuilder {
            identity: identity.into(),
            name: String::new(),
            kind: String::new(),
            metadata: String::new(),
            video: None,
            attributes: None,
            sha256: String::new(),
            room_preset: String::new(),
            ttl: DEFAULT_TTL,
        }
    }

    /// The video grant.
    pub fn video(mut self, grants: VideoGrants) -> Self {
        self.video = Some(grants);
        self
    }

    /// The display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The participant kind (`standard`, `egress`, `ingress`, `sip`, `agent`).
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Participant metadata (any string; often JSON).
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Participant attributes, kept in this order. Duplicate keys are refused at signing.
    pub fn attributes<K: Into<String>, V: Into<String>>(
        mut self,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.attributes = Some(Attributes(
            attributes
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ));
        self
    }

    /// The `sha256` claim (of a webhook body, for webhook tokens).
    pub fn sha256(mut self, sha256: impl Into<String>) -> Self {
        self.sha256 = sha256.into();
        self
    }

    /// The room preset to create the room with.
    pub fn room_preset(mut self, preset: impl Into<String>) -> Self {
        self.room_preset = preset.into();
        self
    }

    /// Lifetime (`exp` = `nbf` + ttl, both whole seconds as the SDK floors them).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Signs at time `now`. Fails with [`InvalidInput`](crate::ErrorKind::InvalidInput) for a
    /// room-join grant without identity or room (the SDK refuses them too), a zero lifetime or
    /// duplicate attribute keys.
    pub fn sign(&self, key: &LiveKitApiKey, now: SystemTime) -> Result<Secret> {
        if let Some(video) = &self.video
            && video.room_join == Some(true)
            && (self.identity.is_empty() || video.room.is_empty())
        {
            return Err(Error::invalid_input(
                "identity and room must be set when joining a room",
            ));
        }
        if self.ttl.is_zero() {
            return Err(Error::invalid_input("a token lifetime must be positive"));
        }
        if let Some(attributes) = &self.attributes {
            let mut keys: Vec<&str> = attributes.0.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(Error::invalid_input("attribute keys must be unique"));
            }
        }
        let claims = Claims {
            name: &self.name,
            kind: &self.kind,
            metadata: &self.metadata,
            video: self.video.as_ref(),
            attributes: self.attributes.as_ref(),
            sha256: &self.sha256,
            room_preset: &self.room_preset,
            sub: &self.identity,
            iss: &key.key,
            nbf: unix_seconds(now),
            exp: unix_seconds(now + self.ttl),
        };
        let payload = json::to_python_json(&claims)?;
        let mut jwt = URL_SAFE_NO_PAD.encode(HEADER);
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(key.hmac_key(), jwt.as_bytes());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
        Ok(Secret::from(jwt))
    }
}

/// The [`VideoTokenIssuer`] for LiveKit: a token joining the request's room (LiveKit tokens
/// always name one: a request without a room is [`InvalidInput`](crate::ErrorKind::InvalidInput))
/// with the default permissions, the identity as `sub`.
pub struct LiveKitTokenIssuer {
    key: LiveKitApiKey,
    clock: Arc<dyn Clock>,
    grants: VideoGrants,
}

impl fmt::Debug for LiveKitTokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveKitTokenIssuer")
            .field("key", &self.key)
            .field("clock", &self.clock)
            .field("grants", &self.grants)
            .finish()
    }
}

impl LiveKitTokenIssuer {
    /// An issuer signing with `key` on the system clock.
    pub fn new(key: LiveKitApiKey) -> Self {
        LiveKitTokenIssuer {
            key,
            clock: Arc::new(SystemClock),
            grants: VideoGrants::default(),
        }
    }

    /// Takes `nbf` and `exp` from this environment's clock (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self
    }

    /// The permissions of issued tokens (`room` and `room_join` are set per request).
    pub fn grants(mut self, grants: VideoGrants) -> Self {
        self.grants = grants;
        self
    }

    /// The API key in use.
    pub fn key(&self) -> &LiveKitApiKey {
        &self.key
    }
}

#[async_trait]
impl VideoTokenIssuer for LiveKitTokenIssuer {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.video.issue", skip_all, fields(backend = "livekit", identity = %crate::trace::masked(&request.identity), room = ?request.room, factor = _proof.factor(), ttl_secs = request.ttl.as_secs()), err(Display, level = "info")))]
    async fn issue(&self, _proof: FactorProof, request: VideoTokenRequest) -> Result<AccessToken> {
        if request.identity.is_empty() {
            return Err(Error::invalid_input("identity is empty"));
        }
        if request.ttl.is_zero() || request.ttl > MAX_TTL {
            return Err(Error::invalid_input(
                "a token lifetime is between one second and 24 hours",
            ));
        }
        let Some(room) = request.room.clone().filter(|r| !r.is_empty()) else {
            return Err(Error::invalid_input("a livekit token names its room"));
        };
        let now = self.clock.now();
        let mut grants = self.grants.clone();
        grants.room = room.clone();
        grants.room_join = Some(true);
        let jwt = LiveKitTokenBuilder::new(request.identity.clone())
            .video(grants)
            .ttl(request.ttl)
            .sign(&self.key, now)?;
        let issued_at = std::time::UNIX_EPOCH + Duration::from_secs(unix_seconds(now));
        let expires_at =
            std::time::UNIX_EPOCH + Duration::from_secs(unix_seconds(now + request.ttl));
        Ok(AccessToken::new(
            jwt,
            request.identity,
            Some(room),
            issued_at,
            expires_at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_debug_hides_the_secret() {
        let key = LiveKitApiKey::new("APIabc", "very-secret-value").unwrap();
        assert!(!format!("{key:?}").contains("very-secret"));
        assert!(LiveKitApiKey::new("", "x").is_err());
        let from = LiveKitApiKey::from_vars(|n| match n {
            "LIVEKIT_API_KEY" => Some("APIabc".into()),
            "LIVEKIT_API_SECRET" => Some("s".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(from.key(), "APIabc");
        assert!(LiveKitApiKey::from_vars(|_| None).is_err());
    }

    #[test]
    fn joining_needs_identity_and_room() {
        let key = LiveKitApiKey::new("APIabc", "s").unwrap();
        let now = std::time::UNIX_EPOCH;
        assert!(
            LiveKitTokenBuilder::new("")
                .video(VideoGrants::join("r"))
                .sign(&key, now)
                .is_err()
        );
        assert!(
            LiveKitTokenBuilder::new("a")
                .video(VideoGrants::join(""))
                .sign(&key, now)
                .is_err()
        );
        assert!(
            LiveKitTokenBuilder::new("a")
                .attributes([("k", "1"), ("k", "2")])
                .sign(&key, now)
                .is_err()
        );
        assert!(
            LiveKitTokenBuilder::new("a")
                .ttl(Duration::ZERO)
                .sign(&key, now)
                .is_err()
        );
    }
}
