//! Authenticator-app factors: TOTP (RFC 6238) and HOTP (RFC 4226) behind the [`TotpProvider`]
//! trait, with a self-hosted backend ([`LocalTotp`], always compiled: time-based and
//! counter-based factors) and Twilio Verify's TOTP factors (feature `twilio`, time-based only).
//!
//! ```text
//! enroll(identity, account name) -> TotpEnrollment { factor sid, secret, otpauth:// URI, QR }
//! confirm(identity, factor, first code) -> Approved? -> factor verified
//! check(identity, factor, code)         -> TotpOutcome::Approved(TotpApproved) | Rejected
//! ```
//!
//! The pure algorithms ([`hotp`], [`totp_at`], [`base32_encode`]) and the key URI
//! ([`totp_uri`], [`hotp_uri`], [`qr_svg`] with the `qr` feature) are public for hosts that
//! need them alone. See `docs/otp.md` ("Authenticator apps").

mod hotp;
mod local;
mod uri;

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

#[cfg(feature = "twilio")]
pub use crate::twilio::TwilioTotp;
pub use hotp::{MIN_SECRET_LEN, base32_decode, base32_encode, hotp, time_step, totp_at};
pub use local::{LocalTotp, LocalTotpBuilder, LocalTotpConfig};
#[cfg(feature = "qr")]
pub use uri::qr_svg;
pub use uri::{hotp_uri, totp_uri};

