//! What a host stores or sends reads back as it was written: `AccessToken`, `LoginChallenge`,
//! `Contact`, `SsksSession`; secret-bearing values stay redacted in `Debug` after a round trip,
//! and a refused parse never quotes a secret.
#![expect(clippy::unwrap_used, reason = "helpers outside #[test] fns")]

use std::sync::Arc;

use keyward::keysplit::{AuthFactor, KeyKind, SessionId, SsksSession, TwoManRuleKey};
use keyward::otp::Channel;
use keyward::video::AccessToken;
use keyward::video::gate::{Contact, LoginChallenge};

fn round_trip<T>(value: &T) -> (serde_json::Value, T)
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let json = serde_json::to_value(value).unwrap();
    let back = serde_json::from_value(json.clone()).unwrap();
    (json, back)
}

#[cfg(feature = "twilio")]
#[tokio::test]
async fn an_issued_access_token_round_trips() {
    use keyward::twilio::TwilioCredentials;
    use keyward::video::twilio::TwilioAccessTokenIssuer;
    use keyward::video::{FactorProof, VideoTokenIssuer, VideoTokenRequest};
    let key = TwilioCredentials::api_key(
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "serde-test-secret-serde-test-sec",
    )
    .unwrap();
    let clock = Arc::new(keyward::ManualClock::at_unix(1_700_000_000));
    let issuer = TwilioAccessTokenIssuer::new(key)
        .unwrap()
        .env(keyward::Env::system().with_clock(clock));
    let proof = FactorProof::from(keyward::backend::verified_assertion(
        keyward::backend::AssertionParts::new(b"c".to_vec(), b"u".to_vec(), 1),
    ));
    let token = issuer
        .issue(proof, VideoTokenRequest::new("alice").room("My Room"))
        .await
        .unwrap();
    let (json, back) = round_trip(&token);
    assert_eq!(back, token);
    assert_eq!(json["token"], token.jwt());
    assert_eq!(json["identity"], "alice");
    assert_eq!(json["room"], "My Room");
    assert_eq!(json["issued_at"], 1_700_000_000);
    assert_eq!(json["expires_at"], 1_700_003_600);
    // The JWT is in the serialized form (on purpose) but never in Debug.
    let jwt = token.jwt().to_owned();
    assert!(!format!("{back:?}").contains(&jwt[..20]));
}

#[test]
fn access_token_forms_that_do_not_fit_are_refused() {
    let no_room = serde_json::json!({"token": "a.b.c", "identity": "bob", "room": null,
        "issued_at": 10, "expires_at": 20});
    let token: AccessToken = serde_json::from_value(no_room).unwrap();
    assert_eq!(token.room, None);
    let missing = serde_json::json!({"identity": "bob", "issued_at": 10, "expires_at": 20});
    assert!(serde_json::from_value::<AccessToken>(missing).is_err());
    let negative = serde_json::json!({"token": "a.b.c", "identity": "bob", "issued_at": -1,
        "expires_at": 20});
    assert!(serde_json::from_value::<AccessToken>(negative).is_err());
    let before_epoch = AccessToken::new(
        "a.b.c",
        "bob",
        None,
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(1),
        std::time::UNIX_EPOCH,
    );
    assert!(serde_json::to_value(&before_epoch).is_err());
}

