//! End to end in a real browser: starts the `video_room` example's router in-process on
//! 127.0.0.1, drives Debian's headless Chromium through the DevTools protocol, and walks the demo
//! like a person would. Screenshots of each step go to `target/e2e-artifacts/video_room/`.
//!
//! The walk: an unknown name (decoy answer, nothing sent, no code accepted); mabel's code read
//! from the test outbox (never on the page), a wrong code refused, the right one giving a token
//! that verifies under the issuer's key and is shown decoded exactly as signed, a new session id
//! at sign-in, the code single use; a passkey added on a virtual CTAP2 authenticator, sign-out,
//! a usernameless passkey sign-in (another token), the captured response replayed into a new
//! ceremony and refused; the 2-man rule saved by the browser's WebCrypto, retrieved by keyward's
//! Rust client, retrieved again by the browser after a wrong and the right challenge; and a
//! server log naming every step and holding no code, token, challenge, key or identity.
//!
//! Needs Chromium on `PATH` (`chromium` or `chromium-browser`; `KEYWARD_CHROMIUM=/path` picks
//! another; Debian: `apt-get install -y chromium`). Without it the test prints one line and
//! skips, unless `KEYWARD_REQUIRE_EXTERNAL=1` (set by `.ci/run`, which installs Chromium) makes
//! it fail.

#[path = "../../examples/video_room/app/mod.rs"]
mod app;
#[path = "e2e_video_room/cdp.rs"]
mod cdp;

#[path = "../../tests/support/external.rs"]
mod external;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward::Env;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest, TwoManRuleBackend, TwoManRuleClient};
use keyward::otp::{LocalOtpProvider, Outbox};
use keyward::store::{MemoryStore, StateStore};
use keyward::twilio::TwilioCredentials;
use keyward::video::twilio::{AccessTokenVerifier, TwilioAccessTokenIssuer};
use keyward::webauthn::{RelyingParty, RelyingPartyConfig, UserVerification};
use keyward::{Secret, SystemRandom};

use cdp::{Browser, CdpResult, Page};

/// The whole walk-through must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Mabel's phone number in the demo's participant list.
const MABEL_PHONE: &str = "+18005554321";

/// Longest wait for one step's outcome to appear on the page.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

