//! The [`KeySplitStore`] conformance suite.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: a broken promise panics with its name"
)]

use std::fmt;
use std::sync::Arc;

use super::join_all;
use crate::clock::ManualClock;
use crate::error::{ErrorKind, Result};
use crate::keysplit::local::CHALLENGE_VALIDITY;
use crate::keysplit::{AuthFactor, ChallengeRequest, KeySplitStore, SessionId};
use crate::otp::Outbox;
use crate::secret::Secret;

/// What the [`key_split_store`] suite needs to drive an SSKS: where its challenges arrive, the
/// clock its sessions expire by (if the suite may move it) and a prefix for its users.
#[derive(Clone)]
#[non_exhaustive]
pub struct KeySplitCapabilities {
    /// Every challenge the store sends lands here.
    pub outbox: Outbox,
    /// The clock session expiry follows, or `None` to skip the expiry part (a remote SSKS).
    pub clock: Option<Arc<ManualClock>>,
    /// Challenge validations allowed per session (Seald and keyward's local store: 5).
    pub max_attempts: u32,
    /// Prefix of every user id and address the suite uses: give each run its own.
    pub prefix: String,
}

impl fmt::Debug for KeySplitCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySplitCapabilities")
            .field("clock", &self.clock.is_some())
            .field("max_attempts", &self.max_attempts)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl KeySplitCapabilities {
    /// A store sending challenges to `outbox`, sessions expiring by `clock`, 5 attempts per
    /// session, outside test mode (`fake_otp` refused).
    pub fn new(outbox: Outbox, clock: Arc<ManualClock>) -> Self {
        KeySplitCapabilities {
            outbox,
            clock: Some(clock),
            max_attempts: 5,
            prefix: "conformance".to_owned(),
        }
    }

    /// Sets the prefix of the suite's users and addresses.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Skips the expiry part (for a store whose clock the suite cannot move).
    pub fn without_clock(mut self) -> Self {
        self.clock = None;
        self
    }
}

struct Suite<'a> {
    ssks: &'a dyn KeySplitStore,
    caps: &'a KeySplitCapabilities,
}

impl Suite<'_> {
    fn user(&self, name: &str) -> String {
        format!("{}-{name}", self.caps.prefix)
    }

    fn address(&self, name: &str) -> String {
        format!(
            "{}.{name}@example.com",
            self.caps.prefix.to_ascii_lowercase()
        )
    }

    fn factor(&self, name: &str) -> AuthFactor {
        AuthFactor::email(&self.address(name)).expect("a valid address")
    }

    fn request(&self, name: &str) -> ChallengeRequest {
        ChallengeRequest::new(self.user(name), self.factor(name), "code $$CHALLENGE$$")
    }

    fn challenge(&self, name: &str) -> Secret {
        self.caps
            .outbox
            .last_code_to(&self.address(name))
            .expect("a session that must authenticate sends a challenge")
    }

    /// A session that passed a challenge for `name`.
    async fn authenticated(&self, name: &str, request: ChallengeRequest) -> SessionId {
        let s = self.ssks.open_session(request).await.expect("open_session");
        assert!(s.must_authenticate, "this session must authenticate");
        self.ssks
            .validate_challenge(&s.session_id, &self.challenge(name), &self.factor(name))
            .await
            .expect("the right challenge validates")
    }
}

fn kind<T: fmt::Debug>(r: Result<T>, what: &str) -> ErrorKind {
    match r {
        Err(e) => e.kind().clone(),
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
    }
}

/// Runs every part of the [`KeySplitStore`] suite against `ssks`: Seald SSKS's observable
/// behaviour and the 2-man rule's core promise.
///
/// Parts: a first save needs no challenge, but the session that made it (the only one the
/// backend sees) can neither read the ciphertext back nor overwrite it; a later session must
/// validate a challenge (wrong challenge or factor rejected, single use), then reads the blob
/// and replaces it; one live session per user; the attempt limit
/// ([`KeySplitCapabilities::max_attempts`]); expiry after [`CHALLENGE_VALIDITY`] (when the
/// suite has the clock); 20 racing right validations succeed once; no identity stored is
/// `NotFound`; bad input is `InvalidInput`, `fake_otp` outside a test server `Config`.
/// It panics with the broken promise's name.
pub async fn key_split_store(ssks: &dyn KeySplitStore, caps: &KeySplitCapabilities) {
    let s = Suite { ssks, caps };
    two_man_rule(&s).await;
    attempts_are_limited(&s).await;
    expiry(&s).await;
    racing_validations(&s).await;
    nothing_stored(&s).await;
    bad_input(&s).await;
}

