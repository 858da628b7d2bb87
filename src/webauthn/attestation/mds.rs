//! FIDO Metadata Service v3: load a MDS3 BLOB (a signed JWT) from bytes or a file, check its
//! signature and certificate chain against the FIDO root you supply, and look authenticators up
//! by AAGUID (or, for `fido-u2f`, by attestation key identifier).
//!
//! This module has no network: [`MetadataService`](super::MetadataService) (feature `mds`)
//! downloads the BLOB from <https://mds3.fidoalliance.org/>, caches it in the state store and
//! refreshes it; the FIDO root certificate is always the host's to supply. Certificate
//! revocation lists of the BLOB's chain are not checked.

use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;

use super::cert;
use super::trust::{TrustAnchor, validate_chain};
use crate::error::{Error, ErrorKind, Result};
use crate::webauthn::WebAuthnFailure;

/// Largest BLOB accepted (the real one is a few megabytes).
pub const MAX_BLOB_LEN: usize = 32 * 1024 * 1024;

/// An authenticator status from a metadata status report (FIDO MDS3 §3.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthenticatorStatus {
    /// `NOT_FIDO_CERTIFIED`.
    NotFidoCertified,
    /// `FIDO_CERTIFIED` or any `FIDO_CERTIFIED_*` level.
    FidoCertified,
    /// `USER_VERIFICATION_BYPASS`: malware can bypass user verification.
    UserVerificationBypass,
    /// `ATTESTATION_KEY_COMPROMISE`: the attestation key is known to be compromised.
    AttestationKeyCompromise,
    /// `USER_KEY_REMOTE_COMPROMISE`: credential keys can be extracted remotely.
    UserKeyRemoteCompromise,
    /// `USER_KEY_PHYSICAL_COMPROMISE`: credential keys can be extracted with physical access.
    UserKeyPhysicalCompromise,
    /// `UPDATE_AVAILABLE`.
    UpdateAvailable,
    /// `REVOKED`: the vendor's certification was revoked.
    Revoked,
    /// `SELF_ASSERTION_SUBMITTED`.
    SelfAssertionSubmitted,
    /// Any other status string.
    Other(String),
}

impl AuthenticatorStatus {
    fn parse(s: &str) -> Self {
        match s {
            "NOT_FIDO_CERTIFIED" => Self::NotFidoCertified,
            "USER_VERIFICATION_BYPASS" => Self::UserVerificationBypass,
            "ATTESTATION_KEY_COMPROMISE" => Self::AttestationKeyCompromise,
            "USER_KEY_REMOTE_COMPROMISE" => Self::UserKeyRemoteCompromise,
            "USER_KEY_PHYSICAL_COMPROMISE" => Self::UserKeyPhysicalCompromise,
            "UPDATE_AVAILABLE" => Self::UpdateAvailable,
            "REVOKED" => Self::Revoked,
            "SELF_ASSERTION_SUBMITTED" => Self::SelfAssertionSubmitted,
            s if s == "FIDO_CERTIFIED" || s.starts_with("FIDO_CERTIFIED_") => Self::FidoCertified,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The status as the BLOB spells it (`FIDO_CERTIFIED` for every certification level).
    pub fn as_str(&self) -> &str {
        match self {
            Self::NotFidoCertified => "NOT_FIDO_CERTIFIED",
            Self::FidoCertified => "FIDO_CERTIFIED",
            Self::UserVerificationBypass => "USER_VERIFICATION_BYPASS",
            Self::AttestationKeyCompromise => "ATTESTATION_KEY_COMPROMISE",
            Self::UserKeyRemoteCompromise => "USER_KEY_REMOTE_COMPROMISE",
            Self::UserKeyPhysicalCompromise => "USER_KEY_PHYSICAL_COMPROMISE",
            Self::UpdateAvailable => "UPDATE_AVAILABLE",
            Self::Revoked => "REVOKED",
            Self::SelfAssertionSubmitted => "SELF_ASSERTION_SUBMITTED",
            Self::Other(s) => s,
        }
    }

    /// True for the statuses that make an authenticator untrustworthy: revoked, or any key
    /// compromise or user-verification bypass.
    pub fn is_compromised(&self) -> bool {
        matches!(
            self,
            Self::Revoked
                | Self::AttestationKeyCompromise
                | Self::UserVerificationBypass
                | Self::UserKeyRemoteCompromise
                | Self::UserKeyPhysicalCompromise
        )
    }
}

/// One status report of a metadata entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    status: AuthenticatorStatus,
    effective_date: Option<String>,
    certificate: Option<Vec<u8>>,
}

impl StatusReport {
    /// The status.
    pub fn status(&self) -> &AuthenticatorStatus {
        &self.status
    }
    /// `effectiveDate` (`YYYY-MM-DD`), when the report has one.
    pub fn effective_date(&self) -> Option<&str> {
        self.effective_date.as_deref()
    }
    /// The DER certificate the report is about (for `ATTESTATION_KEY_COMPROMISE`: the one
    /// compromised attestation certificate), when the report names one.
    pub fn certificate(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }
}

/// What a registration does with the status reports of its authenticator's metadata entry
/// (applied when the [`AttestationPolicy`](super::AttestationPolicy) has metadata).
///
/// The default refuses `REVOKED`, `ATTESTATION_KEY_COMPROMISE`, `USER_VERIFICATION_BYPASS`,
/// `USER_KEY_REMOTE_COMPROMISE` and `USER_KEY_PHYSICAL_COMPROMISE`, and accepts every other
/// status (`FIDO_CERTIFIED*`, `NOT_FIDO_CERTIFIED`, `UPDATE_AVAILABLE`,
/// `SELF_ASSERTION_SUBMITTED`, unknown ones). Rules:
///
/// - every report of the entry counts, not only the latest: a later `FIDO_CERTIFIED` or
///   `UPDATE_AVAILABLE` does not undo a compromise for the devices already in the field;
/// - an `ATTESTATION_KEY_COMPROMISE` report that names a `certificate` refuses only
///   registrations whose attestation chain holds that certificate (one batch key leaked, not
///   the model);
/// - a report's `effectiveDate` is not waited for: a revocation announced for a later date
///   already refuses new registrations;
/// - credentials registered before a report are not touched: re-evaluate the stored
///   `attestation_chain` / `aaguid` of each credential if you want to act on them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataStatusPolicy {
    refused: Vec<AuthenticatorStatus>,
}

