//! [`Secret`]: bytes that must never be printed and are wiped when dropped.

use std::fmt;

use subtle_eq::constant_time_eq;
use zeroize::Zeroize;

/// Secret bytes: API key secrets, one-time codes, session ids, 2-man-rule keys, bearer tokens.
///
/// - `Debug` prints `Secret([REDACTED])`; there is no `Display`.
/// - The bytes are zeroized when the value is dropped (clones are zeroized independently).
/// - Reading the value is explicit: [`Secret::expose`] or [`Secret::expose_str`].
/// - Equality is constant-time in the content (length may leak).
///
/// ```
/// use keyward::Secret;
/// let key = Secret::from("sk-live-123");
/// assert_eq!(format!("{key:?}"), "Secret([REDACTED])");
/// assert_eq!(key.expose_str(), Some("sk-live-123"));
/// ```
#[derive(Clone, Default)]
pub struct Secret {
    bytes: Box<[u8]>,
}

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret {
            bytes: bytes.into().into_boxed_slice(),
        }
    }

    /// The secret bytes. Callers must not log or persist them in clear.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret as UTF-8 text, or `None` if it is not valid UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<String> for Secret {
    fn from(mut value: String) -> Self {
        if value.capacity() == value.len() {
            // Exactly sized: the buffer becomes the secret's, no copy is left behind.
            return Secret {
                bytes: value.into_bytes().into_boxed_slice(),
            };
        }
        let secret = Secret::new(value.as_bytes());
        value.zeroize();
        secret
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value.as_bytes())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Secret {
            bytes: value.into_boxed_slice(),
        }
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Self {
        Secret::new(value)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.bytes, &other.bytes)
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Constant-time comparison, shared by every module that compares secrets.
pub(crate) mod subtle_eq {
    /// Compares two byte strings in time that depends only on their lengths.
    pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        subtle::ConstantTimeEq::ct_eq(a, b).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("hunter2-very-secret");
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn equality_compares_content() {
        assert_eq!(Secret::from("abc"), Secret::from("abc"));
        assert_ne!(Secret::from("abc"), Secret::from("abd"));
        assert_ne!(Secret::from("abc"), Secret::from("abcd"));
    }

    #[test]
    fn exposes_text_and_bytes() {
        let s = Secret::new(vec![0xff, 0x00]);
        assert_eq!(s.expose(), &[0xff, 0x00]);
        assert_eq!(s.expose_str(), None);
        assert_eq!(s.len(), 2);
        assert!(!s.is_empty());
    }
}
