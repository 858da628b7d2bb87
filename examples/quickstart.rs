//! keyward quickstart: runs on the embedded defaults, no Twilio or Seald account needed.
//!
//! `cargo run --example quickstart`
//!
//! Each capability adds its step here as it lands; every value printed is computed for real.

use std::sync::Arc;
use std::time::Duration;

use keyward::store::{MemoryStore, StateStore};
use keyward::{ManualClock, Secret, normalize};

#[tokio::main]
async fn main() -> Result<(), keyward::Error> {
    println!("== keyward quickstart ==");

    // The state store every backend keeps its state in, on an injected clock.
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::with_clock(clock.clone()));

    // 1. Atomic counters: 100 concurrent tasks, each counting one attempt.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.increment("demo:attempts", 1, None).await
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| keyward::Error::storage("task failed").with_source(e))??;
    }
    let counted = store.increment("demo:attempts", 0, None).await?;
    println!("[store] 100 concurrent increments -> counter = {counted}");

    // 2. Single use: a challenge can be taken once.
    store
        .put(
            "demo:challenge",
            b"c-123".to_vec(),
            Some(Duration::from_secs(300)),
        )
        .await?;
    let first = store.take("demo:challenge").await?.is_some();
    let second = store.take("demo:challenge").await?.is_some();
    println!("[store] take challenge: first = {first}, second = {second}");

    // 3. Expiry follows the injected clock.
    store
        .put(
            "demo:code",
            b"hashed".to_vec(),
            Some(Duration::from_secs(600)),
        )
        .await?;
    clock.advance(Duration::from_secs(599));
    let alive = store.get("demo:code").await?.is_some();
    clock.advance(Duration::from_secs(1));
    let after = store.get("demo:code").await?.is_some();
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

    // --- video room gate (issue #4) ---
    #[cfg(feature = "twilio")]
    video_gate::run().await?;
    // --- end video room gate ---
    Ok(())
}

// --- video room gate (issue #4): seed 000's flow, login -> code -> verify -> token ---
#[cfg(feature = "twilio")]
mod video_gate {
    use std::sync::Arc;

    use async_trait::async_trait;
    use keyward::otp::{CodeSender, ConsoleSender, LocalOtpProvider, Outbox, OutgoingMessage};
    use keyward::store::MemoryStore;
    use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
    use keyward::video::twilio::{AccessTokenVerifier, TwilioAccessTokenIssuer, TwilioApiKey};
    use keyward::{ManualClock, Secret};

    /// Prints each code like the console sender and keeps it so the demo can type it in.
    #[derive(Debug, Clone, Default)]
    struct PrintAndKeep {
        outbox: Outbox,
    }

    #[async_trait]
    impl CodeSender for PrintAndKeep {
        async fn send(&self, message: &OutgoingMessage) -> keyward::Result<()> {
            ConsoleSender.send(message).await?;
            self.outbox.send(message).await
        }
    }

    pub(crate) async fn run() -> keyward::Result<()> {
        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let sender = PrintAndKeep::default();
        let otp = LocalOtpProvider::builder(
            store.clone(),
            Arc::new(sender.clone()),
            Secret::new(*b"quickstart-demo-otp-secret-32byt"),
        )
        .clock(clock.clone())
        .build()?;
        // A TEST key: tokens signed with it are printed in full below. Never print real ones.
        let key = TwilioApiKey::new(
            "AC00000000000000000000000000000000",
            "SK00000000000000000000000000000000",
            "quickstart-test-secret-not-real!",
        )?;
        let issuer = TwilioAccessTokenIssuer::new(key.clone()).with_clock(clock.clone());
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

        let code = sender
            .outbox
            .last_code_to("+18005554321")
            .ok_or_else(|| keyward::Error::invalid_input("no code was sent"))?;
        let code = code.expose_str().unwrap_or_default().to_owned();
        let token = gate.verify("mabel", &code).await?;
        println!("[video] verify mabel with the code -> access token (test key):");
        println!("{}", token.jwt());
        let decoded = AccessTokenVerifier::new(key)
            .with_clock(clock)
            .verify(token.jwt())?;
        println!("[video] header  {}", decoded.header_json());
        println!("[video] payload {}", decoded.payload_json());
        let replay = gate.verify("mabel", &code).await.map(|_| ());
        println!("[video] replaying the same code -> {replay:?}");
        Ok(())
    }
}
// --- end video room gate ---
