//! The Twilio Verify backend and the Programmable Messaging sender against a local HTTP server
//! speaking Twilio's wire format: exact requests, real answer bodies, error bodies, retries,
//! timeouts, malformed answers and dropped connections.
#![cfg(feature = "twilio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use keyward::http::HttpConfig;
use keyward::otp::CodeSender as _;
use keyward::otp::{
    Channel, CheckCode, CheckOutcome, LocalOtpProvider, OutgoingMessage, SmsFrom,
    StartVerification, TwilioSmsConfig, TwilioSmsSender, TwilioVerify, TwilioVerifyConfig,
    VerificationRef, VerificationStatus,
};
use keyward::store::MemoryStore;
use keyward::twilio::TwilioCredentials;
use keyward::{ErrorKind, OtpProvider, Secret};
use support::{AC, Reply, SK, SK_SECRET, Scripted, VA, VE, closing_server, expected_basic_auth};

/// Twilio's documented create answer (PROTOCOLS.md section 2 / the OpenAPI example).
const CREATE_201: &str = r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","service_sid":"VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","channel":"sms","status":"pending","valid":false,"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z","lookup":{},"amount":null,"payee":null,"send_code_attempts":[{"time":"2015-07-30T20:00:00Z","channel":"SMS","attempt_sid":"VLaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}],"sna":null,"url":"https://verify.twilio.com/v2/Services/VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Verifications/VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

/// Twilio's documented approved check answer (OpenAPI example `verificationChecks`).
const CHECK_APPROVED: &str = r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","service_sid":"VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","channel":"sms","status":"approved","valid":true,"amount":null,"payee":null,"sna_attempts_error_codes":[],"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z"}"#;

/// A wrong code: same shape, `pending`, `valid:false`.
const CHECK_PENDING: &str = r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","service_sid":"VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","channel":"sms","status":"pending","valid":false,"amount":null,"payee":null,"sna_attempts_error_codes":[],"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z"}"#;

fn canceled_200() -> String {
    CREATE_201.replace(r#""status":"pending""#, r#""status":"canceled""#)
}

fn creds() -> TwilioCredentials {
    TwilioCredentials::api_key(AC, SK, Secret::from(SK_SECRET)).unwrap()
}

fn fast_http() -> HttpConfig {
    HttpConfig::default()
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(5))
        .max_retries(3)
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .max_body_bytes(64 * 1024)
        // The fake servers are plain http on 127.0.0.1.
        .allow_http_loopback(true)
}

fn verify_at(base_url: &str, http: HttpConfig) -> TwilioVerify {
    TwilioVerify::new(
        TwilioVerifyConfig::new(creds(), VA)
            .unwrap()
            .with_base_url(base_url)
            .http(http),
    )
    .unwrap()
}

async fn scripted_verify(replies: Vec<Reply>) -> (Scripted, TwilioVerify) {
    let server = Scripted::start(replies).await;
    let verify = verify_at(&server.base_url, fast_http());
    (server, verify)
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn start_sends_the_exact_request_and_parses_the_real_answer() {
    let (server, verify) = scripted_verify(vec![Reply::json(201, CREATE_201)]).await;
    let v = verify
        .start(
            StartVerification::new("+1 (501) 712-2661", Channel::Sms)
                .locale("pt-BR")
                .custom_code("8675309"),
        )
        .await
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/v2/Services/{VA}/Verifications"));
    assert_eq!(
        r.authorization.as_deref(),
        Some(expected_basic_auth().as_str())
    );
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        r.form,
        form(&[
            ("To", "+15017122661"),
            ("Channel", "sms"),
            ("Locale", "pt-BR"),
            ("CustomCode", "8675309"),
        ])
    );
    assert_eq!(v.sid, VE);
    assert_eq!(v.to, "+15017122661");
    assert_eq!(v.channel, Channel::Sms);
    assert_eq!(v.status, VerificationStatus::Pending);
    assert!(!v.valid);
    assert_eq!(v.send_attempts, 1);
    let created = UNIX_EPOCH + Duration::from_secs(1_438_286_400);
    assert_eq!(v.created_at, Some(created));
    assert_eq!(v.updated_at, Some(created));
}

