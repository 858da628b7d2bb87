//! The `ring` and `p256` ES256 backends must give the same verdict on every (key, message,
//! signature): a fixed genuine signature is mutated by the fuzzer's bytes.
#![no_main]

use std::sync::OnceLock;

use keyward::webauthn::{CredentialPublicKey, SignatureBackend};
use libfuzzer_sys::fuzz_target;

/// A fixed P-256 key (COSE) and a genuine DER signature over b"keyward" made by it.
struct Fixture {
    key: CredentialPublicKey,
    sig: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        use ring::signature::{self as rs, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let alg = &rs::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = rs::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let p = pair.public_key().as_ref();
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(&p[1..33]);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(&p[33..65]);
        let key = CredentialPublicKey::from_cose(&cose).unwrap();
        let sig = pair.sign(&rng, b"keyward").unwrap().as_ref().to_vec();
        Fixture { key, sig }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // First byte picks the mode: XOR-mutate the genuine signature, or use the bytes raw.
    let sig: Vec<u8> = match data.split_first() {
        Some((mode, rest)) if mode & 1 == 0 => f
            .sig
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ rest.get(i).copied().unwrap_or(0))
            .chain(rest.iter().skip(f.sig.len()).copied())
            .collect(),
        Some((_, rest)) => rest.to_vec(),
        None => f.sig.clone(),
    };
    let a = f.key.verify(SignatureBackend::Ring, b"keyward", &sig).is_ok();
    let b = f.key.verify(SignatureBackend::P256, b"keyward", &sig).is_ok();
    assert_eq!(a, b, "backends disagree on {sig:02x?}");
});
