//! Codes, sids and destinations: every keyed hash of the self-hosted provider.
//!
//! One `HMAC-SHA256(server secret, "keyward-otp-verification-v2" || the sid's random bytes)` per
//! verification masks the destination tag inside the sid and draws the code; PSD2 codes and
//! host-chosen codes have their own keyed hashes; destinations are found by a keyed hash.

use ring::hmac;

use super::LocalOtpProvider;
use super::record::{Record, push_transaction, transaction};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::random_array;
use crate::secret::Secret;

/// Bytes of the destination id a sid carries (masked): the record key's part.
pub(super) const TAG_LEN: usize = 10;
/// Random bytes of a sid.
pub(super) const SID_NONCE_LEN: usize = 16 - TAG_LEN;

impl LocalOtpProvider {
    /// The one keyed hash of a verification, `HMAC(secret, "keyward-otp-verification-v2" ||
    /// the sid's random bytes)`: its first [`TAG_LEN`] bytes mask the destination tag in the
    /// sid, its last 16 bytes draw the code (see [`derive_code`](Self::derive_code)), so a
    /// check by sid costs one HMAC for both.
    pub(super) fn sid_prf(&self, sid: &[u8; 16]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"keyward-otp-verification-v2");
        ctx.update(sid.get(..SID_NONCE_LEN).unwrap_or_default());
        let tag = ctx.sign();
        let mut prf = [0u8; 32];
        prf.copy_from_slice(tag.as_ref());
        prf
    }

    /// A new sid for a destination, with its keyed hash: random bytes, then the destination's
    /// tag masked by the keyed hash of them. The record is found from the sid alone, with no
    /// index key, and two sids of one destination look unrelated without the server secret.
    pub(super) fn new_sid(&self, destination: &[u8; 16]) -> Result<([u8; 16], [u8; 32])> {
        let mut sid = [0u8; 16];
        sid[..SID_NONCE_LEN].copy_from_slice(&random_array::<SID_NONCE_LEN>(self.rng.as_ref())?);
        let prf = self.sid_prf(&sid);
        for i in 0..TAG_LEN {
            sid[SID_NONCE_LEN + i] = destination[i] ^ prf[i];
        }
        Ok((sid, prf))
    }

    /// The destination tag a sid carries, given its keyed hash.
    pub(super) fn sid_tag(sid: &[u8; 16], prf: &[u8; 32]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        for i in 0..TAG_LEN {
            tag[i] = sid[SID_NONCE_LEN + i] ^ prf[i];
        }
        tag
    }

    /// A keyed hash of a destination, so neither keys nor values contain phone numbers or
    /// emails.
    pub(super) fn destination_id(&self, to: &str) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"keyward-otp-destination-v1");
        ctx.update(to.as_bytes());
        let tag = ctx.sign();
        let mut id = [0u8; 16];
        id.copy_from_slice(tag.as_ref().get(..16).unwrap_or(&[0u8; 16]));
        id
    }

    /// The keyed hash kept for a host-chosen code.
    pub(super) fn custom_hash(
        &self,
        sid: &[u8; 16],
        code: &[u8],
        txn: Option<(&str, &str)>,
    ) -> [u8; 32] {
        let mut msg = self.custom_message(sid, code, txn);
        let tag = hmac::sign(&self.key, &msg);
        zeroize::Zeroize::zeroize(&mut msg);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub(super) fn custom_message(
        &self,
        sid: &[u8; 16],
        code: &[u8],
        txn: Option<(&str, &str)>,
    ) -> Vec<u8> {
        let mut msg = Vec::with_capacity(64 + code.len());
        msg.extend_from_slice(b"keyward-otp-custom-v2");
        msg.extend_from_slice(sid);
        msg.push(code.len() as u8);
        msg.extend_from_slice(code);
        push_transaction(&mut msg, txn);
        msg
    }

    /// Whether `code`, for the transaction `txn` the check names, is the record's: a code
    /// issued for one amount and payee never matches for another (or for none). One HMAC
    /// (none when `prf`, the sid's keyed hash, is known already and there is no transaction).
    pub(super) fn code_matches(
        &self,
        record: &Record,
        code: &[u8],
        txn: Option<(&str, &str)>,
        prf: Option<&[u8; 32]>,
    ) -> Result<bool> {
        match &record.custom_hash {
            Some(hash) => {
                let mut msg = self.custom_message(&record.sid, code, txn);
                let ok = hmac::verify(&self.key, &msg, hash).is_ok(); // constant time
                zeroize::Zeroize::zeroize(&mut msg);
                Ok(ok)
            }
            None => {
                let prf = match prf {
                    Some(prf) => *prf,
                    None => self.sid_prf(&record.sid),
                };
                let expected = self.derive_digits(&record.sid, &prf, txn, record.code_len)?;
                // The length is public (the configuration's); the digits compare in constant time.
                Ok(expected.as_slice().len() == code.len()
                    && crate::secret::subtle_eq::constant_time_eq(expected.as_slice(), code))
            }
        }
    }

    /// The code of a verification: `len` decimal digits from a 64-bit word below the largest
    /// multiple of `10^len`, reduced modulo `10^len` (rejection sampling: uniform). Without a
    /// transaction the words are the last two of the sid's keyed hash `prf` (no further HMAC);
    /// with one (or if both words are rejected, below 10^-18 for 10 digits) they come from
    /// `HMAC-SHA256(server secret, "keyward-otp-code-v2" || round || sid || transaction)`, four
    /// words per round.
    pub(super) fn derive_code(
        &self,
        sid: &[u8; 16],
        prf: &[u8; 32],
        txn: Option<(&str, &str)>,
        len: u8,
    ) -> Result<Secret> {
        let digits = self.derive_digits(sid, prf, txn, len)?;
        Ok(Secret::new(digits.as_slice()))
    }

    /// [`derive_code`](Self::derive_code)'s digits, on the stack (a check compares them
    /// without allocating); zeroized when dropped.
    fn derive_digits(
        &self,
        sid: &[u8; 16],
        prf: &[u8; 32],
        txn: Option<(&str, &str)>,
        len: u8,
    ) -> Result<Digits> {
        let len = len.clamp(1, 19);
        let bound = 10u64.pow(u32::from(len));
        let limit = (u64::MAX / bound) * bound;
        let digits_of = |words: &[u8]| -> Option<Digits> {
            for word in words.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(word);
                let v = u64::from_be_bytes(b);
                if v < limit {
                    let mut n = v % bound;
                    let mut digits = Digits {
                        bytes: [b'0'; 19],
                        len: usize::from(len),
                    };
                    for d in digits.bytes[..usize::from(len)].iter_mut().rev() {
                        *d = b'0' + (n % 10) as u8;
                        n /= 10;
                    }
                    return Some(digits);
                }
            }
            None
        };
        if txn.is_none()
            && let Some(code) = digits_of(prf.get(16..).unwrap_or_default())
        {
            return Ok(code);
        }
        for round in 0u8..=u8::MAX {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(b"keyward-otp-code-v2");
            ctx.update(&[round]);
            ctx.update(sid);
            if txn.is_some() {
                let mut t = Vec::new();
                push_transaction(&mut t, txn);
                ctx.update(&t);
            }
            if let Some(code) = digits_of(ctx.sign().as_ref()) {
                return Ok(code);
            }
        }
        Err(Error::new(
            ErrorKind::Random,
            "code derivation found no digits",
        ))
    }

    /// The record's code for delivery: derived, or the host-chosen one passed again.
    pub(super) fn code_for(
        &self,
        record: &Record,
        custom: Option<&Secret>,
        prf: Option<&[u8; 32]>,
    ) -> Result<Secret> {
        match (custom, &record.custom_hash) {
            (Some(code), Some(_)) => Ok(code.clone()),
            (None, None) => {
                let prf = match prf {
                    Some(prf) => *prf,
                    None => self.sid_prf(&record.sid),
                };
                self.derive_code(
                    &record.sid,
                    &prf,
                    transaction(&record.amount, &record.payee),
                    record.code_len,
                )
            }
            _ => Err(Error::invalid_input(
                "this verification uses a custom code: pass it again to re-send",
            )),
        }
    }
}

