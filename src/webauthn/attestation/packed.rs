//! `packed` attestation (WebAuthn Level 3 §8.2).
//!
//! With `x5c` the statement is basic (or attestation CA) attestation by a certificate that must
//! meet §8.2.1; without it, it is self attestation by the credential key.

use x509_parser::x509::X509Version;

use super::{AttestationInput, AttestationOutcome, AttestationPolicy, cert, stmt};
use crate::webauthn::{AttestationType, WebAuthnFailure};

/// The `OU` a packed attestation certificate must carry.
const ATTESTATION_OU: &str = "Authenticator Attestation";

/// `packed`: x5c (basic) or self attestation. ECDAA (`ecdaaKeyId`, removed in Level 3) is
/// refused.
pub(crate) fn verify(
    input: &AttestationInput<'_>,
    policy: &AttestationPolicy,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    if stmt::member(input.att_stmt, "ecdaaKeyId")?.is_some() {
        return Err(WebAuthnFailure::UnsupportedAttestationFormat);
    }
    match stmt::x5c(input.att_stmt)? {
        Some(chain) => verify_packed_x5c(input, policy, &chain),
        None => verify_packed_self(input),
    }
}

/// `packed` self attestation: provided by the relying-party branch (merged later).
fn verify_packed_self(
    _input: &AttestationInput<'_>,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    Err(WebAuthnFailure::UnsupportedAttestationFormat)
}

/// `packed` with an `x5c` chain: signature by the leaf over `authData || clientDataHash`, leaf
/// certificate requirements of §8.2.1 including the AAGUID extension.
pub(crate) fn verify_packed_x5c(
    input: &AttestationInput<'_>,
    policy: &AttestationPolicy,
    chain: &[&[u8]],
) -> Result<AttestationOutcome, WebAuthnFailure> {
    let alg = stmt::alg(input.att_stmt)?;
    let sig = stmt::bytes(input.att_stmt, "sig", "attestation sig missing")?;
    let leaf_der = chain
        .first()
        .ok_or(WebAuthnFailure::InvalidAttestation("x5c is empty"))?;
    let leaf = cert::parse(leaf_der)?;
    let signed = stmt::signed_data(input.auth_data, input.client_data_hash);
    cert::verify_signature(&leaf, alg, policy.allow_sha1, &signed, sig)?;
    check_leaf_requirements(&leaf)?;
    cert::check_aaguid_extension(&leaf, &input.aaguid)?;
    Ok(AttestationOutcome {
        attestation_type: AttestationType::Basic,
        chain: stmt::owned_chain(chain),
    })
}

/// §8.2.1: version 3, subject C / O / OU = "Authenticator Attestation" / CN, not a CA.
fn check_leaf_requirements(
    leaf: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<(), WebAuthnFailure> {
    if leaf.version() != X509Version::V3 {
        return Err(WebAuthnFailure::InvalidAttestation(
            "attestation certificate is not version 3",
        ));
    }
    let subject = leaf.subject();
    let has_ou = subject
        .iter_organizational_unit()
        .any(|ou| ou.as_str() == Ok(ATTESTATION_OU));
    if subject.iter_country().next().is_none()
        || subject.iter_organization().next().is_none()
        || subject.iter_common_name().next().is_none()
        || !has_ou
    {
        return Err(WebAuthnFailure::InvalidAttestation(
            "attestation certificate subject does not meet packed requirements",
        ));
    }
    if cert::is_ca(leaf) {
        return Err(WebAuthnFailure::InvalidAttestation(
            "attestation certificate must not be a ca",
        ));
    }
    Ok(())
}
