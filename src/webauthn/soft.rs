//! A software authenticator for tests and benchmarks (feature `testing`): genuine registration
//! (`none` or `packed` self attestation) and assertion responses for ES256, ES384, EdDSA, RS256
//! and PS256, with knobs to produce every kind of wrong response. Never use it in production.
//!
//! RSA keys come from one fixed 2048-bit test key embedded in the crate (`ring` cannot generate
//! RSA keys); ECDSA and Ed25519 keys are generated fresh per credential.

use std::fmt;
use std::sync::Mutex;

use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair};

use super::alg;
use super::auth_data::flags;
use super::b64::Base64UrlBytes;
use super::json::{
    AssertionResponseJson, AttestationResponseJson, AuthenticationResponseJson,
    CreationOptionsJson, PublicKeyType, RegistrationResponseJson, RequestOptionsJson,
};
use crate::error::{Error, Result};

/// A fixed RSA-2048 test key (PKCS#8 DER), generated with `openssl genpkey` for this crate.
const TEST_RSA_PKCS8: &[u8] = include_bytes!("soft_rsa2048.pk8");

/// Which attestation statement [`SoftAuthenticator`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SoftAttestation {
    /// `none`.
    None,
    /// `packed` self attestation (signed by the credential key).
    PackedSelf,
}

/// Knobs applied to the responses [`SoftAuthenticator`] produces. Defaults describe a correct
/// authenticator: UP and UV set, counter incremented by 1, `none` attestation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SoftKnobs {
    /// The origin written into clientDataJSON.
    pub origin: String,
    /// Overrides the RP id whose hash goes into authenticator data (default: the options').
    pub rp_id: Option<String>,
    /// Overrides clientDataJSON `type`.
    pub client_data_type: Option<String>,
    /// Overrides the challenge written into clientDataJSON.
    pub challenge: Option<Vec<u8>>,
    /// clientDataJSON `crossOrigin`.
    pub cross_origin: Option<bool>,
    /// clientDataJSON `topOrigin`.
    pub top_origin: Option<String>,
    /// The UP flag.
    pub user_present: bool,
    /// The UV flag.
    pub user_verified: bool,
    /// The BE flag.
    pub backup_eligible: bool,
    /// The BS flag.
    pub backed_up: bool,
    /// Added to the credential's counter on each signature (0 for synced passkeys).
    pub counter_step: u32,
    /// Forces the counter value written (the stored counter is left alone).
    pub counter: Option<u32>,
    /// The attestation statement produced at registration.
    pub attestation: SoftAttestation,
    /// Whether assertions carry the user handle.
    pub send_user_handle: bool,
    /// Flip a bit of the signature.
    pub corrupt_signature: bool,
    /// Prefix clientDataJSON with a UTF-8 byte order mark (as some clients do).
    pub client_data_bom: bool,
}

impl SoftKnobs {
    /// Correct behaviour for `origin`.
    pub fn new(origin: impl Into<String>) -> Self {
        SoftKnobs {
            origin: origin.into(),
            rp_id: None,
            client_data_type: None,
            challenge: None,
            cross_origin: None,
            top_origin: None,
            user_present: true,
            user_verified: true,
            backup_eligible: false,
            backed_up: false,
            counter_step: 1,
            counter: None,
            attestation: SoftAttestation::None,
            send_user_handle: true,
            corrupt_signature: false,
            client_data_bom: false,
        }
    }
}

enum SigningKey {
    Ecdsa(rs::EcdsaKeyPair),
    Ed25519(rs::Ed25519KeyPair),
    Rsa(rs::RsaKeyPair),
}

struct SoftCredential {
    id: Vec<u8>,
    user_id: Vec<u8>,
    rp_id: String,
    alg: i64,
    key: SigningKey,
    counter: u32,
}

