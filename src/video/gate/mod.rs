//! The room gate: a video access token only after a one-time code sent to the participant's
//! known phone or email is approved (seed 000's flow as a reusable piece).
//!
//! ```text
//! login(identity)        -> directory lookup -> counters -> [background] OtpProvider::start -> LoginChallenge { "********21" }
//! verify(identity, code) -> counters -> OtpProvider::check -> Approved? -> VideoTokenIssuer::issue -> AccessToken
//! ```
//!
//! The module is split by concern: [`directory`](ParticipantDirectory) (who may join), decoys
//! ([`DecoyShape`]), limits and counters ([`GateLimits`], keys in the store), the runtime
//! ([`GateRuntime`]: background sends and answer-time floors).
//!
//! # Not revealing who is invited
//! An attacker who types names into the login form must not learn which ones are participants.
//! The gate therefore gives an unknown identity (or a participant without a contact) the same
//! answers, in the same shapes *and the same time*, as a real one, at every step:
//! - **login** answers `Ok(LoginChallenge)` either way. For an unknown identity the masked
//!   destination is a *decoy* (`********` and two digits derived from a keyed hash of the
//!   identity, so it is stable across attempts and cannot be predicted without the gate's
//!   secret), and no message is sent.
//! - **verify** of an unknown identity answers exactly as a wrong code does:
//!   [`ErrorKind::Rejected`]. Every "no valid code" outcome of a real one (wrong code, expired,
//!   already used, never started, ended at the provider's attempt limit) is also `Rejected`.
//! - **limits** are the gate's own, counted alike for every identity before the provider is
//!   asked (see [`GateLimits`] and the key table in `docs/video.md`). Beyond them:
//!   [`ErrorKind::RateLimited`] for logins, [`ErrorKind::TooManyAttempts`] for checks.
//! - **time**: a login does not wait for the code to go out. It does the same work on both
//!   paths (directory lookup, keyed hashes, store counters), hands the provider's
//!   [`OtpProvider::start`] of a real participant to the [`GateRuntime`] to run in the
//!   background, and answers no sooner than [`GateTiming::login_floor`] after it was called. A
//!   verify must wait for the provider's answer: both paths make exactly one
//!   [`OtpProvider::check`] (the decoy with the reserved fictional number [`DECOY_DESTINATION`],
//!   one HTTPS request to Twilio Verify either way) and answer no sooner than
//!   [`GateTiming::verify_floor`]; the floor covers the in-process difference of the
//!   self-hosted provider (tens of microseconds). A delivery that fails in the background
//!   (provider limits, transport, a malformed stored contact) is reported to the host's
//!   [`on_send_failure`](RoomGateBuilder::on_send_failure) hook, never to the caller, since it
//!   would tell a participant apart.
//!
//! # Lockouts
//! Counters are per identity *and client* (the host's key for the requester: an address, a
//! device cookie), with a higher per-identity total across clients from which clients that
//! already completed a login for that identity are exempt, and a per-client total across
//! identities. A stranger exhausts only their own allowance; locking a participant out needs
//! `max_logins_per_identity / max_logins` distinct clients every window, and even then does not
//! lock out the participant's known devices. Pass the client with
//! [`login_from`](RoomGate::login_from) / [`verify_from`](RoomGate::verify_from).
//!
//! Errors that concern the request itself ([`ErrorKind::InvalidInput`]: empty or over-long
//! identity, malformed code) are the same for every identity. The directory's and the store's
//! failures, and the provider's transport and backend failures during a verify, are passed
//! through: see `docs/video.md` for these residual differences.
//!
//! # Proof before token
//! [`RoomGate::verify`] issues a token only from a [`CheckOutcome::Approved`] answer; login holds
//! no token, and every other answer is an error. An approved code is single use (the provider
//! ends the verification), so replaying it is `Rejected`.

mod decoy;
mod directory;
mod limits;
mod runtime;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::hmac;

use super::{AccessToken, DEFAULT_TTL, FactorProof, VideoTokenIssuer, VideoTokenRequest};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::hex;
use crate::otp::{Channel, CheckCode, CheckOutcome, OtpProvider, StartVerification};
use crate::rng::{SecureRandom, SystemRandom, random_array};
use crate::secret::Secret;
use crate::store::StateStore;
use crate::totp::{CheckTotp, TotpOutcome, TotpProvider};
use crate::webauthn::VerifiedAssertion;

