//! Both ceremonies end to end with the software authenticator: every algorithm, every failure
//! reason a response can trigger, single use across tasks, and the two ES256 backends.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use keyward::Env;
use keyward::store::{MemoryStore, StateStore};
use keyward::testing::{SoftAttestation, SoftAuthenticator, SoftKnobs};
use keyward::webauthn::{
    AttestationType, AuthenticationRequest, CounterPolicy, ParsedCredential, RegisteredCredential,
    RegistrationRequest, RelyingParty, RelyingPartyConfig, SignatureBackend, UserEntity,
    UserVerification, alg,
};
use keyward::{AuthenticatorVerifier, ManualClock, WebAuthnFailure};

const ORIGIN: &str = "https://example.com";

fn config() -> RelyingPartyConfig {
    RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap()
}

fn rp_with(config: RelyingPartyConfig) -> (RelyingParty, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    (
        RelyingParty::new(config, store).env(Env::system().with_clock(clock.clone())),
        clock,
    )
}

fn user(n: u8) -> UserEntity {
    UserEntity::new(
        vec![n; 16],
        format!("user{n}@example.com"),
        format!("User {n}"),
    )
    .unwrap()
}

fn reason(e: keyward::Error) -> WebAuthnFailure {
    e.webauthn_failure()
        .cloned()
        .unwrap_or_else(|| panic!("not a webauthn error: {e:?}"))
}

async fn register(rp: &RelyingParty, auth: &SoftAuthenticator, u: u8) -> RegisteredCredential {
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(u)))
        .await
        .unwrap();
    let response = auth.register(&options).unwrap();
    rp.finish_registration(state, &response).await.unwrap()
}

#[tokio::test]
async fn every_algorithm_registers_and_authenticates_with_both_attestations() {
    for algorithm in [alg::ES256, alg::ES384, alg::EDDSA, alg::RS256, alg::PS256] {
        for attestation in [SoftAttestation::None, SoftAttestation::PackedSelf] {
            for backend in [
                SignatureBackend::Ring,
                SignatureBackend::P256,
                #[cfg(feature = "fast-p256")]
                SignatureBackend::Precomputed,
            ] {
                let (rp, _) = rp_with(config().signature_backend(backend));
                let auth = SoftAuthenticator::new(algorithm, ORIGIN).unwrap();
                auth.set_knobs(|k| k.attestation = attestation);
                let cred = register(&rp, &auth, 1).await;
                assert_eq!(cred.algorithm, algorithm);
                assert_eq!(cred.user_id, vec![1; 16]);
                assert!(cred.user_verified);
                assert_eq!(cred.discoverable, Some(true));
                let expected_type = match attestation {
                    SoftAttestation::None => AttestationType::None,
                    _ => AttestationType::SelfAttestation,
                };
                assert_eq!(cred.attestation_type, expected_type);

                for round in 1..=2u32 {
                    let (options, state) = rp
                        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
                        .await
                        .unwrap();
                    assert_eq!(options.allow_credentials.len(), 1);
                    let response = auth.authenticate(&options).unwrap();
                    let ok = rp.finish_authentication(state, &response).await.unwrap();
                    assert_eq!(ok.sign_count(), round);
                    assert_eq!(ok.user_id(), &[1u8; 16][..]);
                    assert!(!ok.counter_regressed());
                }
                let stored = rp.credential(&cred.credential_id).await.unwrap().unwrap();
                assert_eq!(stored.sign_count, 2);
            }
        }
    }
}

#[tokio::test]
async fn a_corrupt_packed_self_attestation_is_refused() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| {
        k.attestation = SoftAttestation::PackedSelf;
        k.corrupt_signature = true;
    });
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let response = auth.register(&options).unwrap();
    let err = rp.finish_registration(state, &response).await.unwrap_err();
    assert!(matches!(
        reason(err),
        WebAuthnFailure::InvalidAttestation(_)
    ));
}

