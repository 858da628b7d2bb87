//! One behaviour, two backends: every test here runs against the self-hosted provider and
//! against the Twilio Verify backend talking HTTP to a local server that implements Verify's
//! rules (tests/support). Codes are read from an outbox, the way a user reads their phone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "twilio")]
mod support;

use std::sync::Arc;
use std::time::Duration;

use keyward::otp::{
    Channel, CheckCode, CheckOutcome, LocalOtpProvider, Outbox, StartVerification, VerificationRef,
    VerificationStatus,
};
use keyward::store::MemoryStore;
use keyward::{ErrorKind, ManualClock, OtpProvider, Secret};

const PHONE: &str = "+1 (501) 712-2661";
const E164: &str = "+15017122661";

struct Harness {
    otp: Arc<dyn OtpProvider>,
    outbox: Outbox,
    clock: Arc<ManualClock>,
}

impl Harness {
    fn code(&self, to: &str) -> Secret {
        self.outbox.last_code_to(to).expect("a code was delivered")
    }

    async fn start(&self) -> keyward::otp::Verification {
        self.otp
            .start(StartVerification::new(PHONE, Channel::Sms))
            .await
            .unwrap()
    }
}

async fn local() -> Harness {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let otp = LocalOtpProvider::builder(
        Arc::new(MemoryStore::with_clock(clock.clone())),
        Arc::new(outbox.clone()),
        Secret::new(*b"conformance-secret-0123456789abc"),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    Harness {
        otp: Arc::new(otp),
        outbox,
        clock,
    }
}

#[cfg(feature = "twilio")]
async fn twilio() -> Harness {
    use keyward::otp::{TwilioVerify, TwilioVerifyConfig};
    use keyward::twilio::TwilioCredentials;
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let server = support::FakeVerify::start(clock.clone(), outbox.clone()).await;
    let creds =
        TwilioCredentials::api_key(support::AC, support::SK, Secret::from(support::SK_SECRET))
            .unwrap();
    let otp = TwilioVerify::new(
        TwilioVerifyConfig::new(creds, support::VA)
            .unwrap()
            .with_base_url(&server.base_url)
            .with_http(keyward::http::HttpConfig::default().allow_http_loopback(true)),
    )
    .unwrap();
    Harness {
        otp: Arc::new(otp),
        outbox,
        clock,
    }
}

fn wrong(code: &Secret) -> Secret {
    let flipped: String = code
        .expose_str()
        .unwrap()
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    Secret::from(flipped)
}

fn kind<T: std::fmt::Debug>(r: keyward::Result<T>) -> ErrorKind {
    r.unwrap_err().kind().clone()
}

async fn right_code_approves_once_then_the_verification_is_gone(h: Harness) {
    let v = h.start().await;
    assert_eq!(v.to, E164);
    assert_eq!(v.status, VerificationStatus::Pending);
    assert_eq!(v.channel, Channel::Sms);
    assert!(v.sid.starts_with("VE"));
    let code = h.code(E164);
    let outcome = h
        .otp
        .check(CheckCode::to(PHONE, code.clone()))
        .await
        .unwrap();
    let proof = outcome.approved().expect("approved");
    assert_eq!(proof.to(), E164);
    assert_eq!(proof.verification().sid, v.sid);
    assert!(proof.verification().valid);
    assert_eq!(
        kind(h.otp.check(CheckCode::sid(&v.sid, code.clone())).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(h.otp.check(CheckCode::to(PHONE, code)).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(h.otp.fetch(VerificationRef::Sid(v.sid.clone())).await),
        ErrorKind::NotFound
    );
    let again = h.start().await;
    assert_ne!(again.sid, v.sid);
}

async fn a_wrong_code_is_an_answer_not_an_error(h: Harness) {
    let v = h.start().await;
    let code = h.code(E164);
    match h
        .otp
        .check(CheckCode::sid(&v.sid, wrong(&code)))
        .await
        .unwrap()
    {
        CheckOutcome::Rejected(r) => {
            assert_eq!(r.status, VerificationStatus::Pending);
            assert!(!r.valid);
            assert_eq!(r.sid, v.sid);
        }
        CheckOutcome::Approved(_) => panic!("wrong code approved"),
    }
    let fetched = h
        .otp
        .fetch(VerificationRef::Sid(v.sid.clone()))
        .await
        .unwrap();
    assert_eq!(fetched.status, VerificationStatus::Pending);
    assert!(
        h.otp
            .check(CheckCode::sid(&v.sid, code))
            .await
            .unwrap()
            .approved()
            .is_some()
    );
}

async fn starting_again_resends_the_same_code_five_times_at_most(h: Harness) {
    let v = h.start().await;
    let code = h.code(E164);
    for n in 2..=5 {
        h.clock.advance(Duration::from_secs(20));
        let again = h.start().await;
        assert_eq!(again.sid, v.sid);
        assert_eq!(again.send_attempts, n);
        assert_eq!(h.code(E164), code);
    }
    assert_eq!(h.outbox.len(), 5);
    assert_eq!(
        kind(
            h.otp
                .start(StartVerification::new(PHONE, Channel::Sms))
                .await
        ),
        ErrorKind::TooManySends
    );
    assert_eq!(h.outbox.len(), 5);
}

async fn five_checks_then_locked(h: Harness) {
    let v = h.start().await;
    let code = h.code(E164);
    for _ in 0..4 {
        let r = h
            .otp
            .check(CheckCode::sid(&v.sid, wrong(&code)))
            .await
            .unwrap();
        assert_eq!(r.verification().status, VerificationStatus::Pending);
    }
    let fifth = h
        .otp
        .check(CheckCode::sid(&v.sid, wrong(&code)))
        .await
        .unwrap();
    assert!(fifth.approved().is_none());
    assert_eq!(
        kind(h.otp.check(CheckCode::sid(&v.sid, code.clone())).await),
        ErrorKind::TooManyAttempts
    );
    // Either way, the code never works again and a new start is a new verification.
    let after = h.otp.check(CheckCode::sid(&v.sid, code.clone())).await;
    assert!(matches!(
        after.map(|_| ()).unwrap_err().kind(),
        ErrorKind::TooManyAttempts | ErrorKind::NotFound
    ));
    let fresh = h.start().await;
    assert_ne!(fresh.sid, v.sid);
}

async fn codes_expire_after_ten_minutes(h: Harness) {
    let v = h.start().await;
    let code = h.code(E164);
    h.clock.advance(Duration::from_secs(599));
    assert_eq!(
        h.otp
            .fetch(VerificationRef::Sid(v.sid.clone()))
            .await
            .unwrap()
            .sid,
        v.sid
    );
    h.clock.advance(Duration::from_secs(2));
    let k = kind(h.otp.check(CheckCode::sid(&v.sid, code.clone())).await);
    assert!(
        matches!(k, ErrorKind::Expired | ErrorKind::NotFound),
        "{k:?}"
    );
    let fresh = h.start().await;
    assert_ne!(fresh.sid, v.sid);
    assert_eq!(fresh.send_attempts, 1);
}

async fn cancel_ends_the_verification(h: Harness) {
    let v = h.start().await;
    let code = h.code(E164);
    let canceled = h
        .otp
        .cancel(VerificationRef::Sid(v.sid.clone()))
        .await
        .unwrap();
    assert_eq!(canceled.status, VerificationStatus::Canceled);
    assert_eq!(
        kind(h.otp.check(CheckCode::sid(&v.sid, code)).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(h.otp.cancel(VerificationRef::Sid(v.sid)).await),
        ErrorKind::NotFound
    );
}

async fn custom_codes_and_email_destinations(h: Harness) {
    let v = h
        .otp
        .start(StartVerification::new(" Alice@Example.COM ", Channel::Email).custom_code("4242"))
        .await
        .unwrap();
    assert_eq!(v.to, "alice@example.com");
    assert_eq!(v.channel, Channel::Email);
    assert_eq!(h.code("alice@example.com").expose_str(), Some("4242"));
    let outcome = h
        .otp
        .check(CheckCode::to("ALICE@example.com", "4242"))
        .await
        .unwrap();
    assert!(outcome.approved().is_some());
}

async fn malformed_input_is_refused_without_cost(h: Harness) {
    let v = h.start().await;
    let code = h.code(E164);
    for _ in 0..4 {
        let _ = h
            .otp
            .check(CheckCode::sid(&v.sid, wrong(&code)))
            .await
            .unwrap();
    }
    for bad in ["", "12", "12345678901", "12 34"] {
        assert_eq!(
            kind(h.otp.check(CheckCode::sid(&v.sid, bad)).await),
            ErrorKind::InvalidInput
        );
    }
    assert_eq!(
        kind(h.otp.check(CheckCode::sid("VE42", code.clone())).await),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            h.otp
                .start(StartVerification::new("555-0100", Channel::Sms))
                .await
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            h.otp
                .fetch(VerificationRef::Sid(
                    "VE00000000000000000000000000000000".into()
                ))
                .await
        ),
        ErrorKind::NotFound
    );
    // The last attempt is still there.
    assert!(
        h.otp
            .check(CheckCode::sid(&v.sid, code))
            .await
            .unwrap()
            .approved()
            .is_some()
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod self_hosted {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::local().await).await;
                }
            )*
        }

        #[cfg(feature = "twilio")]
        mod twilio_verify_over_http {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::twilio().await).await;
                }
            )*
        }
    };
}

conformance!(
    right_code_approves_once_then_the_verification_is_gone,
    a_wrong_code_is_an_answer_not_an_error,
    starting_again_resends_the_same_code_five_times_at_most,
    five_checks_then_locked,
    codes_expire_after_ten_minutes,
    cancel_ends_the_verification,
    custom_codes_and_email_destinations,
    malformed_input_is_refused_without_cost,
);
