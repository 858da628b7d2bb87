//! The verification-only P-256 path with per-key tables (`keyward::p256v`, feature `fast-p256`)
//! against ring, side by side in one run: the raw verify of one signed message, the complete
//! ES256 assertion (Level 3 JSON text in, `VerifiedAssertion` out) under both backends, a batch
//! of 256 assertions, and what the first use of a key costs (building its table).
//!
//! Run: `cargo bench --features fast-p256,testing --bench p256v`. See docs/benchmarks.md.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use keyward::AuthenticatorVerifier;
use keyward::p256v::{self, PrecomputedKey, PublicKey, TableCache};
use keyward::store::MemoryStore;
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationState, BatchAssertion, BatchVerifier, ParsedCredential,
    RegisteredCredential, RegistrationRequest, RelyingParty, RelyingPartyConfig, SignatureBackend,
    UserEntity, alg, verify_assertion_json,
};

const ORIGIN: &str = "https://example.com";

fn config(backend: SignatureBackend) -> RelyingPartyConfig {
    RelyingPartyConfig::new("example.com", "Example", ORIGIN)
        .expect("config")
        .signature_backend(backend)
}

/// One registered ES256 credential and one signed assertion.
struct Fixture {
    record: RegisteredCredential,
    state: AuthenticationState,
    json: String,
    sec1: [u8; 65],
    message: Vec<u8>,
    signature: Vec<u8>,
}

fn fixture(rt: &tokio::runtime::Runtime, n: u64) -> Fixture {
    let rp = RelyingParty::new(config(SignatureBackend::Ring), Arc::new(MemoryStore::new()));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).expect("authenticator");
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let user = UserEntity::new(id, format!("user{n}@example.com"), "User").expect("user");
    let (record, state, response) = rt.block_on(async {
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user))
            .await
            .expect("start registration");
        let response = auth.register(&options).expect("register");
        let record = rp
            .finish_registration(state, &response)
            .await
            .expect("finish registration");
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(record.user_id.clone()))
            .await
            .expect("start authentication");
        let response = auth.authenticate(&options).expect("authenticate");
        (record, state, response)
    });
    let json = serde_json::to_string(&response).expect("json");
    let value: ciborium::Value =
        ciborium::de::from_reader(&record.public_key_cose[..]).expect("cose");
    let map = value.into_map().expect("cose map");
    let coord = |label: i64| {
        map.iter()
            .find(|(k, _)| k.as_integer() == Some(label.into()))
            .and_then(|(_, v)| v.as_bytes().cloned())
            .expect("coordinate")
    };
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..33].copy_from_slice(&coord(-2));
    sec1[33..].copy_from_slice(&coord(-3));
    let mut message = response.response.authenticator_data.as_slice().to_vec();
    message.extend_from_slice(
        ring::digest::digest(
            &ring::digest::SHA256,
            response.response.client_data_json.as_slice(),
        )
        .as_ref(),
    );
    let signature = response.response.signature.as_slice().to_vec();
    Fixture {
        record,
        state,
        json,
        sec1,
        message,
        signature,
    }
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let f = fixture(&rt, 1);
    let mut g = c.benchmark_group("p256v");

    g.bench_function("raw_verify/ring", |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                black_box(&f.sec1[..]),
            )
            .verify(black_box(&f.message), black_box(&f.signature))
            .expect("valid")
        })
    });
    let key = PublicKey::from_sec1(&f.sec1).expect("key");
    let table = PrecomputedKey::new(&key);
    p256v::warm_up();
    println!(
        "p256v: one key's table is {} bytes (window {})",
        table.memory_bytes(),
        table.window()
    );
    g.bench_function("raw_verify/precomputed", |b| {
        b.iter(|| {
            table
                .verify(black_box(&f.message), black_box(&f.signature))
                .expect("valid")
        })
    });

    // The complete path on the same credential, challenge and signature; the credential is
    // decoded once (a `ParsedCredential` the host keeps), so the table is the one kept with it.
    let credential = ParsedCredential::new(f.record.clone()).expect("credential");
    for (name, backend) in [
        ("ring", SignatureBackend::Ring),
        ("precomputed", SignatureBackend::Precomputed),
    ] {
        let config = config(backend);
        verify_assertion_json(&config, &f.state, &credential, &f.json).expect("verifies");
        g.bench_function(format!("complete_json/{name}"), |b| {
            b.iter(|| {
                verify_assertion_json(&config, &f.state, &credential, black_box(&f.json))
                    .expect("valid")
            })
        });
    }
    // The credential decoded again for every assertion (as when it is loaded from a store): the
    // table comes from the global cache.
    let config_fast = config(SignatureBackend::Precomputed);
    g.bench_function("complete_json_reparsed/precomputed", |b| {
        b.iter(|| {
            let credential = ParsedCredential::new(f.record.clone()).expect("credential");
            verify_assertion_json(&config_fast, &f.state, &credential, black_box(&f.json))
                .expect("valid")
        })
    });
    let config_ring = config(SignatureBackend::Ring);
    g.bench_function("complete_json_reparsed/ring", |b| {
        b.iter(|| {
            let credential = ParsedCredential::new(f.record.clone()).expect("credential");
            verify_assertion_json(&config_ring, &f.state, &credential, black_box(&f.json))
                .expect("valid")
        })
    });

    // First use of a key: its table built from nothing, and a complete assertion with an empty
    // cache and a freshly decoded credential.
    g.bench_function("first_use/table_build", |b| {
        b.iter(|| PrecomputedKey::new(black_box(&key)))
    });
    g.bench_function("first_use/complete_json", |b| {
        b.iter_batched(
            || {
                TableCache::global().clear();
                ParsedCredential::new(f.record.clone()).expect("credential")
            },
            |credential| {
                verify_assertion_json(&config_fast, &f.state, &credential, black_box(&f.json))
                    .expect("valid")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // 256 assertions of 256 credentials, each seen before (tables in the global cache).
    let fixtures: Vec<Fixture> = (0..256).map(|n| fixture(&rt, 100 + n)).collect();
    let credentials: Vec<ParsedCredential> = fixtures
        .iter()
        .map(|f| ParsedCredential::new(f.record.clone()).expect("credential"))
        .collect();
    let items: Vec<BatchAssertion<'_>> = fixtures
        .iter()
        .zip(&credentials)
        .map(|(f, c)| BatchAssertion::json(&f.state, c, &f.json))
        .collect();
    let mut g = c.benchmark_group("p256v_batch_256");
    g.throughput(Throughput::Elements(items.len() as u64));
    for (name, backend) in [
        ("ring", SignatureBackend::Ring),
        ("precomputed", SignatureBackend::Precomputed),
    ] {
        let config = config(backend);
        let pool = BatchVerifier::new(1).expect("pool");
        assert!(pool.verify(&config, &items).iter().all(Result::is_ok));
        g.bench_function(format!("threads_1/{name}"), |b| {
            b.iter(|| pool.verify(&config, black_box(&items)))
        });
    }
    g.finish();
}

fn short() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = short();
    targets = bench_verify
}
criterion_main!(benches);
