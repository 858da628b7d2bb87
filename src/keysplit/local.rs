//! A local SSKS: the [`KeySplitStore`] semantics of Seald's key storage, kept in a
//! [`StateStore`] under `ssks` keys (each user's one session and the send counters ephemeral;
//! users, stored identities and the session-id key durable) and sending challenges through a
//! [`CodeSender`].
//!
//! - `open_session` creates the user when asked, decides `must_authenticate` (true when an
//!   identity was already stored for that user and factor, or when `force_auth` is set), sends an
//!   8-character challenge from [`CHALLENGE_ALPHABET`] valid [`CHALLENGE_VALIDITY`] when one is
//!   needed, and makes the new session the user's only live one.
//! - `validate_challenge` counts the attempt first ([`DEFAULT_MAX_ATTEMPTS`] per session, in the
//!   same compare-and-swap that decides), compares hashes in constant time, consumes the
//!   challenged session (single use) and returns a new authenticated session id.
//! - `push` stores the blob with `authenticated` = whether the session passed a challenge, and
//!   returns the user's stable UUID. A session that did not pass a challenge can push only when
//!   it was opened with `must_authenticate: false`, and only the first identity for its factor
//!   (never over an existing one; the same bytes again, a retry after a lost reply, succeed).
//! - `search` answers only a session that passed `challenge_validate`. The backend only ever
//!   sees the session id of `open_session` (`challenge_send`), and it holds the twoManRuleKey:
//!   if that id could read the ciphertext, the backend alone could decrypt the identity.
//!
//! - Limits ([`SsksLimits`]): challenges sent per user, per address and in total per window
//!   (past them `open_session` is [`RateLimited`](ErrorKind::RateLimited) and sends nothing),
//!   and identities stored per user.
//!
//! Session ids and challenges are stored only as SHA-256 hashes.
//!
//! # Store layout (each rule is one key)
//! - `e:ssks:sess:<t>`: the user's one session: its id's hash, factor, whether it must and did
//!   pass a challenge, the challenge's hash, attempts, expiry. Opening a session is one `put`
//!   (the new session replaces the old); every validation is one compare-and-swap (the session
//!   must still be the live one, the attempt is counted, a right challenge replaces the
//!   challenged session by the authenticated one, so it is single use); push and search read it.
//!   `t` is `HMAC-SHA256(sid key, user id)` (16 bytes), so no session key holds a user id.
//! - Session ids are 48 bytes, base64url: 32 random bytes (the bearer secret), then `t` masked
//!   by `HMAC-SHA256(sid key, those 32 bytes)`. An id leads to its session with one `get` and no
//!   index; two ids of one user look unrelated without the sid key.
//! - `d:ssks:sid-key`: that key, 32 random bytes made by the first instance that opens a session
//!   and read once by every instance sharing the store. Deleting it ends every open session.
//! - `e:ssks:sends:…` (send counters), `d:ssks:user:<user>` (the stable id),
//!   `d:ssks:identity:<h>` (stored identities), `d:ssks:identities:<h>` (the identity slots the
//!   user holds, each claimed once by its identity, so a retried push spends no second one).
//!
//! A write that reports a storage error may have landed. An `open_session` that fails that way
//! sent no challenge, and the session it may have written was never handed out; a validation
//! that fails that way either counted an attempt or swapped in an authenticated session whose id
//! nobody got (the retry answers `NotFound`: open a session again).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;
use serde::Deserialize;

use super::{
    AuthFactor, AuthFactorType, CHALLENGE_PLACEHOLDER, ChallengeRequest, ChallengeSession,
    KeySplitStore, SessionId, StoredBlob,
};
use crate::clock::{Clock, SystemClock};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::otp::Channel;
use crate::otp::{CodeSender, OutgoingMessage};
use crate::rng::{SecureRandom, SystemRandom, random_array, random_string};
use crate::secret::Secret;
use crate::secret::subtle_eq::constant_time_eq;
use crate::store::record::{RecordReader, RecordWriter, Unknown};
use crate::store::{Key, StateStore, StateStoreExt, Ttl, Update, decode_json};

/// The alphabet of SSKS challenges (no `i`, `l`, `o`, `0`, `1`).
pub const CHALLENGE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Length of an SSKS challenge.
pub const CHALLENGE_LEN: usize = 8;
/// How long a challenge (and a session) stays valid.
pub const CHALLENGE_VALIDITY: Duration = Duration::from_secs(6 * 3600);
/// The fixed challenge of `fake_otp` sessions on test servers.
pub const FAKE_CHALLENGE: &str = "aaaaaaaa";
/// Challenge validations allowed per session before it is closed.
pub const DEFAULT_MAX_ATTEMPTS: u64 = 5;
/// Largest `data_b64` a push accepts (characters).
pub const MAX_PUSH_B64_LEN: usize = 512 * 1024;
/// Longest user id accepted.
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest template accepted (bytes).
pub const MAX_TEMPLATE_LEN: usize = 64 * 1024;

/// Limits on what `open_session` sends and what `push` stores, so that neither a backend's bug
/// nor a flood through it mails challenges without end or fills the store. Past a send limit,
/// `open_session` fails with [`RateLimited`](ErrorKind::RateLimited) and sends nothing (the
/// server answers 406 `SMSQuotaFailed`, as Seald does when its quota is spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SsksLimits {
    /// Challenges sent per user per `window`. Default 10.
    pub sends_per_user: u32,
    /// Challenges sent per address or number per `window`, whatever the user. Default 10.
    pub sends_per_factor: u32,
    /// Challenges sent by the whole store per `window`. Default 1 000.
    pub sends_total: u32,
    /// Window of the send counters (fixed, aligned on the Unix epoch). Default 1 hour.
    pub window: Duration,
    /// Identities (one per factor) stored per user. Default 4.
    pub identities_per_user: u32,
}

impl Default for SsksLimits {
    fn default() -> Self {
        SsksLimits {
            sends_per_user: 10,
            sends_per_factor: 10,
            sends_total: 1_000,
            window: Duration::from_secs(3_600),
            identities_per_user: 4,
        }
    }
}

/// Sessions stay readable this long past their expiry so that late use reports `Expired`
/// rather than `NotFound`.
const EXPIRED_GRACE: Duration = Duration::from_secs(3600);

// Record kinds of the local SSKS (see `store::record`). 0x40 (a session under its own key) and
// 0x41 (the user's live-session pointer) were written by earlier releases; never reuse them.
const RECORD_SSKS_USER: u8 = 0x42;
const RECORD_SSKS_IDENTITY: u8 = 0x43;
const RECORD_SSKS_SESSION: u8 = 0x44;
const RECORD_SSKS_SID_KEY: u8 = 0x45;
const RECORD_SSKS_CLAIMS: u8 = 0x46;

/// Random bytes of a session id: the bearer secret.
const SID_NONCE_LEN: usize = 32;
/// Bytes of the user's tag a session id carries (masked): its session key's part.
const TAG_LEN: usize = 16;
/// Bytes of a session id (64 base64url characters).
const SID_LEN: usize = SID_NONCE_LEN + TAG_LEN;

