//! The self-hosted [`OtpProvider`]: Twilio Verify's observable behaviour, with codes delivered
//! through any [`CodeSender`] and every piece of state in a [`StateStore`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ring::hmac;

use super::sender::{CodeSender, OutgoingMessage};
use super::template::{MessageTemplate, MessageTemplates};
use super::{
    Channel, CheckCode, CheckOutcome, OtpProvider, StartVerification, Verification,
    VerificationRef, VerificationStatus,
};
use crate::builder::Builder;
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::rng::{SecureRandom, random_array};
use crate::secret::Secret;
use crate::store::record::{RecordReader, RecordWriter};
use crate::store::{CasOutcome, Key, MAX_CAS_RETRIES, StateStore, Ttl, Version, Write};

/// Shortest accepted server secret, in bytes.
pub const MIN_SERVER_SECRET_LEN: usize = 16;

const MAX_START_ROUNDS: usize = 16;

/// A per-destination send limit: at most `max_sends` codes to one destination per `window`
/// (fixed windows aligned on the Unix epoch), across all its verifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendRateLimit {
    /// Codes allowed per window.
    pub max_sends: u32,
    /// Window length.
    pub window: Duration,
}

impl SendRateLimit {
    /// At most `max_sends` codes per `window`.
    pub fn new(max_sends: u32, window: Duration) -> Self {
        SendRateLimit { max_sends, window }
    }
}

impl Default for SendRateLimit {
    /// 10 codes per destination per hour.
    fn default() -> Self {
        SendRateLimit::new(10, Duration::from_secs(3_600))
    }
}

/// An overall send budget: at most `max_sends` codes per `window` for the whole provider (the
/// app), and at most `max_sends_per_client` per window for one client key
/// ([`StartVerification::client`]). Fixed windows aligned on the Unix epoch. It bounds what a
/// flood of different destinations costs, which the per-destination limit cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendBudget {
    /// Codes the whole provider sends per window.
    pub max_sends: u32,
    /// Codes one client key triggers per window.
    pub max_sends_per_client: u32,
    /// Window length.
    pub window: Duration,
}

impl SendBudget {
    /// At most `max_sends` codes per `window`, `max_sends_per_client` of them for one client.
    pub fn new(max_sends: u32, max_sends_per_client: u32, window: Duration) -> Self {
        SendBudget {
            max_sends,
            max_sends_per_client,
            window,
        }
    }
}

impl Default for SendBudget {
    /// 1 000 codes per hour for the provider, 20 per client key.
    fn default() -> Self {
        SendBudget::new(1_000, 20, Duration::from_secs(3_600))
    }
}

/// Limits and texts of a [`LocalOtpProvider`]. Defaults follow Twilio Verify.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalOtpConfig {
    /// Digits in a generated code, 4 to 10. Default 6.
    pub code_length: u8,
    /// How long a code is accepted after the verification starts (re-sends do not extend it).
    /// Default 10 minutes.
    pub code_ttl: Duration,
    /// Checks allowed per verification, right one included. Default 5.
    pub max_check_attempts: u32,
    /// Sends allowed per verification, first one included. Default 5.
    pub max_sends: u32,
    /// Per-destination send limit across verifications; `None` disables it. Default 10 per hour.
    pub send_rate_limit: Option<SendRateLimit>,
    /// Overall and per-client send budget; `None` disables it. Default 1 000 per hour, 20 per
    /// client key.
    pub send_budget: Option<SendBudget>,
    /// How long an ended verification still answers with a specific error (`Expired`,
    /// `TooManyAttempts`) before it is simply `NotFound`. Default 10 minutes.
    pub tombstone_ttl: Duration,
    /// Message texts.
    pub templates: MessageTemplates,
}

impl Default for LocalOtpConfig {
    fn default() -> Self {
        LocalOtpConfig {
            code_length: 6,
            code_ttl: Duration::from_secs(600),
            max_check_attempts: 5,
            max_sends: 5,
            send_rate_limit: Some(SendRateLimit::default()),
            send_budget: Some(SendBudget::default()),
            tombstone_ttl: Duration::from_secs(600),
            templates: MessageTemplates::default(),
        }
    }
}

impl LocalOtpConfig {
    fn validate(&self) -> Result<()> {
        if !(4..=10).contains(&self.code_length) {
            return Err(Error::config("code length must be between 4 and 10"));
        }
        if self.code_ttl < Duration::from_secs(1) {
            return Err(Error::config("code lifetime must be at least one second"));
        }
        if self.max_check_attempts == 0 || self.max_sends == 0 {
            return Err(Error::config(
                "check and send limits must allow at least one",
            ));
        }
        if let Some(limit) = self.send_rate_limit
            && (limit.max_sends == 0 || limit.window < Duration::from_secs(1))
        {
            return Err(Error::config(
                "a send rate limit needs at least one send per window of at least one second",
            ));
        }
        if let Some(budget) = self.send_budget
            && (budget.max_sends == 0
                || budget.max_sends_per_client == 0
                || budget.window < Duration::from_secs(1))
        {
            return Err(Error::config(
                "a send budget needs at least one send per window of at least one second",
            ));
        }
        Ok(())
    }
}

/// Builds a [`LocalOtpProvider`]; see [`LocalOtpProvider::builder`]. The clock and random
/// source come from [`Builder::env`], the whole configuration from [`Builder::config`]; the
/// setters below change one field of the [`LocalOtpConfig`].
pub type LocalOtpBuilder = Builder<LocalOtpProvider, LocalOtpConfig>;

impl Builder<LocalOtpProvider, LocalOtpConfig> {
    /// Digits in generated codes (4 to 10).
    pub fn code_length(mut self, digits: u8) -> Self {
        self.config.code_length = digits;
        self
    }

    /// Code lifetime.
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.config.code_ttl = ttl;
        self
    }

    /// Checks allowed per verification.
    pub fn max_check_attempts(mut self, attempts: u32) -> Self {
        self.config.max_check_attempts = attempts;
        self
    }

    /// Sends allowed per verification.
    pub fn max_sends(mut self, sends: u32) -> Self {
        self.config.max_sends = sends;
        self
    }

    /// Per-destination send limit (`None` disables it).
    pub fn send_rate_limit(mut self, limit: Option<SendRateLimit>) -> Self {
        self.config.send_rate_limit = limit;
        self
    }

    /// Overall and per-client send budget (`None` disables it).
    pub fn send_budget(mut self, budget: Option<SendBudget>) -> Self {
        self.config.send_budget = budget;
        self
    }

    /// How long ended verifications keep answering with a specific error.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.config.tombstone_ttl = ttl;
        self
    }

    /// Message texts.
    pub fn templates(mut self, templates: MessageTemplates) -> Self {
        self.config.templates = templates;
        self
    }
}

