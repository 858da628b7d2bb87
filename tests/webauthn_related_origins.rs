//! Related Origin Requests (WebAuthn Level 3 §5.11.1) with the software authenticator: a
//! configured related origin registers and signs in for the rp id, exactly that origin and
//! nothing else (not its subdomains, not another port, not with a legacy AppID scope), and the
//! `/.well-known/webauthn` document lists it.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::store::{MemoryStore, StateStore};
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig, UserEntity, alg,
};
use keyward::{AuthenticatorVerifier, Env, ManualClock, WebAuthnFailure};

const ORIGIN: &str = "https://example.com";
const RELATED: &str = "https://example.co.uk";
const APPID: &str = "https://example.com/appid.json";

fn rp() -> RelyingParty {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN)
        .unwrap()
        .related_origin(RELATED)
        .unwrap()
        .appid(APPID);
    RelyingParty::new(config, store).env(Env::system().with_clock(clock))
}

fn user() -> UserEntity {
    UserEntity::new(vec![3; 16], "alice@example.com", "Alice").unwrap()
}

fn failure(e: keyward::Error) -> WebAuthnFailure {
    e.webauthn_failure().cloned().unwrap()
}

#[tokio::test]
async fn a_related_origin_registers_and_signs_in_for_the_rp_id() {
    let rp = rp();
    assert_eq!(
        rp.config().well_known_webauthn_json(),
        r#"{"origins":["https://example.co.uk"]}"#
    );
    let auth = SoftAuthenticator::new(alg::ES256, RELATED).unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user()))
        .await
        .unwrap();
    // The options name the rp id, not the related origin's site.
    assert_eq!(options.rp.id.as_deref(), Some("example.com"));
    let cred = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![3; 16]))
        .await
        .unwrap();
    let ok = rp
        .finish_authentication(state, &auth.authenticate(&options).unwrap())
        .await
        .unwrap();
    assert_eq!(ok.credential_id(), cred.credential_id.as_slice());
}

#[tokio::test]
async fn only_the_exact_related_origin_is_accepted() {
    let rp = rp();
    for origin in [
        "https://www.example.co.uk",
        "https://example.co.uk:8443",
        "http://example.co.uk",
        "https://example.org",
    ] {
        let auth = SoftAuthenticator::new(alg::ES256, origin).unwrap();
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user()))
            .await
            .unwrap();
        let err = rp
            .finish_registration(state, &auth.register(&options).unwrap())
            .await
            .unwrap_err();
        assert_eq!(
            failure(err),
            WebAuthnFailure::OriginNotAllowed(origin.into()),
            "{origin}"
        );
    }
    // As the rp id's own origin in a cross-origin iframe, it is no top origin.
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    auth.set_knobs(|k| {
        k.cross_origin = Some(true);
        k.top_origin = Some(RELATED.into());
    });
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user()))
        .await
        .unwrap();
    let err = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap_err();
    assert_eq!(failure(err), WebAuthnFailure::CrossOriginNotAllowed);
}

/// An assertion scoped to the legacy AppID (rpIdHash = SHA-256 of the AppID, `appid: true`)
/// passes from the rp id's own origin and is refused from the related origin.
#[tokio::test]
async fn a_related_origin_gets_no_appid_scope() {
    let rp = rp();
    for (origin, accepted) in [(ORIGIN, true), (RELATED, false)] {
        let auth = SoftAuthenticator::new(alg::ES256, origin).unwrap();
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user()))
            .await
            .unwrap();
        let cred = rp
            .finish_registration(state, &auth.register(&options).unwrap())
            .await
            .unwrap();
        auth.set_knobs(|k| k.rp_id = Some(APPID.into()));
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::for_credential(
                vec![3; 16],
                cred.credential_id.clone(),
            ))
            .await
            .unwrap();
        let mut response = auth.authenticate(&options).unwrap();
        response
            .client_extension_results
            .insert("appid".into(), true.into());
        let outcome = rp.finish_authentication(state, &response).await;
        if accepted {
            assert!(outcome.is_ok(), "{origin}: {outcome:?}");
        } else {
            assert_eq!(
                failure(outcome.unwrap_err()),
                WebAuthnFailure::RpIdHashMismatch
            );
        }
    }
}