fn artifacts_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`; artifacts go next to it.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map(|target| target.join("e2e-artifacts").join("video_room"))
        .unwrap_or_else(|| tmp.join("e2e-artifacts"))
}

/// The demo server, in-process, bound to an ephemeral port on 127.0.0.1.
struct Server {
    port: u16,
    /// Every code and challenge the demo "sent".
    outbox: Outbox,
    /// Checks the room tokens the demo issues.
    tokens: AccessTokenVerifier,
    /// The demo backend's 2-man-rule role, and the local SSKS it talks to.
    tmr_backend: TwoManRuleBackend,
    ssks_url: String,
    ssks_task: tokio::task::JoinHandle<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        self.ssks_task.abort();
    }
}

/// Every line the demo logged.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn logged() -> Vec<String> {
    LOG.lock().map(|l| l.clone()).unwrap_or_default()
}

async fn start_server() -> CdpResult<Server> {
    app::set_log_sink(Box::new(|line| {
        if let Ok(mut log) = LOG.lock() {
            log.push(line.to_owned());
        }
    }));
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let outbox = Outbox::new();
    let otp = LocalOtpProvider::new(
        store.clone(),
        Arc::new(outbox.clone()),
        Secret::new(*b"e2e-server-secret-of-32-bytes!!!"),
    )
    .map_err(|e| format!("OTP provider: {e}"))?;
    let key = TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        Secret::new(*b"e2e-api-key-secret-of-32-bytes!!"),
    )
    .map_err(|e| format!("api key: {e}"))?;
    let issuer = TwilioAccessTokenIssuer::new(key).map_err(|e| format!("issuer: {e}"))?;
    let tokens = issuer.verifier();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding 127.0.0.1:0: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?
        .port();
    let rng = Arc::new(SystemRandom::new());
    let relying_party = RelyingParty::new(
        RelyingPartyConfig::new(
            "localhost",
            "keyward video room",
            format!("http://localhost:{port}"),
        )
        .map_err(|e| format!("relying party: {e}"))?
        .user_verification(UserVerification::Required),
        store.clone(),
    )
    .env(Env::system().with_random(rng.clone()));
    let (tmr_backend, ssks_url, ssks_task) = app::local_two_man_rule(
        store.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
        rng.clone(),
        vec![format!("http://localhost:{port}")],
    )
    .await
    .map_err(|e| format!("local SSKS: {e}"))?;
    let state = app::AppState::new(store, rng)
        .with_room_gate(Arc::new(otp), "self-hosted", Arc::new(issuer))
        .map_err(|e| format!("room gate: {e}"))?
        .with_two_man_rule(tmr_backend.clone(), ssks_url.clone())
        .with_webauthn(Arc::new(relying_party));
    let task = tokio::spawn(async move {
        let _ = app::serve(listener, state).await;
    });
    Ok(Server {
        port,
        outbox,
        tokens,
        tmr_backend,
        ssks_url,
        ssks_task,
        task,
    })
}

/// Takes a numbered screenshot of the current step.
async fn snap(page: &Page<'_>, name: &str) -> CdpResult<()> {
    let path = artifacts_dir().join(format!("{name}.png"));
    page.screenshot(&path).await?;
    eprintln!("[e2e] screenshot {}", path.display());
    Ok(())
}

/// Reads an element's text and `data-state` once the state is one of `states`.
async fn outcome(page: &Page<'_>, id: &str, states: &[&str]) -> CdpResult<(String, String)> {
    let list = serde_json::to_string(states).map_err(|e| e.to_string())?;
    page.wait_for(
        &format!("{list}.includes(document.getElementById('{id}').dataset.state)"),
        STEP_TIMEOUT,
    )
    .await?;
    let value = page
        .eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); return [e.dataset.state, e.textContent]; }})()"
        ))
        .await?;
    Ok((
        value[0].as_str().unwrap_or_default().to_owned(),
        value[1].as_str().unwrap_or_default().to_owned(),
    ))
}

/// The demo's session cookie (HttpOnly, so read through the DevTools protocol).
async fn session_cookie(page: &Page<'_>, base: &str) -> CdpResult<String> {
    let cookies = page
        .call("Network.getCookies", serde_json::json!({ "urls": [base] }))
        .await?;
    cookies["cookies"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "vr_session"))
        .and_then(|c| c["value"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("no vr_session cookie: {cookies}"))
}

async fn set_session_cookie(page: &Page<'_>, base: &str, value: &str) -> CdpResult<()> {
    page.call(
        "Network.setCookie",
        serde_json::json!({ "name": "vr_session", "value": value, "url": base, "httpOnly": true }),
    )
    .await?;
    Ok(())
}

/// Sets an input's value as typing would.
async fn type_into(page: &Page<'_>, id: &str, text: &str) -> CdpResult<()> {
    let text = serde_json::to_string(text).map_err(|e| e.to_string())?;
    page.eval(&format!(
        "(() => {{ const e = document.getElementById('{id}'); e.focus(); e.value = {text}; \
         e.dispatchEvent(new Event('input', {{ bubbles: true }})); }})()"
    ))
    .await?;
    Ok(())
}

/// Clicks a button (failing if it is missing, hidden or disabled).
async fn click(page: &Page<'_>, id: &str) -> CdpResult<()> {
    let clicked = page
        .eval(&format!(
            "(() => {{ const e = document.getElementById('{id}'); \
             if (!e || e.disabled || e.offsetParent === null) return false; e.click(); return true; }})()"
        ))
        .await?;
    if clicked != serde_json::Value::Bool(true) {
        return Err(format!("#{id} is missing, hidden or disabled"));
    }
    Ok(())
}

async fn walk_through(browser: &Browser, server: &Server) -> CdpResult<()> {
    let page = browser.new_page().await?;
    let authenticator = page.add_virtual_authenticator().await?;
    let base = format!("http://localhost:{}", server.port);

    // The home page loads and the browser has the WebAuthn Level 3 JSON helpers.
    page.navigate(&format!("{base}/")).await?;
    page.wait_for("document.body.dataset.ready === '1'", STEP_TIMEOUT)
        .await?;
    let helpers = page
        .eval(
            "typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' && \
             typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function' && \
             window.isSecureContext",
        )
        .await?;
    if helpers != serde_json::Value::Bool(true) {
        return Err(format!(
            "the page is not a secure context with the Level 3 JSON helpers: {helpers}"
        ));
    }
    // The page never lists who is invited (the gate's decoys would be worthless).
    let listed = page
        .eval("['blathers', 'mabel', 'tommy'].filter((n) => document.body.innerText.includes(n))")
        .await?;
    if listed != serde_json::json!([]) {
        return Err(format!("participants shown on the home page: {listed}"));
    }
    snap(&page, "01-home").await?;

    // An unknown name gets the same kind of answer as a participant (a decoy destination),
    // nothing is sent, and no code opens the room.
    type_into(&page, "username", "mallory").await?;
    click(&page, "login-button").await?;
    let (state, text) = outcome(&page, "otp-status", &["error", "sent"]).await?;
    if state != "sent" || !text.contains("Sent code to phone number ********") {
        return Err(format!("unknown user: {state}: {text}"));
    }
    if !server.outbox.is_empty() {
        return Err("a message was sent for an unknown name".into());
    }
    type_into(&page, "code", "123456").await?;
    click(&page, "verify-button").await?;
    let (state, text) = outcome(&page, "otp-status", &["error", "ok"]).await?;
    if state != "error" || !text.contains("code rejected") {
        return Err(format!("unknown user's code: {state}: {text}"));
    }
    snap(&page, "02-unknown-user").await?;

    // A participant gets a code by "SMS" (the test outbox).
    type_into(&page, "username", "mabel").await?;
    click(&page, "login-button").await?;
    let (state, text) = outcome(&page, "otp-status", &["error", "sent"]).await?;
    if state != "sent" || !text.contains("Sent code to phone number ********21.") {
        return Err(format!("login: {state}: {text}"));
    }
    let code = server
        .outbox
        .last_code_to(MABEL_PHONE)
        .and_then(|c| c.expose_str().map(str::to_owned))
        .ok_or("no code was sent to mabel's phone")?;
    if page
        .eval("document.body.innerText")
        .await?
        .as_str()
        .unwrap_or_default()
        .contains(&code)
    {
        return Err("the page shows the one-time code".into());
    }
    snap(&page, "03-code-sent").await?;

    // A wrong code is refused and the verification stays usable.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    type_into(&page, "code", wrong).await?;
    click(&page, "verify-button").await?;
    let (state, text) = outcome(&page, "otp-status", &["error", "ok"]).await?;
    if state != "error" || !text.contains("code rejected") {
        return Err(format!("wrong code: {state}: {text}"));
    }
    snap(&page, "04-wrong-code").await?;

    // The right code opens the room: a token for mabel and "My Room", shown decoded.
    let before_sign_in = session_cookie(&page, &base).await?;
    type_into(&page, "code", &code).await?;
    click(&page, "verify-button").await?;
    let (state, text) = outcome(&page, "otp-status", &["error", "ok"]).await?;
    if state != "ok" || !text.contains("token issued for mabel in room \"My Room\"") {
        return Err(format!("right code: {state}: {text}"));
    }
    let otp_token = check_token_on_page(&page, server, "mabel").await?;
    let me = page.eval("fetch('/api/me').then(r => r.json())").await?;
    if me["username"] != "mabel" || me["factors"] != serde_json::json!(["otp"]) {
        return Err(format!("after the code, /api/me says {me}"));
    }

    // Signing in moved the session to a new id; the id from before is worth nothing.
    let after_sign_in = session_cookie(&page, &base).await?;
    if after_sign_in == before_sign_in {
        return Err("the session id did not change at sign-in".into());
    }
    set_session_cookie(&page, &base, &before_sign_in).await?;
    let old = page.eval("fetch('/api/me').then(r => r.json())").await?;
    set_session_cookie(&page, &base, &after_sign_in).await?;
    if !old["username"].is_null() {
        return Err(format!("the pre-sign-in session id still says {old}"));
    }
    snap(&page, "05-token").await?;

    // The approved verification is gone: the same code cannot be used again.
    let again = page
        .eval(&format!(
            "fetch('/api/verify', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, \
             body: JSON.stringify({{code: '{code}'}})}}).then(r => r.status)"
        ))
        .await?;
    if again != 401 {
        return Err(format!("re-using the code answered HTTP {again}"));
    }

    let passkey_token = passkeys(&page, server, &authenticator).await?;

    let tmr_secrets = two_man_rule(&page, server, &base).await?;

    // The server logged each step, and nothing secret.
    let mut secrets = vec![
        MABEL_PHONE.to_owned(),
        code.clone(),
        otp_token,
        passkey_token,
    ];
    secrets.extend(tmr_secrets);
    check_log(
        &[
            "login: mallory → code sent to ********",
            "verify: refused for mallory (rejected)",
            "login: mabel → code sent to ********21 by sms",
            "verify: refused for mabel (rejected)",
            "verify: code approved for mabel",
            "token: issued for mabel in room \"My Room\" (valid 3600 s)",
            "passkey: registration started for mabel",
            "passkey: registered credential ",
            "passkey: sign-in started",
            "passkey: signed in mabel (user verified: true",
            "refused (401): webauthn",
            "tmr: SSKS session for mabel to ",
            "(save; challenge sent: false)",
            "(retrieve; challenge sent: true)",
        ],
        &secrets,
    )
}

/// Seed 001, signed in by code as mabel: add a passkey, sign out, sign in with it (a token
/// again), then replay the captured sign-in response into a new ceremony (refused). Returns the
/// passkey sign-in's token.
async fn passkeys(page: &Page<'_>, server: &Server, authenticator: &str) -> CdpResult<String> {
    let before = page.authenticator_credentials(authenticator).await?;
    if !before.is_empty() {
        return Err(format!(
            "a fresh virtual authenticator holds {} credentials",
            before.len()
        ));
    }
    click(page, "register-button").await?;
    let (state, text) = outcome(page, "passkey-status", &["ok", "error"]).await?;
    if state != "ok" || !text.contains("Passkey added") {
        return Err(format!("registration: {state}: {text}"));
    }
    let held = page.authenticator_credentials(authenticator).await?;
    if held.len() != 1 || held[0]["isResidentCredential"] != true || held[0]["rpId"] != "localhost"
    {
        return Err(format!("the authenticator holds {held:?}"));
    }
    snap(page, "06-passkey-added").await?;

    // Sign out; the page reloads signed out.
    click(page, "logout-button").await?;
    page.wait_for(
        "document.body.dataset.ready === '1' && \
         document.getElementById('whoami').textContent === 'not signed in'",
        STEP_TIMEOUT,
    )
    .await?;

    // Usernameless sign-in with the passkey: the authenticator picks mabel's credential.
    click(page, "passkey-login-button").await?;
    let (state, text) = outcome(page, "passkey-status", &["ok", "error"]).await?;
    if state != "ok" || !text.contains("Signed in with passkey as mabel") {
        return Err(format!("passkey sign-in: {state}: {text}"));
    }
    let me = page.eval("fetch('/api/me').then(r => r.json())").await?;
    if me["username"] != "mabel" || me["factors"] != serde_json::json!(["passkey"]) {
        return Err(format!("after the passkey, /api/me says {me}"));
    }
    let jwt = check_token_on_page(page, server, "mabel").await?;
    snap(page, "07-passkey-signed-in").await?;

    // The captured response, replayed into a fresh ceremony, is refused by keyward.
    click(page, "replay-button").await?;
    let (state, text) = outcome(page, "replay-status", &["refused", "accepted"]).await?;
    if state != "refused" || !text.contains("webauthn") {
        return Err(format!("replay: {state}: {text}"));
    }
    snap(page, "08-replay-refused").await?;
    Ok(jwt)
}

/// Seed 003 on the 2-man-rule page, signed in as mabel: the browser encrypts and saves an
/// identity on the local SSKS; keyward's Rust client retrieves it (JS → Rust blob interop) and
/// re-saves it; the browser retrieves it after the emailed challenge (Rust → JS), a wrong
/// challenge refused first. Returns what must never appear in the demo server's log.
async fn two_man_rule(page: &Page<'_>, server: &Server, base: &str) -> CdpResult<Vec<String>> {
    page.navigate(&format!("{base}/tmr")).await?;
    page.wait_for("document.body.dataset.ready === '1'", STEP_TIMEOUT)
        .await?;
    let (state, text) = outcome(page, "tmr-signin", &["ok", "error"]).await?;
    if state != "ok" || !text.contains("mabel") {
        return Err(format!("2-man-rule page sign-in: {state}: {text}"));
    }
    let identity = page
        .eval("document.getElementById('tmr-identity').value")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !identity.starts_with("seald-identity:") {
        return Err(format!("identity field: {identity:?}"));
    }
    let email = "mabel@example.com";

    // Save: the first save needs no challenge.
    click(page, "save-button").await?;
    let (state, text) = outcome(page, "save-status", &["ok", "error"]).await?;
    if state != "ok" || !text.contains("stored on SSKS") {
        return Err(format!("save: {state}: {text}"));
    }
    if server.outbox.last_to(email).is_some() {
        return Err("a challenge was sent for a first save".into());
    }
    snap(page, "09-tmr-saved").await?;

    // keyward's Rust client reads what the browser sealed.
    let ssks = SsksClient::new(
        SsksConfig::new(server.ssks_url.clone(), app::SSKS_APP_ID)
            .http(keyward::http::HttpConfig::default().allow_http_loopback(true)),
    )
    .map_err(|e| format!("SSKS client: {e}"))?;
    let client = TwoManRuleClient::new(Arc::new(ssks), app::SSKS_APP_ID);
    let factor = AuthFactor::email(email).map_err(|e| e.to_string())?;
    let session = server
        .tmr_backend
        .session(
            ChallengeRequest::new("mabel", factor, "challenge: $$CHALLENGE$$").force_auth(true),
        )
        .await
        .map_err(|e| format!("backend session: {e}"))?;
    let rust_challenge = server
        .outbox
        .last_code_to(email)
        .ok_or("no challenge for the Rust client")?;
    let retrieved = client
        .retrieve_identity(&session, Some(&rust_challenge))
        .await
        .map_err(|e| format!("the Rust client cannot retrieve the browser's identity: {e}"))?;
    if retrieved.identity.expose_str() != Some(identity.as_str()) || !retrieved.reencrypted {
        return Err(format!(
            "Rust client: identity matches = {}, re-encrypted = {}",
            retrieved.identity.expose_str() == Some(identity.as_str()),
            retrieved.reencrypted
        ));
    }

    // Retrieve in the browser: a challenge by email, a wrong one refused, the right one opens
    // the blob keyward's Rust client re-sealed.
    click(page, "retrieve-button").await?;
    let (state, text) = outcome(page, "retrieve-status", &["sent", "error"]).await?;
    if state != "sent" || !text.contains("SSKS sent a challenge to mabel@example.com") {
        return Err(format!("retrieve: {state}: {text}"));
    }
    let challenge = server
        .outbox
        .last_code_to(email)
        .and_then(|c| c.expose_str().map(str::to_owned))
        .ok_or("no challenge for the browser")?;
    type_into(page, "tmr-challenge", "zzzzzzzz").await?;
    click(page, "challenge-button").await?;
    let (state, text) = outcome(page, "retrieve-status", &["ok", "error"]).await?;
    if state != "error" || !text.contains("Incorrect authentication credentials") {
        return Err(format!("wrong challenge: {state}: {text}"));
    }
    type_into(page, "tmr-challenge", &challenge).await?;
    click(page, "challenge-button").await?;
    let (state, text) = outcome(page, "retrieve-status", &["ok", "error"]).await?;
    if state != "ok" || !text.contains("decrypted in the browser") {
        return Err(format!("right challenge: {state}: {text}"));
    }
    let shown = page
        .eval("document.getElementById('retrieved').textContent")
        .await?;
    if shown != identity.as_str() {
        return Err(format!("retrieved {shown}, saved {identity:?}"));
    }
    snap(page, "10-tmr-retrieved").await?;

    let key = server
        .tmr_backend
        .keys()
        .get("mabel")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no 2-man-rule key for mabel")?;
    let rust_challenge = rust_challenge
        .expose_str()
        .map(str::to_owned)
        .unwrap_or_default();
    Ok(vec![
        identity,
        challenge,
        rust_challenge,
        key.expose().to_owned(),
    ])
}

/// Checks the token the page shows: it verifies under the demo's API key, admits `identity` to
/// "My Room", and the page's decoded payload is the signed one. Returns the JWT.
async fn check_token_on_page(
    page: &Page<'_>,
    server: &Server,
    identity: &str,
) -> CdpResult<String> {
    let jwt = page
        .eval("document.getElementById('token-raw').textContent")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let verified = server
        .tokens
        .verify(&jwt)
        .map_err(|e| format!("the token on the page does not verify: {e}"))?;
    if verified.identity.as_deref() != Some(identity)
        || verified.video_room() != Some(Some("My Room"))
    {
        return Err(format!("token for the wrong grant: {verified:?}"));
    }
    let shown: serde_json::Value = serde_json::from_str(
        page.eval("document.getElementById('token-payload').textContent")
            .await?
            .as_str()
            .unwrap_or_default(),
    )
    .map_err(|e| format!("decoded payload on the page: {e}"))?;
    let signed: serde_json::Value = serde_json::from_str(verified.payload_json())
        .map_err(|e| format!("signed payload: {e}"))?;
    if shown != signed {
        return Err(format!("the page shows {shown}, the token says {signed}"));
    }
    Ok(jwt)
}

/// Every `expected` fragment appears in some log line; no `secret` appears in any.
fn check_log(expected: &[&str], secrets: &[String]) -> CdpResult<()> {
    let log = logged();
    for fragment in expected {
        if !log.iter().any(|line| line.contains(fragment)) {
            return Err(format!(
                "no log line contains {fragment:?}:\n{}",
                log.join("\n")
            ));
        }
    }
    for line in &log {
        if let Some(secret) = secrets.iter().find(|s| line.contains(s.as_str())) {
            return Err(format!(
                "a log line shows a secret: {}",
                line.replace(secret.as_str(), "<secret>")
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_room_in_headless_chromium() {
    let chromium = external::find_program("KEYWARD_CHROMIUM", &["chromium", "chromium-browser"]);
    if !external::available_or_skip(
        "video_room_in_headless_chromium",
        "Chromium (chromium on PATH, or KEYWARD_CHROMIUM)",
        "apt-get install -y chromium",
        chromium.is_some(),
    ) {
        return;
    }
    let Some(chromium) = chromium else { return };
    let server = start_server()
        .await
        .unwrap_or_else(|e| panic!("cannot start the demo server: {e}"));
    let browser = Browser::launch(
        &chromium,
        &["--host-resolver-rules=MAP localhost 127.0.0.1"],
    )
    .await
    .unwrap_or_else(|e| panic!("cannot start the browser: {e}"));
    let result = tokio::time::timeout(TEST_TIMEOUT, walk_through(&browser, &server)).await;
    let console = browser.console();
    drop(browser);
    drop(server);
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "the walk-through took longer than {TEST_TIMEOUT:?}"
        )),
    };
    if let Some(failure) = failure {
        panic!(
            "{failure}\n--- browser console ---\n{}\n(screenshots so far in {})",
            console.join("\n"),
            artifacts_dir().display()
        );
    }
}
