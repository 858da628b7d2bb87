//! Signature verification with a credential public key that was decoded and validated once.
//!
//! [`CredentialPublicKey`] is the ready-to-verify form of a COSE_Key: the point is known to be on
//! its curve, the RSA modulus within bounds, and (for ES256 with the `p256` backend) the
//! verifying key already expanded. Nothing is parsed again on the authentication hot path.

use std::fmt;

use ring::signature as rs;
use serde::{Deserialize, Serialize};

use super::WebAuthnFailure;
use super::alg;
use crate::error::{Error, Result};

/// Which implementation verifies ES256 (ECDSA P-256) signatures. All give the same verdict on
/// every input; `ring` is several times faster than `p256`, which is pure Rust, and
/// `Precomputed` (feature `fast-p256`) is faster than `ring` from a key's second verification on.
///
/// ES384, EdDSA, RS256 and PS256 always go through `ring`, ES512 through RustCrypto's `p521`
/// (ring has no P-521), ML-DSA (feature `ml-dsa`) through RustCrypto's `ml-dsa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SignatureBackend {
    /// `ring` (the default without the `fast-p256` feature).
    #[cfg_attr(not(feature = "fast-p256"), default)]
    Ring,
    /// RustCrypto's `p256`.
    P256,
    /// [`keyward::p256v`](crate::p256v): per-key precomputed tables, kept with the decoded key
    /// and in [`TableCache::global`](crate::p256v::TableCache::global); the default with the
    /// `fast-p256` feature.
    #[cfg(feature = "fast-p256")]
    #[cfg_attr(feature = "fast-p256", default)]
    Precomputed,
}

#[derive(Clone)]
pub(crate) enum KeyMaterial {
    P256 {
        sec1: [u8; 65],
        rust: p256::ecdsa::VerifyingKey,
        /// The precomputed table, once a verification or [`CredentialPublicKey::precompute`]
        /// fetched it.
        #[cfg(feature = "fast-p256")]
        fast: std::sync::OnceLock<std::sync::Arc<crate::p256v::PrecomputedKey>>,
    },
    P384([u8; 97]),
    P521 {
        sec1: Box<[u8; 133]>,
        key: Box<p521::ecdsa::VerifyingKey>,
    },
    Ed25519([u8; 32]),
    /// The encoded ML-DSA public key; the algorithm says which parameter set.
    #[cfg(feature = "ml-dsa")]
    MlDsa(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

/// A credential public key, decoded from its COSE_Key and validated once, ready to verify.
#[derive(Clone)]
pub struct CredentialPublicKey {
    alg: i64,
    key: KeyMaterial,
}

impl fmt::Debug for CredentialPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.key {
            KeyMaterial::P256 { .. } => "P-256",
            KeyMaterial::P384(_) => "P-384",
            KeyMaterial::P521 { .. } => "P-521",
            KeyMaterial::Ed25519(_) => "Ed25519",
            #[cfg(feature = "ml-dsa")]
            KeyMaterial::MlDsa(_) => "ML-DSA",
            KeyMaterial::Rsa { .. } => "RSA",
        };
        f.debug_struct("CredentialPublicKey")
            .field("alg", &self.alg)
            .field("kind", &kind)
            .finish()
    }
}

impl PartialEq for CredentialPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg
            && match (&self.key, &other.key) {
                (KeyMaterial::P256 { sec1: a, .. }, KeyMaterial::P256 { sec1: b, .. }) => a == b,
                (KeyMaterial::P384(a), KeyMaterial::P384(b)) => a == b,
                (KeyMaterial::P521 { sec1: a, .. }, KeyMaterial::P521 { sec1: b, .. }) => a == b,
                (KeyMaterial::Ed25519(a), KeyMaterial::Ed25519(b)) => a == b,
                #[cfg(feature = "ml-dsa")]
                (KeyMaterial::MlDsa(a), KeyMaterial::MlDsa(b)) => a == b,
                (KeyMaterial::Rsa { n: a, e: x }, KeyMaterial::Rsa { n: b, e: y }) => {
                    a == b && x == y
                }
                _ => false,
            }
    }
}

impl Eq for CredentialPublicKey {}

