//! Where the demo keeps its state: `REDIS_URL` and `DATABASE_URL` when set, else in memory.
//!
//! | set | ephemeral state (ceremonies, codes, sessions) | durable records (passkeys, 2-man-rule keys, identities) |
//! | --- | --- | --- |
//! | neither | memory | memory |
//! | `REDIS_URL` | Redis | Redis (give it AOF persistence: see docs/deployment.md) |
//! | `DATABASE_URL` | PostgreSQL | PostgreSQL |
//! | both | Redis | PostgreSQL |
//!
//! The local SSKS follows: on a shared store it keeps its sessions, challenges and encrypted
//! identities there too (under its own `ssks` keys), so every demo process's SSKS answers for
//! every session and identity; on the embedded default it keeps them in a memory store of its
//! own, apart from the backend's (two servers, two halves of the 2-man rule).
//!
//! Redis and PostgreSQL need the `redis` / `postgres` features (`--all-features` has both).

use std::sync::Arc;

use keyward::store::{MemoryStore, StateStore};

/// The demo's stores and a line saying what they are (no passwords).
#[derive(Debug, Clone)]
pub(crate) struct DemoStores {
    /// Sessions, codes, passkeys and the backend's 2-man-rule keys.
    pub(crate) app: Arc<dyn StateStore>,
    /// The local SSKS's sessions and identities: `app` itself when it is shared, else a memory
    /// store of its own.
    pub(crate) ssks: Arc<dyn StateStore>,
    /// What they are, for the console.
    pub(crate) description: String,
}

/// Key prefix (Redis) and schema (PostgreSQL) of the demo's state.
pub(crate) const NAMESPACE: &str = "keyward_demo";

/// The stores `REDIS_URL` and `DATABASE_URL` name.
pub(crate) async fn from_env() -> Result<DemoStores, Box<dyn std::error::Error>> {
    connect(
        std::env::var("REDIS_URL").ok(),
        std::env::var("DATABASE_URL").ok(),
        NAMESPACE,
    )
    .await
}

/// The stores for these URLs, with the Redis key prefix `{namespace}:` and the PostgreSQL
/// schema `namespace`.
pub(crate) async fn connect(
    redis_url: Option<String>,
    database_url: Option<String>,
    namespace: &str,
) -> Result<DemoStores, Box<dyn std::error::Error>> {
    let redis = redis(redis_url, namespace).await?;
    let postgres = postgres(database_url, namespace).await?;
    let shared = |app: Arc<dyn StateStore>, description: String| DemoStores {
        ssks: app.clone(),
        app,
        description: format!("{description}; local SSKS on the same store"),
    };
    Ok(match (redis, postgres) {
        (None, None) => DemoStores {
            app: Arc::new(MemoryStore::new()),
            ssks: Arc::new(MemoryStore::new()),
            description: "memory; local SSKS in a memory store of its own".to_owned(),
        },
        (Some((r, d)), None) => shared(r, d),
        (None, Some((p, d))) => shared(p, d),
        (Some((r, rd)), Some((p, pd))) => shared(
            Arc::new(keyward::store::Stores::split(r, p)),
            format!("ephemeral on {rd}, durable on {pd}"),
        ),
    })
}

type Found = Option<(Arc<dyn StateStore>, String)>;

#[cfg(feature = "redis")]
async fn redis(url: Option<String>, namespace: &str) -> Result<Found, Box<dyn std::error::Error>> {
    use keyward::store::{RedisConfig, RedisStore};
    let Some(url) = url else {
        return Ok(None);
    };
    let store = RedisStore::connect(RedisConfig::new(url).prefix(format!("{namespace}:"))).await?;
    let description = format!("{store:?}");
    Ok(Some((Arc::new(store), description)))
}

#[cfg(not(feature = "redis"))]
async fn redis(url: Option<String>, _namespace: &str) -> Result<Found, Box<dyn std::error::Error>> {
    if url.is_some() {
        return Err("REDIS_URL is set: build the demo with --features redis".into());
    }
    Ok(None)
}

#[cfg(feature = "postgres")]
async fn postgres(
    url: Option<String>,
    namespace: &str,
) -> Result<Found, Box<dyn std::error::Error>> {
    use keyward::store::{PostgresConfig, PostgresStore};
    let Some(url) = url else {
        return Ok(None);
    };
    let store = PostgresStore::connect(PostgresConfig::new(url).schema(namespace)).await?;
    let description = format!("{store:?}");
    Ok(Some((Arc::new(store), description)))
}

#[cfg(not(feature = "postgres"))]
async fn postgres(
    url: Option<String>,
    _namespace: &str,
) -> Result<Found, Box<dyn std::error::Error>> {
    if url.is_some() {
        return Err("DATABASE_URL is set: build the demo with --features postgres".into());
    }
    Ok(None)
}
