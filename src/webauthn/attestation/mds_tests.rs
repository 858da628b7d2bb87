//! MDS3 BLOB and trust-path tests against a small CA built here with rcgen: a FIDO-like root
//! signing the BLOB, and an authenticator vendor root issuing packed attestation certificates.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ciborium::Value;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, SigningKey, date_time_ymd,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

use super::*;
use crate::ErrorKind;
use crate::webauthn::AttestationType;

pub(super) const AAGUID: [u8; 16] = [0xab; 16];

/// 2026-11-18.
pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_000_000)
}

fn params(cn: &str, ca: Option<BasicConstraints>, years: (i32, i32)) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "SE");
    dn.push(DnType::OrganizationName, "Keyward Test");
    dn.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = match ca {
        Some(bc) => IsCa::Ca(bc),
        None => IsCa::ExplicitNoCa,
    };
    p.not_before = date_time_ymd(years.0, 1, 1);
    p.not_after = date_time_ymd(years.1, 1, 1);
    p
}

pub(super) struct Ca {
    pub(super) der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

pub(super) fn root(cn: &str, ca: BasicConstraints) -> Ca {
    let key = KeyPair::generate().unwrap();
    let p = params(cn, Some(ca), (2020, 2040));
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(p, key),
    }
}

fn issue(by: &Ca, p: CertificateParams, key: &KeyPair) -> (Vec<u8>, Issuer<'static, KeyPair>) {
    let der = p.signed_by(key, &by.issuer).unwrap().der().to_vec();
    let key = KeyPair::try_from(key.serialized_der()).unwrap();
    (der, Issuer::new(p, key))
}

fn aaguid_extension(aaguid: [u8; 16]) -> CustomExtension {
    let mut content = vec![0x04, 16];
    content.extend_from_slice(&aaguid);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4], content)
}

/// A BLOB signed (ES256) by a signer certificate issued by `fido`, valid over `years`.
pub(super) fn blob(fido: &Ca, payload: &serde_json::Value, years: (i32, i32)) -> Vec<u8> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let signer =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let key = KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let (signer_der, _) = issue(fido, params("MDS signer", None, years), &key);
    let header = serde_json::json!({
        "alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(&signer_der)]
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let sig = signer.sign(&rng, signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)).into_bytes()
}

pub(super) fn payload(vendor_root: &[u8], status: &str) -> serde_json::Value {
    serde_json::json!({
        "legalHeader": "test",
        "no": 42,
        "nextUpdate": "2026-12-01",
        "entries": [{
            "aaguid": "abababab-abab-abab-abab-abababababab",
            "metadataStatement": {
                "description": "Keyward Test Key",
                "attestationRootCertificates": [STANDARD.encode(vendor_root)]
            },
            "statusReports": [{"status": "FIDO_CERTIFIED_L1"}, {"status": status}]
        }, {
            "attestationCertificateKeyIdentifiers": ["00112233445566778899AABBCCDDEEFF00112233"],
            "metadataStatement": {"description": "Some U2F key"},
            "statusReports": []
        }]
    })
}

/// A packed x5c registration whose chain is `chain` and whose leaf key is `leaf_key`.
pub(super) struct Registration {
    stmt: Value,
    auth_data: Vec<u8>,
    cdh: [u8; 32],
}

impl Registration {
    pub(super) fn new(chain: &[&[u8]], leaf_key: &KeyPair) -> Self {
        let auth_data = vec![7u8; 37];
        let cdh = [9u8; 32];
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&cdh);
        let sig = leaf_key.sign(&signed).unwrap();
        let stmt = Value::Map(vec![
            (Value::Text("alg".into()), Value::Integer((-7).into())),
            (Value::Text("sig".into()), Value::Bytes(sig)),
            (
                Value::Text("x5c".into()),
                Value::Array(chain.iter().map(|c| Value::Bytes(c.to_vec())).collect()),
            ),
        ]);
        Registration {
            stmt,
            auth_data,
            cdh,
        }
    }

    pub(super) fn verify(
        &self,
        policy: &AttestationPolicy,
    ) -> Result<AttestationOutcome, WebAuthnFailure> {
        verify(
            &AttestationInput {
                fmt: "packed",
                att_stmt: &self.stmt,
                auth_data: &self.auth_data,
                client_data_hash: &self.cdh,
                aaguid: AAGUID,
                credential_id: &[1, 2, 3],
                credential_key_cose: &[],
                credential_alg: -7,
                now: now(),
            },
            policy,
        )
    }
}

