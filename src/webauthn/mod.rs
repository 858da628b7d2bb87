//! WebAuthn / passkeys: the [`AuthenticatorVerifier`] trait, its ceremony types, the Level 3
//! JSON forms and the failure reasons.
//!
//! Ceremonies are two-phase. `start_*` returns the options to hand to the browser and a state to
//! keep; `finish_*` consumes the state with the browser's response. The challenge behind a state
//! is also held in the verifier's state store and removed atomically when finishing, so a state or
//! response can be used once only, even across tasks and processes sharing a store.

#[cfg(feature = "webauthn")]
pub mod attestation;
#[cfg(feature = "webauthn")]
mod attestation_object;
#[cfg(feature = "webauthn")]
mod auth_data;
mod b64;
#[cfg(feature = "webauthn")]
mod batch;
#[cfg(feature = "webauthn")]
mod ceremony;
#[cfg(feature = "webauthn")]
mod client_data;
#[cfg(feature = "webauthn")]
mod config;
#[cfg(feature = "webauthn")]
pub(crate) mod cose;
#[cfg(feature = "webauthn")]
mod credentials;
mod extensions;
mod failure;
pub mod json;
mod options;
mod providers;
#[cfg(feature = "webauthn")]
mod response_text;
#[cfg(feature = "webauthn")]
mod rp;
#[cfg(all(feature = "webauthn", any(test, feature = "testing")))]
pub(crate) mod soft;
#[cfg(feature = "webauthn")]
mod verify;

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[cfg(feature = "webauthn")]
pub use attestation_object::AttestationObject;
#[cfg(feature = "webauthn")]
pub use auth_data::{AttestedCredentialData, AuthenticatorData, MAX_CREDENTIAL_ID_LEN, flags};
pub use b64::Base64UrlBytes;
#[cfg(feature = "webauthn")]
pub use batch::{
    BatchAssertion, BatchVerifier, verify_assertion_json, verify_batch, verify_registration,
};
#[cfg(feature = "webauthn")]
pub use ceremony::ParsedCredential;
#[cfg(feature = "webauthn")]
pub use client_data::ClientData;
#[cfg(feature = "webauthn")]
pub use config::{
    BackupEligibilityPolicy, CounterPolicy, Limits, MAX_RELATED_ORIGIN_LABELS, RelyingPartyConfig,
    WELL_KNOWN_WEBAUTHN_PATH,
};
pub use extensions::{
    AssertionExtensionOutputs, AuthenticationExtensions, CredProtect, CredentialProtectionPolicy,
    LargeBlobOutput, LargeBlobRequest, LargeBlobSupport, PrfInput, PrfOutput,
    RegistrationExtensionOutputs, RegistrationExtensions,
};
pub use failure::WebAuthnFailure;
pub use json::{
    AllAcceptedCredentialsSignalJson, AuthenticationResponseJson, CreationOptionsJson,
    CurrentUserDetailsSignalJson, RegistrationResponseJson, RequestOptionsJson,
    UnknownCredentialSignalJson, WellKnownWebAuthnJson,
};
pub use options::{
    AttestationConveyance, AuthenticatorAttachment, PublicKeyCredentialHint,
    ResidentKeyRequirement, UserVerification,
};
pub use providers::{PasskeyProviders, parse_aaguid};
#[cfg(feature = "webauthn")]
pub use rp::{MAX_CREDENTIALS_PER_USER, RelyingParty, verify_assertion};
#[cfg(feature = "webauthn")]
pub use verify::{CredentialPublicKey, SignatureBackend};

/// COSE algorithm identifiers keyward understands.
pub mod alg {
    /// ECDSA P-256 with SHA-256.
    pub const ES256: i64 = -7;
    /// EdDSA (Ed25519).
    pub const EDDSA: i64 = -8;
    /// ECDSA P-384 with SHA-384.
    pub const ES384: i64 = -35;
    /// ECDSA P-521 with SHA-512 (RustCrypto's `p521`; not offered by default).
    pub const ES512: i64 = -36;
    /// ML-DSA-44 (FIPS 204; feature `ml-dsa`, not offered by default).
    pub const ML_DSA_44: i64 = -48;
    /// ML-DSA-65 (FIPS 204; feature `ml-dsa`, not offered by default).
    pub const ML_DSA_65: i64 = -49;
    /// RSASSA-PSS with SHA-256.
    pub const PS256: i64 = -37;
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    pub const RS256: i64 = -257;
    /// RSASSA-PKCS1-v1_5 with SHA-1 (attestation statements only).
    pub const RS1: i64 = -65535;
}

