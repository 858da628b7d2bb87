//! Fault injection on WebAuthn registration: a store failing the Nth write, before or after it
//! lands. Whatever fails, the credential is either absent (not listed, cannot sign in) or
//! complete (listed and signs in); a retry of the same response either works or says the
//! ceremony must restart.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::Env;
use keyward::store::{MemoryStore, StateStore};
use keyward::testing::{FaultMode, FaultyStore, SoftAuthenticator};
use keyward::webauthn::{
    AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig, UserEntity, alg,
};
use keyward::{AuthenticatorVerifier, ManualClock, WebAuthnFailure};

const ORIGIN: &str = "https://example.com";

fn rig() -> (RelyingParty, Arc<FaultyStore>) {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let inner: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let faulty = Arc::new(FaultyStore::new(inner));
    let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap();
    (
        RelyingParty::new(config, faulty.clone()).env(Env::system().with_clock(clock)),
        faulty,
    )
}

fn user() -> UserEntity {
    UserEntity::new(vec![9; 16], "u@example.com", "U").unwrap()
}

/// Whether the authenticator's credential signs in (usernameless, no faults).
async fn signs_in(rp: &RelyingParty, auth: &SoftAuthenticator) -> bool {
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap();
    let Ok(response) = auth.authenticate(&options) else {
        return false;
    };
    rp.finish_authentication(state, &response).await.is_ok()
}

#[tokio::test]
async fn a_failed_write_never_leaves_a_half_registered_credential() {
    // Count the writes of a clean start + finish.
    let (rp, faulty) = rig();
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user()))
        .await
        .unwrap();
    rp.finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
    let writes = faulty.writes();
    assert!(writes >= 3, "start, take, hint, record: {writes}");

    let mut seen_errors = 0;
    for mode in [FaultMode::BeforeWrite, FaultMode::AfterWrite] {
        for n in 0..writes {
            let (rp, faulty) = rig();
            let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
            faulty.fail_write(n, mode);
            let started = rp
                .start_registration(RegistrationRequest::new(user()))
                .await;
            let Ok((options, state)) = started else {
                seen_errors += 1;
                faulty.heal();
                assert!(rp.credentials_for_user(&[9; 16]).await.unwrap().is_empty());
                continue;
            };
            let response = auth.register(&options).unwrap();
            let finished = rp.finish_registration(state.clone(), &response).await;
            faulty.heal();
            let listed = !rp.credentials_for_user(&[9; 16]).await.unwrap().is_empty();
            let found = rp
                .credential(response.raw_id.as_slice())
                .await
                .unwrap()
                .is_some();
            let usable = signs_in(&rp, &auth).await;
            assert_eq!(listed, usable, "{mode:?} at write {n}: listed iff usable");
            assert_eq!(listed, found, "{mode:?} at write {n}: found iff listed");
            match finished {
                Ok(_) => assert!(listed, "{mode:?} at write {n}: success but not stored"),
                Err(e) => {
                    seen_errors += 1;
                    if mode == FaultMode::BeforeWrite {
                        assert!(
                            !usable,
                            "{mode:?} at write {n}: error left a usable credential"
                        );
                    }
                    // The retry of the same response: works, or says restart.
                    match rp.finish_registration(state, &response).await {
                        Ok(_) => {
                            assert!(!rp.credentials_for_user(&[9; 16]).await.unwrap().is_empty())
                        }
                        Err(retry) => assert_eq!(
                            retry.webauthn_failure(),
                            Some(&WebAuthnFailure::StateConsumed),
                            "{mode:?} at write {n}: first error {e:?}, retry {retry:?}"
                        ),
                    }
                }
            }
        }
    }
    assert!(
        seen_errors >= writes,
        "every injected fault surfaced: {seen_errors}"
    );
}
