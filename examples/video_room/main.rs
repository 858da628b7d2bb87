//! keyward video room: the seed flows in a browser, on the embedded defaults.
//!
//! ```text
//! cargo run --example video_room            # an ephemeral port
//! PORT=8080 cargo run --example video_room  # a fixed one
//! ```
//!
//! Open the printed `http://localhost:<port>/` (passkeys need the `localhost` name, not
//! `127.0.0.1`). The self-hosted OTP provider prints each code on this console.

mod app;

use std::sync::Arc;

use keyward::SystemRandom;
use keyward::store::{MemoryStore, StateStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|e| format!("PORT={p:?}: {e}"))?,
        Err(_) => 0,
    };
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let state = app::AppState::new(store, Arc::new(SystemRandom::new()));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("keyward video room on http://localhost:{}/", addr.port());
    eprintln!("[video_room] {state:?}");
    axum::serve(listener, app::router(state)).await?;
    Ok(())
}
