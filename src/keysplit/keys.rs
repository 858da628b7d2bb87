//! The backend's half of the 2-man rule: per-user `twoManRuleKey`s and the seed's
//! `getSSKSSession` endpoint as one call ([`TwoManRuleBackend::session`]).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroize;

use super::{AuthFactor, ChallengeRequest, KeySplitStore, SessionId};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::rng::{SecureRandom, SystemRandom};
use crate::secret::Secret;
use crate::store::record::{RecordReader, RecordWriter};
use crate::store::{Key, StateStore, StateStoreExt};

/// Length in bytes of a generated key (and of the decoded `rawTwoManRuleKey`).
pub const KEY_BYTES: usize = 64;

/// Which of the two key arguments of the Seald client a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `twoManRuleKey`: a free-form string, stretched with scrypt by the client.
    Free,
    /// `rawTwoManRuleKey`: base64 of exactly 64 random bytes, used directly as the key.
    Raw,
}

/// A user's `twoManRuleKey` (free-form) or `rawTwoManRuleKey`. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct TwoManRuleKey {
    kind: KeyKind,
    key: Secret,
}

impl TwoManRuleKey {
    /// A free-form `twoManRuleKey`. It must not be empty; it should carry enough entropy (the
    /// generated ones carry 512 bits).
    pub fn free(key: impl Into<Secret>) -> Result<Self> {
        let key = key.into();
        if key.is_empty() || key.expose_str().is_none() {
            return Err(Error::invalid_input(
                "twoManRuleKey must be a non-empty UTF-8 string",
            ));
        }
        Ok(TwoManRuleKey {
            kind: KeyKind::Free,
            key,
        })
    }

    /// A `rawTwoManRuleKey`: must match `^[A-Za-z0-9+/]{86}==$` (base64 of exactly 64 bytes).
    pub fn raw(key: impl Into<Secret>) -> Result<Self> {
        let key = key.into();
        if !is_raw_key_shape(key.expose()) {
            return Err(Error::invalid_input(
                "rawTwoManRuleKey must be the base64 encoding of exactly 64 bytes",
            ));
        }
        Ok(TwoManRuleKey {
            kind: KeyKind::Raw,
            key,
        })
    }

    /// A fresh key of `kind`: base64 of 64 bytes from `rng` (valid in both modes).
    pub fn generate(kind: KeyKind, rng: &dyn SecureRandom) -> Result<Self> {
        let mut bytes = [0u8; KEY_BYTES];
        rng.fill(&mut bytes)?;
        let encoded = STANDARD.encode(bytes);
        bytes.zeroize();
        Ok(TwoManRuleKey {
            kind,
            key: Secret::from(encoded),
        })
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key text, to hand to the user's own frontend. Never log it.
    pub fn expose(&self) -> &str {
        self.key.expose_str().unwrap_or_default()
    }

    /// The key as a [`Secret`].
    pub fn secret(&self) -> &Secret {
        &self.key
    }
}

impl fmt::Debug for TwoManRuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwoManRuleKey")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .finish()
    }
}

