//! P-256 points: affine (never the identity) and Jacobian (`x = X/Z^2`, `y = Y/Z^3`, `Z = 0` is
//! the identity), with the curve's `a = -3`.
//!
//! The additions handle every special case (either input the identity, equal inputs, opposite
//! inputs) by branching: the inputs are public.

use super::field::{Fe, Limbs};

/// `b` of `y^2 = x^3 - 3x + b`.
const B: Limbs = [
    0x3bce_3c3e_27d2_604b,
    0x651d_06b0_cc53_b0f6,
    0xb3eb_bd55_7698_86bc,
    0x5ac6_35d8_aa3a_93e7,
];

/// The generator's affine coordinates.
pub(crate) const GX: Limbs = [
    0xf4a1_3945_d898_c296,
    0x7703_7d81_2deb_33a0,
    0xf8bc_e6e5_63a4_40f2,
    0x6b17_d1f2_e12c_4247,
];
pub(crate) const GY: Limbs = [
    0xcbb6_4068_37bf_51f5,
    0x2bce_3357_6b31_5ece,
    0x8ee7_eb4a_7c0f_9e16,
    0x4fe3_42e2_fe1a_7f9b,
];

/// A point in affine coordinates; never the identity.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Affine {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
}

/// A point in Jacobian coordinates; `z = 0` is the identity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
    pub(crate) z: Fe,
}

impl Affine {
    /// The point `(x, y)` if it is on the curve.
    pub(crate) fn new(x: Fe, y: Fe) -> Option<Affine> {
        let b = Fe::from_int(&B);
        let rhs = x.square().mul(&x).sub(&x.double().add(&x)).add(&b);
        (y.square() == rhs).then_some(Affine { x, y })
    }

    /// The generator.
    pub(crate) fn generator() -> Affine {
        Affine {
            x: Fe::from_int(&GX),
            y: Fe::from_int(&GY),
        }
    }

    pub(crate) fn to_jacobian(self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: self.y,
            z: Fe::ONE,
        }
    }

    #[inline(always)]
    pub(crate) fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: self.y.neg(),
        }
    }
}

impl Jacobian {
    pub(crate) const IDENTITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    #[inline(always)]
    pub(crate) fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    /// `2 * self` (dbl-2001-b, `a = -3`): 3M + 5S.
    pub(crate) fn double(&self) -> Jacobian {
        if self.is_identity() || self.y.is_zero() {
            return Jacobian::IDENTITY;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().double().double().double();
        let y3 = alpha.mul(&beta4.sub(&x3)).sub(&gamma2_8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `self + q` for an affine `q` (madd-2004-hmv): 8M + 3S.
    #[inline(always)]
    pub(crate) fn add_affine(&self, q: &Affine) -> Jacobian {
        if self.is_identity() {
            return q.to_jacobian();
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = self.x.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&hhh));
        let z3 = self.z.mul(&h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `self + q` for Jacobian `q` (add-1998-cmo-2): 12M + 4S.
    pub(crate) fn add(&self, q: &Jacobian) -> Jacobian {
        if self.is_identity() {
            return *q;
        }
        if q.is_identity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = q.x.mul(&z1z1);
        let s1 = self.y.mul(&q.z).mul(&z2z2);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::IDENTITY
            };
        }
        let hh = h.square();
        let hhh = h.mul(&hh);
        let v = u1.mul(&hh);
        let x3 = r.square().sub(&hhh).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&hhh));
        let z3 = self.z.mul(&q.z).mul(&h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// The affine form, `None` for the identity (one inversion; tests and table building only).
    #[cfg(test)]
    pub(crate) fn to_affine(self) -> Option<Affine> {
        if self.is_identity() {
            return None;
        }
        let zi = self.z.invert();
        let zi2 = zi.square();
        Some(Affine {
            x: self.x.mul(&zi2),
            y: self.y.mul(&zi2).mul(&zi),
        })
    }
}

/// The affine forms of `points` with one inversion (Montgomery's trick); `None` if any is the
/// identity.
pub(crate) fn batch_to_affine(points: &[Jacobian]) -> Option<Vec<Affine>> {
    if points.iter().any(Jacobian::is_identity) {
        return None;
    }
    // prefix[i] = z_0 * ... * z_i
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = Fe::ONE;
    for p in points {
        acc = acc.mul(&p.z);
        prefix.push(acc);
    }
    let mut inv = acc.invert();
    let mut out = vec![
        Affine {
            x: Fe::ZERO,
            y: Fe::ZERO
        };
        points.len()
    ];
    for i in (0..points.len()).rev() {
        // inv = (z_0 ... z_i)^-1
        let zi = if i == 0 { inv } else { inv.mul(&prefix[i - 1]) };
        inv = inv.mul(&points[i].z);
        let zi2 = zi.square();
        out[i] = Affine {
            x: points[i].x.mul(&zi2),
            y: points[i].y.mul(&zi2).mul(&zi),
        };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_on_the_curve() {
        let g = Affine::generator();
        assert!(Affine::new(g.x, g.y).is_some());
        assert!(Affine::new(g.x, g.y.add(&Fe::ONE)).is_none());
    }

    #[test]
    fn group_laws() {
        let g = Affine::generator().to_jacobian();
        let g2 = g.double();
        let g3a = g2.add(&g);
        let g3b = g2.add_affine(&Affine::generator());
        let g3c = g.add(&g2);
        assert_eq!(g3a.to_affine(), g3b.to_affine());
        assert_eq!(g3a.to_affine(), g3c.to_affine());
        // g + g through the addition formulas doubles.
        assert_eq!(g.add(&g).to_affine(), g2.to_affine());
        assert_eq!(
            g.add_affine(&Affine::generator()).to_affine(),
            g2.to_affine()
        );
        // g + (-g) is the identity.
        assert!(g.add_affine(&Affine::generator().neg()).is_identity());
        let all = [g, g2, g3a];
        let batch = batch_to_affine(&all).unwrap();
        for (j, a) in all.iter().zip(&batch) {
            assert_eq!(j.to_affine().as_ref(), Some(a));
            assert!(Affine::new(a.x, a.y).is_some());
        }
        assert!(batch_to_affine(&[g, Jacobian::IDENTITY]).is_none());
    }
}