/// The self-hosted one-time-passcode provider (always compiled).
///
/// Behaves like Twilio Verify (see `docs/otp.md`): 6-digit codes
/// valid 10 minutes, 5 checks, 5 sends, starting again re-sends the same code, ended
/// verifications are gone. On top of Verify it answers [`Expired`](ErrorKind::Expired) and
/// [`TooManyAttempts`](ErrorKind::TooManyAttempts) for a while after a verification ends that way,
/// and limits sends per destination ([`RateLimited`](ErrorKind::RateLimited)).
///
/// # How codes are made and kept
/// A verification's sid is 16 bytes: 6 random bytes from the injected [`SecureRandom`], then the
/// first 10 bytes of the destination's keyed hash masked by the verification's one keyed hash,
/// `HMAC-SHA256(server secret, "keyward-otp-verification-v2" || those 6 bytes)`. So a sid leads
/// to its verification's key without any index, and two sids of one destination look unrelated
/// without the server secret. The last 16 bytes of that same HMAC draw the code: the first of
/// its two 64-bit words below the largest multiple of `10^digits`, reduced modulo `10^digits`
/// (rejection sampling, so every code is equally likely). A PSD2 code (amount and payee) comes
/// instead from `HMAC-SHA256(server secret, "keyward-otp-code-v2" || round || sid ||
/// transaction)`, so it never approves another transaction. One HMAC per code, not per digit;
/// a check by sid costs one HMAC in all. The store never holds the code: a check and a re-send
/// derive it again from the sid, and the check compares in constant time. A host-chosen custom
/// code is kept as `HMAC-SHA256(server secret, sid || code || transaction)`; a re-send must pass
/// it again (or a new one, which replaces the old without resetting the attempt counter).
/// Someone who reads the store without the server secret learns nothing about any code.
///
/// No destination is stored in clear either: the key holds a keyed hash of it, the record the
/// hash and the masked form. A verification addressed by sid therefore reports the masked
/// destination (`**********61`) in [`Verification::to`]; one addressed by destination
/// ([`CheckCode::to`], [`VerificationRef::To`]) reports the destination named.
///
/// # Store layout (all keys ephemeral, `e:otp:…`; each rule is one key)
/// - `e:otp:v:{d}`: the destination's verification (`d` the first 10 bytes of the destination's
///   keyed hash): sid, sends, attempts, expiry and, once ended, why (approved, canceled, max
///   attempts reached), kept for the tombstone window so errors can say so. Starting, a
///   re-send, every check and a cancel are one compare-and-swap (or insert) of this key: one
///   live verification per destination, the send limit, the attempt limit and single-use
///   approval are its rules, and a verification has no other key;
/// - `e:otp:rate:{d}:{window}`: per-destination send counter of one rate-limit window;
/// - `e:otp:budget:app:{window}`, `e:otp:budget:client:{c}:{window}`: the overall send budget, for
///   the provider and per client key (`c` a keyed hash of the key).
///
/// A write that reports a storage error may have landed: a start that fails that way delivered
/// no code (a retry re-sends the verification's code), a check that fails that way either counted
/// an attempt or approved the verification without handing out the proof (a retry answers
/// `NotFound`: start again). Sids depend on the server secret: instances sharing a store must
/// share it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::{OtpProvider, Secret};
/// use keyward::otp::{Channel, CheckCode, LocalOtpProvider, Outbox, StartVerification};
/// use keyward::store::MemoryStore;
///
/// let outbox = Outbox::new();
/// let otp = LocalOtpProvider::new(
///     Arc::new(MemoryStore::new()),
///     Arc::new(outbox.clone()),
///     Secret::new(*b"0123456789abcdef0123456789abcdef"), // use 32 random bytes
/// )?;
/// let v = otp.start(StartVerification::new("+1 501 712 2661", Channel::Sms)).await?;
/// let code = outbox.last_code_to(&v.to).unwrap();
/// let proof = otp.check(CheckCode::sid(&v.sid, code)).await?.approved();
/// assert!(proof.is_some());
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
pub struct LocalOtpProvider {
    store: Arc<dyn StateStore>,
    sender: Arc<dyn CodeSender>,
    key: hmac::Key,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    config: LocalOtpConfig,
}

impl fmt::Debug for LocalOtpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalOtpProvider")
            .field("store", &self.store)
            .field("sender", &self.sender)
            .field("server_secret", &"[REDACTED]")
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Record kind of a self-hosted verification (see `store::record`).
const RECORD_OTP_VERIFICATION: u8 = 0x10;

/// Bytes of the destination id a sid carries (masked): the record key's part.
const TAG_LEN: usize = 10;
/// Random bytes of a sid.
const SID_NONCE_LEN: usize = 16 - TAG_LEN;

/// Why a verification ended. Expiry is not stored: a pending record past its expiry is expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Approved = 1,
    Canceled = 2,
    MaxAttemptsReached = 3,
}

impl Ended {
    fn from_u64(v: u64) -> Result<Ended> {
        match v {
            1 => Ok(Ended::Approved),
            2 => Ok(Ended::Canceled),
            3 => Ok(Ended::MaxAttemptsReached),
            _ => Err(Error::storage("stored verification state is corrupt")),
        }
    }
}

/// A verification as stored, under one key per destination (`e:otp:v:{destination tag}`):
/// every rule (one live verification per destination, the attempt limit, the send limit,
/// single-use approval, why it ended) reads and changes this one key, and no other key exists
/// per verification.
///
/// The destination itself is not stored: the key holds its keyed hash, the record its masked
/// form (`+1********61`) for display. The code is not stored either: a derived code is
/// recomputed from the sid, a host-chosen one is kept as a keyed hash.
#[derive(Clone)]
struct Record {
    sid: [u8; 16],
    /// The destination's keyed hash (its first [`TAG_LEN`] bytes are the key's part).
    destination: [u8; 16],
    masked_to: String,
    channel: Channel,
    locale: Option<String>,
    /// HMAC(server secret, "keyward-otp-custom-v2" || sid || code || transaction) of a
    /// host-chosen code; `None` for a code derived from the sid.
    custom_hash: Option<[u8; 32]>,
    code_len: u8,
    sends: u32,
    attempts: u32,
    created_ms: u64,
    updated_ms: u64,
    expires_ms: u64,
    ended: Option<Ended>,
    /// The sender name shown in the message (`CustomFriendlyName`).
    friendly_name: Option<String>,
    /// The message text replacing the template (`CustomMessage`).
    custom_message: Option<String>,
    /// The PSD2 transaction the code is bound to (`Amount`, `Payee`).
    amount: Option<String>,
    payee: Option<String>,
    /// Android SMS Retriever hash appended to SMS (`AppHash`).
    app_hash: Option<String>,
}