/// Whether `key` matches `^[A-Za-z0-9+/]{86}==$`.
pub(crate) fn is_raw_key_shape(key: &[u8]) -> bool {
    key.len() == 88
        && key.ends_with(b"==")
        && key
            .iter()
            .take(86)
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Per-user 2-man-rule keys kept in a [`StateStore`] under the durable key `d:tmr:<app id>:<user id>`
/// (long or unusual ids are hashed into the key; see [`Key`]).
///
/// The first call for a user generates 64 CSPRNG bytes (base64); every later call returns the
/// same key. Creation is atomic: of many concurrent first calls, all get the one key that was
/// stored first.
#[derive(Clone)]
pub struct TwoManRuleKeys {
    store: Arc<dyn StateStore>,
    rng: Arc<dyn SecureRandom>,
    app_id: String,
    kind: KeyKind,
}

impl fmt::Debug for TwoManRuleKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwoManRuleKeys")
            .field("app_id", &self.app_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Tries of the insert / re-read loop before giving up (only reached if keys are deleted as
/// fast as they are created).
const GET_OR_CREATE_TRIES: usize = 8;

impl TwoManRuleKeys {
    /// Keys for `app_id`, generated as `kind`, with the system random source. The app id must
    /// be non-empty and free of `:` (it is part of the storage key).
    pub fn new(
        store: Arc<dyn StateStore>,
        app_id: impl Into<String>,
        kind: KeyKind,
    ) -> Result<Self> {
        let app_id = app_id.into();
        if app_id.is_empty() || app_id.len() > MAX_APP_ID_LEN || app_id.contains(':') {
            return Err(Error::config(
                "app id must be non-empty, at most 128 bytes, and contain no ':'",
            ));
        }
        Ok(TwoManRuleKeys {
            store,
            rng: Arc::new(SystemRandom::new()),
            app_id,
            kind,
        })
    }

    /// Draws new keys from this environment's random source (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.rng = env.random().clone();
        self
    }

    /// The app id the keys belong to.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    fn storage_key(&self, user_id: &str) -> Key {
        Key::durable("tmr").part(&self.app_id).part(user_id)
    }

    /// The user's key, if one was created.
    pub async fn get(&self, user_id: &str) -> Result<Option<TwoManRuleKey>> {
        check_user_id(user_id)?;
        match self.store.get(&self.storage_key(user_id)).await? {
            Some(mut entry) => {
                let decoded = decode_stored(&entry.value);
                entry.value.zeroize();
                decoded.map(Some)
            }
            None => Ok(None),
        }
    }

    /// The user's key, created on first use. The stored kind wins over the configured one, so
    /// changing the configuration never changes an existing user's key.
    pub async fn get_or_create(&self, user_id: &str) -> Result<TwoManRuleKey> {
        check_user_id(user_id)?;
        let storage_key = self.storage_key(user_id);
        for _ in 0..GET_OR_CREATE_TRIES {
            if let Some(key) = self.get(user_id).await? {
                return Ok(key);
            }
            let fresh = TwoManRuleKey::generate(self.kind, self.rng.as_ref())?;
            let mut value = encode_stored(&fresh);
            let inserted = self.store.insert(&storage_key, value.clone(), None).await;
            value.zeroize();
            if inserted?.is_some() {
                return Ok(fresh);
            }
            // Someone else created it first: loop to read theirs.
        }
        Err(Error::storage(
            "the 2-man-rule key kept disappearing while being created",
        ))
    }

    /// Deletes the user's key (the stored identity becomes unreadable for good).
    pub async fn delete(&self, user_id: &str) -> Result<bool> {
        check_user_id(user_id)?;
        self.store.delete(&self.storage_key(user_id)).await
    }
}

/// Longest user id accepted (it is part of the storage key).
const MAX_USER_ID_LEN: usize = 256;
/// Longest app id accepted.
const MAX_APP_ID_LEN: usize = 128;

fn check_user_id(user_id: &str) -> Result<()> {
    if user_id.trim().is_empty() {
        return Err(Error::invalid_input("user id must not be empty"));
    }
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(Error::invalid_input("user id is too long"));
    }
    Ok(())
}

/// Record kind of a stored 2-man-rule key (`d:tmr:<app>:<user>`).
const RECORD_TMR_KEY: u8 = 0x20;
const TAG_KIND: u8 = 1;
const TAG_KEY: u8 = 2;

fn encode_stored(key: &TwoManRuleKey) -> Vec<u8> {
    let mut w = RecordWriter::new(RECORD_TMR_KEY);
    w.u64(
        TAG_KIND,
        match key.kind {
            KeyKind::Free => 0,
            KeyKind::Raw => 1,
        },
    )
    .str(TAG_KEY, key.expose());
    w.finish()
}

fn decode_stored(bytes: &[u8]) -> Result<TwoManRuleKey> {
    let r = RecordReader::parse(RECORD_TMR_KEY, bytes)?;
    let key = Secret::from(r.str(TAG_KEY)?);
    match r.u64(TAG_KIND)? {
        0 => TwoManRuleKey::free(key),
        1 => TwoManRuleKey::raw(key),
        _ => Err(Error::storage("stored 2-man-rule key is malformed")),
    }
    .map_err(|_| Error::storage("stored 2-man-rule key is malformed"))
}