/// A software WebAuthn authenticator holding its credentials in memory. Test use only.
pub struct SoftAuthenticator {
    alg: i64,
    aaguid: [u8; 16],
    knobs: Mutex<SoftKnobs>,
    credentials: Mutex<Vec<SoftCredential>>,
    rng: SystemRandom,
}

impl fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    super::ceremony::sha256(data)
}

fn cbor(value: &ciborium::Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|_| Error::invalid_input("cbor encoding failed"))?;
    Ok(out)
}

fn int(i: i64) -> ciborium::Value {
    ciborium::Value::Integer(i.into())
}

fn text(s: &str) -> ciborium::Value {
    ciborium::Value::Text(s.to_owned())
}

fn crypto_err(_: impl fmt::Debug) -> Error {
    Error::invalid_input("software authenticator key operation failed")
}

impl SoftAuthenticator {
    /// An authenticator that creates credentials with COSE algorithm `alg` (ES256, ES384, EdDSA,
    /// RS256 or PS256) and behaves correctly for `origin`.
    pub fn new(alg: i64, origin: impl Into<String>) -> Result<Self> {
        if ![alg::ES256, alg::ES384, alg::EDDSA, alg::RS256, alg::PS256].contains(&alg) {
            return Err(Error::invalid_input("unsupported algorithm"));
        }
        Ok(SoftAuthenticator {
            alg,
            aaguid: *b"keyward-soft-aut",
            knobs: Mutex::new(SoftKnobs::new(origin)),
            credentials: Mutex::new(Vec::new()),
            rng: SystemRandom::new(),
        })
    }

