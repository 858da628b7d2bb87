//! The self-hosted [`TotpProvider`]: factors sealed in a [`StateStore`], codes checked here.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{aead, hmac};
use serde::{Deserialize, Serialize};

use super::hotp::{MIN_SECRET_LEN, base32_encode, hotp, time_step};
use super::uri::{hotp_uri, totp_uri};
use super::{
    CheckTotp, EnrollTotp, FactorKind, FactorStatus, TotpApproved, TotpEnrollment, TotpOutcome,
    TotpParams, TotpProvider, check_names, code_shape,
};
use crate::builder::Builder;
use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::hex;
use crate::rng::{SecureRandom, random_array};
use crate::secret::Secret;
use crate::secret::subtle_eq::constant_time_eq;
use crate::store::{Key, StateStore, StateStoreExt, Ttl, Update};

/// Shortest accepted server secret, in bytes.
const MIN_SERVER_SECRET_LEN: usize = 16;

/// Limits and defaults of a [`LocalTotp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalTotpConfig {
    /// The issuer the app shows (your service's name).
    pub issuer: String,
    /// Parameters of enrolments that do not choose their own.
    pub params: TotpParams,
    /// Bytes of each new secret, at least 20 (160 bits). Default 20.
    pub secret_len: usize,
    /// Code checks (confirmations included) per identity per `attempt_window`. Default 5.
    pub max_attempts: u32,
    /// Window of the attempt counter, from the first attempt; a success resets it. Default 15
    /// minutes.
    pub attempt_window: Duration,
    /// How long an enrolment may wait for its confirming code. Default 15 minutes.
    pub enrollment_ttl: Duration,
    /// Factors per identity, pending ones included. Default 5.
    pub max_factors: usize,
    /// HOTP look-ahead: a code is accepted for the next unused counter value `n` or any of the
    /// following `hotp_look_ahead` ones (the app's counter runs ahead when codes are generated
    /// and not used); accepting value `c` moves the next one to `c + 1`. 0 to 100. Default 10.
    pub hotp_look_ahead: u32,
    /// HOTP resynchronisation (RFC 4226 section 7.4): a code matching a value beyond the
    /// look-ahead but at most `hotp_resync_window` past `n` is not accepted alone; it is
    /// remembered, and the next check accepts exactly the code of the value after it (two
    /// consecutive codes, as the RFC's resynchronisation asks), moving the counter past both.
    /// 0 disables resynchronisation; otherwise more than the look-ahead, at most 1000.
    /// Default 100.
    pub hotp_resync_window: u32,
}

impl LocalTotpConfig {
    /// The defaults, with `issuer` as the name apps show.
    pub fn new(issuer: impl Into<String>) -> Self {
        LocalTotpConfig {
            issuer: issuer.into(),
            params: TotpParams::default(),
            secret_len: MIN_SECRET_LEN,
            max_attempts: 5,
            attempt_window: Duration::from_secs(900),
            enrollment_ttl: Duration::from_secs(900),
            max_factors: 5,
            hotp_look_ahead: 10,
            hotp_resync_window: 100,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() || self.issuer.contains(':') {
            return Err(Error::config("the totp issuer is empty or contains ':'"));
        }
        self.params
            .validate()
            .map_err(|e| Error::config(e.message().to_owned()))?;
        if !(MIN_SECRET_LEN..=128).contains(&self.secret_len) {
            return Err(Error::config("a totp secret is 20 to 128 bytes"));
        }
        if self.max_attempts == 0 || self.max_factors == 0 {
            return Err(Error::config("totp limits must allow at least one"));
        }
        if self.attempt_window < Duration::from_secs(1)
            || self.enrollment_ttl < Duration::from_secs(1)
        {
            return Err(Error::config("totp windows must be at least one second"));
        }
        if self.hotp_look_ahead > 100
            || self.hotp_resync_window > 1_000
            || (self.hotp_resync_window != 0 && self.hotp_resync_window <= self.hotp_look_ahead)
        {
            return Err(Error::config(
                "hotp look-ahead is at most 100, the resync window 0 or above it and at most 1000",
            ));
        }
        Ok(())
    }
}

/// Builds a [`LocalTotp`]; see [`LocalTotp::builder`]. The clock and random source come from
/// [`Builder::env`], the whole configuration from [`Builder::config`]; the setters below change
/// one field of the [`LocalTotpConfig`].
pub type LocalTotpBuilder = Builder<LocalTotp, LocalTotpConfig>;

impl Builder<LocalTotp, LocalTotpConfig> {
    /// Default parameters of new factors.
    pub fn params(mut self, params: TotpParams) -> Self {
        self.config.params = params;
        self
    }