/// Stack space for `authenticatorData || clientDataHash` on the hot path.
const INLINE_MESSAGE: usize = 512;

impl CredentialPublicKey {
    /// Decodes and validates a COSE_Key (exactly one key, no trailing bytes).
    ///
    /// Fails with [`WebAuthnFailure::InvalidPublicKey`], [`WebAuthnFailure::UnsupportedAlgorithm`]
    /// or [`WebAuthnFailure::TooLarge`].
    pub fn from_cose(bytes: &[u8]) -> Result<Self> {
        super::cose::decode(bytes).map_err(Error::webauthn)
    }

    pub(crate) fn new(alg: i64, key: KeyMaterial) -> Self {
        CredentialPublicKey { alg, key }
    }

    pub(crate) fn p256(sec1: [u8; 65]) -> std::result::Result<Self, WebAuthnFailure> {
        let rust = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
            .map_err(|_| WebAuthnFailure::InvalidPublicKey)?;
        Ok(CredentialPublicKey::new(
            alg::ES256,
            KeyMaterial::P256 {
                sec1,
                rust,
                #[cfg(feature = "fast-p256")]
                fast: std::sync::OnceLock::new(),
            },
        ))
    }

    pub(crate) fn p384(sec1: [u8; 97]) -> std::result::Result<Self, WebAuthnFailure> {
        p384::PublicKey::from_sec1_bytes(&sec1).map_err(|_| WebAuthnFailure::InvalidPublicKey)?;
        Ok(CredentialPublicKey::new(
            alg::ES384,
            KeyMaterial::P384(sec1),
        ))
    }

    pub(crate) fn p521(sec1: [u8; 133]) -> std::result::Result<Self, WebAuthnFailure> {
        let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
            .map_err(|_| WebAuthnFailure::InvalidPublicKey)?;
        Ok(CredentialPublicKey::new(
            alg::ES512,
            KeyMaterial::P521 {
                sec1: Box::new(sec1),
                key: Box::new(key),
            },
        ))
    }

    /// The COSE algorithm of the key.
    pub fn algorithm(&self) -> i64 {
        self.alg
    }

    /// For an ES256 key, fetches its precomputed table from
    /// [`TableCache::global`](crate::p256v::TableCache::global) (building it on a miss) and keeps
    /// it with this key, so the next [`SignatureBackend::Precomputed`] verification starts at
    /// full speed: call it at registration or when a credential is loaded. Returns the table's
    /// size in bytes, `None` for other algorithms.
    #[cfg(feature = "fast-p256")]
    pub fn precompute(&self) -> Option<usize> {
        match &self.key {
            KeyMaterial::P256 { sec1, fast, .. } => {
                fast_table(sec1, fast).map(|t| t.memory_bytes())
            }
            _ => None,
        }
    }

    /// Verifies `signature` over `message` (ECDSA signatures are DER encoded).
    ///
    /// Fails with [`WebAuthnFailure::InvalidSignature`].
    pub fn verify(
        &self,
        backend: SignatureBackend,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        self.verify_raw(backend, message, signature)
            .map_err(Error::webauthn)
    }

    /// Verifies an assertion signature over `authenticator_data || client_data_hash` without
    /// allocating for the usual sizes.
    pub(crate) fn verify_assertion(
        &self,
        backend: SignatureBackend,
        authenticator_data: &[u8],
        client_data_hash: &[u8; 32],
        signature: &[u8],
    ) -> std::result::Result<(), WebAuthnFailure> {
        let total = authenticator_data.len() + client_data_hash.len();
        if total <= INLINE_MESSAGE {
            let mut buf = [0u8; INLINE_MESSAGE];
            let (head, tail) = buf.split_at_mut(authenticator_data.len());
            head.copy_from_slice(authenticator_data);
            let msg_tail = tail
                .get_mut(..client_data_hash.len())
                .ok_or(WebAuthnFailure::InvalidSignature)?;
            msg_tail.copy_from_slice(client_data_hash);
            let msg = buf.get(..total).ok_or(WebAuthnFailure::InvalidSignature)?;
            self.verify_raw(backend, msg, signature)
        } else {
            let mut msg = Vec::with_capacity(total);
            msg.extend_from_slice(authenticator_data);
            msg.extend_from_slice(client_data_hash);
            self.verify_raw(backend, &msg, signature)
        }
    }