#[tokio::test]
async fn replay_fails_with_state_consumed_even_across_tasks() {
    let (rp, _) = rp_with(config());
    let rp = Arc::new(rp);
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    register(&rp, &auth, 1).await;
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let response = auth.authenticate(&options).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (rp, state, response) = (rp.clone(), state.clone(), response.clone());
        tasks.push(tokio::spawn(async move {
            rp.finish_authentication(state, &response).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(reason(e), WebAuthnFailure::StateConsumed),
        }
    }
    assert_eq!(ok, 1);

    // A failed finish consumes the state too.
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    auth.set_knobs(|k| k.corrupt_signature = true);
    let bad = auth.authenticate(&options).unwrap();
    assert_eq!(
        reason(
            rp.finish_authentication(state.clone(), &bad)
                .await
                .unwrap_err()
        ),
        WebAuthnFailure::InvalidSignature
    );
    auth.set_knobs(|k| k.corrupt_signature = false);
    let good = auth.authenticate(&options).unwrap();
    assert_eq!(
        reason(rp.finish_authentication(state, &good).await.unwrap_err()),
        WebAuthnFailure::StateConsumed
    );
}

#[tokio::test]
async fn expired_state_is_refused() {
    let (rp, clock) = rp_with(config().timeout(Duration::from_secs(60)));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let response = auth.register(&options).unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        reason(rp.finish_registration(state, &response).await.unwrap_err()),
        WebAuthnFailure::StateConsumed
    );
}

/// Registers with correct knobs, then authenticates once with `knobs` changed.
async fn auth_failure(
    config: RelyingPartyConfig,
    change: impl FnOnce(&mut SoftKnobs),
) -> Result<keyward::webauthn::VerifiedAssertion, WebAuthnFailure> {
    let (rp, _) = rp_with(config);
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| k.user_verified = false);
    register(&rp, &auth, 1).await;
    auth.set_knobs(change);
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let response = auth.authenticate(&options).unwrap();
    rp.finish_authentication(state, &response)
        .await
        .map_err(reason)
}

type Knob = Box<dyn FnOnce(&mut SoftKnobs)>;

#[tokio::test]
async fn each_assertion_check_has_its_own_reason() {
    use WebAuthnFailure as F;
    let cases: Vec<(Knob, F)> = vec![
        (
            Box::new(|k| k.client_data_type = Some("webauthn.create".into())),
            F::TypeMismatch,
        ),
        (
            Box::new(|k| k.challenge = Some(vec![0; 32])),
            F::ChallengeMismatch,
        ),
        (
            Box::new(|k| k.origin = "https://evil.example".into()),
            F::OriginNotAllowed("https://evil.example".into()),
        ),
        (
            Box::new(|k| k.origin = "https://a.example.com".into()),
            F::OriginNotAllowed("https://a.example.com".into()),
        ),
        (
            Box::new(|k| k.cross_origin = Some(true)),
            F::CrossOriginNotAllowed,
        ),
        (
            Box::new(|k| k.top_origin = Some("https://top.example".into())),
            F::TopOriginNotAllowed("https://top.example".into()),
        ),
        (
            Box::new(|k| k.rp_id = Some("evil.example".into())),
            F::RpIdHashMismatch,
        ),
        (Box::new(|k| k.user_present = false), F::UserNotPresent),
        (
            Box::new(|k| k.backed_up = true),
            F::BackupStateWithoutEligibility,
        ),
        (
            Box::new(|k| k.corrupt_signature = true),
            F::InvalidSignature,
        ),
    ];
    for (change, expected) in cases {
        assert_eq!(auth_failure(config(), change).await.unwrap_err(), expected);
    }
    assert!(
        auth_failure(config(), |k| k.send_user_handle = false)
            .await
            .is_ok()
    );
    // UV per policy (the history rule off, so only the policy can require it).
    let (rp, _) = rp_with(
        config()
            .user_verification(UserVerification::Required)
            .require_uv_after_uv_registration(false),
    );
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    register(&rp, &auth, 1).await;
    auth.set_knobs(|k| k.user_verified = false);
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let err = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), F::UserNotVerified);
    // Subdomains and cross-origin when configured.
    let ok = auth_failure(config().allow_subdomains(true), |k| {
        k.origin = "https://a.example.com".into()
    })
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    let top = config().top_origin("https://top.example").unwrap();
    let ok = auth_failure(top, |k| {
        k.cross_origin = Some(true);
        k.top_origin = Some("https://top.example".into());
    })
    .await;
    assert!(ok.is_ok(), "{ok:?}");
    // Counter regression refused by default.
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| k.counter = Some(10));
    register(&rp, &auth, 1).await;
    auth.set_knobs(|k| k.counter = Some(10));
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let err = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), F::CounterRegression);
    // Counter regression reported instead of refused.
    let reported = auth_failure(config().counter_policy(CounterPolicy::Report), |k| {
        k.counter = Some(0)
    })
    .await
    .unwrap();
    assert!(
        !reported.counter_regressed(),
        "0 -> 0 is a counter not in use"
    );
    let (rp, _) = rp_with(config().counter_policy(CounterPolicy::Report));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| k.counter = Some(10));
    let cred = register(&rp, &auth, 1).await;
    auth.set_knobs(|k| k.counter = Some(5));
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let ok = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap();
    assert!(ok.counter_regressed());
    assert_eq!(
        rp.credential(&cred.credential_id)
            .await
            .unwrap()
            .unwrap()
            .sign_count,
        10
    );
}