/// The HMAC of a TOTP or HOTP factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1: RFC 4226's and every authenticator app's default.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    /// The name in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn uri_name(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
            TotpAlgorithm::Sha512 => "SHA512",
        }
    }

    /// The name on Twilio's wire (`sha1`, `sha256`, `sha512`).
    pub fn wire_name(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "sha1",
            TotpAlgorithm::Sha256 => "sha256",
            TotpAlgorithm::Sha512 => "sha512",
        }
    }

    /// Parses either name, case-insensitively.
    pub fn parse(name: &str) -> Option<TotpAlgorithm> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Some(TotpAlgorithm::Sha1),
            "sha256" => Some(TotpAlgorithm::Sha256),
            "sha512" => Some(TotpAlgorithm::Sha512),
            _ => None,
        }
    }

    pub(crate) fn hmac(self) -> hmac::Algorithm {
        match self {
            TotpAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            TotpAlgorithm::Sha256 => hmac::HMAC_SHA256,
            TotpAlgorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// How a TOTP factor computes and accepts codes.
///
/// ```
/// use keyward::totp::{TotpAlgorithm, TotpParams};
/// let p = TotpParams::default();
/// assert_eq!((p.algorithm, p.digits, p.period, p.skew), (TotpAlgorithm::Sha1, 6, 30, 1));
/// let p = TotpParams::default().algorithm(TotpAlgorithm::Sha256).digits(8).period(60).skew(0);
/// assert!(p.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TotpParams {
    /// The HMAC. Default SHA-1 (what every authenticator app supports).
    pub algorithm: TotpAlgorithm,
    /// Digits per code, 6 to 8. Default 6.
    pub digits: u8,
    /// Seconds per time step. Default 30.
    pub period: u32,
    /// Steps accepted before and after the current one (clock drift, typing time), 0 to 10.
    /// Default 1.
    pub skew: u8,
}

impl Default for TotpParams {
    fn default() -> Self {
        TotpParams {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

impl TotpParams {
    /// Sets the HMAC.
    pub fn algorithm(mut self, algorithm: TotpAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sets the digits per code (6 to 8).
    pub fn digits(mut self, digits: u8) -> Self {
        self.digits = digits;
        self
    }

    /// Sets the seconds per time step (1 to 3600).
    pub fn period(mut self, period: u32) -> Self {
        self.period = period;
        self
    }

    /// Sets the steps accepted before and after the current one (0 to 10).
    pub fn skew(mut self, skew: u8) -> Self {
        self.skew = skew;
        self
    }

    /// Checks the ranges: 6 to 8 digits, a period of 1 to 3600 seconds, a skew of at most 10.
    pub fn validate(&self) -> Result<()> {
        if !(6..=8).contains(&self.digits) {
            return Err(Error::invalid_input("a totp code has 6 to 8 digits"));
        }
        if !(1..=3_600).contains(&self.period) {
            return Err(Error::invalid_input("a totp period is 1 to 3600 seconds"));
        }
        if self.skew > 10 {
            return Err(Error::invalid_input("a totp skew is at most 10 steps"));
        }
        Ok(())
    }
}

/// Whether a factor's codes follow the time (TOTP) or a counter (HOTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FactorKind {
    /// RFC 6238: the code of the current time step (`period`, `skew` apply).
    #[default]
    Totp,
    /// RFC 4226: the code of the next counter value; the app advances its counter on each code
    /// it shows, the provider on each code it accepts (look-ahead window and resynchronisation:
    /// [`LocalTotpConfig`]). `period` and `skew` do not apply.
    Hotp,
}

/// A request to enrol an authenticator app for `identity`.
///
/// ```
/// use keyward::totp::{EnrollTotp, TotpAlgorithm};
/// let req = EnrollTotp::new("user-42", "alice@example.com").algorithm(TotpAlgorithm::Sha256).digits(8);
/// assert_eq!(req.params.unwrap().digits, 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnrollTotp {
    /// The host's stable id of the user (never shown in the app).
    pub identity: String,
    /// The account name the app shows under the issuer (an email, a user name); at most 64
    /// characters (Twilio's `FriendlyName` limit).
    pub account_name: String,
    /// Parameters; `None` uses the provider's defaults.
    pub params: Option<TotpParams>,
    /// Time-based (the default) or counter-based.
    pub kind: FactorKind,
}

impl EnrollTotp {
    /// Enrols a time-based factor for `identity`, shown in the app as `account_name`.
    pub fn new(identity: impl Into<String>, account_name: impl Into<String>) -> Self {
        EnrollTotp {
            identity: identity.into(),
            account_name: account_name.into(),
            params: None,
            kind: FactorKind::Totp,
        }
    }

    /// Enrols a counter-based (HOTP, RFC 4226) factor, its counter starting at 0.
    ///
    /// ```
    /// use keyward::totp::{EnrollTotp, FactorKind};
    /// assert_eq!(EnrollTotp::hotp("user-42", "alice@example.com").kind, FactorKind::Hotp);
    /// ```
    pub fn hotp(identity: impl Into<String>, account_name: impl Into<String>) -> Self {
        EnrollTotp {
            kind: FactorKind::Hotp,
            ..EnrollTotp::new(identity, account_name)
        }
    }

    /// Uses these parameters instead of the provider's defaults.
    pub fn params(mut self, params: TotpParams) -> Self {
        self.params = Some(params);
        self
    }

    /// Sets the algorithm (other parameters at their defaults unless set).
    pub fn algorithm(mut self, algorithm: TotpAlgorithm) -> Self {
        self.params
            .get_or_insert_with(TotpParams::default)
            .algorithm = algorithm;
        self
    }

    /// Sets the digits per code.
    pub fn digits(mut self, digits: u8) -> Self {
        self.params.get_or_insert_with(TotpParams::default).digits = digits;
        self
    }

    /// Sets the period in seconds.
    pub fn period(mut self, seconds: u32) -> Self {
        self.params.get_or_insert_with(TotpParams::default).period = seconds;
        self
    }

    /// Sets the accepted skew in steps.
    pub fn skew(mut self, steps: u8) -> Self {
        self.params.get_or_insert_with(TotpParams::default).skew = steps;
        self
    }
}

/// Whether a factor is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorStatus {
    /// Enrolled, waiting for its first valid code.
    Unverified,
    /// Confirmed: checks accept its codes.
    Verified,
}

/// What enrolment hands the host to show the user: the secret (for typing in), the
/// `otpauth://` URI (for a QR code or a link). Both carry the secret: `Debug` redacts them.
#[derive(Clone)]
#[non_exhaustive]
pub struct TotpEnrollment {
    /// The factor's id (`YF…`): keep it with the user, checks name it.
    pub factor_sid: String,
    /// The identity enrolled.
    pub identity: String,
    /// The secret in unpadded base32, for typing into an app.
    pub secret: Secret,
    /// The `otpauth://totp/…` (or `otpauth://hotp/…?counter=0`) key URI.
    pub uri: Secret,
    /// The parameters the app must use.
    pub params: TotpParams,
    /// Time-based or counter-based.
    pub kind: FactorKind,
    /// Until when the enrolment may be confirmed, when the provider says.
    pub confirm_by: Option<SystemTime>,
}

impl TotpEnrollment {
    /// The key URI as a QR code in SVG (feature `qr`). It encodes the secret.
    #[cfg(feature = "qr")]
    pub fn qr_svg(&self) -> Result<Secret> {
        qr_svg(&self.uri)
    }
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrollment")
            .field("factor_sid", &self.factor_sid)
            .field("identity", &self.identity)
            .field("secret", &self.secret)
            .field("uri", &self.uri)
            .field("params", &self.params)
            .field("kind", &self.kind)
            .field("confirm_by", &self.confirm_by)
            .finish()
    }
}

/// A code to check against one factor of one identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckTotp {
    /// The identity the factor belongs to.
    pub identity: String,
    /// The factor (`YF…`, from [`TotpEnrollment::factor_sid`]).
    pub factor_sid: String,
    /// The code the user typed.
    pub code: Secret,
}

impl CheckTotp {
    /// Checks `code` for `factor_sid` of `identity`.
    pub fn new(
        identity: impl Into<String>,
        factor_sid: impl Into<String>,
        code: impl Into<Secret>,
    ) -> Self {
        CheckTotp {
            identity: identity.into(),
            factor_sid: factor_sid.into(),
            code: code.into(),
        }
    }
}

/// Proof that a TOTP or HOTP code was accepted for a factor. Only a [`TotpProvider`] that
/// accepted the code builds it; a backend written outside the crate uses
/// [`backend::totp_approved`](crate::backend::totp_approved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpApproved {
    identity: String,
    factor_sid: String,
}

