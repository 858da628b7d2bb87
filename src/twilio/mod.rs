//! Everything Twilio, in one folder: the credentials (from values or the environment), SID
//! checks, the `Authorization` header and the mapping of Twilio's error bodies to [`ErrorKind`]s
//! (this file), and every trait Twilio fills:
//!
//! - `verify.rs`: Twilio Verify v2 as an [`OtpProvider`](crate::OtpProvider) ([`TwilioVerify`]);
//! - `totp.rs`: Verify's TOTP factors as a [`TotpProvider`](crate::TotpProvider) ([`TwilioTotp`]);
//! - `messaging.rs`: Programmable Messaging as a [`CodeSender`](crate::otp::CodeSender)
//!   ([`TwilioSmsSender`]);
//! - [`access_token`]: Twilio access tokens and the [`VideoTokenIssuer`](crate::VideoTokenIssuer)
//!   for Twilio Video.
//!
//! The same items stay reachable where users know them: `keyward::otp::{TwilioVerify, …}` and
//! `keyward::video::twilio::…` (a re-export of [`access_token`]).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, RemoteError, Result};
use crate::http::HttpAnswer;
use crate::secret::Secret;

pub mod access_token;
pub(crate) mod messaging;
pub(crate) mod totp;
pub(crate) mod verify;

pub use messaging::{SmsFrom, TWILIO_API_BASE_URL, TwilioSmsConfig, TwilioSmsSender};
pub use totp::TwilioTotp;
pub use verify::{TwilioVerify, TwilioVerifyConfig, VERIFY_BASE_URL};

/// Environment variable holding the account SID (`AC…`).
pub const ENV_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
/// Environment variable holding the API key SID (`SK…`).
pub const ENV_API_KEY_SID: &str = "TWILIO_API_KEY_SID";
/// Environment variable holding the API key secret.
pub const ENV_API_KEY_SECRET: &str = "TWILIO_API_KEY_SECRET";
/// Environment variable holding the account auth token (used when no API key is set).
pub const ENV_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
/// Environment variable holding the Verify service SID (`VA…`).
pub const ENV_VERIFY_SERVICE_SID: &str = "VERIFY_SERVICE_SID";

/// Checks that `sid` is `prefix` followed by 32 hex digits (Twilio's SID shape). Fails with
/// [`Config`](ErrorKind::Config) naming what was expected, never echoing the value.
///
/// ```
/// use keyward::twilio::check_sid;
/// assert!(check_sid("AC", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_ok());
/// assert!(check_sid("SK", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_err());
/// assert!(check_sid("VA", "VA123").is_err());
/// ```
pub fn check_sid(prefix: &str, sid: &str) -> Result<()> {
    let ok = sid.len() == prefix.len() + 32
        && sid.starts_with(prefix)
        && sid
            .bytes()
            .skip(prefix.len())
            .all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "expected a Twilio SID of the form {prefix} followed by 32 hex digits"
        )))
    }
}

/// Whether `sid` is `prefix` followed by 32 hex digits.
pub(crate) fn is_sid(prefix: &str, sid: &str) -> bool {
    check_sid(prefix, sid).is_ok()
}

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    ApiKey { sid: String, secret: Secret },
    AuthToken(Secret),
}

/// Twilio account credentials: an API key (preferred) or the account auth token. The one
/// credentials type of the crate: REST backends (Verify, Messaging) take either kind; access
/// tokens are signed with an API key only (Twilio refuses tokens signed with the auth token).
///
/// `Debug` shows the account SID and the API key SID, never the key secret or the auth token.
///
/// ```
/// use keyward::Secret;
/// use keyward::twilio::TwilioCredentials;
/// let creds = TwilioCredentials::api_key(
///     "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
///     "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
///     Secret::from("key-secret"),
/// )?;
/// assert!(!format!("{creds:?}").contains("key-secret"));
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Clone)]
pub struct TwilioCredentials {
    account_sid: String,
    auth: Auth,
}

