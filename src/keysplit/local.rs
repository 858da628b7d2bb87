//! A local SSKS: the [`KeySplitStore`] semantics of Seald's key storage, kept in a
//! [`StateStore`] under `ssks` keys (sessions, attempts and live pointers ephemeral; users and
//! stored identities durable) and sending challenges through a [`CodeSender`].
//!
//! - `open_session` creates the user when asked, decides `must_authenticate` (true when an
//!   identity was already stored for that user and factor, or when `force_auth` is set), sends an
//!   8-character challenge from [`CHALLENGE_ALPHABET`] valid [`CHALLENGE_VALIDITY`] when one is
//!   needed, and makes the new session the user's only live one.
//! - `validate_challenge` counts the attempt first (atomic increment, [`DEFAULT_MAX_ATTEMPTS`]
//!   per session), compares hashes in constant time, consumes the challenged session (single use)
//!   and returns a new authenticated session id.
//! - `push` stores the blob with `authenticated` = whether the session passed a challenge, and
//!   returns the user's stable UUID. A session that did not pass a challenge can push only when
//!   it was opened with `must_authenticate: false`, and only the first identity for its factor
//!   (never over an existing one).
//! - `search` answers only a session that passed `challenge_validate`. The backend only ever
//!   sees the session id of `open_session` (`challenge_send`), and it holds the twoManRuleKey:
//!   if that id could read the ciphertext, the backend alone could decrypt the identity.
//!
//! - Limits ([`SsksLimits`]): challenges sent per user, per address and in total per window
//!   (past them `open_session` is [`RateLimited`](ErrorKind::RateLimited) and sends nothing),
//!   and identities stored per user.
//!
//! Session ids and challenges are stored only as SHA-256 hashes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
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
use crate::store::record::{RecordReader, RecordWriter};
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

// Record kinds of the local SSKS (see `store::record`).
const RECORD_SSKS_SESSION: u8 = 0x40;
const RECORD_SSKS_LIVE: u8 = 0x41;
const RECORD_SSKS_USER: u8 = 0x42;
const RECORD_SSKS_IDENTITY: u8 = 0x43;

/// A session (ephemeral). The factor itself is not kept: its hash tells it apart, and the
/// identity it reaches is named by `identity`, the hash part of its key.
#[derive(Debug, Clone)]
struct SessionRecord {
    user_id: String,
    /// [`factor_id`] of the session's normalized factor.
    factor: String,
    /// The hash part of the identity key of (user, factor).
    identity: String,
    must_authenticate: bool,
    authenticated: bool,
    /// Hex SHA-256 of (session hash, challenge); `None` once no challenge can be validated.
    challenge_hash: Option<String>,
    /// Unix seconds.
    expires_at: u64,
}

impl SessionRecord {
    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_SSKS_SESSION);
        w.str(1, &self.user_id)
            .str(2, &self.factor)
            .str(3, &self.identity)
            .bool(4, self.must_authenticate)
            .bool(5, self.authenticated)
            .u64(7, self.expires_at);
        if let Some(h) = &self.challenge_hash {
            w.str(6, h);
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let r = RecordReader::parse(RECORD_SSKS_SESSION, bytes)?;
        Ok(SessionRecord {
            user_id: r.str(1)?.to_owned(),
            factor: r.str(2)?.to_owned(),
            identity: r.str(3)?.to_owned(),
            must_authenticate: r.flag(4)?,
            authenticated: r.flag(5)?,
            challenge_hash: r.opt_str(6)?.map(str::to_owned),
            expires_at: r.u64(7)?,
        })
    }
}

/// The user's live session (ephemeral): the hash of its id.
fn encode_live(session_hash: &str) -> Vec<u8> {
    let mut w = RecordWriter::new(RECORD_SSKS_LIVE);
    w.str(1, session_hash);
    w.finish()
}