#[tokio::test]
async fn uv_registered_credentials_keep_requiring_uv() {
    let (rp, _) = rp_with(config().user_verification(UserVerification::Discouraged));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    register(&rp, &auth, 1).await; // UV set at registration
    auth.set_knobs(|k| k.user_verified = false);
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    assert_eq!(options.user_verification, Some(UserVerification::Required));
    let err = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::UserNotVerified);
}

#[tokio::test]
async fn registration_checks() {
    use WebAuthnFailure as F;
    async fn reg(
        config: RelyingPartyConfig,
        algorithm: i64,
        change: impl FnOnce(&mut SoftKnobs),
    ) -> Result<RegisteredCredential, F> {
        let (rp, _) = rp_with(config);
        let auth = SoftAuthenticator::new(algorithm, ORIGIN).unwrap();
        auth.set_knobs(change);
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user(1)))
            .await
            .unwrap();
        let response = auth.register(&options).unwrap();
        rp.finish_registration(state, &response)
            .await
            .map_err(reason)
    }
    let es256_only = || config().algorithms([alg::ES256]).unwrap();
    assert_eq!(
        reg(es256_only(), alg::EDDSA, |_| {}).await.unwrap_err(),
        F::AlgorithmNotRequested
    );
    assert_eq!(
        reg(config(), alg::ES256, |k| k.client_data_type =
            Some("webauthn.get".into()))
        .await
        .unwrap_err(),
        F::TypeMismatch
    );
    assert_eq!(
        reg(config(), alg::ES256, |k| k.challenge = Some(vec![1; 32]))
            .await
            .unwrap_err(),
        F::ChallengeMismatch
    );
    assert_eq!(
        reg(config(), alg::ES256, |k| k.origin =
            "android:apk-key-hash:x".into())
        .await
        .unwrap_err(),
        F::OriginNotAllowed("android:apk-key-hash:x".into())
    );
    let android = config().origin("android:apk-key-hash:x").unwrap();
    assert!(
        reg(android, alg::ES256, |k| k.origin =
            "android:apk-key-hash:x".into())
        .await
        .is_ok()
    );
    assert_eq!(
        reg(config(), alg::ES256, |k| k.rp_id =
            Some("example.org".into()))
        .await
        .unwrap_err(),
        F::RpIdHashMismatch
    );
    assert_eq!(
        reg(config(), alg::ES256, |k| k.user_present = false)
            .await
            .unwrap_err(),
        F::UserNotPresent
    );
    assert_eq!(
        reg(
            config().user_verification(UserVerification::Required),
            alg::ES256,
            |k| { k.user_verified = false }
        )
        .await
        .unwrap_err(),
        F::UserNotVerified
    );
    assert_eq!(
        reg(config(), alg::ES256, |k| k.backed_up = true)
            .await
            .unwrap_err(),
        F::BackupStateWithoutEligibility
    );
}

