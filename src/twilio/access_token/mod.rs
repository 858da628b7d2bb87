//! Twilio access tokens (HS256 JWTs), byte-identical to those of Twilio's own helper libraries.
//!
//! - [`TwilioCredentials`]: the account SID, API key SID and API key secret that sign tokens.
//! - [`AccessTokenBuilder`]: any Twilio access token: identity, [`Grant`]s (video, chat, sync,
//!   voice, TaskRouter, player), lifetime, `nbf`, region. [`AccessTokenBuilder::sign`] is a pure
//!   function of its inputs and `now`.
//! - [`TwilioAccessTokenIssuer`]: the [`VideoTokenIssuer`] for Twilio
//!   Video, on an injected [`Clock`](crate::Clock).
//! - [`AccessTokenVerifier`]: decodes and verifies such tokens (signature in constant time,
//!   `nbf` / `exp` against the clock with a leeway, header fields, grants).
//!
//! The header and payload are written key by key in the order PyJWT and Twilio's Python helper
//! produce them, non-ASCII escaped as `\uXXXX` exactly as Python's `json.dumps` does, so for the
//! same inputs and time the token is the same string the Python helper returns
//! (`tests/vectors/video/golden.json`, generated with the `twilio` package from PyPI).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use keyward::twilio::TwilioCredentials;
//! use keyward::video::twilio::{AccessTokenBuilder, VideoGrant};
//!
//! let key = TwilioCredentials::api_key(
//!     "AC00000000000000000000000000000000",
//!     "SK00000000000000000000000000000000",
//!     "test-secret-test-secret-test-sec",
//! )?;
//! let jwt = AccessTokenBuilder::new()
//!     .identity("alice")
//!     .grant(VideoGrant::room("My Room"))
//!     .ttl(Duration::from_secs(600))
//!     .sign(&key, UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
//! assert!(jwt.expose_str().unwrap().starts_with("eyJhbGciOiJIUzI1NiIsImN0eSI6InR3aWxpby1mcGE7dj0xIiwidHlwIjoiSldUIn0."));
//! # Ok::<(), keyward::Error>(())
//! ```

mod grants;
mod json;
mod verify;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::clock::unix_seconds;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::twilio::TwilioCredentials;
use crate::video::{
    AccessToken, DEFAULT_TTL, FactorProof, MAX_TTL, VideoTokenIssuer, VideoTokenRequest,
};

pub use grants::{
    ChatGrant, Grant, PlayerGrant, SyncGrant, TaskRouterGrant, VideoGrant, VoiceGrant,
};
pub use json::JsonValue;
pub use verify::{AccessTokenVerifier, DEFAULT_MAX_TOKEN_LEN, VerifiedAccessToken};

use json::{ObjectWriter, write_str};

/// The `cty` header of Twilio access tokens.
pub const CONTENT_TYPE: &str = "twilio-fpa;v=1";

/// Longest identity Twilio Video accepts, in characters (error 53200 beyond).
pub const MAX_VIDEO_IDENTITY_CHARS: usize = 128;

/// The API key that signs access tokens, taken from [`TwilioCredentials`] holding an API key.
#[derive(Clone)]
pub(crate) struct SigningKey {
    account_sid: String,
    key_sid: String,
    secret: Secret,
}

impl SigningKey {
    /// The API key of `credentials`; [`Config`](crate::ErrorKind::Config) for auth-token
    /// credentials, which cannot sign access tokens.
    pub(crate) fn from_credentials(credentials: &TwilioCredentials) -> Result<Self> {
        let (key_sid, secret) = credentials.api_key_parts().ok_or_else(|| {
            Error::config(
                "access tokens are signed with an API key (SK...), not the account auth token",
            )
        })?;
        Ok(SigningKey {
            account_sid: credentials.account_sid().to_owned(),
            key_sid: key_sid.to_owned(),
            secret: secret.clone(),
        })
    }

