//! The `video_room` demo app: routes, sessions and the three flows, independent of how the
//! backends are wired (see `main.rs` for the embedded defaults, `tests/e2e_video_room.rs` for the
//! end-to-end test that starts this router in-process).
//!
//! - **OTP → video token** (seed 000): a known participant's username → a one-time code to the
//!   participant's phone → the code → a Twilio Video access token for the room, all through
//!   keyward's `RoomGate` (unknown names get decoy answers).
//! - **Passkeys** (seed 001): once signed in, "add a passkey" (WebAuthn registration); then
//!   "sign in with passkey" (a usernameless WebAuthn authentication) also opens the room.
//! - **2-man rule** (seed 003, `/tmr`): this server is the backend (each participant's
//!   `rawTwoManRuleKey`); keyward's local SSKS runs beside it on its own port (see
//!   [`local_two_man_rule`]); the page is the client and does the crypto in the browser.
//!
//! Everything the server remembers (sessions, user handles) lives in a [`StateStore`]; the
//! session cookie is random and only its SHA-256 is used as a storage key. Each step is logged
//! to standard error without codes, tokens or full phone numbers.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::extract::State;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use keyward::Env;
use keyward::http::HttpConfig;
use keyward::keysplit::local::LocalKeySplitStore;
use keyward::keysplit::server::ServerConfig;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest, KeyKind, TwoManRuleBackend, TwoManRuleKeys};
use keyward::otp::CodeSender;
use keyward::store::{Key, MemoryStore, StateStore, StateStoreExt, Ttl, Update};
use keyward::video::AccessToken;
use keyward::video::gate::{Contact, MemoryDirectory, ParticipantDirectory, RoomGate};
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, RegistrationRequest,
    RegistrationResponseJson, RegistrationState, ResidentKeyRequirement, UserEntity,
};
use keyward::{
    AuthenticatorVerifier, Error, ErrorKind, OtpProvider, Secret, SecureRandom, VideoTokenIssuer,
    normalize, random_array, random_string,
};

/// Name of the session cookie.
const COOKIE_NAME: &str = "vr_session";

/// How long a session lives without activity.
const SESSION_TTL: Duration = Duration::from_secs(3600);

/// The seed's hard-coded participant list ("use your customer DB in production").
const PARTICIPANTS: [(&str, &str); 3] = [
    ("blathers", "+18005559876"),
    ("mabel", "+18005554321"),
    ("tommy", "+18005556789"),
];

/// Everything the routes need. Build it with [`AppState::new`] and the `with_*` methods; a flow
/// whose backend is not wired answers 503 and its page section says so.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<dyn StateStore>,
    rng: Arc<dyn SecureRandom>,
    room: String,
    gate: Option<Arc<RoomGate>>,
    otp_backend: &'static str,
    video: Option<Arc<dyn VideoTokenIssuer>>,
    webauthn: Option<Arc<dyn AuthenticatorVerifier>>,
    tmr: Option<TwoManRule>,
}

/// The backend role of the 2-man rule and where the browser reaches SSKS.
#[derive(Debug, Clone)]
struct TwoManRule {
    backend: Arc<TwoManRuleBackend>,
    ssks_url: String,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("room", &self.room)
            .field("otp", &self.otp_backend)
            .field("gate", &self.gate)
            .field("webauthn", &self.webauthn.is_some())
            .field("tmr", &self.tmr)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state keeping sessions in `store`, for the room `My Room`.
    pub(crate) fn new(store: Arc<dyn StateStore>, rng: Arc<dyn SecureRandom>) -> Self {
        AppState {
            store,
            rng,
            room: "My Room".to_owned(),
            gate: None,
            otp_backend: "none",
            video: None,
            webauthn: None,
            tmr: None,
        }
    }

