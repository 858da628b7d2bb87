//! The exported `OtpProvider` conformance suite (`keyward::testing::conformance::otp_provider`),
//! run by every provider in the crate: the self-hosted one and the Twilio Verify backend talking
//! HTTP to a local server that implements Verify's rules (tests/support). Codes are read from an outbox, the way a user
//! reads their phone.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "twilio")]
mod support;

use std::sync::Arc;

use keyward::Env;
use keyward::otp::{LocalOtpProvider, Outbox};
use keyward::store::{MemoryStore, StateStore};

use keyward::testing::conformance::{OtpCapabilities, otp_provider};
use keyward::{ManualClock, Secret};

fn local_on(
    store: Arc<dyn StateStore>,
    clock: Arc<ManualClock>,
    outbox: &Outbox,
) -> LocalOtpProvider {
    LocalOtpProvider::builder(
        store,
        Arc::new(outbox.clone()),
        Secret::new(*b"conformance-secret-0123456789abc"),
    )
    .env(Env::system().with_clock(clock))
    .build()
    .unwrap()
}

#[tokio::test]
async fn self_hosted_on_memory_store() {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let otp = local_on(
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone()))),
        clock.clone(),
        &outbox,
    );
    otp_provider(&otp, &OtpCapabilities::new(outbox, clock)).await;
}

#[cfg(feature = "twilio")]
#[tokio::test]
async fn twilio_verify_over_http() {
    use keyward::otp::{TwilioVerify, TwilioVerifyConfig};
    use keyward::twilio::TwilioCredentials;
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let server = support::FakeVerify::start(clock.clone(), outbox.clone()).await;
    let creds =
        TwilioCredentials::api_key(support::AC, support::SK, Secret::from(support::SK_SECRET))
            .unwrap();
    let otp = TwilioVerify::new(
        TwilioVerifyConfig::new(creds, support::VA)
            .unwrap()
            .with_base_url(&server.base_url)
            .http(keyward::http::HttpConfig::default().allow_http_loopback(true)),
    )
    .unwrap();
    otp_provider(&otp, &OtpCapabilities::new(outbox, clock)).await;
}