/// The user's one session (ephemeral), under `e:ssks:sess:<tag>`: every session rule (one live
/// session per user, its attempts, single use of its challenge, expiry) reads and changes this
/// one key. The factor itself is not kept: its hash tells it apart, and the identity it reaches
/// is named by `identity`, the hash part of its key.
#[derive(Debug, Clone)]
struct SessionRecord {
    /// SHA-256 of the session id: the only id this record answers.
    session_hash: [u8; 32],
    user_id: String,
    /// [`factor_id`] of the session's normalized factor.
    factor: String,
    /// The hash part of the identity key of (user, factor).
    identity: String,
    must_authenticate: bool,
    authenticated: bool,
    /// SHA-256 of (session hash, challenge); `None` once no challenge can be validated.
    challenge_hash: Option<[u8; 32]>,
    /// Challenge validations counted against this session.
    attempts: u64,
    /// Unix seconds.
    expires_at: u64,
    /// Fields of a later release, written back by every rewrite of this session (a counted
    /// attempt, the authenticated session that replaces it); a new session starts without them.
    later: Unknown,
}

// Field tags of a session record; a tag's meaning never changes once released.
const F_SESSION_HASH: u8 = 1;
const F_USER_ID: u8 = 2;
const F_FACTOR: u8 = 3;
const F_IDENTITY: u8 = 4;
const F_MUST_AUTHENTICATE: u8 = 5;
const F_AUTHENTICATED: u8 = 6;
const F_CHALLENGE_HASH: u8 = 7;
const F_ATTEMPTS: u8 = 8;
const F_EXPIRES_AT: u8 = 9;

/// Whether this release knows a field tag of a session record.
fn known_session_field(tag: u8) -> bool {
    (F_SESSION_HASH..=F_EXPIRES_AT).contains(&tag)
}

impl SessionRecord {
    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_SSKS_SESSION);
        w.bytes(F_SESSION_HASH, &self.session_hash)
            .str(F_USER_ID, &self.user_id)
            .str(F_FACTOR, &self.factor)
            .str(F_IDENTITY, &self.identity)
            .bool(F_MUST_AUTHENTICATE, self.must_authenticate)
            .bool(F_AUTHENTICATED, self.authenticated)
            .u64(F_ATTEMPTS, self.attempts)
            .u64(F_EXPIRES_AT, self.expires_at);
        if let Some(h) = &self.challenge_hash {
            w.bytes(F_CHALLENGE_HASH, h);
        }
        w.unknown(&self.later);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let r = RecordReader::parse(RECORD_SSKS_SESSION, bytes)?;
        let hash = |b: &[u8]| -> Result<[u8; 32]> {
            b.try_into()
                .map_err(|_| Error::storage("stored ssks session is corrupt"))
        };
        Ok(SessionRecord {
            session_hash: hash(r.bytes(F_SESSION_HASH)?)?,
            user_id: r.str(F_USER_ID)?.to_owned(),
            factor: r.str(F_FACTOR)?.to_owned(),
            identity: r.str(F_IDENTITY)?.to_owned(),
            must_authenticate: r.flag(F_MUST_AUTHENTICATE)?,
            authenticated: r.flag(F_AUTHENTICATED)?,
            challenge_hash: r.opt_bytes(F_CHALLENGE_HASH).map(hash).transpose()?,
            attempts: r.u64(F_ATTEMPTS)?,
            expires_at: r.u64(F_EXPIRES_AT)?,
            later: Unknown::of(&r, known_session_field),
        })
    }

    /// Whether `hash` is this record's session (constant time).
    fn is_session(&self, hash: &[u8; 32]) -> bool {
        constant_time_eq(&self.session_hash, hash)
    }
}

/// The key of session-id masks and user tags (durable, `d:ssks:sid-key`): 32 random bytes made
/// by the first instance that needs them, shared through the store by every instance.
fn encode_sid_key(key: &[u8; 32]) -> Vec<u8> {
    let mut w = RecordWriter::new(RECORD_SSKS_SID_KEY);
    w.bytes(1, key);
    w.finish()
}

fn decode_sid_key(bytes: &[u8]) -> Result<hmac::Key> {
    let r = RecordReader::parse(RECORD_SSKS_SID_KEY, bytes)?;
    let key = r.bytes(1)?;
    if key.len() != 32 {
        return Err(Error::storage("stored ssks session key is corrupt"));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, key))
}

/// The session-id key once loaded, shared by clones of one [`LocalKeySplitStore`].
#[derive(Default)]
struct SidKey(OnceLock<hmac::Key>);

impl fmt::Debug for SidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "SidKey([REDACTED])"
        } else {
            "SidKey(not loaded)"
        })
    }
}

/// A session id as parsed: its session key's tag and its hash.
struct ParsedSid {
    tag: [u8; TAG_LEN],
    hash: [u8; 32],
}

/// The identity slots a user holds (durable, `d:ssks:identities:<hash of user>`): the hash part
/// of each claimed identity's key. Earlier releases kept a bare counter there (ASCII decimal,
/// refused tries included); it is read as that many anonymous slots.
#[derive(Debug, Default)]
struct Claims {
    /// Slots counted by an earlier release, identities unknown.
    legacy: u64,
    identities: Vec<[u8; 32]>,
    /// Fields of a later release, written back when a slot is claimed.
    later: Unknown,
}

impl Claims {
    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_SSKS_CLAIMS);
        w.u64(1, self.legacy)
            .bytes(2, &self.identities.concat())
            .unknown(&self.later);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) {
            let legacy = std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| Error::storage("stored identity count is corrupt"))?;
            return Ok(Claims {
                legacy,
                identities: Vec::new(),
                later: Unknown::default(),
            });
        }
        let r = RecordReader::parse(RECORD_SSKS_CLAIMS, bytes)?;
        let list = r.bytes(2)?;
        if !list.len().is_multiple_of(32) {
            return Err(Error::storage("stored identity claims are corrupt"));
        }
        Ok(Claims {
            legacy: r.u64(1)?,
            identities: list
                .chunks_exact(32)
                .map(|c| {
                    let mut id = [0u8; 32];
                    id.copy_from_slice(c);
                    id
                })
                .collect(),
            later: Unknown::of(&r, |t| t == 1 || t == 2),
        })
    }

    fn holds(&self, identity: &[u8; 32]) -> bool {
        self.identities.contains(identity)
    }

    fn count(&self) -> u64 {
        self.legacy.saturating_add(self.identities.len() as u64)
    }
}

/// The user's stable id (durable). Records written as JSON (`{"id":…}`) by releases before the
/// compact encoding are still read.
fn encode_user(id: &str) -> Vec<u8> {
    let mut w = RecordWriter::new(RECORD_SSKS_USER);
    w.str(1, id);
    w.finish()
}

fn decode_user(bytes: &[u8]) -> Result<String> {
    if bytes.first() == Some(&b'{') {
        #[derive(Deserialize)]
        struct Legacy {
            id: String,
        }
        return Ok(decode_json::<Legacy>(bytes)?.id);
    }
    Ok(RecordReader::parse(RECORD_SSKS_USER, bytes)?
        .str(1)?
        .to_owned())
}

/// A stored identity (durable): the blob's bytes (not its base64) and whether a challenged
/// session pushed it. Records written as JSON by earlier releases are still read.
#[derive(Clone)]
struct IdentityRecord {
    data: Vec<u8>,
    authenticated: bool,
}