    pub(crate) fn verify_raw(
        &self,
        backend: SignatureBackend,
        message: &[u8],
        signature: &[u8],
    ) -> std::result::Result<(), WebAuthnFailure> {
        let ok = match &self.key {
            KeyMaterial::P256 {
                sec1,
                rust,
                #[cfg(feature = "fast-p256")]
                fast,
            } => match backend {
                #[cfg(feature = "fast-p256")]
                SignatureBackend::Precomputed => match fast_table(sec1, fast) {
                    Some(table) => table.verify(message, signature).is_ok(),
                    None => false,
                },
                SignatureBackend::Ring => {
                    rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_ASN1, &sec1[..])
                        .verify(message, signature)
                        .is_ok()
                }
                SignatureBackend::P256 => {
                    use p256::ecdsa::signature::Verifier;
                    match p256::ecdsa::Signature::from_der(signature) {
                        Ok(sig) => rust.verify(message, &sig).is_ok(),
                        Err(_) => false,
                    }
                }
            },
            KeyMaterial::P384(sec1) => {
                rs::UnparsedPublicKey::new(&rs::ECDSA_P384_SHA384_ASN1, &sec1[..])
                    .verify(message, signature)
                    .is_ok()
            }
            // ring has no P-521: RustCrypto's `p521` (SHA-512, DER signature).
            KeyMaterial::P521 { key, .. } => {
                use p521::ecdsa::signature::Verifier;
                match p521::ecdsa::Signature::from_der(signature) {
                    Ok(sig) => key.verify(message, &sig).is_ok(),
                    Err(_) => false,
                }
            }
            KeyMaterial::Ed25519(pk) => rs::UnparsedPublicKey::new(&rs::ED25519, &pk[..])
                .verify(message, signature)
                .is_ok(),
            #[cfg(feature = "ml-dsa")]
            KeyMaterial::MlDsa(public) => ml_dsa_verify(self.alg, public, message, b"", signature),
            KeyMaterial::Rsa { n, e } => {
                let params = if self.alg == alg::PS256 {
                    &rs::RSA_PSS_2048_8192_SHA256
                } else {
                    &rs::RSA_PKCS1_2048_8192_SHA256
                };
                rs::RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .verify(params, message, signature)
                .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(WebAuthnFailure::InvalidSignature)
        }
    }
}

/// ML-DSA verification (FIPS 204 Algorithm 3, context `ctx`; WebAuthn uses the empty context)
/// with RustCrypto's `ml-dsa`. The key must have the parameter set's length; the public key is
/// expanded on each call (it is not kept expanded: about 20 KiB per ML-DSA-65 key).
#[cfg(feature = "ml-dsa")]
pub(crate) fn ml_dsa_verify(alg: i64, public: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
    fn verify<P: ml_dsa::MlDsaParams>(public: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
        let Ok(encoded) = ml_dsa::EncodedVerifyingKey::<P>::try_from(public) else {
            return false;
        };
        let Ok(sig) = ml_dsa::Signature::<P>::try_from(sig) else {
            return false;
        };
        ml_dsa::VerifyingKey::<P>::decode(&encoded).verify_with_context(msg, ctx, &sig)
    }
    match alg {
        alg::ML_DSA_44 => verify::<ml_dsa::MlDsa44>(public, msg, ctx, sig),
        alg::ML_DSA_65 => verify::<ml_dsa::MlDsa65>(public, msg, ctx, sig),
        _ => false,
    }
}

/// The table of an ES256 key: the one kept with the key, else from the global cache (and kept).
#[cfg(feature = "fast-p256")]
fn fast_table<'a>(
    sec1: &[u8; 65],
    fast: &'a std::sync::OnceLock<std::sync::Arc<crate::p256v::PrecomputedKey>>,
) -> Option<&'a crate::p256v::PrecomputedKey> {
    if let Some(table) = fast.get() {
        return Some(table);
    }
    // The point was validated when the key was decoded; this parse cannot fail.
    let key = crate::p256v::PublicKey::from_sec1(sec1).ok()?;
    Some(fast.get_or_init(|| crate::p256v::TableCache::global().get(&key)))
}
