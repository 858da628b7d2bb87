//! Twilio Verify v2 as an [`OtpProvider`] (feature `twilio`); see [`TwilioVerify`].

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpAnswer, HttpClient, HttpConfig, Idempotency};
use crate::otp::{
    Approved, Channel, CheckCode, CheckOutcome, OtpProvider, StartVerification, Verification,
    VerificationRef, VerificationStatus,
};
use crate::twilio::{
    ENV_VERIFY_SERVICE_SID, TwilioCredentials, answer_error, check_sid, decode_answer, is_sid,
    is_transient, parse_rfc3339,
};

const SERVICE: &str = "twilio-verify";

/// Twilio Verify's public base URL.
pub const VERIFY_BASE_URL: &str = "https://verify.twilio.com";

/// Configuration of a [`TwilioVerify`] backend.
///
/// ```
/// use keyward::Secret;
/// use keyward::otp::TwilioVerifyConfig;
/// use keyward::twilio::TwilioCredentials;
/// let creds = TwilioCredentials::auth_token("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Secret::from("token"))?;
/// let config = TwilioVerifyConfig::new(creds, "VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")?
///     .region("ie1", "dublin");
/// assert_eq!(config.base_url(), "https://verify.dublin.ie1.twilio.com");
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TwilioVerifyConfig {
    credentials: TwilioCredentials,
    service_sid: String,
    base_url: String,
    http: HttpConfig,
}

impl TwilioVerifyConfig {
    /// Verify service `VA…` of the account `credentials` belong to.
    pub fn new(credentials: TwilioCredentials, service_sid: impl Into<String>) -> Result<Self> {
        let service_sid = service_sid.into();
        check_sid("VA", &service_sid)?;
        Ok(TwilioVerifyConfig {
            credentials,
            service_sid,
            base_url: VERIFY_BASE_URL.to_owned(),
            http: HttpConfig::default(),
        })
    }

    /// Credentials from [`TwilioCredentials::from_env`] and the service from
    /// `VERIFY_SERVICE_SID`.
    pub fn from_env() -> Result<Self> {
        TwilioVerifyConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let credentials = TwilioCredentials::from_vars(&var)?;
        let service = var(ENV_VERIFY_SERVICE_SID)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::config("VERIFY_SERVICE_SID is not set"))?;
        TwilioVerifyConfig::new(credentials, service)
    }

    /// Sends requests to `base_url` instead of `https://verify.twilio.com` (a proxy, a test
    /// server). No trailing slash needed. It must be `https://` (checked by
    /// [`TwilioVerify::new`]); a local test server over plain `http://` also needs
    /// [`HttpConfig::allow_http_loopback`].
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Uses Twilio's regional endpoint `https://verify.{edge}.{region}.twilio.com`
    /// (e.g. region `ie1`, edge `dublin`).
    pub fn region(self, region: &str, edge: &str) -> Self {
        self.with_base_url(format!("https://verify.{edge}.{region}.twilio.com"))
    }

    /// Timeouts, retries and body limits.
    pub fn http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The Verify service SID.
    pub fn service_sid(&self) -> &str {
        &self.service_sid
    }

    /// The credentials.
    pub fn credentials(&self) -> &TwilioCredentials {
        &self.credentials
    }

    /// Timeouts, retries and body limits (shared with the TOTP backend).
    pub(crate) fn http_config(&self) -> &HttpConfig {
        &self.http
    }
}

/// The Twilio Verify v2 backend.
///
/// | call | request | retried on |
/// |---|---|---|
/// | [`start`](OtpProvider::start) | `POST /v2/Services/{VA}/Verifications` | 429 with code 20429 (or none) only: the server did not act |
/// | [`check`](OtpProvider::check) | `POST /v2/Services/{VA}/VerificationCheck` | same as start (a repeated check would count twice) |
/// | [`fetch`](OtpProvider::fetch) | `GET /v2/Services/{VA}/Verifications/{VE}` | 20429/429, 5xx, timeouts, connection failures (idempotent) |
/// | [`cancel`](OtpProvider::cancel), [`approve`](TwilioVerify::approve) | `POST …/Verifications/{VE}` with `Status` | same as start (a repeat after success answers 20404) |
///
/// Retries use the [`HttpConfig`] backoff (bounded exponential, jittered, `Retry-After` honoured).
/// 429s that are final answers (60202 max check attempts, 60203 max sends, 60212 too many
/// concurrent verifications) are never retried.
///
/// A wrong code is `Ok(CheckOutcome::Rejected(..))`. Twilio's errors become typed kinds with the
/// Twilio code in [`Error::remote`]: 60200/60221 → `InvalidInput`, 60202 → `TooManyAttempts`,
/// 60203 → `TooManySends`, 60212/20429 → `RateLimited`, 60205/60410/60605 → `Forbidden`,
/// 60223 → `Unsupported`, 20003 → `Unauthorized`, 20404 → `NotFound`; other codes are
/// `Backend` with their number and message.
///
/// Twilio addresses fetch, cancel and approve by sid only, so those return
/// [`Unsupported`](ErrorKind::Unsupported) for [`VerificationRef::To`].
pub struct TwilioVerify {
    http: HttpClient,
    config: TwilioVerifyConfig,
    auth: HeaderValue,
}