pub(super) fn vendor_leaf(vendor: &Ca) -> (Vec<u8>, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut p = params("Keyward Test EE", None, (2024, 2030));
    p.custom_extensions.push(aaguid_extension(AAGUID));
    let (der, _) = issue(vendor, p, &key);
    (der, key)
}

#[test]
fn blob_verifies_and_drives_roots_and_status() {
    let fido = root("Test FIDO Root", BasicConstraints::Unconstrained);
    let fido_anchor = TrustAnchor::from_der(fido.der.clone()).unwrap();
    let vendor = root("Test Vendor Root", BasicConstraints::Unconstrained);
    let (leaf, leaf_key) = vendor_leaf(&vendor);
    let registration = Registration::new(&[&leaf], &leaf_key);

    let good = MetadataBlob::from_jwt(
        &blob(
            &fido,
            &payload(&vendor.der, "UPDATE_AVAILABLE"),
            (2024, 2030),
        ),
        &fido_anchor,
        now(),
    )
    .unwrap();
    assert_eq!(good.no(), 42);
    assert_eq!(good.next_update(), "2026-12-01");
    let entry = good.entry(&AAGUID).unwrap();
    assert_eq!(entry.description(), "Keyward Test Key");
    assert_eq!(entry.attestation_roots(), std::slice::from_ref(&vendor.der));
    assert!(!entry.is_compromised());
    assert_eq!(
        good.entries()[1].attestation_key_identifiers(),
        &["00112233445566778899aabbccddeeff00112233".to_owned()]
    );

    // Trusted only through the metadata's root.
    let required = AttestationPolicy::default().require_trusted(true);
    assert!(matches!(
        registration.verify(&required),
        Err(WebAuthnFailure::UntrustedAttestation(_))
    ));
    let outcome = registration
        .verify(&required.clone().metadata(Arc::new(good)))
        .unwrap();
    assert_eq!(outcome.attestation_type, AttestationType::Basic);
    assert_eq!(outcome.chain, vec![leaf.clone()]);

    // A revoked model is refused, even without requiring trust, unless the policy says not to.
    let revoked = Arc::new(
        MetadataBlob::from_jwt(
            &blob(&fido, &payload(&vendor.der, "REVOKED"), (2024, 2030)),
            &fido_anchor,
            now(),
        )
        .unwrap(),
    );
    assert!(revoked.entry(&AAGUID).unwrap().is_compromised());
    assert_eq!(
        registration.verify(&AttestationPolicy::default().metadata(revoked.clone())),
        Err(WebAuthnFailure::UntrustedAttestation(
            "metadata status report: REVOKED"
        ))
    );
    assert!(
        registration
            .verify(&required.metadata(revoked).reject_compromised(false))
            .is_ok()
    );
}

#[test]
fn blob_signature_chain_and_time_are_checked() {
    let fido = root("Test FIDO Root", BasicConstraints::Unconstrained);
    let anchor = TrustAnchor::from_der(fido.der.clone()).unwrap();
    let vendor = root("Test Vendor Root", BasicConstraints::Unconstrained);
    let jwt = blob(&fido, &payload(&vendor.der, "FIDO_CERTIFIED"), (2024, 2030));
    assert!(MetadataBlob::from_jwt(&jwt, &anchor, now()).is_ok());

    // Payload swapped for another one: the signature no longer verifies.
    let text = String::from_utf8(jwt.clone()).unwrap();
    let parts: Vec<&str> = text.split('.').collect();
    let other = URL_SAFE_NO_PAD.encode(payload(&vendor.der, "REVOKED").to_string());
    let forged = format!("{}.{}.{}", parts[0], other, parts[2]);
    let err = MetadataBlob::from_jwt(forged.as_bytes(), &anchor, now()).unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::WebAuthn(WebAuthnFailure::InvalidSignature)
    );

    // Another FIDO root.
    let other_root = root("Other Root", BasicConstraints::Unconstrained);
    let other_anchor = TrustAnchor::from_der(other_root.der.clone()).unwrap();
    let err = MetadataBlob::from_jwt(&jwt, &other_anchor, now()).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WebAuthn(WebAuthnFailure::UntrustedAttestation(_))
    ));

    // A signer certificate that expired before the verification time.
    let stale = blob(&fido, &payload(&vendor.der, "FIDO_CERTIFIED"), (2021, 2022));
    assert!(matches!(
        MetadataBlob::from_jwt(&stale, &anchor, now())
            .unwrap_err()
            .kind(),
        ErrorKind::WebAuthn(WebAuthnFailure::UntrustedAttestation(_))
    ));

    // Garbage.
    for bad in [&b""[..], b"a.b", b"a.b.c.d", b"\xff\xfe", b"e30.e30.e30"] {
        assert!(MetadataBlob::from_jwt(bad, &anchor, now()).is_err());
    }

    // From a file.
    let path = std::env::temp_dir().join(format!("keyward-mds-{}.jwt", std::process::id()));
    std::fs::write(&path, &jwt).unwrap();
    let from_file = MetadataBlob::from_file(&path, &anchor, now());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file.unwrap().no(), 42);
}

