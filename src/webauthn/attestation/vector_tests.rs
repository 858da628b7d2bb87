//! Every registration vector of `tests/vectors/webauthn/` that carries an attestation statement
//! gets its expected verdict from the format verifiers alone, under the policy the vector
//! implies (`trust_roots_pem`, `trusted_aaguids`, `now_unix`). The attestation object and the
//! authenticator data are decoded here, independently of the relying party's ceremony code.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;

use super::*;
use crate::webauthn::AttestationType;

/// The verification time for vectors that do not pin one (2026-11-18).
const DEFAULT_NOW: u64 = 1_795_000_000;

pub(super) struct Decoded {
    pub(super) vector: serde_json::Value,
    fmt: String,
    att_stmt: Value,
    auth_data: Vec<u8>,
    client_data_hash: [u8; 32],
    aaguid: [u8; 16],
    credential_id: Vec<u8>,
    credential_key: Vec<u8>,
    credential_alg: i64,
}

impl Decoded {
    pub(super) fn input(&self, now: SystemTime) -> AttestationInput<'_> {
        AttestationInput {
            fmt: &self.fmt,
            att_stmt: &self.att_stmt,
            auth_data: &self.auth_data,
            client_data_hash: &self.client_data_hash,
            aaguid: self.aaguid,
            credential_id: &self.credential_id,
            credential_key_cose: &self.credential_key,
            credential_alg: self.credential_alg,
            now,
        }
    }

    pub(super) fn vector_stmt(&self) -> Value {
        self.att_stmt.clone()
    }

    fn now(&self) -> SystemTime {
        let secs = self.vector["now_unix"].as_u64().unwrap_or(DEFAULT_NOW);
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The policy the vector implies: no roots = no chain validation; roots present (even
    /// empty) = trusted attestation required, each root scoped to `trusted_aaguids` if given.
    fn policy(&self) -> AttestationPolicy {
        let Some(pems) = self.vector["trust_roots_pem"].as_array() else {
            return AttestationPolicy::default();
        };
        let aaguids: Vec<[u8; 16]> = self.vector["trusted_aaguids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| crate::webauthn::parse_aaguid(s.as_str().unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let mut roots = Vec::new();
        for pem in pems {
            for mut root in TrustAnchor::from_pem(pem.as_str().unwrap()).unwrap() {
                for a in &aaguids {
                    root = root.for_aaguid(*a);
                }
                roots.push(root);
            }
        }
        AttestationPolicy::trusted(roots)
    }
}

fn b64(v: &serde_json::Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap()
}

fn text_key(map: &[(Value, Value)], key: &str) -> Value {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v.clone())
        .unwrap()
}

pub(super) fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/webauthn")
}

pub(super) fn load(name: &str) -> Decoded {
    let text = std::fs::read_to_string(vector_dir().join(name)).unwrap();
    let vector: serde_json::Value = serde_json::from_str(&text).unwrap();
    let response = &vector["response"]["response"];
    let client_data = b64(&response["clientDataJSON"]);
    let client_data_hash: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &client_data)
        .as_ref()
        .try_into()
        .unwrap();
    let object: Value = ciborium::from_reader(&b64(&response["attestationObject"])[..]).unwrap();
    let Value::Map(object) = object else {
        panic!("attestation object is not a map")
    };
    let Value::Text(fmt) = text_key(&object, "fmt") else {
        panic!()
    };
    let att_stmt = text_key(&object, "attStmt");
    let Value::Bytes(auth_data) = text_key(&object, "authData") else {
        panic!()
    };
    // rpIdHash 32 | flags 1 | signCount 4 | aaguid 16 | credIdLen 2 | credId | COSE key
    let aaguid: [u8; 16] = auth_data[37..53].try_into().unwrap();
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let credential_id = auth_data[55..55 + id_len].to_vec();
    let rest = &auth_data[55 + id_len..];
    let mut cursor = rest;
    let key_len = match ciborium::from_reader::<Value, _>(&mut cursor) {
        Ok(_) if auth_data[32] & 0x80 != 0 => rest.len() - cursor.len(),
        _ => rest.len(),
    };
    let credential_key = rest[..key_len].to_vec();
    // The COSE `alg` (label 3), when the key decodes.
    let credential_alg = match ciborium::from_reader::<Value, _>(&credential_key[..]) {
        Ok(Value::Map(m)) => m
            .iter()
            .find(|(k, _)| k == &Value::Integer(3.into()))
            .and_then(|(_, v)| v.as_integer())
            .and_then(|i| i64::try_from(i).ok())
            .unwrap_or(-7),
        _ => -7,
    };
    Decoded {
        vector,
        fmt,
        att_stmt,
        auth_data,
        client_data_hash,
        aaguid,
        credential_id,
        credential_key,
        credential_alg,
    }
}