    /// Wires seed 000: keyward's [`RoomGate`] over the seed's participants, the one-time-code
    /// provider `otp` (`backend` names it on the page: `self-hosted`, `twilio`) and the token
    /// issuer `video` (also used after a passkey sign-in).
    pub(crate) fn with_room_gate(
        mut self,
        otp: Arc<dyn OtpProvider>,
        backend: &'static str,
        video: Arc<dyn VideoTokenIssuer>,
    ) -> keyward::Result<Self> {
        let members = PARTICIPANTS
            .iter()
            .fold(MemoryDirectory::new(), |d, (name, phone)| {
                d.with(*name, Contact::phone(*phone))
            });
        let directory = DemoDirectory {
            members,
            store: self.store.clone(),
        };
        let gate = RoomGate::builder(Arc::new(directory), otp, video.clone(), self.store.clone())
            .room(self.room.clone())
            .env(Env::system().with_random(self.rng.clone()))
            .build()?;
        self.gate = Some(Arc::new(gate));
        self.otp_backend = backend;
        self.video = Some(video);
        Ok(self)
    }

    /// Wires seed 003: `backend` opens SSKS sessions for signed-in participants; the browser
    /// talks to the SSKS at `ssks_url` itself (see [`ssks_router`]).
    pub(crate) fn with_two_man_rule(
        mut self,
        backend: TwoManRuleBackend,
        ssks_url: impl Into<String>,
    ) -> Self {
        self.tmr = Some(TwoManRule {
            backend: Arc::new(backend),
            ssks_url: ssks_url.into(),
        });
        self
    }

    /// Wires the WebAuthn relying party.
    pub(crate) fn with_webauthn(mut self, webauthn: Arc<dyn AuthenticatorVerifier>) -> Self {
        self.webauthn = Some(webauthn);
        self
    }
}

/// The demo's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { html(include_str!("static/index.html")) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", include_str!("static/app.js")) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css", include_str!("static/style.css")) }),
        )
        .route(
            "/tmr",
            get(|| async { html(include_str!("static/tmr.html")) }),
        )
        .route(
            "/tmr.js",
            get(|| async { asset("text/javascript", include_str!("static/tmr.js")) }),
        )
        .route("/api/tmr/session", post(tmr_session))
        .route("/api/config", get(config))
        .route("/api/me", get(me))
        .route("/api/login", post(login))
        .route("/api/verify", post(verify))
        .route("/api/logout", post(logout))
        .route("/api/passkey/register/start", post(register_start))
        .route("/api/passkey/register/finish", post(register_finish))
        .route("/api/passkey/login/start", post(passkey_login_start))
        .route("/api/passkey/login/finish", post(passkey_login_finish))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// What the server remembers about one browser.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Session {
    /// The participant being signed in or signed in.
    username: Option<String>,
    /// The pending one-time-code verification.
    otp_sid: Option<String>,
    /// Factors proven in this session (`otp`, `passkey`).
    factors: Vec<String>,
    /// A registration ceremony in progress.
    registration: Option<RegistrationState>,
    /// An authentication ceremony in progress.
    authentication: Option<AuthenticationState>,
}

/// A participant's WebAuthn user handle, kept across sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserRecord {
    handle: Vec<u8>,
}

/// The session id from the cookie, or a new one (with the `Set-Cookie` to send).
struct SessionId {
    key: Key,
    set_cookie: Option<HeaderValue>,
}