async fn two_man_rule(s: &Suite<'_>) {
    let factor = s.factor("carol");
    let first = s
        .ssks
        .open_session(s.request("carol"))
        .await
        .expect("open_session");
    assert!(!first.must_authenticate, "a first save needs no challenge");
    assert!(
        s.caps.outbox.last_to(&s.address("carol")).is_none(),
        "no challenge is sent when none is needed"
    );
    assert_eq!(
        kind(
            s.ssks.search(&first.session_id).await,
            "search before validating"
        ),
        ErrorKind::Forbidden,
        "an unchallenged session reads nothing"
    );
    let id = s
        .ssks
        .push(&first.session_id, &factor, "AAAA")
        .await
        .expect("the first push");
    assert_eq!(
        kind(
            s.ssks.search(&first.session_id).await,
            "search after the first push"
        ),
        ErrorKind::Forbidden,
        "the backend's session never reads the ciphertext back"
    );
    assert_eq!(
        kind(
            s.ssks.push(&first.session_id, &factor, "BBBB").await,
            "a second unchallenged push"
        ),
        ErrorKind::Forbidden,
        "an unchallenged session never overwrites an identity"
    );

    let second = s
        .ssks
        .open_session(s.request("carol"))
        .await
        .expect("open_session");
    assert!(
        second.must_authenticate,
        "once an identity is stored, a challenge is needed"
    );
    assert_eq!(
        kind(
            s.ssks.push(&first.session_id, &factor, "BBBB").await,
            "push on a replaced session"
        ),
        ErrorKind::NotFound,
        "a new session replaces the user's previous one"
    );
    assert_eq!(
        kind(
            s.ssks.search(&second.session_id).await,
            "search before validating"
        ),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&second.session_id, &Secret::from("zzzzzzzz"), &factor)
                .await,
            "a wrong challenge"
        ),
        ErrorKind::Rejected
    );
    let code = s.challenge("carol");
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&second.session_id, &code, &s.factor("mallory"))
                .await,
            "the right challenge with another factor"
        ),
        ErrorKind::Rejected
    );
    let auth = s
        .ssks
        .validate_challenge(&second.session_id, &code, &factor)
        .await
        .expect("the right challenge validates");
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&second.session_id, &code, &factor)
                .await,
            "the challenge again"
        ),
        ErrorKind::NotFound,
        "a challenge is single use"
    );
    let blob = s.ssks.search(&auth).await.expect("search after validating");
    assert_eq!(
        (blob.data_b64.as_str(), blob.authenticated),
        ("AAAA", false),
        "the first save's blob, marked as pushed without a challenge"
    );
    assert_eq!(
        s.ssks.push(&auth, &factor, "CCCC").await.expect("push"),
        id,
        "a user's id is stable"
    );
    let blob = s.ssks.search(&auth).await.expect("search");
    assert_eq!(
        (blob.data_b64.as_str(), blob.authenticated),
        ("CCCC", true),
        "a challenged push replaces the blob and is marked authenticated"
    );
}

async fn attempts_are_limited(s: &Suite<'_>) {
    let name = "dave";
    let factor = s.factor(name);
    let session = s
        .ssks
        .open_session(s.request(name).force_auth(true))
        .await
        .expect("open_session with force_auth");
    assert!(session.must_authenticate, "force_auth asks for a challenge");
    let code = s.challenge(name);
    for n in 1..=s.caps.max_attempts {
        assert_eq!(
            kind(
                s.ssks
                    .validate_challenge(&session.session_id, &Secret::from("zzzzzzzz"), &factor)
                    .await,
                "a wrong challenge"
            ),
            ErrorKind::Rejected,
            "wrong challenge {n} is rejected"
        );
    }
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&session.session_id, &code, &factor)
                .await,
            "the right challenge past the limit"
        ),
        ErrorKind::TooManyAttempts,
        "past the attempt limit even the right challenge fails"
    );
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&session.session_id, &code, &factor)
                .await,
            "the session after the limit"
        ),
        ErrorKind::NotFound,
        "an exhausted session is closed"
    );
}

async fn expiry(s: &Suite<'_>) {
    let Some(clock) = &s.caps.clock else {
        return;
    };
    let name = "erin";
    let session = s
        .ssks
        .open_session(s.request(name).force_auth(true))
        .await
        .expect("open_session");
    let code = s.challenge(name);
    clock.advance(CHALLENGE_VALIDITY);
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&session.session_id, &code, &s.factor(name))
                .await,
            "a challenge past its validity"
        ),
        ErrorKind::Expired
    );
}

async fn racing_validations(s: &Suite<'_>) {
    let name = "frank";
    let factor = s.factor(name);
    let session = s
        .ssks
        .open_session(s.request(name).force_auth(true))
        .await
        .expect("open_session");
    let code = s.challenge(name);
    let outcomes = join_all(
        (0..20)
            .map(|_| {
                s.ssks
                    .validate_challenge(&session.session_id, &code, &factor)
            })
            .collect(),
    )
    .await;
    let wins = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(
        wins, 1,
        "of 20 racing right validations exactly one succeeds"
    );
}

async fn nothing_stored(s: &Suite<'_>) {
    let auth = s
        .authenticated("grace", s.request("grace").force_auth(true))
        .await;
    assert_eq!(
        kind(s.ssks.search(&auth).await, "search with nothing stored"),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            s.ssks.search(&SessionId::new("no-such-session")).await,
            "an unknown session"
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(
                    &SessionId::new("no-such-session"),
                    &Secret::from("abcdefgh"),
                    &s.factor("grace")
                )
                .await,
            "validate on an unknown session"
        ),
        ErrorKind::NotFound
    );
}

async fn bad_input(s: &Suite<'_>) {
    let name = "heidi";
    let factor = s.factor(name);
    assert_eq!(
        kind(
            s.ssks
                .open_session(ChallengeRequest::new(
                    s.user(name),
                    factor.clone(),
                    "no placeholder"
                ))
                .await,
            "a template without the placeholder"
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            s.ssks.open_session(s.request(name).fake_otp(true)).await,
            "fake_otp outside a test server"
        ),
        ErrorKind::Config
    );
    let auth = s
        .authenticated(name, s.request(name).force_auth(true))
        .await;
    for bad in ["", "not base64!"] {
        assert_eq!(
            kind(s.ssks.push(&auth, &factor, bad).await, "a bad blob"),
            ErrorKind::InvalidInput,
            "push of {bad:?} is InvalidInput"
        );
    }
    assert_eq!(
        kind(
            s.ssks
                .validate_challenge(&auth, &Secret::from(""), &factor)
                .await,
            "an empty challenge"
        ),
        ErrorKind::InvalidInput
    );
}