impl TotpApproved {
    /// The proof for a code a backend accepted (`backend::totp_approved` outside the crate).
    pub(crate) fn new_unchecked(
        identity: impl Into<String>,
        factor_sid: impl Into<String>,
    ) -> Self {
        TotpApproved {
            identity: identity.into(),
            factor_sid: factor_sid.into(),
        }
    }

    /// The identity whose code was accepted.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The factor that accepted it.
    pub fn factor_sid(&self) -> &str {
        &self.factor_sid
    }
}

/// The answer to a code: approved with a proof, or rejected (wrong, outside the window, or a
/// time step or counter already used). A rejection is an ordinary answer, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum TotpOutcome {
    /// The code was right and its step unused.
    Approved(TotpApproved),
    /// The code was not accepted.
    Rejected,
}

impl TotpOutcome {
    /// The proof, if approved.
    pub fn approved(self) -> Option<TotpApproved> {
        match self {
            TotpOutcome::Approved(a) => Some(a),
            TotpOutcome::Rejected => None,
        }
    }
}

/// Authenticator-app factors (TOTP): enrolment, its confirmation, code checks.
///
/// # Contract
/// - `enroll` draws the secret (at least [`MIN_SECRET_LEN`] bytes, from the backend's injected
///   random source) and stores the factor `Unverified`; [`InvalidInput`](crate::ErrorKind::InvalidInput)
///   for an empty identity or account name, out-of-range [`TotpParams`];
///   [`Unsupported`](crate::ErrorKind::Unsupported) for a [`FactorKind`] the backend lacks.
/// - `confirm` accepts the first valid code of an unverified factor and marks it verified;
///   `check` accepts codes of verified factors only. Both answer
///   [`TotpOutcome::Rejected`] for a wrong code, a code outside the window or one of a time step
///   (HOTP: a counter value) already accepted for this factor (never the same step or counter
///   twice, across instances);
///   [`NotFound`](crate::ErrorKind::NotFound) for an unknown identity or factor (or one in the
///   wrong state); [`TooManyAttempts`](crate::ErrorKind::TooManyAttempts) past the backend's
///   attempt limit (counted before comparing, so racing checks cannot exceed it);
///   [`InvalidInput`](crate::ErrorKind::InvalidInput) for a code that is not 3 to 10 digits.
/// - `remove` deletes a factor ([`NotFound`](crate::ErrorKind::NotFound) if absent).
///
/// Hold it as `Arc<dyn TotpProvider>`.
#[async_trait]
pub trait TotpProvider: Send + Sync + fmt::Debug {
    /// Creates an unverified factor and returns what to show the user.
    async fn enroll(&self, request: EnrollTotp) -> Result<TotpEnrollment>;

    /// Confirms an unverified factor with its first valid code.
    async fn confirm(&self, request: CheckTotp) -> Result<TotpOutcome>;

    /// Checks a code of a verified factor.
    async fn check(&self, request: CheckTotp) -> Result<TotpOutcome>;

    /// Deletes a factor.
    async fn remove(&self, identity: &str, factor_sid: &str) -> Result<()>;
}

/// Checks the shape of a typed code: 3 to 10 ASCII digits.
pub(crate) fn code_shape(code: &Secret) -> Result<&str> {
    code.expose_str()
        .filter(|c| (3..=10).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Error::invalid_input("a totp code is 3 to 10 digits"))
}

/// Checks an identity and an account name: non-empty, at most 128 and 64 characters.
pub(crate) fn check_names(identity: &str, account_name: Option<&str>) -> Result<()> {
    if identity.is_empty() || identity.chars().count() > 128 {
        return Err(Error::invalid_input(
            "identity is empty or longer than 128 characters",
        ));
    }
    if let Some(name) = account_name
        && (name.is_empty() || name.chars().count() > 64)
    {
        return Err(Error::invalid_input(
            "account name is empty or longer than 64 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrollment_debug_hides_the_secret() {
        let e = TotpEnrollment {
            factor_sid: "YF00000000000000000000000000000000".into(),
            identity: "u".into(),
            secret: Secret::from("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            uri: totp_uri(
                "i",
                "a",
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                &TotpParams::default(),
            ),
            params: TotpParams::default(),
            kind: FactorKind::Totp,
            confirm_by: None,
        };
        let shown = format!("{e:?} {e:#?}");
        assert!(!shown.contains("GEZDGNBV"), "{shown}");
        assert!(!shown.contains("otpauth"), "{shown}");
    }

    #[test]
    fn params_ranges() {
        assert!(TotpParams::default().validate().is_ok());
        for bad in [
            TotpParams {
                digits: 5,
                ..TotpParams::default()
            },
            TotpParams {
                digits: 9,
                ..TotpParams::default()
            },
            TotpParams {
                period: 0,
                ..TotpParams::default()
            },
            TotpParams {
                skew: 11,
                ..TotpParams::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(TotpAlgorithm::parse("SHA256"), Some(TotpAlgorithm::Sha256));
        assert_eq!(TotpAlgorithm::parse("md5"), None);
    }
}