impl SessionId {
    fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<SessionId, ApiError> {
        let existing = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == COOKIE_NAME && value.len() == 43)
            .map(|(_, value)| value.to_owned());
        match existing {
            Some(id) => Ok(SessionId {
                key: session_key(&id),
                set_cookie: None,
            }),
            None => SessionId::fresh(state),
        }
    }

    /// A new random session id and the cookie that carries it.
    fn fresh(state: &AppState) -> Result<SessionId, ApiError> {
        let bytes: [u8; 32] = random_array(state.rng.as_ref())?;
        let id = URL_SAFE_NO_PAD.encode(bytes);
        let cookie = format!(
            "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL.as_secs()
        );
        Ok(SessionId {
            key: session_key(&id),
            set_cookie: HeaderValue::from_str(&cookie).ok(),
        })
    }

    /// Marks a factor proven for `username` under a *new* session id (the old one is deleted),
    /// so an id planted or seen before sign-in is worth nothing after it.
    async fn sign_in(
        self,
        state: &AppState,
        username: &str,
        factor: &str,
    ) -> Result<SessionId, ApiError> {
        let mut session = state
            .store
            .take(&self.key)
            .await?
            .and_then(|bytes| serde_json::from_slice::<Session>(&bytes).ok())
            .unwrap_or_default();
        if session.username.as_deref() != Some(username) {
            session = Session {
                username: Some(username.to_owned()),
                ..Session::default()
            };
        }
        push_factor(&mut session, factor);
        let next = SessionId::fresh(state)?;
        let value = serde_json::to_vec(&session)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        state.store.put(&next.key, value, Some(SESSION_TTL)).await?;
        Ok(next)
    }

    async fn load(&self, state: &AppState) -> Result<Session, ApiError> {
        Ok(state
            .store
            .get_json::<Session>(&self.key)
            .await?
            .unwrap_or_default())
    }

    /// Atomically updates the session and returns what `f` returns.
    async fn update<R: Send>(
        &self,
        state: &AppState,
        mut f: impl FnMut(&mut Session) -> R + Send,
    ) -> Result<R, ApiError> {
        let result = state
            .store
            .update_json::<Session, R, _>(&self.key, |current| {
                let mut session = current.unwrap_or_default();
                let r = f(&mut session);
                Ok(Update::Set(session, Ttl::After(SESSION_TTL), r))
            })
            .await?;
        Ok(result)
    }

    /// Attaches the cookie to a response when the session is new.
    fn respond(&self, mut response: Response) -> Response {
        if let Some(cookie) = &self.set_cookie {
            response.headers_mut().insert(SET_COOKIE, cookie.clone());
        }
        response
    }
}

fn session_key(cookie_value: &str) -> Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, cookie_value.as_bytes());
    Key::ephemeral("video_room")
        .part("session")
        .bytes(digest.as_ref())
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error answer: `{"error": "...", "kind": "..."}` with a status. keyward's messages carry no
/// secrets, so they are shown as they are.
struct ApiError {
    status: StatusCode,
    message: String,
    kind: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind: None,
        }
    }

    fn unavailable(what: &str) -> Self {
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

type ApiResult = Result<Response, ApiError>;

/// Where log lines also go, besides standard error (the end-to-end test checks them for
/// secrets).
type LogSink = Box<dyn Fn(&str) + Send + Sync>;

static LOG_SINK: OnceLock<LogSink> = OnceLock::new();

/// Copies every log line to `sink` as well (once per process).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn set_log_sink(sink: LogSink) -> bool {
    LOG_SINK.set(sink).is_ok()
}

/// Logs one step of a flow. Callers pass only non-secret facts (masked numbers, ids, outcomes).
fn step(message: &str) {
    eprintln!("[video_room] {message}");
    if let Some(sink) = LOG_SINK.get() {
        sink(message);
    }
}

// ---------------------------------------------------------------------------------------------
// Pages

fn html(body: &'static str) -> Response {
    asset("text/html; charset=utf-8", body)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

async fn config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "room": state.room,
        "participants": PARTICIPANTS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "otp": state.otp_backend,
        "ssks_url": state.tmr.as_ref().map(|t| t.ssks_url.clone()),
        "passkeys": state.webauthn.is_some(),
    }))
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let sid = SessionId::from_headers(&state, &headers)?;
    let session = sid.load(&state).await?;
    let signed_in = !session.factors.is_empty();
    Ok(sid.respond(
        Json(json!({
            "username": if signed_in { session.username } else { None },
            "factors": session.factors,
        }))
        .into_response(),
    ))
}

// ---------------------------------------------------------------------------------------------
// OTP → video token (seed 000)

