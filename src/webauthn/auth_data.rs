//! Authenticator data (WebAuthn Level 3 §6.1): rpIdHash, flags, signature counter, attested
//! credential data and extensions, parsed without copying.

use super::WebAuthnFailure;
use super::cose;
use super::verify::CredentialPublicKey;
use crate::error::{Error, Result};

/// The authenticator-data flags.
pub mod flags {
    /// User present.
    pub const UP: u8 = 0x01;
    /// User verified.
    pub const UV: u8 = 0x04;
    /// Backup eligible.
    pub const BE: u8 = 0x08;
    /// Backed up.
    pub const BS: u8 = 0x10;
    /// Attested credential data included.
    pub const AT: u8 = 0x40;
    /// Extension data included.
    pub const ED: u8 = 0x80;
}

/// Largest credential id (WebAuthn Level 3 §7.1 step 25).
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// CBOR nesting allowed in the extensions map.
const EXTENSIONS_RECURSION_LIMIT: usize = 16;

/// Attested credential data from a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredentialData<'a> {
    aaguid: [u8; 16],
    credential_id: &'a [u8],
    public_key_cose: &'a [u8],
    public_key: CredentialPublicKey,
}

impl<'a> AttestedCredentialData<'a> {
    /// The authenticator model.
    pub fn aaguid(&self) -> [u8; 16] {
        self.aaguid
    }
    /// The credential id.
    pub fn credential_id(&self) -> &'a [u8] {
        self.credential_id
    }
    /// The exact COSE_Key bytes.
    pub fn public_key_cose(&self) -> &'a [u8] {
        self.public_key_cose
    }
    /// The decoded, validated public key.
    pub fn public_key(&self) -> &CredentialPublicKey {
        &self.public_key
    }
}

/// Parsed authenticator data, borrowing the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData<'a> {
    raw: &'a [u8],
    flags: u8,
    sign_count: u32,
    attested: Option<AttestedCredentialData<'a>>,
    extensions: Option<&'a [u8]>,
}

