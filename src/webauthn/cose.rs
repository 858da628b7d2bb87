//! COSE_Key decoding (RFC 9052 / 9053, WebAuthn Level 3 §5.8.5): which credential public keys
//! keyward accepts and how they are checked before they are ever used.
//!
//! Accepted keys, each with an `alg` that must agree with its `kty` and `crv`:
//!
//! | alg | kty | crv | parameters |
//! |---|---|---|---|
//! | ES256 (-7) | EC2 (2) | P-256 (1) | x, y: 32-byte strings, point on the curve |
//! | ES384 (-35) | EC2 (2) | P-384 (2) | x, y: 48-byte strings, point on the curve |
//! | ES512 (-36) | EC2 (2) | P-521 (3) | x, y: 66-byte strings, point on the curve |
//! | EdDSA (-8) | OKP (1) | Ed25519 (6) | x: 32-byte string |
//! | RS256 (-257), PS256 (-37) | RSA (3) | - | n: 2048 to 8192 bits, e: odd, 3 to 2^33-1 |
//! | ML-DSA-44 (-48), ML-DSA-65 (-49), feature `ml-dsa` | AKP (7) | - | pub (-1): 1312 / 1952-byte string |
//!
//! Compressed EC points, text labels, duplicate labels, private-key members (`d`, RSA primes),
//! unknown algorithms and trailing bytes are refused.

use coset::iana::{self, EnumI64};
use coset::{AsCborValue, CoseKey, KeyType, Label, RegisteredLabelWithPrivate};

use super::WebAuthnFailure;
use super::alg;
use super::verify::{CredentialPublicKey, KeyMaterial, SignatureBackend};

/// Largest COSE_Key accepted, in bytes (an RSA-8192 key is about 1 040 bytes).
pub(crate) const MAX_COSE_KEY_LEN: usize = 2048;

/// CBOR nesting allowed inside a COSE_Key (it is a flat map).
const COSE_RECURSION_LIMIT: usize = 4;

/// Decodes one COSE_Key at the start of `bytes` and returns it with the number of bytes it used.
///
/// Used on attested credential data, where the key is followed by optional extensions.
pub(crate) fn decode_prefix(bytes: &[u8]) -> Result<(CredentialPublicKey, usize), WebAuthnFailure> {
    let window = &bytes[..bytes.len().min(MAX_COSE_KEY_LEN)];
    let mut reader: &[u8] = window;
    let value: ciborium::Value =
        ciborium::de::from_reader_with_recursion_limit(&mut reader, COSE_RECURSION_LIMIT).map_err(
            |_| {
                if bytes.len() > MAX_COSE_KEY_LEN {
                    WebAuthnFailure::TooLarge("credential public key")
                } else {
                    WebAuthnFailure::InvalidPublicKey
                }
            },
        )?;
    let used = window.len() - reader.len();
    let key = CoseKey::from_cbor_value(value).map_err(|_| WebAuthnFailure::InvalidPublicKey)?;
    Ok((from_cose_key(&key)?, used))
}

