//! Two OS processes sharing one store: the proofs that keyward's guarantees hold across
//! instances, restarts and faults.
//!
//! This file is its own harness (`harness = false`). Run with `KEYWARD_INSTANCE=1`, the binary is
//! one keyward *instance*: a relying party, a self-hosted OTP provider, the 2-man-rule backend
//! and a local SSKS server, all on the store named by its environment, behind a small JSON
//! control API on loopback. Run normally, it starts instances of itself as child processes and
//! drives them the way a load balancer would send one user's requests to different instances,
//! playing the browser with the software authenticator and the user's device with the 2-man-rule
//! client:
//!
//! - Redis, then a three-node Redis Cluster: a WebAuthn registration started on A finishes on B,
//!   and replaying the response on A is refused; the passkey registered through A signs in
//!   through B (and a replayed assertion is refused); 1,000 concurrent wrong OTP guesses spread
//!   over both count no more than the attempt limit, and the right code is refused afterwards; an
//!   identity stored through A's SSKS server is retrieved through B's.
//! - PostgreSQL for the durable role (Redis for the ephemeral one): credentials, twoManRuleKeys
//!   and stored identities survive killing the instance and starting a new one.
//! - A private Redis that is stopped mid-flow: typed errors, no approval, no credential stored,
//!   and flows work again once Redis is back, without restarting the instance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;
#[path = "support/servers.rs"]
mod servers;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

const RP_ID: &str = "app.example";
const ORIGIN: &str = "https://app.example";
const APP_ID: &str = "00000000-0000-0000-0000-000000000001";
const API_KEY: &str = "two-instance-ssks-api-key";
const OTP_SECRET: &str = "two-instance-otp-server-secret-0123456789";
const MAX_CHECKS: u32 = 5;

