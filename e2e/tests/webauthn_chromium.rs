//! WebAuthn extensions in a real browser: Debian's headless Chromium with a CDP virtual CTAP 2.1
//! authenticator (`hasPrf`, `hasLargeBlob`, `hasCredBlob`, `hasMinPinLength`, backup flags set),
//! driven with `PublicKeyCredential.parseCreationOptionsFromJSON` / `toJSON()`, so keyward's
//! option JSON and its reading of the browser's response JSON are checked against Chromium's.
//!
//! Skips with one line without Chromium on `PATH` (`apt-get install -y chromium`; or
//! `KEYWARD_CHROMIUM`), unless `KEYWARD_REQUIRE_EXTERNAL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "e2e_video_room/cdp.rs"]
#[allow(dead_code)]
mod cdp;
#[path = "../../tests/support/external.rs"]
mod external;

use std::sync::Arc;
use std::time::Duration;

use cdp::{Browser, CdpResult, Page};
use keyward::AuthenticatorVerifier;
use keyward::store::{MemoryStore, StateStore};
use keyward::webauthn::{
    AuthenticationRequest, CredentialProtectionPolicy, LargeBlobOutput, LargeBlobSupport, PrfInput,
    RegistrationRequest, RelyingParty, RelyingPartyConfig, ResidentKeyRequirement, UserEntity,
    UserVerification,
};
use serde_json::{Value, json};

async fn serve_blank_page() -> (u16, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><title>keyward webauthn</title><p>ok</p>")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, task)
}

async fn add_authenticator(page: &Page<'_>) -> CdpResult<String> {
    page.call("WebAuthn.enable", json!({ "enableUI": false }))
        .await?;
    let answer = page
        .call(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
                "hasPrf": true,
                "hasLargeBlob": true,
                "hasCredBlob": true,
                "hasMinPinLength": true,
                "defaultBackupEligibility": true,
                "defaultBackupState": true,
            }}),
        )
        .await?;
    answer["authenticatorId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no authenticatorId".to_owned())
}

/// Runs `navigator.credentials.create()` / `get()` on options JSON and returns `toJSON()`.
async fn ceremony(page: &Page<'_>, create: bool, options: &Value) -> CdpResult<String> {
    let (parse, call) = if create {
        ("parseCreationOptionsFromJSON", "create")
    } else {
        ("parseRequestOptionsFromJSON", "get")
    };
    let script = format!(
        "(async () => {{ const publicKey = PublicKeyCredential.{parse}({options}); \
         const c = await navigator.credentials.{call}({{ publicKey }}); \
         return JSON.stringify(c.toJSON()); }})()"
    );
    match page.eval(&script).await? {
        Value::String(s) => Ok(s),
        other => Err(format!("unexpected result {other}")),
    }
}