    /// The account SID (`sub`).
    pub(crate) fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// The API key SID (`iss`, and the prefix of `jti`).
    pub(crate) fn key_sid(&self) -> &str {
        &self.key_sid
    }

    pub(crate) fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.secret.expose())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("account_sid", &self.account_sid)
            .field("key_sid", &self.key_sid)
            .field("secret", &self.secret)
            .finish()
    }
}

/// What to put in a token's `nbf` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NotBefore {
    /// The issuing time (the helpers' default).
    #[default]
    Now,
    /// No `nbf` claim at all (the helpers' `nbf=None`).
    Omitted,
    /// A fixed time (whole seconds; sub-second parts are dropped).
    At(SystemTime),
}

/// Builds and signs any Twilio access token.
///
/// The grants are written in the order added; adding a grant whose [`key`](Grant::key) is
/// already present replaces it in place. Validation happens in [`sign`](Self::sign):
/// - identity: required (non-empty) and at most [`MAX_VIDEO_IDENTITY_CHARS`] characters when a
///   video grant is present; never empty when set;
/// - lifetime: at least one second and at most 24 hours (whole seconds; sub-second parts are
///   dropped, as the helpers take an integer);
/// - region: 1 to 16 characters of `a-z`, `0-9`, `-`;
/// - grant fields: never empty strings when set (the helpers would silently drop them; for a
///   video room that would widen the token to every room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenBuilder {
    identity: Option<String>,
    grants: Vec<Grant>,
    ttl: Duration,
    not_before: NotBefore,
    region: Option<String>,
}

impl Default for AccessTokenBuilder {
    fn default() -> Self {
        AccessTokenBuilder::new()
    }
}

impl AccessTokenBuilder {
    /// A token with no identity, no grants, the default one-hour lifetime and `nbf` = now.
    pub fn new() -> Self {
        AccessTokenBuilder {
            identity: None,
            grants: Vec::new(),
            ttl: DEFAULT_TTL,
            not_before: NotBefore::Now,
            region: None,
        }
    }

    /// Sets the identity (`grants.identity`).
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Adds a grant, or replaces the one with the same key in place.
    pub fn grant(mut self, grant: impl Into<Grant>) -> Self {
        let grant = grant.into();
        match self.grants.iter_mut().find(|g| g.key() == grant.key()) {
            Some(slot) => *slot = grant,
            None => self.grants.push(grant),
        }
        self
    }

    /// Sets the lifetime (`exp` = now + ttl).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the `nbf` claim.
    pub fn not_before(mut self, not_before: NotBefore) -> Self {
        self.not_before = not_before;
        self
    }

