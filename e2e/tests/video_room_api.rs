//! The `video_room` demo's routes over real HTTP on 127.0.0.1, without a browser: what issue #14
//! item 6 and issue #13 changed in the demo. Each test starts its own demo in-process (its own
//! stores), served as `main.rs` serves it (`app::serve`, with each connection's peer address).
//!
//! - log lines escape control characters (a username with a newline forged a log line);
//! - `/api/config` does not list the participants (it defeated the gate's decoys);
//! - logins and code checks carry the requester's client key (a stranger spent the participant's
//!   logins for everyone);
//! - a signed-in user's SSKS challenges go only to their registered address (any address could be
//!   mailed);
//! - the local SSKS keeps its sessions and identities in the shared store when `REDIS_URL` /
//!   `DATABASE_URL` name one (it was always a private memory store), and in a memory store of its
//!   own otherwise.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

#[path = "../../examples/video_room/app/mod.rs"]
#[expect(
    dead_code,
    reason = "the demo's passkey wiring is exercised by e2e_video_room"
)]
mod app;
#[path = "../../tests/support/external.rs"]
mod external;
#[path = "../../examples/video_room/stores.rs"]
#[expect(
    dead_code,
    reason = "from_env reads the process environment; the tests pass URLs"
)]
mod stores;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, Once};

use keyward::http::HttpConfig;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest, TwoManRuleClient};
use keyward::otp::{LocalOtpProvider, Outbox};
use keyward::store::{MemoryStore, StateStore};
use keyward::twilio::TwilioCredentials;
use keyward::video::twilio::TwilioAccessTokenIssuer;
use keyward::{Secret, SecureRandom, SystemRandom};
use serde_json::{Value, json};

const MABEL_PHONE: &str = "+18005554321";
const MABEL_EMAIL: &str = "mabel@example.com";

/// Every line the demo logged (all tests of this binary; each test looks for its own marker).
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SINK: Once = Once::new();

fn logged() -> Vec<String> {
    LOG.lock().map(|l| l.clone()).unwrap_or_default()
}

struct Demo {
    base: String,
    outbox: Outbox,
    task: tokio::task::JoinHandle<()>,
    ssks_task: tokio::task::JoinHandle<()>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.task.abort();
        self.ssks_task.abort();
    }
}

async fn demo() -> Demo {
    SINK.call_once(|| {
        app::set_log_sink(Box::new(|line| {
            if let Ok(mut log) = LOG.lock() {
                log.push(line.to_owned());
            }
        }));
    });
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let outbox = Outbox::new();
    let otp = LocalOtpProvider::new(
        store.clone(),
        Arc::new(outbox.clone()),
        Secret::new(*b"api-test-server-secret-32-bytes!"),
    )
    .unwrap();
    let key = TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        Secret::new(*b"api-test-key-secret-of-32-bytes!"),
    )
    .unwrap();
    let issuer = TwilioAccessTokenIssuer::new(key).unwrap();
    let rng: Arc<dyn SecureRandom> = Arc::new(SystemRandom::new());
    let (tmr_backend, ssks_url, ssks_task) = app::local_two_man_rule(
        store.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
        rng.clone(),
        Vec::new(),
    )
    .await
    .unwrap();
    let state = app::AppState::new(store, rng)
        .with_room_gate(Arc::new(otp), "self-hosted", Arc::new(issuer))
        .unwrap()
        .with_two_man_rule(tmr_backend, ssks_url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = app::serve(listener, state).await;
    });
    Demo {
        base,
        outbox,
        task,
        ssks_task,
    }
}

/// A browser without JavaScript: one loopback source address, one session cookie.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookie: Mutex<Option<String>>,
}

impl Visitor {
    fn new(demo: &Demo, from: Ipv4Addr) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .local_address(IpAddr::V4(from))
                .build()
                .unwrap(),
            base: demo.base.clone(),
            cookie: Mutex::new(None),
        }
    }

    async fn call(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match &body {
            Some(body) => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
            None => self.http.get(url),
        };
        if let Some(cookie) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", cookie);
        }
        let answer = request.send().await.unwrap();
        if let Some(set) = answer.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            *self.cookie.lock().unwrap() = Some(pair);
        }
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn login(&self, username: &str) -> u16 {
        self.call("/api/login", Some(json!({ "username": username })))
            .await
            .0
    }

    /// Signs in as mabel with the code the demo sent to her phone.
    async fn sign_in_as_mabel(&self, demo: &Demo) {
        assert_eq!(self.login("mabel").await, 200);
        let code = wait_for_code(demo, MABEL_PHONE).await;
        let (status, token) = self
            .call("/api/verify", Some(json!({ "code": code })))
            .await;
        assert_eq!(status, 200, "{token}");
    }
}

