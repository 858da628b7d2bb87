//! WebAuthn extensions: what a ceremony asks for ([`RegistrationExtensions`],
//! [`AuthenticationExtensions`]) and what the client and the authenticator answered
//! ([`RegistrationExtensionOutputs`], [`AssertionExtensionOutputs`]), typed.
//!
//! Supported: `credProps`, `prf` (WebAuthn Level 3 §10.1.4), `largeBlob` (§10.1.5), `appid` and
//! `appidExclude` (§10.1.1-2), and the CTAP 2.1 extensions `credProtect`
//! (`credentialProtectionPolicy`), `credBlob` / `getCredBlob` and `minPinLength`.
//!
//! Outputs are read only for extensions the ceremony asked for (an output nobody requested is
//! ignored, never trusted). Authenticator outputs come from the signed authenticator data; client
//! outputs (`clientExtensionResults`) are the browser's word. PRF outputs and large blobs are
//! [`Secret`]s: never stored by keyward, never printed by `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The `prf` extension's two inputs (salts). The browser hashes each with the context string
/// `"WebAuthn PRF"` before the authenticator's HMAC, so any bytes are acceptable; 32 random bytes
/// per purpose is the usual choice. Inputs are not secret (they travel to the browser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrfInput {
    /// The first input.
    pub first: Vec<u8>,
    /// An optional second input (for key rotation: evaluate the old and the new salt at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second: Option<Vec<u8>>,
}

impl PrfInput {
    /// One input.
    pub fn new(first: impl Into<Vec<u8>>) -> Self {
        PrfInput {
            first: first.into(),
            second: None,
        }
    }

    /// Two inputs.
    pub fn with_second(mut self, second: impl Into<Vec<u8>>) -> Self {
        self.second = Some(second.into());
        self
    }
}

/// PRF outputs: 32 bytes each, secret (derive encryption keys from them). Only the ceremony's
/// result carries them; keyward never stores them.
#[derive(Clone, PartialEq, Eq)]
pub struct PrfOutput {
    /// The output for [`PrfInput::first`].
    pub first: Secret,
    /// The output for [`PrfInput::second`], when one was given.
    pub second: Option<Secret>,
}

impl fmt::Debug for PrfOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrfOutput")
            .field("first", &self.first)
            .field("second", &self.second)
            .finish()
    }
}

/// `largeBlob` at registration (`support`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LargeBlobSupport {
    /// The credential must support large blobs (the browser fails the ceremony otherwise).
    Required,
    /// Large blob support is wanted but optional.
    Preferred,
}

/// The CTAP 2.1 credential protection level (`credentialProtectionPolicy` in, `credProtect` out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CredentialProtectionPolicy {
    /// Level 1: usable without user verification.
    #[serde(rename = "userVerificationOptional")]
    UserVerificationOptional,
    /// Level 2: discoverable use (no allow list) needs UV; with its credential id, UV is optional.
    #[serde(rename = "userVerificationOptionalWithCredentialIDList")]
    UserVerificationOptionalWithCredentialIdList,
    /// Level 3: every use needs user verification.
    #[serde(rename = "userVerificationRequired")]
    UserVerificationRequired,
}

impl CredentialProtectionPolicy {
    /// The CTAP level (1, 2 or 3).
    pub fn level(self) -> u8 {
        match self {
            CredentialProtectionPolicy::UserVerificationOptional => 1,
            CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList => 2,
            CredentialProtectionPolicy::UserVerificationRequired => 3,
        }
    }

    /// The policy of a CTAP level.
    pub fn from_level(level: u64) -> Option<Self> {
        match level {
            1 => Some(CredentialProtectionPolicy::UserVerificationOptional),
            2 => Some(CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList),
            3 => Some(CredentialProtectionPolicy::UserVerificationRequired),
            _ => None,
        }
    }
}

