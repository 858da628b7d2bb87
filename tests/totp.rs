//! TOTP / HOTP: pyotp's golden vectors, the self-hosted provider's rules (confirmation, window,
//! replay, attempt limits, races between instances), the key URI and its QR code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward::Env;
use keyward::store::{MemoryStore, StateStore};
use keyward::totp::{
    CheckTotp, EnrollTotp, LocalTotp, TotpAlgorithm, TotpEnrollment, TotpOutcome, TotpParams,
    TotpProvider, base32_decode, base32_encode, hotp, totp_at, totp_uri,
};
use keyward::{Clock, ErrorKind, ManualClock, Secret, SecureRandom};
use serde::Deserialize;

/// A deterministic random source (SHA-256 in counter mode over a seed), so that the same seed
/// gives the same secrets.
#[derive(Debug)]
struct SeededRandom(Mutex<(Vec<u8>, u64)>);

impl SeededRandom {
    fn new(seed: &[u8]) -> Self {
        SeededRandom(Mutex::new((seed.to_vec(), 0)))
    }
}

impl SecureRandom for SeededRandom {
    fn fill(&self, dest: &mut [u8]) -> keyward::Result<()> {
        let mut state = self.0.lock().unwrap();
        for chunk in dest.chunks_mut(32) {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(&state.0);
            ctx.update(&state.1.to_be_bytes());
            state.1 += 1;
            chunk.copy_from_slice(&ctx.finish().as_ref()[..chunk.len()]);
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Vectors {
    source: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    secret_b32: String,
    secret_hex: String,
    algorithm: String,
    digits: u8,
    period: u32,
    issuer: String,
    account: String,
    uri: String,
    totp: Vec<TimeCode>,
    hotp: Vec<CounterCode>,
}

#[derive(Deserialize)]
struct TimeCode {
    time: u64,
    code: String,
}

#[derive(Deserialize)]
struct CounterCode {
    counter: u64,
    code: String,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn pyotp_golden_vectors() {
    let vectors: Vectors = serde_json::from_str(include_str!("vectors/totp/pyotp.json")).unwrap();
    assert!(vectors.source.starts_with("pyotp "));
    assert_eq!(vectors.cases.len(), 45);
    let mut checked = 0;
    for case in &vectors.cases {
        let secret = unhex(&case.secret_hex);
        assert_eq!(base32_encode(&secret), case.secret_b32);
        assert_eq!(base32_decode(&case.secret_b32).unwrap(), secret);
        let algorithm = TotpAlgorithm::parse(&case.algorithm).unwrap();
        for v in &case.totp {
            let code = totp_at(&secret, v.time, case.period, case.digits, algorithm).unwrap();
            assert_eq!(
                code.expose_str().unwrap(),
                v.code,
                "{} t={}",
                case.uri,
                v.time
            );
            checked += 1;
        }
        for v in &case.hotp {
            let code = hotp(&secret, v.counter, case.digits, algorithm).unwrap();
            assert_eq!(code.expose_str().unwrap(), v.code);
            checked += 1;
        }
        let params = TotpParams::default()
            .algorithm(algorithm)
            .digits(case.digits)
            .period(case.period)
            .skew(1);
        let uri = totp_uri(&case.issuer, &case.account, &case.secret_b32, &params);
        assert_eq!(uri.expose_str().unwrap(), case.uri);
    }
    assert_eq!(checked, 45 * 12);
}

const T0: u64 = 1_700_000_010; // 10 s into a 30 s step

struct Rig {
    clock: Arc<ManualClock>,
    store: Arc<dyn StateStore>,
    totp: LocalTotp,
}

fn rig_with(store: Arc<dyn StateStore>, clock: Arc<ManualClock>, seed: &[u8]) -> LocalTotp {
    LocalTotp::builder(store, Secret::new([5u8; 32]), "Example")
        .env(Env::new(clock, Arc::new(SeededRandom::new(seed))))
        .build()
        .unwrap()
}

fn rig() -> Rig {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let totp = rig_with(store.clone(), clock.clone(), b"totp-tests");
    Rig { clock, store, totp }
}

fn app_code(e: &TotpEnrollment, at: u64) -> Secret {
    let secret = base32_decode(e.secret.expose_str().unwrap()).unwrap();
    let p = e.params;
    totp_at(&secret, at, p.period, p.digits, p.algorithm).unwrap()
}

async fn enrolled(r: &Rig, identity: &str) -> TotpEnrollment {
    let e = r
        .totp
        .enroll(EnrollTotp::new(identity, "alice@example.com"))
        .await
        .unwrap();
    let code = app_code(&e, r.clock.unix_seconds());
    let outcome = r
        .totp
        .confirm(CheckTotp::new(identity, &e.factor_sid, code))
        .await
        .unwrap();
    assert!(matches!(outcome, TotpOutcome::Approved(_)));
    e
}

#[tokio::test]
async fn enrolment_draws_a_160_bit_secret_from_the_injected_source() {
    let r = rig();
    let e = r
        .totp
        .enroll(EnrollTotp::new("u1", "alice@example.com"))
        .await
        .unwrap();
    let secret = base32_decode(e.secret.expose_str().unwrap()).unwrap();
    assert_eq!(secret.len(), 20);
    assert!(e.factor_sid.starts_with("YF") && e.factor_sid.len() == 34);
    let uri = e.uri.expose_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Example:alice%40example.com?secret="));
    assert!(uri.ends_with("&issuer=Example&algorithm=SHA1&digits=6&period=30"));
    assert!(!format!("{e:?}").contains(e.secret.expose_str().unwrap()));
    // The same seed gives the same secret: it came from the injected source.
    let other = rig();
    let e2 = other
        .totp
        .enroll(EnrollTotp::new("u1", "alice@example.com"))
        .await
        .unwrap();
    assert_eq!(e.secret, e2.secret);
    // A different seed, a different secret.
    let third = rig_with(other.store.clone(), other.clock.clone(), b"another seed");
    let e3 = third.enroll(EnrollTotp::new("u2", "bob")).await.unwrap();
    assert_ne!(e.secret, e3.secret);
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn secrets_are_never_stored_in_clear() {
    use keyward::testing::RecordingStore;

    let clock = Arc::new(ManualClock::at_unix(T0));
    let recording = Arc::new(
        RecordingStore::new(Arc::new(
            MemoryStore::new().env(Env::system().with_clock(clock.clone())),
        ))
        .keeping_values(),
    );
    let totp = rig_with(recording.clone(), clock.clone(), b"clear");
    let e = totp.enroll(EnrollTotp::new("u1", "alice")).await.unwrap();
    let code = app_code(&e, T0);
    let confirmed = totp
        .confirm(CheckTotp::new("u1", &e.factor_sid, code))
        .await
        .unwrap();
    assert!(matches!(confirmed, TotpOutcome::Approved(_)));
    let raw = base32_decode(e.secret.expose_str().unwrap()).unwrap();
    let b32 = e.secret.expose_str().unwrap().as_bytes().to_vec();
    let written = recording.written();
    assert!(written.len() >= 2);
    for value in written.iter().map(|w| &w.value) {
        assert!(!value.windows(raw.len()).any(|w| w == raw.as_slice()));
        assert!(!value.windows(b32.len()).any(|w| w == b32.as_slice()));
        assert!(!value.windows(2).any(|w| w == b"u1"), "identity in clear");
    }
}

#[tokio::test]
async fn confirmation_then_checks_within_the_window() {
    let r = rig();
    let e = r.totp.enroll(EnrollTotp::new("u1", "alice")).await.unwrap();
    let sid = e.factor_sid.clone();
    // Unconfirmed factors do not sign in.
    let err = r
        .totp
        .check(CheckTotp::new("u1", &sid, app_code(&e, T0)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    // A wrong first code does not confirm.
    let wrong = r
        .totp
        .confirm(CheckTotp::new("u1", &sid, "000000"))
        .await
        .unwrap();
    assert_eq!(wrong, TotpOutcome::Rejected);
    let ok = r
        .totp
        .confirm(CheckTotp::new("u1", &sid, app_code(&e, T0)))
        .await
        .unwrap();
    let proof = ok.approved().unwrap();
    assert_eq!((proof.identity(), proof.factor_sid()), ("u1", sid.as_str()));
    // Confirmed once: confirm no longer applies.
    let err = r
        .totp
        .confirm(CheckTotp::new("u1", &sid, app_code(&e, T0 + 30)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);

    // Next step's code is accepted now (skew 1, clock ahead on the phone).
    r.clock.advance(Duration::from_secs(30));
    let now = r.clock.unix_seconds();
    let next = r
        .totp
        .check(CheckTotp::new("u1", &sid, app_code(&e, now + 30)))
        .await
        .unwrap();
    assert!(matches!(next, TotpOutcome::Approved(_)));
    // Two steps ahead is outside the window.
    let far = r
        .totp
        .check(CheckTotp::new("u1", &sid, app_code(&e, now + 90)))
        .await
        .unwrap();
    assert_eq!(far, TotpOutcome::Rejected);
    // A code of an earlier step than the last accepted one never passes, even in the window.
    r.clock.advance(Duration::from_secs(30));
    let old = r
        .totp
        .check(CheckTotp::new("u1", &sid, app_code(&e, now)))
        .await
        .unwrap();
    assert_eq!(old, TotpOutcome::Rejected);
    // Another identity cannot use this factor.
    let err = r
        .totp
        .check(CheckTotp::new("u2", &sid, app_code(&e, now + 60)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_step_never_passes_twice_even_racing_across_instances() {
    let r = rig();
    let e = enrolled(&r, "u1").await;
    r.clock.advance(Duration::from_secs(30));
    let code = app_code(&e, r.clock.unix_seconds());
    // Five "instances" (providers over the same store; five is the attempt limit) race the
    // same code.
    let mut tasks = Vec::new();
    for i in 0..5u8 {
        let totp = rig_with(r.store.clone(), r.clock.clone(), &[i]);
        let check = CheckTotp::new("u1", &e.factor_sid, code.clone());
        tasks.push(tokio::spawn(async move { totp.check(check).await }));
    }
    let mut approved = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            TotpOutcome::Approved(_) => approved += 1,
            TotpOutcome::Rejected => {}
        }
    }
    assert_eq!(approved, 1);
}

#[tokio::test]
async fn attempts_are_limited_per_identity_and_reset_by_success() {
    let r = rig();
    let e = enrolled(&r, "u1").await;
    let sid = &e.factor_sid;
    for _ in 0..5 {
        let out = r
            .totp
            .check(CheckTotp::new("u1", sid, "123456"))
            .await
            .unwrap();
        assert_eq!(out, TotpOutcome::Rejected);
    }
    // The limit holds even for the right code.
    r.clock.advance(Duration::from_secs(30));
    let right = app_code(&e, r.clock.unix_seconds());
    let err = r
        .totp
        .check(CheckTotp::new("u1", sid, right.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TooManyAttempts);
    // After the window the right code passes.
    r.clock.advance(Duration::from_secs(900));
    let right = app_code(&e, r.clock.unix_seconds());
    let ok = r
        .totp
        .check(CheckTotp::new("u1", sid, right))
        .await
        .unwrap();
    assert!(matches!(ok, TotpOutcome::Approved(_)));
    // Malformed codes are refused before counting.
    for bad in ["12", "12345678901", "12a456", ""] {
        let err = r
            .totp
            .check(CheckTotp::new("u1", sid, bad))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{bad}");
    }
}

#[tokio::test]
async fn unconfirmed_enrolments_expire_and_factors_can_be_removed() {
    let r = rig();
    let e = r.totp.enroll(EnrollTotp::new("u1", "alice")).await.unwrap();
    r.clock.advance(Duration::from_secs(901));
    let code = app_code(&e, r.clock.unix_seconds());
    let err = r
        .totp
        .confirm(CheckTotp::new("u1", &e.factor_sid, code))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);

    let e = enrolled(&r, "u1").await;
    r.totp.remove("u1", &e.factor_sid).await.unwrap();
    assert_eq!(
        r.totp.remove("u1", &e.factor_sid).await.unwrap_err().kind(),
        &ErrorKind::NotFound
    );
    r.clock.advance(Duration::from_secs(30));
    let code = app_code(&e, r.clock.unix_seconds());
    let err = r
        .totp
        .check(CheckTotp::new("u1", &e.factor_sid, code))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn sha256_and_sha512_factors_with_8_digits_and_60_second_steps() {
    for alg in [TotpAlgorithm::Sha256, TotpAlgorithm::Sha512] {
        let r = rig();
        let e = r
            .totp
            .enroll(
                EnrollTotp::new("u1", "alice")
                    .algorithm(alg)
                    .digits(8)
                    .period(60)
                    .skew(0),
            )
            .await
            .unwrap();
        assert!(
            e.uri
                .expose_str()
                .unwrap()
                .ends_with(&format!("&algorithm={}&digits=8&period=60", alg.uri_name()))
        );
        let code = app_code(&e, T0);
        assert_eq!(code.len(), 8);
        let ok = r
            .totp
            .confirm(CheckTotp::new("u1", &e.factor_sid, code))
            .await
            .unwrap();
        assert!(matches!(ok, TotpOutcome::Approved(_)));
        // Skew 0: the next step's code is refused until its time.
        let next = app_code(&e, T0 + 60);
        let out = r
            .totp
            .check(CheckTotp::new("u1", &e.factor_sid, next.clone()))
            .await
            .unwrap();
        assert_eq!(out, TotpOutcome::Rejected);
        r.clock.advance(Duration::from_secs(60));
        let out = r
            .totp
            .check(CheckTotp::new("u1", &e.factor_sid, next))
            .await
            .unwrap();
        assert!(matches!(out, TotpOutcome::Approved(_)));
    }
    let r = rig();
    let err = r
        .totp
        .enroll(EnrollTotp::new("u1", "alice").digits(9))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

/// Parses the `M{x} {y}h{w}v{h}H{x}V{y}` rectangles the SVG draws, rasterizes them and decodes
/// the QR code with an independent decoder (rqrr).
#[cfg(feature = "qr")]
#[tokio::test]
async fn qr_code_decodes_to_the_key_uri() {
    let r = rig();
    let e = r
        .totp
        .enroll(EnrollTotp::new("u1", "José Müller"))
        .await
        .unwrap();
    let svg = e.qr_svg().unwrap();
    let svg = svg.expose_str().unwrap();
    assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let dim = |name: &str| -> usize {
        let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        svg[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (w, h) = (dim("width"), dim("height"));
    let mut pixels = vec![255u8; w * h];
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    for rect in d.split('M').filter(|s| !s.is_empty()) {
        let nums: Vec<usize> = rect
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let (x, y, rw, rh) = (nums[0], nums[1], nums[2], nums[3]);
        for yy in y..y + rh {
            for xx in x..x + rw {
                pixels[yy * w + xx] = 0;
            }
        }
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, e.uri.expose_str().unwrap());
}

/// A random source that yields the ASCII digits `1234567890` over and over, so the first secret
/// it draws is RFC 4226's `12345678901234567890`.
#[derive(Debug)]
struct RfcDigits(Mutex<usize>);

impl SecureRandom for RfcDigits {
    fn fill(&self, dest: &mut [u8]) -> keyward::Result<()> {
        let mut at = self.0.lock().unwrap();
        for b in dest {
            *b = b"1234567890"[*at % 10];
            *at += 1;
        }
        Ok(())
    }
}

/// RFC 4226 appendix D: HOTP values of the secret "12345678901234567890", counts 0 to 9.
const APPENDIX_D: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

fn hotp_rig(look_ahead: u32, resync: u32) -> (Arc<dyn StateStore>, Arc<ManualClock>, LocalTotp) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let totp = LocalTotp::builder(store.clone(), Secret::new([5u8; 32]), "Example")
        .env(Env::new(clock.clone(), Arc::new(RfcDigits(Mutex::new(0)))))
        .max_attempts(100, Duration::from_secs(900))
        .hotp_windows(look_ahead, resync)
        .build()
        .unwrap();
    (store, clock, totp)
}

async fn outcome(totp: &LocalTotp, sid: &str, code: &str) -> TotpOutcome {
    totp.check(CheckTotp::new("u1", sid, code)).await.unwrap()
}

#[tokio::test]
async fn hotp_rfc4226_appendix_d_through_the_stateful_provider() {
    let (_, _, totp) = hotp_rig(10, 100);
    let e = totp
        .enroll(EnrollTotp::hotp("u1", "alice@example.com"))
        .await
        .unwrap();
    assert_eq!(e.kind, keyward::totp::FactorKind::Hotp);
    assert_eq!(
        e.secret.expose_str(),
        Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    );
    assert_eq!(
        e.uri.expose_str().unwrap(),
        "otpauth://hotp/Example:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example&algorithm=SHA1&digits=6&counter=0"
    );
    let sid = e.factor_sid.clone();
    let confirmed = totp
        .confirm(CheckTotp::new("u1", &sid, APPENDIX_D[0]))
        .await
        .unwrap();
    assert!(matches!(confirmed, TotpOutcome::Approved(_)));
    for (count, code) in APPENDIX_D.iter().enumerate().skip(1) {
        assert!(
            matches!(outcome(&totp, &sid, code).await, TotpOutcome::Approved(_)),
            "count {count}"
        );
    }
    // Every counter value has been used once: none passes again.
    for code in APPENDIX_D {
        assert_eq!(outcome(&totp, &sid, code).await, TotpOutcome::Rejected);
    }
    // Nor does the time matter for a counter-based factor.
    let next = hotp(b"12345678901234567890", 10, 6, TotpAlgorithm::Sha1).unwrap();
    assert!(matches!(
        outcome(&totp, &sid, next.expose_str().unwrap()).await,
        TotpOutcome::Approved(_)
    ));
}

#[tokio::test]
async fn hotp_look_ahead_and_two_code_resynchronisation() {
    // Look-ahead 2, resynchronisation up to 5 past the next counter value.
    let (_, _, totp) = hotp_rig(2, 5);
    let e = totp.enroll(EnrollTotp::hotp("u1", "alice")).await.unwrap();
    let sid = e.factor_sid.clone();
    let confirmed = totp
        .confirm(CheckTotp::new("u1", &sid, APPENDIX_D[0]))
        .await
        .unwrap();
    assert!(matches!(confirmed, TotpOutcome::Approved(_)));
    // Next is 1: 1..=3 are accepted directly; 3 moves the counter to 4, spending 1 and 2.
    assert!(matches!(
        outcome(&totp, &sid, APPENDIX_D[3]).await,
        TotpOutcome::Approved(_)
    ));
    for spent in [1, 2, 3] {
        assert_eq!(
            outcome(&totp, &sid, APPENDIX_D[spent]).await,
            TotpOutcome::Rejected
        );
    }
    // Next is 4: 7 lies beyond the look-ahead (4..=6) but within resync (..=9): not accepted
    // alone.
    assert_eq!(
        outcome(&totp, &sid, APPENDIX_D[7]).await,
        TotpOutcome::Rejected
    );
    // A code that does not follow the remembered one resynchronises nothing (9 is remembered
    // instead), nor does the remembered one again.
    assert_eq!(
        outcome(&totp, &sid, APPENDIX_D[9]).await,
        TotpOutcome::Rejected
    );
    assert_eq!(
        outcome(&totp, &sid, APPENDIX_D[7]).await,
        TotpOutcome::Rejected
    );
    // 7 is remembered now: the code of 8 follows it and resynchronises (counter -> 9).
    assert!(matches!(
        outcome(&totp, &sid, APPENDIX_D[8]).await,
        TotpOutcome::Approved(_)
    ));
    for spent in [4, 5, 6, 7, 8] {
        assert_eq!(
            outcome(&totp, &sid, APPENDIX_D[spent]).await,
            TotpOutcome::Rejected,
            "count {spent}"
        );
    }
    assert!(matches!(
        outcome(&totp, &sid, APPENDIX_D[9]).await,
        TotpOutcome::Approved(_)
    ));

    // Without resynchronisation, a code beyond the look-ahead never passes.
    let (_, _, strict) = hotp_rig(2, 0);
    let e = strict
        .enroll(EnrollTotp::hotp("u1", "alice"))
        .await
        .unwrap();
    let sid = e.factor_sid.clone();
    let confirmed = strict
        .confirm(CheckTotp::new("u1", &sid, APPENDIX_D[0]))
        .await
        .unwrap();
    assert!(matches!(confirmed, TotpOutcome::Approved(_)));
    for code in [APPENDIX_D[5], APPENDIX_D[6]] {
        assert_eq!(outcome(&strict, &sid, code).await, TotpOutcome::Rejected);
    }
    // Windows are validated.
    for (look, resync) in [(101, 0), (10, 10), (10, 1001)] {
        let built = LocalTotp::builder(
            Arc::new(MemoryStore::new()),
            Secret::new([5u8; 32]),
            "Example",
        )
        .hotp_windows(look, resync)
        .build();
        assert!(built.is_err(), "{look} {resync}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hotp_counter_never_passes_twice_even_racing_across_instances() {
    let (store, clock, totp) = hotp_rig(10, 100);
    let e = totp.enroll(EnrollTotp::hotp("u1", "alice")).await.unwrap();
    let confirmed = totp
        .confirm(CheckTotp::new("u1", &e.factor_sid, APPENDIX_D[0]))
        .await
        .unwrap();
    assert!(matches!(confirmed, TotpOutcome::Approved(_)));
    // Five instances over the same store race the code of counter 1.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let other = LocalTotp::builder(store.clone(), Secret::new([5u8; 32]), "Example")
            .env(Env::system().with_clock(clock.clone()))
            .max_attempts(100, Duration::from_secs(900))
            .build()
            .unwrap();
        let check = CheckTotp::new("u1", &e.factor_sid, APPENDIX_D[1]);
        tasks.push(tokio::spawn(async move { other.check(check).await }));
    }
    let mut approved = 0;
    for t in tasks {
        if let TotpOutcome::Approved(_) = t.await.unwrap().unwrap() {
            approved += 1;
        }
    }
    assert_eq!(approved, 1);
}
