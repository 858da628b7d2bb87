//! Fault injection on the local SSKS: a store failing the Nth write, before or after it lands,
//! swept over every write of `open_session`, `validate_challenge` and `push` (`search` writes
//! nothing). Whatever fails, an operation that reported an error left nothing usable behind (no
//! challenge delivered, no session id handed out, no identity half stored), and its retry works
//! or answers `NotFound`, which says the ceremony restarts with a new session. The last test
//! pins the store round trips of each operation (docs/benchmarks.md).
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use keyward::keysplit::local::{DEFAULT_MAX_ATTEMPTS, LocalKeySplitStore, SsksLimits};
use keyward::keysplit::{AuthFactor, ChallengeRequest, SessionId};
use keyward::otp::{CodeSender, Outbox, OutgoingMessage};
use keyward::store::{MemoryStore, StateStore};
use keyward::testing::{FaultMode, FaultyStore, RecordingStore};
use keyward::{Env, Error, ErrorKind, KeySplitStore, ManualClock, Secret};

const MAIL: &str = "alice@example.com";
const MODES: [FaultMode; 2] = [FaultMode::BeforeWrite, FaultMode::AfterWrite];

/// Delivers to an outbox, or fails while `failing` is set.
#[derive(Debug)]
struct Flaky {
    outbox: Outbox,
    failing: AtomicBool,
}

#[async_trait]
impl CodeSender for Flaky {
    async fn send(&self, message: &OutgoingMessage) -> keyward::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Transport, "the mail relay is down"));
        }
        self.outbox.send(message).await
    }
}

struct Rig {
    ssks: LocalKeySplitStore,
    faulty: Arc<FaultyStore>,
    sender: Arc<Flaky>,
    outbox: Outbox,
}

fn rig() -> Rig {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let env = Env::system().with_clock(clock);
    let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new().env(env.clone()));
    let faulty = Arc::new(FaultyStore::new(inner));
    let outbox = Outbox::new();
    let sender = Arc::new(Flaky {
        outbox: outbox.clone(),
        failing: AtomicBool::new(false),
    });
    let ssks = LocalKeySplitStore::new(faulty.clone(), sender.clone()).env(env);
    Rig {
        ssks,
        faulty,
        sender,
        outbox,
    }
}

fn factor() -> AuthFactor {
    AuthFactor::email(MAIL).unwrap()
}

fn request() -> ChallengeRequest {
    ChallengeRequest::new("alice", factor(), "Code: $$CHALLENGE$$")
}

fn challenged() -> ChallengeRequest {
    request().force_auth(true)
}

/// Writes one clean run of `op` makes on a fresh rig prepared by `prepare`.
async fn writes_of<P, O, T>(prepare: P, op: O) -> usize
where
    P: AsyncFn(&Rig) -> T,
    O: AsyncFn(&Rig),
{
    let r = rig();
    prepare(&r).await;
    let before = r.faulty.writes();
    op(&r).await;
    r.faulty.writes() - before
}

/// Opens a challenged session and validates it: the full ceremony works.
async fn ceremony_works(r: &Rig) -> SessionId {
    let s = r.ssks.open_session(challenged()).await.unwrap();
    let code = r.outbox.last_code_to(MAIL).unwrap();
    r.ssks
        .validate_challenge(&s.session_id, &code, &factor())
        .await
        .unwrap()
}

/// An existing user with an identity and a session opened by the backend, challenge sent.
async fn stored_and_opened(r: &Rig) -> SessionId {
    let first = r.ssks.open_session(request()).await.unwrap();
    r.ssks
        .push(&first.session_id, &factor(), "AAAA")
        .await
        .unwrap();
    let s = r.ssks.open_session(request()).await.unwrap();
    assert!(s.must_authenticate);
    s.session_id
}

fn kind<T>(result: keyward::Result<T>) -> ErrorKind {
    result.err().expect("an error").kind().clone()
}

