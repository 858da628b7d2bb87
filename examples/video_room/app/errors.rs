//! The JSON error answer of every route.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use keyward::{Error, ErrorKind};

use super::log::step;

/// An error answer: `{"error": "...", "kind": "..."}` with a status. keyward's messages carry no
/// secrets, so they are shown as they are.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    kind: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind: None,
        }
    }

    pub(crate) fn unavailable(what: &str) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} is not wired in this build of the demo"),
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match e.kind() {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Expired | ErrorKind::AlreadyUsed => StatusCode::GONE,
            ErrorKind::TooManyAttempts
            | ErrorKind::TooManySends
            | ErrorKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Rejected
            | ErrorKind::Unauthorized
            | ErrorKind::InvalidToken
            | ErrorKind::WebAuthn(_) => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Shown as "webauthn: challenge does not match the one issued" for WebAuthn failures;
        // other kinds carry their own message.
        let message = match e.webauthn_failure() {
            Some(reason) => format!("webauthn: {reason}"),
            None => e.message().to_owned(),
        };
        ApiError {
            status,
            message,
            kind: Some(e.kind().as_str().to_owned()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        step(&format!(
            "refused ({}): {}",
            self.status.as_u16(),
            self.message
        ));
        let body = json!({ "error": self.message, "kind": self.kind });
        (self.status, Json(body)).into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;
