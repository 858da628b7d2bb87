//! Hex, written once for the crate: store keys and record fields (keyed hashes), metadata
//! lookups (key identifiers, AAGUIDs) and `Debug` fingerprints.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push(&mut out, bytes);
    out
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn push(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        write(&mut buf, chunk);
        // Hex digits only: always ASCII.
        out.push_str(std::str::from_utf8(&buf[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// Writes the lowercase hex of `bytes` into the front of `out` (two bytes each; the bytes
/// beyond `out.len() / 2` are not written).
pub(crate) fn write(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The bytes of `s` (hex digits of either case, an even number of them); `None` otherwise.
#[cfg(all(test, feature = "webauthn"))]
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

/// The `N` bytes of `s` (exactly `2 * N` hex digits); `None` otherwise.
pub(crate) fn decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert_eq!(text.len(), 512);
        assert!(text.starts_with("000102") && text.ends_with("fdfeff"));
        assert_eq!(decode_array::<256>(&text).map(Vec::from), Some(all.clone()));
        assert_eq!(
            decode_array::<256>(&text.to_uppercase()).map(Vec::from),
            Some(all.clone())
        );
        // Lengths around the 32-byte chunks `push` writes in, appended to existing text.
        for n in [0, 1, 31, 32, 33, 64, 65] {
            let mut out = String::from("VE");
            push(&mut out, &all[..n]);
            let naive: String = all[..n].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(out, format!("VE{naive}"));
        }
    }

    #[test]
    fn refuses_what_is_not_hex() {
        assert_eq!(decode_array::<0>(""), Some([]));
        for bad in ["0", "abc", "0g", "zz", " 0", "é0", "+1"] {
            assert_eq!(decode_array::<1>(bad), None, "{bad:?}");
        }
        assert_eq!(decode_array::<2>("é0é0"), None, "not hex though 4 bytes");
        assert_eq!(decode_array::<2>("0a0B"), Some([0x0a, 0x0b]));
        assert_eq!(decode_array::<2>("0a0b0c"), None);
        assert_eq!(decode_array::<2>("0a"), None);
    }
}