    /// Code checks per identity per window.
    pub fn max_attempts(mut self, attempts: u32, window: Duration) -> Self {
        self.config.max_attempts = attempts;
        self.config.attempt_window = window;
        self
    }

    /// Bytes of new secrets (at least 20).
    pub fn secret_len(mut self, bytes: usize) -> Self {
        self.config.secret_len = bytes;
        self
    }

    /// How long an enrolment waits for its confirmation.
    pub fn enrollment_ttl(mut self, ttl: Duration) -> Self {
        self.config.enrollment_ttl = ttl;
        self
    }

    /// The HOTP look-ahead and resynchronisation windows (see [`LocalTotpConfig`]).
    pub fn hotp_windows(mut self, look_ahead: u32, resync_window: u32) -> Self {
        self.config.hotp_look_ahead = look_ahead;
        self.config.hotp_resync_window = resync_window;
        self
    }
}

/// The self-hosted TOTP backend.
///
/// # What is stored
/// One durable entry per identity, `d:totp:user:{tag}` (the tag is a keyed hash of the identity, so keys
/// do not name users), holding that identity's factors: id, status, parameters, the last time
/// step accepted, and the secret sealed with AES-256-GCM under a key derived from the server
/// secret (bound to the identity tag and factor id, so a sealed secret moved to another record
/// does not open). Every change is one compare-and-swap on that entry, so of two instances
/// accepting the same code at once exactly one wins. Failed-check counters live at
/// `e:totp:attempts:{tag}` (ephemeral) with the attempt window as TTL.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::{Clock, Env, ManualClock, Secret};
/// use keyward::store::MemoryStore;
/// use keyward::totp::{CheckTotp, EnrollTotp, LocalTotp, TotpOutcome, TotpProvider, base32_decode, totp_at};
///
/// let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
/// let env = Env::system().with_clock(clock.clone());
/// let store = Arc::new(MemoryStore::new().env(env.clone()));
/// let totp = LocalTotp::builder(store, Secret::new([7u8; 32]), "Example")
///     .env(env)
///     .build()?;
///
/// let enrollment = totp.enroll(EnrollTotp::new("user-42", "alice@example.com")).await?;
/// // The user scans enrollment.uri (or enrollment.qr_svg()); their app computes:
/// let secret = base32_decode(enrollment.secret.expose_str().unwrap()).unwrap();
/// let p = enrollment.params;
/// let code = totp_at(&secret, clock.unix_seconds(), p.period, p.digits, p.algorithm)?;
/// let sid = enrollment.factor_sid.clone();
/// let confirmed = totp.confirm(CheckTotp::new("user-42", &sid, code.clone())).await?;
/// assert!(matches!(confirmed, TotpOutcome::Approved(_)));
/// // The same code (same time step) never passes twice.
/// let again = totp.check(CheckTotp::new("user-42", &sid, code)).await?;
/// assert_eq!(again, TotpOutcome::Rejected);
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
pub struct LocalTotp {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
    config: LocalTotpConfig,
    seal: aead::LessSafeKey,
    identity_key: hmac::Key,
}

impl fmt::Debug for LocalTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTotp")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .field("keys", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// One identity's factors, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UserRecord {
    factors: Vec<FactorRecord>,
    /// Members of a later release, written back by every rewrite (`store::record`).
    #[serde(flatten)]
    later: LaterMembers,
}

/// The JSON members of a record that this release does not know, written back as they were, so
/// an instance of an earlier release in a rolling upgrade does not erase them. Its `Debug` shows
/// the names only: a later release's member may hold a secret.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
struct LaterMembers(serde_json::Map<String, serde_json::Value>);

