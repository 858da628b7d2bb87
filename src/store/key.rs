//! [`Key`]: a store key bounded by construction, carrying its [`Role`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Which kind of state a key holds; a host may put each role on a different engine
/// (see [`Stores`](super::Stores)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// Short-lived state with a TTL: ceremony challenges, pending codes, attempt and send
    /// counters, sessions, decoy bookkeeping. Losing it costs a user one retry; it must be
    /// shared by every instance (Redis is the natural engine).
    Ephemeral,
    /// Records that must survive restarts: WebAuthn credentials, 2-man-rule keys, stored SSKS
    /// identities. Usually no TTL (PostgreSQL, or Redis with AOF persistence).
    Durable,
}

impl Role {
    /// The one-letter prefix every key of this role starts with (`e` or `d`).
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Ephemeral => "e",
            Role::Durable => "d",
        }
    }
}

/// A store key: `<role>:<namespace>:<part>:<part>…`, at most [`Key::MAX_LEN`] bytes whatever
/// the parts are.
///
/// A part made only of `A-Z a-z 0-9 _ . -` and at most [`Key::MAX_PLAIN_PART`] bytes long is
/// written as is; any other part (long, binary, or with other characters such as `:`) is written
/// as `~` followed by the unpadded base64url SHA-256 of the part (44 bytes). Byte parts
/// ([`Key::bytes`]) are base64url-encoded first, then follow the same rule, so a 1023-byte
/// WebAuthn credential id becomes a 44-byte part. Beyond [`Key::MAX_PARTS`] parts, each further
/// part is folded into the last one by hashing. Two different part lists therefore give two
/// different keys (barring a SHA-256 collision), and no input can make a key too long.
///
/// Every key starts with its [`Role`]'s prefix (`e:` or `d:`), so one engine can hold both roles
/// without collisions and an operator can tell them apart.
///
/// ```
/// use keyward::store::{Key, Role};
/// let key = Key::ephemeral("otp").part("rec").part("ve1");
/// assert_eq!(key.as_str(), "e:otp:rec:ve1");
/// assert_eq!(key.role(), Role::Ephemeral);
/// let long = Key::durable("webauthn").bytes(&[7u8; 1023]);
/// assert!(long.as_str().len() <= Key::MAX_LEN);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    text: String,
    role: Role,
    parts: usize,
}

impl Key {
    /// The longest key text any construction can give.
    pub const MAX_LEN: usize = 2 + Key::MAX_PLAIN_PART + Key::MAX_PARTS * (1 + Key::MAX_PLAIN_PART);
    /// The longest part written as is; longer parts are hashed.
    pub const MAX_PLAIN_PART: usize = 64;
    /// The most parts after the namespace; further parts are folded into the last by hashing.
    pub const MAX_PARTS: usize = 4;

    /// A key of `role` in `namespace` (itself encoded like a part, so any string is safe).
    pub fn new(role: Role, namespace: &str) -> Key {
        let mut text = String::with_capacity(48);
        text.push_str(role.prefix());
        text.push(':');
        push_encoded(&mut text, namespace.as_bytes(), false);
        Key {
            text,
            role,
            parts: 0,
        }
    }

    /// An ephemeral key in `namespace`.
    pub fn ephemeral(namespace: &str) -> Key {
        Key::new(Role::Ephemeral, namespace)
    }

    /// A durable key in `namespace`.
    pub fn durable(namespace: &str) -> Key {
        Key::new(Role::Durable, namespace)
    }

    /// Appends a text part.
    pub fn part(self, part: &str) -> Key {
        self.push(part.as_bytes(), false)
    }

    /// Appends a binary part (an id, a hash), base64url-encoded, or hashed when long.
    pub fn bytes(self, part: &[u8]) -> Key {
        self.push(part, true)
    }

    /// The key's text, as a backend stores it (a backend may add its own prefix).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The key's role.
    pub fn role(&self) -> Role {
        self.role
    }

    fn push(mut self, part: &[u8], binary: bool) -> Key {
        if self.parts < Key::MAX_PARTS {
            self.text.push(':');
            push_encoded(&mut self.text, part, binary);
            self.parts += 1;
            return self;
        }
        // Fold: the last part becomes the hash of (last part, new part), domain-separated from
        // the hash of a single long part.
        let cut = self.text.rfind(':').unwrap_or(self.text.len());
        let last = self.text.split_off(cut + 1);
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&[0x02]);
        ctx.update(&(last.len() as u64).to_be_bytes());
        ctx.update(last.as_bytes());
        ctx.update(&[u8::from(binary)]);
        ctx.update(part);
        self.text.push('~');
        URL_SAFE_NO_PAD.encode_string(ctx.finish().as_ref(), &mut self.text);
        self
    }
}

