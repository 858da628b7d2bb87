//! A fast path for the browser's `AuthenticationResponseJSON` text in the shape browsers send
//! (`JSON.stringify(credential)`): one object of the known members, base64url values without
//! escapes, `clientExtensionResults` empty.
//!
//! It never decides a refusal: text it does not recognise in full (any escape, unknown member,
//! duplicated member, `null`, non-empty extension results, array form, invalid base64url, ...)
//! goes to `serde_json` as before, so what is refused, and with which error, is unchanged. What
//! it accepts is a subset of what `serde_json` accepts, decoded to the same value; the tests
//! check this on mutated responses. It saves the generic deserializer's per-member work and a
//! second pass over each base64url value (10,823 → 6,369 instructions a response,
//! docs/benchmarks.md).

use super::b64::{Base64UrlBytes, decode_until_quote};
use super::json::{AssertionResponseJson, AuthenticationResponseJson, PublicKeyType};

/// The decoded response when `text` is in the fast path's shape; `None` sends it to `serde_json`.
pub(crate) fn parse_authentication(text: &str) -> Option<AuthenticationResponseJson> {
    let mut c = Cursor::new(text);
    let mut id = None;
    let mut raw_id = None;
    let mut kind = None;
    let mut response = None;
    let mut attachment = None;
    let mut extensions = None;
    c.object(|key, c| match key {
        b"id" => set(&mut id, c.id_text()?),
        b"rawId" => set(&mut raw_id, c.base64url()?),
        b"type" => set(&mut kind, (c.plain_str()? == b"public-key").then_some(())?),
        b"response" => set(&mut response, c.assertion()?),
        b"authenticatorAttachment" => set(&mut attachment, c.attachment()?),
        b"clientExtensionResults" => set(&mut extensions, c.object(|_, _| None)?),
        _ => None,
    })?;
    if !c.at_end() {
        return None;
    }
    kind?;
    Some(AuthenticationResponseJson {
        id: id?,
        raw_id: raw_id?,
        kind: PublicKeyType::PublicKey,
        response: response?,
        authenticator_attachment: attachment,
        client_extension_results: serde_json::Map::new(),
    })
}

