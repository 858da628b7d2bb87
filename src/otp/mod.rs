//! One-time passcodes: the [`OtpProvider`] trait and the types it speaks.
//!
//! The semantics follow Twilio Verify v2 (see `docs/otp.md`): a *verification* is started towards
//! a destination over a channel, the user types the code, the host *checks* it. A wrong code is
//! an ordinary answer ([`CheckOutcome::Rejected`] with status `pending`), not an error; an approved
//! check yields an [`Approved`] proof. After approval, expiry or exhausted attempts the
//! verification is gone.

mod local;
mod sender;
mod template;

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::normalize;
use crate::secret::Secret;

#[cfg(feature = "twilio")]
pub use crate::twilio::{
    SmsFrom, TWILIO_API_BASE_URL, TwilioSmsConfig, TwilioSmsSender, TwilioVerify,
    TwilioVerifyConfig, VERIFY_BASE_URL,
};
pub use local::{
    LocalOtpBuilder, LocalOtpConfig, LocalOtpProvider, MIN_SERVER_SECRET_LEN, SendBudget,
    SendRateLimit,
};
pub use sender::{CodeSender, ConsoleSender, Outbox, OutgoingMessage};
pub use template::{MessageTemplate, MessageTemplates};

/// The delivery channel of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Channel {
    /// Text message.
    Sms,
    /// Voice call reading the code.
    Call,
    /// Email.
    Email,
    /// WhatsApp message.
    Whatsapp,
    /// Silent network authentication.
    Sna,
    /// Let the provider choose.
    Auto,
    /// A channel this version does not know, kept verbatim.
    Other(String),
}

impl Channel {
    /// The wire name (`sms`, `call`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Channel::Sms => "sms",
            Channel::Call => "call",
            Channel::Email => "email",
            Channel::Whatsapp => "whatsapp",
            Channel::Sna => "sna",
            Channel::Auto => "auto",
            Channel::Other(s) => s,
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(s: &str) -> Channel {
        match s.to_ascii_lowercase().as_str() {
            "sms" => Channel::Sms,
            "call" => Channel::Call,
            "email" => Channel::Email,
            "whatsapp" => Channel::Whatsapp,
            "sna" => Channel::Sna,
            "auto" => Channel::Auto,
            _ => Channel::Other(s.to_owned()),
        }
    }

    /// Normalizes a destination for this channel: E.164 for phone channels, the email rules
    /// for `email`, trimmed text otherwise.
    pub fn normalize_destination(&self, to: &str) -> Result<String> {
        match self {
            Channel::Email => normalize::email(to),
            Channel::Sms | Channel::Call | Channel::Whatsapp | Channel::Sna => {
                normalize::phone_e164(to)
            }
            Channel::Auto | Channel::Other(_) => {
                if to.contains('@') {
                    normalize::email(to)
                } else {
                    normalize::phone_e164(to)
                }
            }
        }
    }
}

impl From<Channel> for String {
    fn from(c: Channel) -> String {
        c.as_str().to_owned()
    }
}

impl From<String> for Channel {
    fn from(s: String) -> Channel {
        Channel::parse(&s)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a verification, mirroring Twilio Verify's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum VerificationStatus {
    /// Code sent, not yet approved.
    Pending,
    /// A check succeeded.
    Approved,
    /// Canceled by the host.
    Canceled,
    /// Too many wrong checks.
    MaxAttemptsReached,
    /// Deleted by the provider.
    Deleted,
    /// Delivery failed.
    Failed,
    /// The code's lifetime ran out.
    Expired,
    /// A status this version does not know, kept verbatim.
    Other(String),
}

impl VerificationStatus {
    /// The wire name (`pending`, `approved`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            VerificationStatus::Pending => "pending",
            VerificationStatus::Approved => "approved",
            VerificationStatus::Canceled => "canceled",
            VerificationStatus::MaxAttemptsReached => "max_attempts_reached",
            VerificationStatus::Deleted => "deleted",
            VerificationStatus::Failed => "failed",
            VerificationStatus::Expired => "expired",
            VerificationStatus::Other(s) => s,
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> VerificationStatus {
        match s {
            "pending" => VerificationStatus::Pending,
            "approved" => VerificationStatus::Approved,
            "canceled" => VerificationStatus::Canceled,
            "max_attempts_reached" => VerificationStatus::MaxAttemptsReached,
            "deleted" => VerificationStatus::Deleted,
            "failed" => VerificationStatus::Failed,
            "expired" => VerificationStatus::Expired,
            other => VerificationStatus::Other(other.to_owned()),
        }
    }

