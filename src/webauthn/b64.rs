//! Base64url bytes for the WebAuthn JSON forms: unpadded out, padded or unpadded in.
//!
//! Decoding is done here rather than through the `base64` crate's engines: every field of a
//! browser's response is base64url, and for these short strings the engines' general machinery
//! (length estimate, zeroed buffer, chunk bookkeeping) cost about as much as the decoding. The
//! accepted language is exactly the one of `base64`'s `URL_SAFE` engine for text ending in `=`
//! (canonical padding to a multiple of 4) and of `URL_SAFE_NO_PAD` otherwise (no `=` anywhere),
//! with non-zero trailing bits refused in both; the tests check this against `base64` itself.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Marks a byte that is not a base64url symbol (including `=`) in [`DECODE`].
const INVALID: u8 = 0xFF;

/// The 6-bit value of every base64url symbol, [`INVALID`] for every other byte.
static DECODE: [u8; 256] = decode_table();

const fn decode_table() -> [u8; 256] {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// Set in a [`PLACED`] entry for a non-symbol.
const NOT_A_SYMBOL: u32 = 1 << 31;

/// For each position in a group of four, every byte's 6-bit value already shifted to its place
/// in the group's 24 bits ([`NOT_A_SYMBOL`] for a non-symbol), so a group decodes with four
/// lookups and three ORs.
static PLACED: [[u32; 256]; 4] = placed_tables();

const fn placed_tables() -> [[u32; 256]; 4] {
    let mut tables = [[NOT_A_SYMBOL; 256]; 4];
    let mut byte = 0;
    while byte < 256 {
        let value = DECODE[byte];
        if value != INVALID {
            let mut place = 0;
            while place < 4 {
                tables[place][byte] = (value as u32) << (18 - 6 * place);
                place += 1;
            }
        }
        byte += 1;
    }
    tables
}

/// Decodes whole groups of four symbols from the front of `text` into `out` while they are
/// symbols and `out` has a spare byte after the group (each group is stored as four bytes, the
/// fourth overwritten by the next); returns how many groups. The caller decodes the rest.
fn decode_groups(text: &[u8], out: &mut [u8]) -> usize {
    let [p0, p1, p2, p3] = &PLACED;
    let mut k = 0;
    while let (Some(&[a, b, c, d]), Some(dst)) = (
        text.get(4 * k..4 * k + 4),
        out.get_mut(3 * k..3 * k + 4)
            .and_then(|d| <&mut [u8; 4]>::try_from(d).ok()),
    ) {
        let n = p0[usize::from(a)] | p1[usize::from(b)] | p2[usize::from(c)] | p3[usize::from(d)];
        if n & NOT_A_SYMBOL != 0 {
            break;
        }
        *dst = (n << 8).to_be_bytes();
        k += 1;
    }
    k
}

/// The symbols of `text` without its padding, and the decoded length; `None` when the padding
/// or the length is wrong (padding must make the length a multiple of 4; one symbol alone in
/// the last group encodes no byte).
fn symbols(text: &[u8]) -> Option<(&[u8], usize)> {
    let data = match text.strip_suffix(b"=") {
        Some(rest) => {
            if !text.len().is_multiple_of(4) {
                return None;
            }
            // A third `=` stays in the symbols and is refused there as a non-symbol.
            rest.strip_suffix(b"=").unwrap_or(rest)
        }
        None => text,
    };
    let whole = data.len() / 4 * 3;
    let len = match data.len() % 4 {
        0 => whole,
        2 => whole + 1,
        3 => whole + 2,
        _ => return None,
    };
    Some((data, len))
}

/// Decodes `data` (symbols only, as [`symbols`] returns them) into `out`, which must be exactly
/// the decoded length. `None` for a non-symbol or non-zero trailing bits.
fn decode_symbols(data: &[u8], out: &mut [u8]) -> Option<()> {
    let value = |b: &u8| DECODE[usize::from(*b)];
    // Every valid symbol is below 64; OR-ing them all keeps a bit of 0x40 set if one is not.
    let mut seen = 0u8;
    let fast = decode_groups(data, out);
    let mut groups = data.get(4 * fast..)?.chunks_exact(4);
    let mut outs = out.get_mut(3 * fast..)?.chunks_exact_mut(3);
    for (group, o) in (&mut groups).zip(&mut outs) {
        if let ([a, b, c, d], [x, y, z]) = (group, o) {
            let (a, b, c, d) = (value(a), value(b), value(c), value(d));
            seen |= a | b | c | d;
            let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
            let [_, n2, n1, n0] = n.to_be_bytes();
            (*x, *y, *z) = (n2, n1, n0);
        }
    }
    let trailing = match (groups.remainder(), outs.into_remainder()) {
        ([], []) => 0,
        ([a, b], [x]) => {
            let (a, b) = (value(a), value(b));
            seen |= a | b;
            *x = a << 2 | b >> 4;
            b & 0x0F
        }
        ([a, b, c], [x, y]) => {
            let (a, b, c) = (value(a), value(b), value(c));
            seen |= a | b | c;
            *x = a << 2 | b >> 4;
            *y = b << 4 | c >> 2;
            c & 0x03
        }
        _ => return None,
    };
    (seen < 64 && trailing == 0).then_some(())
}

/// Decodes the base64url string at the front of `text`, which ends at its first `"`, in one
/// pass that both finds the end and decodes (the fast path of `response_text`). Returns the
/// bytes and the string's length (the index of the quote); `None` for invalid text, a quote not
/// found where the symbols end (an escape, for instance), or more than `MAX_FAST` bytes (a
/// caller then decodes another way).
#[cfg(feature = "webauthn")]
pub(crate) fn decode_until_quote(text: &[u8]) -> Option<(Base64UrlBytes, usize)> {
    /// Largest decoded string this path takes (clientDataJSON, signatures and keys of the
    /// classic algorithms fit).
    const MAX_FAST: usize = 1024;
    let mut buf = [0u8; MAX_FAST];
    let groups = decode_groups(text, &mut buf);
    let (i, o) = (groups * 4, groups * 3);
    // The last group: at most three symbols and two `=` before the quote.
    let quote = i + text.get(i..)?.iter().take(5).position(|&b| b == b'"')?;
    let (data, len) = symbols(text.get(..quote)?)?;
    decode_symbols(data.get(i..)?, buf.get_mut(o..len)?)?;
    Some((Base64UrlBytes(buf.get(..len)?.to_vec()), quote))
}

#[cfg(feature = "webauthn")]
/// Decodes base64url `text` (padded or not, as [`Base64UrlBytes::decode`]) into the front of
/// `buf`, returning the decoded length; `None` when the text is invalid or `buf` too short.
pub(crate) fn decode_into(text: &[u8], buf: &mut [u8]) -> Option<usize> {
    let (data, len) = symbols(text)?;
    decode_symbols(data, buf.get_mut(..len)?)?;
    Some(len)
}

/// Bytes carried as base64url text in WebAuthn JSON.
///
/// Serializes without padding (as browsers' `toJSON()` does); deserializes with or without
/// padding. Standard-alphabet input (`+`, `/`) is rejected, as browsers reject it.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Base64UrlBytes(pub Vec<u8>);

impl Base64UrlBytes {
    /// Decodes base64url text, padded or not.
    pub fn decode(text: &str) -> Option<Self> {
        Self::decode_bytes(text.as_bytes())
    }

    /// [`decode`](Self::decode) on the text's bytes.
    pub(crate) fn decode_bytes(text: &[u8]) -> Option<Self> {
        let (data, len) = symbols(text)?;
        let mut out = vec![0u8; len];
        decode_symbols(data, &mut out)?;
        Some(Base64UrlBytes(out))
    }

    /// Encodes without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Base64UrlBytes {
    fn from(v: Vec<u8>) -> Self {
        Base64UrlBytes(v)
    }
}

impl AsRef<[u8]> for Base64UrlBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Base64UrlBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b64u({})", self.encode())
    }
}