#[tokio::test]
async fn auth_token_credentials_use_the_account_sid() {
    let server = Scripted::start(vec![Reply::json(201, CREATE_201)]).await;
    let creds = TwilioCredentials::auth_token(AC, Secret::from("the-auth-token")).unwrap();
    let verify = TwilioVerify::new(
        TwilioVerifyConfig::new(creds, VA)
            .unwrap()
            .with_base_url(format!("{}/", server.base_url))
            .http(fast_http()),
    )
    .unwrap();
    verify
        .start(StartVerification::new("alice@example.com", Channel::Email))
        .await
        .unwrap();
    let r = &server.requests()[0];
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{AC}:the-auth-token"))
    );
    assert_eq!(r.authorization.as_deref(), Some(expected.as_str()));
    assert_eq!(
        r.form,
        form(&[("To", "alice@example.com"), ("Channel", "email")])
    );
}

#[tokio::test]
async fn check_by_sid_and_by_to_approves_or_rejects() {
    let (server, verify) = scripted_verify(vec![
        Reply::json(201, CHECK_APPROVED),
        Reply::json(200, CHECK_PENDING),
    ])
    .await;
    let outcome = verify.check(CheckCode::sid(VE, "123456")).await.unwrap();
    let proof = outcome.approved().expect("approved");
    assert_eq!(proof.to(), "+15017122661");
    assert_eq!(proof.verification().status, VerificationStatus::Approved);

    let outcome = verify
        .check(CheckCode::to("+1 501-712-2661", "654321"))
        .await
        .unwrap();
    match outcome {
        CheckOutcome::Rejected(v) => {
            assert_eq!(v.status, VerificationStatus::Pending);
            assert!(!v.valid);
        }
        CheckOutcome::Approved(_) => panic!("a pending answer is not an approval"),
    }
    let reqs = server.requests();
    assert_eq!(reqs[0].path, format!("/v2/Services/{VA}/VerificationCheck"));
    assert_eq!(
        reqs[0].form,
        form(&[("VerificationSid", VE), ("Code", "123456")])
    );
    assert_eq!(
        reqs[1].form,
        form(&[("To", "+15017122661"), ("Code", "654321")])
    );
    assert_eq!(
        reqs[1].authorization.as_deref(),
        Some(expected_basic_auth().as_str())
    );
}