/// A user account as the relying party knows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntity {
    /// The user handle: 1 to 64 opaque bytes, no personal data (generate it randomly once).
    pub id: Vec<u8>,
    /// Account name (`alice@example.com`).
    pub name: String,
    /// Display name (`Alice`).
    pub display_name: String,
}

impl UserEntity {
    /// A user with handle `id`. Fails if the handle is empty or longer than 64 bytes.
    pub fn new(
        id: impl Into<Vec<u8>>,
        name: impl Into<String>,
        display_name: impl Into<String>,
    ) -> Result<Self> {
        let id = id.into();
        if id.is_empty() || id.len() > 64 {
            return Err(Error::invalid_input("user handle must be 1 to 64 bytes"));
        }
        Ok(UserEntity {
            id,
            name: name.into(),
            display_name: display_name.into(),
        })
    }
}

impl fmt::Debug for UserEntity {
    /// The account name is often an email address: masked like one (`a****@example.com`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntity")
            .field("id", &Base64UrlBytes(self.id.clone()))
            .field("name", &crate::normalize::mask(&self.name))
            .finish_non_exhaustive()
    }
}

/// A request to start a registration ceremony.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistrationRequest {
    /// The user registering a credential.
    pub user: UserEntity,
    /// Ask for a discoverable credential (passkey); `None` leaves the browser's default
    /// (`discouraged`).
    pub resident_key: Option<ResidentKeyRequirement>,
    /// Platform or roaming authenticator; `None` accepts both.
    pub authenticator_attachment: Option<AuthenticatorAttachment>,
    /// UI hints, most preferred first.
    pub hints: Vec<PublicKeyCredentialHint>,
    /// Extensions to ask for (`credProps` is always asked for).
    pub extensions: RegistrationExtensions,
    /// User verification for this ceremony; `None` uses the configuration's.
    pub user_verification: Option<UserVerification>,
    /// Attestation conveyance for this ceremony; `None` uses the configuration's.
    pub attestation: Option<AttestationConveyance>,
    /// Preferred attestation statement formats (`attestationFormats`), most preferred first.
    pub attestation_formats: Vec<String>,
    /// Timeout for this ceremony; `None` uses the configuration's.
    pub timeout: Option<std::time::Duration>,
    /// A conditional create (automatic passkey upgrade after a password sign-in): the page
    /// calls `navigator.credentials.create({ mediation: "conditional", publicKey })`, and the
    /// user-present flag is not required (only in this ceremony).
    pub conditional: bool,
}

impl RegistrationRequest {
    /// Registration for `user` with the verifier's defaults.
    pub fn new(user: UserEntity) -> Self {
        RegistrationRequest {
            user,
            resident_key: None,
            authenticator_attachment: None,
            hints: Vec::new(),
            extensions: RegistrationExtensions::default(),
            user_verification: None,
            attestation: None,
            attestation_formats: Vec::new(),
            timeout: None,
            conditional: false,
        }
    }

    /// Overrides the configured user verification for this ceremony.
    pub fn user_verification(mut self, uv: UserVerification) -> Self {
        self.user_verification = Some(uv);
        self
    }

    /// Overrides the configured attestation conveyance for this ceremony.
    pub fn attestation(mut self, conveyance: AttestationConveyance) -> Self {
        self.attestation = Some(conveyance);
        self
    }

    /// Adds a preferred attestation format (`packed`, `tpm`, `android-key`, `apple`,
    /// `fido-u2f`, `none`, ...); unknown names are refused when the ceremony starts.
    pub fn attestation_format(mut self, format: impl Into<String>) -> Self {
        self.attestation_formats.push(format.into());
        self
    }

    /// Overrides the configured timeout for this ceremony (at most 24 hours).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes this a conditional create (see [`conditional`](Self::conditional)).
    pub fn conditional(mut self) -> Self {
        self.conditional = true;
        self
    }

    /// Enables the `prf` extension for the new credential, without evaluating it.
    pub fn prf(mut self) -> Self {
        if self.extensions.prf.is_none() {
            self.extensions.prf = Some(None);
        }
        self
    }

    /// Enables `prf` and evaluates it at creation where the authenticator can (the outputs are in
    /// [`RegisteredCredential::prf`]).
    pub fn prf_eval(mut self, input: PrfInput) -> Self {
        self.extensions.prf = Some(Some(input));
        self
    }

