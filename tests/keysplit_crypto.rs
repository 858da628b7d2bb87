//! Property tests of the 2-man-rule blob format, and redaction of its secret-bearing types.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "ssks")]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward::keysplit::crypto::{self, SymKey};
use std::sync::Arc;

use keyward::keysplit::local::LocalKeySplitStore;
use keyward::keysplit::ssks::SsksConfig;
use keyward::keysplit::{
    AuthFactor, ChallengeRequest, KeyKind, RetrievedIdentity, SsksSession, TwoManRuleClient,
    TwoManRuleKey,
};
use keyward::otp::Outbox;
use keyward::store::MemoryStore;
use keyward::{ErrorKind, KeySplitStore, SystemRandom};
use proptest::prelude::*;

fn raw_key(seed: &[u8; 64]) -> TwoManRuleKey {
    TwoManRuleKey::raw(STANDARD.encode(seed)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn raw_mode_round_trips(seed in any::<[u8; 64]>(), identity in proptest::collection::vec(any::<u8>(), 1..4096)) {
        let key = raw_key(&seed);
        let blob = crypto::seal_identity(&key, "app", "user", &identity, &SystemRandom::new()).unwrap();
        let opened = crypto::open_identity(&key, "app", "user", &blob).unwrap();
        prop_assert_eq!(opened.expose(), identity.as_slice());
    }

    #[test]
    fn seal_open_round_trips(key in any::<[u8; 64]>(), pt in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let key = SymKey::from_bytes(key);
        let sealed = crypto::seal(&key, &pt, &SystemRandom::new()).unwrap();
        prop_assert_eq!(sealed.len(), 16 + (pt.len() / 16 + 1) * 16 + 32);
        let opened = crypto::open(&key, &sealed).unwrap();
        prop_assert_eq!(opened.expose(), pt.as_slice());
    }

    #[test]
    fn any_single_bit_flip_is_cannot_open(seed in any::<[u8; 64]>(), identity in proptest::collection::vec(any::<u8>(), 1..256), bit in any::<usize>()) {
        let key = raw_key(&seed);
        let blob = crypto::seal_identity(&key, "app", "user", &identity, &SystemRandom::new()).unwrap();
        let mut raw = STANDARD.decode(&blob).unwrap();
        let bit = bit % (raw.len() * 8);
        raw[bit / 8] ^= 1 << (bit % 8);
        let err = crypto::open_identity(&key, "app", "user", &STANDARD.encode(&raw)).unwrap_err();
        prop_assert_eq!(err.kind(), &ErrorKind::CannotOpen);
    }

    #[test]
    fn random_bytes_never_panic_raw(seed in any::<[u8; 64]>(), junk in proptest::collection::vec(any::<u8>(), 0..512)) {
        let key = raw_key(&seed);
        let err = crypto::open_identity_bytes(&key, "app", "user", &junk).unwrap_err();
        prop_assert_eq!(err.kind(), &ErrorKind::CannotOpen);
        let err = crypto::open(&SymKey::from_bytes(seed), &junk).unwrap_err();
        prop_assert_eq!(err.kind(), &ErrorKind::CannotOpen);
    }

    #[test]
    fn random_strings_never_panic(text in ".{0,300}") {
        let key = raw_key(&[3; 64]);
        prop_assert!(crypto::open_identity(&key, "app", "user", &text).is_err());
    }
}

proptest! {
    // Free-form keys run scrypt (N = 16384) per case: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn free_mode_round_trips_and_rejects_junk(key in "[ -~]{1,64}", identity in proptest::collection::vec(any::<u8>(), 1..512), junk in proptest::collection::vec(any::<u8>(), 0..256)) {
        let key = TwoManRuleKey::free(key.as_str()).unwrap();
        let blob = crypto::seal_identity(&key, "app", "user", &identity, &SystemRandom::new()).unwrap();
        let opened = crypto::open_identity(&key, "app", "user", &blob).unwrap();
        prop_assert_eq!(opened.expose(), identity.as_slice());
        let err = crypto::open_identity_bytes(&key, "app", "user", &junk).unwrap_err();
        prop_assert_eq!(err.kind(), &ErrorKind::CannotOpen);
    }
}

#[test]
fn free_form_keys_are_nfkc_normalized() {
    // "ﬁ" (U+FB01) normalizes to "fi" under NFKC, as in the Seald client.
    let rng = SystemRandom::new();
    let ligature = TwoManRuleKey::free("key-ﬁle-ｆｕｌｌｗｉｄｔｈ").unwrap();
    let plain = TwoManRuleKey::free("key-file-fullwidth").unwrap();
    let blob = crypto::seal_identity(&ligature, "app", "user", b"id", &rng).unwrap();
    assert_eq!(
        crypto::open_identity(&plain, "app", "user", &blob)
            .unwrap()
            .expose(),
        b"id"
    );
}

#[tokio::test]
async fn secret_bearing_types_redact() {
    let rng = SystemRandom::new();
    let key = TwoManRuleKey::generate(KeyKind::Raw, &rng).unwrap();
    let outbox = Outbox::new();
    let local: Arc<dyn KeySplitStore> = Arc::new(LocalKeySplitStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
    ));
    let factor = AuthFactor::sms("+15017122661").unwrap();
    let opened = local
        .open_session(ChallengeRequest::new("u", factor.clone(), "$$CHALLENGE$$"))
        .await
        .unwrap();
    let session = SsksSession {
        session_id: opened.session_id,
        must_authenticate: false,
        two_man_rule_key: key.clone(),
        user_id: "u".into(),
        auth_factor: factor,
    };
    let client = TwoManRuleClient::new(local.clone(), "a");
    client
        .save_identity(&session, None, b"identity-private-key")
        .await
        .unwrap();
    // Retrieval needs a session that passed the challenge the user received.
    let second = local
        .open_session(ChallengeRequest::new(
            "u",
            session.auth_factor.clone(),
            "$$CHALLENGE$$",
        ))
        .await
        .unwrap();
    let challenge = outbox.last_code_to("+15017122661").unwrap();
    let second = SsksSession {
        session_id: second.session_id,
        must_authenticate: true,
        ..session.clone()
    };
    let retrieved: RetrievedIdentity = client
        .retrieve_identity(&second, Some(&challenge))
        .await
        .unwrap();
    assert_eq!(retrieved.identity.expose(), b"identity-private-key");
    let session_id = session.session_id.expose().to_owned();
    let shown = format!(
        "{key:?} {session:?} {session:#?} {:?} {:?} {:?}",
        SymKey::from_bytes([0xab; 64]),
        SsksConfig::production("app").api_key("ssks-api-key-123"),
        retrieved,
    );
    for leaked in [
        key.expose(),
        session_id.as_str(),
        "5017122",
        "abababab",
        "171, 171",
        "ssks-api-key-123",
        "identity-private-key",
    ] {
        assert!(!shown.contains(leaked), "{leaked} leaked in {shown}");
    }
}
