//! Regression (security issue #14, item 2): no HTTP backend follows a redirect, and none sends
//! credentials over plain `http://` to a host that is not this machine.
//!
//! A "redirector" on 127.0.0.1 answers every request with a 3xx pointing at a "trap" on another
//! local host (127.0.0.2) that records what it receives and answers as the real service would
//! (an approved check, an SSKS session). Before the fix reqwest followed the 307 / 302: the trap
//! got `X-SEALD-APIKEY`, `To` and `Code`, and its answers were accepted.
#![cfg(all(feature = "twilio", feature = "ssks"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keyward::http::HttpConfig;
use keyward::keysplit::ssks::{SsksClient, SsksConfig};
use keyward::keysplit::{AuthFactor, ChallengeRequest};
use keyward::otp::CodeSender;
use keyward::otp::{
    Channel, CheckCode, OutgoingMessage, SmsFrom, TwilioSmsConfig, TwilioSmsSender, TwilioVerify,
    TwilioVerifyConfig, VerificationRef,
};
use keyward::twilio::TwilioCredentials;
use keyward::{ErrorKind, OtpProvider, Secret};

const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SK: &str = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const VA: &str = "VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const VE: &str = "VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const API_KEY: &str = "ssks-api-key-must-stay-home";

/// What the trap received: one line per request, headers and body.
#[derive(Clone, Default)]
struct Trap(Arc<Mutex<Vec<String>>>);

impl Trap {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn trap(State(trap): State<Trap>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut line = format!("{uri} ");
    for (name, value) in &headers {
        line.push_str(&format!("{name}={} ", value.to_str().unwrap_or("?")));
    }
    line.push_str(&String::from_utf8_lossy(&body));
    trap.0.lock().unwrap().push(line);
    let approved = format!(
        r#"{{"sid":"{VE}","service_sid":"{VA}","account_sid":"{AC}","to":"+15017122661","channel":"sms","status":"approved","valid":true,"session_id":"invented-by-the-trap","must_authenticate":false}}"#
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        approved,
    )
        .into_response()
}

async fn trap_server() -> (Trap, String) {
    let t = Trap::default();
    let app = Router::new().fallback(trap).with_state(t.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (t, format!("http://{addr}"))
}

/// Answers everything with `status` and `Location: {target}{path}`.
async fn redirector(status: u16, target: String) -> String {
    let app = Router::new().fallback(move |uri: Uri| {
        let target = target.clone();
        async move {
            (
                StatusCode::from_u16(status).unwrap(),
                [(header::LOCATION, format!("{target}{}", uri.path()))],
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn loopback_http() -> HttpConfig {
    HttpConfig::default().allow_http_loopback(true)
}

fn creds() -> TwilioCredentials {
    TwilioCredentials::api_key(AC, SK, Secret::from("twilio-secret")).unwrap()
}

fn verify_at(base: &str) -> TwilioVerify {
    TwilioVerify::new(
        TwilioVerifyConfig::new(creds(), VA)
            .unwrap()
            .with_base_url(base)
            .http(loopback_http()),
    )
    .unwrap()
}

fn assert_redirect_refused(err: &keyward::Error, trap: &Trap) {
    assert_eq!(err.kind(), &ErrorKind::Protocol, "{err:?}");
    assert!(!err.is_retryable());
    let seen = trap.seen();
    assert!(seen.is_empty(), "the other host received {seen:?}");
}

#[tokio::test]
async fn ssks_challenge_send_does_not_follow_a_307_with_the_api_key() {
    for status in [301, 302, 303, 307, 308] {
        let (trap, trap_url) = trap_server().await;
        let base = redirector(status, trap_url).await;
        let client = SsksClient::new(
            SsksConfig::new(base, "app-id")
                .api_key(API_KEY)
                .http(loopback_http()),
        )
        .unwrap();
        let factor = AuthFactor::email("alice@example.com").unwrap();
        let err = client
            .challenge_send(ChallengeRequest::new("alice", factor, "$$CHALLENGE$$"))
            .await
            .unwrap_err();
        assert_redirect_refused(&err, &trap);
        assert!(!trap.seen().concat().contains(API_KEY));
    }
}

#[tokio::test]
async fn verify_check_does_not_repost_to_and_code_after_a_307() {
    let (trap, trap_url) = trap_server().await;
    let verify = verify_at(&redirector(307, trap_url).await);
    let err = verify
        .check(CheckCode::to("+15017122661", Secret::from("123456")))
        .await
        .unwrap_err();
    assert_redirect_refused(&err, &trap);
}

#[tokio::test]
async fn verify_fetch_does_not_follow_a_302() {
    let (trap, trap_url) = trap_server().await;
    let verify = verify_at(&redirector(302, trap_url).await);
    let err = verify
        .fetch(VerificationRef::Sid(VE.to_owned()))
        .await
        .unwrap_err();
    assert_redirect_refused(&err, &trap);
}

#[tokio::test]
async fn sms_sender_does_not_follow_a_308() {
    let (trap, trap_url) = trap_server().await;
    let sms = TwilioSmsSender::new(
        TwilioSmsConfig::new(creds(), SmsFrom::Number("+15005550006".into()))
            .unwrap()
            .with_base_url(redirector(308, trap_url).await)
            .http(loopback_http()),
    )
    .unwrap();
    let message = OutgoingMessage::new(
        Channel::Sms,
        "+15017122661",
        Secret::from("code 123456"),
        Secret::from("123456"),
    );
    let err = sms.send(&message).await.unwrap_err();
    assert_redirect_refused(&err, &trap);
}

#[test]
fn plain_http_base_urls_are_refused_at_construction() {
    // Not loopback: refused even with the opt-in.
    for base in ["http://ssks.example.com", "http://10.1.2.3:8080"] {
        for http in [HttpConfig::default(), loopback_http()] {
            let err = SsksClient::new(SsksConfig::new(base, "app").http(http.clone())).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config, "{base}");
            let err = TwilioVerify::new(
                TwilioVerifyConfig::new(creds(), VA)
                    .unwrap()
                    .with_base_url(base)
                    .http(http.clone()),
            )
            .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config, "{base}");
            let err = TwilioSmsSender::new(
                TwilioSmsConfig::new(creds(), SmsFrom::Number("+15005550006".into()))
                    .unwrap()
                    .with_base_url(base)
                    .http(http),
            )
            .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config, "{base}");
        }
    }
    // Loopback over plain http: only with the explicit opt-in.
    let local = "http://127.0.0.1:9";
    let err = SsksClient::new(SsksConfig::new(local, "app")).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(SsksClient::new(SsksConfig::new(local, "app").http(loopback_http())).is_ok());
    let err = TwilioVerify::new(
        TwilioVerifyConfig::new(creds(), VA)
            .unwrap()
            .with_base_url(local),
    )
    .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    // The defaults are https and need nothing.
    assert!(SsksClient::new(SsksConfig::production("app")).is_ok());
    assert!(TwilioVerify::new(TwilioVerifyConfig::new(creds(), VA).unwrap()).is_ok());
}
