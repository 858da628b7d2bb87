//! Where the demo keeps its state: `REDIS_URL` and `DATABASE_URL` when set, else in memory.
//!
//! | set | ephemeral state (ceremonies, codes, sessions) | durable records (passkeys, 2-man-rule keys, identities) |
//! | --- | --- | --- |
//! | neither | memory | memory |
//! | `REDIS_URL` | Redis | Redis (give it AOF persistence: see docs/deployment.md) |
//! | `DATABASE_URL` | PostgreSQL | PostgreSQL |
//! | both | Redis | PostgreSQL |
//!
//! Redis and PostgreSQL need the `redis` / `postgres` features (`--all-features` has both).

use std::sync::Arc;

use keyward::store::{MemoryStore, StateStore};

/// The store for the environment, and a line saying what it is (no passwords).
pub(crate) async fn from_env() -> Result<(Arc<dyn StateStore>, String), Box<dyn std::error::Error>>
{
    let redis = redis().await?;
    let postgres = postgres().await?;
    Ok(match (redis, postgres) {
        (None, None) => (Arc::new(MemoryStore::new()), "memory".to_owned()),
        (Some((r, d)), None) => (r, d),
        (None, Some((p, d))) => (p, d),
        (Some((r, rd)), Some((p, pd))) => (
            Arc::new(keyward::store::Stores::split(r, p)),
            format!("ephemeral on {rd}, durable on {pd}"),
        ),
    })
}

type Found = Option<(Arc<dyn StateStore>, String)>;

#[cfg(feature = "redis")]
async fn redis() -> Result<Found, Box<dyn std::error::Error>> {
    use keyward::store::{RedisConfig, RedisStore};
    let Ok(url) = std::env::var("REDIS_URL") else {
        return Ok(None);
    };
    let store = RedisStore::connect(RedisConfig::new(url).prefix("keyward-demo:")).await?;
    let description = format!("{store:?}");
    Ok(Some((Arc::new(store), description)))
}

#[cfg(not(feature = "redis"))]
async fn redis() -> Result<Found, Box<dyn std::error::Error>> {
    if std::env::var_os("REDIS_URL").is_some() {
        return Err("REDIS_URL is set: build the demo with --features redis".into());
    }
    Ok(None)
}

#[cfg(feature = "postgres")]
async fn postgres() -> Result<Found, Box<dyn std::error::Error>> {
    use keyward::store::{PostgresConfig, PostgresStore};
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Ok(None);
    };
    let store = PostgresStore::connect(PostgresConfig::new(url).schema("keyward_demo")).await?;
    let description = format!("{store:?}");
    Ok(Some((Arc::new(store), description)))
}

#[cfg(not(feature = "postgres"))]
async fn postgres() -> Result<Found, Box<dyn std::error::Error>> {
    if std::env::var_os("DATABASE_URL").is_some() {
        return Err("DATABASE_URL is set: build the demo with --features postgres".into());
    }
    Ok(None)
}
