//! LiveKit access tokens: byte for byte the Python SDK's on golden vectors, verified by our
//! verifier and by the JavaScript SDK's (`livekit-server-sdk`, when node has it).
#![cfg(feature = "livekit")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use keyward::Env;
use keyward::livekit::{
    LiveKitApiKey, LiveKitTokenBuilder, LiveKitTokenIssuer, LiveKitTokenVerifier, VideoGrants,
};
use keyward::video::VideoTokenRequest;
use keyward::{ErrorKind, ManualClock, VideoTokenIssuer};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    source: String,
    api_key: String,
    api_secret: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    now: f64,
    ttl: Option<f64>,
    identity: String,
    video: Option<serde_json::Map<String, serde_json::Value>>,
    display_name: Option<String>,
    metadata: Option<String>,
    attributes: Option<Vec<(String, String)>>,
    kind: Option<String>,
    sha256: Option<String>,
    room_preset: Option<String>,
    jwt: String,
}

fn golden() -> Golden {
    serde_json::from_str(include_str!("vectors/livekit/golden.json")).unwrap()
}

/// The Python SDK's snake_case `VideoGrants(...)` arguments, mapped onto ours field by field.
fn grants(map: &serde_json::Map<String, serde_json::Value>) -> VideoGrants {
    let mut g = VideoGrants::default();
    for (k, v) in map {
        let b = || v.as_bool().unwrap();
        match k.as_str() {
            "room_create" => g.room_create = Some(b()),
            "room_list" => g.room_list = Some(b()),
            "room_record" => g.room_record = Some(b()),
            "room_admin" => g.room_admin = Some(b()),
            "room_join" => g.room_join = Some(b()),
            "room" => g.room = v.as_str().unwrap().to_owned(),
            "destination_room" => g.destination_room = Some(v.as_str().unwrap().to_owned()),
            "can_publish" => g.can_publish = b(),
            "can_subscribe" => g.can_subscribe = b(),
            "can_publish_data" => g.can_publish_data = b(),
            "can_publish_sources" => {
                g.can_publish_sources = Some(
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect(),
                )
            }
            "can_update_own_metadata" => g.can_update_own_metadata = Some(b()),
            "ingress_admin" => g.ingress_admin = Some(b()),
            "hidden" => g.hidden = Some(b()),
            "recorder" => g.recorder = Some(b()),
            "agent" => g.agent = Some(b()),
            "can_manage_agent_session" => g.can_manage_agent_session = Some(b()),
            "can_subscribe_metrics" => g.can_subscribe_metrics = Some(b()),
            other => panic!("vector uses a grant this test does not map: {other}"),
        }
    }
    g
}

fn builder(case: &Case) -> LiveKitTokenBuilder {
    let mut b = LiveKitTokenBuilder::new(&case.identity);
    if let Some(ttl) = case.ttl {
        b = b.ttl(Duration::from_secs_f64(ttl));
    }
    if let Some(video) = &case.video {
        b = b.video(grants(video));
    }
    if let Some(name) = &case.display_name {
        b = b.name(name);
    }
    if let Some(metadata) = &case.metadata {
        b = b.metadata(metadata);
    }
    if let Some(attributes) = &case.attributes {
        b = b.attributes(attributes.clone());
    }
    if let Some(kind) = &case.kind {
        b = b.kind(kind);
    }
    if let Some(sha256) = &case.sha256 {
        b = b.sha256(sha256);
    }
    if let Some(preset) = &case.room_preset {
        b = b.room_preset(preset);
    }
    b
}

#[test]
fn byte_for_byte_the_python_sdk() {
    let g = golden();
    assert!(g.source.starts_with("livekit-api "));
    assert_eq!(g.cases.len(), 7);
    let key = LiveKitApiKey::new(&g.api_key, g.api_secret.as_str()).unwrap();
    for case in &g.cases {
        let now = UNIX_EPOCH + Duration::from_secs_f64(case.now);
        let jwt = builder(case).sign(&key, now).unwrap();
        assert_eq!(jwt.expose_str().unwrap(), case.jwt, "{}", case.name);
    }
}

