//! Attestation statement verification (WebAuthn Level 3 §8), one file per format.
//!
//! The relying party calls `verify` from `finish_registration` once the authenticator data and
//! client data have passed their checks. Each format returns the attestation type and the
//! certificate chain it used; trust decisions (roots, AAGUID allow-lists, metadata) are taken
//! against an [`AttestationPolicy`].

mod android_key;
mod apple;
mod cert;
mod fido_u2f;
pub mod mds;
#[cfg(feature = "mds")]
mod mds_service;
mod packed;
mod safetynet;
mod stmt;
mod tpm;
mod trust;

use std::sync::Arc;
use std::time::SystemTime;

pub use mds::{
    AuthenticatorStatus, MetadataBlob, MetadataEntry, MetadataStatusPolicy, StatusReport,
};
#[cfg(feature = "mds")]
pub use mds_service::{
    FIDO_MDS3_URL, MetadataRefresher, MetadataService, MetadataServiceConfig, RefreshOutcome,
};
pub use trust::TrustAnchor;

use super::{AttestationType, WebAuthnFailure};

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

/// What the relying party requires of attestations.
///
/// Every statement is always verified cryptographically (signatures, nonces, certificate
/// requirements of its format). What the policy adds is *trust*:
///
/// - The default ([`AttestationPolicy::default`]) accepts `none` and self attestation and does
///   not validate certificate chains: right for consumer sites, where attestation is only
///   informational and asking for it costs users privacy prompts.
/// - [`AttestationPolicy::require_trusted`] refuses `none` and self attestation and requires the
///   chain to validate, at the verifier's clock time, up to a configured [`TrustAnchor`] that
///   applies to the statement's format and AAGUID, or to a root the FIDO metadata BLOB lists
///   for the authenticator. With no applicable root every registration is refused.
/// - [`AttestationPolicy::allow_aaguids`] restricts registrations to some authenticator models
///   (only meaningful with `require_trusted`, as an unattested AAGUID is self-declared).
/// - With a [`MetadataBlob`] ([`AttestationPolicy::metadata`]) or a self-refreshing
///   `MetadataService` (feature `mds`, [`AttestationPolicy::metadata_service`]), the
///   authenticator's status reports are applied under a [`MetadataStatusPolicy`] (by default
///   revoked, compromised and user-verification-bypass models are refused).
/// - SHA-1 (`RS1`) attestation signatures, still sent by Windows Hello TPMs, are refused by
///   default (SHA-1 is broken for signatures); [`AttestationPolicy::allow_sha1`] accepts them.
/// - `android-key` keys must be generated in the keystore for signing; by default the software
///   and TEE lists are both consulted, [`AttestationPolicy::android_key_require_tee`] accepts
///   only TEE-enforced ones from a keystore that is not software-only.
/// - `android-safetynet` is always refused with
///   [`WebAuthnFailure::DeprecatedAttestationFormat`] (Google retired the API).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AttestationPolicy {
    pub(crate) roots: Vec<TrustAnchor>,
    pub(crate) require_trusted: bool,
    pub(crate) allowed_aaguids: Option<Vec<[u8; 16]>>,
    pub(crate) metadata: Option<MetadataSource>,
    pub(crate) status_policy: MetadataStatusPolicy,
    pub(crate) allow_sha1: bool,
    pub(crate) android_key_require_tee: bool,
}

impl AttestationPolicy {
    /// A policy that requires a chain to one of `roots` (more may be added, or come from
    /// metadata).
    pub fn trusted(roots: impl IntoIterator<Item = TrustAnchor>) -> Self {
        AttestationPolicy::default()
            .require_trusted(true)
            .trust_roots(roots)
    }

    /// Requires (or not) trusted attestation: refuse `none` / self attestation and validate
    /// chains against the roots. Off by default.
    pub fn require_trusted(mut self, required: bool) -> Self {
        self.require_trusted = required;
        self
    }

