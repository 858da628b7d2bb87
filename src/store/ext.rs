//! [`StateStoreExt`]: conveniences built on the required [`StateStore`] operations.

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CasOutcome, Key, StateStore, Ttl, Version, Write};
use crate::error::{Error, Result};

/// What an update closure decides to do with the current value.
#[derive(Debug)]
pub enum Update<T, R> {
    /// Store `T` with the given expiry and return `R`.
    Set(T, Ttl, R),
    /// Remove the entry and return `R`.
    Delete(R),
    /// Change nothing and return `R`.
    Keep(R),
}

/// Maximum compare-and-swap retries in an update loop before it gives up with a storage error.
pub const MAX_CAS_RETRIES: usize = 64;

/// Conveniences on every [`StateStore`], as `object_store`'s `ObjectStoreExt`: implemented once
/// here on top of the required operations, so a backend implements only those.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use keyward::store::{Key, MemoryStore, StateStoreExt, Ttl, Update};
/// let store = MemoryStore::new();
/// let key = Key::durable("app").part("prefs");
/// store.update_json(&key, |v: Option<Vec<String>>| {
///     let mut v = v.unwrap_or_default();
///     v.push("dark".to_owned());
///     Ok(Update::Set(v, Ttl::Never, ()))
/// }).await?;
/// assert_eq!(store.get_json::<Vec<String>>(&key).await?, Some(vec!["dark".to_owned()]));
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait StateStoreExt: StateStore {
    /// Removes an entry. Returns whether a live entry was removed.
    async fn delete(&self, key: &Key) -> Result<bool> {
        Ok(self.take(key).await?.is_some())
    }

    /// Reads a JSON-encoded value.
    async fn get_json<T: DeserializeOwned + Send>(&self, key: &Key) -> Result<Option<T>> {
        match self.get(key).await? {
            Some(entry) => Ok(Some(decode_json(&entry.value)?)),
            None => Ok(None),
        }
    }

    /// Atomically reads, transforms and writes a JSON-encoded value.
    ///
    /// `f` receives the current value (`None` when absent or expired) and decides what to do; if
    /// another writer got in between, `f` runs again on the fresh value, so it must be free of
    /// side effects. Errors returned by `f` abort with nothing written.
    async fn update_json<T, R, F>(&self, key: &Key, mut f: F) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Send,
        R: Send,
        F: FnMut(Option<T>) -> Result<Update<T, R>> + Send,
    {
        self.update_bytes(key, |current| {
            let value = current.map(decode_json::<T>).transpose()?;
            Ok(match f(value)? {
                Update::Set(v, ttl, r) => Update::Set(encode_json(&v)?, ttl, r),
                Update::Delete(r) => Update::Delete(r),
                Update::Keep(r) => Update::Keep(r),
            })
        })
        .await
    }

    /// The compare-and-swap loop on raw bytes: `f` sees the current value and decides; an absent
    /// key is created with `insert` (`Ttl::Keep` and `Ttl::Never` then mean no expiry).
    async fn update_bytes<R, F>(&self, key: &Key, mut f: F) -> Result<R>
    where
        R: Send,
        F: FnMut(Option<&[u8]>) -> Result<Update<Vec<u8>, R>> + Send,
    {
        for _ in 0..MAX_CAS_RETRIES {
            let current = self.get(key).await?;
            let version: Option<Version> = current.as_ref().map(|e| e.version);
            let decision = f(current.as_ref().map(|e| e.value.as_slice()))?;
            let (write, result) = match decision {
                Update::Keep(r) => return Ok(r),
                Update::Set(value, ttl, r) => (Write::Set { value, ttl }, r),
                Update::Delete(r) => (Write::Delete, r),
            };
            let done = match (version, write) {
                (Some(v), write) => matches!(
                    self.compare_and_swap(key, v, write).await?,
                    CasOutcome::Swapped { .. }
                ),
                (None, Write::Delete) => true,
                (None, Write::Set { value, ttl }) => {
                    let ttl = match ttl {
                        Ttl::After(d) => Some(d),
                        Ttl::Keep | Ttl::Never => None,
                    };
                    self.insert(key, value, ttl).await?.is_some()
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
}

impl<S: StateStore + ?Sized> StateStoreExt for S {}

/// Serializes a value as JSON for storage.
pub fn encode_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::storage(format!("cannot encode stored value: {e}")))
}

/// Deserializes a JSON-encoded stored value.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    // serde_json's message can quote the stored value (`invalid type: string "…"`), which may
    // hold a secret: keep only the category and position.
    serde_json::from_slice(bytes).map_err(|e| {
        Error::storage(format!(
            "stored value does not decode ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::decode_json;

    #[test]
    fn decode_errors_never_quote_the_stored_value() {
        let err = decode_json::<u64>(br#""hunter2-secret""#).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}
