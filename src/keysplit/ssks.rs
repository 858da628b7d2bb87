//! [`SsksClient`]: Seald's SSKS over HTTP, back endpoint (`challenge_send`, app credentials) and
//! front endpoints (`challenge_validate`, `push`, `search`, session credentials).
//!
//! Retries go through the shared HTTP policy: `challenge_send` sends an email or SMS and
//! `challenge_validate` counts an attempt, so both are retried only on HTTP 429 (the server did
//! not act); `push` (same blob, same effect) and `search` are also retried on transport errors
//! and 5xx answers.
//!
//! | status | kind |
//! |---|---|
//! | 400 | [`InvalidInput`](crate::ErrorKind::InvalidInput) |
//! | 401 | [`Unauthorized`](crate::ErrorKind::Unauthorized) |
//! | 403 | [`Rejected`](crate::ErrorKind::Rejected) (wrong challenge), [`Unauthorized`](crate::ErrorKind::Unauthorized) (bad app credentials), [`Expired`](crate::ErrorKind::Expired), [`TooManyAttempts`](crate::ErrorKind::TooManyAttempts), else [`Forbidden`](crate::ErrorKind::Forbidden) |
//! | 404 | [`NotFound`](crate::ErrorKind::NotFound) (unknown session, or no identity stored) |
//! | 406 | [`RateLimited`](crate::ErrorKind::RateLimited) for `SMSQuotaFailed` (the challenge quota is spent), else [`Config`](crate::ErrorKind::Config) (`fake_otp` sent to a production server) |
//! | 429 | [`RateLimited`](crate::ErrorKind::RateLimited) with `Retry-After` |
//! | 5xx | [`Backend`](crate::ErrorKind::Backend) (retryable) |
//! | other | [`Protocol`](crate::ErrorKind::Protocol) |

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::{AuthFactor, ChallengeRequest, ChallengeSession, KeySplitStore, SessionId, StoredBlob};
use crate::error::{Error, ErrorKind, RemoteError, Result};
use crate::http::{HttpAnswer, HttpClient, HttpConfig, Idempotency};
use crate::secret::Secret;

/// Seald's production SSKS.
pub const PRODUCTION_URL: &str = "https://ssks.seald.io";
/// Seald's staging SSKS (accepts `fake_otp`).
pub const STAGING_URL: &str = "https://ssks.staging-0.seald.io";

/// The `detail` SSKS answers with a 403 for a wrong challenge or wrong app credentials.
pub const INCORRECT_CREDENTIALS: &str = "Incorrect authentication credentials.";

/// The error SSKS answers (HTTP 406) when its SMS or email quota is spent.
pub const SMS_QUOTA_FAILED: &str = "SMSQuotaFailed";

/// What the client sends in `X-SEALD-VERSION` on the front endpoints, as Seald's SDKs do
/// (the JS SDK sends `sdk-js/node/0.25.0`).
pub const SEALD_VERSION: &str = concat!("keyward-rust/", env!("CARGO_PKG_VERSION"));

const VERSION_HEADER: HeaderName = HeaderName::from_static("x-seald-version");
const APP_ID_HEADER: HeaderName = HeaderName::from_static("x-seald-appid");
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-seald-apikey");
const SESSION_HEADER: HeaderName = HeaderName::from_static("x-seald-session");

/// Where and how to reach SSKS.
#[derive(Clone)]
#[non_exhaustive]
pub struct SsksConfig {
    /// Base URL, without the `/tmr/...` path.
    pub base_url: String,
    /// The Seald app id (`X-SEALD-APPID`).
    pub app_id: String,
    /// The backend's SSKS API key (`X-SEALD-APIKEY`); needed only for `challenge_send`.
    pub api_key: Option<Secret>,
    /// Whether the server is a test server, the only kind `fake_otp` may be sent to.
    pub test_server: bool,
    /// Timeouts, retries, answer size limit.
    pub http: HttpConfig,
}

impl SsksConfig {
    /// A server at `base_url` for `app_id`.
    pub fn new(base_url: impl Into<String>, app_id: impl Into<String>) -> Self {
        SsksConfig {
            base_url: base_url.into(),
            app_id: app_id.into(),
            api_key: None,
            test_server: false,
            http: HttpConfig::default(),
        }
    }

    /// Seald's production SSKS.
    pub fn production(app_id: impl Into<String>) -> Self {
        SsksConfig::new(PRODUCTION_URL, app_id)
    }

