//! Property tests: `keyward::p256v` and ring give the same verdict on genuine signatures (low
//! and high S), on mutated ones (byte edits, truncation), on arbitrary DER-encoded `(r, s)` and
//! on arbitrary bytes, and on arbitrary 65-byte keys.
#![cfg(feature = "fast-p256")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use keyward::p256v::{self, PrecomputedKey, PublicKey};
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};

struct Signer {
    pair: rs::EcdsaKeyPair,
    sec1: Vec<u8>,
    table: PrecomputedKey,
}

/// Four key pairs with their tables, made once (a table per case would dominate the run).
fn signers() -> &'static [Signer] {
    static S: OnceLock<Vec<Signer>> = OnceLock::new();
    S.get_or_init(|| {
        let rng = SystemRandom::new();
        let alg = &rs::ECDSA_P256_SHA256_ASN1_SIGNING;
        (0..4)
            .map(|_| {
                let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
                let pair = rs::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
                let sec1 = pair.public_key().as_ref().to_vec();
                let table = PrecomputedKey::new(&PublicKey::from_sec1(&sec1).unwrap());
                Signer { pair, sec1, table }
            })
            .collect()
    })
}

fn ring_ok(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_ASN1, key)
        .verify(msg, sig)
        .is_ok()
}

const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn der_int(v: &[u8]) -> Vec<u8> {
    let mut body: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
    if body.is_empty() {
        body.push(0);
    }
    if body[0] & 0x80 != 0 {
        body.insert(0, 0);
    }
    body
}

fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
    let (r, s) = (der_int(r), der_int(s));
    let mut inner = vec![0x02, r.len() as u8];
    inner.extend(&r);
    inner.extend([0x02, s.len() as u8]);
    inner.extend(&s);
    let mut out = vec![0x30, inner.len() as u8];
    out.extend(inner);
    out
}

/// `n - s` for the `s` of a DER signature: the other valid signature.
fn high_s(sig: &[u8]) -> Vec<u8> {
    let r_len = sig[3] as usize;
    let r = sig[4..4 + r_len].to_vec();
    let s = &sig[6 + r_len..];
    let s = if s.len() == 33 { &s[1..] } else { s };
    let mut sp = [0u8; 32];
    sp[32 - s.len()..].copy_from_slice(s);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(sp[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    der_sig(&r, &out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn genuine_and_mutated_signatures(
        who in 0usize..4,
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        flip_s in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 0..3),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let s = &signers()[who];
        let mut sig = s.pair.sign(&SystemRandom::new(), &msg).unwrap().as_ref().to_vec();
        if flip_s {
            sig = high_s(&sig);
        }
        prop_assert!(ring_ok(&s.sec1, &msg, &sig));
        prop_assert!(s.table.verify(&msg, &sig).is_ok());
        let mut bad = sig.clone();
        for (at, x) in &edits {
            let i = at % bad.len();
            bad[i] ^= x;
        }
        if let Some(c) = cut {
            bad.truncate(c % (bad.len() + 1));
        }
        prop_assert_eq!(s.table.verify(&msg, &bad).is_ok(), ring_ok(&s.sec1, &msg, &bad), "{:02x?}", bad);
        // The signature under every other key.
        for other in signers() {
            prop_assert_eq!(other.table.verify(&msg, &sig).is_ok(), ring_ok(&other.sec1, &msg, &sig));
        }
    }

    #[test]
    fn arbitrary_r_and_s(
        who in 0usize..4,
        r in proptest::array::uniform32(any::<u8>()),
        s in proptest::array::uniform32(any::<u8>()),
        r_small in proptest::option::of(0u8..4),
    ) {
        let k = &signers()[who];
        let r = match r_small { Some(v) => { let mut a = [0u8; 32]; a[31] = v; a } None => r };
        let sig = der_sig(&r, &s);
        prop_assert_eq!(k.table.verify(b"m", &sig).is_ok(), ring_ok(&k.sec1, b"m", &sig));
    }

    #[test]
    fn arbitrary_signature_bytes(who in 0usize..4, sig in proptest::collection::vec(any::<u8>(), 0..80)) {
        let k = &signers()[who];
        prop_assert_eq!(k.table.verify(b"m", &sig).is_ok(), ring_ok(&k.sec1, b"m", &sig));
    }

    #[test]
    fn arbitrary_keys(key in proptest::collection::vec(any::<u8>(), 60..70), prefix in 0u8..8) {
        let mut key = key;
        key[0] = prefix;
        let s = &signers()[0];
        let sig = s.pair.sign(&SystemRandom::new(), b"m").unwrap();
        prop_assert_eq!(
            p256v::verify(&key, b"m", sig.as_ref()).is_ok(),
            ring_ok(&key, b"m", sig.as_ref())
        );
    }
}