impl fmt::Debug for LaterMembers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct FactorRecord {
    sid: String,
    status: FactorStatus,
    params: TotpParams,
    /// base64url(nonce || AES-256-GCM(secret) || tag).
    sealed: String,
    created_ms: u64,
    /// Deadline of an unverified factor's confirmation.
    confirm_by_ms: Option<u64>,
    /// The last time step a code was accepted at: later codes must be of a later step.
    last_step: Option<u64>,
    /// Time-based or counter-based (records written before HOTP are time-based).
    #[serde(default)]
    kind: FactorKind,
    /// HOTP: the next unused counter value; only ever increases.
    #[serde(default)]
    counter: u64,
    /// HOTP: the counter value of a code that matched beyond the look-ahead, waiting for the
    /// code of the value after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resync: Option<u64>,
    /// Members of a later release, written back while the factor is kept.
    #[serde(flatten)]
    later: LaterMembers,
}

impl fmt::Debug for FactorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactorRecord")
            .field("sid", &self.sid)
            .field("status", &self.status)
            .field("params", &self.params)
            .field("sealed", &"[REDACTED]")
            .field("last_step", &self.last_step)
            .field("kind", &self.kind)
            .field("counter", &self.counter)
            .field("resync", &self.resync)
            .field("later", &self.later)
            .finish_non_exhaustive()
    }
}

enum Checked {
    Approved,
    Rejected,
}