#[tokio::test]
async fn fetch_cancel_and_approve_address_the_verification_by_sid() {
    let approved = CREATE_201
        .replace(r#""status":"pending""#, r#""status":"approved""#)
        .replace(r#""valid":false"#, r#""valid":true"#);
    let (server, verify) = scripted_verify(vec![
        Reply::json(200, CREATE_201),
        Reply::json(200, &canceled_200()),
        Reply::json(200, &approved),
    ])
    .await;
    let v = verify.fetch(VerificationRef::Sid(VE.into())).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Pending);
    let v = verify
        .cancel(VerificationRef::Sid(VE.into()))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Canceled);
    let proof = verify.approve(VE).await.unwrap();
    assert_eq!(proof.verification().sid, VE);
    let reqs = server.requests();
    let path = format!("/v2/Services/{VA}/Verifications/{VE}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", path.as_str())
    );
    assert!(reqs[0].form.is_empty());
    assert_eq!(
        (reqs[1].method.as_str(), reqs[1].path.as_str()),
        ("POST", path.as_str())
    );
    assert_eq!(reqs[1].form, form(&[("Status", "canceled")]));
    assert_eq!(reqs[2].form, form(&[("Status", "approved")]));
    for r in &reqs {
        assert_eq!(
            r.authorization.as_deref(),
            Some(expected_basic_auth().as_str())
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let (server, verify) = scripted_verify(vec![]).await;
    let kinds = [
        verify
            .start(StartVerification::new("+1 800 FLOWERS", Channel::Sms))
            .await
            .unwrap_err()
            .kind()
            .clone(),
        verify
            .start(StartVerification::new("+15017122661", Channel::Sms).custom_code("12"))
            .await
            .unwrap_err()
            .kind()
            .clone(),
        verify
            .check(CheckCode::sid(VE, "1"))
            .await
            .unwrap_err()
            .kind()
            .clone(),
        verify
            .check(CheckCode::sid("VE123", "123456"))
            .await
            .unwrap_err()
            .kind()
            .clone(),
        verify
            .fetch(VerificationRef::Sid("VE/../../Accounts".into()))
            .await
            .unwrap_err()
            .kind()
            .clone(),
    ];
    for k in kinds {
        assert_eq!(k, ErrorKind::InvalidInput);
    }
    let err = verify
        .fetch(VerificationRef::To("+15017122661".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn twilio_errors_map_to_typed_kinds_with_their_code_and_are_not_retried() {
    let cases: &[(u16, u32, &str, ErrorKind)] = &[
        (400, 60200, "Invalid parameter: To", ErrorKind::InvalidInput),
        (
            429,
            60202,
            "Max check attempts reached",
            ErrorKind::TooManyAttempts,
        ),
        (
            429,
            60203,
            "Max send attempts reached",
            ErrorKind::TooManySends,
        ),
        (
            403,
            60205,
            "SMS is not supported by landline phone number",
            ErrorKind::Forbidden,
        ),
        (
            429,
            60212,
            "Too many concurrent requests for phone number",
            ErrorKind::RateLimited { retry_after: None },
        ),
        (
            400,
            60221,
            "Either a 'To' number or 'VerificationSid' must be specified",
            ErrorKind::InvalidInput,
        ),
        (
            400,
            60223,
            "Delivery channel disabled: WHATSAPP",
            ErrorKind::Unsupported,
        ),
        (
            403,
            60410,
            "Verification delivery attempt blocked",
            ErrorKind::Forbidden,
        ),
        (
            403,
            60605,
            "Verification delivery attempt blocked (geo permissions)",
            ErrorKind::Forbidden,
        ),
        (401, 20003, "Authenticate", ErrorKind::Unauthorized),
        (
            404,
            20404,
            "The requested resource /Services/VA/Verifications was not found",
            ErrorKind::NotFound,
        ),
        (400, 60999, "Something new", ErrorKind::Backend),
    ];
    for (status, code, message, kind) in cases {
        let (server, verify) =
            scripted_verify(vec![Reply::twilio_error(*status, *code, message)]).await;
        let err = verify
            .start(StartVerification::new("+15017122661", Channel::Sms))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{code}");
        let remote = err.remote().expect("remote error");
        assert_eq!(remote.service, "twilio-verify");
        assert_eq!(remote.status, *status);
        assert_eq!(remote.code, Some(*code));
        assert_eq!(remote.message.as_deref(), Some(*message));
        assert_eq!(server.request_count(), 1, "{code} must not be retried");
    }
}

#[tokio::test]
async fn twilio_messages_quoting_a_number_are_masked() {
    let (_server, verify) = scripted_verify(vec![Reply::twilio_error(
        400,
        60200,
        "Invalid parameter `To`: +15017122661",
    )])
    .await;
    let err = verify
        .start(StartVerification::new("+15017122661", Channel::Sms))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("5017122"), "{shown}");
}

#[tokio::test]
async fn a_20429_is_retried_with_backoff_even_for_start() {
    let (server, verify) = scripted_verify(vec![
        Reply::twilio_error(429, 20429, "Too many requests").header("Retry-After", "0"),
        Reply::json(429, "Too many requests"),
        Reply::json(201, CREATE_201),
    ])
    .await;
    let v = verify
        .start(StartVerification::new("+15017122661", Channel::Sms))
        .await
        .unwrap();
    assert_eq!(v.sid, VE);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.form == reqs[0].form));
}

#[tokio::test]
async fn rate_limiting_that_outlasts_the_retries_is_a_retryable_error() {
    let replies = (0..4)
        .map(|_| Reply::twilio_error(429, 20429, "Too many requests").header("Retry-After", "0"))
        .collect();
    let (server, verify) = scripted_verify(replies).await;
    let err = verify
        .check(CheckCode::sid(VE, "123456"))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.remote_code(), Some(20429));
    assert_eq!(server.request_count(), 4, "first attempt + max_retries");
}