    /// Asks for `largeBlob` support.
    pub fn large_blob(mut self, support: LargeBlobSupport) -> Self {
        self.extensions.large_blob = Some(support);
        self
    }

    /// Asks for a `credProtect` level; with `enforce`, a credential without at least that level
    /// is refused (see [`CredProtect`]).
    pub fn cred_protect(mut self, policy: CredentialProtectionPolicy, enforce: bool) -> Self {
        self.extensions.cred_protect = Some(CredProtect { policy, enforce });
        self
    }

    /// Stores up to 32 bytes with the credential on the authenticator (`credBlob`).
    pub fn cred_blob(mut self, blob: impl Into<Vec<u8>>) -> Self {
        self.extensions.cred_blob = Some(blob.into());
        self
    }

    /// Asks for the authenticator's minimum PIN length (`minPinLength`).
    pub fn min_pin_length(mut self) -> Self {
        self.extensions.min_pin_length = true;
        self
    }

    /// Excludes U2F credentials registered under this FIDO AppID too (`appidExclude`). Without
    /// it, the configured [`appid`](RelyingPartyConfig::appid) is used.
    pub fn appid_exclude(mut self, appid: impl Into<String>) -> Self {
        self.extensions.appid_exclude = Some(appid.into());
        self
    }

    /// Sets the resident-key requirement.
    pub fn resident_key(mut self, requirement: ResidentKeyRequirement) -> Self {
        self.resident_key = Some(requirement);
        self
    }

    /// Sets the authenticator attachment.
    pub fn authenticator_attachment(mut self, attachment: AuthenticatorAttachment) -> Self {
        self.authenticator_attachment = Some(attachment);
        self
    }

    /// Adds a UI hint.
    pub fn hint(mut self, hint: PublicKeyCredentialHint) -> Self {
        self.hints.push(hint);
        self
    }
}

/// The server-side state of a registration ceremony. Keep it (in the user's session) between
/// `start_registration` and `finish_registration`; finishing consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationState {
    pub(crate) ceremony_id: String,
    pub(crate) challenge: Vec<u8>,
    pub(crate) user: UserEntity,
    /// Serialized as its WebAuthn string (`"required"`, `"preferred"`, `"discouraged"`).
    pub(crate) user_verification: UserVerification,
    pub(crate) algorithms: Vec<i64>,
    pub(crate) created_at_unix: u64,
    /// The extensions asked for (the configured AppID filled in for `appidExclude`).
    #[serde(default)]
    pub(crate) extensions: RegistrationExtensions,
    /// The ceremony's timeout in seconds, when the request set one.
    #[serde(default)]
    pub(crate) timeout_secs: Option<u64>,
    /// A conditional create: user presence not required.
    #[serde(default)]
    pub(crate) conditional: bool,
}

/// A request to start an authentication ceremony.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuthenticationRequest {
    /// The user handle of the account signing in; `None` for a discoverable (usernameless)
    /// ceremony where the authenticator picks the credential.
    pub user_id: Option<Vec<u8>>,
    /// Restricts `allowCredentials` to this one credential of the user (needed for a
    /// `largeBlob` write).
    pub credential_id: Option<Vec<u8>>,
    /// Extensions to ask for.
    pub extensions: AuthenticationExtensions,
    /// User verification for this ceremony; `None` uses the configuration's (a credential
    /// registered with UV still requires it under `require_uv_after_uv_registration`).
    pub user_verification: Option<UserVerification>,
    /// UI hints, most preferred first.
    pub hints: Vec<PublicKeyCredentialHint>,
    /// Timeout for this ceremony; `None` uses the configuration's.
    pub timeout: Option<std::time::Duration>,
}

impl AuthenticationRequest {
    /// Authentication of a known user: `allowCredentials` lists the user's credentials.
    pub fn for_user(user_id: impl Into<Vec<u8>>) -> Self {
        AuthenticationRequest {
            user_id: Some(user_id.into()),
            ..AuthenticationRequest::default()
        }
    }

    /// Authentication with one given credential of a known user.
    pub fn for_credential(user_id: impl Into<Vec<u8>>, credential_id: impl Into<Vec<u8>>) -> Self {
        AuthenticationRequest {
            user_id: Some(user_id.into()),
            credential_id: Some(credential_id.into()),
            ..AuthenticationRequest::default()
        }
    }

