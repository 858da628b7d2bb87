//! Destination normalization shared by the OTP and 2-man-rule modules: phone numbers to E.164,
//! email addresses to NFKC, trimmed, without spaces, lowercased; and masking for display.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

mod phone;

/// Longest phone number input accepted, in characters (E.164 has at most 15 digits; this leaves
/// room for separators and a `00` prefix, and bounds the parser's work on hostile input).
const MAX_PHONE_INPUT_CHARS: usize = 64;

/// Normalizes a phone number to E.164 the way libphonenumber (which Seald's SDKs use) does:
/// parsed by the [`phonenumber`] crate (a maintained Rust port of libphonenumber, with its
/// metadata), formatted as E.164, and refused unless libphonenumber considers it a valid number
/// for its country.
///
/// - The input is NFKC-normalized first, so full-width digits and `＋` are accepted as emails'
///   full-width letters are.
/// - A national trunk prefix written after the country code is dropped as libphonenumber drops it:
///   `+33 (0)6 12 34 56 78` and `+49 030 1234567` become `+33612345678` and `+49301234567`.
/// - The number must carry its country code: a leading `+`, or the `00` international prefix
///   (read as `+`). Separators: spaces, `-`, `.`, `/`, `(`, `)` and their Unicode variants.
/// - Refused with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), whose message never
///   echoes the number: a missing country code, letters (vanity numbers, extensions, `tel:`
///   URIs), an unknown country code (`+999 …`), and any number libphonenumber calls invalid (a
///   wrong length, such as `+33 6 12 34 56 78 9`, or a range not in the numbering plan).
///
/// The result is a fixed point: `phone_e164(&phone_e164(x)?)` is `phone_e164(x)`.
///
/// ```
/// use keyward::normalize::phone_e164;
/// assert_eq!(phone_e164("+33 6 12-34.56 78").unwrap(), "+33612345678");
/// assert_eq!(phone_e164("+33 (0)6 12 34 56 78").unwrap(), "+33612345678");
/// assert_eq!(phone_e164("0033612345678").unwrap(), "+33612345678");
/// assert_eq!(phone_e164("＋３３ ６ １２ ３４ ５６ ７８").unwrap(), "+33612345678");
/// assert!(phone_e164("06 12 34 56 78").is_err()); // no country code
/// assert!(phone_e164("+33 6 12 34 56 78 9").is_err()); // too long for France
/// assert!(phone_e164("+999 123 456 789").is_err()); // no such country code
/// assert!(phone_e164("+1 800 FLOWERS").is_err());
/// ```
pub fn phone_e164(input: &str) -> Result<String> {
    // ASCII text is its own NFKC form.
    let nfkc: Cow<'_, str> = if input.is_ascii() {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(input.nfkc().collect())
    };
    let digits = phone_digits(&nfkc)?;
    match phone::tables() {
        // Every country's patterns compiled once (src/normalize/phone.rs): the same answers,
        // at a cost that does not depend on the numbers seen before.
        Some(tables) => tables.e164(&digits).ok_or_else(invalid_phone),
        // A `phonenumber` release whose metadata does not compile here (none known).
        None => validate_with_phonenumber(&digits),
    }
}

/// The digits after the country-code prefix of an NFKC-normalized phone number, or why it is
/// refused before any validation.
fn phone_digits(nfkc: &str) -> Result<String> {
    let trimmed = nfkc.trim();
    if trimmed.chars().count() > MAX_PHONE_INPUT_CHARS {
        return Err(Error::invalid_input("phone number is too long"));
    }
    let rest = if let Some(r) = trimmed.strip_prefix('+') {
        r
    } else if let Some(r) = trimmed.strip_prefix("00") {
        r
    } else {
        return Err(Error::invalid_input(
            "phone number must start with + and a country code",
        ));
    };
    // Only digits and separators reach the parser: no letters (libphonenumber would read vanity
    // letters as digits and text after them as an extension, neither of which can receive a
    // code), no RFC 3966 syntax (the parser's past panics were all there).
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || is_phone_separator(c))
    {
        return Err(Error::invalid_input(
            "phone number contains characters other than digits and separators",
        ));
    }
    // Separators carry nothing for a number with its country code (libphonenumber reads the
    // digits alone), and the port trips on some of them (`+4-4…` is `InvalidCountryCode` there,
    // `+442…` for libphonenumber): the parser gets `+` and the digits.
    let mut digits = String::with_capacity(rest.len());
    digits.extend(rest.chars().filter(char::is_ascii_digit));
    Ok(digits)
}