#[tokio::test]
async fn exclude_credentials_discoverable_login_and_ownership() {
    let (rp, _) = rp_with(config());
    let alice = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let bob = SoftAuthenticator::new(alg::EDDSA, ORIGIN).unwrap();
    let a = register(&rp, &alice, 1).await;
    register(&rp, &bob, 2).await;
    let (options, _) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    assert_eq!(options.exclude_credentials.len(), 1);
    assert_eq!(
        options.exclude_credentials[0].id.as_slice(),
        a.credential_id.as_slice()
    );
    assert_eq!(options.extensions.as_ref().unwrap()["credProps"], true);

    // Usernameless: the user handle identifies the user.
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    assert!(options.allow_credentials.is_empty());
    let ok = rp
        .finish_authentication(state, &bob.authenticate(&options).unwrap())
        .await
        .unwrap();
    assert_eq!(ok.user_id(), &[2u8; 16][..]);

    // Usernameless without a user handle.
    bob.set_knobs(|k| k.send_user_handle = false);
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    let err = rp
        .finish_authentication(state, &bob.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(reason(err), WebAuthnFailure::Malformed(_)));

    // Bob's credential answering Alice's ceremony.
    bob.set_knobs(|k| k.send_user_handle = true);
    let (mut options, alice_state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    options.allow_credentials.clear();
    let err = rp
        .finish_authentication(alice_state, &bob.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::CredentialNotAllowed);

    // A user with no credentials gets an empty allow list; Bob's credential is not theirs.
    let (options, carol_state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![3; 16]))
        .await
        .unwrap();
    assert!(options.allow_credentials.is_empty());
    let err = rp
        .finish_authentication(carol_state, &bob.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::CredentialNotOwned);

    // An unknown credential.
    let stranger = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let (reg_options, _) = rp
        .start_registration(RegistrationRequest::new(user(4)))
        .await
        .unwrap();
    stranger.register(&reg_options).unwrap(); // never finished: unknown to the RP
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    let err = rp
        .finish_authentication(state, &stranger.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::UnknownCredential);
}

#[tokio::test]
async fn store_free_verification_matches_and_backends_agree() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let cred = register(&rp, &auth, 1).await;
    let parsed = ParsedCredential::new(cred.clone()).unwrap();
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let response = auth.authenticate(&options).unwrap();
    let ring = rp.verify_assertion(&state, &parsed, &response).unwrap();
    let p256_config = config().signature_backend(SignatureBackend::P256);
    let pure =
        keyward::webauthn::verify_assertion(&p256_config, &state, &parsed, &response).unwrap();
    assert_eq!(ring, pure);
    // JSON convenience path on the same state.
    let json = serde_json::to_string(&response).unwrap();
    let ok = rp.finish_authentication_json(state, &json).await.unwrap();
    assert_eq!(ok.sign_count(), 1);
}

#[tokio::test]
async fn deleting_a_credential_removes_it_from_the_user() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let cred = register(&rp, &auth, 1).await;
    let err = rp
        .delete_credential(&[2; 16], &cred.credential_id)
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::CredentialNotOwned);
    assert!(
        rp.delete_credential(&[1; 16], &cred.credential_id)
            .await
            .unwrap()
    );
    assert!(
        !rp.delete_credential(&[1; 16], &cred.credential_id)
            .await
            .unwrap()
    );
    assert!(rp.credentials_for_user(&[1; 16]).await.unwrap().is_empty());
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    let err = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::UnknownCredential);
}

