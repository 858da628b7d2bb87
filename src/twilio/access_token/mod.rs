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

use json::{ObjectWriter, push_uint, write_str};

/// The `cty` header of Twilio access tokens.
pub const CONTENT_TYPE: &str = "twilio-fpa;v=1";

/// Longest identity Twilio Video accepts, in characters (error 53200 beyond).
pub const MAX_VIDEO_IDENTITY_CHARS: usize = 128;

/// The API key that signs access tokens, taken from [`TwilioCredentials`] holding an API key.
///
/// The HMAC key is built once here: ring's `hmac::Key::new` hashes the secret into the inner and
/// outer pads (two SHA-256 blocks), which rebuilt on every token was 11 % of an issue.
#[derive(Clone)]
pub(crate) struct SigningKey {
    account_sid: String,
    key_sid: String,
    hmac: hmac::Key,
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
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
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

    /// The HMAC-SHA256 key of the API key secret.
    pub(crate) fn hmac_key(&self) -> &hmac::Key {
        &self.hmac
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("account_sid", &self.account_sid)
            .field("key_sid", &self.key_sid)
            .field("secret", &"[REDACTED]")
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

        let header = header_json(self.region.as_deref());
        let nbf = match self.not_before {
            NotBefore::Now => Some(now),
            NotBefore::At(t) => Some(unix_seconds(t)),
            NotBefore::Omitted => None,
        };
        let mut payload = String::with_capacity(256);
        write_claims(
            &mut payload,
            key,
            Claims {
                now,
                exp,
                nbf,
                identity: self.identity.as_deref(),
            },
            |g| {
                for grant in &self.grants {
                    grant.write_payload(g.key(grant.key()));
                }
            },
        );
        Ok(sign_parts(key, &header, &payload))
    }
}

/// The header JSON: `alg`, `cty`, `twr` (the region, when set) and `typ`, in PyJWT's order.
fn header_json(region: Option<&str>) -> String {
    let mut header = String::with_capacity(80);
    let mut h = ObjectWriter::new(&mut header);
    h.str("alg", "HS256");
    h.str("cty", CONTENT_TYPE);
    h.opt_str("twr", region);
    h.str("typ", "JWT");
    h.end();
    header
}

/// The time claims and identity of a payload.
struct Claims<'a> {
    now: u64,
    exp: u64,
    nbf: Option<u64>,
    identity: Option<&'a str>,
}

