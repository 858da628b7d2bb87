//! Passkeys (seed 001): once signed in, "add a passkey" (a WebAuthn registration); then "sign in
//! with passkey" (a usernameless WebAuthn authentication) also opens the room.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use keyward::random_array;
use keyward::store::{Key, StateStoreExt, Ttl, Update};
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, RegistrationRequest,
    RegistrationResponseJson, ResidentKeyRequirement, UserEntity,
};

use super::AppState;
use super::errors::{ApiError, ApiResult};
use super::log::step;
use super::otp::{log_token, token_json};
use super::participants::handle_key;
use super::sessions::SessionId;

/// A participant's WebAuthn user handle, kept across sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    handle: Vec<u8>,
}

pub(crate) async fn register_start(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
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
pub(crate) struct RegisterFinishBody {
    response: RegistrationResponseJson,
}

pub(crate) async fn register_finish(
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

pub(crate) async fn passkey_login_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult {
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
pub(crate) struct LoginFinishBody {
    response: AuthenticationResponseJson,
}

pub(crate) async fn passkey_login_finish(
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
pub(crate) async fn user_handle(state: &AppState, username: &str) -> Result<Vec<u8>, ApiError> {
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
