//! `CollectedClientData` (WebAuthn Level 3 §5.8.1): the JSON the browser signs over.
//!
//! Parsed as JSON (never compared against a template), strings borrowed from the input where they
//! have no escapes. Unknown members (`tokenBinding`, `androidPackageName`, Chrome's
//! `other_keys_can_be_added_here`) are ignored; a duplicated known member is refused.

use std::borrow::Cow;

use serde::Deserialize;

use super::WebAuthnFailure;
use crate::error::{Error, Result};

/// Largest challenge accepted in client data, in bytes.
pub(crate) const MAX_CHALLENGE_LEN: usize = 64;

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parsed clientDataJSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClientData<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    challenge: Cow<'a, str>,
    #[serde(borrow)]
    origin: Cow<'a, str>,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
    #[serde(rename = "topOrigin", borrow, default)]
    top_origin: Option<Cow<'a, str>>,
}

impl<'a> ClientData<'a> {
    /// Parses clientDataJSON bytes (UTF-8 JSON, at most `max_len` bytes).
    pub fn parse(bytes: &'a [u8], max_len: usize) -> Result<Self> {
        Self::parse_raw(bytes, max_len).map_err(Error::webauthn)
    }

    pub(crate) fn parse_raw(bytes: &'a [u8], max_len: usize) -> Result<Self, WebAuthnFailure> {
        if bytes.len() > max_len {
            return Err(WebAuthnFailure::TooLarge("clientDataJSON"));
        }
        // WebAuthn Level 3 §7.1 step 5 / §7.2 step 10: "UTF-8 decode" (Encoding Standard), which
        // strips one leading byte order mark. The hash is still taken over the raw bytes.
        let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        if let Some(parsed) = Self::parse_plain(bytes) {
            return Ok(parsed);
        }
        serde_json::from_slice(bytes).map_err(|_| WebAuthnFailure::Malformed("clientDataJSON"))
    }

    /// The fast path for client data as browsers write it: the known members once each, string
    /// values of printable ASCII without escapes, `crossOrigin` a boolean. It never refuses:
    /// anything else (an escape, an unknown member such as Chrome's
    /// `other_keys_can_be_added_here`, `null`, invalid UTF-8, ...) goes to `serde_json`, and what
    /// it accepts `serde_json` parses to the same value (the tests check both on mutated input).
    fn parse_plain(bytes: &'a [u8]) -> Option<Self> {
        use super::response_text::{Cursor, set};
        let mut c = Cursor::new(std::str::from_utf8(bytes).ok()?);
        let (mut kind, mut challenge, mut origin, mut cross_origin, mut top_origin) =
            (None, None, None, None, None);
        c.object(|key, c| match key {
            b"type" => set(&mut kind, c.printable()?),
            b"challenge" => set(&mut challenge, c.printable()?),
            b"origin" => set(&mut origin, c.printable()?),
            b"crossOrigin" => set(&mut cross_origin, c.boolean()?),
            b"topOrigin" => set(&mut top_origin, c.printable()?),
            _ => None,
        })?;
        if !c.at_end() {
            return None;
        }
        Some(ClientData {
            kind: Cow::Borrowed(kind?),
            challenge: Cow::Borrowed(challenge?),
            origin: Cow::Borrowed(origin?),
            cross_origin,
            top_origin: top_origin.map(Cow::Borrowed),
        })
    }

    /// `type`: `webauthn.create` or `webauthn.get`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// `origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `crossOrigin` (false when absent).
    pub fn cross_origin(&self) -> bool {
        self.cross_origin.unwrap_or(false)
    }

    /// `topOrigin`, present for cross-origin iframes.
    pub fn top_origin(&self) -> Option<&str> {
        self.top_origin.as_deref()
    }

    /// The base64url `challenge` text.
    pub fn challenge_text(&self) -> &str {
        &self.challenge
    }

