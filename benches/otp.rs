//! Self-hosted OTP micro-benchmarks: a full start + check round trip on the in-memory store, and
//! a wrong check (the path an attacker drives).
#![allow(clippy::expect_used, missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::otp::{
    Channel, CheckCode, LocalOtpProvider, Outbox, SendRateLimit, StartVerification,
};
use keyward::store::MemoryStore;
use keyward::{OtpProvider, Secret};

fn bench_local_otp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let outbox = Outbox::with_capacity(16);
    let otp = LocalOtpProvider::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
        Secret::new([42u8; 32]),
    )
    .send_rate_limit(None::<SendRateLimit>)
    .send_budget(None)
    .build()
    .expect("provider");

    c.bench_function("local_otp/start_then_check", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v = otp
                    .start(StartVerification::new("+15017122661", Channel::Sms))
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

    c.bench_function("local_otp/wrong_check", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v = otp
                    .start(StartVerification::new("+15017122662", Channel::Sms))
                    .await
                    .expect("start");
                let outcome = otp
                    .check(CheckCode::sid(&v.sid, "abcdef"))
                    .await
                    .expect("check");
                otp.cancel(keyward::otp::VerificationRef::Sid(v.sid))
                    .await
                    .expect("cancel");
                outcome
            })
        })
    });
}

criterion_group!(benches, bench_local_otp);
criterion_main!(benches);
