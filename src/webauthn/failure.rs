//! [`WebAuthnFailure`]: why a WebAuthn ceremony was refused, one reason per check.

/// Why a WebAuthn ceremony failed. Carried by [`ErrorKind::WebAuthn`](crate::ErrorKind::WebAuthn).
///
/// Each check of WebAuthn Level 3 §7.1 / §7.2 that keyward runs has its own reason, so a host can
/// log precisely and tests can assert exactly which check refused a response.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebAuthnFailure {
    /// The response JSON, CBOR, authenticator data or client data does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// An input exceeded a size or nesting bound.
    #[error("{0} exceeds its size limit")]
    TooLarge(&'static str),
    /// The ceremony state was already used, or is unknown or expired.
    #[error("ceremony state already used, unknown or expired")]
    StateConsumed,
    /// `clientDataJSON.type` is not the ceremony's type.
    #[error("client data type is not the ceremony's type")]
    TypeMismatch,
    /// The challenge in client data is not the one issued.
    #[error("challenge does not match the one issued")]
    ChallengeMismatch,
    /// The origin is not in the allowed list. Carries the origin the client data named (at most
    /// 128 characters, control characters escaped), so a log says which site or port it was.
    #[error("origin {0:?} is not allowed")]
    OriginNotAllowed(String),
    /// The response came from a cross-origin iframe and that is not allowed.
    #[error("cross-origin use is not allowed")]
    CrossOriginNotAllowed,
    /// The top-level origin is not in the allowed list. Carries the top origin received, bounded
    /// and escaped as for [`OriginNotAllowed`](Self::OriginNotAllowed).
    #[error("top origin {0:?} is not allowed")]
    TopOriginNotAllowed(String),
    /// `rpIdHash` is not SHA-256 of the RP id.
    #[error("rpIdHash does not match the relying party id")]
    RpIdHashMismatch,
    /// The user-present flag is not set.
    #[error("user presence flag not set")]
    UserNotPresent,
    /// User verification was required (by policy or by the credential's history) but not done.
    #[error("user verification required but not performed")]
    UserNotVerified,
    /// The backup-state flag is set without the backup-eligible flag.
    #[error("backup state set without backup eligibility")]
    BackupStateWithoutEligibility,
    /// The backup-eligible flag differs from the one registered.
    #[error("backup eligibility changed since registration")]
    BackupEligibilityChanged,
    /// Attested credential data is missing from a registration.
    #[error("attested credential data missing")]
    MissingCredentialData,
    /// The credential's algorithm is not one the RP asked for.
    #[error("credential algorithm was not requested")]
    AlgorithmNotRequested,
    /// The algorithm is not supported.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The public key is malformed, not on its curve, too small, or its kty/alg/crv disagree.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// The signature does not verify.
    #[error("signature does not verify")]
    InvalidSignature,
    /// The credential is unknown.
    #[error("unknown credential")]
    UnknownCredential,
    /// The credential belongs to another user than the one authenticating.
    #[error("credential does not belong to this user")]
    CredentialNotOwned,
    /// The credential is not in the request's allowCredentials.
    #[error("credential was not allowed for this ceremony")]
    CredentialNotAllowed,
    /// The credential id is already registered.
    #[error("credential already registered")]
    CredentialAlreadyRegistered,
    /// The signature counter did not increase: possibly a cloned authenticator.
    #[error("signature counter did not increase: possible cloned authenticator")]
    CounterRegression,
    /// The authenticator did not apply an extension the ceremony enforced (`credProtect` below
    /// the level asked for with `enforce`).
    #[error("the authenticator did not honour the {0} extension")]
    ExtensionNotHonored(&'static str),
    /// The attestation statement format is not supported.
    #[error("unsupported attestation format")]
    UnsupportedAttestationFormat,
    /// The attestation statement does not verify.
    #[error("invalid attestation statement: {0}")]
    InvalidAttestation(&'static str),
    /// The attestation is valid but not trusted under the configured policy.
    #[error("attestation not trusted: {0}")]
    UntrustedAttestation(&'static str),
    /// The attestation format is deliberately refused because its vendor retired it
    /// (`android-safetynet`: Google shut the SafetyNet Attestation API down in January 2025).
    #[error("attestation format {0} is unsupported: deprecated by its vendor")]
    DeprecatedAttestationFormat(&'static str),
}

/// How a received origin is shown in a failure: at most 128 characters; `Debug` formatting of the
/// message escapes control characters, so a hostile origin cannot forge log lines.
#[cfg(feature = "webauthn")]
pub(crate) fn shown_origin(origin: &str) -> String {
    const MAX: usize = 128;
    match origin.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &origin[..cut]),
        None => origin.to_owned(),
    }
}