/// Compiles libphonenumber's patterns for every country now rather than on the first phone
/// number [`phone_e164`] is given: about 1.2 billion instructions (0.13 s of CPU on a 2-vCPU
/// EPYC) and 15 MB, once per process (see docs/benchmarks.md). After it, every phone number
/// costs what its digits cost, whatever numbers or countries came before.
pub fn warm_up() {
    let _ = phone::tables();
}

fn invalid_phone() -> Error {
    Error::invalid_input("phone number is not a valid number for its country")
}

/// `+` and `digits` through the `phonenumber` crate itself: parsed, validated, formatted as
/// E.164. What [`phone::Tables::e164`] reproduces, and the oracle of its differential tests.
fn validate_with_phonenumber(digits: &str) -> Result<String> {
    let parsed = phonenumber::parse(None, format!("+{digits}")).map_err(|_| invalid_phone())?;
    if parsed.extension().is_some() || !phonenumber::is_valid(&parsed) {
        return Err(invalid_phone());
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// [`phone_e164`] as it was before the compiled tables and the ASCII shortcut: NFKC always,
/// the same refusals of the raw text, then the `phonenumber` crate. The oracle of the differential proptest and fuzz target.
#[cfg(any(test, feature = "fuzzing"))]
fn phone_e164_reference(input: &str) -> Result<String> {
    let nfkc: String = input.nfkc().collect();
    validate_with_phonenumber(&phone_digits(&nfkc)?)
}

/// Entry points for the `fuzz/` crate. Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Feeds `input` to [`phone_e164`](super::phone_e164) and to the `phonenumber` crate's own
    /// parse, validation and format (the implementation before the compiled tables); returns
    /// both answers (`Err` as its message), which must be equal.
    pub fn phone_both(input: &str) -> (Result<String, String>, Result<String, String>) {
        let fast = super::phone_e164(input).map_err(|e| e.to_string());
        let reference = super::phone_e164_reference(input).map_err(|e| e.to_string());
        (fast, reference)
    }
}

/// The separators a phone number may contain (after NFKC): spaces, dashes, dots, slashes and
/// brackets.
fn is_phone_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.'
                | '/'
                | '('
                | ')'
                | '['
                | ']'
                | '~'
                | '\u{ad}'
                | '\u{200b}'
                | '\u{2060}'
                | '\u{2010}'..='\u{2015}' | '\u{2212}'
        )
}

/// Longest email address accepted, in bytes (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 254;

/// Passes of [`email`]'s normalization before the input is refused as unstable (two are enough
/// for anything seen so far; see [`email`]).
const EMAIL_PASSES: usize = 4;

/// Normalizes an email address: NFKC, all whitespace removed, lowercased, repeated until nothing
/// changes. Requires exactly one `@` with a non-empty local part and a domain containing a dot;
/// at most 254 bytes.
///
/// One pass is not always stable: removing a space can put a combining mark after a letter
/// (`"a \u{301}b"`), which the next NFKC composes (`"áb"`), and NFKC itself can produce spaces
/// (`"\u{a8}"` is a space and a combining diaeresis). So the pass is repeated until it is a fixed
/// point, which makes `email(&email(x)?)` equal `email(x)`; an input that does not settle within
/// a few passes is refused.
///
/// ```
/// assert_eq!(keyward::normalize::email(" Alice@Example.COM ").unwrap(), "alice@example.com");
/// assert_eq!(keyward::normalize::email("ａｌｉｃｅ@example.com").unwrap(), "alice@example.com");
/// assert_eq!(keyward::normalize::email("a \u{301}b@example.com").unwrap(), "\u{e1}b@example.com");
/// assert!(keyward::normalize::email("alice.example.com").is_err());
/// ```
pub fn email(input: &str) -> Result<String> {
    let mut current = email_pass(input);
    // One pass makes ASCII text ASCII, lowercase and without whitespace, which the next pass
    // gives back unchanged: it is settled (and a long one refused below, as it would be here).
    let mut settled = input.is_ascii();
    for _ in 0..EMAIL_PASSES {
        if settled {
            break;
        }
        // Bound the work on hostile input before another pass.
        if current.len() > 4 * MAX_EMAIL_BYTES {
            return Err(Error::invalid_input("email address is too long"));
        }
        let next = email_pass(&current);
        if next == current {
            settled = true;
            break;
        }
        current = next;
    }
    if !settled {
        return Err(Error::invalid_input(
            "email address does not have a stable normal form",
        ));
    }
    let normalized = current;
    if normalized.len() > MAX_EMAIL_BYTES {
        return Err(Error::invalid_input("email address is too long"));
    }
    let mut parts = normalized.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::invalid_input(
            "email address must contain exactly one @",
        ));
    };
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(Error::invalid_input("email address is malformed"));
    }
    Ok(normalized)
}

