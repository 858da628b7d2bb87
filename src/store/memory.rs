//! The in-memory [`StateStore`]: one mutex over a hash map plus an expiry index, expiry by the
//! injected clock, a separate entry limit per [`Role`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{
    CasOutcome, Entry, Key, Role, StateStore, Ttl, Version, Write, check_ttl, check_write,
};
use crate::clock::{Clock, SystemClock};
use crate::env::Env;
use crate::error::{Error, Result};

/// Bounds that keep an in-memory store from growing without limit under attack.
///
/// Each role has its own entry budget: ephemeral state (which anonymous traffic can create:
/// challenges, counters, decoys) can never take the room durable records (credentials, keys,
/// identities) need, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStoreLimits {
    /// Maximum live [`Role::Ephemeral`] entries; writes that would create more fail with a
    /// storage error.
    pub max_ephemeral_entries: usize,
    /// Maximum live [`Role::Durable`] entries.
    pub max_durable_entries: usize,
    /// Maximum value length in bytes.
    pub max_value_len: usize,
}

impl Default for MemoryStoreLimits {
    fn default() -> Self {
        MemoryStoreLimits {
            max_ephemeral_entries: 1_000_000,
            max_durable_entries: 4_000_000,
            max_value_len: 1 << 20,
        }
    }
}

impl MemoryStoreLimits {
    /// The default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the ephemeral entry limit.
    pub fn max_ephemeral_entries(mut self, n: usize) -> Self {
        self.max_ephemeral_entries = n;
        self
    }

    /// Sets the durable entry limit.
    pub fn max_durable_entries(mut self, n: usize) -> Self {
        self.max_durable_entries = n;
        self
    }

    /// Sets the value size limit.
    pub fn max_value_len(mut self, n: usize) -> Self {
        self.max_value_len = n;
        self
    }

    fn max_entries(&self, role: Role) -> usize {
        match role {
            Role::Ephemeral => self.max_ephemeral_entries,
            Role::Durable => self.max_durable_entries,
        }
    }
}

/// Expired entries removed per write, so a mass expiry is spread over many writes rather than
/// stalling one (a write that would exceed a limit sweeps everything expired first).
const SWEEP_PER_WRITE: usize = 16;

#[derive(Debug)]
struct Slot {
    value: Vec<u8>,
    version: u64,
    role: Role,
    /// Expiry time and the slot's id in the expiry index.
    expiry: Option<(SystemTime, u64)>,
}

impl Slot {
    fn live(&self, now: SystemTime) -> bool {
        self.expiry.is_none_or(|(t, _)| now < t)
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Slot>,
    /// (expiry, id) -> key, for every slot with an expiry.
    expiries: BTreeMap<(SystemTime, u64), String>,
    next_version: u64,
    next_expiry_id: u64,
    /// Entries in `map` per role (live or expired but not yet swept).
    counts: [usize; 2],
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Ephemeral => 0,
        Role::Durable => 1,
    }
}

/// An in-memory [`StateStore`], always compiled: the default for development, tests and
/// single-process deployments.
///
/// All operations take one short mutex, so they are atomic with respect to each other. Expired
/// entries are invisible at once (checked against the injected [`Clock`]) and are removed through
/// an expiry index as writes go by (a few per write, never a scan of the whole map), so every
/// operation costs the same at 1,000 or 1,000,000 entries. Each [`Role`] has its own entry limit
/// ([`MemoryStoreLimits`]). State is lost when the process exits; use a shared store for several
/// processes.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::sync::Arc;
/// use keyward::store::{Key, MemoryStore, StateStore};
/// let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
/// let key = Key::ephemeral("attempts").part("ve1");
/// assert_eq!(store.increment(&key, 1, None).await?, 1);
/// assert_eq!(store.increment(&key, 1, None).await?, 2);
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
    /// An empty store on [`Env::system`] with default limits.
    pub fn new() -> Self {
        MemoryStore {
            inner: Arc::new(Mutex::new(Inner::default())),
            clock: Arc::new(SystemClock),
            limits: MemoryStoreLimits::default(),
        }
    }

    /// Expires entries by this environment's clock (give the backends using the store the same
    /// environment).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: MemoryStoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Number of live (unexpired) entries of both roles.
    pub fn len(&self) -> usize {
        self.len_of(Role::Ephemeral) + self.len_of(Role::Durable)
    }

    /// Number of live entries of `role`.
    pub fn len_of(&self, role: Role) -> usize {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.sweep(now, usize::MAX);
        inner.counts[role_index(role)]
    }

    /// Whether the store holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation keeps the map, index and counts consistent before it can panic (it
        // cannot: no operation under the lock panics), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_value(&self, value_len: usize) -> Result<()> {
        if value_len > self.limits.max_value_len {
            return Err(Error::storage("value too large for the store"));
        }
        Ok(())
    }

    fn expiry(now: SystemTime, ttl: Option<Duration>) -> Option<SystemTime> {
        ttl.map(|d| now.checked_add(d).unwrap_or(now))
    }
}

