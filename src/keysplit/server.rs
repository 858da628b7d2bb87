//! A local SSKS-compatible HTTP server (feature `ssks-server`): Seald's back and front 2-man-rule
//! endpoints over a [`LocalKeySplitStore`], so a team can run the whole flow offline and point
//! the official Seald client (or [`SsksClient`](super::ssks::SsksClient)) at it.
//!
//! | endpoint | headers | answers |
//! |---|---|---|
//! | `POST /tmr/back/challenge_send/` | `X-SEALD-APPID`, `X-SEALD-APIKEY` | `200 {session_id, must_authenticate}`; 403 bad credentials; 406 `fake_otp` outside test mode; 406 `{"detail":"SMSQuotaFailed"}` past a send limit ([`SsksLimits`](super::local::SsksLimits)); 400 bad body; 404 unknown user without `create_user` |
//! | `POST /tmr/front/challenge_validate/` | `X-SEALD-APPID`, `X-SEALD-SESSION` | `200 {new_id}`; 403 `{"detail":"Incorrect authentication credentials."}` wrong challenge; 404 unknown session; 400 empty challenge |
//! | `POST /tmr/front/push/` | same | `200 {id}` |
//! | `POST /tmr/front/search/` | same | `200 {data_b64, authenticated}`; 404 `{"model":"TMRKey"}` nothing stored |
//!
//! Expired sessions and exhausted attempts answer 403 with `detail` `"Challenge expired."` /
//! `"Too many attempts."` (keyward's wording; [`SsksClient`](super::ssks::SsksClient) maps them
//! to [`Expired`](crate::ErrorKind::Expired) / [`TooManyAttempts`](crate::ErrorKind::TooManyAttempts)).
//! Request bodies are bounded ([`DEFAULT_MAX_BODY_BYTES`]); the paths are also served without
//! their trailing slash.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keyward::Error> {
//! use std::sync::Arc;
//! use keyward::keysplit::local::LocalKeySplitStore;
//! use keyward::keysplit::server::{ServerConfig, serve};
//! use keyward::otp::ConsoleSender;
//! use keyward::store::MemoryStore;
//!
//! let local = LocalKeySplitStore::new(Arc::new(MemoryStore::new()), Arc::new(ConsoleSender));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await
//!     .map_err(|e| keyward::Error::config("cannot bind").with_source(e))?;
//! let server = serve(listener, local, ServerConfig::new("my-app-id", "my-api-key")).await?;
//! println!("SSKS on {}", server.base_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::local::LocalKeySplitStore;
use super::ssks::{INCORRECT_CREDENTIALS, SMS_QUOTA_FAILED};
use super::{AuthFactor, ChallengeRequest, KeySplitStore, SessionId};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::secret::subtle_eq::constant_time_eq;

/// Default largest request body (bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The server's app credentials and limits.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The app id clients must send in `X-SEALD-APPID`.
    pub app_id: String,
    /// The API key the backend must send in `X-SEALD-APIKEY`.
    pub api_key: Secret,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
}

