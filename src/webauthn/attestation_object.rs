//! The attestation object (WebAuthn Level 3 §6.5): a CBOR map of `fmt`, `attStmt` and
//! `authData`, bounded in size and nesting.

use super::WebAuthnFailure;
use super::auth_data::AuthenticatorData;
use crate::error::{Error, Result};

/// CBOR nesting allowed in an attestation object (statements hold arrays of certificates and, for
/// some formats, small maps).
const RECURSION_LIMIT: usize = 16;

/// A decoded attestation object.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationObject {
    fmt: String,
    att_stmt: ciborium::Value,
    auth_data: Vec<u8>,
}

impl AttestationObject {
    /// Decodes an attestation object of at most `max_len` bytes.
    pub fn parse(bytes: &[u8], max_len: usize) -> Result<Self> {
        Self::parse_raw(bytes, max_len).map_err(Error::webauthn)
    }

    pub(crate) fn parse_raw(bytes: &[u8], max_len: usize) -> Result<Self, WebAuthnFailure> {
        const WHAT: &str = "attestation object";
        if bytes.len() > max_len {
            return Err(WebAuthnFailure::TooLarge(WHAT));
        }
        let mut reader = bytes;
        let value: ciborium::Value =
            ciborium::de::from_reader_with_recursion_limit(&mut reader, RECURSION_LIMIT)
                .map_err(|_| WebAuthnFailure::Malformed(WHAT))?;
        if !reader.is_empty() {
            return Err(WebAuthnFailure::Malformed(WHAT));
        }
        let ciborium::Value::Map(entries) = value else {
            return Err(WebAuthnFailure::Malformed(WHAT));
        };
        let (mut fmt, mut att_stmt, mut auth_data) = (None, None, None);
        for (k, v) in entries {
            match (k.as_text(), v) {
                (Some("fmt"), ciborium::Value::Text(t)) if fmt.is_none() => fmt = Some(t),
                (Some("attStmt"), v @ ciborium::Value::Map(_)) if att_stmt.is_none() => {
                    att_stmt = Some(v)
                }
                (Some("authData"), ciborium::Value::Bytes(b)) if auth_data.is_none() => {
                    auth_data = Some(b)
                }
                _ => return Err(WebAuthnFailure::Malformed(WHAT)),
            }
        }
        match (fmt, att_stmt, auth_data) {
            (Some(fmt), Some(att_stmt), Some(auth_data)) => Ok(AttestationObject {
                fmt,
                att_stmt,
                auth_data,
            }),
            _ => Err(WebAuthnFailure::Malformed(WHAT)),
        }
    }

    /// The attestation statement format (`none`, `packed`, ...).
    pub fn format(&self) -> &str {
        &self.fmt
    }

    /// The raw authenticator data.
    pub fn auth_data_bytes(&self) -> &[u8] {
        &self.auth_data
    }

    /// The attestation statement (a CBOR map).
    pub(crate) fn statement(&self) -> &ciborium::Value {
        &self.att_stmt
    }

    /// Parses the authenticator data (at most `max_len` bytes).
    pub fn authenticator_data(&self, max_len: usize) -> Result<AuthenticatorData<'_>> {
        AuthenticatorData::parse(&self.auth_data, max_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn decodes_and_refuses_wrong_shapes() {
        let good = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(vec![0; 37])),
        ]);
        let obj = AttestationObject::parse_raw(&enc(&good), 1024).unwrap();
        assert_eq!(obj.format(), "none");
        let mut trailing = enc(&good);
        trailing.push(0);
        assert!(AttestationObject::parse_raw(&trailing, 1024).is_err());
        let missing = Value::Map(vec![(
            Value::Text("fmt".into()),
            Value::Text("none".into()),
        )]);
        assert!(AttestationObject::parse_raw(&enc(&missing), 1024).is_err());
        let mut deep = Value::Map(vec![]);
        for _ in 0..100 {
            deep = Value::Array(vec![deep]);
        }
        assert!(AttestationObject::parse_raw(&enc(&deep), 4096).is_err());
        assert_eq!(
            AttestationObject::parse_raw(&enc(&good), 10),
            Err(WebAuthnFailure::TooLarge("attestation object"))
        );
    }
}
