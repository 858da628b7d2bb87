//! The checks of WebAuthn Level 3 §7.1 (registration) and §7.2 (authentication) as pure,
//! synchronous functions: no store, no clock reads, no randomness. The relying party wraps them
//! with single-use state and credential storage.

use std::time::SystemTime;

use subtle::ConstantTimeEq;

use super::attestation::{self, AttestationInput};
use super::attestation_object::AttestationObject;
use super::auth_data::{AuthenticatorData, MAX_CREDENTIAL_ID_LEN};
use super::b64::Base64UrlBytes;
use super::client_data::ClientData;
use super::config::{BackupEligibilityPolicy, CounterPolicy, RelyingPartyConfig};
use super::failure::shown_origin;
use super::options::{AuthenticatorAttachment, UserVerification};
use super::verify::CredentialPublicKey;
use super::{
    AuthenticationResponseJson, AuthenticationState, RegisteredCredential,
    RegistrationResponseJson, RegistrationState, VerifiedAssertion, WebAuthnFailure,
};
use crate::error::{Error, Result};

/// A stored credential with its public key decoded once, ready for [`verify_assertion`](super::verify_assertion).
///
/// Build it when the credential is loaded (or keep it cached); every assertion verification then
/// skips COSE decoding and point validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCredential {
    record: RegisteredCredential,
    key: CredentialPublicKey,
}

impl ParsedCredential {
    /// Decodes the record's public key. Fails with [`WebAuthnFailure::InvalidPublicKey`] if the
    /// key does not decode or its algorithm differs from the record's.
    pub fn new(record: RegisteredCredential) -> Result<Self> {
        Self::new_raw(record).map_err(Error::webauthn)
    }

    pub(crate) fn new_raw(record: RegisteredCredential) -> Result<Self, WebAuthnFailure> {
        let key = super::cose::decode(&record.public_key_cose)?;
        if key.algorithm() != record.algorithm {
            return Err(WebAuthnFailure::InvalidPublicKey);
        }
        Ok(ParsedCredential { record, key })
    }

    /// The stored record.
    pub fn record(&self) -> &RegisteredCredential {
        &self.record
    }

    /// The decoded public key.
    pub fn public_key(&self) -> &CredentialPublicKey {
        &self.key
    }

    /// The stored record, by value.
    pub(crate) fn into_record(self) -> RegisteredCredential {
        self.record
    }
}

/// Transports stored with a credential: at most this many, each at most this long.
const MAX_TRANSPORTS: usize = 8;
const MAX_TRANSPORT_LEN: usize = 32;

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// `id` must be the base64url form of `rawId`.
fn check_id(id: &str, raw_id: &[u8]) -> Result<(), WebAuthnFailure> {
    if raw_id.is_empty() || raw_id.len() > MAX_CREDENTIAL_ID_LEN {
        return Err(WebAuthnFailure::TooLarge("credential id"));
    }
    let mut buf = [0u8; MAX_CREDENTIAL_ID_LEN + 3];
    if id.len() > MAX_CREDENTIAL_ID_LEN.div_ceil(3) * 4 {
        return Err(WebAuthnFailure::Malformed("credential id"));
    }
    match super::b64::decode_into(id.as_bytes(), &mut buf) {
        Some(n) if buf.get(..n) == Some(raw_id) => Ok(()),
        _ => Err(WebAuthnFailure::Malformed("credential id")),
    }
}

fn check_client_data(
    config: &RelyingPartyConfig,
    client_data: &ClientData<'_>,
    kind: &str,
    challenge: &[u8],
) -> Result<(), WebAuthnFailure> {
    if client_data.kind() != kind {
        return Err(WebAuthnFailure::TypeMismatch);
    }
    if !client_data.challenge_matches(challenge) {
        return Err(WebAuthnFailure::ChallengeMismatch);
    }
    if !config.origin_allowed(client_data.origin()) {
        return Err(WebAuthnFailure::OriginNotAllowed(shown_origin(
            client_data.origin(),
        )));
    }
    if client_data.cross_origin() && config.top_origins.is_empty() {
        return Err(WebAuthnFailure::CrossOriginNotAllowed);
    }
    if let Some(top) = client_data.top_origin()
        && !config.top_origin_allowed(top)
    {
        return Err(WebAuthnFailure::TopOriginNotAllowed(shown_origin(top)));
    }
    Ok(())
}

