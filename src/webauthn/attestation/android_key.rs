//! `android-key` attestation (WebAuthn Level 3 §8.4) and the Android key description
//! certificate extension (1.3.6.1.4.1.11129.2.1.17).

use asn1_rs::{Any, Class, Enumerated, FromDer, Tag};

use super::cert::{self, CredentialKey};
use super::{AttestationInput, AttestationOutcome, AttestationPolicy, stmt};
use crate::webauthn::{AttestationType, WebAuthnFailure};

/// `KM_PURPOSE_SIGN`.
const PURPOSE_SIGN: i64 = 2;
/// `KM_ORIGIN_GENERATED`.
const ORIGIN_GENERATED: i64 = 0;
/// Authorization list tags read.
const TAG_PURPOSE: u32 = 1;
const TAG_ALL_APPLICATIONS: u32 = 600;
const TAG_ORIGIN: u32 = 702;

/// The parts of an `AuthorizationList` WebAuthn checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthorizationList {
    pub(crate) purpose: Vec<i64>,
    pub(crate) origin: Option<i64>,
    pub(crate) all_applications: bool,
}

/// The parts of a `KeyDescription` WebAuthn checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyDescription {
    pub(crate) attestation_version: i64,
    pub(crate) attestation_security_level: u32,
    pub(crate) attestation_challenge: Vec<u8>,
    pub(crate) software_enforced: AuthorizationList,
    pub(crate) tee_enforced: AuthorizationList,
}

/// Splits DER content into its consecutive elements.
fn elements(mut data: &[u8]) -> Option<Vec<Any<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (rest, any) = Any::from_der(data).ok()?;
        out.push(any);
        data = rest;
    }
    Some(out)
}

fn universal<'a>(any: &Any<'a>, tag: Tag) -> Option<&'a [u8]> {
    (any.class() == Class::Universal && any.tag() == tag).then_some(any.data)
}

fn integer(any: &Any<'_>) -> Option<i64> {
    if any.class() != Class::Universal || any.tag() != Tag::Integer {
        return None;
    }
    i64::try_from(any.clone()).ok()
}

fn decode_authorization_list(any: &Any<'_>) -> Option<AuthorizationList> {
    let content = universal(any, Tag::Sequence)?;
    let mut list = AuthorizationList::default();
    let mut seen = Vec::new();
    for item in elements(content)? {
        if item.class() != Class::ContextSpecific {
            return None;
        }
        let tag = item.tag().0;
        if matches!(tag, TAG_PURPOSE | TAG_ALL_APPLICATIONS | TAG_ORIGIN) {
            if seen.contains(&tag) {
                return None;
            }
            seen.push(tag);
        }
        match tag {
            TAG_PURPOSE => {
                let set = cert::der_one(item.data)?;
                for p in elements(universal(&set, Tag::Set)?)? {
                    list.purpose.push(integer(&p)?);
                }
            }
            TAG_ALL_APPLICATIONS => list.all_applications = true,
            TAG_ORIGIN => list.origin = Some(integer(&cert::der_one(item.data)?)?),
            _ => {}
        }
    }
    Some(list)
}

/// Decodes the key description extension contents:
/// `SEQUENCE { attestationVersion, attestationSecurityLevel, keymasterVersion,
/// keymasterSecurityLevel, attestationChallenge, uniqueId, softwareEnforced, teeEnforced, ... }`.
pub(crate) fn decode_key_description(value: &[u8]) -> Option<KeyDescription> {
    let seq = cert::der_one(value)?;
    let items = elements(universal(&seq, Tag::Sequence)?)?;
    let [
        version,
        security,
        _km_version,
        km_security,
        challenge,
        unique_id,
        sw,
        tee,
        ..,
    ] = items.as_slice()
    else {
        return None;
    };
    let level = |any: &Any<'_>| -> Option<u32> {
        if any.class() != Class::Universal || any.tag() != Tag::Enumerated {
            return None;
        }
        Enumerated::try_from(any.clone()).ok().map(|e| e.0)
    };
    level(km_security)?;
    universal(unique_id, Tag::OctetString)?;
    Some(KeyDescription {
        attestation_version: integer(version)?,
        attestation_security_level: level(security)?,
        attestation_challenge: universal(challenge, Tag::OctetString)?.to_vec(),
        software_enforced: decode_authorization_list(sw)?,
        tee_enforced: decode_authorization_list(tee)?,
    })
}

