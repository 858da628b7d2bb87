//! Constructors for **implementors** of keyward's traits. Route handlers never need this module.
//!
//! The proofs keyward hands out ([`Approved`], [`VerifiedAssertion`]) can only be built by a
//! check that succeeded, so a host cannot forget to check. A backend written outside the crate
//! (your own OTP service, another WebAuthn library behind [`AuthenticatorVerifier`]) still has to
//! return them, and these functions are how: like rustls's `client::danger`, the name of the
//! module is the warning. Calling one of them is a promise that the check it stands for really
//! happened; a host that builds a proof here to skip a check has disabled its own second factor.
//!
//! The ceremony states ([`RegistrationState`], [`AuthenticationState`]) are not proofs (they are
//! serializable data a host keeps between the two phases); their parts are here so that a
//! verifier outside the crate can write and read them.
//!
//! [`OtpProvider`](crate::OtpProvider), [`TotpProvider`](crate::totp::TotpProvider),
//! [`KeySplitStore`](crate::KeySplitStore), [`VideoTokenIssuer`](crate::VideoTokenIssuer) and
//! [`StateStore`](crate::store::StateStore) need nothing from here beyond [`approved`] and
//! [`totp_approved`]: their request and answer types have public constructors. `tests/external_impls.rs` implements every trait from outside the crate.
//!
//! ```
//! use keyward::backend;
//! use keyward::otp::{Channel, Verification, VerificationStatus};
//!
//! // A backend whose own service approved the code:
//! let mut verification = Verification::new("VE1", "+15017122661", Channel::Sms);
//! verification.status = VerificationStatus::Approved;
//! let proof = backend::approved(verification)?;
//! assert_eq!(proof.to(), "+15017122661");
//!
//! // Never for a verification that is not approved:
//! let pending = Verification::new("VE2", "+15017122661", Channel::Sms);
//! assert!(backend::approved(pending).is_err());
//! # Ok::<(), keyward::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::otp::{Approved, Verification, VerificationStatus};
use crate::totp::TotpApproved;
use crate::webauthn::{
    AssertionExtensionOutputs, AuthenticationExtensions, AuthenticationState,
    AuthenticatorAttachment, RegistrationExtensions, RegistrationState, UserEntity,
    UserVerification, VerifiedAssertion,
};

#[cfg(doc)]
use crate::webauthn::AuthenticatorVerifier;

/// The proof that `verification` was approved, for an [`OtpProvider`](crate::OtpProvider)
/// backend. Fails with [`InvalidInput`](crate::ErrorKind::InvalidInput) unless the
/// verification's status is `approved`.
///
/// Call it only after the code was checked (by your service or your own comparison, in constant
/// time).
pub fn approved(verification: Verification) -> Result<Approved> {
    if verification.status != VerificationStatus::Approved {
        return Err(Error::invalid_input(
            "an approval proof needs a verification whose status is approved",
        ));
    }
    Ok(Approved::new_unchecked(verification))
}

/// The proof that a TOTP or HOTP code of `factor_sid` was accepted for `identity`, for a
/// [`TotpProvider`](crate::totp::TotpProvider) backend (this replaces
/// `TotpApproved::from_backend`).
///
/// Call it only after the code was compared in constant time against the factor's window, its
/// time step (or counter) was recorded as used, and the attempt was counted.
///
/// ```
/// let proof = keyward::backend::totp_approved("user-42", "YF0123");
/// assert_eq!((proof.identity(), proof.factor_sid()), ("user-42", "YF0123"));
/// ```
pub fn totp_approved(identity: impl Into<String>, factor_sid: impl Into<String>) -> TotpApproved {
    TotpApproved::new_unchecked(identity, factor_sid)
}

/// What a [`VerifiedAssertion`] says, for an [`AuthenticatorVerifier`] backend.
///
/// ```
/// use keyward::backend::{self, AssertionParts};
/// let mut parts = AssertionParts::new(b"credential-id".to_vec(), b"user-1".to_vec(), 7);
/// parts.user_verified = true;
/// let proof = backend::verified_assertion(parts);
/// assert_eq!(proof.sign_count(), 7);
/// assert!(proof.user_verified());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssertionParts {
    /// The credential that signed.
    pub credential_id: Vec<u8>,
    /// The user the credential belongs to.
    pub user_id: Vec<u8>,
    /// The new signature counter.
    pub sign_count: u32,
    /// Whether the user was verified (PIN, biometrics).
    pub user_verified: bool,
    /// Backup eligible.
    pub backup_eligible: bool,
    /// Backed up.
    pub backed_up: bool,
    /// The counter did not increase and the policy only reports it.
    pub counter_regressed: bool,
    /// The backup-eligible flag changed since registration (reported, not refused).
    pub backup_eligibility_changed: bool,
    /// The backed-up flag changed since the last ceremony.
    pub backup_state_changed: bool,
    /// The authenticator attachment the browser reported.
    pub authenticator_attachment: Option<AuthenticatorAttachment>,
    /// Extension outputs.
    pub extensions: AssertionExtensionOutputs,
    /// The user entity the verifier keeps with the credential, if it keeps one.
    pub user: Option<UserEntity>,
}

