//! `keyward::p256v` must give ring's verdict on every (key, message, signature). The fuzzer's
//! bytes choose the message and either mutate a genuine signature (XOR) or replace it, and
//! sometimes replace the key too.
#![no_main]

use std::sync::OnceLock;

use keyward::p256v::{self, PrecomputedKey, PublicKey};
use libfuzzer_sys::fuzz_target;
use ring::signature::{self as rs, KeyPair};

struct Fixture {
    sec1: Vec<u8>,
    table: PrecomputedKey,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        let alg = &rs::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = rs::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let sec1 = pair.public_key().as_ref().to_vec();
        let table = PrecomputedKey::new(&PublicKey::from_sec1(&sec1).unwrap());
        let msg = b"keyward p256v".to_vec();
        let sig = pair.sign(&rng, &msg).unwrap().as_ref().to_vec();
        Fixture { sec1, table, msg, sig }
    })
}

fn ring_ok(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_ASN1, key)
        .verify(msg, sig)
        .is_ok()
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // mode bit 0: XOR the genuine signature / raw signature bytes.
    // mode bit 1: the fixed message / the message is the first `mode >> 4` bytes of rest.
    // mode bit 2: the fixed key / a 65-byte key taken from the end of rest.
    let (rest, key): (&[u8], &[u8]) = if mode & 4 != 0 && rest.len() >= 65 {
        let (a, b) = rest.split_at(rest.len() - 65);
        (a, b)
    } else {
        (rest, &f.sec1)
    };
    let (msg, rest): (&[u8], &[u8]) = if mode & 2 != 0 {
        rest.split_at(usize::from(mode >> 4).min(rest.len()))
    } else {
        (&f.msg, rest)
    };
    let sig: Vec<u8> = if mode & 1 == 0 {
        f.sig
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ rest.get(i).copied().unwrap_or(0))
            .chain(rest.iter().skip(f.sig.len()).copied())
            .collect()
    } else {
        rest.to_vec()
    };
    let reference = ring_ok(key, msg, &sig);
    let fast = if key == &f.sec1[..] {
        f.table.verify(msg, &sig).is_ok()
    } else {
        p256v::verify(key, msg, &sig).is_ok()
    };
    assert_eq!(fast, reference, "key {key:02x?} msg {msg:02x?} sig {sig:02x?}");
});
