//! [`RelyingParty`]: the [`AuthenticatorVerifier`] implementation, with single-use challenges and
//! credentials kept in a [`StateStore`].
//!
//! Store layout: one durable record per user holds every credential of the user (registering,
//! deleting and counting are one compare-and-swap on that key); a credential-id hint points at
//! the user for callers that know only the id; challenges are ephemeral and taken on finish. A
//! finish makes at most 3 store round trips (take, get, and a compare-and-swap only when the
//! counter or backup state changed, so 2 for counter-less passkeys).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::b64::Base64UrlBytes;
use super::ceremony::{self, ParsedCredential};
#[cfg(feature = "testing")]
use super::client_data::MAX_CHALLENGE_LEN;
use super::config::RelyingPartyConfig;
use super::extensions::{
    AuthenticationExtensions, LargeBlobRequest, MAX_LARGE_BLOB, PrfInput, RegistrationExtensions,
    authentication_inputs, registration_inputs,
};
use super::json::{
    AllAcceptedCredentialsSignalJson, AuthenticatorSelectionJson, CredentialDescriptorJson,
    CurrentUserDetailsSignalJson, PubKeyCredParamJson, PublicKeyType, RpEntityJson,
    UnknownCredentialSignalJson, UserEntityJson,
};
use super::options::{ResidentKeyRequirement, UserVerification};
use super::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, AuthenticatorVerifier,
    CreationOptionsJson, RegisteredCredential, RegistrationRequest, RegistrationResponseJson,
    RegistrationState, RequestOptionsJson, UserEntity, VerifiedAssertion, WebAuthnFailure,
};
use crate::clock::{Clock, unix_seconds};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::rng::{SecureRandom, random_array};
use crate::store::{CasOutcome, Key, StateStore, StateStoreExt, Ttl, Update, Write};

/// Largest number of credentials one user may register.
pub const MAX_CREDENTIALS_PER_USER: usize = 64;

/// A WebAuthn relying party: both ceremonies, every check, state in a [`StateStore`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use keyward::AuthenticatorVerifier;
/// use keyward::store::MemoryStore;
/// use keyward::webauthn::{RegistrationRequest, RelyingParty, RelyingPartyConfig, UserEntity};
///
/// let config = RelyingPartyConfig::new("example.com", "Example", "https://example.com")?;
/// let rp: Arc<dyn AuthenticatorVerifier> = Arc::new(RelyingParty::new(config, Arc::new(MemoryStore::new())));
/// let user = UserEntity::new(*b"user-handle-0001", "alice@example.com", "Alice")?;
/// let (options, state) = rp.start_registration(RegistrationRequest::new(user)).await?;
/// assert_eq!(options.challenge.as_slice().len(), 32);
/// // Send `options` to the browser, keep `state` in the session, then
/// // `rp.finish_registration(state, &response).await?`.
/// # let _ = state;
/// # Ok::<(), keyward::Error>(()) }).unwrap();
/// ```
pub struct RelyingParty {
    config: RelyingPartyConfig,
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn SecureRandom>,
}

impl fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.config.rp_id)
            .field("origins", &self.config.origins)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlBytes(bytes.to_vec()).encode()
}

use super::credentials::{self, Removed, ceremony_key, hint_key, user_key};

fn timeout_ms(d: Duration) -> Option<u32> {
    u32::try_from(d.as_millis()).ok()
}

impl RelyingParty {
    /// A relying party on [`Env::system`] (give it another with [`env`](RelyingParty::env)).
    /// The store should share the relying party's clock (TTL expiry).
    pub fn new(config: RelyingPartyConfig, store: Arc<dyn StateStore>) -> Self {
        let env = Env::system();
        RelyingParty {
            config,
            store,
            clock: env.clock().clone(),
            rng: env.random().clone(),
        }
    }

    /// Runs on this clock (registration times, ceremony expiry) and random source
    /// (challenges, ceremony ids).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self.rng = env.random().clone();
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RelyingPartyConfig {
        &self.config
    }

    /// A stored credential (found through its id hint, trusted only if its user's record holds
    /// it).
    pub async fn credential(&self, credential_id: &[u8]) -> Result<Option<RegisteredCredential>> {
        let Some(hint) = self.store.get(&hint_key(credential_id)).await? else {
            return Ok(None);
        };
        Ok(self
            .credentials_for_user(&hint.value)
            .await?
            .into_iter()
            .find(|c| c.credential_id == credential_id))
    }

