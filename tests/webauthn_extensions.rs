//! WebAuthn extensions end to end with the software authenticator: PRF (`eval`,
//! `evalByCredential`, at registration and authentication), largeBlob, credProtect (with the
//! authenticator's output checked), credBlob, minPinLength, appidExclude, and the typed outputs in
//! `RegisteredCredential` and `VerifiedAssertion`. tests/webauthn_chromium.rs runs the ones
//! Chromium's virtual authenticator supports in a real browser.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::Env;
use keyward::store::{MemoryStore, StateStore};
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, AuthenticatorAttachment, CredentialProtectionPolicy, LargeBlobOutput,
    LargeBlobSupport, PrfInput, RegisteredCredential, RegistrationRequest, RelyingParty,
    RelyingPartyConfig, UserEntity, alg,
};
use keyward::{AuthenticatorVerifier, ErrorKind, ManualClock, WebAuthnFailure};

const ORIGIN: &str = "https://example.com";

fn rp_with(config: RelyingPartyConfig) -> RelyingParty {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    RelyingParty::new(config, store).env(Env::system().with_clock(clock))
}

fn rp() -> RelyingParty {
    rp_with(RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap())
}

fn user(n: u8) -> UserEntity {
    UserEntity::new(vec![n; 16], format!("u{n}"), format!("U {n}")).unwrap()
}

async fn register_with(
    rp: &RelyingParty,
    auth: &SoftAuthenticator,
    request: RegistrationRequest,
) -> keyward::Result<RegisteredCredential> {
    let (options, state) = rp.start_registration(request).await?;
    let response = auth.register(&options).unwrap();
    rp.finish_registration(state, &response).await
}

async fn authenticate(
    rp: &RelyingParty,
    auth: &SoftAuthenticator,
    request: AuthenticationRequest,
) -> keyward::Result<keyward::webauthn::VerifiedAssertion> {
    let (options, state) = rp.start_authentication(request).await?;
    let response = auth.authenticate(&options).unwrap();
    rp.finish_authentication(state, &response).await
}

#[tokio::test]
async fn prf_eval_at_registration_and_eval_by_credential_at_authentication() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let salt1 = [1u8; 32];
    let salt2 = [2u8; 32];
    let (options, state) = rp
        .start_registration(
            RegistrationRequest::new(user(1)).prf_eval(PrfInput::new(salt1).with_second(salt2)),
        )
        .await
        .unwrap();
    let ext = options.extensions.as_ref().unwrap();
    assert!(ext["prf"]["eval"]["first"].is_string());
    let response = auth.register(&options).unwrap();
    // The response's Debug names the extension, never its outputs.
    let shown = format!("{response:?}");
    let first_b64 = response.client_extension_results["prf"]["results"]["first"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        shown.contains("prf") && !shown.contains(&first_b64),
        "{shown}"
    );
    let cred = rp.finish_registration(state, &response).await.unwrap();
    assert_eq!(cred.extensions.prf_enabled, Some(true));
    assert_eq!(cred.extensions.hmac_secret, Some(true));
    let prf = cred.prf.as_ref().expect("prf evaluated at creation");
    let expected1 = auth.prf_for(&cred.credential_id, &salt1).unwrap();
    let expected2 = auth.prf_for(&cred.credential_id, &salt2).unwrap();
    assert_eq!(prf.first.expose(), expected1.as_slice());
    assert_eq!(prf.second.as_ref().unwrap().expose(), expected2.as_slice());
    // Secret in Debug, and never stored.
    assert!(!format!("{cred:?}").contains(&format!("{:?}", &expected1[..4])));
    assert!(format!("{cred:?}").contains("REDACTED"));
    let stored = rp.credential(&cred.credential_id).await.unwrap().unwrap();
    assert!(stored.prf.is_none());
    assert_eq!(stored.extensions, cred.extensions);

    // Authentication: `eval` for any credential, `evalByCredential` wins for its credential.
    let other = [9u8; 32];
    let a = authenticate(
        &rp,
        &auth,
        AuthenticationRequest::for_user(vec![1; 16])
            .prf_eval(PrfInput::new(other))
            .prf_eval_by_credential(cred.credential_id.clone(), PrfInput::new(salt1)),
    )
    .await
    .unwrap();
    let out = a.prf().unwrap();
    assert_eq!(
        out.first.expose(),
        expected1.as_slice(),
        "same salt, same key"
    );
    assert!(out.second.is_none());
    assert!(format!("{a:?}").contains("REDACTED"));
    let a = authenticate(
        &rp,
        &auth,
        AuthenticationRequest::discoverable().prf_eval(PrfInput::new(other)),
    )
    .await
    .unwrap();
    assert_eq!(
        a.prf().unwrap().first.expose(),
        auth.prf_for(&cred.credential_id, &other)
            .unwrap()
            .as_slice()
    );
    assert_ne!(a.prf().unwrap().first.expose(), expected1.as_slice());
    // Without a prf request, no output is read (even if a client sent one).
    let a = authenticate(&rp, &auth, AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    assert!(a.prf().is_none());
}