#[test]
fn the_verifier_accepts_the_golden_tokens_and_reads_their_claims() {
    let g = golden();
    let key = LiveKitApiKey::new(&g.api_key, g.api_secret.as_str()).unwrap();
    for case in &g.cases {
        let clock = Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs_f64(case.now),
        ));
        let verifier =
            LiveKitTokenVerifier::new(key.clone()).env(Env::system().with_clock(clock.clone()));
        let claims = verifier.verify(&case.jwt).unwrap();
        assert_eq!(claims.identity, case.identity, "{}", case.name);
        assert_eq!(claims.issuer, g.api_key);
        assert_eq!(
            claims.video,
            case.video.as_ref().map(grants),
            "{}",
            case.name
        );
        assert_eq!(&claims.metadata, case.metadata.as_deref().unwrap_or(""));
        assert_eq!(&claims.name, case.display_name.as_deref().unwrap_or(""));
        assert_eq!(
            claims.attributes,
            case.attributes.clone().unwrap_or_default()
        );
        // Past exp plus the minute of leeway: expired.
        let exp = claims.expires_at;
        clock.set(exp + Duration::from_secs(61));
        assert_eq!(
            verifier.verify(&case.jwt).unwrap_err().kind(),
            &ErrorKind::Expired
        );
    }
}

#[test]
fn forged_or_foreign_tokens_are_refused() {
    let g = golden();
    let key = LiveKitApiKey::new(&g.api_key, g.api_secret.as_str()).unwrap();
    let case = &g.cases[0];
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs_f64(case.now),
    ));
    let verifier = LiveKitTokenVerifier::new(key).env(Env::system().with_clock(clock.clone()));
    let (head, rest) = case.jwt.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let mut bad_sig = sig.to_owned();
    bad_sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    for token in [
        format!("{head}.{payload}.{bad_sig}"),
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}.{sig}"),
        format!("{head}.{payload}"),
        format!("{head}.{payload}.{sig}.x"),
        "not a jwt".to_owned(),
        String::new(),
    ] {
        let err = verifier.verify(&token).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidToken, "{token}");
    }
    // Another key's secret, or another key's name.
    let other = LiveKitTokenVerifier::new(LiveKitApiKey::new(&g.api_key, "other-secret").unwrap())
        .env(Env::system().with_clock(clock.clone()));
    assert_eq!(
        other.verify(&case.jwt).unwrap_err().kind(),
        &ErrorKind::InvalidToken
    );
    let other =
        LiveKitTokenVerifier::new(LiveKitApiKey::new("APIother", g.api_secret.as_str()).unwrap())
            .env(Env::system().with_clock(clock.clone()));
    assert_eq!(
        other.verify(&case.jwt).unwrap_err().kind(),
        &ErrorKind::InvalidToken
    );
    // Not valid before nbf (beyond the leeway).
    clock.set(UNIX_EPOCH + Duration::from_secs_f64(case.now) - Duration::from_secs(120));
    assert_eq!(
        verifier.verify(&case.jwt).unwrap_err().kind(),
        &ErrorKind::InvalidToken
    );
}