fn push_encoded(text: &mut String, part: &[u8], binary: bool) {
    if binary {
        // Unpadded base64url: 4 characters per 3 bytes, rounded up. Encoded in place.
        if !part.is_empty() && (part.len() * 4).div_ceil(3) <= Key::MAX_PLAIN_PART {
            push_base64url(text, part);
            return;
        }
    } else if !part.is_empty()
        && part.len() <= Key::MAX_PLAIN_PART
        && part
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        // Only ASCII bytes, so this is valid UTF-8.
        if let Ok(plain) = std::str::from_utf8(part) {
            text.push_str(plain);
            return;
        }
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&[0x01, u8::from(binary)]);
    ctx.update(part);
    text.push('~');
    URL_SAFE_NO_PAD.encode_string(ctx.finish().as_ref(), text);
}

/// Appends the unpadded base64url of a short part (at most 48 bytes): what `URL_SAFE_NO_PAD`
/// writes, without the engine's general machinery (every OTP start and check builds a key).
fn push_base64url(text: &mut String, part: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let symbol = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    text.reserve((part.len() * 4).div_ceil(3));
    let mut groups = part.chunks_exact(3);
    for g in &mut groups {
        let v = (u32::from(g[0]) << 16) | (u32::from(g[1]) << 8) | u32::from(g[2]);
        text.push(symbol(v >> 18));
        text.push(symbol(v >> 12));
        text.push(symbol(v >> 6));
        text.push(symbol(v));
    }
    match *groups.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            text.push(symbol(v >> 18));
            text.push(symbol(v >> 12));
        }
        [a, b] => {
            let v = (u32::from(a) << 16) | (u32::from(b) << 8);
            text.push(symbol(v >> 18));
            text.push(symbol(v >> 12));
            text.push(symbol(v >> 6));
        }
        _ => {}
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Key").field(&self.text).finish()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_parts_stay_readable() {
        let k = Key::durable("webauthn").part("user").bytes(b"\x01\x02\x03");
        assert_eq!(k.as_str(), "d:webauthn:user:AQID");
        assert_eq!(k.role(), Role::Durable);
    }

    #[test]
    fn long_or_odd_parts_are_hashed_and_bounded() {
        let a = Key::ephemeral("x").part("a:b");
        assert!(a.as_str().starts_with("e:x:~"));
        assert_eq!(a.as_str().len(), "e:x:".len() + 44);
        let long = Key::durable("webauthn").part("cred").bytes(&[0xAB; 1023]);
        assert!(long.as_str().len() <= Key::MAX_LEN);
        let other = Key::durable("webauthn").part("cred").bytes(&[0xAB; 1022]);
        assert_ne!(long, other);
        // Empty parts are hashed too, so they cannot merge two separators.
        assert_ne!(Key::ephemeral("x").part(""), Key::ephemeral("x"));
    }

    #[test]
    fn text_and_bytes_parts_never_collide_when_hashed() {
        let t = Key::ephemeral("x").part(&"é".repeat(40));
        let b = Key::ephemeral("x").bytes("é".repeat(40).as_bytes());
        assert_ne!(t, b);
    }

    #[test]
    fn any_number_of_parts_stays_bounded_and_distinct() {
        let mut k = Key::ephemeral(&"n".repeat(500));
        let mut seen = std::collections::HashSet::new();
        for i in 0..20 {
            k = k.part(&"p".repeat(64)).bytes(&[i; 100]);
            assert!(k.as_str().len() <= Key::MAX_LEN, "{}", k.as_str().len());
            assert!(seen.insert(k.as_str().to_owned()));
        }
    }

    #[test]
    fn short_binary_parts_are_the_base64_crates_encoding() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 1..=48usize {
            for _ in 0..8 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                let mut ours = String::from("x:");
                push_base64url(&mut ours, &bytes);
                assert_eq!(ours, format!("x:{}", URL_SAFE_NO_PAD.encode(&bytes)));
                let key = Key::ephemeral("n").bytes(&bytes);
                assert_eq!(
                    key.as_str(),
                    format!("e:n:{}", URL_SAFE_NO_PAD.encode(&bytes))
                );
            }
        }
        // 49 bytes encode to 66 symbols, over the plain limit: hashed.
        assert!(
            Key::ephemeral("n")
                .bytes(&[1; 49])
                .as_str()
                .starts_with("e:n:~")
        );
    }

    #[test]
    fn roles_never_share_a_key() {
        assert_ne!(
            Key::ephemeral("a").part("b").as_str(),
            Key::durable("a").part("b").as_str()
        );
    }
}