// Field tags of a verification record; a tag's meaning never changes once released.
const F_SID: u8 = 1;
const F_MASKED_TO: u8 = 2;
const F_CHANNEL: u8 = 3;
const F_LOCALE: u8 = 4;
const F_CUSTOM_HASH: u8 = 5;
const F_CODE_LEN: u8 = 6;
const F_SENDS: u8 = 7;
const F_ATTEMPTS: u8 = 8;
const F_CREATED: u8 = 9;
const F_UPDATED: u8 = 10;
const F_EXPIRES: u8 = 11;
const F_ENDED: u8 = 12;
const F_FRIENDLY_NAME: u8 = 13;
const F_CUSTOM_MESSAGE: u8 = 14;
const F_AMOUNT: u8 = 15;
const F_PAYEE: u8 = 16;
const F_APP_HASH: u8 = 17;
const F_DESTINATION: u8 = 18;

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_OTP_VERIFICATION);
        w.bytes(F_SID, &self.sid)
            .bytes(F_DESTINATION, &self.destination)
            .str(F_MASKED_TO, &self.masked_to)
            .str(F_CHANNEL, self.channel.as_str())
            .u64(F_CODE_LEN, u64::from(self.code_len))
            .u64(F_SENDS, u64::from(self.sends))
            .u64(F_ATTEMPTS, u64::from(self.attempts))
            .u64(F_CREATED, self.created_ms)
            .u64(F_UPDATED, self.updated_ms)
            .u64(F_EXPIRES, self.expires_ms);
        if let Some(hash) = &self.custom_hash {
            w.bytes(F_CUSTOM_HASH, hash);
        }
        if let Some(ended) = self.ended {
            w.u64(F_ENDED, ended as u64);
        }
        for (tag, value) in [
            (F_LOCALE, &self.locale),
            (F_FRIENDLY_NAME, &self.friendly_name),
            (F_CUSTOM_MESSAGE, &self.custom_message),
            (F_AMOUNT, &self.amount),
            (F_PAYEE, &self.payee),
            (F_APP_HASH, &self.app_hash),
        ] {
            if let Some(v) = value {
                w.str(tag, v);
            }
        }
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Record> {
        let r = RecordReader::parse(RECORD_OTP_VERIFICATION, bytes)?;
        let corrupt = || Error::storage("stored verification is corrupt");
        let small = |tag| -> Result<u32> { u32::try_from(r.u64(tag)?).map_err(|_| corrupt()) };
        let text = |tag| -> Result<Option<String>> { Ok(r.opt_str(tag)?.map(str::to_owned)) };
        Ok(Record {
            sid: r.bytes(F_SID)?.try_into().map_err(|_| corrupt())?,
            destination: r.bytes(F_DESTINATION)?.try_into().map_err(|_| corrupt())?,
            masked_to: r.str(F_MASKED_TO)?.to_owned(),
            channel: match r.str(F_CHANNEL)? {
                // As written by `encode` (no allocation); anything else as `Channel::parse` reads it.
                "sms" => Channel::Sms,
                "call" => Channel::Call,
                "email" => Channel::Email,
                "whatsapp" => Channel::Whatsapp,
                other => Channel::parse(other),
            },
            locale: text(F_LOCALE)?,
            custom_hash: r
                .opt_bytes(F_CUSTOM_HASH)
                .map(|h| h.try_into().map_err(|_| corrupt()))
                .transpose()?,
            code_len: u8::try_from(r.u64(F_CODE_LEN)?).map_err(|_| corrupt())?,
            sends: small(F_SENDS)?,
            attempts: small(F_ATTEMPTS)?,
            created_ms: r.u64(F_CREATED)?,
            updated_ms: r.u64(F_UPDATED)?,
            expires_ms: r.u64(F_EXPIRES)?,
            ended: r.opt_u64(F_ENDED)?.map(Ended::from_u64).transpose()?,
            friendly_name: text(F_FRIENDLY_NAME)?,
            custom_message: text(F_CUSTOM_MESSAGE)?,
            amount: text(F_AMOUNT)?,
            payee: text(F_PAYEE)?,
            app_hash: text(F_APP_HASH)?,
        })
    }

    fn sid(&self) -> String {
        let mut s = String::with_capacity(34);
        s.push_str("VE");
        s.push_str(&hex(&self.sid));
        s
    }

    /// Whether checks and re-sends still apply.
    fn is_pending(&self, now_ms: u64) -> bool {
        self.ended.is_none() && now_ms < self.expires_ms
    }
}

/// The PSD2 transaction of a request, if any.
fn transaction<'a>(
    amount: &'a Option<String>,
    payee: &'a Option<String>,
) -> Option<(&'a str, &'a str)> {
    match (amount, payee) {
        (None, None) => None,
        (a, p) => Some((a.as_deref().unwrap_or(""), p.as_deref().unwrap_or(""))),
    }
}

/// Appends a PSD2 transaction (length-prefixed, so no two transactions share an encoding).
fn push_transaction(msg: &mut Vec<u8>, txn: Option<(&str, &str)>) {
    if let Some((amount, payee)) = txn {
        msg.extend_from_slice(b"\0keyward-psd2-v1");
        for part in [amount, payee] {
            msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
            msg.extend_from_slice(part.as_bytes());
        }
    }
}

/// Where a check, fetch or cancel looks.
struct Target {
    key: Key,
    /// The sid asked for (by sid), checked against the record's.
    sid: Option<[u8; 16]>,
    /// The destination's keyed hash (by destination), checked against the record's.
    destination: Option<[u8; 16]>,
    /// The sid's keyed hash (by sid), which also draws its code.
    prf: Option<[u8; 32]>,
    /// The destination the caller named (by destination), reported instead of the masked one.
    to: Option<String>,
}

impl LocalOtpProvider {
    /// A provider with the default configuration, the system clock and the OS random source.
    /// `server_secret` keys every code hash: keep it stable across restarts and instances that
    /// share the store (at least 16 bytes; use 32 random bytes).
    pub fn new(
        store: Arc<dyn StateStore>,
        sender: Arc<dyn CodeSender>,
        server_secret: Secret,
    ) -> Result<Self> {
        LocalOtpProvider::builder(store, sender, server_secret).build()
    }

