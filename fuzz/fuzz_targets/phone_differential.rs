//! `keyward::normalize::phone_e164` must answer exactly as the `phonenumber` crate's parse,
//! validation and E.164 format did before the compiled tables (the reference implementation
//! kept in `src/normalize`), error messages included. The fuzzer's bytes are read three ways:
//! as text; as digits after a `+` (most of the tables' work: text is mostly refused before
//! them); and as digits with separators and full-width forms.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn check(input: &str) {
    let (fast, reference) = keyward::normalize::fuzzing::phone_both(input);
    assert_eq!(fast, reference, "{input:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    let digits: String = data.iter().take(24).map(|b| char::from(b'0' + b % 10)).collect();
    check(&format!("+{digits}"));
    let spelled: String = data
        .iter()
        .take(24)
        .map(|&b| match b {
            0..=199 => char::from(b'0' + b % 10),
            200..=209 => char::from_u32(0xff10 + u32::from(b - 200)).unwrap_or('0'),
            210..=219 => ' ',
            220..=229 => '-',
            230..=239 => '(',
            240..=249 => ')',
            _ => '.',
        })
        .collect();
    check(&format!("+{spelled}"));
});
