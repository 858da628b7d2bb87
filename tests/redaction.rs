//! Every secret-bearing public type hides its secret in `Debug`.

use std::time::UNIX_EPOCH;

use keyward::Secret;
use keyward::keysplit::{AuthFactor, SessionId, StoredBlob};
use keyward::otp::{
    Channel, CheckCode, StartVerification, Verification, VerificationRef, VerificationStatus,
};
use keyward::video::AccessToken;

fn assert_hidden(shown: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!shown.contains(s), "{s:?} leaked in {shown}");
    }
}

#[test]
fn secret() {
    let s = Secret::from("sk-live-abcdef");
    assert_hidden(&format!("{s:?} {s:#?}"), &["sk-live-abcdef"]);
}

#[test]
fn otp_types_mask_destination_and_code() {
    let v = Verification {
        sid: "VE1".into(),
        to: "+15017122661".into(),
        channel: Channel::Sms,
        status: VerificationStatus::Pending,
        valid: false,
        send_attempts: 1,
        created_at: None,
        updated_at: None,
        expires_at: None,
    };
    let shown = format!("{v:?}");
    assert_hidden(&shown, &["+15017122661", "5017122"]);
    assert!(shown.contains("61"));
    let start = StartVerification::new("+15017122661", Channel::Sms).custom_code("918273");
    assert_hidden(&format!("{start:?}"), &["5017122", "918273"]);
    let check = CheckCode::to("+15017122661", "918273");
    assert_hidden(&format!("{check:?}"), &["5017122", "918273"]);
    let r = VerificationRef::To("alice@example.com".into());
    assert_hidden(&format!("{r:?}"), &["alice@"]);
}

#[test]
fn video_token_hides_jwt() {
    let t = AccessToken::new(
        "eyJhbGciOi.payload.sig",
        "alice",
        None,
        UNIX_EPOCH,
        UNIX_EPOCH,
    );
    assert_hidden(&format!("{t:?}"), &["eyJhbGciOi", "payload", "sig\""]);
    assert_eq!(t.jwt(), "eyJhbGciOi.payload.sig");
}

#[test]
fn keysplit_types_hide_session_factor_and_blob() {
    let s = SessionId::new("session-abc-123");
    assert_hidden(&format!("{s:?}"), &["session-abc-123"]);
    let f = AuthFactor::email("Alice.Smith@Example.com").unwrap();
    assert_hidden(&format!("{f:?}"), &["alice.smith"]);
    let b = StoredBlob {
        data_b64: "c2VjcmV0LWJsb2I=".into(),
        authenticated: true,
    };
    assert_hidden(&format!("{b:?}"), &["c2VjcmV0LWJsb2I"]);
}

#[test]
fn error_messages_do_not_echo_phone_numbers() {
    let err = keyward::normalize::phone_e164("+33 6 12 34 56 7a").unwrap_err();
    assert_hidden(&format!("{err:?} {err}"), &["12 34", "612345"]);
}

#[test]
fn self_hosted_otp_provider_hides_its_server_secret() {
    use keyward::otp::{LocalOtpProvider, Outbox};
    use keyward::store::MemoryStore;
    use std::sync::Arc;
    let builder = LocalOtpProvider::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(Outbox::new()),
        Secret::from("otp-server-secret-0123456789abcdef"),
    );
    assert_hidden(&format!("{builder:?}"), &["otp-server-secret"]);
    let otp = builder.build().unwrap();
    assert_hidden(&format!("{otp:?} {otp:#?}"), &["otp-server-secret"]);
}

#[cfg(feature = "twilio")]
#[test]
fn twilio_types_hide_credentials() {
    use keyward::otp::{
        SmsFrom, TwilioSmsConfig, TwilioSmsSender, TwilioVerify, TwilioVerifyConfig,
    };
    use keyward::twilio::TwilioCredentials;
    let key = TwilioCredentials::api_key(
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Secret::from("twilio-key-secret"),
    )
    .unwrap();
    let token = TwilioCredentials::auth_token(
        "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Secret::from("twilio-auth-token"),
    )
    .unwrap();
    let verify_config =
        TwilioVerifyConfig::new(key.clone(), "VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let verify = TwilioVerify::new(verify_config.clone()).unwrap();
    let sms_config =
        TwilioSmsConfig::new(token.clone(), SmsFrom::Number("+15005550006".into())).unwrap();
    let sms = TwilioSmsSender::new(sms_config.clone()).unwrap();
    let shown = format!("{key:?} {token:?} {verify_config:?} {verify:?} {sms_config:?} {sms:#?}");
    assert_hidden(&shown, &["twilio-key-secret", "twilio-auth-token"]);
}