impl Inner {
    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Removes up to `max` expired entries, oldest expiry first.
    fn sweep(&mut self, now: SystemTime, max: usize) {
        for _ in 0..max {
            let Some(entry) = self.expiries.first_entry() else {
                return;
            };
            if entry.key().0 > now {
                return;
            }
            let key = entry.remove();
            if let Some(slot) = self.map.remove(&key) {
                self.counts[role_index(slot.role)] -= 1;
            }
        }
    }

    /// The live slot at `key`; an expired one is removed first.
    fn live(&mut self, key: &str, now: SystemTime) -> Option<&mut Slot> {
        let expired = self.map.get(key).is_some_and(|s| !s.live(now));
        if expired {
            self.remove(key);
        }
        self.map.get_mut(key)
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        let slot = self.map.remove(key)?;
        if let Some(e) = slot.expiry {
            self.expiries.remove(&e);
        }
        self.counts[role_index(slot.role)] -= 1;
        Some(slot)
    }

    fn set_expiry(&mut self, key: &str, at: Option<SystemTime>) -> Option<(SystemTime, u64)> {
        let t = at?;
        self.next_expiry_id += 1;
        let id = self.next_expiry_id;
        self.expiries.insert((t, id), key.to_owned());
        Some((t, id))
    }

    /// Inserts a new slot at an absent key after enforcing the role's entry limit.
    fn create(
        &mut self,
        key: &Key,
        value: Vec<u8>,
        expires_at: Option<SystemTime>,
        now: SystemTime,
        limits: &MemoryStoreLimits,
    ) -> Result<u64> {
        let role = key.role();
        let max = limits.max_entries(role);
        if self.counts[role_index(role)] >= max {
            self.sweep(now, usize::MAX);
            if self.counts[role_index(role)] >= max {
                return Err(Error::storage(match role {
                    Role::Ephemeral => "memory store is full (ephemeral entries)",
                    Role::Durable => "memory store is full (durable entries)",
                }));
            }
        }
        let version = self.version();
        let expiry = self.set_expiry(key.as_str(), expires_at);
        self.map.insert(
            key.as_str().to_owned(),
            Slot {
                value,
                version,
                role,
                expiry,
            },
        );
        self.counts[role_index(role)] += 1;
        Ok(version)
    }

    /// Replaces the value (and maybe the expiry) of the live slot at `key`.
    fn replace(&mut self, key: &str, value: Vec<u8>, expires_at: Ttl2) -> Option<u64> {
        let version = self.version();
        let old_expiry = self.map.get(key)?.expiry;
        let expiry = match expires_at {
            Ttl2::Keep => old_expiry,
            Ttl2::At(at) => {
                if let Some(e) = old_expiry {
                    self.expiries.remove(&e);
                }
                self.set_expiry(key, at)
            }
        };
        let slot = self.map.get_mut(key)?;
        slot.value = value;
        slot.version = version;
        slot.expiry = expiry;
        Some(version)
    }
}

/// The expiry a replacement gives: keep the slot's, or set a new one (`None`: never).
enum Ttl2 {
    Keep,
    At(Option<SystemTime>),
}

