//! [`FaultyStore`]: a [`StateStore`] wrapper that fails a chosen write, before or after it lands.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::store::{CasOutcome, Entry, Key, StateStore, Version, Write};

/// When the chosen write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The write never reaches the inner store; the caller gets a storage error.
    BeforeWrite,
    /// The write lands in the inner store, then the caller gets a storage error (a lost reply).
    AfterWrite,
}

/// Wraps a store and fails its `n`th write (0-based; `insert`, `put`, `compare_and_swap`,
/// `take` and `increment` count as writes, `get` does not) in the chosen [`FaultMode`], to
/// prove that an operation that reports an error leaves nothing usable behind.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn StateStore>,
    writes: AtomicUsize,
    fail_at: AtomicUsize,
    mode: std::sync::Mutex<FaultMode>,
}

impl FaultyStore {
    /// A wrapper that fails nothing until [`fail_write`](Self::fail_write) is called.
    pub fn new(inner: Arc<dyn StateStore>) -> Self {
        FaultyStore {
            inner,
            writes: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(usize::MAX),
            mode: std::sync::Mutex::new(FaultMode::BeforeWrite),
        }
    }

    /// Fails the write numbered `n` from now (0 = the next one), once.
    pub fn fail_write(&self, n: usize, mode: FaultMode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
        let base = self.writes.load(Ordering::SeqCst);
        self.fail_at.store(base.saturating_add(n), Ordering::SeqCst);
    }

    /// Stops failing.
    pub fn heal(&self) {
        self.fail_at.store(usize::MAX, Ordering::SeqCst);
    }

    /// Writes seen so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Counts one write; `Some(mode)` if this one must fail.
    fn next(&self) -> Option<FaultMode> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.heal();
            return Some(*self.mode.lock().unwrap_or_else(|e| e.into_inner()));
        }
        None
    }
}

fn injected() -> Error {
    Error::storage("injected storage fault")
}

async fn run<T: Send>(
    fault: Option<FaultMode>,
    write: impl std::future::Future<Output = Result<T>> + Send,
) -> Result<T> {
    match fault {
        Some(FaultMode::BeforeWrite) => Err(injected()),
        Some(FaultMode::AfterWrite) => {
            write.await?;
            Err(injected())
        }
        None => write.await,
    }
}

#[async_trait]
impl StateStore for FaultyStore {
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        self.inner.get(key).await
    }

    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        run(self.next(), self.inner.insert(key, value, ttl)).await
    }

    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        run(self.next(), self.inner.put(key, value, ttl)).await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        run(
            self.next(),
            self.inner.compare_and_swap(key, expected, write),
        )
        .await
    }

    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        run(self.next(), self.inner.take(key)).await
    }

    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        run(self.next(), self.inner.increment(key, delta, ttl)).await
    }
}
