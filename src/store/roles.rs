//! [`Stores`]: one store per [`Role`], seen by backends as one [`StateStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{CasOutcome, Entry, Key, Role, StateStore, Version, Write};
use crate::error::Result;

/// A store for each role, itself a [`StateStore`] that sends every key to the store of its
/// [`Role`].
///
/// Every keyward backend takes one `Arc<dyn StateStore>`. Give it a single engine for both roles,
/// or a `Stores` to split them, for instance Redis for the ephemeral state every instance shares
/// and PostgreSQL for the durable records:
///
/// ```
/// use std::sync::Arc;
/// use keyward::store::{Key, MemoryStore, Role, StateStore, Stores};
/// // (Here two in-memory stores; in production, e.g. a Redis and a PostgreSQL store.)
/// let ephemeral: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
/// let durable: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
/// let stores = Stores::split(ephemeral, durable.clone());
/// assert!(Arc::ptr_eq(stores.for_role(Role::Durable), &durable));
/// let state: Arc<dyn StateStore> = Arc::new(stores);
/// # let _ = state;
/// ```
///
/// Because every operation touches one key, routing by key never splits an operation.
#[derive(Debug, Clone)]
pub struct Stores {
    ephemeral: Arc<dyn StateStore>,
    durable: Arc<dyn StateStore>,
}

impl Stores {
    /// Ephemeral keys to `ephemeral`, durable keys to `durable`.
    pub fn split(ephemeral: Arc<dyn StateStore>, durable: Arc<dyn StateStore>) -> Stores {
        Stores { ephemeral, durable }
    }

    /// One engine for both roles (keys of the two roles never collide: see [`Key`]).
    pub fn single(store: Arc<dyn StateStore>) -> Stores {
        Stores {
            ephemeral: store.clone(),
            durable: store,
        }
    }

    /// The store that holds `role`'s keys.
    pub fn for_role(&self, role: Role) -> &Arc<dyn StateStore> {
        match role {
            Role::Ephemeral => &self.ephemeral,
            Role::Durable => &self.durable,
        }
    }

    fn route(&self, key: &Key) -> &dyn StateStore {
        self.for_role(key.role()).as_ref()
    }
}

#[async_trait]
impl StateStore for Stores {
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        self.route(key).get(key).await
    }

    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        self.route(key).insert(key, value, ttl).await
    }

    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        self.route(key).put(key, value, ttl).await
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        self.route(key).compare_and_swap(key, expected, write).await
    }

    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        self.route(key).take(key).await
    }

    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        self.route(key).increment(key, delta, ttl).await
    }
}
