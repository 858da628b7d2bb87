//! Shared HTTP plumbing for the remote backends: one reqwest client (rustls, no system OpenSSL),
//! timeouts, bounded exponential backoff with jitter, bounded answer sizes, and mapping of
//! transport failures to [`ErrorKind`]s without leaking URLs' credentials or bodies.
//!
//! # Where credentials may go
//! - **No redirect is ever followed.** A 3xx answer is a [`Protocol`](ErrorKind::Protocol)
//!   error: following one would re-send API keys, session ids, phone numbers and codes to a host
//!   the backend was never configured for (reqwest strips only `Authorization` and cookies on a
//!   cross-host redirect, not `X-SEALD-APIKEY`, and it re-posts form bodies on 307/308).
//! - **Base URLs must be `https://`.** Plain `http://` is accepted only for a loopback host
//!   (`localhost`, `127.0.0.0/8`, `::1`) and only with
//!   [`HttpConfig::allow_http_loopback`] set: a test server on this machine. Anything else is a
//!   [`Config`](ErrorKind::Config) error when the backend is built, before any request.

#![cfg_attr(
    not(any(feature = "twilio", feature = "ssks")),
    expect(
        dead_code,
        reason = "the Twilio and SSKS backends send requests that must not be repeated; with only \
                  the metadata fetcher (feature mds) or the internal feature http, part of the \
                  plumbing has no caller"
    )
)]

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::{Error, ErrorKind, Result};
use crate::rng::{SecureRandom, SystemRandom, uniform_below};

/// Timeouts and retry policy of an HTTP backend.
///
/// Start from [`HttpConfig::default`] and change what you need with the setters (the struct is
/// `#[non_exhaustive]`, so fields can be added without breaking callers):
///
/// ```
/// use std::time::Duration;
/// use keyward::http::HttpConfig;
/// let config = HttpConfig::default()
///     .request_timeout(Duration::from_secs(5))
///     .max_retries(1)
///     .backoff(Duration::from_millis(50), Duration::from_secs(1));
/// assert_eq!(config.request_timeout, Duration::from_secs(5));
/// assert_eq!(config.max_backoff, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, answer included.
    pub request_timeout: Duration,
    /// Retries after the first attempt, for requests that are safe to retry.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry.
    pub initial_backoff: Duration,
    /// Longest backoff delay (and longest `Retry-After` honoured).
    pub max_backoff: Duration,
    /// Largest answer body accepted.
    pub max_body_bytes: usize,
    /// Accept a plain `http://` base URL whose host is a loopback address (`localhost`,
    /// `127.0.0.0/8`, `::1`): for test servers on this machine only. Default `false`: every
    /// base URL must be `https://`.
    pub allow_http_loopback: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            allow_http_loopback: false,
        }
    }
}

impl HttpConfig {
    /// Sets the time allowed to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the time allowed for a whole request, answer included (default 15 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the retries after the first attempt, for requests safe to retry (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the first backoff delay (doubling each retry) and the longest one, which also caps
    /// the `Retry-After` honoured (default 200 ms and 5 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the largest answer body accepted (default 1 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`allow_http_loopback`](HttpConfig::allow_http_loopback): plain `http://` to a
    /// loopback host, for tests against a local server.
    ///
    /// ```
    /// use keyward::http::HttpConfig;
    /// let config = HttpConfig::default().allow_http_loopback(true);
    /// assert!(config.allow_http_loopback);
    /// ```
    pub fn allow_http_loopback(mut self, allow: bool) -> Self {
        self.allow_http_loopback = allow;
        self
    }
}

/// Checks a backend's base URL against the policy in the [module docs](self): `https://`, or
/// `http://` to a loopback host when `config` allows it. No credentials in the URL.
pub(crate) fn check_base_url(base_url: &str, config: &HttpConfig) -> Result<()> {
    let url = reqwest::Url::parse(base_url)
        .map_err(|_| Error::config("the base url is not a valid absolute url"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "the base url must not carry credentials; configure them separately",
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = url.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                Err(Error::config(
                    "the base url must be https: plain http would send credentials in clear",
                ))
            } else if !config.allow_http_loopback {
                Err(Error::config(
                    "plain http to a loopback host needs HttpConfig::allow_http_loopback (tests only)",
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(Error::config("the base url must be https")),
    }
}

/// Whether a request may be sent again after a failure that may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Reads and requests whose repetition has no further effect.
    Idempotent,
    /// Requests that would act twice (send a second SMS, count a second attempt): retried only
    /// when the server certainly did not act (HTTP 429 that says so is decided by the caller).
    NotIdempotent,
}

/// An answer read in full.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) retry_after: Option<Duration>,
}

/// A reqwest client with keyward's policy.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
    rng: Arc<dyn SecureRandom>,
}

impl HttpClient {
    /// A client for a backend at `base_url`, which must pass [`check_base_url`].
    pub(crate) fn new(config: HttpConfig, base_url: &str) -> Result<Self> {
        check_base_url(base_url, &config)?;
        let client = reqwest::Client::builder()
            // Never follow: a redirect would carry credentials and bodies to another host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::config("cannot build the HTTP client").with_source(e))?;
        Ok(HttpClient {
            client,
            config,
            rng: Arc::new(SystemRandom::new()),
        })
    }

