//! With the `fast-p256` feature, ES256 assertions go through `keyward::p256v` by default (the
//! relying party, the store-free functions and `BatchVerifier`), and every verdict equals the
//! `ring` backend's.
#![cfg(all(feature = "fast-p256", feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::AuthenticatorVerifier;
use keyward::p256v::TableCache;
use keyward::store::MemoryStore;
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, BatchAssertion,
    BatchVerifier, ParsedCredential, RegistrationRequest, RelyingParty, RelyingPartyConfig,
    SignatureBackend, UserEntity, alg, verify_assertion,
};

const ORIGIN: &str = "https://example.com";

fn config() -> RelyingPartyConfig {
    RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap()
}

struct Case {
    credential: ParsedCredential,
    state: AuthenticationState,
    response: AuthenticationResponseJson,
}

async fn case(rp: &RelyingParty, n: u8) -> Case {
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let user = UserEntity::new(vec![n; 16], format!("u{n}@example.com"), "U").unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user))
        .await
        .unwrap();
    let record = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![n; 16]))
        .await
        .unwrap();
    let response = auth.authenticate(&options).unwrap();
    Case {
        credential: ParsedCredential::new(record).unwrap(),
        state,
        response,
    }
}

#[test]
fn the_fast_path_is_the_default_with_the_feature() {
    assert_eq!(SignatureBackend::default(), SignatureBackend::Precomputed);
}

#[tokio::test]
async fn relying_party_and_batch_agree_with_ring() {
    let rp = RelyingParty::new(config(), Arc::new(MemoryStore::new()));
    let mut cases = Vec::new();
    for n in 1..=6 {
        cases.push(case(&rp, n).await);
    }
    // Corrupt the signatures of the even cases (flip one bit of s).
    for c in cases.iter_mut().skip(1).step_by(2) {
        let mut sig = c.response.response.signature.as_slice().to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        c.response.response.signature = sig.into();
    }
    let ring = config().signature_backend(SignatureBackend::Ring);
    let fast = config();
    for (i, c) in cases.iter().enumerate() {
        let a = verify_assertion(&ring, &c.state, &c.credential, &c.response);
        let b = verify_assertion(&fast, &c.state, &c.credential, &c.response);
        assert_eq!(a.is_ok(), i % 2 == 0, "case {i}");
        assert_eq!(a.ok(), b.ok(), "case {i}");
        // The table is now kept with the key.
        let bytes = c.credential.public_key().precompute().unwrap();
        assert!((88_064..88_064 + 512).contains(&bytes), "{bytes}");
    }
    let items: Vec<BatchAssertion<'_>> = cases
        .iter()
        .map(|c| BatchAssertion::decoded(&c.state, &c.credential, &c.response))
        .collect();
    let pool = BatchVerifier::new(2).unwrap();
    let verdicts = pool.verify(&fast, &items);
    for (i, v) in verdicts.iter().enumerate() {
        assert_eq!(v.is_ok(), i % 2 == 0, "batch item {i}");
    }
    assert!(TableCache::global().stats().entries >= 1);
}

#[tokio::test]
async fn finish_authentication_uses_the_fast_path_end_to_end() {
    let rp = RelyingParty::new(config(), Arc::new(MemoryStore::new()));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let user = UserEntity::new(vec![9; 16], "nine@example.com", "Nine").unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user))
        .await
        .unwrap();
    rp.finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
    for round in 1..=3u32 {
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(vec![9; 16]))
            .await
            .unwrap();
        let response = auth.authenticate(&options).unwrap();
        let ok = rp.finish_authentication(state, &response).await.unwrap();
        assert_eq!(ok.sign_count(), round);
    }
    // A tampered signature is refused and consumes the challenge.
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![9; 16]))
        .await
        .unwrap();
    let mut response = auth.authenticate(&options).unwrap();
    let mut sig = response.response.signature.as_slice().to_vec();
    sig[8] ^= 0x40;
    response.response.signature = sig.into();
    assert!(rp.finish_authentication(state, &response).await.is_err());
}