/// A `credProtect` request: the level, and whether the ceremony must fail when the authenticator
/// cannot provide it (`enforceCredentialProtectionPolicy`). keyward checks the level the
/// authenticator reports in its signed data: with `enforce`, a lower or missing level is refused
/// with [`WebAuthnFailure::ExtensionNotHonored`](super::WebAuthnFailure::ExtensionNotHonored);
/// without, the level obtained is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredProtect {
    /// The level asked for.
    pub policy: CredentialProtectionPolicy,
    /// Fail the ceremony unless the authenticator applies at least this level.
    pub enforce: bool,
}

/// Extensions asked for at registration. Build with the setters of
/// [`RegistrationRequest`](super::RegistrationRequest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RegistrationExtensions {
    /// `prf`: enable it, and evaluate now when inputs are given (not every authenticator can
    /// evaluate during creation; authenticate again to get outputs then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prf: Option<Option<PrfInput>>,
    /// `largeBlob.support`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_blob: Option<LargeBlobSupport>,
    /// `credentialProtectionPolicy` / `enforceCredentialProtectionPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_protect: Option<CredProtect>,
    /// `credBlob`: up to 32 bytes stored with the credential by the authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_blob: Option<Vec<u8>>,
    /// `minPinLength`: ask the authenticator for its minimum PIN length (it answers only for
    /// RP ids on its configured list).
    #[serde(default)]
    pub min_pin_length: bool,
    /// `appidExclude`: the FIDO AppID whose U2F credentials `excludeCredentials` also covers
    /// (defaults to the configured [`appid`](super::RelyingPartyConfig::appid)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid_exclude: Option<String>,
}

/// `largeBlob` at authentication.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LargeBlobRequest {
    /// Read the credential's blob.
    Read,
    /// Replace the credential's blob (the request must allow exactly one credential).
    Write(Vec<u8>),
}

impl fmt::Debug for LargeBlobRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LargeBlobRequest::Read => f.write_str("Read"),
            LargeBlobRequest::Write(b) => write!(f, "Write({} bytes)", b.len()),
        }
    }
}

/// Extensions asked for at authentication. Build with the setters of
/// [`AuthenticationRequest`](super::AuthenticationRequest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticationExtensions {
    /// `prf.eval`: inputs for whichever credential signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prf_eval: Option<PrfInput>,
    /// `prf.evalByCredential`: inputs per credential id (each must be allowed by the request).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prf_eval_by_credential: BTreeMap<Vec<u8>, PrfInput>,
    /// `largeBlob`: read or write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_blob: Option<LargeBlobRequest>,
    /// `getCredBlob`: return the blob stored with `credBlob` at registration.
    #[serde(default)]
    pub get_cred_blob: bool,
}

impl AuthenticationExtensions {
    #[cfg(feature = "webauthn")]
    pub(crate) fn prf_requested(&self) -> bool {
        self.prf_eval.is_some() || !self.prf_eval_by_credential.is_empty()
    }
}

/// Extension outputs of a registration, stored with the credential (nothing secret: PRF outputs
/// are in [`RegisteredCredential::prf`](super::RegisteredCredential::prf), never stored).
/// `None` means the extension was not requested or nothing was answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RegistrationExtensionOutputs {
    /// Client: `prf.enabled`, whether the credential supports PRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prf_enabled: Option<bool>,
    /// Client: `largeBlob.supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_blob_supported: Option<bool>,
    /// Client: `appidExclude`, whether the AppID was used for exclusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid_exclude: Option<bool>,
    /// Authenticator (signed): the `credProtect` level applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_protect: Option<CredentialProtectionPolicy>,
    /// Authenticator (signed): whether the `credBlob` was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_blob_stored: Option<bool>,
    /// Authenticator (signed): its minimum PIN length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pin_length: Option<u32>,
    /// Authenticator (signed): `hmac-secret`, the CTAP extension behind PRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<bool>,
}

/// The `largeBlob` outcome of an authentication.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LargeBlobOutput {
    /// The blob read (a [`Secret`]: it often holds key material); `None` when the credential has
    /// none.
    Read(Option<Secret>),
    /// Whether the write succeeded.
    Written(bool),
}

