//! The user-device side of the 2-man rule: [`TwoManRuleClient::save_identity`] and
//! [`TwoManRuleClient::retrieve_identity`], in the order the Seald client calls SSKS.
//!
//! - save = `challenge_validate` (when the session must authenticate) then `push`;
//! - retrieve = `challenge_validate` then `search`, and when the stored identity was pushed
//!   without a challenge (`authenticated` false), a re-encrypted copy (fresh salt and IV) is
//!   pushed through the now authenticated session
//!   ([`reencrypted`](RetrievedIdentity::reencrypted)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::crypto;
use super::{KeySplitStore, SessionId, SsksSession};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::rng::{SecureRandom, SystemRandom};
use crate::secret::Secret;

/// The host's renewal, boxed: the old identity in, the new one out.
type Renewal<'a> = Box<
    dyn FnOnce(Secret) -> Pin<Box<dyn Future<Output = Result<Secret>> + Send + 'a>> + Send + 'a,
>;

/// An identity fetched from SSKS. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrievedIdentity {
    /// The decrypted identity (after a renewal, the new one).
    pub identity: Secret,
    /// Whether the stored identity had been pushed without a challenge (`authenticated` false
    /// on SSKS), through a session the backend also held: the backend may know it.
    pub was_unauthenticated: bool,
    /// Whether a re-encrypted copy of the *same* identity (fresh salt and IV) was pushed through
    /// the challenged session, because the stored one was not authenticated. This is not
    /// Seald's renewal: see [`TwoManRuleClient`].
    pub reencrypted: bool,
    /// Whether the host's renewal made a new identity, which was pushed in place of the old one
    /// ([`TwoManRuleClient::retrieve_identity_renewing`]; what Seald's plugin calls renewed).
    pub renewed: bool,
}

impl fmt::Debug for RetrievedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetrievedIdentity")
            .field("identity", &self.identity)
            .field("was_unauthenticated", &self.was_unauthenticated)
            .field("reencrypted", &self.reencrypted)
            .field("renewed", &self.renewed)
            .finish()
    }
}

/// Saves and retrieves identities through any [`KeySplitStore`] (the real SSKS over HTTP or the
/// local one), doing the crypto on this side.
///
/// # Re-encrypted is not renewed
///
/// An identity pushed without a challenge was pushed through the session id that
/// `challenge_send` gave the *backend*, so the backend could have pushed it itself: it may know
/// that identity. Seald's plugin therefore *renews* it on retrieval: it calls the SDK's
/// `renewKey` (new private keys, registered with Seald) and pushes the new identity. keyward
/// stores opaque bytes and cannot make new keys, so [`TwoManRuleClient::retrieve_identity`] only
/// re-encrypts the same identity: the stored copy is now marked authenticated, but whoever knew
/// the identity still knows it. Hosts that need Seald's guarantee use
/// [`TwoManRuleClient::retrieve_identity_renewing`], which hands the identity to the host's own
/// renewal (Seald's `renewKey`, or whatever makes a fresh identity) and pushes what it returns.
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

    /// Fetches and decrypts the identity. When the stored one had been pushed without a
    /// challenge, a re-encrypted copy of the same identity is pushed through the challenged
    /// session ([`reencrypted`](RetrievedIdentity::reencrypted); `renewed` stays false: see
    /// [`TwoManRuleClient`]).
    ///
    /// A blob that does not open under the session's key (wrong key, user or app id, tampering)
    /// is a [`CannotOpen`](crate::ErrorKind::CannotOpen) error; nothing is pushed then.
    pub async fn retrieve_identity(
        &self,
        session: &SsksSession,
        challenge: Option<&Secret>,
    ) -> Result<RetrievedIdentity> {
        self.retrieve(session, challenge, None).await
    }

    /// [`retrieve_identity`](Self::retrieve_identity) with Seald's renewal: when the stored
    /// identity had been pushed without a challenge (so the backend may know it), `renew` gets
    /// it and returns a new identity (with Seald, the identity after the SDK's `renewKey`); the
    /// new one is encrypted, pushed through the challenged session and returned, with
    /// [`renewed`](RetrievedIdentity::renewed) set. An authenticated identity is returned as it
    /// is and `renew` is not called.
    ///
    /// An error from `renew` is returned and nothing is pushed (the old identity stays stored,
    /// still unauthenticated, so the next retrieval renews again). A renewal that returns the
    /// identity it was given is refused ([`InvalidInput`](crate::ErrorKind::InvalidInput)): it
    /// would be a re-encryption reported as a renewal.
    pub async fn retrieve_identity_renewing<F, Fut>(
        &self,
        session: &SsksSession,
        challenge: Option<&Secret>,
        renew: F,
    ) -> Result<RetrievedIdentity>
    where
        F: FnOnce(Secret) -> Fut + Send,
        Fut: Future<Output = Result<Secret>> + Send,
    {
        let mut renewal: Option<Renewal<'_>> = Some(Box::new(move |old| Box::pin(renew(old))));
        self.retrieve(session, challenge, Some(&mut renewal)).await
    }

    async fn retrieve(
        &self,
        session: &SsksSession,
        challenge: Option<&Secret>,
        renewal: Option<&mut Option<Renewal<'_>>>,
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
        let mut identity = crypto::open_identity(
            &session.two_man_rule_key,
            &self.app_id,
            &session.user_id,
            &blob.data_b64,
        )?;
        let was_unauthenticated = !blob.authenticated;
        let (mut reencrypted, mut renewed) = (false, false);
        if was_unauthenticated && authenticated_now {
            let renew = renewal.and_then(Option::take);
            if let Some(renew) = renew {
                let fresh = renew(identity.clone()).await?;
                if fresh == identity {
                    return Err(Error::invalid_input(
                        "the renewal returned the identity it was given",
                    ));
                }
                identity = fresh;
                renewed = true;
            } else {
                reencrypted = true;
            }
            let data_b64 = crypto::seal_identity(
                &session.two_man_rule_key,
                &self.app_id,
                &session.user_id,
                identity.expose(),
                self.rng.as_ref(),
            )?;
            self.ssks.push(&id, &session.auth_factor, &data_b64).await?;
        }
        Ok(RetrievedIdentity {
            identity,
            was_unauthenticated,
            reencrypted,
            renewed,
        })
    }
}
