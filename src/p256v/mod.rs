//! Verification-only ECDSA P-256 / SHA-256 with per-key precomputed tables (feature `fast-p256`).
//!
//! A relying party verifies the signatures of the same credential for years. This module makes
//! each verification after the first cheaper than a generic verify by precomputing, once per
//! public key, multiples of the key (a [`PrecomputedKey`]), next to a static table for the
//! generator built once per process. A verification then needs no point doubling at all: about
//! 80 mixed point additions with the default windows, against roughly 256 doublings plus 50
//! additions for a verifier that knows nothing about the key in advance.
//!
//! # Why variable time is fine here
//!
//! Every input of a signature *verification* is public: the public key, the message (the
//! authenticator data and client data hash, sent in clear by the browser) and the signature.
//! Nothing secret flows through this code, so there is nothing for a timing or cache side channel
//! to leak, and the code branches and indexes tables on its inputs freely (skipping zero digits,
//! special cases of the addition formulas, early exits on malformed input). It must never be used
//! to *sign*; it cannot, as it holds no private key operation.
//!
//! # Field arithmetic
//!
//! Four 64-bit limbs in Montgomery form, products through `u128`, one Montgomery multiplication
//! (CIOS) for both the field prime `p` and the group order `n`, and a dedicated squaring modulo
//! `p` that computes the cross products once and reduces with `-p^-1 mod 2^64 = 1`. Written here
//! because the alternatives did not fit: ring's assembly is not reachable through its public API,
//! RustCrypto's `p256` field arithmetic is constant time and generic (an experiment with comb
//! tables on it still cost 1.11x ring's time), and fiat-crypto's generated code would be a new
//! dependency for the same Montgomery form. Every result is fully reduced, so comparing elements
//! is comparing limbs. The Montgomery constants are derived by `const fn`s from the modulus.
//!
//! # The verification, step by step (and why it agrees with ring)
//!
//! 1. The public key is the 65-byte uncompressed SEC1 point (`0x04 || x || y`, each below `p`,
//!    on the curve): ring's `parse_uncompressed_point`. P-256 has cofactor 1, so every such point
//!    has order `n` and every table entry is a proper point.
//! 2. The DER signature is parsed with ring's rules (see the `der` submodule's docs); `r` and `s`
//!    must lie in `1..n`. High-S signatures are accepted, as ring accepts them.
//! 3. `e` is SHA-256 of the message, reduced once modulo `n`; `w = s^-1 mod n` (Fermat);
//!    `u1 = e w`, `u2 = r w`.
//! 4. `R = u1 G + u2 Q`, both from tables, in one Jacobian accumulator; the identity is refused.
//! 5. `x(R) mod n == r` is checked without an inversion: `r Z^2 == X`, and when `r + n < p`,
//!    `(r + n) Z^2 == X`.
//!
//! The crate's tests compare every verdict with ring's: a differential test on random valid and
//! corrupted (key, message, signature) triples, every Wycheproof ECDSA P-256 SHA-256 vector, a
//! property test, and a fuzz target (`fuzz/fuzz_targets/p256v_differential.rs`).
//!
//! # Tables and memory
//!
//! A key's table with window width `w` holds `ceil(257 / w) * 2^(w-1)` affine points of 64
//! bytes: 88,064 bytes for the default `w = 6` ([`DEFAULT_WINDOW`]). [`TableCache`] keeps a
//! bounded number of them, least recently used first out; [`TableCache::global`] is the one the
//! WebAuthn relying party uses.
//!
//! ```
//! # fn main() -> Result<(), keyward::p256v::Rejected> {
//! use keyward::p256v::{PrecomputedKey, PublicKey};
//! # let sec1 = keyward::p256v::generator_sec1();
//! let key = PublicKey::from_sec1(&sec1)?;
//! let table = PrecomputedKey::new(&key);
//! assert!(table.verify(b"message", b"\x30\x06\x02\x01\x01\x02\x01\x01").is_err());
//! # Ok(()) }
//! ```

mod cache;
mod der;
mod field;
mod point;
mod table;

use std::fmt;
use std::sync::{Arc, OnceLock};

pub use cache::{CacheStats, TableCache};

use field::{Fe, Limbs, N, P, lt, scalar, sub_raw};
use point::{Affine, Jacobian};
use table::Comb;

/// The window width of a key's table unless chosen otherwise: 43 windows of 32 points, 88,064
/// bytes.
pub const DEFAULT_WINDOW: u8 = 6;

/// The window width of the generator's static table: 37 windows of 64 points, 151,552 bytes,
/// built once per process.
const GENERATOR_WINDOW: u8 = 7;