fn main() {
    if std::env::var_os("KEYWARD_INSTANCE").is_some() {
        instance::run();
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: &[(&str, fn())] = &[
        ("redis_two_instances", redis_two_instances),
        ("redis_cluster_two_instances", redis_cluster_two_instances),
        (
            "postgres_durable_state_survives_restart",
            postgres_durable_state_survives_restart,
        ),
        (
            "redis_outage_mid_flow_fails_closed_and_recovers",
            redis_outage_mid_flow_fails_closed_and_recovers,
        ),
    ];
    let (mut passed, mut failed) = (0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let outcome = std::panic::catch_unwind(test);
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    let result = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The driver side: child processes and their control API.

/// One instance process. Killed on drop.
struct Instance {
    child: Child,
    control: String,
    ssks: String,
    messages: Arc<Mutex<Vec<Value>>>,
    http: reqwest::Client,
}

impl Instance {
    fn start(env: &[(&str, String)]) -> Instance {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env("KEYWARD_INSTANCE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        {
            let messages = messages.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("READY ") {
                        let _ = ready_tx.send(rest.to_owned());
                    } else if let Some(rest) = line.strip_prefix("MESSAGE ") {
                        messages
                            .lock()
                            .unwrap()
                            .push(serde_json::from_str(rest).unwrap());
                    }
                }
            });
        }
        let ready = match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ready) => ready,
            Err(_) => {
                let _ = child.kill();
                panic!("instance did not start");
            }
        };
        let mut parts = ready.split_whitespace();
        let control = parts.next().unwrap().to_owned();
        let ssks = parts.next().unwrap().to_owned();
        Instance {
            child,
            control,
            ssks,
            messages,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// POSTs JSON to the control API: `Ok(body)` on 200, `Err(error kind)` otherwise.
    async fn call(&self, path: &str, body: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}{path}", self.control))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let ok = response.status().is_success();
        let value: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        if ok {
            Ok(value)
        } else {
            let kind = value["kind"].as_str().unwrap_or("?").to_owned();
            if kind == "storage" {
                eprintln!("storage error from {path}: {}", value["message"]);
            }
            Err(kind)
        }
    }

    /// The code of the last message sent to `to`, waiting for it briefly.
    fn code_sent_to(&self, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|m| m["to"] == to)
            {
                return m["code"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no message to {to}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn authenticator() -> keyward::testing::SoftAuthenticator {
    keyward::testing::SoftAuthenticator::new(-7, ORIGIN).unwrap()
}

/// Registration started on `start`, finished on `finish`; returns (credential id, the response).
async fn register(
    start: &Instance,
    finish: &Instance,
    soft: &keyward::testing::SoftAuthenticator,
    user: &str,
) -> (String, Value, Value) {
    let started = start
        .call("/reg/start", json!({ "user_id": user }))
        .await
        .unwrap();
    let options = serde_json::from_value(started["options"].clone()).unwrap();
    let response = serde_json::to_value(soft.register(&options).unwrap()).unwrap();
    let done = finish
        .call(
            "/reg/finish",
            json!({ "state": started["state"], "response": response.to_string() }),
        )
        .await
        .unwrap();
    (
        done["credential_id"].as_str().unwrap().to_owned(),
        started["state"].clone(),
        response,
    )
}

/// Authentication started on `start`, finished on `finish`.
async fn sign_in(
    start: &Instance,
    finish: &Instance,
    soft: &keyward::testing::SoftAuthenticator,
    user: &str,
) -> (Result<Value, String>, Value, Value) {
    let started = start
        .call("/auth/start", json!({ "user_id": user }))
        .await
        .unwrap();
    let options = serde_json::from_value(started["options"].clone()).unwrap();
    let response = serde_json::to_value(soft.authenticate(&options).unwrap()).unwrap();
    let done = finish
        .call(
            "/auth/finish",
            json!({ "state": started["state"], "response": response.to_string() }),
        )
        .await;
    (done, started["state"].clone(), response)
}

/// The user's device: the 2-man-rule client talking to one instance's SSKS server.
fn device(instance: &Instance) -> keyward::keysplit::TwoManRuleClient {
    use keyward::keysplit::ssks::{SsksClient, SsksConfig};
    let ssks = SsksClient::new(
        SsksConfig::new(&instance.ssks, APP_ID)
            .http(keyward::http::HttpConfig::default().allow_http_loopback(true)),
    )
    .unwrap();
    keyward::keysplit::TwoManRuleClient::new(Arc::new(ssks), APP_ID)
}

/// The backend's `getSSKSSession` answer from `instance`, as the frontend rebuilds it.
async fn tmr_session(
    instance: &Instance,
    user: &str,
    email: &str,
) -> keyward::keysplit::SsksSession {
    use keyward::keysplit::{AuthFactor, SessionId};
    use keyward::keysplit::{SsksSession, TwoManRuleKey};
    let s = instance
        .call("/tmr/session", json!({ "user_id": user, "email": email }))
        .await
        .unwrap();
    SsksSession {
        session_id: SessionId::new(s["session_id"].as_str().unwrap()),
        must_authenticate: s["must_authenticate"].as_bool().unwrap(),
        two_man_rule_key: TwoManRuleKey::free(s["two_man_rule_key"].as_str().unwrap()).unwrap(),
        user_id: s["user_id"].as_str().unwrap().to_owned(),
        auth_factor: serde_json::from_value::<AuthFactor>(s["auth_factor"].clone()).unwrap(),
    }
}

/// Every cross-instance proof on two instances of one shared store.
async fn cross_instance_proofs(a: &Instance, b: &Instance) {
    let soft = authenticator();

    // A ceremony started on A finishes on B; the same response replayed on A is refused.
    let (credential_id, state, response) = register(a, b, &soft, "alice").await;
    let replay = a
        .call(
            "/reg/finish",
            json!({ "state": state, "response": response.to_string() }),
        )
        .await;
    assert!(replay.is_err(), "a replayed registration was accepted");
    let listed = b
        .call("/credentials", json!({ "user_id": "alice" }))
        .await
        .unwrap();
    assert_eq!(
        listed["ids"],
        json!([credential_id]),
        "one credential, visible to B"
    );
    let listed_a = a
        .call("/credentials", json!({ "user_id": "alice" }))
        .await
        .unwrap();
    assert_eq!(listed_a, listed, "and to A");

    // The passkey registered through A signs in through B (and the other way round); a
    // replayed assertion is refused on either.
    let (done, state, response) = sign_in(a, b, &soft, "alice").await;
    assert_eq!(done.unwrap()["user_id"], "alice");
    for instance in [a, b] {
        let replay = instance
            .call(
                "/auth/finish",
                json!({ "state": state, "response": response.to_string() }),
            )
            .await;
        assert!(replay.is_err(), "a replayed assertion was accepted");
    }
    let (done, _, _) = sign_in(b, a, &soft, "alice").await;
    assert_eq!(done.unwrap()["user_id"], "alice");

    // 1,000 concurrent wrong guesses spread over both count no more than the attempt limit.
    let to = "+15005550006";
    let started = a.call("/otp/start", json!({ "to": to })).await.unwrap();
    let sid = started["sid"].as_str().unwrap().to_owned();
    let code = a.code_sent_to(to);
    let wrong = if code.starts_with('0') { "1" } else { "0" }.repeat(code.len());
    let guesses = (0..1000).map(|i| {
        let instance = if i % 2 == 0 { a } else { b };
        let body = json!({ "sid": sid, "code": wrong });
        async move { instance.call("/otp/check", body).await }
    });
    let results = futures_util::future::join_all(guesses).await;
    let counted = results
        .iter()
        .filter(|r| matches!(r, Ok(v) if v["approved"] == false))
        .count();
    let approved = results
        .iter()
        .filter(|r| matches!(r, Ok(v) if v["approved"] == true))
        .count();
    assert_eq!(approved, 0, "a wrong code was approved");
    assert!(
        counted <= MAX_CHECKS as usize,
        "{counted} wrong guesses were checked against the code; the limit is {MAX_CHECKS}"
    );
    for r in &results {
        if let Err(kind) = r {
            assert!(
                kind == "too many attempts" || kind == "not found",
                "unexpected refusal: {kind}"
            );
        }
    }
    for instance in [a, b] {
        let right = instance
            .call("/otp/check", json!({ "sid": sid, "code": code }))
            .await;
        assert!(
            !matches!(&right, Ok(v) if v["approved"] == true),
            "the right code was approved after the attempts ran out"
        );
    }

    // An identity stored through A's SSKS server is retrieved through B's.
    let identity = b"seald identity of alice: keys and certificates".to_vec();
    let email = "alice@example.com";
    let session = tmr_session(a, "alice", email).await;
    device(a)
        .save_identity(&session, None, &identity)
        .await
        .unwrap();
    // A session A's backend opened is validated and read through B's SSKS server, which has
    // opened none itself: it finds the session through the session-id key in the shared store.
    let session = tmr_session(a, "alice", email).await;
    let code = keyward::Secret::from(a.code_sent_to(email));
    let got = device(b)
        .retrieve_identity(&session, Some(&code))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), identity.as_slice());
    let session = tmr_session(b, "alice", email).await;
    let code = keyward::Secret::from(b.code_sent_to(email));
    let got = device(b)
        .retrieve_identity(&session, Some(&code))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), identity.as_slice());
}

