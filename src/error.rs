//! The crate's one error type: [`Error`], classified by [`ErrorKind`].
//!
//! Callers match on [`Error::kind`]; the message is for humans and logs and never contains a
//! secret, a code or a full phone number. Errors that came from a remote service (Twilio, SSKS)
//! also carry a [`RemoteError`] with the service's own status and error code.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::webauthn::WebAuthnFailure;

/// Shorthand for `std::result::Result<T, keyward::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as a caller can act on it.
///
/// The enum is `#[non_exhaustive]`: new kinds may be added in minor releases, so always keep a
/// wildcard arm when matching.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller passed something malformed (a bad phone number, an empty identity, a code of
    /// the wrong length, a response that does not parse). Not retryable.
    InvalidInput,
    /// The library or backend is misconfigured (missing credential, bad SID shape, a test-only
    /// option in production). Detected before any request is sent.
    Config,
    /// The thing asked for does not exist, or no longer exists (a verification that was approved,
    /// expired or exhausted; an unknown session; no stored identity).
    NotFound,
    /// The thing asked for existed but its lifetime is over.
    Expired,
    /// The per-item attempt limit (code checks, challenge validations) is exhausted.
    TooManyAttempts,
    /// The per-item send limit (re-sends of one verification) is exhausted.
    TooManySends,
    /// A rate limit (per destination, per account, remote 429) refused the request.
    RateLimited {
        /// How long the caller should wait before trying again, when known.
        retry_after: Option<Duration>,
    },
    /// A single-use item (ceremony state, challenge, approved code) was presented again.
    AlreadyUsed,
    /// A presented credential, code or challenge was wrong, where the protocol treats that as an
    /// error rather than an ordinary answer.
    Rejected,
    /// The remote service refused our own credentials (Twilio 20003, HTTP 401).
    Unauthorized,
    /// The remote service refused the operation for policy reasons (HTTP 403: landline,
    /// geo-permissions, fraud guard, ...).
    Forbidden,
    /// An encrypted blob could not be opened: wrong key, wrong user or app id, or tampered data.
    CannotOpen,
    /// A token (JWT) failed to decode or verify.
    InvalidToken,
    /// A WebAuthn ceremony check failed; the reason says which.
    WebAuthn(WebAuthnFailure),
    /// The feature or algorithm is not supported by this backend or build.
    Unsupported,
    /// Network failure: connection refused or closed, TLS, DNS.
    Transport,
    /// The remote did not answer in time.
    Timeout,
    /// The remote answered something that does not follow its protocol (malformed JSON, missing
    /// field, unexpected status).
    Protocol,
    /// The remote service returned an error that has no more specific kind; see
    /// [`Error::remote`] for its status and code.
    Backend,
    /// The state store failed or lost a race too many times.
    Storage,
    /// The random source failed.
    Random,
}

impl ErrorKind {
    /// A short stable name for the kind, for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Config => "configuration",
            ErrorKind::NotFound => "not found",
            ErrorKind::Expired => "expired",
            ErrorKind::TooManyAttempts => "too many attempts",
            ErrorKind::TooManySends => "too many sends",
            ErrorKind::RateLimited { .. } => "rate limited",
            ErrorKind::AlreadyUsed => "already used",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::CannotOpen => "cannot open",
            ErrorKind::InvalidToken => "invalid token",
            ErrorKind::WebAuthn(_) => "webauthn",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Transport => "transport",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Backend => "backend",
            ErrorKind::Storage => "storage",
            ErrorKind::Random => "random source",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reason itself is the error's message (see `Error::webauthn`), so the kind prints
        // only its name and `Error`'s Display does not repeat the reason.
        f.write_str(self.as_str())
    }
}

/// An error reported by a remote service, kept as the service gave it.
///
/// `Debug` masks phone numbers and email addresses the service quoted in its message (Twilio
/// writes `Invalid parameter To: +15017122661`); the `message` field itself is as received.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// Which service answered (`"twilio-verify"`, `"twilio-messaging"`, `"ssks"`, ...).
    pub service: &'static str,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The service's own error code (Twilio's 60202, 20404, ...), when it gave one.
    pub code: Option<u32>,
    /// The service's message, when it gave one. Services do not echo secrets in their messages;
    /// keyward truncates the text to 300 characters.
    pub message: Option<String>,
}