/// Verifies an `android-key` statement.
pub(crate) fn verify(
    input: &AttestationInput<'_>,
    policy: &AttestationPolicy,
) -> Result<AttestationOutcome, WebAuthnFailure> {
    let alg = stmt::alg(input.att_stmt)?;
    let sig = stmt::bytes(input.att_stmt, "sig", "attestation sig missing")?;
    let chain =
        stmt::x5c(input.att_stmt)?.ok_or(WebAuthnFailure::InvalidAttestation("x5c missing"))?;
    let leaf_der = chain
        .first()
        .ok_or(WebAuthnFailure::InvalidAttestation("x5c is empty"))?;
    let leaf = cert::parse(leaf_der)?;
    let signed = stmt::signed_data(input.auth_data, input.client_data_hash);
    cert::verify_signature(&leaf, alg, policy.allow_sha1, &signed, sig)?;
    let key = CredentialKey::from_cose(input.credential_key_cose)?;
    if !key.matches_spki(leaf.public_key()) {
        return Err(WebAuthnFailure::InvalidAttestation(
            "android-key certificate key is not the credential key",
        ));
    }
    let (value, _) = cert::extension(&leaf, cert::OID_ANDROID_KEY_DESCRIPTION)?.ok_or(
        WebAuthnFailure::InvalidAttestation("android key description extension missing"),
    )?;
    let description = decode_key_description(value).ok_or(WebAuthnFailure::InvalidAttestation(
        "malformed android key description",
    ))?;
    check_key_description(&description, input.client_data_hash, policy)?;
    Ok(AttestationOutcome {
        attestation_type: AttestationType::Basic,
        chain: stmt::owned_chain(&chain),
    })
}

