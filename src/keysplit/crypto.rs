//! The 2-man-rule blob format, byte-compatible with the Seald client.
//!
//! - Symmetric key: 64 bytes, `hmac_key = key[0..32]`, `aes_key = key[32..64]`.
//! - `seal(pt) = iv (16 random bytes) || AES-256-CBC-PKCS7(aes_key, iv, pt) ||
//!   HMAC-SHA256(hmac_key, iv || ct)`; [`open`] checks the HMAC in constant time before
//!   decrypting anything.
//! - Free-form `twoManRuleKey`: `salt` = 32 random bytes, `key = scrypt(P = NFKC(twoManRuleKey),
//!   S = salt || NFKC("seald-ssks-2mr-encryption|" + appId + "|" + userId), N = 16384, r = 8,
//!   p = 1, 64 bytes)`, `data_b64 = base64(salt || seal(identity))`.
//! - `rawTwoManRuleKey` (base64 of 64 bytes): the decoded bytes are the key, no salt:
//!   `data_b64 = base64(seal(identity))`.
//!
//! Every failure to open (wrong key, user id or app id, tampering, truncation, oversize, bad
//! base64) is an [`CannotOpen`](crate::ErrorKind::CannotOpen) error; opening never
//! returns unauthenticated bytes and never panics.
//!
//! ```
//! use keyward::{ErrorKind, SystemRandom};
//! use keyward::keysplit::{KeyKind, TwoManRuleKey, crypto};
//!
//! let rng = SystemRandom::new();
//! let key = TwoManRuleKey::generate(KeyKind::Free, &rng)?;
//! let blob = crypto::seal_identity(&key, "app-id", "user-1", b"identity bytes", &rng)?;
//! let opened = crypto::open_identity(&key, "app-id", "user-1", &blob)?;
//! assert_eq!(opened.expose(), b"identity bytes");
//! // Free-form keys bind the blob to the app and user ids.
//! let err = crypto::open_identity(&key, "app-id", "user-2", &blob).unwrap_err();
//! assert_eq!(err.kind(), &ErrorKind::CannotOpen);
//! # Ok::<(), keyward::Error>(())
//! ```

use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ring::hmac;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize, Zeroizing};

use super::keys::{KeyKind, TwoManRuleKey};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::SecureRandom;
use crate::secret::Secret;

/// Length of the symmetric key.
pub const SYM_KEY_LEN: usize = 64;
/// Length of the scrypt salt (free-form key mode).
pub const SALT_LEN: usize = 32;
/// Length of the CBC IV.
pub const IV_LEN: usize = 16;
/// Length of the HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// Largest `data_b64` accepted by [`open_identity`] (characters). Seald identities are a few
/// kilobytes; anything far larger is refused before decoding.
pub const MAX_DATA_B64_LEN: usize = 512 * 1024;
/// Largest identity [`seal_identity`] accepts (bytes), so that every sealed blob opens.
pub const MAX_IDENTITY_LEN: usize = (MAX_DATA_B64_LEN / 4) * 3 - SALT_LEN - IV_LEN - MAC_LEN - 16;

/// The domain-separation prefix of the scrypt salt.
const SALT_CONTEXT: &str = "seald-ssks-2mr-encryption|";

/// scrypt cost: log2(N) = 14, r = 8, p = 1.
const SCRYPT_LOG_N: u8 = 14;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// A 64-byte symmetric key (HMAC key then AES key), zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct SymKey(Zeroizing<[u8; SYM_KEY_LEN]>);

impl SymKey {
    /// Wraps 64 key bytes.
    pub fn from_bytes(bytes: [u8; SYM_KEY_LEN]) -> Self {
        SymKey(Zeroizing::new(bytes))
    }

