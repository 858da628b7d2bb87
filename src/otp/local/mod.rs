//! The self-hosted [`OtpProvider`]: Twilio Verify's observable behaviour, with codes delivered
//! through any [`CodeSender`] and every piece of state in a [`StateStore`].
//!
//! | file | question it answers |
//! |---|---|
//! | `mod.rs` | the provider, its constructors and the trait |
//! | `config.rs` | which limits and texts, and their builder setters |
//! | `record.rs` | what is stored: one record per destination, its encoding |
//! | `codes.rs` | every keyed hash: sids, codes, destinations, custom codes |
//! | `flow.rs` | start, check, cancel, fetch: one compare-and-swap of that record each |
//! | `limits.rs` | the send budget and the per-destination rate limit |
//! | `message.rs` | the message the user receives, the start parameters honoured |

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ring::hmac;

use super::sender::CodeSender;
use super::{
    CheckCode, CheckOutcome, OtpProvider, StartVerification, Verification, VerificationRef,
};
use crate::builder::Builder;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::rng::SecureRandom;
use crate::secret::Secret;
use crate::store::StateStore;

/// Shortest accepted server secret, in bytes.
pub const MIN_SERVER_SECRET_LEN: usize = 16;

const MAX_START_ROUNDS: usize = 16;

mod codes;
mod config;
mod flow;
mod limits;
mod message;
mod record;

pub use config::{LocalOtpBuilder, LocalOtpConfig, SendBudget, SendRateLimit};

/// The self-hosted one-time-passcode provider (always compiled).
///
/// Behaves like Twilio Verify (see `docs/otp.md`): 6-digit codes
/// valid 10 minutes, 5 checks, 5 sends, starting again re-sends the same code, ended
/// verifications are gone. On top of Verify it answers [`Expired`](crate::ErrorKind::Expired) and
/// [`TooManyAttempts`](crate::ErrorKind::TooManyAttempts) for a while after a verification ends that way,
/// and limits sends per destination ([`RateLimited`](crate::ErrorKind::RateLimited)).
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
    /// [`build`](Builder::build) fails with [`Config`](crate::ErrorKind::Config) for a server secret
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
}

#[async_trait]
impl OtpProvider for LocalOtpProvider {
    // Start and check box their flow's future directly (traced there) rather than through an
    // `async fn` wrapper, which would store the request a second time beside that future: the
    // box of a start + check is the hot path of every login.
    fn start<'a, 'f>(
        &'a self,
        request: StartVerification,
    ) -> Pin<Box<dyn Future<Output = Result<Verification>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.start_inner(request))
    }

    fn check<'a, 'f>(
        &'a self,
        request: CheckCode,
    ) -> Pin<Box<dyn Future<Output = Result<CheckOutcome>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.check_inner(request))
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

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::error::ErrorKind;
    use crate::otp::Outbox;
    use crate::otp::local::LocalOtpProvider;
    use crate::secret::Secret;
    use crate::store::MemoryStore;

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

#[cfg(test)]
mod future_size {
    use std::sync::Arc;

    use crate::otp::{Channel, CheckCode, Outbox, StartVerification};
    use crate::secret::Secret;
    use crate::store::MemoryStore;

    /// Every start and check boxes its future; at most 1,032 bytes, the allocation stays in
    /// glibc's per-thread cache (larger ones take the slower bins and consolidate them) and in
    /// the small size classes of other allocators. A field held across an await, or a
    /// by-value argument kept twice, shows up here first (docs/benchmarks.md, "State").
    #[test]
    fn start_and_check_futures_stay_small() {
        let p = super::LocalOtpProvider::new(
            Arc::new(MemoryStore::new()),
            Arc::new(Outbox::new()),
            Secret::new([1u8; 32]),
        )
        .unwrap();
        let start = p.start_inner(StartVerification::new("+15017122661", Channel::Sms));
        let check = p.check_inner(CheckCode::to("+15017122661", "123456"));
        assert!(size_of_val(&start) <= 1032, "{}", size_of_val(&start));
        assert!(size_of_val(&check) <= 1032, "{}", size_of_val(&check));
    }
}