    /// A builder for a provider with custom limits, templates, clock or random source.
    /// [`build`](Builder::build) fails with [`Config`](ErrorKind::Config) for a server secret
    /// shorter than [`MIN_SERVER_SECRET_LEN`] bytes or out-of-range limits.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use keyward::{Env, ManualClock, Secret};
    /// use keyward::otp::{ConsoleSender, LocalOtpProvider, SendRateLimit};
    /// use keyward::store::MemoryStore;
    ///
    /// let env = Env::system().with_clock(Arc::new(ManualClock::at_unix(1_700_000_000)));
    /// let otp = LocalOtpProvider::builder(
    ///     Arc::new(MemoryStore::new().env(env.clone())),
    ///     Arc::new(ConsoleSender),
    ///     Secret::new([7u8; 32]),
    /// )
    /// .env(env)
    /// .code_length(8)
    /// .code_ttl(Duration::from_secs(300))
    /// .send_rate_limit(Some(SendRateLimit::new(3, Duration::from_secs(900))))
    /// .build()?;
    /// assert_eq!(otp.config().code_length, 8);
    /// # Ok::<(), keyward::Error>(())
    /// ```
    pub fn builder(
        store: Arc<dyn StateStore>,
        sender: Arc<dyn CodeSender>,
        server_secret: Secret,
    ) -> LocalOtpBuilder {
        Builder::new(LocalOtpConfig::default(), move |config, env| {
            if server_secret.len() < MIN_SERVER_SECRET_LEN {
                return Err(Error::config(
                    "the OTP server secret must be at least 16 bytes (32 random bytes recommended)",
                ));
            }
            config.validate()?;
            Ok(LocalOtpProvider {
                store,
                sender,
                key: hmac::Key::new(hmac::HMAC_SHA256, server_secret.expose()),
                clock: env.clock().clone(),
                rng: env.random().clone(),
                config,
            })
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &LocalOtpConfig {
        &self.config
    }

    fn now_ms(&self) -> u64 {
        to_ms(self.clock.now())
    }

    /// The verification of a destination, by the first bytes of its keyed hash.
    fn record_key(tag: &[u8]) -> Key {
        Key::ephemeral("otp").part("v").bytes(tag)
    }

    /// The one keyed hash of a verification, `HMAC(secret, "keyward-otp-verification-v2" ||
    /// the sid's random bytes)`: its first [`TAG_LEN`] bytes mask the destination tag in the
    /// sid, its last 16 bytes draw the code (see [`derive_code`](Self::derive_code)), so a
    /// check by sid costs one HMAC for both.
    fn sid_prf(&self, sid: &[u8; 16]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"keyward-otp-verification-v2");
        ctx.update(sid.get(..SID_NONCE_LEN).unwrap_or_default());
        let tag = ctx.sign();
        let mut prf = [0u8; 32];
        prf.copy_from_slice(tag.as_ref());
        prf
    }

    /// A new sid for a destination, with its keyed hash: random bytes, then the destination's
    /// tag masked by the keyed hash of them. The record is found from the sid alone, with no
    /// index key, and two sids of one destination look unrelated without the server secret.
    fn new_sid(&self, destination: &[u8; 16]) -> Result<([u8; 16], [u8; 32])> {
        let mut sid = [0u8; 16];
        sid[..SID_NONCE_LEN].copy_from_slice(&random_array::<SID_NONCE_LEN>(self.rng.as_ref())?);
        let prf = self.sid_prf(&sid);
        for i in 0..TAG_LEN {
            sid[SID_NONCE_LEN + i] = destination[i] ^ prf[i];
        }
        Ok((sid, prf))
    }

    /// The destination tag a sid carries, given its keyed hash.
    fn sid_tag(sid: &[u8; 16], prf: &[u8; 32]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        for i in 0..TAG_LEN {
            tag[i] = sid[SID_NONCE_LEN + i] ^ prf[i];
        }
        tag
    }

    /// A keyed hash of a destination, so neither keys nor values contain phone numbers or
    /// emails.
    fn destination_id(&self, to: &str) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"keyward-otp-destination-v1");
        ctx.update(to.as_bytes());
        let tag = ctx.sign();
        let mut id = [0u8; 16];
        id.copy_from_slice(tag.as_ref().get(..16).unwrap_or(&[0u8; 16]));
        id
    }

    /// The keyed hash kept for a host-chosen code.
    fn custom_hash(&self, sid: &[u8; 16], code: &[u8], txn: Option<(&str, &str)>) -> [u8; 32] {
        let mut msg = self.custom_message(sid, code, txn);
        let tag = hmac::sign(&self.key, &msg);
        zeroize::Zeroize::zeroize(&mut msg);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn custom_message(&self, sid: &[u8; 16], code: &[u8], txn: Option<(&str, &str)>) -> Vec<u8> {
        let mut msg = Vec::with_capacity(64 + code.len());
        msg.extend_from_slice(b"keyward-otp-custom-v2");
        msg.extend_from_slice(sid);
        msg.push(code.len() as u8);
        msg.extend_from_slice(code);
        push_transaction(&mut msg, txn);
        msg
    }

    /// Whether `code`, for the transaction `txn` the check names, is the record's: a code
    /// issued for one amount and payee never matches for another (or for none). One HMAC
    /// (none when `prf`, the sid's keyed hash, is known already and there is no transaction).
    fn code_matches(
        &self,
        record: &Record,
        code: &[u8],
        txn: Option<(&str, &str)>,
        prf: Option<&[u8; 32]>,
    ) -> Result<bool> {
        match &record.custom_hash {
            Some(hash) => {
                let mut msg = self.custom_message(&record.sid, code, txn);
                let ok = hmac::verify(&self.key, &msg, hash).is_ok(); // constant time
                zeroize::Zeroize::zeroize(&mut msg);
                Ok(ok)
            }
            None => {
                let prf = match prf {
                    Some(prf) => *prf,
                    None => self.sid_prf(&record.sid),
                };
                let expected = self.derive_code(&record.sid, &prf, txn, record.code_len)?;
                // The length is public (the configuration's); the digits compare in constant time.
                Ok(expected.expose().len() == code.len()
                    && crate::secret::subtle_eq::constant_time_eq(expected.expose(), code))
            }
        }
    }

    /// The code of a verification: `len` decimal digits from a 64-bit word below the largest
    /// multiple of `10^len`, reduced modulo `10^len` (rejection sampling: uniform). Without a
    /// transaction the words are the last two of the sid's keyed hash `prf` (no further HMAC);
    /// with one (or if both words are rejected, below 10^-18 for 10 digits) they come from
    /// `HMAC-SHA256(server secret, "keyward-otp-code-v2" || round || sid || transaction)`, four
    /// words per round.
    fn derive_code(
        &self,
        sid: &[u8; 16],
        prf: &[u8; 32],
        txn: Option<(&str, &str)>,
        len: u8,
    ) -> Result<Secret> {
        let len = len.clamp(1, 19);
        let bound = 10u64.pow(u32::from(len));
        let limit = (u64::MAX / bound) * bound;
        let digits_of = |words: &[u8]| -> Option<Secret> {
            for word in words.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(word);
                let v = u64::from_be_bytes(b);
                if v < limit {
                    let mut n = v % bound;
                    let mut digits = vec![b'0'; usize::from(len)];
                    for d in digits.iter_mut().rev() {
                        *d = b'0' + (n % 10) as u8;
                        n /= 10;
                    }
                    return Some(Secret::new(digits));
                }
            }
            None
        };
        if txn.is_none()
            && let Some(code) = digits_of(prf.get(16..).unwrap_or_default())
        {
            return Ok(code);
        }
        for round in 0u8..=u8::MAX {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(b"keyward-otp-code-v2");
            ctx.update(&[round]);
            ctx.update(sid);
            if txn.is_some() {
                let mut t = Vec::new();
                push_transaction(&mut t, txn);
                ctx.update(&t);
            }
            if let Some(code) = digits_of(ctx.sign().as_ref()) {
                return Ok(code);
            }
        }
        Err(Error::new(
            ErrorKind::Random,
            "code derivation found no digits",
        ))
    }