/// `{1: 2, 3: -7, -1: 1, -2: h'x'` with a 32-byte x: the start of an ES256 COSE_Key in CTAP2
/// canonical CBOR (what authenticators emit and what a stored credential holds).
const ES256_CANONICAL_HEAD: [u8; 10] = [0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
/// `-3: h'y'` with a 32-byte y, after x.
const ES256_CANONICAL_Y: [u8; 3] = [0x22, 0x58, 0x20];
/// The length of a canonical ES256 COSE_Key.
const ES256_CANONICAL_LEN: usize = 77;

/// The SEC1 point of an ES256 COSE_Key in CTAP2 canonical form, read straight from its fixed
/// layout (no CBOR decoding); `None` for any other encoding, which takes the general decoder.
/// Exactly these 77 bytes decode, through the general decoder, to the same key.
fn canonical_es256(bytes: &[u8]) -> Option<[u8; 65]> {
    if bytes.len() != ES256_CANONICAL_LEN
        || bytes.get(..10)? != ES256_CANONICAL_HEAD
        || bytes.get(42..45)? != ES256_CANONICAL_Y
    {
        return None;
    }
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(bytes.get(10..42)?);
    sec1[33..65].copy_from_slice(bytes.get(45..77)?);
    Some(sec1)
}

/// Decodes a complete COSE_Key: `bytes` must hold exactly one key and nothing after it.
pub(crate) fn decode(bytes: &[u8]) -> Result<CredentialPublicKey, WebAuthnFailure> {
    if let Some(sec1) = canonical_es256(bytes) {
        // The same point validation as the general path.
        return CredentialPublicKey::p256(sec1);
    }
    if bytes.len() > MAX_COSE_KEY_LEN {
        return Err(WebAuthnFailure::TooLarge("credential public key"));
    }
    let (key, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(WebAuthnFailure::InvalidPublicKey);
    }
    Ok(key)
}

/// Verifies `sig` over `msg` with the COSE_Key `cose_key`, whose `alg` must equal `alg`.
///
/// The shared entry point for attestation statements signed by the credential key (packed
/// self attestation) or by another COSE-described key. ES256 goes through `ring`.
pub(crate) fn verify_signature(
    cose_key: &[u8],
    alg: i64,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), WebAuthnFailure> {
    let key = decode(cose_key)?;
    if key.algorithm() != alg {
        return Err(WebAuthnFailure::AlgorithmNotRequested);
    }
    key.verify_raw(SignatureBackend::Ring, msg, sig)
}

fn param(key: &CoseKey, label: i64) -> Option<&ciborium::Value> {
    key.params
        .iter()
        .find(|(l, _)| *l == Label::Int(label))
        .map(|(_, v)| v)
}

fn bytes_param(key: &CoseKey, label: i64) -> Result<&[u8], WebAuthnFailure> {
    match param(key, label) {
        Some(ciborium::Value::Bytes(b)) => Ok(b),
        _ => Err(WebAuthnFailure::InvalidPublicKey),
    }
}

fn int_param(key: &CoseKey, label: i64) -> Result<i64, WebAuthnFailure> {
    match param(key, label) {
        Some(ciborium::Value::Integer(i)) => {
            i64::try_from(*i).map_err(|_| WebAuthnFailure::InvalidPublicKey)
        }
        _ => Err(WebAuthnFailure::InvalidPublicKey),
    }
}

/// Only the parameters a public key of this type defines may appear (no private members).
fn only_labels(key: &CoseKey, allowed: &[i64]) -> Result<(), WebAuthnFailure> {
    let ok = key.params.iter().all(|(l, _)| match l {
        Label::Int(i) => allowed.contains(i),
        Label::Text(_) => false,
    });
    if ok {
        Ok(())
    } else {
        Err(WebAuthnFailure::InvalidPublicKey)
    }
}

fn from_cose_key(key: &CoseKey) -> Result<CredentialPublicKey, WebAuthnFailure> {
    let alg = match &key.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => a.to_i64(),
        Some(RegisteredLabelWithPrivate::PrivateUse(a)) => *a,
        _ => return Err(WebAuthnFailure::InvalidPublicKey),
    };
    if !key.key_ops.is_empty() || !key.base_iv.is_empty() {
        return Err(WebAuthnFailure::InvalidPublicKey);
    }
    let crv = iana::Ec2KeyParameter::Crv.to_i64();
    let x = iana::Ec2KeyParameter::X.to_i64();
    let y = iana::Ec2KeyParameter::Y.to_i64();
    match (&key.kty, alg) {
        (KeyType::Assigned(iana::KeyType::EC2), alg::ES256) => {
            only_labels(key, &[crv, x, y])?;
            if int_param(key, crv)? != iana::EllipticCurve::P_256.to_i64() {
                return Err(WebAuthnFailure::InvalidPublicKey);
            }
            let mut sec1 = [0u8; 65];
            sec1[0] = 0x04;
            copy_exact(&mut sec1[1..33], bytes_param(key, x)?)?;
            copy_exact(&mut sec1[33..65], bytes_param(key, y)?)?;
            CredentialPublicKey::p256(sec1)
        }
        (KeyType::Assigned(iana::KeyType::EC2), alg::ES384) => {
            only_labels(key, &[crv, x, y])?;
            if int_param(key, crv)? != iana::EllipticCurve::P_384.to_i64() {
                return Err(WebAuthnFailure::InvalidPublicKey);
            }
            let mut sec1 = [0u8; 97];
            sec1[0] = 0x04;
            copy_exact(&mut sec1[1..49], bytes_param(key, x)?)?;
            copy_exact(&mut sec1[49..97], bytes_param(key, y)?)?;
            CredentialPublicKey::p384(sec1)
        }
        (KeyType::Assigned(iana::KeyType::EC2), alg::ES512) => {
            only_labels(key, &[crv, x, y])?;
            if int_param(key, crv)? != iana::EllipticCurve::P_521.to_i64() {
                return Err(WebAuthnFailure::InvalidPublicKey);
            }
            let mut sec1 = [0u8; 133];
            sec1[0] = 0x04;
            copy_exact(&mut sec1[1..67], bytes_param(key, x)?)?;
            copy_exact(&mut sec1[67..133], bytes_param(key, y)?)?;
            CredentialPublicKey::p521(sec1)
        }
        (KeyType::Assigned(iana::KeyType::OKP), alg::EDDSA) => {
            let crv = iana::OkpKeyParameter::Crv.to_i64();
            let x = iana::OkpKeyParameter::X.to_i64();
            only_labels(key, &[crv, x])?;
            if int_param(key, crv)? != iana::EllipticCurve::Ed25519.to_i64() {
                return Err(WebAuthnFailure::InvalidPublicKey);
            }
            let mut pk = [0u8; 32];
            copy_exact(&mut pk, bytes_param(key, x)?)?;
            Ok(CredentialPublicKey::new(alg, KeyMaterial::Ed25519(pk)))
        }
        (KeyType::Assigned(iana::KeyType::RSA), alg::RS256 | alg::PS256) => {
            let n_label = iana::RsaKeyParameter::N.to_i64();
            let e_label = iana::RsaKeyParameter::E.to_i64();
            only_labels(key, &[n_label, e_label])?;
            let n = strip_leading_zeros(bytes_param(key, n_label)?);
            let e = strip_leading_zeros(bytes_param(key, e_label)?);
            check_rsa(n, e)?;
            Ok(CredentialPublicKey::new(
                alg,
                KeyMaterial::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                },
            ))
        }
        #[cfg(feature = "ml-dsa")]
        (KeyType::Assigned(iana::KeyType::AKP), alg::ML_DSA_44 | alg::ML_DSA_65) => {
            // draft-ietf-cose-dilithium: the AKP `pub` parameter (-1) is the encoded key.
            only_labels(key, &[-1])?;
            let public = bytes_param(key, -1)?;
            let expected = if alg == alg::ML_DSA_44 { 1312 } else { 1952 };
            if public.len() != expected {
                return Err(WebAuthnFailure::InvalidPublicKey);
            }
            Ok(CredentialPublicKey::new(
                alg,
                KeyMaterial::MlDsa(public.to_vec()),
            ))
        }
        #[cfg(feature = "ml-dsa")]
        (_, alg::ML_DSA_44 | alg::ML_DSA_65) => Err(WebAuthnFailure::InvalidPublicKey),
        // A known algorithm with the wrong (or a text) key type.
        (_, alg::ES256 | alg::ES384 | alg::ES512 | alg::EDDSA | alg::RS256 | alg::PS256) => {
            Err(WebAuthnFailure::InvalidPublicKey)
        }
        _ => Err(WebAuthnFailure::UnsupportedAlgorithm),
    }
}

