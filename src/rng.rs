//! Injected randomness: codes, challenges, salts, IVs and keys come from a [`SecureRandom`].

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// A cryptographically secure random source.
///
/// Backends take an `Arc<dyn SecureRandom>`; the default is [`SystemRandom`] (the operating
/// system's CSPRNG through `ring`). Tests may inject a deterministic source
/// (`testing::SeededRandom` with the `testing` feature) to get reproducible challenges.
pub trait SecureRandom: Send + Sync + fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG.
#[derive(Debug)]
pub struct SystemRandom {
    inner: ring::rand::SystemRandom,
}

impl SystemRandom {
    /// The OS random source.
    pub fn new() -> Self {
        SystemRandom {
            inner: ring::rand::SystemRandom::new(),
        }
    }
}

impl Default for SystemRandom {
    fn default() -> Self {
        SystemRandom::new()
    }
}

impl SecureRandom for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        ring::rand::SecureRandom::fill(&self.inner, dest)
            .map_err(|_| Error::new(ErrorKind::Random, "operating system random source failed"))
    }
}

/// Returns an array of `N` random bytes.
pub fn random_array<const N: usize>(rng: &dyn SecureRandom) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    rng.fill(&mut out)?;
    Ok(out)
}

/// Returns a uniformly distributed integer in `0..bound` by rejection sampling (no modulo bias).
///
/// `bound` must be non-zero.
pub fn uniform_below(rng: &dyn SecureRandom, bound: u32) -> Result<u32> {
    if bound == 0 {
        return Err(Error::invalid_input(
            "uniform_below: bound must be non-zero",
        ));
    }
    // Largest multiple of `bound` that fits in u32's range; values at or above it are rejected.
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let v = u32::from_be_bytes(random_array::<4>(rng)?);
        if v < zone {
            return Ok(v % bound);
        }
    }
}

/// Returns `len` characters drawn uniformly from `alphabet` (ASCII).
pub fn random_string(rng: &dyn SecureRandom, alphabet: &[u8], len: usize) -> Result<String> {
    if alphabet.is_empty() || !alphabet.is_ascii() {
        return Err(Error::invalid_input(
            "random_string: alphabet must be non-empty ASCII",
        ));
    }
    let bound = u32::try_from(alphabet.len())
        .map_err(|_| Error::invalid_input("random_string: alphabet too long"))?;
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        let i = uniform_below(rng, bound)? as usize;
        s.push(char::from(alphabet[i]));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    #[test]
    fn seeded_is_reproducible() {
        let a = SeededRandom::new(b"x");
        let b = SeededRandom::new(b"x");
        let ra: [u8; 40] = random_array(&a).unwrap();
        let rb: [u8; 40] = random_array(&b).unwrap();
        assert_eq!(ra, rb);
        let ra2: [u8; 40] = random_array(&a).unwrap();
        assert_ne!(ra, ra2);
    }

    #[test]
    fn uniform_below_is_roughly_uniform() {
        let rng = SeededRandom::new(b"uniform");
        let mut counts = [0u32; 10];
        for _ in 0..20_000 {
            counts[uniform_below(&rng, 10).unwrap() as usize] += 1;
        }
        for c in counts {
            assert!((1_700..=2_300).contains(&c), "{counts:?}");
        }
        assert!(uniform_below(&rng, 0).is_err());
    }

    #[test]
    fn random_string_uses_alphabet() {
        let s = random_string(&SystemRandom::new(), b"ab", 64).unwrap();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b == b'a' || b == b'b'));
    }
}