/// The gate sends codes in the background: wait (bounded) for one to reach the outbox.
async fn wait_for_code(demo: &Demo, to: &str) -> String {
    for _ in 0..200 {
        if let Some(code) = demo.outbox.last_code_to(to) {
            return code.expose_str().unwrap().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    demo.outbox
        .last_code_to(to)
        .and_then(|c| c.expose_str().map(str::to_owned))
        .unwrap()
}

const HOME: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[tokio::test]
async fn config_does_not_list_the_participants() {
    let demo = demo().await;
    let (status, config) = Visitor::new(&demo, HOME).call("/api/config", None).await;
    assert_eq!(status, 200);
    assert!(config.get("participants").is_none(), "{config}");
    let text = config.to_string();
    for name in ["blathers", "mabel", "tommy"] {
        assert!(!text.contains(name), "{name} in {text}");
    }
    // The page the config feeds names nobody either.
    let page = reqwest::get(format!("{}/", demo.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["blathers", "mabel", "tommy"] {
        assert!(!page.contains(name), "{name} on the home page");
    }
}

#[tokio::test]
async fn log_lines_escape_control_characters_in_input() {
    let demo = demo().await;
    let visitor = Visitor::new(&demo, HOME);
    // A username that tries to forge a line of its own, and to recolour the terminal.
    let forged = "eve-4f1c\n[video_room] verify: code approved for mabel\r\u{1b}[2K\u{2028}x";
    assert_eq!(visitor.login(forged).await, 200);
    let (status, _) = visitor
        .call("/api/verify", Some(json!({ "code": "123456" })))
        .await;
    assert_eq!(status, 401);
    let ours: Vec<String> = logged()
        .into_iter()
        .filter(|line| line.contains("eve-4f1c"))
        .collect();
    assert!(ours.len() >= 2, "{ours:?}");
    for line in &ours {
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{2028}'),
            "{line:?}"
        );
    }
    assert!(
        ours.iter()
            .any(|l| l.starts_with("login: eve-4f1c\\u{a}[video_room] verify: code approved")),
        "{ours:?}"
    );
    assert!(ours.iter().any(|l| l.contains("\\u{1b}[2k")), "{ours:?}");
}

#[tokio::test]
async fn a_stranger_spends_only_their_own_logins() {
    let demo = demo().await;
    let stranger = Visitor::new(&demo, STRANGER);
    // The gate's default: 5 logins per identity and client per hour.
    for _ in 0..5 {
        assert_eq!(stranger.login("tommy").await, 200);
    }
    assert_eq!(stranger.login("tommy").await, 429);
    // tommy, from his own address, is not locked out by the stranger's tries. (Before, the demo
    // called the gate without a client key: every requester shared tommy's 5 logins.)
    let tommy = Visitor::new(&demo, HOME);
    assert_eq!(tommy.login("tommy").await, 200);
    // And a code check counts per client the same way.
    for _ in 0..5 {
        let (status, _) = stranger
            .call("/api/verify", Some(json!({ "code": "000000" })))
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) = stranger
        .call("/api/verify", Some(json!({ "code": "000000" })))
        .await;
    assert_eq!(status, 429);
    let (status, _) = tommy
        .call("/api/verify", Some(json!({ "code": "000000" })))
        .await;
    assert_eq!(status, 401, "tommy's own checks are still counted as his");
}

#[tokio::test]
async fn ssks_challenges_go_only_to_the_registered_address() {
    let demo = demo().await;
    let mabel = Visitor::new(&demo, HOME);
    mabel.sign_in_as_mabel(&demo).await;

    for address in ["attacker@evil.example", "someone.else@example.com"] {
        let (status, answer) = mabel
            .call(
                "/api/tmr/session",
                Some(json!({ "purpose": "retrieve", "email": address })),
            )
            .await;
        assert_eq!(status, 403, "{answer}");
        assert!(
            demo.outbox.last_to(address).is_none(),
            "{address} was mailed"
        );
    }
    assert!(demo.outbox.last_to(MABEL_EMAIL).is_none());

    // Without an address, or with her own spelled differently: her registered address.
    for body in [
        json!({ "purpose": "retrieve" }),
        json!({ "purpose": "retrieve", "email": " Mabel@Example.COM " }),
    ] {
        let (status, session) = mabel.call("/api/tmr/session", Some(body)).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["auth_factor"]["value"], MABEL_EMAIL);
    }
    assert!(demo.outbox.last_to(MABEL_EMAIL).is_some());
    let (_, me) = mabel.call("/api/me", None).await;
    assert_eq!(me["email"], MABEL_EMAIL);
}

/// Two demo processes on one shared store: an identity saved through the first one's local SSKS
/// is retrieved through the second one's, with a challenge that the first one's SSKS sent.
async fn shared_ssks(redis_url: Option<String>, database_url: Option<String>) {
    // Its own Redis prefix / PostgreSQL schema: parallel runs never meet.
    let namespace = format!(
        "kw_demo_test_{}",
        keyward::random_string(
            &SystemRandom::new(),
            b"abcdefghijklmnopqrstuvwxyz0123456789",
            12
        )
        .unwrap()
    );
    let a = stores::connect(redis_url.clone(), database_url.clone(), &namespace)
        .await
        .unwrap();
    let b = stores::connect(redis_url, database_url, &namespace)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&a.app, &a.ssks), "{}", a.description);
    let outbox = Outbox::new();
    let rng: Arc<dyn SecureRandom> = Arc::new(SystemRandom::new());
    let (backend_a, url_a, task_a) = app::local_two_man_rule(
        a.app.clone(),
        a.ssks.clone(),
        Arc::new(outbox.clone()),
        rng.clone(),
        Vec::new(),
    )
    .await
    .unwrap();
    let (_, url_b, task_b) = app::local_two_man_rule(
        b.app.clone(),
        b.ssks.clone(),
        Arc::new(outbox.clone()),
        rng,
        Vec::new(),
    )
    .await
    .unwrap();
    let client = |url: String| {
        let ssks = SsksClient::new(
            SsksConfig::new(url, app::SSKS_APP_ID)
                .http(HttpConfig::default().allow_http_loopback(true)),
        )
        .unwrap();
        TwoManRuleClient::new(Arc::new(ssks), app::SSKS_APP_ID)
    };
    let factor = AuthFactor::email(MABEL_EMAIL).unwrap();
    let request = || ChallengeRequest::new("mabel", factor.clone(), "challenge: $$CHALLENGE$$");
    let first = backend_a.session(request()).await.unwrap();
    assert!(!first.must_authenticate, "a fresh namespace holds nothing");
    client(url_a)
        .save_identity(&first, None, b"seald identity of mabel")
        .await
        .unwrap();
    let second = backend_a.session(request()).await.unwrap();
    assert!(second.must_authenticate);
    let challenge = outbox.last_code_to(MABEL_EMAIL).unwrap();
    let got = client(url_b)
        .retrieve_identity(&second, Some(&challenge))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), b"seald identity of mabel");
    task_a.abort();
    task_b.abort();
    drop_namespace(&namespace);
}