    /// Sets the region (`twr` header), e.g. `ie1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The grants, in token order.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    fn validate(&self) -> Result<u64> {
        if let Some(region) = &self.region {
            check_region(region)?;
        }
        let has_video = self.grants.iter().any(|g| matches!(g, Grant::Video(_)));
        match self.identity.as_deref() {
            Some("") => return Err(Error::invalid_input("identity is empty")),
            None if has_video => {
                return Err(Error::invalid_input("a video token needs an identity"));
            }
            Some(identity) if has_video && identity.chars().count() > MAX_VIDEO_IDENTITY_CHARS => {
                return Err(Error::invalid_input(format!(
                    "identity is longer than {MAX_VIDEO_IDENTITY_CHARS} characters"
                )));
            }
            _ => {}
        }
        let ttl = self.ttl.as_secs();
        if ttl == 0 {
            return Err(Error::invalid_input("ttl must be at least one second"));
        }
        if self.ttl > MAX_TTL {
            return Err(Error::invalid_input("ttl must be at most 24 hours"));
        }
        for grant in &self.grants {
            grant.validate()?;
        }
        Ok(ttl)
    }

    /// Signs the token at time `now` with the API key of `credentials`: the compact JWT, a
    /// bearer credential.
    ///
    /// Errors: [`InvalidInput`](crate::ErrorKind::InvalidInput) for the rules above,
    /// [`Config`](crate::ErrorKind::Config) for a malformed region or auth-token credentials.
    pub fn sign(&self, credentials: &TwilioCredentials, now: SystemTime) -> Result<Secret> {
        self.sign_with(&SigningKey::from_credentials(credentials)?, now)
    }

    pub(crate) fn sign_with(&self, key: &SigningKey, now: SystemTime) -> Result<Secret> {
        let ttl = self.validate()?;
        let now = unix_seconds(now);
        let exp = now
            .checked_add(ttl)
            .ok_or_else(|| Error::invalid_input("expiry is out of range"))?;

        let mut header = String::with_capacity(80);
        let mut h = ObjectWriter::new(&mut header);
        h.str("alg", "HS256");
        h.str("cty", CONTENT_TYPE);
        h.opt_str("twr", self.region.as_deref());
        h.str("typ", "JWT");
        h.end();

        let mut payload = String::with_capacity(256);
        let mut p = ObjectWriter::new(&mut payload);
        {
            let out = p.key("jti");
            write_str(out, &format!("{}-{now}", key.key_sid));
        }
        {
            let out = p.key("grants");
            let mut g = ObjectWriter::new(out);
            for grant in &self.grants {
                grant.write_payload(g.key(grant.key()));
            }
            g.opt_str("identity", self.identity.as_deref());
            g.end();
        }
        p.str("iss", &key.key_sid);
        p.uint("exp", exp);
        match self.not_before {
            NotBefore::Now => p.uint("nbf", now),
            NotBefore::At(t) => p.uint("nbf", unix_seconds(t)),
            NotBefore::Omitted => {}
        }
        p.str("sub", &key.account_sid);
        p.end();

        Ok(Secret::from(sign_parts(key, &header, &payload)))
    }
}

/// `b64(header) "." b64(payload) "." b64(HMAC-SHA256(secret, first two parts))`.
pub(crate) fn sign_parts(key: &SigningKey, header: &str, payload: &str) -> String {
    let mut jwt = URL_SAFE_NO_PAD.encode(header);
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let tag = hmac::sign(&key.hmac_key(), jwt.as_bytes());
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    jwt
}

fn check_region(region: &str) -> Result<()> {
    let ok = (1..=16).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "region must be 1 to 16 characters of a-z, 0-9 and -",
        ))
    }
}

/// The [`VideoTokenIssuer`] for Twilio Video: an access token with the
/// request's identity and a video grant for its room (or any room), signed with an API key at the
/// injected clock's time.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::{Env, ManualClock, VideoTokenIssuer};
/// use keyward::video::VideoTokenRequest;
/// use keyward::twilio::TwilioCredentials;
/// use keyward::video::twilio::TwilioAccessTokenIssuer;
///
/// let key = TwilioCredentials::api_key(
///     "AC00000000000000000000000000000000",
///     "SK00000000000000000000000000000000",
///     "test-secret-test-secret-test-sec",
/// )?;
/// let issuer = TwilioAccessTokenIssuer::new(key)?
///     .env(Env::system().with_clock(Arc::new(ManualClock::at_unix(1_700_000_000))));
/// # let proof = keyward::backend::verified_assertion(keyward::backend::AssertionParts::new(
/// #     vec![1], vec![2], 1)).into();
/// // `proof`: the FactorProof of a check that succeeded (an approved code, a passkey sign-in).
/// let token = issuer.issue(proof, VideoTokenRequest::new("alice").room("My Room")).await?;
/// let verified = issuer.verifier().verify(token.jwt())?;
/// assert_eq!(verified.identity.as_deref(), Some("alice"));
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct TwilioAccessTokenIssuer {
    credentials: TwilioCredentials,
    key: SigningKey,
    env: Env,
    region: Option<String>,
}