#[tokio::test]
async fn prf_inputs_are_checked_when_the_ceremony_starts() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let cred = register_with(&rp, &auth, RegistrationRequest::new(user(1)).prf())
        .await
        .unwrap();
    assert!(cred.prf.is_none(), "enabled, not evaluated");
    assert_eq!(cred.extensions.prf_enabled, Some(true));
    // evalByCredential must name an allowed credential: never in a discoverable request.
    let err = rp
        .start_authentication(
            AuthenticationRequest::discoverable()
                .prf_eval_by_credential(cred.credential_id.clone(), PrfInput::new([1; 32])),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = rp
        .start_authentication(
            AuthenticationRequest::for_user(vec![1; 16])
                .prf_eval_by_credential(vec![7; 16], PrfInput::new([1; 32])),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = rp
        .start_authentication(AuthenticationRequest::discoverable().prf_eval(PrfInput::new([])))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_malformed_prf_output_is_refused() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    register_with(&rp, &auth, RegistrationRequest::new(user(1)).prf())
        .await
        .unwrap();
    let (options, state) = rp
        .start_authentication(
            AuthenticationRequest::for_user(vec![1; 16]).prf_eval(PrfInput::new([3; 32])),
        )
        .await
        .unwrap();
    let mut response = auth.authenticate(&options).unwrap();
    response.client_extension_results["prf"]["results"]["first"] = "AAAA".into();
    let err = rp
        .finish_authentication(state, &response)
        .await
        .unwrap_err();
    assert_eq!(
        err.webauthn_failure(),
        Some(&WebAuthnFailure::Malformed("clientExtensionResults"))
    );
}

#[tokio::test]
async fn large_blob_support_write_and_read() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let cred = register_with(
        &rp,
        &auth,
        RegistrationRequest::new(user(1)).large_blob(LargeBlobSupport::Required),
    )
    .await
    .unwrap();
    assert_eq!(cred.extensions.large_blob_supported, Some(true));
    let second = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    register_with(&rp, &second, RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    // A write needs exactly one allowed credential; the user has two.
    let err = rp
        .start_authentication(AuthenticationRequest::for_user(vec![1; 16]).large_blob_write(*b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let a = authenticate(
        &rp,
        &auth,
        AuthenticationRequest::for_credential(vec![1; 16], cred.credential_id.clone())
            .large_blob_write(*b"certificate bytes"),
    )
    .await
    .unwrap();
    assert_eq!(
        a.extensions().large_blob,
        Some(LargeBlobOutput::Written(true))
    );
    let a = authenticate(
        &rp,
        &auth,
        AuthenticationRequest::for_user(vec![1; 16]).large_blob_read(),
    )
    .await
    .unwrap();
    match &a.extensions().large_blob {
        Some(LargeBlobOutput::Read(Some(blob))) => assert_eq!(blob.expose(), b"certificate bytes"),
        other => panic!("{other:?}"),
    }
    assert!(!format!("{a:?}").contains("certificate"));
}

#[tokio::test]
async fn cred_protect_is_requested_and_the_authenticator_output_checked() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let (options, _) = rp
        .start_registration(
            RegistrationRequest::new(user(1))
                .cred_protect(CredentialProtectionPolicy::UserVerificationRequired, true),
        )
        .await
        .unwrap();
    let ext = options.extensions.as_ref().unwrap();
    assert_eq!(
        ext["credentialProtectionPolicy"],
        "userVerificationRequired"
    );
    assert_eq!(ext["enforceCredentialProtectionPolicy"], true);
    let cred = register_with(
        &rp,
        &auth,
        RegistrationRequest::new(user(1))
            .cred_protect(CredentialProtectionPolicy::UserVerificationRequired, true),
    )
    .await
    .unwrap();
    assert_eq!(
        cred.extensions.cred_protect,
        Some(CredentialProtectionPolicy::UserVerificationRequired)
    );
    // Enforced: a lower level, or none, is refused.
    for output in [1u8, 0] {
        auth.set_knobs(|k| k.cred_protect_output = Some(output));
        let err = register_with(
            &rp,
            &auth,
            RegistrationRequest::new(user(2)).cred_protect(
                CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList,
                true,
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.webauthn_failure(),
            Some(&WebAuthnFailure::ExtensionNotHonored("credProtect")),
            "{output}"
        );
    }
    // Not enforced: accepted and the level obtained reported.
    auth.set_knobs(|k| k.cred_protect_output = Some(1));
    let cred = register_with(
        &rp,
        &auth,
        RegistrationRequest::new(user(3))
            .cred_protect(CredentialProtectionPolicy::UserVerificationRequired, false),
    )
    .await
    .unwrap();
    assert_eq!(
        cred.extensions.cred_protect,
        Some(CredentialProtectionPolicy::UserVerificationOptional)
    );
}

#[tokio::test]
async fn cred_blob_min_pin_length_appid_exclude_and_attachment() {
    let rp = rp_with(
        RelyingPartyConfig::new("example.com", "Example", ORIGIN)
            .unwrap()
            .appid("https://example.com/appid.json"),
    );
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| {
        k.min_pin_length = 8;
        k.attachment = Some("cross-platform".into());
    });
    let (options, _) = rp
        .start_registration(RegistrationRequest::new(user(9)))
        .await
        .unwrap();
    assert_eq!(
        options.extensions.as_ref().unwrap()["appidExclude"],
        "https://example.com/appid.json",
        "the configured AppID is excluded by default"
    );
    let cred = register_with(
        &rp,
        &auth,
        RegistrationRequest::new(user(1))
            .cred_blob(*b"blob-32")
            .min_pin_length(),
    )
    .await
    .unwrap();
    assert_eq!(cred.extensions.cred_blob_stored, Some(true));
    assert_eq!(cred.extensions.min_pin_length, Some(8));
    assert_eq!(cred.extensions.appid_exclude, Some(true));
    assert_eq!(
        cred.authenticator_attachment,
        Some(AuthenticatorAttachment::CrossPlatform)
    );
    let stored = rp.credential(&cred.credential_id).await.unwrap().unwrap();
    assert_eq!(
        stored.authenticator_attachment,
        Some(AuthenticatorAttachment::CrossPlatform)
    );
    let a = authenticate(
        &rp,
        &auth,
        AuthenticationRequest::for_user(vec![1; 16]).get_cred_blob(),
    )
    .await
    .unwrap();
    assert_eq!(a.extensions().cred_blob.as_deref(), Some(&b"blob-32"[..]));
    assert_eq!(
        a.authenticator_attachment(),
        Some(AuthenticatorAttachment::CrossPlatform)
    );
    // Outputs nobody asked for are not read.
    let a = authenticate(&rp, &auth, AuthenticationRequest::for_user(vec![1; 16]))
        .await
        .unwrap();
    assert_eq!(a.extensions().cred_blob, None);
    // A credBlob longer than every authenticator's minimum is refused at start.
    let err = rp
        .start_registration(RegistrationRequest::new(user(2)).cred_blob(vec![0; 33]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn an_authenticator_without_extensions_gives_empty_outputs() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| k.extensions = false);
    let cred = register_with(
        &rp,
        &auth,
        RegistrationRequest::new(user(1))
            .prf_eval(PrfInput::new([1; 32]))
            .large_blob(LargeBlobSupport::Preferred)
            .min_pin_length(),
    )
    .await
    .unwrap();
    assert_eq!(cred.extensions, Default::default());
    assert!(cred.prf.is_none());
    assert_eq!(cred.discoverable, None);
}

/// #16: the Signal API JSON comes from what the store holds.
#[tokio::test]
async fn signal_api_json_reflects_the_store() {
    let rp = rp();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let a = register_with(&rp, &auth, RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    let b = register_with(&rp, &auth, RegistrationRequest::new(user(1)))
        .await
        .unwrap();
    rp.delete_credential(&[1; 16], &a.credential_id)
        .await
        .unwrap();
    let all =
        serde_json::to_value(rp.signal_all_accepted_credentials(&[1; 16]).await.unwrap()).unwrap();
    let b64 = |v: &[u8]| keyward::webauthn::Base64UrlBytes(v.to_vec()).encode();
    assert_eq!(
        all,
        serde_json::json!({
            "rpId": "example.com",
            "userId": b64(&[1; 16]),
            "allAcceptedCredentialIds": [b64(&b.credential_id)],
        })
    );
    let unknown = serde_json::to_value(rp.signal_unknown_credential(&a.credential_id)).unwrap();
    assert_eq!(
        unknown,
        serde_json::json!({"rpId": "example.com", "credentialId": b64(&a.credential_id)})
    );
    let details = serde_json::to_value(rp.signal_current_user_details(&user(1))).unwrap();
    assert_eq!(
        details,
        serde_json::json!({"rpId": "example.com", "userId": b64(&[1; 16]), "name": "u1", "displayName": "U 1"})
    );
    // No credential left: an empty list.
    let none = rp.signal_all_accepted_credentials(&[2; 16]).await.unwrap();
    assert!(none.all_accepted_credential_ids.is_empty());
}
