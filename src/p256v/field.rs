//! Arithmetic modulo the P-256 field prime `p` and the group order `n`: four 64-bit limbs, little
//! endian, Montgomery form (`R = 2^256`), products through `u128`.
//!
//! One Montgomery multiplication (CIOS, coarsely integrated operand scanning) serves both moduli;
//! it is `#[inline(always)]` and always called with a constant modulus, so the compiler folds
//! `p`'s special limbs (`2^64 - 1`, `2^32 - 1`, `0`) into the code. Every result is fully reduced
//! (below the modulus), so equality of elements is equality of limbs.
//!
//! The Montgomery constants (`-m^-1 mod 2^64`, `R mod m`, `R^2 mod m`) are computed by `const fn`s
//! from the modulus at compile time, not written out by hand.

/// Four little-endian 64-bit limbs.
pub(crate) type Limbs = [u64; 4];

/// The field prime `p = 2^256 - 2^224 + 2^192 + 2^96 - 1`.
pub(crate) const P: Limbs = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0x0000_0000_0000_0000,
    0xffff_ffff_0000_0001,
];

/// The group order `n`.
pub(crate) const N: Limbs = [
    0xf3b9_cac2_fc63_2551,
    0xbce6_faad_a717_9e84,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_0000_0000,
];

/// `-m^-1 mod 2^64` by Newton's iteration (each step doubles the correct low bits).
const fn neg_inv64(m0: u64) -> u64 {
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
}

/// `a < b` on limbs.
#[inline(always)]
pub(crate) const fn lt(a: &Limbs, b: &Limbs) -> bool {
    let mut i = 4;
    while i > 0 {
        i -= 1;
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// `a + b` with the carry out.
#[inline(always)]
pub(crate) const fn add_raw(a: &Limbs, b: &Limbs) -> (Limbs, bool) {
    let mut r = [0u64; 4];
    let mut carry = false;
    let mut i = 0;
    while i < 4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        r[i] = s2;
        carry = c1 | c2;
        i += 1;
    }
    (r, carry)
}

/// `a - b` with the borrow out.
#[inline(always)]
pub(crate) const fn sub_raw(a: &Limbs, b: &Limbs) -> (Limbs, bool) {
    let mut r = [0u64; 4];
    let mut borrow = false;
    let mut i = 0;
    while i < 4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        r[i] = d2;
        borrow = b1 | b2;
        i += 1;
    }
    (r, borrow)
}

/// `a + b mod m` for `a, b < m`.
#[inline(always)]
pub(crate) const fn add_mod(a: &Limbs, b: &Limbs, m: &Limbs) -> Limbs {
    let (s, carry) = add_raw(a, b);
    if carry || !lt(&s, m) {
        sub_raw(&s, m).0
    } else {
        s
    }
}

/// `a - b mod m` for `a, b < m`.
#[inline(always)]
pub(crate) const fn sub_mod(a: &Limbs, b: &Limbs, m: &Limbs) -> Limbs {
    let (d, borrow) = sub_raw(a, b);
    if borrow { add_raw(&d, m).0 } else { d }
}

/// `2^k mod m` by repeated doubling (compile time only).
const fn pow2_mod(k: u32, m: &Limbs) -> Limbs {
    // 1 < m, so start from 1 and double k times.
    let mut x: Limbs = [1, 0, 0, 0];
    let mut i = 0;
    while i < k {
        x = add_mod(&x, &x, m);
        i += 1;
    }
    x
}

/// Montgomery multiplication `a * b * 2^-256 mod m` for `a, b < m`, `m` odd and above `2^255`.
#[inline(always)]
fn mont_mul(a: &Limbs, b: &Limbs, m: &Limbs, m0inv: u64) -> Limbs {
    let mut t = [0u64; 6];
    for &bi in b {
        let mut carry: u64 = 0;
        for j in 0..4 {
            let uv = u128::from(t[j]) + u128::from(a[j]) * u128::from(bi) + u128::from(carry);
            t[j] = uv as u64;
            carry = (uv >> 64) as u64;
        }
        let uv = u128::from(t[4]) + u128::from(carry);
        t[4] = uv as u64;
        t[5] = (uv >> 64) as u64;

        let q = t[0].wrapping_mul(m0inv);
        let uv = u128::from(t[0]) + u128::from(q) * u128::from(m[0]);
        let mut carry = (uv >> 64) as u64;
        for j in 1..4 {
            let uv = u128::from(t[j]) + u128::from(q) * u128::from(m[j]) + u128::from(carry);
            t[j - 1] = uv as u64;
            carry = (uv >> 64) as u64;
        }
        let uv = u128::from(t[4]) + u128::from(carry);
        t[3] = uv as u64;
        t[4] = t[5] + (uv >> 64) as u64;
    }
    let r = [t[0], t[1], t[2], t[3]];
    if t[4] != 0 || !lt(&r, m) {
        sub_raw(&r, m).0
    } else {
        r
    }
}