#[derive(Deserialize)]
struct LoginBody {
    username: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> ApiResult {
    let gate = state
        .gate
        .clone()
        .ok_or_else(|| ApiError::unavailable("the room gate"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let username = body.username.trim().to_lowercase();
    // Unknown names get the same answer as participants (a decoy destination, nothing sent):
    // the gate never tells who is invited.
    let challenge = gate.login(&username).await?;
    step(&format!(
        "login: {username} → code sent to {} by {}",
        challenge.masked_destination, challenge.channel
    ));
    sid.update(&state, |s| {
        *s = Session {
            username: Some(username.clone()),
            ..Session::default()
        };
    })
    .await?;
    Ok(sid.respond(Json(json!({ "phone": challenge.masked_destination })).into_response()))
}

#[derive(Deserialize)]
struct VerifyBody {
    code: String,
}

async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<VerifyBody>,
) -> ApiResult {
    let gate = state
        .gate
        .clone()
        .ok_or_else(|| ApiError::unavailable("the room gate"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let Some(username) = sid.load(&state).await?.username else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "start with your username first",
        ));
    };
    // The gate issues the token only from an approved check.
    let token = match gate.verify(&username, body.code.trim()).await {
        Ok(token) => token,
        Err(e) => {
            step(&format!(
                "verify: refused for {username} ({})",
                e.kind().as_str()
            ));
            return Err(e.into());
        }
    };
    step(&format!("verify: code approved for {username}"));
    let sid = sid.sign_in(&state, &username, "otp").await?;
    log_token(&username, &token);
    Ok(sid.respond(Json(token_json(&token)).into_response()))
}

fn push_factor(session: &mut Session, factor: &str) {
    if !session.factors.iter().any(|f| f == factor) {
        session.factors.push(factor.to_owned());
    }
}

/// The seed's participants, and the passkeys they added here (user handle -> username, kept in
/// the store by registration), for the gate's passkey admission.
#[derive(Debug)]
struct DemoDirectory {
    members: MemoryDirectory,
    store: Arc<dyn StateStore>,
}

#[async_trait::async_trait]
impl ParticipantDirectory for DemoDirectory {
    async fn contact(&self, identity: &str) -> keyward::Result<Option<Contact>> {
        self.members.contact(identity).await
    }

    async fn identity_for_passkey(&self, user_handle: &[u8]) -> keyward::Result<Option<String>> {
        Ok(self
            .store
            .get(&handle_key(user_handle))
            .await?
            .and_then(|entry| String::from_utf8(entry.value).ok()))
    }
}

fn log_token(username: &str, token: &AccessToken) {
    step(&format!(
        "token: issued for {username} in room {:?} (valid {} s)",
        token.room.as_deref().unwrap_or("any"),
        token
            .expires_at
            .duration_since(token.issued_at)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    ));
}

/// What the page gets: the JWT (for `Twilio.Video.connect`) and what it is for.
fn token_json(token: &AccessToken) -> Value {
    json!({
        "token": token.jwt(),
        "identity": token.identity,
        "room": token.room,
    })
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let sid = SessionId::from_headers(&state, &headers)?;
    state.store.delete(&sid.key).await?;
    step("logout");
    Ok(sid.respond(Json(json!({ "ok": true })).into_response()))
}

// ---------------------------------------------------------------------------------------------
// Passkeys (seed 001)

async fn register_start(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let webauthn = state
        .webauthn
        .clone()
        .ok_or_else(|| ApiError::unavailable("passkeys"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let session = sid.load(&state).await?;
    let Some(username) = session.username.filter(|_| !session.factors.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign in with a one-time code before adding a passkey",
        ));
    };
    let handle = user_handle(&state, &username).await?;
    let user = UserEntity::new(handle, username.clone(), username.clone())?;
    let (options, registration) = webauthn
        .start_registration(
            RegistrationRequest::new(user).resident_key(ResidentKeyRequirement::Required),
        )
        .await?;
    sid.update(&state, |s| s.registration = Some(registration.clone()))
        .await?;
    step(&format!("passkey: registration started for {username}"));
    Ok(sid.respond(Json(options).into_response()))
}

#[derive(Deserialize)]
struct RegisterFinishBody {
    response: RegistrationResponseJson,
}

async fn register_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RegisterFinishBody>,
) -> ApiResult {
    let webauthn = state
        .webauthn
        .clone()
        .ok_or_else(|| ApiError::unavailable("passkeys"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let (username, registration) = sid
        .update(&state, |s| (s.username.clone(), s.registration.take()))
        .await?;
    let (Some(username), Some(registration)) = (username, registration) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no registration in progress",
        ));
    };
    let credential = webauthn
        .finish_registration(registration, &body.response)
        .await?;
    let credential_id = URL_SAFE_NO_PAD.encode(&credential.credential_id);
    step(&format!(
        "passkey: registered credential {}… for {username} ({} attestation, alg {})",
        credential_id.get(..8).unwrap_or(&credential_id),
        credential.attestation_format,
        credential.algorithm
    ));
    Ok(sid.respond(
        Json(json!({
            "credentialId": credential_id,
            "algorithm": credential.algorithm,
            "attestationFormat": credential.attestation_format,
            "userVerified": credential.user_verified,
        }))
        .into_response(),
    ))
}

