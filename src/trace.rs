//! What keyward tells [`tracing`](https://docs.rs/tracing) (feature `tracing`, on by default).
//!
//! Every operation is a span named `keyward.<area>.<operation>` with masked fields, and every
//! refusal is an event inside it:
//!
//! | span | fields |
//! |---|---|
//! | `keyward.otp.start`, `.check`, `.fetch`, `.cancel` | `backend`, `channel`, `to` (masked: `**********61`, `a****@example.com`) or `sid` |
//! | `keyward.totp.enroll`, `.confirm`, `.check`, `.remove` | `backend`, `identity` (masked), `factor_sid` |
//! | `keyward.webauthn.registration.start`, `.finish`, `keyward.webauthn.authentication.start`, `.finish` | `rp_id`, `discoverable` |
//! | `keyward.video.issue` | `backend`, `identity` (masked), `room`, `factor`, `ttl_secs` |
//! | `keyward.gate.login`, `.verify`, `.admit_passkey` | `identity` (masked) |
//! | `keyward.ssks.open_session`, `.validate_challenge`, `.push`, `.search`, `keyward.tmr.session` | `backend`, `auth_factor` (masked) |
//! | `keyward.store.get`, `.insert`, `.put`, `.compare_and_swap`, `.take`, `.increment` (level `DEBUG`) | `engine`, `key` (role, namespace and first part only: `e:otp:attempts`) |
//!
//! A refused operation (any `Err`) ends with one `INFO` event in its span whose `error` field is
//! the error's `Display`: the [`ErrorKind`](crate::ErrorKind) name, then the message, which for
//! a WebAuthn refusal is the [`WebAuthnFailure`](crate::WebAuthnFailure)
//! (`webauthn: challenge does not match the one issued`). A wrong one-time code, which is an
//! answer rather than an error, is an `INFO` event `code rejected` with `kind = "rejected"`.
//! Store calls carry no refusal event of their own: a store failure surfaces as the refusal of
//! the operation that called it.
//!
//! Never recorded: secrets (keys, codes, JWTs, session ids, challenges), store values, and
//! phone numbers or email addresses except masked. `tests/redaction.rs` collects every field of
//! every span and event across the flows and checks that none of them appears.
//!
//! Without a subscriber, a disabled span or event costs one relaxed atomic load; `tracing`
//! itself is already built by the HTTP stack (`h2`, `hyper-util`) under the default features.

use crate::error::Result;
use crate::otp::CheckOutcome;
#[cfg(feature = "tracing")]
use crate::store::Key;
use crate::totp::TotpOutcome;

/// Masks a phone number or an email address for a span field (`normalize::mask`).
#[cfg(feature = "tracing")]
pub(crate) fn masked(destination: &str) -> String {
    crate::normalize::mask(destination)
}

/// The part of a store key a span shows: its role, namespace and first part (`e:otp:attempts`),
/// never the parts after it (ids, hashes).
#[cfg(feature = "tracing")]
pub(crate) fn key_scope(key: &Key) -> &str {
    let text = key.as_str();
    match text.match_indices(':').nth(2) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Reports a wrong code (an answer, not an error) as a refusal event; passes the outcome on.
pub(crate) fn code_rejected(outcome: Result<CheckOutcome>) -> Result<CheckOutcome> {
    #[cfg(feature = "tracing")]
    if let Ok(CheckOutcome::Rejected(v)) = &outcome {
        tracing::info!(
            kind = "rejected",
            status = v.status.as_str(),
            "code rejected"
        );
    }
    outcome
}

/// Reports a refused authenticator-app code as a refusal event; passes the outcome on.
pub(crate) fn totp_outcome(outcome: Result<TotpOutcome>) -> Result<TotpOutcome> {
    #[cfg(feature = "tracing")]
    if let Ok(TotpOutcome::Rejected) = &outcome {
        tracing::info!(kind = "rejected", "code rejected");
    }
    outcome
}

/// A refused authenticator-app code, reported as a refusal event.
#[cfg(feature = "twilio")]
pub(crate) fn totp_rejected() -> TotpOutcome {
    #[cfg(feature = "tracing")]
    tracing::info!(kind = "rejected", "code rejected");
    TotpOutcome::Rejected
}

#[cfg(all(test, feature = "tracing"))]
mod tests {
    use super::*;

    #[test]
    fn key_scope_stops_after_the_first_part() {
        let key = Key::ephemeral("otp").part("attempts").part("VE123");
        assert_eq!(key_scope(&key), "e:otp:attempts");
        assert_eq!(key_scope(&Key::durable("tmr")), "d:tmr");
        assert_eq!(key_scope(&Key::durable("tmr").part("app")), "d:tmr:app");
    }
}