fn decode_live(bytes: &[u8]) -> Result<String> {
    Ok(RecordReader::parse(RECORD_SSKS_LIVE, bytes)?
        .str(1)?
        .to_owned())
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

    /// Loads a session that is live and not expired.
    async fn live_session(&self, session: &SessionId) -> Result<(String, SessionRecord)> {
        let hash = session_hash(session);
        let entry = self
            .state
            .get(&session_key(&hash))
            .await?
            .ok_or_else(unknown_session)?;
        let record = SessionRecord::decode(&entry.value)?;
        let live = match self.state.get(&live_key(&record.user_id)).await? {
            Some(entry) => Some(decode_live(&entry.value)?),
            None => None,
        };
        if live.as_deref() != Some(hash.as_str()) {
            return Err(unknown_session());
        }
        if self.now() >= record.expires_at {
            return Err(Error::new(
                ErrorKind::Expired,
                "the ssks session has expired",
            ));
        }
        Ok((hash, record))
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
        self.state
            .update_bytes(&key, |current| {
                Ok(match current {
                    Some(existing) => Update::Keep(decode_user(existing)?),
                    None => Update::Set(encode_user(&fresh), Ttl::Never, fresh.clone()),
                })
            })
            .await
    }

    /// Replaces the user's live session with `new_hash`; returns the previous one.
    async fn set_live(&self, user_id: &str, new_hash: &str) -> Result<Option<String>> {
        let old = self
            .state
            .update_bytes(&live_key(user_id), |current| {
                Ok(Update::Set(
                    encode_live(new_hash),
                    Ttl::After(CHALLENGE_VALIDITY + EXPIRED_GRACE),
                    current.map(decode_live).transpose()?,
                ))
            })
            .await?;
        if let Some(old) = &old
            && old != new_hash
        {
            self.forget_session(old).await?;
        }
        Ok(old)
    }

    async fn forget_session(&self, hash: &str) -> Result<()> {
        self.state.delete(&session_key(hash)).await?;
        self.state.delete(&attempts_key(hash)).await?;
        Ok(())
    }

    /// [`KeySplitStore::search`] that tells "no identity" (`Ok(None)`) apart from session
    /// errors (for the server's `{"model":"TMRKey"}` answer).
    pub async fn search_stored(&self, session: &SessionId) -> Result<Option<StoredBlob>> {
        let (_, record) = self.live_session(session).await?;
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

        let session_id =
            SessionId::new(URL_SAFE_NO_PAD.encode(random_array::<32>(self.rng.as_ref())?));
        let hash = session_hash(&session_id);
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
            user_id: request.user_id.clone(),
            factor: factor_id(&request.auth_factor),
            identity: identity_hash(&request.user_id, &request.auth_factor),
            must_authenticate,
            authenticated: false,
            challenge_hash: challenge
                .as_ref()
                .map(|c| challenge_hash(&hash, c.expose())),
            expires_at: self.now().saturating_add(CHALLENGE_VALIDITY.as_secs()),
        };
        if challenge.is_some() && !request.fake_otp {
            // Before anything changes: a refused send leaves the user's live session alone.
            self.count_send(&request).await?;
        }
        self.state
            .put(
                &session_key(&hash),
                record.encode(),
                Some(CHALLENGE_VALIDITY + EXPIRED_GRACE),
            )
            .await?;
        self.set_live(&request.user_id, &hash).await?;
        if let Some(challenge) = &challenge
            && !request.fake_otp
        {
            let text = challenge.expose_str().unwrap_or_default();
            if let Err(err) = self.send_challenge(&request, text).await {
                self.forget_session(&hash).await?;
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
        let (hash, record) = self.live_session(session).await?;
        let attempts = self
            .state
            .increment(
                &attempts_key(&hash),
                1,
                Some(CHALLENGE_VALIDITY + EXPIRED_GRACE),
            )
            .await?;
        if attempts > self.max_attempts {
            self.forget_session(&hash).await?;
            return Err(Error::new(
                ErrorKind::TooManyAttempts,
                "too many challenge attempts for this session",
            ));
        }
        let Some(expected) = &record.challenge_hash else {
            return Err(Error::new(
                ErrorKind::Rejected,
                "no challenge is pending for this session",
            ));
        };
        let factor_ok = auth_factor
            .normalized()
            .is_ok_and(|f| constant_time_eq(factor_id(&f).as_bytes(), record.factor.as_bytes()));
        let code_ok = constant_time_eq(
            challenge_hash(&hash, challenge.expose()).as_bytes(),
            expected.as_bytes(),
        );
        if !(factor_ok && code_ok) {
            return Err(Error::new(
                ErrorKind::Rejected,
                "incorrect challenge or authentication factor",
            ));
        }
        // Single use: of concurrent correct validations, one takes the session.
        if self.state.take(&session_key(&hash)).await?.is_none() {
            return Err(Error::new(
                ErrorKind::AlreadyUsed,
                "the challenge was already used",
            ));
        }
        self.state.delete(&attempts_key(&hash)).await?;

        let new_id = SessionId::new(URL_SAFE_NO_PAD.encode(random_array::<32>(self.rng.as_ref())?));
        let new_hash = session_hash(&new_id);
        let authenticated = SessionRecord {
            challenge_hash: None,
            authenticated: true,
            expires_at: self.now().saturating_add(CHALLENGE_VALIDITY.as_secs()),
            ..record
        };
        self.state
            .put(
                &session_key(&new_hash),
                authenticated.encode(),
                Some(CHALLENGE_VALIDITY + EXPIRED_GRACE),
            )
            .await?;
        let replaced = self
            .state
            .update_bytes(&live_key(&authenticated.user_id), |current| {
                let current = current.map(decode_live).transpose()?;
                Ok(match current {
                    Some(c) if c == hash => Update::Set(
                        encode_live(&new_hash),
                        Ttl::After(CHALLENGE_VALIDITY + EXPIRED_GRACE),
                        true,
                    ),
                    _ => Update::Keep(false),
                })
            })
            .await?;
        if !replaced {
            // A newer session was opened meanwhile: that one is the live one.
            self.state.delete(&session_key(&new_hash)).await?;
            return Err(unknown_session());
        }
        Ok(new_id)
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
        let (_, record) = self.live_session(session).await?;
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
        if self.state.get(&key).await?.is_none() {
            // A new identity for this user: bounded per user (each may be 512 KiB).
            let count_key = Key::durable("ssks")
                .part("identities")
                .part(&sha256_hex(&[b"ssks-user", record.user_id.as_bytes()]));
            let n = self.state.increment(&count_key, 1, None).await?;
            // Refused tries count too: a user at the bound stays there (identities are never
            // deleted, so the count never needs to go down).
            if n > u64::from(self.limits.identities_per_user) {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    "too many identities are stored for this user",
                ));
            }
        }
        if record.authenticated {
            self.state.put(&key, stored.encode(), None).await?;
        } else {
            // A session that never passed a challenge (opened with `must_authenticate: false`)
            // may only create the first identity, never replace one: otherwise the backend could
            // overwrite the user's identity with one it chose.
            if self
                .state
                .insert(&key, stored.encode(), None)
                .await?
                .is_none()
            {
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
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        // Length-prefixed so that parts cannot run into each other.
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    crate::hex::encode(ctx.finish().as_ref())
}

fn session_hash(session: &SessionId) -> String {
    sha256_hex(&[b"ssks-session", session.expose().as_bytes()])
}

fn challenge_hash(session_hash: &str, challenge: &[u8]) -> String {
    sha256_hex(&[b"ssks-challenge", session_hash.as_bytes(), challenge])
}

fn session_key(hash: &str) -> Key {
    Key::ephemeral("ssks").part("session").part(hash)
}

fn attempts_key(hash: &str) -> Key {
    Key::ephemeral("ssks").part("attempts").part(hash)
}

fn live_key(user_id: &str) -> Key {
    Key::ephemeral("ssks").part("live").part(user_id)
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
        // Nothing secret is stored in clear.
        let session_entry = session_key(&session_hash(&s.session_id));
        for key in [live_key("bob"), user_key("bob"), session_entry] {
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
            .get(&session_key(&session_hash(&s.session_id)))
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