impl IdentityRecord {
    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_SSKS_IDENTITY);
        w.bytes(1, &self.data).bool(2, self.authenticated);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.first() == Some(&b'{') {
            #[derive(Deserialize)]
            struct Legacy {
                data_b64: String,
                authenticated: bool,
            }
            let legacy: Legacy = decode_json(bytes)?;
            return Ok(IdentityRecord {
                data: STANDARD
                    .decode(legacy.data_b64)
                    .map_err(|_| Error::storage("stored identity is corrupt"))?,
                authenticated: legacy.authenticated,
            });
        }
        let r = RecordReader::parse(RECORD_SSKS_IDENTITY, bytes)?;
        Ok(IdentityRecord {
            data: r.bytes(1)?.to_vec(),
            authenticated: r.flag(2)?,
        })
    }
}

/// The local SSKS; see the [module docs](self).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::KeySplitStore;
/// use keyward::keysplit::{AuthFactor, ChallengeRequest, local::LocalKeySplitStore};
/// use keyward::otp::Outbox;
/// use keyward::store::MemoryStore;
///
/// let outbox = Outbox::new();
/// let ssks = LocalKeySplitStore::new(Arc::new(MemoryStore::new()), Arc::new(outbox.clone()));
/// let factor = AuthFactor::email("alice@example.com")?;
/// let request = ChallengeRequest::new("alice", factor.clone(), "Code: $$CHALLENGE$$");
/// let first = ssks.open_session(request.clone()).await?;
/// assert!(!first.must_authenticate); // nothing stored yet: no challenge sent
/// ssks.push(&first.session_id, &factor, "aGVsbG8=").await?;
///
/// let second = ssks.open_session(request).await?;
/// assert!(second.must_authenticate);
/// let challenge = outbox.last_code_to("alice@example.com").unwrap();
/// let authenticated = ssks.validate_challenge(&second.session_id, &challenge, &factor).await?;
/// let blob = ssks.search(&authenticated).await?;
/// assert_eq!(blob.data_b64, "aGVsbG8=");
/// assert!(!blob.authenticated); // the first push needed no challenge
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct LocalKeySplitStore {
    state: Arc<dyn StateStore>,
    sender: Arc<dyn CodeSender>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    test_mode: bool,
    max_attempts: u64,
    limits: SsksLimits,
    sid_key: Arc<SidKey>,
}

impl LocalKeySplitStore {
    /// A local SSKS keeping its state in `state` and sending challenges with `sender`, on the
    /// system clock and random source, refusing `fake_otp`.
    pub fn new(state: Arc<dyn StateStore>, sender: Arc<dyn CodeSender>) -> Self {
        LocalKeySplitStore {
            state,
            sender,
            clock: Arc::new(SystemClock),
            rng: Arc::new(SystemRandom::new()),
            test_mode: false,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            limits: SsksLimits::default(),
            sid_key: Arc::new(SidKey::default()),
        }
    }

    /// Replaces the send and storage limits.
    pub fn limits(mut self, limits: SsksLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts one challenge to send against the per-user, per-factor and total limits.
    async fn count_send(&self, request: &ChallengeRequest) -> Result<()> {
        let window = self.limits.window.as_secs().max(1);
        let index = self.now() / window;
        let factor = factor_id(&request.auth_factor);
        let user = sha256_hex(&[b"ssks-user", request.user_id.as_bytes()]);
        let index_part = index.to_string();
        let sends = || Key::ephemeral("ssks").part("sends");
        let counters = [
            (
                sends().part("user").part(&user).part(&index_part),
                self.limits.sends_per_user,
            ),
            (
                sends().part("factor").part(&factor).part(&index_part),
                self.limits.sends_per_factor,
            ),
            (
                sends().part("all").part(&index_part),
                self.limits.sends_total,
            ),
        ];
        let mut spent = false;
        for (key, limit) in counters {
            let n = self
                .state
                .increment(&key, 1, Some(self.limits.window))
                .await?;
            spent |= n > u64::from(limit);
        }
        if spent {
            return Err(Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_secs(
                        (index + 1) * window - self.now().min((index + 1) * window),
                    )),
                },
                "the challenge quota is spent; try again later",
            ));
        }
        Ok(())
    }

    /// Runs on this clock (session and challenge expiry, send windows; use the state store's)
    /// and random source (session ids, challenges) (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self.rng = env.random().clone();
        self
    }

    /// Test mode: accepts `fake_otp` (challenge [`FAKE_CHALLENGE`], nothing sent). Never in
    /// production.
    pub fn test_mode(mut self, on: bool) -> Self {
        self.test_mode = on;
        self
    }

    /// Whether `fake_otp` is accepted.
    pub fn is_test_mode(&self) -> bool {
        self.test_mode
    }

    /// Sets the number of challenge validations allowed per session (at least 1).
    pub fn max_attempts(mut self, attempts: u64) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The key of session-id masks and user tags, loaded once from the store (and made there
    /// when `create` and absent). `Ok(None)`: no key exists yet, so no session does either.
    async fn sid_key(&self, create: bool) -> Result<Option<&hmac::Key>> {
        if let Some(key) = self.sid_key.0.get() {
            return Ok(Some(key));
        }
        let store_key = Key::durable("ssks").part("sid-key");
        let mut stored = match self.state.get(&store_key).await? {
            Some(entry) => entry.value,
            None if !create => return Ok(None),
            None => {
                let mut fresh = random_array::<32>(self.rng.as_ref())?;
                let bytes = encode_sid_key(&fresh);
                zeroize::Zeroize::zeroize(&mut fresh);
                if self
                    .state
                    .insert(&store_key, bytes.clone(), None)
                    .await?
                    .is_some()
                {
                    bytes
                } else {
                    // Another instance made it first: use theirs.
                    self.state
                        .get(&store_key)
                        .await?
                        .ok_or_else(|| Error::storage("the ssks session key vanished"))?
                        .value
                }
            }
        };
        let key = decode_sid_key(&stored);
        zeroize::Zeroize::zeroize(&mut stored);
        let key = key?;
        Ok(Some(self.sid_key.0.get_or_init(|| key)))
    }

    /// Loads the user's session that `session` names, live and not expired.
    async fn live_session(&self, session: &SessionId) -> Result<SessionRecord> {
        let Some(key) = self.sid_key(false).await? else {
            return Err(unknown_session());
        };
        let sid = parse_sid(key, session).ok_or_else(unknown_session)?;
        let entry = self
            .state
            .get(&session_key(&sid.tag))
            .await?
            .ok_or_else(unknown_session)?;
        let record = SessionRecord::decode(&entry.value)?;
        if !record.is_session(&sid.hash) {
            return Err(unknown_session());
        }
        if self.now() >= record.expires_at {
            return Err(session_expired());
        }
        Ok(record)
    }

    async fn user_id_for(&self, user_id: &str, create: bool) -> Result<String> {
        let key = user_key(user_id);
        if let Some(entry) = self.state.get(&key).await? {
            return decode_user(&entry.value);
        }
        if !create {
            return Err(Error::new(ErrorKind::NotFound, "unknown ssks user"));
        }
        let fresh = uuid_v4(self.rng.as_ref())?;
        if self
            .state
            .insert(&key, encode_user(&fresh), None)
            .await?
            .is_some()
        {
            return Ok(fresh);
        }
        // Created meanwhile by another request: that id is the user's.
        let entry = self
            .state
            .get(&key)
            .await?
            .ok_or_else(|| Error::storage("the ssks user record vanished"))?;
        decode_user(&entry.value)
    }

    /// Holds one of the user's identity slots ([`SsksLimits::identities_per_user`]) for
    /// `identity`, the hash part of its key, in one compare-and-swap of the user's claims. A
    /// slot is claimed once per identity and never given back (identities are never deleted),
    /// so a push retried after a failed write finds its claim instead of spending another.
    async fn claim_identity_slot(&self, user_id: &str, identity: &str) -> Result<()> {
        let claim = crate::hex::decode_array::<32>(identity)
            .ok_or_else(|| Error::storage("stored ssks session is corrupt"))?;
        let bound = u64::from(self.limits.identities_per_user);
        let key = Key::durable("ssks")
            .part("identities")
            .part(&sha256_hex(&[b"ssks-user", user_id.as_bytes()]));
        let claimed = self
            .state
            .update_bytes(&key, |current| {
                let mut claims = match current {
                    Some(bytes) => Claims::decode(bytes)?,
                    None => Claims::default(),
                };
                if claims.holds(&claim) {
                    return Ok(Update::Keep(true));
                }
                if claims.count() >= bound {
                    return Ok(Update::Keep(false));
                }
                claims.identities.push(claim);
                Ok(Update::Set(claims.encode(), Ttl::Never, true))
            })
            .await?;
        if !claimed {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "too many identities are stored for this user",
            ));
        }
        Ok(())
    }

    /// Removes the user's session under `tag` if it is still the one hashed `hash`.
    async fn forget_session(&self, tag: &[u8; TAG_LEN], hash: &[u8; 32]) -> Result<()> {
        self.state
            .update_bytes(&session_key(tag), |current| {
                Ok(match current.map(SessionRecord::decode).transpose()? {
                    Some(record) if record.is_session(hash) => Update::Delete(()),
                    _ => Update::Keep(()),
                })
            })
            .await
    }

    /// [`KeySplitStore::search`] that tells "no identity" (`Ok(None)`) apart from session
    /// errors (for the server's `{"model":"TMRKey"}` answer).
    pub async fn search_stored(&self, session: &SessionId) -> Result<Option<StoredBlob>> {
        let record = self.live_session(session).await?;
        // Only a session that passed `challenge_validate` (whose id only the client ever sees)
        // may read stored ciphertext: the backend holds the twoManRuleKey and the id that
        // `challenge_send` returned, so answering that id would let it decrypt alone.
        if !record.authenticated {
            return Err(must_validate_first());
        }
        let Some(entry) = self.state.get(&identity_key_of(&record.identity)).await? else {
            return Ok(None);
        };
        let stored = IdentityRecord::decode(&entry.value)?;
        Ok(Some(StoredBlob {
            data_b64: STANDARD.encode(&stored.data),
            authenticated: stored.authenticated,
        }))
    }

    async fn send_challenge(&self, request: &ChallengeRequest, challenge: &str) -> Result<()> {
        let channel = match request.auth_factor.kind {
            AuthFactorType::Email => Channel::Email,
            AuthFactorType::Sms => Channel::Sms,
        };
        let body = Secret::from(request.template.replace(CHALLENGE_PLACEHOLDER, challenge));
        let mut message = OutgoingMessage::new(
            channel,
            request.auth_factor.value.clone(),
            body,
            Secret::from(challenge),
        );
        if let Some(subject) = &request.subject {
            message = message.subject(subject.clone());
        }
        self.sender.send(&message).await
    }
}