    /// Usernameless authentication with a discoverable credential.
    pub fn discoverable() -> Self {
        AuthenticationRequest::default()
    }

    /// Evaluates `prf` with these inputs for whichever credential signs.
    pub fn prf_eval(mut self, input: PrfInput) -> Self {
        self.extensions.prf_eval = Some(input);
        self
    }

    /// Evaluates `prf` with these inputs if `credential_id` signs (`evalByCredential`). The
    /// credential must be in the request's `allowCredentials` (so not in a discoverable
    /// request), or starting the ceremony fails.
    pub fn prf_eval_by_credential(
        mut self,
        credential_id: impl Into<Vec<u8>>,
        input: PrfInput,
    ) -> Self {
        self.extensions
            .prf_eval_by_credential
            .insert(credential_id.into(), input);
        self
    }

    /// Reads the credential's large blob.
    pub fn large_blob_read(mut self) -> Self {
        self.extensions.large_blob = Some(LargeBlobRequest::Read);
        self
    }

    /// Writes the credential's large blob (only with [`for_credential`](Self::for_credential)).
    pub fn large_blob_write(mut self, blob: impl Into<Vec<u8>>) -> Self {
        self.extensions.large_blob = Some(LargeBlobRequest::Write(blob.into()));
        self
    }

    /// Returns the blob stored with `credBlob` at registration.
    pub fn get_cred_blob(mut self) -> Self {
        self.extensions.get_cred_blob = true;
        self
    }

    /// Overrides the configured user verification for this ceremony.
    pub fn user_verification(mut self, uv: UserVerification) -> Self {
        self.user_verification = Some(uv);
        self
    }

    /// Adds a UI hint.
    pub fn hint(mut self, hint: PublicKeyCredentialHint) -> Self {
        self.hints.push(hint);
        self
    }

    /// Overrides the configured timeout for this ceremony (at most 24 hours).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The server-side state of an authentication ceremony; finishing consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationState {
    pub(crate) ceremony_id: String,
    pub(crate) challenge: Vec<u8>,
    pub(crate) user_id: Option<Vec<u8>>,
    pub(crate) allowed_credentials: Vec<Vec<u8>>,
    /// Serialized as its WebAuthn string (`"required"`, `"preferred"`, `"discouraged"`).
    pub(crate) user_verification: UserVerification,
    pub(crate) created_at_unix: u64,
    /// The FIDO AppID the request carried, if any.
    #[serde(default)]
    pub(crate) appid: Option<String>,
    /// The extensions asked for.
    #[serde(default)]
    pub(crate) extensions: AuthenticationExtensions,
    /// The ceremony's timeout in seconds, when the request set one.
    #[serde(default)]
    pub(crate) timeout_secs: Option<u64>,
}

#[cfg(feature = "testing")]
impl AuthenticationState {
    /// Test hook: a state for a given challenge, for the store-free
    /// [`verify_assertion`] path (benchmarks, replayed
    /// captures). Never use it in production: challenges must be random and single-use.
    pub fn for_testing(
        challenge: Vec<u8>,
        user_id: Option<Vec<u8>>,
        allowed_credentials: Vec<Vec<u8>>,
        user_verification: UserVerification,
    ) -> Self {
        AuthenticationState {
            ceremony_id: String::new(),
            challenge,
            user_id,
            allowed_credentials,
            user_verification,
            created_at_unix: 0,
            appid: None,
            extensions: AuthenticationExtensions::default(),
            timeout_secs: None,
        }
    }
}

/// How an attestation was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AttestationType {
    /// No attestation (`none` format).
    None,
    /// Signed by the credential key itself.
    SelfAttestation,
    /// Basic attestation with a certificate chain.
    Basic,
    /// Attestation CA (TPM AIK).
    AttCa,
    /// Anonymization CA (Apple).
    AnonCa,
}

