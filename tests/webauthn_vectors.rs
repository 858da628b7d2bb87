//! Real authenticator captures (tests/vectors/webauthn, from webauthn-rs-core 0.6.2; see its
//! README) replayed through the relying party's store path: configuration from the file, the
//! captured challenge injected with the `testing` hooks, the clock pinned at `now_unix`.
//!
//! The table says, per file, what keyward must answer: acceptance with every `expected` field,
//! or the exact failure reason. The attestation policy is the one the file implies: no
//! `trust_roots_pem` = statements verified but chains not validated; `trust_roots_pem` present
//! (even empty) = trusted attestation required, roots scoped to `trusted_aaguids` when given.
#![cfg(all(feature = "webauthn", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use keyward::Env;
use keyward::store::{MemoryStore, StateStore};
use keyward::webauthn::attestation::{AttestationPolicy, TrustAnchor};
use keyward::webauthn::{
    AttestationType, AuthenticationRequest, AuthenticationResponseJson, Base64UrlBytes,
    CredentialPublicKey, RegisteredCredential, RegistrationRequest, RegistrationResponseJson,
    RelyingParty, RelyingPartyConfig, UserEntity, UserVerification, alg,
};
use keyward::{AuthenticatorVerifier, ManualClock, WebAuthnFailure};
use serde_json::Value;

/// keyward's verdict on a vector.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// Accepted; every `expected` field of the file must match.
    Ok,
    /// Refused for this reason (the file says `ok: false`).
    Fail(WebAuthnFailure),
}

use Verdict::{Fail, Ok as Accept};

const NO_ROOT: WebAuthnFailure =
    WebAuthnFailure::UntrustedAttestation("no trust root configured for this authenticator");
const SHA1_REFUSED: WebAuthnFailure =
    WebAuthnFailure::UntrustedAttestation("sha-1 attestation signatures are refused by policy");

fn table() -> Vec<(&'static str, Verdict)> {
    vec![
        ("authentication-windows-hello-rs256.json", Accept),
        // rpIdHash is SHA-256 of an AppID the RP never requested.
        (
            "authentication-yubikey5-appid-not-asserted.json",
            Fail(WebAuthnFailure::RpIdHashMismatch),
        ),
        ("authentication-yubikey5-appid.json", Accept),
        ("authentication-yubikey5-es256-appid-unused.json", Accept),
        ("authentication-yubikey5-es256.json", Accept),
        ("authentication-yubikey5-subdomain-origin.json", Accept),
        ("registration-android-key-chrome.json", Accept),
        (
            "registration-android-safetynet.json",
            Fail(WebAuthnFailure::DeprecatedAttestationFormat(
                "android-safetynet",
            )),
        ),
        (
            "registration-apple-anonymous-touchid-aaguid-restricted.json",
            Fail(NO_ROOT),
        ),
        (
            "registration-apple-anonymous-touchid-bad-nonce.json",
            Fail(WebAuthnFailure::InvalidAttestation(
                "apple nonce does not match the registration",
            )),
        ),
        ("registration-apple-anonymous-touchid.json", Accept),
        ("registration-chrome-touchid-packed-self.json", Accept),
        ("registration-duo-go-fido-u2f.json", Accept),
        ("registration-edge-touchid-packed-self-uv.json", Accept),
        // Firefox 98 left the AAGUID out: the id length is read from key bytes and is > 1023.
        (
            "registration-firefox98-windows-hello-truncated-aaguid.json",
            Fail(WebAuthnFailure::TooLarge("credential id")),
        ),
        (
            "registration-ipados-yubikey5ci-packed-empty-ca-list.json",
            Fail(NO_ROOT),
        ),
        (
            "registration-ipados-yubikey5ci-packed-untrusted-aaguid.json",
            Fail(NO_ROOT),
        ),
        (
            "registration-ipados-yubikey5ci-packed-wrong-root.json",
            Fail(WebAuthnFailure::UntrustedAttestation(
                "certificate chain does not reach a trusted root",
            )),
        ),
        ("registration-ipados-yubikey5ci-packed.json", Accept),
        ("registration-macos-icloud-keychain-none-be-bs.json", Accept),
        (
            "registration-pixel3a-none-altered-alg.json",
            Fail(WebAuthnFailure::AlgorithmNotRequested),
        ),
        ("registration-pixel3a-none-es256.json", Accept),
        ("registration-solokey-eddsa-none.json", Accept),
        // The COSE_Key is malformed (text kty/crv, 3-pair header with 4 pairs).
        (
            "registration-solokey2-none-eddsa-invalid-cose.json",
            Fail(WebAuthnFailure::InvalidPublicKey),
        ),
        // Same malformed key; refused before the (also invalid) x5c attestation is looked at.
        (
            "registration-solokey2-packed-eddsa-bad-attestation.json",
            Fail(WebAuthnFailure::InvalidPublicKey),
        ),
        ("registration-tpm-ecc-rs1.json", Fail(SHA1_REFUSED)),
        ("registration-windows-hello-none-rs256.json", Accept),
        (
            "registration-windows-hello-tpm-rs1.json",
            Fail(SHA1_REFUSED),
        ),
        ("registration-yubikey5-fido-u2f.json", Accept),
        ("registration-yubikey5-packed-credprotect.json", Accept),
        (
            "registration-yubikey5-packed-x5c-aaguid-tampered.json",
            Fail(WebAuthnFailure::InvalidAttestation(
                "certificate aaguid does not match authenticator data",
            )),
        ),
        ("registration-yubikey5-packed-x5c-aaguid.json", Accept),
        ("registration-yubikey5-subdomain-rp-fido-u2f.json", Accept),
        ("registration-yubikey5bio-eddsa-none.json", Accept),
    ]
}