    /// A user's stored credentials.
    pub async fn credentials_for_user(&self, user_id: &[u8]) -> Result<Vec<RegisteredCredential>> {
        match self.store.get(&user_key(user_id)).await? {
            Some(entry) => credentials::decode(&entry.value),
            None => Ok(Vec::new()),
        }
    }

    /// Stores a credential registered elsewhere (a migration, or a test fixture). Fails with
    /// [`WebAuthnFailure::CredentialAlreadyRegistered`] if its id is taken and with
    /// [`WebAuthnFailure::InvalidPublicKey`] if its key does not decode.
    pub async fn import_credential(&self, credential: RegisteredCredential) -> Result<()> {
        ParsedCredential::new(credential.clone())?;
        self.store_credential(&credential).await
    }

    /// Removes a credential of `user_id` (the user deleted a passkey). Returns whether it existed.
    /// Fails with [`WebAuthnFailure::CredentialNotOwned`] if it belongs to another user.
    pub async fn delete_credential(&self, user_id: &[u8], credential_id: &[u8]) -> Result<bool> {
        let deleted = self
            .store
            .update_bytes(&user_key(user_id), |current| {
                let Some(bytes) = current else {
                    return Ok(Update::Keep(false));
                };
                // The other credentials and the fields a later release added stay as they were.
                Ok(match credentials::remove(bytes, credential_id)? {
                    Removed::Absent => Update::Keep(false),
                    Removed::Empty => Update::Delete(true),
                    Removed::Rest(rest) => Update::Set(rest, Ttl::Keep, true),
                })
            })
            .await?;
        if !deleted {
            if let Some(owner) = self.credential(credential_id).await?
                && owner.user_id != user_id
            {
                return Err(Error::webauthn(WebAuthnFailure::CredentialNotOwned));
            }
            return Ok(false);
        }
        // The hint now points at nothing usable; removing it is tidiness, not correctness.
        let hint = hint_key(credential_id);
        if let Ok(Some(entry)) = self.store.get(&hint).await
            && entry.value == user_id
        {
            let _ = self
                .store
                .compare_and_swap(&hint, entry.version, Write::Delete)
                .await;
        }
        Ok(true)
    }

    /// The Signal API JSON for `PublicKeyCredential.signalUnknownCredential()`: send it to the
    /// page when a sign-in failed with [`WebAuthnFailure::UnknownCredential`], or after deleting
    /// a credential.
    pub fn signal_unknown_credential(&self, credential_id: &[u8]) -> UnknownCredentialSignalJson {
        UnknownCredentialSignalJson {
            rp_id: self.config.rp_id.clone(),
            credential_id: Base64UrlBytes(credential_id.to_vec()),
        }
    }

    /// The Signal API JSON for `PublicKeyCredential.signalAllAcceptedCredentials()`, from the
    /// credentials the store holds for `user_id` (an empty list tells the provider none is left).
    pub async fn signal_all_accepted_credentials(
        &self,
        user_id: &[u8],
    ) -> Result<AllAcceptedCredentialsSignalJson> {
        let credentials = self.credentials_for_user(user_id).await?;
        Ok(AllAcceptedCredentialsSignalJson {
            rp_id: self.config.rp_id.clone(),
            user_id: Base64UrlBytes(user_id.to_vec()),
            all_accepted_credential_ids: credentials
                .into_iter()
                .map(|c| Base64UrlBytes(c.credential_id))
                .collect(),
        })
    }

    /// The Signal API JSON for `PublicKeyCredential.signalCurrentUserDetails()`.
    pub fn signal_current_user_details(&self, user: &UserEntity) -> CurrentUserDetailsSignalJson {
        CurrentUserDetailsSignalJson {
            rp_id: self.config.rp_id.clone(),
            user_id: Base64UrlBytes(user.id.clone()),
            name: user.name.clone(),
            display_name: user.display_name.clone(),
        }
    }

    /// [`finish_authentication`](AuthenticatorVerifier::finish_authentication) on the browser's
    /// JSON text (`JSON.stringify(credential)`), decoded once.
    pub async fn finish_authentication_json(
        &self,
        state: AuthenticationState,
        response_json: &str,
    ) -> Result<VerifiedAssertion> {
        let response = parse_authentication_json(response_json, &self.config)?;
        self.finish_authentication(state, &response).await
    }

