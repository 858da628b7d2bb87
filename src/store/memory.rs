//! The in-memory [`StateStore`]: one mutex over a hash table plus an expiry index, expiry by the
//! injected clock, a separate entry limit per [`Role`].

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hashbrown::HashTable;
use hashbrown::hash_table::{Entry as TableEntry, OccupiedEntry, VacantEntry};

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
/// stalling one (a write that may create an entry of a role at its limit sweeps everything
/// expired first).
const SWEEP_PER_WRITE: usize = 16;

struct Slot {
    /// The key's text; the table finds the slot by the key's hash.
    key: Box<str>,
    value: Vec<u8>,
    version: u64,
    role: Role,
    /// Expiry time and the slot's id in the expiry index.
    expiry: Option<(SystemTime, u64)>,
}

impl fmt::Debug for Slot {
    // Values may hold hashed codes or keys: show only their size (as `Entry` does).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("key", &self.key)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("version", &self.version)
            .field("role", &self.role)
            .field("expiry", &self.expiry)
            .finish()
    }
}

impl Slot {
    fn live(&self, now: SystemTime) -> bool {
        self.expiry.is_none_or(|(t, _)| now < t)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// The slots, each found by its key's hash (computed once per operation, before locking).
    table: HashTable<Slot>,
    book: Book,
}

/// Everything beside the table, apart from it so that it can change while an entry of the table
/// is held.
#[derive(Debug, Default)]
struct Book {
    /// (expiry, id) -> hash of the slot's key, for every slot with an expiry: the slot is the one
    /// under that hash whose `expiry` holds this id (ids are never reused). No copy of the key.
    expiries: BTreeMap<(SystemTime, u64), u64>,
    next_version: u64,
    next_expiry_id: u64,
    /// Slots in the table per role (live or expired but not yet swept).
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
    /// Keyed SipHash (std's, randomly keyed per store) of the key texts: HashDoS-resistant. Clones
    /// share the table, so they copy the same keys.
    hasher: RandomState,
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
            hasher: RandomState::new(),
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
        inner.book.counts[role_index(role)]
    }

    /// Whether the store holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation keeps the table, index and counts consistent before it can panic (it
        // cannot: no operation under the lock panics), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
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
    /// Removes up to `max` expired entries, oldest expiry first.
    fn sweep(&mut self, now: SystemTime, max: usize) {
        for _ in 0..max {
            let Some(entry) = self.book.expiries.first_entry() else {
                return;
            };
            if entry.key().0 > now {
                return;
            }
            let ((_, id), hash) = entry.remove_entry();
            let indexed = |s: &Slot| s.expiry.is_some_and(|(_, i)| i == id);
            if let Ok(found) = self.table.find_entry(hash, indexed) {
                let (slot, _) = found.remove();
                self.book.counts[role_index(slot.role)] -= 1;
            }
        }
    }

    /// The sweep before a write that may create a `role` entry: a few expired entries, or all
    /// of them when the role is at its limit (so that a new key gets the room they held).
    fn sweep_before_create(&mut self, role: Role, now: SystemTime, limits: &MemoryStoreLimits) {
        let max = if self.book.counts[role_index(role)] >= limits.max_entries(role) {
            usize::MAX
        } else {
            SWEEP_PER_WRITE
        };
        self.sweep(now, max);
    }
}

/// The live slot at `key` (hash `hash`); an expired one is removed first.
fn live<'t>(
    table: &'t mut HashTable<Slot>,
    book: &mut Book,
    hash: u64,
    key: &str,
    now: SystemTime,
) -> Option<OccupiedEntry<'t, Slot>> {
    let entry = table.find_entry(hash, |s| *s.key == *key).ok()?;
    if entry.get().live(now) {
        return Some(entry);
    }
    let (slot, _) = entry.remove();
    book.forget(&slot);
    None
}

impl Book {
    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Indexes an expiry at `at` (if any) for the slot under `hash`.
    fn index(&mut self, hash: u64, at: Option<SystemTime>) -> Option<(SystemTime, u64)> {
        let t = at?;
        self.next_expiry_id += 1;
        let id = self.next_expiry_id;
        self.expiries.insert((t, id), hash);
        Some((t, id))
    }

