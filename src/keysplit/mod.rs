//! The 2-man rule: the [`KeySplitStore`] trait (the SSKS side) and its types.
//!
//! The host backend keeps a per-user `twoManRuleKey`; the key-storage server (SSKS) keeps the
//! user's identity encrypted under it and releases the ciphertext only to a session that answered
//! an email/SMS challenge. Neither server alone can read the identity. Wire facts: SSKS's
//! `/tmr/back/challenge_send/`, `/tmr/front/challenge_validate/`, `/tmr/front/push/`,
//! `/tmr/front/search/` (see `docs/two-man-rule.md`).
//!
//! | role | items |
//! |---|---|
//! | backend | [`TwoManRuleKeys`] (per-user keys), [`TwoManRuleBackend::session`] (the seed's `getSSKSSession`) |
//! | SSKS | `ssks::SsksClient` (Seald's SSKS over HTTP, feature `ssks`), [`local::LocalKeySplitStore`], `server` (feature `ssks-server`) |
//! | client | `TwoManRuleClient` (save / retrieve) and `crypto` (the blob format), feature `ssks` |

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::normalize;
use crate::secret::Secret;

#[cfg(feature = "ssks")]
mod client;
#[cfg(feature = "ssks")]
pub mod crypto;
mod keys;
pub mod local;
#[cfg(feature = "ssks-server")]
pub mod server;
#[cfg(feature = "ssks")]
pub mod ssks;

#[cfg(feature = "ssks")]
pub use client::{RetrievedIdentity, TwoManRuleClient};

pub use keys::{KEY_BYTES, KeyKind, SsksSession, TwoManRuleBackend, TwoManRuleKey, TwoManRuleKeys};

/// The kind of authentication factor SSKS challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthFactorType {
    /// Email (`"EM"` on the wire).
    #[serde(rename = "EM")]
    Email,
    /// SMS (`"SMS"` on the wire).
    #[serde(rename = "SMS")]
    Sms,
}

/// An authentication factor: where the challenge goes. `Debug` masks the value.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthFactor {
    /// Email or SMS.
    #[serde(rename = "type")]
    pub kind: AuthFactorType,
    /// The address or E.164 number.
    pub value: String,
}

impl AuthFactor {
    /// An email factor, normalized (NFKC, spaces removed, lowercased).
    pub fn email(address: &str) -> Result<Self> {
        Ok(AuthFactor {
            kind: AuthFactorType::Email,
            value: normalize::email(address)?,
        })
    }

    /// An SMS factor, normalized to E.164.
    pub fn sms(number: &str) -> Result<Self> {
        Ok(AuthFactor {
            kind: AuthFactorType::Sms,
            value: normalize::phone_e164(number)?,
        })
    }

    /// Re-normalizes a factor that came from elsewhere (a request body).
    pub fn normalized(&self) -> Result<Self> {
        match self.kind {
            AuthFactorType::Email => AuthFactor::email(&self.value),
            AuthFactorType::Sms => AuthFactor::sms(&self.value),
        }
    }
}

impl fmt::Debug for AuthFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFactor")
            .field("kind", &self.kind)
            .field("value", &normalize::mask(&self.value))
            .finish()
    }
}

/// An SSKS session id: a bearer credential, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(Secret);

impl SessionId {
    /// Wraps a session id.
    pub fn new(id: impl Into<String>) -> Self {
        SessionId(Secret::from(id.into()))
    }

    /// The id, for the `X-SEALD-SESSION` header or the frontend.
    pub fn expose(&self) -> &str {
        self.0.expose_str().unwrap_or_default()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([REDACTED])")
    }
}

/// Placeholder SSKS replaces with the challenge in templates.
pub const CHALLENGE_PLACEHOLDER: &str = "$$CHALLENGE$$";

/// A backend's request to open a challenge session (`challenge_send`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChallengeRequest {
    /// The host's id for the user.
    pub user_id: String,
    /// Where to send the challenge.
    pub auth_factor: AuthFactor,
    /// Create the user on SSKS if unknown.
    pub create_user: bool,
    /// Require a challenge even when no identity was stored yet.
    pub force_auth: bool,
    /// Message template (HTML for email, text for SMS); must contain `$$CHALLENGE$$`.
    pub template: String,
    /// Email subject.
    pub subject: Option<String>,
    /// Ask a test server to use the fixed challenge `aaaaaaaa` (refused by production servers).
    pub fake_otp: bool,
}

