//! Who may join: [`Contact`], the [`ParticipantDirectory`] trait and [`MemoryDirectory`].

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;

use super::decoy::{mask_email, mask_phone};
use crate::error::Result;
use crate::otp::Channel;

/// How to reach a participant. `Debug` masks the number or address.
///
/// Serialized as `{"type": "phone", "value": "+15017122661"}` or `{"type": "email", "value":
/// ...}`, in clear (a host stores its directory this way); keep it out of logs, which `Debug`
/// is for.
///
/// ```
/// use keyward::video::gate::Contact;
/// let json = serde_json::to_string(&Contact::email("alice@example.com"))?;
/// assert_eq!(json, r#"{"type":"email","value":"alice@example.com"}"#);
/// assert_eq!(serde_json::from_str::<Contact>(&json)?, Contact::email("alice@example.com"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Contact {
    /// A phone number (E.164 or anything the provider normalizes); codes go by SMS.
    Phone(String),
    /// An email address; codes go by email.
    Email(String),
}

impl Contact {
    /// A phone contact.
    pub fn phone(number: impl Into<String>) -> Contact {
        Contact::Phone(number.into())
    }

    /// An email contact.
    pub fn email(address: impl Into<String>) -> Contact {
        Contact::Email(address.into())
    }

    pub(super) fn channel(&self) -> Channel {
        match self {
            Contact::Phone(_) => Channel::Sms,
            Contact::Email(_) => Channel::Email,
        }
    }

    pub(super) fn destination(&self) -> &str {
        match self {
            Contact::Phone(s) | Contact::Email(s) => s,
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Phone(p) => f.debug_tuple("Phone").field(&mask_phone(p)).finish(),
            Contact::Email(e) => f.debug_tuple("Email").field(&mask_email(e)).finish(),
        }
    }
}

/// Who may join: identity → how to reach them. Hosts implement it over their user database.
///
/// # Contract
/// `contact` answers `Ok(None)` both for an unknown identity and for a known one without a
/// usable contact (the gate treats them alike); errors are for the directory's own failures.
/// Answer both cases in the same time (one indexed lookup either way): the gate hides everything
/// after the lookup, not the lookup itself.
#[async_trait]
pub trait ParticipantDirectory: Send + Sync + fmt::Debug {
    /// The participant's contact, if the identity is a participant with one.
    async fn contact(&self, identity: &str) -> Result<Option<Contact>>;

    /// The participant whose passkeys carry `user_handle` (the WebAuthn user id), for
    /// [`RoomGate::admit_passkey`](super::RoomGate::admit_passkey). The default binds no handle:
    /// a directory that does not override it admits by code only.
    async fn identity_for_passkey(&self, user_handle: &[u8]) -> Result<Option<String>> {
        let _ = user_handle;
        Ok(None)
    }

    /// The participant's authenticator-app factor, for
    /// [`RoomGate::verify_totp_from`](super::RoomGate::verify_totp_from). Same contract as
    /// [`contact`](Self::contact): `Ok(None)` for an unknown identity and for a participant
    /// without a factor, in the same time. The default has none: a directory that does not
    /// override it admits no one by authenticator app.
    async fn totp_factor(&self, identity: &str) -> Result<Option<TotpFactor>> {
        let _ = identity;
        Ok(None)
    }
}

/// A participant's enrolled authenticator-app factor: the identity it was enrolled under at the
/// [`TotpProvider`](crate::totp::TotpProvider) and its factor sid
/// ([`TotpEnrollment::factor_sid`](crate::totp::TotpEnrollment::factor_sid)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpFactor {
    /// The identity at the TOTP provider (often the participant's own).
    pub identity: String,
    /// The factor (`YF…`).
    pub factor_sid: String,
}

impl TotpFactor {
    /// Factor `factor_sid` of `identity` at the TOTP provider.
    pub fn new(identity: impl Into<String>, factor_sid: impl Into<String>) -> Self {
        TotpFactor {
            identity: identity.into(),
            factor_sid: factor_sid.into(),
        }
    }
}

/// A fixed participant list held in memory, for tests, demos and small deployments. It is
/// configuration, built once and read-only afterwards.
///
/// ```
/// use keyward::video::gate::{Contact, MemoryDirectory};
/// let dir = MemoryDirectory::new()
///     .with("mabel", Contact::phone("+18005554321"))
///     .with_no_contact("ghost");
/// assert_eq!(dir.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct MemoryDirectory {
    participants: HashMap<String, Option<Contact>>,
    passkeys: HashMap<Vec<u8>, String>,
    totp: HashMap<String, TotpFactor>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        MemoryDirectory::default()
    }

    /// Adds (or replaces) a participant.
    pub fn with(mut self, identity: impl Into<String>, contact: Contact) -> Self {
        self.participants.insert(identity.into(), Some(contact));
        self
    }

    /// Adds a participant the host knows but cannot reach.
    pub fn with_no_contact(mut self, identity: impl Into<String>) -> Self {
        self.participants.insert(identity.into(), None);
        self
    }

    /// Binds a passkey user handle to a participant (added without a contact if new), so
    /// [`RoomGate::admit_passkey`](super::RoomGate::admit_passkey) admits it.
    pub fn with_passkey(mut self, identity: impl Into<String>, user_handle: Vec<u8>) -> Self {
        let identity = identity.into();
        self.participants.entry(identity.clone()).or_insert(None);
        self.passkeys.insert(user_handle, identity);
        self
    }

    /// Binds an authenticator-app factor to a participant (added without a contact if new), so
    /// [`RoomGate::verify_totp_from`](super::RoomGate::verify_totp_from) admits its codes.
    pub fn with_totp(mut self, identity: impl Into<String>, factor: TotpFactor) -> Self {
        let identity = identity.into();
        self.participants.entry(identity.clone()).or_insert(None);
        self.totp.insert(identity, factor);
        self
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether there is no participant.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }
}

impl fmt::Debug for MemoryDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDirectory")
            .field("participants", &self.participants.len())
            .field("passkeys", &self.passkeys.len())
            .field("totp", &self.totp.len())
            .finish()
    }
}

#[async_trait]
impl ParticipantDirectory for MemoryDirectory {
    async fn contact(&self, identity: &str) -> Result<Option<Contact>> {
        Ok(self.participants.get(identity).cloned().flatten())
    }

    async fn identity_for_passkey(&self, user_handle: &[u8]) -> Result<Option<String>> {
        Ok(self.passkeys.get(user_handle).cloned())
    }

    async fn totp_factor(&self, identity: &str) -> Result<Option<TotpFactor>> {
        Ok(self.totp.get(identity).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_debug_is_masked() {
        let shown = format!(
            "{:?} {:?}",
            Contact::phone("+18005554321"),
            Contact::email("mabel@example.com")
        );
        assert!(!shown.contains("8005554321"), "{shown}");
        assert!(!shown.contains("mabel"), "{shown}");
    }
}
