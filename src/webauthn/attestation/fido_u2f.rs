//! `fido-u2f` attestation (WebAuthn Level 3 §8.6): a U2F (CTAP1) registration signature.

use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};

use super::cert::{CredentialKey, Curve};
use super::{AttestationInput, AttestationOutcome, cert, stmt};
use crate::webauthn::{AttestationType, WebAuthnFailure, alg};

/// Verifies a `fido-u2f` statement: one P-256 attestation certificate signing
/// `0x00 || rpIdHash || clientDataHash || credentialId || publicKeyU2F` with ES256.
pub(crate) fn verify(input: &AttestationInput<'_>) -> Result<AttestationOutcome, WebAuthnFailure> {
    let sig = stmt::bytes(input.att_stmt, "sig", "attestation sig missing")?;
    let chain =
        stmt::x5c(input.att_stmt)?.ok_or(WebAuthnFailure::InvalidAttestation("x5c missing"))?;
    let [leaf_der] = chain.as_slice() else {
        return Err(WebAuthnFailure::InvalidAttestation(
            "fido-u2f x5c must hold exactly one certificate",
        ));
    };
    let leaf = cert::parse(leaf_der)?;
    let spki = leaf.public_key();
    let curve_is_p256 = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .is_some_and(|oid| oid == OID_EC_P256);
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || !curve_is_p256 {
        return Err(WebAuthnFailure::InvalidAttestation(
            "fido-u2f attestation key is not p-256",
        ));
    }
    let key = CredentialKey::from_cose(input.credential_key_cose)?;
    let Some((Curve::P256, public_key_u2f)) = key.sec1_point() else {
        return Err(WebAuthnFailure::InvalidAttestation(
            "fido-u2f credential key is not p-256",
        ));
    };
    let rp_id_hash = input
        .auth_data
        .get(..32)
        .ok_or(WebAuthnFailure::Malformed("authenticator data"))?;
    let mut data = Vec::with_capacity(1 + 32 + 32 + input.credential_id.len() + 65);
    data.push(0x00);
    data.extend_from_slice(rp_id_hash);
    data.extend_from_slice(input.client_data_hash);
    data.extend_from_slice(input.credential_id);
    data.extend_from_slice(&public_key_u2f);
    cert::verify_signature(&leaf, alg::ES256, false, &data, sig)?;
    Ok(AttestationOutcome {
        attestation_type: AttestationType::Basic,
        chain: stmt::owned_chain(&chain),
    })
}
