//! The [`OtpProvider`] conformance suite.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: a broken promise panics with its name"
)]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::join_all;
use crate::clock::ManualClock;
use crate::error::{ErrorKind, Result};
use crate::otp::{
    Channel, CheckCode, CheckOutcome, OtpProvider, Outbox, StartVerification, Verification,
    VerificationRef, VerificationStatus,
};
use crate::secret::Secret;

/// What the [`otp_provider`] suite needs to drive a provider: where its codes arrive and the
/// clock its expiry follows.
#[derive(Clone)]
#[non_exhaustive]
pub struct OtpCapabilities {
    /// Every code the provider sends lands here (the provider's sender, or a fake service's).
    pub outbox: Outbox,
    /// The clock the provider (or the fake service behind it) expires codes by.
    pub clock: Arc<ManualClock>,
    /// Distinguishes the destinations of one run from another's on the same provider: the
    /// suite's numbers are `+1 501 712 2{run}{nn}` (`run` 0 to 9) and its addresses
    /// `conformance{run}.{nn}@example.com`.
    pub run: u8,
}

impl fmt::Debug for OtpCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpCapabilities")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

impl OtpCapabilities {
    /// A provider delivering to `outbox` and expiring by `clock`, with Twilio Verify's defaults
    /// (6-digit codes valid 10 minutes, 5 checks, 5 sends).
    pub fn new(outbox: Outbox, clock: Arc<ManualClock>) -> Self {
        OtpCapabilities {
            outbox,
            clock,
            run: 0,
        }
    }

    /// Sets the run digit (0 to 9) so several runs on one provider use distinct destinations.
    pub fn with_run(mut self, run: u8) -> Self {
        self.run = run % 10;
        self
    }
}

struct Suite<'a> {
    otp: &'a dyn OtpProvider,
    caps: &'a OtpCapabilities,
}

impl Suite<'_> {
    /// A phone number, as typed (with spaces), and its E.164 form.
    fn phone(&self, n: u8) -> (String, String) {
        let run = self.caps.run;
        (
            format!("+1 (501) 712-2{run}{:02}", n % 100),
            format!("+15017122{run}{:02}", n % 100),
        )
    }

    fn email(&self, n: u8) -> String {
        format!("conformance{}.{n}@example.com", self.caps.run)
    }

    fn code(&self, e164: &str) -> Secret {
        self.caps
            .outbox
            .last_code_to(e164)
            .expect("a started verification delivers a code to the outbox")
    }

    async fn start(&self, typed: &str) -> Verification {
        self.otp
            .start(StartVerification::new(typed, Channel::Sms))
            .await
            .expect("start must succeed")
    }

    fn advance(&self, d: Duration) {
        self.caps.clock.advance(d);
    }
}

fn wrong(code: &Secret) -> Secret {
    let flipped: String = code
        .expose_str()
        .expect("codes are text")
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    Secret::from(flipped)
}

fn kind<T: fmt::Debug>(r: Result<T>, what: &str) -> ErrorKind {
    match r {
        Err(e) => e.kind().clone(),
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
    }
}

fn approved(outcome: Result<CheckOutcome>, what: &str) -> crate::otp::Approved {
    match outcome {
        Ok(CheckOutcome::Approved(a)) => a,
        other => panic!("{what}: expected an approval, got {other:?}"),
    }
}

/// Runs every part of the [`OtpProvider`] suite against `otp`: Twilio Verify's observable
/// behaviour, which every provider keeps.
///
/// Parts: a right code approves once and ends the verification (by sid and by destination, the
/// proof naming the normalized destination when checked by destination); a wrong code is an
/// answer, not an error; starting again re-sends the same code, five sends at most; five checks
/// then the verification is locked, the fifth may still be right; codes expire after ten minutes
/// (by [`OtpCapabilities::clock`]); cancel ends it; custom codes and email destinations
/// (normalized); malformed input refused without costing an attempt; 50 racing right checks
/// approve exactly once and 50 racing wrong checks never approve.
///
/// The suite expects the provider's default limits and no per-destination limit below 10
/// sends per hour. It panics with the broken promise's name.
pub async fn otp_provider(otp: &dyn OtpProvider, caps: &OtpCapabilities) {
    let s = Suite { otp, caps };
    right_code_approves_once(&s).await;
    wrong_code_is_an_answer(&s).await;
    restart_resends_the_same_code(&s).await;
    five_checks_then_locked(&s).await;
    codes_expire(&s).await;
    cancel_ends_it(&s).await;
    custom_codes_and_emails(&s).await;
    malformed_input_costs_nothing(&s).await;
    racing_checks(&s).await;
}