#[test]
fn chains_through_intermediates_respect_ca_flags_and_path_length() {
    let key = KeyPair::generate().unwrap();
    let leaf_params = || {
        let mut p = params("Keyward Test EE", None, (2024, 2030));
        p.custom_extensions.push(aaguid_extension(AAGUID));
        p
    };
    for (root_constraint, intermediate_is_ca, expect_ok) in [
        (BasicConstraints::Unconstrained, true, true),
        (BasicConstraints::Constrained(1), true, true),
        (BasicConstraints::Constrained(0), true, false),
        (BasicConstraints::Unconstrained, false, false),
    ] {
        let vendor = root("Test Vendor Root", root_constraint);
        let inter_key = KeyPair::generate().unwrap();
        let inter_ca = intermediate_is_ca.then_some(BasicConstraints::Unconstrained);
        let (inter_der, inter_issuer) = issue(
            &vendor,
            params("Intermediate", inter_ca, (2020, 2035)),
            &inter_key,
        );
        let inter = Ca {
            der: inter_der.clone(),
            issuer: inter_issuer,
        };
        let (leaf, _) = issue(&inter, leaf_params(), &key);
        let registration = Registration::new(&[&leaf, &inter_der], &key);
        let policy =
            AttestationPolicy::trusted([TrustAnchor::from_der(vendor.der.clone()).unwrap()]);
        assert_eq!(
            registration.verify(&policy).is_ok(),
            expect_ok,
            "{root_constraint:?} intermediate ca {intermediate_is_ca}"
        );
        // The statement itself verifies whatever the chain.
        assert!(registration.verify(&AttestationPolicy::default()).is_ok());
        // Leaving the intermediate out breaks the path.
        let short = Registration::new(&[&leaf], &key);
        assert!(short.verify(&policy).is_err());
    }
}

#[test]
fn packed_leaf_requirements_are_enforced() {
    let vendor = root("Test Vendor Root", BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    // Wrong OU.
    let mut p = params("EE", None, (2024, 2030));
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "Something Else");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "SE");
    dn.push(DnType::OrganizationName, "Keyward Test");
    dn.push(DnType::OrganizationalUnitName, "Something Else");
    dn.push(DnType::CommonName, "EE");
    p.distinguished_name = dn;
    let (leaf, _) = issue(&vendor, p, &key);
    assert!(matches!(
        Registration::new(&[&leaf], &key).verify(&AttestationPolicy::default()),
        Err(WebAuthnFailure::InvalidAttestation(_))
    ));
    // A CA certificate as leaf.
    let (ca_leaf, _) = issue(
        &vendor,
        params("EE", Some(BasicConstraints::Unconstrained), (2024, 2030)),
        &key,
    );
    assert!(matches!(
        Registration::new(&[&ca_leaf], &key).verify(&AttestationPolicy::default()),
        Err(WebAuthnFailure::InvalidAttestation(_))
    ));
    // A critical AAGUID extension.
    let mut p = params("EE", None, (2024, 2030));
    let mut ext = aaguid_extension(AAGUID);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let (critical, _) = issue(&vendor, p, &key);
    assert_eq!(
        Registration::new(&[&critical], &key).verify(&AttestationPolicy::default()),
        Err(WebAuthnFailure::InvalidAttestation(
            "aaguid certificate extension must not be critical"
        ))
    );
}

#[test]
fn u2f_entries_are_found_by_key_identifier() {
    let vendor = root("Test Vendor Root", BasicConstraints::Unconstrained);
    let (leaf, _) = vendor_leaf(&vendor);
    let parsed = cert::parse(&leaf).unwrap();
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &parsed.public_key().subject_public_key.data,
    );
    let id: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    let fido = root("Test FIDO Root", BasicConstraints::Unconstrained);
    let mut body = payload(&vendor.der, "FIDO_CERTIFIED");
    body["entries"][1]["attestationCertificateKeyIdentifiers"] = serde_json::json!([id]);
    let anchor = TrustAnchor::from_der(fido.der.clone()).unwrap();
    let blob = MetadataBlob::from_jwt(&blob(&fido, &body, (2024, 2030)), &anchor, now()).unwrap();
    let found = blob.entry_for(&[0; 16], Some(&leaf)).unwrap();
    assert_eq!(found.description(), "Some U2F key");
    assert!(blob.entry_for(&[0; 16], None).is_none());
}