    /// Whether the verification can still be checked.
    pub fn is_pending(&self) -> bool {
        matches!(self, VerificationStatus::Pending)
    }
}

impl From<VerificationStatus> for String {
    fn from(s: VerificationStatus) -> String {
        s.as_str().to_owned()
    }
}

impl From<String> for VerificationStatus {
    fn from(s: String) -> VerificationStatus {
        VerificationStatus::parse(&s)
    }
}

impl fmt::Display for VerificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verification as a provider reports it.
///
/// `Debug` masks the destination (`**********21`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Provider id of the verification (`VE…` for Twilio and the self-hosted provider).
    pub sid: String,
    /// Normalized destination (E.164 phone number or email).
    pub to: String,
    /// Delivery channel.
    pub channel: Channel,
    /// Current status.
    pub status: VerificationStatus,
    /// Whether the last check was approved.
    pub valid: bool,
    /// Number of times the code was sent (first send included).
    pub send_attempts: u32,
    /// When the verification was created.
    pub created_at: Option<SystemTime>,
    /// When it last changed.
    pub updated_at: Option<SystemTime>,
    /// When the code stops being accepted, when the provider says.
    pub expires_at: Option<SystemTime>,
}

impl Verification {
    /// A `pending` verification `sid` towards `to` over `channel`, sent once, with no times; set
    /// the other fields as the provider reports them.
    pub fn new(sid: impl Into<String>, to: impl Into<String>, channel: Channel) -> Self {
        Verification {
            sid: sid.into(),
            to: to.into(),
            channel,
            status: VerificationStatus::Pending,
            valid: false,
            send_attempts: 1,
            created_at: None,
            updated_at: None,
            expires_at: None,
        }
    }

    /// The destination masked for display to the user (`**********21`).
    pub fn masked_to(&self) -> String {
        normalize::mask(&self.to)
    }
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification")
            .field("sid", &self.sid)
            .field("to", &self.masked_to())
            .field("channel", &self.channel)
            .field("status", &self.status)
            .field("valid", &self.valid)
            .field("send_attempts", &self.send_attempts)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A request to start (or re-send) a verification.
///
/// Everything beyond `to` and `channel` is optional and mirrors a Twilio Verify start parameter
/// (the Twilio backend sends each one under its Twilio name). The self-hosted provider honours
/// the locale, friendly name, custom message and the PSD2 amount and payee (written in the
/// message and bound to the code); the others are Twilio features it refuses with
/// [`Unsupported`](crate::ErrorKind::Unsupported) rather than ignore.
///
/// ```
/// use keyward::otp::{Channel, StartVerification};
/// let req = StartVerification::new("+15017122661", Channel::Sms)
///     .locale("fr")
///     .transaction("€12.30", "Acme Ltd")
///     .custom_friendly_name("Acme Pay");
/// assert_eq!(req.amount.as_deref(), Some("€12.30"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct StartVerification {
    /// Destination as the user typed it; providers normalize it.
    pub to: String,
    /// Delivery channel.
    pub channel: Channel,
    /// Message locale (`en`, `fr`, `pt-BR`, ...). Twilio `Locale`.
    pub locale: Option<String>,
    /// A code chosen by the host instead of a random one. Twilio `CustomCode`.
    pub custom_code: Option<Secret>,
    /// The host's key for who asked (an address, a device cookie, a signed-in user): the
    /// self-hosted provider counts it against its per-client send budget
    /// ([`SendBudget`]). Twilio Verify ignores it.
    pub client: Option<String>,
    /// The name shown in the message instead of the service's. Twilio `CustomFriendlyName`.
    pub custom_friendly_name: Option<String>,
    /// The whole message text instead of the template (Twilio `CustomMessage`, deprecated there);
    /// the self-hosted provider requires the `{code}` placeholder in it.
    pub custom_message: Option<String>,
    /// Digits dialled after a call is answered (`0-9`, `#`, `*`, `w` for a pause). Twilio
    /// `SendDigits`.
    pub send_digits: Option<String>,
    /// PSD2 transaction amount the code authorizes. Twilio `Amount`.
    pub amount: Option<String>,
    /// PSD2 transaction payee the code authorizes. Twilio `Payee`.
    pub payee: Option<String>,
    /// Programmable Rate Limits: unique name → value. Twilio `RateLimits` (a JSON object).
    pub rate_limits: Vec<(String, String)>,
    /// Email channel configuration. Twilio `ChannelConfiguration` (a JSON object).
    pub channel_configuration: Option<ChannelConfiguration>,
    /// Android SMS Retriever app hash appended to the SMS. Twilio `AppHash`.
    pub app_hash: Option<String>,
    /// Message template (`HJ…`). Twilio `TemplateSid`.
    pub template_sid: Option<String>,
    /// Values of the template's variables. Twilio `TemplateCustomSubstitutions` (JSON text).
    pub template_custom_substitutions: Vec<(String, String)>,
    /// The user's device IP. Twilio `DeviceIp`.
    pub device_ip: Option<std::net::IpAddr>,
    /// Fraud Guard / risk check on or off. Twilio `RiskCheck` (`enable` / `disable`).
    pub risk_check: Option<bool>,
    /// Tags recorded with the verification. Twilio `Tags` (JSON text).
    pub tags: Vec<(String, String)>,
    /// Require the SNA client token at check. Twilio `EnableSnaClientToken`.
    pub enable_sna_client_token: Option<bool>,
}