#[tokio::test]
async fn tampered_state_and_duplicate_credentials_are_refused() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let cred = register(&rp, &auth, 1).await;
    assert_eq!(
        reason(rp.import_credential(cred.clone()).await.unwrap_err()),
        WebAuthnFailure::CredentialAlreadyRegistered
    );

    // A state whose challenge was edited (it travels through the host's session) no longer
    // matches the one in the store; the attempt still consumes the ceremony.
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let mut json = serde_json::to_value(&state).unwrap();
    json["challenge"][0] = serde_json::json!((json["challenge"][0].as_u64().unwrap() + 1) % 256);
    let forged: keyward::webauthn::AuthenticationState = serde_json::from_value(json).unwrap();
    let mut forged_options = options.clone();
    forged_options.challenge.0[0] = forged_options.challenge.0[0].wrapping_add(1);
    let err = rp
        .finish_authentication(forged, &auth.authenticate(&forged_options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::StateConsumed);
    let err = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::StateConsumed);
}

/// #14 item 8: a UTF-8 byte order mark before clientDataJSON is stripped, as the specification's
/// "UTF-8 decode" does; the signature still covers the bytes as sent.
#[tokio::test]
async fn client_data_with_a_byte_order_mark_is_accepted_in_both_ceremonies() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| k.client_data_bom = true);
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let response = auth.register(&options).unwrap();
    assert!(
        response
            .response
            .client_data_json
            .as_slice()
            .starts_with(b"\xEF\xBB\xBF")
    );
    rp.finish_registration(state, &response).await.unwrap();
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    rp.finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap();
}

/// #14 item 8: a test-hook challenge longer than client data can carry (64 bytes) or shorter
/// than the specification's 16 is refused when the ceremony starts, not later as a mismatch.
#[tokio::test]
async fn test_hook_challenges_must_be_16_to_64_bytes() {
    let (rp, _) = rp_with(config());
    for len in [0usize, 15, 65, 1000] {
        let err = rp
            .start_registration_with_challenge(RegistrationRequest::new(user(1)), vec![7; len])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &keyward::ErrorKind::InvalidInput, "{len}");
        let err = rp
            .start_authentication_with_challenge(
                AuthenticationRequest::discoverable(),
                vec![7; len],
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &keyward::ErrorKind::InvalidInput, "{len}");
    }
    // 64 bytes works end to end.
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let (options, state) = rp
        .start_registration_with_challenge(RegistrationRequest::new(user(1)), vec![7; 64])
        .await
        .unwrap();
    rp.finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
}

/// #15: a refused origin is named in the failure (bounded, so a huge origin cannot bloat logs).
#[tokio::test]
async fn an_origin_refusal_names_the_origin_received() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, "https://example.com:8443").unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let err = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("https://example.com:8443"),
        "{err}"
    );
    assert_eq!(
        reason(err),
        WebAuthnFailure::OriginNotAllowed("https://example.com:8443".into())
    );
    let long = format!("https://{}.example\n", "a".repeat(500));
    auth.set_knobs(|k| k.origin = long.clone());
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(2)))
        .await
        .unwrap();
    let err = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.len() < 200, "{text}");
    assert!(
        !text.contains('\n'),
        "control characters are escaped: {text}"
    );
}