fn check_flags(
    auth_data: &AuthenticatorData<'_>,
    uv_required: bool,
    up_required: bool,
) -> Result<(), WebAuthnFailure> {
    if up_required && !auth_data.user_present() {
        return Err(WebAuthnFailure::UserNotPresent);
    }
    if uv_required && !auth_data.user_verified() {
        return Err(WebAuthnFailure::UserNotVerified);
    }
    if auth_data.backed_up() && !auth_data.backup_eligible() {
        return Err(WebAuthnFailure::BackupStateWithoutEligibility);
    }
    Ok(())
}

/// Every check of §7.1 except storage: returns the credential to store.
pub(crate) fn check_registration(
    config: &RelyingPartyConfig,
    state: &RegistrationState,
    response: &RegistrationResponseJson,
    now: SystemTime,
) -> Result<RegisteredCredential, WebAuthnFailure> {
    let limits = &config.limits;
    check_id(&response.id, response.raw_id.as_slice())?;
    let transports = &response.response.transports;
    if transports.len() > MAX_TRANSPORTS || transports.iter().any(|t| t.len() > MAX_TRANSPORT_LEN) {
        return Err(WebAuthnFailure::TooLarge("transports"));
    }
    let client_data_json = response.response.client_data_json.as_slice();
    let client_data = ClientData::parse_raw(client_data_json, limits.client_data_json)?;
    check_client_data(config, &client_data, "webauthn.create", &state.challenge)?;
    let client_data_hash = sha256(client_data_json);

    let object = AttestationObject::parse_raw(
        response.response.attestation_object.as_slice(),
        limits.attestation_object,
    )?;
    let auth_data =
        AuthenticatorData::parse_raw(object.auth_data_bytes(), limits.authenticator_data)?;
    if !bool::from(auth_data.rp_id_hash().ct_eq(&config.rp_id_hash[..])) {
        return Err(WebAuthnFailure::RpIdHashMismatch);
    }
    let uv_required = state.user_verification == UserVerification::Required;
    // Conditional create (automatic passkey upgrade) is the one ceremony where the authenticator
    // may create a credential without a presence test (WebAuthn Level 3 §7.1 step 14).
    check_flags(&auth_data, uv_required, !state.conditional)?;
    let attested = auth_data
        .attested_credential()
        .ok_or(WebAuthnFailure::MissingCredentialData)?;
    let alg = attested.public_key().algorithm();
    if !state.algorithms.contains(&alg) {
        return Err(WebAuthnFailure::AlgorithmNotRequested);
    }
    let outcome = attestation::verify(
        &AttestationInput {
            fmt: object.format(),
            att_stmt: object.statement(),
            auth_data: auth_data.raw(),
            client_data_hash: &client_data_hash,
            aaguid: attested.aaguid(),
            credential_id: attested.credential_id(),
            credential_key_cose: attested.public_key_cose(),
            credential_alg: alg,
            now,
        },
        &config.attestation_policy,
    )?;
    let (extensions, prf) = super::extensions::registration_outputs(
        &state.extensions,
        state.extensions.appid_exclude.is_some(),
        &response.client_extension_results,
        auth_data.extensions(),
    )?;
    let discoverable = response
        .client_extension_results
        .get("credProps")
        .and_then(|p| p.get("rk"))
        .and_then(|rk| rk.as_bool());
    Ok(RegisteredCredential {
        credential_id: attested.credential_id().to_vec(),
        user_id: state.user.id.clone(),
        public_key_cose: attested.public_key_cose().to_vec(),
        algorithm: alg,
        sign_count: auth_data.sign_count(),
        aaguid: attested.aaguid(),
        transports: response.response.transports.clone(),
        user_verified: auth_data.user_verified(),
        backup_eligible: auth_data.backup_eligible(),
        backed_up: auth_data.backed_up(),
        attestation_format: object.format().to_owned(),
        attestation_type: outcome.attestation_type,
        created_at: now,
        discoverable,
        attestation_chain: outcome.chain.into_iter().map(Base64UrlBytes).collect(),
        authenticator_attachment: response
            .authenticator_attachment
            .as_deref()
            .and_then(AuthenticatorAttachment::parse),
        extensions,
        prf,
        user_name: Some(state.user.name.clone()),
        user_display_name: Some(state.user.display_name.clone()),
    })
}