impl Serialize for Base64UrlBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Base64UrlBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Base64UrlBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64url string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Base64UrlBytes::decode(v).ok_or_else(|| E::custom("invalid base64url"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A seeded xorshift64 stream, for the differential tests' mutations (here, `client_data`,
/// `response_text`).
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_unpadded_in_unpadded_out() {
        let a: Base64UrlBytes = serde_json::from_str("\"AQID\"").unwrap();
        let b: Base64UrlBytes = serde_json::from_str("\"AQI\"").unwrap();
        let c: Base64UrlBytes = serde_json::from_str("\"AQI=\"").unwrap();
        assert_eq!(a.0, vec![1, 2, 3]);
        assert_eq!(b, c);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"AQI\"");
        assert!(serde_json::from_str::<Base64UrlBytes>("\"+/\"").is_err());
    }

    /// What the `base64` engines this module replaced accept.
    fn reference(text: &str) -> Option<Vec<u8>> {
        use base64::engine::general_purpose::URL_SAFE;
        let engine = if text.ends_with('=') {
            &URL_SAFE
        } else {
            &URL_SAFE_NO_PAD
        };
        engine.decode(text).ok()
    }

    fn agrees(text: &str) {
        let ours = Base64UrlBytes::decode(text).map(|b| b.0);
        assert_eq!(ours, reference(text), "{text:?}");
        #[cfg(feature = "webauthn")]
        {
            let mut buf = [0u8; 8];
            let into = decode_into(text.as_bytes(), &mut buf).map(|n| buf[..n].to_vec());
            let fits = reference(text).filter(|r| r.len() <= buf.len());
            assert_eq!(into, fits, "{text:?} into 8 bytes");
        }
    }

    #[cfg(feature = "webauthn")]
    #[test]
    fn decoding_up_to_the_quote_agrees_with_decoding_the_string() {
        let mut next = xorshift(0x1234_5678_9ABC_DEF1_u64);
        for len in (0..40).chain([700, 767, 768, 769, 1023, 1024, 1025, 2000]) {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            for text in [
                URL_SAFE_NO_PAD.encode(&bytes),
                base64::engine::general_purpose::URL_SAFE.encode(&bytes),
            ] {
                for _ in 0..30 {
                    let mut t = text.clone().into_bytes();
                    if !next().is_multiple_of(4) && !t.is_empty() {
                        let i = (next() as usize) % t.len();
                        t[i] = b"A_=\\\"+ Q"[(next() % 8) as usize];
                    }
                    let end = t.iter().position(|&b| b == b'"').unwrap_or(t.len());
                    t.extend_from_slice(b"\",\"x\":\"AA\"}");
                    let got = decode_until_quote(&t);
                    let whole = Base64UrlBytes::decode_bytes(&t[..end]);
                    match got {
                        Some((b, n)) => {
                            assert_eq!(n, end);
                            assert_eq!(Some(b), whole);
                        }
                        // Deferred only when invalid, escaped or too long.
                        None => assert!(
                            whole.is_none() || len > 1024,
                            "{:?}",
                            String::from_utf8_lossy(&t)
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn every_short_text_decodes_as_the_base64_engines_do() {
        // Symbols with zero and non-zero low bits, both url symbols, the standard alphabet's
        // two, padding and a non-ASCII byte: every string of up to 6 of them.
        let alphabet = ['A', 'Q', 'B', '_', '-', '=', '+', '/', 'é'];
        let mut texts = vec![String::new()];
        for _ in 0..6 {
            let mut next = Vec::new();
            for t in &texts {
                agrees(t);
                for c in alphabet {
                    let mut n = t.clone();
                    n.push(c);
                    next.push(n);
                }
            }
            texts = next;
        }
        for t in &texts {
            agrees(t);
        }
    }

    #[test]
    fn every_byte_string_round_trips_and_every_mutation_agrees() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15_u64);
        for len in 0..80 {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(
                Base64UrlBytes::decode(&text).map(|b| b.0),
                Some(bytes.clone())
            );
            let padded = base64::engine::general_purpose::URL_SAFE.encode(&bytes);
            assert_eq!(Base64UrlBytes::decode(&padded).map(|b| b.0), Some(bytes));
            for base in [&text, &padded] {
                agrees(base);
                for _ in 0..40 {
                    let mut t = base.clone().into_bytes();
                    let i = (next() as usize) % (t.len() + 1);
                    match next() % 3 {
                        0 if i < t.len() => t[i] = b"AQB_-=+/ \n"[(next() % 10) as usize],
                        1 if i < t.len() => {
                            t.remove(i);
                        }
                        _ => t.insert(i, b"AQ=_-+"[(next() % 6) as usize]),
                    }
                    agrees(&String::from_utf8(t).unwrap());
                }
            }
        }
    }
}
