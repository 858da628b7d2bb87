//! Deterministic cost of the state-bound hot paths, for callgrind (docs/benchmarks.md, "State").
//!
//! Not a criterion bench: `cargo bench --bench counts --no-run`, then run the binary under
//! callgrind with collection switched on only inside the measured calls:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='*counts::measured*' \
//!   target/release/deps/counts-<hash> <scenario> <iterations>
//! ```
//!
//! and divide `Collected` by the iterations. Scenarios: `otp` / `otp_email` (self-hosted start +
//! check on `MemoryStore`, to a phone number / an email address), `phone` (`phone_e164` alone,
//! six numbers a round), `phone_tables` (native: the one-time cost of the compiled phone
//! metadata, wall time and resident memory), `phone_countries` (`<passes>` passes over numbers
//! of 16 countries: the first pass costs what the next do), `raw_verify` (ring's P-256 verify of the exact signed message, the floor),
//! `finish` / `finish_counter` (`finish_authentication_json` through `MemoryStore` on the
//! default signature backend, a passkey whose counter stays 0 / an authenticator whose counter
//! grows), `finish_ring` / `finish_ring_counter` (the same on ring's verify),
//! `finish_decoded` / `finish_ring_decoded` (`finish_authentication` on a decoded response), `start_<n>`
//! (`start_authentication` for a user among `n` stored credentials). Each run also prints the
//! store operations per call (through a counting wrapper) and, for `start_<n>`, the resident
//! memory per stored credential.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use keyward::otp::{Channel, CheckCode, LocalOtpProvider, Outbox, StartVerification};
use keyward::store::{MemoryStore, StateStore};
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, RelyingParty,
    SignatureBackend,
};
use keyward::{AuthenticatorVerifier, OtpProvider, Secret};

#[path = "state_support.rs"]
mod support;
use support::{Counting, CountingExt, pad, passkey, passkey_on, rss, runtime};

fn report(what: &str, store: &Counting, before: (usize, usize), calls: usize) {
    let (r, w) = store.snapshot();
    eprintln!(
        "{what}: {:.2} reads + {:.2} writes per call",
        (r - before.0) as f64 / calls as f64,
        (w - before.1) as f64 / calls as f64
    );
}

#[inline(never)]
fn measured_otp(
    rt: &tokio::runtime::Runtime,
    otp: &LocalOtpProvider,
    outbox: &Outbox,
    to: &str,
    channel: &Channel,
) {
    rt.block_on(async {
        let v = otp
            .start(StartVerification::new(to, channel.clone()))
            .await
            .expect("start");
        let code = outbox.last_code_to(&v.to).expect("code");
        let approved = otp
            .check(CheckCode::sid(&v.sid, code))
            .await
            .expect("check")
            .approved()
            .expect("approved");
        black_box(approved);
    });
}

fn otp_provider(store: Arc<dyn StateStore>, outbox: &Outbox) -> LocalOtpProvider {
    LocalOtpProvider::builder(store, Arc::new(outbox.clone()), Secret::new([42u8; 32]))
        .send_rate_limit(None)
        .send_budget(None)
        .build()
        .expect("provider")
}

fn otp(iterations: usize, to: &str, channel: Channel) {
    let rt = runtime();
    // Store operations per call, counted on a few calls through a counting wrapper.
    let counting = Arc::new(Counting::new(Arc::new(MemoryStore::new())));
    let outbox = Outbox::with_capacity(16);
    let otp = otp_provider(counting.clone(), &outbox);
    let before = counting.snapshot();
    for _ in 0..100 {
        measured_otp(&rt, &otp, &outbox, to, &channel);
    }
    report("otp start + check", &counting, before, 100);
    // The measured calls: on `MemoryStore` itself, as a host wires it.
    let outbox = Outbox::with_capacity(16);
    let otp = otp_provider(Arc::new(MemoryStore::new()), &outbox);
    for _ in 0..iterations {
        measured_otp(&rt, &otp, &outbox, to, &channel);
    }
}

#[inline(never)]
fn measured_finish(
    rt: &tokio::runtime::Runtime,
    rp: &RelyingParty,
    state: AuthenticationState,
    json: &str,
) {
    black_box(
        rt.block_on(rp.finish_authentication_json(state, black_box(json)))
            .expect("valid"),
    );
}

