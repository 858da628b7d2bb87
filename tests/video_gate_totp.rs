//! The room gate's authenticator-app factor: a TOTP (or HOTP) code of the participant's factor
//! opens the room on `FactorProof::Totp`; a wrong, replayed or foreign code, an unknown identity
//! and a participant without a factor are all `Rejected`, counted against the gate's limits.
#![cfg(feature = "twilio")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keyward::otp::{LocalOtpProvider, Outbox};
use keyward::store::MemoryStore;
use keyward::totp::{
    CheckTotp, EnrollTotp, LocalTotp, TotpEnrollment, TotpOutcome, TotpProvider, base32_decode,
    hotp, totp_at,
};
use keyward::twilio::TwilioCredentials;
use keyward::video::gate::{GateTiming, MemoryDirectory, RoomGate, TotpFactor};
use keyward::video::twilio::{AccessTokenVerifier, TwilioAccessTokenIssuer};
use keyward::video::{AccessToken, FactorProof, VideoTokenIssuer, VideoTokenRequest};
use keyward::{Clock, Env, ErrorKind, ManualClock, Secret};

const START: u64 = 1_700_000_010;

fn key() -> TwilioCredentials {
    TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        "keyward-gate-test-secret-32bytes",
    )
    .unwrap()
}

/// An issuer that records the factor of every proof it is given, then signs as Twilio's.
#[derive(Debug)]
struct RecordingIssuer {
    inner: TwilioAccessTokenIssuer,
    /// `factor` or `totp:<identity at the provider>` per proof.
    factors: Mutex<Vec<String>>,
}

#[async_trait]
impl VideoTokenIssuer for RecordingIssuer {
    async fn issue(
        &self,
        proof: FactorProof,
        request: VideoTokenRequest,
    ) -> keyward::Result<AccessToken> {
        let seen = match &proof {
            FactorProof::Totp(approved) => format!("totp:{}", approved.identity()),
            other => other.factor().to_owned(),
        };
        self.factors.lock().unwrap().push(seen);
        self.inner.issue(proof, request).await
    }
}

struct Fixture {
    clock: Arc<ManualClock>,
    totp: Arc<LocalTotp>,
    gate: RoomGate,
    issuer: Arc<RecordingIssuer>,
    mabel: TotpEnrollment,
    tommy: TotpEnrollment,
}

fn app_code(e: &TotpEnrollment, at: u64) -> String {
    let secret = base32_decode(e.secret.expose_str().unwrap()).unwrap();
    let p = e.params;
    let code = totp_at(&secret, at, p.period, p.digits, p.algorithm).unwrap();
    code.expose_str().unwrap().to_owned()
}

async fn enrol(totp: &LocalTotp, identity: &str, hotp_factor: bool, now: u64) -> TotpEnrollment {
    let request = if hotp_factor {
        EnrollTotp::hotp(identity, "someone@example.com")
    } else {
        EnrollTotp::new(identity, "someone@example.com")
    };
    let e = totp.enroll(request).await.unwrap();
    let first = if hotp_factor {
        hotp_code(&e, 0)
    } else {
        app_code(&e, now)
    };
    let confirmed = totp
        .confirm(CheckTotp::new(identity, &e.factor_sid, first))
        .await
        .unwrap();
    assert!(matches!(confirmed, TotpOutcome::Approved(_)));
    e
}

fn hotp_code(e: &TotpEnrollment, counter: u64) -> String {
    let secret = base32_decode(e.secret.expose_str().unwrap()).unwrap();
    let code = hotp(&secret, counter, e.params.digits, e.params.algorithm).unwrap();
    code.expose_str().unwrap().to_owned()
}

async fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::at_unix(START));
    let env = Env::system().with_clock(clock.clone());
    let store = Arc::new(MemoryStore::new().env(env.clone()));
    let otp = LocalOtpProvider::builder(
        store.clone(),
        Arc::new(Outbox::new()),
        Secret::new([7u8; 32]),
    )
    .env(env.clone())
    .build()
    .unwrap();
    let totp = Arc::new(
        LocalTotp::builder(store.clone(), Secret::new([8u8; 32]), "Rooms")
            .env(env.clone())
            .max_attempts(50, Duration::from_secs(900))
            .build()
            .unwrap(),
    );
    // Mabel's factor is enrolled under another identity at the provider (the host's user id).
    let mabel = enrol(&totp, "mabel-at-totp", false, START).await;
    let tommy = enrol(&totp, "tommy", true, START).await;
    let directory = MemoryDirectory::new()
        .with_totp("mabel", TotpFactor::new("mabel-at-totp", &mabel.factor_sid))
        .with_totp("tommy", TotpFactor::new("tommy", &tommy.factor_sid))
        .with_no_contact("ghost");
    let issuer = Arc::new(RecordingIssuer {
        inner: TwilioAccessTokenIssuer::new(key())
            .unwrap()
            .env(env.clone()),
        factors: Mutex::new(Vec::new()),
    });
    let gate = RoomGate::builder(Arc::new(directory), Arc::new(otp), issuer.clone(), store)
        .room("My Room")
        .secret(Secret::new([9u8; 32]))
        .max_verify_attempts(4)
        .timing(GateTiming::new(Duration::ZERO, Duration::ZERO))
        .totp(totp.clone())
        .build()
        .unwrap();
    Fixture {
        clock,
        totp,
        gate,
        issuer,
        mabel,
        tommy,
    }
}

