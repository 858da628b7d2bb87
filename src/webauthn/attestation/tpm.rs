//! `tpm` attestation (WebAuthn Level 3 §8.3): the TPM 2.0 `TPMT_PUBLIC` (pubArea) and
//! `TPMS_ATTEST` (certInfo) structures, and the AIK certificate requirements of §8.3.1.
//!
//! The structures are TPM 2.0 Part 2 binary encodings (big-endian integers and `TPM2B` sized
//! buffers), not ASN.1; they are read with a small bounds-checked cursor.

use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Version;

use super::cert::{self, CredentialKey, Curve, strip_zeros};
use super::{AttestationInput, AttestationOutcome, AttestationPolicy, stmt};
use crate::webauthn::{AttestationType, WebAuthnFailure, alg};

/// Largest pubArea / certInfo accepted.
const MAX_STRUCTURE_LEN: usize = 4096;

const TPM_ALG_RSA: u16 = 0x0001;
const TPM_ALG_SHA1: u16 = 0x0004;
const TPM_ALG_SHA256: u16 = 0x000b;
const TPM_ALG_SHA384: u16 = 0x000c;
const TPM_ALG_SHA512: u16 = 0x000d;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ECC_NIST_P256: u16 = 0x0003;
const TPM_ECC_NIST_P384: u16 = 0x0004;
const TPM_ECC_NIST_P521: u16 = 0x0005;
/// `TPM_GENERATED_VALUE`.
const TPM_GENERATED: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_CERTIFY`.
const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// `tcg-kp-AIKCertificate` extended key usage.
const OID_TCG_KP_AIK_CERTIFICATE: &str = "2.23.133.8.3";
const OID_TPM_MANUFACTURER: &str = "2.23.133.2.1";
const OID_TPM_MODEL: &str = "2.23.133.2.2";
const OID_TPM_VERSION: &str = "2.23.133.2.3";

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.data.split_at_checked(n)?;
        self.data = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }
    /// A `TPM2B_*`: a u16 size then that many bytes.
    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// The public key in a pubArea.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TpmPublicKey {
    Rsa {
        key_bits: u16,
        exponent: u32,
        modulus: Vec<u8>,
    },
    Ecc {
        curve_id: u16,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

/// A decoded `TPMT_PUBLIC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PubArea {
    pub(crate) name_alg: u16,
    pub(crate) object_attributes: u32,
    pub(crate) key: TpmPublicKey,
}

/// Reads a `TPMT_SYM_DEF_OBJECT` (algorithm, then key bits and mode unless NULL).
fn skip_symmetric(r: &mut Reader<'_>) -> Option<()> {
    if r.u16()? != TPM_ALG_NULL {
        r.u16()?;
        r.u16()?;
    }
    Some(())
}

/// Reads a scheme (`TPMT_RSA_SCHEME`, `TPMT_ECC_SCHEME`, `TPMT_KDF_SCHEME`): algorithm, then
/// its hash algorithm unless NULL (ECDAA also carries a count).
fn skip_scheme(r: &mut Reader<'_>) -> Option<()> {
    let scheme = r.u16()?;
    if scheme != TPM_ALG_NULL {
        r.u16()?;
        if scheme == 0x001a {
            r.u16()?;
        }
    }
    Some(())
}

/// Decodes a pubArea (`TPMT_PUBLIC`); trailing bytes are refused.
pub(crate) fn decode_pub_area(data: &[u8]) -> Option<PubArea> {
    if data.len() > MAX_STRUCTURE_LEN {
        return None;
    }
    let mut r = Reader { data };
    let kind = r.u16()?;
    let name_alg = r.u16()?;
    let object_attributes = r.u32()?;
    r.sized()?; // authPolicy
    let key = match kind {
        TPM_ALG_RSA => {
            skip_symmetric(&mut r)?;
            skip_scheme(&mut r)?;
            let key_bits = r.u16()?;
            let exponent = r.u32()?;
            let modulus = r.sized()?.to_vec();
            TpmPublicKey::Rsa {
                key_bits,
                exponent,
                modulus,
            }
        }
        TPM_ALG_ECC => {
            skip_symmetric(&mut r)?;
            skip_scheme(&mut r)?;
            let curve_id = r.u16()?;
            skip_scheme(&mut r)?; // kdf
            let x = r.sized()?.to_vec();
            let y = r.sized()?.to_vec();
            TpmPublicKey::Ecc { curve_id, x, y }
        }
        _ => return None,
    };
    r.data.is_empty().then_some(PubArea {
        name_alg,
        object_attributes,
        key,
    })
}