    /// Wraps a slice that must be exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; SYM_KEY_LEN]);
        if bytes.len() != SYM_KEY_LEN {
            return Err(Error::invalid_input("a symmetric key is exactly 64 bytes"));
        }
        key.copy_from_slice(bytes);
        Ok(SymKey(key))
    }

    /// Derives the key of a free-form `twoManRuleKey` with scrypt (see the module docs).
    pub fn derive(
        two_man_rule_key: &str,
        salt: &[u8; SALT_LEN],
        app_id: &str,
        user_id: &str,
    ) -> Result<Self> {
        let password = Zeroizing::new(two_man_rule_key.nfkc().collect::<String>());
        let context: String = format!("{SALT_CONTEXT}{app_id}|{user_id}").nfkc().collect();
        let mut full_salt = Vec::with_capacity(SALT_LEN + context.len());
        full_salt.extend_from_slice(salt);
        full_salt.extend_from_slice(context.as_bytes());
        let params = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, SYM_KEY_LEN)
            .map_err(|_| Error::new(ErrorKind::Unsupported, "invalid scrypt parameters"))?;
        let mut key = Zeroizing::new([0u8; SYM_KEY_LEN]);
        scrypt::scrypt(password.as_bytes(), &full_salt, &params, key.as_mut_slice())
            .map_err(|_| Error::new(ErrorKind::Unsupported, "invalid scrypt output length"))?;
        Ok(SymKey(key))
    }

    /// The key of a `rawTwoManRuleKey`: its base64 decoding, which must be 64 bytes.
    pub fn from_raw_key(raw: &str) -> Result<Self> {
        if !super::keys::is_raw_key_shape(raw.as_bytes()) {
            return Err(Error::invalid_input(
                "rawTwoManRuleKey must be the base64 encoding of exactly 64 bytes",
            ));
        }
        // Lenient on the unused low bits of the last character, like the JavaScript client.
        let engine = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
        );
        let decoded = Zeroizing::new(engine.decode(raw).map_err(|_| {
            Error::invalid_input("rawTwoManRuleKey must be the base64 encoding of exactly 64 bytes")
        })?);
        SymKey::from_slice(&decoded)
    }

    /// The key bytes. Never log them.
    pub fn expose(&self) -> &[u8; SYM_KEY_LEN] {
        &self.0
    }

    fn hmac_key(&self) -> &[u8] {
        self.0.get(..32).unwrap_or_default()
    }

    fn aes_key(&self) -> &[u8] {
        self.0.get(32..).unwrap_or_default()
    }
}

impl fmt::Debug for SymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymKey([REDACTED])")
    }
}

fn cannot_open(why: &'static str) -> Error {
    Error::new(ErrorKind::CannotOpen, why)
}

/// `iv || AES-256-CBC-PKCS7(ct) || HMAC-SHA256(iv || ct)` with a fresh IV from `rng`.
pub fn seal(key: &SymKey, plaintext: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>> {
    let mut iv = [0u8; IV_LEN];
    rng.fill(&mut iv)?;
    let cipher = Aes256CbcEnc::new_from_slices(key.aes_key(), &iv)
        .map_err(|_| Error::invalid_input("bad AES key or IV length"))?;
    let ct = cipher.encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut out = Vec::with_capacity(IV_LEN + ct.len() + MAC_LEN);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&ct);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.hmac_key()), &out);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a [`seal`]ed message: checks the tag in constant time, then decrypts.
pub fn open(key: &SymKey, sealed: &[u8]) -> Result<Secret> {
    if sealed.len() < IV_LEN + 16 + MAC_LEN {
        return Err(cannot_open("encrypted identity is too short"));
    }
    let (body, tag) = sealed.split_at(sealed.len() - MAC_LEN);
    let (iv, ct) = body.split_at(IV_LEN);
    if ct.len() % 16 != 0 {
        return Err(cannot_open("encrypted identity has a truncated block"));
    }
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key.hmac_key()),
        body,
        tag,
    )
    .map_err(|_| {
        cannot_open(
            "encrypted identity does not authenticate: wrong key, user or app id, or tampered data",
        )
    })?;
    let cipher = Aes256CbcDec::new_from_slices(key.aes_key(), iv)
        .map_err(|_| cannot_open("bad AES key or IV length"))?;
    let mut plaintext = cipher
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map_err(|_| cannot_open("encrypted identity has bad padding"))?;
    let secret = Secret::new(plaintext.as_slice());
    plaintext.zeroize();
    Ok(secret)
}

