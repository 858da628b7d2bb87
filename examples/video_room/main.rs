//! keyward video room: the seed flows in a browser, on the embedded defaults.
//!
//! ```text
//! cargo run --example video_room --all-features            # an ephemeral port
//! PORT=8080 cargo run --example video_room --all-features  # a fixed one
//! ```
//!
//! Open the printed `http://localhost:<port>/` (passkeys need the `localhost` name, not
//! `127.0.0.1`). The self-hosted OTP provider prints each code on this console. With
//! `TWILIO_ACCOUNT_SID`, `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET` (or `TWILIO_AUTH_TOKEN`)
//! and `VERIFY_SERVICE_SID` set, codes go through Twilio Verify instead; with
//! `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET`, room tokens are signed with that API key.
//! With `VIDEO_PROVIDER=livekit` (and the `livekit` feature), room tokens are LiveKit access
//! tokens signed with `LIVEKIT_API_KEY` + `LIVEKIT_API_SECRET` (a throwaway key when unset).
//!
//! State: in memory by default; with `REDIS_URL` and/or `DATABASE_URL`, on Redis and/or
//! PostgreSQL (see `stores.rs`), so several demo processes can share it and passkeys survive a
//! restart. Give every process the same `KEYWARD_OTP_SECRET` (32+ characters) so a code sent by
//! one is accepted by another.

mod app;
mod stores;

use std::sync::Arc;