/// One pass of the email normalization: NFKC, whitespace removed, lowercased.
fn email_pass(input: &str) -> String {
    if input.is_ascii() {
        return ascii_email_pass(input);
    }
    input
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// [`email_pass`] of ASCII text: ASCII is its own NFKC form, and its lowercase is ASCII's.
fn ascii_email_pass(input: &str) -> String {
    // Never longer than the input: one allocation, no regrowth.
    let mut out = String::with_capacity(input.len());
    out.extend(
        input
            .bytes()
            .filter(|b| !char::from(*b).is_whitespace())
            .map(|b| char::from(b.to_ascii_lowercase())),
    );
    out
}

/// Masks a destination for display: all but the last two characters of a phone number become
/// `*` (`+33612345621` → `**********21`); an email keeps the first character of the local part
/// and the domain (`alice@example.com` → `a****@example.com`).
pub fn mask(destination: &str) -> String {
    // Built in one allocation: every self-hosted start masks its destination for the record.
    let mut out = String::with_capacity(destination.len() + 4);
    if let Some((local, domain)) = destination.split_once('@') {
        let hidden = local.chars().count().saturating_sub(1).max(1);
        out.extend(local.chars().take(1));
        out.extend(std::iter::repeat_n('*', hidden));
        out.push('@');
        out.push_str(domain);
        return out;
    }
    let n = destination.chars().count();
    let keep = if n > 4 { 2 } else { 0 };
    out.extend(std::iter::repeat_n('*', n - keep));
    out.extend(destination.chars().skip(n - keep));
    out
}

/// Masks what looks like personal data in free text from a remote service: every email
/// address (as [`mask`] does) and every run of digits and phone separators holding at least six
/// digits (all but the last two digits become `*`). Used by `RemoteError`'s `Debug`.
pub(crate) fn scrub_personal_data(text: &str) -> String {
    // Emails first, word by word (whitespace kept as it was).
    let mut no_emails = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if let Some(at) = word.find('@') {
            let (local, domain) = word.split_at(at);
            // Keep punctuation before the address (`"`, `(`, `:`) outside the mask.
            let lead = local
                .rfind(|c: char| !(c.is_alphanumeric() || "._%+-".contains(c)))
                .map_or(0, |p| p + 1);
            let (prefix, local) = local.split_at(lead);
            out.push_str(prefix);
            out.push_str(&mask(&format!("{local}{domain}")));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut no_emails);
            no_emails.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut no_emails);
    // Then phone numbers: runs of digits and separators with six digits or more.
    let mut out = String::with_capacity(no_emails.len());
    let mut run = String::new();
    for c in no_emails.chars() {
        if is_phone_char(c) {
            run.push(c);
        } else {
            out.push_str(&scrub_digits(&run));
            run.clear();
            out.push(c);
        }
    }
    out.push_str(&scrub_digits(&run));
    out
}

fn is_phone_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' ')
}