/// A decoded `TPMS_ATTEST` of type `TPM_ST_ATTEST_CERTIFY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    pub(crate) magic: u32,
    pub(crate) kind: u16,
    pub(crate) qualified_signer: Vec<u8>,
    pub(crate) extra_data: Vec<u8>,
    pub(crate) clock: u64,
    pub(crate) firmware_version: u64,
    pub(crate) attested_name: Vec<u8>,
    pub(crate) attested_qualified_name: Vec<u8>,
}

/// Decodes a certInfo (`TPMS_ATTEST` with `TPMS_CERTIFY_INFO`); trailing bytes are refused.
/// Magic and type are returned for the caller to check.
pub(crate) fn decode_cert_info(data: &[u8]) -> Option<CertInfo> {
    if data.len() > MAX_STRUCTURE_LEN {
        return None;
    }
    let mut r = Reader { data };
    let magic = r.u32()?;
    let kind = r.u16()?;
    let qualified_signer = r.sized()?.to_vec();
    let extra_data = r.sized()?.to_vec();
    let clock = r.u64()?;
    r.u32()?; // resetCount
    r.u32()?; // restartCount
    r.u8()?; // safe
    let firmware_version = r.u64()?;
    let attested_name = r.sized()?.to_vec();
    let attested_qualified_name = r.sized()?.to_vec();
    r.data.is_empty().then_some(CertInfo {
        magic,
        kind,
        qualified_signer,
        extra_data,
        clock,
        firmware_version,
        attested_name,
        attested_qualified_name,
    })
}