fn redis_two_instances() {
    if !servers::shared_redis("redis_two_instances") {
        return;
    }
    let prefix = servers::SharedRedisPrefix::new("kw2i");
    let env = [
        ("KW_STORE", "redis".to_owned()),
        ("KW_REDIS_URL", servers::REDIS_URL.to_owned()),
        ("KW_PREFIX", prefix.as_str().to_owned()),
    ];
    let (a, b) = (Instance::start(&env), Instance::start(&env));
    runtime().block_on(cross_instance_proofs(&a, &b));
}

fn redis_cluster_two_instances() {
    if !servers::redis_binaries("redis_cluster_two_instances") {
        return;
    }
    let cluster = servers::RedisCluster::start();
    let env = [
        ("KW_STORE", "cluster".to_owned()),
        ("KW_REDIS_URL", cluster.urls().join(",")),
        ("KW_PREFIX", "kw:".to_owned()),
    ];
    let (a, b) = (Instance::start(&env), Instance::start(&env));
    runtime().block_on(cross_instance_proofs(&a, &b));
}

fn postgres_durable_state_survives_restart() {
    if !servers::shared_postgres("postgres_durable_state_survives_restart")
        || !servers::shared_redis("postgres_durable_state_survives_restart")
    {
        return;
    }
    let schema = servers::unique("kwrestart");
    let prefix = servers::SharedRedisPrefix::new("kwrestart");
    let env = [
        ("KW_STORE", "split".to_owned()),
        ("KW_REDIS_URL", servers::REDIS_URL.to_owned()),
        ("KW_PREFIX", prefix.as_str().to_owned()),
        ("KW_PG_URL", servers::POSTGRES_URL.to_owned()),
        ("KW_PG_SCHEMA", schema.clone()),
    ];
    let rt = runtime();
    let soft = authenticator();
    let identity = b"identity that must survive".to_vec();
    let email = "bob@example.com";
    let first = Instance::start(&env);
    let (credential_id, key_before) = rt.block_on(async {
        let (credential_id, _, _) = register(&first, &first, &soft, "bob").await;
        let session = tmr_session(&first, "bob", email).await;
        device(&first)
            .save_identity(&session, None, &identity)
            .await
            .unwrap();
        (credential_id, session.two_man_rule_key.expose().to_owned())
    });
    first.kill();

    let second = Instance::start(&env);
    rt.block_on(async {
        let listed = second
            .call("/credentials", json!({ "user_id": "bob" }))
            .await
            .unwrap();
        assert_eq!(
            listed["ids"],
            json!([credential_id]),
            "the credential survived"
        );
        let (done, _, _) = sign_in(&second, &second, &soft, "bob").await;
        assert_eq!(done.unwrap()["user_id"], "bob", "and signs in");
        let session = tmr_session(&second, "bob", email).await;
        assert_eq!(
            session.two_man_rule_key.expose(),
            key_before,
            "the twoManRuleKey survived"
        );
        let code = keyward::Secret::from(second.code_sent_to(email));
        let got = device(&second)
            .retrieve_identity(&session, Some(&code))
            .await
            .unwrap();
        assert_eq!(
            got.identity.expose(),
            identity.as_slice(),
            "the identity survived"
        );
    });
    drop(second);
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .output();
}

