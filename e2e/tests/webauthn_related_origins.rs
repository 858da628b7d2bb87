//! Related Origin Requests in a real browser: headless Chromium on a page of `example.org` runs
//! both ceremonies for the rp id `example.com`, which Chromium allows only after fetching
//! `https://example.com/.well-known/webauthn` (keyward's document, served here) and finding the
//! page's origin in it; a page of `example.net`, not listed, is refused by the browser.
//!
//! Chromium fetches the document over https on port 443, so the test serves TLS on
//! 127.0.0.1:443 (it runs as root in CI) with a certificate for the three names made with rcgen,
//! trusted through `--ignore-certificate-errors-spki-list`, and maps the names to loopback with
//! `--host-resolver-rules`. Skips with one line without Chromium or without port 443, unless
//! `KEYWARD_REQUIRE_EXTERNAL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "e2e_video_room/cdp.rs"]
#[allow(dead_code)]
mod cdp;
#[path = "../../tests/support/external.rs"]
mod external;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use cdp::{Browser, CdpResult, Page};
use keyward::AuthenticatorVerifier;
use keyward::store::{MemoryStore, StateStore};
use keyward::webauthn::{
    AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig,
    ResidentKeyRequirement, UserEntity,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAMES: [&str; 3] = ["example.com", "example.org", "example.net"];

/// A TLS server on `listener` answering `/.well-known/webauthn` with `document` (counting the
/// fetches) and anything else with a blank page, HTTP/1.1, one request per connection.
fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    document: String,
    fetches: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let document = document.clone();
            let fetches = fetches.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/");
                let (kind, body) = if path == "/.well-known/webauthn" {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    ("application/json", document)
                } else {
                    (
                        "text/html",
                        "<!doctype html><title>related origins</title><p>ok</p>".to_owned(),
                    )
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    })
}

/// `navigator.credentials.create()` / `get()` on options JSON: `toJSON()`, or the error's name.
async fn ceremony(
    page: &Page<'_>,
    create: bool,
    options: &Value,
) -> CdpResult<Result<String, String>> {
    let (parse, call) = if create {
        ("parseCreationOptionsFromJSON", "create")
    } else {
        ("parseRequestOptionsFromJSON", "get")
    };
    let script = format!(
        "(async () => {{ try {{ const publicKey = PublicKeyCredential.{parse}({options}); \
         const c = await navigator.credentials.{call}({{ publicKey }}); \
         return JSON.stringify({{ ok: JSON.stringify(c.toJSON()) }}); }} \
         catch (e) {{ return JSON.stringify({{ err: e.name + ': ' + e.message }}); }} }})()"
    );
    let Value::String(answer) = page.eval(&script).await? else {
        return Err("unexpected result".to_owned());
    };
    let answer: Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    Ok(match (answer["ok"].as_str(), answer["err"].as_str()) {
        (Some(ok), _) => Ok(ok.to_owned()),
        (_, Some(err)) => Err(err.to_owned()),
        _ => Err(format!("unexpected answer {answer}")),
    })
}

async fn run(browser: &Browser, rp: &RelyingParty, fetches: &AtomicUsize) -> CdpResult<()> {
    let user =
        UserEntity::new(*b"related-origins1", "alice", "Alice").map_err(|e| e.to_string())?;
    // On the related origin: both ceremonies for the rp id example.com.
    let page = browser.new_page().await?;
    page.navigate("https://example.org/").await?;
    page.add_virtual_authenticator().await?;
    let (options, state) = rp
        .start_registration(
            RegistrationRequest::new(user).resident_key(ResidentKeyRequirement::Required),
        )
        .await
        .map_err(|e| e.to_string())?;
    let json = ceremony(&page, true, &serde_json::to_value(&options).unwrap())
        .await?
        .map_err(|e| format!("the browser refused the registration: {e}"))?;
    let cred = rp
        .finish_registration_json(state, &json)
        .await
        .map_err(|e| format!("registration refused: {e}; response {json}"))?;
    if fetches.load(Ordering::SeqCst) == 0 {
        return Err("the browser never fetched /.well-known/webauthn".to_owned());
    }
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await
        .map_err(|e| e.to_string())?;
    let json = ceremony(&page, false, &serde_json::to_value(&options).unwrap())
        .await?
        .map_err(|e| format!("the browser refused the sign-in: {e}"))?;
    let ok = rp
        .finish_authentication_json(state, &json)
        .await
        .map_err(|e| format!("sign-in refused: {e}; response {json}"))?;
    assert_eq!(ok.credential_id(), cred.credential_id.as_slice());

    // On a site the document does not list, the browser itself refuses.
    let page = browser.new_page().await?;
    page.navigate("https://example.net/").await?;
    page.add_virtual_authenticator().await?;
    let user = UserEntity::new(*b"related-origins2", "bob", "Bob").map_err(|e| e.to_string())?;
    let (options, _) = rp
        .start_registration(RegistrationRequest::new(user))
        .await
        .map_err(|e| e.to_string())?;
    match ceremony(&page, true, &serde_json::to_value(&options).unwrap()).await? {
        Err(e) if e.starts_with("SecurityError") => Ok(()),
        other => Err(format!(
            "example.net should be refused by the browser: {other:?}"
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn related_origins_with_chromium() {
    let chromium = external::find_program("KEYWARD_CHROMIUM", &["chromium", "chromium-browser"]);
    if !external::available_or_skip(
        "related_origins_with_chromium",
        "Chromium (chromium on PATH, or KEYWARD_CHROMIUM)",
        "apt-get install -y chromium",
        chromium.is_some(),
    ) {
        return;
    }
    let Some(chromium) = chromium else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:443").await;
    if !external::available_or_skip(
        "related_origins_with_chromium",
        "port 443 on 127.0.0.1 (Chromium fetches /.well-known/webauthn there)",
        "run the test as root, with nothing else on port 443",
        listener.is_ok(),
    ) {
        return;
    }
    let listener = listener.unwrap();

    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(NAMES.map(str::to_owned).to_vec()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let spki = base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        &rcgen::PublicKeyData::subject_public_key_info(&key),
    ));
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();

    let config = RelyingPartyConfig::new("example.com", "keyward", "https://example.com")
        .unwrap()
        .related_origin("https://example.org")
        .unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let server = serve_tls(
        listener,
        Arc::new(tls),
        config.well_known_webauthn_json(),
        fetches.clone(),
    );
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let rp = RelyingParty::new(config, store);

    let rules = format!(
        "--host-resolver-rules={}",
        NAMES.map(|n| format!("MAP {n} 127.0.0.1")).join(",")
    );
    let trust = format!("--ignore-certificate-errors-spki-list={spki}");
    let browser = Browser::launch(&chromium, &[rules.as_str(), trust.as_str()])
        .await
        .unwrap_or_else(|e| panic!("cannot start the browser: {e}"));
    let result = tokio::time::timeout(Duration::from_secs(90), run(&browser, &rp, &fetches)).await;
    let console = browser.console();
    drop(browser);
    server.abort();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}\n--- console ---\n{}", console.join("\n")),
        Err(_) => panic!("timed out\n--- console ---\n{}", console.join("\n")),
    }
}
