//! A minimal host service on axum: code → room token, passkey registration and usernameless
//! sign-in, and the 2-man rule's `getSSKSSession`, with ceremony state in tower-sessions.
//!
//! `cargo run --example axum_minimal --features axum`; codes print on this console:
//! `curl -c j -b j localhost:3000/login -d username=mabel`, then the same with `-d code=...`,
//! then `curl -b j -X POST localhost:3000/ssks-session`. The passkey routes take and return the
//! WebAuthn JSON forms (`PublicKeyCredential.toJSON()`). Every keyward error answers with its
//! status through keyward's `IntoResponse` (feature `axum`).
//!
//! tower-sessions has no atomic take; keyward does not need one: finishing a ceremony takes its
//! challenge out of keyward's own store atomically, so a state replayed from a cookie is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::{Json, Router, routing::post};
use keyward::keysplit::{AuthFactor, ChallengeRequest, KeyKind, TwoManRuleBackend, TwoManRuleKeys};
use keyward::otp::{ConsoleSender, LocalOtpProvider};
use keyward::store::{MemoryStore, StateStore};
use keyward::twilio::{TwilioCredentials, access_token::TwilioAccessTokenIssuer};
use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
use keyward::video::{AccessToken, VideoTokenRequest};
use keyward::webauthn::{AuthenticationRequest as AuthRequest, RegistrationRequest, UserEntity};
use keyward::webauthn::{RelyingParty, RelyingPartyConfig};
use keyward::{AuthenticatorVerifier, Error, ErrorKind, Result, Secret, VideoTokenIssuer};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tower_sessions::{MemoryStore as SessionStore, Session, SessionManagerLayer};

#[derive(Clone)]
struct App {
    gate: Arc<RoomGate>,
    video: Arc<TwilioAccessTokenIssuer>,
    passkeys: Arc<RelyingParty>,
    two_man_rule: Arc<TwoManRuleBackend>,
    /// The host's user table, reduced to passkey user handles (random, never personal data).
    handles: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

type Answer = Result<Json<Value>>;

fn stored(e: tower_sessions::session::Error) -> Error {
    Error::storage("session store failed").with_source(e) // 503
}

async fn put(session: &Session, key: &str, value: impl serde::Serialize) -> Result<()> {
    session.insert(key, value).await.map_err(stored)
}

/// Takes a ceremony state out of the session.
async fn take<T: DeserializeOwned>(session: &Session, key: &str) -> Result<T> {
    let state = session.remove::<T>(key).await.map_err(stored)?;
    state.ok_or_else(|| Error::invalid_input(format!("no {key} in progress")))
}

/// The signed-in user (401 when there is none).
async fn user(session: &Session) -> Result<String> {
    let user = session.get::<String>("user").await.map_err(stored)?;
    user.ok_or_else(|| Error::new(ErrorKind::Rejected, "sign in first"))
}

/// A new session id at sign-in, then the room token for the user.
async fn sign_in(session: &Session, user: &str, token: AccessToken) -> Answer {
    session.cycle_id().await.map_err(stored)?;
    put(session, "user", user).await?;
    Ok(Json(json!({ "user": user, "room_token": token.jwt() })))
}

#[derive(Deserialize)]
struct Login {
    username: String,
    code: Option<String>,
}

/// Without a code: sends one (`LoginChallenge`). With it: checks it and signs in.
async fn login(State(app): State<App>, session: Session, Form(f): Form<Login>) -> Answer {
    let Some(code) = f.code else {
        let sent = app.gate.login(&f.username).await?;
        return Ok(Json(
            json!({ "to": sent.masked_destination, "by": sent.channel }),
        ));
    };
    let token = app.gate.verify(&f.username, &code).await?;
    sign_in(&session, &f.username, token).await
}

async fn register_start(State(app): State<App>, session: Session) -> Answer {
    let name = user(&session).await?;
    let fresh = keyward::random_array::<16>(&keyward::SystemRandom::new())?.to_vec();
    let handle = match app.handles.lock() {
        Ok(mut handles) => handles.entry(name.clone()).or_insert(fresh).clone(),
        Err(_) => return Err(Error::storage("user table poisoned")),
    };
    let user = UserEntity::new(handle, name.clone(), name)?;
    let rp = &app.passkeys;
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user))
        .await?;
    put(&session, "registration", state).await?;
    Ok(Json(json!(options)))
}

