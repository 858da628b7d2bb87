//! WebAuthn verification benchmarks: complete assertion verification (Level 3 JSON text in,
//! `VerifiedAssertion` out) for every algorithm and ES256 backend, the raw P-256 verification
//! each backend bottoms out in (the floor), the full store-backed ceremonies, and registration.
//!
//! Run: `cargo bench --features testing --bench webauthn`. See docs/benchmarks.md.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use keyward::AuthenticatorVerifier;
use keyward::store::MemoryStore;
use keyward::testing::{SoftAttestation, SoftAuthenticator};
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, BatchAssertion,
    BatchVerifier, ParsedCredential, RegistrationRequest, RelyingParty, RelyingPartyConfig,
    SignatureBackend, UserEntity, alg, verify_assertion, verify_assertion_json,
    verify_registration,
};

const ORIGIN: &str = "https://example.com";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn config(backend: SignatureBackend) -> RelyingPartyConfig {
    RelyingPartyConfig::new("example.com", "Example", ORIGIN)
        .expect("config")
        // The default list plus ES512, which is offered only on request.
        .algorithms([
            alg::ES256,
            alg::EDDSA,
            alg::ES384,
            alg::PS256,
            alg::RS256,
            alg::ES512,
        ])
        .expect("algorithms")
        .signature_backend(backend)
}

fn relying_party(backend: SignatureBackend) -> RelyingParty {
    RelyingParty::new(config(backend), Arc::new(MemoryStore::new()))
}

fn user(n: u64) -> UserEntity {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    UserEntity::new(id, format!("user{n}@example.com"), format!("User {n}")).expect("user")
}

/// One registered credential with one signed assertion, ready for the store-free path.
struct Fixture {
    rp: RelyingParty,
    auth: SoftAuthenticator,
    credential: ParsedCredential,
    state: AuthenticationState,
    response: AuthenticationResponseJson,
    json: String,
}

fn fixture(rt: &tokio::runtime::Runtime, algorithm: i64, backend: SignatureBackend) -> Fixture {
    let rp = relying_party(backend);
    let auth = SoftAuthenticator::new(algorithm, ORIGIN).expect("authenticator");
    let (credential, state, response) = rt.block_on(async {
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user(1)))
            .await
            .expect("start registration");
        let response = auth.register(&options).expect("register");
        let credential = rp
            .finish_registration(state, &response)
            .await
            .expect("finish registration");
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(credential.user_id.clone()))
            .await
            .expect("start authentication");
        let response = auth.authenticate(&options).expect("authenticate");
        (credential, state, response)
    });
    let credential = ParsedCredential::new(credential).expect("parsed credential");
    let json = serde_json::to_string(&response).expect("json");
    // The fixture must verify, or the benchmark would time an early rejection.
    verify_assertion_json(rp.config(), &state, &credential, &json).expect("fixture verifies");
    Fixture {
        rp,
        auth,
        credential,
        state,
        response,
        json,
    }
}

/// The uncompressed SEC1 point of a COSE EC2 key.
fn sec1_from_cose(cose: &[u8]) -> Vec<u8> {
    let value: ciborium::Value = ciborium::de::from_reader(cose).expect("cose");
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
    sec1
}

fn bench_es256(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("es256");

    // The floor: what each backend costs on the exact signed message, with nothing around it.
    let f = fixture(&rt, alg::ES256, SignatureBackend::Ring);
    let sec1 = sec1_from_cose(&f.credential.record().public_key_cose);
    let mut message = f.response.response.authenticator_data.as_slice().to_vec();
    message.extend_from_slice(
        ring::digest::digest(
            &ring::digest::SHA256,
            f.response.response.client_data_json.as_slice(),
        )
        .as_ref(),
    );
    let signature = f.response.response.signature.as_slice().to_vec();
    g.bench_function("raw_verify/ring", |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                black_box(&sec1[..]),
            )
            .verify(black_box(&message), black_box(&signature))
            .expect("valid")
        })
    });
    let p256_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).expect("p256 key");
    g.bench_function("raw_verify/p256", |b| {
        use p256::ecdsa::signature::Verifier;
        b.iter(|| {
            let sig = p256::ecdsa::Signature::from_der(black_box(&signature)).expect("der");
            p256_key.verify(black_box(&message), &sig).expect("valid")
        })
    });

    // The complete path on the same credential, challenge and signature as the floor above,
    // under each backend.
    for (name, backend) in [
        ("ring", SignatureBackend::Ring),
        ("p256", SignatureBackend::P256),
    ] {
        let config = config(backend);
        let config = &config;
        // Complete: the browser's JSON text in, the proof out (decode + every §7.2 check).
        g.bench_function(format!("complete_json/{name}"), |b| {
            b.iter(|| {
                verify_assertion_json(config, &f.state, &f.credential, black_box(&f.json))
                    .expect("valid")
            })
        });
        // The checks alone, on an already-decoded response.
        g.bench_function(format!("verify_decoded/{name}"), |b| {
            b.iter(|| {
                verify_assertion(config, &f.state, &f.credential, black_box(&f.response))
                    .expect("valid")
            })
        });
    }
    for (name, backend) in [
        ("ring", SignatureBackend::Ring),
        ("p256", SignatureBackend::P256),
    ] {
        let f = fixture(&rt, alg::ES256, backend);
        // The full store-backed ceremony end: take the challenge, load and decode the credential,
        // verify, save the counter (MemoryStore). Each timed call gets a fresh ceremony and a
        // fresh signature, prepared outside the timing.
        g.bench_function(format!("finish_authentication_memory_store/{name}"), |b| {
            b.iter_batched(
                || {
                    rt.block_on(async {
                        let (options, state) =
                            f.rp.start_authentication(AuthenticationRequest::for_user(
                                f.credential.record().user_id.clone(),
                            ))
                            .await
                            .expect("start");
                        let response = f.auth.authenticate(&options).expect("sign");
                        (state, serde_json::to_string(&response).expect("json"))
                    })
                },
                |(state, json)| {
                    rt.block_on(f.rp.finish_authentication_json(state, &json))
                        .expect("valid")
                },
                BatchSize::SmallInput,
            )
        });
    }

    let f = fixture(&rt, alg::ES256, SignatureBackend::Ring);
    let request = AuthenticationRequest::for_user(f.credential.record().user_id.clone());
    g.bench_function("start_authentication_memory_store", |b| {
        b.iter(|| {
            rt.block_on(f.rp.start_authentication(request.clone()))
                .expect("start")
        })
    });
    g.finish();
}