/// Email settings of a verification (Twilio's `ChannelConfiguration`): sender, sender name,
/// template and substitutions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelConfiguration {
    /// Sender address (`from`).
    pub from: Option<String>,
    /// Sender name (`from_name`).
    pub from_name: Option<String>,
    /// Email template id (`template_id`).
    pub template_id: Option<String>,
    /// Template substitutions (`substitutions`).
    pub substitutions: Vec<(String, String)>,
}

impl ChannelConfiguration {
    /// An empty configuration.
    pub fn new() -> Self {
        ChannelConfiguration::default()
    }

    /// Sets the sender address and, optionally, name.
    pub fn from(mut self, address: impl Into<String>, name: Option<String>) -> Self {
        self.from = Some(address.into());
        self.from_name = name;
        self
    }

    /// Sets the email template.
    pub fn template_id(mut self, id: impl Into<String>) -> Self {
        self.template_id = Some(id.into());
        self
    }

    /// Adds a substitution.
    pub fn substitution(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.substitutions.push((key.into(), value.into()));
        self
    }

    /// The JSON object Twilio expects.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        if let Some(from) = &self.from {
            map.insert("from".into(), from.clone().into());
        }
        if let Some(name) = &self.from_name {
            map.insert("from_name".into(), name.clone().into());
        }
        if let Some(id) = &self.template_id {
            map.insert("template_id".into(), id.clone().into());
        }
        if !self.substitutions.is_empty() {
            map.insert("substitutions".into(), json_object(&self.substitutions));
        }
        serde_json::Value::Object(map).to_string()
    }
}