#[tokio::test]
async fn server_errors_are_retried_for_fetch_only() {
    let (server, verify) = scripted_verify(vec![
        Reply::json(503, "<html>unavailable</html>"),
        Reply::json(200, CREATE_201),
    ])
    .await;
    verify.fetch(VerificationRef::Sid(VE.into())).await.unwrap();
    assert_eq!(server.request_count(), 2);

    let (server, verify) = scripted_verify(vec![
        Reply::twilio_error(500, 20500, "Internal Server Error"),
        Reply::json(201, CREATE_201),
    ])
    .await;
    let err = verify
        .start(StartVerification::new("+15017122661", Channel::Sms))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert!(err.is_retryable());
    assert_eq!(err.remote_code(), Some(20500));
    assert_eq!(
        server.request_count(),
        1,
        "a start that may have acted is not repeated"
    );
}

#[tokio::test]
async fn a_slow_answer_past_the_timeout_is_a_timeout() {
    let server = Scripted::start(vec![
        Reply::json(201, CREATE_201).delayed(Duration::from_secs(3)),
    ])
    .await;
    let verify = verify_at(
        &server.base_url,
        fast_http().request_timeout(Duration::from_millis(200)),
    );
    let started = std::time::Instant::now();
    let err = verify
        .start(StartVerification::new("+15017122661", Channel::Sms))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_malformed_body_is_a_protocol_error() {
    for body in [
        "not json",
        r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
        "",
    ] {
        let (_server, verify) = scripted_verify(vec![Reply::json(201, body)]).await;
        let err = verify
            .start(StartVerification::new("+15017122661", Channel::Sms))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Protocol, "{body:?}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let big = format!(r#"{{"padding":"{}"}}"#, "x".repeat(100 * 1024));
    let (_server, verify) = scripted_verify(vec![Reply::json(200, &big)]).await;
    let err = verify
        .fetch(VerificationRef::Sid(VE.into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Protocol);
}

#[tokio::test]
async fn a_closed_connection_is_a_transport_error() {
    let base = closing_server().await;
    let verify = verify_at(&base, fast_http());
    let err = verify
        .start(StartVerification::new("+15017122661", Channel::Sms))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport, "{err:?}");
    assert!(err.is_retryable());
    let err = verify
        .fetch(VerificationRef::Sid(VE.into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
}

#[test]
fn configuration_from_values_and_environment_variables() {
    let vars = |name: &str| match name {
        "TWILIO_ACCOUNT_SID" => Some(AC.to_owned()),
        "TWILIO_API_KEY_SID" => Some(SK.to_owned()),
        "TWILIO_API_KEY_SECRET" => Some(SK_SECRET.to_owned()),
        "VERIFY_SERVICE_SID" => Some(VA.to_owned()),
        _ => None,
    };
    let config = TwilioVerifyConfig::from_vars(vars).unwrap();
    assert_eq!(config.service_sid(), VA);
    assert_eq!(config.base_url(), "https://verify.twilio.com");
    assert_eq!(config.credentials().api_key_sid(), Some(SK));
    let missing_service = |name: &str| {
        if name == "VERIFY_SERVICE_SID" {
            None
        } else {
            vars(name)
        }
    };
    assert_eq!(
        TwilioVerifyConfig::from_vars(missing_service)
            .unwrap_err()
            .kind(),
        &ErrorKind::Config
    );
    for bad in [
        "VA123",
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "VAgggggggggggggggggggggggggggggggg",
    ] {
        assert_eq!(
            TwilioVerifyConfig::new(creds(), bad).unwrap_err().kind(),
            &ErrorKind::Config
        );
    }
    let regional = TwilioVerifyConfig::new(creds(), VA)
        .unwrap()
        .region("au1", "sydney");
    assert_eq!(regional.base_url(), "https://verify.sydney.au1.twilio.com");
}

#[test]
fn debug_never_shows_credentials() {
    let config = TwilioVerifyConfig::new(creds(), VA).unwrap();
    let verify = TwilioVerify::new(config.clone()).unwrap();
    let sms = TwilioSmsSender::new(
        TwilioSmsConfig::new(creds(), SmsFrom::Number("+15005550006".into())).unwrap(),
    )
    .unwrap();
    let token = TwilioCredentials::auth_token(AC, Secret::from("auth-token-do-not-print")).unwrap();
    let shown = format!(
        "{config:?} {verify:?} {verify:#?} {sms:?} {token:?} {:?}",
        creds()
    );
    for secret in [SK_SECRET, "auth-token-do-not-print"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    use base64::Engine;
    let header = base64::engine::general_purpose::STANDARD.encode(format!("{SK}:{SK_SECRET}"));
    assert!(!shown.contains(&header));
}

// --- Programmable Messaging sender ------------------------------------------------------------

/// A Messages create answer in Twilio's shape.
fn message_201(status: &str, error_code: Option<u32>) -> String {
    let error_code = error_code.map_or("null".to_owned(), |c| c.to_string());
    format!(
        concat!(
            r#"{{"account_sid":"{ac}","api_version":"2010-04-01","body":"Your code","date_created":"Thu, 30 Jul 2015 20:12:31 +0000","#,
            r#""date_sent":null,"date_updated":"Thu, 30 Jul 2015 20:12:31 +0000","direction":"outbound-api","error_code":{ec},"#,
            r#""error_message":null,"from":"+15005550006","messaging_service_sid":null,"num_media":"0","num_segments":"1","#,
            r#""price":null,"price_unit":"USD","sid":"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"{st}","#,
            r#""subresource_uris":{{"media":"/2010-04-01/Accounts/{ac}/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Media.json"}},"#,
            r#""to":"+15017122661","uri":"/2010-04-01/Accounts/{ac}/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"}}"#
        ),
        ac = AC,
        ec = error_code,
        st = status,
    )
}

fn sms_at(base_url: &str, from: SmsFrom, http: HttpConfig) -> TwilioSmsSender {
    TwilioSmsSender::new(
        TwilioSmsConfig::new(creds(), from)
            .unwrap()
            .with_base_url(base_url)
            .http(http),
    )
    .unwrap()
}

fn sms_message(channel: Channel, to: &str) -> OutgoingMessage {
    OutgoingMessage::new(
        channel,
        to,
        Secret::from("Your code is 123456 & more"),
        Secret::from("123456"),
    )
}

#[tokio::test]
async fn sms_sender_posts_the_exact_message() {
    let server = Scripted::start(vec![
        Reply::json(201, &message_201("queued", None)),
        Reply::json(201, &message_201("accepted", None)),
        Reply::json(201, &message_201("queued", None)),
    ])
    .await;
    let from_number = sms_at(
        &server.base_url,
        SmsFrom::Number("+15005550006".into()),
        fast_http(),
    );
    from_number
        .send(&sms_message(Channel::Sms, "+15017122661"))
        .await
        .unwrap();
    let mg = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let from_service = sms_at(
        &server.base_url,
        SmsFrom::MessagingService(mg.into()),
        fast_http(),
    );
    from_service
        .send(&sms_message(Channel::Sms, "+15017122661"))
        .await
        .unwrap();
    from_number
        .send(&sms_message(Channel::Whatsapp, "+15017122661"))
        .await
        .unwrap();
    let reqs = server.requests();
    let path = format!("/2010-04-01/Accounts/{AC}/Messages.json");
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, path);
        assert_eq!(
            r.authorization.as_deref(),
            Some(expected_basic_auth().as_str())
        );
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
    }
    assert_eq!(
        reqs[0].form,
        form(&[
            ("To", "+15017122661"),
            ("From", "+15005550006"),
            ("Body", "Your code is 123456 & more"),
        ])
    );
    assert_eq!(
        reqs[1].form,
        form(&[
            ("To", "+15017122661"),
            ("MessagingServiceSid", mg),
            ("Body", "Your code is 123456 & more"),
        ])
    );
    assert_eq!(reqs[2].field("To"), Some("whatsapp:+15017122661"));
    assert_eq!(reqs[2].field("From"), Some("whatsapp:+15005550006"));
}

#[tokio::test]
async fn sms_sender_maps_errors_and_retries_only_what_did_not_act() {
    let server = Scripted::start(vec![
        Reply::twilio_error(
            400,
            21211,
            "The 'To' number +15017122661 is not a valid phone number.",
        ),
        Reply::twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
        Reply::json(201, &message_201("failed", Some(30003))),
        Reply::twilio_error(429, 20429, "Too many requests").header("Retry-After", "0"),
        Reply::json(201, &message_201("queued", None)),
        Reply::json(502, "bad gateway"),
        Reply::json(201, "{not json"),
    ])
    .await;
    let sms = sms_at(
        &server.base_url,
        SmsFrom::Number("+15005550006".into()),
        fast_http(),
    );
    let msg = sms_message(Channel::Sms, "+15017122661");
    let err = sms.send(&msg).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(err.remote_code(), Some(21211));
    assert!(!format!("{err:?}").contains("5017122"));
    let err = sms.send(&msg).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Forbidden);
    assert_eq!(err.remote_code(), Some(21610));
    let err = sms.send(&msg).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert_eq!(err.remote_code(), Some(30003));
    sms.send(&msg).await.unwrap(); // 20429 then accepted
    assert_eq!(server.request_count(), 5);
    let err = sms.send(&msg).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert_eq!(server.request_count(), 6, "a 502 on a send is not repeated");
    let err = sms.send(&msg).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Protocol);

    let err = sms
        .send(&sms_message(Channel::Email, "alice@example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = sms
        .send(&sms_message(Channel::Call, "+15017122661"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unsupported);
    assert_eq!(server.request_count(), 7);
}

#[tokio::test]
async fn sms_sender_times_out_and_reports_closed_connections() {
    let server = Scripted::start(vec![
        Reply::json(201, &message_201("queued", None)).delayed(Duration::from_secs(3)),
    ])
    .await;
    let sms = sms_at(
        &server.base_url,
        SmsFrom::Number("+15005550006".into()),
        fast_http().request_timeout(Duration::from_millis(200)),
    );
    let msg = sms_message(Channel::Sms, "+15017122661");
    assert_eq!(
        sms.send(&msg).await.unwrap_err().kind(),
        &ErrorKind::Timeout
    );
    let closed = sms_at(
        &closing_server().await,
        SmsFrom::Number("+15005550006".into()),
        fast_http(),
    );
    assert_eq!(
        closed.send(&msg).await.unwrap_err().kind(),
        &ErrorKind::Transport
    );
    assert!(TwilioSmsConfig::new(creds(), SmsFrom::MessagingService("MG12".into())).is_err());
}

#[tokio::test]
async fn the_self_hosted_provider_delivers_through_twilio_sms() {
    let server = Scripted::start(vec![Reply::json(201, &message_201("queued", None))]).await;
    let sms = sms_at(
        &server.base_url,
        SmsFrom::Number("+15005550006".into()),
        fast_http(),
    );
    let otp = LocalOtpProvider::new(
        Arc::new(MemoryStore::new()),
        Arc::new(sms),
        Secret::new([5u8; 32]),
    )
    .unwrap();
    let v = otp
        .start(StartVerification::new("+1 501 712 2661", Channel::Sms))
        .await
        .unwrap();
    let body = server.requests()[0].field("Body").unwrap().to_owned();
    let code: String = body.chars().filter(char::is_ascii_digit).take(6).collect();
    assert!(body.starts_with("Your verification code is "), "{body}");
    let outcome = otp.check(CheckCode::sid(&v.sid, code)).await.unwrap();
    assert!(outcome.approved().is_some());
}
