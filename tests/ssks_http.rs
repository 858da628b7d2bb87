//! The 2-man rule over real HTTP on 127.0.0.1: our SSKS client against our SSKS-compatible
//! server (backed by the local store), plus the raw wire answers of the server.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "ssks-server")]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward::Env;
use keyward::http::HttpConfig;
use keyward::keysplit::local::{CHALLENGE_VALIDITY, FAKE_CHALLENGE, LocalKeySplitStore};
use keyward::keysplit::server::{ServerConfig, ServerHandle, serve};
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{
    AuthFactor, ChallengeRequest, KeyKind, SessionId, SsksSession, TwoManRuleBackend,
    TwoManRuleClient, TwoManRuleKey, TwoManRuleKeys,
};
use keyward::otp::Outbox;
use keyward::store::{MemoryStore, StateStore};
use keyward::{ErrorKind, KeySplitStore, ManualClock, Secret};

const APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";
const API_KEY: &str = "test-ssks-api-key";
const EMAIL: &str = "alice@example.com";

struct World {
    server: ServerHandle,
    outbox: Outbox,
    clock: Arc<ManualClock>,
    ssks: Arc<SsksClient>,
    backend: TwoManRuleBackend,
    client: TwoManRuleClient,
}

fn fast_http() -> HttpConfig {
    HttpConfig::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        // The local SSKS server is plain http on 127.0.0.1.
        .allow_http_loopback(true)
}

async fn world(kind: KeyKind, test_mode: bool) -> World {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let ssks_state = Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let local = LocalKeySplitStore::new(ssks_state, Arc::new(outbox.clone()))
        .env(Env::system().with_clock(clock.clone()))
        .test_mode(test_mode);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(listener, local, ServerConfig::new(APP_ID, API_KEY))
        .await
        .unwrap();
    let ssks = Arc::new(
        SsksClient::new(
            SsksConfig::new(server.base_url(), APP_ID)
                .api_key(API_KEY)
                .test_server(true)
                .http(fast_http()),
        )
        .unwrap(),
    );
    // The host backend keeps its keys in its own store, apart from SSKS's.
    let backend_state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let keys = TwoManRuleKeys::new(backend_state, APP_ID, kind).unwrap();
    let backend = TwoManRuleBackend::new(ssks.clone(), keys);
    let client = TwoManRuleClient::new(ssks.clone(), APP_ID);
    World {
        server,
        outbox,
        clock,
        ssks,
        backend,
        client,
    }
}

fn request(user: &str) -> ChallengeRequest {
    ChallengeRequest::new(
        user,
        AuthFactor::email(EMAIL).unwrap(),
        "<p>Your code: $$CHALLENGE$$</p>",
    )
    .subject("Confirm your identity")
}

impl World {
    async fn session(&self, user: &str) -> SsksSession {
        self.backend.session(request(user)).await.unwrap()
    }

    fn challenge(&self) -> Secret {
        self.outbox.last_code_to(EMAIL).unwrap()
    }

    /// Saves `identity` for `user` (first save, no challenge).
    async fn first_save(&self, user: &str, identity: &[u8]) -> String {
        let s = self.session(user).await;
        assert!(!s.must_authenticate);
        assert!(self.outbox.is_empty());
        self.client.save_identity(&s, None, identity).await.unwrap()
    }
}

async fn full_flow(kind: KeyKind) {
    let w = world(kind, false).await;
    let identity = b"seald identity: private keys and certificates".to_vec();
    let id = w.first_save("alice", &identity).await;

    // Retrieve: a challenge is sent, validated, the identity comes back and, having been
    // pushed without a challenge, is re-encrypted (the same identity: not renewed).
    let s = w.session("alice").await;
    assert!(s.must_authenticate);
    assert_eq!(s.two_man_rule_key.kind(), kind);
    let got = w
        .client
        .retrieve_identity(&s, Some(&w.challenge()))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), identity.as_slice());
    assert!(got.was_unauthenticated && got.reencrypted && !got.renewed);

    // The re-encrypted copy is authenticated: nothing pushed again, same key from the backend.
    let s2 = w.session("alice").await;
    assert_eq!(s2.two_man_rule_key, s.two_man_rule_key);
    let got = w
        .client
        .retrieve_identity(&s2, Some(&w.challenge()))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), identity.as_slice());
    assert!(!got.was_unauthenticated && !got.reencrypted && !got.renewed);

    // A later save needs the challenge, and keeps the user's SSKS id.
    let s3 = w.session("alice").await;
    let err = w.client.save_identity(&s3, None, b"new").await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let id2 = w
        .client
        .save_identity(&s3, Some(&w.challenge()), b"new identity")
        .await
        .unwrap();
    assert_eq!(id, id2);
    let s4 = w.session("alice").await;
    let got = w
        .client
        .retrieve_identity(&s4, Some(&w.challenge()))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), b"new identity");
    w.server.shutdown().await;
}