    /// The record's code for delivery: derived, or the host-chosen one passed again.
    fn code_for(
        &self,
        record: &Record,
        custom: Option<&Secret>,
        prf: Option<&[u8; 32]>,
    ) -> Result<Secret> {
        match (custom, &record.custom_hash) {
            (Some(code), Some(_)) => Ok(code.clone()),
            (None, None) => {
                let prf = match prf {
                    Some(prf) => *prf,
                    None => self.sid_prf(&record.sid),
                };
                self.derive_code(
                    &record.sid,
                    &prf,
                    transaction(&record.amount, &record.payee),
                    record.code_len,
                )
            }
            _ => Err(Error::invalid_input(
                "this verification uses a custom code: pass it again to re-send",
            )),
        }
    }

    /// The store TTL of a pending record: until expiry, then the tombstone window.
    fn record_ttl(&self, record: &Record, now_ms: u64) -> Duration {
        Duration::from_millis(record.expires_ms.saturating_sub(now_ms)) + self.config.tombstone_ttl
    }

    fn to_verification(
        record: &Record,
        to: Option<&str>,
        status: VerificationStatus,
    ) -> Verification {
        Verification {
            sid: record.sid(),
            to: to.map_or_else(|| record.masked_to.clone(), str::to_owned),
            channel: record.channel.clone(),
            valid: status == VerificationStatus::Approved,
            status,
            send_attempts: record.sends,
            created_at: Some(from_ms(record.created_ms)),
            updated_at: Some(from_ms(record.updated_ms)),
            expires_at: Some(from_ms(record.expires_ms)),
        }
    }