fn bench_other_algorithms(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("assertion");
    for (name, algorithm) in [
        ("es256", alg::ES256),
        ("eddsa", alg::EDDSA),
        ("rs256", alg::RS256),
        ("ps256", alg::PS256),
        ("es384", alg::ES384),
        ("es512", alg::ES512),
    ] {
        let f = fixture(&rt, algorithm, SignatureBackend::Ring);
        g.bench_function(format!("complete_json/{name}"), |b| {
            b.iter(|| {
                verify_assertion_json(f.rp.config(), &f.state, &f.credential, black_box(&f.json))
                    .expect("valid")
            })
        });
    }
    g.finish();
}

fn bench_registration(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("registration");
    let next_user = AtomicU64::new(1);
    for (name, attestation) in [
        ("none", SoftAttestation::None),
        ("packed_self", SoftAttestation::PackedSelf),
    ] {
        let rp = relying_party(SignatureBackend::Ring);
        let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).expect("authenticator");
        auth.set_knobs(|k| k.attestation = attestation);
        let (options, state) = rt
            .block_on(rp.start_registration(RegistrationRequest::new(user(0))))
            .expect("start");
        let response = auth.register(&options).expect("register");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Every §7.1 check (attestation statement included), no storage.
        g.bench_function(format!("verify/es256_{name}"), |b| {
            b.iter(|| {
                verify_registration(rp.config(), &state, black_box(&response), now).expect("valid")
            })
        });
        // The store-backed finish: take the challenge, verify, insert the credential and index
        // it under its user. A fresh user and ceremony per call, prepared outside the timing.
        g.bench_function(
            format!("finish_registration_memory_store/es256_{name}"),
            |b| {
                b.iter_batched(
                    || {
                        let n = next_user.fetch_add(1, Ordering::Relaxed);
                        let (options, state) = rt
                            .block_on(rp.start_registration(RegistrationRequest::new(user(n))))
                            .expect("start");
                        (state, auth.register(&options).expect("register"))
                    },
                    |(state, response)| {
                        rt.block_on(rp.finish_registration(state, &response))
                            .expect("valid")
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    g.finish();
}

/// Many independent ES256 assertions (16 credentials, 256 items), JSON text in, verified one by
/// one on the calling thread and by [`BatchVerifier`] pools of 1 and 2 threads.
fn bench_batch(c: &mut Criterion) {
    const ITEMS: usize = 256;
    let rt = runtime();
    let fixtures: Vec<Fixture> = (0..16)
        .map(|_| fixture(&rt, alg::ES256, SignatureBackend::Ring))
        .collect();
    let config = fixtures[0].rp.config().clone();
    let items: Vec<BatchAssertion<'_>> = fixtures
        .iter()
        .cycle()
        .take(ITEMS)
        .map(|f| BatchAssertion::json(&f.state, &f.credential, &f.json))
        .collect();
    let mut g = c.benchmark_group("batch_es256_256");
    g.throughput(Throughput::Elements(ITEMS as u64));
    g.bench_function("sequential", |b| {
        b.iter(|| {
            for item in black_box(&items) {
                item.verify(&config).expect("valid");
            }
        })
    });
    for threads in [1, 2] {
        let pool = BatchVerifier::new(threads).expect("pool");
        g.bench_function(format!("threads/{threads}"), |b| {
            b.iter(|| {
                let verdicts = pool.verify(&config, black_box(&items));
                assert!(verdicts.iter().all(Result::is_ok));
                verdicts
            })
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
    targets = bench_es256, bench_other_algorithms, bench_registration, bench_batch
}
criterion_main!(benches);
