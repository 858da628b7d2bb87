//! A software authenticator for tests and benchmarks (feature `testing`): genuine registration
//! (`none` or `packed` self attestation) and assertion responses for ES256, ES384, ES512, EdDSA,
//! RS256 and PS256, with knobs to produce every kind of wrong response. Never use it in production.
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
    /// Whether the authenticator (and its client) process extensions: `prf` (through
    /// `hmac-secret`, as browsers map it), `largeBlob`, `credProtect`, `credBlob`,
    /// `minPinLength`, `appidExclude`. On by default; off, every extension input is ignored.
    pub extensions: bool,
    /// Overrides the `credProtect` level written at registration (`Some(0)`: write none), to
    /// play an authenticator that does not honour the request.
    pub cred_protect_output: Option<u8>,
    /// The minimum PIN length reported for `minPinLength` (default 4).
    pub min_pin_length: u32,
    /// The authenticator attachment the client reports (default `platform`).
    pub attachment: Option<String>,
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
            extensions: true,
            cred_protect_output: None,
            min_pin_length: 4,
            attachment: Some("platform".to_owned()),
        }
    }
}

enum SigningKey {
    Ecdsa(rs::EcdsaKeyPair),
    /// ring has no P-521: RustCrypto's `p521`.
    P521(Box<p521::ecdsa::SigningKey>),
    /// An ML-DSA key, kept as its FIPS 204 seed (the algorithm says which parameter set).
    #[cfg(feature = "ml-dsa")]
    MlDsa([u8; 32]),
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
    /// The `hmac-secret` key behind PRF (`CredRandom`).
    prf_key: [u8; 32],
    large_blob_supported: bool,
    large_blob: Option<Vec<u8>>,
    cred_blob: Option<Vec<u8>>,
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

/// WebAuthn Level 3 §10.1.4: the client hashes each PRF input with a context string, then the
/// authenticator's `hmac-secret` computes HMAC-SHA-256 with the credential's random key.
fn prf_eval(key: &[u8; 32], input: &[u8]) -> Vec<u8> {
    let mut salt_input = b"WebAuthn PRF\x00".to_vec();
    salt_input.extend_from_slice(input);
    let salt = sha256(&salt_input);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, &salt).as_ref().to_vec()
}

/// `{"first": b64, "second"?: b64}` PRF inputs evaluated into the same shape of outputs.
fn prf_results(key: &[u8; 32], values: &serde_json::Value) -> Option<serde_json::Value> {
    let eval = |name: &str| -> Option<String> {
        let input = Base64UrlBytes::decode(values.get(name)?.as_str()?)?;
        Some(Base64UrlBytes(prf_eval(key, input.as_slice())).encode())
    };
    let mut out = serde_json::Map::new();
    out.insert("first".into(), eval("first")?.into());
    if let Some(second) = eval("second") {
        out.insert("second".into(), second.into());
    }
    Some(serde_json::Value::Object(out))
}

fn b64_field(v: Option<&serde_json::Value>) -> Option<Vec<u8>> {
    Base64UrlBytes::decode(v?.as_str()?).map(|b| b.0)
}

/// The encoded public key of the ML-DSA key generated from `seed` (FIPS 204 KeyGen_internal).
#[cfg(feature = "ml-dsa")]
fn ml_dsa_public(alg: i64, seed: &[u8; 32]) -> Vec<u8> {
    fn public<P: ml_dsa::MlDsaParams>(seed: &[u8; 32]) -> Vec<u8> {
        let key = ml_dsa::SigningKey::<P>::from_seed(&(*seed).into());
        key.expanded_key().verifying_key().encode().to_vec()
    }
    if alg == alg::ML_DSA_44 {
        public::<ml_dsa::MlDsa44>(seed)
    } else {
        public::<ml_dsa::MlDsa65>(seed)
    }
}

/// A deterministic ML-DSA signature (empty context, as WebAuthn uses) with the key of `seed`.
#[cfg(feature = "ml-dsa")]
fn ml_dsa_sign(alg: i64, seed: &[u8; 32], msg: &[u8]) -> Result<Vec<u8>> {
    fn sign<P: ml_dsa::MlDsaParams>(seed: &[u8; 32], msg: &[u8]) -> Result<Vec<u8>> {
        let key = ml_dsa::SigningKey::<P>::from_seed(&(*seed).into());
        let sig = key
            .expanded_key()
            .sign_deterministic(msg, b"")
            .map_err(crypto_err)?;
        Ok(sig.encode().to_vec())
    }
    if alg == alg::ML_DSA_44 {
        sign::<ml_dsa::MlDsa44>(seed, msg)
    } else {
        sign::<ml_dsa::MlDsa65>(seed, msg)
    }
}