fn copy_exact(dest: &mut [u8], src: &[u8]) -> Result<(), WebAuthnFailure> {
    if dest.len() != src.len() {
        return Err(WebAuthnFailure::InvalidPublicKey);
    }
    dest.copy_from_slice(src);
    Ok(())
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

/// RSA moduli of 2048 to 8192 bits, odd public exponents from 3 to 2^33 - 1 (ring's bounds).
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), WebAuthnFailure> {
    let bits = match n.first() {
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    };
    if !(2048..=8192).contains(&bits) || n.last().is_none_or(|b| b & 1 == 0) {
        return Err(WebAuthnFailure::InvalidPublicKey);
    }
    if e.len() > 5 {
        return Err(WebAuthnFailure::InvalidPublicKey);
    }
    let e_value = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if !(3..(1 << 33)).contains(&e_value) || e_value & 1 == 0 {
        return Err(WebAuthnFailure::InvalidPublicKey);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value;

    fn encode(entries: Vec<(Value, Value)>) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(&Value::Map(entries), &mut out).unwrap();
        out
    }

    fn int(i: i64) -> Value {
        Value::Integer(i.into())
    }

    fn p256_point() -> (Vec<u8>, Vec<u8>) {
        // The P-256 generator: a valid point.
        let x = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
        let y = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
        (x, y)
    }

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::decode(s).unwrap()
    }

    fn ec2(alg: i64, crv: i64, x: Vec<u8>, y: Vec<u8>) -> Vec<u8> {
        encode(vec![
            (int(1), int(2)),
            (int(3), int(alg)),
            (int(-1), int(crv)),
            (int(-2), Value::Bytes(x)),
            (int(-3), Value::Bytes(y)),
        ])
    }

    #[test]
    fn accepts_a_p256_key_and_reports_its_length() {
        let (x, y) = p256_point();
        let mut bytes = ec2(-7, 1, x, y);
        let len = bytes.len();
        let key = decode(&bytes).unwrap();
        assert_eq!(key.algorithm(), alg::ES256);
        bytes.extend_from_slice(&[0xa0]);
        let (_, used) = decode_prefix(&bytes).unwrap();
        assert_eq!(used, len);
        assert_eq!(decode(&bytes), Err(WebAuthnFailure::InvalidPublicKey));
    }

    #[test]
    fn refuses_off_curve_points_and_mismatches() {
        let (x, mut y) = p256_point();
        assert_eq!(
            decode(&ec2(-7, 2, x.clone(), y.clone())),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        assert_eq!(
            decode(&ec2(-35, 1, x.clone(), y.clone())),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        assert_eq!(
            decode(&ec2(-8, 1, x.clone(), y.clone())),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        y[31] ^= 1;
        assert_eq!(
            decode(&ec2(-7, 1, x, y)),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        // ES512 with coordinates that are no point of P-521, or of the wrong length.
        assert_eq!(
            decode(&ec2(-36, 3, vec![1; 66], vec![1; 66])),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        assert_eq!(
            decode(&ec2(-36, 3, vec![1; 65], vec![1; 66])),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        assert_eq!(
            decode(&ec2(-47, 3, vec![1; 66], vec![1; 66])),
            Err(WebAuthnFailure::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn accepts_a_p521_key_on_its_curve_only() {
        // The P-521 generator (SEC 2 §2.6.1), a valid point.
        let x = hex(
            "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
        );
        let y = hex(
            "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
        );
        let key = decode(&ec2(-36, 3, x.clone(), y.clone())).unwrap();
        assert_eq!(key.algorithm(), alg::ES512);
        // Right point, wrong curve or algorithm labels.
        assert_eq!(
            decode(&ec2(-36, 2, x.clone(), y.clone())),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        assert_eq!(
            decode(&ec2(-35, 3, x.clone(), y.clone())),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
        let mut off = y;
        off[65] ^= 1;
        assert_eq!(
            decode(&ec2(-36, 3, x, off)),
            Err(WebAuthnFailure::InvalidPublicKey)
        );
    }

    #[test]
    fn refuses_private_members_and_small_rsa() {
        let (x, y) = p256_point();
        let with_d = encode(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(x)),
            (int(-3), Value::Bytes(y)),
            (int(-4), Value::Bytes(vec![1; 32])),
        ]);
        assert_eq!(decode(&with_d), Err(WebAuthnFailure::InvalidPublicKey));
        let mut n = vec![0xff; 128];
        n[127] = 0xf1;
        let rsa1024 = encode(vec![
            (int(1), int(3)),
            (int(3), int(-257)),
            (int(-1), Value::Bytes(n)),
            (int(-2), Value::Bytes(vec![1, 0, 1])),
        ]);
        assert_eq!(decode(&rsa1024), Err(WebAuthnFailure::InvalidPublicKey));
        let mut n = vec![0xff; 256];
        n[255] = 0xf1;
        let rsa2048 = encode(vec![
            (int(1), int(3)),
            (int(3), int(-257)),
            (int(-1), Value::Bytes(n)),
            (int(-2), Value::Bytes(vec![1, 0, 1])),
        ]);
        assert_eq!(decode(&rsa2048).unwrap().algorithm(), alg::RS256);
    }

    /// The fixed-layout ES256 reading agrees with the general decoder: on the canonical form,
    /// and on every single-byte change of it (which the general decoder then decides alone, or
    /// which still has the canonical layout and must decode to the same key or fail the same).
    #[test]
    fn canonical_es256_agrees_with_the_general_decoder() {
        let general = |bytes: &[u8]| {
            let (key, used) = decode_prefix(bytes)?;
            if used == bytes.len() {
                Ok(key)
            } else {
                Err(WebAuthnFailure::InvalidPublicKey)
            }
        };
        let (x, y) = p256_point();
        let canonical = ec2(-7, 1, x.clone(), y.clone());
        assert_eq!(canonical.len(), ES256_CANONICAL_LEN);
        assert!(canonical_es256(&canonical).is_some());
        assert_eq!(decode(&canonical), general(&canonical));
        assert_eq!(decode(&canonical).unwrap().algorithm(), alg::ES256);
        for i in 0..canonical.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = canonical.clone();
                bytes[i] ^= flip;
                assert_eq!(decode(&bytes), general(&bytes), "byte {i} ^ {flip:#x}");
            }
        }
        // Other orders and a trailing byte take the general path.
        let reordered = encode(vec![
            (int(3), int(-7)),
            (int(1), int(2)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(x)),
            (int(-3), Value::Bytes(y)),
        ]);
        assert!(canonical_es256(&reordered).is_none());
        assert_eq!(decode(&reordered), decode(&canonical));
        let mut trailing = canonical.clone();
        trailing.push(0);
        assert!(canonical_es256(&trailing).is_none());
        assert_eq!(decode(&trailing), Err(WebAuthnFailure::InvalidPublicKey));
    }

    #[test]
    fn refuses_garbage() {
        for bytes in [&[][..], &[0xa0], &[0xff], &[0xa1, 0x01], &[0x80]] {
            assert!(decode(bytes).is_err());
        }
    }
}