#[tokio::test]
async fn an_open_session_that_fails_sends_nothing_and_its_retry_works() {
    // A first session of a new user (user record, session key, 3 send counters, the session) and
    // a later one (3 counters, the session).
    for (first_ever, expected) in [(true, 6), (false, 4)] {
        let prepare = async |r: &Rig| {
            if !first_ever {
                let _ = r.ssks.open_session(request()).await.unwrap();
            }
        };
        let writes = writes_of(prepare, async |r: &Rig| {
            r.ssks.open_session(challenged()).await.unwrap();
        })
        .await;
        assert_eq!(writes, expected, "first ever: {first_ever}");
        for mode in MODES {
            for n in 0..writes {
                let r = rig();
                prepare(&r).await;
                r.faulty.fail_write(n, mode);
                let err = r.ssks.open_session(challenged()).await.unwrap_err();
                r.faulty.heal();
                assert_eq!(err.kind(), &ErrorKind::Storage, "{mode:?} at {n}");
                assert!(r.outbox.is_empty(), "{mode:?} at {n}: a challenge was sent");
                let auth = ceremony_works(&r).await;
                assert_eq!(r.outbox.len(), 1, "{mode:?} at {n}");
                r.ssks.push(&auth, &factor(), "AAAA").await.unwrap();
                assert_eq!(r.ssks.search(&auth).await.unwrap().data_b64, "AAAA");
            }
        }
    }
}

#[tokio::test]
async fn a_failed_open_leaves_the_previous_session_working_or_replaced() {
    let writes = writes_of(stored_and_opened, async |r: &Rig| {
        r.ssks.open_session(request()).await.unwrap();
    })
    .await;
    assert_eq!(writes, 4, "3 send counters, the session");
    for mode in MODES {
        for n in 0..writes {
            let r = rig();
            let previous = stored_and_opened(&r).await;
            let code = r.outbox.last_code_to(MAIL).unwrap();
            r.faulty.fail_write(n, mode);
            assert!(r.ssks.open_session(request()).await.is_err());
            r.faulty.heal();
            assert_eq!(r.outbox.len(), 1, "{mode:?} at {n}: a challenge was sent");
            match r.ssks.validate_challenge(&previous, &code, &factor()).await {
                // Only the very last write, landed, replaces the previous session.
                Ok(auth) => {
                    assert!(!(mode == FaultMode::AfterWrite && n == writes - 1));
                    assert_eq!(r.ssks.search(&auth).await.unwrap().data_b64, "AAAA");
                }
                Err(e) => {
                    assert_eq!((mode, n), (FaultMode::AfterWrite, writes - 1), "{e:?}");
                    assert_eq!(e.kind(), &ErrorKind::NotFound);
                    let auth = ceremony_works(&r).await;
                    assert_eq!(r.ssks.search(&auth).await.unwrap().data_b64, "AAAA");
                }
            }
        }
    }
}

#[tokio::test]
async fn an_open_whose_challenge_is_not_delivered_leaves_no_session_and_its_retry_works() {
    // The send fails after the session was written; removing that session (a compare-and-swap
    // of the user's key) may fail too. The send's error is reported either way.
    for fault in [
        None,
        Some(FaultMode::BeforeWrite),
        Some(FaultMode::AfterWrite),
    ] {
        let r = rig();
        let _ = r.ssks.open_session(request()).await.unwrap();
        r.sender.failing.store(true, Ordering::SeqCst);
        let before = r.faulty.writes();
        if let Some(mode) = fault {
            r.faulty.fail_write(4, mode);
        }
        let err = r.ssks.open_session(challenged()).await.unwrap_err();
        r.faulty.heal();
        r.sender.failing.store(false, Ordering::SeqCst);
        assert_eq!(err.kind(), &ErrorKind::Transport, "{fault:?}");
        assert_eq!(r.faulty.writes() - before, 5, "counters, session, removal");
        assert!(r.outbox.is_empty());
        let auth = ceremony_works(&r).await;
        r.ssks.push(&auth, &factor(), "AAAA").await.unwrap();
    }
}

#[tokio::test]
async fn a_validation_that_fails_hands_out_no_session_and_its_retry_validates_or_says_restart() {
    let prepare = async |r: &Rig| {
        let _ = stored_and_opened(r).await;
    };
    let writes = writes_of(prepare, async |r: &Rig| {
        let _ = ceremony_works(r).await;
    })
    .await;
    assert_eq!(
        writes, 5,
        "open: 3 counters and the session; validate: one CAS"
    );
    for mode in MODES {
        let r = rig();
        let session = stored_and_opened(&r).await;
        let code = r.outbox.last_code_to(MAIL).unwrap();
        r.faulty.fail_write(0, mode);
        let err = r
            .ssks
            .validate_challenge(&session, &code, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Storage);
        match r.ssks.validate_challenge(&session, &code, &factor()).await {
            Ok(auth) => {
                assert_eq!(mode, FaultMode::BeforeWrite, "validated twice?");
                assert_eq!(r.ssks.search(&auth).await.unwrap().data_b64, "AAAA");
            }
            Err(e) => {
                // The authenticated session landed, but nobody got its id; the challenged one
                // is spent. Opening a new session works.
                assert_eq!(mode, FaultMode::AfterWrite);
                assert_eq!(e.kind(), &ErrorKind::NotFound, "{e:?}");
                assert_eq!(kind(r.ssks.search(&session).await), ErrorKind::NotFound);
                assert_eq!(
                    kind(r.ssks.push(&session, &factor(), "BBBB").await),
                    ErrorKind::NotFound
                );
                let auth = ceremony_works(&r).await;
                assert_eq!(r.ssks.search(&auth).await.unwrap().data_b64, "AAAA");
            }
        }
    }
}

