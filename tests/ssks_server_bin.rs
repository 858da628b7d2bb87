//! The `keyward-ssks` binary as a self-hoster runs it: configured from the environment, on
//! PostgreSQL; an identity stored through one run is retrieved through the next.
#![cfg(feature = "ssks-server-bin")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;
#[path = "support/servers.rs"]
mod servers;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward::Secret;
use keyward::keysplit::TwoManRuleClient;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest};
use keyward::keysplit::{KeyKind, TwoManRuleBackend, TwoManRuleKeys};
use keyward::store::{MemoryStore, StateStore};

const APP_ID: &str = "00000000-0000-0000-0000-0000000000aa";
const API_KEY: &str = "self-hosted-ssks-api-key-1234";

struct Server {
    child: Child,
    url: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(env: &[(&str, String)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyward-ssks"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line: {first:?}; stderr {:?}",
                    lines.lock().unwrap()
                )
            })
            .to_owned();
        Server {
            child,
            url,
            stderr: lines,
        }
    }

    /// The challenge of the last console message.
    fn last_challenge(&self) -> Secret {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(code) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find_map(|l| l.split("challenge=").nth(1).map(str::to_owned))
            {
                return Secret::from(code.trim().to_owned());
            }
            assert!(Instant::now() < deadline, "no challenge was sent");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_survives_a_restart_of_the_server() {
    if !servers::shared_postgres("an_identity_survives_a_restart_of_the_server") {
        return;
    }
    let schema = servers::unique("kwssks");
    let port = servers::free_port();
    let env = [
        ("KEYWARD_SSKS_APP_ID", APP_ID.to_owned()),
        ("KEYWARD_SSKS_API_KEY", API_KEY.to_owned()),
        ("KEYWARD_SSKS_LISTEN", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            "postgres://postgres:never-printed-pw@127.0.0.1:5432/test".to_owned(),
        ),
        ("DATABASE_SCHEMA", schema.clone()),
        ("KEYWARD_SSKS_SENDER", "console".to_owned()),
    ];
    // The host's backend keeps the twoManRuleKeys; the server keeps the encrypted identities.
    let backend_state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let keys = TwoManRuleKeys::new(backend_state, APP_ID, KeyKind::Free).unwrap();
    let request = || {
        ChallengeRequest::new(
            "dave",
            AuthFactor::email("dave@example.com").unwrap(),
            "challenge=$$CHALLENGE$$",
        )
    };
    let identity = b"dave's seald identity".to_vec();

    let server = Server::start(&env);
    let ssks = Arc::new(
        SsksClient::new(
            SsksConfig::new(&server.url, APP_ID)
                .http(keyward::http::HttpConfig::default().allow_http_loopback(true))
                .api_key(API_KEY),
        )
        .unwrap(),
    );
    let backend = TwoManRuleBackend::new(ssks.clone(), keys.clone());
    let device = TwoManRuleClient::new(ssks, APP_ID);
    let session = backend.session(request()).await.unwrap();
    device
        .save_identity(&session, None, &identity)
        .await
        .unwrap();
    let first_log = server.stderr.lock().unwrap().join("\n");
    assert!(!first_log.contains("never-printed-pw"), "{first_log}");
    drop(server);

    let server = Server::start(&env);
    let ssks = Arc::new(
        SsksClient::new(
            SsksConfig::new(&server.url, APP_ID)
                .http(keyward::http::HttpConfig::default().allow_http_loopback(true))
                .api_key(API_KEY),
        )
        .unwrap(),
    );
    let backend = TwoManRuleBackend::new(ssks.clone(), keys);
    let device = TwoManRuleClient::new(ssks, APP_ID);
    let session = backend.session(request()).await.unwrap();
    let challenge = server.last_challenge();
    let got = device
        .retrieve_identity(&session, Some(&challenge))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), identity.as_slice());
    drop(server);
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .output();
}

#[test]
fn it_refuses_to_start_without_durable_storage_or_credentials() {
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyward-ssks"));
        command.env_clear().stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&[]);
    assert!(!ok);
    assert!(err.contains("KEYWARD_SSKS_APP_ID"), "{err}");
    let (ok, err) = run(&[
        ("KEYWARD_SSKS_APP_ID", APP_ID),
        ("KEYWARD_SSKS_API_KEY", API_KEY),
        ("KEYWARD_SSKS_SENDER", "console"),
    ]);
    assert!(!ok);
    assert!(err.contains("DATABASE_URL"), "{err}");
    let (ok, err) = run(&[
        ("KEYWARD_SSKS_APP_ID", APP_ID),
        ("KEYWARD_SSKS_API_KEY", "short"),
    ]);
    assert!(!ok);
    assert!(err.contains("at least 16 bytes"), "{err}");
}

/// `KEYWARD_SSKS_CORS_ORIGINS` (#14 item 7): the binary answers the browser plugin's preflights
/// for the listed origins only, and refuses to start on a malformed list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_origins_come_from_the_environment() {
    let port = servers::free_port();
    let env = [
        ("KEYWARD_SSKS_APP_ID", APP_ID.to_owned()),
        ("KEYWARD_SSKS_API_KEY", API_KEY.to_owned()),
        ("KEYWARD_SSKS_SENDER", "console".to_owned()),
        ("KEYWARD_SSKS_MEMORY", "1".to_owned()),
        ("KEYWARD_SSKS_LISTEN", format!("127.0.0.1:{port}")),
        (
            "KEYWARD_SSKS_CORS_ORIGINS",
            "https://app.example.com, http://localhost:8080".to_owned(),
        ),
    ];
    let server = Server::start(&env);
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/tmr/front/search/", server.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-seald-appid,x-seald-session,x-seald-version",
            )
            .send()
    };
    for origin in ["https://app.example.com", "http://localhost:8080"] {
        let answer = preflight(origin).await.unwrap();
        assert_eq!(answer.status(), 204, "{origin}");
        assert_eq!(
            answer.headers()["access-control-allow-origin"]
                .to_str()
                .unwrap(),
            origin
        );
    }
    let answer = preflight("https://evil.example").await.unwrap();
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    drop(server);

    let out = Command::new(env!("CARGO_BIN_EXE_keyward-ssks"))
        .env_clear()
        .stdin(Stdio::null())
        .envs(env.iter().take(5).map(|(k, v)| (*k, v.as_str())))
        .env("KEYWARD_SSKS_CORS_ORIGINS", "https://app.example.com/path")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KEYWARD_SSKS_CORS_ORIGINS"), "{err}");
}