/// Hash with a TPM algorithm id.
fn tpm_hash(alg_id: u16, data: &[u8]) -> Option<Vec<u8>> {
    let algorithm = match alg_id {
        TPM_ALG_SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        TPM_ALG_SHA256 => &ring::digest::SHA256,
        TPM_ALG_SHA384 => &ring::digest::SHA384,
        TPM_ALG_SHA512 => &ring::digest::SHA512,
        _ => return None,
    };
    Some(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

/// The TPM hash algorithm of a COSE signature algorithm.
fn hash_of_cose_alg(cose_alg: i64) -> Option<u16> {
    match cose_alg {
        alg::RS1 => Some(TPM_ALG_SHA1),
        alg::ES256 | alg::RS256 | alg::PS256 => Some(TPM_ALG_SHA256),
        alg::ES384 | -258 | -38 => Some(TPM_ALG_SHA384),
        -36 | -259 | -39 => Some(TPM_ALG_SHA512),
        _ => None,
    }
}

/// Left-pads a big-endian coordinate to `width` bytes.
fn pad(b: &[u8], width: usize) -> Option<Vec<u8>> {
    let b = strip_zeros(b);
    let mut out = vec![0; width.checked_sub(b.len())?];
    out.extend_from_slice(b);
    Some(out)
}

/// True when the pubArea key is the credential key.
pub(crate) fn key_matches(tpm: &TpmPublicKey, credential: &CredentialKey) -> bool {
    match (tpm, credential) {
        (
            TpmPublicKey::Rsa {
                exponent, modulus, ..
            },
            CredentialKey::Rsa { n, e },
        ) => {
            let exponent = if *exponent == 0 { 65537 } else { *exponent };
            strip_zeros(modulus) == n.as_slice()
                && strip_zeros(&exponent.to_be_bytes()) == e.as_slice()
        }
        (
            TpmPublicKey::Ecc { curve_id, x, y },
            CredentialKey::Ec2 {
                curve,
                x: cx,
                y: cy,
            },
        ) => {
            let width = match (curve_id, curve) {
                (&TPM_ECC_NIST_P256, Curve::P256) => 32,
                (&TPM_ECC_NIST_P384, Curve::P384) => 48,
                (&TPM_ECC_NIST_P521, Curve::P521) => 66,
                _ => return false,
            };
            pad(x, width).as_ref() == Some(cx) && pad(y, width).as_ref() == Some(cy)
        }
        _ => false,
    }
}

/// Verifies a `tpm` statement.
pub(crate) fn verify(
    input: &AttestationInput<'_>,
    policy: &AttestationPolicy,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    let invalid = WebAuthnFailure::InvalidAttestation;
    if stmt::text(input.att_stmt, "ver", "tpm ver missing")? != "2.0" {
        return Err(invalid("tpm ver is not 2.0"));
    }
    let alg = stmt::alg(input.att_stmt)?;
    if stmt::member(input.att_stmt, "ecdaaKeyId")?.is_some() {
        return Err(WebAuthnFailure::UnsupportedAttestationFormat);
    }
    let sig = stmt::bytes(input.att_stmt, "sig", "attestation sig missing")?;
    let chain = stmt::x5c(input.att_stmt)?.ok_or(invalid("x5c missing"))?;
    let cert_info_bytes = stmt::bytes(input.att_stmt, "certInfo", "tpm certInfo missing")?;
    let pub_area_bytes = stmt::bytes(input.att_stmt, "pubArea", "tpm pubArea missing")?;

    // The AIK signature first, so a policy refusal of SHA-1 comes before anything else.
    let aik_der = chain.first().ok_or(invalid("x5c is empty"))?;
    let aik = cert::parse(aik_der)?;
    cert::verify_signature(&aik, alg, policy.allow_sha1, cert_info_bytes, sig)?;

    let pub_area = decode_pub_area(pub_area_bytes).ok_or(invalid("malformed tpm pubArea"))?;
    let credential = CredentialKey::from_cose(input.credential_key_cose)?;
    if !key_matches(&pub_area.key, &credential) {
        return Err(invalid("tpm pubArea key is not the credential key"));
    }

    let cert_info = decode_cert_info(cert_info_bytes).ok_or(invalid("malformed tpm certInfo"))?;
    if cert_info.magic != TPM_GENERATED {
        return Err(invalid("tpm certInfo magic is not TPM_GENERATED_VALUE"));
    }
    if cert_info.kind != TPM_ST_ATTEST_CERTIFY {
        return Err(invalid("tpm certInfo type is not TPM_ST_ATTEST_CERTIFY"));
    }
    let hash_alg = hash_of_cose_alg(alg).ok_or(WebAuthnFailure::UnsupportedAlgorithm)?;
    let signed = stmt::signed_data(input.auth_data, input.client_data_hash);
    let expected_extra =
        tpm_hash(hash_alg, &signed).ok_or(WebAuthnFailure::UnsupportedAlgorithm)?;
    if cert_info.extra_data != expected_extra {
        return Err(invalid(
            "tpm certInfo extraData does not match the registration",
        ));
    }
    let (name_alg_bytes, name_digest) = cert_info
        .attested_name
        .split_at_checked(2)
        .ok_or(invalid("malformed tpm attested name"))?;
    let name_alg = u16::from_be_bytes(
        name_alg_bytes
            .try_into()
            .map_err(|_| invalid("malformed tpm attested name"))?,
    );
    if name_alg != pub_area.name_alg
        || tpm_hash(name_alg, pub_area_bytes).as_deref() != Some(name_digest)
    {
        return Err(invalid("tpm attested name is not the pubArea name"));
    }

    check_aik_certificate(&aik)?;
    cert::check_aaguid_extension(&aik, &input.aaguid)?;
    Ok(AttestationOutcome {
        attestation_type: AttestationType::AttCa,
        chain: stmt::owned_chain(&chain),
    })
}

/// §8.3.1: version 3, empty subject, a subject alternative name with the TPM manufacturer,
/// model and version, the AIK extended key usage, not a CA.
fn check_aik_certificate(
    aik: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<(), WebAuthnFailure> {
    let invalid = WebAuthnFailure::InvalidAttestation;
    if aik.version() != X509Version::V3 {
        return Err(invalid("aik certificate is not version 3"));
    }
    if aik.subject().iter_attributes().next().is_some() {
        return Err(invalid("aik certificate subject must be empty"));
    }
    let san = aik
        .subject_alternative_name()
        .map_err(|_| invalid("malformed aik subject alternative name"))?
        .ok_or(invalid("aik subject alternative name missing"))?;
    let has_tpm_name = san.value.general_names.iter().any(|name| match name {
        GeneralName::DirectoryName(dn) => [OID_TPM_MANUFACTURER, OID_TPM_MODEL, OID_TPM_VERSION]
            .iter()
            .all(|oid| {
                dn.iter_attributes()
                    .any(|a| a.attr_type().to_id_string() == *oid)
            }),
        _ => false,
    });
    if !has_tpm_name {
        return Err(invalid(
            "aik subject alternative name lacks tpm manufacturer, model or version",
        ));
    }
    let eku = aik
        .extended_key_usage()
        .map_err(|_| invalid("malformed aik extended key usage"))?
        .ok_or(invalid("aik extended key usage missing"))?;
    if !eku
        .value
        .other
        .iter()
        .any(|oid| oid.to_id_string() == OID_TCG_KP_AIK_CERTIFICATE)
    {
        return Err(invalid(
            "aik extended key usage lacks tcg-kp-AIKCertificate",
        ));
    }
    if cert::is_ca(aik) {
        return Err(invalid("aik certificate must not be a ca"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sized(b: &[u8]) -> Vec<u8> {
        let mut out = (b.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(b);
        out
    }

    fn ecc_pub_area(x: &[u8], y: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend(TPM_ALG_ECC.to_be_bytes());
        p.extend(TPM_ALG_SHA256.to_be_bytes());
        p.extend(0x0006_0472u32.to_be_bytes());
        p.extend(sized(&[]));
        p.extend(TPM_ALG_NULL.to_be_bytes()); // symmetric
        p.extend(0x0018u16.to_be_bytes()); // ECDSA scheme
        p.extend(TPM_ALG_SHA256.to_be_bytes()); // its hash
        p.extend(TPM_ECC_NIST_P256.to_be_bytes());
        p.extend(TPM_ALG_NULL.to_be_bytes()); // kdf
        p.extend(sized(x));
        p.extend(sized(y));
        p
    }

    fn cert_info(extra: &[u8], name: &[u8]) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend(TPM_GENERATED.to_be_bytes());
        c.extend(TPM_ST_ATTEST_CERTIFY.to_be_bytes());
        c.extend(sized(b"signer"));
        c.extend(sized(extra));
        c.extend(7u64.to_be_bytes());
        c.extend(1u32.to_be_bytes());
        c.extend(2u32.to_be_bytes());
        c.push(1);
        c.extend(9u64.to_be_bytes());
        c.extend(sized(name));
        c.extend(sized(b"qualified"));
        c
    }

    #[test]
    fn decodes_an_ecc_pub_area_with_a_scheme() {
        let area = decode_pub_area(&ecc_pub_area(&[1; 32], &[2; 32])).unwrap();
        assert_eq!(area.name_alg, TPM_ALG_SHA256);
        let cred = CredentialKey::Ec2 {
            curve: Curve::P256,
            x: vec![1; 32],
            y: vec![2; 32],
        };
        assert!(key_matches(&area.key, &cred));
        let other = CredentialKey::Ec2 {
            curve: Curve::P256,
            x: vec![1; 32],
            y: vec![3; 32],
        };
        assert!(!key_matches(&area.key, &other));
        let mut trailing = ecc_pub_area(&[1; 32], &[2; 32]);
        trailing.push(0);
        assert_eq!(decode_pub_area(&trailing), None);
    }

    #[test]
    fn rsa_exponent_zero_means_65537() {
        let key = TpmPublicKey::Rsa {
            key_bits: 2048,
            exponent: 0,
            modulus: vec![0xc0; 256],
        };
        let cred = CredentialKey::Rsa {
            n: vec![0xc0; 256],
            e: vec![1, 0, 1],
        };
        assert!(key_matches(&key, &cred));
        let cred3 = CredentialKey::Rsa {
            n: vec![0xc0; 256],
            e: vec![3],
        };
        assert!(!key_matches(&key, &cred3));
    }

    #[test]
    fn decodes_cert_info() {
        let info = decode_cert_info(&cert_info(&[5; 32], &[0, 0x0b, 1, 2])).unwrap();
        assert_eq!(info.magic, TPM_GENERATED);
        assert_eq!(info.kind, TPM_ST_ATTEST_CERTIFY);
        assert_eq!(info.extra_data, vec![5; 32]);
        assert_eq!(info.clock, 7);
        assert_eq!(info.firmware_version, 9);
        assert_eq!(info.attested_name, vec![0, 0x0b, 1, 2]);
        assert_eq!(info.attested_qualified_name, b"qualified".to_vec());
        let full = cert_info(&[5; 32], &[0, 0x0b, 1, 2]);
        for cut in 0..full.len() {
            assert_eq!(decode_cert_info(&full[..cut]), None, "truncated at {cut}");
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_pub_area(&bytes);
            let _ = decode_cert_info(&bytes);
        }

        #[test]
        fn ecc_pub_area_round_trips(x in proptest::collection::vec(any::<u8>(), 0..70),
                                    y in proptest::collection::vec(any::<u8>(), 0..70)) {
            let area = decode_pub_area(&ecc_pub_area(&x, &y)).unwrap();
            prop_assert_eq!(area.key, TpmPublicKey::Ecc { curve_id: TPM_ECC_NIST_P256, x, y });
        }

        #[test]
        fn cert_info_round_trips(extra in proptest::collection::vec(any::<u8>(), 0..80),
                                 name in proptest::collection::vec(any::<u8>(), 0..80)) {
            let info = decode_cert_info(&cert_info(&extra, &name)).unwrap();
            prop_assert_eq!(info.extra_data, extra);
            prop_assert_eq!(info.attested_name, name);
        }
    }
}