/// A credential registered by `finish_registration`, as stored.
///
/// Non-exhaustive: build one for [`RelyingParty::import_credential`] with
/// [`RegisteredCredential::imported`] and set the public fields.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RegisteredCredential {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The user handle the credential belongs to.
    pub user_id: Vec<u8>,
    /// The COSE_Key bytes of the public key.
    pub public_key_cose: Vec<u8>,
    /// COSE algorithm of the key.
    pub algorithm: i64,
    /// Signature counter last seen.
    pub sign_count: u32,
    /// The authenticator model (all zero when not attested).
    pub aaguid: [u8; 16],
    /// Transports the browser reported.
    pub transports: Vec<String>,
    /// Whether the user was verified at registration.
    pub user_verified: bool,
    /// Backup eligible (multi-device credential).
    pub backup_eligible: bool,
    /// Backed up (synced) at the last ceremony.
    pub backed_up: bool,
    /// Attestation statement format (`none`, `packed`, ...).
    pub attestation_format: String,
    /// How the attestation was established.
    pub attestation_type: AttestationType,
    /// Registration time.
    pub created_at: SystemTime,
    /// Whether the credential is discoverable (the `credProps.rk` extension output), when the
    /// browser said.
    #[serde(default)]
    pub discoverable: Option<bool>,
    /// The attestation certificate chain (`x5c`, DER, leaf first) the statement was verified
    /// with; empty for `none` and self attestation. Kept so a host can re-evaluate trust later
    /// (a new root, a revoked intermediate) without asking the user to register again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestation_chain: Vec<Base64UrlBytes>,
    /// The authenticator attachment the browser reported at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<AuthenticatorAttachment>,
    /// Extension outputs of the registration (client results and signed authenticator outputs).
    #[serde(default)]
    pub extensions: RegistrationExtensionOutputs,
    /// PRF outputs when the registration evaluated `prf` (secret; only in the value
    /// `finish_registration` returns, never stored, so `None` when read back from the store).
    #[serde(skip)]
    pub prf: Option<PrfOutput>,
    /// The user's account name ([`UserEntity::name`]) as of the user's latest registration;
    /// `None` for a credential imported without it or stored by keyward 0.1 before it kept
    /// names. A sign-in returns it in [`VerifiedAssertion::user`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The user's display name ([`UserEntity::display_name`]), kept as `user_name` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
}

#[cfg(feature = "webauthn")]
impl RegisteredCredential {
    /// A credential registered elsewhere (a migration), to pass to
    /// [`RelyingParty::import_credential`]: the algorithm is read from the COSE key, the other
    /// fields start empty (no attestation, not verified, not backed up, created at the Unix
    /// epoch) and may be set afterwards.
    ///
    /// Fails with [`WebAuthnFailure::InvalidPublicKey`] or
    /// [`WebAuthnFailure::UnsupportedAlgorithm`] if the key does not decode.
    pub fn imported(
        credential_id: impl Into<Vec<u8>>,
        user_id: impl Into<Vec<u8>>,
        public_key_cose: impl Into<Vec<u8>>,
        sign_count: u32,
    ) -> Result<Self> {
        let public_key_cose = public_key_cose.into();
        let algorithm = CredentialPublicKey::from_cose(&public_key_cose)?.algorithm();
        Ok(RegisteredCredential {
            credential_id: credential_id.into(),
            user_id: user_id.into(),
            public_key_cose,
            algorithm,
            sign_count,
            aaguid: [0; 16],
            transports: Vec::new(),
            user_verified: false,
            backup_eligible: false,
            backed_up: false,
            attestation_format: "none".to_owned(),
            attestation_type: AttestationType::None,
            created_at: SystemTime::UNIX_EPOCH,
            discoverable: None,
            attestation_chain: Vec::new(),
            authenticator_attachment: None,
            extensions: RegistrationExtensionOutputs::default(),
            prf: None,
            user_name: None,
            user_display_name: None,
        })
    }

    /// The stored user entity: the user handle with the names kept at registration, if any.
    pub fn user(&self) -> Option<UserEntity> {
        Some(UserEntity {
            id: self.user_id.clone(),
            name: self.user_name.clone()?,
            display_name: self.user_display_name.clone().unwrap_or_default(),
        })
    }
}

impl fmt::Debug for RegisteredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredCredential")
            .field("credential_id", &Base64UrlBytes(self.credential_id.clone()))
            .field("algorithm", &self.algorithm)
            .field("sign_count", &self.sign_count)
            .field("attestation_format", &self.attestation_format)
            .field("attestation_type", &self.attestation_type)
            .field("user_verified", &self.user_verified)
            .field("backup_eligible", &self.backup_eligible)
            .field("backed_up", &self.backed_up)
            .field("authenticator_attachment", &self.authenticator_attachment)
            .field("extensions", &self.extensions)
            .field("prf", &self.prf)
            .finish_non_exhaustive()
    }
}

