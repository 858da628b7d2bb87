//! Batch verification gives, item by item, exactly the verdict of the single-assertion path, on a
//! mix of valid and invalid assertions, on the global pool and on dedicated pools.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keyward::AuthenticatorVerifier;
use keyward::store::MemoryStore;
use keyward::testing::{SoftAuthenticator, SoftKnobs};
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, BatchAssertion,
    BatchVerifier, ParsedCredential, RegistrationRequest, RelyingParty, RelyingPartyConfig,
    UserEntity, VerifiedAssertion, alg, verify_assertion, verify_assertion_json, verify_batch,
};

const ORIGIN: &str = "https://example.com";

struct Case {
    state: AuthenticationState,
    credential: ParsedCredential,
    json: String,
    decoded: Option<AuthenticationResponseJson>,
}

async fn signed(
    rp: &RelyingParty,
    auth: &SoftAuthenticator,
    user: u8,
    variant: u8,
) -> (
    ParsedCredential,
    AuthenticationState,
    AuthenticationResponseJson,
) {
    let entity = UserEntity::new(vec![user; 16], format!("u{user}"), format!("U{user}")).unwrap();
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(entity))
        .await
        .unwrap();
    let credential = rp
        .finish_registration(state, &auth.register(&options).unwrap())
        .await
        .unwrap();
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::for_user(vec![user; 16]))
        .await
        .unwrap();
    match variant {
        1 => auth.set_knobs(|k| k.corrupt_signature = true),
        2 => auth.set_knobs(|k| k.challenge = Some(vec![9; 32])),
        3 => auth.set_knobs(|k| k.origin = "https://evil.example".into()),
        _ => {}
    }
    let response = auth.authenticate(&options).unwrap();
    auth.set_knobs(|k| *k = SoftKnobs::new(ORIGIN));
    (ParsedCredential::new(credential).unwrap(), state, response)
}

/// A mix of good and bad assertions over several algorithms.
async fn cases(rp: &RelyingParty) -> Vec<Case> {
    let mut out = Vec::new();
    let mut user = 0u8;
    for algorithm in [alg::ES256, alg::EDDSA, alg::RS256, alg::ES384, alg::PS256] {
        let auth = SoftAuthenticator::new(algorithm, ORIGIN).unwrap();
        for variant in 0..5 {
            user += 1;
            let (credential, state, response) = signed(rp, &auth, user, variant).await;
            let mut json = serde_json::to_string(&response).unwrap();
            if variant == 4 {
                // Truncated text: a decoding failure, not a panic.
                json.truncate(json.len() / 2);
            }
            out.push(Case {
                state,
                credential,
                json,
                decoded: (variant != 4).then_some(response),
            });
        }
    }
    // A valid response presented against another user's credential.
    let first = &out[0];
    let other = &out[5];
    out.push(Case {
        state: first.state.clone(),
        credential: other.credential.clone(),
        json: first.json.clone(),
        decoded: first.decoded.clone(),
    });
    out
}

type Verdict = Result<VerifiedAssertion, Option<keyward::WebAuthnFailure>>;

fn verdict(r: keyward::Result<VerifiedAssertion>) -> Verdict {
    r.map_err(|e| e.webauthn_failure().cloned())
}

#[tokio::test]
async fn batch_verdicts_equal_single_verdicts() {
    let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap();
    let rp = RelyingParty::new(config.clone(), Arc::new(MemoryStore::new()));
    let cases = cases(&rp).await;

    let single_json: Vec<Verdict> = cases
        .iter()
        .map(|c| {
            verdict(verify_assertion_json(
                &config,
                &c.state,
                &c.credential,
                &c.json,
            ))
        })
        .collect();
    let ok = single_json.iter().filter(|v| v.is_ok()).count();
    // One valid assertion per algorithm; everything else must be refused.
    assert_eq!(ok, 5, "{single_json:?}");
    assert!(single_json.iter().all(|v| !matches!(v, Err(None))));

    let json_items: Vec<BatchAssertion<'_>> = cases
        .iter()
        .map(|c| BatchAssertion::json(&c.state, &c.credential, &c.json))
        .collect();
    let global: Vec<Verdict> = verify_batch(&config, &json_items)
        .into_iter()
        .map(verdict)
        .collect();
    assert_eq!(global, single_json);
    for threads in [1, 2, 3] {
        let pool = BatchVerifier::new(threads).unwrap();
        assert_eq!(pool.threads(), threads);
        let pooled: Vec<Verdict> = pool
            .verify(&config, &json_items)
            .into_iter()
            .map(verdict)
            .collect();
        assert_eq!(pooled, single_json, "{threads} threads");
    }

    // Decoded responses: same verdicts as verify_assertion, item by item.
    let decoded: Vec<(&Case, &AuthenticationResponseJson)> = cases
        .iter()
        .filter_map(|c| c.decoded.as_ref().map(|d| (c, d)))
        .collect();
    let single_decoded: Vec<Verdict> = decoded
        .iter()
        .map(|(c, d)| verdict(verify_assertion(&config, &c.state, &c.credential, d)))
        .collect();
    let items: Vec<BatchAssertion<'_>> = decoded
        .iter()
        .map(|(c, d)| BatchAssertion::decoded(&c.state, &c.credential, d))
        .collect();
    let batch: Vec<Verdict> = BatchVerifier::new(2)
        .unwrap()
        .verify(&config, &items)
        .into_iter()
        .map(verdict)
        .collect();
    assert_eq!(batch, single_decoded);
    assert_eq!(batch.iter().filter(|v| v.is_ok()).count(), 5);
}

#[test]
fn empty_batch_and_debug() {
    let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap();
    assert!(verify_batch(&config, &[]).is_empty());
    let pool = BatchVerifier::new(1).unwrap();
    assert_eq!(format!("{pool:?}"), "BatchVerifier { threads: 1 }");
}
