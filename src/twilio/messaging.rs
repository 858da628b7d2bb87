//! A [`CodeSender`] that delivers codes by SMS (or WhatsApp) through Twilio Programmable
//! Messaging (feature `twilio`): `POST /2010-04-01/Accounts/{AC}/Messages.json`.
//!
//! Sending is not idempotent (a repeat sends a second message), so only a 429 that proves
//! Twilio did not act (code 20429 or none) is retried.

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use crate::error::{Error, ErrorKind, RemoteError, Result};
use crate::http::{HttpClient, HttpConfig, Idempotency};
use crate::normalize;
use crate::otp::{Channel, CodeSender, OutgoingMessage};
use crate::twilio::{
    TwilioCredentials, answer_error, check_sid, decode_answer, is_transient, scrub,
};

const SERVICE: &str = "twilio-messaging";

/// Twilio's REST API base URL.
pub const TWILIO_API_BASE_URL: &str = "https://api.twilio.com";

/// Who messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsFrom {
    /// A Twilio phone number (E.164), short code or alphanumeric sender id: the `From` field.
    Number(String),
    /// A Messaging Service (`MG…`) that picks the sender: the `MessagingServiceSid` field.
    MessagingService(String),
}

/// Configuration of a [`TwilioSmsSender`].
///
/// ```
/// use keyward::Secret;
/// use keyward::otp::{SmsFrom, TwilioSmsConfig};
/// use keyward::twilio::TwilioCredentials;
/// let creds = TwilioCredentials::auth_token("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Secret::from("token"))?;
/// let config = TwilioSmsConfig::new(creds, SmsFrom::Number("+15005550006".into()))?;
/// assert_eq!(config.base_url(), "https://api.twilio.com");
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TwilioSmsConfig {
    credentials: TwilioCredentials,
    from: SmsFrom,
    base_url: String,
    http: HttpConfig,
}

impl TwilioSmsConfig {
    /// Messages from `from`, sent with `credentials`.
    pub fn new(credentials: TwilioCredentials, from: SmsFrom) -> Result<Self> {
        match &from {
            SmsFrom::MessagingService(sid) => check_sid("MG", sid)?,
            SmsFrom::Number(n) => {
                let ok = (1..=20).contains(&n.chars().count())
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == ' ');
                if !ok {
                    return Err(Error::config(
                        "the sms sender must be a phone number, short code or alphanumeric id",
                    ));
                }
            }
        }
        Ok(TwilioSmsConfig {
            credentials,
            from,
            base_url: TWILIO_API_BASE_URL.to_owned(),
            http: HttpConfig::default(),
        })
    }

    /// Sends requests to `base_url` instead of `https://api.twilio.com`. It must be `https://`
    /// (checked by [`TwilioSmsSender::new`]).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Uses the regional endpoint `https://api.{edge}.{region}.twilio.com`.
    pub fn region(self, region: &str, edge: &str) -> Self {
        self.with_base_url(format!("https://api.{edge}.{region}.twilio.com"))
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
}

/// Delivers [`OutgoingMessage`]s over Twilio Programmable Messaging: channel `sms` as a text,
/// `whatsapp` as a WhatsApp message (with [`SmsFrom::Number`]); other channels are
/// [`Unsupported`](ErrorKind::Unsupported). The body is sent as rendered; Twilio's answer
/// `failed`/`undelivered` or an `error_code` becomes a [`Backend`](ErrorKind::Backend) error.
pub struct TwilioSmsSender {
    http: HttpClient,
    config: TwilioSmsConfig,
    auth: HeaderValue,
}

impl fmt::Debug for TwilioSmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSmsSender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct MessageJson {
    sid: Option<String>,
    status: Option<String>,
    error_code: Option<u32>,
    error_message: Option<String>,
}

impl TwilioSmsSender {
    /// A sender with this configuration. Fails with [`Config`](ErrorKind::Config) for a base
    /// URL that is not `https://` (plain `http://` to a loopback host needs
    /// [`HttpConfig::allow_http_loopback`](crate::http::HttpConfig::allow_http_loopback)).
    pub fn new(config: TwilioSmsConfig) -> Result<Self> {
        Ok(TwilioSmsSender {
            http: HttpClient::new(config.http.clone(), &config.base_url)?,
            auth: config.credentials.authorization()?,
            config,
        })
    }
}

#[async_trait]
impl CodeSender for TwilioSmsSender {
    async fn send(&self, message: &OutgoingMessage) -> Result<()> {
        let to = normalize::phone_e164(&message.to)?;
        let (to, from) = match (&message.channel, &self.config.from) {
            (Channel::Sms, SmsFrom::Number(n)) => (to, ("From", n.clone())),
            (Channel::Sms, SmsFrom::MessagingService(s)) => {
                (to, ("MessagingServiceSid", s.clone()))
            }
            (Channel::Whatsapp, SmsFrom::Number(n)) => {
                (format!("whatsapp:{to}"), ("From", format!("whatsapp:{n}")))
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "the twilio sms sender delivers sms, and whatsapp from a number",
                ));
            }
        };
        let body = message
            .body
            .expose_str()
            .ok_or_else(|| Error::invalid_input("message body is not text"))?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.base_url,
            self.config.credentials.account_sid()
        );
        let form = [
            ("To", to.as_str()),
            (from.0, from.1.as_str()),
            ("Body", body),
        ];
        let answer = self
            .http
            .send(
                Idempotency::NotIdempotent,
                |c| {
                    c.post(&url)
                        .header(AUTHORIZATION, self.auth.clone())
                        .form(&form)
                },
                is_transient,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(SERVICE, &answer));
        }
        let json: MessageJson = decode_answer(SERVICE, &answer)?;
        let failed = matches!(json.status.as_deref(), Some("failed" | "undelivered"));
        if json.sid.is_none() || failed || json.error_code.is_some() {
            return Err(
                Error::new(ErrorKind::Backend, "twilio did not accept the message").with_remote(
                    RemoteError {
                        service: SERVICE,
                        status: answer.status,
                        code: json.error_code,
                        message: json.error_message.map(|m| scrub(&m)),
                    },
                ),
            );
        }
        Ok(())
    }
}
