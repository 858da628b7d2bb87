//! Registration with attestation, end to end through `RelyingParty::finish_registration`, on real
//! captures: `none` as the baseline, then `packed` x5c with chain validation, `apple` and
//! `android-key` with chain validation, and `fido-u2f`. The difference to `none` is the
//! attestation cost (statement, certificate parsing, path validation).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use keyward::Env;
use keyward::store::{MemoryStore, StateStore};
use keyward::webauthn::attestation::{AttestationPolicy, TrustAnchor};
use keyward::webauthn::{
    Base64UrlBytes, RegistrationRequest, RegistrationResponseJson, RelyingParty,
    RelyingPartyConfig, UserEntity,
};
use keyward::{AuthenticatorVerifier, ManualClock};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors/webauthn")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn relying_party(v: &Value) -> RelyingParty {
    let origin = v["origins"][0].as_str().unwrap();
    let algs: Vec<i64> = v["allowed_algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_i64().unwrap())
        .filter(|a| [-7, -35, -8, -257, -37].contains(a))
        .collect();
    let mut policy = AttestationPolicy::default();
    if let Some(pems) = v["trust_roots_pem"].as_array() {
        let roots = pems
            .iter()
            .flat_map(|p| TrustAnchor::from_pem(p.as_str().unwrap()).unwrap());
        policy = AttestationPolicy::trusted(roots.collect::<Vec<_>>());
    }
    let config = RelyingPartyConfig::new(v["rp_id"].as_str().unwrap(), "bench", origin)
        .unwrap()
        .algorithms(algs)
        .unwrap()
        .attestation_policy(policy);
    let clock = Arc::new(ManualClock::at_unix(
        v["now_unix"].as_u64().unwrap_or(1_700_000_000),
    ));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    RelyingParty::new(config, store).env(Env::system().with_clock(clock))
}

fn bench_registration(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("registration");
    for (label, file) in [
        ("none", "registration-pixel3a-none-es256.json"),
        (
            "packed_x5c_trusted",
            "registration-ipados-yubikey5ci-packed.json",
        ),
        ("fido_u2f_trusted", "registration-yubikey5-fido-u2f.json"),
        ("apple_trusted", "registration-apple-anonymous-touchid.json"),
        (
            "android_key_trusted",
            "registration-android-key-chrome.json",
        ),
    ] {
        let v = load(file);
        let response: RegistrationResponseJson =
            serde_json::from_value(v["response"].clone()).unwrap();
        let challenge = Base64UrlBytes::decode(v["challenge"].as_str().unwrap())
            .unwrap()
            .0;
        group.bench_function(label, |b| {
            b.iter_batched(
                || {
                    let rp = relying_party(&v);
                    let user = UserEntity::new(b"bench".to_vec(), "bench", "Bench").unwrap();
                    let (_, state) = rt
                        .block_on(rp.start_registration_with_challenge(
                            RegistrationRequest::new(user),
                            challenge.clone(),
                        ))
                        .unwrap();
                    (rp, state)
                },
                |(rp, state)| {
                    rt.block_on(rp.finish_registration(state, &response))
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_registration);
criterion_main!(benches);