pub use decoy::DecoyShape;
pub use directory::{Contact, MemoryDirectory, ParticipantDirectory, TotpFactor};
pub use limits::{GateLimits, GateTiming};
#[cfg(feature = "http")]
pub use runtime::TokioRuntime;
pub use runtime::{GateRuntime, GateTask};

use decoy::{mask_email, mask_phone};
use limits::{Counters, Keys, Op, Verdict};

/// Longest identity the gate accepts (Twilio Video's limit), in characters.
pub const MAX_IDENTITY_CHARS: usize = 128;

/// Longest client key the gate accepts, in bytes.
pub const MAX_CLIENT_BYTES: usize = 256;

/// The fictional number decoy verifies ask the provider about (555-0100 to 555-0199 are reserved
/// for fiction in every North American area code). It is a *valid* number for libphonenumber (the
/// 555 area code is not: `+1 555 555 0100` would be refused by
/// [`normalize::phone_e164`](crate::normalize::phone_e164) before any request, and a decoy verify
/// would then answer without the provider round trip a participant's verify makes).
pub const DECOY_DESTINATION: &str = "+12025550100";

/// The identity decoy authenticator-app checks ask the TOTP provider about (no participant has
/// it: identities the directory knows are the host's).
pub const DECOY_TOTP_IDENTITY: &str = "keyward-gate-decoy";

/// The factor sid of decoy authenticator-app checks.
pub const DECOY_TOTP_FACTOR: &str = "YF00000000000000000000000000000000";

/// The host's hook for deliveries that failed in the background.
pub type SendFailureHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// What [`RoomGate::login`] answers: where the code went, masked. It holds no token.
///
/// Serialized as `{"masked_destination": "********21", "channel": "sms"}`, the answer a login
/// route sends as is (it holds nothing secret: the destination is already masked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LoginChallenge {
    /// The destination masked for display: `********21` for a phone, `m****@example.com` for an
    /// email. Decoys have the same shape.
    pub masked_destination: String,
    /// The channel the code went out on.
    pub channel: Channel,
}

/// Builds a [`RoomGate`]; see [`RoomGate::builder`].
pub struct RoomGateBuilder {
    directory: Arc<dyn ParticipantDirectory>,
    otp: Arc<dyn OtpProvider>,
    issuer: Arc<dyn VideoTokenIssuer>,
    store: Arc<dyn StateStore>,
    room: Option<String>,
    token_ttl: Duration,
    limits: GateLimits,
    timing: GateTiming,
    decoy: DecoyShape,
    secret: Option<Secret>,
    rng: Arc<dyn SecureRandom>,
    runtime: Option<Arc<dyn GateRuntime>>,
    on_send_failure: Option<SendFailureHook>,
    totp: Option<Arc<dyn TotpProvider>>,
}

impl fmt::Debug for RoomGateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomGateBuilder")
            .field("directory", &self.directory)
            .field("otp", &self.otp)
            .field("issuer", &self.issuer)
            .field("room", &self.room)
            .field("token_ttl", &self.token_ttl)
            .field("limits", &self.limits)
            .field("timing", &self.timing)
            .field("decoy", &self.decoy)
            .field("secret", &self.secret)
            .field("runtime", &self.runtime)
            .field("totp", &self.totp)
            .finish_non_exhaustive()
    }
}

