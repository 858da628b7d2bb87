//! 2-man rule (seed 003, `/tmr`): this server is the backend holding each participant's
//! `rawTwoManRuleKey`; keyward's local SSKS runs beside it on its own port; the page is the
//! client and does the crypto in the browser.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;

use keyward::http::HttpConfig;
use keyward::keysplit::local::LocalKeySplitStore;
use keyward::keysplit::server::ServerConfig;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest, KeyKind, TwoManRuleBackend, TwoManRuleKeys};
use keyward::otp::CodeSender;
use keyward::store::{MemoryStore, StateStore};
use keyward::{Env, Secret, SecureRandom, normalize, random_string};

use super::AppState;
use super::errors::{ApiError, ApiResult};
use super::log::step;
use super::sessions::SessionId;

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
pub(crate) struct TmrSessionBody {
    email: String,
    /// `save` or `retrieve` (which always requires a challenge).
    purpose: String,
}

/// The seed's `getSSKSSession`: only for a participant signed in here (by code or passkey).
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
