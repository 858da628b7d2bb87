//! The static pages, `/api/config` and `/api/me`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::errors::ApiResult;
use super::participants::registered_email;
use super::sessions::SessionId;

/// The pages, their assets, `/api/config` and `/api/me`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { html(include_str!("../static/index.html")) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", include_str!("../static/app.js")) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css", include_str!("../static/style.css")) }),
        )
        .route(
            "/tmr",
            get(|| async { html(include_str!("../static/tmr.html")) }),
        )
        .route(
            "/tmr.js",
            get(|| async { asset("text/javascript", include_str!("../static/tmr.js")) }),
        )
        .route("/api/config", get(config))
        .route("/api/me", get(me))
}

pub(crate) fn html(body: &'static str) -> Response {
    asset("text/html; charset=utf-8", body)
}

pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

/// What the pages need to know about this server. Not the participant list: anyone may call this,
/// and the room gate's decoys exist so that nobody learns who is invited.
pub(crate) async fn config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "room": state.room,
        "otp": state.otp_backend,
        "ssks_url": state.tmr.as_ref().map(|t| t.ssks_url.clone()),
        "passkeys": state.webauthn.is_some(),
    }))
}

pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let sid = SessionId::from_headers(&state, &headers)?;
    let session = sid.load(&state).await?;
    let signed_in = !session.factors.is_empty();
    let username = session.username.filter(|_| signed_in);
    // The signed-in participant's own registered address (where SSKS challenges go).
    let email = username.as_deref().and_then(registered_email);
    Ok(sid.respond(
        Json(json!({
            "username": username,
            "email": email,
            "factors": session.factors,
        }))
        .into_response(),
    ))
}
