//! `android-safetynet` (WebAuthn Level 3 §8.5): refused by design.
//!
//! Google turned the SafetyNet Attestation API off in January 2025 (deprecated since 2022, in
//! favour of Play Integrity, which WebAuthn does not use). No device can produce a fresh
//! statement any more, its signing certificates (`attest.android.com`) have expired, and the
//! GlobalSign R2 root it chained to expired in 2021. Verifying it would mean trusting expired
//! certificates, so keyward refuses the format with a distinct, typed reason instead of a
//! generic "unsupported" so relying parties can tell the two apart. Chrome on Android sends
//! `android-key` or `none` today.

use super::{AttestationInput, AttestationOutcome};
use crate::webauthn::WebAuthnFailure;

/// Always refuses with [`WebAuthnFailure::DeprecatedAttestationFormat`].
pub(crate) fn verify(_input: &AttestationInput<'_>) -> Result<AttestationOutcome, WebAuthnFailure> {
    Err(WebAuthnFailure::DeprecatedAttestationFormat(
        "android-safetynet",
    ))
}