    /// Adds a trust root.
    pub fn trust_root(mut self, root: TrustAnchor) -> Self {
        self.roots.push(root);
        self
    }

    /// Adds trust roots.
    pub fn trust_roots(mut self, roots: impl IntoIterator<Item = TrustAnchor>) -> Self {
        self.roots.extend(roots);
        self
    }

    /// Accepts only these authenticator models (AAGUIDs).
    pub fn allow_aaguids(mut self, aaguids: impl IntoIterator<Item = [u8; 16]>) -> Self {
        self.allowed_aaguids = Some(aaguids.into_iter().collect());
        self
    }

    /// Uses a verified FIDO metadata BLOB for roots and status reports.
    pub fn metadata(mut self, blob: Arc<MetadataBlob>) -> Self {
        self.metadata = Some(MetadataSource::Fixed(blob));
        self
    }

    /// Uses whatever BLOB `service` holds at each registration (it refreshes itself): roots and
    /// status reports. While it holds none (not yet seeded or fetched), registrations see no
    /// metadata, as without this setting.
    #[cfg(feature = "mds")]
    pub fn metadata_service(mut self, service: &MetadataService) -> Self {
        self.metadata = Some(MetadataSource::Live(service.cell()));
        self
    }

    /// What to do with the metadata's status reports (default [`MetadataStatusPolicy::default`]:
    /// refuse revoked, compromised and user-verification-bypass authenticators).
    pub fn metadata_status_policy(mut self, policy: MetadataStatusPolicy) -> Self {
        self.status_policy = policy;
        self
    }

    /// `true`: the default [`MetadataStatusPolicy`]; `false`: refuse on no status report
    /// ([`MetadataStatusPolicy::accept_all`]).
    pub fn reject_compromised(mut self, reject: bool) -> Self {
        self.status_policy = if reject {
            MetadataStatusPolicy::default()
        } else {
            MetadataStatusPolicy::accept_all()
        };
        self
    }

    /// The metadata BLOB registrations see now, if any.
    pub(crate) fn metadata_blob(&self) -> Option<Arc<MetadataBlob>> {
        match self.metadata.as_ref()? {
            MetadataSource::Fixed(blob) => Some(blob.clone()),
            #[cfg(feature = "mds")]
            MetadataSource::Live(cell) => cell.get(),
        }
    }

    /// Accepts SHA-1 (`RS1`) attestation signatures (default off).
    pub fn allow_sha1(mut self, allow: bool) -> Self {
        self.allow_sha1 = allow;
        self
    }

    /// Accepts `android-key` attestations only when origin and purpose are TEE-enforced
    /// (default off: software-enforced lists count too).
    pub fn android_key_require_tee(mut self, require: bool) -> Self {
        self.android_key_require_tee = require;
        self
    }
}

/// Where an [`AttestationPolicy`] reads metadata from.
#[derive(Debug, Clone)]
pub(crate) enum MetadataSource {
    /// One BLOB, for the policy's lifetime.
    Fixed(Arc<MetadataBlob>),
    /// The BLOB a metadata service holds at each registration.
    #[cfg(feature = "mds")]
    Live(Arc<MetadataCell>),
}

impl PartialEq for MetadataSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Fixed(a), Self::Fixed(b)) => a == b,
            #[cfg(feature = "mds")]
            (Self::Live(a), Self::Live(b)) => Arc::ptr_eq(a, b),
            #[cfg(feature = "mds")]
            _ => false,
        }
    }
}

impl Eq for MetadataSource {}

/// The current BLOB of a metadata service, shared with the policies that read it.
#[cfg(feature = "mds")]
#[derive(Debug, Default)]
pub(crate) struct MetadataCell(std::sync::RwLock<Option<Arc<MetadataBlob>>>);

#[cfg(feature = "mds")]
impl MetadataCell {
    pub(crate) fn get(&self) -> Option<Arc<MetadataBlob>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs `blob` unless the cell already holds one with the same or a higher serial
    /// number (a replayed older BLOB never replaces a newer one). Returns whether it did.
    pub(crate) fn install(&self, blob: Arc<MetadataBlob>) -> bool {
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| c.no() >= blob.no()) {
            return false;
        }
        *current = Some(blob);
        true
    }
}

