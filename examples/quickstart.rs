//! keyward quickstart: runs on the embedded defaults, no Twilio or Seald account needed.
//!
//! `cargo run --example quickstart`
//!
//! All four traits on in-memory backends: the state store, one-time passcodes (self-hosted),
//! video room tokens (Twilio access tokens signed with a test key), the 2-man rule (a local
//! SSKS) and passkeys (a relying party and keyward's software authenticator). Every value printed
//! is computed for real.

use std::sync::Arc;
use std::time::Duration;

use keyward::Env;
use keyward::store::{Key, MemoryStore, StateStore};
use keyward::{ManualClock, Secret, normalize};

#[tokio::main]
async fn main() -> Result<(), keyward::Error> {
    println!("== keyward quickstart ==");

    // The state store every backend keeps its state in, on an injected clock: one `Env` (clock
    // and random source) given to the store and to every backend the same way, `.env(env)`.
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let env = Env::system().with_clock(clock.clone());
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new().env(env));

    // 1. Atomic counters: 100 concurrent tasks, each counting one attempt.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .increment(&Key::ephemeral("demo").part("attempts"), 1, None)
                .await
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| keyward::Error::storage("task failed").with_source(e))??;
    }
    let counted = store
        .increment(&Key::ephemeral("demo").part("attempts"), 0, None)
        .await?;
    println!("[store] 100 concurrent increments -> counter = {counted}");

    // 2. Single use: a challenge can be taken once.
    let challenge = Key::ephemeral("demo").part("challenge");
    store
        .put(
            &challenge,
            b"c-123".to_vec(),
            Some(Duration::from_secs(300)),
        )
        .await?;
    let first = store.take(&challenge).await?.is_some();
    let second = store.take(&challenge).await?.is_some();
    println!("[store] take challenge: first = {first}, second = {second}");

    // 3. Expiry follows the injected clock.
    let code = Key::ephemeral("demo").part("code");
    store
        .put(&code, b"hashed".to_vec(), Some(Duration::from_secs(600)))
        .await?;
    clock.advance(Duration::from_secs(599));
    let alive = store.get(&code).await?.is_some();
    clock.advance(Duration::from_secs(1));
    let after = store.get(&code).await?.is_some();
    println!("[store] code alive at 599 s = {alive}, at 600 s = {after}");

    // 4. Destinations are normalized and masked before display.
    let phone = normalize::phone_e164("+1 (501) 712-2661")?;
    println!(
        "[otp] destination normalized and masked: {}",
        normalize::mask(&phone)
    );

    // 5. Secrets never print.
    let api_secret = Secret::from("not-a-real-secret");
    println!("[secret] Debug output: {api_secret:?}");

    otp_step(store.clone(), clock.clone()).await?;

    // --- video room gate (issue #4) ---
    #[cfg(feature = "twilio")]
    video_gate::run().await?;
    // --- end video room gate ---
    // The 2-man rule on the local SSKS (see two_man_rule_step below).
    #[cfg(feature = "ssks")]
    two_man_rule_step().await?;
    // Passkeys: registration and usernameless sign-in with the software authenticator.
    #[cfg(feature = "webauthn")]
    passkey_step().await?;
    Ok(())
}

/// WebAuthn: a relying party registers a passkey made by keyward's software authenticator
/// (standing in for the browser and the user's device), then signs in with it without a
/// username; a replayed response is refused.
#[cfg(feature = "webauthn")]
async fn passkey_step() -> Result<(), keyward::Error> {
    use keyward::AuthenticatorVerifier;
    use keyward::testing::SoftAuthenticator;
    use keyward::webauthn::{
        AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig, UserEntity,
        alg,
    };

    const ORIGIN: &str = "https://app.example.com";
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let rp = RelyingParty::new(
        RelyingPartyConfig::new("app.example.com", "Quickstart", ORIGIN)?,
        store,
    );
    // In a real service the browser runs `navigator.credentials.create()` / `.get()` on the JSON
    // options below; here the software authenticator answers them (test feature only).
    let device = SoftAuthenticator::new(alg::ES256, ORIGIN)?;

    // A random user handle, generated once per account; never an email or a name.
    let handle = keyward::random_array::<16>(&keyward::SystemRandom::new())?;
    let user = UserEntity::new(handle.to_vec(), "alice@example.com", "Alice")?;
    let (options, state) = rp
        .start_registration(RegistrationRequest::new(user))
        .await?;
    let response = device.register(&options)?;
    let credential = rp.finish_registration(state, &response).await?;
    println!(
        "[passkey] registered: algorithm {}, attestation {:?}, user verified = {}",
        credential.algorithm, credential.attestation_format, credential.user_verified
    );

    // Usernameless: the options name no user; the authenticator picks the credential and the
    // assertion says whose it is.
    let (options, state) = rp
        .start_authentication(AuthenticationRequest::discoverable())
        .await?;
    let assertion = device.authenticate(&options)?;
    let proof = rp.finish_authentication(state.clone(), &assertion).await?;
    println!(
        "[passkey] usernameless sign-in: user handle matches = {}, signed in as {:?}, sign count {}",
        proof.user_id() == handle,
        proof.user().map(|u| u.display_name.as_str()),
        proof.sign_count()
    );

    // The same response and state again: the challenge was single use.
    let replay = rp.finish_authentication(state, &assertion).await;
    println!(
        "[passkey] replaying the sign-in -> {}",
        replay.map_or_else(|e| e.to_string(), |_| "accepted".to_owned())
    );
    Ok(())
}

