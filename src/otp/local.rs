//! The self-hosted [`OtpProvider`]: Twilio Verify's observable behaviour, with codes delivered
//! through any [`CodeSender`] and every piece of state in a [`StateStore`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::sender::{CodeSender, OutgoingMessage};
use super::template::{MessageTemplate, MessageTemplates};
use super::{
    Channel, CheckCode, CheckOutcome, OtpProvider, StartVerification, Verification,
    VerificationRef, VerificationStatus,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::{SecureRandom, SystemRandom, random_array, uniform_below};
use crate::secret::Secret;
use crate::store::{
    CasOutcome, Key, StateStore, StateStoreExt, Ttl, Update, Version, Write, decode_json,
    encode_json,
};

/// Shortest accepted server secret, in bytes.
pub const MIN_SERVER_SECRET_LEN: usize = 16;

const MAX_START_ROUNDS: usize = 16;

/// A per-destination send limit: at most `max_sends` codes to one destination per `window`
/// (fixed windows aligned on the Unix epoch), across all its verifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Builds a [`LocalOtpProvider`]; see [`LocalOtpProvider::builder`].
pub struct LocalOtpBuilder {
    store: Arc<dyn StateStore>,
    sender: Arc<dyn CodeSender>,
    server_secret: Secret,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    config: LocalOtpConfig,
}

impl fmt::Debug for LocalOtpBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalOtpBuilder")
            .field("store", &self.store)
            .field("sender", &self.sender)
            .field("server_secret", &self.server_secret)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LocalOtpBuilder {
    /// Uses this clock (default: [`SystemClock`]). Give the store the same clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this random source (default: [`SystemRandom`]).
    pub fn rng(mut self, rng: Arc<dyn SecureRandom>) -> Self {
        self.rng = rng;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: LocalOtpConfig) -> Self {
        self.config = config;
        self
    }

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

    /// Checks the configuration and builds the provider. Fails with
    /// [`Config`](ErrorKind::Config) for a server secret shorter than
    /// [`MIN_SERVER_SECRET_LEN`] bytes or out-of-range limits.
    pub fn build(self) -> Result<LocalOtpProvider> {
        if self.server_secret.len() < MIN_SERVER_SECRET_LEN {
            return Err(Error::config(
                "the OTP server secret must be at least 16 bytes (32 random bytes recommended)",
            ));
        }
        self.config.validate()?;
        Ok(LocalOtpProvider {
            store: self.store,
            sender: self.sender,
            key: hmac::Key::new(hmac::HMAC_SHA256, self.server_secret.expose()),
            clock: self.clock,
            rng: self.rng,
            config: self.config,
        })
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
/// A verification gets a random 16-byte nonce from the injected [`SecureRandom`]. Its code is
/// derived from `HMAC-SHA256(server secret, "keyward-otp-code-v1" || sid || nonce || counter)`
/// read as a stream, with rejection sampling ([`uniform_below`]) so every digit is uniform. The
/// store keeps the nonce and `HMAC-SHA256(server secret, sid || code)`, never the code: checks
/// recompute the keyed hash and compare it in constant time, and a re-send re-derives the same
/// code from the nonce. Someone who reads the store without the server secret learns nothing
/// about the code; someone with both could recompute it either way (a 6-digit code's keyed hash is
/// brute-forced in microseconds), so the nonce adds no exposure.
///
/// A host-chosen custom code has no nonce: a re-send must pass the custom code again (or a new
/// one, which replaces the old without resetting the attempt counter).
///
/// # Store layout (all keys start with `otp:`)
/// - `otp:ve:{sid}`: the verification (JSON), alive until expiry plus the tombstone window;
/// - `otp:to:{h}`: the sid of the latest verification for a destination (`h` is a keyed hash of
///   the destination, so no phone number or email appears in a key);
/// - `otp:attempts:{sid}`: the check counter (atomic increment);
/// - `otp:tomb:{sid}`: why a verification ended (approved, canceled, expired,
///   max_attempts_reached), kept for the tombstone window so errors can say so;
/// - `otp:rate:{h}:{window}`: per-destination send counter of one rate-limit window;
/// - `e:otp:budget:app:{window}`, `e:otp:budget:client:{c}:{window}`: the overall send budget, for
///   the provider and per client key (`c` a keyed hash of the key).
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

/// A verification as stored (`otp:ve:{sid}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    sid: String,
    to: String,
    channel: Channel,
    locale: Option<String>,
    /// Hex of HMAC(server secret, sid || code).
    code_hash: String,
    /// Hex of the derivation nonce; `None` for a custom code.
    nonce: Option<String>,
    code_len: u8,
    sends: u32,
    created_ms: u64,
    updated_ms: u64,
    expires_ms: u64,
    /// The sender name shown in the message (`CustomFriendlyName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    friendly_name: Option<String>,
    /// The message text replacing the template (`CustomMessage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    custom_message: Option<String>,
    /// The PSD2 transaction the code is bound to (`Amount`, `Payee`): both in `code_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payee: Option<String>,
    /// Android SMS Retriever hash appended to SMS (`AppHash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_hash: Option<String>,
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

/// What the code hash covers: the sid, the code and, for a PSD2 verification, the amount and
/// the payee (length-prefixed, so no two transactions share an encoding).
fn hashed_message(sid: &str, code: &[u8], txn: Option<(&str, &str)>) -> Vec<u8> {
    let mut msg = Vec::with_capacity(sid.len() + code.len() + 64);
    msg.extend_from_slice(sid.as_bytes());
    msg.extend_from_slice(code);
    if let Some((amount, payee)) = txn {
        msg.extend_from_slice(b"\0keyward-psd2-v1");
        for part in [amount, payee] {
            msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
            msg.extend_from_slice(part.as_bytes());
        }
    }
    msg
}

/// Why a verification ended (`otp:tomb:{sid}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Ended {
    Approved,
    Canceled,
    Expired,
    MaxAttemptsReached,
}

enum Resend {
    Done(Box<Record>),
    Gone,
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
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use keyward::{ManualClock, Secret};
    /// use keyward::otp::{ConsoleSender, LocalOtpProvider, SendRateLimit};
    /// use keyward::store::MemoryStore;
    ///
    /// let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    /// let otp = LocalOtpProvider::builder(
    ///     Arc::new(MemoryStore::with_clock(clock.clone())),
    ///     Arc::new(ConsoleSender),
    ///     Secret::new([7u8; 32]),
    /// )
    /// .clock(clock)
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
        LocalOtpBuilder {
            store,
            sender,
            server_secret,
            clock: Arc::new(SystemClock),
            rng: Arc::new(SystemRandom::new()),
            config: LocalOtpConfig::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &LocalOtpConfig {
        &self.config
    }

    fn now_ms(&self) -> u64 {
        to_ms(self.clock.now())
    }

    fn record_key(sid: &str) -> Key {
        Key::ephemeral("otp").part("ve").part(sid)
    }

    fn attempts_key(sid: &str) -> Key {
        Key::ephemeral("otp").part("attempts").part(sid)
    }

    fn tomb_key(sid: &str) -> Key {
        Key::ephemeral("otp").part("tomb").part(sid)
    }

    /// A keyed hash of a destination, so keys never contain phone numbers or emails.
    fn destination_id(&self, to: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"keyward-otp-destination-v1");
        ctx.update(to.as_bytes());
        let tag = ctx.sign();
        hex(tag.as_ref().get(..16).unwrap_or_default())
    }

    fn pointer_key(&self, to: &str) -> Key {
        Key::ephemeral("otp")
            .part("to")
            .part(&self.destination_id(to))
    }

    fn code_hash(&self, sid: &str, code: &[u8], txn: Option<(&str, &str)>) -> String {
        let mut msg = hashed_message(sid, code, txn);
        let tag = hmac::sign(&self.key, &msg);
        zeroize::Zeroize::zeroize(&mut msg);
        hex(tag.as_ref())
    }

    /// Whether `code`, for the transaction `txn` the check names, is the record's: a code
    /// issued for one amount and payee never matches for another (or for none).
    fn code_matches(
        &self,
        record: &Record,
        code: &[u8],
        txn: Option<(&str, &str)>,
    ) -> Result<bool> {
        let tag = unhex(&record.code_hash)
            .ok_or_else(|| Error::storage("stored code hash is corrupt"))?;
        let mut msg = hashed_message(&record.sid, code, txn);
        let ok = hmac::verify(&self.key, &msg, &tag).is_ok(); // constant time
        zeroize::Zeroize::zeroize(&mut msg);
        Ok(ok)
    }

    /// Re-derives the code of a verification from its nonce.
    fn derive_code(&self, sid: &str, nonce_hex: &str, len: u8) -> Result<Secret> {
        let nonce =
            unhex(nonce_hex).ok_or_else(|| Error::storage("stored code nonce is corrupt"))?;
        let mut seed = Vec::with_capacity(sid.len() + nonce.len());
        seed.extend_from_slice(sid.as_bytes());
        seed.extend_from_slice(&nonce);
        let stream = CodeStream {
            key: self.key.clone(),
            seed,
            counter: Mutex::new(0),
        };
        let mut code = String::with_capacity(usize::from(len));
        for _ in 0..len {
            let digit = uniform_below(&stream, 10)?;
            code.push(char::from(b'0' + digit as u8));
        }
        Ok(Secret::from(code))
    }

    fn record_ttl(&self, record: &Record, now_ms: u64) -> Duration {
        Duration::from_millis(record.expires_ms.saturating_sub(now_ms)) + self.config.tombstone_ttl
    }

    fn to_verification(record: &Record, status: VerificationStatus) -> Verification {
        Verification {
            sid: record.sid.clone(),
            to: record.to.clone(),
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
            let id = hex(ctx.sign().as_ref().get(..16).unwrap_or_default());
            let key = Key::ephemeral("otp")
                .part("budget")
                .part("client")
                .part(&id)
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

    /// Counts one send to `to` against the budget and the per-destination limit.
    async fn count_send(&self, to: &str, client: Option<&str>) -> Result<()> {
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
            .part(&self.destination_id(to))
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

    /// Records why a verification ended (the first reason wins). The attempt counter is left to
    /// expire with its TTL: deleting it would let a check that loaded the verification just
    /// before it ended start counting from zero again.
    async fn bury(&self, sid: &str, why: Ended) -> Result<()> {
        self.store
            .insert(
                &Self::tomb_key(sid),
                encode_json(&why)?,
                Some(self.config.tombstone_ttl),
            )
            .await?;
        Ok(())
    }

    /// The error for a verification that no longer exists.
    async fn gone(&self, sid: &str) -> Error {
        let ended = match self.store.get(&Self::tomb_key(sid)).await {
            Ok(Some(entry)) => decode_json::<Ended>(&entry.value).ok(),
            Ok(None) => None,
            Err(e) => return e,
        };
        match ended {
            Some(Ended::Expired) => Error::new(ErrorKind::Expired, "the verification expired"),
            Some(Ended::MaxAttemptsReached) => Error::new(
                ErrorKind::TooManyAttempts,
                "max check attempts reached for this verification",
            ),
            Some(Ended::Approved) => Error::new(
                ErrorKind::NotFound,
                "the verification was already approved and no longer exists",
            ),
            Some(Ended::Canceled) | None => {
                Error::new(ErrorKind::NotFound, "no such pending verification")
            }
        }
    }

    /// Removes the stored verification at `version` (if unchanged) and records why it ended.
    async fn end(&self, sid: &str, version: Version, why: Ended) -> Result<bool> {
        let swapped = matches!(
            self.store
                .compare_and_swap(&Self::record_key(sid), version, Write::Delete)
                .await?,
            CasOutcome::Swapped { .. }
        );
        if swapped {
            self.bury(sid, why).await?;
        }
        Ok(swapped)
    }

    /// Ends a verification whatever concurrent writers do to it; `false` if it was already gone.
    /// The reason is recorded before the verification is removed, so a concurrent reader that
    /// finds it gone always learns why.
    async fn finish(&self, sid: &str, mut version: Version, why: Ended) -> Result<bool> {
        self.store
            .insert(
                &Self::tomb_key(sid),
                encode_json(&why)?,
                Some(self.config.tombstone_ttl),
            )
            .await?;
        for _ in 0..crate::store::MAX_CAS_RETRIES {
            if self.end(sid, version, why).await? {
                return Ok(true);
            }
            match self.store.get(&Self::record_key(sid)).await? {
                Some(entry) => version = entry.version,
                None => return Ok(false),
            }
        }
        Err(Error::storage("too much contention ending a verification"))
    }

    /// Finds the sid a reference points to.
    async fn resolve(&self, target: &VerificationRef) -> Result<String> {
        match target {
            VerificationRef::Sid(sid) => {
                if !is_sid(sid) {
                    return Err(Error::invalid_input(
                        "a verification sid is VE followed by 32 hex digits",
                    ));
                }
                Ok(sid.clone())
            }
            VerificationRef::To(to) => {
                let to = Channel::Auto.normalize_destination(to)?;
                match self.store.get(&self.pointer_key(&to)).await? {
                    Some(entry) => String::from_utf8(entry.value)
                        .map_err(|_| Error::storage("stored verification pointer is corrupt")),
                    None => Err(Error::new(
                        ErrorKind::NotFound,
                        "no pending verification for this destination",
                    )),
                }
            }
        }
    }

    /// Loads a live verification: `(record, version)`, or the typed error if it ended. A
    /// verification found past its expiry is ended here.
    async fn load(&self, sid: &str) -> Result<(Record, Version)> {
        loop {
            let Some(entry) = self.store.get(&Self::record_key(sid)).await? else {
                return Err(self.gone(sid).await);
            };
            let record: Record = decode_json(&entry.value)?;
            if record.expires_ms > self.now_ms() {
                return Ok((record, entry.version));
            }
            if self.end(sid, entry.version, Ended::Expired).await? {
                return Err(Error::new(ErrorKind::Expired, "the verification expired"));
            }
            // Someone changed it in between: look again.
        }
    }

    async fn deliver(&self, record: &Record, code: &Secret) -> Result<()> {
        let template = self.config.templates.for_locale(record.locale.as_deref());
        let minutes = self.config.code_ttl.as_secs().div_ceil(60);
        let code_text = code
            .expose_str()
            .ok_or_else(|| Error::storage("code is not text"))?;
        let body = match &record.custom_message {
            Some(text) => MessageTemplate::new(text.clone())?.render(code_text, minutes),
            None => template.render(code_text, minutes),
        };
        let mut text = body.expose_str().unwrap_or_default().to_owned();
        if let Some(name) = &record.friendly_name {
            if text.contains("{friendly_name}") {
                text = text.replace("{friendly_name}", name);
            } else {
                text = format!("{name}: {text}");
            }
        }
        if let Some((amount, payee)) = transaction(&record.amount, &record.payee) {
            if text.contains("{amount}") || text.contains("{payee}") {
                text = text.replace("{amount}", amount).replace("{payee}", payee);
            } else {
                text = format!("{text}\nAmount: {amount}\nPayee: {payee}");
            }
        }
        if let (Some(hash), Channel::Sms) = (&record.app_hash, &record.channel) {
            text = format!("{text}\n{hash}");
        }
        let mut message = OutgoingMessage::new(
            record.channel.clone(),
            record.to.clone(),
            Secret::from(text),
            code.clone(),
        );
        if let Some(subject) = template.subject() {
            message = message.subject(subject);
        }
        self.sender.send(&message).await
    }

    fn new_record(
        &self,
        to: &str,
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<(Record, Secret)> {
        let sid = format!("VE{}", hex(&random_array::<16>(self.rng.as_ref())?));
        let now_ms = self.now_ms();
        let ttl_ms = u64::try_from(self.config.code_ttl.as_millis()).unwrap_or(u64::MAX);
        let (code, nonce, code_len) = match &request.custom_code {
            Some(custom) => (custom.clone(), None, custom_len(custom)?),
            None => {
                let nonce = hex(&random_array::<16>(self.rng.as_ref())?);
                let code = self.derive_code(&sid, &nonce, self.config.code_length)?;
                (code, Some(nonce), self.config.code_length)
            }
        };
        let record = Record {
            code_hash: self.code_hash(
                &sid,
                code.expose(),
                transaction(&request.amount, &request.payee),
            ),
            sid,
            to: to.to_owned(),
            channel: channel.clone(),
            locale: request.locale.clone(),
            nonce,
            code_len,
            sends: 1,
            created_ms: now_ms,
            updated_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            friendly_name: request.custom_friendly_name.clone(),
            custom_message: request.custom_message.clone(),
            amount: request.amount.clone(),
            payee: request.payee.clone(),
            app_hash: request.app_hash.clone(),
        };
        Ok((record, code))
    }

    /// Counts a re-send on a live verification and returns the updated record.
    async fn count_resend(
        &self,
        sid: &str,
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<Resend> {
        let now_ms = self.now_ms();
        let max_sends = self.config.max_sends;
        self.store
            .update_json(&Self::record_key(sid), |current: Option<Record>| {
                let Some(mut record) = current else {
                    return Ok(Update::Keep(Resend::Gone));
                };
                if record.expires_ms <= now_ms {
                    return Ok(Update::Keep(Resend::Gone));
                }
                if record.sends >= max_sends {
                    return Err(too_many_sends());
                }
                let asked = transaction(&request.amount, &request.payee);
                if asked.is_some() && asked != transaction(&record.amount, &record.payee) {
                    return Err(Error::invalid_input(
                        "a re-send cannot change the transaction: cancel and start again",
                    ));
                }
                match &request.custom_code {
                    Some(custom) => {
                        record.code_len = custom_len(custom)?;
                        record.code_hash = self.code_hash(
                            &record.sid,
                            custom.expose(),
                            transaction(&record.amount, &record.payee),
                        );
                        record.nonce = None;
                    }
                    None if record.nonce.is_none() => {
                        return Err(Error::invalid_input(
                            "this verification uses a custom code: pass it again to re-send",
                        ));
                    }
                    None => {}
                }
                record.sends += 1;
                record.updated_ms = now_ms;
                record.channel = channel.clone();
                if request.locale.is_some() {
                    record.locale = request.locale.clone();
                }
                Ok(Update::Set(
                    record.clone(),
                    Ttl::Keep,
                    Resend::Done(Box::new(record)),
                ))
            })
            .await
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
        let pointer_key = self.pointer_key(&to);
        let mut rate_counted = false;
        for _ in 0..MAX_START_ROUNDS {
            let pointer = self.store.get(&pointer_key).await?;
            // A live verification for this destination: re-send its code.
            if let Some(entry) = &pointer {
                let sid = String::from_utf8(entry.value.clone())
                    .map_err(|_| Error::storage("stored verification pointer is corrupt"))?;
                if let Some(live) = self.store.get(&Self::record_key(&sid)).await? {
                    let record: Record = decode_json(&live.value)?;
                    if record.expires_ms > self.now_ms() {
                        if record.sends >= self.config.max_sends {
                            return Err(too_many_sends());
                        }
                        if !rate_counted {
                            self.count_send(&to, request.client.as_deref()).await?;
                            rate_counted = true;
                        }
                        match self.count_resend(&sid, &channel, &request).await? {
                            Resend::Gone => continue,
                            Resend::Done(record) => {
                                let code = match (&request.custom_code, &record.nonce) {
                                    (Some(custom), _) => custom.clone(),
                                    (None, Some(nonce)) => {
                                        self.derive_code(&record.sid, nonce, record.code_len)?
                                    }
                                    (None, None) => {
                                        return Err(Error::invalid_input(
                                            "this verification uses a custom code: pass it again to re-send",
                                        ));
                                    }
                                };
                                self.deliver(&record, &code).await?;
                                return Ok(Self::to_verification(
                                    &record,
                                    VerificationStatus::Pending,
                                ));
                            }
                        }
                    }
                }
            }
            // No live verification: create one and point the destination at it.
            if !rate_counted {
                self.count_send(&to, request.client.as_deref()).await?;
                rate_counted = true;
            }
            let (record, code) = self.new_record(&to, &channel, &request)?;
            let now_ms = self.now_ms();
            let ttl = self.record_ttl(&record, now_ms);
            let record_key = Self::record_key(&record.sid);
            if self
                .store
                .insert(&record_key, encode_json(&record)?, Some(ttl))
                .await?
                .is_none()
            {
                continue; // sid collision: practically impossible, try a fresh one
            }
            let pointed = match &pointer {
                Some(entry) => matches!(
                    self.store
                        .compare_and_swap(
                            &pointer_key,
                            entry.version,
                            Write::Set {
                                value: record.sid.as_bytes().to_vec(),
                                ttl: Ttl::After(ttl),
                            },
                        )
                        .await?,
                    CasOutcome::Swapped { .. }
                ),
                None => self
                    .store
                    .insert(&pointer_key, record.sid.as_bytes().to_vec(), Some(ttl))
                    .await?
                    .is_some(),
            };
            if !pointed {
                // A concurrent start won: drop ours and re-send theirs.
                self.store.delete(&record_key).await?;
                continue;
            }
            if let Err(err) = self.deliver(&record, &code).await {
                // Nothing reached the user: forget the verification so a retry starts afresh.
                self.store.delete(&record_key).await?;
                return Err(err);
            }
            return Ok(Self::to_verification(&record, VerificationStatus::Pending));
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
        let sid = self.resolve(&request.target).await?;
        let (mut record, mut version) = self.load(&sid).await?;
        let now_ms = self.now_ms();
        let attempts = self
            .store
            .increment(
                &Self::attempts_key(&sid),
                1,
                Some(self.record_ttl(&record, now_ms)),
            )
            .await?;
        let max = u64::from(self.config.max_check_attempts);
        if attempts > max {
            // Counted but never compared: the limit holds however many checks race.
            self.finish(&sid, version, Ended::MaxAttemptsReached)
                .await?;
            return Err(Error::new(
                ErrorKind::TooManyAttempts,
                "max check attempts reached for this verification",
            ));
        }
        loop {
            if !self.code_matches(&record, code, txn)? {
                if attempts == max {
                    self.finish(&sid, version, Ended::MaxAttemptsReached)
                        .await?;
                    return Ok(CheckOutcome::Rejected(Self::to_verification(
                        &record,
                        VerificationStatus::MaxAttemptsReached,
                    )));
                }
                return Ok(CheckOutcome::Rejected(Self::to_verification(
                    &record,
                    VerificationStatus::Pending,
                )));
            }
            // Right code: approving removes the verification, so of two concurrent right checks
            // exactly one wins.
            if self.end(&sid, version, Ended::Approved).await? {
                record.updated_ms = self.now_ms();
                return crate::backend::approved(Self::to_verification(
                    &record,
                    VerificationStatus::Approved,
                ))
                .map(CheckOutcome::Approved);
            }
            // Changed in between (a re-send, another check): re-read and decide again.
            (record, version) = self.load(&sid).await?;
        }
    }

    async fn cancel_inner(&self, target: VerificationRef) -> Result<Verification> {
        let sid = self.resolve(&target).await?;
        loop {
            let (mut record, version) = self.load(&sid).await?;
            if self.end(&sid, version, Ended::Canceled).await? {
                record.updated_ms = self.now_ms();
                return Ok(Self::to_verification(&record, VerificationStatus::Canceled));
            }
        }
    }
}

#[async_trait]
impl OtpProvider for LocalOtpProvider {
    async fn start(&self, request: StartVerification) -> Result<Verification> {
        self.start_inner(request).await
    }

    async fn check(&self, request: CheckCode) -> Result<CheckOutcome> {
        self.check_inner(request).await
    }

    async fn fetch(&self, target: VerificationRef) -> Result<Verification> {
        let sid = self.resolve(&target).await?;
        let (record, _) = self.load(&sid).await?;
        Ok(Self::to_verification(&record, VerificationStatus::Pending))
    }

    async fn cancel(&self, target: VerificationRef) -> Result<Verification> {
        self.cancel_inner(target).await
    }
}

/// HMAC-SHA256 in counter mode over a verification's seed: the deterministic stream codes are
/// drawn from.
struct CodeStream {
    key: hmac::Key,
    seed: Vec<u8>,
    counter: Mutex<u64>,
}

impl fmt::Debug for CodeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeStream([REDACTED])")
    }
}

impl SecureRandom for CodeStream {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        let mut counter = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in dest.chunks_mut(32) {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(b"keyward-otp-code-v1");
            ctx.update(&self.seed);
            ctx.update(&counter.to_be_bytes());
            *counter += 1;
            let tag = ctx.sign();
            let block = tag
                .as_ref()
                .get(..chunk.len())
                .ok_or_else(|| Error::new(ErrorKind::Random, "code stream block too short"))?;
            chunk.copy_from_slice(block);
        }
        Ok(())
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

fn is_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("VE") && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
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
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
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
        .rng(Arc::new(SeededRandom::new(b"unit")))
        .build()
        .unwrap()
    }

    #[test]
    fn derived_digits_are_uniform_and_reproducible() {
        let p = provider();
        let mut counts = [0u32; 10];
        for i in 0..2_000u32 {
            let nonce = hex(&i.to_be_bytes());
            let code = p
                .derive_code("VE00000000000000000000000000000000", &nonce, 10)
                .unwrap();
            let again = p
                .derive_code("VE00000000000000000000000000000000", &nonce, 10)
                .unwrap();
            assert_eq!(code, again);
            for d in code.expose() {
                counts[usize::from(d - b'0')] += 1;
            }
        }
        // 20,000 digits: each expected 2,000; a biased generator would drift well outside.
        for c in counts {
            assert!((1_800..=2_200).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn code_hash_binds_sid_and_code() {
        let p = provider();
        let a = p.code_hash("VE00000000000000000000000000000000", b"123456", None);
        let b = p.code_hash("VE00000000000000000000000000000001", b"123456", None);
        let c = p.code_hash("VE00000000000000000000000000000000", b"123457", None);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
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