/// The length of the run of printable ASCII at the front of `bytes` that holds no `"` and no `\`:
/// where a plain string's text ends. Eight bytes at a time (the lowest flagged byte of each word
/// is exact; borrows only ever flag bytes above it).
fn plain_len(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut words = bytes.chunks_exact(8);
    let mut done = 0;
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        let stop = zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            // Below 0x20 (for bytes below 0x80; those above are flagged by their high bit).
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | (w & HIGH)
            // DEL.
            | zero_byte(w ^ (ONES * 0x7F));
        if stop != 0 {
            return done + (stop.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + words
        .remainder()
        .iter()
        .position(|&b| !matches!(b, b' '..=b'~') || b == b'"' || b == b'\\')
        .unwrap_or(words.remainder().len())
}

/// Fills an empty slot; a second value for it (a duplicated member) leaves the fast path.
pub(crate) fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// A position in JSON text, for the fast paths (here and `client_data`).
pub(crate) struct Cursor<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// At the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor {
            text,
            s: text.as_bytes(),
            i: 0,
        }
    }

    /// Skips JSON whitespace (the four characters RFC 8259 allows, as `serde_json`).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// Consumes `byte` after optional whitespace.
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        if self.s.get(self.i) != Some(&byte) {
            return None;
        }
        self.i += 1;
        Some(())
    }

    /// A plain string's bytes (see [`printable`](Self::printable)); member names and `type`.
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        Some(self.printable()?.as_bytes())
    }

    /// An object whose members `member` reads one by one (called with the name, the cursor on
    /// the value); `None` from it leaves the fast path.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&[u8], &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            let name = self.plain_str()?;
            self.eat(b':')?;
            member(name, self)?;
            self.ws();
            let next = *self.s.get(self.i)?;
            self.i += 1;
            match next {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A base64url string value, decoded. Any `\` is not a symbol, so escapes leave the fast path.
    fn base64url(&mut self) -> Option<Base64UrlBytes> {
        self.eat(b'"')?;
        let rest = self.s.get(self.i..)?;
        let (bytes, len) = match decode_until_quote(rest) {
            Some(found) => found,
            None => {
                // Longer than the one-pass decoder takes: find the end, then decode.
                let len = rest.iter().position(|&b| b == b'"')?;
                (Base64UrlBytes::decode_bytes(rest.get(..len)?)?, len)
            }
        };
        self.i += len + 1;
        Some(bytes)
    }

    /// The `id` member's text (checked against `rawId` later, as for any response).
    fn id_text(&mut self) -> Option<String> {
        self.printable().map(str::to_owned)
    }

    /// `authenticatorAttachment` (`platform`, `cross-platform`).
    fn attachment(&mut self) -> Option<String> {
        self.printable().map(str::to_owned)
    }

    /// A string of printable ASCII with no escape (so exactly the text `serde_json` gives for
    /// it): the bytes up to the closing quote.
    pub(crate) fn printable(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = self.text.get(self.i..)?;
        let len = plain_len(rest.as_bytes());
        if rest.as_bytes().get(len) != Some(&b'"') {
            return None;
        }
        self.i += len + 1;
        // ASCII up to `len`, so a character boundary.
        rest.get(..len)
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        self.ws();
        let rest = self.s.get(self.i..)?;
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += len;
        Some(value)
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }

    /// The `response` member: `AuthenticatorAssertionResponseJSON`.
    fn assertion(&mut self) -> Option<AssertionResponseJson> {
        let mut client_data_json = None;
        let mut authenticator_data = None;
        let mut signature = None;
        let mut user_handle = None;
        self.object(|key, c| match key {
            b"clientDataJSON" => set(&mut client_data_json, c.base64url()?),
            b"authenticatorData" => set(&mut authenticator_data, c.base64url()?),
            b"signature" => set(&mut signature, c.base64url()?),
            b"userHandle" => set(&mut user_handle, c.base64url()?),
            _ => None,
        })?;
        Some(AssertionResponseJson {
            client_data_json: client_data_json?,
            authenticator_data: authenticator_data?,
            signature: signature?,
            user_handle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(text: &str) -> Option<AuthenticationResponseJson> {
        serde_json::from_str(text).ok()
    }

    /// The fast path either defers or decodes exactly as `serde_json` does.
    fn agrees(text: &str) -> bool {
        match parse_authentication(text) {
            None => false,
            Some(fast) => {
                assert_eq!(Some(&fast), serde(text).as_ref(), "{text:?}");
                true
            }
        }
    }

    const BROWSER: &str = r#"{"id":"AQIDBAUGBwgJCgsMDQ4PEA","rawId":"AQIDBAUGBwgJCgsMDQ4PEA","type":"public-key","response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiQVFJRCIsIm9yaWdpbiI6Imh0dHBzOi8vZXhhbXBsZS5jb20ifQ","authenticatorData":"SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ","signature":"MEUCIQDx","userHandle":"dXNlcg"},"authenticatorAttachment":"platform","clientExtensionResults":{}}"#;

    #[test]
    fn browser_shapes_take_the_fast_path_with_serde_json_s_value() {
        assert!(agrees(BROWSER));
        let spaced = " {\n \"id\" : \"AQID\",\t\"rawId\":\"AQID\" , \"type\":\"public-key\",\r\"response\": { \"clientDataJSON\":\"e30\" , \"authenticatorData\":\"AA==\",\"signature\":\"\" } } \n";
        assert!(agrees(spaced));
        // Members in another order, optional ones absent.
        let minimal = r#"{"response":{"signature":"AA","authenticatorData":"AA","clientDataJSON":"AA"},"type":"public-key","rawId":"AA","id":"AA"}"#;
        assert!(agrees(minimal));
    }

    /// What `SoftAuthenticator` sends (the benches' and tests' responses) takes the fast path.
    #[tokio::test]
    async fn the_soft_authenticator_s_response_takes_the_fast_path() {
        use crate::AuthenticatorVerifier;
        use crate::store::MemoryStore;
        use crate::webauthn::soft::SoftAuthenticator;
        use crate::webauthn::{
            AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig,
            UserEntity, alg,
        };
        let origin = "https://example.com";
        let config = RelyingPartyConfig::new("example.com", "Example", origin).unwrap();
        let rp = RelyingParty::new(config, std::sync::Arc::new(MemoryStore::new()));
        let auth = SoftAuthenticator::new(alg::ES256, origin).unwrap();
        let user = UserEntity::new(vec![7; 16], "ada", "Ada").unwrap();
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user.clone()))
            .await
            .unwrap();
        rp.finish_registration(state, &auth.register(&options).unwrap())
            .await
            .unwrap();
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(user.id.clone()))
            .await
            .unwrap();
        let json = serde_json::to_string(&auth.authenticate(&options).unwrap()).unwrap();
        assert!(agrees(&json), "{json}");
        rp.finish_authentication_json(state, &json).await.unwrap();
    }

    #[test]
    fn plain_len_stops_at_the_first_quote_backslash_control_or_non_ascii_byte() {
        let slow = |b: &[u8]| {
            b.iter()
                .position(|&c| !matches!(c, b' '..=b'~') || c == b'"' || c == b'\\')
                .unwrap_or(b.len())
        };
        let specials = [
            b'"', b'\\', 0x00, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xFF, b'!', b'#', b'[', b']',
        ];
        for len in 0..20 {
            for at in 0..len {
                for &special in &specials {
                    for &second in &specials {
                        let mut t = vec![b'A'; len];
                        t[at] = special;
                        t[(at * 7 + 3) % len] = second;
                        assert_eq!(plain_len(&t), slow(&t), "{t:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for text in [
            // Escapes, null, extension outputs, unknown or duplicated members, array form.
            &BROWSER.replace("\"id\":\"AQ", "\"id\":\"\\u0041Q"),
            &BROWSER.replace("\"userHandle\":\"dXNlcg\"", "\"userHandle\":null"),
            &BROWSER.replace(
                "\"clientExtensionResults\":{}",
                "\"clientExtensionResults\":{\"credProps\":{\"rk\":true}}",
            ),
            &BROWSER.replace("\"type\"", "\"extra\":1,\"type\""),
            &BROWSER.replace(
                "\"type\":\"public-key\"",
                "\"type\":\"public-key\",\"type\":\"public-key\"",
            ),
            &BROWSER.replace(
                "\"signature\":\"MEUCIQDx\"",
                "\"signature\":\"MEUCIQDx\",\"signature\":\"MEUCIQDx\"",
            ),
            r#"["AA","AA","public-key",{"clientDataJSON":"AA","authenticatorData":"AA","signature":"AA"}]"#,
            // Refusals stay serde_json's.
            &BROWSER.replace("MEUCIQDx", "MEUCIQDxB"),
            &BROWSER.replace("dXNlcg", "dXNlch"),
            &BROWSER.replace("MEUCIQDx", "MEUC+QDx"),
            &BROWSER.replace("\"type\":\"public-key\"", "\"type\":\"public\""),
            &BROWSER.replace("\"rawId\":\"AQIDBAUGBwgJCgsMDQ4PEA\",", ""),
            &format!("{BROWSER},"),
            &BROWSER.replace("}}", "},}"),
        ] {
            assert!(!agrees(text), "{text:?}");
        }
    }

    #[test]
    fn mutated_responses_are_decoded_as_serde_json_does_or_left_to_it() {
        let mut next = crate::webauthn::b64::xorshift(0x2545_F491_4F6C_DD1D_u64);
        let pieces: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\n",
            b"=",
            b"==",
            b"A",
            b"-",
            b"_",
            b"+",
            b"null",
            b"1",
            b"\\u0041",
            b"\"id\":\"AA\",",
            b"\x01",
            "é".as_bytes(),
        ];
        let (mut fast, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut t = BROWSER.as_bytes().to_vec();
            for _ in 0..=(next() % 3) {
                let i = (next() as usize) % (t.len() + 1);
                match next() % 3 {
                    0 if i < t.len() => {
                        let end = (i + 1 + (next() as usize) % 4).min(t.len());
                        t.drain(i..end);
                    }
                    _ => {
                        let p = pieces[(next() as usize) % pieces.len()];
                        t.splice(i..i, p.iter().copied());
                    }
                }
            }
            let Ok(text) = String::from_utf8(t) else {
                continue;
            };
            total += 1;
            if agrees(&text) {
                fast += 1;
            }
        }
        // Both outcomes were exercised.
        assert!(fast > 100 && fast < total, "{fast} of {total}");
    }
}