#[tokio::test]
async fn the_issuer_is_a_video_token_issuer() {
    let key =
        LiveKitApiKey::new("APIkeyward0001", "keyward-livekit-secret-0123456789abcdef").unwrap();
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let issuer: Arc<dyn VideoTokenIssuer> =
        Arc::new(LiveKitTokenIssuer::new(key.clone()).env(Env::system().with_clock(clock.clone())));
    let token = issuer
        .issue(
            proof(),
            VideoTokenRequest::new("alice")
                .room("My Room")
                .ttl(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    // The same bytes as the Python SDK's first golden case (same key, room, identity, time).
    assert_eq!(token.jwt(), golden().cases[0].jwt);
    assert_eq!(token.room.as_deref(), Some("My Room"));
    assert_eq!(
        token.expires_at,
        UNIX_EPOCH + Duration::from_secs(1_700_000_600)
    );
    assert!(!format!("{token:?}").contains(token.jwt()));
    let claims = LiveKitTokenVerifier::new(key)
        .env(Env::system().with_clock(clock))
        .verify(token.jwt())
        .unwrap();
    assert_eq!(claims.identity, "alice");
    for bad in [
        VideoTokenRequest::new("alice"),
        VideoTokenRequest::new("").room("r"),
        VideoTokenRequest::new("alice")
            .room("r")
            .ttl(Duration::ZERO),
        VideoTokenRequest::new("alice")
            .room("r")
            .ttl(Duration::from_secs(25 * 3600)),
    ] {
        assert_eq!(
            issuer.issue(proof(), bad).await.unwrap_err().kind(),
            &ErrorKind::InvalidInput
        );
    }
}

/// Where `npm install livekit-server-sdk` was run (a scratch directory outside the repository).
fn js_sdk_dir() -> std::path::PathBuf {
    std::env::var_os("KEYWARD_LIVEKIT_JS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| "/tmp/keyward-livekit-js".into())
}

#[tokio::test]
async fn the_javascript_sdk_verifier_accepts_our_tokens() {
    let dir = js_sdk_dir();
    let present = external::program_exists("node")
        && dir
            .join("node_modules/livekit-server-sdk/package.json")
            .is_file();
    if !external::available_or_skip(
        "the_javascript_sdk_verifier_accepts_our_tokens",
        "node and livekit-server-sdk",
        "npm install livekit-server-sdk in a scratch dir and point KEYWARD_LIVEKIT_JS_DIR at it",
        present,
    ) {
        return;
    }
    let key =
        LiveKitApiKey::new("APIkeyward0001", "keyward-livekit-secret-0123456789abcdef").unwrap();
    // The JS verifier checks exp against the real time: sign now.
    let mut grants = VideoGrants::join("Café ☕");
    grants.can_publish_sources = Some(vec!["camera".into()]);
    grants.hidden = Some(false);
    let jwt = LiveKitTokenBuilder::new("josé")
        .video(grants)
        .name("José 😀")
        .metadata("{\"a\":1}")
        .attributes([("team", "Zürich"), ("b", "2")])
        .ttl(Duration::from_secs(600))
        .sign(&key, keyward::Clock::now(&keyward::SystemClock))
        .unwrap();
    let script = r#"
import { TokenVerifier } from 'livekit-server-sdk';
const [token, key, secret] = process.argv.slice(1);
const claims = await new TokenVerifier(key, secret).verify(token);
process.stdout.write(JSON.stringify(claims));
"#;
    let run = |secret: &str| {
        std::process::Command::new("node")
            .current_dir(&dir)
            .args([
                "--input-type=module",
                "-e",
                script,
                jwt.expose_str().unwrap(),
                "APIkeyward0001",
                secret,
            ])
            .output()
            .unwrap()
    };
    let out = run("keyward-livekit-secret-0123456789abcdef");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["sub"], "josé");
    assert_eq!(claims["iss"], "APIkeyward0001");
    assert_eq!(claims["name"], "José 😀");
    assert_eq!(claims["video"]["room"], "Café ☕");
    assert_eq!(claims["video"]["roomJoin"], true);
    assert_eq!(claims["video"]["canPublishSources"][0], "camera");
    assert_eq!(claims["attributes"]["team"], "Zürich");
    // And it refuses the same token under another secret.
    let out = run("another-secret");
    assert!(!out.status.success());
}

proptest::proptest! {
    #[test]
    fn the_verifier_never_panics(s in "\\PC{0,300}", dots in 0usize..4) {
        let key = LiveKitApiKey::new("APIk", "s").unwrap();
        let verifier = LiveKitTokenVerifier::new(key);
        let token = (0..dots).fold(s.clone(), |t, _| format!("{t}.{s}"));
        let _ = verifier.verify(&token);
    }
}

/// The proof a check hands out (here an approved code, as an OTP backend builds it).
fn proof() -> keyward::video::FactorProof {
    let mut v = keyward::otp::Verification::new("VE1", "+15017122661", keyward::otp::Channel::Sms);
    v.status = keyward::otp::VerificationStatus::Approved;
    keyward::backend::approved(v).unwrap().into()
}
