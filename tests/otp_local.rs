//! The self-hosted OTP provider's rules, on a manual clock with an in-memory outbox.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failures

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use keyward::Env;
use keyward::otp::{
    Channel, CheckCode, CheckOutcome, CodeSender, LocalOtpProvider, MessageTemplate,
    MessageTemplates, Outbox, OutgoingMessage, SendRateLimit, StartVerification, VerificationRef,
    VerificationStatus,
};
use keyward::store::{MemoryStore, StateStore};
use keyward::{Error, ErrorKind, ManualClock, OtpProvider, Secret};

const PHONE: &str = "+1 (501) 712-2661";
const E164: &str = "+15017122661";

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    outbox: Outbox,
    otp: LocalOtpProvider,
}

fn fixture_with(
    configure: impl FnOnce(keyward::otp::LocalOtpBuilder) -> keyward::otp::LocalOtpBuilder,
) -> Fixture {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let store = Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let outbox = Outbox::new();
    let builder = LocalOtpProvider::builder(
        store.clone(),
        Arc::new(outbox.clone()),
        Secret::new(*b"test-server-secret-32-bytes-long"),
    )
    .env(Env::system().with_clock(clock.clone()));
    let otp = configure(builder).build().unwrap();
    Fixture {
        clock,
        store,
        outbox,
        otp,
    }
}

fn fixture() -> Fixture {
    fixture_with(|b| b)
}

impl Fixture {
    fn last_code(&self, to: &str) -> Secret {
        self.outbox.last_code_to(to).expect("a code was sent")
    }

    async fn start(&self) -> keyward::otp::Verification {
        self.otp
            .start(StartVerification::new(PHONE, Channel::Sms))
            .await
            .unwrap()
    }
}

fn wrong_code(right: &Secret) -> Secret {
    let s = right.expose_str().unwrap();
    let flipped: String = s
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    Secret::from(flipped)
}

fn kind(result: Result<impl std::fmt::Debug, Error>) -> ErrorKind {
    result.unwrap_err().kind().clone()
}

#[tokio::test]
async fn start_sends_a_six_digit_code_and_check_approves_it_once() {
    let f = fixture();
    let v = f.start().await;
    assert_eq!(v.to, E164);
    assert_eq!(v.status, VerificationStatus::Pending);
    assert_eq!(v.send_attempts, 1);
    assert!(v.sid.starts_with("VE") && v.sid.len() == 34);
    assert_eq!(v.expires_at, Some(f.clock_now() + Duration::from_secs(600)));
    let code = f.last_code(E164);
    let text = code.expose_str().unwrap();
    assert_eq!(text.len(), 6);
    assert!(text.bytes().all(|b| b.is_ascii_digit()));
    let msg = f.outbox.last_to(E164).unwrap();
    assert_eq!(msg.channel, Channel::Sms);
    assert_eq!(
        msg.body.expose_str().unwrap(),
        format!("Your verification code is {text}. It expires in 10 minutes.")
    );

    let outcome = f
        .otp
        .check(CheckCode::to(PHONE, code.clone()))
        .await
        .unwrap();
    let proof = outcome.approved().expect("approved");
    assert_eq!(proof.to(), E164);
    assert_eq!(proof.verification().status, VerificationStatus::Approved);
    assert!(proof.verification().valid);

    // Gone afterwards, by sid and by destination, whatever is asked.
    for target in [
        VerificationRef::Sid(v.sid.clone()),
        VerificationRef::To(PHONE.into()),
    ] {
        assert_eq!(kind(f.otp.fetch(target.clone()).await), ErrorKind::NotFound);
        assert_eq!(
            kind(f.otp.cancel(target.clone()).await),
            ErrorKind::NotFound
        );
    }
    assert_eq!(
        kind(f.otp.check(CheckCode::sid(&v.sid, code.clone())).await),
        ErrorKind::NotFound
    );
    // A new start is a new verification with a new code.
    let v2 = f.start().await;
    assert_ne!(v2.sid, v.sid);
    assert_eq!(v2.send_attempts, 1);
}

impl Fixture {
    fn clock_now(&self) -> std::time::SystemTime {
        keyward::Clock::now(self.clock.as_ref())
    }
}