/// The payload JSON in the Python helper's order: `jti`, `grants` (what `grants` writes, then
/// `identity`), `iss`, `exp`, `nbf`, `sub`.
fn write_claims(
    out: &mut String,
    key: &SigningKey,
    claims: Claims<'_>,
    grants: impl FnOnce(&mut ObjectWriter<'_>),
) {
    let mut p = ObjectWriter::new(out);
    {
        let out = p.key("jti");
        write_str(out, &key.key_sid);
        // `"SK…"` becomes `"SK…-<now>"`: the closing quote moves after the time.
        out.pop();
        out.push('-');
        push_uint(out, claims.now);
        out.push('"');
    }
    {
        let out = p.key("grants");
        let mut g = ObjectWriter::new(out);
        grants(&mut g);
        g.opt_str("identity", claims.identity);
        g.end();
    }
    p.str("iss", &key.key_sid);
    p.uint("exp", claims.exp);
    if let Some(nbf) = claims.nbf {
        p.uint("nbf", nbf);
    }
    p.str("sub", &key.account_sid);
    p.end();
}

/// `b64(header) "." b64(payload) "." b64(HMAC-SHA256(secret, first two parts))`.
pub(crate) fn sign_parts(key: &SigningKey, header: &str, payload: &str) -> Secret {
    sign_encoded(key, &URL_SAFE_NO_PAD.encode(header), payload)
}

/// [`sign_parts`] with the header already encoded, written into one buffer of the exact final
/// length (no reallocation, so no copy of the token is left behind unzeroized).
fn sign_encoded(key: &SigningKey, header_b64: &str, payload: &str) -> Secret {
    let header_len = header_b64.len();
    let payload_len = base64::encoded_len(payload.len(), false).unwrap_or(0);
    let signed_len = header_len + 1 + payload_len;
    // A 32-byte tag is 43 base64url characters.
    let mut jwt = Vec::with_capacity(signed_len + 1 + 43);
    jwt.extend_from_slice(header_b64.as_bytes());
    jwt.push(b'.');
    jwt.resize(signed_len, 0);
    if let Some(body) = jwt.get_mut(header_len + 1..) {
        let _ = URL_SAFE_NO_PAD.encode_slice(payload, body);
    }
    let tag = hmac::sign(&key.hmac, &jwt);
    jwt.push(b'.');
    jwt.resize(signed_len + 1 + 43, 0);
    if let Some(sig) = jwt.get_mut(signed_len + 1..) {
        let _ = URL_SAFE_NO_PAD.encode_slice(tag.as_ref(), sig);
    }
    Secret::from(jwt)
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
    /// The encoded header of every token (it depends only on the region); `None` for a malformed
    /// region, refused when a token is issued.
    header_b64: Option<String>,
    /// The payload's fixed text around the per-token values.
    claims: VideoClaims,
}

/// The fixed text of a video token's payload for one API key, written once (with the same
/// writer as [`write_claims`], so the bytes are the same), around which `issue` writes the time,
/// the room and the identity:
///
/// `{"jti":"SK…-` now `","grants":{"video":{` [`"room":` room] `},"identity":` identity
/// `},"iss":"SK…","exp":` exp `,"nbf":` now `,"sub":"AC…"}`
#[derive(Debug, Clone)]
struct VideoClaims {
    jti: String,
    iss_exp: String,
    sub: String,
}

impl VideoClaims {
    fn new(key: &SigningKey) -> Self {
        let mut jti = String::new();
        let mut p = ObjectWriter::new(&mut jti);
        write_str(p.key("jti"), &key.key_sid);
        jti.pop();
        jti.push('-');
        let mut iss_exp = String::from("},");
        write_str(&mut iss_exp, "iss");
        iss_exp.push(':');
        write_str(&mut iss_exp, &key.key_sid);
        iss_exp.push(',');
        write_str(&mut iss_exp, "exp");
        iss_exp.push(':');
        let mut sub = String::from(",");
        write_str(&mut sub, "sub");
        sub.push(':');
        write_str(&mut sub, &key.account_sid);
        sub.push('}');
        VideoClaims { jti, iss_exp, sub }
    }

    /// The payload [`write_claims`] writes for a video grant with `room`, `identity`, `nbf` = now.
    fn write(&self, out: &mut String, now: u64, exp: u64, room: Option<&str>, identity: &str) {
        out.push_str(&self.jti);
        push_uint(out, now);
        out.push_str("\",\"grants\":{\"video\":{");
        if let Some(room) = room {
            out.push_str("\"room\":");
            write_str(out, room);
        }
        out.push_str("},\"identity\":");
        write_str(out, identity);
        out.push_str(&self.iss_exp);
        push_uint(out, exp);
        out.push_str(",\"nbf\":");
        push_uint(out, now);
        out.push_str(&self.sub);
    }
}

impl TwilioAccessTokenIssuer {
    /// An issuer signing with the API key of `credentials` on the system clock;
    /// [`Config`](crate::ErrorKind::Config) for auth-token credentials.
    pub fn new(credentials: TwilioCredentials) -> Result<Self> {
        let key = SigningKey::from_credentials(&credentials)?;
        Ok(TwilioAccessTokenIssuer {
            claims: VideoClaims::new(&key),
            key,
            credentials,
            env: Env::system(),
            region: None,
            header_b64: Some(URL_SAFE_NO_PAD.encode(header_json(None))),
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
        let region = region.into();
        self.header_b64 = check_region(&region)
            .ok()
            .map(|()| URL_SAFE_NO_PAD.encode(header_json(Some(&region))));
        self.region = Some(region);
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
    /// Signs the same token as [`builder_for`](TwilioAccessTokenIssuer::builder_for)`(request)`
    /// `.sign(..)` at the clock's time, with the same checks in the same order, without building
    /// the builder: the header is encoded once per issuer and the payload written straight from
    /// the request.
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.video.issue", skip_all, fields(backend = "twilio", identity = %crate::trace::masked(&request.identity), room = ?request.room, factor = _proof.factor(), ttl_secs = request.ttl.as_secs()), err(Display, level = "info")))]
    async fn issue(&self, _proof: FactorProof, request: VideoTokenRequest) -> Result<AccessToken> {
        if request.identity.is_empty() {
            return Err(Error::invalid_input("a video token needs an identity"));
        }
        if request.room.as_deref() == Some("") {
            return Err(Error::invalid_input(
                "room is empty; use no room to admit to any room",
            ));
        }
        let Some(header_b64) = &self.header_b64 else {
            return Err(check_region(self.region.as_deref().unwrap_or_default())
                .err()
                .unwrap_or_else(|| Error::config("region is malformed")));
        };
        if request.identity.chars().count() > MAX_VIDEO_IDENTITY_CHARS {
            return Err(Error::invalid_input(format!(
                "identity is longer than {MAX_VIDEO_IDENTITY_CHARS} characters"
            )));
        }
        let ttl = request.ttl.as_secs();
        if ttl == 0 {
            return Err(Error::invalid_input("ttl must be at least one second"));
        }
        if request.ttl > MAX_TTL {
            return Err(Error::invalid_input("ttl must be at most 24 hours"));
        }
        let now = self.env.unix_seconds();
        let exp = now
            .checked_add(ttl)
            .ok_or_else(|| Error::invalid_input("expiry is out of range"))?;
        let mut payload = String::with_capacity(
            200 + request.identity.len() + request.room.as_ref().map_or(0, String::len),
        );
        self.claims.write(
            &mut payload,
            now,
            exp,
            request.room.as_deref(),
            &request.identity,
        );
        let jwt = sign_encoded(&self.key, header_b64, &payload);
        let issued_at = UNIX_EPOCH + Duration::from_secs(now);
        let expires_at = issued_at + Duration::from_secs(ttl);
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

    fn issue_both_ways(
        region: Option<&str>,
        request: VideoTokenRequest,
    ) -> (Result<AccessToken>, Result<Secret>) {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::at_unix(1_700_000_123));
        let mut issuer = TwilioAccessTokenIssuer::new(key())
            .unwrap()
            .env(crate::Env::system().with_clock(clock));
        if let Some(region) = region {
            issuer = issuer.region(region);
        }
        let proof = crate::backend::verified_assertion(crate::backend::AssertionParts::new(
            vec![1],
            vec![2],
            1,
        ));
        let issued = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(issuer.issue(proof.into(), request.clone()));
        let built = issuer
            .builder_for(&request)
            .and_then(|b| b.sign(&key(), at(1_700_000_123)));
        (issued, built)
    }

    #[test]
    fn issue_refuses_what_the_builder_refuses_with_the_same_error() {
        let long = "é".repeat(MAX_VIDEO_IDENTITY_CHARS + 1);
        let cases = [
            (None, VideoTokenRequest::new("")),
            (None, VideoTokenRequest::new("a").room("")),
            (None, VideoTokenRequest::new(long.as_str())),
            (None, VideoTokenRequest::new("a").ttl(Duration::ZERO)),
            (
                None,
                VideoTokenRequest::new("a").ttl(MAX_TTL + Duration::from_secs(1)),
            ),
            (Some("IE1"), VideoTokenRequest::new("a")),
            (Some(""), VideoTokenRequest::new("a").room("r")),
            (Some("IE1"), VideoTokenRequest::new("").room("r")),
        ];
        for (region, request) in cases {
            let (issued, built) = issue_both_ways(region, request.clone());
            let (issued, built) = (issued.unwrap_err(), built.unwrap_err());
            assert_eq!(issued.kind(), built.kind(), "{region:?} {request:?}");
            assert_eq!(issued.message(), built.message(), "{region:?} {request:?}");
        }
    }

    proptest::proptest! {
        /// The issuer's direct path writes the same bytes as the builder (whose output is the
        /// Python helper's, `tests/vectors/video/golden.json`).
        #[test]
        fn issue_writes_what_the_builder_signs(
            identity in "\\PC{1,40}",
            room in proptest::option::of("\\PC{1,24}"),
            ttl in 1u64..=86_400,
            region in proptest::option::of("[a-z0-9-]{1,16}"),
        ) {
            let mut request = VideoTokenRequest::new(identity).ttl(Duration::from_secs(ttl));
            if let Some(room) = room {
                request = request.room(room);
            }
            let (issued, built) = issue_both_ways(region.as_deref(), request.clone());
            let (issued, built) = (issued.unwrap(), built.unwrap());
            proptest::prop_assert_eq!(issued.jwt(), built.expose_str().unwrap());
            proptest::prop_assert_eq!(&issued.identity, &request.identity);
            proptest::prop_assert_eq!(
                issued.expires_at,
                at(1_700_000_123 + ttl)
            );
        }
    }

    #[test]
    fn debug_hides_secret() {
        let shown = format!("{:?}", TwilioAccessTokenIssuer::new(key()));
        assert!(!shown.contains("secret-secret"), "{shown}");
        assert!(shown.contains("SKbbbb"));
    }
}
