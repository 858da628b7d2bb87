//! ES512 (COSE -36, ECDSA P-521 with SHA-512): every Wycheproof `ecdsa_secp521r1_sha512` vector
//! through keyward's COSE decoding and verification, and both ceremonies with the software
//! authenticator.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::store::{MemoryStore, StateStore};
use keyward::testing::{SoftAttestation, SoftAuthenticator};
use keyward::webauthn::{
    AttestationType, AuthenticationRequest, CredentialPublicKey, RegistrationRequest, RelyingParty,
    RelyingPartyConfig, SignatureBackend, UserEntity, alg,
};
use keyward::{AuthenticatorVerifier, Env, ManualClock, WebAuthnFailure};

const ORIGIN: &str = "https://example.com";

/// The COSE_Key of an uncompressed SEC1 P-521 point.
fn cose_p521(sec1: &[u8]) -> Option<Vec<u8>> {
    if sec1.len() != 133 || sec1[0] != 0x04 {
        return None;
    }
    let int = |i: i64| ciborium::Value::Integer(i.into());
    let key = ciborium::Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(alg::ES512)),
        (int(-1), int(3)),
        (int(-2), ciborium::Value::Bytes(sec1[1..67].to_vec())),
        (int(-3), ciborium::Value::Bytes(sec1[67..].to_vec())),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&key, &mut out).unwrap();
    Some(out)
}

#[test]
fn every_wycheproof_p521_sha512_vector() {
    use wycheproof::TestResult;
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp521r1Sha512).expect("vectors");
    let (mut valid, mut invalid, mut acceptable) = (0usize, 0usize, 0usize);
    for group in &set.test_groups {
        let sec1: &[u8] = group.key.key.as_ref();
        let key = cose_p521(sec1).and_then(|cose| CredentialPublicKey::from_cose(&cose).ok());
        for test in &group.tests {
            let msg: &[u8] = test.msg.as_ref();
            let sig: &[u8] = test.sig.as_ref();
            let ok = key
                .as_ref()
                .is_some_and(|k| k.verify(SignatureBackend::Ring, msg, sig).is_ok());
            match test.result {
                TestResult::Valid => {
                    assert!(ok, "tcId {} ({}) is valid", test.tc_id, test.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(!ok, "tcId {} ({}) is invalid", test.tc_id, test.comment);
                    invalid += 1;
                }
                TestResult::Acceptable => acceptable += 1,
            }
        }
    }
    assert_eq!(valid + invalid + acceptable, set.number_of_tests);
    assert!(
        valid > 50 && invalid > 200,
        "{valid} valid, {invalid} invalid"
    );
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

fn user() -> UserEntity {
    UserEntity::new(vec![7; 16], "p521@example.com", "P-521").unwrap()
}

#[tokio::test]
async fn es512_registers_and_authenticates_with_both_attestations() {
    for attestation in [SoftAttestation::None, SoftAttestation::PackedSelf] {
        let rp = rp(&[alg::ES256, alg::ES512]);
        let auth = SoftAuthenticator::new(alg::ES512, ORIGIN).unwrap();
        auth.set_knobs(|k| k.attestation = attestation);
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user()))
            .await
            .unwrap();
        assert!(options.pub_key_cred_params.iter().any(|p| p.alg == -36));
        let cred = rp
            .finish_registration(state, &auth.register(&options).unwrap())
            .await
            .unwrap();
        assert_eq!(cred.algorithm, alg::ES512);
        let expected = match attestation {
            SoftAttestation::None => AttestationType::None,
            _ => AttestationType::SelfAttestation,
        };
        assert_eq!(cred.attestation_type, expected);
        for round in 1..=2u32 {
            let (options, state) = rp
                .start_authentication(AuthenticationRequest::for_user(vec![7; 16]))
                .await
                .unwrap();
            let ok = rp
                .finish_authentication(state, &auth.authenticate(&options).unwrap())
                .await
                .unwrap();
            assert_eq!(ok.sign_count(), round);
        }
        // A signature that does not verify.
        auth.set_knobs(|k| k.corrupt_signature = true);
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(vec![7; 16]))
            .await
            .unwrap();
        let err = rp
            .finish_authentication(state, &auth.authenticate(&options).unwrap())
            .await
            .unwrap_err();
        assert_eq!(
            err.webauthn_failure(),
            Some(&WebAuthnFailure::InvalidSignature)
        );
    }
}

#[tokio::test]
async fn es512_is_refused_unless_offered() {
    let rp = rp(&[alg::ES256, alg::ES384]);
    let auth = SoftAuthenticator::new(alg::ES512, ORIGIN).unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user()))
        .await
        .unwrap();
    let err = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.webauthn_failure(),
        Some(&WebAuthnFailure::AlgorithmNotRequested)
    );
}