fn redis_outage_mid_flow_fails_closed_and_recovers() {
    if !servers::redis_binaries("redis_outage_mid_flow_fails_closed_and_recovers") {
        return;
    }
    let mut redis = servers::RedisServer::start();
    let env = [
        ("KW_STORE", "redis".to_owned()),
        ("KW_REDIS_URL", redis.url()),
        ("KW_PREFIX", "kw:".to_owned()),
    ];
    let a = Instance::start(&env);
    let rt = runtime();
    let soft = authenticator();
    rt.block_on(async {
        // Ceremonies and a code started while Redis is up...
        let reg = a
            .call("/reg/start", json!({ "user_id": "carol" }))
            .await
            .unwrap();
        let options = serde_json::from_value(reg["options"].clone()).unwrap();
        let reg_response = serde_json::to_value(soft.register(&options).unwrap()).unwrap();
        let to = "+15005550007";
        let otp = a.call("/otp/start", json!({ "to": to })).await.unwrap();
        let code = a.code_sent_to(to);

        // ...are finished while it is down: typed storage errors, nothing approved or stored.
        redis.stop();
        let finish = a
            .call(
                "/reg/finish",
                json!({ "state": reg["state"], "response": reg_response.to_string() }),
            )
            .await;
        assert_eq!(
            finish,
            Err("storage".to_owned()),
            "registration during the outage"
        );
        let check = a
            .call("/otp/check", json!({ "sid": otp["sid"], "code": code }))
            .await;
        assert_eq!(
            check,
            Err("storage".to_owned()),
            "the right code during the outage"
        );
        let start = a.call("/auth/start", json!({ "user_id": "carol" })).await;
        assert_eq!(start, Err("storage".to_owned()));

        // Redis comes back (empty: it keeps nothing on disk). The ceremony and the code died
        // with it, and no credential was half-stored...
        redis.resume();
        let deadline = Instant::now() + Duration::from_secs(15);
        let listed = loop {
            match a.call("/credentials", json!({ "user_id": "carol" })).await {
                Ok(v) => break v,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("the instance did not reconnect: {e}"),
            }
        };
        assert_eq!(listed["ids"], json!([]), "no credential was stored");
        let late = a
            .call(
                "/reg/finish",
                json!({ "state": reg["state"], "response": reg_response.to_string() }),
            )
            .await;
        assert!(late.is_err(), "the ceremony did not survive the outage");
        let late = a
            .call("/otp/check", json!({ "sid": otp["sid"], "code": code }))
            .await;
        assert!(
            !matches!(&late, Ok(v) if v["approved"] == true),
            "the code did not survive the outage"
        );

        // ...and new flows work on the same instance, never restarted.
        let (credential_id, _, _) = register(&a, &a, &soft, "carol").await;
        let listed = a
            .call("/credentials", json!({ "user_id": "carol" }))
            .await
            .unwrap();
        assert_eq!(listed["ids"], json!([credential_id]));
        let (done, _, _) = sign_in(&a, &a, &soft, "carol").await;
        assert_eq!(done.unwrap()["user_id"], "carol");
        let otp = a.call("/otp/start", json!({ "to": to })).await.unwrap();
        let code = a.code_sent_to(to);
        let ok = a
            .call("/otp/check", json!({ "sid": otp["sid"], "code": code }))
            .await
            .unwrap();
        assert_eq!(ok["approved"], true);
    });
}