/// #15: typed options reach the browser as their WebAuthn strings.
#[tokio::test]
async fn typed_registration_options_serialize_to_webauthn_strings() {
    use keyward::webauthn::{
        AttestationConveyance, AuthenticatorAttachment, PublicKeyCredentialHint,
        ResidentKeyRequirement,
    };
    let (rp, _) = rp_with(config().attestation_preference(AttestationConveyance::Direct));
    let (options, _) = rp
        .start_registration(
            RegistrationRequest::new(user(1))
                .resident_key(ResidentKeyRequirement::Required)
                .authenticator_attachment(AuthenticatorAttachment::Platform)
                .hint(PublicKeyCredentialHint::ClientDevice),
        )
        .await
        .unwrap();
    let json = serde_json::to_value(&options).unwrap();
    let sel = &json["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "required");
    assert_eq!(sel["requireResidentKey"], true);
    assert_eq!(sel["authenticatorAttachment"], "platform");
    assert_eq!(sel["userVerification"], "preferred");
    assert_eq!(json["hints"], serde_json::json!(["client-device"]));
    assert_eq!(json["attestation"], "direct");
}

/// #15: the relying-party configuration is validated when it is built.
#[test]
fn relying_party_config_is_validated_when_built() {
    let ok = |rp: &str, origin: &str| RelyingPartyConfig::new(rp, "Ex", origin).is_ok();
    assert!(ok("example.com", "https://example.com"));
    assert!(ok("example.com", "https://login.example.com:8443"));
    assert!(ok("login.example.com", "https://login.example.com"));
    assert!(ok("localhost", "http://localhost:8080"));
    assert!(ok("127.0.0.1", "http://127.0.0.1:8080"));
    assert!(ok("spectral.local", "https://spectral.local:8443"));
    // rp id unrelated to the origin, a parent of it that is a public suffix, or a child of it.
    assert!(!ok("example.com", "https://example.org"));
    assert!(!ok("example.com", "https://badexample.com"));
    assert!(!ok("login.example.com", "https://example.com"));
    assert!(!ok("com", "https://example.com"));
    assert!(!ok("co.uk", "https://example.co.uk"));
    assert!(!ok("github.io", "https://alice.github.io"));
    assert!(ok("alice.github.io", "https://alice.github.io"));
    // Origins without a scheme, with a path, plain http off localhost, other schemes.
    assert!(!ok("example.com", "example.com"));
    assert!(!ok("example.com", "https://example.com/"));
    assert!(!ok("example.com", "https://example.com/login"));
    assert!(!ok("example.com", "http://example.com"));
    assert!(!ok("example.com", "ftp://example.com"));
    assert!(!ok("example.com", "https://example.com:0"));
    assert!(!ok("example.com", "https://example.com:99999"));
    assert!(!ok("example.com", "https://user@example.com"));
    // rp ids are lowercase domain names without scheme or port.
    assert!(!ok("https://example.com", "https://example.com"));
    assert!(!ok("example.com:443", "https://example.com"));
    assert!(!ok("Example.com", "https://example.com"));
    assert!(!ok("", "https://example.com"));
    // An IP-literal rp id covers only that IP.
    assert!(!ok("127.0.0.1", "http://localhost:8080"));
    // Opaque Android origins are allowed as extra origins; not scheme-less junk.
    let c = RelyingPartyConfig::new("example.com", "Ex", "https://example.com").unwrap();
    assert!(c.clone().origin("android:apk-key-hash:AbC-d_e").is_ok());
    assert!(c.clone().origin("android:apk-key-hash:").is_err());
    assert!(c.clone().origin("ios:bundle-id:x").is_err());
    assert!(c.clone().origin("https://evil.com").is_err());
    // Top origins embed the RP and may be any https site.
    assert!(c.clone().top_origin("https://partner.example.net").is_ok());
    assert!(c.clone().top_origin("partner.example.net").is_err());
    // Errors name the value refused.
    let err = RelyingPartyConfig::new("example.com", "Ex", "https://example.org").unwrap_err();
    assert_eq!(err.kind(), &keyward::ErrorKind::Config);
    assert!(err.to_string().contains("https://example.org"), "{err}");
    // Origins are normalized as browsers serialize them.
    let c = RelyingPartyConfig::new("example.com", "Ex", "HTTPS://Example.COM:443").unwrap();
    assert!(c.origin_allowed("https://example.com"));
}

/// #16: a backup-eligibility change (iCloud Keychain turning a device-bound credential into a
/// synced one) is accepted and reported by default, stored, and refused only on request.
#[tokio::test]
async fn backup_eligibility_change_is_reported_by_default_and_refused_on_request() {
    use keyward::webauthn::BackupEligibilityPolicy;
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let cred = register(&rp, &auth, 1).await;
    assert!(!cred.backup_eligible);
    auth.set_knobs(|k| {
        k.backup_eligible = true;
        k.backed_up = true;
    });
    let login = || async {
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
            .await
            .unwrap();
        rp.finish_authentication(state, &auth.authenticate(&options).unwrap())
            .await
    };
    let a = login().await.unwrap();
    assert!(a.backup_eligibility_changed() && a.backup_state_changed());
    assert!(a.backup_eligible() && a.backed_up());
    let stored = rp.credential(&cred.credential_id).await.unwrap().unwrap();
    assert!(stored.backup_eligible && stored.backed_up);
    // Reported once: the stored flags now match.
    let a = login().await.unwrap();
    assert!(!a.backup_eligibility_changed() && !a.backup_state_changed());

    let strict = config().backup_eligibility_policy(BackupEligibilityPolicy::Reject);
    let err = auth_failure(strict, |k| k.backup_eligible = true)
        .await
        .unwrap_err();
    assert_eq!(err, WebAuthnFailure::BackupEligibilityChanged);
}

/// #16: conditional create (automatic passkey upgrade) is the only ceremony that accepts a
/// credential made without user presence.
#[tokio::test]
async fn conditional_create_alone_accepts_no_user_presence() {
    let (rp, _) = rp_with(config());
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| {
        k.user_present = false;
        k.user_verified = false;
    });
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let err = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::UserNotPresent);
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user(1)).conditional())
        .await
        .unwrap();
    let cred = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
    assert!(!cred.user_verified);
    // Authentication always requires presence.
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    let err = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::UserNotPresent);
}

