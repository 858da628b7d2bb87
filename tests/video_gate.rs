//! The room gate (seed 000) end to end on the self-hosted OTP provider, the in-memory outbox and
//! real Twilio access tokens: the whole flow, wrong / expired / exhausted / replayed codes, and
//! unknown identities and identities without a contact answered exactly like real ones.
#![cfg(feature = "twilio")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use std::sync::Arc;
use std::time::Duration;

use keyward::Env;
use keyward::otp::{LocalOtpProvider, Outbox};
use keyward::store::MemoryStore;
use keyward::twilio::TwilioCredentials;
use keyward::video::gate::{Contact, DecoyShape, MemoryDirectory, RoomGate};
use keyward::video::twilio::{AccessTokenVerifier, TwilioAccessTokenIssuer};
use keyward::{Clock, ErrorKind, ManualClock, Secret};

const MABEL: &str = "+18005554321";
const START: u64 = 1_700_000_000;

struct Fixture {
    clock: Arc<ManualClock>,
    outbox: Outbox,
    gate: RoomGate,
    verifier: AccessTokenVerifier,
}

fn key() -> TwilioCredentials {
    TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        "keyward-gate-test-secret-32bytes",
    )
    .unwrap()
}

fn fixture_with(decoy: DecoyShape) -> Fixture {
    let clock = Arc::new(ManualClock::at_unix(START));
    let store = Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let outbox = Outbox::new();
    let otp = LocalOtpProvider::builder(
        store.clone(),
        Arc::new(outbox.clone()),
        Secret::new([7u8; 32]),
    )
    .env(Env::system().with_clock(clock.clone()))
    .build()
    .unwrap();
    // The seed's participants, plus one reachable by email and one without a contact.
    let directory = MemoryDirectory::new()
        .with("blathers", Contact::phone("+18005559876"))
        .with("mabel", Contact::phone(MABEL))
        .with("tommy", Contact::phone("+18005556789"))
        .with("isabelle", Contact::email("Isabelle@Example.com"))
        .with_no_contact("ghost");
    let issuer = TwilioAccessTokenIssuer::new(key())
        .unwrap()
        .env(Env::system().with_clock(clock.clone()));
    let gate = RoomGate::builder(Arc::new(directory), Arc::new(otp), Arc::new(issuer), store)
        .room("My Room")
        .decoy(decoy)
        .secret(Secret::new([9u8; 32]))
        .build()
        .unwrap();
    let verifier = AccessTokenVerifier::new(key())
        .unwrap()
        .env(Env::system().with_clock(clock.clone()));
    Fixture {
        clock,
        outbox,
        gate,
        verifier,
    }
}

fn fixture() -> Fixture {
    fixture_with(DecoyShape::Phone)
}

impl Fixture {
    fn code_for(&self, to: &str) -> String {
        let code = self.outbox.last_code_to(to).expect("a code was sent");
        code.expose_str().unwrap().to_owned()
    }
}

