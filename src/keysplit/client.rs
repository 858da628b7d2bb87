//! The user-device side of the 2-man rule: [`TwoManRuleClient::save_identity`] and
//! [`TwoManRuleClient::retrieve_identity`], in the order the Seald client calls SSKS.
//!
//! - save = `challenge_validate` (when the session must authenticate) then `push`;
//! - retrieve = `challenge_validate` then `search`, and when the stored identity was pushed
//!   without a challenge (`authenticated` false), a re-encrypted copy (fresh salt and IV) is
//!   pushed through the now authenticated session.

use std::fmt;
use std::sync::Arc;

use super::crypto;
use super::{KeySplitStore, SessionId, SsksSession};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::rng::{SecureRandom, SystemRandom};
use crate::secret::Secret;

/// An identity fetched from SSKS. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrievedIdentity {
    /// The decrypted identity.
    pub identity: Secret,
    /// Whether a renewed blob was pushed because the stored one was not authenticated.
    pub renewed: bool,
}

impl fmt::Debug for RetrievedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetrievedIdentity")
            .field("identity", &self.identity)
            .field("renewed", &self.renewed)
            .finish()
    }
}

/// Saves and retrieves identities through any [`KeySplitStore`] (the real SSKS over HTTP or the
/// local one), doing the crypto on this side.
#[derive(Debug, Clone)]
pub struct TwoManRuleClient {
    ssks: Arc<dyn KeySplitStore>,
    app_id: String,
    rng: Arc<dyn SecureRandom>,
}

impl TwoManRuleClient {
    /// A client of `ssks` for the Seald app `app_id` (part of the key derivation).
    pub fn new(ssks: Arc<dyn KeySplitStore>, app_id: impl Into<String>) -> Self {
        TwoManRuleClient {
            ssks,
            app_id: app_id.into(),
            rng: Arc::new(SystemRandom::new()),
        }
    }

    /// Draws salts and IVs from this environment's random source (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.rng = env.random().clone();
        self
    }

    async fn authenticate(
        &self,
        session: &SsksSession,
        challenge: Option<&Secret>,
    ) -> Result<(SessionId, bool)> {
        match challenge {
            Some(challenge) => {
                let id = self
                    .ssks
                    .validate_challenge(&session.session_id, challenge, &session.auth_factor)
                    .await?;
                Ok((id, true))
            }
            None if session.must_authenticate => Err(Error::invalid_input(
                "this session must authenticate: the challenge the user received is required",
            )),
            None => Ok((session.session_id.clone(), false)),
        }
    }

    /// Encrypts `identity` under the session's key and stores it; returns SSKS's id for the
    /// user. `challenge` is required when `session.must_authenticate`.
    pub async fn save_identity(
        &self,
        session: &SsksSession,
        challenge: Option<&Secret>,
        identity: &[u8],
    ) -> Result<String> {
        let data_b64 = crypto::seal_identity(
            &session.two_man_rule_key,
            &self.app_id,
            &session.user_id,
            identity,
            self.rng.as_ref(),
        )?;
        let (id, _) = self.authenticate(session, challenge).await?;
        self.ssks.push(&id, &session.auth_factor, &data_b64).await
    }

    /// Fetches and decrypts the identity. A blob that does not open under the session's key
    /// (wrong key, user or app id, tampering) is a [`CannotOpen`](crate::ErrorKind::CannotOpen)
    /// error; nothing is pushed then.
    pub async fn retrieve_identity(
        &self,
        session: &SsksSession,
        challenge: Option<&Secret>,
    ) -> Result<RetrievedIdentity> {
        // SSKS releases stored ciphertext only to a session that passed a challenge; without
        // one the backend's own session id could read it (see PROTOCOLS §3).
        if challenge.is_none() {
            return Err(Error::invalid_input(
                "retrieving an identity needs the challenge the user received",
            ));
        }
        let (id, authenticated_now) = self.authenticate(session, challenge).await?;
        let blob = self.ssks.search(&id).await?;
        let identity = crypto::open_identity(
            &session.two_man_rule_key,
            &self.app_id,
            &session.user_id,
            &blob.data_b64,
        )?;
        let mut renewed = false;
        if !blob.authenticated && authenticated_now {
            let data_b64 = crypto::seal_identity(
                &session.two_man_rule_key,
                &self.app_id,
                &session.user_id,
                identity.expose(),
                self.rng.as_ref(),
            )?;
            self.ssks.push(&id, &session.auth_factor, &data_b64).await?;
            renewed = true;
        }
        Ok(RetrievedIdentity { identity, renewed })
    }
}