impl RoomGateBuilder {
    /// Admits to this room only (default: any room).
    pub fn room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }

    /// Lifetime of issued tokens (default one hour).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: GateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the per-client check limit.
    pub fn max_verify_attempts(mut self, attempts: u32) -> Self {
        self.limits.max_verify_attempts = attempts;
        self
    }

    /// Sets the per-client login limit and the login window.
    pub fn max_logins(mut self, logins: u32, window: Duration) -> Self {
        self.limits.max_logins = logins;
        self.limits.login_window = window;
        self
    }

    /// Replaces the answer-time floors.
    pub fn timing(mut self, timing: GateTiming) -> Self {
        self.timing = timing;
        self
    }

    /// Shapes decoy answers like your contacts.
    pub fn decoy(mut self, shape: DecoyShape) -> Self {
        self.decoy = shape;
        self
    }

    /// The key of the decoy digits and of the gate's store keys. Set the same secret (32 random
    /// bytes) on every instance sharing a store, so counters and decoys agree across instances
    /// and restarts; without it, the gate draws one at build time.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Draws the default secret from this environment's random source (default:
    /// [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.rng = env.random().clone();
        self
    }

    /// The runtime for background sends and answer floors (default [`TokioRuntime`] when tokio
    /// is compiled in, features `twilio` or `ssks`; required otherwise).
    pub fn runtime(mut self, runtime: Arc<dyn GateRuntime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Called with the error of a code delivery that failed in the background (log it, alert).
    /// The error never reaches the person logging in.
    pub fn on_send_failure(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_send_failure = Some(Arc::new(hook));
        self
    }

    /// Also admits participants by an authenticator-app code (TOTP or HOTP) checked by
    /// `provider`, for the factor the directory names
    /// ([`ParticipantDirectory::totp_factor`]); see [`RoomGate::verify_totp_from`].
    pub fn totp(mut self, provider: Arc<dyn TotpProvider>) -> Self {
        self.totp = Some(provider);
        self
    }

    /// Checks the configuration ([`ErrorKind::Config`]) and builds the gate.
    pub fn build(self) -> Result<RoomGate> {
        self.limits.validate()?;
        if matches!(&self.room, Some(r) if r.is_empty()) {
            return Err(Error::config("room is empty; leave it unset for any room"));
        }
        if let DecoyShape::Email { domain } = &self.decoy
            && (!domain.contains('.') || domain.contains('@'))
        {
            return Err(Error::config("decoy email domain is malformed"));
        }
        // Phone validation compiles libphonenumber's patterns for every country on its first
        // use (hundreds of milliseconds, more than the login floor): do it now, not during the
        // first participant's login, which would then stand out from a decoy's. After it, no
        // country costs more the first time it is seen.
        crate::normalize::warm_up();
        let _ = crate::normalize::phone_e164(DECOY_DESTINATION);
        let key = match &self.secret {
            Some(s) if s.len() < 16 => {
                return Err(Error::config("gate secret must be at least 16 bytes"));
            }
            Some(s) => hmac::Key::new(hmac::HMAC_SHA256, s.expose()),
            None => {
                let bytes: [u8; 32] = random_array(self.rng.as_ref())?;
                hmac::Key::new(hmac::HMAC_SHA256, &bytes)
            }
        };
        let runtime = match self.runtime {
            Some(r) => r,
            None => default_runtime()?,
        };
        Ok(RoomGate {
            directory: self.directory,
            otp: self.otp,
            issuer: self.issuer,
            counters: Counters {
                store: self.store,
                limits: self.limits,
            },
            room: self.room,
            token_ttl: self.token_ttl,
            timing: self.timing,
            decoy: self.decoy,
            key,
            runtime,
            on_send_failure: self.on_send_failure,
            totp: self.totp,
        })
    }
}

#[cfg(feature = "http")]
fn default_runtime() -> Result<Arc<dyn GateRuntime>> {
    Ok(Arc::new(TokioRuntime))
}

#[cfg(not(feature = "http"))]
fn default_runtime() -> Result<Arc<dyn GateRuntime>> {
    Err(Error::config(
        "the room gate needs a GateRuntime: pass one with RoomGateBuilder::runtime",
    ))
}

/// Issues video access tokens only to participants who proved their contact with a one-time
/// code. See the [module docs](self) for how unknown identities are kept indistinguishable.
///
/// ```
/// # #[cfg(feature = "twilio")]
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::{ErrorKind, Secret};
/// use keyward::otp::{LocalOtpProvider, Outbox};
/// use keyward::store::MemoryStore;
/// use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
/// use keyward::twilio::TwilioCredentials;
/// use keyward::video::twilio::TwilioAccessTokenIssuer;
///
/// let issuer = Arc::new(TwilioAccessTokenIssuer::new(TwilioCredentials::api_key(
///     "AC00000000000000000000000000000000",
///     "SK00000000000000000000000000000000",
///     "test-secret-test-secret-test-sec",
/// )?)?);
/// let store = Arc::new(MemoryStore::new());
/// let outbox = Outbox::new();
/// let otp = LocalOtpProvider::new(store.clone(), Arc::new(outbox.clone()), Secret::new([7u8; 32]))?;
/// let directory = MemoryDirectory::new().with("mabel", Contact::phone("+18005554321"));
/// let gate = RoomGate::builder(Arc::new(directory), Arc::new(otp), issuer, store)
///     .room("My Room")
///     .build()?;
///
/// // The client key (an address, a device cookie) scopes the limits to the requester.
/// let challenge = gate.login_from("mabel", "203.0.113.7").await?;
/// assert_eq!(challenge.masked_destination, "********21");
/// // The code goes out in the background; an in-process sender has delivered it by now.
/// let code = outbox.last_code_to("+18005554321").unwrap();
/// let token = gate.verify_from("mabel", code.expose_str().unwrap(), "203.0.113.7").await?;
/// assert_eq!(token.room.as_deref(), Some("My Room"));
///
/// // An unknown name gets the same kind of answers, and never a token.
/// let decoy = gate.login_from("mallory", "198.51.100.9").await?;
/// assert_eq!(decoy.masked_destination.len(), 10);
/// let err = gate.verify_from("mallory", "123456", "198.51.100.9").await.unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::Rejected);
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
pub struct RoomGate {
    directory: Arc<dyn ParticipantDirectory>,
    otp: Arc<dyn OtpProvider>,
    issuer: Arc<dyn VideoTokenIssuer>,
    counters: Counters,
    room: Option<String>,
    token_ttl: Duration,
    timing: GateTiming,
    decoy: DecoyShape,
    key: hmac::Key,
    runtime: Arc<dyn GateRuntime>,
    on_send_failure: Option<SendFailureHook>,
    totp: Option<Arc<dyn TotpProvider>>,
}