/// A code of the same length that differs in every digit.
fn wrong(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

fn kind<T: std::fmt::Debug>(r: keyward::Result<T>) -> ErrorKind {
    r.unwrap_err().kind().clone()
}

#[tokio::test]
async fn whole_flow_issues_a_verified_token() {
    let f = fixture();
    let challenge = f.gate.login("mabel").await.unwrap();
    assert_eq!(challenge.masked_destination, "********21");
    assert_eq!(challenge.channel.as_str(), "sms");
    assert_eq!(f.outbox.len(), 1);
    let code = f.code_for(MABEL);

    f.clock.advance(Duration::from_secs(42));
    let token = f.gate.verify("mabel", &code).await.unwrap();
    assert_eq!(token.identity, "mabel");
    assert_eq!(token.room.as_deref(), Some("My Room"));

    let decoded = f.verifier.verify(token.jwt()).unwrap();
    assert_eq!(decoded.identity.as_deref(), Some("mabel"));
    assert_eq!(decoded.video_room(), Some(Some("My Room")));
    assert_eq!(decoded.issued_at, f.clock.now());
    assert_eq!(
        decoded.expires_at,
        f.clock.now() + Duration::from_secs(3600)
    );
}

#[tokio::test]
async fn email_participant_gets_a_masked_email() {
    let f = fixture();
    let challenge = f.gate.login("isabelle").await.unwrap();
    assert_eq!(challenge.masked_destination, "i****@example.com");
    assert_eq!(challenge.channel.as_str(), "email");
    let code = f.code_for("isabelle@example.com");
    let token = f.gate.verify("isabelle", &code).await.unwrap();
    assert_eq!(token.identity, "isabelle");
}

#[tokio::test]
async fn wrong_code_is_rejected_then_right_code_passes() {
    let f = fixture();
    f.gate.login("mabel").await.unwrap();
    let code = f.code_for(MABEL);
    let err = f.gate.verify("mabel", &wrong(&code)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Rejected);
    assert!(!err.to_string().contains(&code));
    assert!(f.gate.verify("mabel", &code).await.is_ok());
}

#[tokio::test]
async fn expired_code_gives_no_token() {
    let f = fixture();
    f.gate.login("mabel").await.unwrap();
    let code = f.code_for(MABEL);
    f.clock.advance(Duration::from_secs(601));
    assert_eq!(
        kind(f.gate.verify("mabel", &code).await),
        ErrorKind::Rejected
    );

    // Logging in again sends a fresh code that works.
    f.gate.login("mabel").await.unwrap();
    let fresh = f.code_for(MABEL);
    assert!(f.gate.verify("mabel", &fresh).await.is_ok());
}

#[tokio::test]
async fn exhausted_attempts_refuse_even_the_right_code() {
    let f = fixture();
    f.gate.login("mabel").await.unwrap();
    let code = f.code_for(MABEL);
    for _ in 0..5 {
        assert_eq!(
            kind(f.gate.verify("mabel", &wrong(&code)).await),
            ErrorKind::Rejected
        );
    }
    assert_eq!(
        kind(f.gate.verify("mabel", &code).await),
        ErrorKind::TooManyAttempts
    );
    assert_eq!(
        kind(f.gate.verify("mabel", &code).await),
        ErrorKind::TooManyAttempts
    );

    // After the window a new login starts over.
    f.clock.advance(Duration::from_secs(601));
    f.gate.login("mabel").await.unwrap();
    let fresh = f.code_for(MABEL);
    assert!(f.gate.verify("mabel", &fresh).await.is_ok());
}

#[tokio::test]
async fn approved_code_cannot_be_replayed() {
    let f = fixture();
    f.gate.login("mabel").await.unwrap();
    let code = f.code_for(MABEL);
    assert!(f.gate.verify("mabel", &code).await.is_ok());
    assert_eq!(
        kind(f.gate.verify("mabel", &code).await),
        ErrorKind::Rejected
    );
}

#[tokio::test]
async fn a_code_for_one_participant_does_not_open_for_another() {
    let f = fixture();
    f.gate.login("mabel").await.unwrap();
    f.gate.login("tommy").await.unwrap();
    let mabel_code = f.code_for(MABEL);
    let tommy_code = f.code_for("+18005556789");
    if mabel_code != tommy_code {
        assert_eq!(
            kind(f.gate.verify("tommy", &mabel_code).await),
            ErrorKind::Rejected
        );
    }
    assert_eq!(
        kind(f.gate.verify("blathers", &mabel_code).await),
        ErrorKind::Rejected,
        "blathers never logged in"
    );
    assert!(f.gate.verify("tommy", &tommy_code).await.is_ok());
}

/// Everything an attacker sees for one identity: login answers, then six verify answers.
async fn observe(f: &Fixture, identity: &str) -> Vec<String> {
    let mut seen = Vec::new();
    match f.gate.login(identity).await {
        Ok(c) => {
            // Shape only: eight stars and two digits, channel.
            let shape: String = c
                .masked_destination
                .chars()
                .map(|ch| if ch.is_ascii_digit() { '9' } else { ch })
                .collect();
            seen.push(format!("login ok {shape} {}", c.channel));
        }
        Err(e) => seen.push(format!("login err {}", e.kind())),
    }
    // A wrong code for whoever got the last message (any code will do for a decoy).
    let probe = f
        .outbox
        .messages()
        .last()
        .map(|m| wrong(m.code.expose_str().unwrap()))
        .unwrap_or_else(|| "000000".into());
    for _ in 0..6 {
        match f.gate.verify(identity, &probe).await {
            Ok(_) => seen.push("token".into()),
            Err(e) => seen.push(format!("verify {} {}", e.kind(), e.message())),
        }
    }
    seen
}

#[tokio::test]
async fn unknown_identity_looks_like_a_participant_and_gets_nothing() {
    let f = fixture();
    let real = observe(&f, "mabel").await;
    let sent_before = f.outbox.len();
    let unknown = observe(&f, "mallory").await;
    assert_eq!(
        f.outbox.len(),
        sent_before,
        "no message for an unknown identity"
    );
    assert_eq!(real, unknown);
    assert!(!unknown.iter().any(|s| s == "token"));
    assert!(
        unknown[0].starts_with("login ok ********99 sms"),
        "{unknown:?}"
    );

    // The decoy digits are stable per identity (a changing mask would give it away).
    let g = fixture();
    let a = g.gate.login("mallory").await.unwrap();
    let b = g.gate.login("mallory").await.unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn identity_without_contact_looks_like_a_participant_and_gets_nothing() {
    let f = fixture();
    let real = observe(&f, "blathers").await;
    let ghost = observe(&f, "ghost").await;
    assert_eq!(real, ghost);
    assert_eq!(f.outbox.len(), 1, "only blathers got a message");
}

#[tokio::test]
async fn email_decoys_match_email_participants() {
    let f = fixture_with(DecoyShape::Email {
        domain: "example.com".into(),
    });
    let real = f.gate.login("isabelle").await.unwrap();
    let decoy = f.gate.login("mallory").await.unwrap();
    assert_eq!(real.channel, decoy.channel);
    assert_eq!(
        real.masked_destination.len(),
        decoy.masked_destination.len()
    );
    assert!(decoy.masked_destination.ends_with("****@example.com"));
}

#[tokio::test]
async fn login_limit_is_the_same_for_everyone() {
    let f = fixture();
    for identity in ["mabel", "mallory", "ghost"] {
        for _ in 0..5 {
            assert!(f.gate.login(identity).await.is_ok(), "{identity}");
        }
        assert!(
            matches!(
                kind(f.gate.login(identity).await),
                ErrorKind::RateLimited { .. }
            ),
            "{identity}"
        );
    }
    // The window passes.
    f.clock.advance(Duration::from_secs(3601));
    assert!(f.gate.login("mabel").await.is_ok());
}

#[tokio::test]
async fn malformed_input_is_refused_alike() {
    let f = fixture();
    for identity in ["mabel", "mallory"] {
        assert_eq!(kind(f.gate.login("").await), ErrorKind::InvalidInput);
        assert_eq!(
            kind(f.gate.verify(identity, "12").await),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(f.gate.verify(identity, "12345678901").await),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(f.gate.verify(identity, "12 456").await),
            ErrorKind::InvalidInput
        );
    }
    let long = "x".repeat(129);
    assert_eq!(kind(f.gate.login(&long).await), ErrorKind::InvalidInput);
    assert_eq!(
        kind(f.gate.verify(&long, "123456").await),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn debug_shows_no_contact_or_secret() {
    let f = fixture();
    let shown = format!("{:?}", f.gate);
    assert!(!shown.contains("8005554321"), "{shown}");
    assert!(!shown.contains("Isabelle"), "{shown}");
    assert!(shown.contains("REDACTED"));
}