impl AssertionParts {
    /// An assertion by `credential_id` of `user_id` at counter `sign_count`; every flag false.
    pub fn new(credential_id: Vec<u8>, user_id: Vec<u8>, sign_count: u32) -> Self {
        AssertionParts {
            credential_id,
            user_id,
            sign_count,
            user_verified: false,
            backup_eligible: false,
            backed_up: false,
            counter_regressed: false,
            backup_eligibility_changed: false,
            backup_state_changed: false,
            authenticator_attachment: None,
            extensions: AssertionExtensionOutputs::default(),
            user: None,
        }
    }
}

/// The proof that an assertion verified, for an [`AuthenticatorVerifier`] backend.
///
/// Call it only after the signature, challenge, origin, RP id hash and flags were checked, and
/// the challenge consumed.
pub fn verified_assertion(parts: AssertionParts) -> VerifiedAssertion {
    VerifiedAssertion {
        credential_id: parts.credential_id,
        user_id: parts.user_id,
        sign_count: parts.sign_count,
        user_verified: parts.user_verified,
        backup_eligible: parts.backup_eligible,
        backed_up: parts.backed_up,
        counter_regressed: parts.counter_regressed,
        backup_eligibility_changed: parts.backup_eligibility_changed,
        backup_state_changed: parts.backup_state_changed,
        authenticator_attachment: parts.authenticator_attachment,
        extensions: parts.extensions,
        user: parts.user,
    }
}

/// The contents of a [`RegistrationState`], to write one ([`registration_state`]) or read one
/// back ([`registration_state_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationStateParts {
    /// Identifies the ceremony in the verifier's state store.
    pub ceremony_id: String,
    /// The challenge sent to the browser.
    pub challenge: Vec<u8>,
    /// The user registering.
    pub user: UserEntity,
    /// The user-verification requirement of the ceremony.
    pub user_verification: UserVerification,
    /// The COSE algorithms offered, in preference order.
    pub algorithms: Vec<i64>,
    /// When the ceremony started (Unix seconds).
    pub created_at_unix: u64,
    /// The extensions asked for.
    pub extensions: RegistrationExtensions,
    /// The ceremony's timeout in seconds when the request set one; `None` means the
    /// verifier's configured timeout.
    pub timeout_secs: Option<u64>,
    /// A conditional create (the user-present flag is not required).
    pub conditional: bool,
}

impl RegistrationStateParts {
    /// A ceremony `ceremony_id` for `user` with `challenge`, started at `created_at_unix`; user
    /// verification `preferred`, no algorithms listed, the configured timeout, not conditional.
    pub fn new(
        ceremony_id: impl Into<String>,
        challenge: Vec<u8>,
        user: UserEntity,
        created_at_unix: u64,
    ) -> Self {
        RegistrationStateParts {
            ceremony_id: ceremony_id.into(),
            challenge,
            user,
            user_verification: UserVerification::Preferred,
            algorithms: Vec::new(),
            created_at_unix,
            extensions: RegistrationExtensions::default(),
            timeout_secs: None,
            conditional: false,
        }
    }
}

/// A [`RegistrationState`] made of `parts`.
pub fn registration_state(parts: RegistrationStateParts) -> RegistrationState {
    RegistrationState {
        ceremony_id: parts.ceremony_id,
        challenge: parts.challenge,
        user: parts.user,
        user_verification: parts.user_verification,
        algorithms: parts.algorithms,
        created_at_unix: parts.created_at_unix,
        extensions: parts.extensions,
        timeout_secs: parts.timeout_secs,
        conditional: parts.conditional,
    }
}

/// The parts of `state`.
pub fn registration_state_parts(state: RegistrationState) -> RegistrationStateParts {
    RegistrationStateParts {
        ceremony_id: state.ceremony_id,
        challenge: state.challenge,
        user: state.user,
        user_verification: state.user_verification,
        algorithms: state.algorithms,
        created_at_unix: state.created_at_unix,
        extensions: state.extensions,
        timeout_secs: state.timeout_secs,
        conditional: state.conditional,
    }
}

/// The contents of an [`AuthenticationState`], to write one ([`authentication_state`]) or read
/// one back ([`authentication_state_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthenticationStateParts {
    /// Identifies the ceremony in the verifier's state store.
    pub ceremony_id: String,
    /// The challenge sent to the browser.
    pub challenge: Vec<u8>,
    /// The user signing in; `None` for a discoverable (usernameless) ceremony.
    pub user_id: Option<Vec<u8>>,
    /// The credential ids offered in `allowCredentials`.
    pub allowed_credentials: Vec<Vec<u8>>,
    /// The user-verification requirement of the ceremony.
    pub user_verification: UserVerification,
    /// When the ceremony started (Unix seconds).
    pub created_at_unix: u64,
    /// The FIDO AppID the request carried, if any.
    pub appid: Option<String>,
    /// The extensions asked for.
    pub extensions: AuthenticationExtensions,
    /// The ceremony's timeout in seconds when the request set one; `None` means the
    /// verifier's configured timeout.
    pub timeout_secs: Option<u64>,
}

