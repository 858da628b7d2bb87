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
    Ok(())
}