async fn passkey_login_start(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let webauthn = state
        .webauthn
        .clone()
        .ok_or_else(|| ApiError::unavailable("passkeys"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let (options, authentication) = webauthn
        .start_authentication(AuthenticationRequest::discoverable())
        .await?;
    sid.update(&state, |s| s.authentication = Some(authentication.clone()))
        .await?;
    step("passkey: sign-in started (discoverable credential)");
    Ok(sid.respond(Json(options).into_response()))
}

#[derive(Deserialize)]
struct LoginFinishBody {
    response: AuthenticationResponseJson,
}

async fn passkey_login_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<LoginFinishBody>,
) -> ApiResult {
    let webauthn = state
        .webauthn
        .clone()
        .ok_or_else(|| ApiError::unavailable("passkeys"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let authentication = sid.update(&state, |s| s.authentication.take()).await?;
    let Some(authentication) = authentication else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no passkey sign-in in progress",
        ));
    };
    let assertion = webauthn
        .finish_authentication(authentication, &body.response)
        .await?;
    let (user_verified, counter) = (assertion.user_verified(), assertion.sign_count());
    let gate = state
        .gate
        .clone()
        .ok_or_else(|| ApiError::unavailable("the room gate"))?;
    // The gate issues the token on the assertion, to the participant its directory binds the
    // passkey's user handle to.
    let token = match gate.admit_passkey(assertion).await {
        Ok(token) => token,
        Err(e) if e.kind() == &keyward::ErrorKind::Rejected => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown passkey owner",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let username = token.identity.clone();
    step(&format!(
        "passkey: signed in {username} (user verified: {user_verified}, counter {counter})"
    ));
    let sid = sid.sign_in(&state, &username, "passkey").await?;
    log_token(&username, &token);
    Ok(sid.respond(Json(token_json(&token)).into_response()))
}

/// The participant's WebAuthn user handle: 16 random bytes created on first use, never personal
/// data.
async fn user_handle(state: &AppState, username: &str) -> Result<Vec<u8>, ApiError> {
    let key = Key::durable("video_room").part("user").part(username);
    if let Some(record) = state.store.get_json::<UserRecord>(&key).await? {
        return Ok(record.handle);
    }
    let fresh: [u8; 16] = random_array(state.rng.as_ref())?;
    let handle = state
        .store
        .update_json::<UserRecord, Vec<u8>, _>(&key, |current| {
            Ok(match current {
                Some(existing) => Update::Keep(existing.handle),
                None => Update::Set(
                    UserRecord {
                        handle: fresh.to_vec(),
                    },
                    Ttl::Never,
                    fresh.to_vec(),
                ),
            })
        })
        .await?;
    state
        .store
        .put(&handle_key(&handle), username.as_bytes().to_vec(), None)
        .await?;
    Ok(handle)
}

fn handle_key(handle: &[u8]) -> Key {
    Key::durable("video_room").part("handle").bytes(handle)
}

// ---------------------------------------------------------------------------------------------
// 2-man rule (seed 003)

/// The SSKS app id of the demo (any non-empty id without `:`).
pub(crate) const SSKS_APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";

/// keyward's local SSKS endpoints, callable from the demo's pages on another origin: the
/// browser is SSKS's client here, so the server answers CORS preflights for exactly
/// `allowed_origins` (and nothing else).
pub(crate) fn ssks_router(
    local: LocalKeySplitStore,
    config: ServerConfig,
    allowed_origins: Vec<String>,
) -> Router {
    let allowed = Arc::new(allowed_origins);
    keyward::keysplit::server::router(local, config).layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let allowed = allowed.clone();
            async move {
                let origin = request
                    .headers()
                    .get(ORIGIN)
                    .and_then(|o| o.to_str().ok())
                    .filter(|o| allowed.iter().any(|a| a == o))
                    .and_then(|o| HeaderValue::from_str(o).ok());
                let mut response = if request.method() == Method::OPTIONS {
                    StatusCode::NO_CONTENT.into_response()
                } else {
                    next.run(request).await
                };
                if let Some(origin) = origin {
                    let headers = response.headers_mut();
                    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    headers.insert(
                        ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static("POST"),
                    );
                    headers.insert(
                        ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("content-type, x-seald-appid, x-seald-session"),
                    );
                    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
                    headers.insert(VARY, HeaderValue::from_static("origin"));
                }
                response
            }
        },
    ))
}