    /// Fills the vacant place of an absent key after enforcing the role's entry limit; returns
    /// the new version.
    fn admit(
        &mut self,
        place: VacantEntry<'_, Slot>,
        key: &Key,
        hash: u64,
        value: Vec<u8>,
        at: Option<SystemTime>,
        limits: &MemoryStoreLimits,
    ) -> Result<u64> {
        let role = key.role();
        if self.counts[role_index(role)] >= limits.max_entries(role) {
            return Err(Error::storage(match role {
                Role::Ephemeral => "memory store is full (ephemeral entries)",
                Role::Durable => "memory store is full (durable entries)",
            }));
        }
        self.counts[role_index(role)] += 1;
        let version = self.version();
        place.insert(Slot {
            key: key.as_str().into(),
            value,
            version,
            role,
            expiry: self.index(hash, at),
        });
        Ok(version)
    }

    /// Forgets a slot taken out of the table: its index entry and its count.
    fn forget(&mut self, slot: &Slot) {
        if let Some(e) = slot.expiry {
            self.expiries.remove(&e);
        }
        self.counts[role_index(slot.role)] -= 1;
    }

    /// Gives the slot under `hash` a new value and version (and maybe a new expiry); returns the
    /// version and the value replaced.
    fn rewrite(
        &mut self,
        slot: &mut Slot,
        hash: u64,
        value: Vec<u8>,
        expiry: Ttl2,
    ) -> (u64, Vec<u8>) {
        if let Ttl2::At(at) = expiry {
            if let Some(e) = slot.expiry {
                self.expiries.remove(&e);
            }
            slot.expiry = self.index(hash, at);
        }
        slot.version = self.version();
        (slot.version, std::mem::replace(&mut slot.value, value))
    }
}

/// The expiry a replacement gives: keep the slot's, or set a new one (`None`: never).
enum Ttl2 {
    Keep,
    At(Option<SystemTime>),
}