impl Default for MetadataStatusPolicy {
    fn default() -> Self {
        MetadataStatusPolicy {
            refused: vec![
                AuthenticatorStatus::Revoked,
                AuthenticatorStatus::AttestationKeyCompromise,
                AuthenticatorStatus::UserVerificationBypass,
                AuthenticatorStatus::UserKeyRemoteCompromise,
                AuthenticatorStatus::UserKeyPhysicalCompromise,
            ],
        }
    }
}

impl MetadataStatusPolicy {
    /// A policy that refuses no status (metadata then only contributes roots).
    pub fn accept_all() -> Self {
        MetadataStatusPolicy {
            refused: Vec::new(),
        }
    }

    /// Also refuses authenticators with a report of `status` (`NotFidoCertified`, say).
    pub fn refuse(mut self, status: AuthenticatorStatus) -> Self {
        if !self.refused.contains(&status) {
            self.refused.push(status);
        }
        self
    }

    /// Accepts authenticators with a report of `status` (`UserVerificationBypass` for a site
    /// that never relies on user verification, say).
    pub fn accept(mut self, status: &AuthenticatorStatus) -> Self {
        self.refused.retain(|s| s != status);
        self
    }

    /// Whether a report of `status` refuses a registration.
    pub fn refuses(&self, status: &AuthenticatorStatus) -> bool {
        self.refused.contains(status)
    }

    /// The first report of `entry` that refuses a registration whose attestation chain (DER,
    /// leaf first) is `chain`.
    pub fn refusing_report<'a>(
        &self,
        entry: &'a MetadataEntry,
        chain: &[Vec<u8>],
    ) -> Option<&'a StatusReport> {
        entry.reports.iter().find(|report| {
            self.refuses(&report.status)
                && match (&report.status, &report.certificate) {
                    (AuthenticatorStatus::AttestationKeyCompromise, Some(cert)) => {
                        chain.iter().any(|c| c == cert)
                    }
                    _ => true,
                }
        })
    }
}

/// One authenticator model from the BLOB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataEntry {
    aaguid: Option<[u8; 16]>,
    key_identifiers: Vec<String>,
    description: String,
    roots: Vec<Vec<u8>>,
    statuses: Vec<AuthenticatorStatus>,
    reports: Vec<StatusReport>,
}