    /// [`finish_registration`](AuthenticatorVerifier::finish_registration) on the browser's JSON
    /// text.
    pub async fn finish_registration_json(
        &self,
        state: RegistrationState,
        response_json: &str,
    ) -> Result<RegisteredCredential> {
        let response = parse_json(response_json, self.config.limits.attestation_object * 2)?;
        self.finish_registration(state, &response).await
    }

    /// Verifies an assertion against `credential` with no store access: every check of §7.2
    /// (challenge, origin, rpIdHash, flags, ownership, allowCredentials, signature, counter
    /// policy). The caller is responsible for the state being used once and for saving the new
    /// sign count; [`finish_authentication`](AuthenticatorVerifier::finish_authentication) does
    /// both.
    pub fn verify_assertion(
        &self,
        state: &AuthenticationState,
        credential: &ParsedCredential,
        response: &AuthenticationResponseJson,
    ) -> Result<VerifiedAssertion> {
        verify_assertion(&self.config, state, credential, response)
    }

    async fn start_registration_inner(
        &self,
        request: RegistrationRequest,
        challenge: Vec<u8>,
    ) -> Result<(CreationOptionsJson, RegistrationState)> {
        let mut requested = request.extensions.clone();
        check_registration_extensions(&requested)?;
        check_attestation_formats(&request.attestation_formats)?;
        let timeout = request_timeout(request.timeout, self.config.timeout)?;
        let uv_policy = request
            .user_verification
            .unwrap_or(self.config.user_verification);
        if requested.appid_exclude.is_none() {
            requested.appid_exclude = self.config.appid.clone();
        }
        let existing = self.credentials_for_user(&request.user.id).await?;
        let ceremony_id = b64(&random_array::<16>(self.rng.as_ref())?);
        self.store
            .put(
                &ceremony_key("reg", &ceremony_id),
                challenge.clone(),
                Some(timeout),
            )
            .await?;
        let extensions = registration_inputs(&requested, None);
        let options = CreationOptionsJson {
            rp: RpEntityJson {
                id: Some(self.config.rp_id.clone()),
                name: self.config.rp_name.clone(),
            },
            user: UserEntityJson {
                id: Base64UrlBytes(request.user.id.clone()),
                name: request.user.name.clone(),
                display_name: request.user.display_name.clone(),
            },
            challenge: Base64UrlBytes(challenge.clone()),
            pub_key_cred_params: self
                .config
                .algorithms
                .iter()
                .map(|&alg| PubKeyCredParamJson {
                    kind: PublicKeyType::PublicKey,
                    alg,
                })
                .collect(),
            timeout: timeout_ms(timeout),
            exclude_credentials: existing
                .iter()
                .map(|c| CredentialDescriptorJson {
                    kind: PublicKeyType::PublicKey,
                    id: Base64UrlBytes(c.credential_id.clone()),
                    transports: c.transports.clone(),
                })
                .collect(),
            authenticator_selection: Some(AuthenticatorSelectionJson {
                authenticator_attachment: request.authenticator_attachment,
                require_resident_key: request.resident_key
                    == Some(ResidentKeyRequirement::Required),
                resident_key: request.resident_key,
                user_verification: Some(uv_policy),
            }),
            hints: request.hints.clone(),
            attestation: Some(
                request
                    .attestation
                    .unwrap_or(self.config.attestation_preference),
            ),
            attestation_formats: request.attestation_formats.clone(),
            extensions: Some(extensions),
        };
        let state = RegistrationState {
            ceremony_id,
            challenge,
            user: request.user,
            user_verification: uv_policy,
            algorithms: self.config.algorithms.clone(),
            created_at_unix: self.clock.unix_seconds(),
            extensions: requested,
            timeout_secs: request.timeout.map(|_| timeout.as_secs()),
            conditional: request.conditional,
        };
        Ok((options, state))
    }

