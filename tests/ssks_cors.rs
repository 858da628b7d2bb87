//! CORS on the local SSKS server, over real HTTP on 127.0.0.1 (#14 item 7): Seald's browser
//! plugin calls the front endpoints from the app's web origin, so the browser sends a preflight
//! first (`OPTIONS` with `Origin`, `Access-Control-Request-Method` and the custom headers). The
//! server answered it 405; it now answers it for the configured origins only.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![cfg(feature = "ssks-server")]

use std::sync::Arc;

use keyward::keysplit::local::LocalKeySplitStore;
use keyward::keysplit::server::{ServerConfig, ServerHandle, serve};
use keyward::otp::Outbox;
use keyward::store::MemoryStore;
use reqwest::Method;

const APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";
const ALLOWED: &str = "https://app.example.com";
const FRONT: [&str; 6] = [
    "/tmr/front/challenge_validate/",
    "/tmr/front/challenge_validate",
    "/tmr/front/push/",
    "/tmr/front/push",
    "/tmr/front/search/",
    "/tmr/front/search",
];
/// What the plugin's browser build sends besides `Content-Type`.
const PLUGIN_HEADERS: &str = "content-type,x-seald-appid,x-seald-session,x-seald-version";

async fn server(config: ServerConfig) -> ServerHandle {
    let local = LocalKeySplitStore::new(Arc::new(MemoryStore::new()), Arc::new(Outbox::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, local, config).await.unwrap()
}

fn config() -> ServerConfig {
    ServerConfig::new(APP_ID, "api-key")
        .cors_origins([ALLOWED, "http://localhost:8080"])
        .unwrap()
}

async fn preflight(base: &str, path: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{base}{path}"))
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", PLUGIN_HEADERS);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    request.send().await.unwrap()
}

fn header<'a>(answer: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    answer.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn preflight_from_a_configured_origin_is_answered() {
    let s = server(config()).await;
    for path in FRONT {
        let answer = preflight(&s.base_url(), path, Some(ALLOWED)).await;
        assert_eq!(answer.status(), 204, "{path}");
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(ALLOWED)
        );
        assert_eq!(
            header(&answer, "access-control-allow-methods"),
            Some("POST")
        );
        let allowed = header(&answer, "access-control-allow-headers").unwrap();
        for wanted in PLUGIN_HEADERS.split(',') {
            assert!(
                allowed.split(", ").any(|h| h == wanted),
                "{wanted} in {allowed}"
            );
        }
        assert_eq!(header(&answer, "vary"), Some("origin"));
        assert!(header(&answer, "access-control-max-age").is_some());
    }
    // The other configured origin, spelled as a browser sends it.
    let answer = preflight(&s.base_url(), FRONT[0], Some("http://localhost:8080")).await;
    assert_eq!(answer.status(), 204);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some("http://localhost:8080")
    );
}

#[tokio::test]
async fn preflight_from_any_other_origin_is_refused() {
    let s = server(config()).await;
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "http://app.example.com",
        "https://app.example.com:8443",
        "null",
    ] {
        let answer = preflight(&s.base_url(), FRONT[4], Some(origin)).await;
        assert_eq!(answer.status(), 403, "{origin}");
        assert!(
            header(&answer, "access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    // No origin configured (the default): no browser access at all.
    let closed = server(ServerConfig::new(APP_ID, "api-key")).await;
    let answer = preflight(&closed.base_url(), FRONT[4], Some(ALLOWED)).await;
    assert_eq!(answer.status(), 403);
    assert!(header(&answer, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_back_endpoint_is_never_offered_to_browsers() {
    let s = server(config()).await;
    for path in ["/tmr/back/challenge_send/", "/tmr/back/challenge_send"] {
        let answer = preflight(&s.base_url(), path, Some(ALLOWED)).await;
        assert_eq!(answer.status(), 405, "{path}");
        assert!(header(&answer, "access-control-allow-origin").is_none());
        let answer = reqwest::Client::new()
            .post(format!("{}{path}", s.base_url()))
            .header("Origin", ALLOWED)
            .header("X-SEALD-APPID", APP_ID)
            .header("X-SEALD-APIKEY", "api-key")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);
        assert!(header(&answer, "access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn front_answers_are_readable_by_configured_origins_only() {
    let s = server(config()).await;
    let post = |origin: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/tmr/front/search/", s.base_url()))
            .header("Origin", origin)
            .header("X-SEALD-APPID", APP_ID)
            .header("X-SEALD-SESSION", "no-such-session")
            .header("X-SEALD-VERSION", "sdk-js/browser/0.25.0")
            .send()
    };
    // An unknown session: the answer itself is unchanged (404), only readable or not.
    let answer = post(ALLOWED).await.unwrap();
    assert_eq!(answer.status(), 404);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let answer = post("https://evil.example").await.unwrap();
    assert_eq!(answer.status(), 404);
    assert!(header(&answer, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn options_without_origin_is_not_a_preflight() {
    let s = server(config()).await;
    let answer = preflight(&s.base_url(), FRONT[2], None).await;
    assert_eq!(answer.status(), 204);
    assert_eq!(header(&answer, "allow"), Some("POST, OPTIONS"));
    assert!(header(&answer, "access-control-allow-origin").is_none());
}

#[test]
fn configured_origins_are_checked() {
    for bad in [
        "*",
        "app.example.com",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "ftp://app.example.com",
        "https://",
        "https://app.example.com:99999",
        "https://app.example.com:",
        "https://bücher.example",
    ] {
        let err = ServerConfig::new(APP_ID, "k")
            .cors_origins([bad])
            .unwrap_err();
        assert_eq!(err.kind(), &keyward::ErrorKind::Config, "{bad}");
    }
    let config = ServerConfig::new(APP_ID, "k")
        .cors_origins([
            "HTTPS://App.Example.COM/",
            "http://[::1]:8080",
            "http://127.0.0.1:3000",
        ])
        .unwrap();
    assert_eq!(
        config.cors_origins,
        [
            "https://app.example.com",
            "http://[::1]:8080",
            "http://127.0.0.1:3000"
        ]
    );
}