impl MetadataEntry {
    /// The AAGUID (FIDO2 authenticators).
    pub fn aaguid(&self) -> Option<[u8; 16]> {
        self.aaguid
    }
    /// Lowercase hex attestation key identifiers (U2F authenticators).
    pub fn attestation_key_identifiers(&self) -> &[String] {
        &self.key_identifiers
    }
    /// The metadata statement's description.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The DER attestation root certificates of the model.
    pub fn attestation_roots(&self) -> &[Vec<u8>] {
        &self.roots
    }
    /// The statuses of every status report, in BLOB order.
    pub fn statuses(&self) -> &[AuthenticatorStatus] {
        &self.statuses
    }
    /// Every status report, in BLOB order.
    pub fn status_reports(&self) -> &[StatusReport] {
        &self.reports
    }
    /// True if any status report revokes the model or reports a compromise (a later report does
    /// not undo a key compromise for devices already in the field).
    pub fn is_compromised(&self) -> bool {
        self.statuses
            .iter()
            .any(AuthenticatorStatus::is_compromised)
    }
}

/// A verified MDS3 BLOB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataBlob {
    no: u64,
    next_update: String,
    entries: Vec<MetadataEntry>,
}

#[derive(Deserialize)]
struct JwsHeader {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    no: u64,
    next_update: String,
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    aaguid: Option<String>,
    #[serde(default)]
    attestation_certificate_key_identifiers: Vec<String>,
    metadata_statement: Option<RawStatement>,
    #[serde(default)]
    status_reports: Vec<RawStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(default)]
    description: String,
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    status: String,
    #[serde(default)]
    effective_date: Option<String>,
    /// Base64 DER (MDS3 §3.1.3).
    #[serde(default)]
    certificate: Option<String>,
}

fn malformed(what: &'static str) -> Error {
    Error::invalid_input(what)
}

fn jws_algorithm(alg: &str) -> Result<&'static dyn VerificationAlgorithm> {
    Ok(match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "ES256" => &signature::ECDSA_P256_SHA256_FIXED,
        "ES384" => &signature::ECDSA_P384_SHA384_FIXED,
        _ => {
            return Err(Error::new(
                ErrorKind::WebAuthn(WebAuthnFailure::UnsupportedAlgorithm),
                "unsupported metadata blob signature algorithm",
            ));
        }
    })
}

