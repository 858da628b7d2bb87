//! [`RecordingStore`]: a [`StateStore`] wrapper that counts round trips and can keep a copy of
//! every value written.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::store::{CasOutcome, Entry, Key, MemoryStore, StateStore, Version, Write};

/// Operations that reached a store, split as reads and writes. Each is one round trip on the
/// shared engines (one Redis command or script, one SQL statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    /// `get` calls.
    pub reads: usize,
    /// `insert`, `put`, `compare_and_swap`, `take` and `increment` calls.
    pub writes: usize,
}

impl RoundTrips {
    /// Reads plus writes.
    pub fn total(&self) -> usize {
        self.reads + self.writes
    }

    /// What happened since `earlier` (a snapshot taken before an operation).
    pub fn since(&self, earlier: RoundTrips) -> RoundTrips {
        RoundTrips {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
        }
    }
}

/// One value handed to the inner store: its key and bytes (empty for `increment`).
#[derive(Clone, PartialEq, Eq)]
pub struct WrittenValue {
    /// The key written.
    pub key: String,
    /// The bytes written: the new value of `insert`, `put` or a `compare_and_swap` that sets;
    /// empty for `increment`.
    pub value: Vec<u8>,
}

impl fmt::Debug for WrittenValue {
    // Values can be secrets under test; only their length is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrittenValue")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// Wraps a store (through any pointer to one: `Arc<MemoryStore>` keeps static dispatch,
/// `Arc<dyn StateStore>` takes any backend) and counts the operations that reach it, to pin the round trips an
/// operation costs; [`keeping_values`](Self::keeping_values) also keeps a copy of every value
/// written, to search stored bytes (for example to show a secret is never stored in clear).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::store::{Key, MemoryStore, StateStore};
/// use keyward::testing::RecordingStore;
///
/// let store = RecordingStore::new(Arc::new(MemoryStore::new())).keeping_values();
/// let key = Key::ephemeral("example").part("counter");
/// store.increment(&key, 1, None).await?;
/// store.get(&key).await?;
/// assert_eq!(store.round_trips().total(), 2);
/// assert_eq!(store.written()[0].key, key.as_str());
/// # Ok::<(), keyward::Error>(())
/// # }).unwrap();
/// ```
pub struct RecordingStore<S = Arc<MemoryStore>> {
    inner: S,
    reads: AtomicUsize,
    writes: AtomicUsize,
    /// `Some` once [`keeping_values`](Self::keeping_values) was called.
    written: Option<Mutex<Vec<WrittenValue>>>,
}

impl<S> fmt::Debug for RecordingStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingStore")
            .field("round_trips", &self.round_trips())
            .field("keeps_values", &self.written.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> RecordingStore<S> {
    /// A wrapper that counts round trips and keeps no values.
    pub fn new(inner: S) -> Self {
        RecordingStore {
            inner,
            reads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            written: None,
        }
    }

    /// Also keeps a copy of every value written (see [`written`](Self::written)).
    #[must_use]
    pub fn keeping_values(mut self) -> Self {
        self.written = Some(Mutex::new(Vec::new()));
        self
    }

    /// Round trips so far.
    pub fn round_trips(&self) -> RoundTrips {
        RoundTrips {
            reads: self.reads.load(Ordering::SeqCst),
            writes: self.writes.load(Ordering::SeqCst),
        }
    }

    /// Every value written so far, oldest first; empty unless
    /// [`keeping_values`](Self::keeping_values) was called.
    pub fn written(&self) -> Vec<WrittenValue> {
        match &self.written {
            Some(seen) => seen.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn write(&self, key: &Key, value: Option<&[u8]>) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let (Some(seen), Some(value)) = (&self.written, value) {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(WrittenValue {
                    key: key.as_str().to_owned(),
                    value: value.to_vec(),
                });
        }
    }
}

#[async_trait]
impl<S> StateStore for RecordingStore<S>
where
    S: Deref + Send + Sync,
    S::Target: StateStore,
{
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }

    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        self.write(key, Some(&value));
        self.inner.insert(key, value, ttl).await
    }

    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        self.write(key, Some(&value));
        self.inner.put(key, value, ttl).await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        match &write {
            Write::Set { value, .. } => self.write(key, Some(value)),
            Write::Delete => self.write(key, None),
        }
        self.inner.compare_and_swap(key, expected, write).await
    }

    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        self.write(key, None);
        self.inner.take(key).await
    }

    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        self.write(key, Some(&[]));
        self.inner.increment(key, delta, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::ephemeral("t").part(s)
    }

    #[tokio::test]
    async fn counts_every_operation_and_keeps_written_values_when_asked() {
        let store = RecordingStore::new(Arc::new(MemoryStore::new())).keeping_values();
        let k = key("a");
        let v = store.put(&k, b"one".to_vec(), None).await.unwrap();
        assert_eq!(store.insert(&k, b"x".to_vec(), None).await.unwrap(), None);
        let outcome = store
            .compare_and_swap(
                &k,
                v,
                Write::Set {
                    value: b"two".to_vec(),
                    ttl: crate::store::Ttl::Keep,
                },
            )
            .await
            .unwrap();
        assert!(matches!(outcome, CasOutcome::Swapped { .. }), "{outcome:?}");
        assert_eq!(store.get(&k).await.unwrap().unwrap().value, b"two");
        assert_eq!(store.take(&k).await.unwrap().unwrap(), b"two");
        assert_eq!(store.increment(&key("n"), 2, None).await.unwrap(), 2);
        assert_eq!(
            store.round_trips(),
            RoundTrips {
                reads: 1,
                writes: 5
            }
        );
        let written: Vec<(String, Vec<u8>)> = store
            .written()
            .into_iter()
            .map(|w| (w.key, w.value))
            .collect();
        assert_eq!(
            written,
            vec![
                (k.as_str().to_owned(), b"one".to_vec()),
                (k.as_str().to_owned(), b"x".to_vec()),
                (k.as_str().to_owned(), b"two".to_vec()),
                (key("n").as_str().to_owned(), Vec::new()),
            ]
        );
        let debug = format!("{:?}", store.written()[0]);
        assert!(
            !debug.contains("111") && debug.contains("value_len: 3"),
            "{debug}"
        );
    }

    #[tokio::test]
    async fn keeps_nothing_unless_asked_and_wraps_trait_objects() {
        let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let store = RecordingStore::new(inner);
        store.put(&key("b"), b"v".to_vec(), None).await.unwrap();
        assert!(store.written().is_empty());
        let before = store.round_trips();
        store.get(&key("b")).await.unwrap();
        assert_eq!(
            store.round_trips().since(before),
            RoundTrips {
                reads: 1,
                writes: 0
            }
        );
    }
}
