//! The DER `ECDSA-Sig-Value` (`SEQUENCE { r INTEGER, s INTEGER }`) as WebAuthn sends it, parsed
//! with exactly the rules of ring 0.17's `ECDSA_P256_SHA256_ASN1`, so both accept the same bytes:
//!
//! - a tag byte whose low five bits are all set (high tag number form) is refused; tags must be
//!   `0x30` and `0x02` exactly;
//! - lengths: short form, `0x81 nn` with `nn >= 128`, `0x82 nn nn` with a value `>= 256`; no
//!   other form;
//! - nothing may follow the integers inside the sequence, nor the sequence itself;
//! - an integer is non-empty, not negative (top bit of the first byte clear), and minimally
//!   encoded (one leading zero only when the next byte's top bit is set); zero is refused;
//! - after its leading zero is dropped, an integer has at most 32 bytes and is below `n`.

use super::field::{Limbs, N, lt};

/// A tiny reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn at_end(&self) -> bool {
        self.0.is_empty()
    }

    /// One tag-length-value; returns the value if the tag is `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let actual = self.byte()?;
        if actual & 0x1f == 0x1f {
            return None;
        }
        let len = match self.byte()? {
            n if n & 0x80 == 0 => usize::from(n),
            0x81 => {
                let b = self.byte()?;
                if b < 128 {
                    return None;
                }
                usize::from(b)
            }
            0x82 => {
                let hi = usize::from(self.byte()?);
                let lo = usize::from(self.byte()?);
                let len = (hi << 8) | lo;
                if len < 256 {
                    return None;
                }
                len
            }
            _ => return None,
        };
        let value = self.bytes(len)?;
        (actual == tag).then_some(value)
    }

    /// A positive INTEGER's big-endian magnitude without its sign byte.
    fn positive_integer(&mut self) -> Option<&'a [u8]> {
        let value = self.expect(0x02)?;
        let magnitude = match value.split_first()? {
            (0, rest) => match rest.first() {
                None => value,
                Some(&second) if second & 0x80 != 0 => rest,
                Some(_) => return None,
            },
            (first, _) if first & 0x80 == 0 => value,
            _ => return None,
        };
        // Zero (a lone 0x00) is not positive.
        (magnitude.first() != Some(&0)).then_some(magnitude)
    }
}

/// `1 <= x < n` from big-endian bytes of at most 32 bytes.
fn scalar(bytes: &[u8]) -> Option<Limbs> {
    if bytes.is_empty() || bytes.len() > 32 {
        return None;
    }
    let mut padded = [0u8; 32];
    padded[32 - bytes.len()..].copy_from_slice(bytes);
    let x = super::field::limbs_from_be(&padded);
    (x != [0; 4] && lt(&x, &N)).then_some(x)
}

/// `(r, s)` from a DER signature, or `None` wherever ring would refuse it.
pub(crate) fn parse_signature(sig: &[u8]) -> Option<(Limbs, Limbs)> {
    let mut outer = Reader(sig);
    let seq = outer.expect(0x30)?;
    if !outer.at_end() {
        return None;
    }
    let mut inner = Reader(seq);
    let r = inner.positive_integer()?;
    let s = inner.positive_integer()?;
    if !inner.at_end() {
        return None;
    }
    Some((scalar(r)?, scalar(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, r.len() as u8];
        body.extend_from_slice(r);
        body.extend_from_slice(&[0x02, s.len() as u8]);
        body.extend_from_slice(s);
        let mut out = vec![0x30, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn accepts_minimal_positive_integers() {
        assert_eq!(
            parse_signature(&sig(&[1], &[0x7f])),
            Some(([1, 0, 0, 0], [0x7f, 0, 0, 0]))
        );
        assert_eq!(
            parse_signature(&sig(&[0, 0x80], &[1, 0])),
            Some(([0x80, 0, 0, 0], [0x100, 0, 0, 0]))
        );
    }

    #[test]
    fn refuses_what_ring_refuses() {
        let cases: &[Vec<u8>] = &[
            vec![],
            sig(&[0], &[1]),                     // r = 0
            sig(&[1], &[]),                      // empty integer
            sig(&[0, 1], &[1]),                  // non-minimal
            sig(&[0x80], &[1]),                  // negative
            sig(&[0, 0], &[1]),                  // zero with a leading zero
            sig(&[1; 33], &[1]),                 // longer than 32 bytes
            sig(&[0xff; 32], &[1]),              // above n (with the sign byte missing: negative)
            [sig(&[1], &[1]), vec![0]].concat(), // trailing byte
        ];
        for c in cases {
            assert_eq!(parse_signature(c), None, "{c:02x?}");
        }
        let mut n_bytes = vec![0u8];
        n_bytes.extend_from_slice(&super::super::field::limbs_to_be(&N));
        assert_eq!(parse_signature(&sig(&n_bytes, &[1])), None, "r = n");
        // Long-form length below 128.
        assert_eq!(parse_signature(&[0x30, 0x81, 0x06, 2, 1, 1, 2, 1, 1]), None);
        // Wrong tags.
        assert_eq!(parse_signature(&[0x31, 0x06, 2, 1, 1, 2, 1, 1]), None);
        assert_eq!(parse_signature(&[0x30, 0x06, 3, 1, 1, 2, 1, 1]), None);
        assert!(parse_signature(&[0x30, 0x06, 2, 1, 1, 2, 1, 1]).is_some());
    }
}
