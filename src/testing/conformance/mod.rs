//! Conformance suites a backend runs to prove it keeps a trait's contract, on the model of
//! `object_store`'s `integration.rs`: a new backend calls one function from its own tests.
//!
//! - [`state_store`]: every promise of [`StateStore`](crate::store::StateStore) (single-key
//!   atomicity under racing callers, versions, counters, expiry by the store's clock, limits,
//!   bad input).
//! - [`otp_provider`]: Twilio Verify's observable behaviour every
//!   [`OtpProvider`](crate::OtpProvider) keeps (single-use approval, attempt and send limits,
//!   re-sends, expiry, racing checks, bad input); run by the self-hosted provider and by the
//!   Twilio Verify backend against a local server speaking Verify's wire format.
//! - [`key_split_store`]: the [`KeySplitStore`](crate::KeySplitStore) contract and the 2-man
//!   rule's core promise; run by the local SSKS store and by the SSKS HTTP client against the
//!   local SSKS server.
//!
//! Each suite panics with a message naming the broken promise, like `assert!`.
//!
//! ```no_run
//! # async fn run() {
//! use std::sync::Arc;
//! use keyward::{Env, ManualClock};
//! use keyward::store::MemoryStore;
//! use keyward::testing::conformance::{self, StoreCapabilities};
//!
//! let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
//! let store = MemoryStore::new().env(Env::system().with_clock(clock.clone()));
//! conformance::state_store(&store, &StoreCapabilities::manual_clock(clock)).await;
//! # }
//! ```

mod keysplit;
mod otp;
mod store;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

pub use keysplit::{KeySplitCapabilities, key_split_store};
pub use otp::{OtpCapabilities, otp_provider};
pub use store::{StoreCapabilities, TimeControl, state_store};

/// Polls every future on the current task until all are done (no extra dependency): with a
/// network store, all the requests are in flight at once and race on the server.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
