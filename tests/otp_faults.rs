//! Fault injection on the self-hosted OTP provider: a store failing the Nth write, before or
//! after it lands. Whatever fails, an operation that reported an error left nothing usable (no
//! code delivered, no proof handed out), and a retry either works or says to start again; the
//! store never holds the destination in clear.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::Env;
use keyward::otp::{
    Channel, CheckCode, CheckOutcome, LocalOtpProvider, Outbox, StartVerification, VerificationRef,
};
use keyward::store::{MemoryStore, StateStore};
use keyward::testing::{FaultMode, FaultyStore, RecordingStore, WrittenValue};
use keyward::{ErrorKind, ManualClock, OtpProvider, Secret};

const PHONE: &str = "+1 (501) 712-2661";
const E164: &str = "+15017122661";

struct Rig {
    otp: LocalOtpProvider,
    faulty: Arc<FaultyStore>,
    outbox: Outbox,
}

fn rig() -> Rig {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let inner: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let faulty = Arc::new(FaultyStore::new(inner));
    let outbox = Outbox::new();
    let otp = LocalOtpProvider::builder(
        faulty.clone(),
        Arc::new(outbox.clone()),
        Secret::new(*b"fault-sweep-secret-0123456789abc"),
    )
    .env(Env::system().with_clock(clock))
    .build()
    .unwrap();
    Rig {
        otp,
        faulty,
        outbox,
    }
}

fn start_request() -> StartVerification {
    StartVerification::new(PHONE, Channel::Sms).client("203.0.113.7")
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

/// Writes one clean run of `op` makes on a fresh rig prepared by `prepare`.
async fn writes_of<P, O>(prepare: P, op: O) -> usize
where
    P: AsyncFn(&Rig),
    O: AsyncFn(&Rig),
{
    let r = rig();
    prepare(&r).await;
    let before = r.faulty.writes();
    op(&r).await;
    r.faulty.writes() - before
}

#[tokio::test]
async fn a_start_that_fails_delivers_nothing_and_its_retry_works() {
    let writes = writes_of(
        async |_: &Rig| {},
        async |r: &Rig| {
            r.otp.start(start_request()).await.unwrap();
        },
    )
    .await;
    assert_eq!(writes, 4, "budget, client budget, rate, record");
    let mut errors = 0;
    for mode in [FaultMode::BeforeWrite, FaultMode::AfterWrite] {
        for n in 0..writes {
            let r = rig();
            r.faulty.fail_write(n, mode);
            let first = r.otp.start(start_request()).await;
            r.faulty.heal();
            if let Err(e) = &first {
                errors += 1;
                assert_eq!(e.kind(), &ErrorKind::Storage, "{mode:?} at {n}");
                assert!(
                    r.outbox.is_empty(),
                    "{mode:?} at {n}: an error delivered a code"
                );
            }
            // Retrying (or simply going on) works: a code arrives and approves, by sid and by
            // destination.
            let v = match first {
                Ok(v) => v,
                Err(_) => r.otp.start(start_request()).await.unwrap(),
            };
            let code = r.outbox.last_code_to(E164).unwrap();
            assert_eq!(r.outbox.len(), 1, "{mode:?} at {n}: one code delivered");
            let outcome = r.otp.check(CheckCode::sid(&v.sid, code)).await.unwrap();
            assert!(outcome.approved().is_some(), "{mode:?} at {n}");
        }
    }
    assert_eq!(errors, 2 * writes, "every injected fault surfaced");
}

#[tokio::test]
async fn a_resend_that_fails_delivers_nothing_and_its_retry_resends_the_same_code() {
    let writes = writes_of(
        async |r: &Rig| {
            r.otp.start(start_request()).await.unwrap();
        },
        async |r: &Rig| {
            r.otp.start(start_request()).await.unwrap();
        },
    )
    .await;
    for mode in [FaultMode::BeforeWrite, FaultMode::AfterWrite] {
        for n in 0..writes {
            let r = rig();
            let v = r.otp.start(start_request()).await.unwrap();
            let code = r.outbox.last_code_to(E164).unwrap();
            r.faulty.fail_write(n, mode);
            let again = r.otp.start(start_request()).await;
            r.faulty.heal();
            assert!(again.is_err(), "{mode:?} at {n}");
            assert_eq!(
                r.outbox.len(),
                1,
                "{mode:?} at {n}: an error delivered a code"
            );
            let again = r.otp.start(start_request()).await.unwrap();
            assert_eq!(again.sid, v.sid);
            assert_eq!(r.outbox.last_code_to(E164).unwrap(), code);
            let outcome = r.otp.check(CheckCode::sid(&v.sid, code)).await.unwrap();
            assert!(outcome.approved().is_some(), "{mode:?} at {n}");
        }
    }
}

#[tokio::test]
async fn a_check_that_fails_hands_out_no_proof_and_its_retry_approves_or_says_restart() {
    let writes = writes_of(
        async |r: &Rig| {
            r.otp.start(start_request()).await.unwrap();
        },
        async |r: &Rig| {
            let code = r.outbox.last_code_to(E164).unwrap();
            let _ = r.otp.check(CheckCode::to(PHONE, code)).await.unwrap();
        },
    )
    .await;
    assert_eq!(writes, 1, "a check is one compare-and-swap");
    for mode in [FaultMode::BeforeWrite, FaultMode::AfterWrite] {
        for by_sid in [true, false] {
            let r = rig();
            let v = r.otp.start(start_request()).await.unwrap();
            let code = r.outbox.last_code_to(E164).unwrap();
            let check = || {
                if by_sid {
                    CheckCode::sid(&v.sid, code.clone())
                } else {
                    CheckCode::to(PHONE, code.clone())
                }
            };
            r.faulty.fail_write(0, mode);
            let err = r.otp.check(check()).await.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Storage);
            match r.otp.check(check()).await {
                Ok(CheckOutcome::Approved(_)) => {
                    assert_eq!(mode, FaultMode::BeforeWrite, "approved twice?")
                }
                Ok(CheckOutcome::Rejected(_)) => panic!("{mode:?}: the right code rejected"),
                Err(e) => {
                    // The approval landed unseen: the verification is over; starting again works.
                    assert_eq!(mode, FaultMode::AfterWrite);
                    assert_eq!(e.kind(), &ErrorKind::NotFound, "{e:?}");
                    let fresh = r.otp.start(start_request()).await.unwrap();
                    assert_ne!(fresh.sid, v.sid);
                    let code = r.outbox.last_code_to(E164).unwrap();
                    let outcome = r.otp.check(CheckCode::sid(&fresh.sid, code)).await.unwrap();
                    assert!(outcome.approved().is_some());
                }
            }
        }
    }
}

