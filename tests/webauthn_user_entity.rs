//! A sign-in returns the stored user entity (handle, account name, display name), so a host
//! needs no map of user handles to names; a later registration's names reach every credential.
#![expect(clippy::unwrap_used, reason = "helpers outside #[test] fns")]

use std::sync::Arc;

use keyward::AuthenticatorVerifier;
use keyward::store::MemoryStore;
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, RegisteredCredential, RegistrationRequest, RelyingParty,
    RelyingPartyConfig, UserEntity, alg,
};

const ORIGIN: &str = "https://app.example.com";

async fn register(rp: &RelyingParty, device: &SoftAuthenticator, user: UserEntity) {
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user))
        .await
        .unwrap();
    let response = device.register(&options).unwrap();
    rp.finish_registration(state, &response).await.unwrap();
}

async fn sign_in(
    rp: &RelyingParty,
    device: &SoftAuthenticator,
) -> keyward::webauthn::VerifiedAssertion {
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    let response = device.authenticate(&options).unwrap();
    rp.finish_authentication(state, &response).await.unwrap()
}

#[tokio::test]
async fn a_usernameless_sign_in_says_who_signed_in() {
    let config = RelyingPartyConfig::new("app.example.com", "Users", ORIGIN).unwrap();
    let rp = RelyingParty::new(config, Arc::new(MemoryStore::new()));
    let handle = b"alice-handle-0001".to_vec();
    let laptop = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let alice = UserEntity::new(handle.clone(), "alice@example.com", "Alice").unwrap();
    register(&rp, &laptop, alice.clone()).await;

    let proof = sign_in(&rp, &laptop).await;
    assert_eq!(proof.user_id(), handle.as_slice());
    assert_eq!(proof.user(), Some(&alice));
    // The account name is personal data: Debug masks it.
    assert!(!format!("{proof:?}").contains("alice@example.com"));

    // A second passkey registered after a rename: both passkeys now sign in as the new names.
    let phone = SoftAuthenticator::new(alg::EDDSA, ORIGIN).unwrap();
    let renamed = UserEntity::new(handle.clone(), "alice@example.org", "Alice Smith").unwrap();
    register(&rp, &phone, renamed.clone()).await;
    assert_eq!(sign_in(&rp, &phone).await.user(), Some(&renamed));
    assert_eq!(sign_in(&rp, &laptop).await.user(), Some(&renamed));

    // Another user's passkey says its own user.
    let bob_key = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let bob = UserEntity::new(b"bob-handle-00001".to_vec(), "bob", "Bob").unwrap();
    register(&rp, &bob_key, bob.clone()).await;
    assert_eq!(sign_in(&rp, &bob_key).await.user(), Some(&bob));

    // The stored credentials carry the names.
    let stored = rp.credentials_for_user(&handle).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|c| c.user() == Some(renamed.clone())));

    // An import (no names) keeps the names stored for the user's other credentials.
    let migrated = RegisteredCredential::imported(
        b"migrated-credential".to_vec(),
        handle.clone(),
        stored[0].public_key_cose.clone(),
        0,
    )
    .unwrap();
    rp.import_credential(migrated).await.unwrap();
    let stored = rp.credentials_for_user(&handle).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored.iter().filter(|c| c.user().is_none()).count(), 1);
    assert_eq!(sign_in(&rp, &laptop).await.user(), Some(&renamed));
}
