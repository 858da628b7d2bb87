//! Trust decisions on a verified attestation: trust anchors, certificate path validation at the
//! verification time, AAGUID allow-lists and metadata status.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::time::ASN1Time;

use super::mds::{AuthenticatorStatus, MetadataEntry};
use super::{AttestationInput, AttestationOutcome, AttestationPolicy, cert};
use crate::error::{Error, Result};
use crate::webauthn::{AttestationType, WebAuthnFailure};

/// A trusted attestation root certificate, optionally restricted to some attestation formats
/// and some authenticator models (AAGUIDs).
#[derive(Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    der: Vec<u8>,
    formats: Vec<String>,
    aaguids: Vec<[u8; 16]>,
}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = cert::parse(&self.der)
            .map(|c| c.subject().to_string())
            .unwrap_or_default();
        f.debug_struct("TrustAnchor")
            .field("subject", &subject)
            .field("formats", &self.formats)
            .field("aaguids", &self.aaguids.len())
            .finish()
    }
}

impl TrustAnchor {
    /// A root from its DER certificate. Fails if the certificate does not parse.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Self> {
        let der = der.into();
        if cert::parse(&der).is_err() {
            return Err(Error::invalid_input(
                "trust anchor is not a DER certificate",
            ));
        }
        Ok(TrustAnchor {
            der,
            formats: Vec::new(),
            aaguids: Vec::new(),
        })
    }

    /// Every `CERTIFICATE` block of a PEM text, as roots. Fails if there is none or one does
    /// not parse.
    pub fn from_pem(pem: &str) -> Result<Vec<Self>> {
        let mut anchors = Vec::new();
        for block in Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(|_| Error::invalid_input("malformed pem"))?;
            if block.label == "CERTIFICATE" {
                anchors.push(TrustAnchor::from_der(block.contents)?);
            }
        }
        if anchors.is_empty() {
            return Err(Error::invalid_input("no certificate in pem"));
        }
        Ok(anchors)
    }

    /// Restricts the root to attestation format `fmt` (`packed`, `tpm`, ...). May be called
    /// several times; without it the root serves every format.
    pub fn for_format(mut self, fmt: impl Into<String>) -> Self {
        self.formats.push(fmt.into());
        self
    }

    /// Restricts the root to the authenticator model `aaguid`. May be called several times;
    /// without it the root serves every model.
    pub fn for_aaguid(mut self, aaguid: [u8; 16]) -> Self {
        self.aaguids.push(aaguid);
        self
    }

    /// The DER certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    fn applies(&self, fmt: &str, aaguid: &[u8; 16]) -> bool {
        (self.formats.is_empty() || self.formats.iter().any(|f| f == fmt))
            && (self.aaguids.is_empty() || self.aaguids.contains(aaguid))
    }
}

fn asn1_time(now: SystemTime) -> std::result::Result<ASN1Time, WebAuthnFailure> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or(WebAuthnFailure::UntrustedAttestation(
            "verification time out of range",
        ))?;
    ASN1Time::from_timestamp(secs)
        .map_err(|_| WebAuthnFailure::UntrustedAttestation("verification time out of range"))
}

fn path_len_allows(ca: &X509Certificate<'_>, intermediates_below: usize) -> bool {
    match ca.basic_constraints() {
        Ok(Some(bc)) => bc
            .value
            .path_len_constraint
            .is_none_or(|n| usize::try_from(n).is_ok_and(|n| n >= intermediates_below)),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Issuer name, signature, and the issuer's key usage (if present) allowing certificate signing.
fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    let may_sign_certs = match issuer.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    may_sign_certs
        && child.issuer().as_raw() == issuer.subject().as_raw()
        && child.verify_signature(Some(issuer.public_key())).is_ok()
}

/// RFC 5280 §4.2: a critical extension that cannot be processed makes the certificate unusable.
fn critical_extensions_understood(cert: &X509Certificate<'_>) -> bool {
    cert.extensions().iter().all(|ext| {
        !ext.critical
            || !(ext.parsed_extension().unsupported() || ext.parsed_extension().error().is_some())
    })
}

/// Validates `chain` (DER, leaf first) up to one of `anchors` at time `now`: every certificate
/// (anchor included) valid at `now`, each one signed by the next, intermediates marked as CAs
/// within their path length, issuers allowed to sign certificates by their key usage, no
/// unknown critical extension. The chain may or may not include the root itself.
pub(crate) fn validate_chain(
    chain: &[Vec<u8>],
    anchors: &[&[u8]],
    now: SystemTime,
) -> std::result::Result<(), WebAuthnFailure> {
    let at = asn1_time(now)?;
    let certs = chain
        .iter()
        .map(|der| cert::parse(der))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "empty certificate chain",
        ));
    }
    if certs.iter().any(|c| !c.validity().is_valid_at(at)) {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "attestation certificate not valid at verification time",
        ));
    }
    if !certs.iter().all(critical_extensions_understood) {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "attestation certificate has an unknown critical extension",
        ));
    }
    let roots = anchors
        .iter()
        .filter_map(|der| cert::parse(der).ok())
        .filter(|root| root.validity().is_valid_at(at) && critical_extensions_understood(root))
        .collect::<Vec<_>>();
    for (i, current) in certs.iter().enumerate() {
        if chain
            .get(i)
            .is_some_and(|der| anchors.contains(&der.as_slice()))
            && i > 0
        {
            return Ok(());
        }
        if roots
            .iter()
            .any(|root| issued_by(current, root) && path_len_allows(root, i))
        {
            return Ok(());
        }
        let Some(next) = certs.get(i + 1) else { break };
        if !(cert::is_ca(next) && issued_by(current, next) && path_len_allows(next, i)) {
            return Err(WebAuthnFailure::UntrustedAttestation(
                "certificate chain is broken",
            ));
        }
    }
    Err(WebAuthnFailure::UntrustedAttestation(
        "certificate chain does not reach a trusted root",
    ))
}