/// 2-man rule: the backend keeps the user's key, the (local) SSKS keeps the encrypted identity
/// and releases it only after the emailed challenge; the client does the crypto.
#[cfg(feature = "ssks")]
async fn two_man_rule_step() -> Result<(), keyward::Error> {
    use keyward::keysplit::local::LocalKeySplitStore;
    use keyward::keysplit::{
        AuthFactor, ChallengeRequest, KeyKind, TwoManRuleBackend, TwoManRuleClient, TwoManRuleKeys,
    };
    use keyward::otp::Outbox;

    const APP_ID: &str = "00000000-0000-1000-a000-7ea300000001";
    // SSKS side: its own state, challenges "emailed" into an in-memory outbox.
    let outbox = Outbox::new();
    let ssks: Arc<dyn keyward::KeySplitStore> = Arc::new(LocalKeySplitStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(outbox.clone()),
    ));
    // Backend side: per-user keys in the backend's own store.
    let keys = TwoManRuleKeys::new(Arc::new(MemoryStore::new()), APP_ID, KeyKind::Free)?;
    let backend = TwoManRuleBackend::new(ssks.clone(), keys);
    let client = TwoManRuleClient::new(ssks, APP_ID);

    let request = || -> Result<ChallengeRequest, keyward::Error> {
        Ok(ChallengeRequest::new(
            "user-42",
            AuthFactor::email(" Alice@Example.com ")?,
            "Your code: $$CHALLENGE$$",
        )
        .subject("Confirm your identity"))
    };
    let first = backend.session(request()?).await?;
    println!(
        "[2mr] first session: must_authenticate = {}, key kind = {:?}",
        first.must_authenticate,
        first.two_man_rule_key.kind()
    );
    let id = client
        .save_identity(&first, None, b"seald identity bytes")
        .await?;
    println!("[2mr] identity saved on SSKS, id = {id}");

    let second = backend.session(request()?).await?;
    let challenge = outbox
        .last_code_to("alice@example.com")
        .ok_or_else(|| keyward::Error::storage("no challenge was sent"))?;
    println!(
        "[2mr] second session: must_authenticate = {}, challenge emailed ({} chars)",
        second.must_authenticate,
        challenge.len()
    );
    let retrieved = client.retrieve_identity(&second, Some(&challenge)).await?;
    println!(
        "[2mr] retrieved {} bytes, matches = {}, re-encrypted = {}",
        retrieved.identity.len(),
        retrieved.identity.expose() == b"seald identity bytes",
        retrieved.reencrypted
    );
    println!("[2mr] session Debug output: {second:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. One-time passcodes on the self-hosted provider (no Twilio account needed).

/// Delivers every code twice: to the console (what a developer sees) and to an outbox (what
/// this example reads back, standing in for the user typing the code from their phone).
#[derive(Debug)]
struct ConsoleAndOutbox {
    console: keyward::otp::ConsoleSender,
    outbox: keyward::otp::Outbox,
}

#[async_trait::async_trait]
impl keyward::otp::CodeSender for ConsoleAndOutbox {
    async fn send(&self, message: &keyward::otp::OutgoingMessage) -> keyward::Result<()> {
        self.console.send(message).await?;
        self.outbox.send(message).await
    }
}

async fn otp_step(store: Arc<dyn StateStore>, clock: Arc<ManualClock>) -> keyward::Result<()> {
    use keyward::OtpProvider;
    use keyward::otp::{
        Channel, CheckCode, ConsoleSender, LocalOtpProvider, Outbox, StartVerification,
    };

    let outbox = Outbox::new();
    let sender = Arc::new(ConsoleAndOutbox {
        console: ConsoleSender,
        outbox: outbox.clone(),
    });
    // The server secret keys every stored code hash: in production, 32 random bytes kept in
    // your secret manager and shared by every instance.
    let server_secret = Secret::new(keyward::random_array::<32>(&keyward::SystemRandom::new())?);
    let otp = LocalOtpProvider::builder(store, sender, server_secret)
        .env(Env::system().with_clock(clock.clone()))
        .build()?;

    let v = otp
        .start(StartVerification::new("+1 (501) 712-2661", Channel::Sms))
        .await?;
    let valid_for = v
        .expires_at
        .and_then(|t| t.duration_since(keyward::Clock::now(clock.as_ref())).ok())
        .unwrap_or_default();
    println!(
        "[otp] code sent to {} by {}: status {}, valid for {} s",
        v.masked_to(),
        v.channel,
        v.status,
        valid_for.as_secs()
    );

    let wrong = otp.check(CheckCode::sid(&v.sid, "000000x")).await?;
    println!(
        "[otp] wrong code -> approved = {}, status {}",
        wrong.verification().valid,
        wrong.verification().status
    );

    let code = outbox
        .last_code_to(&v.to)
        .ok_or_else(|| keyward::Error::new(keyward::ErrorKind::NotFound, "no code delivered"))?;
    match otp
        .check(CheckCode::sid(&v.sid, code.clone()))
        .await?
        .approved()
    {
        Some(proof) => println!(
            "[otp] right code -> approved for {}",
            proof.verification().masked_to()
        ),
        None => println!("[otp] right code -> not approved"),
    }

    let again = otp.check(CheckCode::sid(&v.sid, code)).await;
    println!(
        "[otp] same code again -> {}",
        again.map_or_else(|e| e.kind().to_string(), |_| "accepted".to_owned())
    );
    Ok(())
}

// --- video room gate (issue #4): seed 000's flow, login -> code -> verify -> token ---
#[cfg(feature = "twilio")]
mod video_gate {
    use std::sync::Arc;

    use keyward::otp::{ConsoleSender, LocalOtpProvider, Outbox};
    use keyward::store::MemoryStore;
    use keyward::twilio::TwilioCredentials;
    use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
    use keyward::video::twilio::{AccessTokenVerifier, TwilioAccessTokenIssuer};
    use keyward::{Env, ManualClock, Secret};

    use super::ConsoleAndOutbox;

    pub(crate) async fn run() -> keyward::Result<()> {
        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let env = Env::system().with_clock(clock.clone());
        let store = Arc::new(MemoryStore::new().env(env.clone()));
        let outbox = Outbox::new();
        let sender = ConsoleAndOutbox {
            console: ConsoleSender,
            outbox: outbox.clone(),
        };
        let otp = LocalOtpProvider::builder(
            store.clone(),
            Arc::new(sender),
            Secret::new(*b"quickstart-demo-otp-secret-32byt"),
        )
        .env(env.clone())
        .build()?;
        // A TEST key: tokens signed with it are printed in full below. Never print real ones.
        let key = TwilioCredentials::api_key(
            "AC00000000000000000000000000000000",
            "SK00000000000000000000000000000000",
            "quickstart-test-secret-not-real!",
        )?;
        let issuer = TwilioAccessTokenIssuer::new(key.clone())?.env(env.clone());
        let directory = MemoryDirectory::new()
            .with("blathers", Contact::phone("+18005559876"))
            .with("mabel", Contact::phone("+18005554321"))
            .with("tommy", Contact::phone("+18005556789"));
        let gate = RoomGate::builder(Arc::new(directory), Arc::new(otp), Arc::new(issuer), store)
            .room("My Room")
            .build()?;

        let challenge = gate.login("mabel").await?;
        println!(
            "[video] login mabel -> code sent by {} to {}",
            challenge.channel, challenge.masked_destination
        );
        let unknown = gate.login("mallory").await?;
        println!(
            "[video] login mallory (not invited) -> same answer shape: {} {}, nothing sent",
            unknown.channel, unknown.masked_destination
        );
        let wrong = gate.verify("mallory", "123456").await.map(|_| ());
        println!("[video] verify mallory -> {wrong:?}");

        let code = outbox
            .last_code_to("+18005554321")
            .ok_or_else(|| keyward::Error::invalid_input("no code was sent"))?;
        let code = code.expose_str().unwrap_or_default().to_owned();
        let token = gate.verify("mabel", &code).await?;
        println!("[video] verify mabel with the code -> access token (test key):");
        println!("{}", token.jwt());
        let decoded = AccessTokenVerifier::new(key)?
            .env(env)
            .verify(token.jwt())?;
        println!("[video] header  {}", decoded.header_json());
        println!("[video] payload {}", decoded.payload_json());
        let replay = gate.verify("mabel", &code).await.map(|_| ());
        println!("[video] replaying the same code -> {replay:?}");
        Ok(())
    }
}
// --- end video room gate ---