impl TwilioCredentials {
    /// Authenticate with an API key (`SK…` and its secret) of account `AC…`. Checks the SIDs'
    /// shapes (`AC` / `SK` and 32 hex digits) and that the secret is not empty;
    /// [`Config`](ErrorKind::Config) otherwise.
    pub fn api_key(
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        key_secret: impl Into<Secret>,
    ) -> Result<Self> {
        let account_sid = account_sid.into();
        let key_sid = key_sid.into();
        let key_secret = key_secret.into();
        check_sid("AC", &account_sid)?;
        check_sid("SK", &key_sid)?;
        if key_secret.is_empty() {
            return Err(Error::config("the Twilio API key secret is empty"));
        }
        Ok(TwilioCredentials {
            account_sid,
            auth: Auth::ApiKey {
                sid: key_sid,
                secret: key_secret,
            },
        })
    }

    /// Authenticate with the account SID and its auth token.
    pub fn auth_token(account_sid: impl Into<String>, auth_token: Secret) -> Result<Self> {
        let account_sid = account_sid.into();
        check_sid("AC", &account_sid)?;
        if auth_token.is_empty() {
            return Err(Error::config("the Twilio auth token is empty"));
        }
        Ok(TwilioCredentials {
            account_sid,
            auth: Auth::AuthToken(auth_token),
        })
    }

    /// Reads `TWILIO_ACCOUNT_SID` and either `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET`
    /// (preferred when both are set) or `TWILIO_AUTH_TOKEN` from the process environment.
    pub fn from_env() -> Result<Self> {
        TwilioCredentials::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var` (for configuration
    /// files, secret managers and tests).
    ///
    /// ```
    /// use keyward::twilio::TwilioCredentials;
    /// let creds = TwilioCredentials::from_vars(|name| match name {
    ///     "TWILIO_ACCOUNT_SID" => Some("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()),
    ///     "TWILIO_AUTH_TOKEN" => Some("token".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(creds.account_sid(), "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    /// # Ok::<(), keyward::Error>(())
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let non_empty = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let account_sid = non_empty(ENV_ACCOUNT_SID)
            .ok_or_else(|| Error::config("TWILIO_ACCOUNT_SID is not set"))?;
        match (non_empty(ENV_API_KEY_SID), var(ENV_API_KEY_SECRET)) {
            (Some(sid), Some(secret)) if !secret.is_empty() => {
                TwilioCredentials::api_key(account_sid, sid, Secret::from(secret))
            }
            (Some(_), _) => Err(Error::config(
                "TWILIO_API_KEY_SID is set but TWILIO_API_KEY_SECRET is not",
            )),
            (None, _) => match var(ENV_AUTH_TOKEN).filter(|t| !t.is_empty()) {
                Some(token) => TwilioCredentials::auth_token(account_sid, Secret::from(token)),
                None => Err(Error::config(
                    "set TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET, or TWILIO_AUTH_TOKEN",
                )),
            },
        }
    }

    /// The account SID (`AC…`).
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// The API key SID, when authenticating with an API key.
    pub fn api_key_sid(&self) -> Option<&str> {
        match &self.auth {
            Auth::ApiKey { sid, .. } => Some(sid),
            Auth::AuthToken(_) => None,
        }
    }

    /// The API key SID and its secret, when authenticating with an API key.
    pub(crate) fn api_key_parts(&self) -> Option<(&str, &Secret)> {
        match &self.auth {
            Auth::ApiKey { sid, secret } => Some((sid, secret)),
            Auth::AuthToken(_) => None,
        }
    }

    /// The HTTP basic `Authorization` header, marked sensitive.
    pub(crate) fn authorization(&self) -> Result<HeaderValue> {
        match &self.auth {
            Auth::ApiKey { sid, secret } => basic_auth_header(sid, secret.expose()),
            Auth::AuthToken(token) => basic_auth_header(&self.account_sid, token.expose()),
        }
    }
}

impl fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TwilioCredentials");
        d.field("account_sid", &self.account_sid);
        match &self.auth {
            Auth::ApiKey { sid, .. } => d
                .field("api_key_sid", sid)
                .field("api_key_secret", &"[REDACTED]"),
            Auth::AuthToken(_) => d.field("auth_token", &"[REDACTED]"),
        };
        d.finish()
    }
}

