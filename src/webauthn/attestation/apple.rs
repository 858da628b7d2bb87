//! `apple` anonymous attestation (WebAuthn Level 3 §8.8).

use super::cert::CredentialKey;
use super::{AttestationInput, AttestationOutcome, cert, stmt};
use crate::webauthn::{AttestationType, WebAuthnFailure};

/// Verifies an `apple` statement: the credential certificate's nonce extension equals
/// SHA-256(`authData || clientDataHash`) and its key is the credential key.
pub(crate) fn verify(input: &AttestationInput<'_>) -> Result<AttestationOutcome, WebAuthnFailure> {
    let chain =
        stmt::x5c(input.att_stmt)?.ok_or(WebAuthnFailure::InvalidAttestation("x5c missing"))?;
    let cred_cert_der = chain
        .first()
        .ok_or(WebAuthnFailure::InvalidAttestation("x5c is empty"))?;
    let cred_cert = cert::parse(cred_cert_der)?;
    let signed = stmt::signed_data(input.auth_data, input.client_data_hash);
    let expected = ring::digest::digest(&ring::digest::SHA256, &signed);
    let (value, _) = cert::extension(&cred_cert, cert::OID_APPLE_NONCE)?.ok_or(
        WebAuthnFailure::InvalidAttestation("apple nonce extension missing"),
    )?;
    let nonce = cert::decode_apple_nonce(value).ok_or(WebAuthnFailure::InvalidAttestation(
        "malformed apple nonce extension",
    ))?;
    if nonce.as_slice() != expected.as_ref() {
        return Err(WebAuthnFailure::InvalidAttestation(
            "apple nonce does not match the registration",
        ));
    }
    let key = CredentialKey::from_cose(input.credential_key_cose)?;
    if !key.matches_spki(cred_cert.public_key()) {
        return Err(WebAuthnFailure::InvalidAttestation(
            "apple certificate key is not the credential key",
        ));
    }
    Ok(AttestationOutcome {
        attestation_type: AttestationType::AnonCa,
        chain: stmt::owned_chain(&chain),
    })
}