#[async_trait]
impl KeySplitStore for LocalKeySplitStore {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.ssks.open_session", skip_all, fields(backend = "local", user_id = %crate::trace::masked(&request.user_id), auth_factor = ?request.auth_factor), err(Display, level = "info")))]
    async fn open_session(&self, mut request: ChallengeRequest) -> Result<ChallengeSession> {
        request.auth_factor = request.auth_factor.normalized()?;
        request.validate()?;
        check_user_id(&request.user_id)?;
        if request.template.len() > MAX_TEMPLATE_LEN {
            return Err(Error::invalid_input("template is too long"));
        }
        if request.fake_otp && !self.test_mode {
            return Err(Error::config(
                "fake_otp is only accepted by a server started in test mode",
            ));
        }
        self.user_id_for(&request.user_id, request.create_user)
            .await?;
        let stored = self
            .state
            .get(&identity_key(&request.user_id, &request.auth_factor))
            .await?
            .is_some();
        let must_authenticate = request.force_auth || stored;

        let key = self
            .sid_key(true)
            .await?
            .ok_or_else(|| Error::storage("the ssks session key is missing"))?;
        let tag = user_tag(key, &request.user_id);
        let (session_id, hash) = new_sid(key, &tag, self.rng.as_ref())?;
        let challenge = if !must_authenticate {
            None
        } else if request.fake_otp {
            Some(Secret::from(FAKE_CHALLENGE))
        } else {
            Some(Secret::from(random_string(
                self.rng.as_ref(),
                CHALLENGE_ALPHABET,
                CHALLENGE_LEN,
            )?))
        };
        let record = SessionRecord {
            session_hash: hash,
            user_id: request.user_id.clone(),
            factor: factor_id(&request.auth_factor),
            identity: identity_hash(&request.user_id, &request.auth_factor),
            must_authenticate,
            authenticated: false,
            challenge_hash: challenge
                .as_ref()
                .map(|c| challenge_hash(&hash, c.expose())),
            attempts: 0,
            expires_at: self.now().saturating_add(CHALLENGE_VALIDITY.as_secs()),
            later: Unknown::default(),
        };
        if challenge.is_some() && !request.fake_otp {
            // Before anything changes: a refused send leaves the user's live session alone.
            self.count_send(&request).await?;
        }
        // One write: the new session replaces the user's previous one, whatever it was.
        self.state
            .put(
                &session_key(&tag),
                record.encode(),
                Some(CHALLENGE_VALIDITY + EXPIRED_GRACE),
            )
            .await?;
        if let Some(challenge) = &challenge
            && !request.fake_otp
        {
            let text = challenge.expose_str().unwrap_or_default();
            if let Err(err) = self.send_challenge(&request, text).await {
                // The session's challenge reached no one, so it can never be validated; removing
                // it is tidiness, and the send's error is the one to report.
                let _removed = self.forget_session(&tag, &hash).await;
                return Err(err);
            }
        }
        Ok(ChallengeSession {
            session_id,
            must_authenticate,
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.ssks.validate_challenge", skip_all, fields(backend = "local", auth_factor = ?auth_factor), err(Display, level = "info")))]
    async fn validate_challenge(
        &self,
        session: &SessionId,
        challenge: &Secret,
        auth_factor: &AuthFactor,
    ) -> Result<SessionId> {
        if challenge.is_empty() {
            return Err(Error::invalid_input("the challenge must not be empty"));
        }
        let Some(key) = self.sid_key(false).await? else {
            return Err(unknown_session());
        };
        let sid = parse_sid(key, session).ok_or_else(unknown_session)?;
        let given_code = challenge_hash(&sid.hash, challenge.expose());
        let given_factor = auth_factor.normalized().ok().map(|f| factor_id(&f));
        let (new_id, new_hash) = new_sid(key, &sid.tag, self.rng.as_ref())?;
        let now = self.now();
        let max_attempts = self.max_attempts;
        // Every rule in one compare-and-swap of the user's session: the session must still be
        // the live one, the attempt is counted, and a right challenge replaces the challenged
        // session by the authenticated one (single use: of racing right answers one swaps, the
        // others then find another session and answer NotFound).
        let outcome = self
            .state
            .update_bytes(&session_key(&sid.tag), |current| {
                let Some(bytes) = current else {
                    return Ok(Update::Keep(Validation::Unknown));
                };
                let mut record = SessionRecord::decode(bytes)?;
                if !record.is_session(&sid.hash) {
                    return Ok(Update::Keep(Validation::Unknown));
                }
                if now >= record.expires_at {
                    return Ok(Update::Keep(Validation::Expired));
                }
                record.attempts = record.attempts.saturating_add(1);
                if record.attempts > max_attempts {
                    return Ok(Update::Delete(Validation::TooManyAttempts));
                }
                let Some(expected) = record.challenge_hash else {
                    return Ok(Update::Set(
                        record.encode(),
                        Ttl::Keep,
                        Validation::NoChallenge,
                    ));
                };
                let factor_ok = given_factor
                    .as_ref()
                    .is_some_and(|f| constant_time_eq(f.as_bytes(), record.factor.as_bytes()));
                let code_ok = constant_time_eq(&given_code, &expected);
                if !(factor_ok && code_ok) {
                    return Ok(Update::Set(
                        record.encode(),
                        Ttl::Keep,
                        Validation::Rejected,
                    ));
                }
                let authenticated = SessionRecord {
                    session_hash: new_hash,
                    authenticated: true,
                    challenge_hash: None,
                    attempts: 0,
                    expires_at: now.saturating_add(CHALLENGE_VALIDITY.as_secs()),
                    ..record
                };
                Ok(Update::Set(
                    authenticated.encode(),
                    Ttl::After(CHALLENGE_VALIDITY + EXPIRED_GRACE),
                    Validation::Validated,
                ))
            })
            .await?;
        match outcome {
            Validation::Validated => Ok(new_id),
            Validation::Unknown => Err(unknown_session()),
            Validation::Expired => Err(session_expired()),
            Validation::TooManyAttempts => Err(Error::new(
                ErrorKind::TooManyAttempts,
                "too many challenge attempts for this session",
            )),
            Validation::NoChallenge => Err(Error::new(
                ErrorKind::Rejected,
                "no challenge is pending for this session",
            )),
            Validation::Rejected => Err(Error::new(
                ErrorKind::Rejected,
                "incorrect challenge or authentication factor",
            )),
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.ssks.push", skip_all, fields(backend = "local", auth_factor = ?auth_factor, bytes = data_b64.len()), err(Display, level = "info")))]
    async fn push(
        &self,
        session: &SessionId,
        auth_factor: &AuthFactor,
        data_b64: &str,
    ) -> Result<String> {
        if data_b64.is_empty() || data_b64.len() > MAX_PUSH_B64_LEN {
            return Err(Error::invalid_input(
                "data_b64 must be non-empty and at most 512 KiB",
            ));
        }
        let Ok(data) = STANDARD.decode(data_b64) else {
            return Err(Error::invalid_input("data_b64 is not standard base64"));
        };
        let record = self.live_session(session).await?;
        if record.must_authenticate && !record.authenticated {
            return Err(must_validate_first());
        }
        if !auth_factor
            .normalized()
            .is_ok_and(|f| constant_time_eq(factor_id(&f).as_bytes(), record.factor.as_bytes()))
        {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "the authentication factor is not the session's",
            ));
        }
        let id = self.user_id_for(&record.user_id, true).await?;
        let stored = IdentityRecord {
            data,
            authenticated: record.authenticated,
        };
        let key = identity_key_of(&record.identity);
        let existing = self.state.get(&key).await?;
        if existing.is_none() {
            // A new identity for this user: bounded per user (each may be 512 KiB).
            self.claim_identity_slot(&record.user_id, &record.identity)
                .await?;
        }
        if record.authenticated {
            self.state.put(&key, stored.encode(), None).await?;
            return Ok(id);
        }
        // A session that never passed a challenge (opened with `must_authenticate: false`) may
        // only create the first identity, never replace one: otherwise the backend could
        // overwrite the user's identity with one it chose.
        let already = match existing {
            Some(entry) => Some(IdentityRecord::decode(&entry.value)?),
            None => match self.state.insert(&key, stored.encode(), None).await? {
                Some(_) => None,
                None => self
                    .state
                    .get(&key)
                    .await?
                    .map(|entry| IdentityRecord::decode(&entry.value))
                    .transpose()?,
            },
        };
        if let Some(current) = already {
            // The retry of a push whose reply was lost finds its own blob: that is success. The
            // bytes are ciphertext the client made with fresh randomness, so this answers no
            // question the backend could usefully ask.
            let same = !current.authenticated
                && current.data.len() == stored.data.len()
                && constant_time_eq(&current.data, &stored.data);
            if !same {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    "an identity is already stored: validate a challenge to replace it",
                ));
            }
        }
        Ok(id)
    }

    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(
            name = "keyward.ssks.search",
            skip_all,
            fields(backend = "local"),
            err(Display, level = "info")
        )
    )]
    async fn search(&self, session: &SessionId) -> Result<StoredBlob> {
        self.search_stored(session)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no identity is stored"))
    }
}

