//! Relying-party configuration: who we are, which origins may talk to us, and the policies the
//! ceremonies enforce.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alg;
use super::attestation::AttestationPolicy;
use super::verify::SignatureBackend;
use crate::error::{Error, Result};

/// The user-verification requirement (`userVerification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "required" => UserVerification::Required,
            "discouraged" => UserVerification::Discouraged,
            _ => UserVerification::Preferred,
        }
    }
}

/// What to do when an authenticator's signature counter did not increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterPolicy {
    /// Refuse the assertion with [`WebAuthnFailure::CounterRegression`](super::WebAuthnFailure::CounterRegression).
    #[default]
    Reject,
    /// Accept it and set [`VerifiedAssertion::counter_regressed`](super::VerifiedAssertion::counter_regressed)
    /// so the host can flag the account.
    Report,
}

/// Upper bounds on untrusted inputs, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// clientDataJSON (default 4 KiB).
    pub client_data_json: usize,
    /// Attestation object (default 64 KiB: certificate chains).
    pub attestation_object: usize,
    /// Authenticator data (default 8 KiB).
    pub authenticator_data: usize,
    /// Signature (default 1 KiB: RSA-8192).
    pub signature: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            client_data_json: 4096,
            attestation_object: 64 * 1024,
            authenticator_data: 8192,
            signature: 1024,
        }
    }
}

/// How a relying party is set up. Build with [`RelyingPartyConfig::new`] and the setters.
///
/// ```
/// use std::time::Duration;
/// use keyward::webauthn::{RelyingPartyConfig, UserVerification};
/// let config = RelyingPartyConfig::new("example.com", "Example", "https://example.com")?
///     .origin("android:apk-key-hash:AbCdEf")?
///     .user_verification(UserVerification::Required)
///     .timeout(Duration::from_secs(120));
/// assert!(config.origin_allowed("https://example.com"));
/// assert!(!config.origin_allowed("https://login.example.com"));
/// # Ok::<(), keyward::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RelyingPartyConfig {
    pub(crate) rp_id: String,
    pub(crate) rp_name: String,
    pub(crate) origins: Vec<String>,
    pub(crate) allow_subdomains: bool,
    pub(crate) top_origins: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) user_verification: UserVerification,
    pub(crate) require_uv_after_uv_registration: bool,
    pub(crate) algorithms: Vec<i64>,
    pub(crate) counter_policy: CounterPolicy,
    pub(crate) attestation_preference: String,
    pub(crate) attestation_policy: AttestationPolicy,
    pub(crate) backend: SignatureBackend,
    pub(crate) appid: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) rp_id_hash: [u8; 32],
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

fn check_origin(origin: &str) -> Result<()> {
    if origin.is_empty() || origin.len() > 512 {
        return Err(Error::config("origin must be 1 to 512 characters"));
    }
    if let Some((_, rest)) = origin.split_once("://")
        && (rest.is_empty() || rest.contains('/'))
    {
        return Err(Error::config(
            "web origins are scheme://host[:port] without a path or trailing slash",
        ));
    }
    Ok(())
}

impl RelyingPartyConfig {
    /// A relying party `rp_id` (a registrable domain, `example.com`) named `rp_name`, reached from
    /// `origin` (`https://example.com`). Defaults: 5-minute timeout, UV preferred, ES256, EdDSA,
    /// ES384, PS256 and RS256, counter regressions rejected, attestation `none`, `ring`.
    pub fn new(
        rp_id: impl Into<String>,
        rp_name: impl Into<String>,
        origin: impl Into<String>,
    ) -> Result<Self> {
        let rp_id = rp_id.into();
        if rp_id.is_empty() || rp_id.len() > 253 || rp_id.contains('/') || rp_id.contains(':') {
            return Err(Error::config("rp id must be a domain name"));
        }
        let origin = origin.into();
        check_origin(&origin)?;
        Ok(RelyingPartyConfig {
            rp_id_hash: sha256(rp_id.as_bytes()),
            rp_id,
            rp_name: rp_name.into(),
            origins: vec![origin],
            allow_subdomains: false,
            top_origins: Vec::new(),
            timeout: Duration::from_secs(300),
            user_verification: UserVerification::Preferred,
            require_uv_after_uv_registration: true,
            algorithms: vec![alg::ES256, alg::EDDSA, alg::ES384, alg::PS256, alg::RS256],
            counter_policy: CounterPolicy::Reject,
            attestation_preference: "none".to_owned(),
            attestation_policy: AttestationPolicy::default(),
            backend: SignatureBackend::Ring,
            appid: None,
            limits: Limits::default(),
        })
    }

    /// Allows another origin. Web origins (`https://host[:port]`) and opaque origins
    /// (`android:apk-key-hash:...`) are compared exactly.
    pub fn origin(mut self, origin: impl Into<String>) -> Result<Self> {
        let origin = origin.into();
        check_origin(&origin)?;
        self.origins.push(origin);
        Ok(self)
    }

    /// Also accept subdomains of the allowed web origins (same scheme and port). Off by default.
    pub fn allow_subdomains(mut self, allow: bool) -> Self {
        self.allow_subdomains = allow;
        self
    }

