//! The room gate: a video access token only after a one-time code sent to the participant's
//! known phone or email is approved (seed 000's flow as a reusable piece).
//!
//! ```text
//! login(identity)        -> directory lookup -> OtpProvider::start -> LoginChallenge { "********21" }
//! verify(identity, code) -> OtpProvider::check -> Approved? -> VideoTokenIssuer::issue -> AccessToken
//! ```
//!
//! # Not revealing who is invited
//! An attacker who types names into the login form must not learn which ones are participants.
//! The gate therefore gives an unknown identity (or a participant without a contact) the same
//! answers, in the same shapes, as a real one, at every step:
//! - **login** answers `Ok(LoginChallenge)` either way. For an unknown identity the masked
//!   destination is a *decoy* (`********` and two digits derived from a keyed hash of the
//!   identity, so it is stable across attempts and cannot be predicted without the gate's
//!   secret), and no message is sent.
//! - **verify** of an unknown identity answers exactly as a wrong code does:
//!   [`ErrorKind::Rejected`]. Every "no valid code" outcome of a real one (wrong code, expired,
//!   already used, never started, ended at the provider's attempt limit) is also `Rejected`, so
//!   none of them tells the two apart.
//! - **limits** that would otherwise only bite real participants (the provider's attempt and
//!   send limits) are enforced by the gate itself, per identity, before the provider is asked, in
//!   the [`StateStore`] (`gate:` keys): at most `max_verify_attempts` checks
//!   ([`ErrorKind::TooManyAttempts`] beyond) and `max_logins` logins per window
//!   ([`ErrorKind::RateLimited`] beyond), for every identity alike. Keep them at or below the
//!   provider's (5 checks, 5 sends per verification, 10 sends per hour per destination for the
//!   defaults of both Twilio Verify and the self-hosted provider) so the provider's own limits
//!   never show.
//! - **timing class**: both paths do the same steps: the directory lookup, the keyed hash, the
//!   store counter, and exactly one provider round trip. A real login calls
//!   [`OtpProvider::start`]; a decoy login calls [`OtpProvider::fetch`] on a reserved fictional
//!   number (`+15555550100`), which sends nothing and answers not-found. A real verify calls
//!   [`OtpProvider::check`] with the participant's destination; a decoy verify calls it with the
//!   fictional number. Against Twilio both paths are one HTTPS request; against the self-hosted
//!   provider both are a few store operations. What differs is the provider's own work for a
//!   real send (creating the verification, delivering the message): a message that goes out
//!   through a slow sender (an SMS API) makes a real login slower than a decoy. Hosts that care
//!   should deliver asynchronously or answer login after a fixed delay; the gate does not sleep.
//!
//! Errors that concern the request itself ([`ErrorKind::InvalidInput`]: empty or over-long
//! identity, malformed code) are the same for every identity. Transport and backend failures are
//! passed through, and so is a provider limit counted per destination (reachable by a real
//! participant whose contact is also used elsewhere): see `docs/video.md` for these residual
//! differences.
//!
//! # Proof before token
//! [`RoomGate::verify`] issues a token only from a [`CheckOutcome::Approved`] answer; login holds
//! no token, and every other answer is an error. An approved code is single use (the provider
//! ends the verification), so replaying it is `Rejected`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ring::hmac;

use super::{AccessToken, DEFAULT_TTL, VideoTokenIssuer, VideoTokenRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::normalize;
use crate::otp::{
    Channel, CheckCode, CheckOutcome, OtpProvider, StartVerification, VerificationRef,
};
use crate::rng::{SecureRandom, SystemRandom, random_array};
use crate::secret::Secret;
use crate::store::{Key, StateStore, StateStoreExt};

/// Longest identity the gate accepts (Twilio Video's limit), in characters.
pub const MAX_IDENTITY_CHARS: usize = 128;

/// The fictional number decoy paths ask the provider about (the 555-0100 block is reserved for
/// fiction in the North American numbering plan).
pub const DECOY_DESTINATION: &str = "+15555550100";

/// How to reach a participant.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contact {
    /// A phone number (E.164 or anything the provider normalizes); codes go by SMS.
    Phone(String),
    /// An email address; codes go by email.
    Email(String),
}

impl Contact {
    /// A phone contact.
    pub fn phone(number: impl Into<String>) -> Contact {
        Contact::Phone(number.into())
    }

    /// An email contact.
    pub fn email(address: impl Into<String>) -> Contact {
        Contact::Email(address.into())
    }

    fn channel(&self) -> Channel {
        match self {
            Contact::Phone(_) => Channel::Sms,
            Contact::Email(_) => Channel::Email,
        }
    }

