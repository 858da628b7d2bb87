//! Fixed-base comb tables: for a point `P` and a window width `w`, the affine points
//! `j * 2^(w i) * P` for every window `i` and `1 <= j <= 2^(w-1)`. A scalar recoded into signed
//! base-`2^w` digits is then multiplied by one mixed addition per nonzero digit and no doubling
//! at all, and the two scalars of a verification share one accumulator.

use super::field::Limbs;
use super::point::{Affine, Jacobian, batch_to_affine};

/// Smallest and largest window widths a table may use.
pub(crate) const MIN_WINDOW: u8 = 2;
pub(crate) const MAX_WINDOW: u8 = 8;

/// The precomputed multiples of one point.
#[derive(Clone, Debug)]
pub(crate) struct Comb {
    window: u8,
    entries: Vec<Affine>,
}

/// Number of signed digits of width `w` that every scalar below `2^256` needs: the top digit
/// must absorb the last carry, so `w * windows >= 257`.
pub(crate) const fn windows(w: u8) -> usize {
    257_usize.div_ceil(w as usize)
}

impl Comb {
    /// Builds the table of `p` with window width `w` (`MIN_WINDOW..=MAX_WINDOW`). `None` only if
    /// a multiple is the identity, which cannot happen for a point of the prime order `n` (every
    /// point of P-256).
    pub(crate) fn build(p: &Affine, w: u8) -> Option<Comb> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&w) {
            return None;
        }
        let half = 1usize << (w - 1);
        let count = windows(w);
        let mut jac = Vec::with_capacity(count * half);
        let mut base = p.to_jacobian();
        for _ in 0..count {
            // base, 2 base, ..., half * base
            jac.push(base);
            let mut e = base.double();
            jac.push(e);
            for _ in 3..=half {
                e = e.add(&base);
                jac.push(e);
            }
            // The next window's base: 2^w * base = 2 * (half * base).
            base = e.double();
        }
        let entries = batch_to_affine(&jac)?;
        Some(Comb { window: w, entries })
    }

    /// A table with no points, which every verification refuses (only for the impossible case of
    /// a failed build: the verifier fails closed).
    pub(crate) fn empty() -> Comb {
        Comb {
            window: MIN_WINDOW,
            entries: Vec::new(),
        }
    }

    /// Whether the table holds every multiple (false only for [`Comb::empty`]).
    pub(crate) fn is_complete(&self) -> bool {
        self.entries.len() == windows(self.window) << (self.window - 1)
    }

    pub(crate) fn window(&self) -> u8 {
        self.window
    }

    /// Bytes held by the points.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<Affine>()
    }

    /// `acc += k * P` for a scalar `k < 2^256`.
    #[inline]
    pub(crate) fn accumulate(&self, acc: &mut Jacobian, k: &Limbs) {
        let w = u32::from(self.window);
        let half = 1i32 << (w - 1);
        let full = 1i32 << w;
        let mask = (1u64 << w) - 1;
        let mut carry = 0i32;
        for (i, row) in self.entries.chunks_exact(half as usize).enumerate() {
            let d = bits(k, i * w as usize, mask) as i32 + carry;
            let d = if d > half {
                carry = 1;
                d - full
            } else {
                carry = 0;
                d
            };
            if d > 0 {
                if let Some(pt) = row.get(d as usize - 1) {
                    *acc = acc.add_affine(pt);
                }
            } else if d < 0
                && let Some(pt) = row.get((-d) as usize - 1)
            {
                *acc = acc.add_affine(&pt.neg());
            }
        }
        debug_assert_eq!(carry, 0);
    }
}

/// The bits `at .. at + width` of `k` (zero beyond bit 255), `mask = 2^width - 1`, width <= 8.
#[inline(always)]
fn bits(k: &Limbs, at: usize, mask: u64) -> u64 {
    let limb = at / 64;
    let off = at % 64;
    let lo = k.get(limb).map_or(0, |l| l >> off);
    let hi = if off == 0 {
        0
    } else {
        k.get(limb + 1).map_or(0, |l| l << (64 - off))
    };
    (lo | hi) & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p256v::field::{N, sub_raw};

    /// `k * P` by double-and-add, the reference.
    fn ladder(p: &Affine, k: &Limbs) -> Jacobian {
        let mut acc = Jacobian::IDENTITY;
        for i in (0..256).rev() {
            acc = acc.double();
            if (k[i / 64] >> (i % 64)) & 1 == 1 {
                acc = acc.add_affine(p);
            }
        }
        acc
    }

    #[test]
    fn comb_matches_double_and_add_for_every_window() {
        let g = Affine::generator();
        let n_minus_1 = sub_raw(&N, &[1, 0, 0, 0]).0;
        let scalars: [Limbs; 6] = [
            [1, 0, 0, 0],
            [2, 0, 0, 0],
            n_minus_1,
            [u64::MAX; 4],
            [
                0x0123_4567_89ab_cdef,
                0xfedc_ba98_7654_3210,
                0x1111,
                0x8000_0000_0000_0000,
            ],
            [0x8080_8080_8080_8080; 4],
        ];
        for w in MIN_WINDOW..=MAX_WINDOW {
            let comb = Comb::build(&g, w).unwrap();
            assert_eq!(comb.entries.len(), windows(w) << (w - 1));
            for k in &scalars {
                let mut acc = Jacobian::IDENTITY;
                comb.accumulate(&mut acc, k);
                assert_eq!(acc.to_affine(), ladder(&g, k).to_affine(), "w={w} k={k:x?}");
            }
            // n * G is the identity; (n - 1) * G = -G.
            let mut acc = Jacobian::IDENTITY;
            comb.accumulate(&mut acc, &N);
            assert!(acc.is_identity(), "w={w}");
            let mut acc = Jacobian::IDENTITY;
            comb.accumulate(&mut acc, &n_minus_1);
            assert_eq!(acc.to_affine(), Some(g.neg()));
        }
        assert!(Comb::build(&g, 1).is_none());
        assert!(Comb::build(&g, 9).is_none());
    }
}
