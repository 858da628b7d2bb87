//! Twilio Verify's TOTP factors against a local server speaking Twilio's wire format
//! (`support::FakeVerify`, built from the OpenAPI examples of `Entities/{identity}/Factors` and
//! `Challenges`), and one scenario run against both backends of `TotpProvider`.
#![cfg(feature = "twilio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward::Env;
use keyward::http::HttpConfig;
use keyward::otp::{Outbox, TwilioVerifyConfig};
use keyward::store::MemoryStore;
use keyward::totp::{
    CheckTotp, EnrollTotp, LocalTotp, TotpAlgorithm, TotpEnrollment, TotpOutcome, TotpProvider,
    TwilioTotp, base32_decode, totp_at,
};
use keyward::twilio::TwilioCredentials;
use keyward::{Clock, ErrorKind, ManualClock, Secret, SecureRandom};
use support::{AC, FAKE_TOTP_ISSUER, FakeVerify, Reply, SK, SK_SECRET, Scripted, VA};

const IDENTITY: &str = "user-00000042";
const T0: u64 = 1_700_000_010;

#[derive(Debug)]
struct Counter(Mutex<u8>);

impl SecureRandom for Counter {
    fn fill(&self, dest: &mut [u8]) -> keyward::Result<()> {
        let mut n = self.0.lock().unwrap();
        for b in dest.iter_mut() {
            *n = n.wrapping_add(1);
            *b = *n;
        }
        Ok(())
    }
}

fn http() -> HttpConfig {
    HttpConfig::default()
        .max_retries(1)
        .backoff(Duration::from_millis(5), Duration::from_millis(10))
        .allow_http_loopback(true)
}

fn twilio_at(base_url: &str) -> TwilioTotp {
    let creds = TwilioCredentials::api_key(AC, SK, Secret::from(SK_SECRET)).unwrap();
    let config = TwilioVerifyConfig::new(creds, VA)
        .unwrap()
        .with_base_url(base_url)
        .http(http());
    TwilioTotp::new(config)
        .unwrap()
        .env(Env::system().with_random(Arc::new(Counter(Mutex::new(0)))))
}

fn app_code(e: &TotpEnrollment, at: u64) -> Secret {
    let secret = base32_decode(e.secret.expose_str().unwrap()).unwrap();
    totp_at(
        &secret,
        at,
        e.params.period,
        e.params.digits,
        e.params.algorithm,
    )
    .unwrap()
}

/// The contract, whatever the backend: enrol, confirm with the first code, check, replay
/// refused, wrong code rejected, removal.
async fn scenario(totp: &dyn TotpProvider, clock: &ManualClock) {
    let e = totp
        .enroll(EnrollTotp::new(IDENTITY, "John’s Account Name"))
        .await
        .unwrap();
    assert_eq!(
        base32_decode(e.secret.expose_str().unwrap()).unwrap().len(),
        20
    );
    assert!(e.uri.expose_str().unwrap().starts_with("otpauth://totp/"));
    let sid = e.factor_sid.clone();
    // Not yet confirmed: no sign-in.
    let check = totp
        .check(CheckTotp::new(
            IDENTITY,
            &sid,
            app_code(&e, clock.unix_seconds()),
        ))
        .await;
    assert_eq!(check.unwrap_err().kind(), &ErrorKind::NotFound);
    let wrong = totp
        .confirm(CheckTotp::new(IDENTITY, &sid, "000000"))
        .await
        .unwrap();
    assert_eq!(wrong, TotpOutcome::Rejected);
    let first = app_code(&e, clock.unix_seconds());
    let ok = totp
        .confirm(CheckTotp::new(IDENTITY, &sid, first.clone()))
        .await
        .unwrap();
    assert_eq!(ok.approved().unwrap().factor_sid(), sid);
    // The confirming code's step is spent.
    let replay = totp
        .check(CheckTotp::new(IDENTITY, &sid, first))
        .await
        .unwrap();
    assert_eq!(replay, TotpOutcome::Rejected);
    clock.advance(Duration::from_secs(30));
    let code = app_code(&e, clock.unix_seconds());
    let ok = totp
        .check(CheckTotp::new(IDENTITY, &sid, code.clone()))
        .await
        .unwrap();
    assert_eq!(ok.approved().unwrap().identity(), IDENTITY);
    let replay = totp
        .check(CheckTotp::new(IDENTITY, &sid, code))
        .await
        .unwrap();
    assert_eq!(replay, TotpOutcome::Rejected);
    totp.remove(IDENTITY, &sid).await.unwrap();
    assert_eq!(
        totp.remove(IDENTITY, &sid).await.unwrap_err().kind(),
        &ErrorKind::NotFound
    );
}

#[tokio::test]
async fn the_contract_holds_for_the_self_hosted_backend() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store = Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let totp = LocalTotp::builder(store, Secret::new([1u8; 32]), "Example")
        .env(Env::system().with_clock(clock.clone()))
        .build()
        .unwrap();
    scenario(&totp, &clock).await;
}

#[tokio::test]
async fn the_contract_holds_for_twilio_verify_over_http() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let fake = FakeVerify::start(clock.clone(), Outbox::new()).await;
    let totp = twilio_at(&fake.base_url);
    scenario(&totp, &clock).await;
}

