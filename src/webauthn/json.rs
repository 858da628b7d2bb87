//! The WebAuthn Level 3 JSON forms, exactly as browsers' `toJSON()` emits them and
//! `PublicKeyCredential.parseCreationOptionsFromJSON()` / `parseRequestOptionsFromJSON()` accept
//! them. Binary members are [`Base64UrlBytes`].

use serde::{Deserialize, Serialize};

use super::b64::Base64UrlBytes;
use super::options::{
    AttestationConveyance, AuthenticatorAttachment, PublicKeyCredentialHint,
    ResidentKeyRequirement, UserVerification,
};

/// `PublicKeyCredentialRpEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpEntityJson {
    /// Relying party id (a registrable domain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human-readable name.
    pub name: String,
}

/// `PublicKeyCredentialUserEntityJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEntityJson {
    /// User handle (at most 64 bytes, no personal data).
    pub id: Base64UrlBytes,
    /// Account name.
    pub name: String,
    /// Display name.
    pub display_name: String,
}

/// `PublicKeyCredentialParameters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubKeyCredParamJson {
    /// Always `"public-key"`.
    #[serde(rename = "type")]
    pub kind: PublicKeyType,
    /// COSE algorithm identifier.
    pub alg: i64,
}

/// The only credential type WebAuthn defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PublicKeyType {
    /// `"public-key"`.
    #[default]
    #[serde(rename = "public-key")]
    PublicKey,
}

/// `PublicKeyCredentialDescriptorJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialDescriptorJson {
    /// Always `"public-key"`.
    #[serde(rename = "type")]
    pub kind: PublicKeyType,
    /// Credential id.
    pub id: Base64UrlBytes,
    /// Transport hints (`usb`, `nfc`, `ble`, `internal`, `hybrid`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
}

/// `AuthenticatorSelectionCriteria`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelectionJson {
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<AuthenticatorAttachment>,
    /// `discouraged`, `preferred` or `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_key: Option<ResidentKeyRequirement>,
    /// Level 1 form of `residentKey == required`.
    #[serde(default)]
    pub require_resident_key: bool,
    /// `discouraged`, `preferred` or `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<UserVerification>,
}

/// `PublicKeyCredentialCreationOptionsJSON`: what `navigator.credentials.create()` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationOptionsJson {
    /// The relying party.
    pub rp: RpEntityJson,
    /// The user.
    pub user: UserEntityJson,
    /// The challenge.
    pub challenge: Base64UrlBytes,
    /// Acceptable algorithms, most preferred first.
    pub pub_key_cred_params: Vec<PubKeyCredParamJson>,
    /// Timeout in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Credentials the user already has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_credentials: Vec<CredentialDescriptorJson>,
    /// Authenticator requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticator_selection: Option<AuthenticatorSelectionJson>,
    /// UI hints (`security-key`, `client-device`, `hybrid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<PublicKeyCredentialHint>,
    /// `none`, `indirect`, `direct` or `enterprise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationConveyance>,
    /// Preferred attestation formats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestation_formats: Vec<String>,
    /// Extension inputs (`{"credProps": true}`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `PublicKeyCredentialRequestOptionsJSON`: what `navigator.credentials.get()` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOptionsJson {
    /// The challenge.
    pub challenge: Base64UrlBytes,
    /// Timeout in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Relying party id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
    /// Credentials allowed (empty for discoverable credentials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_credentials: Vec<CredentialDescriptorJson>,
    /// `discouraged`, `preferred` or `required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<UserVerification>,
    /// UI hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<PublicKeyCredentialHint>,
    /// Extension inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `AuthenticatorAttestationResponseJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponseJson {
    /// The client data, as signed.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: Base64UrlBytes,
    /// The attestation object (CBOR).
    pub attestation_object: Base64UrlBytes,
    /// Convenience copy of the authenticator data (Level 3; ignored, derived from the object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_data: Option<Base64UrlBytes>,
    /// Transports the authenticator supports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
    /// Convenience SPKI public key (Level 3; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<Base64UrlBytes>,
    /// Convenience algorithm (Level 3; ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_algorithm: Option<i64>,
}

