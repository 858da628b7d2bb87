//! Passkey provider names by AAGUID ("Apple Passwords", "Google Password Manager", ...), so a
//! host can list a user's passkeys the way large sites do.
//!
//! The built-in table is `passkey_aaguids.json` beside this file, copied from the community list
//! (its `source` member says which commit: github.com/passkeydeveloper/passkey-authenticator-aaguids,
//! names only). A host adds or overrides entries with [`PasskeyProviders::with`].
//!
//! An AAGUID is what the authenticator says it is: without trusted attestation it is a hint for
//! display, never a security decision.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const BUILTIN_JSON: &str = include_str!("passkey_aaguids.json");

#[derive(Deserialize)]
struct Table {
    source: String,
    aaguids: HashMap<String, String>,
}

fn builtin() -> &'static (String, HashMap<[u8; 16], String>) {
    static TABLE: OnceLock<(String, HashMap<[u8; 16], String>)> = OnceLock::new();
    TABLE.get_or_init(|| match serde_json::from_str::<Table>(BUILTIN_JSON) {
        Ok(t) => (
            t.source,
            t.aaguids
                .into_iter()
                .filter_map(|(k, v)| parse_aaguid(&k).map(|a| (a, v)))
                .collect(),
        ),
        Err(_) => (String::new(), HashMap::new()),
    })
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, any case).
pub fn parse_aaguid(text: &str) -> Option<[u8; 16]> {
    if text.len() != 36 {
        return None;
    }
    crate::hex::decode_array(&text.replace('-', ""))
}

/// AAGUID → provider name: the built-in community table plus the host's own entries, which win.
///
/// ```
/// use keyward::webauthn::{PasskeyProviders, parse_aaguid};
/// let icloud = parse_aaguid("fbfc3007-154e-4ecc-8c0b-6e020557d7bd").unwrap();
/// let mine = parse_aaguid("00000000-0000-0000-0000-000000000001").unwrap();
/// let names = PasskeyProviders::builtin().with(mine, "Corp token");
/// assert_eq!(names.name(icloud), Some("Apple Passwords"));
/// assert_eq!(names.name(mine), Some("Corp token"));
/// assert_eq!(names.name([0; 16]), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PasskeyProviders {
    overrides: HashMap<[u8; 16], String>,
    include_builtin: bool,
}

impl PasskeyProviders {
    /// The built-in table.
    pub fn builtin() -> Self {
        PasskeyProviders {
            overrides: HashMap::new(),
            include_builtin: true,
        }
    }

    /// Only the host's entries.
    pub fn empty() -> Self {
        PasskeyProviders::default()
    }

    /// Adds or overrides an entry.
    pub fn with(mut self, aaguid: [u8; 16], name: impl Into<String>) -> Self {
        self.overrides.insert(aaguid, name.into());
        self
    }

    /// The provider name of `aaguid` (`None` for unknown ones and the all-zero AAGUID).
    pub fn name(&self, aaguid: [u8; 16]) -> Option<&str> {
        if aaguid == [0; 16] {
            return None;
        }
        self.overrides.get(&aaguid).map(String::as_str).or_else(|| {
            self.include_builtin
                .then(|| builtin().1.get(&aaguid).map(String::as_str))
                .flatten()
        })
    }

    /// Where the built-in table comes from (its source line).
    pub fn builtin_source() -> &'static str {
        &builtin().0
    }

    /// How many entries the built-in table has.
    pub fn builtin_len() -> usize {
        builtin().1.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_loads_completely_with_its_source() {
        let raw: serde_json::Value = serde_json::from_str(BUILTIN_JSON).unwrap();
        let n = raw["aaguids"].as_object().unwrap().len();
        assert!(n > 10);
        assert_eq!(PasskeyProviders::builtin_len(), n, "every key parses");
        assert!(PasskeyProviders::builtin_source().contains("passkey-authenticator-aaguids"));
        let google = parse_aaguid("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").unwrap();
        assert_eq!(
            PasskeyProviders::builtin().name(google),
            Some("Google Password Manager")
        );
        assert_eq!(PasskeyProviders::empty().name(google), None);
        let overridden = PasskeyProviders::builtin().with(google, "GPM");
        assert_eq!(overridden.name(google), Some("GPM"));
        assert_eq!(parse_aaguid("not-an-aaguid"), None);
        assert_eq!(parse_aaguid("ea9b8d664d011d213ce4b6b48cb575d4"), None);
    }
}