impl ChallengeRequest {
    /// A request for `user_id` and `auth_factor` with `template`; `create_user` is on.
    pub fn new(
        user_id: impl Into<String>,
        auth_factor: AuthFactor,
        template: impl Into<String>,
    ) -> Self {
        ChallengeRequest {
            user_id: user_id.into(),
            auth_factor,
            create_user: true,
            force_auth: false,
            template: template.into(),
            subject: None,
            fake_otp: false,
        }
    }

    /// Sets the email subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Requires a challenge even for a first save.
    pub fn force_auth(mut self, force: bool) -> Self {
        self.force_auth = force;
        self
    }

    /// Sets `create_user`.
    pub fn create_user(mut self, create: bool) -> Self {
        self.create_user = create;
        self
    }

    /// Asks a test server for the fixed challenge (test servers only).
    pub fn fake_otp(mut self, fake: bool) -> Self {
        self.fake_otp = fake;
        self
    }

    /// Checks the request before it is sent: template contains the placeholder, user id is
    /// non-empty.
    pub fn validate(&self) -> Result<()> {
        if self.user_id.trim().is_empty() {
            return Err(Error::invalid_input("user_id must not be empty"));
        }
        if !self.template.contains(CHALLENGE_PLACEHOLDER) {
            return Err(Error::invalid_input(
                "template must contain the $$CHALLENGE$$ placeholder",
            ));
        }
        Ok(())
    }
}

/// The answer to `challenge_send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeSession {
    /// The session the client uses next.
    pub session_id: SessionId,
    /// Whether the client must validate a challenge before pushing or searching.
    pub must_authenticate: bool,
}

/// An encrypted identity as stored on SSKS.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The blob, standard base64 with padding.
    pub data_b64: String,
    /// Whether the blob was pushed through a session that passed a challenge.
    pub authenticated: bool,
}

impl fmt::Debug for StoredBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredBlob")
            .field("data_b64", &format_args!("<{} chars>", self.data_b64.len()))
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

/// The key-storage side of the 2-man rule: the real SSKS over HTTP, or the local one.
///
/// # Contract
/// - [`open_session`](KeySplitStore::open_session) (back side, app credentials): sends a
///   challenge to the factor when one is needed; one live session per user, a new one replaces
///   the old. Errors: [`InvalidInput`](crate::ErrorKind::InvalidInput) (template without the
///   placeholder), [`Config`](crate::ErrorKind::Config) (`fake_otp` outside a test server).
/// - [`validate_challenge`](KeySplitStore::validate_challenge): returns the authenticated
///   session id. Errors: [`Rejected`](crate::ErrorKind::Rejected) (wrong challenge),
///   [`NotFound`](crate::ErrorKind::NotFound) (unknown session),
///   [`Expired`](crate::ErrorKind::Expired), [`TooManyAttempts`](crate::ErrorKind::TooManyAttempts).
/// - [`push`](KeySplitStore::push): stores the blob for the session's user; returns its stable id.
/// - [`search`](KeySplitStore::search): returns the stored blob;
///   [`NotFound`](crate::ErrorKind::NotFound) when none is stored.
///
/// Hold it as `Arc<dyn KeySplitStore>`.
#[async_trait]
pub trait KeySplitStore: Send + Sync + fmt::Debug {
    /// Opens a challenge session (`/tmr/back/challenge_send/`).
    async fn open_session(&self, request: ChallengeRequest) -> Result<ChallengeSession>;

    /// Validates the challenge the user received (`/tmr/front/challenge_validate/`).
    async fn validate_challenge(
        &self,
        session: &SessionId,
        challenge: &Secret,
        auth_factor: &AuthFactor,
    ) -> Result<SessionId>;

    /// Stores an encrypted blob for the session's user (`/tmr/front/push/`).
    async fn push(
        &self,
        session: &SessionId,
        auth_factor: &AuthFactor,
        data_b64: &str,
    ) -> Result<String>;

    /// Fetches the session's user's blob (`/tmr/front/search/`).
    async fn search(&self, session: &SessionId) -> Result<StoredBlob>;
}