impl fmt::Debug for IdentityRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityRecord")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

/// What one validation's compare-and-swap decided.
#[derive(Debug, Clone, Copy)]
enum Validation {
    Validated,
    Unknown,
    Expired,
    TooManyAttempts,
    NoChallenge,
    Rejected,
}

fn session_expired() -> Error {
    Error::new(ErrorKind::Expired, "the ssks session has expired")
}

fn unknown_session() -> Error {
    Error::new(ErrorKind::NotFound, "unknown or replaced ssks session")
}

fn must_validate_first() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "this session must validate its challenge first",
    )
}

fn check_user_id(user_id: &str) -> Result<()> {
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(Error::invalid_input("user id is too long"));
    }
    Ok(())
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    crate::hex::encode(&sha256(parts))
}

/// SHA-256 of length-prefixed parts, so that parts cannot run into each other.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn session_hash(sid: &[u8]) -> [u8; 32] {
    sha256(&[b"ssks-session-v2", sid])
}

fn challenge_hash(session_hash: &[u8; 32], challenge: &[u8]) -> [u8; 32] {
    sha256(&[b"ssks-challenge-v2", session_hash, challenge])
}

/// The tag of a user's session key: the first [`TAG_LEN`] bytes of `HMAC-SHA256(sid key,
/// "keyward-ssks-user-v1" || user id)`, so no session key holds a user id.
fn user_tag(key: &hmac::Key, user_id: &str) -> [u8; TAG_LEN] {
    labeled_tag(key, b"keyward-ssks-user-v1", user_id.as_bytes())
}