use keyward::Env;
use keyward::otp::{ConsoleSender, LocalOtpProvider, TwilioVerify, TwilioVerifyConfig};
use keyward::store::StateStore;
use keyward::twilio::TwilioCredentials;
use keyward::video::twilio::TwilioAccessTokenIssuer;
use keyward::webauthn::{RelyingParty, RelyingPartyConfig, UserVerification};
use keyward::{OtpProvider, Secret, SecureRandom, SystemRandom, VideoTokenIssuer, random_array};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|e| format!("PORT={p:?}: {e}"))?,
        Err(_) => 0,
    };
    let rng: Arc<dyn SecureRandom> = Arc::new(SystemRandom::new());
    let stores = stores::from_env().await?;
    let store: Arc<dyn StateStore> = stores.app.clone();

    // One-time codes: Twilio Verify when configured, else the self-hosted provider printing
    // codes on this console.
    let (otp, otp_backend): (Arc<dyn OtpProvider>, &'static str) =
        if std::env::var_os("VERIFY_SERVICE_SID").is_some() {
            (
                Arc::new(TwilioVerify::new(TwilioVerifyConfig::from_env()?)?),
                "twilio",
            )
        } else {
            // KEYWARD_OTP_SECRET when set (shared by every process on a shared store); else a
            // fresh secret per run: codes then do not survive a restart.
            let server_secret = match std::env::var("KEYWARD_OTP_SECRET") {
                Ok(secret) if secret.len() >= 32 => Secret::from(secret),
                Ok(_) => return Err("KEYWARD_OTP_SECRET must be at least 32 characters".into()),
                Err(_) => Secret::new(random_array::<32>(rng.as_ref())?),
            };
            (
                Arc::new(LocalOtpProvider::new(
                    store.clone(),
                    Arc::new(ConsoleSender),
                    server_secret,
                )?),
                "self-hosted",
            )
        };

    // Video tokens: signed with your Twilio API key when TWILIO_ACCOUNT_SID, TWILIO_API_KEY_SID
    // and TWILIO_API_KEY_SECRET are set (the tokens then work with Twilio Video); otherwise with a
    // throwaway demo key, so the flow runs without an account.
    let (key, own_key) = match (
        std::env::var("TWILIO_ACCOUNT_SID"),
        std::env::var("TWILIO_API_KEY_SID"),
        std::env::var("TWILIO_API_KEY_SECRET"),
    ) {
        (Ok(account), Ok(key_sid), Ok(secret)) => {
            (TwilioCredentials::api_key(account, key_sid, secret)?, true)
        }
        _ => (
            TwilioCredentials::api_key(
                "AC00000000000000000000000000000000",
                "SK00000000000000000000000000000000",
                Secret::new(random_array::<32>(rng.as_ref())?),
            )?,
            false,
        ),
    };
    // Or LiveKit, chosen by configuration: the room gate and the pages do not change.
    let (video, provider): (Arc<dyn VideoTokenIssuer>, &str) =
        if std::env::var("VIDEO_PROVIDER").is_ok_and(|p| p == "livekit") {
            livekit_issuer(rng.as_ref())?
        } else if own_key {
            (
                Arc::new(TwilioAccessTokenIssuer::new(key)?),
                "your Twilio API key",
            )
        } else {
            (
                Arc::new(TwilioAccessTokenIssuer::new(key)?),
                "a throwaway demo key",
            )
        };

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let origins = vec![
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
    ];

    // 2-man rule: keyward's local SSKS on its own port (challenges printed on this console), and
    // this server as the backend holding each participant's rawTwoManRuleKey.
    // On REDIS_URL / DATABASE_URL its sessions and identities are in the shared store too.
    let (tmr_backend, ssks_url, _ssks) = app::local_two_man_rule(
        store.clone(),
        stores.ssks.clone(),
        Arc::new(ConsoleSender),
        rng.clone(),
        origins,
    )
    .await?;

    // Passkeys: a relying party for `localhost` reached from this port, user verification
    // required, credentials in the store.
    let relying_party = RelyingParty::new(
        RelyingPartyConfig::new(
            "localhost",
            "keyward video room",
            format!("http://localhost:{port}"),
        )?
        .user_verification(UserVerification::Required),
        store.clone(),
    )
    .env(Env::system().with_random(rng.clone()));

    let state = app::AppState::new(store, rng)
        .with_room_gate(otp, otp_backend, video)?
        .with_webauthn(Arc::new(relying_party))
        .with_two_man_rule(tmr_backend, ssks_url.clone());

    println!("keyward video room on http://localhost:{port}/ (local SSKS on {ssks_url})");
    // For the operator only: the pages never list participants (see app::pages::config).
    let names: Vec<&str> = app::participants::PARTICIPANTS
        .iter()
        .map(|p| p.0)
        .collect();
    eprintln!("[video_room] participants: {}", names.join(", "));
    eprintln!("[video_room] state: {}", stores.description);
    eprintln!(
        "[video_room] one-time codes: {otp_backend}; room tokens: {provider}; passkeys: relying party \"localhost\"; 2-man rule: local SSKS"
    );
    app::serve(listener, state).await?;
    Ok(())
}

/// A token issuer and how the console names it.
type Issuer = (Arc<dyn VideoTokenIssuer>, &'static str);

/// LiveKit tokens signed with `LIVEKIT_API_KEY` + `LIVEKIT_API_SECRET`, or a throwaway key.
#[cfg(feature = "livekit")]
fn livekit_issuer(rng: &dyn SecureRandom) -> Result<Issuer, Box<dyn std::error::Error>> {
    use keyward::livekit::{LiveKitApiKey, LiveKitTokenIssuer};
    let (key, label) = match LiveKitApiKey::from_vars(|name| std::env::var(name).ok()) {
        Ok(key) => (key, "livekit, your API key"),
        Err(_) => (
            LiveKitApiKey::new("APIdemo", Secret::new(random_array::<32>(rng)?))?,
            "livekit, a throwaway demo key",
        ),
    };
    Ok((Arc::new(LiveKitTokenIssuer::new(key)), label))
}

#[cfg(not(feature = "livekit"))]
fn livekit_issuer(_rng: &dyn SecureRandom) -> Result<Issuer, Box<dyn std::error::Error>> {
    Err("VIDEO_PROVIDER=livekit needs the livekit feature".into())
}