async fn register_finish(State(app): State<App>, session: Session, Json(r): Json<Value>) -> Answer {
    let response = serde_json::from_value(r).map_err(|_| Error::invalid_input("not a response"))?;
    let state = take(&session, "registration").await?;
    let credential = app.passkeys.finish_registration(state, &response).await?;
    Ok(Json(json!({ "algorithm": credential.algorithm })))
}

async fn passkey_start(State(app): State<App>, session: Session) -> Answer {
    let rp = &app.passkeys;
    let (options, state) = rp.start_authentication(AuthRequest::discoverable()).await?;
    put(&session, "authentication", state).await?;
    Ok(Json(json!(options)))
}

async fn passkey_finish(State(app): State<App>, session: Session, Json(r): Json<Value>) -> Answer {
    let response = serde_json::from_value(r).map_err(|_| Error::invalid_input("not a response"))?;
    let state = take(&session, "authentication").await?;
    let proof = app.passkeys.finish_authentication(state, &response).await?;
    // The stored user entity says who signed in: no lookup from user handle to name.
    let name = proof.user().map(|u| u.name.clone());
    let name = name.ok_or_else(|| Error::new(ErrorKind::NotFound, "unknown user"))?;
    let request = VideoTokenRequest::new(&name).room("My Room");
    let token = app.video.issue(proof.into(), request).await?; // the passkey is the proof
    sign_in(&session, &name, token).await
}

/// getSSKSSession: the signed-in user's SSKS session and key, for that user's own frontend.
async fn ssks_session(State(app): State<App>, session: Session) -> Answer {
    let name = user(&session).await?;
    let factor = AuthFactor::email(&format!("{name}@example.com"))?;
    let request = ChallengeRequest::new(&name, factor, "Your code: $$CHALLENGE$$");
    Ok(Json(json!(app.two_man_rule.session(request).await?)))
}

fn random_secret() -> Result<Secret> {
    Ok(Secret::new(keyward::random_array::<32>(
        &keyward::SystemRandom::new(),
    )?))
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let otp = LocalOtpProvider::new(store.clone(), Arc::new(ConsoleSender), random_secret()?)?;
    // A throwaway key: use your Twilio API key for tokens that Twilio Video accepts.
    let (account, key) = (format!("AC{:032}", 0), format!("SK{:032}", 0));
    let key = TwilioCredentials::api_key(account, key, random_secret()?)?;
    let video = Arc::new(TwilioAccessTokenIssuer::new(key)?);
    let people = Arc::new(MemoryDirectory::new().with("mabel", Contact::phone("+18005554321")));
    let gate = RoomGate::builder(people, Arc::new(otp), video.clone(), store.clone()).build()?;
    let rp = RelyingPartyConfig::new("localhost", "axum minimal", "http://localhost:3000")?;
    // The 2-man rule against an in-process SSKS (its challenges print on this console).
    let ssks = keyward::keysplit::local::LocalKeySplitStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ConsoleSender),
    );
    let keys = TwoManRuleKeys::new(store.clone(), format!("{:032}", 1), KeyKind::Free)?;
    let app = App {
        gate: Arc::new(gate),
        video,
        passkeys: Arc::new(RelyingParty::new(rp, store)),
        two_man_rule: Arc::new(TwoManRuleBackend::new(Arc::new(ssks), keys)),
        handles: Arc::default(),
    };
    let router = Router::new()
        .route("/login", post(login))
        .route("/passkey/register/start", post(register_start))
        .route("/passkey/register/finish", post(register_finish))
        .route("/passkey/login/start", post(passkey_start))
        .route("/passkey/login/finish", post(passkey_finish))
        .route("/ssks-session", post(ssks_session))
        .layer(SessionManagerLayer::new(SessionStore::default()).with_secure(false)) // http only here
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("axum_minimal on http://localhost:3000");
    Ok(axum::serve(listener, router).await?)
}
