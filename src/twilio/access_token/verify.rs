//! Decoding and verifying Twilio access tokens.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::grants::Grant;
use super::json::JsonValue;
use super::{CONTENT_TYPE, SigningKey};
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::twilio::TwilioCredentials;
use crate::video::MAX_TTL;

/// Longest token [`AccessTokenVerifier`] reads by default, in bytes. Real tokens are a few
/// hundred bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// Verifies Twilio access tokens signed with one API key.
///
/// [`verify`](Self::verify) checks, in this order, refusing with
/// [`ErrorKind::InvalidToken`] unless said otherwise:
/// 1. the size (at most [`DEFAULT_MAX_TOKEN_LEN`] bytes unless configured) and the shape: three
///    unpadded base64url parts;
/// 2. the HMAC-SHA256 signature, in constant time, before any JSON is parsed;
/// 3. the header: `alg` `HS256`, `typ` `JWT`, `cty` `twilio-fpa;v=1`, no `crit`, optional `twr`;
/// 4. the payload: `iss` is this key's SID, `sub` its account SID, `jti` is `<iss>-<issued at>`,
///    the grants are ones Twilio defines with well-formed fields, the lifetime (`exp` − issue
///    time) is positive and at most 24 hours;
/// 5. time against the injected clock, with the leeway: not before `nbf`
///    (`InvalidToken`, "not valid yet"), and before `exp` ([`ErrorKind::Expired`]).
///
/// It never panics, whatever the input.
#[derive(Debug, Clone)]
pub struct AccessTokenVerifier {
    key: SigningKey,
    clock: Arc<dyn Clock>,
    leeway: Duration,
    max_len: usize,
}

impl AccessTokenVerifier {
    /// A verifier for tokens signed with the API key of `credentials`, on the system clock, no
    /// leeway; [`Config`](ErrorKind::Config) for auth-token credentials.
    pub fn new(credentials: TwilioCredentials) -> Result<Self> {
        Ok(AccessTokenVerifier::from_key(SigningKey::from_credentials(
            &credentials,
        )?))
    }

    pub(crate) fn from_key(key: SigningKey) -> Self {
        AccessTokenVerifier {
            key,
            clock: Arc::new(SystemClock),
            leeway: Duration::ZERO,
            max_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// Checks `nbf` / `exp` against this environment's clock (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self
    }

    /// Tolerates this much clock skew on `nbf` and `exp` (whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Refuses tokens longer than `max_len` bytes.
    pub fn max_token_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Decodes and verifies `jwt` at the clock's current time.
    pub fn verify(&self, jwt: &str) -> Result<VerifiedAccessToken> {
        self.verify_at(jwt, self.clock.now())
    }

    /// Decodes and verifies `jwt` as of `now`.
    pub fn verify_at(&self, jwt: &str, now: SystemTime) -> Result<VerifiedAccessToken> {
        if jwt.len() > self.max_len {
            return Err(invalid(format!(
                "token is longer than {} bytes",
                self.max_len
            )));
        }
        let mut parts = jwt.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("token does not have three parts"));
        };
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| invalid("signature is not unpadded base64url"))?;
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        let signed = jwt.get(..signed_len).unwrap_or_default();
        hmac::verify(self.key.hmac_key(), signed.as_bytes(), &signature)
            .map_err(|_| invalid("signature does not match"))?;

        let header_json = decode_part(header_b64, "header")?;
        let payload_json = decode_part(payload_b64, "payload")?;

        let header: Header = serde_json::from_str(&header_json)
            .map_err(|_| invalid("header is not the expected JSON object"))?;
        if header.alg != "HS256" {
            return Err(invalid("header alg is not HS256"));
        }
        if header.typ.as_deref() != Some("JWT") {
            return Err(invalid("header typ is not JWT"));
        }
        if header.cty.as_deref() != Some(CONTENT_TYPE) {
            return Err(invalid("header cty is not twilio-fpa;v=1"));
        }
        if header.crit.is_some() {
            return Err(invalid("header has critical extensions"));
        }

        let payload: Payload = serde_json::from_str(&payload_json)
            .map_err(|_| invalid("payload is not the expected JSON object"))?;
        if payload.iss != self.key.key_sid() {
            return Err(invalid("token was not issued by this api key"));
        }
        if payload.sub != self.key.account_sid() {
            return Err(invalid("token is not for this account"));
        }
        let issued = payload
            .jti
            .strip_prefix(self.key.key_sid())
            .and_then(|rest| rest.strip_prefix('-'))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or_else(|| invalid("jti is not <api key sid>-<issue time>"))?;
        let JsonValue::Object(entries) = payload.grants else {
            return Err(invalid("grants is not an object"));
        };
        let mut identity = None;
        let mut grants = Vec::new();
        for (key, value) in &entries {
            if key == "identity" {
                match value {
                    JsonValue::String(s) if !s.is_empty() => identity = Some(s.clone()),
                    _ => return Err(invalid("identity is not a non-empty string")),
                }
            } else {
                grants.push(Grant::from_payload(key, value).map_err(invalid)?);
            }
        }
        if payload.exp <= issued || payload.exp - issued > MAX_TTL.as_secs() {
            return Err(invalid("token lifetime is not between 1 s and 24 h"));
        }

        let now = unix_seconds(now);
        let leeway = self.leeway.as_secs();
        if let Some(nbf) = payload.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(invalid("token is not valid yet"));
        }
        if now >= payload.exp.saturating_add(leeway) {
            return Err(Error::new(ErrorKind::Expired, "token expired"));
        }

        Ok(VerifiedAccessToken {
            region: header.twr,
            token_id: payload.jti,
            api_key_sid: payload.iss,
            account_sid: payload.sub,
            issued_at: to_time(issued),
            expires_at: to_time(payload.exp),
            not_before: payload.nbf.map(to_time),
            identity,
            grants,
            header_json,
            payload_json,
        })
    }
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidToken, message)
}