/// Encrypts `identity` for SSKS as the Seald client does; returns `data_b64`.
pub fn seal_identity(
    key: &TwoManRuleKey,
    app_id: &str,
    user_id: &str,
    identity: &[u8],
    rng: &dyn SecureRandom,
) -> Result<String> {
    if identity.is_empty() {
        return Err(Error::invalid_input("identity must not be empty"));
    }
    if identity.len() > MAX_IDENTITY_LEN {
        return Err(Error::invalid_input("identity is too large"));
    }
    let mut blob = match key.kind() {
        KeyKind::Free => {
            let mut salt = [0u8; SALT_LEN];
            rng.fill(&mut salt)?;
            let sym = SymKey::derive(key.expose(), &salt, app_id, user_id)?;
            let mut blob = salt.to_vec();
            blob.extend_from_slice(&seal(&sym, identity, rng)?);
            blob
        }
        KeyKind::Raw => seal(&SymKey::from_raw_key(key.expose())?, identity, rng)?,
    };
    let encoded = STANDARD.encode(&blob);
    blob.zeroize();
    Ok(encoded)
}

/// Decrypts a `data_b64` fetched from SSKS. Any failure is
/// [`CannotOpen`](crate::ErrorKind::CannotOpen).
pub fn open_identity(
    key: &TwoManRuleKey,
    app_id: &str,
    user_id: &str,
    data_b64: &str,
) -> Result<Secret> {
    if data_b64.len() > MAX_DATA_B64_LEN {
        return Err(cannot_open("encrypted identity is too large"));
    }
    let blob = STANDARD
        .decode(data_b64.trim())
        .map_err(|_| cannot_open("encrypted identity is not valid base64"))?;
    open_identity_bytes(key, app_id, user_id, &blob)
}