#[tokio::test]
async fn failed_wrong_checks_count_at_most_one_attempt_each() {
    for mode in [FaultMode::BeforeWrite, FaultMode::AfterWrite] {
        let r = rig();
        let v = r.otp.start(start_request()).await.unwrap();
        let code = r.outbox.last_code_to(E164).unwrap();
        for _ in 0..3 {
            r.faulty.fail_write(0, mode);
            let err = r
                .otp
                .check(CheckCode::sid(&v.sid, wrong(&code)))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Storage);
        }
        // Before: nothing counted, five checks left; after: three counted, two left.
        let left = if mode == FaultMode::BeforeWrite { 5 } else { 2 };
        for _ in 0..left - 1 {
            let outcome = r
                .otp
                .check(CheckCode::sid(&v.sid, wrong(&code)))
                .await
                .unwrap();
            assert!(outcome.approved().is_none());
        }
        let last = r
            .otp
            .check(CheckCode::sid(&v.sid, code.clone()))
            .await
            .unwrap();
        assert!(
            last.approved().is_some(),
            "{mode:?}: the last allowed check is right"
        );
    }
}

#[tokio::test]
async fn a_cancel_that_fails_is_retried_or_already_done() {
    for mode in [FaultMode::BeforeWrite, FaultMode::AfterWrite] {
        let r = rig();
        let v = r.otp.start(start_request()).await.unwrap();
        let code = r.outbox.last_code_to(E164).unwrap();
        r.faulty.fail_write(0, mode);
        assert!(
            r.otp
                .cancel(VerificationRef::Sid(v.sid.clone()))
                .await
                .is_err()
        );
        let retry = r.otp.cancel(VerificationRef::Sid(v.sid.clone())).await;
        match mode {
            FaultMode::BeforeWrite => assert!(retry.is_ok()),
            FaultMode::AfterWrite => {
                assert_eq!(retry.unwrap_err().kind(), &ErrorKind::NotFound)
            }
        }
        let err = r.otp.check(CheckCode::sid(&v.sid, code)).await.unwrap_err();
        assert_eq!(
            err.kind(),
            &ErrorKind::NotFound,
            "a canceled code never works"
        );
    }
}

/// Regression (security issue, item 6): the stored verification held the destination in clear.
#[tokio::test]
async fn no_destination_or_code_is_stored_in_clear() {
    let store = Arc::new(RecordingStore::new(Arc::new(MemoryStore::new())).keeping_values());
    let outbox = Outbox::new();
    let otp = LocalOtpProvider::new(
        store.clone(),
        Arc::new(outbox.clone()),
        Secret::new(*b"privacy-secret-0123456789abcdefg"),
    )
    .unwrap();
    let phone = otp.start(start_request()).await.unwrap();
    let mail = otp
        .start(
            StartVerification::new("alice.liddell@example.com", Channel::Email)
                .custom_code("zq7x9k"),
        )
        .await
        .unwrap();
    let code = outbox.last_code_to(E164).unwrap();
    let _ = otp
        .check(CheckCode::sid(&phone.sid, wrong(&code)))
        .await
        .unwrap();
    let _ = otp
        .check(CheckCode::sid(&mail.sid, "zq7x9k"))
        .await
        .unwrap();
    let code_text = code.expose_str().unwrap().to_owned();
    let seen = store.written();
    assert!(seen.len() >= 6);
    for WrittenValue { key, value } in seen.iter() {
        let text = format!("{key} {}", String::from_utf8_lossy(value));
        for personal in ["5017122661", "alice.liddell", "zq7x9k"] {
            assert!(
                !text.contains(personal),
                "{personal} stored in clear: {text}"
            );
        }
        assert!(!text.contains(&code_text), "a code stored in clear: {text}");
    }
    // By sid the destination is shown masked, by destination as named.
    let fetched = otp
        .fetch(VerificationRef::Sid(phone.sid.clone()))
        .await
        .unwrap();
    assert_eq!(fetched.to, "**********61");
    let fetched = otp.fetch(VerificationRef::To(PHONE.into())).await.unwrap();
    assert_eq!(fetched.to, E164);
}