/// A JSON object of strings.
pub(crate) fn json_object(pairs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

impl StartVerification {
    /// A verification to `to` over `channel`.
    pub fn new(to: impl Into<String>, channel: Channel) -> Self {
        StartVerification {
            to: to.into(),
            channel,
            locale: None,
            custom_code: None,
            client: None,
            custom_friendly_name: None,
            custom_message: None,
            send_digits: None,
            amount: None,
            payee: None,
            rate_limits: Vec::new(),
            channel_configuration: None,
            app_hash: None,
            template_sid: None,
            template_custom_substitutions: Vec::new(),
            device_ip: None,
            risk_check: None,
            tags: Vec::new(),
            enable_sna_client_token: None,
        }
    }

    /// Sets the requester's client key (see [`client`](StartVerification::client)).
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// Sets the message locale.
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// Uses a host-chosen code (4 to 10 characters).
    pub fn custom_code(mut self, code: impl Into<Secret>) -> Self {
        self.custom_code = Some(code.into());
        self
    }

    /// Names the sender in the message.
    pub fn custom_friendly_name(mut self, name: impl Into<String>) -> Self {
        self.custom_friendly_name = Some(name.into());
        self
    }

    /// Uses this message text (with `{code}`).
    pub fn custom_message(mut self, text: impl Into<String>) -> Self {
        self.custom_message = Some(text.into());
        self
    }

    /// Digits to dial after a call is answered.
    pub fn send_digits(mut self, digits: impl Into<String>) -> Self {
        self.send_digits = Some(digits.into());
        self
    }

    /// Binds the code to a PSD2 transaction: this amount to this payee.
    pub fn transaction(mut self, amount: impl Into<String>, payee: impl Into<String>) -> Self {
        self.amount = Some(amount.into());
        self.payee = Some(payee.into());
        self
    }

    /// Adds a Programmable Rate Limit value.
    pub fn rate_limit(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.rate_limits.push((name.into(), value.into()));
        self
    }

    /// Sets the email channel configuration.
    pub fn channel_configuration(mut self, config: ChannelConfiguration) -> Self {
        self.channel_configuration = Some(config);
        self
    }

    /// Appends this Android app hash to the SMS.
    pub fn app_hash(mut self, hash: impl Into<String>) -> Self {
        self.app_hash = Some(hash.into());
        self
    }

    /// Uses this message template.
    pub fn template_sid(mut self, sid: impl Into<String>) -> Self {
        self.template_sid = Some(sid.into());
        self
    }

    /// Adds a template substitution.
    pub fn template_substitution(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.template_custom_substitutions
            .push((key.into(), value.into()));
        self
    }

    /// The user's device IP.
    pub fn device_ip(mut self, ip: std::net::IpAddr) -> Self {
        self.device_ip = Some(ip);
        self
    }

    /// Turns the risk check on or off.
    pub fn risk_check(mut self, enable: bool) -> Self {
        self.risk_check = Some(enable);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Requires (or not) the SNA client token at check.
    pub fn enable_sna_client_token(mut self, enable: bool) -> Self {
        self.enable_sna_client_token = Some(enable);
        self
    }
}

impl fmt::Debug for StartVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartVerification")
            .field("to", &normalize::mask(&self.to))
            .field("channel", &self.channel)
            .field("locale", &self.locale)
            .field("custom_code", &self.custom_code)
            .field("client", &self.client.as_ref().map(|_| "[SET]"))
            .field("custom_friendly_name", &self.custom_friendly_name)
            .field(
                "custom_message",
                &self.custom_message.as_ref().map(|_| "[set]"),
            )
            .field("amount", &self.amount)
            .field("payee", &self.payee)
            .field("device_ip", &self.device_ip.map(|_| "[set]"))
            .finish_non_exhaustive()
    }
}

/// Which verification a check, fetch or cancel refers to.
#[derive(Clone, PartialEq, Eq)]
pub enum VerificationRef {
    /// The pending verification of this destination.
    To(String),
    /// The verification with this id.
    Sid(String),
}

impl fmt::Debug for VerificationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerificationRef::To(to) => f.debug_tuple("To").field(&normalize::mask(to)).finish(),
            VerificationRef::Sid(sid) => f.debug_tuple("Sid").field(sid).finish(),
        }
    }
}

/// A request to check a code (or, for silent network authentication, no code).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckCode {
    /// The verification checked.
    pub target: VerificationRef,
    /// The code the user typed; empty (and not sent) for an SNA check ([`CheckCode::sna`]).
    pub code: Secret,
    /// The PSD2 amount the code must have been issued for. Twilio `Amount`.
    pub amount: Option<String>,
    /// The PSD2 payee the code must have been issued for. Twilio `Payee`.
    pub payee: Option<String>,
    /// The token the SNA URL answered, when the verification required it. Twilio
    /// `SnaClientToken`.
    pub sna_client_token: Option<Secret>,
    /// Set by [`CheckCode::sna`]: a silent network authentication check, sent without a code.
    pub sna: bool,
}

impl CheckCode {
    /// Checks `code` against the pending verification of destination `to`.
    pub fn to(to: impl Into<String>, code: impl Into<Secret>) -> Self {
        CheckCode::new(VerificationRef::To(to.into()), code.into())
    }

    /// Checks `code` against the verification `sid`.
    pub fn sid(sid: impl Into<String>, code: impl Into<Secret>) -> Self {
        CheckCode::new(VerificationRef::Sid(sid.into()), code.into())
    }

