//! Twilio access token signing and verification (HMAC-SHA256 plus the Python-style JSON).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::twilio::TwilioCredentials;
use keyward::video::twilio::{AccessTokenBuilder, AccessTokenVerifier, VideoGrant};

fn bench_tokens(c: &mut Criterion) {
    let key = TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        "keyward-bench-secret-0123456789ab",
    )
    .expect("key");
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let builder = AccessTokenBuilder::new()
        .identity("Zoë 🎥 会議")
        .grant(VideoGrant::room("My Room"));
    c.bench_function("video_token/sign", |b| {
        b.iter(|| builder.sign(&key, now).expect("sign"))
    });
    let jwt = builder.sign(&key, now).expect("sign");
    let jwt = jwt.expose_str().expect("utf-8").to_owned();
    let verifier = AccessTokenVerifier::new(key).expect("verifier");
    c.bench_function("video_token/verify", |b| {
        b.iter(|| verifier.verify_at(&jwt, now).expect("verify"))
    });
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