#[tokio::test]
async fn failed_wrong_validations_count_at_most_one_attempt_each() {
    for mode in MODES {
        let r = rig();
        let session = stored_and_opened(&r).await;
        let code = r.outbox.last_code_to(MAIL).unwrap();
        let wrong = Secret::from("zzzzzzzz");
        for _ in 0..2 {
            r.faulty.fail_write(0, mode);
            let err = r
                .ssks
                .validate_challenge(&session, &wrong, &factor())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Storage);
        }
        // Before: nothing counted; after: two attempts counted.
        let counted = if mode == FaultMode::BeforeWrite { 0 } else { 2 };
        for _ in 0..DEFAULT_MAX_ATTEMPTS - counted - 1 {
            assert_eq!(
                kind(r.ssks.validate_challenge(&session, &wrong, &factor()).await),
                ErrorKind::Rejected
            );
        }
        // The last allowed attempt is right and validates.
        r.ssks
            .validate_challenge(&session, &code, &factor())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_push_that_fails_stores_nothing_usable_and_its_retry_works() {
    // A first push of an unchallenged session (the slot's claim, the identity) and a push of
    // an authenticated one over a stored identity (the identity).
    let first = async |r: &Rig| r.ssks.open_session(request()).await.unwrap().session_id;
    let writes = {
        let r = rig();
        let s = first(&r).await;
        let before = r.faulty.writes();
        r.ssks.push(&s, &factor(), "AAAA").await.unwrap();
        r.faulty.writes() - before
    };
    assert_eq!(writes, 2, "the identity slot's claim, the identity");
    for mode in MODES {
        for n in 0..writes {
            let r = rig();
            let s = first(&r).await;
            r.faulty.fail_write(n, mode);
            let err = r.ssks.push(&s, &factor(), "AAAA").await.unwrap_err();
            r.faulty.heal();
            assert_eq!(err.kind(), &ErrorKind::Storage, "{mode:?} at {n}");
            // The retry works (its own blob already there is success), and a different blob
            // from that unchallenged session is still refused.
            r.ssks.push(&s, &factor(), "AAAA").await.unwrap();
            assert_eq!(
                kind(r.ssks.push(&s, &factor(), "BBBB").await),
                ErrorKind::Forbidden,
                "{mode:?} at {n}"
            );
            let auth = ceremony_works(&r).await;
            let blob = r.ssks.search(&auth).await.unwrap();
            assert_eq!(
                (blob.data_b64.as_str(), blob.authenticated),
                ("AAAA", false)
            );
        }
    }
    for mode in MODES {
        let r = rig();
        let s = stored_and_opened(&r).await;
        let code = r.outbox.last_code_to(MAIL).unwrap();
        let auth = r
            .ssks
            .validate_challenge(&s, &code, &factor())
            .await
            .unwrap();
        r.faulty.fail_write(0, mode);
        let err = r.ssks.push(&auth, &factor(), "BBBB").await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Storage);
        // Either blob is whole: the old one (before) or the new one (after).
        let blob = r.ssks.search(&auth).await.unwrap();
        let expected = match mode {
            FaultMode::BeforeWrite => ("AAAA", false),
            FaultMode::AfterWrite => ("BBBB", true),
        };
        assert_eq!((blob.data_b64.as_str(), blob.authenticated), expected);
        r.ssks.push(&auth, &factor(), "BBBB").await.unwrap();
        let blob = r.ssks.search(&auth).await.unwrap();
        assert_eq!((blob.data_b64.as_str(), blob.authenticated), ("BBBB", true));
    }
}

