//! Attestation statement verification (WebAuthn Level 3 §8), one file per format.
//!
//! The relying party calls `verify` from `finish_registration` once the authenticator data and
//! client data have passed their checks. Each format returns the attestation type and the
//! certificate chain it used; trust decisions (roots, AAGUID allow-lists, metadata) are taken
//! against an [`AttestationPolicy`].

#![allow(dead_code)] // called by the relying party's finish_registration

use std::time::SystemTime;

use super::{AttestationType, WebAuthnFailure};

mod packed;

/// Everything a format verifier may need from a registration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttestationInput<'a> {
    /// The `fmt` member of the attestation object.
    pub(crate) fmt: &'a str,
    /// The `attStmt` member (a CBOR map).
    pub(crate) att_stmt: &'a ciborium::Value,
    /// The raw authenticator data, as signed.
    pub(crate) auth_data: &'a [u8],
    /// SHA-256 of clientDataJSON.
    pub(crate) client_data_hash: &'a [u8; 32],
    /// The AAGUID from the attested credential data.
    pub(crate) aaguid: [u8; 16],
    /// The credential id from the attested credential data.
    pub(crate) credential_id: &'a [u8],
    /// The exact COSE_Key bytes of the credential public key.
    pub(crate) credential_key_cose: &'a [u8],
    /// The credential's COSE algorithm.
    pub(crate) credential_alg: i64,
    /// The verification time (the verifier's injected clock), for certificate validity.
    pub(crate) now: SystemTime,
}

/// The result of a verified attestation statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationOutcome {
    /// How the attestation was established.
    pub attestation_type: AttestationType,
    /// The DER certificates of `x5c`, leaf first (empty for `none` and self attestation).
    pub chain: Vec<Vec<u8>>,
}

/// What the relying party requires of attestations. The default accepts `none` and self
/// attestation and refuses formats it cannot verify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttestationPolicy {}

/// Verifies an attestation statement.
pub(crate) fn verify(
    input: &AttestationInput<'_>,
    _policy: &AttestationPolicy,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    match input.fmt {
        "none" => verify_none(input),
        "packed" => packed::verify_self(input),
        _ => Err(WebAuthnFailure::UnsupportedAttestationFormat),
    }
}

/// `none` (§8.7): the statement must be an empty map.
fn verify_none(input: &AttestationInput<'_>) -> Result<AttestationOutcome, WebAuthnFailure> {
    match input.att_stmt {
        ciborium::Value::Map(m) if m.is_empty() => Ok(AttestationOutcome {
            attestation_type: AttestationType::None,
            chain: Vec::new(),
        }),
        _ => Err(WebAuthnFailure::InvalidAttestation(
            "none attestation statement must be empty",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(fmt: &'a str, stmt: &'a ciborium::Value) -> AttestationInput<'a> {
        AttestationInput {
            fmt,
            att_stmt: stmt,
            auth_data: &[],
            client_data_hash: &[0; 32],
            aaguid: [0; 16],
            credential_id: &[],
            credential_key_cose: &[],
            credential_alg: -7,
            now: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn none_requires_an_empty_statement() {
        let empty = ciborium::Value::Map(vec![]);
        let outcome = verify(&input("none", &empty), &AttestationPolicy::default()).unwrap();
        assert_eq!(outcome.attestation_type, AttestationType::None);
        let full = ciborium::Value::Map(vec![(
            ciborium::Value::Text("alg".into()),
            ciborium::Value::Integer((-7).into()),
        )]);
        assert!(matches!(
            verify(&input("none", &full), &AttestationPolicy::default()),
            Err(WebAuthnFailure::InvalidAttestation(_))
        ));
    }

    #[test]
    fn unknown_formats_are_refused() {
        let empty = ciborium::Value::Map(vec![]);
        assert_eq!(
            verify(
                &input("android-safetynet", &empty),
                &AttestationPolicy::default()
            ),
            Err(WebAuthnFailure::UnsupportedAttestationFormat)
        );
    }
}
