//! Every secret-bearing public type hides its secret in `Debug`.

use std::time::UNIX_EPOCH;

use keyward::Secret;
use keyward::keysplit::{AuthFactor, SessionId, StoredBlob};
use keyward::otp::{
    Channel, CheckCode, StartVerification, Verification, VerificationRef, VerificationStatus,
};
use keyward::video::AccessToken;

#[cfg(all(
    feature = "tracing",
    feature = "testing",
    feature = "twilio",
    feature = "ssks-server"
))]
mod support;

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

/// Every flow under a subscriber that collects every field of every span and event: no secret,
/// code, JWT, session id, key or full phone number / email appears, and each refusal is an
/// event carrying its kind (or WebAuthn failure).
#[cfg(all(
    feature = "tracing",
    feature = "testing",
    feature = "twilio",
    feature = "webauthn",
    feature = "ssks"
))]
#[expect(clippy::unwrap_used, reason = "the flows run outside #[test] fns")]
mod traced {
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};

    use keyward::keysplit::local::LocalKeySplitStore;
    use keyward::keysplit::{
        AuthFactor, ChallengeRequest, KeyKind, TwoManRuleBackend, TwoManRuleClient, TwoManRuleKeys,
    };
    use keyward::otp::{Channel, CheckCode, LocalOtpProvider, Outbox, StartVerification};
    use keyward::store::MemoryStore;
    use keyward::testing::SoftAuthenticator;
    use keyward::twilio::TwilioCredentials;
    use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
    use keyward::video::twilio::TwilioAccessTokenIssuer;
    use keyward::webauthn::{
        AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig, UserEntity,
        alg,
    };
    use keyward::{AuthenticatorVerifier, KeySplitStore, OtpProvider, Secret};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::assert_hidden;

    /// A span or an event as the subscriber saw it: its name and every field, as text.
    #[derive(Debug, Clone, Default)]
    struct Seen {
        name: String,
        /// For an event: the span it happened in.
        parent: Option<String>,
        fields: Vec<(String, String)>,
    }

    impl Seen {
        fn field(&self, name: &str) -> Option<&str> {
            self.fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    #[derive(Default)]
    struct Log {
        spans: Vec<Seen>,
        events: Vec<Seen>,
        /// The entered spans (the tests run on one thread).
        stack: Vec<u64>,
    }

    /// Collects every field of keyward's spans and events.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Log>>);

    struct Fields<'a>(&'a mut Vec<(String, String)>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }
    }

    impl Capture {
        fn log(&self) -> std::sync::MutexGuard<'_, Log> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl Subscriber for Capture {
        /// keyward's own spans and events, at every level (hyper's and h2's are not ours).
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target().starts_with("keyward")
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut seen = Seen {
                name: span.metadata().name().to_owned(),
                ..Seen::default()
            };
            span.record(&mut Fields(&mut seen.fields));
            let mut log = self.log();
            log.spans.push(seen);
            Id::from_u64(log.spans.len() as u64)
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            let mut log = self.log();
            let index = span.into_u64() as usize - 1;
            values.record(&mut Fields(&mut log.spans[index].fields));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut seen = Seen {
                name: event.metadata().name().to_owned(),
                ..Seen::default()
            };
            event.record(&mut Fields(&mut seen.fields));
            let mut log = self.log();
            let parent = event
                .parent()
                .map(Id::into_u64)
                .or_else(|| log.stack.last().copied());
            seen.parent = parent.map(|id| log.spans[id as usize - 1].name.clone());
            log.events.push(seen);
        }
        fn enter(&self, span: &Id) {
            self.log().stack.push(span.into_u64());
        }
        fn exit(&self, span: &Id) {
            let mut log = self.log();
            if let Some(at) = log.stack.iter().rposition(|id| *id == span.into_u64()) {
                log.stack.remove(at);
            }
        }
    }

    const PHONE: &str = "+15017122661";
    const EMAIL: &str = "alice.smith@example.com";
    const OTP_SECRET: &str = "otp-server-secret-0123456789abcdef";
    const TWILIO_SECRET: &str = "twilio-key-secret-not-a-real-one";

    /// Runs every flow; returns the secrets it saw go by (codes, tokens, keys, session ids).
    async fn flows() -> Vec<String> {
        let mut secrets: Vec<String> = vec![OTP_SECRET.into(), TWILIO_SECRET.into()];

        // One-time codes: start, a wrong code, the right one, the same one again.
        let outbox = Outbox::new();
        let otp = LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(outbox.clone()),
            Secret::from(OTP_SECRET),
        )
        .build()
        .unwrap();
        let v = otp
            .start(StartVerification::new(PHONE, Channel::Sms))
            .await
            .unwrap();
        let wrong = otp.check(CheckCode::sid(&v.sid, "999999")).await.unwrap();
        assert!(wrong.approved().is_none());
        let code = outbox.last_code_to(PHONE).unwrap();
        let code = code.expose_str().unwrap().to_owned();
        assert_ne!(code, "999999");
        secrets.push(code.clone());
        assert!(
            otp.check(CheckCode::sid(&v.sid, code.as_str()))
                .await
                .unwrap()
                .approved()
                .is_some()
        );
        assert!(
            otp.check(CheckCode::sid(&v.sid, code.as_str()))
                .await
                .is_err()
        );

        // The room gate: login, a wrong code, the right code -> a token; an unknown identity.
        let gate_outbox = Outbox::new();
        let gate_otp = LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(gate_outbox.clone()),
            Secret::from(OTP_SECRET),
        )
        .build()
        .unwrap();
        let key = TwilioCredentials::api_key(
            "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Secret::from(TWILIO_SECRET),
        )
        .unwrap();
        let issuer = TwilioAccessTokenIssuer::new(key).unwrap();
        let directory = MemoryDirectory::new()
            .with("mabel", Contact::email(EMAIL))
            .with_passkey("mabel", b"mabel-user-handle".to_vec());
        let gate = RoomGate::builder(
            Arc::new(directory),
            Arc::new(gate_otp),
            Arc::new(issuer),
            Arc::new(MemoryStore::new()),
        )
        .room("My Room")
        .build()
        .unwrap();
        gate.login("mabel").await.unwrap();
        gate.login("mallory").await.unwrap();
        let mut gate_code = None;
        for _ in 0..200 {
            gate_code = gate_outbox.last_code_to(EMAIL);
            if gate_code.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let gate_code = gate_code.unwrap().expose_str().unwrap().to_owned();
        secrets.push(gate_code.clone());
        assert!(gate.verify("mabel", "999999").await.is_err());
        assert!(gate.verify("mallory", "999999").await.is_err());
        let token = gate.verify("mabel", &gate_code).await.unwrap();
        secrets.extend(token.jwt().split('.').map(str::to_owned));

        // Passkeys: registration, a usernameless sign-in, the same response again.
        const ORIGIN: &str = "https://app.example.com";
        let rp = RelyingParty::new(
            RelyingPartyConfig::new("app.example.com", "Traced", ORIGIN).unwrap(),
            Arc::new(MemoryStore::new()),
        );
        let device = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
        let user = UserEntity::new(b"mabel-user-handle".to_vec(), EMAIL, "Mabel Smith").unwrap();
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user))
            .await
            .unwrap();
        secrets.push(
            serde_json::to_value(&options.challenge)
                .unwrap()
                .to_string(),
        );
        let response = device.register(&options).unwrap();
        rp.finish_registration(state, &response).await.unwrap();
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::discoverable())
            .await
            .unwrap();
        secrets.push(
            serde_json::to_value(&options.challenge)
                .unwrap()
                .to_string(),
        );
        let assertion = device.authenticate(&options).unwrap();
        let proof = rp
            .finish_authentication(state.clone(), &assertion)
            .await
            .unwrap();
        assert_eq!(proof.user().map(|u| u.name.as_str()), Some(EMAIL));
        assert!(rp.finish_authentication(state, &assertion).await.is_err());
        let token = gate.admit_passkey(proof).await.unwrap();
        secrets.extend(token.jwt().split('.').map(str::to_owned));

        // The 2-man rule on the local SSKS: two sessions, save, a wrong challenge, retrieve.
        const APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";
        let ssks_outbox = Outbox::new();
        let ssks: Arc<dyn KeySplitStore> = Arc::new(LocalKeySplitStore::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ssks_outbox.clone()),
        ));
        let keys =
            TwoManRuleKeys::new(Arc::new(MemoryStore::new()), APP_ID, KeyKind::Free).unwrap();
        let backend = TwoManRuleBackend::new(ssks.clone(), keys);
        let client = TwoManRuleClient::new(ssks, APP_ID);
        let request = || {
            ChallengeRequest::new(
                "user-42",
                AuthFactor::email(EMAIL).unwrap(),
                "$$CHALLENGE$$",
            )
        };
        let first = backend.session(request()).await.unwrap();
        secrets.push(first.session_id.expose().to_owned());
        secrets.push(first.two_man_rule_key.expose().to_owned());
        client
            .save_identity(&first, None, b"identity-bytes-secret")
            .await
            .unwrap();
        let second = backend.session(request()).await.unwrap();
        secrets.push(second.session_id.expose().to_owned());
        let challenge = ssks_outbox.last_code_to(EMAIL).unwrap();
        secrets.push(challenge.expose_str().unwrap().to_owned());
        assert!(
            client
                .retrieve_identity(&second, Some(&Secret::from("WRONG-CHALLENGE")))
                .await
                .is_err()
        );
        let third = backend.session(request()).await.unwrap();
        secrets.push(third.session_id.expose().to_owned());
        let challenge = ssks_outbox.last_code_to(EMAIL).unwrap();
        secrets.push(challenge.expose_str().unwrap().to_owned());
        let retrieved = client
            .retrieve_identity(&third, Some(&challenge))
            .await
            .unwrap();
        assert_eq!(retrieved.identity.expose(), b"identity-bytes-secret");

        // Authenticator-app codes: enrol, confirm, a wrong code, the right one.
        use keyward::totp::{
            CheckTotp, EnrollTotp, LocalTotp, TotpProvider, base32_decode, totp_at,
        };
        let totp = LocalTotp::builder(Arc::new(MemoryStore::new()), Secret::from(OTP_SECRET), "Ex")
            .build()
            .unwrap();
        let e = totp
            .enroll(EnrollTotp::new("user-42", EMAIL))
            .await
            .unwrap();
        secrets.push(e.secret.expose_str().unwrap().to_owned());
        secrets.push(e.uri.expose_str().unwrap().to_owned());
        let key = base32_decode(e.secret.expose_str().unwrap()).unwrap();
        let code = |at: u64| {
            totp_at(
                &key,
                at,
                e.params.period,
                e.params.digits,
                e.params.algorithm,
            )
            .unwrap()
        };
        let at = keyward::Clock::unix_seconds(&keyward::SystemClock);
        let first = code(at);
        secrets.push(first.expose_str().unwrap().to_owned());
        let confirmed = totp
            .confirm(CheckTotp::new("user-42", &e.factor_sid, first.clone()))
            .await
            .unwrap();
        assert!(confirmed.approved().is_some());
        // The same step again is refused (each step signs in once).
        let replayed = totp
            .check(CheckTotp::new("user-42", &e.factor_sid, first))
            .await
            .unwrap();
        assert!(replayed.approved().is_none());
        secrets
    }

    #[tokio::test]
    async fn every_flow_traced_without_secrets_and_refusals_reported() {
        let capture = Capture::default();
        let _guard = tracing::subscriber::set_default(capture.clone());
        let mut secrets = flows().await;
        secrets.extend(
            [
                PHONE,
                "5017122661",
                EMAIL,
                "alice.smith",
                "identity-bytes-secret",
                "aWRlbnRpdHktYnl0ZXMtc2VjcmV0", // base64 of the identity
                "WRONG-CHALLENGE",
                "999999",
            ]
            .map(str::to_owned),
        );
        let log = capture.log();
        let shown: String = log
            .spans
            .iter()
            .chain(&log.events)
            .map(|s| format!("{} {:?}\n", s.name, s.fields))
            .collect();
        let secrets: Vec<&str> = secrets
            .iter()
            .map(|s| s.trim_matches('"'))
            .filter(|s| s.len() >= 6)
            .collect();
        assert_hidden(&shown, &secrets);

        // A span per operation.
        let spans: Vec<&str> = log.spans.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "keyward.otp.start",
            "keyward.otp.check",
            "keyward.gate.login",
            "keyward.gate.verify",
            "keyward.gate.admit_passkey",
            "keyward.video.issue",
            "keyward.webauthn.registration.start",
            "keyward.webauthn.registration.finish",
            "keyward.webauthn.authentication.start",
            "keyward.webauthn.authentication.finish",
            "keyward.tmr.session",
            "keyward.ssks.open_session",
            "keyward.ssks.validate_challenge",
            "keyward.ssks.push",
            "keyward.ssks.search",
            "keyward.totp.enroll",
            "keyward.totp.confirm",
            "keyward.totp.check",
            "keyward.store.get",
            "keyward.store.increment",
            "keyward.store.take",
        ] {
            assert!(spans.contains(&name), "no {name} span in {spans:?}");
        }
        // Masked fields are there, masked.
        let start = log.spans.iter().find(|s| s.name == "keyward.otp.start");
        assert_eq!(start.and_then(|s| s.field("to")), Some("**********61"));
        let issue = log.spans.iter().find(|s| s.name == "keyward.video.issue");
        assert_eq!(issue.and_then(|s| s.field("factor")), Some("otp"));

        // An event per refusal, in the refused operation's span, with its kind or failure.
        let refusal = |span: &str, starts: &str| {
            log.events.iter().any(|e| {
                e.parent.as_deref() == Some(span)
                    && (e.field("error").is_some_and(|v| v.starts_with(starts))
                        || e.field("kind") == Some(starts))
            })
        };
        let events: Vec<String> = log
            .events
            .iter()
            .map(|e| format!("{:?} {:?}", e.parent, e.fields))
            .collect();
        for (span, kind) in [
            ("keyward.otp.check", "rejected"),
            ("keyward.otp.check", "not found"),
            ("keyward.gate.verify", "rejected"),
            (
                "keyward.webauthn.authentication.finish",
                "webauthn: ceremony state already used",
            ),
            ("keyward.ssks.validate_challenge", "rejected"),
            ("keyward.totp.check", "rejected"),
        ] {
            assert!(
                refusal(span, kind),
                "no {kind:?} refusal in {span}: {events:#?}"
            );
        }
    }

    /// The secrets and destinations an outbox saw: every code, message body and full destination.
    fn outbox_secrets(outbox: &Outbox) -> Vec<String> {
        let mut seen = Vec::new();
        for m in outbox.messages() {
            seen.push(m.code.expose_str().unwrap().to_owned());
            seen.push(m.to.clone());
            seen.push(m.to.trim_start_matches('+').to_owned());
            if let Some((local, _)) = m.to.split_once('@') {
                seen.push(format!("{local}@"));
            }
        }
        seen
    }

    /// The HTTP backends under the same subscriber: Twilio Verify against a local server with
    /// Verify's rules, and the SSKS HTTP client against keyward's SSKS server, each through its
    /// whole conformance suite.
    #[cfg(feature = "ssks-server")]
    #[tokio::test]
    async fn http_backends_traced_without_secrets() {
        use keyward::http::HttpConfig;
        use keyward::keysplit::server::{ServerConfig, serve};
        use keyward::keysplit::ssks::{SsksClient, SsksConfig};
        use keyward::otp::{TwilioVerify, TwilioVerifyConfig};
        use keyward::testing::conformance::{
            KeySplitCapabilities, OtpCapabilities, key_split_store, otp_provider,
        };
        use keyward::{Env, ManualClock};

        use super::support;

        const SSKS_API_KEY: &str = "test-ssks-api-key-secret";
        let capture = Capture::default();
        let _guard = tracing::subscriber::set_default(capture.clone());

        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let otp_outbox = Outbox::new();
        let server = support::FakeVerify::start(clock.clone(), otp_outbox.clone()).await;
        let creds =
            TwilioCredentials::api_key(support::AC, support::SK, Secret::from(support::SK_SECRET))
                .unwrap();
        let otp = TwilioVerify::new(
            TwilioVerifyConfig::new(creds, support::VA)
                .unwrap()
                .with_base_url(&server.base_url)
                .http(HttpConfig::default().allow_http_loopback(true)),
        )
        .unwrap();
        otp_provider(&otp, &OtpCapabilities::new(otp_outbox.clone(), clock)).await;

        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let ssks_outbox = Outbox::new();
        let local = LocalKeySplitStore::new(
            Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone()))),
            Arc::new(ssks_outbox.clone()),
        )
        .env(Env::system().with_clock(clock.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        const APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";
        let server = serve(listener, local, ServerConfig::new(APP_ID, SSKS_API_KEY))
            .await
            .unwrap();
        let ssks = SsksClient::new(
            SsksConfig::new(server.base_url(), APP_ID)
                .api_key(SSKS_API_KEY)
                .test_server(true)
                .http(HttpConfig::default().allow_http_loopback(true)),
        )
        .unwrap();
        key_split_store(
            &ssks,
            &KeySplitCapabilities::new(ssks_outbox.clone(), clock),
        )
        .await;

        let mut secrets = vec![support::SK_SECRET.to_owned(), SSKS_API_KEY.to_owned()];
        secrets.extend(outbox_secrets(&otp_outbox));
        secrets.extend(outbox_secrets(&ssks_outbox));
        let log = capture.log();
        let shown: String = log
            .spans
            .iter()
            .chain(&log.events)
            .map(|s| format!("{} {:?}\n", s.name, s.fields))
            .collect();
        let secrets: Vec<&str> = secrets
            .iter()
            .map(String::as_str)
            .filter(|s| s.len() >= 4)
            .collect();
        assert!(secrets.len() > 10, "the suites sent codes: {secrets:?}");
        assert_hidden(&shown, &secrets);

        let span = |name: &str, backend: &str| {
            log.spans
                .iter()
                .any(|s| s.name == name && s.field("backend") == Some(backend))
        };
        for (name, backend) in [
            ("keyward.otp.start", "twilio"),
            ("keyward.otp.check", "twilio"),
            ("keyward.otp.fetch", "twilio"),
            ("keyward.otp.cancel", "twilio"),
            ("keyward.ssks.open_session", "http"),
            ("keyward.ssks.validate_challenge", "http"),
            ("keyward.ssks.push", "http"),
            ("keyward.ssks.search", "http"),
            // The server side answers through the local store.
            ("keyward.ssks.open_session", "local"),
        ] {
            assert!(span(name, backend), "no {name} span of {backend}");
        }
        // Refusals of the remote backends are reported in their spans.
        for span in ["keyward.otp.check", "keyward.ssks.validate_challenge"] {
            assert!(
                log.events.iter().any(|e| e.parent.as_deref() == Some(span)
                    && (e.field("error").is_some() || e.field("kind").is_some())),
                "no refusal in {span}"
            );
        }
    }
}