fn kind<T: std::fmt::Debug>(r: keyward::Result<T>) -> ErrorKind {
    r.unwrap_err().kind().clone()
}

#[tokio::test]
async fn a_totp_code_opens_the_room_once() {
    let f = fixture().await;
    f.clock.advance(Duration::from_secs(30));
    let code = app_code(&f.mabel, f.clock.unix_seconds());
    let token = f.gate.verify_totp_from("mabel", &code, "c1").await.unwrap();
    assert_eq!(token.identity, "mabel");
    assert_eq!(token.room.as_deref(), Some("My Room"));
    let decoded = AccessTokenVerifier::new(key())
        .unwrap()
        .env(Env::system().with_clock(f.clock.clone()))
        .verify(token.jwt())
        .unwrap();
    assert_eq!(decoded.identity.as_deref(), Some("mabel"));
    assert_eq!(*f.issuer.factors.lock().unwrap(), ["totp:mabel-at-totp"]);
    // The same code (same time step) never admits twice, on any client.
    for client in ["c1", "c2"] {
        assert_eq!(
            kind(f.gate.verify_totp_from("mabel", &code, client).await),
            ErrorKind::Rejected
        );
    }
    assert_eq!(f.issuer.factors.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn hotp_factors_open_the_room_counter_by_counter() {
    let f = fixture().await;
    let one = hotp_code(&f.tommy, 1);
    let token = f.gate.verify_totp("tommy", &one).await.unwrap();
    assert_eq!(token.identity, "tommy");
    assert_eq!(
        kind(f.gate.verify_totp("tommy", &one).await),
        ErrorKind::Rejected
    );
    // The app ran ahead (codes generated and not used): within the look-ahead.
    let token = f
        .gate
        .verify_totp("tommy", &hotp_code(&f.tommy, 5))
        .await
        .unwrap();
    assert_eq!(token.identity, "tommy");
    // Counters below the last accepted one are spent.
    assert_eq!(
        kind(f.gate.verify_totp("tommy", &hotp_code(&f.tommy, 3)).await),
        ErrorKind::Rejected
    );
    assert_eq!(
        *f.issuer.factors.lock().unwrap(),
        ["totp:tommy", "totp:tommy"]
    );
}

#[tokio::test]
async fn wrong_foreign_and_unknown_answer_alike_and_count() {
    let f = fixture().await;
    let now = f.clock.unix_seconds();
    // A wrong code, a code of another participant's factor, an unknown identity, a participant
    // without a factor: the same answer.
    let mabel_code = app_code(&f.mabel, now + 30);
    let wrong = if mabel_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        kind(f.gate.verify_totp_from("mabel", wrong, "c1").await),
        ErrorKind::Rejected
    );
    assert_eq!(
        kind(f.gate.verify_totp_from("tommy", &mabel_code, "c1").await),
        ErrorKind::Rejected
    );
    for nobody in ["mallory", "ghost"] {
        assert_eq!(
            kind(f.gate.verify_totp_from(nobody, &mabel_code, "c1").await),
            ErrorKind::Rejected
        );
    }
    // The gate's check limit (4 per client and identity) holds before the provider is asked:
    // past it even the right code is refused.
    for _ in 0..4 {
        assert_eq!(
            kind(f.gate.verify_totp_from("mabel", wrong, "c2").await),
            ErrorKind::Rejected
        );
    }
    assert_eq!(
        kind(f.gate.verify_totp_from("mabel", &mabel_code, "c2").await),
        ErrorKind::TooManyAttempts
    );
    assert!(f.issuer.factors.lock().unwrap().is_empty());
    // The factor was not spent by the refused check: another client still opens with it.
    f.clock.advance(Duration::from_secs(30));
    let code = app_code(&f.mabel, f.clock.unix_seconds());
    assert!(f.gate.verify_totp_from("mabel", &code, "c3").await.is_ok());
}

#[tokio::test]
async fn malformed_codes_and_a_gate_without_totp() {
    let f = fixture().await;
    for bad in ["12345", "123456789", "12a456", ""] {
        assert_eq!(
            kind(f.gate.verify_totp("mabel", bad).await),
            ErrorKind::InvalidInput,
            "{bad}"
        );
        assert_eq!(
            kind(f.gate.verify_totp("mallory", bad).await),
            ErrorKind::InvalidInput,
            "{bad}"
        );
    }
    // A provider's own check of the factor still works next to the gate.
    let code = app_code(&f.mabel, f.clock.unix_seconds() + 30);
    let direct = f
        .totp
        .check(CheckTotp::new("mabel-at-totp", &f.mabel.factor_sid, code))
        .await
        .unwrap();
    assert!(matches!(direct, TotpOutcome::Approved(_)));

    let store = Arc::new(MemoryStore::new());
    let otp = LocalOtpProvider::new(
        store.clone(),
        Arc::new(Outbox::new()),
        Secret::new([7u8; 32]),
    )
    .unwrap();
    let gate = RoomGate::builder(
        Arc::new(MemoryDirectory::new()),
        Arc::new(otp),
        Arc::new(TwilioAccessTokenIssuer::new(key()).unwrap()),
        store,
    )
    .timing(GateTiming::new(Duration::ZERO, Duration::ZERO))
    .build()
    .unwrap();
    assert_eq!(
        kind(gate.verify_totp("mabel", "123456").await),
        ErrorKind::Config
    );
}