    /// Changes the knobs for the following responses.
    pub fn set_knobs(&self, f: impl FnOnce(&mut SoftKnobs)) {
        let mut knobs = self.knobs.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut knobs);
    }

    /// The current knobs.
    pub fn knobs(&self) -> SoftKnobs {
        self.knobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ids of the credentials created so far.
    pub fn credential_ids(&self) -> Vec<Vec<u8>> {
        let creds = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        creds.iter().map(|c| c.id.clone()).collect()
    }

    fn new_key(&self) -> Result<(SigningKey, Vec<u8>)> {
        let rng = &self.rng;
        let (key, cose) = match self.alg {
            alg::ES256 | alg::ES384 => {
                let (signing, crv, coord) = if self.alg == alg::ES256 {
                    (&rs::ECDSA_P256_SHA256_ASN1_SIGNING, 1, 32)
                } else {
                    (&rs::ECDSA_P384_SHA384_ASN1_SIGNING, 2, 48)
                };
                let pkcs8 = rs::EcdsaKeyPair::generate_pkcs8(signing, rng).map_err(crypto_err)?;
                let pair = rs::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), rng)
                    .map_err(crypto_err)?;
                let point = pair.public_key().as_ref();
                let x = point
                    .get(1..1 + coord)
                    .ok_or_else(|| crypto_err(()))?
                    .to_vec();
                let y = point
                    .get(1 + coord..)
                    .ok_or_else(|| crypto_err(()))?
                    .to_vec();
                let cose = ciborium::Value::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(self.alg)),
                    (int(-1), int(crv)),
                    (int(-2), ciborium::Value::Bytes(x)),
                    (int(-3), ciborium::Value::Bytes(y)),
                ]);
                (SigningKey::Ecdsa(pair), cose)
            }
            alg::EDDSA => {
                let pkcs8 = rs::Ed25519KeyPair::generate_pkcs8(rng).map_err(crypto_err)?;
                let pair = rs::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(crypto_err)?;
                let x = pair.public_key().as_ref().to_vec();
                let cose = ciborium::Value::Map(vec![
                    (int(1), int(1)),
                    (int(3), int(alg::EDDSA)),
                    (int(-1), int(6)),
                    (int(-2), ciborium::Value::Bytes(x)),
                ]);
                (SigningKey::Ed25519(pair), cose)
            }
            _ => {
                let pair = rs::RsaKeyPair::from_pkcs8(TEST_RSA_PKCS8).map_err(crypto_err)?;
                let public = rs::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                let cose = ciborium::Value::Map(vec![
                    (int(1), int(3)),
                    (int(3), int(self.alg)),
                    (int(-1), ciborium::Value::Bytes(public.n)),
                    (int(-2), ciborium::Value::Bytes(public.e)),
                ]);
                (SigningKey::Rsa(pair), cose)
            }
        };
        Ok((key, cbor(&cose)?))
    }

    fn sign(&self, key: &SigningKey, alg: i64, msg: &[u8], corrupt: bool) -> Result<Vec<u8>> {
        let mut sig = match key {
            SigningKey::Ecdsa(pair) => pair
                .sign(&self.rng, msg)
                .map_err(crypto_err)?
                .as_ref()
                .to_vec(),
            SigningKey::Ed25519(pair) => pair.sign(msg).as_ref().to_vec(),
            SigningKey::Rsa(pair) => {
                let padding: &dyn rs::RsaEncoding = if alg == alg::PS256 {
                    &rs::RSA_PSS_SHA256
                } else {
                    &rs::RSA_PKCS1_SHA256
                };
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(padding, &self.rng, msg, &mut sig)
                    .map_err(crypto_err)?;
                sig
            }
        };
        if corrupt {
            if let Some(last) = sig.last_mut() {
                *last ^= 0x01;
            }
        }
        Ok(sig)
    }

    fn client_data(knobs: &SoftKnobs, kind: &str, challenge: &[u8]) -> Result<Vec<u8>> {
        let mut map = serde_json::Map::new();
        let kind = knobs.client_data_type.as_deref().unwrap_or(kind);
        map.insert("type".into(), kind.into());
        let challenge = knobs.challenge.as_deref().unwrap_or(challenge);
        map.insert(
            "challenge".into(),
            Base64UrlBytes(challenge.to_vec()).encode().into(),
        );
        map.insert("origin".into(), knobs.origin.clone().into());
        if let Some(cross) = knobs.cross_origin {
            map.insert("crossOrigin".into(), cross.into());
        }
        if let Some(top) = &knobs.top_origin {
            map.insert("topOrigin".into(), top.clone().into());
        }
        let json =
            serde_json::to_vec(&map).map_err(|_| Error::invalid_input("json encoding failed"))?;
        if knobs.client_data_bom {
            let mut with_bom = b"\xEF\xBB\xBF".to_vec();
            with_bom.extend_from_slice(&json);
            return Ok(with_bom);
        }
        Ok(json)
    }

    fn flags(knobs: &SoftKnobs) -> u8 {
        let mut f = 0;
        if knobs.user_present {
            f |= flags::UP;
        }
        if knobs.user_verified {
            f |= flags::UV;
        }
        if knobs.backup_eligible {
            f |= flags::BE;
        }
        if knobs.backed_up {
            f |= flags::BS;
        }
        f
    }

    /// Creates a credential for `options` (as `navigator.credentials.create()` would) and
    /// returns the browser's response.
    pub fn register(&self, options: &CreationOptionsJson) -> Result<RegistrationResponseJson> {
        let knobs = self.knobs();
        let rp_id = knobs
            .rp_id
            .clone()
            .or_else(|| options.rp.id.clone())
            .ok_or_else(|| Error::invalid_input("no rp id"))?;
        let client_data =
            Self::client_data(&knobs, "webauthn.create", options.challenge.as_slice())?;
        let (key, cose) = self.new_key()?;
        let mut id = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&self.rng, &mut id).map_err(crypto_err)?;
        let counter = knobs.counter.unwrap_or(0);

        let mut auth_data = Vec::with_capacity(37 + 18 + id.len() + cose.len());
        auth_data.extend_from_slice(&sha256(rp_id.as_bytes()));
        auth_data.push(Self::flags(&knobs) | flags::AT);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        auth_data.extend_from_slice(&self.aaguid);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose);

        let (fmt, stmt) = match knobs.attestation {
            SoftAttestation::None => ("none", ciborium::Value::Map(vec![])),
            SoftAttestation::PackedSelf => {
                let mut msg = auth_data.clone();
                msg.extend_from_slice(&sha256(&client_data));
                let sig = self.sign(&key, self.alg, &msg, knobs.corrupt_signature)?;
                (
                    "packed",
                    ciborium::Value::Map(vec![
                        (text("alg"), int(self.alg)),
                        (text("sig"), ciborium::Value::Bytes(sig)),
                    ]),
                )
            }
        };
        let object = cbor(&ciborium::Value::Map(vec![
            (text("fmt"), text(fmt)),
            (text("attStmt"), stmt),
            (text("authData"), ciborium::Value::Bytes(auth_data)),
        ]))?;
        let user_id = options.user.id.as_slice().to_vec();
        self.credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SoftCredential {
                id: id.clone(),
                user_id,
                rp_id,
                alg: self.alg,
                key,
                counter,
            });
        let mut extensions = serde_json::Map::new();
        extensions.insert("credProps".into(), serde_json::json!({"rk": true}));
        Ok(RegistrationResponseJson {
            id: Base64UrlBytes(id.clone()).encode(),
            raw_id: Base64UrlBytes(id),
            kind: PublicKeyType::PublicKey,
            response: AttestationResponseJson {
                client_data_json: Base64UrlBytes(client_data),
                attestation_object: Base64UrlBytes(object),
                authenticator_data: None,
                transports: vec!["internal".to_owned()],
                public_key: None,
                public_key_algorithm: None,
            },
            authenticator_attachment: Some("platform".to_owned()),
            client_extension_results: extensions,
        })
    }

    /// Signs an assertion for `options` (as `navigator.credentials.get()` would) with the first
    /// credential allowed (any of this RP's when `allowCredentials` is empty).
    pub fn authenticate(&self, options: &RequestOptionsJson) -> Result<AuthenticationResponseJson> {
        let knobs = self.knobs();
        let rp_id = options
            .rp_id
            .clone()
            .ok_or_else(|| Error::invalid_input("no rp id"))?;
        let mut creds = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        let cred = creds
            .iter_mut()
            .find(|c| {
                c.rp_id == rp_id
                    && (options.allow_credentials.is_empty()
                        || options
                            .allow_credentials
                            .iter()
                            .any(|d| d.id.as_slice() == c.id.as_slice()))
            })
            .ok_or_else(|| Error::invalid_input("no matching credential"))?;
        cred.counter = cred.counter.wrapping_add(knobs.counter_step);
        let counter = knobs.counter.unwrap_or(cred.counter);
        let hashed_rp = knobs.rp_id.as_deref().unwrap_or(&rp_id);
        let client_data = Self::client_data(&knobs, "webauthn.get", options.challenge.as_slice())?;
        let mut auth_data = Vec::with_capacity(37);
        auth_data.extend_from_slice(&sha256(hashed_rp.as_bytes()));
        auth_data.push(Self::flags(&knobs));
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut msg = auth_data.clone();
        msg.extend_from_slice(&sha256(&client_data));
        let signature = self.sign(&cred.key, cred.alg, &msg, knobs.corrupt_signature)?;
        Ok(AuthenticationResponseJson {
            id: Base64UrlBytes(cred.id.clone()).encode(),
            raw_id: Base64UrlBytes(cred.id.clone()),
            kind: PublicKeyType::PublicKey,
            response: AssertionResponseJson {
                client_data_json: Base64UrlBytes(client_data),
                authenticator_data: Base64UrlBytes(auth_data),
                signature: Base64UrlBytes(signature),
                user_handle: knobs
                    .send_user_handle
                    .then(|| Base64UrlBytes(cred.user_id.clone())),
            },
            authenticator_attachment: Some("platform".to_owned()),
            client_extension_results: serde_json::Map::new(),
        })
    }
}