/// Every check of §7.2 for an assertion by `credential`, without touching any store.
pub(crate) fn check_assertion(
    config: &RelyingPartyConfig,
    state: &AuthenticationState,
    credential: &ParsedCredential,
    response: &AuthenticationResponseJson,
) -> Result<VerifiedAssertion, WebAuthnFailure> {
    let limits = &config.limits;
    let record = &credential.record;
    let raw_id = response.raw_id.as_slice();
    check_id(&response.id, raw_id)?;
    if raw_id != record.credential_id.as_slice() {
        return Err(WebAuthnFailure::UnknownCredential);
    }
    let r = &response.response;
    if r.signature.as_slice().len() > limits.signature {
        return Err(WebAuthnFailure::TooLarge("signature"));
    }
    // §7.2 step 5: allowCredentials.
    if !state.allowed_credentials.is_empty()
        && !state
            .allowed_credentials
            .iter()
            .any(|c| c.as_slice() == raw_id)
    {
        return Err(WebAuthnFailure::CredentialNotAllowed);
    }
    // Step 6: the credential belongs to the user (identified before, or by userHandle).
    let user_handle = r
        .user_handle
        .as_ref()
        .map(|h| h.as_slice())
        .filter(|h| !h.is_empty());
    match &state.user_id {
        Some(user_id) => {
            if record.user_id != *user_id || user_handle.is_some_and(|h| h != user_id.as_slice()) {
                return Err(WebAuthnFailure::CredentialNotOwned);
            }
        }
        None => {
            let handle = user_handle.ok_or(WebAuthnFailure::Malformed("userHandle missing"))?;
            if handle != record.user_id.as_slice() {
                return Err(WebAuthnFailure::CredentialNotOwned);
            }
        }
    }
    // Steps 11-16: client data.
    let client_data_json = r.client_data_json.as_slice();
    let client_data = ClientData::parse_raw(client_data_json, limits.client_data_json)?;
    check_client_data(config, &client_data, "webauthn.get", &state.challenge)?;
    // Steps 17-21: authenticator data.
    let auth_data =
        AuthenticatorData::parse_raw(r.authenticator_data.as_slice(), limits.authenticator_data)?;
    // A related origin is accepted for the rp id only, never for a legacy AppID scope.
    let rp_ok = bool::from(auth_data.rp_id_hash().ct_eq(&config.rp_id_hash[..]))
        || (!config.is_related_origin(client_data.origin())
            && state.appid.as_deref().is_some_and(|appid| {
                response.client_extension_results.get("appid")
                    == Some(&serde_json::Value::Bool(true))
                    && bool::from(auth_data.rp_id_hash().ct_eq(&sha256(appid.as_bytes())[..]))
            }));
    if !rp_ok {
        return Err(WebAuthnFailure::RpIdHashMismatch);
    }
    let uv_required = state.user_verification == UserVerification::Required
        || (config.require_uv_after_uv_registration && record.user_verified);
    check_flags(&auth_data, uv_required, true)?;
    let backup_eligibility_changed = auth_data.backup_eligible() != record.backup_eligible;
    if backup_eligibility_changed
        && config.backup_eligibility_policy == BackupEligibilityPolicy::Reject
    {
        return Err(WebAuthnFailure::BackupEligibilityChanged);
    }
    let backup_state_changed = auth_data.backed_up() != record.backed_up;
    // Steps 23-24: signature over authenticatorData || SHA-256(clientDataJSON).
    let client_data_hash = sha256(client_data_json);
    credential.key.verify_assertion(
        config.backend,
        auth_data.raw(),
        &client_data_hash,
        r.signature.as_slice(),
    )?;
    // Step 25: signature counter.
    let new_count = auth_data.sign_count();
    let counter_regressed = counter_regressed(record.sign_count, new_count);
    if counter_regressed && config.counter_policy == CounterPolicy::Reject {
        return Err(WebAuthnFailure::CounterRegression);
    }
    let extensions = super::extensions::assertion_outputs(
        &state.extensions,
        state.appid.is_some(),
        &response.client_extension_results,
        auth_data.extensions(),
    )?;
    Ok(VerifiedAssertion {
        credential_id: record.credential_id.clone(),
        user_id: record.user_id.clone(),
        sign_count: new_count,
        user_verified: auth_data.user_verified(),
        backup_eligible: auth_data.backup_eligible(),
        backed_up: auth_data.backed_up(),
        counter_regressed,
        backup_eligibility_changed,
        backup_state_changed,
        authenticator_attachment: response
            .authenticator_attachment
            .as_deref()
            .and_then(AuthenticatorAttachment::parse),
        extensions,
        user: record.user(),
    })
}

/// §7.2 step 25: a counter that is in use (either side non-zero) must increase.
pub(crate) fn counter_regressed(stored: u32, new: u32) -> bool {
    (stored != 0 || new != 0) && new <= stored
}