    async fn start_authentication_inner(
        &self,
        request: AuthenticationRequest,
        challenge: Vec<u8>,
    ) -> Result<(RequestOptionsJson, AuthenticationState)> {
        let mut credentials = match &request.user_id {
            Some(user_id) => self.credentials_for_user(user_id).await?,
            None => Vec::new(),
        };
        if let Some(only) = &request.credential_id {
            credentials.retain(|c| c.credential_id == *only);
            if credentials.is_empty() {
                return Err(Error::webauthn(WebAuthnFailure::UnknownCredential));
            }
        }
        check_authentication_extensions(&request.extensions, &credentials)?;
        let timeout = request_timeout(request.timeout, self.config.timeout)?;
        let mut uv = request
            .user_verification
            .unwrap_or(self.config.user_verification);
        if self.config.require_uv_after_uv_registration
            && credentials.iter().any(|c| c.user_verified)
        {
            uv = UserVerification::Required;
        }
        let ceremony_id = b64(&random_array::<16>(self.rng.as_ref())?);
        self.store
            .put(
                &ceremony_key("auth", &ceremony_id),
                challenge.clone(),
                Some(timeout),
            )
            .await?;
        let extensions = authentication_inputs(&request.extensions, self.config.appid.as_deref());
        let options = RequestOptionsJson {
            challenge: Base64UrlBytes(challenge.clone()),
            timeout: timeout_ms(timeout),
            rp_id: Some(self.config.rp_id.clone()),
            allow_credentials: credentials
                .iter()
                .map(|c| CredentialDescriptorJson {
                    kind: PublicKeyType::PublicKey,
                    id: Base64UrlBytes(c.credential_id.clone()),
                    transports: c.transports.clone(),
                })
                .collect(),
            user_verification: Some(uv),
            hints: request.hints.clone(),
            extensions,
        };
        let state = AuthenticationState {
            ceremony_id,
            challenge,
            user_id: request.user_id,
            allowed_credentials: credentials.into_iter().map(|c| c.credential_id).collect(),
            user_verification: uv,
            created_at_unix: self.clock.unix_seconds(),
            appid: self.config.appid.clone(),
            extensions: request.extensions,
            timeout_secs: request.timeout.map(|_| timeout.as_secs()),
        };
        Ok((options, state))
    }

    /// Takes the ceremony's challenge out of the store: exactly one finish gets it.
    async fn consume(
        &self,
        key: &Key,
        challenge: &[u8],
        created_at_unix: u64,
        timeout_secs: Option<u64>,
    ) -> Result<()> {
        let stored = self.store.take(key).await?;
        // The request's timeout never extends past the longest one a request may set.
        let timeout = timeout_secs
            .unwrap_or(self.config.timeout.as_secs())
            .min(MAX_TIMEOUT.as_secs());
        let fresh = unix_seconds(self.clock.now()) <= created_at_unix.saturating_add(timeout);
        match stored {
            Some(stored) if fresh && bool::from(stored.as_slice().ct_eq(challenge)) => Ok(()),
            _ => Err(Error::webauthn(WebAuthnFailure::StateConsumed)),
        }
    }

    /// Claims the credential id's hint for the user, then adds the credential to the user's
    /// record in one compare-and-swap (the write that makes it usable). Either the credential is
    /// in its user's record (listed and usable) or it is nowhere usable.
    async fn store_credential(&self, credential: &RegisteredCredential) -> Result<()> {
        let id = credential.credential_id.as_slice();
        let hint = hint_key(id);
        for _ in 0..crate::store::MAX_CAS_RETRIES {
            match self.store.get(&hint).await? {
                None => {
                    if self
                        .store
                        .insert(&hint, credential.user_id.clone(), None)
                        .await?
                        .is_some()
                    {
                        break;
                    }
                }
                Some(entry) if entry.value == credential.user_id => break,
                Some(entry) => {
                    // Another user's hint: real if that user's record holds the id.
                    let owner = self.credentials_for_user(&entry.value).await?;
                    if owner.iter().any(|c| c.credential_id == id) {
                        return Err(Error::webauthn(
                            WebAuthnFailure::CredentialAlreadyRegistered,
                        ));
                    }
                    let write = Write::Set {
                        value: credential.user_id.clone(),
                        ttl: Ttl::Never,
                    };
                    if matches!(
                        self.store
                            .compare_and_swap(&hint, entry.version, write)
                            .await?,
                        CasOutcome::Swapped { .. }
                    ) {
                        break;
                    }
                }
            }
        }
        self.store
            .update_bytes(&user_key(&credential.user_id), |current| {
                // The other credentials and the fields a later release added stay as they were.
                let value = credentials::add(current, credential, MAX_CREDENTIALS_PER_USER)?;
                Ok(Update::Set(value, Ttl::Never, ()))
            })
            .await
    }

