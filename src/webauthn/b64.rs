//! Base64url bytes for the WebAuthn JSON forms: unpadded out, padded or unpadded in.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes carried as base64url text in WebAuthn JSON.
///
/// Serializes without padding (as browsers' `toJSON()` does); deserializes with or without
/// padding. Standard-alphabet input (`+`, `/`) is rejected, as browsers reject it.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Base64UrlBytes(pub Vec<u8>);

impl Base64UrlBytes {
    /// Decodes base64url text, padded or not.
    pub fn decode(text: &str) -> Option<Self> {
        let engine = if text.ends_with('=') {
            &URL_SAFE
        } else {
            &URL_SAFE_NO_PAD
        };
        engine.decode(text).ok().map(Base64UrlBytes)
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
}
