//! The pure algorithms: HOTP (RFC 4226), TOTP (RFC 6238) and the RFC 4648 base32 that carries
//! their secrets. No state, no clock: the time step is an argument.

use ring::hmac;

use super::TotpAlgorithm;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Shortest accepted shared secret: 160 bits, as RFC 4226 section 4 requires (R6).
pub const MIN_SECRET_LEN: usize = 20;

/// The HOTP value of `secret` at `counter`: RFC 4226's HMAC, dynamic truncation and the last
/// `digits` decimal digits (6 to 8 here), zero-padded.
///
/// ```
/// use keyward::totp::{TotpAlgorithm, hotp};
/// // RFC 4226 appendix D, count 0.
/// let code = hotp(b"12345678901234567890", 0, 6, TotpAlgorithm::Sha1)?;
/// assert_eq!(code.expose_str(), Some("755224"));
/// # Ok::<(), keyward::Error>(())
/// ```
pub fn hotp(secret: &[u8], counter: u64, digits: u8, algorithm: TotpAlgorithm) -> Result<Secret> {
    if !(6..=8).contains(&digits) {
        return Err(Error::invalid_input("a code has 6 to 8 digits"));
    }
    let key = hmac::Key::new(algorithm.hmac(), secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation (RFC 4226 section 5.3): the low nibble of the last byte is the offset.
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let word = mac
        .get(offset..offset + 4)
        .ok_or_else(|| Error::invalid_input("hmac output too short"))?;
    let binary = u32::from_be_bytes([word[0] & 0x7f, word[1], word[2], word[3]]);
    let modulus = 10u32.pow(u32::from(digits));
    let value = binary % modulus;
    Ok(Secret::from(format!(
        "{value:0width$}",
        width = usize::from(digits)
    )))
}

/// The TOTP time step of `unix_seconds` for a `period` (RFC 6238's `T = (now - T0) / X`, with
/// `T0 = 0`). A zero period is treated as one second.
pub fn time_step(unix_seconds: u64, period: u32) -> u64 {
    unix_seconds / u64::from(period.max(1))
}

/// The TOTP value of `secret` at `unix_seconds`: HOTP of the time step.
///
/// ```
/// use keyward::totp::{TotpAlgorithm, totp_at};
/// // RFC 6238 appendix B, SHA-256, T = 59.
/// let code = totp_at(b"12345678901234567890123456789012", 59, 30, 8, TotpAlgorithm::Sha256)?;
/// assert_eq!(code.expose_str(), Some("46119246"));
/// # Ok::<(), keyward::Error>(())
/// ```
pub fn totp_at(
    secret: &[u8],
    unix_seconds: u64,
    period: u32,
    digits: u8,
    algorithm: TotpAlgorithm,
) -> Result<Secret> {
    hotp(secret, time_step(unix_seconds, period), digits, algorithm)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, upper case, without padding (the form authenticator apps and `otpauth://`
/// URIs use).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            let index = ((n >> (35 - 5 * i)) & 0x1f) as usize;
            out.push(char::from(BASE32[index]));
        }
    }
    out
}

/// Decodes RFC 4648 base32: case-insensitive, spaces and `-` ignored (as users type secrets),
/// padding optional. `None` for any other character or an impossible length.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    let mut padding = false;
    let mut symbols = 0usize;
    for c in text.bytes() {
        let value = match c {
            b' ' | b'-' => continue,
            b'=' => {
                padding = true;
                continue;
            }
            _ if padding => return None,
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        symbols += 1;
        acc = (acc << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // A valid final group has 2, 4, 5 or 7 symbols, and the leftover bits are zero.
    if matches!(symbols % 8, 1 | 3 | 6) || acc & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 appendix D: the secret "12345678901234567890", counts 0 to 9.
    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (count, want) in expected.iter().enumerate() {
            let code = hotp(
                b"12345678901234567890",
                count as u64,
                6,
                TotpAlgorithm::Sha1,
            )
            .unwrap();
            assert_eq!(code.expose_str(), Some(*want), "count {count}");
        }
    }

    /// RFC 6238 appendix B: every time and mode of the table (8 digits, 30 s steps; the seeds
    /// are the ASCII digits repeated to 20, 32 and 64 bytes).
    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, want1, want256, want512) in table {
            for (secret, alg, want) in [
                (sha1, TotpAlgorithm::Sha1, want1),
                (sha256, TotpAlgorithm::Sha256, want256),
                (sha512, TotpAlgorithm::Sha512, want512),
            ] {
                let code = totp_at(secret, t, 30, 8, alg).unwrap();
                assert_eq!(code.expose_str(), Some(want), "t {t} {alg:?}");
            }
        }
    }

    #[test]
    fn digits_outside_6_to_8_are_refused() {
        assert!(hotp(b"12345678901234567890", 0, 5, TotpAlgorithm::Sha1).is_err());
        assert!(hotp(b"12345678901234567890", 0, 9, TotpAlgorithm::Sha1).is_err());
        let seven = hotp(b"12345678901234567890", 0, 7, TotpAlgorithm::Sha1).unwrap();
        assert_eq!(seven.expose_str(), Some("4755224"));
    }

    /// RFC 4648 section 10.
    #[test]
    fn base32_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert_eq!(
            base32_encode(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn base32_rejects_garbage() {
        for bad in ["M", "MZX", "MZXW6Y", "MZ1", "MZ=X", "MZ!"] {
            assert_eq!(base32_decode(bad), None, "{bad}");
        }
        // Non-zero leftover bits.
        assert_eq!(base32_decode("MY"), Some(b"f".to_vec()));
        assert_eq!(base32_decode("MZ"), None);
        assert_eq!(base32_decode("M7"), None);
    }

    proptest::proptest! {
        #[test]
        fn base32_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let text = base32_encode(&bytes);
            proptest::prop_assert_eq!(base32_decode(&text), Some(bytes));
        }

        #[test]
        fn base32_decode_never_panics(s in "\\PC{0,80}") {
            let _ = base32_decode(&s);
        }
    }
}
