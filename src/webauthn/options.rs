//! The WebAuthn enumerations a relying party sends to browsers, typed so a misspelling
//! (`"requried"`, `"platfrom"`) is a compile error instead of an option browsers silently ignore.
//!
//! Each serializes to its WebAuthn string and parses from it; [`as_str`](UserVerification::as_str)
//! gives the same string.

use serde::{Deserialize, Serialize};

/// The user-verification requirement (`userVerification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    /// UV must be performed; assertions without the UV flag are refused.
    Required,
    /// UV is asked for but not enforced (the WebAuthn default).
    #[default]
    Preferred,
    /// UV is not asked for.
    Discouraged,
}

impl UserVerification {
    /// The WebAuthn string form.
    pub fn as_str(self) -> &'static str {
        match self {
            UserVerification::Required => "required",
            UserVerification::Preferred => "preferred",
            UserVerification::Discouraged => "discouraged",
        }
    }
}

/// Whether the credential should be discoverable (`residentKey`): a passkey that signs in
/// without a user name needs `Required` (or `Preferred` and luck).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidentKeyRequirement {
    /// A server-side credential is preferred; a discoverable one is acceptable.
    Discouraged,
    /// A discoverable credential is preferred; a server-side one is acceptable.
    Preferred,
    /// The credential must be discoverable, or the ceremony fails in the browser.
    Required,
}

impl ResidentKeyRequirement {
    /// The WebAuthn string form.
    pub fn as_str(self) -> &'static str {
        match self {
            ResidentKeyRequirement::Discouraged => "discouraged",
            ResidentKeyRequirement::Preferred => "preferred",
            ResidentKeyRequirement::Required => "required",
        }
    }
}

/// Which kind of authenticator (`authenticatorAttachment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthenticatorAttachment {
    /// Built into the device (Touch ID, Windows Hello, a platform passkey provider).
    #[serde(rename = "platform")]
    Platform,
    /// Roaming: a security key, or a phone over hybrid transport.
    #[serde(rename = "cross-platform")]
    CrossPlatform,
}

impl AuthenticatorAttachment {
    /// The WebAuthn string form.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorAttachment::Platform => "platform",
            AuthenticatorAttachment::CrossPlatform => "cross-platform",
        }
    }

    /// The attachment a browser reported, if it is one WebAuthn defines (unknown values are
    /// ignored, as the specification asks of clients).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "platform" => Some(AuthenticatorAttachment::Platform),
            "cross-platform" => Some(AuthenticatorAttachment::CrossPlatform),
            _ => None,
        }
    }
}

/// A UI hint (`PublicKeyCredentialHint`, WebAuthn Level 3 §5.8.7), most preferred first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PublicKeyCredentialHint {
    /// A physical security key.
    #[serde(rename = "security-key")]
    SecurityKey,
    /// The platform authenticator of the device in use.
    #[serde(rename = "client-device")]
    ClientDevice,
    /// A general-purpose authenticator such as a phone, over hybrid transport.
    #[serde(rename = "hybrid")]
    Hybrid,
}

impl PublicKeyCredentialHint {
    /// The WebAuthn string form.
    pub fn as_str(self) -> &'static str {
        match self {
            PublicKeyCredentialHint::SecurityKey => "security-key",
            PublicKeyCredentialHint::ClientDevice => "client-device",
            PublicKeyCredentialHint::Hybrid => "hybrid",
        }
    }
}

/// The attestation conveyance preference (`attestation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttestationConveyance {
    /// No attestation wanted (the default: no privacy prompt).
    #[default]
    None,
    /// An attestation is wanted; the client may anonymize it.
    Indirect,
    /// The authenticator's own attestation is wanted.
    Direct,
    /// Enterprise attestation (uniquely identifying; only for managed devices).
    Enterprise,
}

impl AttestationConveyance {
    /// The WebAuthn string form.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationConveyance::None => "none",
            AttestationConveyance::Indirect => "indirect",
            AttestationConveyance::Direct => "direct",
            AttestationConveyance::Enterprise => "enterprise",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_serializes_to_its_webauthn_string_and_back() {
        fn round<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
            v: T,
            s: &str,
        ) {
            assert_eq!(serde_json::to_value(&v).unwrap(), s);
            assert_eq!(serde_json::from_value::<T>(s.into()).unwrap(), v);
        }
        for v in [
            ResidentKeyRequirement::Discouraged,
            ResidentKeyRequirement::Preferred,
            ResidentKeyRequirement::Required,
        ] {
            round(v, v.as_str());
        }
        for v in [
            AuthenticatorAttachment::Platform,
            AuthenticatorAttachment::CrossPlatform,
        ] {
            round(v, v.as_str());
            assert_eq!(AuthenticatorAttachment::parse(v.as_str()), Some(v));
        }
        for v in [
            PublicKeyCredentialHint::SecurityKey,
            PublicKeyCredentialHint::ClientDevice,
            PublicKeyCredentialHint::Hybrid,
        ] {
            round(v, v.as_str());
        }
        for v in [
            AttestationConveyance::None,
            AttestationConveyance::Indirect,
            AttestationConveyance::Direct,
            AttestationConveyance::Enterprise,
        ] {
            round(v, v.as_str());
        }
        for v in [
            UserVerification::Required,
            UserVerification::Preferred,
            UserVerification::Discouraged,
        ] {
            round(v, v.as_str());
        }
        assert!(serde_json::from_value::<ResidentKeyRequirement>("requried".into()).is_err());
        assert_eq!(AuthenticatorAttachment::parse("platfrom"), None);
    }
}