impl AuthenticationStateParts {
    /// A ceremony `ceremony_id` with `challenge` for `user_id` (or discoverable), started at
    /// `created_at_unix`; user verification `preferred`, no credentials listed, no AppID, the
    /// configured timeout.
    pub fn new(
        ceremony_id: impl Into<String>,
        challenge: Vec<u8>,
        user_id: Option<Vec<u8>>,
        created_at_unix: u64,
    ) -> Self {
        AuthenticationStateParts {
            ceremony_id: ceremony_id.into(),
            challenge,
            user_id,
            allowed_credentials: Vec::new(),
            user_verification: UserVerification::Preferred,
            created_at_unix,
            appid: None,
            extensions: AuthenticationExtensions::default(),
            timeout_secs: None,
        }
    }
}

/// An [`AuthenticationState`] made of `parts`.
pub fn authentication_state(parts: AuthenticationStateParts) -> AuthenticationState {
    AuthenticationState {
        ceremony_id: parts.ceremony_id,
        challenge: parts.challenge,
        user_id: parts.user_id,
        allowed_credentials: parts.allowed_credentials,
        user_verification: parts.user_verification,
        created_at_unix: parts.created_at_unix,
        appid: parts.appid,
        extensions: parts.extensions,
        timeout_secs: parts.timeout_secs,
    }
}

/// The parts of `state`.
pub fn authentication_state_parts(state: AuthenticationState) -> AuthenticationStateParts {
    AuthenticationStateParts {
        ceremony_id: state.ceremony_id,
        challenge: state.challenge,
        user_id: state.user_id,
        allowed_credentials: state.allowed_credentials,
        user_verification: state.user_verification,
        created_at_unix: state.created_at_unix,
        appid: state.appid,
        extensions: state.extensions,
        timeout_secs: state.timeout_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_parts() {
        let user = UserEntity::new(b"u1".to_vec(), "alice", "Alice").unwrap();
        let mut parts = RegistrationStateParts::new("c1", vec![1; 32], user, 1_700_000_000);
        parts.algorithms = vec![-7, -257];
        let state = registration_state(parts.clone());
        assert_eq!(registration_state_parts(state), parts);

        let mut parts = AuthenticationStateParts::new("c2", vec![2; 32], None, 1_700_000_001);
        parts.allowed_credentials = vec![b"cred".to_vec()];
        parts.appid = Some("https://example.com/appid.json".into());
        let state = authentication_state(parts.clone());
        assert_eq!(authentication_state_parts(state), parts);
    }

    /// The parts used to drop the request's timeout and the conditional flag: a conditional
    /// create rebuilt from its parts then required user presence, and a custom timeout fell back
    /// to the configured one.
    #[cfg(feature = "webauthn")]
    #[tokio::test]
    async fn relying_party_states_survive_their_parts() {
        use std::sync::Arc;
        use std::time::Duration;

        use crate::AuthenticatorVerifier;
        use crate::store::MemoryStore;
        use crate::webauthn::{
            AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig,
        };

        let config = RelyingPartyConfig::new("example.com", "Ex", "https://example.com").unwrap();
        let rp = RelyingParty::new(config, Arc::new(MemoryStore::new()));
        let user = UserEntity::new(b"u1".to_vec(), "alice", "Alice").unwrap();
        let request = RegistrationRequest::new(user)
            .conditional()
            .timeout(Duration::from_secs(90))
            .user_verification(UserVerification::Required);
        let (_, state) = rp.start_registration(request).await.unwrap();
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["user_verification"], "required");
        let parts = registration_state_parts(state.clone());
        assert!(parts.conditional);
        assert_eq!(parts.timeout_secs, Some(90));
        assert_eq!(parts.user_verification, UserVerification::Required);
        assert_eq!(registration_state(parts), state);

        let request = AuthenticationRequest::discoverable()
            .timeout(Duration::from_secs(45))
            .user_verification(UserVerification::Discouraged);
        let (_, state) = rp.start_authentication(request).await.unwrap();
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["user_verification"], "discouraged");
        let parts = authentication_state_parts(state.clone());
        assert_eq!(parts.timeout_secs, Some(45));
        assert_eq!(parts.user_verification, UserVerification::Discouraged);
        assert_eq!(authentication_state(parts), state);
    }

    #[test]
    fn assertion_parts_are_what_the_proof_reports() {
        let mut parts = AssertionParts::new(b"c".to_vec(), b"u".to_vec(), 3);
        parts.backup_eligible = true;
        parts.backed_up = true;
        parts.counter_regressed = true;
        let proof = verified_assertion(parts);
        assert_eq!(proof.credential_id(), b"c");
        assert_eq!(proof.user_id(), b"u");
        assert!(proof.backup_eligible() && proof.backed_up() && proof.counter_regressed());
        assert!(!proof.user_verified());
    }
}