// ---------------------------------------------------------------------------------------------
// The instance side.

mod instance {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use axum::Json;
    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use keyward::keysplit::local::LocalKeySplitStore;
    use keyward::keysplit::server::{ServerConfig, serve};
    use keyward::keysplit::ssks::{SsksClient, SsksConfig};
    use keyward::keysplit::{AuthFactor, ChallengeRequest};
    use keyward::keysplit::{KeyKind, TwoManRuleBackend, TwoManRuleKeys};
    use keyward::otp::{
        Channel, CheckCode, CodeSender, LocalOtpProvider, OtpProvider, OutgoingMessage,
        StartVerification,
    };
    use keyward::store::{
        PostgresConfig, PostgresStore, RedisConfig, RedisStore, StateStore, Stores,
    };
    use keyward::webauthn::{
        AuthenticationRequest, AuthenticatorVerifier, RegistrationRequest, RelyingParty,
        RelyingPartyConfig, UserEntity,
    };
    use keyward::{Error, Secret};
    use serde_json::{Value, json};

    use super::{API_KEY, APP_ID, B64, MAX_CHECKS, ORIGIN, OTP_SECRET, RP_ID};
    use base64::Engine as _;

    /// Prints every message as one `MESSAGE {json}` line, code included: the driver reads it as
    /// the user's phone or mailbox would.
    #[derive(Debug)]
    struct StdoutSender;

    #[async_trait]
    impl CodeSender for StdoutSender {
        async fn send(&self, message: &OutgoingMessage) -> keyward::Result<()> {
            let line = json!({
                "to": message.to,
                "code": message.code.expose_str().unwrap_or_default(),
            });
            println!("MESSAGE {line}");
            Ok(())
        }
    }

    struct App {
        rp: RelyingParty,
        otp: LocalOtpProvider,
        tmr: TwoManRuleBackend,
    }

    fn env(name: &str) -> String {
        std::env::var(name).unwrap_or_default()
    }