/// Starts keyward's local SSKS on 127.0.0.1 (its own store, challenges through `sender`) and
/// the demo backend's client of it. Returns the backend role, SSKS's URL and its server task.
pub(crate) async fn local_two_man_rule(
    backend_store: Arc<dyn StateStore>,
    sender: Arc<dyn CodeSender>,
    rng: Arc<dyn SecureRandom>,
    allowed_origins: Vec<String>,
) -> Result<(TwoManRuleBackend, String, tokio::task::JoinHandle<()>), Box<dyn std::error::Error>> {
    // The backend's SSKS API key (X-SEALD-APIKEY), shared by the two servers only.
    let api_key = random_string(
        rng.as_ref(),
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        43,
    )?;
    let local = LocalKeySplitStore::new(Arc::new(MemoryStore::new()), sender)
        .env(Env::system().with_random(rng.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = ssks_router(
        local,
        ServerConfig::new(SSKS_APP_ID, Secret::from(api_key.as_str())),
        allowed_origins,
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    // The local SSKS listens on 127.0.0.1 over plain http: an explicit loopback opt-in.
    let client = SsksClient::new(
        SsksConfig::new(url.clone(), SSKS_APP_ID)
            .api_key(Secret::from(api_key))
            .http(HttpConfig::default().allow_http_loopback(true)),
    )?;
    let keys = TwoManRuleKeys::new(backend_store, SSKS_APP_ID, KeyKind::Raw)?
        .env(Env::system().with_random(rng));
    Ok((TwoManRuleBackend::new(Arc::new(client), keys), url, task))
}

#[derive(Deserialize)]
struct TmrSessionBody {
    email: String,
    /// `save` or `retrieve` (which always requires a challenge).
    purpose: String,
}

/// The seed's `getSSKSSession`: only for a participant signed in here (by code or passkey).
async fn tmr_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<TmrSessionBody>,
) -> ApiResult {
    let tmr = state
        .tmr
        .clone()
        .ok_or_else(|| ApiError::unavailable("the 2-man rule"))?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let session = sid.load(&state).await?;
    let Some(username) = session.username.filter(|_| !session.factors.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign in on the video room page first",
        ));
    };
    let retrieve = match body.purpose.as_str() {
        "save" => false,
        "retrieve" => true,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "purpose is save or retrieve",
            ));
        }
    };
    let factor = AuthFactor::email(&body.email)?;
    let request = ChallengeRequest::new(
        username.clone(),
        factor,
        "Your keyward video room challenge: $$CHALLENGE$$ (valid 6 hours).",
    )
    .subject("Your keyward video room challenge")
    .create_user(true)
    .force_auth(retrieve);
    let ssks_session = tmr.backend.session(request).await?;
    step(&format!(
        "tmr: SSKS session for {username} to {} ({}; challenge sent: {})",
        normalize::mask(&ssks_session.auth_factor.value),
        body.purpose,
        ssks_session.must_authenticate
    ));
    // The session id and the user's key go to this user's own page only.
    let mut answer = serde_json::to_value(&ssks_session)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    answer["ssks_url"] = Value::from(tmr.ssks_url.clone());
    answer["app_id"] = Value::from(tmr.backend.keys().app_id());
    Ok(sid.respond(Json(answer).into_response()))
}