/// What the seed's `getSSKSSession` endpoint returns to the user's own frontend.
///
/// It intentionally carries two secrets (the session id and the user's key) for that user's
/// frontend; serialize it only into the authenticated answer to that user. `Debug` redacts both.
///
/// Serialized as `{session_id, must_authenticate, user_id, auth_factor: {type, value},
/// two_man_rule_key}` (free-form keys) or with `raw_two_man_rule_key` (raw keys). Deserializing
/// reads the same form back (a frontend's store, a test): exactly one of the two key fields, and
/// the key must be valid for its kind ([`TwoManRuleKey::free`], [`TwoManRuleKey::raw`]). Errors
/// never quote a key or a session id.
///
/// ```
/// use keyward::keysplit::{AuthFactor, KeyKind, SessionId, SsksSession, TwoManRuleKey};
/// let session = SsksSession {
///     session_id: SessionId::new("session-1"),
///     must_authenticate: true,
///     two_man_rule_key: TwoManRuleKey::free("a-long-random-key")?,
///     user_id: "user-1".into(),
///     auth_factor: AuthFactor::email("alice@example.com")?,
/// };
/// let json = serde_json::to_string(&session).unwrap();
/// let back: SsksSession = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, session);
/// assert_eq!(back.two_man_rule_key.kind(), KeyKind::Free);
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SsksSession {
    /// The SSKS session the frontend uses.
    pub session_id: SessionId,
    /// Whether the frontend must ask the user for the challenge before saving.
    pub must_authenticate: bool,
    /// The user's key.
    pub two_man_rule_key: TwoManRuleKey,
    /// The host's id for the user.
    pub user_id: String,
    /// The normalized factor the challenge went to (the frontend should show it to the user).
    pub auth_factor: AuthFactor,
}

impl fmt::Debug for SsksSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsksSession")
            .field("session_id", &self.session_id)
            .field("must_authenticate", &self.must_authenticate)
            .field("two_man_rule_key", &self.two_man_rule_key)
            .field("user_id", &self.user_id)
            .field("auth_factor", &self.auth_factor)
            .finish()
    }
}

impl Serialize for SsksSession {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SsksSession", 5)?;
        s.serialize_field("session_id", self.session_id.expose())?;
        s.serialize_field("must_authenticate", &self.must_authenticate)?;
        s.serialize_field("user_id", &self.user_id)?;
        s.serialize_field("auth_factor", &self.auth_factor)?;
        match self.two_man_rule_key.kind() {
            KeyKind::Free => {
                s.serialize_field("two_man_rule_key", self.two_man_rule_key.expose())?
            }
            KeyKind::Raw => {
                s.serialize_field("raw_two_man_rule_key", self.two_man_rule_key.expose())?
            }
        }
        s.end()
    }
}

impl<'de> Deserialize<'de> for SsksSession {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        struct Wire {
            session_id: String,
            must_authenticate: bool,
            user_id: String,
            auth_factor: AuthFactor,
            #[serde(default)]
            two_man_rule_key: Option<String>,
            #[serde(default)]
            raw_two_man_rule_key: Option<String>,
        }
        let wire = Wire::deserialize(deserializer)?;
        // The validation messages name the rule, never the key.
        let key = match (wire.two_man_rule_key, wire.raw_two_man_rule_key) {
            (Some(key), None) => TwoManRuleKey::free(key),
            (None, Some(key)) => TwoManRuleKey::raw(key),
            _ => {
                return Err(D::Error::custom(
                    "exactly one of two_man_rule_key and raw_two_man_rule_key",
                ));
            }
        }
        .map_err(|e| D::Error::custom(e.message()))?;
        Ok(SsksSession {
            session_id: SessionId::new(wire.session_id),
            must_authenticate: wire.must_authenticate,
            two_man_rule_key: key,
            user_id: wire.user_id,
            auth_factor: wire.auth_factor,
        })
    }
}

/// The backend side of the 2-man rule: an SSKS (any [`KeySplitStore`]) plus the per-user keys.
#[derive(Debug, Clone)]
pub struct TwoManRuleBackend {
    ssks: Arc<dyn KeySplitStore>,
    keys: TwoManRuleKeys,
}

impl TwoManRuleBackend {
    /// A backend talking to `ssks` and keeping keys in `keys`.
    pub fn new(ssks: Arc<dyn KeySplitStore>, keys: TwoManRuleKeys) -> Self {
        TwoManRuleBackend { ssks, keys }
    }

    /// The key manager.
    pub fn keys(&self) -> &TwoManRuleKeys {
        &self.keys
    }