/// `RegistrationResponseJSON`: what `credential.toJSON()` gives after `create()`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponseJson {
    /// Credential id, base64url (must equal `rawId`).
    pub id: String,
    /// Credential id.
    pub raw_id: Base64UrlBytes,
    /// Always `"public-key"`.
    #[serde(rename = "type")]
    pub kind: PublicKeyType,
    /// The attestation response.
    pub response: AttestationResponseJson,
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// Extension outputs.
    #[serde(default)]
    pub client_extension_results: serde_json::Map<String, serde_json::Value>,
}

/// `AuthenticatorAssertionResponseJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponseJson {
    /// The client data, as signed.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: Base64UrlBytes,
    /// The authenticator data, as signed.
    pub authenticator_data: Base64UrlBytes,
    /// The signature over `authenticatorData || SHA-256(clientDataJSON)`.
    pub signature: Base64UrlBytes,
    /// The user handle (discoverable credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<Base64UrlBytes>,
}

/// `AuthenticationResponseJSON`: what `credential.toJSON()` gives after `get()`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationResponseJson {
    /// Credential id, base64url (must equal `rawId`).
    pub id: String,
    /// Credential id.
    pub raw_id: Base64UrlBytes,
    /// Always `"public-key"`.
    #[serde(rename = "type")]
    pub kind: PublicKeyType,
    /// The assertion response.
    pub response: AssertionResponseJson,
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// Extension outputs.
    #[serde(default)]
    pub client_extension_results: serde_json::Map<String, serde_json::Value>,
}

/// `Debug` shows which extensions answered, never their values (PRF outputs and large blobs are
/// secrets).
impl std::fmt::Debug for RegistrationResponseJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationResponseJson")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("response", &self.response)
            .field("authenticator_attachment", &self.authenticator_attachment)
            .field(
                "client_extension_results",
                &ExtensionKeys(&self.client_extension_results),
            )
            .finish_non_exhaustive()
    }
}

/// `Debug` shows which extensions answered, never their values (PRF outputs and large blobs are
/// secrets).
impl std::fmt::Debug for AuthenticationResponseJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticationResponseJson")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("response", &self.response)
            .field("authenticator_attachment", &self.authenticator_attachment)
            .field(
                "client_extension_results",
                &ExtensionKeys(&self.client_extension_results),
            )
            .finish_non_exhaustive()
    }
}

/// Prints the extension identifiers of a results map, not the values.
struct ExtensionKeys<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl std::fmt::Debug for ExtensionKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// `UnknownCredentialOptions`: pass to `PublicKeyCredential.signalUnknownCredential()` when a
/// sign-in used a credential the relying party does not know (deleted, or never registered), so
/// the passkey provider can hide or remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownCredentialSignalJson {
    /// The relying party id.
    pub rp_id: String,
    /// The unknown credential.
    pub credential_id: Base64UrlBytes,
}

/// `AllAcceptedCredentialsOptions`: pass to
/// `PublicKeyCredential.signalAllAcceptedCredentials()` so the provider keeps only these
/// credentials of the user (for instance after one was deleted in account settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllAcceptedCredentialsSignalJson {
    /// The relying party id.
    pub rp_id: String,
    /// The user handle.
    pub user_id: Base64UrlBytes,
    /// Every credential id the relying party still accepts for the user.
    pub all_accepted_credential_ids: Vec<Base64UrlBytes>,
}

/// `CurrentUserDetailsOptions`: pass to `PublicKeyCredential.signalCurrentUserDetails()` after
/// the user changed their name, so the provider shows the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUserDetailsSignalJson {
    /// The relying party id.
    pub rp_id: String,
    /// The user handle.
    pub user_id: Base64UrlBytes,
    /// Account name.
    pub name: String,
    /// Display name.
    pub display_name: String,
}

/// The body of `https://<rp id>/.well-known/webauthn` (WebAuthn Level 3 §5.11.1, Related Origin
/// Requests): the other sites' origins allowed to run ceremonies for the rp id. Serve it as
/// `application/json`; build it with
/// [`RelyingPartyConfig::well_known_webauthn`](super::RelyingPartyConfig::well_known_webauthn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WellKnownWebAuthnJson {
    /// The related origins, in configuration order.
    pub origins: Vec<String>,
}