    async fn finish_registration_inner(
        &self,
        state: RegistrationState,
        response: &RegistrationResponseJson,
    ) -> Result<RegisteredCredential> {
        // Single use: a retry of the same response after a storage error says the ceremony
        // must restart (`StateConsumed`); the credential is then either absent or complete.
        self.consume(
            &ceremony_key("reg", &state.ceremony_id),
            &state.challenge,
            state.created_at_unix,
            state.timeout_secs,
        )
        .await?;
        let credential =
            ceremony::check_registration(&self.config, &state, response, self.clock.now())
                .map_err(Error::webauthn)?;
        self.store_credential(&credential).await?;
        Ok(credential)
    }

    async fn finish_authentication_inner(
        &self,
        state: AuthenticationState,
        response: &AuthenticationResponseJson,
    ) -> Result<VerifiedAssertion> {
        self.consume(
            &ceremony_key("auth", &state.ceremony_id),
            &state.challenge,
            state.created_at_unix,
            state.timeout_secs,
        )
        .await?;
        let raw_id = response.raw_id.as_slice();
        if !state.allowed_credentials.is_empty()
            && !state
                .allowed_credentials
                .iter()
                .any(|c| c.as_slice() == raw_id)
        {
            return Err(Error::webauthn(WebAuthnFailure::CredentialNotAllowed));
        }
        if raw_id.is_empty() || raw_id.len() > super::auth_data::MAX_CREDENTIAL_ID_LEN {
            return Err(Error::webauthn(WebAuthnFailure::TooLarge("credential id")));
        }
        // The user's record: the ceremony's user, else the response's user handle (always
        // present for discoverable credentials), else the credential id's hint.
        let user_id = match (&state.user_id, &response.response.user_handle) {
            (Some(u), _) => u.clone(),
            (None, Some(h)) => h.as_slice().to_vec(),
            (None, None) => self
                .store
                .get(&hint_key(raw_id))
                .await?
                .map(|e| e.value)
                .ok_or_else(|| Error::webauthn(WebAuthnFailure::UnknownCredential))?,
        };
        let key = user_key(&user_id);
        // Only this credential of the user's record is decoded.
        let found = match self.store.get(&key).await? {
            Some(entry) => credentials::find(&entry.value, raw_id)?.map(|c| (entry, c)),
            None => None,
        };
        let Some((entry, credential)) = found else {
            // Not this user's: say whether it is someone else's.
            return Err(Error::webauthn(match self.credential(raw_id).await? {
                Some(c) if c.user_id != user_id => WebAuthnFailure::CredentialNotOwned,
                _ => WebAuthnFailure::UnknownCredential,
            }));
        };
        let parsed = ParsedCredential::new(credential)?;
        let verified = verify_assertion(&self.config, &state, &parsed, response)?;
        // Save the new counter and backup state with one compare-and-swap on the version just
        // read (no write when neither changed); on a conflict, re-check against the freshest
        // value so two concurrent assertions cannot both pass a regression check.
        let policy = self.config.counter_policy;
        let new_count = verified.sign_count;
        let backed_up = verified.backed_up;
        let backup_eligible = verified.backup_eligible;
        let apply = |current: &mut RegisteredCredential| -> Result<(bool, bool)> {
            let regressed = ceremony::counter_regressed(current.sign_count, new_count);
            if regressed && policy == super::config::CounterPolicy::Reject {
                return Err(Error::webauthn(WebAuthnFailure::CounterRegression));
            }
            let changed = new_count > current.sign_count
                || current.backed_up != backed_up
                || current.backup_eligible != backup_eligible;
            current.sign_count = current.sign_count.max(new_count);
            current.backed_up = backed_up;
            current.backup_eligible = backup_eligible;
            Ok((regressed, changed))
        };
        let mut current = parsed.into_record();
        let (mut regressed, changed) = apply(&mut current)?;
        if changed {
            // The other credentials of the record are copied as they are.
            let write = Write::Set {
                value: credentials::replace(&entry.value, &current)?,
                ttl: Ttl::Keep,
            };
            let swapped = matches!(
                self.store
                    .compare_and_swap(&key, entry.version, write)
                    .await?,
                CasOutcome::Swapped { .. }
            );
            if !swapped {
                regressed = self
                    .store
                    .update_bytes(&key, |bytes| {
                        let unknown = || Error::webauthn(WebAuthnFailure::UnknownCredential);
                        let bytes = bytes.ok_or_else(unknown)?;
                        let mut current = credentials::find(bytes, raw_id)?.ok_or_else(unknown)?;
                        let (regressed, changed) = apply(&mut current)?;
                        if !changed {
                            return Ok(Update::Keep(regressed));
                        }
                        Ok(Update::Set(
                            credentials::replace(bytes, &current)?,
                            Ttl::Keep,
                            regressed,
                        ))
                    })
                    .await?;
            }
        }
        Ok(VerifiedAssertion {
            counter_regressed: verified.counter_regressed || regressed,
            ..verified
        })
    }
}