/// Best effort: removes what a test wrote under `namespace` (Redis keys, PostgreSQL schema).
fn drop_namespace(namespace: &str) {
    use std::process::Command;
    if let Ok(out) = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "--scan", "--pattern"])
        .arg(format!("{namespace}:*"))
        .output()
    {
        let keys = String::from_utf8_lossy(&out.stdout);
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if !keys.is_empty() {
            let _ = Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "DEL"])
                .args(&keys)
                .output();
        }
    }
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!("DROP SCHEMA IF EXISTS \"{namespace}\" CASCADE"))
        .output();
}

#[tokio::test]
async fn local_ssks_shares_the_redis_store() {
    let addr = "127.0.0.1:6379";
    if !external::available_or_skip(
        "local_ssks_shares_the_redis_store",
        "redis-server on 127.0.0.1:6379",
        "apt-get install -y redis-server && redis-server --daemonize yes",
        external::tcp_answers(addr),
    ) {
        return;
    }
    shared_ssks(Some(format!("redis://{addr}")), None).await;
}

#[tokio::test]
async fn local_ssks_shares_the_postgres_store() {
    let addr = "127.0.0.1:5432";
    if !external::available_or_skip(
        "local_ssks_shares_the_postgres_store",
        "PostgreSQL on 127.0.0.1:5432 (trust auth, database test)",
        "apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect 17 main start",
        external::tcp_answers(addr),
    ) {
        return;
    }
    shared_ssks(
        None,
        Some(format!("postgres://postgres@{addr}/test?sslmode=disable")),
    )
    .await;
}

#[tokio::test]
async fn without_a_shared_store_the_local_ssks_keeps_its_own() {
    // The embedded default: two servers, two halves, two memory stores.
    let stores = stores::connect(None, None, stores::NAMESPACE)
        .await
        .unwrap();
    assert!(!Arc::ptr_eq(&stores.app, &stores.ssks));
    assert!(
        stores.description.starts_with("memory"),
        "{}",
        stores.description
    );
}