impl fmt::Debug for TwilioVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `auth` is a sensitive header value and prints as `Sensitive`; the config hides secrets.
        f.debug_struct("TwilioVerify")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Verification and check JSON (the fields keyward uses). `Debug` masks the destination.
#[derive(Deserialize)]
struct VerificationJson {
    sid: String,
    to: String,
    channel: Option<String>,
    status: String,
    valid: Option<bool>,
    #[serde(default)]
    send_code_attempts: Option<Vec<serde_json::Value>>,
    date_created: Option<String>,
    date_updated: Option<String>,
}

impl std::fmt::Debug for VerificationJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationJson")
            .field("sid", &self.sid)
            .field("to", &crate::normalize::mask(&self.to))
            .field("channel", &self.channel)
            .field("status", &self.status)
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

impl VerificationJson {
    fn into_verification(self) -> Verification {
        Verification {
            status: VerificationStatus::parse(&self.status),
            valid: self.valid.unwrap_or(false),
            channel: Channel::parse(self.channel.as_deref().unwrap_or("")),
            send_attempts: self
                .send_code_attempts
                .map(|a| u32::try_from(a.len()).unwrap_or(u32::MAX))
                .unwrap_or(0),
            created_at: self.date_created.as_deref().and_then(parse_rfc3339),
            updated_at: self.date_updated.as_deref().and_then(parse_rfc3339),
            expires_at: None,
            sid: self.sid,
            to: self.to,
        }
    }
}

impl TwilioVerify {
    /// A backend with this configuration. Fails with [`Config`](ErrorKind::Config) for a base
    /// URL that is not `https://` (plain `http://` to a loopback host needs
    /// [`HttpConfig::allow_http_loopback`]).
    pub fn new(config: TwilioVerifyConfig) -> Result<Self> {
        Ok(TwilioVerify {
            http: HttpClient::new(config.http.clone(), &config.base_url)?,
            auth: config.credentials.authorization()?,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &TwilioVerifyConfig {
        &self.config
    }

    /// Marks a pending verification approved without a code (`Status=approved`), for flows
    /// where the host proved possession another way (Twilio's silent network auth, push).
    /// Not retried except on 20429.
    pub async fn approve(&self, sid: &str) -> Result<Approved> {
        let v = self.update_status(sid, "approved").await?;
        crate::backend::approved(v).map_err(|_| {
            Error::new(
                ErrorKind::Protocol,
                "twilio did not report the verification approved",
            )
        })
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/v2/Services/{}/{tail}",
            self.config.base_url, self.config.service_sid
        )
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<HttpAnswer> {
        self.http
            .send(
                Idempotency::NotIdempotent,
                |c| {
                    c.post(url)
                        .header(AUTHORIZATION, self.auth.clone())
                        .form(form)
                },
                is_transient,
            )
            .await
    }

    async fn verification(&self, answer: HttpAnswer) -> Result<Verification> {
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(SERVICE, &answer));
        }
        let json: VerificationJson = decode_answer(SERVICE, &answer)?;
        Ok(json.into_verification())
    }

    fn sid_of(target: &VerificationRef) -> Result<&str> {
        match target {
            VerificationRef::Sid(sid) if is_sid("VE", sid) => Ok(sid),
            VerificationRef::Sid(_) => Err(Error::invalid_input(
                "a verification sid is VE followed by 32 hex digits",
            )),
            VerificationRef::To(_) => Err(Error::new(
                ErrorKind::Unsupported,
                "twilio verify addresses fetch, cancel and approve by verification sid only",
            )),
        }
    }

    async fn update_status(&self, sid: &str, status: &str) -> Result<Verification> {
        let sid = Self::sid_of(&VerificationRef::Sid(sid.to_owned()))?.to_owned();
        let url = self.url(&format!("Verifications/{sid}"));
        let answer = self.post(&url, &[("Status", status)]).await?;
        self.verification(answer).await
    }
}

/// The form of a start request, every optional parameter under its Twilio name, in the order
/// of Twilio's API reference. JSON-valued parameters are written as JSON text.
fn start_form(request: &StartVerification, to: &str) -> Result<Vec<(&'static str, String)>> {
    let mut form: Vec<(&'static str, String)> = vec![
        ("To", to.to_owned()),
        ("Channel", request.channel.as_str().to_owned()),
    ];
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(v) = value {
            form.push((name, v));
        }
    };
    push("CustomFriendlyName", request.custom_friendly_name.clone());
    push("CustomMessage", request.custom_message.clone());
    if let Some(digits) = &request.send_digits {
        let ok = !digits.is_empty()
            && digits.len() <= 32
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'#' | b'*' | b'w' | b'W'));
        if !ok {
            return Err(Error::invalid_input(
                "send digits are up to 32 of 0-9, #, * and w",
            ));
        }
    }
    push("SendDigits", request.send_digits.clone());
    push("Locale", request.locale.clone());
    let custom = match &request.custom_code {
        Some(code) => Some(check_code_shape(code.expose())?.to_owned()),
        None => None,
    };
    push("CustomCode", custom);
    push("Amount", request.amount.clone());
    push("Payee", request.payee.clone());
    let object = |pairs: &[(String, String)]| {
        (!pairs.is_empty()).then(|| crate::otp::json_object(pairs).to_string())
    };
    push("RateLimits", object(&request.rate_limits));
    push(
        "ChannelConfiguration",
        request.channel_configuration.as_ref().map(|c| c.to_json()),
    );
    push("AppHash", request.app_hash.clone());
    if let Some(sid) = &request.template_sid
        && !is_sid("HJ", sid)
    {
        return Err(Error::invalid_input(
            "a template sid is HJ followed by 32 hex digits",
        ));
    }
    push("TemplateSid", request.template_sid.clone());
    push(
        "TemplateCustomSubstitutions",
        object(&request.template_custom_substitutions),
    );
    push("DeviceIp", request.device_ip.map(|ip| ip.to_string()));
    push(
        "EnableSnaClientToken",
        request.enable_sna_client_token.map(|b| b.to_string()),
    );
    push(
        "RiskCheck",
        request
            .risk_check
            .map(|on| if on { "enable" } else { "disable" }.to_owned()),
    );
    push("Tags", object(&request.tags));
    Ok(form)
}