#[tokio::test]
async fn a_failed_push_spends_no_identity_slot_even_at_the_bound() {
    // One identity stored, room for one more: a push of the second that fails at any write,
    // before or after it lands, is retried and stores it; then the bound holds.
    let limited = |r: Rig| {
        let mut limits = SsksLimits::default();
        limits.identities_per_user = 2;
        Rig {
            ssks: r.ssks.limits(limits),
            ..r
        }
    };
    let sms = AuthFactor::sms("+33612345678").unwrap();
    let third = AuthFactor::email("alice.other@example.com").unwrap();
    let open = async |r: &Rig, f: &AuthFactor| {
        r.ssks
            .open_session(ChallengeRequest::new("alice", f.clone(), "$$CHALLENGE$$"))
            .await
            .unwrap()
            .session_id
    };
    for mode in MODES {
        for n in 0..3 {
            let r = limited(rig());
            let s = open(&r, &factor()).await;
            r.ssks.push(&s, &factor(), "AAAA").await.unwrap();
            let s = open(&r, &sms).await;
            r.faulty.fail_write(n, mode);
            let failed = r.ssks.push(&s, &sms, "BBBB").await;
            r.faulty.heal();
            if failed.is_ok() {
                // Fewer writes than `n`: nothing failed.
                continue;
            }
            assert_eq!(kind(failed), ErrorKind::Storage, "{mode:?} at {n}");
            r.ssks.push(&s, &sms, "BBBB").await.unwrap();
            let s = open(&r, &third).await;
            assert_eq!(
                kind(r.ssks.push(&s, &third, "CCCC").await),
                ErrorKind::Forbidden,
                "{mode:?} at {n}: past the bound"
            );
        }
    }
}

#[tokio::test]
async fn search_writes_nothing() {
    let r = rig();
    let _ = stored_and_opened(&r).await;
    let auth = ceremony_works(&r).await;
    let before = r.faulty.writes();
    r.ssks.search(&auth).await.unwrap();
    assert_eq!(
        kind(r.ssks.search(&SessionId::new("x")).await),
        ErrorKind::NotFound
    );
    assert_eq!(r.faulty.writes(), before);
}

/// Store round trips per operation, as (reads, writes), in the order of the 2-man-rule flow
/// (docs/benchmarks.md, "Local SSKS round trips", has the figures before the one-key design).
#[tokio::test]
async fn round_trips_per_operation() {
    let store = Arc::new(RecordingStore::new(Arc::new(MemoryStore::new())));
    let outbox = Outbox::new();
    let ssks = LocalKeySplitStore::new(store.clone(), Arc::new(outbox.clone()));
    let mut seen = Vec::new();
    let mut last = store.round_trips();
    let mut step = |what: &'static str| {
        let now = store.round_trips();
        let trips = now.since(last);
        seen.push((what, trips.reads, trips.writes));
        last = now;
    };
    let first = ssks.open_session(request()).await.unwrap();
    step("open, new user, no challenge, first session ever");
    let again = ssks.open_session(request()).await.unwrap();
    step("open, no challenge");
    assert!(!again.must_authenticate);
    ssks.push(&again.session_id, &factor(), "AAAA")
        .await
        .unwrap();
    step("first push");
    let s = ssks.open_session(request()).await.unwrap();
    step("open, challenge sent");
    let code = outbox.last_code_to(MAIL).unwrap();
    let _ = ssks
        .validate_challenge(&s.session_id, &Secret::from("zzzzzzzz"), &factor())
        .await
        .unwrap_err();
    step("validate, wrong challenge");
    let auth = ssks
        .validate_challenge(&s.session_id, &code, &factor())
        .await
        .unwrap();
    step("validate, right challenge");
    ssks.search(&auth).await.unwrap();
    step("search");
    ssks.push(&auth, &factor(), "BBBB").await.unwrap();
    step("push, authenticated");
    let _ = ssks.search(&first.session_id).await.unwrap_err();
    step("search, replaced session");
    for (what, reads, writes) in &seen {
        println!("{what}: {reads} reads + {writes} writes");
    }
    let counts: Vec<(usize, usize)> = seen.iter().map(|(_, r, w)| (*r, *w)).collect();
    assert_eq!(
        counts,
        [
            (3, 3), // user get + insert, identity get, sid key get + insert, session put
            (2, 1), // user get, identity get, session put
            (4, 2), // session get, user get, identity get, slot claim get + insert, identity insert
            (2, 4), // user get, identity get, 3 send counters, session put
            (1, 1), // session get + compare-and-swap
            (1, 1), // session get + compare-and-swap
            (2, 0), // session get, identity get
            (3, 1), // session get, user get, identity get, identity put
            (1, 0), // session get
        ]
    );
}