/// Montgomery squaring modulo `p`: the cross products once, doubled, then the diagonal, then four
/// reduction steps that use `-p^-1 mod 2^64 = 1` and `p`'s limb shape.
#[inline(always)]
fn sqr_p(a: &Limbs) -> Limbs {
    #[inline(always)]
    fn mac(acc: u64, x: u64, y: u64, carry: u64) -> (u64, u64) {
        let uv = u128::from(acc) + u128::from(x) * u128::from(y) + u128::from(carry);
        (uv as u64, (uv >> 64) as u64)
    }
    #[inline(always)]
    fn adc(x: u64, y: u64, carry: u64) -> (u64, u64) {
        let uv = u128::from(x) + u128::from(y) + u128::from(carry);
        (uv as u64, (uv >> 64) as u64)
    }
    // Off-diagonal products a[i]*a[j], i < j, into w[1..7].
    let (w1, c) = mac(0, a[0], a[1], 0);
    let (w2, c) = mac(0, a[0], a[2], c);
    let (w3, w4) = mac(0, a[0], a[3], c);
    let (w3, c) = mac(w3, a[1], a[2], 0);
    let (w4, w5) = mac(w4, a[1], a[3], c);
    let (w5, w6) = mac(w5, a[2], a[3], 0);
    // Double them.
    let w7 = w6 >> 63;
    let w6 = (w6 << 1) | (w5 >> 63);
    let w5 = (w5 << 1) | (w4 >> 63);
    let w4 = (w4 << 1) | (w3 >> 63);
    let w3 = (w3 << 1) | (w2 >> 63);
    let w2 = (w2 << 1) | (w1 >> 63);
    let w1 = w1 << 1;
    // Add the squares a[i]^2 at positions 2i.
    let (w0, c) = mac(0, a[0], a[0], 0);
    let (w1, c) = adc(w1, 0, c);
    let (w2, c) = mac(w2, a[1], a[1], c);
    let (w3, c) = adc(w3, 0, c);
    let (w4, c) = mac(w4, a[2], a[2], c);
    let (w5, c) = adc(w5, 0, c);
    let (w6, c) = mac(w6, a[3], a[3], c);
    let (w7, _) = adc(w7, 0, c);
    reduce_p([w0, w1, w2, w3, w4, w5, w6, w7])
}

/// Montgomery reduction of an 8-limb value `t < p * 2^256` modulo `p`.
#[inline(always)]
fn reduce_p(t: [u64; 8]) -> Limbs {
    let mut t = t;
    let mut top: u64 = 0;
    for i in 0..4 {
        // q = t[i] (since -p^-1 = 1 mod 2^64); t += q * p * 2^(64 i).
        let q = t[i];
        let mut carry: u64 = 0;
        for (j, &pj) in P.iter().enumerate() {
            let uv = u128::from(t[i + j]) + u128::from(q) * u128::from(pj) + u128::from(carry);
            t[i + j] = uv as u64;
            carry = (uv >> 64) as u64;
        }
        // Propagate the carry into the upper limbs.
        let mut k = i + 4;
        let mut c = carry;
        while k < 8 && c != 0 {
            let (s, o) = t[k].overflowing_add(c);
            t[k] = s;
            c = u64::from(o);
            k += 1;
        }
        top += c;
    }
    let r = [t[4], t[5], t[6], t[7]];
    if top != 0 || !lt(&r, &P) {
        sub_raw(&r, &P).0
    } else {
        r
    }
}

const P0INV: u64 = neg_inv64(P[0]);
const P_R2: Limbs = pow2_mod(512, &P);
const N0INV: u64 = neg_inv64(N[0]);
const N_R2: Limbs = pow2_mod(512, &N);

/// An element of GF(p) in Montgomery form, always below `p`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Fe(pub(crate) Limbs);

impl Fe {
    pub(crate) const ZERO: Fe = Fe([0; 4]);
    /// `1` in Montgomery form (`R mod p`).
    pub(crate) const ONE: Fe = Fe(pow2_mod(256, &P));

    /// The Montgomery form of a canonical integer `x < p`.
    pub(crate) fn from_int(x: &Limbs) -> Fe {
        Fe(mont_mul(x, &P_R2, &P, P0INV))
    }

    /// The canonical integer of this element.
    #[cfg(test)]
    pub(crate) fn to_int(self) -> Limbs {
        mont_mul(&self.0, &[1, 0, 0, 0], &P, P0INV)
    }

    /// Parses 32 big-endian bytes; `None` unless the value is below `p`.
    pub(crate) fn from_be_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let x = limbs_from_be(bytes);
        lt(&x, &P).then(|| Fe::from_int(&x))
    }

    #[inline(always)]
    pub(crate) fn mul(&self, b: &Fe) -> Fe {
        Fe(mont_mul(&self.0, &b.0, &P, P0INV))
    }

    #[inline(always)]
    pub(crate) fn square(&self) -> Fe {
        Fe(sqr_p(&self.0))
    }

    #[inline(always)]
    pub(crate) fn add(&self, b: &Fe) -> Fe {
        Fe(add_mod(&self.0, &b.0, &P))
    }

    #[inline(always)]
    pub(crate) fn sub(&self, b: &Fe) -> Fe {
        Fe(sub_mod(&self.0, &b.0, &P))
    }

    #[inline(always)]
    pub(crate) fn double(&self) -> Fe {
        self.add(self)
    }

    #[inline(always)]
    pub(crate) fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    #[inline(always)]
    pub(crate) fn is_zero(&self) -> bool {
        self.0 == [0; 4]
    }

    /// `self^-1` (`0` for `0`) by Fermat: `self^(p-2)`.
    pub(crate) fn invert(&self) -> Fe {
        let e = sub_raw(&P, &[2, 0, 0, 0]).0;
        pow_window(*self, Fe::ONE, &e, |a, b| a.mul(b), |a| a.square())
    }
}

