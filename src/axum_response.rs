//! `IntoResponse` for [`Error`] (feature `axum`): a handler can return `keyward::Result<T>` or use
//! `?` on keyward calls and get the status of [`Error::http_status`] with a small JSON body.

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::error::{Error, ErrorKind};

impl IntoResponse for Error {
    /// The status of [`Error::http_status`], `Cache-Control: no-store`, `Retry-After` (whole
    /// seconds, rounded up) when a rate limit said how long to wait, and a JSON body
    /// `{"error": <message>, "kind": <kind name>}` (plus `"retry_after"`). Statuses of 500 and
    /// above show a generic message instead of the error's own: the host logs that one.
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.http_body()).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let ErrorKind::RateLimited {
            retry_after: Some(wait),
        } = self.kind()
        {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl IntoResponse for crate::webauthn::WellKnownWebAuthnJson {
    /// `200 OK`, `Content-Type: application/json` (browsers ignore the document under any other
    /// type), `Cache-Control: public, max-age=3600`, and the JSON body: a handler for
    /// [`WELL_KNOWN_WEBAUTHN_PATH`](crate::webauthn::WELL_KNOWN_WEBAUTHN_PATH) returns
    /// [`RelyingPartyConfig::well_known_webauthn`](crate::webauthn::RelyingPartyConfig::well_known_webauthn).
    ///
    /// ```ignore
    /// let body = config.well_known_webauthn();
    /// let app = axum::Router::new().route(
    ///     keyward::webauthn::WELL_KNOWN_WEBAUTHN_PATH,
    ///     axum::routing::get(move || std::future::ready(body.clone())),
    /// );
    /// ```
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::webauthn::WebAuthnFailure;

    async fn body_json(response: Response) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_refusal_answers_its_status_kind_and_message() {
        let response = Error::webauthn(WebAuthnFailure::ChallengeMismatch).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let body = body_json(response).await;
        assert_eq!(body["kind"], "webauthn");
        assert_eq!(body["error"], "challenge does not match the one issued");
    }

    #[tokio::test]
    async fn a_rate_limit_says_when_to_retry() {
        let err = Error::new(
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_millis(2_500)),
            },
            "too many codes sent to this destination",
        );
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "3");
        let body = body_json(response).await;
        assert_eq!(body["retry_after"], 3);
    }

    #[tokio::test]
    async fn a_server_side_failure_does_not_describe_itself() {
        let err = Error::new(ErrorKind::Unauthorized, "twilio refused the api key SKabc")
            .with_remote(crate::RemoteError {
                service: "twilio-verify",
                status: 401,
                code: Some(20003),
                message: Some("Authenticate".into()),
            });
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = body_json(response).await;
        assert_eq!(body["kind"], "unauthorized");
        let text = body.to_string();
        assert!(!text.contains("SKabc") && !text.contains("20003"), "{text}");
    }

    /// The `/.well-known/webauthn` document served by a real axum router on a loopback port.
    #[cfg(feature = "webauthn")]
    #[tokio::test]
    async fn the_well_known_document_is_served_as_json() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use crate::webauthn::{RelyingPartyConfig, WELL_KNOWN_WEBAUTHN_PATH};

        let config = RelyingPartyConfig::new("example.com", "Ex", "https://example.com")
            .unwrap()
            .related_origin("https://example.co.uk")
            .unwrap();
        let body = config.well_known_webauthn();
        let app = axum::Router::new().route(
            WELL_KNOWN_WEBAUTHN_PATH,
            axum::routing::get(move || std::future::ready(body.clone())),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /.well-known/webauthn HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        server.abort();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains("cache-control: public, max-age=3600"),
            "{head}"
        );
        assert_eq!(body, r#"{"origins":["https://example.co.uk"]}"#);
    }
}