/// Twilio's error body: `{"code":60200,"message":"...","more_info":"...","status":400}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

/// Whether an answer is a transient refusal worth retrying: HTTP 5xx, or a 429 that is Twilio's
/// generic "too many requests" (20429 or no code). Other 429s (60202 max check attempts, 60203
/// max sends, 60212 too many concurrent verifications) are final answers and never retried.
pub(crate) fn is_transient(answer: &HttpAnswer) -> bool {
    if answer.status >= 500 {
        return true;
    }
    if answer.status != 429 {
        return false;
    }
    match parse_error_body(&answer.body) {
        Some(body) => matches!(body.code, None | Some(20429)),
        None => true,
    }
}

fn parse_error_body(body: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice(body).ok()
}

/// Builds the error for a non-success answer from `service`.
pub(crate) fn answer_error(service: &'static str, answer: &HttpAnswer) -> Error {
    let body = parse_error_body(&answer.body);
    let code = body.as_ref().and_then(|b| b.code);
    let message = body
        .and_then(|b| b.message)
        .map(|m| scrub(&m))
        .filter(|m| !m.is_empty());
    let status = answer.status;
    let (kind, text): (ErrorKind, &'static str) = match code {
        Some(20003) => (ErrorKind::Unauthorized, "twilio refused the credentials"),
        Some(20404) => (
            ErrorKind::NotFound,
            "no such resource (approved, expired, canceled or never existed)",
        ),
        Some(20429) => (
            ErrorKind::RateLimited {
                retry_after: answer.retry_after,
            },
            "twilio is rate limiting requests",
        ),
        Some(60200) => (ErrorKind::InvalidInput, "twilio refused a parameter"),
        Some(60202) => (ErrorKind::TooManyAttempts, "max check attempts reached"),
        Some(60203) => (ErrorKind::TooManySends, "max send attempts reached"),
        Some(60205) => (
            ErrorKind::Forbidden,
            "sms is not supported by landline phone numbers",
        ),
        Some(60212) => (
            ErrorKind::RateLimited { retry_after: None },
            "too many concurrent verifications for this destination",
        ),
        Some(60221) => (
            ErrorKind::InvalidInput,
            "a check needs To or VerificationSid",
        ),
        Some(60223) => (
            ErrorKind::Unsupported,
            "this delivery channel is disabled for the service",
        ),
        Some(60410) => (ErrorKind::Forbidden, "blocked by twilio fraud guard"),
        Some(60605) => (
            ErrorKind::Forbidden,
            "sending to this region is not allowed by the geo permissions",
        ),
        Some(21211) => (ErrorKind::InvalidInput, "invalid To phone number"),
        Some(21608) => (
            ErrorKind::Forbidden,
            "a trial account can only send to verified numbers",
        ),
        Some(21610) => (ErrorKind::Forbidden, "the recipient opted out of messages"),
        Some(21614) => (ErrorKind::InvalidInput, "the To number cannot receive sms"),
        _ => match status {
            401 => (ErrorKind::Unauthorized, "twilio refused the credentials"),
            403 => (ErrorKind::Forbidden, "twilio refused the operation"),
            404 => (ErrorKind::NotFound, "no such resource"),
            429 => (
                ErrorKind::RateLimited {
                    retry_after: answer.retry_after,
                },
                "twilio is rate limiting requests",
            ),
            _ if code.is_some() => (ErrorKind::Backend, "twilio returned an error"),
            _ if status >= 500 => (ErrorKind::Backend, "twilio had a server error"),
            _ => (
                ErrorKind::Backend,
                "twilio answered with an unexpected status",
            ),
        },
    };
    // Rate limits (20429, 60212) and server errors may pass if tried again later; everything
    // else is a final answer.
    let retryable = matches!(kind, ErrorKind::RateLimited { .. }) || status >= 500;
    Error::new(kind, text)
        .with_remote(RemoteError {
            service,
            status,
            code,
            message,
        })
        .with_retryable(retryable)
}