impl fmt::Debug for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteError")
            .field("service", &self.service)
            .field("status", &self.status)
            .field("code", &self.code)
            .field(
                "message",
                &self
                    .message
                    .as_deref()
                    .map(crate::normalize::scrub_personal_data),
            )
            .finish()
    }
}

/// The crate's error: a [`kind`](Error::kind) to match on, a human message, an optional
/// [`RemoteError`] and an optional source error.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: Cow<'static, str>,
    remote: Option<RemoteError>,
    retryable: bool,
    source: Option<BoxedSource>,
}

impl Error {
    /// Creates an error of `kind` with a message. The message must not contain secrets.
    // Cold (as the shorthands below): errors are the rare path, and their construction
    // inlined into every hot function that can fail would crowd the instruction cache.
    #[cold]
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        let retryable = matches!(
            kind,
            ErrorKind::Transport | ErrorKind::Timeout | ErrorKind::RateLimited { .. }
        );
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                remote: None,
                retryable,
                source: None,
            }),
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    #[cold]
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::Config`] error.
    #[cold]
    pub fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Shorthand for an [`ErrorKind::Storage`] error.
    #[cold]
    pub fn storage(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Storage, message)
    }

    /// Shorthand for an [`ErrorKind::WebAuthn`] error with its reason.
    pub fn webauthn(reason: WebAuthnFailure) -> Self {
        let message = reason.to_string();
        Error::new(ErrorKind::WebAuthn(reason), message)
    }

    /// Attaches the error that caused this one.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Attaches the remote service's own error.
    pub fn with_remote(mut self, remote: RemoteError) -> Self {
        self.inner.remote = Some(remote);
        self
    }

    /// Overrides whether retrying the same request may succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.inner.retryable = retryable;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The human-readable message (never contains secrets).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The remote service's own error, when the error came from one.
    pub fn remote(&self) -> Option<&RemoteError> {
        self.inner.remote.as_ref()
    }

    /// The remote service's error code (Twilio's `60202`, ...), when it gave one.
    pub fn remote_code(&self) -> Option<u32> {
        self.inner.remote.as_ref().and_then(|r| r.code)
    }

    /// Whether the same request may succeed if retried later (transport failures, timeouts,
    /// rate limits). Backends already retry idempotent requests themselves; this is for callers
    /// deciding what to tell their user.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable
    }

    /// The WebAuthn failure reason, when this is a WebAuthn error.
    pub fn webauthn_failure(&self) -> Option<&WebAuthnFailure> {
        match &self.inner.kind {
            ErrorKind::WebAuthn(reason) => Some(reason),
            _ => None,
        }
    }

    /// The HTTP status a host service answers its own client with for this error (what the
    /// `axum` feature's `IntoResponse` uses; any other framework can use it the same way):
    ///
    /// | kind | status |
    /// |---|---|
    /// | `InvalidInput` | 400 |
    /// | `Rejected`, `InvalidToken`, `WebAuthn(_)` | 401 |
    /// | `Forbidden` | 403 |
    /// | `NotFound` | 404 |
    /// | `Expired`, `AlreadyUsed` | 410 |
    /// | `CannotOpen` | 422 |
    /// | `TooManyAttempts`, `TooManySends`, `RateLimited` | 429 |
    /// | `Unsupported` | 501 |
    /// | `Unauthorized` (a remote refused *our* credentials), `Transport`, `Protocol`, `Backend` | 502 |
    /// | `Storage` | 503 |
    /// | `Timeout` | 504 |
    /// | `Config`, `Random`, any later kind | 500 |
    pub fn http_status(&self) -> u16 {
        match &self.inner.kind {
            ErrorKind::InvalidInput => 400,
            ErrorKind::Rejected | ErrorKind::InvalidToken | ErrorKind::WebAuthn(_) => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Expired | ErrorKind::AlreadyUsed => 410,
            ErrorKind::CannotOpen => 422,
            ErrorKind::TooManyAttempts
            | ErrorKind::TooManySends
            | ErrorKind::RateLimited { .. } => 429,
            ErrorKind::Unsupported => 501,
            ErrorKind::Unauthorized
            | ErrorKind::Transport
            | ErrorKind::Protocol
            | ErrorKind::Backend => 502,
            ErrorKind::Storage => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Config | ErrorKind::Random => 500,
        }
    }

    /// The JSON body of an error answer: `{"error": <message>, "kind": <kind name>}` plus
    /// `"retry_after": <seconds>` when a rate limit said how long to wait. A server-side failure
    /// (status 500 and above) shows a generic message: the host logs the real one.
    #[cfg(feature = "axum")]
    pub(crate) fn http_body(&self) -> serde_json::Value {
        let status = self.http_status();
        let message: &str = match status {
            ..500 => self.message(),
            503 => "temporarily unavailable, try again",
            502 | 504 => "an upstream service failed",
            _ => "internal error",
        };
        let mut body = serde_json::json!({ "error": message, "kind": self.inner.kind.as_str() });
        if let ErrorKind::RateLimited {
            retry_after: Some(wait),
        } = &self.inner.kind
        {
            body["retry_after"] = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).into();
        }
        body
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(remote) = &self.inner.remote {
            d.field("remote", remote);
        }
        d.field("retryable", &self.inner.retryable);
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.message)?;
        if let Some(remote) = &self.inner.remote {
            write!(f, " ({} http {}", remote.service, remote.status)?;
            if let Some(code) = remote.code {
                write!(f, ", code {code}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn remote_error_debug_scrubs_quoted_phone_numbers_and_emails() {
        let err = Error::new(ErrorKind::InvalidInput, "twilio refused the request").with_remote(
            RemoteError {
                service: "twilio-verify",
                status: 400,
                code: Some(60200),
                message: Some(
                    "Invalid parameter To: +15017122661 (alice.smith@example.com)".into(),
                ),
            },
        );
        for shown in [format!("{err:?}"), format!("{:?}", err.remote())] {
            assert!(!shown.contains("5017122661"), "{shown}");
            assert!(!shown.contains("alice.smith"), "{shown}");
            assert!(shown.contains("60200") && shown.contains("*61"), "{shown}");
        }
    }

    use super::*;

    #[test]
    fn display_carries_kind_message_and_remote_code() {
        let err = Error::new(ErrorKind::TooManyAttempts, "max check attempts reached").with_remote(
            RemoteError {
                service: "twilio-verify",
                status: 429,
                code: Some(60202),
                message: Some("Max check attempts reached".into()),
            },
        );
        assert_eq!(
            err.to_string(),
            "too many attempts: max check attempts reached (twilio-verify http 429, code 60202)"
        );
        assert_eq!(err.remote_code(), Some(60202));
        assert!(!err.is_retryable());
    }

    #[test]
    fn webauthn_errors_state_their_reason_once() {
        let err = Error::webauthn(WebAuthnFailure::ChallengeMismatch);
        assert_eq!(
            err.to_string(),
            "webauthn: challenge does not match the one issued"
        );
        assert_eq!(
            err.webauthn_failure(),
            Some(&WebAuthnFailure::ChallengeMismatch)
        );
    }

    #[test]
    fn transport_errors_are_retryable_by_default() {
        assert!(Error::new(ErrorKind::Transport, "connection closed").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "no answer").is_retryable());
        assert!(!Error::invalid_input("bad").is_retryable());
        assert!(
            !Error::new(ErrorKind::Timeout, "x")
                .with_retryable(false)
                .is_retryable()
        );
    }

    #[test]
    fn http_status_follows_the_kind() {
        let status = |kind| Error::new(kind, "x").http_status();
        assert_eq!(status(ErrorKind::InvalidInput), 400);
        assert_eq!(status(ErrorKind::Rejected), 401);
        assert_eq!(
            Error::webauthn(WebAuthnFailure::StateConsumed).http_status(),
            401
        );
        assert_eq!(status(ErrorKind::Forbidden), 403);
        assert_eq!(status(ErrorKind::NotFound), 404);
        assert_eq!(status(ErrorKind::AlreadyUsed), 410);
        assert_eq!(status(ErrorKind::RateLimited { retry_after: None }), 429);
        // Our own credentials refused upstream is the service's fault, not the caller's.
        assert_eq!(status(ErrorKind::Unauthorized), 502);
        assert_eq!(status(ErrorKind::Storage), 503);
        assert_eq!(status(ErrorKind::Timeout), 504);
        assert_eq!(status(ErrorKind::Config), 500);
    }

    #[test]
    fn source_is_chained() {
        let io = std::io::Error::other("boom");
        let err = Error::storage("write failed").with_source(io);
        let source = std::error::Error::source(&err).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("boom"));
    }
}