#[test]
fn login_challenge_and_contact_round_trip() {
    let challenge: LoginChallenge =
        serde_json::from_str(r#"{"masked_destination":"********21","channel":"sms"}"#).unwrap();
    assert_eq!(challenge.channel, Channel::Sms);
    assert_eq!(challenge.masked_destination, "********21");
    let (json, back) = round_trip(&challenge);
    assert_eq!(back, challenge);
    assert_eq!(
        json,
        serde_json::json!({"masked_destination": "********21", "channel": "sms"})
    );

    for contact in [
        Contact::phone("+15017122661"),
        Contact::email("alice@example.com"),
    ] {
        let (json, back) = round_trip(&contact);
        assert_eq!(back, contact);
        assert!(json["value"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(!format!("{back:?}").contains("5017122"));
        assert!(!format!("{back:?}").contains("alice@"));
    }
    assert_eq!(
        serde_json::to_value(Contact::phone("+15017122661")).unwrap(),
        serde_json::json!({"type": "phone", "value": "+15017122661"})
    );
    assert!(serde_json::from_str::<Contact>(r#"{"type":"fax","value":"1"}"#).is_err());
}

#[tokio::test]
async fn a_login_challenge_from_the_gate_round_trips() {
    use keyward::otp::{LocalOtpProvider, Outbox};
    use keyward::store::MemoryStore;
    use keyward::video::gate::{MemoryDirectory, RoomGate};
    use keyward::video::{AccessToken, FactorProof, VideoTokenIssuer, VideoTokenRequest};

    #[derive(Debug)]
    struct NoTokens;
    #[async_trait::async_trait]
    impl VideoTokenIssuer for NoTokens {
        async fn issue(
            &self,
            _: FactorProof,
            _: VideoTokenRequest,
        ) -> keyward::Result<AccessToken> {
            Err(keyward::Error::config("not in this test"))
        }
    }
    let otp = LocalOtpProvider::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(Outbox::new()),
        keyward::Secret::from("serde-test-otp-secret-0123456789"),
    )
    .build()
    .unwrap();
    let gate = RoomGate::builder(
        Arc::new(MemoryDirectory::new().with("mabel", Contact::phone("+18005554321"))),
        Arc::new(otp),
        Arc::new(NoTokens),
        Arc::new(MemoryStore::new()),
    )
    .build()
    .unwrap();
    let challenge = gate.login("mabel").await.unwrap();
    let (json, back) = round_trip(&challenge);
    assert_eq!(back, challenge);
    assert_eq!(json["masked_destination"], "********21");
    assert_eq!(json["channel"], "sms");
}

fn session(kind: KeyKind) -> SsksSession {
    let key = TwoManRuleKey::generate(kind, &keyward::SystemRandom::new()).unwrap();
    SsksSession {
        session_id: SessionId::new("sess-very-secret-id"),
        must_authenticate: true,
        two_man_rule_key: key,
        user_id: "user-1".into(),
        auth_factor: AuthFactor::sms("+15017122661").unwrap(),
    }
}

#[test]
fn ssks_session_round_trips_in_both_key_modes() {
    for kind in [KeyKind::Free, KeyKind::Raw] {
        let session = session(kind);
        let (json, back) = round_trip(&session);
        assert_eq!(back, session);
        assert_eq!(back.two_man_rule_key.kind(), kind);
        let field = match kind {
            KeyKind::Free => "two_man_rule_key",
            KeyKind::Raw => "raw_two_man_rule_key",
        };
        assert_eq!(json[field], session.two_man_rule_key.expose());
        let shown = format!("{back:?}");
        for leaked in [
            "sess-very-secret-id",
            session.two_man_rule_key.expose(),
            "5017122",
        ] {
            assert!(!shown.contains(leaked), "{leaked} in {shown}");
        }
    }
}

#[test]
fn ssks_session_parse_refusals_never_quote_a_secret() {
    let valid = serde_json::to_value(session(KeyKind::Raw)).unwrap();
    let key = valid["raw_two_man_rule_key"].as_str().unwrap().to_owned();

    // Both key fields, or neither.
    let mut both = valid.clone();
    both["two_man_rule_key"] = key.clone().into();
    let mut neither = valid.clone();
    neither
        .as_object_mut()
        .unwrap()
        .remove("raw_two_man_rule_key");
    // A raw key that is not 64 bytes of base64; an empty free-form key.
    let mut short = valid.clone();
    short["raw_two_man_rule_key"] = key[..40].into();
    let mut empty = neither.clone();
    empty["two_man_rule_key"] = "".into();
    for bad in [both, neither, short, empty] {
        let err = serde_json::from_value::<SsksSession>(bad)
            .unwrap_err()
            .to_string();
        assert!(!err.contains(&key[..20]), "{err}");
        assert!(!err.contains("sess-very-secret-id"), "{err}");
    }
}
