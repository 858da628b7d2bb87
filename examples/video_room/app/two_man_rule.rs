//! 2-man rule (seed 003, `/tmr`): this server is the backend holding each participant's
//! `rawTwoManRuleKey`; keyward's local SSKS runs beside it on its own port; the page is the
//! client and does the crypto in the browser.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;

use keyward::http::HttpConfig;
use keyward::keysplit::local::LocalKeySplitStore;
use keyward::keysplit::server::ServerConfig;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest, KeyKind, TwoManRuleBackend, TwoManRuleKeys};
use keyward::otp::CodeSender;
use keyward::store::StateStore;
use keyward::{Env, Secret, SecureRandom, normalize, random_string};

use super::AppState;
use super::errors::{ApiError, ApiResult};
use super::log::step;
use super::participants::registered_email;
use super::sessions::SessionId;

/// The SSKS app id of the demo (any non-empty id without `:`).
pub(crate) const SSKS_APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";

/// Starts keyward's local SSKS on 127.0.0.1 and the demo backend's client of it. Returns the
/// backend role, SSKS's URL and its server task.
///
/// - `backend_store` keeps the backend's per-user keys; `ssks_store` the SSKS's sessions and
///   encrypted identities. On the embedded default they are two separate memory stores (two
///   servers, two halves); with `REDIS_URL` / `DATABASE_URL` both are the shared store (each
///   under its own keys), so every demo process's SSKS sees the same sessions and identities.
/// - Challenges go out through `sender`.
/// - The browser is SSKS's client here: the server answers CORS preflights from exactly
///   `allowed_origins` (`ServerConfig::cors_origins`).
pub(crate) async fn local_two_man_rule(
    backend_store: Arc<dyn StateStore>,
    ssks_store: Arc<dyn StateStore>,
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
    let local =
        LocalKeySplitStore::new(ssks_store, sender).env(Env::system().with_random(rng.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = keyward::keysplit::server::router(
        local,
        ServerConfig::new(SSKS_APP_ID, Secret::from(api_key.as_str()))
            .cors_origins(allowed_origins)?,
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
pub(crate) struct TmrSessionBody {
    /// Optional: if given, it must be the signed-in participant's registered address (SSKS
    /// challenges go nowhere else).
    #[serde(default)]
    email: Option<String>,
    /// `save` or `retrieve` (which always requires a challenge).
    purpose: String,
}

/// The seed's `getSSKSSession`: only for a participant signed in here (by code or passkey), and
/// the challenge goes only to that participant's registered address: a signed-in user cannot
/// make SSKS mail challenges to an address of their choosing.
pub(crate) async fn tmr_session(
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
    let Some(registered) = registered_email(&username) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no address is registered for SSKS challenges",
        ));
    };
    let factor = AuthFactor::email(registered)?;
    if let Some(asked) = &body.email
        && AuthFactor::email(asked).ok().as_ref() != Some(&factor)
    {
        step(&format!(
            "tmr: refused for {username}: challenges go only to the registered address"
        ));
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "SSKS challenges go only to your registered address",
        ));
    }
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