impl fmt::Debug for LargeBlobOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LargeBlobOutput::Read(b) => f.debug_tuple("Read").field(b).finish(),
            LargeBlobOutput::Written(w) => f.debug_tuple("Written").field(w).finish(),
        }
    }
}

/// Extension outputs of an authentication, in
/// [`VerifiedAssertion::extensions`](super::VerifiedAssertion::extensions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssertionExtensionOutputs {
    /// Client: `appid`, whether the assertion is scoped to the AppID.
    pub appid: Option<bool>,
    /// Client: `prf.results` (secret).
    pub prf: Option<PrfOutput>,
    /// Client: `largeBlob`.
    pub large_blob: Option<LargeBlobOutput>,
    /// Authenticator (signed): the `credBlob` returned for `getCredBlob`.
    pub cred_blob: Option<Vec<u8>>,
}

#[cfg(feature = "webauthn")]
pub(crate) use parse::*;

#[cfg(feature = "webauthn")]
mod parse {
    use super::*;
    use crate::webauthn::WebAuthnFailure;
    use crate::webauthn::b64::Base64UrlBytes;
    use serde_json::{Map, Value};

    const CLIENT: &str = "clientExtensionResults";
    const AUTHENTICATOR: &str = "authenticator extensions";

    fn b64_json(bytes: &[u8]) -> Value {
        Value::String(Base64UrlBytes(bytes.to_vec()).encode())
    }

    fn prf_values_json(input: &PrfInput) -> Value {
        let mut m = Map::new();
        m.insert("first".into(), b64_json(&input.first));
        if let Some(second) = &input.second {
            m.insert("second".into(), b64_json(second));
        }
        Value::Object(m)
    }

    /// The `extensions` member of creation options.
    pub(crate) fn registration_inputs(
        ext: &RegistrationExtensions,
        appid: Option<&str>,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("credProps".into(), Value::Bool(true));
        if let Some(prf) = &ext.prf {
            let mut p = Map::new();
            if let Some(eval) = prf {
                p.insert("eval".into(), prf_values_json(eval));
            }
            m.insert("prf".into(), Value::Object(p));
        }
        if let Some(support) = ext.large_blob {
            let s = match support {
                LargeBlobSupport::Required => "required",
                LargeBlobSupport::Preferred => "preferred",
            };
            m.insert("largeBlob".into(), serde_json::json!({ "support": s }));
        }
        if let Some(cp) = ext.cred_protect {
            m.insert(
                "credentialProtectionPolicy".into(),
                serde_json::to_value(cp.policy).unwrap_or(Value::Null),
            );
            m.insert(
                "enforceCredentialProtectionPolicy".into(),
                Value::Bool(cp.enforce),
            );
        }
        if let Some(blob) = &ext.cred_blob {
            m.insert("credBlob".into(), b64_json(blob));
        }
        if ext.min_pin_length {
            m.insert("minPinLength".into(), Value::Bool(true));
        }
        if let Some(appid) = ext.appid_exclude.as_deref().or(appid) {
            m.insert("appidExclude".into(), Value::String(appid.to_owned()));
        }
        m
    }

    /// The `extensions` member of request options (`None` when empty).
    pub(crate) fn authentication_inputs(
        ext: &AuthenticationExtensions,
        appid: Option<&str>,
    ) -> Option<Map<String, Value>> {
        let mut m = Map::new();
        if let Some(appid) = appid {
            m.insert("appid".into(), Value::String(appid.to_owned()));
        }
        if ext.prf_requested() {
            let mut p = Map::new();
            if let Some(eval) = &ext.prf_eval {
                p.insert("eval".into(), prf_values_json(eval));
            }
            if !ext.prf_eval_by_credential.is_empty() {
                let by: Map<String, Value> = ext
                    .prf_eval_by_credential
                    .iter()
                    .map(|(id, input)| {
                        (Base64UrlBytes(id.clone()).encode(), prf_values_json(input))
                    })
                    .collect();
                p.insert("evalByCredential".into(), Value::Object(by));
            }
            m.insert("prf".into(), Value::Object(p));
        }
        match &ext.large_blob {
            Some(LargeBlobRequest::Read) => {
                m.insert("largeBlob".into(), serde_json::json!({ "read": true }));
            }
            Some(LargeBlobRequest::Write(blob)) => {
                m.insert(
                    "largeBlob".into(),
                    serde_json::json!({ "write": b64_json(blob) }),
                );
            }
            None => {}
        }
        if ext.get_cred_blob {
            m.insert("getCredBlob".into(), Value::Bool(true));
        }
        (!m.is_empty()).then_some(m)
    }

