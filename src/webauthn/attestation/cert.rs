//! Certificates in attestation statements: parsing, signature checks with a certificate's key,
//! comparing a certificate's key with the credential key, and the small extension decoders the
//! formats need (AAGUID, Apple nonce).
//!
//! X.509 parsing is done by `x509-parser`; extension contents are walked with `asn1-rs`.

use asn1_rs::{Any, Class, FromDer, Tag};
use coset::{CborSerializable, CoseKey, KeyType, Label, iana};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::webauthn::{WebAuthnFailure, alg};

/// `id-fido-gen-ce-aaguid`, the AAGUID certificate extension.
pub(crate) const OID_FIDO_AAGUID: &str = "1.3.6.1.4.1.45724.1.1.4";
/// Apple anonymous attestation nonce extension.
pub(crate) const OID_APPLE_NONCE: &str = "1.2.840.113635.100.8.2";
/// Android key attestation key description extension.
pub(crate) const OID_ANDROID_KEY_DESCRIPTION: &str = "1.3.6.1.4.1.11129.2.1.17";
/// Ed25519 public key algorithm.
const OID_ED25519: &str = "1.3.101.112";

/// Parses one DER certificate; trailing bytes are refused.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, WebAuthnFailure> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(WebAuthnFailure::InvalidAttestation(
            "attestation certificate does not parse",
        )),
    }
}

/// The ring algorithm for a COSE algorithm used with a certificate key. SHA-1 (`RS1`) only when
/// `allow_sha1` is set.
fn ring_algorithm(
    cose_alg: i64,
    allow_sha1: bool,
) -> Result<&'static dyn VerificationAlgorithm, WebAuthnFailure> {
    Ok(match cose_alg {
        alg::ES256 => &signature::ECDSA_P256_SHA256_ASN1,
        alg::ES384 => &signature::ECDSA_P384_SHA384_ASN1,
        alg::EDDSA => &signature::ED25519,
        alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        -258 => &signature::RSA_PKCS1_2048_8192_SHA384,
        -259 => &signature::RSA_PKCS1_2048_8192_SHA512,
        alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        -38 => &signature::RSA_PSS_2048_8192_SHA384,
        -39 => &signature::RSA_PSS_2048_8192_SHA512,
        alg::RS1 if allow_sha1 => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        alg::RS1 => {
            return Err(WebAuthnFailure::UntrustedAttestation(
                "sha-1 attestation signatures are refused by policy",
            ));
        }
        _ => return Err(WebAuthnFailure::UnsupportedAlgorithm),
    })
}

/// Verifies `sig` over `message` with the public key of `cert`, using COSE algorithm `cose_alg`.
pub(crate) fn verify_signature(
    cert: &X509Certificate<'_>,
    cose_alg: i64,
    allow_sha1: bool,
    message: &[u8],
    sig: &[u8],
) -> Result<(), WebAuthnFailure> {
    let algorithm = ring_algorithm(cose_alg, allow_sha1)?;
    let key = UnparsedPublicKey::new(algorithm, &cert.public_key().subject_public_key.data);
    key.verify(message, sig)
        .map_err(|_| WebAuthnFailure::InvalidSignature)
}

/// Elliptic curves credential keys use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

