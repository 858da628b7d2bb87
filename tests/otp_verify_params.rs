//! The rest of Verify's start and check parameters: the exact form fields the Twilio backend
//! sends (to a local server speaking Twilio's wire format), an SNA check without a code, and
//! what the self-hosted provider does with them.
#![cfg(feature = "twilio")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use keyward::http::HttpConfig;
use keyward::otp::{
    Channel, ChannelConfiguration, CheckCode, CheckOutcome, StartVerification, TwilioVerify,
    TwilioVerifyConfig, VerificationRef,
};
use keyward::twilio::TwilioCredentials;
use keyward::{ErrorKind, OtpProvider, Secret};
use support::{AC, Reply, SK, SK_SECRET, Scripted, VA, VE};

const CREATE_201: &str = r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","service_sid":"VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","channel":"sms","status":"pending","valid":false,"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z","lookup":{},"amount":"€12.30","payee":"Acme Ltd","send_code_attempts":[],"sna":null,"url":"https://verify.twilio.com/v2/Services/VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Verifications/VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;

const CHECK_APPROVED: &str = r#"{"sid":"VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","service_sid":"VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","account_sid":"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","to":"+15017122661","channel":"sna","status":"approved","valid":true,"amount":null,"payee":null,"sna_attempts_error_codes":[],"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z"}"#;

fn verify_at(base_url: &str) -> TwilioVerify {
    let creds = TwilioCredentials::api_key(AC, SK, Secret::from(SK_SECRET)).unwrap();
    let http = HttpConfig::default()
        .max_retries(0)
        .backoff(Duration::from_millis(5), Duration::from_secs(5))
        .allow_http_loopback(true);
    TwilioVerify::new(
        TwilioVerifyConfig::new(creds, VA)
            .unwrap()
            .with_base_url(base_url)
            .http(http),
    )
    .unwrap()
}

