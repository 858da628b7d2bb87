//! Twilio access token signing and verification (HMAC-SHA256 plus the Python-style JSON), and the
//! issuer's complete `issue` side by side with one HMAC-SHA256 of the same signed bytes.
//!
//! For instruction counts, run the bench under callgrind and read the inclusive cost of the
//! `#[inline(never)]` functions below, divided by their call counts (docs/benchmarks.md):
//!
//! ```sh
//! valgrind --tool=callgrind target/release/deps/video_tokens-<hash> --bench --profile-time 1 'video_token/(issue|hmac)'
//! callgrind_annotate --inclusive=yes --tree=caller callgrind.out.<pid> | grep -E 'once'
//! ```
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use keyward::backend::{self, AssertionParts};
use keyward::twilio::TwilioCredentials;
use keyward::video::twilio::{
    AccessTokenBuilder, AccessTokenVerifier, TwilioAccessTokenIssuer, VideoGrant,
};
use keyward::video::{FactorProof, VideoTokenIssuer, VideoTokenRequest};
use keyward::{Env, ManualClock, Secret};
use ring::hmac;

const SECRET: &str = "keyward-bench-secret-0123456789ab";

/// One complete `issue` (request in, token out and dropped), polled to completion: it never
/// waits, so one poll with a no-op waker is the whole call.
#[inline(never)]
fn issue_once(issuer: &TwilioAccessTokenIssuer, proof: FactorProof, request: VideoTokenRequest) {
    let mut future = pin!(issuer.issue(proof, request));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(token) => drop(black_box(token.expect("issue"))),
        Poll::Pending => unreachable!("issue never waits"),
    }
}

/// One HMAC-SHA256 of `bytes` with a key built beforehand: the floor of an issue.
#[inline(never)]
fn hmac_once(key: &hmac::Key, bytes: &[u8]) -> hmac::Tag {
    hmac::sign(key, bytes)
}

/// The same with the key built on every call, as issue did before the key was cached.
#[inline(never)]
fn hmac_with_key_once(secret: &[u8], bytes: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), bytes)
}

fn bench_tokens(c: &mut Criterion) {
    let key = TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        SECRET,
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
    let verifier = AccessTokenVerifier::new(key.clone()).expect("verifier");
    c.bench_function("video_token/verify", |b| {
        b.iter(|| verifier.verify_at(&jwt, now).expect("verify"))
    });

    // The issuer's hot path: what the room gate calls once per admitted participant.
    let issuer = TwilioAccessTokenIssuer::new(key)
        .expect("issuer")
        .env(Env::system().with_clock(Arc::new(ManualClock::at_unix(1_700_000_000))));
    let request = VideoTokenRequest::new("alice@example.com").room("My Room");
    let proof: FactorProof =
        backend::verified_assertion(AssertionParts::new(b"cred".to_vec(), b"user".to_vec(), 1))
            .into();
    c.bench_function("video_token/issue", |b| {
        b.iter_batched(
            || (proof.clone(), request.clone()),
            |(proof, request)| issue_once(&issuer, proof, request),
            BatchSize::SmallInput,
        )
    });
    // The bytes that issue signs: the token's first two parts.
    let token = {
        let mut future = pin!(issuer.issue(proof.clone(), request.clone()));
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(token) => token.expect("issue"),
            Poll::Pending => unreachable!(),
        }
    };
    let signed = token
        .jwt()
        .rsplit_once('.')
        .expect("three parts")
        .0
        .to_owned();
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    c.bench_function("video_token/hmac_sha256_same_bytes", |b| {
        b.iter(|| hmac_once(&hmac_key, black_box(signed.as_bytes())))
    });
    let secret = Secret::from(SECRET);
    c.bench_function("video_token/hmac_sha256_same_bytes_with_key_setup", |b| {
        b.iter(|| hmac_with_key_once(secret.expose(), black_box(signed.as_bytes())))
    });
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