async fn right_code_approves_once(s: &Suite<'_>) {
    for by_destination in [false, true] {
        let (typed, e164) = s.phone(u8::from(by_destination));
        let v = s.start(&typed).await;
        assert_eq!(v.to, e164, "start reports the normalized destination");
        assert_eq!(
            v.status,
            VerificationStatus::Pending,
            "a new verification is pending"
        );
        assert_eq!(v.channel, Channel::Sms);
        assert_eq!(v.send_attempts, 1, "a new verification has one send");
        assert!(
            v.sid.len() == 34 && v.sid.starts_with("VE"),
            "a sid is VE and 32 hex digits"
        );
        let code = s.code(&e164);
        let check = || {
            if by_destination {
                CheckCode::to(typed.as_str(), code.clone())
            } else {
                CheckCode::sid(&v.sid, code.clone())
            }
        };
        let proof = approved(s.otp.check(check()).await, "the right code");
        assert_eq!(
            proof.verification().sid,
            v.sid,
            "the proof names the verification"
        );
        assert!(
            proof.verification().valid,
            "an approved verification is valid"
        );
        assert_eq!(proof.verification().status, VerificationStatus::Approved);
        if by_destination {
            assert_eq!(
                proof.to(),
                e164,
                "checked by destination, the proof names it"
            );
        }
        assert_eq!(
            kind(s.otp.check(check()).await, "the code again"),
            ErrorKind::NotFound,
            "an approved verification is gone"
        );
        assert_eq!(
            kind(
                s.otp
                    .check(CheckCode::to(typed.as_str(), code.clone()))
                    .await,
                "by destination after approval"
            ),
            ErrorKind::NotFound,
            "no verification is pending for the destination after approval"
        );
        assert_eq!(
            kind(
                s.otp.fetch(VerificationRef::Sid(v.sid.clone())).await,
                "fetch after approval"
            ),
            ErrorKind::NotFound
        );
        let again = s.start(&typed).await;
        assert_ne!(
            again.sid, v.sid,
            "a start after approval is a new verification"
        );
        assert_eq!(again.send_attempts, 1);
    }
}

async fn wrong_code_is_an_answer(s: &Suite<'_>) {
    let (typed, e164) = s.phone(2);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    match s.otp.check(CheckCode::sid(&v.sid, wrong(&code))).await {
        Ok(CheckOutcome::Rejected(r)) => {
            assert_eq!(
                r.status,
                VerificationStatus::Pending,
                "a wrong code leaves it pending"
            );
            assert!(!r.valid);
            assert_eq!(r.sid, v.sid);
        }
        other => panic!("a wrong code is Ok(Rejected), got {other:?}"),
    }
    let fetched = s
        .otp
        .fetch(VerificationRef::Sid(v.sid.clone()))
        .await
        .expect("fetch of a pending verification");
    assert_eq!(fetched.status, VerificationStatus::Pending);
    assert_eq!(fetched.sid, v.sid);
    approved(
        s.otp.check(CheckCode::sid(&v.sid, code)).await,
        "the right code after a wrong one",
    );
}

async fn restart_resends_the_same_code(s: &Suite<'_>) {
    let (typed, e164) = s.phone(3);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    let before = s.caps.outbox.len();
    for n in 2..=5 {
        s.advance(Duration::from_secs(20));
        let again = s.start(&typed).await;
        assert_eq!(again.sid, v.sid, "starting again keeps the verification");
        assert_eq!(again.send_attempts, n, "each re-send is counted");
        assert_eq!(s.code(&e164), code, "starting again re-sends the same code");
    }
    assert_eq!(
        s.caps.outbox.len(),
        before + 4,
        "each re-send delivers once"
    );
    assert_eq!(
        kind(
            s.otp
                .start(StartVerification::new(typed.as_str(), Channel::Sms))
                .await,
            "a sixth send"
        ),
        ErrorKind::TooManySends
    );
    assert_eq!(
        s.caps.outbox.len(),
        before + 4,
        "a refused send delivers nothing"
    );
    approved(
        s.otp.check(CheckCode::sid(&v.sid, code)).await,
        "the re-sent code",
    );
}

async fn five_checks_then_locked(s: &Suite<'_>) {
    // Five wrong: locked.
    let (typed, e164) = s.phone(4);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    for n in 1..=4 {
        let r = s
            .otp
            .check(CheckCode::sid(&v.sid, wrong(&code)))
            .await
            .expect("a wrong check");
        assert_eq!(
            r.verification().status,
            VerificationStatus::Pending,
            "wrong check {n} of 5 leaves it pending"
        );
    }
    let fifth = s
        .otp
        .check(CheckCode::sid(&v.sid, wrong(&code)))
        .await
        .expect("the fifth wrong check is still an answer");
    assert!(fifth.approved().is_none());
    let after = kind(
        s.otp.check(CheckCode::sid(&v.sid, code.clone())).await,
        "the right code after five wrong",
    );
    assert!(
        matches!(after, ErrorKind::TooManyAttempts | ErrorKind::NotFound),
        "after five checks the right code never works: {after:?}"
    );
    let fresh = s.start(&typed).await;
    assert_ne!(
        fresh.sid, v.sid,
        "a start after the lock is a new verification"
    );

    // Four wrong, the fifth right: approved.
    let (typed, e164) = s.phone(5);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    for _ in 0..4 {
        let _ = s
            .otp
            .check(CheckCode::sid(&v.sid, wrong(&code)))
            .await
            .expect("a wrong check");
    }
    approved(
        s.otp.check(CheckCode::sid(&v.sid, code)).await,
        "the fifth check may be right",
    );
}