#[test]
fn unknown_critical_extensions_break_the_chain() {
    let vendor = root("Test Vendor Root", BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let mut p = params("Keyward Test EE", None, (2024, 2030));
    let mut ext =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let (leaf, _) = issue(&vendor, p, &key);
    let registration = Registration::new(&[&leaf], &key);
    assert!(registration.verify(&AttestationPolicy::default()).is_ok());
    let policy = AttestationPolicy::trusted([TrustAnchor::from_der(vendor.der.clone()).unwrap()]);
    assert_eq!(
        registration.verify(&policy),
        Err(WebAuthnFailure::UntrustedAttestation(
            "attestation certificate has an unknown critical extension"
        ))
    );
}

#[test]
fn issuers_without_key_cert_sign_do_not_issue() {
    let key = KeyPair::generate().unwrap();
    let root_key = KeyPair::generate().unwrap();
    let mut p = params(
        "Test Vendor Root",
        Some(BasicConstraints::Unconstrained),
        (2020, 2040),
    );
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let der = p.self_signed(&root_key).unwrap().der().to_vec();
    let vendor = Ca {
        der,
        issuer: Issuer::new(p, root_key),
    };
    let (leaf, _) = issue(&vendor, params("Keyward Test EE", None, (2024, 2030)), &key);
    let policy = AttestationPolicy::trusted([TrustAnchor::from_der(vendor.der.clone()).unwrap()]);
    assert!(matches!(
        Registration::new(&[&leaf], &key).verify(&policy),
        Err(WebAuthnFailure::UntrustedAttestation(_))
    ));
}

/// A real U2F capture (all-zero AAGUID) trusted through a metadata entry keyed by its
/// attestation key identifier, whose root is the real Yubico root.
#[test]
fn real_u2f_capture_is_trusted_through_metadata_key_identifiers() {
    let d = super::vector_tests::load("registration-yubikey5-fido-u2f.json");
    let Some(Value::Array(x5c)) = stmt::member(&d.vector_stmt(), "x5c").unwrap().cloned() else {
        panic!("no x5c")
    };
    let Value::Bytes(leaf) = &x5c[0] else {
        panic!()
    };
    let parsed = cert::parse(leaf).unwrap();
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &parsed.public_key().subject_public_key.data,
    );
    let id = crate::hex::encode(digest.as_ref());
    let yubico = TrustAnchor::from_pem(d.vector["trust_roots_pem"][0].as_str().unwrap())
        .unwrap()
        .remove(0);
    let fido = root("Test FIDO Root", BasicConstraints::Unconstrained);
    let anchor = TrustAnchor::from_der(fido.der.clone()).unwrap();
    let entry = |status: &str| {
        serde_json::json!({
            "no": 7, "nextUpdate": "2026-12-01",
            "entries": [{
                "attestationCertificateKeyIdentifiers": [id],
                "metadataStatement": {
                    "description": "YubiKey (U2F)",
                    "attestationRootCertificates": [STANDARD.encode(yubico.der())]
                },
                "statusReports": [{"status": status}]
            }]
        })
    };
    let certified = MetadataBlob::from_jwt(
        &blob(&fido, &entry("FIDO_CERTIFIED"), (2024, 2030)),
        &anchor,
        now(),
    )
    .unwrap();
    let input = d.input(now());
    let required = AttestationPolicy::default().require_trusted(true);
    assert!(matches!(
        verify(&input, &required),
        Err(WebAuthnFailure::UntrustedAttestation(_))
    ));
    let outcome = verify(&input, &required.clone().metadata(Arc::new(certified))).unwrap();
    assert_eq!(outcome.attestation_type, AttestationType::Basic);
    let revoked = MetadataBlob::from_jwt(
        &blob(&fido, &entry("ATTESTATION_KEY_COMPROMISE"), (2024, 2030)),
        &anchor,
        now(),
    )
    .unwrap();
    assert_eq!(
        verify(&input, &required.metadata(Arc::new(revoked))),
        Err(WebAuthnFailure::UntrustedAttestation(
            "metadata status report: ATTESTATION_KEY_COMPROMISE"
        ))
    );
}

