//! ML-DSA-44 and ML-DSA-65 (COSE -48 / -49, feature `ml-dsa`): the Wycheproof ML-DSA verify
//! vectors through keyward's COSE decoding and verification, and both ceremonies with the
//! software authenticator.
#![cfg(all(feature = "ml-dsa", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::store::{MemoryStore, StateStore};
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, CredentialPublicKey, RegistrationRequest, RelyingParty,
    RelyingPartyConfig, SignatureBackend, UserEntity, alg,
};
use keyward::{AuthenticatorVerifier, Env, ManualClock, WebAuthnFailure};

const ORIGIN: &str = "https://example.com";

fn cose_akp(alg: i64, public: &[u8]) -> Vec<u8> {
    let int = |i: i64| ciborium::Value::Integer(i.into());
    let key = ciborium::Value::Map(vec![
        (int(1), int(7)),
        (int(3), int(alg)),
        (int(-1), ciborium::Value::Bytes(public.to_vec())),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&key, &mut out).unwrap();
    out
}

/// Every vector with the empty context (the one WebAuthn signs with) must get its expected
/// verdict; vectors with a context cannot be expressed through a credential key and are
/// counted apart.
#[test]
fn every_wycheproof_ml_dsa_verify_vector_with_the_empty_context() {
    use wycheproof::TestResult;
    use wycheproof::mldsa_verify::{TestName, TestSet};
    for (name, alg) in [
        (TestName::MlDsa44Verify, alg::ML_DSA_44),
        (TestName::MlDsa65Verify, alg::ML_DSA_65),
    ] {
        let set = TestSet::load(name).expect("vectors");
        let (mut valid, mut invalid, mut with_context) = (0usize, 0usize, 0usize);
        for group in &set.test_groups {
            let public: &[u8] = group.pubkey.as_ref();
            let key = CredentialPublicKey::from_cose(&cose_akp(alg, public)).ok();
            for test in &group.tests {
                if test.ctx.as_ref().is_some_and(|c| !c.is_empty()) {
                    with_context += 1;
                    continue;
                }
                let ok = key.as_ref().is_some_and(|k| {
                    k.verify(SignatureBackend::Ring, test.msg.as_ref(), test.sig.as_ref())
                        .is_ok()
                });
                match test.result {
                    TestResult::Valid => {
                        assert!(ok, "{alg} tcId {} ({}) is valid", test.tc_id, test.comment);
                        valid += 1;
                    }
                    TestResult::Invalid => {
                        assert!(
                            !ok,
                            "{alg} tcId {} ({}) is invalid",
                            test.tc_id, test.comment
                        );
                        invalid += 1;
                    }
                    TestResult::Acceptable => {}
                }
            }
        }
        assert!(
            valid >= 70 && invalid >= 90,
            "{alg}: {valid} valid, {invalid} invalid, {with_context} with a context"
        );
    }
}

fn rp(algorithms: &[i64]) -> RelyingParty {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN)
        .unwrap()
        .algorithms(algorithms.iter().copied())
        .unwrap();
    RelyingParty::new(config, store).env(Env::system().with_clock(clock))
}

#[tokio::test]
async fn ml_dsa_registers_and_authenticates() {
    for algorithm in [alg::ML_DSA_44, alg::ML_DSA_65] {
        let rp = rp(&[algorithm, alg::ES256]);
        let auth = SoftAuthenticator::new(algorithm, ORIGIN).unwrap();
        let user = UserEntity::new(vec![5; 16], "pq@example.com", "PQ").unwrap();
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user))
            .await
            .unwrap();
        let cred = rp
            .finish_registration(state, &auth.register(&options).unwrap())
            .await
            .unwrap();
        assert_eq!(cred.algorithm, algorithm);
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(vec![5; 16]))
            .await
            .unwrap();
        let response = auth.authenticate(&options).unwrap();
        assert!(response.response.signature.as_slice().len() > 2000);
        rp.finish_authentication(state, &response).await.unwrap();

        auth.set_knobs(|k| k.corrupt_signature = true);
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(vec![5; 16]))
            .await
            .unwrap();
        let err = rp
            .finish_authentication(state, &auth.authenticate(&options).unwrap())
            .await
            .unwrap_err();
        assert_eq!(
            err.webauthn_failure(),
            Some(&WebAuthnFailure::InvalidSignature),
            "{algorithm}"
        );
    }
}

#[test]
fn ml_dsa_keys_of_the_wrong_length_or_type_are_refused() {
    assert!(CredentialPublicKey::from_cose(&cose_akp(alg::ML_DSA_44, &[7; 1312])).is_ok());
    for (alg, len) in [
        (alg::ML_DSA_44, 1311),
        (alg::ML_DSA_44, 1952),
        (alg::ML_DSA_65, 1312),
    ] {
        let err = CredentialPublicKey::from_cose(&cose_akp(alg, &vec![7; len])).unwrap_err();
        assert_eq!(
            err.webauthn_failure(),
            Some(&WebAuthnFailure::InvalidPublicKey)
        );
    }
}