/// The mask of a session id's tag: `HMAC-SHA256(sid key, "keyward-ssks-session-v1" || the id's
/// random bytes)`, first [`TAG_LEN`] bytes.
fn sid_mask(key: &hmac::Key, nonce: &[u8]) -> [u8; TAG_LEN] {
    labeled_tag(key, b"keyward-ssks-session-v1", nonce)
}

/// The first [`TAG_LEN`] bytes of `HMAC-SHA256(key, label || data)`.
fn labeled_tag(key: &hmac::Key, label: &[u8], data: &[u8]) -> [u8; TAG_LEN] {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(label);
    ctx.update(data);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(
        ctx.sign()
            .as_ref()
            .get(..TAG_LEN)
            .unwrap_or(&[0u8; TAG_LEN]),
    );
    tag
}

/// A new session id for the user tagged `tag`, and its hash: [`SID_NONCE_LEN`] random bytes,
/// then the tag masked by their keyed hash, base64url. The id leads to its user's session key
/// with no index, and two ids of one user look unrelated without the sid key.
fn new_sid(
    key: &hmac::Key,
    tag: &[u8; TAG_LEN],
    rng: &dyn SecureRandom,
) -> Result<(SessionId, [u8; 32])> {
    let mut raw = [0u8; SID_LEN];
    raw[..SID_NONCE_LEN].copy_from_slice(&random_array::<SID_NONCE_LEN>(rng)?);
    let mask = sid_mask(key, &raw[..SID_NONCE_LEN]);
    for i in 0..TAG_LEN {
        raw[SID_NONCE_LEN + i] = tag[i] ^ mask[i];
    }
    let hash = session_hash(&raw);
    let id = SessionId::new(URL_SAFE_NO_PAD.encode(raw));
    zeroize::Zeroize::zeroize(&mut raw);
    Ok((id, hash))
}

/// The tag and hash of a session id; `None` for anything [`new_sid`] cannot have made (ids of
/// earlier releases included).
fn parse_sid(key: &hmac::Key, session: &SessionId) -> Option<ParsedSid> {
    let text = session.expose().as_bytes();
    if text.len() != URL_SAFE_NO_PAD_LEN {
        return None;
    }
    let mut raw = [0u8; SID_LEN];
    let n = URL_SAFE_NO_PAD.decode_slice(text, &mut raw).ok()?;
    if n != SID_LEN {
        return None;
    }
    let mask = sid_mask(key, &raw[..SID_NONCE_LEN]);
    let mut tag = [0u8; TAG_LEN];
    for i in 0..TAG_LEN {
        tag[i] = raw[SID_NONCE_LEN + i] ^ mask[i];
    }
    let hash = session_hash(&raw);
    zeroize::Zeroize::zeroize(&mut raw);
    Some(ParsedSid { tag, hash })
}

/// Characters of a session id (no padding: [`SID_LEN`] is a multiple of 3).
const URL_SAFE_NO_PAD_LEN: usize = SID_LEN / 3 * 4;
const _: () = assert!(SID_LEN.is_multiple_of(3));

fn session_key(tag: &[u8; TAG_LEN]) -> Key {
    Key::ephemeral("ssks")
        .part("sess")
        .part(&crate::hex::encode(tag))
}

fn user_key(user_id: &str) -> Key {
    Key::durable("ssks").part("user").part(user_id)
}

fn factor_kind(factor: &AuthFactor) -> &'static [u8] {
    match factor.kind {
        AuthFactorType::Email => b"EM",
        AuthFactorType::Sms => b"SMS",
    }
}

/// A normalized factor's hash, kept in a session instead of the address or number.
fn factor_id(factor: &AuthFactor) -> String {
    sha256_hex(&[b"ssks-factor", factor_kind(factor), factor.value.as_bytes()])
}

/// The hash part of the identity key of (user, factor).
fn identity_hash(user_id: &str, factor: &AuthFactor) -> String {
    sha256_hex(&[
        user_id.as_bytes(),
        factor_kind(factor),
        factor.value.as_bytes(),
    ])
}

fn identity_key_of(hash: &str) -> Key {
    Key::durable("ssks").part("identity").part(hash)
}

fn identity_key(user_id: &str, factor: &AuthFactor) -> Key {
    identity_key_of(&identity_hash(user_id, factor))
}

