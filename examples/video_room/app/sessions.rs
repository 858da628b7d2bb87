//! Sessions: a random cookie (only its SHA-256 is a storage key), what the server remembers
//! about one browser, sign-in under a fresh id, logout.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use keyward::random_array;
use keyward::store::{Key, StateStoreExt, Ttl, Update};
use keyward::webauthn::{AuthenticationState, RegistrationState};

use super::AppState;
use super::errors::{ApiError, ApiResult};
use super::log::step;

/// Name of the session cookie.
pub(crate) const COOKIE_NAME: &str = "vr_session";

/// How long a session lives without activity.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(3600);

/// What the server remembers about one browser.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The participant being signed in or signed in.
    pub(crate) username: Option<String>,
    /// The pending one-time-code verification.
    pub(crate) otp_sid: Option<String>,
    /// Factors proven in this session (`otp`, `passkey`).
    pub(crate) factors: Vec<String>,
    /// A registration ceremony in progress.
    pub(crate) registration: Option<RegistrationState>,
    /// An authentication ceremony in progress.
    pub(crate) authentication: Option<AuthenticationState>,
}

/// The session id from the cookie, or a new one (with the `Set-Cookie` to send).
pub(crate) struct SessionId {
    pub(crate) key: Key,
    set_cookie: Option<HeaderValue>,
}

impl SessionId {
    pub(crate) fn from_headers(
        state: &AppState,
        headers: &HeaderMap,
    ) -> Result<SessionId, ApiError> {
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
    pub(crate) fn fresh(state: &AppState) -> Result<SessionId, ApiError> {
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
    pub(crate) async fn sign_in(
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

    pub(crate) async fn load(&self, state: &AppState) -> Result<Session, ApiError> {
        Ok(state
            .store
            .get_json::<Session>(&self.key)
            .await?
            .unwrap_or_default())
    }

    /// Atomically updates the session and returns what `f` returns.
    pub(crate) async fn update<R: Send>(
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
    pub(crate) fn respond(&self, mut response: Response) -> Response {
        if let Some(cookie) = &self.set_cookie {
            response.headers_mut().insert(SET_COOKIE, cookie.clone());
        }
        response
    }
}

pub(crate) fn session_key(cookie_value: &str) -> Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, cookie_value.as_bytes());
    Key::ephemeral("video_room")
        .part("session")
        .bytes(digest.as_ref())
}

pub(crate) fn push_factor(session: &mut Session, factor: &str) {
    if !session.factors.iter().any(|f| f == factor) {
        session.factors.push(factor.to_owned());
    }
}

pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let sid = SessionId::from_headers(&state, &headers)?;
    state.store.delete(&sid.key).await?;
    step("logout");
    Ok(sid.respond(Json(json!({ "ok": true })).into_response()))
}