impl LocalTotp {
    /// A provider over `store`, with `server_secret` (at least 16 bytes; the same on every
    /// instance sharing the store) sealing the secrets, and `issuer` shown by the apps.
    pub fn builder(
        store: Arc<dyn StateStore>,
        server_secret: Secret,
        issuer: impl Into<String>,
    ) -> LocalTotpBuilder {
        Builder::new(LocalTotpConfig::new(issuer), move |config, env| {
            if server_secret.len() < MIN_SERVER_SECRET_LEN {
                return Err(Error::config(
                    "the totp server secret must be at least 16 bytes",
                ));
            }
            config.validate()?;
            let derive = |label: &[u8]| {
                let key = hmac::Key::new(hmac::HMAC_SHA256, server_secret.expose());
                hmac::sign(&key, label)
            };
            let seal_key = derive(b"keyward-totp-seal-v1");
            let seal = aead::UnboundKey::new(&aead::AES_256_GCM, seal_key.as_ref())
                .map_err(|_| Error::config("cannot derive the totp sealing key"))?;
            let id_key = derive(b"keyward-totp-identity-v1");
            Ok(LocalTotp {
                store,
                clock: env.clock().clone(),
                rng: env.random().clone(),
                config,
                seal: aead::LessSafeKey::new(seal),
                identity_key: hmac::Key::new(hmac::HMAC_SHA256, id_key.as_ref()),
            })
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &LocalTotpConfig {
        &self.config
    }

    fn tag(&self, identity: &str) -> String {
        let tag = hmac::sign(&self.identity_key, identity.as_bytes());
        hex::encode(tag.as_ref().get(..16).unwrap_or_default())
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn aad(tag: &str, sid: &str) -> Vec<u8> {
        let mut aad = b"keyward-totp-v1:".to_vec();
        aad.extend_from_slice(tag.as_bytes());
        aad.push(b':');
        aad.extend_from_slice(sid.as_bytes());
        aad
    }

    fn seal(&self, tag: &str, sid: &str, secret: &Secret) -> Result<String> {
        let nonce_bytes: [u8; 12] = random_array(self.rng.as_ref())?;
        let mut buf = secret.expose().to_vec();
        self.seal
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce_bytes),
                aead::Aad::from(Self::aad(tag, sid)),
                &mut buf,
            )
            .map_err(|_| Error::storage("cannot seal the totp secret"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, tag: &str, factor: &FactorRecord) -> Result<Secret> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&factor.sealed)
            .map_err(|_| Error::storage("stored totp secret is corrupt"))?;
        let (nonce, sealed) = bytes
            .split_at_checked(12)
            .ok_or_else(|| Error::storage("stored totp secret is corrupt"))?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::storage("stored totp secret is corrupt"))?;
        let mut work = sealed.to_vec();
        let opened = self
            .seal
            .open_in_place(
                nonce,
                aead::Aad::from(Self::aad(tag, &factor.sid)),
                &mut work,
            )
            .map(|plain| Secret::new(&*plain))
            .map_err(|_| {
                Error::new(
                    ErrorKind::CannotOpen,
                    "stored totp secret does not open (wrong server secret?)",
                )
            });
        zeroize::Zeroize::zeroize(&mut work);
        opened
    }

    fn ttl_of(record: &UserRecord, now_ms: u64) -> Ttl {
        if record
            .factors
            .iter()
            .any(|f| f.status == FactorStatus::Verified)
        {
            return Ttl::Never;
        }
        let last = record
            .factors
            .iter()
            .filter_map(|f| f.confirm_by_ms)
            .max()
            .unwrap_or(now_ms);
        Ttl::After(Duration::from_millis(last.saturating_sub(now_ms).max(1)))
    }

    fn prune(record: &mut UserRecord, now_ms: u64) {
        record
            .factors
            .retain(|f| f.confirm_by_ms.is_none_or(|deadline| now_ms < deadline));
    }

    async fn check_code(&self, request: CheckTotp, want: FactorStatus) -> Result<TotpOutcome> {
        check_names(&request.identity, None)?;
        let typed = code_shape(&request.code)?.to_owned();
        let typed = Secret::from(typed);
        let tag = self.tag(&request.identity);
        let attempts_key = Key::ephemeral("totp").part("attempts").part(&tag);
        let attempts = self
            .store
            .increment(&attempts_key, 1, Some(self.config.attempt_window))
            .await?;
        if attempts > u64::from(self.config.max_attempts) {
            // Counted but never compared: the limit holds however many checks race.
            return Err(Error::new(
                ErrorKind::TooManyAttempts,
                "too many totp attempts for this identity; try again later",
            ));
        }
        let now = self.clock.unix_seconds();
        let now_ms = self.now_ms();
        let key = Key::durable("totp").part("user").part(&tag);
        let sid = request.factor_sid.as_str();
        let checked = self
            .store
            .update_json::<UserRecord, Checked, _>(&key, |record| {
                let Some(mut record) = record else {
                    return Err(not_found());
                };
                Self::prune(&mut record, now_ms);
                let Some(factor) = record
                    .factors
                    .iter_mut()
                    .find(|f| f.sid == sid && f.status == want)
                else {
                    return Err(not_found());
                };
                let secret = self.open(&tag, factor)?;
                let matched = match factor.kind {
                    FactorKind::Totp => Self::match_totp(factor, &secret, &typed, now)?,
                    FactorKind::Hotp => {
                        match self.match_hotp(factor, &secret, &typed)? {
                            HotpMatch::Accept(next) => {
                                factor.counter = next;
                                factor.resync = None;
                                true
                            }
                            HotpMatch::Resync(value) => {
                                // Remembered, not accepted: the next code must follow it.
                                factor.resync = Some(value);
                                let ttl = Self::ttl_of(&record, now_ms);
                                return Ok(Update::Set(record, ttl, Checked::Rejected));
                            }
                            HotpMatch::None => false,
                        }
                    }
                };
                if !matched {
                    return Ok(Update::Keep(Checked::Rejected));
                }
                factor.status = FactorStatus::Verified;
                factor.confirm_by_ms = None;
                let ttl = Self::ttl_of(&record, now_ms);
                Ok(Update::Set(record, ttl, Checked::Approved))
            })
            .await?;
        match checked {
            Checked::Approved => {
                // A success resets the counter; failing to only delays the user.
                let _ = self.store.delete(&attempts_key).await;
                Ok(TotpOutcome::Approved(TotpApproved::new_unchecked(
                    request.identity,
                    request.factor_sid,
                )))
            }
            Checked::Rejected => Ok(TotpOutcome::Rejected),
        }
    }
}

/// What a HOTP code matched.
enum HotpMatch {
    /// A value in the look-ahead window, or the one after a remembered resync value: the
    /// factor's next counter value becomes this.
    Accept(u64),
    /// A value in the resynchronisation window only: remember it.
    Resync(u64),
    /// Nothing.
    None,
}

impl LocalTotp {
    /// Whether `typed` is the code of a step of the window later than the last accepted one,
    /// recording that step. Every step of the window is computed and compared, whatever matches
    /// first.
    fn match_totp(
        factor: &mut FactorRecord,
        secret: &Secret,
        typed: &Secret,
        now: u64,
    ) -> Result<bool> {
        let p = factor.params;
        let current = time_step(now, p.period);
        let skew = u64::from(p.skew);
        let mut matched = None;
        for step in current.saturating_sub(skew)..=current.saturating_add(skew) {
            let code = hotp(secret.expose(), step, p.digits, p.algorithm)?;
            let fresh = factor.last_step.is_none_or(|last| step > last);
            if constant_time_eq(code.expose(), typed.expose()) && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        if let Some(step) = matched {
            factor.last_step = Some(step);
        }
        Ok(matched.is_some())
    }

    /// RFC 4226 section 7.4 on the factor's counter: the look-ahead window `n ..= n + s`, then
    /// the value after a remembered resync value, then the resync window. Every value of the
    /// look-ahead window is computed and compared whatever matches first; a value below `n` is
    /// never computed, so no counter value is accepted twice.
    fn match_hotp(
        &self,
        factor: &FactorRecord,
        secret: &Secret,
        typed: &Secret,
    ) -> Result<HotpMatch> {
        let p = factor.params;
        let next = factor.counter;
        let code_at = |value: u64| -> Result<bool> {
            let code = hotp(secret.expose(), value, p.digits, p.algorithm)?;
            Ok(constant_time_eq(code.expose(), typed.expose()))
        };
        let look_ahead_end = next.saturating_add(u64::from(self.config.hotp_look_ahead));
        let mut matched = None;
        for value in next..=look_ahead_end {
            if code_at(value)? && matched.is_none() {
                matched = Some(value);
            }
        }
        if let Some(value) = matched {
            return Ok(HotpMatch::Accept(value.saturating_add(1)));
        }
        if self.config.hotp_resync_window == 0 {
            return Ok(HotpMatch::None);
        }
        if let Some(remembered) = factor.resync
            && remembered >= next
            && code_at(remembered.saturating_add(1))?
        {
            return Ok(HotpMatch::Accept(remembered.saturating_add(2)));
        }
        let resync_end = next.saturating_add(u64::from(self.config.hotp_resync_window));
        for value in look_ahead_end.saturating_add(1)..=resync_end {
            if code_at(value)? {
                return Ok(HotpMatch::Resync(value));
            }
        }
        Ok(HotpMatch::None)
    }
}

fn not_found() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "no such totp factor for this identity (or not in that state)",
    )
}

