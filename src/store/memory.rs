//! The in-memory [`StateStore`]: one mutex over a hash map, expiry by the injected clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{CasOutcome, Entry, StateStore, Ttl, Write};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// Bounds that keep an in-memory store from growing without limit under attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreLimits {
    /// Maximum number of live entries; writes that would create more fail with a storage error.
    pub max_entries: usize,
    /// Maximum key length in bytes.
    pub max_key_len: usize,
    /// Maximum value length in bytes.
    pub max_value_len: usize,
}

impl Default for MemoryStoreLimits {
    fn default() -> Self {
        MemoryStoreLimits {
            max_entries: 1_000_000,
            max_key_len: 512,
            max_value_len: 1 << 20,
        }
    }
}

#[derive(Debug)]
struct Slot {
    value: Vec<u8>,
    version: u64,
    expires_at: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Slot>,
    next_version: u64,
    writes_since_sweep: usize,
}

/// An in-memory [`StateStore`], always compiled: the default for development, tests and
/// single-process deployments.
///
/// All operations take one short mutex, so they are atomic with respect to each other. Expired
/// entries are invisible at once (checked against the injected [`Clock`]) and are swept from
/// memory as writes go by. State is lost when the process exits; use a shared store for several
/// processes.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::sync::Arc;
/// use keyward::store::{MemoryStore, StateStore};
/// let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
/// assert_eq!(store.increment("attempts:ve1", 1, None).await?, 1);
/// assert_eq!(store.increment("attempts:ve1", 1, None).await?, 2);
/// # Ok::<(), keyward::Error>(()) });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
    limits: MemoryStoreLimits,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A store on the system clock with default limits.
    pub fn new() -> Self {
        MemoryStore::with_clock(Arc::new(SystemClock))
    }

    /// A store whose expiry follows `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            inner: Arc::new(Mutex::new(Inner::default())),
            clock,
            limits: MemoryStoreLimits::default(),
        }
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: MemoryStoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Number of live (unexpired) entries.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.lock()
            .map(|inner| inner.map.values().filter(|s| is_live(s, now)).count())
            .unwrap_or(0)
    }

    /// Whether the store holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        // A panic while holding the lock cannot leave a slot half-written (every mutation is a
        // single map operation), so a poisoned lock is safe to keep using.
        Ok(self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn check(&self, key: &str, value_len: usize) -> Result<()> {
        if key.is_empty() || key.len() > self.limits.max_key_len {
            return Err(Error::storage("key is empty or too long"));
        }
        if value_len > self.limits.max_value_len {
            return Err(Error::storage("value too large for the store"));
        }
        Ok(())
    }

    fn expiry(&self, now: SystemTime, ttl: Option<Duration>) -> Option<SystemTime> {
        ttl.map(|d| now.checked_add(d).unwrap_or(now))
    }
}

fn is_live(slot: &Slot, now: SystemTime) -> bool {
    slot.expires_at.is_none_or(|t| now < t)
}

impl Inner {
    fn live(&mut self, key: &str, now: SystemTime) -> Option<&mut Slot> {
        let expired = self.map.get(key).is_some_and(|s| !is_live(s, now));
        if expired {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Inserts a new slot after enforcing the entry limit; sweeps expired slots periodically.
    fn create(
        &mut self,
        key: &str,
        slot: Slot,
        now: SystemTime,
        limits: &MemoryStoreLimits,
    ) -> Result<()> {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= 1024 || self.map.len() >= limits.max_entries {
            self.map.retain(|_, s| is_live(s, now));
            self.writes_since_sweep = 0;
        }
        if self.map.len() >= limits.max_entries {
            return Err(Error::storage("memory store is full"));
        }
        self.map.insert(key.to_owned(), slot);
        Ok(())
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        let now = self.clock.now();
        let mut inner = self.lock()?;
        Ok(inner.live(key, now).map(|s| Entry {
            value: s.value.clone(),
            version: s.version,
            expires_at: s.expires_at,
        }))
    }

    async fn insert(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<u64>> {
        self.check(key, value.len())?;
        let now = self.clock.now();
        let mut inner = self.lock()?;
        if inner.live(key, now).is_some() {
            return Ok(None);
        }
        let version = inner.version();
        let slot = Slot {
            value,
            version,
            expires_at: self.expiry(now, ttl),
        };
        inner.create(key, slot, now, &self.limits)?;
        Ok(Some(version))
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<u64> {
        self.check(key, value.len())?;
        let now = self.clock.now();
        let mut inner = self.lock()?;
        let version = inner.version();
        let expires_at = self.expiry(now, ttl);
        if let Some(slot) = inner.live(key, now) {
            *slot = Slot {
                value,
                version,
                expires_at,
            };
        } else {
            let slot = Slot {
                value,
                version,
                expires_at,
            };
            inner.create(key, slot, now, &self.limits)?;
        }
        Ok(version)
    }

    async fn compare_and_swap(&self, key: &str, expected: u64, write: Write) -> Result<CasOutcome> {
        if let Write::Set { value, .. } = &write {
            self.check(key, value.len())?;
        }
        let now = self.clock.now();
        let mut inner = self.lock()?;
        let version = inner.version();
        let Some(slot) = inner.live(key, now) else {
            return Ok(CasOutcome::Conflict);
        };
        if slot.version != expected {
            return Ok(CasOutcome::Conflict);
        }
        match write {
            Write::Set { value, ttl } => {
                slot.value = value;
                slot.version = version;
                slot.expires_at = match ttl {
                    Ttl::Keep => slot.expires_at,
                    Ttl::Never => None,
                    Ttl::After(d) => self.expiry(now, Some(d)),
                };
                Ok(CasOutcome::Swapped { version })
            }
            Write::Delete => {
                inner.map.remove(key);
                Ok(CasOutcome::Swapped { version: 0 })
            }
        }
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.clock.now();
        let mut inner = self.lock()?;
        if inner.live(key, now).is_none() {
            return Ok(None);
        }
        Ok(inner.map.remove(key).map(|s| s.value))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let now = self.clock.now();
        let mut inner = self.lock()?;
        if inner.live(key, now).is_none() {
            return Ok(false);
        }
        Ok(inner.map.remove(key).is_some())
    }

    async fn increment(&self, key: &str, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        self.check(key, 20)?;
        let now = self.clock.now();
        let mut inner = self.lock()?;
        let version = inner.version();
        if let Some(slot) = inner.live(key, now) {
            let current: u64 = std::str::from_utf8(&slot.value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::storage("increment on a value that is not a counter"))?;
            let next = current
                .checked_add(delta)
                .ok_or_else(|| Error::storage("counter overflow"))?;
            slot.value = next.to_string().into_bytes();
            slot.version = version;
            return Ok(next);
        }
        let slot = Slot {
            value: delta.to_string().into_bytes(),
            version,
            expires_at: self.expiry(now, ttl),
        };
        inner.create(key, slot, now, &self.limits)?;
        Ok(delta)
    }
}
