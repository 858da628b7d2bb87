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

    otp_step(store.clone(), clock.clone()).await?;
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
        .clock(clock.clone())
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
