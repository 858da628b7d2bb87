//! Regressions (security issue #14, item 4): the local SSKS sent every challenge it was asked for
//! (30 of 30 for one user and address) and stored any number of identities per user (20 × 512
//! KiB); the self-hosted OTP provider limited sends per destination only (300 different numbers
//! got 300 SMS).
#![cfg(all(feature = "ssks-server", feature = "twilio"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use keyward::http::HttpConfig;
use keyward::keysplit::local::{LocalKeySplitStore, SsksLimits};
use keyward::keysplit::server::{ServerConfig, serve};
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest};
use keyward::otp::{Channel, LocalOtpProvider, Outbox, SendBudget, StartVerification};
use keyward::store::MemoryStore;
use keyward::{ErrorKind, KeySplitStore, OtpProvider, Secret};

const APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";
const API_KEY: &str = "limits-api-key";

async fn ssks(limits: SsksLimits) -> (SsksClient, Outbox, keyward::keysplit::server::ServerHandle) {
    let outbox = Outbox::new();
    let local = LocalKeySplitStore::new(Arc::new(MemoryStore::new()), Arc::new(outbox.clone()))
        .limits(limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve(listener, local, ServerConfig::new(APP_ID, API_KEY))
        .await
        .unwrap();
    let client = SsksClient::new(
        SsksConfig::new(server.base_url(), APP_ID)
            .api_key(API_KEY)
            .http(HttpConfig::default().allow_http_loopback(true)),
    )
    .unwrap();
    (client, outbox, server)
}

fn challenge(user: &str, email: &str) -> ChallengeRequest {
    ChallengeRequest::new(
        user,
        AuthFactor::email(email).unwrap(),
        "code: $$CHALLENGE$$",
    )
    .force_auth(true)
}

#[tokio::test]
async fn challenge_send_is_limited_per_user_per_address_and_in_total() {
    let (client, outbox, _server) = ssks(SsksLimits::default()).await;
    let mut refused = 0;
    for _ in 0..30 {
        match client
            .challenge_send(challenge("alice", "alice@example.com"))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind(), &ErrorKind::RateLimited { retry_after: None });
                assert_eq!(e.remote().map(|r| r.status), Some(406));
                refused += 1;
            }
        }
    }
    assert_eq!(outbox.len(), 10, "one user and address: 10 per hour");
    assert_eq!(refused, 20);

    // Another user, the same address: the address's own limit is spent.
    let err = client
        .challenge_send(challenge("mallory", "alice@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }));
    // Another user and address still gets a challenge.
    client
        .challenge_send(challenge("bob", "bob@example.com"))
        .await
        .unwrap();
    assert_eq!(outbox.len(), 11);

    // The total: a flood of users and addresses stops at the store-wide limit.
    let mut limits = SsksLimits::default();
    limits.sends_total = 25;
    let (client, outbox, _server) = ssks(limits).await;
    for i in 0..60 {
        let _ = client
            .challenge_send(challenge(&format!("u{i}"), &format!("u{i}@example.com")))
            .await;
    }
    assert_eq!(outbox.len(), 25);
}

#[tokio::test]
async fn stored_identities_are_bounded_per_user() {
    let outbox = Outbox::new();
    let local = LocalKeySplitStore::new(Arc::new(MemoryStore::new()), Arc::new(outbox.clone()));
    let blob = "A".repeat(512 * 1024);
    let mut stored = 0;
    for i in 0..20 {
        let factor = AuthFactor::email(&format!("alice+{i}@example.com")).unwrap();
        let s = local
            .open_session(ChallengeRequest::new(
                "alice",
                factor.clone(),
                "$$CHALLENGE$$",
            ))
            .await
            .unwrap();
        assert!(!s.must_authenticate);
        match local.push(&s.session_id, &factor, &blob).await {
            Ok(_) => stored += 1,
            Err(e) => assert_eq!(e.kind(), &ErrorKind::Forbidden),
        }
    }
    assert_eq!(stored, 4, "identities per user are bounded (default 4)");
    // Another user is not affected.
    let factor = AuthFactor::email("bob@example.com").unwrap();
    let s = local
        .open_session(ChallengeRequest::new(
            "bob",
            factor.clone(),
            "$$CHALLENGE$$",
        ))
        .await
        .unwrap();
    local.push(&s.session_id, &factor, &blob).await.unwrap();
}

fn otp(outbox: &Outbox, budget: SendBudget) -> LocalOtpProvider {
    LocalOtpProvider::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
        Secret::new([3u8; 32]),
    )
    .send_budget(Some(budget))
    .build()
    .unwrap()
}

#[tokio::test]
async fn the_self_hosted_provider_has_an_overall_and_a_per_client_budget() {
    // 300 different numbers: only the provider's budget goes out.
    let outbox = Outbox::new();
    let provider = otp(
        &outbox,
        SendBudget::new(50, 1_000, Duration::from_secs(3_600)),
    );
    let mut limited = 0;
    for i in 0..300 {
        let to = format!("+1501712{i:04}");
        match provider
            .start(StartVerification::new(to, Channel::Sms))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                assert!(matches!(
                    e.kind(),
                    ErrorKind::RateLimited {
                        retry_after: Some(_)
                    }
                ));
                limited += 1;
            }
        }
    }
    assert_eq!(outbox.len(), 50);
    assert_eq!(limited, 250);

    // One client key: its own budget; another client is not affected by it.
    let outbox = Outbox::new();
    let provider = otp(&outbox, SendBudget::default());
    for i in 0..40 {
        let to = format!("+1501712{i:04}");
        let _ = provider
            .start(StartVerification::new(to, Channel::Sms).client("203.0.113.7"))
            .await;
    }
    assert_eq!(outbox.len(), 20, "20 per client key per hour by default");
    provider
        .start(StartVerification::new("+15017129999", Channel::Sms).client("198.51.100.2"))
        .await
        .unwrap();
    assert_eq!(outbox.len(), 21);
}