impl MetadataBlob {
    /// Verifies and reads a BLOB: a compact JWS whose `x5c` header chain must validate at `now`
    /// up to `fido_root`, and whose signature must verify with the chain's leaf.
    ///
    /// Errors: [`ErrorKind::InvalidInput`] when the BLOB is
    /// malformed or too large; [`ErrorKind::WebAuthn`] with
    /// [`WebAuthnFailure::UntrustedAttestation`] when its chain does not validate, or
    /// [`WebAuthnFailure::InvalidSignature`] when its signature does not verify.
    pub fn from_jwt(jwt: &[u8], fido_root: &TrustAnchor, now: SystemTime) -> Result<Self> {
        if jwt.len() > MAX_BLOB_LEN {
            return Err(malformed("metadata blob too large"));
        }
        let text = std::str::from_utf8(jwt).map_err(|_| malformed("metadata blob is not text"))?;
        let text = text.trim();
        let mut parts = text.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("metadata blob is not a compact jws"));
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| malformed("metadata blob header is not base64url"))?;
        let header: JwsHeader = serde_json::from_slice(&header_json)
            .map_err(|_| malformed("metadata blob header is not valid json"))?;
        let algorithm = jws_algorithm(&header.alg)?;
        if header.x5c.is_empty() || header.x5c.len() > super::stmt::MAX_CHAIN_LEN {
            return Err(malformed("metadata blob x5c missing or too long"));
        }
        let chain = header
            .x5c
            .iter()
            .map(|c| STANDARD.decode(c))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| malformed("metadata blob x5c is not base64"))?;
        validate_chain(&chain, &[fido_root.der()], now).map_err(Error::webauthn)?;
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| malformed("metadata blob signature is not base64url"))?;
        let leaf_der = chain
            .first()
            .ok_or_else(|| malformed("metadata blob x5c missing"))?;
        let leaf = cert::parse(leaf_der).map_err(Error::webauthn)?;
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        let signed = text
            .get(..signed_len)
            .ok_or_else(|| malformed("metadata blob is not a compact jws"))?;
        UnparsedPublicKey::new(algorithm, &leaf.public_key().subject_public_key.data)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| {
                Error::new(
                    ErrorKind::WebAuthn(WebAuthnFailure::InvalidSignature),
                    "metadata blob signature does not verify",
                )
            })?;
        let payload_json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| malformed("metadata blob payload is not base64url"))?;
        let payload: Payload = serde_json::from_slice(&payload_json)
            .map_err(|_| malformed("metadata blob payload is not valid mds3 json"))?;
        Self::from_payload(payload)
    }

    /// Reads the BLOB from a file, then as [`MetadataBlob::from_jwt`].
    pub fn from_file(
        path: impl AsRef<Path>,
        fido_root: &TrustAnchor,
        now: SystemTime,
    ) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::invalid_input("cannot read metadata blob file").with_source(e))?;
        Self::from_jwt(&bytes, fido_root, now)
    }

    fn from_payload(payload: Payload) -> Result<Self> {
        let mut entries = Vec::with_capacity(payload.entries.len());
        for raw in payload.entries {
            let aaguid = match raw.aaguid.as_deref() {
                Some(s) => Some(
                    crate::webauthn::parse_aaguid(s)
                        .ok_or_else(|| malformed("malformed aaguid"))?,
                ),
                None => None,
            };
            let (description, roots) = match raw.metadata_statement {
                Some(st) => {
                    let roots = st
                        .attestation_root_certificates
                        .iter()
                        .map(|c| STANDARD.decode(c))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|_| malformed("attestation root is not base64"))?;
                    (st.description, roots)
                }
                None => (String::new(), Vec::new()),
            };
            let reports =
                raw.status_reports
                    .iter()
                    .map(|r| {
                        let certificate = match r.certificate.as_deref().filter(|c| !c.is_empty()) {
                            Some(c) => Some(STANDARD.decode(c).map_err(|_| {
                                malformed("status report certificate is not base64")
                            })?),
                            None => None,
                        };
                        Ok(StatusReport {
                            status: AuthenticatorStatus::parse(&r.status),
                            effective_date: r.effective_date.clone(),
                            certificate,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
            entries.push(MetadataEntry {
                aaguid,
                key_identifiers: raw
                    .attestation_certificate_key_identifiers
                    .into_iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect(),
                description,
                roots,
                statuses: reports.iter().map(|r| r.status.clone()).collect(),
                reports,
            });
        }
        Ok(MetadataBlob {
            no: payload.no,
            next_update: payload.next_update,
            entries,
        })
    }

    /// The BLOB's serial number.
    pub fn no(&self) -> u64 {
        self.no
    }
    /// The date (`YYYY-MM-DD`) by which a newer BLOB should be fetched.
    pub fn next_update(&self) -> &str {
        &self.next_update
    }
    /// Every entry.
    pub fn entries(&self) -> &[MetadataEntry] {
        &self.entries
    }
    /// The entry of the model `aaguid`.
    pub fn entry(&self, aaguid: &[u8; 16]) -> Option<&MetadataEntry> {
        self.entries
            .iter()
            .find(|e| e.aaguid.as_ref() == Some(aaguid))
    }

    /// The entry for a registration: by AAGUID when it is not all zero, else (U2F) by the
    /// attestation key identifier of the leaf certificate (SHA-1 of its public key bits).
    pub(crate) fn entry_for(
        &self,
        aaguid: &[u8; 16],
        leaf: Option<&Vec<u8>>,
    ) -> Option<&MetadataEntry> {
        if aaguid != &[0; 16] {
            return self.entry(aaguid);
        }
        let leaf = cert::parse(leaf?).ok()?;
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &leaf.public_key().subject_public_key.data,
        );
        let id = crate::hex::encode(digest.as_ref());
        self.entries
            .iter()
            .find(|e| e.key_identifiers.contains(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse_strictly() {
        assert_eq!(
            crate::webauthn::parse_aaguid("c5ef55ff-ad9a-4b9f-b580-adebafe026d0").map(|u| u[0]),
            Some(0xc5)
        );
        assert_eq!(
            crate::webauthn::parse_aaguid("c5ef55ffad9a4b9fb580adebafe026d0"),
            None
        );
        assert_eq!(
            crate::webauthn::parse_aaguid("z5ef55ff-ad9a-4b9f-b580-adebafe026d0"),
            None
        );
        assert_eq!(crate::webauthn::parse_aaguid(""), None);
    }

    #[test]
    fn statuses_classify() {
        assert!(AuthenticatorStatus::parse("REVOKED").is_compromised());
        assert!(AuthenticatorStatus::parse("ATTESTATION_KEY_COMPROMISE").is_compromised());
        assert_eq!(
            AuthenticatorStatus::parse("FIDO_CERTIFIED_L2"),
            AuthenticatorStatus::FidoCertified
        );
        assert!(!AuthenticatorStatus::parse("UPDATE_AVAILABLE").is_compromised());
        assert_eq!(
            AuthenticatorStatus::parse("NEW_THING"),
            AuthenticatorStatus::Other("NEW_THING".into())
        );
    }
}
