//! Where a [`RelyingParty`](super::RelyingParty) keeps credentials: one durable record per user.
//!
//! | key | value | role |
//! |---|---|---|
//! | `d:webauthn:user:<user handle>` | every credential of the user (the rule's one key) | durable |
//! | `d:webauthn:cred:<credential id>` | the user handle: a lookup hint for callers that know only the id | durable |
//! | `e:webauthn:reg:<ceremony>` / `e:webauthn:auth:<ceremony>` | the challenge, taken on finish | ephemeral |
//!
//! The rule "this credential belongs to this user and signs in" lives in the user's record
//! alone, so registering, deleting and counting are one compare-and-swap on one key. The
//! `cred:` hint is written *before* the record and trusted only when the record it points to
//! holds the credential: a hint left by a failed registration points at nothing usable, and
//! the next registration of that id replaces it. Long ids (WebAuthn allows 1,023 bytes) are
//! hashed into the key.
//!
//! The record is the crate's versioned binary encoding: per credential, the id, user handle,
//! COSE key, counter and backup flag as raw fields, and the remaining metadata (strings,
//! attestation chain as base64url) as one JSON field; it is decoded once per operation.

use super::RegisteredCredential;
use crate::error::Result;
use crate::store::Key;
use crate::store::record::{RecordReader, RecordWriter};

/// Record kind of a user's credentials.
const RECORD_USER_CREDENTIALS: u8 = 0x30;
/// One credential (nested body), repeated.
const TAG_CREDENTIAL: u8 = 1;

const C_ID: u8 = 1;
const C_USER: u8 = 2;
const C_KEY: u8 = 3;
const C_COUNT: u8 = 4;
const C_BACKED_UP: u8 = 5;
const C_META: u8 = 15;

pub(super) fn user_key(user_id: &[u8]) -> Key {
    Key::durable("webauthn").part("user").bytes(user_id)
}

pub(super) fn hint_key(credential_id: &[u8]) -> Key {
    Key::durable("webauthn").part("cred").bytes(credential_id)
}

pub(super) fn ceremony_key(kind: &str, ceremony_id: &str) -> Key {
    Key::ephemeral("webauthn").part(kind).part(ceremony_id)
}

/// Encodes a user's credentials.
pub(super) fn encode(credentials: &[RegisteredCredential]) -> Result<Vec<u8>> {
    let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
    for c in credentials {
        let mut meta = c.clone();
        meta.credential_id = Vec::new();
        meta.user_id = Vec::new();
        meta.public_key_cose = Vec::new();
        meta.prf = None;
        let meta_json = crate::store::encode_json(&meta)?;
        let mut body = RecordWriter::body();
        body.bytes(C_ID, &c.credential_id)
            .bytes(C_USER, &c.user_id)
            .bytes(C_KEY, &c.public_key_cose)
            .u64(C_COUNT, u64::from(c.sign_count))
            .bool(C_BACKED_UP, c.backed_up)
            .bytes(C_META, &meta_json);
        w.nested(TAG_CREDENTIAL, body);
    }
    Ok(w.finish())
}

/// Gives every credential of the user the names of the latest registration (`latest`), so a
/// sign-in with any of them returns the user's current names. An import without names keeps
/// the names already stored.
pub(super) fn refresh_user(
    credentials: &mut [RegisteredCredential],
    latest: &RegisteredCredential,
) {
    if latest.user_name.is_none() {
        return;
    }
    for c in credentials {
        c.user_name.clone_from(&latest.user_name);
        c.user_display_name.clone_from(&latest.user_display_name);
    }
}

/// Decodes a user's credentials.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<RegisteredCredential>> {
    let r = RecordReader::parse(RECORD_USER_CREDENTIALS, bytes)?;
    r.all(TAG_CREDENTIAL)
        .map(|body| {
            let f = RecordReader::parse_body(body)?;
            let mut c: RegisteredCredential = crate::store::decode_json(f.bytes(C_META)?)?;
            c.credential_id = f.bytes(C_ID)?.to_vec();
            c.user_id = f.bytes(C_USER)?.to_vec();
            c.public_key_cose = f.bytes(C_KEY)?.to_vec();
            c.sign_count = u32::try_from(f.u64(C_COUNT)?)
                .map_err(|_| crate::Error::storage("stored sign count is corrupt"))?;
            c.backed_up = f.flag(C_BACKED_UP)?;
            Ok(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_give_bounded_keys() {
        assert!(hint_key(&[1; 1023]).as_str().len() <= Key::MAX_LEN);
        assert!(user_key(&[1; 64]).as_str().len() <= Key::MAX_LEN);
    }
}