fn b64(v: &Value) -> Vec<u8> {
    Base64UrlBytes::decode(v.as_str().unwrap()).unwrap().0
}

fn config(v: &Value) -> RelyingPartyConfig {
    let origins: Vec<&str> = v["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    let mut c =
        RelyingPartyConfig::new(v["rp_id"].as_str().unwrap(), "vectors", origins[0]).unwrap();
    for o in &origins[1..] {
        c = c.origin(*o).unwrap();
    }
    c = c.allow_subdomains(v["allow_subdomains"].as_bool().unwrap_or(false));
    c = c.user_verification(match v["user_verification"].as_str().unwrap() {
        "required" => UserVerification::Required,
        "discouraged" => UserVerification::Discouraged,
        _ => UserVerification::Preferred,
    });
    if let Some(algs) = v["allowed_algorithms"].as_array() {
        // The RP offers only what keyward implements; the others (-36, -65535, ...) are dropped.
        let known = [alg::ES256, alg::ES384, alg::EDDSA, alg::RS256, alg::PS256];
        let offered: Vec<i64> = algs
            .iter()
            .map(|a| a.as_i64().unwrap())
            .filter(|a| known.contains(a))
            .collect();
        c = c.algorithms(offered).unwrap();
    }
    if let Some(appid) = v["appid"].as_str() {
        c = c.appid(appid);
    }
    c.attestation_policy(attestation_policy(v))
}

/// The attestation policy a vector implies.
fn attestation_policy(v: &Value) -> AttestationPolicy {
    let Some(pems) = v["trust_roots_pem"].as_array() else {
        return AttestationPolicy::default();
    };
    let aaguids: Vec<[u8; 16]> = v["trusted_aaguids"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| parse_aaguid(s.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let roots = pems.iter().flat_map(|pem| {
        TrustAnchor::from_pem(pem.as_str().unwrap())
            .unwrap()
            .into_iter()
            .map(|root| aaguids.iter().fold(root, |r, a| r.for_aaguid(*a)))
    });
    AttestationPolicy::trusted(roots.collect::<Vec<_>>())
}

fn parse_aaguid(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn relying_party(v: &Value) -> RelyingParty {
    let now = v["now_unix"].as_u64().unwrap_or(1_700_000_000);
    let clock = Arc::new(ManualClock::at_unix(now));
    let store: Arc<dyn StateStore> =
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    RelyingParty::new(config(v), store).env(Env::system().with_clock(clock))
}

fn aaguid_string(a: [u8; 16]) -> String {
    let h: String = a.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn attestation_type_name(t: AttestationType) -> &'static str {
    match t {
        AttestationType::None => "none",
        AttestationType::SelfAttestation => "self",
        AttestationType::Basic => "basic",
        AttestationType::AttCa => "attca",
        AttestationType::AnonCa => "anonca",
        _ => "other",
    }
}

async fn run_registration(v: &Value) -> Result<RegisteredCredential, keyward::Error> {
    let rp = relying_party(v);
    let user = UserEntity::new(b"vector-user".to_vec(), "vector", "Vector").unwrap();
    let (_, state) = rp
        .start_registration_with_challenge(RegistrationRequest::new(user), b64(&v["challenge"]))
        .await?;
    let response: RegistrationResponseJson = serde_json::from_value(v["response"].clone()).unwrap();
    let credential = rp.finish_registration(state, &response).await?;
    // Stored as returned, attestation chain included.
    assert_eq!(
        rp.credential(&credential.credential_id).await?.as_ref(),
        Some(&credential)
    );
    assert_eq!(
        credential
            .attestation_chain
            .iter()
            .map(|c| c.as_slice().to_vec())
            .collect::<Vec<_>>(),
        x5c_of(&response),
        "the x5c chain is kept with the credential"
    );
    Ok(credential)
}

/// The `x5c` certificates of a registration's attestation statement (empty when it has none).
fn x5c_of(response: &RegistrationResponseJson) -> Vec<Vec<u8>> {
    use ciborium::Value as Cbor;
    let object: Cbor =
        ciborium::from_reader(response.response.attestation_object.as_slice()).unwrap();
    let stmt = object
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("attStmt"))
        .map(|(_, v)| v.clone())
        .unwrap();
    stmt.as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_text() == Some("x5c"))
        .map(|(_, v)| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_bytes().unwrap().clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn run_authentication(
    v: &Value,
) -> Result<(keyward::webauthn::VerifiedAssertion, i64), keyward::Error> {
    let rp = relying_party(v);
    let cred = &v["credential"];
    let response: AuthenticationResponseJson =
        serde_json::from_value(v["response"].clone()).unwrap();
    let user_id = response
        .response
        .user_handle
        .as_ref()
        .map(|h| h.0.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| b"vector-user".to_vec());
    let public_key_cose = b64(&cred["public_key_cose"]);
    let mut record = RegisteredCredential::imported(
        b64(&cred["id"]),
        user_id.clone(),
        public_key_cose,
        cred["sign_count"].as_u64().unwrap() as u32,
    )?;
    let algorithm = record.algorithm;
    record.user_verified = cred["user_verified"].as_bool().unwrap();
    record.backup_eligible = cred["backup_eligible"].as_bool().unwrap();
    record.backed_up = cred["backed_up"].as_bool().unwrap();
    record.created_at = UNIX_EPOCH + Duration::from_secs(1);
    rp.import_credential(record).await?;
    let (_, state) = rp
        .start_authentication_with_challenge(
            AuthenticationRequest::for_user(user_id),
            b64(&v["challenge"]),
        )
        .await?;
    let ok = rp.finish_authentication(state.clone(), &response).await?;
    let stored = rp.credential(response.raw_id.as_slice()).await?.unwrap();
    assert_eq!(stored.sign_count, ok.sign_count());
    // The state is single use.
    let replay = rp
        .finish_authentication(state, &response)
        .await
        .unwrap_err();
    assert_eq!(
        replay.webauthn_failure(),
        Some(&WebAuthnFailure::StateConsumed)
    );
    Ok((ok, algorithm))
}

fn check_failure(file: &str, verdict: &Verdict, expected: &Value, err: &keyward::Error) {
    let got = err.webauthn_failure().cloned();
    match verdict {
        Fail(reason) => {
            assert_eq!(expected["ok"], false, "{file}: the file expects success");
            assert_eq!(got.as_ref(), Some(reason), "{file}: {err:?}");
        }
        Accept => panic!("{file}: expected success, got {err:?}"),
    }
}

#[tokio::test]
async fn every_vector_gets_its_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/webauthn");
    let table = table();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 34, "every capture is in the table");
    for file in &files {
        let verdict = &table
            .iter()
            .find(|(f, _)| f == file)
            .unwrap_or_else(|| panic!("{file} is not in the table"))
            .1;
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
        let expected = &v["expected"];
        if *verdict == Accept {
            assert_eq!(expected["ok"], true, "{file}: the file expects a failure");
        }
        match v["ceremony"].as_str().unwrap() {
            "registration" => match run_registration(&v).await {
                Ok(c) => {
                    assert_eq!(*verdict, Accept, "{file}: accepted unexpectedly");
                    assert_eq!(
                        c.attestation_format,
                        expected["fmt"].as_str().unwrap(),
                        "{file}"
                    );
                    assert_eq!(c.algorithm, expected["alg"].as_i64().unwrap(), "{file}");
                    assert_eq!(
                        u64::from(c.sign_count),
                        expected["sign_count"].as_u64().unwrap()
                    );
                    assert_eq!(c.credential_id, b64(&expected["credential_id"]), "{file}");
                    assert_eq!(
                        aaguid_string(c.aaguid),
                        expected["aaguid"].as_str().unwrap()
                    );
                    assert_eq!(
                        c.user_verified,
                        expected["user_verified"].as_bool().unwrap()
                    );
                    assert_eq!(
                        c.backup_eligible,
                        expected["backup_eligible"].as_bool().unwrap()
                    );
                    assert_eq!(c.backed_up, expected["backed_up"].as_bool().unwrap());
                    assert_eq!(
                        attestation_type_name(c.attestation_type),
                        expected["attestation_type"].as_str().unwrap(),
                        "{file}"
                    );
                }
                Err(e) => check_failure(file, verdict, expected, &e),
            },
            _ => match run_authentication(&v).await {
                Ok((a, algorithm)) => {
                    assert_eq!(*verdict, Accept, "{file}: accepted unexpectedly");
                    assert_eq!(algorithm, expected["alg"].as_i64().unwrap(), "{file}");
                    assert_eq!(
                        u64::from(a.sign_count()),
                        expected["sign_count"].as_u64().unwrap()
                    );
                    assert_eq!(
                        a.credential_id(),
                        b64(&expected["credential_id"]).as_slice()
                    );
                    assert_eq!(
                        a.user_verified(),
                        expected["user_verified"].as_bool().unwrap()
                    );
                    assert_eq!(
                        a.backup_eligible(),
                        expected["backup_eligible"].as_bool().unwrap()
                    );
                    assert_eq!(a.backed_up(), expected["backed_up"].as_bool().unwrap());
                }
                Err(e) => check_failure(file, verdict, expected, &e),
            },
        }
    }
}

#[tokio::test]
async fn both_es256_backends_agree_on_every_assertion_vector() {
    use keyward::webauthn::SignatureBackend;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/webauthn");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if v["ceremony"] != "authentication" {
            continue;
        }
        let cose = b64(&v["credential"]["public_key_cose"]);
        let key = CredentialPublicKey::from_cose(&cose).unwrap();
        let r = &v["response"]["response"];
        let mut msg = b64(&r["authenticatorData"]);
        let cd = b64(&r["clientDataJSON"]);
        msg.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &cd).as_ref());
        let sig = b64(&r["signature"]);
        let a = key.verify(SignatureBackend::Ring, &msg, &sig).is_ok();
        let b = key.verify(SignatureBackend::P256, &msg, &sig).is_ok();
        assert_eq!(a, b, "{path:?}");
        assert!(a, "{path:?}: every captured assertion signature is valid");
        checked += 1;
    }
    assert_eq!(checked, 6);
}