/// A scalar modulo `n` (plain or Montgomery form, as each function says), always below `n`.
pub(crate) mod scalar {
    use super::{Limbs, N, N_R2, N0INV, mont_mul, pow_window, pow2_mod, sub_raw};

    /// `a * b * 2^-256 mod n`.
    #[inline(always)]
    pub(crate) fn mul(a: &Limbs, b: &Limbs) -> Limbs {
        mont_mul(a, b, &N, N0INV)
    }

    /// `x^-1 * 2^256 mod n` (the Montgomery form of the inverse) for a plain `0 < x < n`.
    pub(crate) fn invert_to_mont(x: &Limbs) -> Limbs {
        let xm = mul(x, &N_R2);
        let one = pow2_mod(256, &N);
        let e = sub_raw(&N, &[2, 0, 0, 0]).0;
        pow_window(xm, one, &e, mul, |a| mul(a, a))
    }
}

/// `base^e` with a fixed 4-bit window, for any Montgomery-form type.
fn pow_window<T: Copy>(
    base: T,
    one: T,
    e: &Limbs,
    mul: impl Fn(&T, &T) -> T,
    sqr: impl Fn(&T) -> T,
) -> T {
    let mut powers = [one; 16];
    for i in 1..16 {
        powers[i] = mul(&powers[i - 1], &base);
    }
    let mut acc = one;
    for limb in e.iter().rev() {
        for nibble in (0..16).rev() {
            for _ in 0..4 {
                acc = sqr(&acc);
            }
            let d = ((limb >> (4 * nibble)) & 0xf) as usize;
            if d != 0 {
                acc = mul(&acc, &powers[d]);
            }
        }
    }
    acc
}

/// 32 big-endian bytes as limbs.
pub(crate) fn limbs_from_be(bytes: &[u8; 32]) -> Limbs {
    let mut out = [0u64; 4];
    for (i, chunk) in bytes.rchunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        out[i] = u64::from_be_bytes(b);
    }
    out
}

/// Limbs as 32 big-endian bytes.
pub(crate) fn limbs_to_be(x: &Limbs) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, chunk) in out.rchunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&x[i].to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn montgomery_constants() {
        assert_eq!(P[0].wrapping_mul(P0INV), u64::MAX, "-p^-1");
        assert_eq!(N[0].wrapping_mul(N0INV), u64::MAX, "-n^-1");
        assert_eq!(P0INV, 1);
        // R mod p for p = 2^256 - 2^224 + 2^192 + 2^96 - 1 is 2^224 - 2^192 - 2^96 + 1.
        assert_eq!(
            Fe::ONE.0,
            [
                1,
                0xffff_ffff_0000_0000,
                0xffff_ffff_ffff_ffff,
                0x0000_0000_ffff_fffe
            ]
        );
        assert_eq!(Fe::ONE.to_int(), [1, 0, 0, 0]);
    }

    #[test]
    fn squaring_matches_multiplication() {
        let mut x = Fe::from_int(&[0x1234, 0x5678, 0x9abc, 0xdef0]);
        for _ in 0..2000 {
            assert_eq!(x.square(), x.mul(&x));
            x = x.mul(&x).add(&Fe::ONE);
        }
        let pm1 = Fe::from_int(&sub_raw(&P, &[1, 0, 0, 0]).0);
        assert_eq!(pm1.square(), pm1.mul(&pm1));
        assert_eq!(pm1.square(), Fe::ONE);
    }

    #[test]
    fn inversion() {
        let mut x = Fe::from_int(&[7, 0, 0, 0]);
        for _ in 0..50 {
            assert_eq!(x.mul(&x.invert()), Fe::ONE);
            x = x.square().add(&Fe::ONE);
        }
        let s = [0xdead_beef, 0x1, 0x2, 0x3];
        let inv = scalar::invert_to_mont(&s);
        // s * (s^-1 R) * R^-1 = 1.
        assert_eq!(scalar::mul(&s, &inv), [1, 0, 0, 0]);
    }

    #[test]
    fn byte_round_trip() {
        let b: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
        assert_eq!(limbs_to_be(&limbs_from_be(&b)), b);
        assert_eq!(limbs_from_be(&b)[0], 0x191a_1b1c_1d1e_1f20);
        assert!(Fe::from_be_bytes(&limbs_to_be(&P)).is_none());
    }
}