    fn destination(&self) -> &str {
        match self {
            Contact::Phone(s) | Contact::Email(s) => s,
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Phone(p) => f.debug_tuple("Phone").field(&mask_phone(p)).finish(),
            Contact::Email(e) => f.debug_tuple("Email").field(&mask_email(e)).finish(),
        }
    }
}

/// Who may join: identity → how to reach them. Hosts implement it over their user database.
///
/// # Contract
/// `contact` answers `Ok(None)` both for an unknown identity and for a known one without a
/// usable contact (the gate treats them alike); errors are for the directory's own failures.
#[async_trait]
pub trait ParticipantDirectory: Send + Sync + fmt::Debug {
    /// The participant's contact, if the identity is a participant with one.
    async fn contact(&self, identity: &str) -> Result<Option<Contact>>;
}

/// A fixed participant list held in memory, for tests, demos and small deployments. It is
/// configuration, built once and read-only afterwards.
///
/// ```
/// use keyward::video::gate::{Contact, MemoryDirectory};
/// let dir = MemoryDirectory::new()
///     .with("mabel", Contact::phone("+18005554321"))
///     .with_no_contact("ghost");
/// assert_eq!(dir.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct MemoryDirectory {
    participants: HashMap<String, Option<Contact>>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        MemoryDirectory::default()
    }

    /// Adds (or replaces) a participant.
    pub fn with(mut self, identity: impl Into<String>, contact: Contact) -> Self {
        self.participants.insert(identity.into(), Some(contact));
        self
    }

    /// Adds a participant the host knows but cannot reach.
    pub fn with_no_contact(mut self, identity: impl Into<String>) -> Self {
        self.participants.insert(identity.into(), None);
        self
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether there is no participant.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }
}

impl fmt::Debug for MemoryDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDirectory")
            .field("participants", &self.participants.len())
            .finish()
    }
}

#[async_trait]
impl ParticipantDirectory for MemoryDirectory {
    async fn contact(&self, identity: &str) -> Result<Option<Contact>> {
        Ok(self.participants.get(identity).cloned().flatten())
    }
}

/// What [`RoomGate::login`] answers: where the code went, masked. It holds no token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginChallenge {
    /// The destination masked for display: `********21` for a phone, `m****@example.com` for an
    /// email. Decoys have the same shape.
    pub masked_destination: String,
    /// The channel the code went out on.
    pub channel: Channel,
}

/// The shape of decoy answers for unknown identities: match your directory's contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecoyShape {
    /// `********NN`, channel SMS (the default).
    Phone,
    /// `x****@domain`, channel email.
    Email {
        /// The domain shown (your users' usual domain).
        domain: String,
    },
}

/// The gate's limits, applied to every identity alike (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateLimits {
    /// Code checks per identity per `attempt_window`. Default 5.
    pub max_verify_attempts: u32,
    /// Window of the check counter, from the first check. Default 10 minutes.
    pub attempt_window: Duration,
    /// Logins per identity per `login_window`. Default 5.
    pub max_logins: u32,
    /// Window of the login counter, from the first login. Default 1 hour.
    pub login_window: Duration,
}

impl Default for GateLimits {
    fn default() -> Self {
        GateLimits {
            max_verify_attempts: 5,
            attempt_window: Duration::from_secs(600),
            max_logins: 5,
            login_window: Duration::from_secs(3_600),
        }
    }
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
    decoy: DecoyShape,
    secret: Option<Secret>,
    rng: Arc<dyn SecureRandom>,
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
            .field("decoy", &self.decoy)
            .field("secret", &self.secret)
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

    /// Sets the check limit.
    pub fn max_verify_attempts(mut self, attempts: u32) -> Self {
        self.limits.max_verify_attempts = attempts;
        self
    }