impl TwilioAccessTokenIssuer {
    /// An issuer signing with the API key of `credentials` on the system clock;
    /// [`Config`](crate::ErrorKind::Config) for auth-token credentials.
    pub fn new(credentials: TwilioCredentials) -> Result<Self> {
        Ok(TwilioAccessTokenIssuer {
            key: SigningKey::from_credentials(&credentials)?,
            credentials,
            env: Env::system(),
            region: None,
        })
    }

    /// Takes the token times from this environment's clock (default: [`Env::system`]); the
    /// [`verifier`](TwilioAccessTokenIssuer::verifier) gets the same environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Puts a region (`twr` header) in every token; checked when a token is issued.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The credentials whose API key signs the tokens.
    pub fn credentials(&self) -> &TwilioCredentials {
        &self.credentials
    }

    /// A verifier for this issuer's tokens, on the same key and clock.
    pub fn verifier(&self) -> AccessTokenVerifier {
        AccessTokenVerifier::from_key(self.key.clone()).env(self.env.clone())
    }

    /// The builder this issuer signs for `request`.
    pub fn builder_for(&self, request: &VideoTokenRequest) -> Result<AccessTokenBuilder> {
        if request.identity.is_empty() {
            return Err(Error::invalid_input("a video token needs an identity"));
        }
        let grant = match &request.room {
            None => VideoGrant::any_room(),
            Some(room) if room.is_empty() => {
                return Err(Error::invalid_input(
                    "room is empty; use no room to admit to any room",
                ));
            }
            Some(room) => VideoGrant::room(room.clone()),
        };
        let mut builder = AccessTokenBuilder::new()
            .identity(request.identity.clone())
            .grant(grant)
            .ttl(request.ttl);
        if let Some(region) = &self.region {
            builder = builder.region(region.clone());
        }
        Ok(builder)
    }
}