/// Why a verification failed. The variants are for diagnostics; a caller should treat both the
/// same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The public key is not an uncompressed SEC1 P-256 point on the curve.
    PublicKey,
    /// The signature does not verify (or is not a valid DER `ECDSA-Sig-Value`).
    Signature,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejected::PublicKey => "invalid p-256 public key",
            Rejected::Signature => "invalid signature",
        })
    }
}

impl std::error::Error for Rejected {}

/// A P-256 public key, validated: both coordinates below `p`, on the curve.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    point: Affine,
    sec1: [u8; 65],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("x", &crate::hex::encode(&self.sec1[1..9]))
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses the uncompressed SEC1 encoding `0x04 || x || y` (65 bytes), exactly as ring does
    /// for `ECDSA_P256_SHA256_ASN1` (compressed points are refused there too).
    pub fn from_sec1(bytes: &[u8]) -> Result<PublicKey, Rejected> {
        let sec1: [u8; 65] = bytes.try_into().map_err(|_| Rejected::PublicKey)?;
        if sec1[0] != 4 {
            return Err(Rejected::PublicKey);
        }
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        x.copy_from_slice(&sec1[1..33]);
        y.copy_from_slice(&sec1[33..65]);
        let x = Fe::from_be_bytes(&x).ok_or(Rejected::PublicKey)?;
        let y = Fe::from_be_bytes(&y).ok_or(Rejected::PublicKey)?;
        let point = Affine::new(x, y).ok_or(Rejected::PublicKey)?;
        Ok(PublicKey { point, sec1 })
    }

    /// The uncompressed SEC1 encoding.
    pub fn to_sec1(&self) -> [u8; 65] {
        self.sec1
    }
}

/// A public key with its precomputed table: the fast verifier for one key.
#[derive(Clone)]
pub struct PrecomputedKey {
    key: PublicKey,
    comb: Comb,
}

impl fmt::Debug for PrecomputedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrecomputedKey")
            .field("key", &self.key)
            .field("window", &self.comb.window())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl PrecomputedKey {
    /// Builds the table with [`DEFAULT_WINDOW`].
    pub fn new(key: &PublicKey) -> PrecomputedKey {
        // The default window is in range and the key has prime order, so the build cannot fail;
        // if it did, the empty table refuses every signature.
        PrecomputedKey {
            key: *key,
            comb: Comb::build(&key.point, DEFAULT_WINDOW).unwrap_or_else(Comb::empty),
        }
    }

    /// Builds the table with window width `window` (2 to 8): memory `ceil(257 / w) * 2^(w-1) *
    /// 64` bytes (from 8 KiB at 2 to 264 KiB at 8), one mixed addition per window in each
    /// verification. Fails with [`Rejected::PublicKey`] for a width out of range.
    pub fn with_window(key: &PublicKey, window: u8) -> Result<PrecomputedKey, Rejected> {
        let comb = Comb::build(&key.point, window).ok_or(Rejected::PublicKey)?;
        Ok(PrecomputedKey { key: *key, comb })
    }

    /// The key this table belongs to.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The window width.
    pub fn window(&self) -> u8 {
        self.comb.window()
    }

    /// Bytes held by this table (the points and the struct).
    pub fn memory_bytes(&self) -> usize {
        self.comb.heap_bytes() + core::mem::size_of::<Self>()
    }

    /// Verifies a DER-encoded ECDSA P-256 / SHA-256 signature over `message`, with the verdict
    /// ring's `ECDSA_P256_SHA256_ASN1` gives for the same key, message and signature.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Rejected> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let mut e = [0u8; 32];
        e.copy_from_slice(digest.as_ref());
        self.verify_digest(&e, signature)
    }

    /// [`verify`](Self::verify) on an already computed SHA-256 digest of the message.
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), Rejected> {
        let (r, s) = der::parse_signature(signature).ok_or(Rejected::Signature)?;
        if verify_scalars(&self.comb, digest, &r, &s) {
            Ok(())
        } else {
            Err(Rejected::Signature)
        }
    }
}

/// The generator's table, built on first use.
fn generator_comb() -> &'static Comb {
    static G: OnceLock<Comb> = OnceLock::new();
    G.get_or_init(|| {
        // Cannot fail (see `PrecomputedKey::new`); an empty table fails closed.
        Comb::build(&Affine::generator(), GENERATOR_WINDOW).unwrap_or_else(Comb::empty)
    })
}

/// Builds the generator's table now (151,552 bytes), so the first verification does not.
pub fn warm_up() {
    let _ = generator_comb();
}