async fn codes_expire(s: &Suite<'_>) {
    let (typed, e164) = s.phone(6);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    s.advance(Duration::from_secs(599));
    assert_eq!(
        s.otp
            .fetch(VerificationRef::Sid(v.sid.clone()))
            .await
            .expect("alive at 9:59")
            .sid,
        v.sid
    );
    s.advance(Duration::from_secs(2));
    let k = kind(
        s.otp.check(CheckCode::sid(&v.sid, code.clone())).await,
        "the code at 10:01",
    );
    assert!(
        matches!(k, ErrorKind::Expired | ErrorKind::NotFound),
        "an expired code is Expired or NotFound: {k:?}"
    );
    let fresh = s.start(&typed).await;
    assert_ne!(
        fresh.sid, v.sid,
        "a start after expiry is a new verification"
    );
    assert_eq!(fresh.send_attempts, 1);
    approved(
        s.otp.check(CheckCode::sid(&fresh.sid, s.code(&e164))).await,
        "the new code",
    );
}

async fn cancel_ends_it(s: &Suite<'_>) {
    let (typed, e164) = s.phone(7);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    let canceled = s
        .otp
        .cancel(VerificationRef::Sid(v.sid.clone()))
        .await
        .expect("cancel of a pending verification");
    assert_eq!(canceled.status, VerificationStatus::Canceled);
    assert_eq!(
        kind(
            s.otp.check(CheckCode::sid(&v.sid, code)).await,
            "after cancel"
        ),
        ErrorKind::NotFound,
        "a canceled code never works"
    );
    assert_eq!(
        kind(
            s.otp.cancel(VerificationRef::Sid(v.sid)).await,
            "cancel again"
        ),
        ErrorKind::NotFound
    );
}

async fn custom_codes_and_emails(s: &Suite<'_>) {
    let email = s.email(8);
    let typed = format!("  {}  ", email.to_uppercase());
    let v = s
        .otp
        .start(StartVerification::new(typed, Channel::Email).custom_code("4242"))
        .await
        .expect("start with a custom code");
    assert_eq!(v.to, email, "emails are normalized");
    assert_eq!(v.channel, Channel::Email);
    assert_eq!(
        s.code(&email).expose_str(),
        Some("4242"),
        "the custom code is the one delivered"
    );
    let proof = approved(
        s.otp
            .check(CheckCode::to(email.to_uppercase(), "4242"))
            .await,
        "the custom code, by destination in another case",
    );
    assert_eq!(proof.to(), email);
}

async fn malformed_input_costs_nothing(s: &Suite<'_>) {
    let (typed, e164) = s.phone(9);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    for _ in 0..4 {
        let _ = s
            .otp
            .check(CheckCode::sid(&v.sid, wrong(&code)))
            .await
            .expect("a wrong check");
    }
    for bad in ["", "12", "12345678901", "12 34"] {
        assert_eq!(
            kind(
                s.otp.check(CheckCode::sid(&v.sid, bad)).await,
                "a malformed code"
            ),
            ErrorKind::InvalidInput,
            "the malformed code {bad:?} is InvalidInput"
        );
    }
    assert_eq!(
        kind(
            s.otp.check(CheckCode::sid("VE42", code.clone())).await,
            "a malformed sid"
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            s.otp
                .start(StartVerification::new("555-0100", Channel::Sms))
                .await,
            "a number without country code"
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            s.otp
                .fetch(VerificationRef::Sid(
                    "VE00000000000000000000000000000000".into()
                ))
                .await,
            "an unknown sid"
        ),
        ErrorKind::NotFound
    );
    approved(
        s.otp.check(CheckCode::sid(&v.sid, code)).await,
        "malformed input cost no attempt: the fifth check",
    );
}

async fn racing_checks(s: &Suite<'_>) {
    let (typed, e164) = s.phone(10);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    let outcomes = join_all(
        (0..50)
            .map(|_| s.otp.check(CheckCode::sid(&v.sid, code.clone())))
            .collect(),
    )
    .await;
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(CheckOutcome::Approved(_))))
        .count();
    assert_eq!(wins, 1, "of 50 racing right checks exactly one approves");

    let (typed, e164) = s.phone(11);
    let v = s.start(&typed).await;
    let code = s.code(&e164);
    let outcomes = join_all(
        (0..50)
            .map(|_| s.otp.check(CheckCode::sid(&v.sid, wrong(&code))))
            .collect(),
    )
    .await;
    let answered = outcomes.iter().filter(|o| o.is_ok()).count();
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o, Ok(CheckOutcome::Approved(_)))),
        "a wrong code never approves"
    );
    assert!(
        answered <= 5,
        "of 50 racing wrong checks at most 5 are counted answers: {answered}"
    );
    let k = kind(
        s.otp.check(CheckCode::sid(&v.sid, code)).await,
        "the right code after the race",
    );
    assert!(
        matches!(k, ErrorKind::TooManyAttempts | ErrorKind::NotFound),
        "after 50 wrong checks the verification is locked: {k:?}"
    );
}
