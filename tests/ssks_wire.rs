//! The exact requests `SsksClient` sends, and its retry policy, against a recording HTTP server
//! on 127.0.0.1.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "ssks")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use keyward::http::HttpConfig;
use keyward::keysplit::ssks::{PRODUCTION_URL, STAGING_URL, SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest, SessionId};
use keyward::{ErrorKind, KeySplitStore, Secret};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Recorder {
    requests: Mutex<Vec<Recorded>>,
    answers: Mutex<VecDeque<(u16, String)>>,
}

async fn record(
    State(rec): State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    rec.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
    });
    let (status, body) = rec
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((500, "{}".into()));
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    if status == 429 {
        response
            .headers_mut()
            .insert("retry-after", "0".parse().unwrap());
    }
    response
}

async fn recorder(answers: &[(u16, &str)]) -> (Arc<Recorder>, SsksClient) {
    let rec = Arc::new(Recorder::default());
    rec.answers
        .lock()
        .unwrap()
        .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    let app = Router::new().fallback(record).with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = SsksClient::new(
        // A trailing slash on the base URL is tolerated.
        SsksConfig::new(format!("http://{addr}/"), "app-123")
            .api_key("api-key-xyz")
            .http(
                HttpConfig::default()
                    .backoff(Duration::from_millis(1), Duration::from_millis(5))
                    .allow_http_loopback(true),
            ),
    )
    .unwrap();
    (rec, client)
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn factor() -> AuthFactor {
    AuthFactor::email("alice@example.com").unwrap()
}

#[tokio::test]
async fn challenge_send_request_is_exact() {
    let (rec, client) =
        recorder(&[(200, r#"{"session_id":"sess-1","must_authenticate":true}"#)]).await;
    // A factor that came from elsewhere is normalized before sending.
    let raw_factor = AuthFactor {
        kind: keyward::keysplit::AuthFactorType::Email,
        value: " Alice@Example.COM ".into(),
    };
    let session = client
        .challenge_send(
            ChallengeRequest::new("alice", raw_factor, "<b>$$CHALLENGE$$</b>")
                .subject("Your code")
                .force_auth(true),
        )
        .await
        .unwrap();
    assert_eq!(session.session_id.expose(), "sess-1");
    assert!(session.must_authenticate);
    let requests = rec.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/tmr/back/challenge_send/");
    assert_eq!(header(r, "x-seald-appid"), Some("app-123"));
    assert_eq!(header(r, "x-seald-apikey"), Some("api-key-xyz"));
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert!(r.headers.get("x-seald-session").is_none());
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({
            "create_user": true,
            "user_id": "alice",
            "auth_factor": {"type": "EM", "value": "alice@example.com"},
            "template": "<b>$$CHALLENGE$$</b>",
            "subject": "Your code",
            "force_auth": true,
            "fake_otp": false,
        })
    );
}

#[tokio::test]
async fn front_requests_are_exact() {
    let (rec, client) = recorder(&[
        (200, r#"{"new_id":"sess-2"}"#),
        (200, r#"{"id":"9b2f1c1e-0000-4000-8000-000000000000"}"#),
        (200, r#"{"data_b64":"AAAA","authenticated":true}"#),
    ])
    .await;
    let sms = AuthFactor::sms("+33 6 12 34 56 78").unwrap();
    let new_id = client
        .validate_challenge(&SessionId::new("sess-1"), &Secret::from("abcdefgh"), &sms)
        .await
        .unwrap();
    assert_eq!(new_id.expose(), "sess-2");
    let id = client.push(&new_id, &sms, "AAAA").await.unwrap();
    assert_eq!(id, "9b2f1c1e-0000-4000-8000-000000000000");
    let blob = client.search(&new_id).await.unwrap();
    assert_eq!(blob.data_b64, "AAAA");
    assert!(blob.authenticated);

    let requests = rec.requests.lock().unwrap().clone();
    let paths: Vec<_> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/tmr/front/challenge_validate/",
            "/tmr/front/push/",
            "/tmr/front/search/"
        ]
    );
    let sessions: Vec<_> = requests
        .iter()
        .map(|r| header(r, "x-seald-session"))
        .collect();
    assert_eq!(sessions, [Some("sess-1"), Some("sess-2"), Some("sess-2")]);
    for r in &requests {
        assert_eq!(r.method, Method::POST);
        assert_eq!(header(r, "x-seald-appid"), Some("app-123"));
        // As the JS SDK sends `sdk-js/node/0.25.0` (issue #14 item 7).
        assert_eq!(
            header(r, "x-seald-version"),
            Some(keyward::keysplit::ssks::SEALD_VERSION)
        );
        assert!(
            r.headers.get("x-seald-apikey").is_none(),
            "the api key stays on the backend"
        );
    }
    let validate: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        validate,
        json!({"challenge": "abcdefgh", "auth_factor": {"type": "SMS", "value": "+33612345678"}})
    );
    let push: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(
        push,
        json!({"data_b64": "AAAA", "auth_factor": {"type": "SMS", "value": "+33612345678"}})
    );
    assert!(requests[2].body.is_empty());
}

#[tokio::test]
async fn sends_are_not_retried_except_on_429() {
    // challenge_send: a 503 may have sent the email, so it is not retried.
    let (rec, client) = recorder(&[(503, "{}")]).await;
    let request = ChallengeRequest::new("alice", factor(), "$$CHALLENGE$$");
    let err = client.challenge_send(request.clone()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert!(err.is_retryable());
    assert_eq!(rec.requests.lock().unwrap().len(), 1);

    // A 429 says the server did not act: retried.
    let (rec, client) = recorder(&[
        (429, "{}"),
        (200, r#"{"session_id":"s","must_authenticate":false}"#),
    ])
    .await;
    assert!(client.challenge_send(request).await.is_ok());
    assert_eq!(rec.requests.lock().unwrap().len(), 2);

    // challenge_validate counts an attempt: not retried on 5xx.
    let (rec, client) = recorder(&[(502, "{}")]).await;
    let err = client
        .validate_challenge(&SessionId::new("s"), &Secret::from("abcdefgh"), &factor())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert_eq!(rec.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn push_and_search_are_retried() {
    let (rec, client) = recorder(&[(503, "{}"), (500, "{}"), (200, r#"{"id":"u"}"#)]).await;
    assert_eq!(
        client
            .push(&SessionId::new("s"), &factor(), "AAAA")
            .await
            .unwrap(),
        "u"
    );
    assert_eq!(rec.requests.lock().unwrap().len(), 3);

    // Retries are bounded (1 + max_retries attempts).
    let (rec, client) = recorder(&[]).await;
    let err = client.search(&SessionId::new("s")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert_eq!(
        rec.requests.lock().unwrap().len(),
        1 + HttpConfig::default().max_retries as usize
    );
}

#[tokio::test]
async fn typed_errors() {
    let cases: &[(u16, &str, ErrorKind)] = &[
        (401, "{}", ErrorKind::Unauthorized),
        (
            403,
            r#"{"detail":"Incorrect authentication credentials."}"#,
            ErrorKind::Unauthorized,
        ),
        (404, r#"{"detail":"Not found."}"#, ErrorKind::NotFound),
        (406, "{}", ErrorKind::Config),
        (
            429,
            "{}",
            ErrorKind::RateLimited {
                retry_after: Some(Duration::ZERO),
            },
        ),
        (200, "not json", ErrorKind::Protocol),
    ];
    for (status, body, kind) in cases {
        // 429 is retried up to max_retries times: give it enough answers.
        let answers: Vec<(u16, &str)> = std::iter::repeat_n((*status, *body), 4).collect();
        let (_, client) = recorder(&answers).await;
        let err = client
            .challenge_send(ChallengeRequest::new("alice", factor(), "$$CHALLENGE$$"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "status {status}");
        assert!(!format!("{err:?} {err}").contains("api-key-xyz"));
    }
    let (_, client) = recorder(&[(404, r#"{"model":"TMRKey"}"#)]).await;
    let err = client.search(&SessionId::new("s")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.message(), "no identity is stored for this user");
}

#[test]
fn known_servers() {
    assert_eq!(SsksConfig::production("a").base_url, PRODUCTION_URL);
    assert!(!SsksConfig::production("a").test_server);
    assert_eq!(SsksConfig::staging("a").base_url, STAGING_URL);
    assert!(SsksConfig::staging("a").test_server);
}

/// `force_auth`, `subject` and `fake_otp` go on the wire as the request sets them (#14 item 7):
/// the defaults (`false`, absent, `false`) and every one turned on, towards a test server.
#[tokio::test]
async fn challenge_send_carries_force_auth_subject_and_fake_otp_as_set() {
    let answer = r#"{"session_id":"sess-1","must_authenticate":false}"#;
    let (rec, client) = recorder(&[(200, answer), (200, answer)]).await;
    let test_server = SsksClient::new(client.config().clone().test_server(true)).unwrap();
    let factor = AuthFactor::email("alice@example.com").unwrap();
    test_server
        .challenge_send(ChallengeRequest::new(
            "alice",
            factor.clone(),
            "$$CHALLENGE$$",
        ))
        .await
        .unwrap();
    test_server
        .challenge_send(
            ChallengeRequest::new("alice", factor, "$$CHALLENGE$$")
                .force_auth(true)
                .subject("Your code")
                .fake_otp(true),
        )
        .await
        .unwrap();
    let bodies: Vec<Value> = rec
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["force_auth"], false);
    assert_eq!(bodies[0]["fake_otp"], false);
    assert!(bodies[0].get("subject").is_none());
    assert_eq!(bodies[1]["force_auth"], true);
    assert_eq!(bodies[1]["fake_otp"], true);
    assert_eq!(bodies[1]["subject"], "Your code");
}