/// Longest ceremony timeout a request may set.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

fn request_timeout(requested: Option<Duration>, configured: Duration) -> Result<Duration> {
    match requested {
        None => Ok(configured),
        Some(t) if t.as_secs() >= 1 && t <= MAX_TIMEOUT => Ok(t),
        Some(_) => Err(Error::invalid_input(
            "a ceremony timeout must be 1 second to 24 hours",
        )),
    }
}

/// The attestation statement formats of the IANA registry (WebAuthn Level 3 §8).
const ATTESTATION_FORMATS: [&str; 8] = [
    "packed",
    "tpm",
    "android-key",
    "android-safetynet",
    "fido-u2f",
    "apple",
    "none",
    "compound",
];

fn check_attestation_formats(formats: &[String]) -> Result<()> {
    if formats.len() > ATTESTATION_FORMATS.len()
        || formats
            .iter()
            .any(|f| !ATTESTATION_FORMATS.contains(&f.as_str()))
    {
        return Err(Error::invalid_input(
            "attestation formats must be registered format identifiers",
        ));
    }
    Ok(())
}

/// Largest PRF input accepted (inputs are hashed by the browser; bigger ones only bloat options).
const MAX_PRF_INPUT: usize = 256;
/// Largest credBlob: 32 bytes is the minimum `maxCredBlobLength` every CTAP 2.1 authenticator
/// supports.
const MAX_CRED_BLOB_INPUT: usize = 32;

fn check_prf_input(input: &PrfInput) -> Result<()> {
    let too_long = |b: &[u8]| b.is_empty() || b.len() > MAX_PRF_INPUT;
    if too_long(&input.first) || input.second.as_deref().is_some_and(too_long) {
        return Err(Error::invalid_input("prf inputs must be 1 to 256 bytes"));
    }
    Ok(())
}

fn check_registration_extensions(ext: &RegistrationExtensions) -> Result<()> {
    if let Some(Some(input)) = &ext.prf {
        check_prf_input(input)?;
    }
    if ext
        .cred_blob
        .as_ref()
        .is_some_and(|b| b.is_empty() || b.len() > MAX_CRED_BLOB_INPUT)
    {
        return Err(Error::invalid_input("credBlob must be 1 to 32 bytes"));
    }
    Ok(())
}

/// The browser refuses (`NotSupportedError`) `evalByCredential` entries for credentials not in
/// `allowCredentials`, and a `largeBlob` write unless exactly one credential is allowed: refuse
/// both here, before anything is stored.
fn check_authentication_extensions(
    ext: &AuthenticationExtensions,
    allowed: &[RegisteredCredential],
) -> Result<()> {
    if let Some(input) = &ext.prf_eval {
        check_prf_input(input)?;
    }
    for (id, input) in &ext.prf_eval_by_credential {
        check_prf_input(input)?;
        if !allowed.iter().any(|c| c.credential_id == *id) {
            return Err(Error::invalid_input(
                "prf evalByCredential names a credential the request does not allow",
            ));
        }
    }
    if let Some(LargeBlobRequest::Write(blob)) = &ext.large_blob {
        if allowed.len() != 1 {
            return Err(Error::invalid_input(
                "a largeBlob write needs exactly one allowed credential (for_credential)",
            ));
        }
        if blob.len() > MAX_LARGE_BLOB {
            return Err(Error::invalid_input("largeBlob write exceeds 64 KiB"));
        }
    }
    Ok(())
}

/// WebAuthn Level 3 §13.4.3: challenges of at least 16 bytes; client data is read with a 64-byte
/// bound, so a longer challenge could never be matched.
#[cfg(feature = "testing")]
fn check_challenge_len(challenge: &[u8]) -> Result<()> {
    if challenge.len() < 16 || challenge.len() > MAX_CHALLENGE_LEN {
        return Err(Error::invalid_input("challenge must be 16 to 64 bytes"));
    }
    Ok(())
}