/// The failure reason naming the status report that refused a registration.
fn refusal_reason(status: &AuthenticatorStatus) -> &'static str {
    match status {
        AuthenticatorStatus::Revoked => "metadata status report: REVOKED",
        AuthenticatorStatus::AttestationKeyCompromise => {
            "metadata status report: ATTESTATION_KEY_COMPROMISE"
        }
        AuthenticatorStatus::UserVerificationBypass => {
            "metadata status report: USER_VERIFICATION_BYPASS"
        }
        AuthenticatorStatus::UserKeyRemoteCompromise => {
            "metadata status report: USER_KEY_REMOTE_COMPROMISE"
        }
        AuthenticatorStatus::UserKeyPhysicalCompromise => {
            "metadata status report: USER_KEY_PHYSICAL_COMPROMISE"
        }
        AuthenticatorStatus::NotFidoCertified => "metadata status report: NOT_FIDO_CERTIFIED",
        AuthenticatorStatus::UpdateAvailable => "metadata status report: UPDATE_AVAILABLE",
        AuthenticatorStatus::SelfAssertionSubmitted => {
            "metadata status report: SELF_ASSERTION_SUBMITTED"
        }
        AuthenticatorStatus::FidoCertified => "metadata status report: FIDO_CERTIFIED",
        AuthenticatorStatus::Other(_) => "metadata status report refused by policy",
    }
}

/// Applies the policy to a verified statement: AAGUID allow-list, metadata status, required
/// trust and path validation.
pub(crate) fn evaluate(
    input: &AttestationInput<'_>,
    outcome: &AttestationOutcome,
    policy: &AttestationPolicy,
) -> std::result::Result<(), WebAuthnFailure> {
    if let Some(allowed) = &policy.allowed_aaguids
        && !allowed.contains(&input.aaguid)
    {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "authenticator model not allowed",
        ));
    }
    let blob = policy.metadata_blob();
    let entry: Option<&MetadataEntry> = blob
        .as_deref()
        .and_then(|blob| blob.entry_for(&input.aaguid, outcome.chain.first()));
    if let Some(entry) = entry
        && let Some(report) = policy.status_policy.refusing_report(entry, &outcome.chain)
    {
        return Err(WebAuthnFailure::UntrustedAttestation(refusal_reason(
            report.status(),
        )));
    }
    match outcome.attestation_type {
        AttestationType::None | AttestationType::SelfAttestation => {
            if policy.require_trusted {
                return Err(WebAuthnFailure::UntrustedAttestation(
                    "trusted attestation required",
                ));
            }
            return Ok(());
        }
        _ => {}
    }
    if !policy.require_trusted {
        return Ok(());
    }
    let mut anchors: Vec<&[u8]> = policy
        .roots
        .iter()
        .filter(|root| root.applies(input.fmt, &input.aaguid))
        .map(|root| root.der.as_slice())
        .collect();
    if let Some(entry) = entry {
        anchors.extend(entry.attestation_roots().iter().map(Vec::as_slice));
    }
    if anchors.is_empty() {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "no trust root configured for this authenticator",
        ));
    }
    validate_chain(&outcome.chain, &anchors, input.now)
}
