//! Store-free verification entry points: the browser's JSON text straight to a verdict, a
//! registration check without storage, and many independent assertions verified at once across a
//! thread pool.
//!
//! None of these consume ceremony state or save anything: the caller is responsible for each
//! state being used once and for saving sign counts and new credentials.
//! [`RelyingParty`](super::RelyingParty) does both on top of the same checks.

use std::time::SystemTime;

use super::ceremony::{self, ParsedCredential};
use super::config::RelyingPartyConfig;
use super::{
    AuthenticationResponseJson, AuthenticationState, RegisteredCredential,
    RegistrationResponseJson, RegistrationState, VerifiedAssertion,
};
use crate::error::{Error, Result};

/// Decodes the browser's `AuthenticationResponseJSON` text (`JSON.stringify(credential)`), refusing
/// text longer than the configured attestation-object limit.
fn parse_response(config: &RelyingPartyConfig, text: &str) -> Result<AuthenticationResponseJson> {
    super::rp::parse_authentication_json(text, config)
}

/// [`verify_assertion`](super::verify_assertion) on the browser's JSON text: decodes the Level 3
/// `AuthenticationResponseJSON` and runs every check of §7.2, with no store access.
///
/// Fails with [`TooLarge`](super::WebAuthnFailure::TooLarge) or
/// [`Malformed`](super::WebAuthnFailure::Malformed) for text that does
/// not decode, and otherwise exactly as [`verify_assertion`](super::verify_assertion).
pub fn verify_assertion_json(
    config: &RelyingPartyConfig,
    state: &AuthenticationState,
    credential: &ParsedCredential,
    response_json: &str,
) -> Result<VerifiedAssertion> {
    let response = parse_response(config, response_json)?;
    super::verify_assertion(config, state, credential, &response)
}

/// Verifies a registration response with no store access: every check of WebAuthn Level 3 §7.1
/// (challenge, origin, rpIdHash, flags, requested algorithm, attestation statement) under
/// `config`, with `now` as the registration time. Returns the credential to store.
///
/// The caller must make sure `state` is used once and that the credential id is not already
/// registered; [`finish_registration`](super::AuthenticatorVerifier::finish_registration) does both.
pub fn verify_registration(
    config: &RelyingPartyConfig,
    state: &RegistrationState,
    response: &RegistrationResponseJson,
    now: SystemTime,
) -> Result<RegisteredCredential> {
    ceremony::check_registration(config, state, response, now).map_err(Error::webauthn)
}

/// The response of one [`BatchAssertion`]: the browser's JSON text, or an already-decoded form.
#[derive(Debug, Clone, Copy)]
enum BatchResponse<'a> {
    Json(&'a str),
    Decoded(&'a AuthenticationResponseJson),
}

/// One independent assertion to verify in a batch: its ceremony state (the expected challenge),
/// the stored credential it claims, and the browser's response.
#[derive(Debug, Clone, Copy)]
pub struct BatchAssertion<'a> {
    state: &'a AuthenticationState,
    credential: &'a ParsedCredential,
    response: BatchResponse<'a>,
}

impl<'a> BatchAssertion<'a> {
    /// An assertion given as the browser's `AuthenticationResponseJSON` text; decoding happens
    /// on the worker thread, as part of the batch.
    pub fn json(
        state: &'a AuthenticationState,
        credential: &'a ParsedCredential,
        response_json: &'a str,
    ) -> Self {
        BatchAssertion {
            state,
            credential,
            response: BatchResponse::Json(response_json),
        }
    }

    /// An assertion whose response is already decoded.
    pub fn decoded(
        state: &'a AuthenticationState,
        credential: &'a ParsedCredential,
        response: &'a AuthenticationResponseJson,
    ) -> Self {
        BatchAssertion {
            state,
            credential,
            response: BatchResponse::Decoded(response),
        }
    }

    /// Verifies this one assertion on the calling thread: exactly what a batch does per item.
    pub fn verify(&self, config: &RelyingPartyConfig) -> Result<VerifiedAssertion> {
        match self.response {
            BatchResponse::Json(text) => {
                verify_assertion_json(config, self.state, self.credential, text)
            }
            BatchResponse::Decoded(response) => {
                super::verify_assertion(config, self.state, self.credential, response)
            }
        }
    }
}

/// Verifies many independent assertions under one `config` across rayon's current thread pool
/// (the global pool, or the pool of an enclosing `ThreadPool::install`). Returns one verdict per
/// item, in order; each verdict equals what [`BatchAssertion::verify`] (and so
/// [`verify_assertion`](super::verify_assertion) / [`verify_assertion_json`]) gives for that item
/// alone. One bad item never affects another.
///
/// Like [`verify_assertion`](super::verify_assertion), this consumes no state and saves nothing:
/// the caller must make sure each state is used once and save the new sign counts.
pub fn verify_batch(
    config: &RelyingPartyConfig,
    items: &[BatchAssertion<'_>],
) -> Vec<Result<VerifiedAssertion>> {
    use rayon::prelude::*;
    items.par_iter().map(|item| item.verify(config)).collect()
}

/// A dedicated thread pool for [`verify_batch`], so batch verification does not compete with
/// other users of rayon's global pool and its width is chosen by the host.
///
/// ```
/// use keyward::webauthn::{BatchVerifier, RelyingPartyConfig};
/// let config = RelyingPartyConfig::new("example.com", "Example", "https://example.com")?;
/// let verifier = BatchVerifier::new(2)?;
/// assert_eq!(verifier.threads(), 2);
/// assert!(verifier.verify(&config, &[]).is_empty());
/// # Ok::<(), keyward::Error>(())
/// ```
pub struct BatchVerifier {
    pool: rayon::ThreadPool,
}

impl std::fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchVerifier")
            .field("threads", &self.pool.current_num_threads())
            .finish()
    }
}

impl BatchVerifier {
    /// A pool of `threads` worker threads (`0`: one per available core). Fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if the threads cannot be started.
    pub fn new(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("keyward-verify-{i}"))
            .build()
            .map_err(|e| {
                Error::config("could not start the verification thread pool").with_source(e)
            })?;
        Ok(BatchVerifier { pool })
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// [`verify_batch`] on this pool.
    pub fn verify(
        &self,
        config: &RelyingPartyConfig,
        items: &[BatchAssertion<'_>],
    ) -> Vec<Result<VerifiedAssertion>> {
        self.pool.install(|| verify_batch(config, items))
    }
}