#[async_trait]
impl TotpProvider for LocalTotp {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.enroll", skip_all, fields(backend = "local", identity = %crate::trace::masked(&request.identity)), err(Display, level = "info")))]
    async fn enroll(&self, request: EnrollTotp) -> Result<TotpEnrollment> {
        check_names(&request.identity, Some(&request.account_name))?;
        let params = request.params.unwrap_or(self.config.params);
        params.validate()?;
        let mut raw = vec![0u8; self.config.secret_len];
        self.rng.fill(&mut raw)?;
        let secret = Secret::from(raw);
        let sid_bytes: [u8; 16] = random_array(self.rng.as_ref())?;
        let sid = format!("YF{}", hex::encode(&sid_bytes));
        let tag = self.tag(&request.identity);
        let sealed = self.seal(&tag, &sid, &secret)?;
        let now_ms = self.now_ms();
        let ttl_ms = u64::try_from(self.config.enrollment_ttl.as_millis()).unwrap_or(u64::MAX);
        let confirm_by_ms = now_ms.saturating_add(ttl_ms);
        let factor = FactorRecord {
            sid: sid.clone(),
            status: FactorStatus::Unverified,
            params,
            sealed,
            created_ms: now_ms,
            confirm_by_ms: Some(confirm_by_ms),
            last_step: None,
            kind: request.kind,
            counter: 0,
            resync: None,
            later: LaterMembers::default(),
        };
        let max = self.config.max_factors;
        self.store
            .update_json::<UserRecord, (), _>(
                &Key::durable("totp").part("user").part(&tag),
                |record| {
                    let mut record = record.unwrap_or_default();
                    Self::prune(&mut record, now_ms);
                    if record.factors.len() >= max {
                        return Err(Error::new(
                            ErrorKind::RateLimited { retry_after: None },
                            "this identity has the maximum number of totp factors",
                        ));
                    }
                    record.factors.push(factor.clone());
                    let ttl = Self::ttl_of(&record, now_ms);
                    Ok(Update::Set(record, ttl, ()))
                },
            )
            .await?;
        let b32 = Secret::from(base32_encode(secret.expose()));
        let b32_text = b32.expose_str().unwrap_or_default();
        let uri = match request.kind {
            FactorKind::Totp => totp_uri(
                &self.config.issuer,
                &request.account_name,
                b32_text,
                &params,
            ),
            FactorKind::Hotp => hotp_uri(
                &self.config.issuer,
                &request.account_name,
                b32_text,
                params.algorithm,
                params.digits,
                0,
            ),
        };
        Ok(TotpEnrollment {
            factor_sid: sid,
            identity: request.identity,
            secret: b32,
            uri,
            params,
            kind: request.kind,
            confirm_by: Some(UNIX_EPOCH + Duration::from_millis(confirm_by_ms)),
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.confirm", skip_all, fields(backend = "local", identity = %crate::trace::masked(&request.identity), factor_sid = %request.factor_sid), err(Display, level = "info")))]
    async fn confirm(&self, request: CheckTotp) -> Result<TotpOutcome> {
        crate::trace::totp_outcome(self.check_code(request, FactorStatus::Unverified).await)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.check", skip_all, fields(backend = "local", identity = %crate::trace::masked(&request.identity), factor_sid = %request.factor_sid), err(Display, level = "info")))]
    async fn check(&self, request: CheckTotp) -> Result<TotpOutcome> {
        crate::trace::totp_outcome(self.check_code(request, FactorStatus::Verified).await)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.remove", skip_all, fields(backend = "local", identity = %crate::trace::masked(identity), factor_sid = %factor_sid), err(Display, level = "info")))]
    async fn remove(&self, identity: &str, factor_sid: &str) -> Result<()> {
        check_names(identity, None)?;
        let tag = self.tag(identity);
        let now_ms = self.now_ms();
        self.store
            .update_json::<UserRecord, (), _>(
                &Key::durable("totp").part("user").part(&tag),
                |record| {
                    let Some(mut record) = record else {
                        return Err(not_found());
                    };
                    let before = record.factors.len();
                    record.factors.retain(|f| f.sid != factor_sid);
                    if record.factors.len() == before {
                        return Err(not_found());
                    }
                    Self::prune(&mut record, now_ms);
                    if record.factors.is_empty() {
                        return Ok(Update::Delete(()));
                    }
                    let ttl = Self::ttl_of(&record, now_ms);
                    Ok(Update::Set(record, ttl, ()))
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testing::SeededRandom;

    #[test]
    fn sealed_secret_is_bound_to_identity_and_factor() {
        let totp = LocalTotp::builder(Arc::new(MemoryStore::new()), Secret::new([3u8; 32]), "X")
            .env(crate::Env::system().with_random(Arc::new(SeededRandom::new(b"seal"))))
            .build()
            .unwrap();
        let secret = Secret::new([9u8; 20]);
        let sealed = totp.seal("aa", "YF1", &secret).unwrap();
        let mut factor = FactorRecord {
            sid: "YF1".into(),
            status: FactorStatus::Verified,
            params: TotpParams::default(),
            sealed,
            created_ms: 0,
            confirm_by_ms: None,
            last_step: None,
            kind: FactorKind::Totp,
            counter: 0,
            resync: None,
            later: LaterMembers::default(),
        };
        assert_eq!(totp.open("aa", &factor).unwrap(), secret);
        assert_eq!(
            totp.open("bb", &factor).unwrap_err().kind(),
            &ErrorKind::CannotOpen
        );
        factor.sid = "YF2".into();
        assert!(totp.open("aa", &factor).is_err());
        assert!(!format!("{factor:?}").contains(&factor.sealed));
    }

    #[test]
    fn config_is_validated() {
        let build = |f: fn(LocalTotpBuilder) -> LocalTotpBuilder| {
            f(LocalTotp::builder(
                Arc::new(MemoryStore::new()),
                Secret::new([3u8; 32]),
                "X",
            ))
            .build()
        };
        assert!(build(|b| b).is_ok());
        assert!(build(|b| b.secret_len(19)).is_err());
        assert!(build(|b| b.max_attempts(0, Duration::from_secs(60))).is_err());
        assert!(
            LocalTotp::builder(Arc::new(MemoryStore::new()), Secret::new([3u8; 8]), "X")
                .build()
                .is_err()
        );
        assert!(
            LocalTotp::builder(Arc::new(MemoryStore::new()), Secret::new([3u8; 32]), "a:b")
                .build()
                .is_err()
        );
    }

    #[tokio::test]
    async fn checks_enrollments_and_removals_keep_members_of_a_later_release() {
        use serde_json::{Value, json};

        use crate::clock::ManualClock;
        use crate::store::Write;
        use crate::totp::{
            CheckTotp, EnrollTotp, TotpOutcome, TotpProvider, base32_decode, totp_at,
        };

        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let env = crate::Env::system().with_clock(clock.clone());
        let store = Arc::new(MemoryStore::new().env(env.clone()));
        let totp = LocalTotp::builder(store.clone(), Secret::new([7u8; 32]), "X")
            .env(env)
            .build()
            .unwrap();
        let key = Key::durable("totp").part("user").part(&totp.tag("user-42"));
        let stored = || async {
            let entry = store.get(&key).await.unwrap().unwrap();
            serde_json::from_slice::<Value>(&entry.value).unwrap()
        };
        let enrollment = totp
            .enroll(EnrollTotp::new("user-42", "alice@example.com"))
            .await
            .unwrap();
        // The record as a later release would leave it: a member of the record and one of the
        // factor.
        let entry = store.get(&key).await.unwrap().unwrap();
        let mut value: Value = serde_json::from_slice(&entry.value).unwrap();
        value["later_record"] = json!({"nested": [1, 2]});
        value["factors"][0]["later_factor"] = json!("kept");
        let write = Write::Set {
            value: serde_json::to_vec(&value).unwrap(),
            ttl: Ttl::Keep,
        };
        store
            .compare_and_swap(&key, entry.version, write)
            .await
            .unwrap();
        let kept = |v: &Value| {
            assert_eq!(v["later_record"], json!({"nested": [1, 2]}));
            assert_eq!(v["factors"][0]["later_factor"], json!("kept"));
        };
        // Confirm, a replayed (rejected) code, another factor enrolled and removed.
        let secret = base32_decode(enrollment.secret.expose_str().unwrap()).unwrap();
        let p = enrollment.params;
        let sid = enrollment.factor_sid.clone();
        let code = totp_at(
            &secret,
            clock.unix_seconds(),
            p.period,
            p.digits,
            p.algorithm,
        )
        .unwrap();
        let outcome = totp
            .confirm(CheckTotp::new("user-42", &sid, code.clone()))
            .await
            .unwrap();
        assert!(matches!(outcome, TotpOutcome::Approved(_)));
        kept(&stored().await);
        let outcome = totp
            .check(CheckTotp::new("user-42", &sid, code))
            .await
            .unwrap();
        assert_eq!(outcome, TotpOutcome::Rejected);
        kept(&stored().await);
        let other = totp
            .enroll(EnrollTotp::new("user-42", "alice@example.com"))
            .await
            .unwrap();
        kept(&stored().await);
        totp.remove("user-42", &other.factor_sid).await.unwrap();
        let v = stored().await;
        kept(&v);
        assert_eq!(v["factors"].as_array().unwrap().len(), 1);
        // Debug names a later member, never its value.
        let record: UserRecord = serde_json::from_value(v).unwrap();
        let shown = format!("{record:?}");
        assert!(shown.contains("later_factor") && !shown.contains("kept"));
    }
}