    /// The seed's `getSSKSSession` in one call, for an already authenticated user of the host:
    /// normalizes the factor, checks the request, opens the SSKS session (`challenge_send`),
    /// gets or creates the user's key, and returns what the frontend needs.
    ///
    /// Nothing is stored and no key is created when the request is invalid or SSKS refuses it.
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.tmr.session", skip_all, fields(user_id = %crate::trace::masked(&request.user_id), auth_factor = ?request.auth_factor), err(Display, level = "info")))]
    pub async fn session(&self, mut request: ChallengeRequest) -> Result<SsksSession> {
        request.auth_factor = request.auth_factor.normalized()?;
        request.validate()?;
        let user_id = request.user_id.clone();
        let auth_factor = request.auth_factor.clone();
        let opened = self.ssks.open_session(request).await?;
        let two_man_rule_key = self.keys.get_or_create(&user_id).await?;
        Ok(SsksSession {
            session_id: opened.session_id,
            must_authenticate: opened.must_authenticate,
            two_man_rule_key,
            user_id,
            auth_factor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::SeededRandom;

    #[test]
    fn raw_shape() {
        let key = TwoManRuleKey::generate(KeyKind::Raw, &SeededRandom::new(b"k")).unwrap();
        assert!(is_raw_key_shape(key.expose().as_bytes()));
        assert!(TwoManRuleKey::raw(key.expose()).is_ok());
        assert!(TwoManRuleKey::raw("c2hvcnQ=").is_err());
        let mut bad = key.expose().to_owned();
        bad.replace_range(0..1, "-");
        assert!(TwoManRuleKey::raw(bad.as_str()).is_err());
        assert!(TwoManRuleKey::free("").is_err());
    }

    #[tokio::test]
    async fn get_or_create_is_stable_and_atomic() {
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let keys = TwoManRuleKeys::new(store.clone(), "app", KeyKind::Free).unwrap();
        assert!(keys.get("u1").await.unwrap().is_none());
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let keys = keys.clone();
            tasks.push(tokio::spawn(async move { keys.get_or_create("u1").await }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().unwrap());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(keys.get("u1").await.unwrap().as_ref(), seen.first());
        assert!(
            store
                .get(&crate::store::Key::durable("tmr").part("app").part("u1"))
                .await
                .unwrap()
                .is_some()
        );
        let other = keys.get_or_create("u2").await.unwrap();
        assert_ne!(other, seen[0]);
        // A raw-configured manager keeps returning the stored free key for existing users.
        let raw = TwoManRuleKeys::new(store, "app", KeyKind::Raw).unwrap();
        assert_eq!(raw.get_or_create("u1").await.unwrap(), seen[0]);
        assert_eq!(raw.get_or_create("u3").await.unwrap().kind(), KeyKind::Raw);
        assert!(TwoManRuleKeys::new(Arc::new(MemoryStore::new()), "a:b", KeyKind::Raw).is_err());
        let err = keys.get_or_create(&"u".repeat(300)).await.unwrap_err();
        assert_eq!(err.kind(), &crate::ErrorKind::InvalidInput);
        assert!(keys.get_or_create(" ").await.is_err());
    }

    #[test]
    fn session_debug_redacts_and_serializes_for_the_frontend() {
        let key = TwoManRuleKey::generate(KeyKind::Free, &SeededRandom::new(b"s")).unwrap();
        let session = SsksSession {
            session_id: SessionId::new("sess-very-secret-id"),
            must_authenticate: true,
            two_man_rule_key: key.clone(),
            user_id: "user-1".into(),
            auth_factor: AuthFactor::email("alice@example.com").unwrap(),
        };
        let shown = format!("{session:?} {session:#?}");
        for leaked in ["sess-very-secret-id", key.expose(), "alice@example.com"] {
            assert!(!shown.contains(leaked), "{shown}");
        }
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(json["session_id"], "sess-very-secret-id");
        assert_eq!(json["two_man_rule_key"], key.expose());
        assert_eq!(json["auth_factor"]["type"], "EM");
        assert_eq!(json["auth_factor"]["value"], "alice@example.com");
        assert_eq!(json["must_authenticate"], true);
        assert_eq!(json["user_id"], "user-1");
        let raw = SsksSession {
            two_man_rule_key: TwoManRuleKey::raw(key.expose()).unwrap(),
            ..session
        };
        let json = serde_json::to_value(&raw).unwrap();
        assert_eq!(json["raw_two_man_rule_key"], key.expose());
        assert!(json.get("two_man_rule_key").is_none());
    }
}