/// A credential public key, decoded from its COSE_Key for comparisons with certificate and TPM
/// keys. Coordinates and RSA integers are big-endian without leading zeros (RSA) or fixed width
/// (EC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialKey {
    Ec2 {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

fn param(key: &CoseKey, label: i64) -> Option<&ciborium::Value> {
    key.params
        .iter()
        .find_map(|(l, v)| (*l == Label::Int(label)).then_some(v))
}

fn param_bytes(key: &CoseKey, label: i64) -> Result<Vec<u8>, WebAuthnFailure> {
    match param(key, label) {
        Some(ciborium::Value::Bytes(b)) => Ok(b.clone()),
        _ => Err(WebAuthnFailure::InvalidPublicKey),
    }
}

fn param_int(key: &CoseKey, label: i64) -> Result<i128, WebAuthnFailure> {
    match param(key, label) {
        Some(ciborium::Value::Integer(i)) => Ok(i128::from(*i)),
        _ => Err(WebAuthnFailure::InvalidPublicKey),
    }
}

/// Strips leading zero bytes of a big-endian unsigned integer.
pub(crate) fn strip_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

impl CredentialKey {
    /// Decodes the credential's COSE_Key (EC2 P-256/384/521, RSA, OKP Ed25519).
    pub(crate) fn from_cose(cose: &[u8]) -> Result<Self, WebAuthnFailure> {
        let key = CoseKey::from_slice(cose).map_err(|_| WebAuthnFailure::InvalidPublicKey)?;
        match key.kty {
            KeyType::Assigned(iana::KeyType::EC2) => {
                let (curve, width) = match param_int(&key, -1)? {
                    1 => (Curve::P256, 32),
                    2 => (Curve::P384, 48),
                    3 => (Curve::P521, 66),
                    _ => return Err(WebAuthnFailure::InvalidPublicKey),
                };
                let x = param_bytes(&key, -2)?;
                let y = param_bytes(&key, -3)?;
                if x.len() != width || y.len() != width {
                    return Err(WebAuthnFailure::InvalidPublicKey);
                }
                Ok(CredentialKey::Ec2 { curve, x, y })
            }
            KeyType::Assigned(iana::KeyType::RSA) => Ok(CredentialKey::Rsa {
                n: strip_zeros(&param_bytes(&key, -1)?).to_vec(),
                e: strip_zeros(&param_bytes(&key, -2)?).to_vec(),
            }),
            KeyType::Assigned(iana::KeyType::OKP) => {
                if param_int(&key, -1)? != 6 {
                    return Err(WebAuthnFailure::InvalidPublicKey);
                }
                let x = param_bytes(&key, -2)?;
                if x.len() != 32 {
                    return Err(WebAuthnFailure::InvalidPublicKey);
                }
                Ok(CredentialKey::Ed25519 { x })
            }
            _ => Err(WebAuthnFailure::InvalidPublicKey),
        }
    }

    /// The uncompressed SEC1 point `04 || x || y` of an EC2 key.
    pub(crate) fn sec1_point(&self) -> Option<(Curve, Vec<u8>)> {
        match self {
            CredentialKey::Ec2 { curve, x, y } => {
                let mut p = Vec::with_capacity(1 + x.len() + y.len());
                p.push(0x04);
                p.extend_from_slice(x);
                p.extend_from_slice(y);
                Some((*curve, p))
            }
            _ => None,
        }
    }

    /// True when `spki` holds this same public key.
    pub(crate) fn matches_spki(&self, spki: &SubjectPublicKeyInfo<'_>) -> bool {
        let alg_oid = &spki.algorithm.algorithm;
        match self {
            CredentialKey::Ec2 { curve, .. } => {
                if *alg_oid != OID_KEY_TYPE_EC_PUBLIC_KEY {
                    return false;
                }
                let Some(Ok(curve_oid)) = spki.algorithm.parameters.as_ref().map(|p| p.as_oid())
                else {
                    return false;
                };
                let curve_ok = match curve {
                    Curve::P256 => curve_oid == OID_EC_P256,
                    Curve::P384 => curve_oid == OID_NIST_EC_P384,
                    Curve::P521 => curve_oid.to_id_string() == "1.3.132.0.35",
                };
                let point = self.sec1_point().map(|(_, p)| p);
                curve_ok && point.as_deref() == Some(&*spki.subject_public_key.data)
            }
            CredentialKey::Rsa { n, e } => match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => {
                    strip_zeros(rsa.modulus) == n.as_slice()
                        && strip_zeros(rsa.exponent) == e.as_slice()
                }
                _ => false,
            },
            CredentialKey::Ed25519 { x } => {
                alg_oid.to_id_string() == OID_ED25519 && *spki.subject_public_key.data == **x
            }
        }
    }
}

/// The contents (`extnValue` octets) of the extension `oid` and whether it is critical; `None`
/// when absent. Fails if the extension appears twice.
pub(crate) fn extension<'a>(
    cert: &'a X509Certificate<'_>,
    oid: &str,
) -> Result<Option<(&'a [u8], bool)>, WebAuthnFailure> {
    let mut found = None;
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == oid {
            if found.is_some() {
                return Err(WebAuthnFailure::InvalidAttestation(
                    "duplicate certificate extension",
                ));
            }
            found = Some((ext.value, ext.critical));
        }
    }
    Ok(found)
}

