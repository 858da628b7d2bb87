//! Decimal digits without allocating, written once for the crate: store counters, the
//! `{minutes}` of message templates, JWT claims.

/// `n` in decimal, written at the end of `buf` (20 bytes hold every `u64`).
pub(crate) fn text(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Digits only: always ASCII.
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_to_string() {
        let mut buf = [0u8; 20];
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(super::text(n, &mut buf), n.to_string());
        }
    }
}