fn uuid_v4(rng: &dyn SecureRandom) -> Result<String> {
    let mut b = random_array::<16>(rng)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::otp::Outbox;
    use crate::store::MemoryStore;

    struct Fixture {
        ssks: LocalKeySplitStore,
        outbox: Outbox,
        clock: Arc<ManualClock>,
        state: Arc<MemoryStore>,
    }

    fn fixture() -> Fixture {
        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let env = Env::system().with_clock(clock.clone());
        let state = Arc::new(MemoryStore::new().env(env.clone()));
        let outbox = Outbox::new();
        let ssks = LocalKeySplitStore::new(state.clone(), Arc::new(outbox.clone())).env(env);
        Fixture {
            ssks,
            outbox,
            clock,
            state,
        }
    }

    fn factor() -> AuthFactor {
        AuthFactor::email("bob@example.com").unwrap()
    }

    /// The store key of the session `id` names.
    async fn key_of(f: &Fixture, id: &SessionId) -> Key {
        let key = f.ssks.sid_key(false).await.unwrap().unwrap();
        session_key(&parse_sid(key, id).unwrap().tag)
    }

    fn request() -> ChallengeRequest {
        ChallengeRequest::new("bob", factor(), "<p>$$CHALLENGE$$</p>").subject("Your code")
    }

    #[tokio::test]
    async fn challenge_shape_and_delivery() {
        let f = fixture();
        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        assert!(s.must_authenticate);
        let msg = f.outbox.last_to("bob@example.com").unwrap();
        let code = msg.code.expose_str().unwrap().to_owned();
        assert_eq!(code.len(), CHALLENGE_LEN);
        assert!(code.bytes().all(|b| CHALLENGE_ALPHABET.contains(&b)));
        assert_eq!(msg.body.expose_str().unwrap(), format!("<p>{code}</p>"));
        assert_eq!(msg.subject.as_deref(), Some("Your code"));
        assert_eq!(msg.channel, Channel::Email);
        // Nothing secret is stored in clear, and the session's key holds no user id.
        let session_entry = key_of(&f, &s.session_id).await;
        assert!(!session_entry.as_str().contains("bob"));
        for key in [user_key("bob"), session_entry] {
            let entry = f.state.get(&key).await.unwrap().unwrap();
            let text = String::from_utf8_lossy(&entry.value).to_string();
            assert!(!text.contains(&code) && !text.contains(s.session_id.expose()));
        }
    }

    #[tokio::test]
    async fn attempts_are_limited_and_challenge_single_use() {
        let f = fixture();
        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        for _ in 0..DEFAULT_MAX_ATTEMPTS - 1 {
            let err = f
                .ssks
                .validate_challenge(&s.session_id, &Secret::from("zzzzzzzz"), &factor())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Rejected);
        }
        let new_id = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap();
        let again = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap_err();
        assert_eq!(again.kind(), &ErrorKind::NotFound);
        // The authenticated session has no challenge left to validate.
        let err = f
            .ssks
            .validate_challenge(&new_id, &code, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Rejected);

        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        for _ in 0..DEFAULT_MAX_ATTEMPTS {
            let _ = f
                .ssks
                .validate_challenge(&s.session_id, &Secret::from("zzzzzzzz"), &factor())
                .await;
        }
        let err = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::TooManyAttempts);
        let err = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn concurrent_correct_validations_succeed_once() {
        let f = fixture();
        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (ssks, id, code) = (f.ssks.clone(), s.session_id.clone(), code.clone());
            tasks.push(tokio::spawn(async move {
                ssks.validate_challenge(&id, &code, &factor()).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 1);
    }

    #[tokio::test]
    async fn one_live_session_and_expiry() {
        let f = fixture();
        let first = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let first_code = f.outbox.last_code_to("bob@example.com").unwrap();
        let second = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let err = f
            .ssks
            .validate_challenge(&first.session_id, &first_code, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::NotFound);
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        f.clock.advance(CHALLENGE_VALIDITY);
        let err = f
            .ssks
            .validate_challenge(&second.session_id, &code, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Expired);
    }

    #[tokio::test]
    async fn must_authenticate_rules_and_fake_otp() {
        let f = fixture();
        let err = f
            .ssks
            .open_session(request().fake_otp(true))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        let err = f
            .ssks
            .open_session(request().create_user(false))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::NotFound);
        let err = f
            .ssks
            .open_session(ChallengeRequest::new("bob", factor(), "no placeholder"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
        assert!(f.outbox.is_empty());

        let ssks = f.ssks.clone().test_mode(true);
        let s = ssks.open_session(request()).await.unwrap();
        assert!(!s.must_authenticate);
        let err = ssks
            .validate_challenge(&s.session_id, &Secret::from(FAKE_CHALLENGE), &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Rejected);
        let id1 = ssks.push(&s.session_id, &factor(), "AAAA").await.unwrap();
        // Another factor of the same user has nothing stored.
        let sms = AuthFactor::sms("+33612345678").unwrap();
        let other = ChallengeRequest::new("bob", sms, "$$CHALLENGE$$");
        assert!(!ssks.open_session(other).await.unwrap().must_authenticate);
        let s = ssks.open_session(request().fake_otp(true)).await.unwrap();
        assert!(s.must_authenticate);
        assert!(f.outbox.is_empty(), "fake_otp sends nothing");
        let err = ssks.search(&s.session_id).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);
        let err = ssks
            .push(&s.session_id, &factor(), "AAAA")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);
        let auth = ssks
            .validate_challenge(&s.session_id, &Secret::from(FAKE_CHALLENGE), &factor())
            .await
            .unwrap();
        let blob = ssks.search(&auth).await.unwrap();
        assert_eq!(blob.data_b64, "AAAA");
        assert!(!blob.authenticated);
        let id2 = ssks.push(&auth, &factor(), "BBBB").await.unwrap();
        assert_eq!(id1, id2);
        assert_eq!(id1.len(), 36);
        let blob = ssks.search(&auth).await.unwrap();
        assert_eq!((blob.data_b64.as_str(), blob.authenticated), ("BBBB", true));
        let err = ssks
            .push(&auth, &factor(), "not base64!")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
        let err = ssks
            .validate_challenge(&auth, &Secret::from(""), &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    }

    /// Regression (security issue, item 1): the backend sees only the id `open_session` gives;
    /// with a first store (`must_authenticate: false`) that id could push and then read the
    /// ciphertext back, which the backend alone decrypts with the twoManRuleKey it holds.
    #[tokio::test]
    async fn the_backends_session_never_reads_ciphertext() {
        let f = fixture();
        let first = f.ssks.open_session(request()).await.unwrap();
        assert!(!first.must_authenticate);
        f.ssks
            .push(&first.session_id, &factor(), "AAAA")
            .await
            .unwrap();
        let err = f.ssks.search(&first.session_id).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);
        let err = f.ssks.search_stored(&first.session_id).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);
        // Nor can it push over the stored identity with that id.
        let err = f
            .ssks
            .push(&first.session_id, &factor(), "BBBB")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);

        // A second unchallenged session opened before the first push cannot overwrite it either.
        let other = AuthFactor::sms("+33612345678").unwrap();
        let req = ChallengeRequest::new("carol", other.clone(), "$$CHALLENGE$$");
        let a = f.ssks.open_session(req.clone()).await.unwrap();
        assert!(!a.must_authenticate);
        f.ssks.push(&a.session_id, &other, "CCCC").await.unwrap();
        let err = f
            .ssks
            .push(&a.session_id, &other, "DDDD")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);

        // The client's validated session reads the original blob.
        let s = f.ssks.open_session(request()).await.unwrap();
        assert!(s.must_authenticate);
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        let auth = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap();
        let blob = f.ssks.search(&auth).await.unwrap();
        assert_eq!(
            (blob.data_b64.as_str(), blob.authenticated),
            ("AAAA", false)
        );
    }

    #[tokio::test]
    async fn records_are_compact_and_hold_no_factor_in_clear() {
        let f = fixture();
        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let entry = f
            .state
            .get(&key_of(&f, &s.session_id).await)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            entry.value[..2],
            [crate::store::record::FORMAT, RECORD_SSKS_SESSION]
        );
        assert!(!String::from_utf8_lossy(&entry.value).contains("bob@example.com"));
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        let auth = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap();
        f.ssks.push(&auth, &factor(), "AAECAwQ=").await.unwrap();
        let stored = f
            .state
            .get(&identity_key("bob", &factor()))
            .await
            .unwrap()
            .unwrap();
        // The blob's bytes, not its base64 (nor a JSON array of integers).
        assert_eq!(
            IdentityRecord::decode(&stored.value).unwrap().data,
            [0, 1, 2, 3, 4]
        );
        assert!(stored.value.len() < 16, "{} bytes", stored.value.len());
        assert_eq!(f.ssks.search(&auth).await.unwrap().data_b64, "AAECAwQ=");
    }

    /// Appends a later release's fields (two carried, one derived) to the record under `key`.
    async fn add_later_fields(f: &Fixture, key: &Key) {
        let entry = f.state.get(key).await.unwrap().unwrap();
        let mut bytes = entry.value.clone();
        let mut w = RecordWriter::body();
        w.bytes(60, b"later a")
            .bytes(crate::store::record::DERIVED, b"derived")
            .bytes(61, b"later b");
        bytes.extend_from_slice(&w.finish());
        let write = crate::store::Write::Set {
            value: bytes,
            ttl: Ttl::Keep,
        };
        f.state
            .compare_and_swap(key, entry.version, write)
            .await
            .unwrap();
    }

    async fn later_fields(f: &Fixture, key: &Key, kind: u8) -> Vec<(u8, Vec<u8>)> {
        let entry = f.state.get(key).await.unwrap().unwrap();
        RecordReader::parse(kind, &entry.value)
            .unwrap()
            .fields()
            .filter(|(t, _)| *t >= 60)
            .map(|(t, v)| (t, v.to_vec()))
            .collect()
    }

    #[tokio::test]
    async fn validating_and_pushing_keep_fields_of_a_later_release() {
        let f = fixture();
        let expected = vec![(60, b"later a".to_vec()), (61, b"later b".to_vec())];
        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        let key = key_of(&f, &s.session_id).await;
        add_later_fields(&f, &key).await;
        // A refused challenge counts an attempt; the right one swaps in the authenticated session.
        let wrong = Secret::from("not-the-code");
        let err = f
            .ssks
            .validate_challenge(&s.session_id, &wrong, &factor())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Rejected);
        assert_eq!(later_fields(&f, &key, RECORD_SSKS_SESSION).await, expected);
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        let auth = f
            .ssks
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap();
        assert_eq!(key_of(&f, &auth).await, key);
        assert_eq!(later_fields(&f, &key, RECORD_SSKS_SESSION).await, expected);
        // The first push claims the identity's slot; a later release's fields on the claims
        // survive the next claim.
        f.ssks.push(&auth, &factor(), "AAECAwQ=").await.unwrap();
        assert_eq!(later_fields(&f, &key, RECORD_SSKS_SESSION).await, expected);
        let claims_key = Key::durable("ssks")
            .part("identities")
            .part(&sha256_hex(&[b"ssks-user", b"bob"]));
        add_later_fields(&f, &claims_key).await;
        let other = identity_hash("bob", &AuthFactor::sms("+33612345678").unwrap());
        f.ssks.claim_identity_slot("bob", &other).await.unwrap();
        assert_eq!(
            later_fields(&f, &claims_key, RECORD_SSKS_CLAIMS).await,
            expected
        );
        let claims = Claims::decode(&f.state.get(&claims_key).await.unwrap().unwrap().value);
        assert_eq!(claims.unwrap().identities.len(), 2);
    }

    #[tokio::test]
    async fn session_ids_carry_their_users_key_masked() {
        let f = fixture();
        let a = f.ssks.open_session(request()).await.unwrap();
        let b = f.ssks.open_session(request()).await.unwrap();
        let (ra, rb) = [&a, &b]
            .map(|s| URL_SAFE_NO_PAD.decode(s.session_id.expose()).unwrap())
            .into();
        assert_eq!((a.session_id.expose().len(), ra.len()), (64, SID_LEN));
        // One user, one session key, yet the ids' tag parts look unrelated.
        assert_eq!(
            key_of(&f, &a.session_id).await,
            key_of(&f, &b.session_id).await
        );
        assert_ne!(ra[SID_NONCE_LEN..], rb[SID_NONCE_LEN..]);
        // The second replaced the first; a tampered id, an id of an earlier release (43
        // characters) and garbage name no session.
        let mut tampered = b.session_id.expose().to_owned().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        for id in [
            a.session_id.expose().to_owned(),
            String::from_utf8(tampered).unwrap(),
            URL_SAFE_NO_PAD.encode([7u8; 32]),
            "x".repeat(64),
            String::new(),
        ] {
            let err = f
                .ssks
                .push(&SessionId::new(id), &factor(), "AAAA")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::NotFound);
        }
        f.ssks.push(&b.session_id, &factor(), "AAAA").await.unwrap();
    }

    #[tokio::test]
    async fn instances_on_one_store_share_the_session_key_and_lookups_write_nothing() {
        let f = fixture();
        let sid_key = Key::durable("ssks").part("sid-key");
        // Before any session, a lookup finds nothing and makes no key.
        let err = f
            .ssks
            .search(&SessionId::new("A".repeat(64)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::NotFound);
        assert!(f.state.get(&sid_key).await.unwrap().is_none());
        let s = f
            .ssks
            .open_session(request().force_auth(true))
            .await
            .unwrap();
        assert!(f.state.get(&sid_key).await.unwrap().is_some());
        // Another instance on the same store (as after a restart) validates it.
        let other = LocalKeySplitStore::new(f.state.clone(), Arc::new(f.outbox.clone()))
            .env(Env::system().with_clock(f.clock.clone()));
        assert!(format!("{:?}", other.sid_key).contains("not loaded"));
        let code = f.outbox.last_code_to("bob@example.com").unwrap();
        let auth = other
            .validate_challenge(&s.session_id, &code, &factor())
            .await
            .unwrap();
        assert!(format!("{:?}", other.sid_key).contains("REDACTED"));
        let err = f.ssks.search(&auth).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::NotFound, "nothing stored yet");
    }

    #[tokio::test]
    async fn identity_slots_of_earlier_releases_count_and_retries_reuse_their_claim() {
        let f = fixture();
        let ssks = f.ssks.clone().limits(SsksLimits {
            identities_per_user: 2,
            ..SsksLimits::default()
        });
        let count_key = Key::durable("ssks")
            .part("identities")
            .part(&sha256_hex(&[b"ssks-user", b"bob"]));
        // An earlier release's counter at the bound: no new identity.
        f.state.put(&count_key, b"2".to_vec(), None).await.unwrap();
        let s = ssks.open_session(request()).await.unwrap();
        let err = ssks
            .push(&s.session_id, &factor(), "AAAA")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);
        // Below it: one more, claimed by its identity; claiming it again spends nothing.
        f.state.put(&count_key, b"1".to_vec(), None).await.unwrap();
        ssks.push(&s.session_id, &factor(), "AAAA").await.unwrap();
        let identity = identity_hash("bob", &factor());
        for _ in 0..3 {
            ssks.claim_identity_slot("bob", &identity).await.unwrap();
        }
        let stored = f.state.get(&count_key).await.unwrap().unwrap();
        let claims = Claims::decode(&stored.value).unwrap();
        assert_eq!((claims.legacy, claims.identities.len()), (1, 1));
        assert_eq!(Claims::decode(&claims.encode()).unwrap().count(), 2);
        let other = identity_hash("bob", &AuthFactor::sms("+33612345678").unwrap());
        let err = ssks.claim_identity_slot("bob", &other).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden);
        assert!(Claims::decode(b"").is_err() && Claims::decode(b"12x").is_err());
    }

    #[test]
    fn session_records_round_trip_and_survive_truncation() {
        let record = SessionRecord {
            session_hash: [3; 32],
            user_id: "bob".into(),
            factor: factor_id(&factor()),
            identity: identity_hash("bob", &factor()),
            must_authenticate: true,
            authenticated: false,
            challenge_hash: Some([9; 32]),
            attempts: 2,
            expires_at: 1_700_000_000,
            later: Unknown::default(),
        };
        let bytes = record.encode();
        let back = SessionRecord::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert!(back.is_session(&[3; 32]) && !back.is_session(&[4; 32]));
        // A cut record never panics; only losing the last (optional) field still decodes.
        for cut in 0..bytes.len() {
            if let Ok(cut) = SessionRecord::decode(&bytes[..cut]) {
                assert!(cut.challenge_hash.is_none());
            }
        }
    }

    #[test]
    fn durable_records_of_earlier_releases_are_still_read() {
        let user = decode_user(br#"{"id":"0d5e7c1a-0000-4000-8000-000000000000"}"#).unwrap();
        assert_eq!(user, "0d5e7c1a-0000-4000-8000-000000000000");
        let identity =
            IdentityRecord::decode(br#"{"data_b64":"AAECAwQ=","authenticated":true}"#).unwrap();
        assert_eq!(
            (identity.data.as_slice(), identity.authenticated),
            (&[0u8, 1, 2, 3, 4][..], true)
        );
        assert_eq!(decode_user(&encode_user("x")).unwrap(), "x");
        assert!(decode_user(b"\x01\x42").is_err());
    }
}