async fn run(browser: &Browser, port: u16) -> CdpResult<()> {
    let origin = format!("http://localhost:{port}");
    let page = browser.new_page().await?;
    page.navigate(&format!("{origin}/")).await?;
    add_authenticator(&page).await?;
    let config = RelyingPartyConfig::new("localhost", "keyward", origin.as_str())
        .map_err(|e| e.to_string())?
        .user_verification(UserVerification::Required);
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let rp = RelyingParty::new(config, store);
    let user =
        UserEntity::new(*b"chromium-user-01", "alice", "Alice").map_err(|e| e.to_string())?;
    let salt = [0x5a_u8; 32];

    // Registration with every extension the virtual authenticator has.
    let (options, state) = rp
        .start_registration(
            RegistrationRequest::new(user)
                .resident_key(ResidentKeyRequirement::Required)
                .prf_eval(PrfInput::new(salt))
                .large_blob(LargeBlobSupport::Required)
                .cred_blob(*b"credblob")
                .min_pin_length()
                .cred_protect(
                    CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList,
                    true,
                ),
        )
        .await
        .map_err(|e| e.to_string())?;
    let json = ceremony(&page, true, &serde_json::to_value(&options).unwrap()).await?;
    let cred = rp
        .finish_registration_json(state, &json)
        .await
        .map_err(|e| format!("registration refused: {e}; response {json}"))?;
    let ext = &cred.extensions;
    assert_eq!(ext.prf_enabled, Some(true), "{json}");
    assert_eq!(ext.large_blob_supported, Some(true), "{json}");
    assert_eq!(ext.cred_blob_stored, Some(true), "{ext:?}");
    assert_eq!(
        ext.cred_protect,
        Some(CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList),
        "{ext:?}"
    );
    assert!(ext.min_pin_length.is_some(), "{ext:?}");
    assert_eq!(cred.discoverable, Some(true));
    assert!(
        cred.backup_eligible && cred.backed_up,
        "default backup flags"
    );
    let prf_at_creation = cred.prf.as_ref().map(|p| p.first.expose().to_vec());

    // Authentication: PRF with the same salt gives the same 32 bytes; credBlob comes back.
    let (options, state) = rp
        .start_authentication(
            AuthenticationRequest::for_user(*b"chromium-user-01")
                .prf_eval_by_credential(cred.credential_id.clone(), PrfInput::new(salt))
                .get_cred_blob(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let json = ceremony(&page, false, &serde_json::to_value(&options).unwrap()).await?;
    let a = rp
        .finish_authentication_json(state, &json)
        .await
        .map_err(|e| format!("assertion refused: {e}; response {json}"))?;
    let prf = a.prf().ok_or_else(|| format!("no prf output: {json}"))?;
    assert_eq!(prf.first.len(), 32);
    if let Some(at_creation) = prf_at_creation {
        assert_eq!(prf.first.expose(), at_creation.as_slice());
    }
    assert_eq!(
        a.extensions().cred_blob.as_deref(),
        Some(&b"credblob"[..]),
        "{json}"
    );

    // largeBlob: write through the one credential, then read it back.
    let (options, state) = rp
        .start_authentication(
            AuthenticationRequest::for_credential(*b"chromium-user-01", cred.credential_id.clone())
                .large_blob_write(*b"a large blob"),
        )
        .await
        .map_err(|e| e.to_string())?;
    let json = ceremony(&page, false, &serde_json::to_value(&options).unwrap()).await?;
    let a = rp
        .finish_authentication_json(state, &json)
        .await
        .map_err(|e| format!("assertion refused: {e}; response {json}"))?;
    assert_eq!(
        a.extensions().large_blob,
        Some(LargeBlobOutput::Written(true)),
        "{json}"
    );
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable().large_blob_read())
        .await
        .map_err(|e| e.to_string())?;
    let json = ceremony(&page, false, &serde_json::to_value(&options).unwrap()).await?;
    let a = rp
        .finish_authentication_json(state, &json)
        .await
        .map_err(|e| format!("assertion refused: {e}; response {json}"))?;
    match &a.extensions().large_blob {
        Some(LargeBlobOutput::Read(Some(blob))) => assert_eq!(blob.expose(), b"a large blob"),
        other => return Err(format!("large blob read: {other:?}; response {json}")),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_with_chromium_virtual_authenticator() {
    let chromium = external::find_program("KEYWARD_CHROMIUM", &["chromium", "chromium-browser"]);
    if !external::available_or_skip(
        "extensions_with_chromium_virtual_authenticator",
        "Chromium (chromium on PATH, or KEYWARD_CHROMIUM)",
        "apt-get install -y chromium",
        chromium.is_some(),
    ) {
        return;
    }
    let Some(chromium) = chromium else { return };
    let (port, server) = serve_blank_page().await;
    let browser = Browser::launch(
        &chromium,
        &["--host-resolver-rules=MAP localhost 127.0.0.1"],
    )
    .await
    .unwrap_or_else(|e| panic!("cannot start the browser: {e}"));
    let result = tokio::time::timeout(Duration::from_secs(90), run(&browser, port)).await;
    let console = browser.console();
    drop(browser);
    server.abort();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}\n--- console ---\n{}", console.join("\n")),
        Err(_) => panic!("timed out\n--- console ---\n{}", console.join("\n")),
    }
}