    /// Counts one send against the overall budget: the provider's, then `client`'s.
    async fn count_budget(&self, client: Option<&str>) -> Result<()> {
        let Some(budget) = self.config.send_budget else {
            return Ok(());
        };
        let window_ms = u64::try_from(budget.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = self.now_ms();
        let index = now_ms / window_ms;
        let window_end = index.saturating_add(1).saturating_mul(window_ms);
        let spent = |what: &'static str| {
            Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_millis(window_end.saturating_sub(now_ms))),
                },
                what,
            )
        };
        let key = Key::ephemeral("otp")
            .part("budget")
            .part("app")
            .part(&index.to_string());
        let sent = self.store.increment(&key, 1, Some(budget.window)).await?;
        if sent > u64::from(budget.max_sends) {
            return Err(spent(
                "the provider's send budget is spent; try again later",
            ));
        }
        if let Some(client) = client {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(b"keyward-otp-client-v1");
            ctx.update(client.as_bytes());
            let tag = ctx.sign();
            let key = Key::ephemeral("otp")
                .part("budget")
                .part("client")
                .bytes(tag.as_ref().get(..16).unwrap_or_default())
                .part(&index.to_string());
            let sent = self.store.increment(&key, 1, Some(budget.window)).await?;
            if sent > u64::from(budget.max_sends_per_client) {
                return Err(spent(
                    "too many codes requested by this client; try again later",
                ));
            }
        }
        Ok(())
    }

    /// Counts one send to a destination against the budget and the per-destination limit.
    async fn count_send(&self, destination: &[u8; 16], client: Option<&str>) -> Result<()> {
        self.count_budget(client).await?;
        let Some(limit) = self.config.send_rate_limit else {
            return Ok(());
        };
        let window_ms = u64::try_from(limit.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = self.now_ms();
        let index = now_ms / window_ms;
        let key = Key::ephemeral("otp")
            .part("rate")
            .bytes(destination)
            .part(&index.to_string());
        let sent = self.store.increment(&key, 1, Some(limit.window)).await?;
        if sent > u64::from(limit.max_sends) {
            let window_end = index.saturating_add(1).saturating_mul(window_ms);
            let retry_after = Duration::from_millis(window_end.saturating_sub(now_ms));
            return Err(Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(retry_after),
                },
                "too many codes sent to this destination; try again later",
            ));
        }
        Ok(())
    }

    /// The error for a verification that is no longer pending.
    fn gone(record: &Record) -> Error {
        match record.ended {
            None => Error::new(ErrorKind::Expired, "the verification expired"),
            Some(Ended::MaxAttemptsReached) => Error::new(
                ErrorKind::TooManyAttempts,
                "max check attempts reached for this verification",
            ),
            Some(Ended::Approved) => Error::new(
                ErrorKind::NotFound,
                "the verification was already approved and no longer exists",
            ),
            Some(Ended::Canceled) => {
                Error::new(ErrorKind::NotFound, "no such pending verification")
            }
        }
    }

    fn not_found() -> Error {
        Error::new(ErrorKind::NotFound, "no such pending verification")
    }

    /// Finds the key a reference points to (no store access: a sid carries its key).
    fn locate(&self, target: &VerificationRef) -> Result<Target> {
        match target {
            VerificationRef::Sid(sid) => {
                let Some(raw) = parse_sid(sid) else {
                    return Err(Error::invalid_input(
                        "a verification sid is VE followed by 32 hex digits",
                    ));
                };
                let prf = self.sid_prf(&raw);
                Ok(Target {
                    key: Self::record_key(&Self::sid_tag(&raw, &prf)),
                    sid: Some(raw),
                    destination: None,
                    prf: Some(prf),
                    to: None,
                })
            }
            VerificationRef::To(to) => {
                let to = Channel::Auto.normalize_destination(to)?;
                let destination = self.destination_id(&to);
                Ok(Target {
                    key: Self::record_key(&destination[..TAG_LEN]),
                    sid: None,
                    destination: Some(destination),
                    prf: None,
                    to: Some(to),
                })
            }
        }
    }

    /// Reads the record a target names: `(record, version)`, `NotFound` when there is none (or
    /// the destination's record is a later verification than the sid asked for).
    async fn read(&self, target: &Target) -> Result<(Record, Version)> {
        let entry = self
            .store
            .get(&target.key)
            .await?
            .ok_or_else(Self::not_found)?;
        let record = Record::decode(&entry.value)?;
        // A sid whose destination now holds a later verification, or (with a negligible
        // chance) another destination sharing the tag: nothing to act on.
        if target.sid.is_some_and(|sid| sid != record.sid)
            || target.destination.is_some_and(|d| d != record.destination)
        {
            return Err(Self::not_found());
        }
        Ok((record, entry.version))
    }

    async fn deliver(&self, to: &str, record: &Record, code: &Secret) -> Result<()> {
        let template = self.config.templates.for_locale(record.locale.as_deref());
        let minutes = self.config.code_ttl.as_secs().div_ceil(60);
        let code_text = code
            .expose_str()
            .ok_or_else(|| Error::storage("code is not text"))?;
        let body = match &record.custom_message {
            Some(text) => MessageTemplate::new(text.clone())?.render(code_text, minutes),
            None => template.render(code_text, minutes),
        };
        let txn = transaction(&record.amount, &record.payee);
        let sms_hash = match (&record.app_hash, &record.channel) {
            (Some(hash), Channel::Sms) => Some(hash),
            _ => None,
        };
        // The rendered template as is, unless a friendly name, a transaction or an app hash
        // changes it.
        let body = if record.friendly_name.is_none() && txn.is_none() && sms_hash.is_none() {
            body
        } else {
            let mut text = body.expose_str().unwrap_or_default().to_owned();
            if let Some(name) = &record.friendly_name {
                if text.contains("{friendly_name}") {
                    text = text.replace("{friendly_name}", name);
                } else {
                    text = format!("{name}: {text}");
                }
            }
            if let Some((amount, payee)) = txn {
                if text.contains("{amount}") || text.contains("{payee}") {
                    text = text.replace("{amount}", amount).replace("{payee}", payee);
                } else {
                    text = format!("{text}\nAmount: {amount}\nPayee: {payee}");
                }
            }
            if let Some(hash) = sms_hash {
                text = format!("{text}\n{hash}");
            }
            Secret::from(text)
        };
        let mut message =
            OutgoingMessage::new(record.channel.clone(), to.to_owned(), body, code.clone());
        if let Some(subject) = template.subject() {
            message = message.subject(subject);
        }
        self.sender.send(&message).await
    }

    fn new_record(
        &self,
        to: &str,
        destination: &[u8; 16],
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<(Record, [u8; 32])> {
        let (sid, prf) = self.new_sid(destination)?;
        let now_ms = self.now_ms();
        let ttl_ms = u64::try_from(self.config.code_ttl.as_millis()).unwrap_or(u64::MAX);
        let txn = transaction(&request.amount, &request.payee);
        let (custom_hash, code_len) = match &request.custom_code {
            Some(custom) => (
                Some(self.custom_hash(&sid, custom.expose(), txn)),
                custom_len(custom)?,
            ),
            None => (None, self.config.code_length),
        };
        let record = Record {
            sid,
            destination: *destination,
            masked_to: crate::normalize::mask(to),
            channel: channel.clone(),
            locale: request.locale.clone(),
            custom_hash,
            code_len,
            sends: 1,
            attempts: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            ended: None,
            friendly_name: request.custom_friendly_name.clone(),
            custom_message: request.custom_message.clone(),
            amount: request.amount.clone(),
            payee: request.payee.clone(),
            app_hash: request.app_hash.clone(),
        };
        Ok((record, prf))
    }

    /// The record after a re-send, or why it cannot be re-sent.
    fn resent(
        &self,
        record: &Record,
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<Record> {
        if record.sends >= self.config.max_sends {
            return Err(too_many_sends());
        }
        let asked = transaction(&request.amount, &request.payee);
        if asked.is_some() && asked != transaction(&record.amount, &record.payee) {
            return Err(Error::invalid_input(
                "a re-send cannot change the transaction: cancel and start again",
            ));
        }
        let mut next = record.clone();
        match &request.custom_code {
            Some(custom) => {
                next.code_len = custom_len(custom)?;
                next.custom_hash = Some(self.custom_hash(
                    &record.sid,
                    custom.expose(),
                    transaction(&record.amount, &record.payee),
                ));
            }
            None if record.custom_hash.is_some() => {
                return Err(Error::invalid_input(
                    "this verification uses a custom code: pass it again to re-send",
                ));
            }
            None => {}
        }
        next.sends += 1;
        next.updated_ms = self.now_ms();
        next.channel = channel.clone();
        if request.locale.is_some() {
            next.locale = request.locale.clone();
        }
        Ok(next)
    }

    async fn start_inner(&self, request: StartVerification) -> Result<Verification> {
        let channel = match request.channel {
            Channel::Sms | Channel::Call | Channel::Email | Channel::Whatsapp => {
                request.channel.clone()
            }
            Channel::Auto if request.to.contains('@') => Channel::Email,
            Channel::Auto => Channel::Sms,
            Channel::Sna | Channel::Other(_) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "the self-hosted provider delivers by sms, call, email or whatsapp only",
                ));
            }
        };
        let to = channel.normalize_destination(&request.to)?;
        if let Some(custom) = &request.custom_code {
            custom_len(custom)?;
        }
        check_local_parameters(&request)?;
        if let Some(locale) = &request.locale {
            let ok = (1..=35).contains(&locale.len())
                && locale
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(Error::invalid_input("locale must be a language tag"));
            }
        }
        let destination = self.destination_id(&to);
        let key = Self::record_key(&destination[..TAG_LEN]);
        let mut counted = false;
        for _ in 0..MAX_START_ROUNDS {
            let current = self.store.get(&key).await?;
            let now_ms = self.now_ms();
            let current = match current {
                Some(entry) => Some((Record::decode(&entry.value)?, entry.version)),
                None => None,
            };
            if let Some((record, _)) = &current
                && record.destination != destination
            {
                // Two destinations whose 80-bit tags collide (about one chance in 10^12 for a
                // million destinations): refuse rather than touch the other one's verification.
                return Err(Error::storage(
                    "another destination holds this verification slot; try again later",
                ));
            }
            // A live verification for this destination: re-send its code.
            if let Some((record, version)) = &current
                && record.is_pending(now_ms)
            {
                let next = self.resent(record, &channel, &request)?;
                if !counted {
                    self.count_send(&destination, request.client.as_deref())
                        .await?;
                    counted = true;
                }
                let swapped = self
                    .store
                    .compare_and_swap(
                        &key,
                        *version,
                        Write::Set {
                            value: next.encode(),
                            ttl: Ttl::Keep,
                        },
                    )
                    .await?;
                if swapped == CasOutcome::Conflict {
                    continue;
                }
                let code = self.code_for(&next, request.custom_code.as_ref(), None)?;
                self.deliver(&to, &next, &code).await?;
                return Ok(Self::to_verification(
                    &next,
                    Some(&to),
                    VerificationStatus::Pending,
                ));
            }
            // None, or an ended one: a new verification replaces it.
            if !counted {
                self.count_send(&destination, request.client.as_deref())
                    .await?;
                counted = true;
            }
            let (record, prf) = self.new_record(&to, &destination, &channel, &request)?;
            let ttl = self.record_ttl(&record, now_ms);
            let written = match &current {
                Some((_, version)) => match self
                    .store
                    .compare_and_swap(
                        &key,
                        *version,
                        Write::Set {
                            value: record.encode(),
                            ttl: Ttl::After(ttl),
                        },
                    )
                    .await?
                {
                    CasOutcome::Swapped { version } => version,
                    CasOutcome::Conflict => None,
                },
                None => self.store.insert(&key, record.encode(), Some(ttl)).await?,
            };
            let Some(version) = written else {
                continue; // a concurrent start won: re-send theirs
            };
            let code = self.code_for(&record, request.custom_code.as_ref(), Some(&prf))?;
            if let Err(err) = self.deliver(&to, &record, &code).await {
                // Nothing reached the user: forget the verification so a retry starts afresh.
                self.store
                    .compare_and_swap(&key, version, Write::Delete)
                    .await?;
                return Err(err);
            }
            return Ok(Self::to_verification(
                &record,
                Some(&to),
                VerificationStatus::Pending,
            ));
        }
        Err(Error::storage(
            "too much contention starting a verification for this destination",
        ))
    }

    async fn check_inner(&self, request: CheckCode) -> Result<CheckOutcome> {
        if request.is_sna() || request.sna_client_token.is_some() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the self-hosted provider has no silent network authentication",
            ));
        }
        let txn = transaction(&request.amount, &request.payee);
        let code = request.code.expose();
        if !(4..=10).contains(&code.len()) || !code.iter().all(u8::is_ascii_alphanumeric) {
            return Err(Error::invalid_input("a code is 4 to 10 letters or digits"));
        }
        let target = self.locate(&request.target)?;
        let max = self.config.max_check_attempts;
        for _ in 0..MAX_CAS_RETRIES {
            let (record, version) = self.read(&target).await?;
            let now_ms = self.now_ms();
            if !record.is_pending(now_ms) {
                return Err(Self::gone(&record));
            }
            // One write counts the attempt and decides, so the limit holds however many
            // checks race, and of two right checks exactly one approves.
            let matched = self.code_matches(&record, code, txn, target.prf.as_ref())?;
            let mut next = record;
            next.attempts = next.attempts.saturating_add(1);
            next.updated_ms = now_ms;
            let status = if matched {
                next.ended = Some(Ended::Approved);
                VerificationStatus::Approved
            } else if next.attempts >= max {
                next.ended = Some(Ended::MaxAttemptsReached);
                VerificationStatus::MaxAttemptsReached
            } else {
                VerificationStatus::Pending
            };
            let ttl = if next.ended.is_some() {
                Ttl::After(self.config.tombstone_ttl)
            } else {
                Ttl::Keep
            };
            let outcome = self
                .store
                .compare_and_swap(
                    &target.key,
                    version,
                    Write::Set {
                        value: next.encode(),
                        ttl,
                    },
                )
                .await?;
            if outcome == CasOutcome::Conflict {
                continue; // changed in between (a re-send, another check): decide again
            }
            let verification = Self::to_verification(&next, target.to.as_deref(), status);
            return if matched {
                crate::backend::approved(verification).map(CheckOutcome::Approved)
            } else {
                Ok(CheckOutcome::Rejected(verification))
            };
        }
        Err(Error::storage(
            "too much contention checking this verification",
        ))
    }

    async fn cancel_inner(&self, target: VerificationRef) -> Result<Verification> {
        let target = self.locate(&target)?;
        for _ in 0..MAX_CAS_RETRIES {
            let (record, version) = self.read(&target).await?;
            let now_ms = self.now_ms();
            if !record.is_pending(now_ms) {
                return Err(Self::gone(&record));
            }
            let mut next = record;
            next.ended = Some(Ended::Canceled);
            next.updated_ms = now_ms;
            let outcome = self
                .store
                .compare_and_swap(
                    &target.key,
                    version,
                    Write::Set {
                        value: next.encode(),
                        ttl: Ttl::After(self.config.tombstone_ttl),
                    },
                )
                .await?;
            if outcome != CasOutcome::Conflict {
                return Ok(Self::to_verification(
                    &next,
                    target.to.as_deref(),
                    VerificationStatus::Canceled,
                ));
            }
        }
        Err(Error::storage(
            "too much contention canceling this verification",
        ))
    }

    async fn fetch_inner(&self, target: VerificationRef) -> Result<Verification> {
        let target = self.locate(&target)?;
        let (record, _) = self.read(&target).await?;
        if !record.is_pending(self.now_ms()) {
            return Err(Self::gone(&record));
        }
        Ok(Self::to_verification(
            &record,
            target.to.as_deref(),
            VerificationStatus::Pending,
        ))
    }
}