#[inline(never)]
fn measured_finish_decoded(
    rt: &tokio::runtime::Runtime,
    rp: &RelyingParty,
    state: AuthenticationState,
    response: &AuthenticationResponseJson,
) {
    black_box(
        rt.block_on(rp.finish_authentication(state, black_box(response)))
            .expect("valid"),
    );
}

/// `finish_authentication` on an already-decoded response (what the trait takes).
fn finish_decoded(iterations: usize, backend: SignatureBackend) {
    let rt = runtime();
    let p = passkey_on(&rt, 0, backend);
    for _ in 0..iterations {
        let (state, response) = rt.block_on(async {
            let (options, state) =
                p.rp.start_authentication(AuthenticationRequest::for_user(p.user_id.clone()))
                    .await
                    .expect("start");
            (state, p.auth.authenticate(&options).expect("sign"))
        });
        measured_finish_decoded(&rt, &p.rp, state, &response);
    }
}

fn finish(iterations: usize, counter_step: u32, backend: SignatureBackend) {
    let rt = runtime();
    let p = passkey_on(&rt, counter_step, backend);
    let mut reads_writes = (0, 0);
    for i in 0..iterations {
        let (state, json) = rt.block_on(async {
            let (options, state) =
                p.rp.start_authentication(AuthenticationRequest::for_user(p.user_id.clone()))
                    .await
                    .expect("start");
            let response = p.auth.authenticate(&options).expect("sign");
            (state, serde_json::to_string(&response).expect("json"))
        });
        let before = p.store.snapshot();
        measured_finish(&rt, &p.rp, state, &json);
        let after = p.store.snapshot();
        if i == 0 {
            reads_writes = (after.0 - before.0, after.1 - before.1);
        }
    }
    eprintln!(
        "finish_authentication (counter step {counter_step}): {} reads + {} writes per call",
        reads_writes.0, reads_writes.1
    );
}

#[inline(never)]
fn measured_raw_verify(sec1: &[u8], message: &[u8], signature: &[u8]) {
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        black_box(sec1),
    )
    .verify(black_box(message), black_box(signature))
    .expect("valid");
}

fn raw_verify(iterations: usize) {
    let rt = runtime();
    let p = passkey(&rt, 0);
    let (response, cose) = rt.block_on(async {
        let (options, _) =
            p.rp.start_authentication(AuthenticationRequest::for_user(p.user_id.clone()))
                .await
                .expect("start");
        let response = p.auth.authenticate(&options).expect("sign");
        let record =
            p.rp.credential(response.raw_id.as_slice())
                .await
                .expect("read")
                .expect("stored");
        (response, record.public_key_cose)
    });
    let value: ciborium::Value = ciborium::de::from_reader(cose.as_slice()).expect("cose");
    let map = value.into_map().expect("cose map");
    let coord = |label: i64| {
        map.iter()
            .find(|(k, _)| k.as_integer() == Some(label.into()))
            .and_then(|(_, v)| v.as_bytes().cloned())
            .expect("coordinate")
    };
    let mut sec1 = vec![0x04];
    sec1.extend(coord(-2));
    sec1.extend(coord(-3));
    let mut message = response.response.authenticator_data.as_slice().to_vec();
    message.extend_from_slice(
        ring::digest::digest(
            &ring::digest::SHA256,
            response.response.client_data_json.as_slice(),
        )
        .as_ref(),
    );
    let signature = response.response.signature.as_slice().to_vec();
    for _ in 0..iterations {
        measured_raw_verify(&sec1, &message, &signature);
    }
}

#[inline(never)]
fn measured_start(
    rt: &tokio::runtime::Runtime,
    rp: &RelyingParty,
    request: &AuthenticationRequest,
) {
    black_box(
        rt.block_on(rp.start_authentication(request.clone()))
            .expect("start"),
    );
}