/// `x(u1 G + u2 Q) mod n == r` for `u1 = e/s`, `u2 = r/s`, with `1 <= r, s < n`.
fn verify_scalars(q: &Comb, digest: &[u8; 32], r: &Limbs, s: &Limbs) -> bool {
    let mut e = field::limbs_from_be(digest);
    if !lt(&e, &N) {
        e = sub_raw(&e, &N).0;
    }
    let w = scalar::invert_to_mont(s);
    let u1 = scalar::mul(&e, &w);
    let u2 = scalar::mul(r, &w);

    let g = generator_comb();
    if !g.is_complete() || !q.is_complete() {
        return false;
    }
    let mut acc = Jacobian::IDENTITY;
    g.accumulate(&mut acc, &u1);
    q.accumulate(&mut acc, &u2);
    if acc.is_identity() {
        return false;
    }
    let z2 = acc.z.square();
    // r < n < p, so r is a field element as is.
    if Fe::from_int(r).mul(&z2) == acc.x {
        return true;
    }
    // x(R) in [n, p) reduces to r when x(R) = r + n.
    let p_minus_n = sub_raw(&P, &N).0;
    if lt(r, &p_minus_n) {
        let rn = field::add_raw(r, &N).0;
        return Fe::from_int(&rn).mul(&z2) == acc.x;
    }
    false
}

/// One-shot verification with ring's interface (`UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1,
/// key).verify(message, signature)`): parses the key, takes its table from
/// [`TableCache::global`] (building it on a miss) and verifies.
pub fn verify(sec1_public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Rejected> {
    let key = PublicKey::from_sec1(sec1_public_key)?;
    TableCache::global().get(&key).verify(message, signature)
}

/// The generator's SEC1 encoding (for examples and tests).
pub fn generator_sec1() -> [u8; 65] {
    let mut out = [0u8; 65];
    out[0] = 4;
    out[1..33].copy_from_slice(&field::limbs_to_be(&point::GX));
    out[33..65].copy_from_slice(&field::limbs_to_be(&point::GY));
    out
}

/// Shared by [`TableCache`] and the WebAuthn key: a table behind an `Arc`.
pub(crate) type SharedTable = Arc<PrecomputedKey>;

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{self as rs, KeyPair};

    fn ring_pair() -> (rs::EcdsaKeyPair, ring::rand::SystemRandom) {
        let rng = ring::rand::SystemRandom::new();
        let alg = &rs::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        (
            rs::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap(),
            rng,
        )
    }

    #[test]
    fn verifies_ring_signatures_and_refuses_others() {
        let (pair, rng) = ring_pair();
        let key = PublicKey::from_sec1(pair.public_key().as_ref()).unwrap();
        for w in [2, 5, 6, 7, 8] {
            let table = PrecomputedKey::with_window(&key, w).unwrap();
            for i in 0..5u8 {
                let msg = [i; 40];
                let sig = pair.sign(&rng, &msg).unwrap();
                assert_eq!(table.verify(&msg, sig.as_ref()), Ok(()), "w={w}");
                assert_eq!(
                    table.verify(b"other", sig.as_ref()),
                    Err(Rejected::Signature)
                );
            }
        }
        assert!(PrecomputedKey::with_window(&key, 9).is_err());
    }

    #[test]
    fn refuses_bad_keys() {
        let g = generator_sec1();
        assert!(PublicKey::from_sec1(&g).is_ok());
        let mut off = g;
        off[64] ^= 1;
        assert_eq!(PublicKey::from_sec1(&off), Err(Rejected::PublicKey));
        let mut compressed = [0u8; 33];
        compressed[0] = 2 + (g[64] & 1);
        compressed[1..].copy_from_slice(&g[1..33]);
        assert_eq!(PublicKey::from_sec1(&compressed), Err(Rejected::PublicKey));
        assert_eq!(PublicKey::from_sec1(&g[..64]), Err(Rejected::PublicKey));
        let mut big = [0xffu8; 65];
        big[0] = 4;
        assert_eq!(PublicKey::from_sec1(&big), Err(Rejected::PublicKey));
    }

    #[test]
    fn debug_is_short() {
        let key = PublicKey::from_sec1(&generator_sec1()).unwrap();
        let table = PrecomputedKey::new(&key);
        let s = format!("{table:?}");
        assert!(s.contains("memory_bytes: 88"), "{s}");
        assert_eq!(
            table.memory_bytes(),
            88_064 + core::mem::size_of::<PrecomputedKey>()
        );
    }
}