    /// Seald's staging SSKS, marked as a test server.
    pub fn staging(app_id: impl Into<String>) -> Self {
        SsksConfig::new(STAGING_URL, app_id).test_server(true)
    }

    /// Sets the backend API key.
    pub fn api_key(mut self, key: impl Into<Secret>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Marks the server as a test server (allows `fake_otp`).
    pub fn test_server(mut self, test: bool) -> Self {
        self.test_server = test;
        self
    }

    /// Sets the HTTP policy.
    pub fn http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }
}

impl fmt::Debug for SsksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsksConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("test_server", &self.test_server)
            .field("http", &self.http)
            .finish()
    }
}

/// Seald's SSKS over HTTP; see the [module docs](self). Implements [`KeySplitStore`]
/// (`open_session` is the back call and needs the API key).
#[derive(Debug, Clone)]
pub struct SsksClient {
    http: HttpClient,
    config: SsksConfig,
    base: String,
    app_id: HeaderValue,
}

#[derive(Serialize)]
struct ChallengeSendBody<'a> {
    create_user: bool,
    user_id: &'a str,
    auth_factor: &'a AuthFactor,
    template: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    force_auth: bool,
    fake_otp: bool,
}

#[derive(Deserialize)]
struct ChallengeSendAnswer {
    session_id: String,
    must_authenticate: bool,
}

#[derive(Serialize)]
struct ValidateBody<'a> {
    challenge: &'a str,
    auth_factor: &'a AuthFactor,
}

#[derive(Deserialize)]
struct ValidateAnswer {
    new_id: String,
}

#[derive(Serialize)]
struct PushBody<'a> {
    data_b64: &'a str,
    auth_factor: &'a AuthFactor,
}

#[derive(Deserialize)]
struct PushAnswer {
    id: String,
}

#[derive(Deserialize)]
struct SearchAnswer {
    data_b64: String,
    authenticated: bool,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    detail: Option<String>,
    model: Option<String>,
    code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ChallengeSend,
    ChallengeValidate,
    Push,
    Search,
}