/// Masks a run holding six digits or more, keeping its last two digits.
fn scrub_digits(run: &str) -> String {
    let digits = run.chars().filter(char::is_ascii_digit).count();
    if digits < 6 {
        return run.to_owned();
    }
    let mut seen = 0;
    run.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > digits - 2 { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_rejects_impossible_lengths() {
        assert!(phone_e164("+1234567").is_err());
        assert!(phone_e164("+1234567890123456").is_err());
        // Eight digits with a +1 is a possible length but no valid NANP number.
        assert!(phone_e164("+12345678").is_err());
        assert!(phone_e164("+0123456789").is_err());
        assert!(phone_e164("").is_err());
        assert!(phone_e164(&format!("+33{}", " 6".repeat(40))).is_err());
    }

    /// The 14 inputs of issue #14 item 5, with what libphonenumber answers (Python
    /// `phonenumbers` 9.0.43, a port of libphonenumber: `parse(x, None)`, then
    /// `format_number(n, E164)` when `is_valid_number(n)`). `None`: libphonenumber cannot parse
    /// the input or calls the number invalid. The hand-written normalization answered
    /// `+330612345678`, `+4402079460958`, `+490301234567`, `+4407700900123`, `+999123456789`
    /// and `+336123456789` for the first six, and refused the full-width one.
    const LIBPHONENUMBER: [(&str, Option<&str>); 14] = [
        ("+33 (0)6 12 34 56 78", Some("+33612345678")),
        ("+44 (0)20 7946 0958", Some("+442079460958")),
        ("+49 030 1234567", Some("+49301234567")),
        // Ofcom's range for drama: possible, but not valid.
        ("+44 (0)7700 900123", None),
        ("+999 123 456 789", None),
        ("+33 6 12 34 56 78 9", None),
        ("+33 6 12-34.56 78", Some("+33612345678")),
        ("+1 (415) 555-2671", Some("+14155552671")),
        ("+49 (0)30 1234567", Some("+49301234567")),
        ("+353 (0)1 234 5678", Some("+35312345678")),
        // Italy keeps its leading zero in E.164.
        ("+39 06 1234 5678", Some("+390612345678")),
        ("+81 3-1234-5678", Some("+81312345678")),
        ("+7 912 345-67-89", Some("+79123456789")),
        (
            "\u{ff0b}\u{ff13}\u{ff13}\u{3000}\u{ff16}\u{3000}\u{ff11}\u{ff12}\u{3000}\u{ff13}\u{ff14}\u{3000}\u{ff15}\u{ff16}\u{3000}\u{ff17}\u{ff18}",
            Some("+33612345678"),
        ),
    ];

    #[test]
    fn phone_agrees_with_libphonenumber() {
        for (input, expected) in LIBPHONENUMBER {
            let got = phone_e164(input);
            match expected {
                Some(e164) => assert_eq!(got.as_deref().ok(), Some(e164), "{input}"),
                None => {
                    let err = got.expect_err(input);
                    assert_eq!(err.kind(), &crate::ErrorKind::InvalidInput, "{input}");
                }
            }
        }
    }

    #[test]
    fn phone_spellings_of_one_number_are_one_factor() {
        let spellings = [
            "+33612345678",
            "+33 6 12 34 56 78",
            "+33 (0)6 12 34 56 78",
            "+33 06 12 34 56 78",
            "0033 6 12 34 56 78",
            "+33.6.12.34.56.78",
            "\u{ff0b}\u{ff13}\u{ff13}\u{ff16}\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}\u{ff17}\u{ff18}",
        ];
        for spelling in spellings {
            assert_eq!(phone_e164(spelling).unwrap(), "+33612345678", "{spelling}");
        }
    }

    #[test]
    fn the_gate_decoy_number_is_valid() {
        // Refused, a decoy verify would skip the provider's round trip a participant's makes.
        let decoy = crate::video::gate::DECOY_DESTINATION;
        assert_eq!(phone_e164(decoy).ok().as_deref(), Some(decoy));
    }

    #[test]
    fn phone_refuses_what_cannot_receive_a_code() {
        for input in [
            "+1 800 FLOWERS",
            "+33 6 12 34 56 78 ext. 12",
            "tel:+33-6-12-34-56-78",
            ".;phone-context=",
            "+;phone-context=\u{e9}",
            "06 12 34 56 78",
            "+",
            "00",
        ] {
            let err = phone_e164(input).expect_err(input);
            assert_eq!(err.kind(), &crate::ErrorKind::InvalidInput, "{input}");
        }
    }

    #[test]
    fn email_is_a_fixed_point() {
        // A space between a letter and a combining mark: one pass gave "a\u{301}b", whose NFKC
        // is "\u{e1}b", so a second normalization changed it again.
        let once = email("a \u{301}b@example.com").unwrap();
        assert_eq!(once, "\u{e1}b@example.com");
        assert_eq!(email(&once).unwrap(), once);
        // NFKC makes a space out of U+00A8 (diaeresis): removed, then composed.
        let once = email("o\u{a8}@example.com").unwrap();
        assert_eq!(email(&once).unwrap(), once);
    }

    /// Every country calling code the metadata knows, ascending.
    fn country_codes() -> Vec<u16> {
        (1..1000u16)
            .filter(|c| phonenumber::metadata::DATABASE.by_code(c).is_some())
            .collect()
    }

    /// The answer of [`phone_e164`] and of the implementation before it, error messages
    /// included.
    fn both(input: &str) -> (Result<String, String>, Result<String, String>) {
        (
            phone_e164(input).map_err(|e| e.to_string()),
            phone_e164_reference(input).map_err(|e| e.to_string()),
        )
    }

    #[test]
    fn every_pattern_compiles_to_a_dfa() {
        let tables = phone::tables().expect("the phonenumber metadata compiles");
        assert_eq!(tables.fallbacks(), 0);
    }

    /// Every example number of every region (libphonenumber's metadata gives one per number
    /// type), as written and with a national prefix, a digit more, a digit less or a digit
    /// changed: the compiled tables answer as the `phonenumber` crate does.
    #[test]
    fn phone_agrees_with_the_phonenumber_crate_on_every_example() {
        let db = &*phonenumber::metadata::DATABASE;
        let (mut checked, mut valid) = (0, 0);
        for code in country_codes() {
            for meta in db.by_code(&code).unwrap_or_default() {
                let d = meta.descriptors();
                let descriptors = [
                    Some(d.general()),
                    d.fixed_line(),
                    d.mobile(),
                    d.toll_free(),
                    d.premium_rate(),
                    d.shared_cost(),
                    d.personal_number(),
                    d.voip(),
                    d.pager(),
                    d.uan(),
                    d.emergency(),
                    d.voicemail(),
                    d.short_code(),
                    d.standard_rate(),
                    d.carrier(),
                    d.no_international(),
                ];
                for example in descriptors
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.example())
                {
                    let np = meta.national_prefix().unwrap_or("0");
                    let mut variants = vec![
                        format!("+{code}{example}"),
                        format!("+{code}{np}{example}"),
                        format!("+{code}0{example}"),
                        format!("+{code}{example}0"),
                        format!("+{code}{example}9"),
                        format!("00{code} {example}"),
                    ];
                    if example.len() > 1 {
                        variants.push(format!("+{code}{}", &example[..example.len() - 1]));
                        variants.push(format!("+{code}{}", &example[1..]));
                        let flipped: String = example
                            .chars()
                            .rev()
                            .enumerate()
                            .map(|(i, c)| {
                                if i == 1 {
                                    if c == '5' { '6' } else { '5' }
                                } else {
                                    c
                                }
                            })
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        variants.push(format!("+{code}{flipped}"));
                    }
                    for input in variants {
                        let (fast, reference) = both(&input);
                        assert_eq!(fast, reference, "{input}");
                        checked += 1;
                        valid += usize::from(fast.is_ok());
                    }
                }
            }
        }
        // Not a vacuous comparison: thousands of inputs, most of the examples valid.
        assert!(checked > 10_000, "{checked}");
        assert!(valid > 3_000, "{valid}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// Random digits after every country code, with separators, a `(0)`, full-width forms
        /// and the `00` prefix: the same answer (and the same error) as the `phonenumber` crate.
        #[test]
        fn phone_agrees_with_the_phonenumber_crate(
            code in proptest::sample::select(country_codes()),
            national in "[0-9]{0,18}",
            trunk in proptest::prop_oneof!["", "0", "\\(0\\)", "00", "8", "1"],
            plus in proptest::prop_oneof!["\\+", "00", "\u{ff0b}", " +"],
            cuts in proptest::collection::vec((0usize..20, "[ ().\\-/\u{3000}\u{2011}]"), 0..4),
            full_width in proptest::bool::ANY,
        ) {
            let mut rest = format!("{code}{trunk}{national}");
            for (at, sep) in cuts {
                let at = at.min(rest.len());
                if rest.is_char_boundary(at) {
                    rest.insert_str(at, &sep);
                }
            }
            if full_width {
                rest = rest
                    .chars()
                    .map(|c| match c {
                        '0'..='9' => char::from_u32(u32::from(c) - 0x30 + 0xff10).unwrap_or(c),
                        _ => c,
                    })
                    .collect();
            }
            let input = format!("{plus}{rest}");
            let (fast, reference) = both(&input);
            proptest::prop_assert_eq!(fast, reference, "{}", input);
        }

        /// Any digits at all after the `+`.
        #[test]
        fn phone_agrees_with_the_phonenumber_crate_on_any_digits(digits in "[0-9]{0,20}") {
            let input = format!("+{digits}");
            let (fast, reference) = both(&input);
            proptest::prop_assert_eq!(fast, reference, "{}", input);
        }
    }

    proptest::proptest! {
        #[test]
        fn email_ascii_shortcut_is_the_full_normalization(input in "[ -~\\t]{0,40}@[ -~]{0,20}") {
            // The NFKC passes, without the ASCII shortcut, until a fixed point.
            let mut full = String::new();
            let mut next: String = input.nfkc().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
            while next != full {
                full = next;
                next = full.nfkc().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
            }
            if let Ok(got) = email(&input) {
                proptest::prop_assert_eq!(got, full);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn phone_normalization_is_idempotent(
            plus in proptest::prop_oneof!["\\+", "00", "\u{ff0b}", ""],
            body in "[0-9\u{ff10}-\u{ff19} ().\\-/\u{3000}\u{a0}]{0,24}",
        ) {
            let input = format!("{plus}{body}");
            if let Ok(once) = phone_e164(&input) {
                proptest::prop_assert_eq!(phone_e164(&once).ok(), Some(once));
            }
        }

        #[test]
        fn phone_normalization_is_idempotent_on_valid_numbers(
            number in proptest::sample::select(&[
                "+33612345678", "+442079460958", "+49301234567", "+14155552671",
                "+390612345678", "+81312345678", "+79123456789", "+61491570156",
                "+8613800138000", "+35312345678",
            ][..]),
            cuts in proptest::collection::vec((0usize..16, "[ ().\\-/\u{3000}]"), 0..6),
            full_width in proptest::bool::ANY,
        ) {
            let mut input: Vec<char> = number.chars().collect();
            for (at, sep) in cuts {
                let at = 1 + at % input.len();
                input.splice(at..at, sep.chars());
            }
            let mut input: String = input.into_iter().collect();
            if full_width {
                input = input
                    .chars()
                    .map(|c| match c {
                        '0'..='9' => char::from_u32(0xff10 + (c as u32 - '0' as u32)).unwrap_or(c),
                        c => c,
                    })
                    .collect();
            }
            let once = phone_e164(&input);
            // Separators never change the number; the number itself is valid.
            proptest::prop_assert_eq!(once.as_deref().ok(), Some(number));
            let again = phone_e164(number).ok();
            proptest::prop_assert_eq!(again.as_deref(), Some(number));
        }

        #[test]
        fn phone_normalization_never_panics(input in "\\PC{0,80}") {
            let _ = phone_e164(&input);
        }

        #[test]
        fn email_normalization_is_idempotent(
            local in "[a-zA-Z0-9 .\u{300}-\u{36f}\u{a8}\u{b4}\u{2000}-\u{200a}\u{ff21}-\u{ff3a}\u{130}\u{1e9e}\u{fdfa}\u{2126}\u{212b}]{1,16}",
            domain in "[a-zA-Z \u{301}\u{ff0e}\u{ff41}-\u{ff5a}]{1,10}",
            tld in "[a-z\u{ff41}-\u{ff5a}]{2,4}",
        ) {
            let input = format!("{local}@{domain}.{tld}");
            if let Ok(once) = email(&input) {
                proptest::prop_assert_eq!(email(&once).ok(), Some(once));
            }
        }

        #[test]
        fn email_normalization_is_idempotent_on_any_text(input in "\\PC{0,40}@\\PC{0,20}") {
            if let Ok(once) = email(&input) {
                proptest::prop_assert_eq!(email(&once).ok(), Some(once));
            }
        }
    }

    #[test]
    fn phone_error_does_not_echo_number() {
        let err = phone_e164("+33 6 12 34 56 7x").unwrap_err();
        assert!(!err.to_string().contains("12 34"));
    }

    #[test]
    fn personal_data_is_scrubbed_from_remote_messages() {
        let cases = [
            (
                "Invalid parameter To: +15017122661",
                "Invalid parameter To: +*********61",
            ),
            (
                "The number +33 6 12 34 56 78 is unverified",
                "The number +** * ** ** ** 78 is unverified",
            ),
            (
                "Email alice.smith@example.com bounced",
                "Email a**********@example.com bounced",
            ),
            ("(To: \"bob@example.org\")", "(To: \"b**@example.org\")"),
            ("code 60200, status 400", "code 60200, status 400"),
        ];
        for (raw, scrubbed) in cases {
            assert_eq!(scrub_personal_data(raw), scrubbed, "{raw}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(mask("+15017122621"), "**********21");
        assert_eq!(mask("alice@example.com"), "a****@example.com");
        assert_eq!(mask("a@b.co"), "a*@b.co");
        assert_eq!(mask("1234"), "****");
        assert_eq!(mask("@example.com"), "*@example.com");
        assert_eq!(mask("élodie@exemple.fr"), "é*****@exemple.fr");
        assert_eq!(mask("+３３612345678"), "**********78");
        assert_eq!(mask(""), "");
    }
}