#[async_trait]
impl StateStore for MemoryStore {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.get", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let now = self.clock.now();
        let mut inner = self.lock();
        Ok(inner.live(key.as_str(), now).map(|s| Entry {
            value: s.value.clone(),
            version: Version::from_raw(s.version),
        }))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.insert", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        check_ttl(ttl)?;
        self.check_value(value.len())?;
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        if inner.live(key.as_str(), now).is_some() {
            return Ok(None);
        }
        let v = inner.create(key, value, Self::expiry(now, ttl), now, &self.limits)?;
        Ok(Some(Version::from_raw(v)))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.put", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        check_ttl(ttl)?;
        self.check_value(value.len())?;
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        let at = Self::expiry(now, ttl);
        if inner.live(key.as_str(), now).is_some() {
            if let Some(v) = inner.replace(key.as_str(), value, Ttl2::At(at)) {
                return Ok(Version::from_raw(v));
            }
            return Err(Error::storage("memory store lost an entry"));
        }
        let v = inner.create(key, value, at, now, &self.limits)?;
        Ok(Version::from_raw(v))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.compare_and_swap", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        check_write(&write)?;
        if let Write::Set { value, .. } = &write {
            self.check_value(value.len())?;
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        match inner.live(key.as_str(), now) {
            Some(slot) if slot.version == expected.raw() => {}
            _ => return Ok(CasOutcome::Conflict),
        }
        match write {
            Write::Set { value, ttl } => {
                let expiry = match ttl {
                    Ttl::Keep => Ttl2::Keep,
                    Ttl::Never => Ttl2::At(None),
                    Ttl::After(d) => Ttl2::At(Self::expiry(now, Some(d))),
                };
                match inner.replace(key.as_str(), value, expiry) {
                    Some(v) => Ok(CasOutcome::Swapped {
                        version: Some(Version::from_raw(v)),
                    }),
                    None => Err(Error::storage("memory store lost an entry")),
                }
            }
            Write::Delete => {
                inner.remove(key.as_str());
                Ok(CasOutcome::Swapped { version: None })
            }
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.take", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let now = self.clock.now();
        let mut inner = self.lock();
        if inner.live(key.as_str(), now).is_none() {
            return Ok(None);
        }
        Ok(inner.remove(key.as_str()).map(|s| s.value))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.increment", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        check_ttl(ttl)?;
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.sweep(now, SWEEP_PER_WRITE);
        if let Some(slot) = inner.live(key.as_str(), now) {
            let current: u64 = std::str::from_utf8(&slot.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::storage("increment on a value that is not a counter"))?;
            let next = current
                .checked_add(delta)
                .ok_or_else(|| Error::storage("counter overflow"))?;
            let version = inner.version();
            if let Some(slot) = inner.map.get_mut(key.as_str()) {
                slot.value = next.to_string().into_bytes();
                slot.version = version;
            }
            return Ok(next);
        }
        inner.create(
            key,
            delta.to_string().into_bytes(),
            Self::expiry(now, ttl),
            now,
            &self.limits,
        )?;
        Ok(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn each_role_has_its_own_limit() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryStore::new()
            .env(Env::system().with_clock(clock.clone()))
            .limits(
                MemoryStoreLimits::new()
                    .max_ephemeral_entries(3)
                    .max_durable_entries(2),
            );
        let ttl = Some(Duration::from_secs(10));
        for i in 0..3 {
            let k = Key::ephemeral("t").part(&i.to_string());
            store.insert(&k, vec![1], ttl).await.unwrap();
        }
        let full = store
            .insert(&Key::ephemeral("t").part("x"), vec![1], ttl)
            .await;
        assert_eq!(full.unwrap_err().kind(), &crate::ErrorKind::Storage);
        // A full ephemeral budget leaves the durable one untouched.
        store
            .put(&Key::durable("t").part("a"), vec![1], None)
            .await
            .unwrap();
        store
            .put(&Key::durable("t").part("b"), vec![1], None)
            .await
            .unwrap();
        assert!(
            store
                .put(&Key::durable("t").part("c"), vec![1], None)
                .await
                .is_err()
        );
        // Once the ephemeral entries expire their room is free again.
        clock.advance(Duration::from_secs(10));
        store
            .insert(&Key::ephemeral("t").part("x"), vec![1], ttl)
            .await
            .unwrap();
        assert_eq!(store.len_of(Role::Ephemeral), 1);
        assert_eq!(store.len_of(Role::Durable), 2);
    }

    #[tokio::test]
    async fn the_expiry_index_follows_rewrites() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryStore::new().env(Env::system().with_clock(clock.clone()));
        let k = Key::ephemeral("t").part("k");
        let v = store
            .put(&k, vec![1], Some(Duration::from_secs(5)))
            .await
            .unwrap();
        // A CAS that removes the expiry must also remove it from the index.
        let out = store
            .compare_and_swap(
                &k,
                v,
                Write::Set {
                    value: vec![2],
                    ttl: Ttl::Never,
                },
            )
            .await
            .unwrap();
        assert!(matches!(out, CasOutcome::Swapped { version: Some(_) }));
        clock.advance(Duration::from_secs(60));
        assert_eq!(store.get(&k).await.unwrap().unwrap().value, vec![2]);
        let inner = store.lock();
        assert!(inner.expiries.is_empty());
        assert_eq!(inner.counts, [1, 0]);
    }
}