/// [`open_identity`] on already decoded bytes.
pub fn open_identity_bytes(
    key: &TwoManRuleKey,
    app_id: &str,
    user_id: &str,
    blob: &[u8],
) -> Result<Secret> {
    match key.kind() {
        KeyKind::Free => {
            if blob.len() < SALT_LEN + IV_LEN + 16 + MAC_LEN {
                return Err(cannot_open("encrypted identity is too short"));
            }
            let (salt, sealed) = blob.split_at(SALT_LEN);
            let mut salt_arr = [0u8; SALT_LEN];
            salt_arr.copy_from_slice(salt);
            let sym = SymKey::derive(key.expose(), &salt_arr, app_id, user_id)?;
            open(&sym, sealed)
        }
        KeyKind::Raw => {
            let sym = SymKey::from_raw_key(key.expose()).map_err(|_| cannot_open("bad raw key"))?;
            open(&sym, blob)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRandom;

    fn hex(bytes: &[u8]) -> String {
        crate::hex::encode(bytes)
    }

    /// PROTOCOLS.md section 3, known answer (string mode).
    #[test]
    fn known_answer_derivation() {
        let key = SymKey::derive(
            "dGVzdC10d28tbWFuLXJ1bGUta2V5LWZvci1rYXQtdmVjdG9ycy0wMTIzNDU2Nzg5YWJjZGVmZ2hpams=",
            &[0x11; SALT_LEN],
            "00000000-0000-1000-a000-7ea300000001",
            "user-42",
        )
        .unwrap();
        assert_eq!(
            hex(key.expose()),
            "997c6bd2d71b7364b6a601b4081005c1400d6931100d6484e1b4d18cb9f7d5289d2dea82a1d09c8dae00c3697805d26d2a509874aef1001784c09c4188c9e41f"
        );
    }

    #[test]
    fn seal_layout_and_tamper_detection() {
        let rng = SeededRandom::new(b"seal");
        let key = SymKey::from_bytes([7; SYM_KEY_LEN]);
        let sealed = seal(&key, b"0123456789abcdef", &rng).unwrap();
        // 16 bytes of plaintext pad to two blocks.
        assert_eq!(sealed.len(), IV_LEN + 32 + MAC_LEN);
        let (body, tag) = sealed.split_at(sealed.len() - MAC_LEN);
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]), body);
        assert_eq!(tag, expected.as_ref());
        assert_eq!(open(&key, &sealed).unwrap().expose(), b"0123456789abcdef");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(&key, &bad).unwrap_err().kind(), &ErrorKind::CannotOpen);
        }
        let other = SymKey::from_bytes([8; SYM_KEY_LEN]);
        assert_eq!(
            open(&other, &sealed).unwrap_err().kind(),
            &ErrorKind::CannotOpen
        );
        assert_eq!(
            open(&key, &sealed[..40]).unwrap_err().kind(),
            &ErrorKind::CannotOpen
        );
    }

    #[test]
    fn free_mode_binds_key_user_and_app() {
        let rng = SeededRandom::new(b"free");
        let key = TwoManRuleKey::generate(KeyKind::Free, &rng).unwrap();
        let blob = seal_identity(&key, "app", "alice", b"identity", &rng).unwrap();
        let raw = STANDARD.decode(&blob).unwrap();
        assert_eq!(raw.len(), SALT_LEN + IV_LEN + 16 + MAC_LEN);
        assert_eq!(
            open_identity(&key, "app", "alice", &blob).unwrap().expose(),
            b"identity"
        );
        let other = TwoManRuleKey::generate(KeyKind::Free, &rng).unwrap();
        for (k, app, user) in [
            (&other, "app", "alice"),
            (&key, "app", "bob"),
            (&key, "app2", "alice"),
        ] {
            let err = open_identity(k, app, user, &blob).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::CannotOpen);
        }
    }

    #[test]
    fn raw_mode_uses_the_key_directly() {
        let rng = SeededRandom::new(b"raw");
        let key = TwoManRuleKey::generate(KeyKind::Raw, &rng).unwrap();
        let blob = seal_identity(&key, "app", "alice", b"identity", &rng).unwrap();
        let raw = STANDARD.decode(&blob).unwrap();
        assert_eq!(raw.len(), IV_LEN + 16 + MAC_LEN);
        let sym = SymKey::from_slice(&STANDARD.decode(key.expose()).unwrap()).unwrap();
        assert_eq!(open(&sym, &raw).unwrap().expose(), b"identity");
        // The raw mode does not bind user and app ids (as in the Seald client).
        assert!(open_identity(&key, "app", "bob", &blob).is_ok());
        // The same text used as a free-form key is a different key.
        let as_free = TwoManRuleKey::free(key.expose()).unwrap();
        assert_eq!(
            open_identity(&as_free, "app", "alice", &blob)
                .unwrap_err()
                .kind(),
            &ErrorKind::CannotOpen
        );
    }

    #[test]
    fn garbage_is_cannot_open() {
        let key = TwoManRuleKey::generate(KeyKind::Raw, &SeededRandom::new(b"g")).unwrap();
        for data in ["", "!!!", "AAAA", &"A".repeat(MAX_DATA_B64_LEN + 4)] {
            let err = open_identity(&key, "app", "u", data).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::CannotOpen, "{data:.10}");
        }
        assert!(seal_identity(&key, "a", "u", b"", &SeededRandom::new(b"x")).is_err());
    }

    #[test]
    fn debug_redacts() {
        let key = SymKey::from_bytes([0x42; SYM_KEY_LEN]);
        assert_eq!(format!("{key:?}"), "SymKey([REDACTED])");
    }
}