#[async_trait]
impl OtpProvider for LocalOtpProvider {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.start", skip_all, fields(backend = "local", channel = %request.channel, to = %crate::trace::masked(&request.to)), err(Display, level = "info")))]
    async fn start(&self, request: StartVerification) -> Result<Verification> {
        self.start_inner(request).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.check", skip_all, fields(backend = "local", target = ?request.target), err(Display, level = "info")))]
    async fn check(&self, request: CheckCode) -> Result<CheckOutcome> {
        crate::trace::code_rejected(self.check_inner(request).await)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.fetch", skip_all, fields(backend = "local", target = ?target), err(Display, level = "info")))]
    async fn fetch(&self, target: VerificationRef) -> Result<Verification> {
        self.fetch_inner(target).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.otp.cancel", skip_all, fields(backend = "local", target = ?target), err(Display, level = "info")))]
    async fn cancel(&self, target: VerificationRef) -> Result<Verification> {
        self.cancel_inner(target).await
    }
}

/// The start parameters the self-hosted provider honours (locale, friendly name, custom message,
/// PSD2 amount and payee, app hash) are checked; those that only Twilio can act on are refused
/// rather than silently ignored. `DeviceIp` and `Tags` are informational and accepted.
fn check_local_parameters(request: &StartVerification) -> Result<()> {
    let unsupported = [
        ("send digits", request.send_digits.is_some()),
        ("rate limits", !request.rate_limits.is_empty()),
        (
            "channel configuration",
            request.channel_configuration.is_some(),
        ),
        ("template sid", request.template_sid.is_some()),
        (
            "template substitutions",
            !request.template_custom_substitutions.is_empty(),
        ),
        ("risk check", request.risk_check.is_some()),
        (
            "sna client token",
            request.enable_sna_client_token.is_some(),
        ),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("the self-hosted provider does not support the {name} parameter"),
        ));
    }
    if let Some(text) = &request.custom_message {
        MessageTemplate::new(text.clone()).map_err(|_| {
            Error::invalid_input("a custom message holds {code} once and is at most 1600 bytes")
        })?;
    }
    for (what, value, max) in [
        ("friendly name", &request.custom_friendly_name, 64),
        ("amount", &request.amount, 64),
        ("payee", &request.payee, 128),
        ("app hash", &request.app_hash, 32),
    ] {
        if let Some(v) = value
            && (v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control))
        {
            return Err(Error::invalid_input(format!(
                "the {what} is empty, too long or holds control characters"
            )));
        }
    }
    if request.amount.is_some() != request.payee.is_some() {
        return Err(Error::invalid_input(
            "a psd2 verification names both the amount and the payee",
        ));
    }
    Ok(())
}