fn fields(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn every_start_parameter_is_sent_under_its_twilio_name() {
    let server = Scripted::start(vec![Reply::json(201, CREATE_201)]).await;
    let verify = verify_at(&server.base_url);
    let request = StartVerification::new("+1 501 712 2661", Channel::Sms)
        .custom_friendly_name("Acme Pay")
        .custom_message("Acme: {code}")
        .send_digits("ww1234#")
        .locale("fr")
        .custom_code("8231")
        .transaction("€12.30", "Acme Ltd")
        .rate_limit("end_user_ip_address", "203.0.113.7")
        .rate_limit("end_user_id", "42")
        .channel_configuration(
            ChannelConfiguration::new()
                .from("no-reply@example.com", Some("Acme".into()))
                .template_id("d-123")
                .substitution("name", "Zoë"),
        )
        .app_hash("FA+9qCX9VSu")
        .template_sid("HJaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .template_substitution("friendly_name", "Acme")
        .device_ip("2001:db8::1".parse().unwrap())
        .enable_sna_client_token(true)
        .risk_check(false)
        .tag("campaign", "spring")
        .tag("origin", "web");
    let v = verify.start(request).await.unwrap();
    assert_eq!(v.sid, VE);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, format!("/v2/Services/{VA}/Verifications"));
    assert_eq!(
        fields(&r.form),
        vec![
            ("To", "+15017122661"),
            ("Channel", "sms"),
            ("CustomFriendlyName", "Acme Pay"),
            ("CustomMessage", "Acme: {code}"),
            ("SendDigits", "ww1234#"),
            ("Locale", "fr"),
            ("CustomCode", "8231"),
            ("Amount", "€12.30"),
            ("Payee", "Acme Ltd"),
            (
                "RateLimits",
                r#"{"end_user_id":"42","end_user_ip_address":"203.0.113.7"}"#
            ),
            (
                "ChannelConfiguration",
                r#"{"from":"no-reply@example.com","from_name":"Acme","substitutions":{"name":"Zoë"},"template_id":"d-123"}"#
            ),
            ("AppHash", "FA+9qCX9VSu"),
            ("TemplateSid", "HJaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("TemplateCustomSubstitutions", r#"{"friendly_name":"Acme"}"#),
            ("DeviceIp", "2001:db8::1"),
            ("EnableSnaClientToken", "true"),
            ("RiskCheck", "disable"),
            ("Tags", r#"{"campaign":"spring","origin":"web"}"#),
        ]
    );
}

#[tokio::test]
async fn unset_parameters_are_not_sent_and_malformed_ones_are_refused_locally() {
    let server = Scripted::start(vec![Reply::json(201, CREATE_201)]).await;
    let verify = verify_at(&server.base_url);
    verify
        .start(StartVerification::new("+15017122661", Channel::Sms).risk_check(true))
        .await
        .unwrap();
    assert_eq!(
        fields(&server.requests()[0].form),
        vec![
            ("To", "+15017122661"),
            ("Channel", "sms"),
            ("RiskCheck", "enable")
        ]
    );
    for bad in [
        StartVerification::new("+15017122661", Channel::Call).send_digits("12a"),
        StartVerification::new("+15017122661", Channel::Sms).template_sid("HJ12"),
    ] {
        let err = verify.start(bad).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    }
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn psd2_amount_and_payee_go_with_the_check_and_sna_checks_have_no_code() {
    let server = Scripted::start(vec![
        Reply::json(201, &CHECK_APPROVED.replace("\"sna\"", "\"sms\"")),
        Reply::json(201, CHECK_APPROVED),
    ])
    .await;
    let verify = verify_at(&server.base_url);
    let out = verify
        .check(CheckCode::sid(VE, "123456").transaction("€12.30", "Acme Ltd"))
        .await
        .unwrap();
    assert!(matches!(out, CheckOutcome::Approved(_)));
    let out = verify
        .check(
            CheckCode::sna(VerificationRef::To("+15017122661".into()))
                .sna_client_token("sna-token-1"),
        )
        .await
        .unwrap();
    assert!(matches!(out, CheckOutcome::Approved(_)));
    let requests = server.requests();
    assert_eq!(
        requests[0].path,
        format!("/v2/Services/{VA}/VerificationCheck")
    );
    assert_eq!(
        fields(&requests[0].form),
        vec![
            ("VerificationSid", VE),
            ("Code", "123456"),
            ("Amount", "€12.30"),
            ("Payee", "Acme Ltd"),
        ]
    );
    assert_eq!(
        fields(&requests[1].form),
        vec![("To", "+15017122661"), ("SnaClientToken", "sna-token-1")]
    );
}

#[tokio::test]
async fn a_malformed_code_is_still_refused_before_any_request() {
    let server = Scripted::start(vec![]).await;
    let verify = verify_at(&server.base_url);
    let err = verify.check(CheckCode::sid(VE, "12")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(server.request_count(), 0);
}

mod self_hosted {
    use std::sync::Arc;

    use keyward::otp::{
        Channel, ChannelConfiguration, CheckCode, CheckOutcome, LocalOtpProvider, MessageTemplate,
        MessageTemplates, Outbox, StartVerification, VerificationRef,
    };
    use keyward::store::MemoryStore;
    use keyward::{ErrorKind, OtpProvider, Secret};

    const TO: &str = "+15017122661";

    fn provider(outbox: &Outbox) -> LocalOtpProvider {
        let templates = MessageTemplates::new(MessageTemplate::default()).with_locale(
            "fr",
            MessageTemplate::new("{friendly_name} : votre code est {code}, {amount} à {payee}")
                .unwrap(),
        );
        LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(outbox.clone()),
            Secret::new([7u8; 32]),
        )
        .templates(templates)
        .build()
        .unwrap()
    }

    fn body(outbox: &Outbox) -> String {
        outbox
            .last_to(TO)
            .unwrap()
            .body
            .expose_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn a_psd2_code_approves_only_its_amount_and_payee() {
        let outbox = Outbox::new();
        let otp = provider(&outbox);
        otp.start(
            StartVerification::new(TO, Channel::Sms)
                .custom_friendly_name("Acme Pay")
                .transaction("€12.30", "Acme Ltd"),
        )
        .await
        .unwrap();
        let text = body(&outbox);
        assert!(
            text.starts_with("Acme Pay: Your verification code is "),
            "{text}"
        );
        assert!(
            text.ends_with("\nAmount: €12.30\nPayee: Acme Ltd"),
            "{text}"
        );
        let code = outbox.last_code_to(TO).unwrap();
        for check in [
            CheckCode::to(TO, code.clone()),
            CheckCode::to(TO, code.clone()).transaction("€12.31", "Acme Ltd"),
            CheckCode::to(TO, code.clone()).transaction("€12.30", "Acme Ltd."),
            CheckCode::to(TO, code.clone()).transaction("€12.30Acme", " Ltd"),
        ] {
            let out = otp.check(check).await.unwrap();
            assert!(matches!(out, CheckOutcome::Rejected(_)), "{out:?}");
        }
        let out = otp
            .check(CheckCode::to(TO, code).transaction("€12.30", "Acme Ltd"))
            .await
            .unwrap();
        assert!(matches!(out, CheckOutcome::Approved(_)));
    }

    #[tokio::test]
    async fn a_code_without_a_transaction_never_approves_one() {
        let outbox = Outbox::new();
        let otp = provider(&outbox);
        otp.start(StartVerification::new(TO, Channel::Sms))
            .await
            .unwrap();
        let code = outbox.last_code_to(TO).unwrap();
        let out = otp
            .check(CheckCode::to(TO, code.clone()).transaction("€1", "Mallory"))
            .await
            .unwrap();
        assert!(matches!(out, CheckOutcome::Rejected(_)));
        let out = otp.check(CheckCode::to(TO, code)).await.unwrap();
        assert!(matches!(out, CheckOutcome::Approved(_)));
    }

    #[tokio::test]
    async fn locale_templates_custom_messages_and_re_sends() {
        let outbox = Outbox::new();
        let otp = provider(&outbox);
        otp.start(
            StartVerification::new(TO, Channel::Sms)
                .locale("fr")
                .custom_friendly_name("Acme")
                .transaction("5 €", "Café"),
        )
        .await
        .unwrap();
        let code = outbox.last_code_to(TO).unwrap();
        assert_eq!(
            body(&outbox),
            format!(
                "Acme : votre code est {}, 5 € à Café",
                code.expose_str().unwrap()
            )
        );
        // A re-send keeps the transaction and cannot change it.
        let err = otp
            .start(StartVerification::new(TO, Channel::Sms).transaction("500 €", "Café"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
        otp.start(StartVerification::new(TO, Channel::Sms))
            .await
            .unwrap();
        assert!(body(&outbox).ends_with("5 € à Café"));

        let other = "+15017122662";
        otp.start(
            StartVerification::new(other, Channel::Sms)
                .custom_message("Code {code} pour entrer")
                .app_hash("FA+9qCX9VSu"),
        )
        .await
        .unwrap();
        let code = outbox.last_code_to(other).unwrap();
        let text = outbox.last_to(other).unwrap().body;
        assert_eq!(
            text.expose_str().unwrap(),
            format!(
                "Code {} pour entrer\nFA+9qCX9VSu",
                code.expose_str().unwrap()
            )
        );
        let err = otp
            .start(StartVerification::new(other, Channel::Sms).custom_message("no placeholder"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn twilio_only_parameters_and_sna_are_refused_not_ignored() {
        let outbox = Outbox::new();
        let otp = provider(&outbox);
        for request in [
            StartVerification::new(TO, Channel::Call).send_digits("1234"),
            StartVerification::new(TO, Channel::Sms).rate_limit("k", "v"),
            StartVerification::new("a@example.com", Channel::Email)
                .channel_configuration(ChannelConfiguration::new().template_id("d-1")),
            StartVerification::new(TO, Channel::Sms)
                .template_sid("HJaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            StartVerification::new(TO, Channel::Sms).risk_check(true),
            StartVerification::new(TO, Channel::Sms).enable_sna_client_token(true),
        ] {
            let err = otp.start(request).await.unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Unsupported);
        }
        assert!(outbox.is_empty());
        let err = otp
            .check(CheckCode::sna(VerificationRef::To(TO.into())))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Unsupported);
        // Informational parameters are accepted.
        otp.start(
            StartVerification::new(TO, Channel::Sms)
                .tag("campaign", "spring")
                .device_ip("203.0.113.7".parse().unwrap()),
        )
        .await
        .unwrap();
    }
}