/// Proof that an assertion verified: only `finish_authentication` builds it (a verifier written
/// outside the crate builds it with [`backend::verified_assertion`](crate::backend::verified_assertion)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) user_id: Vec<u8>,
    pub(crate) sign_count: u32,
    pub(crate) user_verified: bool,
    pub(crate) backup_eligible: bool,
    pub(crate) backed_up: bool,
    pub(crate) counter_regressed: bool,
    pub(crate) backup_eligibility_changed: bool,
    pub(crate) backup_state_changed: bool,
    pub(crate) authenticator_attachment: Option<AuthenticatorAttachment>,
    pub(crate) extensions: AssertionExtensionOutputs,
    pub(crate) user: Option<UserEntity>,
}

impl VerifiedAssertion {
    /// The credential that signed.
    pub fn credential_id(&self) -> &[u8] {
        &self.credential_id
    }
    /// The user the credential belongs to.
    pub fn user_id(&self) -> &[u8] {
        &self.user_id
    }
    /// The user entity stored with the credential (handle, account name, display name, as of
    /// the user's latest registration), so a usernameless sign-in tells the host who signed in
    /// without a map of user handles to names. `None` when the credential was imported without
    /// names or stored before keyward kept them.
    pub fn user(&self) -> Option<&UserEntity> {
        self.user.as_ref()
    }
    /// The new signature counter.
    pub fn sign_count(&self) -> u32 {
        self.sign_count
    }
    /// Whether the user was verified (PIN, biometrics).
    pub fn user_verified(&self) -> bool {
        self.user_verified
    }
    /// Backup eligible.
    pub fn backup_eligible(&self) -> bool {
        self.backup_eligible
    }
    /// Backed up.
    pub fn backed_up(&self) -> bool {
        self.backed_up
    }
    /// True when the counter did not increase and the policy only reports it: a possible cloned
    /// authenticator the host may want to investigate.
    pub fn counter_regressed(&self) -> bool {
        self.counter_regressed
    }
    /// The backup-eligible flag differs from the stored one (a device-bound credential became
    /// synced, or the reverse), accepted under [`BackupEligibilityPolicy::Report`]; the stored
    /// flag now has the new value.
    pub fn backup_eligibility_changed(&self) -> bool {
        self.backup_eligibility_changed
    }
    /// The backed-up flag differs from the last ceremony's (the credential was synced, or is no
    /// longer); the stored flag now has the new value.
    pub fn backup_state_changed(&self) -> bool {
        self.backup_state_changed
    }
    /// The authenticator attachment the browser reported.
    pub fn authenticator_attachment(&self) -> Option<AuthenticatorAttachment> {
        self.authenticator_attachment
    }
    /// Extension outputs (PRF outputs and large blobs are [`Secret`](crate::Secret)s).
    pub fn extensions(&self) -> &AssertionExtensionOutputs {
        &self.extensions
    }
    /// The PRF outputs, when the request evaluated `prf` and the authenticator answered.
    pub fn prf(&self) -> Option<&PrfOutput> {
        self.extensions.prf.as_ref()
    }
}

/// A WebAuthn relying party.
///
/// # Contract
/// - `start_*` issues a fresh 32-byte random challenge, records it in the state store with the
///   ceremony timeout as TTL, and returns the browser options with a state.
/// - `finish_*` takes the recorded challenge out of the store atomically (a second finish with
///   the same state fails with [`WebAuthnFailure::StateConsumed`]), runs every check of WebAuthn
///   Level 3 §7.1 / §7.2, and fails with [`ErrorKind::WebAuthn`](crate::ErrorKind::WebAuthn) and
///   the reason of the first check that refused.
/// - Registered credentials, sign counts and backup state live in the state store.
///
/// Hold it as `Arc<dyn AuthenticatorVerifier>`.
#[async_trait]
pub trait AuthenticatorVerifier: Send + Sync + fmt::Debug {
    /// Starts a registration ceremony.
    async fn start_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<(CreationOptionsJson, RegistrationState)>;

    /// Finishes a registration: verifies the response and stores the credential.
    async fn finish_registration(
        &self,
        state: RegistrationState,
        response: &RegistrationResponseJson,
    ) -> Result<RegisteredCredential>;

    /// Starts an authentication ceremony.
    async fn start_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<(RequestOptionsJson, AuthenticationState)>;

    /// Finishes an authentication: verifies the assertion and updates the stored credential.
    async fn finish_authentication(
        &self,
        state: AuthenticationState,
        response: &AuthenticationResponseJson,
    ) -> Result<VerifiedAssertion>;
}