fn verdict(name: &str) -> Result<AttestationOutcome, WebAuthnFailure> {
    let d = load(name);
    verify(&d.input(d.now()), &d.policy())
}

fn is_untrusted(r: &Result<AttestationOutcome, WebAuthnFailure>) -> bool {
    matches!(r, Err(WebAuthnFailure::UntrustedAttestation(_)))
}

fn is_invalid(r: &Result<AttestationOutcome, WebAuthnFailure>) -> bool {
    matches!(r, Err(WebAuthnFailure::InvalidAttestation(_)))
}

/// The expected outcome of every vector with an attestation statement other than `none`.
#[test]
fn every_attestation_vector_gets_its_expected_verdict() {
    type Check = fn(&Result<AttestationOutcome, WebAuthnFailure>) -> bool;
    type Case<'a> = (
        &'a str,
        Box<dyn Fn(&Result<AttestationOutcome, WebAuthnFailure>) -> bool>,
    );
    let ok = |t: AttestationType| {
        move |r: &Result<AttestationOutcome, WebAuthnFailure>| {
            r.as_ref().is_ok_and(|o| o.attestation_type == t)
        }
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "registration-android-key-chrome.json",
            Box::new(ok(AttestationType::Basic)),
        ),
        (
            "registration-android-safetynet.json",
            Box::new(|r| {
                r == &Err(WebAuthnFailure::DeprecatedAttestationFormat(
                    "android-safetynet",
                ))
            }),
        ),
        (
            "registration-apple-anonymous-touchid-aaguid-restricted.json",
            Box::new(is_untrusted as Check),
        ),
        (
            "registration-apple-anonymous-touchid-bad-nonce.json",
            Box::new(is_invalid as Check),
        ),
        (
            "registration-apple-anonymous-touchid.json",
            Box::new(ok(AttestationType::AnonCa)),
        ),
        (
            "registration-chrome-touchid-packed-self.json",
            Box::new(ok(AttestationType::SelfAttestation)),
        ),
        (
            "registration-edge-touchid-packed-self-uv.json",
            Box::new(ok(AttestationType::SelfAttestation)),
        ),
        (
            "registration-duo-go-fido-u2f.json",
            Box::new(ok(AttestationType::Basic)),
        ),
        (
            "registration-ipados-yubikey5ci-packed-empty-ca-list.json",
            Box::new(is_untrusted as Check),
        ),
        (
            "registration-ipados-yubikey5ci-packed-untrusted-aaguid.json",
            Box::new(is_untrusted as Check),
        ),
        (
            "registration-ipados-yubikey5ci-packed-wrong-root.json",
            Box::new(is_untrusted as Check),
        ),
        (
            "registration-ipados-yubikey5ci-packed.json",
            Box::new(ok(AttestationType::Basic)),
        ),
        (
            "registration-solokey2-packed-eddsa-bad-attestation.json",
            Box::new(|r| r == &Err(WebAuthnFailure::InvalidSignature)),
        ),
        (
            "registration-tpm-ecc-rs1.json",
            Box::new(is_untrusted as Check),
        ),
        (
            "registration-windows-hello-tpm-rs1.json",
            Box::new(is_untrusted as Check),
        ),
        (
            "registration-yubikey5-fido-u2f.json",
            Box::new(ok(AttestationType::Basic)),
        ),
        (
            "registration-yubikey5-packed-credprotect.json",
            Box::new(ok(AttestationType::Basic)),
        ),
        (
            "registration-yubikey5-packed-x5c-aaguid-tampered.json",
            Box::new(is_invalid as Check),
        ),
        (
            "registration-yubikey5-packed-x5c-aaguid.json",
            Box::new(ok(AttestationType::Basic)),
        ),
        (
            "registration-yubikey5-subdomain-rp-fido-u2f.json",
            Box::new(ok(AttestationType::Basic)),
        ),
    ];
    let mut failures = Vec::new();
    for (name, check) in &cases {
        let d = load(name);
        let expected_ok = d.vector["expected"]["ok"].as_bool().unwrap();
        let result = verify(&d.input(d.now()), &d.policy());
        if result.is_ok() != expected_ok || !check(&result) {
            failures.push(format!("{name}: {result:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Every registration vector whose statement is x5c-based is in the table.
    let listed: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    for entry in std::fs::read_dir(vector_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("registration-") {
            continue;
        }
        let text = std::fs::read_to_string(vector_dir().join(&name)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let Ok(object) = ciborium::from_reader::<Value, _>(
            &b64(&v["response"]["response"]["attestationObject"])[..],
        ) else {
            continue;
        };
        let Value::Map(object) = object else { continue };
        if text_key(&object, "fmt") != Value::Text("none".into()) {
            assert!(listed.contains(&name.as_str()), "{name} not covered");
        }
    }
}

#[test]
fn sha1_tpm_statements_verify_when_the_policy_allows_them() {
    let d = load("registration-tpm-ecc-rs1.json");
    let outcome = verify(
        &d.input(d.now()),
        &AttestationPolicy::default().allow_sha1(true),
    )
    .unwrap();
    assert_eq!(outcome.attestation_type, AttestationType::AttCa);
    assert_eq!(outcome.chain.len(), 2);

    // Windows Hello: the AIK chain validates to the Microsoft root inside its validity period
    // (2024-01-01) and is refused once it expired (2025-03-21).
    let d = load("registration-windows-hello-tpm-rs1.json");
    let policy = d.policy().allow_sha1(true);
    let in_validity = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let outcome = verify(&d.input(in_validity), &policy).unwrap();
    assert_eq!(outcome.attestation_type, AttestationType::AttCa);
    assert_eq!(
        verify(&d.input(d.now()), &policy),
        Err(WebAuthnFailure::UntrustedAttestation(
            "attestation certificate not valid at verification time"
        ))
    );
    // Without roots, the statement alone verifies whatever the date.
    assert!(
        verify(
            &d.input(d.now()),
            &AttestationPolicy::default().allow_sha1(true)
        )
        .is_ok()
    );
}

#[test]
fn tampered_tpm_structures_are_refused() {
    let d = load("registration-tpm-ecc-rs1.json");
    let policy = AttestationPolicy::default().allow_sha1(true);
    // A different registration (client data hash) breaks certInfo.extraData.
    let mut other = d.input(d.now());
    let hash = [0u8; 32];
    other.client_data_hash = &hash;
    assert_eq!(
        verify(&other, &policy),
        Err(WebAuthnFailure::InvalidAttestation(
            "tpm certInfo extraData does not match the registration"
        ))
    );
    // Another credential key than the pubArea's.
    let yk = load("registration-yubikey5-packed-x5c-aaguid.json");
    let mut swapped = d.input(d.now());
    swapped.credential_key_cose = &yk.credential_key;
    assert_eq!(
        verify(&swapped, &policy),
        Err(WebAuthnFailure::InvalidAttestation(
            "tpm pubArea key is not the credential key"
        ))
    );
}

#[test]
fn chains_are_validated_at_the_injected_time() {
    // Apple credential certificates live three days.
    let d = load("registration-apple-anonymous-touchid.json");
    let later = d.now() + Duration::from_secs(365 * 86_400);
    assert!(is_untrusted(&verify(&d.input(later), &d.policy())));
    assert!(verify(&d.input(later), &AttestationPolicy::default()).is_ok());
    // The Android intermediate expired on 2026-01-08.
    let d = load("registration-android-key-chrome.json");
    let after = UNIX_EPOCH + Duration::from_secs(1_767_900_000);
    assert!(is_untrusted(&verify(&d.input(after), &d.policy())));
}

#[test]
fn android_software_keys_fail_when_tee_is_required() {
    let d = load("registration-android-key-chrome.json");
    let policy = d.policy().android_key_require_tee(true);
    assert!(is_untrusted(&verify(&d.input(d.now()), &policy)));
}

#[test]
fn aaguid_allow_list_and_roots_per_format() {
    let d = load("registration-ipados-yubikey5ci-packed.json");
    let base = d.policy();
    assert!(verify(&d.input(d.now()), &base.clone().allow_aaguids([d.aaguid])).is_ok());
    assert!(is_untrusted(&verify(
        &d.input(d.now()),
        &base.allow_aaguids([[1; 16]])
    )));
    // The same root, scoped to another format, does not apply to packed.
    let pem = d.vector["trust_roots_pem"][0].as_str().unwrap();
    let tpm_only = TrustAnchor::from_pem(pem)
        .unwrap()
        .remove(0)
        .for_format("tpm");
    assert!(is_untrusted(&verify(
        &d.input(d.now()),
        &AttestationPolicy::trusted([tpm_only])
    )));
    let packed_only = TrustAnchor::from_pem(pem)
        .unwrap()
        .remove(0)
        .for_format("packed");
    assert!(
        verify(
            &d.input(d.now()),
            &AttestationPolicy::trusted([packed_only])
        )
        .is_ok()
    );
}

#[test]
fn statements_bound_to_another_registration_are_refused() {
    let hash = [0x55u8; 32];
    for (name, expected) in [
        (
            "registration-yubikey5-packed-x5c-aaguid.json",
            WebAuthnFailure::InvalidSignature,
        ),
        (
            "registration-duo-go-fido-u2f.json",
            WebAuthnFailure::InvalidSignature,
        ),
        (
            "registration-chrome-touchid-packed-self.json",
            WebAuthnFailure::InvalidAttestation("self attestation signature does not verify"),
        ),
        (
            "registration-android-key-chrome.json",
            WebAuthnFailure::InvalidSignature,
        ),
        (
            "registration-apple-anonymous-touchid.json",
            WebAuthnFailure::InvalidAttestation("apple nonce does not match the registration"),
        ),
    ] {
        let d = load(name);
        let mut input = d.input(d.now());
        input.client_data_hash = &hash;
        assert_eq!(
            verify(&input, &AttestationPolicy::default()),
            Err(expected),
            "{name}"
        );
    }
}

#[test]
fn required_trust_refuses_none() {
    let d = load("registration-pixel3a-none-es256.json");
    assert!(verify(&d.input(d.now()), &AttestationPolicy::default()).is_ok());
    assert!(is_untrusted(&verify(
        &d.input(d.now()),
        &AttestationPolicy::default().require_trusted(true)
    )));
}

#[test]
fn vector_helpers_agree_with_expected_fields() {
    // A sanity check on this module's own decoding: AAGUID and credential id match `expected`.
    let d = load("registration-ipados-yubikey5ci-packed.json");
    let expected = &d.vector["expected"];
    assert_eq!(
        crate::webauthn::parse_aaguid(expected["aaguid"].as_str().unwrap()),
        Some(d.aaguid)
    );
    assert_eq!(b64(&expected["credential_id"]), d.credential_id);
    let _ = verdict("registration-duo-go-fido-u2f.json").unwrap();
}