/// The §8.4 checks on a decoded key description.
pub(crate) fn check_key_description(
    description: &KeyDescription,
    client_data_hash: &[u8; 32],
    policy: &AttestationPolicy,
) -> Result<(), WebAuthnFailure> {
    if description.attestation_challenge.as_slice() != client_data_hash.as_slice() {
        return Err(WebAuthnFailure::InvalidAttestation(
            "android attestation challenge is not the client data hash",
        ));
    }
    if description.software_enforced.all_applications || description.tee_enforced.all_applications {
        return Err(WebAuthnFailure::InvalidAttestation(
            "android key is usable by all applications",
        ));
    }
    if policy.android_key_require_tee && description.attestation_security_level == 0 {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "android key attestation is software-only",
        ));
    }
    let tee = &description.tee_enforced;
    let sw = &description.software_enforced;
    let lists: &[&AuthorizationList] = if policy.android_key_require_tee {
        &[tee]
    } else {
        &[tee, sw]
    };
    if !lists.iter().any(|l| l.origin == Some(ORIGIN_GENERATED)) {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "android key was not generated in the keystore",
        ));
    }
    if !lists.iter().any(|l| l.purpose.contains(&PURPOSE_SIGN)) {
        return Err(WebAuthnFailure::UntrustedAttestation(
            "android key purpose is not sign",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tlv(tag: &[u8], content: &[u8]) -> Vec<u8> {
        let mut out = tag.to_vec();
        assert!(content.len() < 128);
        out.push(content.len() as u8);
        out.extend_from_slice(content);
        out
    }

    /// A key description with the given lists (contents of the SEQUENCEs).
    fn description(challenge: &[u8], sw: &[u8], tee: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(tlv(&[0x02], &[3])); // attestationVersion
        body.extend(tlv(&[0x0a], &[1])); // attestationSecurityLevel: TEE
        body.extend(tlv(&[0x02], &[4])); // keymasterVersion
        body.extend(tlv(&[0x0a], &[1])); // keymasterSecurityLevel
        body.extend(tlv(&[0x04], challenge));
        body.extend(tlv(&[0x04], &[]));
        body.extend(tlv(&[0x30], sw));
        body.extend(tlv(&[0x30], tee));
        tlv(&[0x30], &body)
    }

    fn purpose_sign() -> Vec<u8> {
        tlv(&[0xa1], &tlv(&[0x31], &tlv(&[0x02], &[2])))
    }
    fn origin_generated() -> Vec<u8> {
        // [702] EXPLICIT: high tag number form 0xbf 0x85 0x3e
        tlv(&[0xbf, 0x85, 0x3e], &tlv(&[0x02], &[0]))
    }
    fn all_applications() -> Vec<u8> {
        tlv(&[0xbf, 0x84, 0x58], &[0x05, 0x00])
    }

    #[test]
    fn decodes_and_checks_a_tee_key() {
        let mut tee = purpose_sign();
        tee.extend(origin_generated());
        let bytes = description(&[7; 32], &[], &tee);
        let d = decode_key_description(&bytes).unwrap();
        assert_eq!(d.attestation_security_level, 1);
        assert_eq!(d.tee_enforced.purpose, vec![2]);
        assert_eq!(d.tee_enforced.origin, Some(0));
        let mut policy = AttestationPolicy::default();
        assert_eq!(check_key_description(&d, &[7; 32], &policy), Ok(()));
        policy.android_key_require_tee = true;
        assert_eq!(check_key_description(&d, &[7; 32], &policy), Ok(()));
        assert!(check_key_description(&d, &[8; 32], &policy).is_err());
    }

    #[test]
    fn software_keys_pass_only_without_require_tee() {
        let mut sw = purpose_sign();
        sw.extend(origin_generated());
        let d = decode_key_description(&description(&[7; 32], &sw, &[])).unwrap();
        let mut policy = AttestationPolicy::default();
        assert_eq!(check_key_description(&d, &[7; 32], &policy), Ok(()));
        policy.android_key_require_tee = true;
        assert!(matches!(
            check_key_description(&d, &[7; 32], &policy),
            Err(WebAuthnFailure::UntrustedAttestation(_))
        ));
    }

    #[test]
    fn all_applications_is_refused() {
        let mut tee = purpose_sign();
        tee.extend(origin_generated());
        tee.extend(all_applications());
        let d = decode_key_description(&description(&[7; 32], &[], &tee)).unwrap();
        assert!(d.tee_enforced.all_applications);
        assert!(check_key_description(&d, &[7; 32], &AttestationPolicy::default()).is_err());
    }

    #[test]
    fn duplicate_and_malformed_lists_are_refused() {
        let mut tee = purpose_sign();
        tee.extend(purpose_sign());
        assert_eq!(
            decode_key_description(&description(&[7; 32], &[], &tee)),
            None
        );
        // a universal element inside an authorization list
        assert_eq!(
            decode_key_description(&description(&[7; 32], &[], &tlv(&[0x02], &[1]))),
            None
        );
        let mut short = description(&[7; 32], &[], &[]);
        short.truncate(short.len() - 1);
        assert_eq!(decode_key_description(&short), None);
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_key_description(&bytes);
        }

        #[test]
        fn challenge_round_trips(challenge in proptest::collection::vec(any::<u8>(), 0..64)) {
            let d = decode_key_description(&description(&challenge, &[], &purpose_sign()));
            prop_assert_eq!(d.map(|d| d.attestation_challenge), Some(challenge));
        }
    }
}
