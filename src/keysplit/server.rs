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
//! | `OPTIONS` on the front paths | `Origin`, `Access-Control-Request-Method` | `204` with the CORS headers for an origin in [`ServerConfig::cors_origins`]; `403` for any other origin |
//!
//! The front endpoints are called by the user's device; Seald's browser plugin calls them from
//! the app's web origin, so a browser first sends a CORS preflight. The server answers it, and
//! adds `Access-Control-Allow-Origin` to the front answers, only for the origins listed in
//! [`ServerConfig::cors_origins`] (none by default); it allows `POST` and the headers the plugin
//! sends (`Content-Type`, `X-SEALD-APPID`, `X-SEALD-SESSION`, `X-SEALD-VERSION`). The back
//! endpoint (`challenge_send`, which takes the API key) is never offered to browsers.
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
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
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
    /// Web origins (`https://app.example.com`) whose pages may call the front endpoints; see
    /// [`cors_origins`](ServerConfig::cors_origins). Empty by default: no browser access.
    pub cors_origins: Vec<String>,
}

impl ServerConfig {
    /// Credentials for one app.
    pub fn new(app_id: impl Into<String>, api_key: impl Into<Secret>) -> Self {
        ServerConfig {
            app_id: app_id.into(),
            api_key: api_key.into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cors_origins: Vec::new(),
        }
    }

    /// Sets the request body limit.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Lets pages of `origins` call the front endpoints from a browser (Seald's browser plugin
    /// does): the server answers their CORS preflights and marks the front answers readable by
    /// them. Replaces the list set before.
    ///
    /// Each origin is a scheme, a host and an optional port, as a browser sends it in `Origin`
    /// (`https://app.example.com`, `http://localhost:8080`); it is kept lowercased, without a
    /// trailing `/`. A path, a query, a `*` wildcard, credentials in the URL or a scheme other
    /// than `http` and `https` are [`Config`](ErrorKind::Config) errors.
    ///
    /// ```
    /// use keyward::keysplit::server::ServerConfig;
    /// let config = ServerConfig::new("app-id", "api-key")
    ///     .cors_origins(["https://App.Example.com/", "http://localhost:8080"])?;
    /// assert_eq!(config.cors_origins, ["https://app.example.com", "http://localhost:8080"]);
    /// assert!(ServerConfig::new("app-id", "api-key").cors_origins(["*"]).is_err());
    /// assert!(ServerConfig::new("app-id", "api-key").cors_origins(["https://a.example/x"]).is_err());
    /// # Ok::<(), keyward::Error>(())
    /// ```
    pub fn cors_origins<I, S>(mut self, origins: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.cors_origins = origins
            .into_iter()
            .map(|origin| web_origin(origin.as_ref()))
            .collect::<Result<_>>()?;
        Ok(self)
    }
}

/// Checks and canonicalizes one CORS origin: `scheme://host[:port]`, lowercased, no trailing
/// `/`.
fn web_origin(origin: &str) -> Result<String> {
    let refused = || {
        Error::config(
            "a cors origin is a scheme, a host and an optional port (https://app.example.com)",
        )
    };
    let lower = origin.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('/').unwrap_or(&lower);
    let (scheme, authority) = lower.split_once("://").ok_or_else(refused)?;
    if !matches!(scheme, "http" | "https") {
        return Err(refused());
    }
    // `[v6]` or `[v6]:port`, else `host` or `host:port`.
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, rest) = v6.split_once(']').ok_or_else(refused)?;
            let port = match rest {
                "" => None,
                rest => Some(rest.strip_prefix(':').ok_or_else(refused)?),
            };
            let ok = !addr.is_empty() && addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
            (ok, port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    if !host_ok || !port_ok {
        return Err(refused());
    }
    Ok(lower.to_owned())
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("app_id", &self.app_id)
            .field("api_key", &self.api_key)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cors_origins", &self.cors_origins)
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
    let front = |handler: MethodRouter<Arc<AppState>>| handler.options(preflight);
    let front_routes = Router::new()
        .route(
            "/tmr/front/challenge_validate/",
            front(post(challenge_validate)),
        )
        .route(
            "/tmr/front/challenge_validate",
            front(post(challenge_validate)),
        )
        .route("/tmr/front/push/", front(post(push)))
        .route("/tmr/front/push", front(post(push)))
        .route("/tmr/front/search/", front(post(search)))
        .route("/tmr/front/search", front(post(search)))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            allow_origin,
        ));
    Router::new()
        .route("/tmr/back/challenge_send/", post(challenge_send))
        .route("/tmr/back/challenge_send", post(challenge_send))
        .merge(front_routes)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The headers Seald's browser plugin sends on the front endpoints.
const CORS_ALLOW_HEADERS: &str = "content-type, x-seald-appid, x-seald-session, x-seald-version";

/// How long a browser may cache a preflight answer (seconds).
const CORS_MAX_AGE: &str = "600";

/// The request's `Origin`, when it is one of the configured CORS origins (compared as browsers
/// send it: lowercase ASCII).
fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?.to_str().ok()?;
    state
        .config
        .cors_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        .then(|| HeaderValue::from_str(origin).ok())
        .flatten()
}

/// `OPTIONS` on a front path: a CORS preflight from a configured origin gets `204` and the CORS
/// headers; from any other origin `403` without them (the browser then refuses the call); an
/// `OPTIONS` without `Origin` (not from a browser) gets `204` with `Allow`.
async fn preflight(State(state): Shared, headers: HeaderMap) -> Response {
    if headers.get(ORIGIN).is_none() {
        return (
            StatusCode::NO_CONTENT,
            [(ALLOW, HeaderValue::from_static("POST, OPTIONS"))],
        )
            .into_response();
    }
    let Some(origin) = allowed_origin(&state, &headers) else {
        let mut refused = detail(StatusCode::FORBIDDEN, "This origin is not allowed.");
        refused
            .headers_mut()
            .insert(VARY, HeaderValue::from_static("origin"));
        return refused;
    };
    let mut answer = StatusCode::NO_CONTENT.into_response();
    let h = answer.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(CORS_ALLOW_HEADERS),
    );
    h.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(CORS_MAX_AGE),
    );
    h.insert(VARY, HeaderValue::from_static("origin"));
    answer
}

/// Marks the front answers (`POST`) readable by a configured origin.
async fn allow_origin(State(state): Shared, request: Request, next: Next) -> Response {
    let origin = (request.method() != Method::OPTIONS)
        .then(|| allowed_origin(&state, request.headers()))
        .flatten();
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(VARY, HeaderValue::from_static("origin"));
    }
    response
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

#[expect(
    clippy::result_large_err,
    reason = "the error is the early-return answer, built at most once per request"
)]
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

#[expect(
    clippy::result_large_err,
    reason = "the error is the early-return answer, built at most once per request"
)]
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