impl fmt::Debug for RoomGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomGate")
            .field("directory", &self.directory)
            .field("otp", &self.otp)
            .field("issuer", &self.issuer)
            .field("room", &self.room)
            .field("token_ttl", &self.token_ttl)
            .field("limits", &self.counters.limits)
            .field("timing", &self.timing)
            .field("decoy", &self.decoy)
            .field("secret", &"[REDACTED]")
            .field("runtime", &self.runtime)
            .field("totp", &self.totp)
            .finish_non_exhaustive()
    }
}

fn rejected() -> Error {
    Error::new(
        ErrorKind::Rejected,
        "code rejected: wrong, expired or already used; log in again for a new code",
    )
}

fn rate_limited() -> Error {
    Error::new(
        ErrorKind::RateLimited { retry_after: None },
        "too many logins for this identity; try again later",
    )
}

impl RoomGate {
    /// A gate over a participant directory, an OTP provider, a token issuer and the store for
    /// its counters.
    pub fn builder(
        directory: Arc<dyn ParticipantDirectory>,
        otp: Arc<dyn OtpProvider>,
        issuer: Arc<dyn VideoTokenIssuer>,
        store: Arc<dyn StateStore>,
    ) -> RoomGateBuilder {
        RoomGateBuilder {
            directory,
            otp,
            issuer,
            store,
            room: None,
            token_ttl: DEFAULT_TTL,
            limits: GateLimits::default(),
            timing: GateTiming::default(),
            decoy: DecoyShape::Phone,
            secret: None,
            rng: Arc::new(SystemRandom::new()),
            runtime: None,
            on_send_failure: None,
            totp: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &GateLimits {
        &self.counters.limits
    }

    /// The answer-time floors in force.
    pub fn timing(&self) -> &GateTiming {
        &self.timing
    }

    /// [`login_from`](Self::login_from) without a client key: the limits are then per identity
    /// only, so anyone can spend a participant's logins (see the module docs).
    pub async fn login(&self, identity: &str) -> Result<LoginChallenge> {
        let started = Instant::now();
        let result = self.login_inner(identity, None).await;
        self.pad(started, self.timing.login_floor).await;
        result
    }

    /// Step 1: sends a code to the participant's contact (in the background) and says where,
    /// masked. `client` is the host's key for the requester (an address, a device cookie; at
    /// most [`MAX_CLIENT_BYTES`]).
    ///
    /// Answers the same way, in the same time, for an unknown identity (see the module docs).
    /// Errors: [`InvalidInput`](ErrorKind::InvalidInput) for an empty or over-long identity or
    /// client, [`RateLimited`](ErrorKind::RateLimited) past a login limit, and the directory's
    /// and the store's own failures. Delivery failures go to the
    /// [`on_send_failure`](RoomGateBuilder::on_send_failure) hook.
    pub async fn login_from(&self, identity: &str, client: &str) -> Result<LoginChallenge> {
        let started = Instant::now();
        let result = self.login_inner(identity, Some(client)).await;
        self.pad(started, self.timing.login_floor).await;
        result
    }

    /// [`verify_from`](Self::verify_from) without a client key (limits per identity only).
    pub async fn verify(&self, identity: &str, code: &str) -> Result<AccessToken> {
        let started = Instant::now();
        let result = self.verify_inner(identity, code, None).await;
        self.pad(started, self.timing.verify_floor).await;
        result
    }

    /// Step 2: checks the code and, only if the provider approves it, issues the token.
    ///
    /// Errors: [`Rejected`](ErrorKind::Rejected) for a wrong, expired, already used or never
    /// sent code and for an unknown identity; [`TooManyAttempts`](ErrorKind::TooManyAttempts)
    /// past a check limit; [`InvalidInput`](ErrorKind::InvalidInput) for a malformed identity,
    /// client or code (4 to 10 letters or digits); the issuer's and the provider's other errors.
    pub async fn verify_from(
        &self,
        identity: &str,
        code: &str,
        client: &str,
    ) -> Result<AccessToken> {
        let started = Instant::now();
        let result = self.verify_inner(identity, code, Some(client)).await;
        self.pad(started, self.timing.verify_floor).await;
        result
    }

    async fn pad(&self, started: Instant, floor: Duration) {
        let elapsed = started.elapsed();
        if elapsed < floor {
            self.runtime.sleep(floor - elapsed).await;
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.gate.login", skip_all, fields(identity = %crate::trace::masked(identity)), err(Display, level = "info")))]
    async fn login_inner(&self, identity: &str, client: Option<&str>) -> Result<LoginChallenge> {
        check_identity(identity)?;
        check_client(client)?;
        let contact = self.directory.contact(identity).await?;
        let keys = self.keys(identity, client, contact.is_some()).await;
        let Some(contact) = contact else {
            // A participant's login normalizes the contact's number: so does the decoy's.
            let _ = Channel::Sms.normalize_destination(DECOY_DESTINATION);
            // Store trouble on the decoy path must not show (a participant's path has its own
            // keys): count if possible, answer the decoy either way.
            if let Ok(keys) = keys
                && let Ok(Verdict::Refused) = self.counters.count(Op::Login, &keys).await
            {
                return Err(rate_limited());
            }
            return Ok(self.decoy_challenge(identity));
        };
        if self.counters.count(Op::Login, &keys?).await? == Verdict::Refused {
            return Err(rate_limited());
        }
        let channel = contact.channel();
        let normalized = match channel.normalize_destination(contact.destination()) {
            Ok(n) => n,
            Err(e) => {
                // A malformed stored contact: the host's data, reported to the host only.
                self.report(&e);
                return Ok(self.decoy_challenge(identity));
            }
        };
        let masked_destination = match channel {
            Channel::Email => mask_email(&normalized),
            _ => mask_phone(&normalized),
        };
        let otp = self.otp.clone();
        let hook = self.on_send_failure.clone();
        let mut request = StartVerification::new(normalized, channel.clone());
        if let Some(client) = client {
            request = request.client(client);
        }
        self.runtime.spawn(Box::pin(async move {
            if let Err(e) = otp.start(request).await
                && let Some(hook) = hook
            {
                hook(&e);
            }
        }));
        Ok(LoginChallenge {
            masked_destination,
            channel,
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.gate.verify", skip_all, fields(identity = %crate::trace::masked(identity)), err(Display, level = "info")))]
    async fn verify_inner(
        &self,
        identity: &str,
        code: &str,
        client: Option<&str>,
    ) -> Result<AccessToken> {
        check_identity(identity)?;
        check_client(client)?;
        if !(4..=10).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_input("a code is 4 to 10 letters or digits"));
        }
        let contact = self.directory.contact(identity).await?;
        let keys = self.keys(identity, client, contact.is_some()).await;
        let counted = match (&contact, keys) {
            (Some(_), keys) => {
                let keys = keys?;
                let verdict = self.counters.count(Op::Verify, &keys).await?;
                Some((keys, verdict))
            }
            (None, Ok(keys)) => self
                .counters
                .count(Op::Verify, &keys)
                .await
                .ok()
                .map(|v| (keys, v)),
            (None, Err(_)) => None,
        };
        if matches!(counted, Some((_, Verdict::Refused))) {
            return Err(Error::new(
                ErrorKind::TooManyAttempts,
                "too many code checks for this identity; try again later",
            ));
        }
        let destination = contact
            .as_ref()
            .map_or(DECOY_DESTINATION, Contact::destination);
        let outcome = self
            .otp
            .check(CheckCode::to(destination, Secret::from(code)))
            .await;
        let (Some(contact), Some((keys, _))) = (contact, counted) else {
            // Decoy: whatever the provider said about the fictional number, no token.
            return Err(rejected());
        };
        let approved = match outcome {
            Ok(CheckOutcome::Approved(approved)) => approved,
            Ok(CheckOutcome::Rejected(_)) => return Err(rejected()),
            Err(e) => {
                return Err(match e.kind() {
                    // Nothing valid to check against; the provider's own attempt limit
                    // answers as for a decoy.
                    ErrorKind::NotFound
                    | ErrorKind::Expired
                    | ErrorKind::AlreadyUsed
                    | ErrorKind::TooManyAttempts
                    | ErrorKind::InvalidInput => rejected(),
                    _ => e,
                });
            }
        };
        // The provider approved a verification; make sure it is this participant's.
        let expected = contact
            .channel()
            .normalize_destination(contact.destination())?;
        if approved.to() != expected {
            return Err(rejected());
        }
        let token = self.issue(identity, FactorProof::Code(approved)).await?;
        // Failure to record the success only delays the user.
        let _ = self.counters.succeeded(&keys).await;
        Ok(token)
    }

    async fn issue(&self, identity: &str, proof: FactorProof) -> Result<AccessToken> {
        let mut request = VideoTokenRequest::new(identity).ttl(self.token_ttl);
        if let Some(room) = &self.room {
            request = request.room(room.clone());
        }
        self.issuer.issue(proof, request).await
    }

    /// The other factor: a passkey sign-in. Issues the token to the participant the directory
    /// binds the assertion's user handle to
    /// ([`ParticipantDirectory::identity_for_passkey`]); a usernameless sign-in thus needs no
    /// identity from the browser.
    ///
    /// The assertion is already a proof (the verifier consumed its challenge, checked the
    /// signature), so there is no code to guess and no counter to spend. Errors:
    /// [`Rejected`](ErrorKind::Rejected) when no participant holds that user handle; the
    /// directory's and the issuer's own failures.
    ///
    /// ```
    /// # #[cfg(feature = "twilio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use keyward::Secret;
    /// # use keyward::otp::{LocalOtpProvider, Outbox};
    /// # use keyward::store::MemoryStore;
    /// # use keyward::twilio::TwilioCredentials;
    /// # use keyward::video::twilio::TwilioAccessTokenIssuer;
    /// use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
    /// # let issuer = Arc::new(TwilioAccessTokenIssuer::new(TwilioCredentials::api_key(
    /// #     "AC00000000000000000000000000000000",
    /// #     "SK00000000000000000000000000000000",
    /// #     "test-secret-test-secret-test-sec",
    /// # )?)?);
    /// # let store = Arc::new(MemoryStore::new());
    /// # let otp = Arc::new(LocalOtpProvider::new(store.clone(), Arc::new(Outbox::new()), Secret::new([7u8; 32]))?);
    /// let directory = MemoryDirectory::new()
    ///     .with("mabel", Contact::phone("+18005554321"))
    ///     .with_passkey("mabel", b"mabel-user-handle".to_vec());
    /// let gate = RoomGate::builder(Arc::new(directory), otp, issuer, store).build()?;
    /// # let assertion = keyward::backend::verified_assertion(keyward::backend::AssertionParts::new(
    /// #     b"cred".to_vec(), b"mabel-user-handle".to_vec(), 1));
    /// // `assertion`: what `finish_authentication` returned for this sign-in.
    /// let token = gate.admit_passkey(assertion).await?;
    /// assert_eq!(token.identity, "mabel");
    /// # Ok::<(), keyward::Error>(()) }).unwrap();
    /// ```
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(
            name = "keyward.gate.admit_passkey",
            skip_all,
            err(Display, level = "info")
        )
    )]
    pub async fn admit_passkey(&self, assertion: VerifiedAssertion) -> Result<AccessToken> {
        let Some(identity) = self
            .directory
            .identity_for_passkey(assertion.user_id())
            .await?
        else {
            return Err(Error::new(
                ErrorKind::Rejected,
                "this passkey belongs to no participant",
            ));
        };
        check_identity(&identity)?;
        self.issue(&identity, FactorProof::Passkey(assertion)).await
    }

    /// [`verify_totp_from`](Self::verify_totp_from) without a client key (limits per identity
    /// only).
    pub async fn verify_totp(&self, identity: &str, code: &str) -> Result<AccessToken> {
        let started = Instant::now();
        let result = self.verify_totp_inner(identity, code, None).await;
        self.pad(started, self.timing.verify_floor).await;
        result
    }

    /// The authenticator-app factor: checks a TOTP (or HOTP) code of the participant's factor
    /// ([`ParticipantDirectory::totp_factor`]) with the provider given to
    /// [`RoomGateBuilder::totp`] and, only if it accepts, issues the token on
    /// [`FactorProof::Totp`]. No message is sent, so there is no login step.
    ///
    /// Counted against the same check limits as [`verify_from`](Self::verify_from), before the
    /// provider is asked; an unknown identity, a participant without a factor and a wrong,
    /// replayed or out-of-window code all answer [`Rejected`](ErrorKind::Rejected), after one
    /// provider check either way (a decoy's is for [`DECOY_TOTP_IDENTITY`]) and no sooner than
    /// [`GateTiming::verify_floor`]. Errors: [`TooManyAttempts`](ErrorKind::TooManyAttempts)
    /// past a check limit; [`InvalidInput`](ErrorKind::InvalidInput) for a malformed identity,
    /// client or code (6 to 8 digits); [`Config`](ErrorKind::Config) when the gate has no TOTP
    /// provider; the provider's transport failures and the issuer's errors.
    ///
    /// ```
    /// # #[cfg(feature = "twilio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use keyward::{Clock, Env, ManualClock, Secret};
    /// # use keyward::otp::{LocalOtpProvider, Outbox};
    /// # use keyward::store::MemoryStore;
    /// # use keyward::twilio::TwilioCredentials;
    /// # use keyward::video::twilio::TwilioAccessTokenIssuer;
    /// use keyward::totp::{CheckTotp, EnrollTotp, LocalTotp, TotpProvider, base32_decode, totp_at};
    /// use keyward::video::gate::{MemoryDirectory, RoomGate, TotpFactor};
    /// # let issuer = Arc::new(TwilioAccessTokenIssuer::new(TwilioCredentials::api_key(
    /// #     "AC00000000000000000000000000000000",
    /// #     "SK00000000000000000000000000000000",
    /// #     "test-secret-test-secret-test-sec",
    /// # )?)?);
    /// # let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    /// # let env = Env::system().with_clock(clock.clone());
    /// # let store = Arc::new(MemoryStore::new().env(env.clone()));
    /// # let otp = Arc::new(LocalOtpProvider::new(store.clone(), Arc::new(Outbox::new()), Secret::new([7u8; 32]))?);
    /// let totp = Arc::new(LocalTotp::builder(store.clone(), Secret::new([9u8; 32]), "Rooms").env(env).build()?);
    /// // Enrolled and confirmed beforehand (the user scanned the QR code):
    /// let enrolled = totp.enroll(EnrollTotp::new("mabel", "mabel@example.com")).await?;
    /// let secret = base32_decode(enrolled.secret.expose_str().unwrap()).unwrap();
    /// let code_at = |t: u64| totp_at(&secret, t, 30, 6, Default::default()).unwrap();
    /// totp.confirm(CheckTotp::new("mabel", &enrolled.factor_sid, code_at(clock.unix_seconds()))).await?;
    ///
    /// let directory = MemoryDirectory::new()
    ///     .with_totp("mabel", TotpFactor::new("mabel", &enrolled.factor_sid));
    /// let gate = RoomGate::builder(Arc::new(directory), otp, issuer, store).totp(totp).build()?;
    /// clock.advance(std::time::Duration::from_secs(30));
    /// let code = code_at(clock.unix_seconds());
    /// let token = gate.verify_totp_from("mabel", code.expose_str().unwrap(), "203.0.113.7").await?;
    /// assert_eq!(token.identity, "mabel");
    /// // The same code (same time step) never admits twice.
    /// assert!(gate.verify_totp_from("mabel", code.expose_str().unwrap(), "203.0.113.7").await.is_err());
    /// # Ok::<(), keyward::Error>(()) }).unwrap();
    /// ```
    pub async fn verify_totp_from(
        &self,
        identity: &str,
        code: &str,
        client: &str,
    ) -> Result<AccessToken> {
        let started = Instant::now();
        let result = self.verify_totp_inner(identity, code, Some(client)).await;
        self.pad(started, self.timing.verify_floor).await;
        result
    }

    async fn verify_totp_inner(
        &self,
        identity: &str,
        code: &str,
        client: Option<&str>,
    ) -> Result<AccessToken> {
        let Some(totp) = &self.totp else {
            return Err(Error::config(
                "this room gate has no totp provider (RoomGateBuilder::totp)",
            ));
        };
        check_identity(identity)?;
        check_client(client)?;
        if !(6..=8).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_input(
                "an authenticator code is 6 to 8 digits",
            ));
        }
        let factor = self.directory.totp_factor(identity).await?;
        let keys = self.keys(identity, client, factor.is_some()).await;
        let counted = match (&factor, keys) {
            (Some(_), keys) => {
                let keys = keys?;
                let verdict = self.counters.count(Op::Verify, &keys).await?;
                Some((keys, verdict))
            }
            (None, Ok(keys)) => self
                .counters
                .count(Op::Verify, &keys)
                .await
                .ok()
                .map(|v| (keys, v)),
            (None, Err(_)) => None,
        };
        if matches!(counted, Some((_, Verdict::Refused))) {
            return Err(Error::new(
                ErrorKind::TooManyAttempts,
                "too many code checks for this identity; try again later",
            ));
        }
        let request = match &factor {
            Some(f) => CheckTotp::new(f.identity.as_str(), f.factor_sid.as_str(), code),
            None => CheckTotp::new(DECOY_TOTP_IDENTITY, DECOY_TOTP_FACTOR, code),
        };
        let outcome = totp.check(request).await;
        let (Some(factor), Some((keys, _))) = (factor, counted) else {
            // Decoy: whatever the provider said, no token.
            return Err(rejected());
        };
        let approved = match outcome {
            Ok(TotpOutcome::Approved(approved)) => approved,
            Ok(TotpOutcome::Rejected) => return Err(rejected()),
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::NotFound
                    | ErrorKind::Expired
                    | ErrorKind::AlreadyUsed
                    | ErrorKind::TooManyAttempts
                    | ErrorKind::InvalidInput => rejected(),
                    _ => e,
                });
            }
        };
        // The provider accepted a code; make sure it is for this participant's factor.
        if approved.identity() != factor.identity || approved.factor_sid() != factor.factor_sid {
            return Err(rejected());
        }
        let token = self.issue(identity, FactorProof::Totp(approved)).await?;
        // Failure to record the success only delays the user.
        let _ = self.counters.succeeded(&keys).await;
        Ok(token)
    }

    /// The store key names for this request. An unknown identity gets its own counters while
    /// the window's decoy budget lasts, then one of `decoy_buckets` shared ones: its pair
    /// counter is per bucket and client (bounded by the per-client login limit), and it has no
    /// per-identity total (a full bucket would refuse every unknown name it holds).
    async fn keys(&self, identity: &str, client: Option<&str>, participant: bool) -> Result<Keys> {
        let tag = self.tag(b"keyward-gate-identity-v1", identity.as_bytes());
        let mut identity_key = hex::encode(tag.get(..16).unwrap_or_default());
        let mut bucketed = false;
        let client = client.map(|c| {
            let tag = self.tag(b"keyward-gate-client-v1", c.as_bytes());
            hex::encode(tag.get(..16).unwrap_or_default())
        });
        if !participant && !self.counters.decoy_budget_left().await? {
            let word = u32::from_be_bytes([
                tag.get(16).copied().unwrap_or(0),
                tag.get(17).copied().unwrap_or(0),
                tag.get(18).copied().unwrap_or(0),
                tag.get(19).copied().unwrap_or(0),
            ]);
            identity_key = format!("b{}", word % self.counters.limits.decoy_buckets.max(1));
            bucketed = true;
        }
        Ok(Keys {
            identity: identity_key,
            client,
            bucketed,
        })
    }

    fn report(&self, error: &Error) {
        if let Some(hook) = &self.on_send_failure {
            hook(error);
        }
    }

    fn tag(&self, domain: &[u8], value: &[u8]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain);
        ctx.update(value);
        ctx.sign().as_ref().to_vec()
    }

    fn decoy_challenge(&self, identity: &str) -> LoginChallenge {
        self.decoy
            .challenge(&self.tag(b"keyward-gate-decoy-v1", identity.as_bytes()))
    }
}

fn check_identity(identity: &str) -> Result<()> {
    if identity.is_empty() {
        return Err(Error::invalid_input("identity is empty"));
    }
    if identity.chars().count() > MAX_IDENTITY_CHARS {
        return Err(Error::invalid_input(format!(
            "identity is longer than {MAX_IDENTITY_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_client(client: Option<&str>) -> Result<()> {
    if client.is_some_and(|c| c.len() > MAX_CLIENT_BYTES) {
        return Err(Error::invalid_input(format!(
            "client key is longer than {MAX_CLIENT_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_rules() {
        assert!(check_identity("").is_err());
        assert!(check_identity(&"é".repeat(128)).is_ok());
        assert!(check_identity(&"é".repeat(129)).is_err());
        assert!(check_client(Some(&"x".repeat(MAX_CLIENT_BYTES))).is_ok());
        assert!(check_client(Some(&"x".repeat(MAX_CLIENT_BYTES + 1))).is_err());
        assert!(check_client(None).is_ok());
    }
}
