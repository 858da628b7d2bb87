//! Property tests: the decoders of untrusted bytes never panic (random and mutated inputs), and
//! the `ring` and `p256` ES256 backends give the same verdict on every signature.
#![cfg(feature = "webauthn")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyward::webauthn::{
    AttestationObject, AuthenticatorData, ClientData, CredentialPublicKey, SignatureBackend,
};
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};

fn cbor(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn int(i: i64) -> ciborium::Value {
    ciborium::Value::Integer(i.into())
}

/// A fresh P-256 key pair and its COSE_Key.
fn p256_key() -> (rs::EcdsaKeyPair, Vec<u8>) {
    let rng = SystemRandom::new();
    let alg = &rs::ECDSA_P256_SHA256_ASN1_SIGNING;
    let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = rs::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let p = pair.public_key().as_ref().to_vec();
    let cose = cbor(&ciborium::Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(-7)),
        (int(-1), int(1)),
        (int(-2), ciborium::Value::Bytes(p[1..33].to_vec())),
        (int(-3), ciborium::Value::Bytes(p[33..65].to_vec())),
    ]));
    (pair, cose)
}

/// A valid registration authenticator data carrying `cose`.
fn auth_data_with_key(cose: &[u8]) -> Vec<u8> {
    let mut v = vec![0x11; 32];
    v.push(0x45);
    v.extend_from_slice(&7u32.to_be_bytes());
    v.extend_from_slice(&[0xaa; 16]);
    v.extend_from_slice(&16u16.to_be_bytes());
    v.extend_from_slice(&[0xcc; 16]);
    v.extend_from_slice(cose);
    v
}

fn attestation_object(auth_data: &[u8]) -> Vec<u8> {
    cbor(&ciborium::Value::Map(vec![
        (
            ciborium::Value::Text("fmt".into()),
            ciborium::Value::Text("none".into()),
        ),
        (
            ciborium::Value::Text("attStmt".into()),
            ciborium::Value::Map(vec![]),
        ),
        (
            ciborium::Value::Text("authData".into()),
            ciborium::Value::Bytes(auth_data.to_vec()),
        ),
    ]))
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(i, x) in edits {
        if !bytes.is_empty() {
            let n = bytes.len();
            bytes[i % n] ^= x;
        }
    }
    if let Some(c) = cut {
        let n = bytes.len();
        bytes.truncate(c % (n + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = AuthenticatorData::parse(&bytes, 8192);
        let _ = ClientData::parse(&bytes, 4096);
        let _ = AttestationObject::parse(&bytes, 65536);
        let _ = CredentialPublicKey::from_cose(&bytes);
    }

    #[test]
    fn mutated_valid_inputs_never_panic(
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let (_, cose) = p256_key();
        let ad = auth_data_with_key(&cose);
        let m = mutate(ad.clone(), &edits, cut);
        if let Ok(parsed) = AuthenticatorData::parse(&m, 8192) {
            // Whatever parsed must describe exactly the input bytes.
            prop_assert_eq!(parsed.raw(), &m[..]);
        }
        let _ = CredentialPublicKey::from_cose(&mutate(cose, &edits, cut));
        let _ = AttestationObject::parse(&mutate(attestation_object(&ad), &edits, cut), 65536);
        let cd = br#"{"type":"webauthn.get","challenge":"AAEC","origin":"https://example.com","crossOrigin":false}"#.to_vec();
        let _ = ClientData::parse(&mutate(cd, &edits, cut), 4096);
    }

}

proptest! {
    // Signing and two verifications per case: fewer cases (the fuzz target runs many more).
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn es256_backends_agree_on_mutated_signatures(
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 0..3),
        cut in proptest::option::of(any::<usize>()),
        high_s in any::<bool>(),
    ) {
        let (pair, cose) = p256_key();
        let key = CredentialPublicKey::from_cose(&cose).unwrap();
        let mut sig = pair.sign(&SystemRandom::new(), &msg).unwrap().as_ref().to_vec();
        if high_s {
            sig = to_high_s(&sig);
        }
        let verdict = |s: &[u8]| {
            let a = key.verify(SignatureBackend::Ring, &msg, s).is_ok();
            let b = key.verify(SignatureBackend::P256, &msg, s).is_ok();
            (a, b)
        };
        let (a, b) = verdict(&sig);
        prop_assert!(a && b, "genuine signature (high_s = {}) refused: ring {}, p256 {}", high_s, a, b);
        let bad = mutate(sig, &edits, cut);
        let (a, b) = verdict(&bad);
        prop_assert_eq!(a, b, "backends disagree on {:02x?}", bad);
    }

    #[test]
    fn es256_backends_agree_on_random_signatures(sig in proptest::collection::vec(any::<u8>(), 0..80)) {
        let (_, cose) = p256_key();
        let key = CredentialPublicKey::from_cose(&cose).unwrap();
        let a = key.verify(SignatureBackend::Ring, b"m", &sig).is_ok();
        let b = key.verify(SignatureBackend::P256, b"m", &sig).is_ok();
        prop_assert_eq!(a, b);
    }
}

/// Re-encodes a DER ECDSA signature with s replaced by n - s (still valid: ECDSA is malleable,
/// and WebAuthn does not require low-S).
fn to_high_s(der: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let rlen = der[3] as usize;
    let r = &der[4..4 + rlen];
    let slen = der[5 + rlen] as usize;
    let s = &der[6 + rlen..6 + rlen + slen];
    let mut s32 = [0u8; 32];
    let s_trim: Vec<u8> = s.iter().copied().skip_while(|&b| b == 0).collect();
    s32[32 - s_trim.len()..].copy_from_slice(&s_trim);
    // n - s, big-endian subtraction.
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s32[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    let mut s_new: Vec<u8> = out.iter().copied().skip_while(|&b| b == 0).collect();
    if s_new.first().is_some_and(|b| b & 0x80 != 0) {
        s_new.insert(0, 0);
    }
    let mut body = vec![0x02, r.len() as u8];
    body.extend_from_slice(r);
    body.push(0x02);
    body.push(s_new.len() as u8);
    body.extend_from_slice(&s_new);
    let mut sig = vec![0x30, body.len() as u8];
    sig.extend_from_slice(&body);
    sig
}