    /// Sends the request built by `build`, retrying per policy. `retry_status` decides, for a
    /// complete answer, whether it is a transient refusal worth retrying (429, 5xx, or a service
    /// code such as Twilio's 20429); it is only consulted when the request is idempotent or the
    /// answer proves the server did not act (429).
    pub(crate) async fn send<B, R>(
        &self,
        idempotency: Idempotency,
        build: B,
        retry_status: R,
    ) -> Result<HttpAnswer>
    where
        B: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        R: Fn(&HttpAnswer) -> bool,
    {
        let mut attempt: u32 = 0;
        loop {
            let outcome = self.send_once(build(&self.client)).await;
            let retry_allowed = attempt < self.config.max_retries;
            match outcome {
                Ok(answer) => {
                    let transient = retry_status(&answer);
                    let server_did_not_act = answer.status == 429;
                    let may_retry =
                        transient && (idempotency == Idempotency::Idempotent || server_did_not_act);
                    if !(retry_allowed && may_retry) {
                        return Ok(answer);
                    }
                    let wait = answer
                        .retry_after
                        .map(|d| d.min(self.config.max_backoff))
                        .unwrap_or(self.backoff(attempt)?);
                    tokio::time::sleep(wait).await;
                }
                Err(err) => {
                    let may_retry = idempotency == Idempotency::Idempotent && err.is_retryable();
                    if !(retry_allowed && may_retry) {
                        return Err(err);
                    }
                    tokio::time::sleep(self.backoff(attempt)?).await;
                }
            }
            attempt += 1;
        }
    }

    /// Exponential backoff with full jitter: uniform in `[base/2, base]`, base doubling per
    /// attempt and capped at `max_backoff`.
    fn backoff(&self, attempt: u32) -> Result<Duration> {
        let base = self
            .config
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.max_backoff);
        let half_ms = u32::try_from(base.as_millis() / 2).unwrap_or(u32::MAX);
        let jitter = uniform_below(self.rng.as_ref(), half_ms.saturating_add(1))?;
        Ok(Duration::from_millis(
            u64::from(half_ms) + u64::from(jitter),
        ))
    }

    async fn send_once(&self, request: reqwest::RequestBuilder) -> Result<HttpAnswer> {
        let mut response = request.send().await.map_err(map_reqwest_error)?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            return Err(Error::new(
                ErrorKind::Protocol,
                "the remote service answered with a redirect, which keyward never follows",
            )
            .with_retryable(false));
        }
        let retry_after = parse_retry_after(response.headers());
        if let Some(len) = response.content_length()
            && len > self.config.max_body_bytes as u64
        {
            return Err(Error::new(ErrorKind::Protocol, "answer body too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
            if body.len() + chunk.len() > self.config.max_body_bytes {
                return Err(Error::new(ErrorKind::Protocol, "answer body too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer {
            status,
            body,
            retry_after,
        })
    }
}

fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Maps a reqwest failure to a kind; the message never includes the URL (it may carry ids) and
/// the source is attached without the URL.
pub(crate) fn map_reqwest_error(err: reqwest::Error) -> Error {
    let err = err.without_url();
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_builder() {
        ErrorKind::Config
    } else {
        ErrorKind::Transport
    };
    let message = match kind {
        ErrorKind::Timeout => "the remote service did not answer in time",
        ErrorKind::Config => "the request could not be built",
        _ => "the connection to the remote service failed",
    };
    Error::new(kind, message).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let client = HttpClient::new(
            HttpConfig::default().backoff(Duration::from_millis(100), Duration::from_millis(1000)),
            "https://example.com",
        )
        .unwrap();
        for attempt in 0..20 {
            let d = client.backoff(attempt).unwrap();
            let base = (100u64 << attempt.min(16)).min(1000);
            assert!(d.as_millis() as u64 >= base / 2, "{attempt} {d:?}");
            assert!(d.as_millis() as u64 <= base, "{attempt} {d:?}");
        }
    }

    #[test]
    fn base_urls_must_be_https_or_opted_in_loopback() {
        let strict = HttpConfig::default();
        let tests = HttpConfig::default().allow_http_loopback(true);
        for ok in ["https://verify.twilio.com", "https://127.0.0.1:8443/x"] {
            assert!(check_base_url(ok, &strict).is_ok(), "{ok}");
        }
        for loopback in [
            "http://127.0.0.1:1234",
            "http://127.9.9.9",
            "http://localhost:80",
            "http://LOCALHOST",
            "http://[::1]:99",
        ] {
            let err = check_base_url(loopback, &strict).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config, "{loopback}");
            assert!(check_base_url(loopback, &tests).is_ok(), "{loopback}");
        }
        for refused in [
            "http://verify.twilio.com",
            "http://10.0.0.1",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "ftp://127.0.0.1",
            "https://user:pass@example.com",
            "verify.twilio.com",
            "",
        ] {
            let err = check_base_url(refused, &tests).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config, "{refused}");
            assert!(!err.to_string().contains("pass"), "{err}");
        }
    }
}
