//! State storage: every piece of mutable state a backend keeps goes through a [`StateStore`].
//!
//! # The contract
//!
//! A [`StateStore`] is a key-value store with expiry and five atomic operations. **Every
//! operation touches exactly one key**, so each maps onto one Redis (Cluster) command or script
//! on one slot, and onto one SQL statement on one row. No keyward rule needs two keys to change
//! together: where a flow writes two keys, the second is a hint or a counter whose loss or
//! duplication is harmless (the per-rule layout is in `docs/architecture.md`).
//!
//! - **expiry**: an entry written with a TTL is gone once the store's own clock passes it
//!   (the injected [`Clock`](crate::Clock) for [`MemoryStore`], the server's clock for a shared
//!   engine). Expired entries behave exactly like absent ones for every operation. A TTL is at
//!   least one millisecond (backends may round up to whole milliseconds); a zero TTL is refused
//!   with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
//! - **versions** ([`Version`]): every write gives the key a new version; see [`Version`] for
//!   exactly what is promised.
//! - **compare-and-swap**: a write conditioned on the version read, so read-modify-write loops
//!   never lose an update;
//! - **increment**: counters go up by exactly the amount asked, however many callers race;
//! - **take**: read-and-delete in one step, so a single-use item is handed out once.
//!
//! Keys are [`Key`]s, bounded by construction (long or binary parts are hashed into the key) and
//! tagged with a [`Role`]: *ephemeral* (challenges, counters, sessions, decoys: short TTLs) or
//! *durable* (credentials, 2-man-rule keys, stored identities). A host gives every backend one
//! `Arc<dyn StateStore>`; to put each role on its own engine it passes a [`Stores`] bundle, which
//! routes each key by its role.
//!
//! Values are opaque bytes. keyward's own records use a compact, versioned binary encoding
//! (decoded once per operation, readable by later releases); [`StateStoreExt`] adds JSON
//! conveniences for hosts that keep their own state in the same store.
//!
//! A new backend proves itself with the exported conformance suite,
//! `keyward::testing::conformance` (feature `testing`).

mod ext;
mod key;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod record;
#[cfg(feature = "redis")]
mod redis;
mod roles;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresConfig, PostgresStore};
#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};
pub use ext::{MAX_CAS_RETRIES, StateStoreExt, Update, decode_json, encode_json};
pub use key::{Key, Role};
pub use memory::{MemoryStore, MemoryStoreLimits};
pub use roles::Stores;

/// The version of one key's current value: an opaque token.
///
/// What a version promises:
///
/// - every successful write of a key (insert, put, a compare-and-swap that sets, increment) gives
///   it a version different from every version that key has had before, including before a
///   delete or an expiry (a backend may use a global sequence, a per-key counter that survives
///   deletes, or 64 random bits, whose chance of a repeat is negligible);
/// - [`StateStore::compare_and_swap`] with version `v` succeeds exactly when the key's live value
///   is still the one that was written with `v`;
/// - nothing else: versions of different keys are unrelated, versions are not ordered, not
///   counts, and not comparable across stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u64);

impl Version {
    /// A version from a backend's raw representation (for backend implementors).
    pub const fn from_raw(raw: u64) -> Version {
        Version(raw)
    }

    /// The raw representation (for backend implementors: store it, pass it back to
    /// [`Version::from_raw`]).
    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:#x})", self.0)
    }
}

/// One stored value with its version.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The version of this value; compare-and-swap is conditioned on it.
    pub version: Version,
}

impl fmt::Debug for Entry {
    // Values may hold hashed codes or keys: show only their size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("version", &self.version)
            .finish()
    }
}

/// Expiry to apply when a compare-and-swap sets a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Keep the entry's current expiry.
    Keep,
    /// Never expire.
    Never,
    /// Expire this long after the write, by the store's clock.
    After(Duration),
}

/// The write a compare-and-swap performs when the version matches.
#[derive(Clone, PartialEq, Eq)]
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

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::Set { value, ttl } => f
                .debug_struct("Set")
                .field("value", &format_args!("<{} bytes>", value.len()))
                .field("ttl", ttl)
                .finish(),
            Write::Delete => f.write_str("Delete"),
        }
    }
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The write happened.
    Swapped {
        /// The value's new version (`None` after a delete).
        version: Option<Version>,
    },
    /// The key is absent, expired, or was written since `expected` was read; nothing changed.
    Conflict,
}

/// A key-value store with expiry and atomic single-key operations; see the
/// [module docs](self) for the contract.
///
/// Errors: [`ErrorKind::Storage`](crate::ErrorKind::Storage) when the engine fails, refuses a
/// write (full, value too large) or the connection is lost. After a storage error on a write the
/// write may or may not have landed; callers treat the outcome as unknown. Zero TTLs are
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput). No operation panics on any input.
///
/// The required methods are the minimum an engine implements; [`StateStoreExt`] (implemented for
/// every store) adds `delete`, JSON reads and the compare-and-swap update loop.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Reads a live entry.
    async fn get(&self, key: &Key) -> Result<Option<Entry>>;

    /// Writes `value` only if `key` is absent (or expired). Returns the new version, or `None`
    /// (and changes nothing) if the key holds a live entry. `ttl: None` never expires.
    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>>;

    /// Writes `value` unconditionally, replacing any entry and its expiry. Returns the new
    /// version.
    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version>;

    /// Performs `write` only if the key's live value still has version `expected`. An absent or
    /// expired entry never matches.
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome>;

    /// Reads and removes a live entry in one atomic step. Of many concurrent takers of one key,
    /// exactly one gets the value.
    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>>;

    /// Adds `delta` to the counter at `key` and returns the new value. A missing (or expired)
    /// counter starts at 0 and gets `ttl`; an existing counter keeps its expiry. Counters are
    /// stored as ASCII decimal (what Redis `INCRBY` keeps), so [`get`](Self::get) reads them as
    /// such. Fails with [`ErrorKind::Storage`](crate::ErrorKind::Storage) if the key holds a
    /// value that is not a decimal `u64`, or on overflow; nothing changes then.
    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64>;
}

/// Refuses a zero TTL: every backend calls this first so they all answer the same.
pub fn check_ttl(ttl: Option<Duration>) -> Result<()> {
    match ttl {
        Some(d) if d < Duration::from_millis(1) => Err(Error::invalid_input(
            "a ttl must be at least one millisecond",
        )),
        _ => Ok(()),
    }
}

/// [`check_ttl`] for a compare-and-swap's write.
pub fn check_write(write: &Write) -> Result<()> {
    match write {
        Write::Set {
            ttl: Ttl::After(d), ..
        } => check_ttl(Some(*d)),
        _ => Ok(()),
    }
}