#[tokio::test]
async fn restart_inside_the_window_resends_the_same_code_until_five_sends() {
    let f = fixture();
    let v = f.start().await;
    let first = f.last_code(E164);
    for n in 2..=5 {
        f.clock.advance(Duration::from_secs(30));
        let again = f.start().await;
        assert_eq!(again.sid, v.sid);
        assert_eq!(again.send_attempts, n);
        assert_eq!(
            f.last_code(E164),
            first,
            "re-send {n} must carry the same code"
        );
        // Re-sends do not extend the code's life.
        assert_eq!(again.expires_at, v.expires_at);
    }
    assert_eq!(f.outbox.len(), 5);
    let err = f
        .otp
        .start(StartVerification::new(PHONE, Channel::Sms))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooManySends);
    assert_eq!(f.outbox.len(), 5, "a refused send sends nothing");
    // The verification itself is still usable.
    let outcome = f.otp.check(CheckCode::sid(&v.sid, first)).await.unwrap();
    assert!(matches!(outcome, CheckOutcome::Approved(_)));
}

#[tokio::test]
async fn switching_channel_resends_the_same_code_over_the_new_channel() {
    let f = fixture();
    let v = f.start().await;
    let code = f.last_code(E164);
    let again = f
        .otp
        .start(StartVerification::new(PHONE, Channel::Call))
        .await
        .unwrap();
    assert_eq!(again.sid, v.sid);
    assert_eq!(again.channel, Channel::Call);
    let msg = f.outbox.last_to(E164).unwrap();
    assert_eq!(msg.channel, Channel::Call);
    assert_eq!(msg.code, code);
}

#[tokio::test]
async fn five_wrong_checks_exhaust_the_verification() {
    let f = fixture();
    let v = f.start().await;
    let right = f.last_code(E164);
    let wrong = wrong_code(&right);
    for n in 1..=4 {
        let outcome = f
            .otp
            .check(CheckCode::sid(&v.sid, wrong.clone()))
            .await
            .unwrap();
        match outcome {
            CheckOutcome::Rejected(v) => {
                assert_eq!(v.status, VerificationStatus::Pending, "check {n}");
                assert!(!v.valid);
            }
            CheckOutcome::Approved(_) => panic!("wrong code approved"),
        }
    }
    let fifth = f
        .otp
        .check(CheckCode::sid(&v.sid, wrong.clone()))
        .await
        .unwrap();
    assert_eq!(
        fifth.verification().status,
        VerificationStatus::MaxAttemptsReached
    );
    // Even the right code is refused now, with a specific error while the tombstone lives...
    let err = f
        .otp
        .check(CheckCode::sid(&v.sid, right.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooManyAttempts);
    assert_eq!(
        kind(f.otp.fetch(VerificationRef::Sid(v.sid.clone())).await),
        ErrorKind::TooManyAttempts
    );
    // ...and a plain NotFound once it is gone (like Twilio's 20404).
    f.clock.advance(Duration::from_secs(601));
    assert_eq!(
        kind(f.otp.check(CheckCode::sid(&v.sid, right)).await),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn the_fifth_check_may_still_be_right() {
    let f = fixture();
    let v = f.start().await;
    let right = f.last_code(E164);
    for _ in 0..4 {
        let _ = f
            .otp
            .check(CheckCode::sid(&v.sid, wrong_code(&right)))
            .await
            .unwrap();
    }
    let outcome = f.otp.check(CheckCode::sid(&v.sid, right)).await.unwrap();
    assert!(outcome.approved().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_wrong_guesses_count_at_most_five_then_lock() {
    let f = Arc::new(fixture());
    let v = f.start().await;
    let right = f.last_code(E164);
    let wrong = wrong_code(&right);
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let f = f.clone();
        let check = CheckCode::sid(&v.sid, wrong.clone());
        tasks.push(tokio::spawn(async move { f.otp.check(check).await }));
    }
    let (mut rejected, mut locked) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(CheckOutcome::Rejected(_)) => rejected += 1,
            Ok(CheckOutcome::Approved(_)) => panic!("a wrong code was approved"),
            Err(e) => {
                assert_eq!(e.kind(), &ErrorKind::TooManyAttempts, "{e}");
                locked += 1;
            }
        }
    }
    assert_eq!(rejected, 5, "exactly five guesses were compared");
    assert_eq!(locked, 995);
    let err = f
        .otp
        .check(CheckCode::sid(&v.sid, right))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooManyAttempts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_right_checks_approve_exactly_once() {
    let f = Arc::new(fixture());
    let v = f.start().await;
    let right = f.last_code(E164);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let f = f.clone();
        let check = CheckCode::sid(&v.sid, right.clone());
        tasks.push(tokio::spawn(async move { f.otp.check(check).await }));
    }
    let mut approved = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(CheckOutcome::Approved(_)) => approved += 1,
            Ok(CheckOutcome::Rejected(_)) => panic!("the right code was rejected"),
            Err(e) => assert_eq!(e.kind(), &ErrorKind::NotFound, "{e}"),
        }
    }
    assert_eq!(approved, 1);
}