/// Verifies an attestation statement, then applies the policy's trust decisions.
pub(crate) fn verify(
    input: &AttestationInput<'_>,
    policy: &AttestationPolicy,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    let outcome = match input.fmt {
        "none" => verify_none(input),
        "packed" => packed::verify(input, policy),
        "fido-u2f" => fido_u2f::verify(input),
        "tpm" => tpm::verify(input, policy),
        "android-key" => android_key::verify(input, policy),
        "apple" => apple::verify(input),
        "android-safetynet" => safetynet::verify(input),
        _ => Err(WebAuthnFailure::UnsupportedAttestationFormat),
    }?;
    trust::evaluate(input, &outcome, policy)?;
    Ok(outcome)
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
            verify(&input("x-unknown", &empty), &AttestationPolicy::default()),
            Err(WebAuthnFailure::UnsupportedAttestationFormat)
        );
        assert_eq!(
            verify(
                &input("android-safetynet", &empty),
                &AttestationPolicy::default()
            ),
            Err(WebAuthnFailure::DeprecatedAttestationFormat(
                "android-safetynet"
            ))
        );
    }
}

#[cfg(test)]
mod mds_tests;
/// Entry points for the `fuzz/` crate: each feeds untrusted bytes to a decoder or verifier and
/// discards the result. Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The X.509 extension decoders (AAGUID, Apple nonce, Android key description), the
    /// certificate parser and the credential key decoder.
    pub fn extension_decoders(data: &[u8]) {
        let _ = cert::decode_aaguid_extension(data);
        let _ = cert::decode_apple_nonce(data);
        let _ = android_key::decode_key_description(data);
        if let Ok(c) = cert::parse(data) {
            let _ = cert::check_aaguid_extension(&c, &[0; 16]);
            let _ = cert::is_ca(&c);
        }
        let _ = cert::CredentialKey::from_cose(data);
    }

    /// The TPM `pubArea` and `certInfo` decoders.
    pub fn tpm_structures(data: &[u8]) {
        let _ = tpm::decode_pub_area(data);
        let _ = tpm::decode_cert_info(data);
    }

    /// A CBOR attestation statement (the bytes after the first) verified as format
    /// `data[0] % 7` under a permissive and a strict policy.
    pub fn attestation_statement(data: &[u8]) {
        const FORMATS: [&str; 7] = [
            "none",
            "packed",
            "fido-u2f",
            "tpm",
            "android-key",
            "apple",
            "android-safetynet",
        ];
        let Some((selector, rest)) = data.split_first() else {
            return;
        };
        let Ok(stmt) = ciborium::from_reader::<ciborium::Value, _>(rest) else {
            return;
        };
        let fmt = FORMATS[usize::from(*selector) % FORMATS.len()];
        let auth_data = [0u8; 37];
        let input = AttestationInput {
            fmt,
            att_stmt: &stmt,
            auth_data: &auth_data,
            client_data_hash: &[0; 32],
            aaguid: [0; 16],
            credential_id: &[1],
            credential_key_cose: &[],
            credential_alg: -7,
            // 2024-01-01, inside the validity of most captured certificates.
            now: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_200),
        };
        let _ = verify(&input, &AttestationPolicy::default().allow_sha1(true));
        let _ = verify(&input, &AttestationPolicy::default().require_trusted(true));
        // The chain's last certificate as trust anchor, so path validation runs too.
        if let Ok(Some(chain)) = stmt::x5c(&stmt)
            && let Some(anchor) = chain.last().and_then(|c| TrustAnchor::from_der(*c).ok())
        {
            let _ = verify(
                &input,
                &AttestationPolicy::trusted([anchor]).allow_sha1(true),
            );
        }
    }
}

#[cfg(test)]
mod vector_tests;