/// Decodes a success answer's JSON, or a [`Protocol`](ErrorKind::Protocol) error.
pub(crate) fn decode_answer<T: serde::de::DeserializeOwned>(
    service: &'static str,
    answer: &HttpAnswer,
) -> Result<T> {
    serde_json::from_slice(&answer.body).map_err(|e| {
        Error::new(ErrorKind::Protocol, "twilio answered with a malformed body")
            .with_source(e)
            .with_remote(RemoteError {
                service,
                status: answer.status,
                code: None,
                message: None,
            })
    })
}

/// Masks long digit runs (phone numbers Twilio may quote) and truncates to 300 characters.
pub(crate) fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(300));
    let chars: Vec<char> = message.chars().take(300).collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        let run = i - start;
        if run >= 6 {
            out.extend(std::iter::repeat_n('*', run - 2));
            out.extend(chars.iter().skip(i - 2).take(2));
        } else {
            out.extend(chars.iter().skip(start).take(run));
        }
        if let Some(c) = chars.get(i) {
            out.push(*c);
            i += 1;
        }
    }
    out
}

/// Parses an RFC 3339 / ISO 8601 UTC timestamp as Twilio writes them
/// (`2015-07-30T20:00:00Z`, optional fraction, `Z` or `±hh:mm`). `None` if malformed.
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let o = num(i + 1, 2)? * 3_600 + num(i + 4, 2)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// An HTTP basic `Authorization` header value, marked sensitive so it never shows in `Debug`.
pub(crate) fn basic_auth_header(user: &str, password: &[u8]) -> Result<HeaderValue> {
    use base64::Engine;
    let mut raw = Vec::with_capacity(user.len() + 1 + password.len());
    raw.extend_from_slice(user.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(password);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
    zeroize::Zeroize::zeroize(&mut raw);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| Error::config("credentials contain characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpAnswer {
        HttpAnswer {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    #[test]
    fn rfc3339() {
        let t = parse_rfc3339("2015-07-30T20:00:00Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_438_286_400));
        assert_eq!(parse_rfc3339("2015-07-30T22:00:00.123+02:00"), Some(t));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_208_000))
        );
        for bad in [
            "",
            "2015-07-30",
            "2015-13-30T20:00:00Z",
            "2015-07-30T20:00:00",
            "2015-07-30T20:00:00Zx",
            "20x5-07-30T20:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339(&s);
        }

        #[test]
        fn rfc3339_reads_every_well_formed_utc_time(
            y in 1971i64..2400, m in 1i64..=12, d in 1i64..=28, h in 0i64..24, mi in 0i64..60, se in 0i64..60,
        ) {
            let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z");
            let t = parse_rfc3339(&text).unwrap();
            let plus_one = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{se:02}+01:00");
            proptest::prop_assert_eq!(parse_rfc3339(&plus_one).unwrap() + Duration::from_secs(3_600), t);
        }

        #[test]
        fn scrub_never_panics_and_bounds_length(s in "\\PC{0,400}") {
            let out = scrub(&s);
            proptest::prop_assert!(out.chars().count() <= 300);
            let digits_run = out.as_bytes().windows(7).any(|w| w.iter().all(u8::is_ascii_digit));
            proptest::prop_assert!(!digits_run, "{}", out);
        }
    }

    #[test]
    fn scrub_masks_phone_numbers() {
        assert_eq!(
            scrub("The 'To' number +15017122661 is not valid (code 21211)"),
            "The 'To' number +*********61 is not valid (code 21211)"
        );
        assert_eq!(scrub(&"x".repeat(400)).len(), 300);
    }

    #[test]
    fn transient_answers() {
        assert!(is_transient(&answer(503, "")));
        assert!(is_transient(&answer(
            429,
            r#"{"code":20429,"message":"Too many requests","status":429}"#
        )));
        assert!(is_transient(&answer(429, "busy")));
        assert!(!is_transient(&answer(
            429,
            r#"{"code":60202,"message":"Max check attempts reached","status":429}"#
        )));
        assert!(!is_transient(&answer(
            429,
            r#"{"code":60203,"status":429}"#
        )));
        assert!(!is_transient(&answer(400, r#"{"code":60200}"#)));
    }

    #[test]
    fn errors_map_to_kinds_and_keep_unknown_codes() {
        let cases = [
            (401, 20003, ErrorKind::Unauthorized),
            (404, 20404, ErrorKind::NotFound),
            (400, 60200, ErrorKind::InvalidInput),
            (429, 60202, ErrorKind::TooManyAttempts),
            (429, 60203, ErrorKind::TooManySends),
            (403, 60205, ErrorKind::Forbidden),
            (429, 60212, ErrorKind::RateLimited { retry_after: None }),
            (400, 60221, ErrorKind::InvalidInput),
            (400, 60223, ErrorKind::Unsupported),
            (403, 60410, ErrorKind::Forbidden),
            (403, 60605, ErrorKind::Forbidden),
            (429, 20429, ErrorKind::RateLimited { retry_after: None }),
            (400, 21211, ErrorKind::InvalidInput),
            (400, 99999, ErrorKind::Backend),
        ];
        for (status, code, kind) in cases {
            let body = format!(
                r#"{{"code":{code},"message":"m {code}","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
            );
            let err = answer_error("twilio-verify", &answer(status, &body));
            assert_eq!(err.kind(), &kind, "{code}");
            let remote = err.remote().unwrap();
            assert_eq!(remote.code, Some(code));
            assert_eq!(remote.status, status);
            assert_eq!(
                remote.message.as_deref(),
                Some(format!("m {code}").as_str())
            );
        }
        let err = answer_error("twilio-verify", &answer(502, "<html>bad gateway</html>"));
        assert_eq!(err.kind(), &ErrorKind::Backend);
        assert!(err.is_retryable());
        assert_eq!(err.remote().unwrap().code, None);
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = TwilioCredentials::api_key(
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            Secret::from("api-key-secret-value"),
        )
        .unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("api-key-secret-value"), "{shown}");
        assert!(shown.contains("SKbbbb"));
        let c = TwilioCredentials::auth_token(
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Secret::from("auth-token-value"),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("auth-token-value"));
        assert!(TwilioCredentials::auth_token("AC12", Secret::from("x")).is_err());
        assert!(
            TwilioCredentials::api_key(
                "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                Secret::from("")
            )
            .is_err()
        );
    }

    #[test]
    fn from_vars_prefers_api_keys_and_reports_missing_ones() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let c = TwilioCredentials::from_vars(vars(&[
            (ENV_ACCOUNT_SID, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            (ENV_API_KEY_SID, "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
            (ENV_API_KEY_SECRET, "s"),
            (ENV_AUTH_TOKEN, "t"),
        ]))
        .unwrap();
        assert_eq!(c.api_key_sid(), Some("SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
        assert_eq!(
            c.authorization().unwrap().to_str().unwrap(),
            "Basic U0tiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYjpz"
        );
        let c = TwilioCredentials::from_vars(vars(&[
            (ENV_ACCOUNT_SID, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            (ENV_AUTH_TOKEN, "t"),
        ]))
        .unwrap();
        assert_eq!(c.api_key_sid(), None);
        for missing in [
            &[][..],
            &[(ENV_ACCOUNT_SID, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")][..],
            &[
                (ENV_ACCOUNT_SID, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                (ENV_API_KEY_SID, "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
            ][..],
            &[(ENV_ACCOUNT_SID, "bad"), (ENV_AUTH_TOKEN, "t")][..],
        ] {
            let err = TwilioCredentials::from_vars(vars(missing)).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config);
        }
    }

    #[test]
    fn basic_auth_header_is_sensitive() {
        let v = basic_auth_header("SKxx", b"secret").unwrap();
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("U0t4eDpzZWNyZXQ"));
        assert_eq!(v.to_str().unwrap(), "Basic U0t4eDpzZWNyZXQ=");
    }
}