fn start(iterations: usize, credentials: u64) {
    let rt = runtime();
    let p = passkey(&rt, 0);
    let credential_id = p.credential_id(&rt);
    let before = rss();
    pad(
        &rt,
        p.store.as_ref(),
        &p.user_id,
        &credential_id,
        credentials,
    );
    let after = rss();
    if credentials > 1 {
        eprintln!(
            "memory: {} credentials, {:.0} bytes resident per credential (record + hint + map and index)",
            credentials,
            (after.saturating_sub(before)) as f64 / (credentials - 1) as f64
        );
    }
    let request = AuthenticationRequest::for_user(p.user_id.clone());
    let ops = p.store.snapshot();
    for _ in 0..iterations {
        measured_start(&rt, &p.rp, &request);
        // Ceremonies expire as in production, so the challenges of the loop do not pile up.
        p.clock.advance(Duration::from_secs(1));
    }
    report(
        &format!("start_authentication among {credentials}"),
        &p.store,
        ops,
        iterations,
    );
}

/// Numbers of several shapes: NANP (one code, many regions), a national prefix written after
/// the code, Italy's leading zero, a six-digit code-less region, a number refused.
const PHONES: [&str; 6] = [
    "+15017122661",
    "+33 (0)6 12 34 56 78",
    "+390612345678",
    "+447911123456",
    "+4930123456",
    "+999123456789",
];

#[inline(never)]
fn measured_phone(input: &str) -> bool {
    black_box(keyward::normalize::phone_e164(black_box(input))).is_ok()
}

/// `phone_e164` alone, on each of [`PHONES`] in turn (`iterations` rounds).
fn phone(iterations: usize) {
    keyward::normalize::warm_up();
    let mut valid = 0;
    for _ in 0..iterations {
        for input in PHONES {
            valid += usize::from(measured_phone(input));
        }
    }
    eprintln!(
        "phone_e164: {} calls, {valid} valid",
        iterations * PHONES.len()
    );
}

/// Numbers of many countries, each seen for the first time in the first pass (Argentina's and
/// Mexico's national prefixes have transform rules).
const COUNTRIES: [&str; 16] = [
    "+81312345678",
    "+79123456789",
    "+5491123456789",
    "+525512345678",
    "+5511912345678",
    "+61412345678",
    "+27821234567",
    "+919876543210",
    "+8613812345678",
    "+34612345678",
    "+4915123456789",
    "+353851234567",
    "+390612345678",
    "+33612345678",
    "+15017122661",
    "+447911123456",
];

/// `passes` passes over [`COUNTRIES`] after the warm-up: run with 1 and 2 passes, the second
/// pass (the difference) costs what the first did if no country costs more the first time.
fn phone_countries(passes: usize) {
    keyward::normalize::warm_up();
    let mut valid = 0;
    for _ in 0..passes {
        for input in COUNTRIES {
            valid += usize::from(measured_phone(input));
        }
    }
    eprintln!(
        "phone_e164: {passes} passes over {} countries, {valid} valid",
        COUNTRIES.len()
    );
}

/// What compiling every country's patterns costs, once: wall time and resident memory.
fn phone_tables() {
    let before = rss();
    let start = std::time::Instant::now();
    keyward::normalize::warm_up();
    eprintln!(
        "phone tables (with the phonenumber database): {:.0} ms, {:.1} MB resident",
        start.elapsed().as_secs_f64() * 1e3,
        (rss() - before) as f64 / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` runs every bench binary with `--bench`: do nothing then.
    if args.iter().any(|a| a == "--bench") || args.len() < 2 {
        return;
    }
    let iterations: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1_000);
    match args[1].as_str() {
        "otp" => otp(iterations, "+15017122661", Channel::Sms),
        "otp_email" => otp(iterations, "alice@example.com", Channel::Email),
        "phone" => phone(iterations),
        "phone_tables" => phone_tables(),
        "phone_countries" => phone_countries(iterations),
        "raw_verify" => raw_verify(iterations),
        "finish" => finish(iterations, 0, SignatureBackend::default()),
        "finish_counter" => finish(iterations, 1, SignatureBackend::default()),
        "finish_ring" => finish(iterations, 0, SignatureBackend::Ring),
        "finish_ring_decoded" => finish_decoded(iterations, SignatureBackend::Ring),
        "finish_decoded" => finish_decoded(iterations, SignatureBackend::default()),
        "finish_ring_counter" => finish(iterations, 1, SignatureBackend::Ring),
        s if s.starts_with("start_") => {
            let n: u64 = s["start_".len()..].parse().expect("start_<credentials>");
            start(iterations, n.max(1));
        }
        other => panic!("unknown scenario {other}"),
    }
}