impl MemoryStore {
    /// `insert` (`replace_live` false) and `put` (true): the version written, `None` when a live
    /// entry was kept.
    fn set(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
        replace_live: bool,
    ) -> Result<Option<u64>> {
        check_ttl(ttl)?;
        self.check_value(value.len())?;
        let hash = self.hash(key.as_str());
        let now = self.clock.now();
        let at = Self::expiry(now, ttl);
        let mut guard = self.lock();
        guard.sweep_before_create(key.role(), now, &self.limits);
        let Inner { table, book } = &mut *guard;
        let text = key.as_str();
        let (version, replaced) =
            match table.entry(hash, |s| *s.key == *text, |s| self.hash(&s.key)) {
                TableEntry::Occupied(e) if !replace_live && e.get().live(now) => return Ok(None),
                // A live entry (put) or an expired one not yet swept: rewritten in place.
                TableEntry::Occupied(mut e) => {
                    let (v, old) = book.rewrite(e.get_mut(), hash, value, Ttl2::At(at));
                    (v, Some(old))
                }
                TableEntry::Vacant(place) => {
                    (book.admit(place, key, hash, value, at, &self.limits)?, None)
                }
            };
        // The replaced value is freed once the lock is released.
        drop(guard);
        drop(replaced);
        Ok(Some(version))
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.get", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let hash = self.hash(key.as_str());
        let now = self.clock.now();
        let mut guard = self.lock();
        let Inner { table, book } = &mut *guard;
        Ok(live(table, book, hash, key.as_str(), now).map(|e| {
            let s = e.get();
            Entry {
                value: s.value.clone(),
                version: Version::from_raw(s.version),
            }
        }))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.insert", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        Ok(self.set(key, value, ttl, false)?.map(Version::from_raw))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.put", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        match self.set(key, value, ttl, true)? {
            Some(v) => Ok(Version::from_raw(v)),
            // `set` keeps a live entry only when told to.
            None => Err(Error::storage("memory store kept an entry put replaces")),
        }
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
        let hash = self.hash(key.as_str());
        let now = self.clock.now();
        let mut guard = self.lock();
        guard.sweep(now, SWEEP_PER_WRITE);
        let Inner { table, book } = &mut *guard;
        let Some(mut entry) = live(table, book, hash, key.as_str(), now) else {
            return Ok(CasOutcome::Conflict);
        };
        if entry.get().version != expected.raw() {
            return Ok(CasOutcome::Conflict);
        }
        // What is replaced or removed is freed once the lock is released.
        match write {
            Write::Set { value, ttl } => {
                let expiry = match ttl {
                    Ttl::Keep => Ttl2::Keep,
                    Ttl::Never => Ttl2::At(None),
                    Ttl::After(d) => Ttl2::At(Self::expiry(now, Some(d))),
                };
                let (version, replaced) = book.rewrite(entry.get_mut(), hash, value, expiry);
                drop(guard);
                drop(replaced);
                Ok(CasOutcome::Swapped {
                    version: Some(Version::from_raw(version)),
                })
            }
            Write::Delete => {
                let (slot, _) = entry.remove();
                book.forget(&slot);
                drop(guard);
                drop(slot);
                Ok(CasOutcome::Swapped { version: None })
            }
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.take", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let hash = self.hash(key.as_str());
        let now = self.clock.now();
        let mut guard = self.lock();
        let Inner { table, book } = &mut *guard;
        let Some(entry) = live(table, book, hash, key.as_str(), now) else {
            return Ok(None);
        };
        let (slot, _) = entry.remove();
        book.forget(&slot);
        drop(guard);
        Ok(Some(slot.value))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.increment", level = "debug", skip_all, fields(engine = "memory", key = crate::trace::key_scope(key))))]
    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        check_ttl(ttl)?;
        let hash = self.hash(key.as_str());
        let now = self.clock.now();
        let mut guard = self.lock();
        guard.sweep_before_create(key.role(), now, &self.limits);
        let Inner { table, book } = &mut *guard;
        let text = key.as_str();
        let fresh = || {
            crate::decimal::text(delta, &mut [0u8; 20])
                .as_bytes()
                .to_vec()
        };
        let (n, replaced) = match table.entry(hash, |s| *s.key == *text, |s| self.hash(&s.key)) {
            TableEntry::Occupied(mut e) if e.get().live(now) => {
                let slot = e.get_mut();
                let current: u64 = std::str::from_utf8(&slot.value)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| Error::storage("increment on a value that is not a counter"))?;
                let next = current
                    .checked_add(delta)
                    .ok_or_else(|| Error::storage("counter overflow"))?;
                // The counter's text is rewritten in its own buffer (at most 20 digits).
                slot.value.clear();
                slot.value
                    .extend_from_slice(crate::decimal::text(next, &mut [0u8; 20]).as_bytes());
                slot.version = book.version();
                (next, None)
            }
            // Expired, not yet swept: a new counter in the same slot.
            TableEntry::Occupied(mut e) => {
                let at = Self::expiry(now, ttl);
                let (_, old) = book.rewrite(e.get_mut(), hash, fresh(), Ttl2::At(at));
                (delta, Some(old))
            }
            TableEntry::Vacant(place) => {
                let at = Self::expiry(now, ttl);
                book.admit(place, key, hash, fresh(), at, &self.limits)?;
                (delta, None)
            }
        };
        drop(guard);
        drop(replaced);
        Ok(n)
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
        assert!(inner.book.expiries.is_empty());
        assert_eq!(inner.book.counts, [1, 0]);
    }

    /// The table, the expiry index and the counts agree: every indexed expiry names one slot
    /// under its hash that holds it, every slot with an expiry is indexed, counts are per role.
    fn assert_consistent(store: &MemoryStore) {
        let inner = store.lock();
        let mut counts = [0, 0];
        let mut expiring = 0;
        for slot in &inner.table {
            counts[role_index(slot.role)] += 1;
            if let Some(e) = slot.expiry {
                expiring += 1;
                assert_eq!(inner.book.expiries.get(&e), Some(&store.hash(&slot.key)));
            }
        }
        assert_eq!(inner.book.counts, counts);
        assert_eq!(inner.book.expiries.len(), expiring);
    }

