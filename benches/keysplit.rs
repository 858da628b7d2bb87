//! 2-man-rule blob benchmarks: the scrypt derivation of free-form keys dominates; the raw-key
//! mode is AES-CBC + HMAC only.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::SystemRandom;
use keyward::keysplit::crypto::{self, SALT_LEN, SymKey};
use keyward::keysplit::{KeyKind, TwoManRuleKey};

fn bench_blob(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let identity = vec![0x42u8; 4096];
    let raw = TwoManRuleKey::generate(KeyKind::Raw, &rng).expect("key");
    let free = TwoManRuleKey::generate(KeyKind::Free, &rng).expect("key");
    let raw_blob = crypto::seal_identity(&raw, "app", "user", &identity, &rng).expect("seal");
    let free_blob = crypto::seal_identity(&free, "app", "user", &identity, &rng).expect("seal");

    let mut group = c.benchmark_group("keysplit");
    group.sample_size(10);
    group.bench_function("scrypt_derive_n16384", |b| {
        b.iter(|| SymKey::derive(black_box(free.expose()), &[0x11; SALT_LEN], "app", "user"))
    });
    group.bench_function("open_identity_free_4k", |b| {
        b.iter(|| crypto::open_identity(&free, "app", "user", black_box(&free_blob)))
    });
    group.bench_function("seal_identity_raw_4k", |b| {
        b.iter(|| crypto::seal_identity(&raw, "app", "user", black_box(&identity), &rng))
    });
    group.bench_function("open_identity_raw_4k", |b| {
        b.iter(|| crypto::open_identity(&raw, "app", "user", black_box(&raw_blob)))
    });
    group.finish();
}

criterion_group!(benches, bench_blob);
criterion_main!(benches);