impl SsksClient {
    /// A client for `config`. Fails with [`Config`](crate::ErrorKind::Config) on a base URL
    /// that is not `https://` (plain `http://` only to a loopback host with
    /// [`HttpConfig::allow_http_loopback`], for a local test server) or an app id that cannot be
    /// a header.
    pub fn new(config: SsksConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        if config.app_id.is_empty() {
            return Err(Error::config("ssks app id must not be empty"));
        }
        let app_id = HeaderValue::from_str(&config.app_id)
            .map_err(|_| Error::config("ssks app id cannot be sent as a header"))?;
        Ok(SsksClient {
            http: HttpClient::new(config.http.clone(), &base)?,
            config,
            base,
            app_id,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SsksConfig {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn json_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(APP_ID_HEADER, self.app_id.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
    }

    fn session_headers(&self, session: &SessionId) -> Result<HeaderMap> {
        let mut headers = self.json_headers();
        let mut value = HeaderValue::from_str(session.expose())
            .map_err(|_| Error::invalid_input("session id cannot be sent as a header"))?;
        value.set_sensitive(true);
        headers.insert(SESSION_HEADER, value);
        headers.insert(VERSION_HEADER, HeaderValue::from_static(SEALD_VERSION));
        Ok(headers)
    }

    async fn post(
        &self,
        endpoint: Endpoint,
        path: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let idempotency = match endpoint {
            Endpoint::ChallengeSend | Endpoint::ChallengeValidate => Idempotency::NotIdempotent,
            Endpoint::Push | Endpoint::Search => Idempotency::Idempotent,
        };
        let url = self.url(path);
        let result = self
            .http
            .send(
                idempotency,
                |c| {
                    let request = c.post(&url).headers(headers.clone());
                    match &body {
                        Some(b) => request.body(b.clone()),
                        None => request,
                    }
                },
                |answer| answer.status == 429 || answer.status >= 500,
            )
            .await;
        if let Some(mut b) = body {
            b.zeroize();
        }
        let answer = result?;
        if answer.status == 200 || answer.status == 201 {
            Ok(answer.body)
        } else {
            Err(answer_error(endpoint, &answer))
        }
    }

    /// `POST /tmr/back/challenge_send/`: opens a session and sends a challenge when needed.
    ///
    /// The factor is normalized and the request checked first; `fake_otp` to a server not
    /// configured as a test server and a missing API key are [`Config`](crate::ErrorKind::Config)
    /// errors, all before any request is sent.
    pub async fn challenge_send(&self, mut request: ChallengeRequest) -> Result<ChallengeSession> {
        request.auth_factor = request.auth_factor.normalized()?;
        request.validate()?;
        if request.fake_otp && !self.config.test_server {
            return Err(Error::config(
                "fake_otp may only be sent to a server configured as a test server",
            ));
        }
        let Some(api_key) = &self.config.api_key else {
            return Err(Error::config("challenge_send needs the ssks api key"));
        };
        let mut key = HeaderValue::from_bytes(api_key.expose())
            .map_err(|_| Error::config("ssks api key cannot be sent as a header"))?;
        key.set_sensitive(true);
        let mut headers = self.json_headers();
        headers.insert(API_KEY_HEADER, key);
        let body = serde_json::to_vec(&ChallengeSendBody {
            create_user: request.create_user,
            user_id: &request.user_id,
            auth_factor: &request.auth_factor,
            template: &request.template,
            subject: request.subject.as_deref(),
            force_auth: request.force_auth,
            fake_otp: request.fake_otp,
        })
        .map_err(|_| Error::invalid_input("cannot encode the request"))?;
        let answer = self
            .post(
                Endpoint::ChallengeSend,
                "/tmr/back/challenge_send/",
                headers,
                Some(body),
            )
            .await?;
        let parsed: ChallengeSendAnswer = parse(&answer)?;
        Ok(ChallengeSession {
            session_id: SessionId::new(parsed.session_id),
            must_authenticate: parsed.must_authenticate,
        })
    }
}

#[async_trait]
impl KeySplitStore for SsksClient {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.ssks.open_session", skip_all, fields(backend = "http", user_id = %crate::trace::masked(&request.user_id), auth_factor = ?request.auth_factor), err(Display, level = "info")))]
    async fn open_session(&self, request: ChallengeRequest) -> Result<ChallengeSession> {
        self.challenge_send(request).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.ssks.validate_challenge", skip_all, fields(backend = "http", auth_factor = ?auth_factor), err(Display, level = "info")))]
    async fn validate_challenge(
        &self,
        session: &SessionId,
        challenge: &Secret,
        auth_factor: &AuthFactor,
    ) -> Result<SessionId> {
        let challenge = challenge
            .expose_str()
            .ok_or_else(|| Error::invalid_input("the challenge must be text"))?;
        if challenge.is_empty() {
            return Err(Error::invalid_input("the challenge must not be empty"));
        }
        let auth_factor = auth_factor.normalized()?;
        let body = serde_json::to_vec(&ValidateBody {
            challenge,
            auth_factor: &auth_factor,
        })
        .map_err(|_| Error::invalid_input("cannot encode the request"))?;
        let answer = self
            .post(
                Endpoint::ChallengeValidate,
                "/tmr/front/challenge_validate/",
                self.session_headers(session)?,
                Some(body),
            )
            .await?;
        let parsed: ValidateAnswer = parse(&answer)?;
        Ok(SessionId::new(parsed.new_id))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.ssks.push", skip_all, fields(backend = "http", auth_factor = ?auth_factor, bytes = data_b64.len()), err(Display, level = "info")))]
    async fn push(
        &self,
        session: &SessionId,
        auth_factor: &AuthFactor,
        data_b64: &str,
    ) -> Result<String> {
        let auth_factor = auth_factor.normalized()?;
        let body = serde_json::to_vec(&PushBody {
            data_b64,
            auth_factor: &auth_factor,
        })
        .map_err(|_| Error::invalid_input("cannot encode the request"))?;
        let answer = self
            .post(
                Endpoint::Push,
                "/tmr/front/push/",
                self.session_headers(session)?,
                Some(body),
            )
            .await?;
        let parsed: PushAnswer = parse(&answer)?;
        Ok(parsed.id)
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(
            name = "keyward.ssks.search",
            skip_all,
            fields(backend = "http"),
            err(Display, level = "info")
        )
    )]
    async fn search(&self, session: &SessionId) -> Result<StoredBlob> {
        let answer = self
            .post(
                Endpoint::Search,
                "/tmr/front/search/",
                self.session_headers(session)?,
                None,
            )
            .await?;
        let parsed: SearchAnswer = parse(&answer)?;
        Ok(StoredBlob {
            data_b64: parsed.data_b64,
            authenticated: parsed.authenticated,
        })
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|_| Error::new(ErrorKind::Protocol, "ssks answered with an unexpected body"))
}

fn answer_error(endpoint: Endpoint, answer: &HttpAnswer) -> Error {
    let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    let detail = body
        .detail
        .clone()
        .map(|d| d.chars().take(300).collect::<String>());
    let lower = detail.as_deref().unwrap_or_default().to_ascii_lowercase();
    let credentials = detail.as_deref() == Some(INCORRECT_CREDENTIALS);
    let (kind, message, retryable) = match answer.status {
        400 => (
            ErrorKind::InvalidInput,
            "ssks refused the request as malformed",
            false,
        ),
        401 => (
            ErrorKind::Unauthorized,
            "ssks refused the app credentials",
            false,
        ),
        403 if lower.contains("expired") => {
            (ErrorKind::Expired, "the ssks challenge has expired", false)
        }
        403 if lower.contains("too many") => (
            ErrorKind::TooManyAttempts,
            "too many challenge attempts for this session",
            false,
        ),
        403 if credentials && endpoint == Endpoint::ChallengeValidate => {
            (ErrorKind::Rejected, "incorrect challenge", false)
        }
        403 if credentials => (
            ErrorKind::Unauthorized,
            "ssks refused the credentials",
            false,
        ),
        403 => (ErrorKind::Forbidden, "ssks refused the operation", false),
        404 if endpoint == Endpoint::Search && body.model.as_deref() == Some("TMRKey") => (
            ErrorKind::NotFound,
            "no identity is stored for this user",
            false,
        ),
        404 => (ErrorKind::NotFound, "unknown ssks session or user", false),
        406 if body.code.as_deref() == Some(SMS_QUOTA_FAILED)
            || detail.as_deref() == Some(SMS_QUOTA_FAILED)
            || body.model.as_deref() == Some(SMS_QUOTA_FAILED) =>
        {
            (
                ErrorKind::RateLimited {
                    retry_after: answer.retry_after,
                },
                "ssks's challenge quota is spent",
                false,
            )
        }
        406 => (
            ErrorKind::Config,
            "ssks refused fake_otp: not a test server",
            false,
        ),
        429 => (
            ErrorKind::RateLimited {
                retry_after: answer.retry_after,
            },
            "ssks rate limit",
            true,
        ),
        500..=599 => (ErrorKind::Backend, "ssks server error", true),
        _ => (
            ErrorKind::Protocol,
            "ssks answered with an unexpected status",
            false,
        ),
    };
    Error::new(kind, message)
        .with_retryable(retryable)
        .with_remote(RemoteError {
            service: "ssks",
            status: answer.status,
            code: None,
            message: detail,
        })
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
    fn status_mapping() {
        let cred = r#"{"detail":"Incorrect authentication credentials."}"#;
        let cases = [
            (Endpoint::ChallengeValidate, 403, cred, ErrorKind::Rejected),
            (Endpoint::ChallengeSend, 403, cred, ErrorKind::Unauthorized),
            (
                Endpoint::Push,
                403,
                r#"{"detail":"nope"}"#,
                ErrorKind::Forbidden,
            ),
            (
                Endpoint::Search,
                404,
                r#"{"model":"TMRKey"}"#,
                ErrorKind::NotFound,
            ),
            (Endpoint::ChallengeSend, 406, "", ErrorKind::Config),
            (
                Endpoint::ChallengeSend,
                406,
                r#"{"detail":"SMSQuotaFailed"}"#,
                ErrorKind::RateLimited { retry_after: None },
            ),
            (Endpoint::ChallengeSend, 401, "", ErrorKind::Unauthorized),
            (Endpoint::Push, 400, "", ErrorKind::InvalidInput),
            (Endpoint::Push, 502, "<html>", ErrorKind::Backend),
            (Endpoint::Push, 302, "", ErrorKind::Protocol),
            (
                Endpoint::ChallengeSend,
                429,
                "",
                ErrorKind::RateLimited { retry_after: None },
            ),
        ];
        for (endpoint, status, body, kind) in cases {
            let err = answer_error(endpoint, &answer(status, body));
            assert_eq!(err.kind(), &kind, "{endpoint:?} {status}");
            assert_eq!(err.remote().map(|r| r.status), Some(status));
        }
    }

    #[test]
    fn config_debug_hides_the_api_key() {
        let config = SsksConfig::production("app").api_key("ssks-api-key-very-secret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("ssks-api-key-very-secret"), "{shown}");
        let client = SsksClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains("ssks-api-key-very-secret"));
        assert!(SsksClient::new(SsksConfig::new("ftp://x", "app")).is_err());
    }
}