/// The status policy: each status refused or accepted as configured; a compromise report that
/// names one attestation certificate refuses only chains holding it; a later certification does
/// not undo a compromise.
#[test]
fn status_reports_follow_the_configured_policy() {
    let fido = root("Test FIDO Root", BasicConstraints::Unconstrained);
    let fido_anchor = TrustAnchor::from_der(fido.der.clone()).unwrap();
    let vendor = root("Test Vendor Root", BasicConstraints::Unconstrained);
    let (leaf, leaf_key) = vendor_leaf(&vendor);
    let (other_leaf, _) = vendor_leaf(&vendor);
    let registration = Registration::new(&[&leaf], &leaf_key);
    let with_reports = |reports: serde_json::Value| {
        let mut p = payload(&vendor.der, "FIDO_CERTIFIED");
        p["entries"][0]["statusReports"] = reports;
        Arc::new(
            MetadataBlob::from_jwt(&blob(&fido, &p, (2024, 2030)), &fido_anchor, now()).unwrap(),
        )
    };
    let base = AttestationPolicy::default();
    let refused = |policy: &AttestationPolicy| match registration.verify(policy) {
        Err(WebAuthnFailure::UntrustedAttestation(why)) => Some(why),
        Ok(_) => None,
        Err(other) => panic!("{other:?}"),
    };

    // USER_VERIFICATION_BYPASS: refused by default, accepted when the policy says so.
    let bypass = with_reports(serde_json::json!([
        {"status": "FIDO_CERTIFIED_L1"},
        {"status": "USER_VERIFICATION_BYPASS", "effectiveDate": "2026-01-01"},
        {"status": "UPDATE_AVAILABLE"}
    ]));
    let report = &bypass.entry(&AAGUID).unwrap().status_reports()[1];
    assert_eq!(report.effective_date(), Some("2026-01-01"));
    assert_eq!(
        refused(&base.clone().metadata(bypass.clone())),
        Some("metadata status report: USER_VERIFICATION_BYPASS")
    );
    let lenient =
        MetadataStatusPolicy::default().accept(&AuthenticatorStatus::UserVerificationBypass);
    assert!(!lenient.refuses(&AuthenticatorStatus::UserVerificationBypass));
    assert_eq!(
        refused(
            &base
                .clone()
                .metadata(bypass)
                .metadata_status_policy(lenient.clone())
        ),
        None
    );

    // NOT_FIDO_CERTIFIED: accepted by default, refused on request.
    let uncertified = with_reports(serde_json::json!([{"status": "NOT_FIDO_CERTIFIED"}]));
    assert_eq!(refused(&base.clone().metadata(uncertified.clone())), None);
    let strict = MetadataStatusPolicy::default().refuse(AuthenticatorStatus::NotFidoCertified);
    assert_eq!(
        refused(
            &base
                .clone()
                .metadata(uncertified)
                .metadata_status_policy(strict)
        ),
        Some("metadata status report: NOT_FIDO_CERTIFIED")
    );

    // A compromise of another batch's attestation certificate leaves this one alone; of this
    // one, it refuses (even with a later certification report).
    let other_batch = with_reports(serde_json::json!([
        {"status": "ATTESTATION_KEY_COMPROMISE", "certificate": STANDARD.encode(&other_leaf)}
    ]));
    assert_eq!(refused(&base.clone().metadata(other_batch)), None);
    let this_batch = with_reports(serde_json::json!([
        {"status": "ATTESTATION_KEY_COMPROMISE", "certificate": STANDARD.encode(&leaf)},
        {"status": "FIDO_CERTIFIED_L2"}
    ]));
    assert_eq!(
        refused(&base.clone().metadata(this_batch.clone())),
        Some("metadata status report: ATTESTATION_KEY_COMPROMISE")
    );
    assert_eq!(
        refused(
            &base
                .clone()
                .metadata(this_batch)
                .metadata_status_policy(MetadataStatusPolicy::accept_all())
        ),
        None
    );
    // A report certificate that is not base64 makes the BLOB malformed.
    let mut p = payload(&vendor.der, "FIDO_CERTIFIED");
    p["entries"][0]["statusReports"] =
        serde_json::json!([{"status": "REVOKED", "certificate": "***"}]);
    assert!(MetadataBlob::from_jwt(&blob(&fido, &p, (2024, 2030)), &fido_anchor, now()).is_err());
}