#[tokio::test]
async fn save_then_retrieve_with_free_form_key() {
    full_flow(KeyKind::Free).await;
}

#[tokio::test]
async fn save_then_retrieve_with_raw_key() {
    full_flow(KeyKind::Raw).await;
}

/// Seald's meaning of "renewed" (#14 item 7): the plugin makes new keys (`renewKey`) and pushes the
/// new identity. `retrieve_identity_renewing` hands the host's renewal the identity the backend
/// could have pushed, and pushes what the renewal returns; plain `retrieve_identity` only
/// re-encrypts (and says so).
#[tokio::test]
async fn renewal_pushes_a_new_identity_over_http() {
    let w = world(KeyKind::Free, false).await;
    w.first_save("alice", b"identity the backend could know")
        .await;

    // A renewal that fails pushes nothing: the stored copy stays unauthenticated.
    let s = w.session("alice").await;
    let err = w
        .client
        .retrieve_identity_renewing(&s, Some(&w.challenge()), |_| async {
            Err(keyward::Error::new(ErrorKind::Backend, "renewKey failed"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);

    // A renewal that returns the same identity is a re-encryption, not a renewal: refused.
    let s = w.session("alice").await;
    let err = w
        .client
        .retrieve_identity_renewing(&s, Some(&w.challenge()), |old| async move { Ok(old) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);

    // Still unauthenticated, so this one renews: the renewal sees the old identity, the new one
    // is returned and stored.
    let s = w.session("alice").await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_renewal = seen.clone();
    let got = w
        .client
        .retrieve_identity_renewing(&s, Some(&w.challenge()), move |old| async move {
            seen_by_renewal.lock().unwrap().push(old.expose().to_vec());
            Ok(Secret::from("identity after renewKey"))
        })
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [b"identity the backend could know".to_vec()]
    );
    assert_eq!(got.identity.expose(), b"identity after renewKey");
    assert!(got.was_unauthenticated && got.renewed && !got.reencrypted);

    // The new identity is stored, authenticated: the next retrieval neither renews nor
    // re-encrypts, and the renewal is not called.
    let s = w.session("alice").await;
    let got = w
        .client
        .retrieve_identity_renewing(&s, Some(&w.challenge()), |_| async {
            panic!("an authenticated identity is not renewed")
        })
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), b"identity after renewKey");
    assert!(!got.was_unauthenticated && !got.renewed && !got.reencrypted);
}

#[tokio::test]
async fn wrong_challenge_is_rejected_and_attempts_are_limited() {
    let w = world(KeyKind::Raw, false).await;
    w.first_save("alice", b"identity").await;
    let s = w.session("alice").await;
    let err = w
        .client
        .retrieve_identity(&s, Some(&Secret::from("zzzzzzzz")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Rejected);
    assert_eq!(err.remote().map(|r| r.status), Some(403));
    for _ in 0..4 {
        let _ = w
            .client
            .retrieve_identity(&s, Some(&Secret::from("zzzzzzzz")))
            .await;
    }
    // The right challenge no longer helps: the session is closed.
    let err = w
        .client
        .retrieve_identity(&s, Some(&w.challenge()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooManyAttempts);
    let err = w
        .client
        .retrieve_identity(&s, Some(&w.challenge()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn expired_challenge() {
    let w = world(KeyKind::Free, false).await;
    w.first_save("alice", b"identity").await;
    let s = w.session("alice").await;
    w.clock.advance(CHALLENGE_VALIDITY);
    let err = w
        .client
        .retrieve_identity(&s, Some(&w.challenge()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Expired);
}

#[tokio::test]
async fn unknown_and_replaced_sessions() {
    let w = world(KeyKind::Raw, false).await;
    let factor = AuthFactor::email(EMAIL).unwrap();
    let err = w
        .ssks
        .validate_challenge(
            &SessionId::new("no-such-session"),
            &Secret::from("abcdefgh"),
            &factor,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let err = w
        .ssks
        .search(&SessionId::new("no-such-session"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    // One live session per user: opening a second closes the first.
    w.first_save("alice", b"identity").await;
    let first = w.session("alice").await;
    let first_code = w.challenge();
    let _second = w.session("alice").await;
    let err = w
        .client
        .retrieve_identity(&first, Some(&first_code))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn missing_identity() {
    let w = world(KeyKind::Free, false).await;
    let s = w
        .backend
        .session(request("bob").force_auth(true))
        .await
        .unwrap();
    assert!(s.must_authenticate);
    let err = w
        .client
        .retrieve_identity(&s, Some(&w.challenge()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.message(), "no identity is stored for this user");
}

#[tokio::test]
async fn tampered_blob_and_wrong_key_cannot_open() {
    let w = world(KeyKind::Free, false).await;
    w.first_save("alice", b"identity").await;

    // Wrong key: the frontend got someone else's key.
    let s = w.session("alice").await;
    let wrong = SsksSession {
        two_man_rule_key: TwoManRuleKey::free("not the key").unwrap(),
        ..s.clone()
    };
    let err = w
        .client
        .retrieve_identity(&wrong, Some(&w.challenge()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CannotOpen);

    // Tampered: SSKS (or someone on the way) flips one byte of the stored blob.
    let s = w.session("alice").await;
    let auth = w
        .ssks
        .validate_challenge(&s.session_id, &w.challenge(), &s.auth_factor)
        .await
        .unwrap();
    let blob = w.ssks.search(&auth).await.unwrap();
    let mut raw = STANDARD.decode(&blob.data_b64).unwrap();
    let middle = raw.len() / 2;
    raw[middle] ^= 0x80;
    w.ssks
        .push(&auth, &s.auth_factor, &STANDARD.encode(&raw))
        .await
        .unwrap();
    let s = w.session("alice").await;
    let err = w
        .client
        .retrieve_identity(&s, Some(&w.challenge()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CannotOpen);

    // Wrong user id (the blob is bound to alice).
    let s = w.session("alice").await;
    let as_bob = SsksSession {
        user_id: "bob".into(),
        ..s
    };
    let auth = w
        .ssks
        .validate_challenge(&as_bob.session_id, &w.challenge(), &as_bob.auth_factor)
        .await
        .unwrap();
    let blob = w.ssks.search(&auth).await.unwrap();
    let err = keyward::keysplit::crypto::open_identity(
        &as_bob.two_man_rule_key,
        APP_ID,
        "bob",
        &blob.data_b64,
    )
    .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::CannotOpen);
}

#[tokio::test]
async fn concurrent_pushes_for_one_user_lose_nothing() {
    let w = world(KeyKind::Raw, false).await;
    w.first_save("alice", b"identity-0").await;
    let s = w.session("alice").await;
    let auth = w
        .ssks
        .validate_challenge(&s.session_id, &w.challenge(), &s.auth_factor)
        .await
        .unwrap();
    let rng = keyward::SystemRandom::new();
    let mut blobs = Vec::new();
    for i in 0..16 {
        blobs.push(
            keyward::keysplit::crypto::seal_identity(
                &s.two_man_rule_key,
                APP_ID,
                "alice",
                format!("identity-{i}").as_bytes(),
                &rng,
            )
            .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for blob in blobs.clone() {
        let (ssks, auth, factor) = (w.ssks.clone(), auth.clone(), s.auth_factor.clone());
        tasks.push(tokio::spawn(async move {
            ssks.push(&auth, &factor, &blob).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap());
    }
    assert!(ids.windows(2).all(|p| p[0] == p[1]), "{ids:?}");
    let stored = w.ssks.search(&auth).await.unwrap();
    assert!(stored.authenticated);
    assert!(
        blobs.contains(&stored.data_b64),
        "the stored blob is one pushed whole"
    );
    let opened = keyward::keysplit::crypto::open_identity(
        &s.two_man_rule_key,
        APP_ID,
        "alice",
        &stored.data_b64,
    )
    .unwrap();
    assert!(opened.expose().starts_with(b"identity-"));
}

#[tokio::test]
async fn fake_otp_needs_a_test_server_on_both_sides() {
    // Client not configured for a test server: refused before any request (the URL points at a
    // closed port, so a request would have been a transport error).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let prod_like = SsksClient::new(
        SsksConfig::new(format!("http://{closed}"), APP_ID)
            .api_key(API_KEY)
            .http(fast_http()),
    )
    .unwrap();
    let err = prod_like
        .challenge_send(request("alice").fake_otp(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    let err = prod_like
        .challenge_send(ChallengeRequest::new(
            "alice",
            AuthFactor::email(EMAIL).unwrap(),
            "no placeholder",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);

    // Server not in test mode: 406.
    let w = world(KeyKind::Raw, false).await;
    let err = w
        .ssks
        .challenge_send(request("alice").fake_otp(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert_eq!(err.remote().map(|r| r.status), Some(406));

    // Both in test mode: the fixed challenge, nothing sent.
    let w = world(KeyKind::Free, true).await;
    w.first_save("alice", b"identity").await;
    let s = w
        .backend
        .session(request("alice").fake_otp(true))
        .await
        .unwrap();
    assert!(s.must_authenticate);
    assert!(w.outbox.is_empty());
    let got = w
        .client
        .retrieve_identity(&s, Some(&Secret::from(FAKE_CHALLENGE)))
        .await
        .unwrap();
    assert_eq!(got.identity.expose(), b"identity");
}

#[tokio::test]
async fn app_credentials_are_checked() {
    let w = world(KeyKind::Raw, false).await;
    let bad_key = SsksClient::new(
        SsksConfig::new(w.server.base_url(), APP_ID)
            .api_key("wrong")
            .http(fast_http()),
    )
    .unwrap();
    let err = bad_key.challenge_send(request("alice")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    let no_key =
        SsksClient::new(SsksConfig::new(w.server.base_url(), APP_ID).http(fast_http())).unwrap();
    let err = no_key.challenge_send(request("alice")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);

    w.first_save("alice", b"identity").await;
    let s = w.session("alice").await;
    let other_app =
        SsksClient::new(SsksConfig::new(w.server.base_url(), "other-app").http(fast_http()))
            .unwrap();
    let err = other_app
        .validate_challenge(&s.session_id, &w.challenge(), &s.auth_factor)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Rejected);
    assert!(w.outbox.len() == 1, "no other challenge was sent");
}

/// The server's raw answers, as the official client sees them.
#[tokio::test]
async fn server_wire_answers() {
    let w = world(KeyKind::Raw, false).await;
    let http = reqwest::Client::new();
    let base = w.server.base_url();
    let send = |path: &str, session: Option<&str>, body: String| {
        let mut r = http
            .post(format!("{base}{path}"))
            .header("X-SEALD-APPID", APP_ID)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(s) = session {
            r = r.header("X-SEALD-SESSION", s);
        }
        r.send()
    };

    // Bad API key.
    let answer = http
        .post(format!("{base}/tmr/back/challenge_send/"))
        .header("X-SEALD-APPID", APP_ID)
        .header("X-SEALD-APIKEY", "nope")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert_eq!(
        answer.text().await.unwrap(),
        r#"{"detail":"Incorrect authentication credentials."}"#
    );

    // Numeric user id (the seed's PHP example), no trailing slash, fake_otp refused.
    let body = serde_json::json!({
        "create_user": true, "user_id": 42,
        "auth_factor": {"type": "EM", "value": EMAIL},
        "template": "code $$CHALLENGE$$", "fake_otp": true,
    });
    let answer = http
        .post(format!("{base}/tmr/back/challenge_send"))
        .header("X-SEALD-APPID", APP_ID)
        .header("X-SEALD-APIKEY", API_KEY)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 406);
    let mut body = body;
    body["fake_otp"] = false.into();
    let answer = http
        .post(format!("{base}/tmr/back/challenge_send"))
        .header("X-SEALD-APPID", APP_ID)
        .header("X-SEALD-APIKEY", API_KEY)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let opened: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(opened["must_authenticate"], false);
    let session = opened["session_id"].as_str().unwrap().to_owned();

    // The backend's session never passed a challenge: search refuses it, stored or not.
    let answer = send("/tmr/front/search/", Some(&session), String::new())
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);

    // Empty challenge, unknown session, wrong challenge.
    let validate = r#"{"challenge":"","auth_factor":{"type":"EM","value":"alice@example.com"}}"#;
    let answer = send(
        "/tmr/front/challenge_validate/",
        Some(&session),
        validate.into(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    let validate =
        r#"{"challenge":"abcdefgh","auth_factor":{"type":"EM","value":"alice@example.com"}}"#;
    let answer = send(
        "/tmr/front/challenge_validate/",
        Some("nope"),
        validate.into(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 404);
    let answer = send(
        "/tmr/front/challenge_validate/",
        Some(&session),
        validate.into(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 403);
    assert_eq!(
        answer.text().await.unwrap(),
        r#"{"detail":"Incorrect authentication credentials."}"#
    );

    // Push, then search.
    let push = r#"{"data_b64":"AAAA","auth_factor":{"type":"EM","value":"alice@example.com"}}"#;
    let answer = send("/tmr/front/push/", Some(&session), push.into())
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let pushed: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(pushed["id"].as_str().unwrap().len(), 36);
    // Regression (security issue, item 1): the id the backend got from challenge_send pushed,
    // and must not read the ciphertext back (the backend holds the twoManRuleKey), nor push
    // over the stored identity.
    let answer = send("/tmr/front/search/", Some(&session), String::new())
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert!(!answer.text().await.unwrap().contains("AAAA"));
    let answer = send(
        "/tmr/front/push/",
        Some(&session),
        push.replace("AAAA", "BBBB"),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 403);

    // Missing session header, malformed body, oversized body.
    let answer = send("/tmr/front/search/", None, String::new())
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let answer = send("/tmr/front/push/", Some(&session), "{".into())
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let huge = format!(
        r#"{{"data_b64":"{}","auth_factor":{{"type":"EM","value":"alice@example.com"}}}}"#,
        "A".repeat(2 * 1024 * 1024)
    );
    let answer = send("/tmr/front/push/", Some(&session), huge)
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
}

/// The exported `KeySplitStore` conformance suite, run against the local store directly and
/// against the HTTP client talking to the local server: both must answer the same way.
#[cfg(feature = "testing")]
#[tokio::test]
async fn conformance_local_store() {
    use keyward::testing::conformance::{KeySplitCapabilities, key_split_store};
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let local = LocalKeySplitStore::new(
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone()))),
        Arc::new(outbox.clone()),
    )
    .env(Env::system().with_clock(clock.clone()));
    key_split_store(&local, &KeySplitCapabilities::new(outbox, clock)).await;
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn conformance_http_client_against_local_server() {
    use keyward::testing::conformance::{KeySplitCapabilities, key_split_store};
    let w = world(KeyKind::Raw, false).await;
    key_split_store(
        w.ssks.as_ref(),
        &KeySplitCapabilities::new(w.outbox.clone(), w.clock.clone()),
    )
    .await;
}

#[tokio::test]
async fn server_side_types_redact() {
    let config = ServerConfig::new(APP_ID, "server-api-key-secret");
    let w = world(KeyKind::Raw, false).await;
    let s = w.session("alice").await;
    let shown = format!("{config:?} {:?} {:?} {s:?}", w.server, w.ssks);
    for leaked in [
        "server-api-key-secret",
        API_KEY,
        s.session_id.expose(),
        s.two_man_rule_key.expose(),
    ] {
        assert!(!shown.contains(leaked), "{leaked} leaked in {shown}");
    }
}
