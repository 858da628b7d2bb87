//! Test utilities, behind the `testing` feature. Never use them in production.

use std::sync::Mutex;

pub mod mock;

use crate::error::Result;
use crate::rng::SecureRandom;

/// A deterministic, **insecure** random source for tests: SHA-256 in counter mode over a seed.
/// Never use it outside tests.
#[derive(Debug)]
pub struct SeededRandom {
    state: Mutex<(Vec<u8>, u64)>,
}

impl SeededRandom {
    /// A stream determined entirely by `seed`.
    pub fn new(seed: &[u8]) -> Self {
        SeededRandom {
            state: Mutex::new((seed.to_vec(), 0)),
        }
    }
}

impl SecureRandom for SeededRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in dest.chunks_mut(32) {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(&state.0);
            ctx.update(&state.1.to_be_bytes());
            state.1 += 1;
            let block = ctx.finish();
            chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(feature = "webauthn")]
pub use crate::webauthn::soft::{SoftAttestation, SoftAuthenticator, SoftKnobs};

pub mod conformance;
mod faults;
mod recording;

pub use faults::{FaultMode, FaultyStore};
pub use recording::{RecordingStore, RoundTrips, WrittenValue};
