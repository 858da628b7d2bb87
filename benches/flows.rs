//! The non-WebAuthn flows: Twilio Video access tokens (issue and verify) and the 2-man-rule
//! identity blob (seal and open) in both key modes. Self-hosted OTP start + check has its own
//! bench (`benches/otp.rs`).
//!
//! Run: `cargo bench --bench flows`. See docs/benchmarks.md.
#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::keysplit::crypto::{SymKey, open_identity, seal_identity};
use keyward::keysplit::{KeyKind, TwoManRuleKey};
use keyward::twilio::TwilioCredentials;
use keyward::video::VideoTokenRequest;
use keyward::video::twilio::TwilioAccessTokenIssuer;
use keyward::{SystemRandom, VideoTokenIssuer};

fn bench_video(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let key = TwilioCredentials::api_key(
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "bench-secret-bench-secret-bench-",
    )
    .expect("key");
    let issuer = TwilioAccessTokenIssuer::new(key).expect("issuer");
    let verifier = issuer.verifier();
    let request = VideoTokenRequest::new("alice@example.com").room("daily-standup");
    // What an approved code check hands out.
    let mut approved =
        keyward::otp::Verification::new("VE1", "alice@example.com", keyward::otp::Channel::Email);
    approved.status = keyward::otp::VerificationStatus::Approved;
    let proof: keyward::video::FactorProof =
        keyward::backend::approved(approved).expect("proof").into();
    let mut g = c.benchmark_group("flows_video_token");
    // Build the grants, sign the HS256 JWT.
    g.bench_function("issue", |b| {
        b.iter(|| {
            rt.block_on(issuer.issue(proof.clone(), black_box(request.clone())))
                .expect("issue")
        })
    });
    let token = rt
        .block_on(issuer.issue(proof.clone(), request.clone()))
        .expect("issue");
    // Decode, check the HMAC in constant time, check times and grants.
    g.bench_function("verify", |b| {
        b.iter(|| verifier.verify(black_box(token.jwt())).expect("verify"))
    });
    g.finish();
}

fn bench_two_man_rule(c: &mut Criterion) {
    const APP: &str = "00000000-0000-1000-a000-7ea300000019";
    const USER: &str = "user-42";
    let rng = SystemRandom::new();
    let identity = vec![7u8; 1024];
    let mut g = c.benchmark_group("two_man_rule_blob");
    for (name, kind) in [("raw_key", KeyKind::Raw), ("string_key", KeyKind::Free)] {
        let key = TwoManRuleKey::generate(kind, &rng).expect("key");
        // The string (free-form) mode derives its key with scrypt (N = 2^14, r = 8) on every
        // seal and open; the raw mode decodes a 64-byte key.
        g.bench_function(format!("seal/{name}"), |b| {
            b.iter(|| seal_identity(&key, APP, USER, black_box(&identity), &rng).expect("seal"))
        });
        let sealed = seal_identity(&key, APP, USER, &identity, &rng).expect("seal");
        g.bench_function(format!("open/{name}"), |b| {
            b.iter(|| open_identity(&key, APP, USER, black_box(&sealed)).expect("open"))
        });
    }
    // The scrypt derivation alone: what dominates the string mode.
    let salt = [3u8; 32];
    g.bench_function("scrypt_derive_only", |b| {
        b.iter(|| SymKey::derive(black_box("a string key"), &salt, APP, USER).expect("derive"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench_video, bench_two_man_rule
}
criterion_main!(benches);
