//! Relying-party configuration: who we are, which origins may talk to us, and the policies the
//! ceremonies enforce.

use std::time::Duration;

use super::alg;
use super::attestation::AttestationPolicy;
use super::json::WellKnownWebAuthnJson;
use super::options::{AttestationConveyance, UserVerification};
use super::verify::SignatureBackend;
use crate::error::{Error, Result};

/// The path browsers fetch on the rp id's host for Related Origin Requests.
pub const WELL_KNOWN_WEBAUTHN_PATH: &str = "/.well-known/webauthn";

/// The most registrable-domain labels (`example` of `example.co.uk`) browsers honour in
/// `/.well-known/webauthn` (WebAuthn Level 3 §5.11.1; Chromium and Safari use 5): origins past
/// the fifth label are ignored, so configuring them is refused.
pub const MAX_RELATED_ORIGIN_LABELS: usize = 5;

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

/// What to do when a credential's backup-eligible (BE) flag differs from the one registered.
///
/// WebAuthn Level 3 says BE never changes, yet iCloud Keychain and other providers flip it when a
/// device-bound credential becomes synced (or a provider is reinstalled); refusing such an
/// assertion locks the user out of the account. keyward's default accepts it and reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackupEligibilityPolicy {
    /// Accept, store the new flag and set
    /// [`VerifiedAssertion::backup_eligibility_changed`](super::VerifiedAssertion::backup_eligibility_changed).
    #[default]
    Report,
    /// Refuse with [`WebAuthnFailure::BackupEligibilityChanged`](super::WebAuthnFailure::BackupEligibilityChanged).
    Reject,
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
    /// Signature (default 4 KiB: an ML-DSA-65 signature is 3,309 bytes, RSA-8192 1,024).
    pub signature: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            client_data_json: 4096,
            attestation_object: 64 * 1024,
            authenticator_data: 8192,
            signature: 4096,
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
    pub(crate) related_origins: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) user_verification: UserVerification,
    pub(crate) require_uv_after_uv_registration: bool,
    pub(crate) algorithms: Vec<i64>,
    pub(crate) counter_policy: CounterPolicy,
    pub(crate) backup_eligibility_policy: BackupEligibilityPolicy,
    pub(crate) attestation_preference: AttestationConveyance,
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

/// The prefix of the opaque origins Android apps present (`android:apk-key-hash:<b64url
/// SHA-256 of the signing certificate>`).
const ANDROID_APK_ORIGIN: &str = "android:apk-key-hash:";

/// Hosts browsers treat as secure contexts over plain `http`.
fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks an RP id: a lowercase domain name (or IP literal) that is not a public suffix.
pub(crate) fn check_rp_id(rp_id: &str) -> Result<()> {
    let refuse = |why: &str| Err(Error::config(format!("rp id {rp_id:?} {why}")));
    if rp_id.is_empty() || rp_id.len() > 253 {
        return refuse("must be a domain name of 1 to 253 characters");
    }
    if rp_id.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let labels_ok = rp_id.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !labels_ok {
        return refuse(
            "must be a lowercase domain name (letters, digits, hyphens; punycode for IDNs) \
             without scheme, port or path",
        );
    }
    // A public suffix (`com`, `co.uk`, `github.io`) cannot be an RP id: browsers refuse it. A
    // single label that is not a known suffix (`localhost`, an intranet name) is allowed.
    if psl::suffix(rp_id.as_bytes())
        .is_some_and(|s| s.is_known() && s.as_bytes() == rp_id.as_bytes())
    {
        return refuse("is a public suffix; use the registrable domain (example.com)");
    }
    Ok(())
}

/// The registrable-domain label of a web origin's host (`example` for `https://a.example.co.uk`),
/// as browsers count them for Related Origin Requests; `None` when the host has no registrable
/// domain under a known public suffix (an IP literal, `localhost`).
fn registrable_label(origin: &str) -> Option<String> {
    let (_, host, _) = split_web_origin(origin)?;
    let domain = psl::domain(host.as_bytes())?;
    let suffix = domain.suffix();
    if !suffix.is_known() {
        return None;
    }
    let label = domain
        .as_bytes()
        .strip_suffix(suffix.as_bytes())?
        .strip_suffix(b".")?;
    let label = std::str::from_utf8(label).ok()?;
    (!label.is_empty()).then(|| label.to_owned())
}

/// `host` is `rp_id` or a subdomain of it (IP literals only when equal).
fn host_within_rp_id(host: &str, rp_id: &str) -> bool {
    if host == rp_id {
        return true;
    }
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    host.len() > rp_id.len() + 1
        && host.ends_with(rp_id)
        && host.as_bytes().get(host.len() - rp_id.len() - 1) == Some(&b'.')
}