fn crypto_err(_: impl fmt::Debug) -> Error {
    Error::invalid_input("software authenticator key operation failed")
}

impl SoftAuthenticator {
    /// An authenticator that creates credentials with COSE algorithm `alg` (ES256, ES384, ES512,
    /// EdDSA, RS256, PS256, and ML-DSA-44 / ML-DSA-65 with the `ml-dsa` feature) and behaves
    /// correctly for `origin`.
    pub fn new(alg: i64, origin: impl Into<String>) -> Result<Self> {
        let known = [
            alg::ES256,
            alg::ES384,
            alg::ES512,
            alg::EDDSA,
            alg::RS256,
            alg::PS256,
        ];
        let ml_dsa = cfg!(feature = "ml-dsa") && [alg::ML_DSA_44, alg::ML_DSA_65].contains(&alg);
        if !known.contains(&alg) && !ml_dsa {
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

    /// What the credential's PRF gives for `input` (as the browser's `prf` extension computes
    /// it), to check a relying party's outputs against.
    pub fn prf_for(&self, credential_id: &[u8], input: &[u8]) -> Option<Vec<u8>> {
        let creds = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        creds
            .iter()
            .find(|c| c.id == credential_id)
            .map(|c| prf_eval(&c.prf_key, input))
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
            alg::ES512 => {
                let signing =
                    p521::ecdsa::SigningKey::random(&mut p521::elliptic_curve::rand_core::OsRng);
                let point = p521::ecdsa::VerifyingKey::from(&signing).to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(crypto_err(()));
                };
                let cose = ciborium::Value::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(alg::ES512)),
                    (int(-1), int(3)),
                    (int(-2), ciborium::Value::Bytes(x.to_vec())),
                    (int(-3), ciborium::Value::Bytes(y.to_vec())),
                ]);
                (SigningKey::P521(Box::new(signing)), cose)
            }
            #[cfg(feature = "ml-dsa")]
            alg::ML_DSA_44 | alg::ML_DSA_65 => {
                let mut seed = [0u8; 32];
                ring::rand::SecureRandom::fill(rng, &mut seed).map_err(crypto_err)?;
                let public = ml_dsa_public(self.alg, &seed);
                let cose = ciborium::Value::Map(vec![
                    (int(1), int(7)),
                    (int(3), int(self.alg)),
                    (int(-1), ciborium::Value::Bytes(public)),
                ]);
                (SigningKey::MlDsa(seed), cose)
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
            SigningKey::P521(key) => {
                use p521::ecdsa::signature::Signer;
                let sig: p521::ecdsa::Signature = key.try_sign(msg).map_err(crypto_err)?;
                sig.to_der().as_bytes().to_vec()
            }
            #[cfg(feature = "ml-dsa")]
            SigningKey::MlDsa(seed) => ml_dsa_sign(alg, seed, msg)?,
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
        if corrupt && let Some(last) = sig.last_mut() {
            *last ^= 0x01;
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
        let mut prf_key = [0u8; 32];
        ring::rand::SecureRandom::fill(&self.rng, &mut prf_key).map_err(crypto_err)?;
        let counter = knobs.counter.unwrap_or(0);
        let inputs = options
            .extensions
            .clone()
            .filter(|_| knobs.extensions)
            .unwrap_or_default();
        let mut client_ext = serde_json::Map::new();
        let mut auth_ext: Vec<(ciborium::Value, ciborium::Value)> = Vec::new();
        if inputs.contains_key("credProps") {
            client_ext.insert("credProps".into(), serde_json::json!({"rk": true}));
        }
        if let Some(prf) = inputs.get("prf") {
            auth_ext.push((text("hmac-secret"), ciborium::Value::Bool(true)));
            let mut out = serde_json::Map::new();
            out.insert("enabled".into(), true.into());
            if let Some(results) = prf.get("eval").and_then(|e| prf_results(&prf_key, e)) {
                out.insert("results".into(), results);
            }
            client_ext.insert("prf".into(), serde_json::Value::Object(out));
        }
        let large_blob_supported = inputs.contains_key("largeBlob");
        if large_blob_supported {
            client_ext.insert("largeBlob".into(), serde_json::json!({"supported": true}));
        }
        if let Some(policy) = inputs
            .get("credentialProtectionPolicy")
            .and_then(|p| p.as_str())
        {
            let level = match policy {
                "userVerificationOptional" => 1,
                "userVerificationOptionalWithCredentialIDList" => 2,
                _ => 3,
            };
            let level = knobs.cred_protect_output.unwrap_or(level);
            if level != 0 {
                auth_ext.push((text("credProtect"), int(i64::from(level))));
            }
        }
        let cred_blob = b64_field(inputs.get("credBlob")).filter(|b| b.len() <= 32);
        if inputs.contains_key("credBlob") {
            auth_ext.push((text("credBlob"), ciborium::Value::Bool(cred_blob.is_some())));
        }
        if inputs.contains_key("minPinLength") {
            auth_ext.push((text("minPinLength"), int(i64::from(knobs.min_pin_length))));
        }
        if inputs.contains_key("appidExclude") {
            client_ext.insert("appidExclude".into(), true.into());
        }

        let mut auth_data = Vec::with_capacity(37 + 18 + id.len() + cose.len());
        auth_data.extend_from_slice(&sha256(rp_id.as_bytes()));
        let ed = if auth_ext.is_empty() { 0 } else { flags::ED };
        auth_data.push(Self::flags(&knobs) | flags::AT | ed);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        auth_data.extend_from_slice(&self.aaguid);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose);
        if !auth_ext.is_empty() {
            auth_data.extend_from_slice(&cbor(&ciborium::Value::Map(auth_ext))?);
        }

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
                prf_key,
                large_blob_supported,
                large_blob: None,
                cred_blob,
            });
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
            authenticator_attachment: knobs.attachment.clone(),
            client_extension_results: client_ext,
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
        let inputs = options
            .extensions
            .clone()
            .filter(|_| knobs.extensions)
            .unwrap_or_default();
        let mut client_ext = serde_json::Map::new();
        let mut auth_ext: Vec<(ciborium::Value, ciborium::Value)> = Vec::new();
        if let Some(prf) = inputs.get("prf") {
            let own = Base64UrlBytes(cred.id.clone()).encode();
            let values = prf
                .get("evalByCredential")
                .and_then(|by| by.get(&own))
                .or_else(|| prf.get("eval"));
            if let Some(results) = values.and_then(|v| prf_results(&cred.prf_key, v)) {
                client_ext.insert("prf".into(), serde_json::json!({ "results": results }));
            }
        }
        if let Some(lb) = inputs.get("largeBlob") {
            if lb.get("read").and_then(|r| r.as_bool()) == Some(true) {
                let mut out = serde_json::Map::new();
                if let Some(blob) = cred
                    .large_blob
                    .as_ref()
                    .filter(|_| cred.large_blob_supported)
                {
                    out.insert("blob".into(), Base64UrlBytes(blob.clone()).encode().into());
                }
                client_ext.insert("largeBlob".into(), serde_json::Value::Object(out));
            } else if let Some(blob) = b64_field(lb.get("write")) {
                let written = cred.large_blob_supported;
                if written {
                    cred.large_blob = Some(blob);
                }
                client_ext.insert(
                    "largeBlob".into(),
                    serde_json::json!({ "written": written }),
                );
            }
        }
        if inputs.get("getCredBlob").and_then(|g| g.as_bool()) == Some(true) {
            let blob = cred.cred_blob.clone().unwrap_or_default();
            client_ext.insert(
                "getCredBlob".into(),
                Base64UrlBytes(blob.clone()).encode().into(),
            );
            auth_ext.push((text("credBlob"), ciborium::Value::Bytes(blob)));
        }
        let mut auth_data = Vec::with_capacity(37);
        auth_data.extend_from_slice(&sha256(hashed_rp.as_bytes()));
        let ed = if auth_ext.is_empty() { 0 } else { flags::ED };
        auth_data.push(Self::flags(&knobs) | ed);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        if !auth_ext.is_empty() {
            auth_data.extend_from_slice(&cbor(&ciborium::Value::Map(auth_ext))?);
        }
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
            authenticator_attachment: knobs.attachment.clone(),
            client_extension_results: client_ext,
        })
    }
}