    /// Sets the login limit and its window.
    pub fn max_logins(mut self, logins: u32, window: Duration) -> Self {
        self.limits.max_logins = logins;
        self.limits.login_window = window;
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

    /// The random source for the default secret.
    pub fn rng(mut self, rng: Arc<dyn SecureRandom>) -> Self {
        self.rng = rng;
        self
    }

    /// Checks the configuration ([`ErrorKind::Config`]) and builds the gate.
    pub fn build(self) -> Result<RoomGate> {
        if self.limits.max_verify_attempts == 0 || self.limits.max_logins == 0 {
            return Err(Error::config("gate limits must allow at least one"));
        }
        if self.limits.attempt_window < Duration::from_secs(1)
            || self.limits.login_window < Duration::from_secs(1)
        {
            return Err(Error::config("gate windows must be at least one second"));
        }
        if matches!(&self.room, Some(r) if r.is_empty()) {
            return Err(Error::config("room is empty; leave it unset for any room"));
        }
        if let DecoyShape::Email { domain } = &self.decoy {
            if !domain.contains('.') || domain.contains('@') {
                return Err(Error::config("decoy email domain is malformed"));
            }
        }
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
        Ok(RoomGate {
            directory: self.directory,
            otp: self.otp,
            issuer: self.issuer,
            store: self.store,
            room: self.room,
            token_ttl: self.token_ttl,
            limits: self.limits,
            decoy: self.decoy,
            key,
        })
    }
}

/// Issues video access tokens only to participants who proved their contact with a one-time
/// code. See the [module docs](self) for how unknown identities are kept indistinguishable.
///
/// ```
/// # #[cfg(feature = "twilio")]
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::{ErrorKind, Secret};
/// use keyward::otp::{LocalOtpProvider, Outbox};
/// use keyward::store::MemoryStore;
/// use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
/// use keyward::twilio::TwilioCredentials;
/// use keyward::video::twilio::{TwilioAccessTokenIssuer};
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
/// let challenge = gate.login("mabel").await?;
/// assert_eq!(challenge.masked_destination, "********21");
/// let code = outbox.last_code_to("+18005554321").unwrap();
/// let token = gate.verify("mabel", code.expose_str().unwrap()).await?;
/// assert_eq!(token.room.as_deref(), Some("My Room"));
///
/// // An unknown name gets the same kind of answers, and never a token.
/// let decoy = gate.login("mallory").await?;
/// assert_eq!(decoy.masked_destination.len(), 10);
/// let err = gate.verify("mallory", "123456").await.unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::Rejected);
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
pub struct RoomGate {
    directory: Arc<dyn ParticipantDirectory>,
    otp: Arc<dyn OtpProvider>,
    issuer: Arc<dyn VideoTokenIssuer>,
    store: Arc<dyn StateStore>,
    room: Option<String>,
    token_ttl: Duration,
    limits: GateLimits,
    decoy: DecoyShape,
    key: hmac::Key,
}

impl fmt::Debug for RoomGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomGate")
            .field("directory", &self.directory)
            .field("otp", &self.otp)
            .field("issuer", &self.issuer)
            .field("room", &self.room)
            .field("token_ttl", &self.token_ttl)
            .field("limits", &self.limits)
            .field("decoy", &self.decoy)
            .field("secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

fn rejected() -> Error {
    Error::new(
        ErrorKind::Rejected,
        "code rejected: wrong, expired or already used; log in again for a new code",
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
            decoy: DecoyShape::Phone,
            secret: None,
            rng: Arc::new(SystemRandom::new()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &GateLimits {
        &self.limits
    }

    /// Step 1: sends a code to the participant's contact and says where, masked.
    ///
    /// Answers the same way for an unknown identity (see the module docs). Errors:
    /// [`InvalidInput`](ErrorKind::InvalidInput) for an empty or over-long identity,
    /// [`RateLimited`](ErrorKind::RateLimited) past the login limit, and the provider's own
    /// errors for a real participant (a malformed stored contact, transport failures).
    pub async fn login(&self, identity: &str) -> Result<LoginChallenge> {
        check_identity(identity)?;
        let tag = self.tag(b"keyward-gate-identity-v1", identity);
        let logins = self
            .store
            .increment(
                &Key::ephemeral("gate")
                    .part("logins")
                    .part(&hex(tag.get(..16).unwrap_or_default())),
                1,
                Some(self.limits.login_window),
            )
            .await?;
        if logins > u64::from(self.limits.max_logins) {
            return Err(Error::new(
                ErrorKind::RateLimited { retry_after: None },
                "too many logins for this identity; try again later",
            ));
        }
        match self.directory.contact(identity).await? {
            Some(contact) => {
                let request = StartVerification::new(contact.destination(), contact.channel());
                let verification = self.otp.start(request).await?;
                let masked_destination = match verification.channel {
                    Channel::Email => mask_email(&verification.to),
                    _ => mask_phone(&verification.to),
                };
                Ok(LoginChallenge {
                    masked_destination,
                    channel: verification.channel,
                })
            }
            None => {
                // Same provider round trip as a real login, nothing sent.
                let _ = self
                    .otp
                    .fetch(VerificationRef::To(DECOY_DESTINATION.to_owned()))
                    .await;
                Ok(self.decoy_challenge(identity))
            }
        }
    }

    /// Step 2: checks the code and, only if the provider approves it, issues the token.
    ///
    /// Errors: [`Rejected`](ErrorKind::Rejected) for a wrong, expired, already used or never
    /// sent code and for an unknown identity; [`TooManyAttempts`](ErrorKind::TooManyAttempts)
    /// past the check limit; [`InvalidInput`](ErrorKind::InvalidInput) for a malformed identity
    /// or code (4 to 10 letters or digits); the issuer's and the provider's other errors.
    pub async fn verify(&self, identity: &str, code: &str) -> Result<AccessToken> {
        check_identity(identity)?;
        if !(4..=10).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid_input("a code is 4 to 10 letters or digits"));
        }
        let tag = self.tag(b"keyward-gate-identity-v1", identity);
        let attempts_key = Key::ephemeral("gate")
            .part("attempts")
            .part(&hex(tag.get(..16).unwrap_or_default()));
        let attempts = self
            .store
            .increment(&attempts_key, 1, Some(self.limits.attempt_window))
            .await?;
        if attempts > u64::from(self.limits.max_verify_attempts) {
            return Err(Error::new(
                ErrorKind::TooManyAttempts,
                "too many code checks for this identity; try again later",
            ));
        }
        let contact = self.directory.contact(identity).await?;
        let destination = contact
            .as_ref()
            .map_or(DECOY_DESTINATION, Contact::destination);
        let outcome = self
            .otp
            .check(CheckCode::to(destination, Secret::from(code)))
            .await;
        let Some(contact) = contact else {
            // Decoy: whatever the provider said about the fictional number, no token.
            return Err(rejected());
        };
        let approved = match outcome {
            Ok(CheckOutcome::Approved(approved)) => approved,
            Ok(CheckOutcome::Rejected(_)) => return Err(rejected()),
            Err(e) => {
                return Err(match e.kind() {
                    // Nothing valid to check against. The provider's own attempt limit shows
                    // up here only after the gate's counter window, or if the provider's
                    // limit is lower: answer as for a decoy.
                    ErrorKind::NotFound
                    | ErrorKind::Expired
                    | ErrorKind::AlreadyUsed
                    | ErrorKind::TooManyAttempts => rejected(),
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
        let mut request = VideoTokenRequest::new(identity).ttl(self.token_ttl);
        if let Some(room) = &self.room {
            request = request.room(room.clone());
        }
        let token = self.issuer.issue(request).await?;
        // A successful login clears the check counter; failure to clear only delays the user.
        let _ = self.store.delete(&attempts_key).await;
        Ok(token)
    }

    fn tag(&self, domain: &[u8], identity: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain);
        ctx.update(identity.as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    fn decoy_challenge(&self, identity: &str) -> LoginChallenge {
        let tag = self.tag(b"keyward-gate-decoy-v1", identity);
        let byte = |i: usize| tag.get(i).copied().unwrap_or(0);
        let digits = u16::from_be_bytes([byte(0), byte(1)]) % 100;
        match &self.decoy {
            DecoyShape::Phone => LoginChallenge {
                masked_destination: format!("********{digits:02}"),
                channel: Channel::Sms,
            },
            DecoyShape::Email { domain } => {
                let first = char::from(b'a' + byte(2) % 26);
                LoginChallenge {
                    masked_destination: format!("{first}****@{domain}"),
                    channel: Channel::Email,
                }
            }
        }
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

/// `********` and the last two digits, whatever the number's length (as seed 000 masks).
fn mask_phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits.iter().skip(digits.len().saturating_sub(2)).collect();
    format!("********{tail}")
}

/// The first character of the local part, four stars, the domain (fixed width).
fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}****@{domain}")
        }
        None => normalize::mask(address),
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_have_fixed_width() {
        assert_eq!(mask_phone("+18005554321"), "********21");
        assert_eq!(mask_phone("+33612345678"), "********78");
        assert_eq!(mask_email("mabel@example.com"), "m****@example.com");
        assert_eq!(mask_email("m@example.com"), "m****@example.com");
    }

    #[test]
    fn contact_debug_is_masked() {
        let shown = format!(
            "{:?} {:?}",
            Contact::phone("+18005554321"),
            Contact::email("mabel@example.com")
        );
        assert!(!shown.contains("8005554321"), "{shown}");
        assert!(!shown.contains("mabel"), "{shown}");
    }

    #[test]
    fn identity_rules() {
        assert!(check_identity("").is_err());
        assert!(check_identity(&"é".repeat(128)).is_ok());
        assert!(check_identity(&"é".repeat(129)).is_err());
    }
}