    fn malformed() -> WebAuthnFailure {
        WebAuthnFailure::Malformed(CLIENT)
    }

    fn opt_bool(v: Option<&Value>) -> Result<Option<bool>, WebAuthnFailure> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(malformed()),
        }
    }

    fn opt_bytes(v: Option<&Value>, max: usize) -> Result<Option<Vec<u8>>, WebAuthnFailure> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                if s.len() > max.div_ceil(3) * 4 + 4 {
                    return Err(WebAuthnFailure::TooLarge(CLIENT));
                }
                Base64UrlBytes::decode(s)
                    .map(|b| Some(b.0))
                    .ok_or_else(malformed)
            }
            Some(_) => Err(malformed()),
        }
    }

    fn object(v: Option<&Value>) -> Result<Option<&Map<String, Value>>, WebAuthnFailure> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(malformed()),
        }
    }

    /// PRF outputs are 32 bytes (HMAC-SHA-256).
    const PRF_LEN: usize = 32;
    /// Largest large blob read back (browsers cap the whole array at a few KiB).
    pub(crate) const MAX_LARGE_BLOB: usize = 64 * 1024;
    /// Largest credBlob (CTAP 2.1 `maxCredBlobLength` is at least 32; none advertises more than
    /// a few hundred bytes).
    pub(crate) const MAX_CRED_BLOB: usize = 1024;

    fn prf_results(prf: &Map<String, Value>) -> Result<Option<PrfOutput>, WebAuthnFailure> {
        let Some(results) = object(prf.get("results"))? else {
            return Ok(None);
        };
        let first = opt_bytes(results.get("first"), PRF_LEN)?.ok_or_else(malformed)?;
        let second = opt_bytes(results.get("second"), PRF_LEN)?;
        if first.len() != PRF_LEN || second.as_ref().is_some_and(|s| s.len() != PRF_LEN) {
            return Err(malformed());
        }
        Ok(Some(PrfOutput {
            first: Secret::from(first),
            second: second.map(Secret::from),
        }))
    }

    /// Decodes the authenticator's extension outputs (a CBOR map, already bounded by the
    /// authenticator-data parser).
    fn authenticator_map(
        raw: Option<&[u8]>,
    ) -> Result<Vec<(String, ciborium::Value)>, WebAuthnFailure> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        let value: ciborium::Value = ciborium::de::from_reader_with_recursion_limit(raw, 16)
            .map_err(|_| WebAuthnFailure::Malformed(AUTHENTICATOR))?;
        let ciborium::Value::Map(entries) = value else {
            return Err(WebAuthnFailure::Malformed(AUTHENTICATOR));
        };
        entries
            .into_iter()
            .map(|(k, v)| match k {
                ciborium::Value::Text(k) => Ok((k, v)),
                _ => Err(WebAuthnFailure::Malformed(AUTHENTICATOR)),
            })
            .collect()
    }

    fn cbor_uint(v: &ciborium::Value) -> Result<u64, WebAuthnFailure> {
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or(WebAuthnFailure::Malformed(AUTHENTICATOR))
    }

    fn cbor_bool(v: &ciborium::Value) -> Result<bool, WebAuthnFailure> {
        v.as_bool().ok_or(WebAuthnFailure::Malformed(AUTHENTICATOR))
    }

    /// Reads a registration's extension outputs for what `requested` asked, and checks
    /// `credProtect`.
    pub(crate) fn registration_outputs(
        requested: &RegistrationExtensions,
        appid_exclude_requested: bool,
        client: &Map<String, Value>,
        authenticator: Option<&[u8]>,
    ) -> Result<(RegistrationExtensionOutputs, Option<PrfOutput>), WebAuthnFailure> {
        let mut out = RegistrationExtensionOutputs::default();
        let mut prf = None;
        if requested.prf.is_some()
            && let Some(p) = object(client.get("prf"))?
        {
            out.prf_enabled = opt_bool(p.get("enabled"))?;
            prf = prf_results(p)?;
            if prf.is_some() && !matches!(requested.prf, Some(Some(_))) {
                prf = None;
            }
        }
        if requested.large_blob.is_some()
            && let Some(lb) = object(client.get("largeBlob"))?
        {
            out.large_blob_supported = opt_bool(lb.get("supported"))?;
        }
        if appid_exclude_requested {
            out.appid_exclude = opt_bool(client.get("appidExclude"))?;
        }
        for (key, value) in authenticator_map(authenticator)? {
            match key.as_str() {
                "credProtect" if requested.cred_protect.is_some() => {
                    out.cred_protect = Some(
                        CredentialProtectionPolicy::from_level(cbor_uint(&value)?)
                            .ok_or(WebAuthnFailure::Malformed(AUTHENTICATOR))?,
                    );
                }
                "credBlob" if requested.cred_blob.is_some() => {
                    out.cred_blob_stored = Some(cbor_bool(&value)?);
                }
                "minPinLength" if requested.min_pin_length => {
                    out.min_pin_length = Some(
                        u32::try_from(cbor_uint(&value)?)
                            .map_err(|_| WebAuthnFailure::Malformed(AUTHENTICATOR))?,
                    );
                }
                "hmac-secret" if requested.prf.is_some() => {
                    out.hmac_secret = Some(cbor_bool(&value)?);
                }
                _ => {}
            }
        }
        if let Some(cp) = requested.cred_protect
            && cp.enforce
            && out.cred_protect.is_none_or(|got| got < cp.policy)
        {
            return Err(WebAuthnFailure::ExtensionNotHonored("credProtect"));
        }
        Ok((out, prf))
    }

    /// Reads an assertion's extension outputs for what `requested` asked.
    pub(crate) fn assertion_outputs(
        requested: &AuthenticationExtensions,
        appid_requested: bool,
        client: &Map<String, Value>,
        authenticator: Option<&[u8]>,
    ) -> Result<AssertionExtensionOutputs, WebAuthnFailure> {
        let mut out = AssertionExtensionOutputs::default();
        if appid_requested {
            out.appid = opt_bool(client.get("appid"))?;
        }
        if requested.prf_requested()
            && let Some(p) = object(client.get("prf"))?
        {
            out.prf = prf_results(p)?;
        }
        match &requested.large_blob {
            Some(LargeBlobRequest::Read) => {
                if let Some(lb) = object(client.get("largeBlob"))? {
                    out.large_blob = Some(LargeBlobOutput::Read(
                        opt_bytes(lb.get("blob"), MAX_LARGE_BLOB)?.map(Secret::from),
                    ));
                }
            }
            Some(LargeBlobRequest::Write(_)) => {
                if let Some(lb) = object(client.get("largeBlob"))?
                    && let Some(w) = opt_bool(lb.get("written"))?
                {
                    out.large_blob = Some(LargeBlobOutput::Written(w));
                }
            }
            None => {}
        }
        if requested.get_cred_blob {
            for (key, value) in authenticator_map(authenticator)? {
                if key == "credBlob" {
                    let bytes = value
                        .into_bytes()
                        .map_err(|_| WebAuthnFailure::Malformed(AUTHENTICATOR))?;
                    if bytes.len() > MAX_CRED_BLOB {
                        return Err(WebAuthnFailure::TooLarge(AUTHENTICATOR));
                    }
                    out.cred_blob = Some(bytes);
                }
            }
        }
        Ok(out)
    }
}
