//! Destination normalization shared by the OTP and 2-man-rule modules: phone numbers to E.164,
//! email addresses to NFKC, trimmed, without spaces, lowercased; and masking for display.

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// Normalizes a phone number to E.164 (`+` and 8 to 15 digits, no leading zero after the `+`).
///
/// Accepts the usual human separators (spaces, `-`, `.`, `(`, `)`) and a `00` international
/// prefix. Anything else (letters, a missing country code, an impossible length) is an
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error whose message does not echo
/// the number.
///
/// ```
/// assert_eq!(keyward::normalize::phone_e164("+33 6 12-34.56 78").unwrap(), "+33612345678");
/// assert_eq!(keyward::normalize::phone_e164("0033612345678").unwrap(), "+33612345678");
/// assert!(keyward::normalize::phone_e164("06 12 34 56 78").is_err());
/// assert!(keyward::normalize::phone_e164("+1 800 FLOWERS").is_err());
/// ```
pub fn phone_e164(input: &str) -> Result<String> {
    let trimmed = input.trim();
    let rest = if let Some(r) = trimmed.strip_prefix('+') {
        r
    } else if let Some(r) = trimmed.strip_prefix("00") {
        r
    } else {
        return Err(Error::invalid_input(
            "phone number must start with + and a country code",
        ));
    };
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => {
                return Err(Error::invalid_input(
                    "phone number contains characters other than digits and separators",
                ));
            }
        }
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(Error::invalid_input(
            "phone number must have 8 to 15 digits including the country code",
        ));
    }
    if digits.starts_with('0') {
        return Err(Error::invalid_input("country code cannot start with 0"));
    }
    Ok(format!("+{digits}"))
}

/// Normalizes an email address: NFKC, all whitespace removed, lowercased. Requires exactly one
/// `@` with a non-empty local part and a domain containing a dot; at most 254 bytes.
///
/// ```
/// assert_eq!(keyward::normalize::email(" Alice@Example.COM ").unwrap(), "alice@example.com");
/// assert_eq!(keyward::normalize::email("ａｌｉｃｅ@example.com").unwrap(), "alice@example.com");
/// assert!(keyward::normalize::email("alice.example.com").is_err());
/// ```
pub fn email(input: &str) -> Result<String> {
    let normalized: String = input
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if normalized.len() > 254 {
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

/// Masks a destination for display: all but the last two characters of a phone number become
/// `*` (`+33612345621` → `**********21`); an email keeps the first character of the local part
/// and the domain (`alice@example.com` → `a****@example.com`).
pub fn mask(destination: &str) -> String {
    if let Some((local, domain)) = destination.split_once('@') {
        let first: String = local.chars().take(1).collect();
        let hidden = local.chars().count().saturating_sub(1).max(1);
        return format!("{first}{}@{domain}", "*".repeat(hidden));
    }
    let n = destination.chars().count();
    let keep = if n > 4 { 2 } else { 0 };
    let tail: String = destination.chars().skip(n - keep).collect();
    format!("{}{tail}", "*".repeat(n - keep))
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
        assert_eq!(phone_e164("+12345678").unwrap(), "+12345678");
        assert!(phone_e164("+0123456789").is_err());
        assert!(phone_e164("").is_err());
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
    }
}