/// #16: policy per request, defaulting to the configuration.
#[tokio::test]
async fn policy_per_request_overrides_the_configuration() {
    use keyward::webauthn::{AttestationConveyance, PublicKeyCredentialHint};
    let (rp, clock) = rp_with(config().timeout(Duration::from_secs(300)));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let (options, _) = rp
        .start_registration(
            RegistrationRequest::new(user(1))
                .user_verification(UserVerification::Required)
                .attestation(AttestationConveyance::Direct)
                .attestation_format("packed")
                .attestation_format("tpm")
                .timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let json = serde_json::to_value(&options).unwrap();
    assert_eq!(
        json["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(json["attestation"], "direct");
    assert_eq!(
        json["attestationFormats"],
        serde_json::json!(["packed", "tpm"])
    );
    assert_eq!(json["timeout"], 30_000);
    let (options, _) = rp
        .start_registration(RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let json = serde_json::to_value(&options).unwrap();
    assert_eq!(
        json["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    assert_eq!(json["attestation"], "none");
    assert_eq!(json["timeout"], 300_000);
    assert!(
        rp.start_registration(RegistrationRequest::new(user(1)).attestation_format("x-mine"))
            .await
            .is_err()
    );
    assert!(
        rp.start_registration(RegistrationRequest::new(user(1)).timeout(Duration::ZERO))
            .await
            .is_err()
    );

    // Registration with UV required per request refuses a response without UV.
    auth.set_knobs(|k| k.user_verified = false);
    let (options, state) = rp
        .start_registration(
            RegistrationRequest::new(user(1)).user_verification(UserVerification::Required),
        )
        .await
        .unwrap();
    let err = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::UserNotVerified);
    register(&rp, &auth, 1).await;

    // Authentication: hints, UV and a shorter timeout that expires before the configured one.
    let (options, state) = rp
        .start_authentication(
            AuthenticationRequest::for_user(vec![1; 16])
                .hint(PublicKeyCredentialHint::SecurityKey)
                .user_verification(UserVerification::Required)
                .timeout(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let json = serde_json::to_value(&options).unwrap();
    assert_eq!(json["hints"], serde_json::json!(["security-key"]));
    assert_eq!(json["userVerification"], "required");
    assert_eq!(json["timeout"], 10_000);
    auth.set_knobs(|k| k.user_verified = true);
    let response = auth.authenticate(&options).unwrap();
    clock.advance(Duration::from_secs(11));
    let err = rp
        .finish_authentication(state, &response)
        .await
        .unwrap_err();
    assert_eq!(reason(err), WebAuthnFailure::StateConsumed);
}