#[tokio::test]
async fn codes_expire_after_ten_minutes_with_a_specific_error_then_vanish() {
    let f = fixture();
    let v = f.start().await;
    let code = f.last_code(E164);
    f.clock.advance(Duration::from_secs(599));
    assert_eq!(
        f.otp
            .fetch(VerificationRef::To(PHONE.into()))
            .await
            .unwrap()
            .sid,
        v.sid
    );
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        kind(f.otp.check(CheckCode::to(PHONE, code.clone())).await),
        ErrorKind::Expired
    );
    assert_eq!(
        kind(f.otp.check(CheckCode::sid(&v.sid, code.clone())).await),
        ErrorKind::Expired
    );
    // A new start after expiry is a fresh verification.
    let v2 = f.start().await;
    assert_ne!(v2.sid, v.sid);
    assert_ne!(f.last_code(E164), code);
    // The old one is eventually plain gone.
    f.clock.advance(Duration::from_secs(601));
    assert_eq!(
        kind(f.otp.fetch(VerificationRef::Sid(v.sid)).await),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn nothing_lingers_in_the_store() {
    let f = fixture();
    let v = f.start().await;
    let code = f.last_code(E164);
    let _ = f
        .otp
        .check(CheckCode::sid(&v.sid, wrong_code(&code)))
        .await
        .unwrap();
    let _ = f.otp.check(CheckCode::sid(&v.sid, code)).await.unwrap();
    f.otp
        .start(StartVerification::new("bob@example.com", Channel::Email))
        .await
        .unwrap();
    assert!(!f.store.is_empty());
    // Past the code lifetime, the tombstone window and the rate-limit window, all is gone.
    f.clock.advance(Duration::from_secs(3_600 + 1_200));
    assert_eq!(f.store.len(), 0);
}

#[tokio::test]
async fn per_destination_rate_limit_stops_sms_bombing() {
    let f =
        fixture_with(|b| b.send_rate_limit(Some(SendRateLimit::new(3, Duration::from_secs(900)))));
    for _ in 0..3 {
        let v = f.start().await;
        f.otp.cancel(VerificationRef::Sid(v.sid)).await.unwrap();
    }
    let err = f
        .otp
        .start(StartVerification::new(PHONE, Channel::Sms))
        .await
        .unwrap_err();
    match err.kind() {
        ErrorKind::RateLimited { retry_after } => {
            let wait = retry_after.unwrap();
            assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(900),
                "{wait:?}"
            );
        }
        other => panic!("expected rate limited, got {other:?}"),
    }
    assert_eq!(f.outbox.len(), 3);
    // Re-sends count too, and other destinations are unaffected.
    f.otp
        .start(StartVerification::new("+33612345678", Channel::Sms))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(900));
    f.start().await;
    assert_eq!(f.outbox.len(), 5);
}

