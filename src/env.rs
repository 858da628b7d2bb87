//! The one injection point: [`Env`] bundles the [`Clock`] and the [`SecureRandom`] a component
//! runs on, and every component takes it the same way, `.env(env)`.
//!
//! A host makes one `Env` (the system one by default) and hands clones of it to the store and
//! to every backend, so they agree on the time; a test makes one from a
//! [`ManualClock`](crate::ManualClock) and a seeded source and gets reproducible expiry,
//! timestamps, codes and challenges everywhere at once.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::clock::{Clock, SystemClock};
use crate::rng::{SecureRandom, SystemRandom};

/// Where a component gets the time and its randomness: an `Arc<dyn Clock>` and an
/// `Arc<dyn SecureRandom>`, cheap to clone (two reference counts).
///
/// Every component that reads the time or draws random bytes takes one through a `.env(env)`
/// setter (on its builder when it has one), and uses [`Env::system`] until told otherwise.
/// Components that only need one half ignore the other.
///
/// ```
/// use std::sync::Arc;
/// use keyward::{Env, ManualClock, Secret};
/// use keyward::otp::{LocalOtpProvider, Outbox};
/// use keyward::store::MemoryStore;
///
/// let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
/// let env = Env::system().with_clock(clock.clone()); // the OS random source, a pinned clock
/// let store = Arc::new(MemoryStore::new().env(env.clone()));
/// let otp = LocalOtpProvider::builder(store, Arc::new(Outbox::new()), Secret::new([7u8; 32]))
///     .env(env.clone())
///     .build()?;
/// assert_eq!(env.unix_seconds(), 1_700_000_000);
/// # let _ = otp;
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Clone)]
pub struct Env {
    clock: Arc<dyn Clock>,
    random: Arc<dyn SecureRandom>,
}

impl Env {
    /// The operating system's clock ([`SystemClock`]) and CSPRNG ([`SystemRandom`]).
    pub fn system() -> Self {
        Env::new(Arc::new(SystemClock), Arc::new(SystemRandom::new()))
    }

    /// An environment on `clock` and `random`.
    pub fn new(clock: Arc<dyn Clock>, random: Arc<dyn SecureRandom>) -> Self {
        Env { clock, random }
    }

    /// The same environment on another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same environment on another random source.
    pub fn with_random(mut self, random: Arc<dyn SecureRandom>) -> Self {
        self.random = random;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The random source.
    pub fn random(&self) -> &Arc<dyn SecureRandom> {
        &self.random
    }

    /// The clock's current time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The clock's current time in whole seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> u64 {
        self.clock.unix_seconds()
    }
}

impl Default for Env {
    /// [`Env::system`].
    fn default() -> Self {
        Env::system()
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Both halves are `Debug` by contract (`Clock` and `SecureRandom` require it).
        f.debug_struct("Env")
            .field("clock", &self.clock)
            .field("random", &self.random)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::rng::random_array;
    use crate::testing::SeededRandom;

    #[test]
    fn clones_share_the_clock_and_the_random_source() {
        let clock = Arc::new(ManualClock::at_unix(100));
        let env = Env::new(clock.clone(), Arc::new(SeededRandom::new(b"env")));
        let copy = env.clone();
        clock.advance(std::time::Duration::from_secs(5));
        assert_eq!(copy.unix_seconds(), 105);
        // One stream: the copy continues where the original stopped.
        let a: [u8; 16] = random_array(env.random().as_ref()).unwrap();
        let b: [u8; 16] = random_array(copy.random().as_ref()).unwrap();
        assert_ne!(a, b);
        let fresh = SeededRandom::new(b"env");
        let first: [u8; 16] = random_array(&fresh).unwrap();
        assert_eq!(a, first);
    }

    #[test]
    fn with_clock_keeps_the_random_source() {
        let random: Arc<dyn SecureRandom> = Arc::new(SeededRandom::new(b"keep"));
        let env = Env::system()
            .with_random(random.clone())
            .with_clock(Arc::new(ManualClock::at_unix(7)));
        assert!(Arc::ptr_eq(env.random(), &random));
        assert_eq!(env.unix_seconds(), 7);
        assert!(Env::default().unix_seconds() > 1_700_000_000);
    }

    #[test]
    fn debug_names_both_halves() {
        let env = Env::new(
            Arc::new(ManualClock::at_unix(0)),
            Arc::new(SeededRandom::new(b"s")),
        );
        let shown = format!("{env:?}");
        assert!(shown.starts_with("Env { clock: ManualClock"), "{shown}");
        assert!(shown.contains("random: SeededRandom"), "{shown}");
    }
}