    /// Allows ceremonies from a cross-origin iframe embedded in `top_origin`. Without any top
    /// origin, `crossOrigin: true` is refused.
    pub fn top_origin(mut self, top_origin: impl Into<String>) -> Result<Self> {
        let origin = top_origin.into();
        check_origin(&origin)?;
        self.top_origins.push(origin);
        Ok(self)
    }

    /// Ceremony timeout: the challenge's lifetime in the store and the browser's `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The user-verification policy for both ceremonies.
    pub fn user_verification(mut self, uv: UserVerification) -> Self {
        self.user_verification = uv;
        self
    }

    /// Whether a credential registered with UV must keep proving UV (default true).
    pub fn require_uv_after_uv_registration(mut self, require: bool) -> Self {
        self.require_uv_after_uv_registration = require;
        self
    }

    /// The COSE algorithms offered at registration, most preferred first. Unknown identifiers
    /// are refused.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = i64>) -> Result<Self> {
        let algorithms: Vec<i64> = algorithms.into_iter().collect();
        let known = [alg::ES256, alg::EDDSA, alg::ES384, alg::PS256, alg::RS256];
        if algorithms.is_empty() || algorithms.iter().any(|a| !known.contains(a)) {
            return Err(Error::config(
                "algorithms must be a non-empty list of ES256, EdDSA, ES384, PS256, RS256",
            ));
        }
        self.algorithms = algorithms;
        Ok(self)
    }

    /// What to do about a signature counter that did not increase.
    pub fn counter_policy(mut self, policy: CounterPolicy) -> Self {
        self.counter_policy = policy;
        self
    }

    /// The attestation conveyance preference sent to browsers (`none`, `indirect`, `direct`,
    /// `enterprise`).
    pub fn attestation_preference(mut self, preference: impl Into<String>) -> Self {
        self.attestation_preference = preference.into();
        self
    }

    /// The attestation trust policy.
    pub fn attestation_policy(mut self, policy: AttestationPolicy) -> Self {
        self.attestation_policy = policy;
        self
    }

    /// The ES256 signature backend.
    pub fn signature_backend(mut self, backend: SignatureBackend) -> Self {
        self.backend = backend;
        self
    }

    /// The FIDO AppID (`https://example.com/app-id.json`) of legacy U2F credentials. When set,
    /// authentication requests carry the `appid` extension, and an assertion whose rpIdHash is
    /// SHA-256 of the AppID is accepted if the browser reports `appid: true`.
    pub fn appid(mut self, appid: impl Into<String>) -> Self {
        self.appid = Some(appid.into());
        self
    }

    /// Input size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The relying party id.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Whether `origin` (from clientDataJSON) is allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|allowed| {
            origin == allowed || (self.allow_subdomains && is_subdomain_origin(origin, allowed))
        })
    }

    pub(crate) fn top_origin_allowed(&self, origin: &str) -> bool {
        self.top_origins.iter().any(|allowed| origin == allowed)
    }
}

/// `scheme://host[:port]` split into parts; `None` for opaque origins and IPv6 literals.
fn split_web_origin(origin: &str) -> Option<(&str, &str, Option<&str>)> {
    let (scheme, rest) = origin.split_once("://")?;
    if rest.is_empty() || rest.contains(['/', '@', '[', '?', '#']) {
        return None;
    }
    match rest.split_once(':') {
        Some((host, port)) => Some((scheme, host, Some(port))),
        None => Some((scheme, rest, None)),
    }
}

fn is_subdomain_origin(origin: &str, allowed: &str) -> bool {
    let (Some((s1, h1, p1)), Some((s2, h2, p2))) =
        (split_web_origin(origin), split_web_origin(allowed))
    else {
        return false;
    };
    s1 == s2
        && p1 == p2
        && h1.len() > h2.len() + 1
        && h1.ends_with(h2)
        && h1.as_bytes().get(h1.len() - h2.len() - 1) == Some(&b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_unless_subdomains_are_enabled() {
        let c = RelyingPartyConfig::new("example.com", "Ex", "https://example.com:8443")
            .unwrap()
            .origin("android:apk-key-hash:abc")
            .unwrap();
        assert!(c.origin_allowed("https://example.com:8443"));
        assert!(c.origin_allowed("android:apk-key-hash:abc"));
        assert!(!c.origin_allowed("android:apk-key-hash:abcd"));
        assert!(!c.origin_allowed("https://a.example.com:8443"));
        let c = c.allow_subdomains(true);
        assert!(c.origin_allowed("https://a.example.com:8443"));
        assert!(c.origin_allowed("https://b.a.example.com:8443"));
        assert!(!c.origin_allowed("https://a.example.com"));
        assert!(!c.origin_allowed("http://a.example.com:8443"));
        assert!(!c.origin_allowed("https://aexample.com:8443"));
        assert!(!c.origin_allowed("https://evil.com/.example.com:8443"));
        assert!(!c.origin_allowed("x.android:apk-key-hash:abc"));
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(RelyingPartyConfig::new("", "Ex", "https://example.com").is_err());
        assert!(RelyingPartyConfig::new("example.com", "Ex", "https://example.com/").is_err());
        let c = RelyingPartyConfig::new("example.com", "Ex", "https://example.com").unwrap();
        assert!(c.clone().algorithms([-7, -36]).is_err());
        assert!(c.algorithms([]).is_err());
    }
}