fn take<'a>(
    bytes: &mut &'a [u8],
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], WebAuthnFailure> {
    if bytes.len() < n {
        return Err(WebAuthnFailure::Malformed(what));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

impl<'a> AuthenticatorData<'a> {
    /// Parses authenticator data of at most `max_len` bytes.
    pub fn parse(bytes: &'a [u8], max_len: usize) -> Result<Self> {
        Self::parse_raw(bytes, max_len).map_err(Error::webauthn)
    }

    pub(crate) fn parse_raw(raw: &'a [u8], max_len: usize) -> Result<Self, WebAuthnFailure> {
        if raw.len() > max_len {
            return Err(WebAuthnFailure::TooLarge("authenticator data"));
        }
        let mut rest = raw;
        take(&mut rest, 32, "authenticator data")?;
        let flags = *take(&mut rest, 1, "authenticator data")?
            .first()
            .ok_or(WebAuthnFailure::Malformed("authenticator data"))?;
        let mut counter = [0u8; 4];
        counter.copy_from_slice(take(&mut rest, 4, "authenticator data")?);
        let sign_count = u32::from_be_bytes(counter);

        let attested = if flags & flags::AT != 0 {
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(take(&mut rest, 16, "attested credential data")?);
            let len = take(&mut rest, 2, "attested credential data")?;
            let len = usize::from(u16::from_be_bytes([
                len.first().copied().unwrap_or(0),
                len.get(1).copied().unwrap_or(0),
            ]));
            if len > MAX_CREDENTIAL_ID_LEN {
                return Err(WebAuthnFailure::TooLarge("credential id"));
            }
            if len == 0 {
                return Err(WebAuthnFailure::Malformed("attested credential data"));
            }
            let credential_id = take(&mut rest, len, "attested credential data")?;
            let (public_key, used) = cose::decode_prefix(rest)?;
            let public_key_cose = take(&mut rest, used, "attested credential data")?;
            Some(AttestedCredentialData {
                aaguid,
                credential_id,
                public_key_cose,
                public_key,
            })
        } else {
            None
        };

        let extensions = if flags & flags::ED != 0 {
            let mut reader: &[u8] = rest;
            let value: ciborium::Value = ciborium::de::from_reader_with_recursion_limit(
                &mut reader,
                EXTENSIONS_RECURSION_LIMIT,
            )
            .map_err(|_| WebAuthnFailure::Malformed("authenticator extensions"))?;
            if !matches!(value, ciborium::Value::Map(_)) {
                return Err(WebAuthnFailure::Malformed("authenticator extensions"));
            }
            let used = rest.len() - reader.len();
            Some(take(&mut rest, used, "authenticator extensions")?)
        } else {
            None
        };

        if !rest.is_empty() {
            // Bytes left over: after the COSE key (no ED flag) or after the extensions.
            return Err(if attested.is_some() && extensions.is_none() {
                WebAuthnFailure::InvalidPublicKey
            } else {
                WebAuthnFailure::Malformed("authenticator data has trailing bytes")
            });
        }
        Ok(AuthenticatorData {
            raw,
            flags,
            sign_count,
            attested,
            extensions,
        })
    }

    /// The raw bytes, as signed.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// SHA-256 of the RP id the authenticator scoped the credential to.
    pub fn rp_id_hash(&self) -> &'a [u8] {
        self.raw.get(..32).unwrap_or_default()
    }

    /// The raw flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// User present.
    pub fn user_present(&self) -> bool {
        self.flags & flags::UP != 0
    }

    /// User verified.
    pub fn user_verified(&self) -> bool {
        self.flags & flags::UV != 0
    }

    /// Backup eligible.
    pub fn backup_eligible(&self) -> bool {
        self.flags & flags::BE != 0
    }

    /// Backed up.
    pub fn backed_up(&self) -> bool {
        self.flags & flags::BS != 0
    }

    /// The signature counter.
    pub fn sign_count(&self) -> u32 {
        self.sign_count
    }

    /// Attested credential data (registrations).
    pub fn attested_credential(&self) -> Option<&AttestedCredentialData<'a>> {
        self.attested.as_ref()
    }

    /// The CBOR extensions map, raw.
    pub fn extensions(&self) -> Option<&'a [u8]> {
        self.extensions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(flags: u8) -> Vec<u8> {
        let mut v = vec![7u8; 32];
        v.push(flags);
        v.extend_from_slice(&5u32.to_be_bytes());
        v
    }

    #[test]
    fn parses_an_assertion_shape() {
        let raw = base(flags::UP | flags::UV);
        let a = AuthenticatorData::parse_raw(&raw, 1024).unwrap();
        assert!(a.user_present() && a.user_verified() && !a.backup_eligible());
        assert_eq!(a.sign_count(), 5);
        assert_eq!(a.rp_id_hash(), &[7u8; 32][..]);
        assert!(a.attested_credential().is_none());
    }

    #[test]
    fn refuses_truncation_trailing_bytes_and_long_ids() {
        let raw = base(flags::UP);
        for n in 0..raw.len() {
            assert!(AuthenticatorData::parse_raw(&raw[..n], 1024).is_err());
        }
        let mut extra = raw.clone();
        extra.push(0);
        assert!(AuthenticatorData::parse_raw(&extra, 1024).is_err());
        let mut ed = base(flags::UP | flags::ED);
        ed.push(0xa0);
        assert!(
            AuthenticatorData::parse_raw(&ed, 1024)
                .unwrap()
                .extensions()
                .is_some()
        );
        let mut ed_not_map = base(flags::UP | flags::ED);
        ed_not_map.push(0x01);
        assert!(AuthenticatorData::parse_raw(&ed_not_map, 1024).is_err());
        let mut long = base(flags::UP | flags::AT);
        long.extend_from_slice(&[0; 16]);
        long.extend_from_slice(&1024u16.to_be_bytes());
        long.extend_from_slice(&[1; 1024]);
        assert_eq!(
            AuthenticatorData::parse_raw(&long, 4096),
            Err(WebAuthnFailure::TooLarge("credential id"))
        );
        assert_eq!(
            AuthenticatorData::parse_raw(&long, 100),
            Err(WebAuthnFailure::TooLarge("authenticator data"))
        );
    }
}