/// Checks and normalizes a configured origin the way browsers serialize origins: lowercase
/// scheme and host, no default port, no path. `rp_id`, when given, must be a registrable suffix of
/// the host (the origins of a relying party; top origins are any site that embeds it).
pub(crate) fn normalize_origin(origin: &str, rp_id: Option<&str>) -> Result<String> {
    let refuse = |why: &str| Err(Error::config(format!("origin {origin:?} {why}")));
    if origin.is_empty() || origin.len() > 512 {
        return refuse("must be 1 to 512 characters");
    }
    if let Some(hash) = origin.strip_prefix(ANDROID_APK_ORIGIN) {
        let valid = !hash.is_empty()
            && hash.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'=')
            });
        if !valid {
            return refuse("must carry the base64 SHA-256 of the app's signing certificate");
        }
        return Ok(origin.to_owned());
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return refuse(
            "must be a web origin (https://host[:port]) or an android:apk-key-hash: origin",
        );
    };
    let scheme = scheme.to_ascii_lowercase();
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return refuse("must be scheme://host[:port] without a path or trailing slash");
    }
    let (host, port) = if rest.starts_with('[') {
        match rest.find(']') {
            Some(end) => {
                let (host, after) = rest.split_at(end + 1);
                match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if after.is_empty() => (host, None),
                    None => return refuse("has a malformed host"),
                }
            }
            None => return refuse("has a malformed host"),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return refuse("has an empty host");
    }
    let host = host.to_ascii_lowercase();
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && !p.starts_with('0') => Some(n),
            _ => return refuse("has an invalid port"),
        },
        None => None,
    };
    match scheme.as_str() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return refuse(
                "uses http: browsers offer WebAuthn only to https origins (and http://localhost)",
            );
        }
        _ => return refuse("must use https (or http on localhost)"),
    }
    if let Some(rp_id) = rp_id
        && !host_within_rp_id(&host, rp_id)
    {
        return Err(Error::config(format!(
            "origin {origin:?}: rp id {rp_id:?} is not its host or a parent domain of it"
        )));
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    Ok(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

impl RelyingPartyConfig {
    /// A relying party `rp_id` (a registrable domain, `example.com`) named `rp_name`, reached from
    /// `origin` (`https://example.com`).
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config), naming the value, when the rp id
    /// is not a lowercase domain name (or IP literal) or is a public suffix (`com`, `github.io`),
    /// or when the origin is not `https://host[:port]` (`http` only on localhost) whose host is
    /// the rp id or a subdomain of it. Defaults: 5-minute timeout, UV preferred, ES256, EdDSA,
    /// ES384, PS256 and RS256, counter regressions rejected, attestation `none`, `ring`.
    pub fn new(
        rp_id: impl Into<String>,
        rp_name: impl Into<String>,
        origin: impl Into<String>,
    ) -> Result<Self> {
        let rp_id = rp_id.into();
        check_rp_id(&rp_id)?;
        let origin = normalize_origin(&origin.into(), Some(&rp_id))?;
        Ok(RelyingPartyConfig {
            rp_id_hash: sha256(rp_id.as_bytes()),
            rp_id,
            rp_name: rp_name.into(),
            origins: vec![origin],
            allow_subdomains: false,
            top_origins: Vec::new(),
            related_origins: Vec::new(),
            timeout: Duration::from_secs(300),
            user_verification: UserVerification::Preferred,
            require_uv_after_uv_registration: true,
            algorithms: vec![alg::ES256, alg::EDDSA, alg::ES384, alg::PS256, alg::RS256],
            counter_policy: CounterPolicy::Reject,
            backup_eligibility_policy: BackupEligibilityPolicy::Report,
            attestation_preference: AttestationConveyance::None,
            attestation_policy: AttestationPolicy::default(),
            backend: SignatureBackend::default(),
            appid: None,
            limits: Limits::default(),
        })
    }

    /// Allows another origin. Web origins (`https://host[:port]`, or `http` on localhost) must
    /// have the rp id as host or parent domain; they are normalized as browsers serialize them
    /// (lowercase, no default port) and then compared exactly, as are opaque Android origins
    /// (`android:apk-key-hash:...`).
    pub fn origin(mut self, origin: impl Into<String>) -> Result<Self> {
        let origin = normalize_origin(&origin.into(), Some(&self.rp_id))?;
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
        let origin = normalize_origin(&top_origin.into(), None)?;
        self.top_origins.push(origin);
        Ok(self)
    }

    /// Allows an origin of another site to run ceremonies for this rp id (Related Origin
    /// Requests, WebAuthn Level 3 §5.11.1): `https://example.co.uk` for the rp id
    /// `example.com`. The browser accepts it only if `https://<rp id>/.well-known/webauthn`
    /// lists it: serve [`well_known_webauthn`](Self::well_known_webauthn) there.
    ///
    /// A related origin is matched exactly: never its subdomains (even with
    /// [`allow_subdomains`](Self::allow_subdomains)), never as a top origin, and an assertion
    /// from it must be scoped to the rp id itself (not to a legacy [`appid`](Self::appid)).
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) when the origin is not
    /// `https://host[:port]`, is within the rp id (use [`origin`](Self::origin)), has no
    /// registrable domain under a known public suffix (browsers skip such entries), or would
    /// bring the related origins past [`MAX_RELATED_ORIGIN_LABELS`] distinct labels.
    pub fn related_origin(mut self, origin: impl Into<String>) -> Result<Self> {
        let origin = origin.into();
        let normalized = normalize_origin(&origin, None)?;
        let refuse = |why: &str| Err(Error::config(format!("related origin {origin:?} {why}")));
        let Some((scheme, host, _)) = split_web_origin(&normalized) else {
            return refuse("must be a web origin https://host[:port]");
        };
        if scheme != "https" {
            return refuse("must use https");
        }
        if host_within_rp_id(host, &self.rp_id) {
            return refuse("is within the rp id: allow it with origin() instead");
        }
        let Some(label) = registrable_label(&normalized) else {
            return refuse("has no registrable domain under a known public suffix");
        };
        if self.related_origins.contains(&normalized) {
            return Ok(self);
        }
        let mut labels: Vec<String> = self
            .related_origins
            .iter()
            .filter_map(|o| registrable_label(o))
            .collect();
        labels.sort();
        labels.dedup();
        if !labels.contains(&label) && labels.len() >= MAX_RELATED_ORIGIN_LABELS {
            return refuse(&format!(
                "would be a label past the {MAX_RELATED_ORIGIN_LABELS} that browsers honour"
            ));
        }
        self.related_origins.push(normalized);
        Ok(self)
    }

    /// The configured related origins, normalized.
    pub fn related_origins(&self) -> &[String] {
        &self.related_origins
    }

    /// The JSON document to serve at `https://<rp id>/.well-known/webauthn`
    /// ([`WELL_KNOWN_WEBAUTHN_PATH`]) with `Content-Type: application/json`: the related
    /// origins, in configuration order.
    ///
    /// ```
    /// use keyward::webauthn::RelyingPartyConfig;
    /// let config = RelyingPartyConfig::new("example.com", "Example", "https://example.com")?
    ///     .related_origin("https://example.co.uk")?
    ///     .related_origin("https://shop.example.de")?;
    /// assert_eq!(
    ///     config.well_known_webauthn_json(),
    ///     r#"{"origins":["https://example.co.uk","https://shop.example.de"]}"#
    /// );
    /// assert!(config.origin_allowed("https://example.co.uk"));
    /// assert!(!config.origin_allowed("https://www.example.co.uk"));
    /// # Ok::<(), keyward::Error>(())
    /// ```
    pub fn well_known_webauthn(&self) -> WellKnownWebAuthnJson {
        WellKnownWebAuthnJson {
            origins: self.related_origins.clone(),
        }
    }

    /// [`well_known_webauthn`](Self::well_known_webauthn) as JSON text.
    pub fn well_known_webauthn_json(&self) -> String {
        // A struct of one list of strings always serializes.
        serde_json::to_string(&self.well_known_webauthn()).unwrap_or_default()
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
    /// are refused. ES512 ([`alg::ES512`](super::alg::ES512), P-521) and, with the `ml-dsa`
    /// feature, ML-DSA-44 and ML-DSA-65 are known but not in the default list: add them here to
    /// accept them.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = i64>) -> Result<Self> {
        let algorithms: Vec<i64> = algorithms.into_iter().collect();
        let known = [
            alg::ES256,
            alg::EDDSA,
            alg::ES384,
            alg::ES512,
            alg::PS256,
            alg::RS256,
        ];
        if cfg!(not(feature = "ml-dsa"))
            && algorithms
                .iter()
                .any(|a| [alg::ML_DSA_44, alg::ML_DSA_65].contains(a))
        {
            return Err(Error::config(
                "ML-DSA-44 and ML-DSA-65 need keyward's ml-dsa feature",
            ));
        }
        let known_here = |a: &i64| {
            known.contains(a)
                || (cfg!(feature = "ml-dsa") && [alg::ML_DSA_44, alg::ML_DSA_65].contains(a))
        };
        if algorithms.is_empty() || !algorithms.iter().all(known_here) {
            return Err(Error::config(
                "algorithms must be a non-empty list of ES256, EdDSA, ES384, ES512, PS256, RS256 \
                 (and ML-DSA-44, ML-DSA-65 with the ml-dsa feature)",
            ));
        }
        self.algorithms = algorithms;
        Ok(self)
    }

    /// What to do when the backup-eligible flag changed since registration (default
    /// [`BackupEligibilityPolicy::Report`]).
    pub fn backup_eligibility_policy(mut self, policy: BackupEligibilityPolicy) -> Self {
        self.backup_eligibility_policy = policy;
        self
    }

    /// What to do about a signature counter that did not increase.
    pub fn counter_policy(mut self, policy: CounterPolicy) -> Self {
        self.counter_policy = policy;
        self
    }

    /// The attestation conveyance preference sent to browsers (default
    /// [`AttestationConveyance::None`]).
    pub fn attestation_preference(mut self, preference: AttestationConveyance) -> Self {
        self.attestation_preference = preference;
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

    /// Whether `origin` (from clientDataJSON) is allowed: one of the origins (or, with
    /// [`allow_subdomains`](Self::allow_subdomains), a subdomain of one), or exactly one of the
    /// [related origins](Self::related_origin).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|allowed| {
            origin == allowed || (self.allow_subdomains && is_subdomain_origin(origin, allowed))
        }) || self.is_related_origin(origin)
    }

    /// Whether `origin` is exactly one of the related origins.
    pub(crate) fn is_related_origin(&self, origin: &str) -> bool {
        self.related_origins.iter().any(|related| origin == related)
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
    fn related_origins_are_exact_other_sites_within_the_label_limit() {
        let c = RelyingPartyConfig::new("example.com", "Ex", "https://example.com")
            .unwrap()
            .allow_subdomains(true)
            .related_origin("https://Example.co.uk:443")
            .unwrap()
            .related_origin("https://shop.example.de:8443")
            .unwrap()
            // Same label as example.co.uk: does not count twice.
            .related_origin("https://example.fr")
            .unwrap();
        assert_eq!(
            c.related_origins(),
            [
                "https://example.co.uk",
                "https://shop.example.de:8443",
                "https://example.fr"
            ]
        );
        assert!(c.origin_allowed("https://example.co.uk"));
        assert!(c.origin_allowed("https://shop.example.de:8443"));
        // Exact only: no subdomain, no other port or scheme, even with allow_subdomains.
        assert!(!c.origin_allowed("https://www.example.co.uk"));
        assert!(!c.origin_allowed("https://shop.example.de"));
        assert!(!c.origin_allowed("http://example.co.uk"));
        assert!(!c.origin_allowed("https://example.org"));
        assert!(!c.top_origin_allowed("https://example.co.uk"));
        // The rp id's own subdomains still follow allow_subdomains.
        assert!(c.origin_allowed("https://login.example.com"));
        let json: serde_json::Value = serde_json::from_str(&c.well_known_webauthn_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"origins": ["https://example.co.uk", "https://shop.example.de:8443", "https://example.fr"]})
        );
        // Adding one again changes nothing.
        let again = c.clone().related_origin("https://example.co.uk").unwrap();
        assert_eq!(again.related_origins().len(), 3);
    }

    #[test]
    fn related_origins_that_browsers_would_skip_are_refused() {
        let c = RelyingPartyConfig::new("example.com", "Ex", "https://example.com").unwrap();
        for bad in [
            "https://login.example.com",   // within the rp id: origin()
            "https://example.com",         // the rp id itself
            "http://example.co.uk",        // not https
            "http://localhost:8080",       // no registrable domain
            "https://127.0.0.1",           // an IP literal
            "https://github.io",           // a public suffix
            "android:apk-key-hash:abc",    // not a web origin
            "https://example.co.uk/login", // a path
        ] {
            let err = c.clone().related_origin(bad).unwrap_err();
            assert_eq!(err.kind(), &crate::ErrorKind::Config, "{bad}");
        }
        let mut c = c;
        for site in ["a.com", "b.com", "c.com", "d.com", "e.com"] {
            c = c.related_origin(format!("https://{site}")).unwrap();
        }
        // A sixth label is past what browsers honour; another origin of a counted label is not.
        assert!(c.clone().related_origin("https://f.com").is_err());
        assert!(c.related_origin("https://www.a.com").is_ok());
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(RelyingPartyConfig::new("", "Ex", "https://example.com").is_err());
        assert!(RelyingPartyConfig::new("example.com", "Ex", "https://example.com/").is_err());
        let c = RelyingPartyConfig::new("example.com", "Ex", "https://example.com").unwrap();
        assert!(c.clone().algorithms([-7, -36]).is_ok());
        assert!(c.clone().algorithms([-7, -47]).is_err());
        assert!(c.algorithms([]).is_err());
    }
}