/// Parses exactly one DER element from `input` (no trailing bytes).
pub(crate) fn der_one(input: &[u8]) -> Option<Any<'_>> {
    match Any::from_der(input) {
        Ok(([], any)) => Some(any),
        _ => None,
    }
}

/// Decodes the `id-fido-gen-ce-aaguid` extension contents: an OCTET STRING of 16 bytes.
pub(crate) fn decode_aaguid_extension(value: &[u8]) -> Option<[u8; 16]> {
    let any = der_one(value)?;
    if any.class() != Class::Universal || any.tag() != Tag::OctetString || any.header.constructed()
    {
        return None;
    }
    <[u8; 16]>::try_from(any.data).ok()
}

/// Decodes the Apple nonce extension contents: `SEQUENCE { [1] EXPLICIT OCTET STRING }`, the
/// nonce being 32 bytes.
pub(crate) fn decode_apple_nonce(value: &[u8]) -> Option<[u8; 32]> {
    let seq = der_one(value)?;
    if seq.class() != Class::Universal || seq.tag() != Tag::Sequence {
        return None;
    }
    let tagged = der_one(seq.data)?;
    if tagged.class() != Class::ContextSpecific || tagged.tag() != Tag(1) {
        return None;
    }
    let octets = der_one(tagged.data)?;
    if octets.class() != Class::Universal || octets.tag() != Tag::OctetString {
        return None;
    }
    <[u8; 32]>::try_from(octets.data).ok()
}

/// Checks the AAGUID extension of an attestation certificate, when present, against the
/// authenticator data's AAGUID (§8.2.1, §8.3.1): it must match and must not be critical.
pub(crate) fn check_aaguid_extension(
    cert: &X509Certificate<'_>,
    aaguid: &[u8; 16],
) -> Result<(), WebAuthnFailure> {
    match extension(cert, OID_FIDO_AAGUID)? {
        None => Ok(()),
        Some((_, true)) => Err(WebAuthnFailure::InvalidAttestation(
            "aaguid certificate extension must not be critical",
        )),
        Some((value, false)) => match decode_aaguid_extension(value) {
            Some(found) if &found == aaguid => Ok(()),
            Some(_) => Err(WebAuthnFailure::InvalidAttestation(
                "certificate aaguid does not match authenticator data",
            )),
            None => Err(WebAuthnFailure::InvalidAttestation(
                "malformed aaguid certificate extension",
            )),
        },
    }
}

/// True when the certificate has a basicConstraints extension with `cA` set.
pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aaguid_extension_decodes_a_16_byte_octet_string_only() {
        let mut ok = vec![0x04, 16];
        ok.extend_from_slice(&[7; 16]);
        assert_eq!(decode_aaguid_extension(&ok), Some([7; 16]));
        let mut short = vec![0x04, 15];
        short.extend_from_slice(&[7; 15]);
        assert_eq!(decode_aaguid_extension(&short), None);
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(decode_aaguid_extension(&trailing), None);
        let mut wrong_tag = ok.clone();
        wrong_tag[0] = 0x03;
        assert_eq!(decode_aaguid_extension(&wrong_tag), None);
    }

    #[test]
    fn apple_nonce_decodes_the_tagged_octet_string() {
        let mut value = vec![0x30, 36, 0xa1, 34, 0x04, 32];
        value.extend_from_slice(&[9; 32]);
        assert_eq!(decode_apple_nonce(&value), Some([9; 32]));
        let mut wrong = value.clone();
        wrong[2] = 0xa2;
        assert_eq!(decode_apple_nonce(&wrong), None);
    }

    #[test]
    fn sha1_is_refused_unless_allowed() {
        assert!(ring_algorithm(alg::RS1, false).is_err());
        assert!(ring_algorithm(alg::RS1, true).is_ok());
        assert_eq!(
            ring_algorithm(12345, true).err(),
            Some(WebAuthnFailure::UnsupportedAlgorithm)
        );
    }

    proptest! {
        #[test]
        fn extension_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_aaguid_extension(&bytes);
            let _ = decode_apple_nonce(&bytes);
            let _ = parse(&bytes);
            let _ = CredentialKey::from_cose(&bytes);
        }

        #[test]
        fn aaguid_extension_round_trips(aaguid in any::<[u8; 16]>()) {
            let mut value = vec![0x04, 16];
            value.extend_from_slice(&aaguid);
            prop_assert_eq!(decode_aaguid_extension(&value), Some(aaguid));
        }
    }
}