impl ServerConfig {
    /// Credentials for one app.
    pub fn new(app_id: impl Into<String>, api_key: impl Into<Secret>) -> Self {
        ServerConfig {
            app_id: app_id.into(),
            api_key: api_key.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Sets the request body limit.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("app_id", &self.app_id)
            .field("api_key", &self.api_key)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

#[derive(Debug)]
struct AppState {
    local: LocalKeySplitStore,
    config: ServerConfig,
}

type Shared = State<Arc<AppState>>;

/// The axum router of the SSKS endpoints, to mount in a host's own server.
pub fn router(local: LocalKeySplitStore, config: ServerConfig) -> Router {
    let limit = config.max_body_bytes;
    let state = Arc::new(AppState { local, config });
    Router::new()
        .route("/tmr/back/challenge_send/", post(challenge_send))
        .route("/tmr/back/challenge_send", post(challenge_send))
        .route("/tmr/front/challenge_validate/", post(challenge_validate))
        .route("/tmr/front/challenge_validate", post(challenge_validate))
        .route("/tmr/front/push/", post(push))
        .route("/tmr/front/push", post(push))
        .route("/tmr/front/search/", post(search))
        .route("/tmr/front/search", post(search))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A running server; dropping it (or [`shutdown`](ServerHandle::shutdown)) stops it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for [`SsksConfig`](super::ssks::SsksConfig).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves the SSKS endpoints on `listener` (bind it to `127.0.0.1:0` in tests) until the
/// handle is shut down or dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    local: LocalKeySplitStore,
    config: ServerConfig,
) -> Result<ServerHandle> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::config("listener has no local address").with_source(e))?;
    let app = router(local, config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(ServerHandle {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}

fn detail(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

fn bad_credentials() -> Response {
    detail(StatusCode::FORBIDDEN, INCORRECT_CREDENTIALS)
}

fn error_response(err: &Error) -> Response {
    match err.kind() {
        ErrorKind::InvalidInput => detail(StatusCode::BAD_REQUEST, err.message()),
        ErrorKind::Config => detail(
            StatusCode::NOT_ACCEPTABLE,
            "fake_otp is not accepted by this server.",
        ),
        ErrorKind::NotFound | ErrorKind::AlreadyUsed => detail(StatusCode::NOT_FOUND, "Not found."),
        ErrorKind::Expired => detail(StatusCode::FORBIDDEN, "Challenge expired."),
        ErrorKind::TooManyAttempts => detail(StatusCode::FORBIDDEN, "Too many attempts."),
        ErrorKind::Rejected => bad_credentials(),
        // Seald's answer when its SMS / email quota is spent.
        ErrorKind::RateLimited { .. } => (
            StatusCode::NOT_ACCEPTABLE,
            axum::Json(json!({ "detail": SMS_QUOTA_FAILED, "code": SMS_QUOTA_FAILED })),
        )
            .into_response(),
        ErrorKind::Forbidden => detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        ),
        _ => detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error."),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn app_id_ok(state: &AppState, headers: &HeaderMap) -> bool {
    header(headers, "x-seald-appid") == Some(state.config.app_id.as_str())
}

#[allow(clippy::result_large_err)] // an early-return answer, built once per request
fn session_of(state: &AppState, headers: &HeaderMap) -> std::result::Result<SessionId, Response> {
    if !app_id_ok(state, headers) {
        return Err(bad_credentials());
    }
    match header(headers, "x-seald-session") {
        Some(s) if !s.is_empty() => Ok(SessionId::new(s)),
        _ => Err(detail(
            StatusCode::FORBIDDEN,
            "Authentication credentials were not provided.",
        )),
    }
}

#[allow(clippy::result_large_err)] // an early-return answer, built once per request
fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::result::Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|_| detail(StatusCode::BAD_REQUEST, "Malformed request body."))
}

#[derive(Deserialize)]
struct SendBody {
    user_id: Value,
    auth_factor: AuthFactor,
    #[serde(default)]
    create_user: bool,
    #[serde(default)]
    force_auth: bool,
    template: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    fake_otp: bool,
}

async fn challenge_send(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let key_ok = header(&headers, "x-seald-apikey")
        .is_some_and(|k| constant_time_eq(k.as_bytes(), state.config.api_key.expose()));
    if !(app_id_ok(&state, &headers) && key_ok) {
        return bad_credentials();
    }
    let body: SendBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // The seed's PHP example sends numeric user ids.
    let user_id = match body.user_id {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return detail(StatusCode::BAD_REQUEST, "user_id must be a string."),
    };
    if body.fake_otp && !state.local.is_test_mode() {
        return error_response(&Error::config("fake_otp refused"));
    }
    let mut request = ChallengeRequest::new(user_id, body.auth_factor, body.template)
        .create_user(body.create_user)
        .force_auth(body.force_auth)
        .fake_otp(body.fake_otp);
    request.subject = body.subject;
    match state.local.open_session(request).await {
        Ok(session) => axum::Json(json!({
            "session_id": session.session_id.expose(),
            "must_authenticate": session.must_authenticate,
        }))
        .into_response(),
        Err(err) => error_response(&err),
    }
}

#[derive(Deserialize)]
struct ValidateBody {
    challenge: String,
    auth_factor: AuthFactor,
}

async fn challenge_validate(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let session = match session_of(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body: ValidateBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let challenge = Secret::from(body.challenge);
    match state
        .local
        .validate_challenge(&session, &challenge, &body.auth_factor)
        .await
    {
        Ok(new_id) => axum::Json(json!({ "new_id": new_id.expose() })).into_response(),
        Err(err) => error_response(&err),
    }
}

#[derive(Deserialize)]
struct PushBody {
    data_b64: String,
    auth_factor: AuthFactor,
}

async fn push(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let session = match session_of(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body: PushBody = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match state
        .local
        .push(&session, &body.auth_factor, &body.data_b64)
        .await
    {
        Ok(id) => axum::Json(json!({ "id": id })).into_response(),
        Err(err) => error_response(&err),
    }
}

async fn search(State(state): Shared, headers: HeaderMap) -> Response {
    let session = match session_of(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.local.search_stored(&session).await {
        Ok(Some(blob)) => axum::Json(json!({
            "data_b64": blob.data_b64,
            "authenticated": blob.authenticated,
        }))
        .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "model": "TMRKey" })),
        )
            .into_response(),
        Err(err) => error_response(&err),
    }
}