/// Decodes the browser's `AuthenticationResponseJSON` text, refusing text longer than the
/// configured attestation-object limit: the browsers' usual shape through
/// [`response_text`](super::response_text), anything else through `serde_json`, with the same
/// result either way.
pub(crate) fn parse_authentication_json(
    text: &str,
    config: &RelyingPartyConfig,
) -> Result<AuthenticationResponseJson> {
    if text.len() > config.limits.attestation_object {
        return Err(Error::webauthn(WebAuthnFailure::TooLarge("response JSON")));
    }
    match super::response_text::parse_authentication(text) {
        Some(response) => Ok(response),
        None => parse_json(text, config.limits.attestation_object),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, max_len: usize) -> Result<T> {
    if text.len() > max_len {
        return Err(Error::webauthn(WebAuthnFailure::TooLarge("response JSON")));
    }
    serde_json::from_str(text)
        .map_err(|_| Error::webauthn(WebAuthnFailure::Malformed("response JSON")))
}

/// Verifies an assertion against an already-decoded credential, synchronously and with no store:
/// every check of WebAuthn Level 3 §7.2 under `config`. The caller must make sure `state` is used
/// once and must save the returned sign count.
pub fn verify_assertion(
    config: &RelyingPartyConfig,
    state: &AuthenticationState,
    credential: &ParsedCredential,
    response: &AuthenticationResponseJson,
) -> Result<VerifiedAssertion> {
    ceremony::check_assertion(config, state, credential, response).map_err(Error::webauthn)
}

#[async_trait::async_trait]
impl AuthenticatorVerifier for RelyingParty {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.webauthn.registration.start", skip_all, fields(rp_id = %self.config.rp_id, resident_key = ?request.resident_key), err(Display, level = "info")))]
    async fn start_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<(CreationOptionsJson, RegistrationState)> {
        let challenge = random_array::<32>(self.rng.as_ref())?.to_vec();
        self.start_registration_inner(request, challenge).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.webauthn.registration.finish", skip_all, fields(rp_id = %self.config.rp_id), err(Display, level = "info")))]
    async fn finish_registration(
        &self,
        state: RegistrationState,
        response: &RegistrationResponseJson,
    ) -> Result<RegisteredCredential> {
        self.finish_registration_inner(state, response).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.webauthn.authentication.start", skip_all, fields(rp_id = %self.config.rp_id, discoverable = request.user_id.is_none()), err(Display, level = "info")))]
    async fn start_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<(RequestOptionsJson, AuthenticationState)> {
        let challenge = random_array::<32>(self.rng.as_ref())?.to_vec();
        self.start_authentication_inner(request, challenge).await
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.webauthn.authentication.finish", skip_all, fields(rp_id = %self.config.rp_id, discoverable = state.user_id.is_none()), err(Display, level = "info")))]
    async fn finish_authentication(
        &self,
        state: AuthenticationState,
        response: &AuthenticationResponseJson,
    ) -> Result<VerifiedAssertion> {
        self.finish_authentication_inner(state, response).await
    }
}

#[cfg(feature = "testing")]
impl RelyingParty {
    /// Test hook: starts a registration with a given challenge (to replay a captured response).
    /// Never use it in production: challenges must be random.
    ///
    /// Fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless the
    /// challenge is 16 to 64 bytes: longer ones can never match client data (which is parsed with
    /// a 64-byte bound), shorter ones are below the specification's minimum.
    pub async fn start_registration_with_challenge(
        &self,
        request: RegistrationRequest,
        challenge: Vec<u8>,
    ) -> Result<(CreationOptionsJson, RegistrationState)> {
        check_challenge_len(&challenge)?;
        self.start_registration_inner(request, challenge).await
    }

    /// Test hook: starts an authentication with a given challenge (to replay a captured
    /// response). Never use it in production. The challenge must be 16 to 64 bytes, as for
    /// [`start_registration_with_challenge`](Self::start_registration_with_challenge).
    pub async fn start_authentication_with_challenge(
        &self,
        request: AuthenticationRequest,
        challenge: Vec<u8>,
    ) -> Result<(RequestOptionsJson, AuthenticationState)> {
        check_challenge_len(&challenge)?;
        self.start_authentication_inner(request, challenge).await
    }
}