    /// Whether the challenge decodes to exactly `expected` (compared in constant time).
    pub fn challenge_matches(&self, expected: &[u8]) -> bool {
        let text = self.challenge.as_bytes();
        let mut buf = [0u8; MAX_CHALLENGE_LEN];
        if text.len() > MAX_CHALLENGE_LEN * 4 / 3 + 4 {
            return false;
        }
        match super::b64::decode_into(text, &mut buf) {
            Some(n) => buf.get(..n).is_some_and(|got| {
                got.len() == expected.len() && subtle::ConstantTimeEq::ct_eq(got, expected).into()
            }),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_and_extra_members() {
        let json = br#"{"type":"webauthn.get","challenge":"AQID","origin":"https:\/\/example.com","crossOrigin":false,"other_keys_can_be_added_here":"x"}"#;
        let c = ClientData::parse_raw(json, 4096).unwrap();
        assert_eq!(c.kind(), "webauthn.get");
        assert_eq!(c.origin(), "https://example.com");
        assert!(c.challenge_matches(&[1, 2, 3]));
        assert!(!c.challenge_matches(&[1, 2]));
        assert!(!c.cross_origin());
        assert_eq!(c.top_origin(), None);
    }

    #[test]
    fn refuses_bad_input() {
        let dup =
            br#"{"type":"webauthn.get","type":"webauthn.create","challenge":"AQID","origin":"x"}"#;
        assert_eq!(
            ClientData::parse_raw(dup, 4096),
            Err(WebAuthnFailure::Malformed("clientDataJSON"))
        );
        assert!(ClientData::parse_raw(b"{}", 4096).is_err());
        assert!(ClientData::parse_raw(b"\xff", 4096).is_err());
        assert_eq!(
            ClientData::parse_raw(&[b' '; 5000], 4096),
            Err(WebAuthnFailure::TooLarge("clientDataJSON"))
        );
    }

    #[test]
    fn the_fast_path_agrees_with_serde_json_on_mutated_client_data() {
        let browser: &[u8] = br#"{"type":"webauthn.get","challenge":"MpnFQhkx3qknbDGbubTqNAvmwJSreFtJ-oamQNrqcRw","origin":"https://example.com","crossOrigin":false,"topOrigin":"https://top.example"}"#;
        fn serde(b: &[u8]) -> Option<ClientData<'_>> {
            serde_json::from_slice(b).ok()
        }
        assert_eq!(ClientData::parse_plain(browser), serde(browser));
        assert!(ClientData::parse_plain(browser).is_some());
        let mut next = crate::webauthn::b64::xorshift(0x0DDB_1A5E_5BAD_5EED_u64);
        let pieces: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"{",
            b"}",
            b",",
            b":",
            b" ",
            b"\t",
            b"true",
            b"false",
            b"null",
            b"\\u0041",
            b"\"x\":1,",
            b"\x01",
            b"\xff",
            "\u{e9}".as_bytes(),
            b"\"type\":\"a\",",
        ];
        let (mut fast, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut t = browser.to_vec();
            for _ in 0..=(next() % 3) {
                let i = (next() as usize) % (t.len() + 1);
                if next().is_multiple_of(3) && i < t.len() {
                    let end = (i + 1 + (next() as usize) % 4).min(t.len());
                    t.drain(i..end);
                } else {
                    let p = pieces[(next() as usize) % pieces.len()];
                    t.splice(i..i, p.iter().copied());
                }
            }
            total += 1;
            if let Some(parsed) = ClientData::parse_plain(&t) {
                fast += 1;
                assert_eq!(Some(parsed), serde(&t), "{:?}", String::from_utf8_lossy(&t));
            }
        }
        assert!(fast > 100 && fast < total, "{fast} of {total}");
    }

    #[test]
    fn one_leading_byte_order_mark_is_stripped_as_utf8_decode_does() {
        let json = br#"{"type":"webauthn.get","challenge":"AQID","origin":"https://example.com"}"#;
        let mut with_bom = UTF8_BOM.to_vec();
        with_bom.extend_from_slice(json);
        let c = ClientData::parse_raw(&with_bom, 4096).unwrap();
        assert_eq!(c.origin(), "https://example.com");
        assert!(c.challenge_matches(&[1, 2, 3]));
        // UTF-8 decode strips one BOM only; a second one is a character JSON refuses.
        let mut two = UTF8_BOM.to_vec();
        two.extend_from_slice(&with_bom);
        assert_eq!(
            ClientData::parse_raw(&two, 4096),
            Err(WebAuthnFailure::Malformed("clientDataJSON"))
        );
        // A BOM elsewhere is not stripped.
        let mut inside = b" ".to_vec();
        inside.extend_from_slice(&with_bom);
        assert!(ClientData::parse_raw(&inside, 4096).is_err());
    }
}