    /// Checks a silent network authentication (channel `sna`) without a code: the network
    /// already saw the device open the SNA URL.
    pub fn sna(target: VerificationRef) -> Self {
        let mut check = CheckCode::new(target, Secret::default());
        check.sna = true;
        check
    }

    fn new(target: VerificationRef, code: Secret) -> Self {
        CheckCode {
            target,
            code,
            amount: None,
            payee: None,
            sna_client_token: None,
            sna: false,
        }
    }

    /// The PSD2 transaction the code was issued for: it approves only this amount to this
    /// payee.
    pub fn transaction(mut self, amount: impl Into<String>, payee: impl Into<String>) -> Self {
        self.amount = Some(amount.into());
        self.payee = Some(payee.into());
        self
    }

    /// The SNA client token.
    pub fn sna_client_token(mut self, token: impl Into<Secret>) -> Self {
        self.sna_client_token = Some(token.into());
        self
    }

    /// Whether this is an SNA check without a code.
    pub fn is_sna(&self) -> bool {
        self.sna
    }
}

/// Proof that a verification was approved. Only obtainable from an [`OtpProvider::check`] that
/// approved the code, or, for backend implementations, through
/// [`backend::approved`](crate::backend::approved) for a verification whose status is `approved`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    verification: Verification,
}

impl Approved {
    /// The proof, without checking the status: only [`backend::approved`](crate::backend::approved)
    /// calls it, after checking.
    pub(crate) fn new_unchecked(verification: Verification) -> Approved {
        Approved { verification }
    }

    /// The approved verification.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// The destination that proved possession of the code.
    pub fn to(&self) -> &str {
        &self.verification.to
    }
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a check outcome must be inspected: only Approved proves the code"]
pub enum CheckOutcome {
    /// The code was right.
    Approved(Approved),
    /// The code was wrong; the verification stays as reported (usually `pending`).
    Rejected(Verification),
}

impl CheckOutcome {
    /// The proof, if the code was approved.
    pub fn approved(self) -> Option<Approved> {
        match self {
            CheckOutcome::Approved(a) => Some(a),
            CheckOutcome::Rejected(_) => None,
        }
    }

    /// The verification as the provider reported it after the check.
    pub fn verification(&self) -> &Verification {
        match self {
            CheckOutcome::Approved(a) => a.verification(),
            CheckOutcome::Rejected(v) => v,
        }
    }
}

/// A one-time-passcode provider: Twilio Verify, the self-hosted provider, or your own.
///
/// # Contract
/// - [`start`](OtpProvider::start) sends a code. Starting again for the same destination while a
///   verification is pending re-sends the same code (counted against the send limit).
///   Errors: [`InvalidInput`](crate::ErrorKind::InvalidInput) (bad destination),
///   [`TooManySends`](crate::ErrorKind::TooManySends),
///   [`RateLimited`](crate::ErrorKind::RateLimited), transport/backend errors.
/// - [`check`](OtpProvider::check): a wrong code is `Ok(CheckOutcome::Rejected(..))`; the right
///   code is `Ok(CheckOutcome::Approved(..))` and ends the verification. Errors:
///   [`NotFound`](crate::ErrorKind::NotFound) (no such verification, or already approved /
///   expired / exhausted), [`TooManyAttempts`](crate::ErrorKind::TooManyAttempts) (the
///   attempt limit was already reached), [`Expired`](crate::ErrorKind::Expired) where the
///   backend can tell.
/// - [`fetch`](OtpProvider::fetch) and [`cancel`](OtpProvider::cancel) address a verification by
///   sid or destination.
///
/// Hold it as `Arc<dyn OtpProvider>` to swap backends at run time.
#[async_trait]
pub trait OtpProvider: Send + Sync + fmt::Debug {
    /// Starts (or re-sends) a verification.
    async fn start(&self, request: StartVerification) -> Result<Verification>;

    /// Checks a code.
    async fn check(&self, request: CheckCode) -> Result<CheckOutcome>;

    /// Reads a verification's current state.
    async fn fetch(&self, target: VerificationRef) -> Result<Verification>;

    /// Cancels a pending verification.
    async fn cancel(&self, target: VerificationRef) -> Result<Verification>;
}
