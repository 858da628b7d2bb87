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

    // 6. The 2-man rule on the local SSKS (see two_man_rule_step below).
    #[cfg(feature = "ssks")]
    two_man_rule_step().await?;
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
        "[2mr] retrieved {} bytes, matches = {}, renewed = {}",
        retrieved.identity.len(),
        retrieved.identity.expose() == b"seald identity bytes",
        retrieved.renewed
    );
    println!("[2mr] session Debug output: {second:?}");
    Ok(())
}