    async fn redis() -> Arc<dyn StateStore> {
        let urls = env("KW_REDIS_URL");
        let config = if env("KW_STORE") == "cluster" {
            RedisConfig::cluster(urls.split(',').map(str::to_owned))
        } else {
            RedisConfig::new(urls)
        };
        let config = config
            .prefix(env("KW_PREFIX"))
            .connect_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(8));
        Arc::new(RedisStore::connect(config).await.unwrap())
    }

    async fn store() -> Arc<dyn StateStore> {
        match env("KW_STORE").as_str() {
            "redis" | "cluster" => redis().await,
            "split" => {
                let durable = PostgresStore::connect(
                    PostgresConfig::new(env("KW_PG_URL")).schema(env("KW_PG_SCHEMA")),
                )
                .await
                .unwrap();
                Arc::new(Stores::split(redis().await, Arc::new(durable)))
            }
            other => panic!("unknown KW_STORE {other}"),
        }
    }

    pub(super) fn run() {
        super::runtime().block_on(async {
            let store = store().await;
            let sender: Arc<dyn CodeSender> = Arc::new(StdoutSender);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let local = LocalKeySplitStore::new(store.clone(), sender.clone());
            let ssks_server = serve(listener, local, ServerConfig::new(APP_ID, API_KEY))
                .await
                .unwrap();
            let ssks = SsksClient::new(
                SsksConfig::new(ssks_server.base_url(), APP_ID)
                    .http(keyward::http::HttpConfig::default().allow_http_loopback(true))
                    .api_key(API_KEY),
            )
            .unwrap();
            let keys = TwoManRuleKeys::new(store.clone(), APP_ID, KeyKind::Free).unwrap();
            let rp = RelyingParty::new(
                RelyingPartyConfig::new(RP_ID, "Two instances", ORIGIN).unwrap(),
                store.clone(),
            );
            let otp = LocalOtpProvider::builder(store.clone(), sender, Secret::from(OTP_SECRET))
                .max_check_attempts(MAX_CHECKS)
                .send_rate_limit(None)
                .build()
                .unwrap();
            let app = Arc::new(App {
                rp,
                otp,
                tmr: TwoManRuleBackend::new(Arc::new(ssks), keys),
            });
            let router = Router::new()
                .route("/reg/start", post(reg_start))
                .route("/reg/finish", post(reg_finish))
                .route("/auth/start", post(auth_start))
                .route("/auth/finish", post(auth_finish))
                .route("/credentials", post(credentials))
                .route("/otp/start", post(otp_start))
                .route("/otp/check", post(otp_check))
                .route("/tmr/session", post(tmr_session))
                .with_state(app);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let control = listener.local_addr().unwrap();
            println!("READY http://{control} {}", ssks_server.base_url());
            axum::serve(listener, router).await.unwrap();
        });
    }

    type Shared = State<Arc<App>>;

    struct Failure(Error);

    impl IntoResponse for Failure {
        fn into_response(self) -> Response {
            let body = json!({ "kind": self.0.kind().as_str(), "message": self.0.to_string() });
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
    }

    impl From<Error> for Failure {
        fn from(e: Error) -> Self {
            Failure(e)
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Failure> {
        serde_json::from_value(v.clone())
            .map_err(|_| Failure(Error::invalid_input("bad control request")))
    }

    async fn reg_start(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let user = body["user_id"].as_str().unwrap_or_default();
        let request = RegistrationRequest::new(UserEntity::new(user.as_bytes(), user, user)?);
        let (options, state) = app.rp.start_registration(request).await?;
        Ok(Json(json!({ "options": options, "state": state })))
    }

    async fn reg_finish(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let state = decode(&body["state"])?;
        let response = body["response"].as_str().unwrap_or_default();
        let credential = app.rp.finish_registration_json(state, response).await?;
        Ok(Json(
            json!({ "credential_id": B64.encode(&credential.credential_id) }),
        ))
    }

    async fn auth_start(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let user = body["user_id"].as_str().unwrap_or_default();
        let (options, state) = app
            .rp
            .start_authentication(AuthenticationRequest::for_user(user.as_bytes()))
            .await?;
        Ok(Json(json!({ "options": options, "state": state })))
    }

    async fn auth_finish(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let state = decode(&body["state"])?;
        let response = body["response"].as_str().unwrap_or_default();
        let verified = app.rp.finish_authentication_json(state, response).await?;
        let user = String::from_utf8_lossy(verified.user_id()).into_owned();
        Ok(Json(json!({ "user_id": user })))
    }

    async fn credentials(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let user = body["user_id"].as_str().unwrap_or_default();
        let ids: Vec<String> = app
            .rp
            .credentials_for_user(user.as_bytes())
            .await?
            .iter()
            .map(|c| B64.encode(&c.credential_id))
            .collect();
        Ok(Json(json!({ "ids": ids })))
    }

    async fn otp_start(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let to = body["to"].as_str().unwrap_or_default();
        let v = app
            .otp
            .start(StartVerification::new(to, Channel::Sms))
            .await?;
        Ok(Json(json!({ "sid": v.sid })))
    }

    async fn otp_check(
        State(app): Shared,
        Json(body): Json<Value>,
    ) -> Result<Json<Value>, Failure> {
        let sid = body["sid"].as_str().unwrap_or_default();
        let code = body["code"].as_str().unwrap_or_default();
        let outcome = app.otp.check(CheckCode::sid(sid, code)).await?;
        Ok(Json(json!({ "approved": outcome.approved().is_some() })))
    }

    async fn tmr_session(State(app): Shared, Json(body): Json<Value>) -> Result<Response, Failure> {
        let user = body["user_id"].as_str().unwrap_or_default();
        let email = body["email"].as_str().unwrap_or_default();
        let mut request =
            ChallengeRequest::new(user, AuthFactor::email(email)?, "Code: $$CHALLENGE$$");
        request.create_user = true;
        let session = app.tmr.session(request).await?;
        Ok(Json(serde_json::to_value(&session).unwrap_or_default()).into_response())
    }
}