#[async_trait]
impl VideoTokenIssuer for TwilioAccessTokenIssuer {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.video.issue", skip_all, fields(backend = "twilio", identity = %crate::trace::masked(&request.identity), room = ?request.room, factor = _proof.factor(), ttl_secs = request.ttl.as_secs()), err(Display, level = "info")))]
    async fn issue(&self, _proof: FactorProof, request: VideoTokenRequest) -> Result<AccessToken> {
        let builder = self.builder_for(&request)?;
        let now = self.env.unix_seconds();
        let issued_at = UNIX_EPOCH + Duration::from_secs(now);
        let jwt = builder.sign_with(&self.key, issued_at)?;
        let expires_at = issued_at + Duration::from_secs(request.ttl.as_secs());
        Ok(AccessToken::new(
            jwt,
            request.identity,
            request.room,
            issued_at,
            expires_at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TwilioCredentials {
        TwilioCredentials::api_key(
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "secret-secret-secret-secret-secr",
        )
        .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn payload_of(jwt: &Secret) -> String {
        let text = jwt.expose_str().unwrap();
        let part = text.split('.').nth(1).unwrap();
        String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn credentials_refuse_bad_sids_and_empty_secret() {
        let ac = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let sk = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        assert!(TwilioCredentials::api_key(ac, sk, "s").is_ok());
        assert_eq!(
            TwilioCredentials::api_key(sk, sk, "s").unwrap_err().kind(),
            &crate::ErrorKind::Config
        );
        assert!(TwilioCredentials::api_key(ac, ac, "s").is_err());
        assert!(TwilioCredentials::api_key(ac, sk, "").is_err());
    }

    #[test]
    fn auth_token_credentials_cannot_sign() {
        let creds = TwilioCredentials::auth_token(
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Secret::from("auth-token"),
        )
        .unwrap();
        let err = TwilioAccessTokenIssuer::new(creds.clone()).unwrap_err();
        assert_eq!(err.kind(), &crate::ErrorKind::Config);
        assert!(!err.to_string().contains("auth-token"));
        let err = AccessTokenBuilder::new()
            .identity("alice")
            .sign(&creds, at(1000))
            .unwrap_err();
        assert_eq!(err.kind(), &crate::ErrorKind::Config);
        assert!(AccessTokenVerifier::new(creds).is_err());
    }

    #[test]
    fn payload_order_and_optional_nbf() {
        let jwt = AccessTokenBuilder::new()
            .identity("alice")
            .grant(VideoGrant::room("r"))
            .ttl(Duration::from_secs(60))
            .sign(&key(), at(1000))
            .unwrap();
        assert_eq!(
            payload_of(&jwt),
            r#"{"jti":"SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-1000","grants":{"video":{"room":"r"},"identity":"alice"},"iss":"SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","exp":1060,"nbf":1000,"sub":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#
        );
        let jwt = AccessTokenBuilder::new()
            .grant(ChatGrant::new().service_sid("IS1"))
            .not_before(NotBefore::Omitted)
            .sign(&key(), at(1000))
            .unwrap();
        assert_eq!(
            payload_of(&jwt),
            r#"{"jti":"SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-1000","grants":{"chat":{"service_sid":"IS1"}},"iss":"SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","exp":4600,"sub":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#
        );
    }

    #[test]
    fn same_key_grant_replaces_in_place() {
        let b = AccessTokenBuilder::new()
            .grant(VideoGrant::room("a"))
            .grant(ChatGrant::new())
            .grant(VideoGrant::room("b"));
        assert_eq!(
            b.grants(),
            &[VideoGrant::room("b").into(), ChatGrant::new().into()]
        );
    }

    #[test]
    fn validation() {
        let k = key();
        let v = || AccessTokenBuilder::new().grant(VideoGrant::any_room());
        assert!(v().sign(&k, at(1)).is_err(), "video needs identity");
        assert!(v().identity("").sign(&k, at(1)).is_err());
        assert!(v().identity("é".repeat(128)).sign(&k, at(1)).is_ok());
        let err = v().identity("é".repeat(129)).sign(&k, at(1)).unwrap_err();
        assert_eq!(err.kind(), &crate::ErrorKind::InvalidInput);
        assert!(err.message().contains("128"));
        // Without a video grant the identity may be long or absent.
        assert!(AccessTokenBuilder::new().sign(&k, at(1)).is_ok());
        let ok = v().identity("a");
        assert!(ok.clone().ttl(Duration::ZERO).sign(&k, at(1)).is_err());
        assert!(
            ok.clone()
                .ttl(Duration::from_millis(999))
                .sign(&k, at(1))
                .is_err()
        );
        assert!(ok.clone().ttl(MAX_TTL).sign(&k, at(1)).is_ok());
        assert!(
            ok.clone()
                .ttl(MAX_TTL + Duration::from_secs(1))
                .sign(&k, at(1))
                .is_err()
        );
        assert!(ok.clone().region("ie1").sign(&k, at(1)).is_ok());
        assert!(ok.clone().region("IE1").sign(&k, at(1)).is_err());
        assert!(ok.clone().region("").sign(&k, at(1)).is_err());
        assert!(
            ok.clone()
                .grant(VideoGrant::room(""))
                .sign(&k, at(1))
                .is_err(),
            "an empty room must not silently widen the grant"
        );
        assert!(
            ok.clone()
                .grant(VoiceGrant::new().outgoing_param("a", 1))
                .sign(&k, at(1))
                .is_err()
        );
    }

    #[test]
    fn header_with_region() {
        let jwt = AccessTokenBuilder::new()
            .region("ie1")
            .sign(&key(), at(1))
            .unwrap();
        let head = jwt
            .expose_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(head).unwrap(),
            br#"{"alg":"HS256","cty":"twilio-fpa;v=1","twr":"ie1","typ":"JWT"}"#
        );
    }

    #[test]
    fn debug_hides_secret() {
        let shown = format!("{:?}", TwilioAccessTokenIssuer::new(key()));
        assert!(!shown.contains("secret-secret"), "{shown}");
        assert!(shown.contains("SKbbbb"));
    }
}
