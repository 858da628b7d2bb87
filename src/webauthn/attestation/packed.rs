//! `packed` attestation (WebAuthn Level 3 §8.2), self attestation only: the statement has no
//! `x5c` and is signed by the credential key itself. Statements with `x5c` are refused with
//! [`WebAuthnFailure::UnsupportedAttestationFormat`] until certificate-chain support lands.

use super::{AttestationInput, AttestationOutcome};
use crate::webauthn::{AttestationType, WebAuthnFailure, cose};

/// Verifies a `packed` statement without `x5c` (self attestation).
pub(crate) fn verify_self(
    input: &AttestationInput<'_>,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    let ciborium::Value::Map(entries) = input.att_stmt else {
        return Err(WebAuthnFailure::InvalidAttestation(
            "packed statement is not a map",
        ));
    };
    let mut alg = None;
    let mut sig = None;
    for (k, v) in entries {
        match (k.as_text(), v) {
            (Some("alg"), ciborium::Value::Integer(i)) if alg.is_none() => {
                alg =
                    Some(i64::try_from(*i).map_err(|_| {
                        WebAuthnFailure::InvalidAttestation("packed alg out of range")
                    })?);
            }
            (Some("sig"), ciborium::Value::Bytes(b)) if sig.is_none() => sig = Some(b.as_slice()),
            (Some("x5c"), _) => return Err(WebAuthnFailure::UnsupportedAttestationFormat),
            _ => {
                return Err(WebAuthnFailure::InvalidAttestation(
                    "packed statement has an unexpected member",
                ));
            }
        }
    }
    let (Some(alg), Some(sig)) = (alg, sig) else {
        return Err(WebAuthnFailure::InvalidAttestation(
            "packed statement lacks alg or sig",
        ));
    };
    if alg != input.credential_alg {
        return Err(WebAuthnFailure::InvalidAttestation(
            "self attestation alg differs from the credential's",
        ));
    }
    let mut msg = Vec::with_capacity(input.auth_data.len() + input.client_data_hash.len());
    msg.extend_from_slice(input.auth_data);
    msg.extend_from_slice(input.client_data_hash);
    cose::verify_signature(input.credential_key_cose, alg, &msg, sig).map_err(|e| match e {
        WebAuthnFailure::InvalidSignature => {
            WebAuthnFailure::InvalidAttestation("self attestation signature does not verify")
        }
        other => other,
    })?;
    Ok(AttestationOutcome {
        attestation_type: AttestationType::SelfAttestation,
        chain: Vec::new(),
    })
}