/// A derived code's digits (at most 19), zeroized when dropped.
struct Digits {
    bytes: [u8; 19],
    len: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Drop for Digits {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

/// The 16 bytes of a sid (`VE` and 32 hex digits, either case).
pub(super) fn parse_sid(s: &str) -> Option<[u8; 16]> {
    crate::hex::decode_array(s.strip_prefix("VE")?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::otp::Outbox;
    use crate::otp::local::LocalOtpProvider;
    use crate::secret::Secret;
    use crate::store::MemoryStore;
    use crate::testing::SeededRandom;

    fn provider() -> LocalOtpProvider {
        LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([1u8; 32]),
        )
        .env(crate::Env::system().with_random(Arc::new(SeededRandom::new(b"unit"))))
        .build()
        .unwrap()
    }

    #[test]
    fn derived_digits_are_uniform_and_reproducible() {
        let p = provider();
        let mut counts = [0u32; 10];
        for i in 0..2_000u32 {
            let mut sid = [0u8; 16];
            sid[..4].copy_from_slice(&i.to_be_bytes());
            let prf = p.sid_prf(&sid);
            let code = p.derive_code(&sid, &prf, None, 10).unwrap();
            let again = p.derive_code(&sid, &p.sid_prf(&sid), None, 10).unwrap();
            assert_eq!(code, again);
            assert_eq!(code.expose().len(), 10);
            for d in code.expose() {
                counts[usize::from(d - b'0')] += 1;
            }
        }
        // 20,000 digits: each expected 2,000; a biased generator would drift well outside.
        for c in counts {
            assert!((1_800..=2_200).contains(&c), "{counts:?}");
        }
        // Leading zeros are kept: every length is exact, with and without a transaction.
        for len in 4..=10u8 {
            for i in 0..200u32 {
                let mut sid = [9u8; 16];
                sid[..4].copy_from_slice(&i.to_be_bytes());
                let prf = p.sid_prf(&sid);
                for txn in [None, Some(("1 EUR", "x"))] {
                    let code = p.derive_code(&sid, &prf, txn, len).unwrap();
                    assert_eq!(code.expose().len(), usize::from(len));
                }
            }
        }
    }

    #[test]
    fn codes_bind_sid_and_transaction() {
        let p = provider();
        let a = [0u8; 16];
        let mut b = a;
        b[5] = 1;
        let (pa, pb) = (p.sid_prf(&a), p.sid_prf(&b));
        let code = p.derive_code(&a, &pa, None, 10).unwrap();
        assert_ne!(code, p.derive_code(&b, &pb, None, 10).unwrap());
        let shop = p
            .derive_code(&a, &pa, Some(("10 EUR", "shop")), 10)
            .unwrap();
        assert_ne!(code, shop);
        assert_ne!(
            shop,
            p.derive_code(&a, &pa, Some(("10 EU", "Rshop")), 10)
                .unwrap()
        );
        let h = p.custom_hash(&a, b"123456", None);
        assert_ne!(h, p.custom_hash(&b, b"123456", None));
        assert_ne!(h, p.custom_hash(&a, b"123457", None));
    }

    #[test]
    fn sids_carry_their_destination_unlinkably() {
        let p = provider();
        let d = p.destination_id("+15017122661");
        let (a, pa) = p.new_sid(&d).unwrap();
        let (b, pb) = p.new_sid(&d).unwrap();
        assert_ne!(a, b);
        assert_ne!(
            a[SID_NONCE_LEN..],
            b[SID_NONCE_LEN..],
            "the masked tags differ too"
        );
        assert_eq!(pa, p.sid_prf(&a));
        assert_eq!(LocalOtpProvider::sid_tag(&a, &pa), d[..TAG_LEN]);
        assert_eq!(LocalOtpProvider::sid_tag(&b, &pb), d[..TAG_LEN]);
        let other = LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([2u8; 32]),
        )
        .build()
        .unwrap();
        assert_ne!(
            LocalOtpProvider::sid_tag(&a, &other.sid_prf(&a)),
            d[..TAG_LEN],
            "another secret reads another tag"
        );
    }

    #[test]
    fn sids_parse_strictly() {
        assert!(parse_sid("VE0123456789abcdef0123456789ABCDEF").is_some());
        for bad in [
            "VE42",
            "XX0123456789abcdef0123456789abcdef",
            "VE0123456789abcdef0123456789abcdeg",
            "VE0123456789abcdef0123456789abcdef0",
        ] {
            assert!(parse_sid(bad).is_none(), "{bad}");
        }
    }
}
