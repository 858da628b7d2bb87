//! State storage: every piece of mutable state a backend keeps goes through a [`StateStore`].
//!
//! Pending one-time codes and their attempt counters, WebAuthn ceremony challenges, registered
//! credentials, per-user 2-man-rule keys and SSKS sessions are all entries of one key-value store
//! with four properties a backend relies on:
//!
//! - **expiry**: an entry written with a TTL is gone once the store's clock passes it;
//! - **atomic compare-and-swap**: every entry has a version; a write conditioned on the version
//!   fails if anyone wrote in between, so read-modify-write cycles never lose an update;
//! - **atomic increment**: counters go up by exactly the amount asked, however many tasks race;
//! - **atomic take**: read-and-delete in one step, so a single-use item is handed out once.
//!
//! Values are opaque bytes; keys are UTF-8 strings that backends namespace with a prefix
//! (`otp:`, `webauthn:`, `tmr:`, `ssks:`). The operations map one-to-one onto Redis
//! (`GET`/`SET NX PX`/`WATCH`+`MULTI` or a Lua script for CAS, `GETDEL`, `INCRBY`+`PEXPIRE`), so a
//! Redis-backed store can be added without changing any backend. [`MemoryStore`] is the
//! always-compiled in-memory implementation.
//!
//! [`update_json`] is the read-modify-write loop backends use on top of compare-and-swap.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub use memory::{MemoryStore, MemoryStoreLimits};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresConfig, PostgresStore};
#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};

/// One stored value with its version and expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// Changes on every write; compare-and-swap is conditioned on it. Versions are never reused
    /// for the same key, even after a delete.
    pub version: u64,
    /// When the entry expires, if it does.
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for Entry {
    // Values may hold hashed codes or keys: show only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("version", &self.version)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Expiry to apply when a write succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Keep the entry's current expiry (none if it is new).
    Keep,
    /// Never expire.
    Never,
    /// Expire this long after the write, by the store's clock.
    After(Duration),
}

/// The write a compare-and-swap performs when the version matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store these bytes with this expiry.
    Set {
        /// New value.
        value: Vec<u8>,
        /// Expiry of the new value.
        ttl: Ttl,
    },
    /// Remove the entry.
    Delete,
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The write happened; for a `Set`, the entry's new version.
    Swapped {
        /// The new version (0 after a delete).
        version: u64,
    },
    /// Someone else wrote first (or the entry expired); nothing was changed.
    Conflict,
}

/// A key-value store with expiry and atomic operations; see the [module docs](self).
///
/// Every method is atomic with respect to every other call on the same store. Expired entries
/// behave exactly like absent ones.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Reads an entry.
    async fn get(&self, key: &str) -> Result<Option<Entry>>;

    /// Writes `value` only if `key` is absent (or expired). Returns the new version, or `None`
    /// if the key already held a live entry.
    async fn insert(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>)
    -> Result<Option<u64>>;

    /// Writes `value` unconditionally, replacing any entry. Returns the new version.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<u64>;

    /// Performs `write` only if the entry's current version is `expected`. An absent or expired
    /// entry never matches.
    async fn compare_and_swap(&self, key: &str, expected: u64, write: Write) -> Result<CasOutcome>;

    /// Reads and removes an entry in one atomic step. Of many concurrent takers of one key,
    /// exactly one gets the value.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Removes an entry. Returns whether a live entry was removed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Adds `delta` to the counter at `key` and returns the new value. A missing (or expired)
    /// counter starts at 0 and gets `ttl`; an existing counter keeps its expiry. Fails with
    /// [`ErrorKind::Storage`](crate::ErrorKind::Storage) if the key holds a non-counter value.
    async fn increment(&self, key: &str, delta: u64, ttl: Option<Duration>) -> Result<u64>;
}

/// What an [`update_json`] closure decides to do with the current value.
#[derive(Debug)]
pub enum Update<T, R> {
    /// Store `T` with the given expiry and return `R`.
    Set(T, Ttl, R),
    /// Remove the entry and return `R`.
    Delete(R),
    /// Change nothing and return `R`.
    Keep(R),
}

/// Maximum compare-and-swap retries in [`update_json`] before it gives up with a storage error.
pub const MAX_CAS_RETRIES: usize = 64;

/// Atomically reads, transforms and writes a JSON-encoded value.
///
/// `f` receives the current value (`None` when absent or expired) and decides what to do; if
/// another writer got in between, `f` runs again on the fresh value. `f` must therefore be free
/// of side effects other than computing its decision. Errors returned by `f` abort the update
/// with nothing written.
pub async fn update_json<T, R, F>(store: &dyn StateStore, key: &str, mut f: F) -> Result<R>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Result<Update<T, R>>,
{
    for _ in 0..MAX_CAS_RETRIES {
        let current = store.get(key).await?;
        let (version, value) = match &current {
            Some(entry) => (Some(entry.version), Some(decode_json::<T>(&entry.value)?)),
            None => (None, None),
        };
        let (write, result) = match f(value)? {
            Update::Keep(r) => return Ok(r),
            Update::Set(v, ttl, r) => (
                Write::Set {
                    value: encode_json(&v)?,
                    ttl,
                },
                r,
            ),
            Update::Delete(r) => (Write::Delete, r),
        };
        let done = match (version, write) {
            (Some(v), write) => {
                matches!(
                    store.compare_and_swap(key, v, write).await?,
                    CasOutcome::Swapped { .. }
                )
            }
            (None, Write::Delete) => true,
            (None, Write::Set { value, ttl }) => {
                let ttl = match ttl {
                    Ttl::After(d) => Some(d),
                    Ttl::Keep | Ttl::Never => None,
                };
                store.insert(key, value, ttl).await?.is_some()
            }
        };
        if done {
            return Ok(result);
        }
    }
    Err(Error::storage(
        "too much contention on one key: compare-and-swap kept failing",
    ))
}

/// Reads a JSON-encoded value.
pub async fn get_json<T: DeserializeOwned>(store: &dyn StateStore, key: &str) -> Result<Option<T>> {
    match store.get(key).await? {
        Some(entry) => Ok(Some(decode_json(&entry.value)?)),
        None => Ok(None),
    }
}

/// Serializes a value for storage.
pub fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::storage(format!("cannot encode stored value: {e}")))
}

/// Deserializes a stored value.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::storage(format!("stored value does not decode: {e}")))
}