#[tokio::test]
async fn enrolment_sends_the_exact_form_fields() {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let fake = FakeVerify::start(clock.clone(), Outbox::new()).await;
    let totp = twilio_at(&fake.base_url);
    let e = totp
        .enroll(
            EnrollTotp::new(IDENTITY, "John’s Account Name")
                .algorithm(TotpAlgorithm::Sha256)
                .digits(8)
                .period(60)
                .skew(2),
        )
        .await
        .unwrap();
    let requests = fake.requests();
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        format!("/v2/Services/{VA}/Entities/{IDENTITY}/Factors")
    );
    assert_eq!(
        r.authorization.as_deref(),
        Some(support::expected_basic_auth().as_str())
    );
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    // The secret came from the injected source: bytes 1, 2, ..., 20.
    let expected_secret = keyward::totp::base32_encode(&(1u8..=20).collect::<Vec<_>>());
    let fields: Vec<(&str, &str)> = r
        .form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("FriendlyName", "John’s Account Name"),
            ("FactorType", "totp"),
            ("Binding.Secret", expected_secret.as_str()),
            ("Config.TimeStep", "60"),
            ("Config.Skew", "2"),
            ("Config.CodeLength", "8"),
            ("Config.Alg", "sha256"),
        ]
    );
    assert_eq!(e.secret.expose_str(), Some(expected_secret.as_str()));
    assert_eq!(
        e.uri.expose_str().unwrap(),
        format!(
            "otpauth://totp/{FAKE_TOTP_ISSUER}:John%E2%80%99s%20Account%20Name?secret={expected_secret}&issuer={FAKE_TOTP_ISSUER}&algorithm=SHA256&digits=8&period=60"
        )
    );
    assert_eq!(
        (e.params.digits, e.params.period, e.params.skew),
        (8, 60, 2)
    );
    assert!(!format!("{e:?}").contains(&expected_secret));

    // Confirm and check: the exact paths and fields.
    let code = app_code(&e, clock.unix_seconds());
    let _ = totp
        .confirm(CheckTotp::new(IDENTITY, &e.factor_sid, code.clone()))
        .await
        .unwrap()
        .approved()
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let code2 = app_code(&e, clock.unix_seconds());
    let _ = totp
        .check(CheckTotp::new(IDENTITY, &e.factor_sid, code2.clone()))
        .await
        .unwrap()
        .approved()
        .unwrap();
    let requests = fake.requests();
    let confirm = &requests[1];
    assert_eq!(
        confirm.path,
        format!(
            "/v2/Services/{VA}/Entities/{IDENTITY}/Factors/{}",
            e.factor_sid
        )
    );
    assert_eq!(
        confirm.form,
        vec![(
            "AuthPayload".to_owned(),
            code.expose_str().unwrap().to_owned()
        )]
    );
    let challenge = &requests[2];
    assert_eq!(
        challenge.path,
        format!("/v2/Services/{VA}/Entities/{IDENTITY}/Challenges")
    );
    assert_eq!(
        challenge.form,
        vec![
            ("FactorSid".to_owned(), e.factor_sid.clone()),
            (
                "AuthPayload".to_owned(),
                code2.expose_str().unwrap().to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn out_of_range_input_is_refused_before_any_request() {
    let server = Scripted::start(vec![]).await;
    let totp = twilio_at(&server.base_url);
    for request in [
        EnrollTotp::new("short", "alice"),
        EnrollTotp::new("alice@example.com", "alice"),
        EnrollTotp::new(IDENTITY, "alice").period(90),
        EnrollTotp::new(IDENTITY, "alice").skew(3),
        EnrollTotp::new(IDENTITY, "alice").digits(9),
        EnrollTotp::new(IDENTITY, ""),
    ] {
        let err = totp.enroll(request).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    }
    for (sid, code) in [
        ("YF123", "123456"),
        ("YFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "12ab56"),
    ] {
        let err = totp
            .check(CheckTotp::new(IDENTITY, sid, code))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    }
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn twilio_errors_and_malformed_answers_are_typed() {
    let server = Scripted::start(vec![
        Reply::twilio_error(401, 20003, "Authenticate"),
        Reply::twilio_error(404, 20404, "The requested resource was not found"),
        Reply::json(201, r#"{"sid":"YC1","status":"pending""#),
        Reply::json(201, r#"{"sid":"YCaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"weird","factor_sid":"YFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#),
        Reply::json(201, r#"{"sid":"YFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"unverified","factor_type":"totp"}"#),
    ])
    .await;
    let totp = twilio_at(&server.base_url);
    let check = || CheckTotp::new(IDENTITY, "YFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "123456");
    let err = totp.check(check()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    assert_eq!(err.remote_code(), Some(20003));
    let err = totp.check(check()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(
        totp.check(check()).await.unwrap_err().kind(),
        &ErrorKind::Protocol
    );
    assert_eq!(
        totp.check(check()).await.unwrap_err().kind(),
        &ErrorKind::Protocol
    );
    // A created factor without its binding cannot be shown to the user.
    let err = totp
        .enroll(EnrollTotp::new(IDENTITY, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Protocol);
    assert_eq!(server.request_count(), 5);
}