fn to_time(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

fn decode_part(part: &str, what: &'static str) -> Result<String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid(format!("{what} is not unpadded base64url")))?;
    String::from_utf8(bytes).map_err(|_| invalid(format!("{what} is not UTF-8")))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    twr: Option<String>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Payload {
    jti: String,
    grants: JsonValue,
    iss: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    sub: String,
}

/// A token that passed [`AccessTokenVerifier::verify`]: its claims, typed.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedAccessToken {
    /// The region (`twr` header), if any.
    pub region: Option<String>,
    /// `jti`: `<api key sid>-<issue time>`.
    pub token_id: String,
    /// `iss`: the API key SID.
    pub api_key_sid: String,
    /// `sub`: the account SID.
    pub account_sid: String,
    /// The issue time, from `jti`.
    pub issued_at: SystemTime,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `nbf`, when present.
    pub not_before: Option<SystemTime>,
    /// `grants.identity`, when present.
    pub identity: Option<String>,
    /// The grants, in token order.
    pub grants: Vec<Grant>,
    header_json: String,
    payload_json: String,
}

impl VerifiedAccessToken {
    /// The decoded header, as signed.
    pub fn header_json(&self) -> &str {
        &self.header_json
    }

    /// The decoded payload, as signed.
    pub fn payload_json(&self) -> &str {
        &self.payload_json
    }

    /// The room of the video grant: `None` without a video grant, `Some(None)` for any room.
    pub fn video_room(&self) -> Option<Option<&str>> {
        self.grants.iter().find_map(|g| match g {
            Grant::Video(v) => Some(v.room.as_deref()),
            _ => None,
        })
    }
}

impl fmt::Debug for VerifiedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedAccessToken")
            .field("region", &self.region)
            .field("token_id", &self.token_id)
            .field("api_key_sid", &self.api_key_sid)
            .field("account_sid", &self.account_sid)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("not_before", &self.not_before)
            .field("identity", &self.identity)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AccessTokenBuilder, NotBefore, VideoGrant, sign_parts};
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

    fn token(nbf: NotBefore) -> String {
        AccessTokenBuilder::new()
            .identity("alice")
            .grant(VideoGrant::room("r"))
            .ttl(Duration::from_secs(100))
            .not_before(nbf)
            .sign(&key(), at(1000))
            .unwrap()
            .expose_str()
            .unwrap()
            .to_owned()
    }

    fn kind(r: Result<VerifiedAccessToken>) -> ErrorKind {
        r.unwrap_err().kind().clone()
    }

    #[test]
    fn time_window_and_leeway() {
        let v = AccessTokenVerifier::new(key()).unwrap();
        let t = token(NotBefore::Now);
        assert!(v.verify_at(&t, at(1000)).is_ok());
        assert!(v.verify_at(&t, at(1099)).is_ok());
        assert_eq!(kind(v.verify_at(&t, at(1100))), ErrorKind::Expired);
        assert_eq!(kind(v.verify_at(&t, at(999))), ErrorKind::InvalidToken);
        let lenient = v.clone().leeway(Duration::from_secs(5));
        assert!(lenient.verify_at(&t, at(995)).is_ok());
        assert!(lenient.verify_at(&t, at(1104)).is_ok());
        assert_eq!(kind(lenient.verify_at(&t, at(1105))), ErrorKind::Expired);
        let no_nbf = token(NotBefore::Omitted);
        assert!(v.verify_at(&no_nbf, at(10)).is_ok());
    }

    #[test]
    fn decodes_claims() {
        let v = AccessTokenVerifier::new(key()).unwrap();
        let d = v.verify_at(&token(NotBefore::Now), at(1000)).unwrap();
        assert_eq!(d.identity.as_deref(), Some("alice"));
        assert_eq!(d.video_room(), Some(Some("r")));
        assert_eq!(d.issued_at, at(1000));
        assert_eq!(d.expires_at, at(1100));
        assert_eq!(d.not_before, Some(at(1000)));
        assert_eq!(d.token_id, "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-1000");
        assert!(d.header_json().starts_with(r#"{"alg":"HS256""#));
    }

    #[test]
    fn refuses_tampering_and_wrong_key() {
        let v = AccessTokenVerifier::new(key()).unwrap();
        let t = token(NotBefore::Now);
        let mut bytes = t.clone().into_bytes();
        bytes[10] ^= 1;
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            kind(v.verify_at(&tampered, at(1000))),
            ErrorKind::InvalidToken
        );
        let other = TwilioCredentials::api_key(
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "another-secret",
        )
        .unwrap();
        assert!(
            AccessTokenVerifier::new(other)
                .unwrap()
                .verify_at(&t, at(1000))
                .is_err()
        );
        assert!(v.clone().max_token_len(10).verify_at(&t, at(1000)).is_err());
        assert!(v.verify_at(&format!("{t}."), at(1000)).is_err());
        assert!(v.verify_at("", at(1000)).is_err());
    }

    fn signed(header: &str, payload: &str) -> String {
        sign_parts(
            &SigningKey::from_credentials(&key()).unwrap(),
            header,
            payload,
        )
        .expose_str()
        .unwrap()
        .to_owned()
    }

    const H: &str = r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#;
    const ISS: &str = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const SUB: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn payload(jti: &str, grants: &str, exp: u64) -> String {
        format!(r#"{{"jti":"{jti}","grants":{grants},"iss":"{ISS}","exp":{exp},"sub":"{SUB}"}}"#)
    }

    #[test]
    fn refuses_bad_headers_and_claims() {
        let v = AccessTokenVerifier::new(key()).unwrap();
        let good = payload(&format!("{ISS}-1000"), "{}", 1100);
        assert!(v.verify_at(&signed(H, &good), at(1000)).is_ok());
        for header in [
            r#"{"alg":"none","cty":"twilio-fpa;v=1","typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"HS256","cty":"twilio-fpa;v=1"}"#,
            r#"{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT","crit":["x"]}"#,
            r#"{"alg":"HS256","alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}"#,
            "[]",
        ] {
            let r = v.verify_at(&signed(header, &good), at(1000));
            assert_eq!(kind(r), ErrorKind::InvalidToken, "{header}");
        }
        for p in [
            payload("SKother-1000", "{}", 1100),
            payload(&format!("{ISS}-"), "{}", 1100),
            payload(&format!("{ISS}-+1000"), "{}", 1100),
            payload(&format!("{ISS}-1000"), "[]", 1100),
            payload(&format!("{ISS}-1000"), r#"{"identity":""}"#, 1100),
            payload(&format!("{ISS}-1000"), r#"{"video":{"room":1}}"#, 1100),
            payload(&format!("{ISS}-1000"), r#"{"video":{"rooms":"x"}}"#, 1100),
            payload(&format!("{ISS}-1000"), r#"{"unknown":{}}"#, 1100),
            payload(&format!("{ISS}-1000"), "{}", 1000),
            payload(&format!("{ISS}-1000"), "{}", 1000 + 86_401),
            good.replace(SUB, "ACcccccccccccccccccccccccccccccccc"),
            good.replace(r#""exp":1100"#, r#""exp":1100.5"#),
            good.replace(r#""exp":1100"#, r#""exp":-1"#),
        ] {
            let r = v.verify_at(&signed(H, &p), at(1000));
            assert_eq!(kind(r), ErrorKind::InvalidToken, "{p}");
        }
    }
}
