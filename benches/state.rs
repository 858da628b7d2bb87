//! State-bound hot paths (docs/benchmarks.md, "State"): self-hosted OTP start + check
//! throughput on `MemoryStore`, `start_authentication` from 1,000 to 1,000,000 stored
//! credentials, and `finish_authentication` through `MemoryStore` beside ring's raw verify.
//! Instruction counts for the same paths come from `counts.rs` under callgrind.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use keyward::otp::{Channel, CheckCode, LocalOtpProvider, Outbox, StartVerification};
use keyward::store::MemoryStore;
use keyward::webauthn::AuthenticationRequest;
use keyward::{AuthenticatorVerifier, OtpProvider, Secret};

#[path = "state_support.rs"]
mod support;
use support::{pad, passkey, runtime};

fn bench_otp(c: &mut Criterion) {
    let rt = runtime();
    let outbox = Outbox::with_capacity(16);
    let otp = LocalOtpProvider::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
        Secret::new([42u8; 32]),
    )
    .send_rate_limit(None)
    .send_budget(None)
    .build()
    .expect("provider");
    let mut g = c.benchmark_group("state_local_otp");
    g.throughput(Throughput::Elements(1));
    // One verification started and approved per iteration, by sid: what a login costs, to a
    // phone number (E.164 validation with libphonenumber's metadata) and to an email address.
    for (name, to, channel) in [
        ("start_then_check_phone", "+15017122661", Channel::Sms),
        (
            "start_then_check_email",
            "alice@example.com",
            Channel::Email,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let v = otp
                        .start(StartVerification::new(to, channel.clone()))
                        .await
                        .expect("start");
                    let code = outbox.last_code_to(&v.to).expect("code");
                    otp.check(CheckCode::sid(&v.sid, code))
                        .await
                        .expect("check")
                        .approved()
                        .expect("approved")
                })
            })
        });
    }
    g.finish();
}

fn bench_start_authentication(c: &mut Criterion) {
    let rt = runtime();
    let p = passkey(&rt, 0);
    let credential_id = p.credential_id(&rt);
    let request = AuthenticationRequest::for_user(p.user_id.clone());
    let mut g = c.benchmark_group("state_start_authentication");
    // The same store grows from 1,000 to 1,000,000 credentials between rows.
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        pad(&rt, p.store.as_ref(), &p.user_id, &credential_id, n);
        g.bench_function(format!("credentials/{n}"), |b| {
            b.iter(|| {
                let started = rt
                    .block_on(p.rp.start_authentication(request.clone()))
                    .expect("start");
                // Ceremonies expire as in production, so the loop's challenges do not pile up.
                p.clock.advance(Duration::from_secs(1));
                started
            })
        });
    }
    g.finish();
}

fn bench_finish_authentication(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("state_finish_authentication");
    for (name, step) in [("passkey_counter_0", 0), ("counter_grows", 1)] {
        let p = passkey(&rt, step);
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    rt.block_on(async {
                        let (options, state) =
                            p.rp.start_authentication(AuthenticationRequest::for_user(
                                p.user_id.clone(),
                            ))
                            .await
                            .expect("start");
                        let response = p.auth.authenticate(&options).expect("sign");
                        (state, serde_json::to_string(&response).expect("json"))
                    })
                },
                |(state, json)| {
                    rt.block_on(p.rp.finish_authentication_json(state, black_box(&json)))
                        .expect("valid")
                },
                BatchSize::SmallInput,
            )
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
    targets = bench_otp, bench_start_authentication, bench_finish_authentication
}
criterion_main!(benches);
