//! `packed` attestation (WebAuthn Level 3 §8.2).
//!
//! With `x5c` the statement is basic (or attestation CA) attestation by a certificate that must
//! meet §8.2.1; without it, it is self attestation by the credential key.

use x509_parser::x509::X509Version;

use super::{AttestationInput, AttestationOutcome, AttestationPolicy, cert, stmt};
use crate::webauthn::{AttestationType, WebAuthnFailure, cose};

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
        None => verify_self(input),
    }
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

/// Verifies a `packed` statement without `x5c` (self attestation): signed by the credential
/// key with the credential's own algorithm.
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
