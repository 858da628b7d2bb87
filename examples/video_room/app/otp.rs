//! OTP → video token (seed 000): a participant's username → a one-time code to the participant's
//! phone → the code → a Twilio Video access token for the room, all through keyward's
//! `RoomGate` (unknown names get decoy answers).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use keyward::video::AccessToken;

use super::AppState;
use super::errors::{ApiError, ApiResult};
use super::log::step;
use super::sessions::{Session, SessionId};

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    username: String,
}

/// The room gate's client key for the requester: the peer's IP address. The gate counts logins
/// and code checks per identity *and client*, so a stranger who spends a participant's tries
/// spends only their own (`RoomGate::login_from` / `verify_from`; the gate also hands it to the
/// OTP provider as `StartVerification::client`, for its per-client send budget).
///
/// The demo listens on 127.0.0.1, where every browser on the machine is one client. Behind a
/// reverse proxy, use the client address the proxy sets (and only from the proxy), or a
/// long-lived device cookie.
pub(crate) fn client_key(
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<String, ApiError> {
    match peer {
        Some(Extension(ConnectInfo(addr))) => Ok(format!("ip:{}", addr.ip())),
        // Without it every requester would share one key: refuse rather than degrade.
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the demo must be served with connect info (app::serve)",
        )),
    }
}

pub(crate) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> ApiResult {
    let gate = state
        .gate
        .clone()
        .ok_or_else(|| ApiError::unavailable("the room gate"))?;
    let client = client_key(peer)?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let username = body.username.trim().to_lowercase();
    // Unknown names get the same answer as participants (a decoy destination, nothing sent):
    // the gate never tells who is invited.
    let challenge = gate.login_from(&username, &client).await?;
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
pub(crate) struct VerifyBody {
    code: String,
}

pub(crate) async fn verify(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(body): Json<VerifyBody>,
) -> ApiResult {
    let gate = state
        .gate
        .clone()
        .ok_or_else(|| ApiError::unavailable("the room gate"))?;
    let client = client_key(peer)?;
    let sid = SessionId::from_headers(&state, &headers)?;
    let Some(username) = sid.load(&state).await?.username else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "start with your username first",
        ));
    };
    // The gate issues the token only from an approved check.
    let token = match gate.verify_from(&username, body.code.trim(), &client).await {
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

pub(crate) fn log_token(username: &str, token: &AccessToken) {
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
pub(crate) fn token_json(token: &AccessToken) -> Value {
    json!({
        "token": token.jwt(),
        "identity": token.identity,
        "room": token.room,
    })
}