fn check_code_shape(code: &[u8]) -> Result<&str> {
    let text = std::str::from_utf8(code)
        .ok()
        .filter(|c| (4..=10).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    text.ok_or_else(|| Error::invalid_input("a code is 4 to 10 letters or digits"))
}

#[async_trait]
impl OtpProvider for TwilioVerify {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.start", skip_all, fields(backend = "twilio", channel = %request.channel, to = %crate::trace::masked(&request.to)), err(Display, level = "info")))]
    async fn start(&self, request: StartVerification) -> Result<Verification> {
        let to = request.channel.normalize_destination(&request.to)?;
        let form = start_form(&request, &to)?;
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self.post(&self.url("Verifications"), &form).await?;
        self.verification(answer).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.check", skip_all, fields(backend = "twilio", target = ?request.target), err(Display, level = "info")))]
    async fn check(&self, request: CheckCode) -> Result<CheckOutcome> {
        let code = if request.is_sna() {
            None
        } else {
            Some(check_code_shape(request.code.expose())?)
        };
        let to;
        let target = match &request.target {
            VerificationRef::To(raw) => {
                to = Channel::Auto.normalize_destination(raw)?;
                ("To", to.as_str())
            }
            VerificationRef::Sid(_) => ("VerificationSid", Self::sid_of(&request.target)?),
        };
        let mut form = vec![target];
        if let Some(code) = code {
            form.push(("Code", code));
        }
        if let Some(amount) = &request.amount {
            form.push(("Amount", amount));
        }
        if let Some(payee) = &request.payee {
            form.push(("Payee", payee));
        }
        if let Some(token) = &request.sna_client_token {
            let token = token
                .expose_str()
                .ok_or_else(|| Error::invalid_input("an sna client token is text"))?;
            form.push(("SnaClientToken", token));
        }
        let answer = self.post(&self.url("VerificationCheck"), &form).await?;
        let v = self.verification(answer).await?;
        crate::trace::code_rejected(if v.status == VerificationStatus::Approved && v.valid {
            crate::backend::approved(v).map(CheckOutcome::Approved)
        } else {
            Ok(CheckOutcome::Rejected(v))
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.fetch", skip_all, fields(backend = "twilio", target = ?target), err(Display, level = "info")))]
    async fn fetch(&self, target: VerificationRef) -> Result<Verification> {
        let sid = Self::sid_of(&target)?;
        let url = self.url(&format!("Verifications/{sid}"));
        let answer = self
            .http
            .send(
                Idempotency::Idempotent,
                |c| c.get(&url).header(AUTHORIZATION, self.auth.clone()),
                is_transient,
            )
            .await?;
        self.verification(answer).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.cancel", skip_all, fields(backend = "twilio", target = ?target), err(Display, level = "info")))]
    async fn cancel(&self, target: VerificationRef) -> Result<Verification> {
        let sid = Self::sid_of(&target)?;
        self.update_status(sid, "canceled").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_json_debug_masks_the_destination() {
        let json: VerificationJson = serde_json::from_str(
            r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","status":"pending"}"#,
        )
        .unwrap();
        let shown = format!("{json:?}");
        assert!(!shown.contains("5017122"), "{shown}");
        assert!(shown.contains("61"));
    }
}