#[tokio::test]
async fn custom_codes_are_used_and_must_be_passed_again_to_resend() {
    let f = fixture();
    let v = f
        .otp
        .start(StartVerification::new(PHONE, Channel::Sms).custom_code("A1b2C3"))
        .await
        .unwrap();
    assert_eq!(f.last_code(E164).expose_str(), Some("A1b2C3"));
    assert_eq!(
        kind(
            f.otp
                .start(StartVerification::new(PHONE, Channel::Sms))
                .await
        ),
        ErrorKind::InvalidInput
    );
    let again = f
        .otp
        .start(StartVerification::new(PHONE, Channel::Sms).custom_code("A1b2C3"))
        .await
        .unwrap();
    assert_eq!(again.sid, v.sid);
    assert_eq!(again.send_attempts, 2);
    let rejected = f.otp.check(CheckCode::sid(&v.sid, "a1b2c3")).await.unwrap();
    assert!(rejected.approved().is_none(), "codes are case-sensitive");
    let outcome = f.otp.check(CheckCode::sid(&v.sid, "A1b2C3")).await.unwrap();
    assert!(outcome.approved().is_some());

    for bad in ["123", "12345678901", "12 34", "12345é", ""] {
        assert_eq!(
            kind(
                f.otp
                    .start(StartVerification::new(PHONE, Channel::Sms).custom_code(bad))
                    .await
            ),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn code_length_is_configurable_within_four_to_ten() {
    for len in [4u8, 10] {
        let f = fixture_with(|b| b.code_length(len));
        f.start().await;
        assert_eq!(f.last_code(E164).len(), usize::from(len));
    }
    for len in [0u8, 3, 11] {
        let err = LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([9u8; 32]),
        )
        .code_length(len)
        .build()
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config, "{len}");
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_loses_no_state() {
    let f = fixture();
    let v = f.start().await;
    let right = f.last_code(E164);
    for _ in 0..4 {
        let _ = f
            .otp
            .check(CheckCode::sid(&v.sid, wrong_code(&right)))
            .await
            .unwrap();
    }
    // Malformed codes and references do not consume the last attempt.
    for bad in ["", "123", "12345678901", "12 456", "١٢٣٤٥٦"] {
        assert_eq!(
            kind(f.otp.check(CheckCode::sid(&v.sid, bad)).await),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    for bad_sid in [
        "",
        "VE123",
        "XX00000000000000000000000000000000",
        "VEzz000000000000000000000000000000",
    ] {
        assert_eq!(
            kind(f.otp.check(CheckCode::sid(bad_sid, right.clone())).await),
            ErrorKind::InvalidInput
        );
    }
    assert_eq!(
        kind(
            f.otp
                .check(CheckCode::to("not a phone", right.clone()))
                .await
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            f.otp
                .start(StartVerification::new("+1 800 FLOWERS", Channel::Sms))
                .await
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            f.otp
                .start(StartVerification::new(PHONE, Channel::Sms).locale("fr;rm -rf"))
                .await
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            f.otp
                .start(StartVerification::new(PHONE, Channel::Sna))
                .await
        ),
        ErrorKind::Unsupported
    );
    // Unknown but well-formed sid.
    assert_eq!(
        kind(
            f.otp
                .fetch(VerificationRef::Sid(
                    "VE00000000000000000000000000000000".into()
                ))
                .await
        ),
        ErrorKind::NotFound
    );
    let fetched = f
        .otp
        .fetch(VerificationRef::Sid(v.sid.clone()))
        .await
        .unwrap();
    assert_eq!(fetched.send_attempts, 1);
    let outcome = f.otp.check(CheckCode::sid(&v.sid, right)).await.unwrap();
    assert!(outcome.approved().is_some());
}

#[tokio::test]
async fn cancel_ends_the_verification() {
    let f = fixture();
    let v = f.start().await;
    let code = f.last_code(E164);
    let canceled = f
        .otp
        .cancel(VerificationRef::To(PHONE.into()))
        .await
        .unwrap();
    assert_eq!(canceled.status, VerificationStatus::Canceled);
    assert_eq!(canceled.sid, v.sid);
    assert_eq!(
        kind(f.otp.check(CheckCode::sid(&v.sid, code)).await),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn templates_are_localized_and_email_gets_a_subject() {
    let templates = MessageTemplates::default().with_locale(
        "fr",
        MessageTemplate::new("Votre code : {code} (valable {minutes} min)")
            .unwrap()
            .with_subject("Code de vérification"),
    );
    let f = fixture_with(|b| b.templates(templates).code_ttl(Duration::from_secs(300)));
    f.otp
        .start(StartVerification::new(" Alice@Example.COM ", Channel::Email).locale("fr-CA"))
        .await
        .unwrap();
    let msg = f.outbox.last_to("alice@example.com").unwrap();
    let code = msg.code.expose_str().unwrap().to_owned();
    assert_eq!(
        msg.body.expose_str().unwrap(),
        format!("Votre code : {code} (valable 5 min)")
    );
    assert_eq!(msg.subject.as_deref(), Some("Code de vérification"));
    // Auto picks email for an address and sms for a number.
    f.otp
        .start(StartVerification::new("+33612345678", Channel::Auto))
        .await
        .unwrap();
    assert_eq!(
        f.outbox.last_to("+33612345678").unwrap().channel,
        Channel::Sms
    );
}

#[derive(Debug)]
struct FlakySender {
    fail: AtomicBool,
    outbox: Outbox,
}

#[async_trait]
impl CodeSender for FlakySender {
    async fn send(&self, message: &OutgoingMessage) -> keyward::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Transport, "carrier unreachable"));
        }
        self.outbox.send(message).await
    }
}

#[tokio::test]
async fn a_failed_first_delivery_leaves_no_verification_behind() {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let sender = Arc::new(FlakySender {
        fail: AtomicBool::new(true),
        outbox: Outbox::new(),
    });
    let otp = LocalOtpProvider::builder(store, sender.clone(), Secret::new([3u8; 32]))
        .env(Env::system().with_clock(clock))
        .build()
        .unwrap();
    let err = otp
        .start(StartVerification::new(PHONE, Channel::Sms))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Transport);
    assert_eq!(
        kind(otp.fetch(VerificationRef::To(PHONE.into())).await),
        ErrorKind::NotFound
    );
    sender.fail.store(false, Ordering::SeqCst);
    let v = otp
        .start(StartVerification::new(PHONE, Channel::Sms))
        .await
        .unwrap();
    assert_eq!(v.send_attempts, 1);
    let code = sender.outbox.last_code_to(E164).unwrap();
    assert!(
        otp.check(CheckCode::sid(&v.sid, code))
            .await
            .unwrap()
            .approved()
            .is_some()
    );
}

#[tokio::test]
async fn state_is_shared_by_instances_with_the_same_secret_only() {
    let f = fixture();
    let v = f.start().await;
    let code = f.last_code(E164);
    let other_secret = LocalOtpProvider::builder(
        f.store.clone(),
        Arc::new(Outbox::new()),
        Secret::new(*b"a-different-server-secret-32byte"),
    )
    .env(Env::system().with_clock(f.clock.clone()))
    .build()
    .unwrap();
    // A different secret neither finds the verification from its sid nor derives its code.
    assert_eq!(
        kind(
            other_secret
                .check(CheckCode::sid(&v.sid, code.clone()))
                .await
        ),
        ErrorKind::NotFound
    );
    let outcome = other_secret.check(CheckCode::to(PHONE, code.clone())).await;
    assert!(outcome.is_err() || outcome.unwrap().approved().is_none());
    let same_secret = LocalOtpProvider::builder(
        f.store.clone(),
        Arc::new(Outbox::new()),
        Secret::new(*b"test-server-secret-32-bytes-long"),
    )
    .env(Env::system().with_clock(f.clock.clone()))
    .build()
    .unwrap();
    assert!(
        same_secret
            .check(CheckCode::sid(&v.sid, code))
            .await
            .unwrap()
            .approved()
            .is_some()
    );
}

#[test]
fn debug_hides_the_server_secret() {
    let builder = LocalOtpProvider::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(Outbox::new()),
        Secret::new(*b"super-secret-server-key-32-bytes"),
    );
    let shown = format!("{builder:?}");
    assert!(!shown.contains("super-secret"), "{shown}");
    let otp = builder.build().unwrap();
    let shown = format!("{otp:?} {otp:#?}");
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(shown.contains("REDACTED"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever a user types, a check answers without panicking, approves only the right code,
    /// and malformed input never costs an attempt.
    #[test]
    fn arbitrary_typed_codes_are_answered_safely(typed in "\\PC{0,14}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let f = fixture();
            let v = f.start().await;
            let right = f.last_code(E164);
            let well_formed = (4..=10).contains(&typed.len())
                && typed.bytes().all(|b| b.is_ascii_alphanumeric());
            match f.otp.check(CheckCode::sid(&v.sid, typed.as_str())).await {
                Ok(CheckOutcome::Approved(_)) => assert_eq!(Some(typed.as_str()), right.expose_str()),
                Ok(CheckOutcome::Rejected(_)) => assert!(well_formed),
                Err(e) => {
                    assert_eq!(e.kind(), &ErrorKind::InvalidInput);
                    assert!(!well_formed);
                    // Nothing was counted: five more checks are still allowed.
                    for _ in 0..4 {
                        let _ = f.otp.check(CheckCode::sid(&v.sid, wrong_code(&right))).await.unwrap();
                    }
                    assert!(f.otp.check(CheckCode::sid(&v.sid, right)).await.unwrap().approved().is_some());
                }
            }
        });
    }
}