fn too_many_sends() -> Error {
    Error::new(
        ErrorKind::TooManySends,
        "max send attempts reached for this verification",
    )
}

/// Validates a custom code (4 to 10 ASCII letters or digits) and returns its length.
fn custom_len(code: &Secret) -> Result<u8> {
    let bytes = code.expose();
    if !(4..=10).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Error::invalid_input(
            "a custom code is 4 to 10 letters or digits",
        ));
    }
    u8::try_from(bytes.len()).map_err(|_| Error::invalid_input("custom code too long"))
}

/// The 16 bytes of a sid (`VE` and 32 hex digits, either case).
fn parse_sid(s: &str) -> Option<[u8; 16]> {
    let hex_part = s.strip_prefix("VE")?;
    if hex_part.len() != 32 {
        return None;
    }
    unhex(hex_part)?.try_into().ok()
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Outbox;
    use crate::store::MemoryStore;
    use crate::testing::SeededRandom;

    fn provider() -> LocalOtpProvider {
        LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([1u8; 32]),
        )
        .env(crate::Env::system().with_random(Arc::new(SeededRandom::new(b"unit"))))
        .build()
        .unwrap()
    }

    #[test]
    fn derived_digits_are_uniform_and_reproducible() {
        let p = provider();
        let mut counts = [0u32; 10];
        for i in 0..2_000u32 {
            let mut sid = [0u8; 16];
            sid[..4].copy_from_slice(&i.to_be_bytes());
            let prf = p.sid_prf(&sid);
            let code = p.derive_code(&sid, &prf, None, 10).unwrap();
            let again = p.derive_code(&sid, &p.sid_prf(&sid), None, 10).unwrap();
            assert_eq!(code, again);
            assert_eq!(code.expose().len(), 10);
            for d in code.expose() {
                counts[usize::from(d - b'0')] += 1;
            }
        }
        // 20,000 digits: each expected 2,000; a biased generator would drift well outside.
        for c in counts {
            assert!((1_800..=2_200).contains(&c), "{counts:?}");
        }
        // Leading zeros are kept: every length is exact, with and without a transaction.
        for len in 4..=10u8 {
            for i in 0..200u32 {
                let mut sid = [9u8; 16];
                sid[..4].copy_from_slice(&i.to_be_bytes());
                let prf = p.sid_prf(&sid);
                for txn in [None, Some(("1 EUR", "x"))] {
                    let code = p.derive_code(&sid, &prf, txn, len).unwrap();
                    assert_eq!(code.expose().len(), usize::from(len));
                }
            }
        }
    }

    #[test]
    fn codes_bind_sid_and_transaction() {
        let p = provider();
        let a = [0u8; 16];
        let mut b = a;
        b[5] = 1;
        let (pa, pb) = (p.sid_prf(&a), p.sid_prf(&b));
        let code = p.derive_code(&a, &pa, None, 10).unwrap();
        assert_ne!(code, p.derive_code(&b, &pb, None, 10).unwrap());
        let shop = p
            .derive_code(&a, &pa, Some(("10 EUR", "shop")), 10)
            .unwrap();
        assert_ne!(code, shop);
        assert_ne!(
            shop,
            p.derive_code(&a, &pa, Some(("10 EU", "Rshop")), 10)
                .unwrap()
        );
        let h = p.custom_hash(&a, b"123456", None);
        assert_ne!(h, p.custom_hash(&b, b"123456", None));
        assert_ne!(h, p.custom_hash(&a, b"123457", None));
    }

    #[test]
    fn records_round_trip_and_hold_no_destination() {
        let p = provider();
        let request = StartVerification::new("+15017122661", Channel::Sms)
            .custom_code("4242")
            .locale("fr");
        let (record, _) = p
            .new_record(
                "+15017122661",
                &p.destination_id("+15017122661"),
                &Channel::Sms,
                &request,
            )
            .unwrap();
        let bytes = record.encode();
        assert!(!String::from_utf8_lossy(&bytes).contains("5017122661"));
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.masked_to, "**********61");
        assert_eq!(back.locale.as_deref(), Some("fr"));
        assert!(back.custom_hash.is_some());
        for cut in 0..bytes.len() {
            let _ = Record::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn sids_carry_their_destination_unlinkably() {
        let p = provider();
        let d = p.destination_id("+15017122661");
        let (a, pa) = p.new_sid(&d).unwrap();
        let (b, pb) = p.new_sid(&d).unwrap();
        assert_ne!(a, b);
        assert_ne!(
            a[SID_NONCE_LEN..],
            b[SID_NONCE_LEN..],
            "the masked tags differ too"
        );
        assert_eq!(pa, p.sid_prf(&a));
        assert_eq!(LocalOtpProvider::sid_tag(&a, &pa), d[..TAG_LEN]);
        assert_eq!(LocalOtpProvider::sid_tag(&b, &pb), d[..TAG_LEN]);
        let other = LocalOtpProvider::builder(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([2u8; 32]),
        )
        .build()
        .unwrap();
        assert_ne!(
            LocalOtpProvider::sid_tag(&a, &other.sid_prf(&a)),
            d[..TAG_LEN],
            "another secret reads another tag"
        );
    }

    #[test]
    fn sids_parse_strictly() {
        assert!(parse_sid("VE0123456789abcdef0123456789ABCDEF").is_some());
        for bad in [
            "VE42",
            "XX0123456789abcdef0123456789abcdef",
            "VE0123456789abcdef0123456789abcdeg",
            "VE0123456789abcdef0123456789abcdef0",
        ] {
            assert!(parse_sid(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap(),
            vec![0, 1, 0xab, 0xff]
        );
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn short_server_secret_is_refused() {
        let err = LocalOtpProvider::new(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([1u8; 8]),
        )
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
    }
}