    #[tokio::test]
    async fn the_expiry_index_follows_removals_and_sweeps() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryStore::new().env(Env::system().with_clock(clock.clone()));
        let key = |i: usize| Key::ephemeral("t").part(&i.to_string());
        let ttl = |s: u64| Some(Duration::from_secs(s));
        for i in 0..40 {
            store.insert(&key(i), vec![1], ttl(5)).await.unwrap();
        }
        for i in 40..45 {
            store.insert(&key(i), vec![1], ttl(100)).await.unwrap();
        }
        assert_consistent(&store);
        // Removals by take and by a deleting CAS take their index entries with them.
        assert_eq!(store.take(&key(0)).await.unwrap(), Some(vec![1]));
        let v = store.get(&key(1)).await.unwrap().unwrap().version;
        let out = store
            .compare_and_swap(&key(1), v, Write::Delete)
            .await
            .unwrap();
        assert_eq!(out, CasOutcome::Swapped { version: None });
        // A put moves an expiry, a CAS keeping the expiry leaves the index as it is.
        store.put(&key(2), vec![2], ttl(100)).await.unwrap();
        let v = store.get(&key(40)).await.unwrap().unwrap().version;
        let set = Write::Set {
            value: vec![3],
            ttl: Ttl::Keep,
        };
        store.compare_and_swap(&key(40), v, set).await.unwrap();
        assert_consistent(&store);
        assert_eq!(store.lock().book.expiries.len(), 43);

        clock.advance(Duration::from_secs(5));
        // 37 entries have expired (3..40). Reading one removes it.
        assert_eq!(store.get(&key(3)).await.unwrap(), None);
        assert_eq!(store.lock().table.len(), 42);
        // Each write sweeps SWEEP_PER_WRITE of them, oldest first (4..20); rewriting an expired
        // one not yet swept reuses its slot.
        assert_eq!(store.increment(&key(39), 7, ttl(100)).await.unwrap(), 7);
        assert_eq!(store.lock().table.len(), 42 - SWEEP_PER_WRITE);
        assert_consistent(&store);
        store
            .put(&Key::durable("t").part("d"), vec![1], None)
            .await
            .unwrap();
        assert_eq!(store.lock().table.len(), 42 - 2 * SWEEP_PER_WRITE + 1);
        assert_consistent(&store);
        assert_eq!(store.len_of(Role::Ephemeral), 7);
        assert_eq!(store.len_of(Role::Durable), 1);
        assert_consistent(&store);
        assert_eq!(store.lock().book.expiries.len(), 7);
        assert_eq!(store.get(&key(39)).await.unwrap().unwrap().value, b"7");
        assert_eq!(store.get(&key(40)).await.unwrap().unwrap().value, vec![3]);
        clock.advance(Duration::from_secs(100));
        assert_eq!(store.len(), 1);
        assert_consistent(&store);
        assert!(store.lock().book.expiries.is_empty());
    }

    #[test]
    fn the_sweep_finds_its_slot_among_equal_hashes() {
        // Two keys under one hash (as a collision would put them): the sweep removes the slot
        // whose expiry id it indexed, not the other.
        let mut inner = Inner::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let at = |s: u64| Some(t0 + Duration::from_secs(s));
        let limits = MemoryStoreLimits::new();
        for (name, expiry) in [("a", at(10)), ("b", at(5)), ("c", None)] {
            let key = Key::ephemeral("t").part(name);
            let Inner { table, book } = &mut inner;
            let TableEntry::Vacant(place) = table.entry(7, |s| *s.key == *key.as_str(), |_| 7)
            else {
                panic!("absent");
            };
            book.admit(place, &key, 7, vec![], expiry, &limits).unwrap();
        }
        inner.sweep(t0 + Duration::from_secs(5), usize::MAX);
        let mut left: Vec<&str> = inner.table.iter().map(|s| &*s.key).collect();
        left.sort_unstable();
        assert_eq!(left, ["e:t:a", "e:t:c"]);
        assert_eq!(inner.book.counts, [2, 0]);
        inner.sweep(t0 + Duration::from_secs(10), usize::MAX);
        let left: Vec<&str> = inner.table.iter().map(|s| &*s.key).collect();
        assert_eq!(left, ["e:t:c"]);
        assert!(inner.book.expiries.is_empty());
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_slot_stays_within_80_bytes() {
        // Memory per entry: the key as a boxed str, no copy in the expiry index.
        assert!(size_of::<Slot>() <= 80, "{}", size_of::<Slot>());
    }
}
