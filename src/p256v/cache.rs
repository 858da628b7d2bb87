//! A bounded, thread-safe cache of key tables, keyed by the public key itself (so a table can
//! never be used for another key), least recently used first out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::{PrecomputedKey, PublicKey, SharedTable};

/// A bounded cache of [`PrecomputedKey`]s.
///
/// Lookups take a mutex for the time of a hash-map access; a table is built outside the lock, so
/// a miss never blocks other verifications. With a capacity of 0 nothing is kept and every
/// lookup builds a table.
///
/// ```
/// use keyward::p256v::{PublicKey, TableCache};
/// let cache = TableCache::new(16);
/// let key = PublicKey::from_sec1(&keyward::p256v::generator_sec1())?;
/// let table = cache.get(&key);
/// assert_eq!(cache.stats().entries, 1);
/// assert_eq!(cache.stats().memory_bytes, table.memory_bytes());
/// # Ok::<(), keyward::p256v::Rejected>(())
/// ```
#[derive(Debug)]
pub struct TableCache {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    tick: u64,
    map: HashMap<[u8; 65], Entry>,
    memory_bytes: usize,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry {
    table: SharedTable,
    last_used: u64,
}

/// What a [`TableCache`] holds, from [`TableCache::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Tables held.
    pub entries: usize,
    /// The most tables held at once.
    pub capacity: usize,
    /// Bytes held by the tables ([`PrecomputedKey::memory_bytes`] summed).
    pub memory_bytes: usize,
    /// Lookups answered from the cache since it was created.
    pub hits: u64,
    /// Lookups that built a table.
    pub misses: u64,
}

impl TableCache {
    /// The capacity of [`TableCache::global`] until changed: 256 tables of the default window,
    /// about 22.6 MB.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// An empty cache holding at most `capacity` tables.
    pub fn new(capacity: usize) -> TableCache {
        TableCache {
            inner: Mutex::new(Inner {
                capacity,
                tick: 0,
                map: HashMap::new(),
                memory_bytes: 0,
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// The process-wide cache the WebAuthn relying party uses, with
    /// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) until [`set_capacity`](Self::set_capacity).
    pub fn global() -> &'static TableCache {
        static GLOBAL: OnceLock<TableCache> = OnceLock::new();
        GLOBAL.get_or_init(|| TableCache::new(Self::DEFAULT_CAPACITY))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent (every update is a
        // single insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The table of `key`, from the cache or built now (about 7 M instructions with the default
    /// window, some 9 ring verifies: docs/benchmarks.md) and kept, evicting the least recently
    /// used table if the cache is full.
    pub fn get(&self, key: &PublicKey) -> Arc<PrecomputedKey> {
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(entry) = inner.map.get_mut(&key.sec1) {
                entry.last_used = tick;
                let table = entry.table.clone();
                inner.hits += 1;
                return table;
            }
            inner.misses += 1;
        }
        let built = Arc::new(PrecomputedKey::new(key));
        let mut inner = self.lock();
        if inner.capacity == 0 {
            return built;
        }
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(entry) = inner.map.get_mut(&key.sec1) {
            // Another thread built it meanwhile: keep one.
            entry.last_used = tick;
            return entry.table.clone();
        }
        inner.memory_bytes += built.memory_bytes();
        inner.map.insert(
            key.sec1,
            Entry {
                table: built.clone(),
                last_used: tick,
            },
        );
        inner.evict_to_capacity();
        built
    }

    /// Changes the capacity, evicting least recently used tables down to it.
    pub fn set_capacity(&self, capacity: usize) {
        let mut inner = self.lock();
        inner.capacity = capacity;
        inner.evict_to_capacity();
    }

    /// Drops every table.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.memory_bytes = 0;
    }

    /// Entries, capacity, memory and hit counts.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            entries: inner.map.len(),
            capacity: inner.capacity,
            memory_bytes: inner.memory_bytes,
            hits: inner.hits,
            misses: inner.misses,
        }
    }
}

impl Inner {
    fn evict_to_capacity(&mut self) {
        while self.map.len() > self.capacity {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            match oldest.and_then(|k| self.map.remove(&k)) {
                Some(entry) => {
                    self.memory_bytes =
                        self.memory_bytes.saturating_sub(entry.table.memory_bytes());
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p256v::field::{Fe, limbs_to_be};
    use crate::p256v::point::Affine;

    /// The SEC1 encodings of 2G, 3G, ...
    fn keys(count: usize) -> Vec<PublicKey> {
        let g = Affine::generator();
        let mut acc = g.to_jacobian();
        (0..count)
            .map(|_| {
                acc = acc.add_affine(&g);
                let a = acc.to_affine().unwrap();
                let mut sec1 = [0u8; 65];
                sec1[0] = 4;
                sec1[1..33].copy_from_slice(&limbs_to_be(&Fe::to_int(a.x)));
                sec1[33..].copy_from_slice(&limbs_to_be(&Fe::to_int(a.y)));
                PublicKey::from_sec1(&sec1).unwrap()
            })
            .collect()
    }

    #[test]
    fn bounded_least_recently_used_first_out() {
        let keys = keys(3);
        let cache = TableCache::new(2);
        let a = cache.get(&keys[0]);
        cache.get(&keys[1]);
        assert!(Arc::ptr_eq(&a, &cache.get(&keys[0])), "a hit");
        cache.get(&keys[2]); // evicts keys[1], the least recently used
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.hits, stats.misses), (2, 1, 3));
        assert_eq!(stats.memory_bytes, 2 * a.memory_bytes());
        assert!(Arc::ptr_eq(&a, &cache.get(&keys[0])));
        cache.get(&keys[1]);
        assert_eq!(cache.stats().misses, 4);
        cache.set_capacity(0);
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(cache.stats().memory_bytes, 0);
        let t = cache.get(&keys[2]);
        assert_eq!(t.public_key(), &keys[2]);
        assert_eq!(cache.stats().entries, 0);
    }
}
