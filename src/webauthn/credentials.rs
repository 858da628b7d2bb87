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
//! The record is the crate's versioned binary encoding (`store::record`): one nested
//! body per credential, every member of [`RegisteredCredential`] a field of its own (the
//! attestation chain as raw DER, absent options and `false` flags omitted). A finish finds its
//! credential by scanning the bodies for the id and decodes that one alone; a counter update
//! rewrites that body and copies the others byte for byte. A registration and a deletion copy the
//! other credentials byte for byte too, so no rewrite drops a field a later release added (a
//! rewritten body keeps its unknown fields; derived ones, `store::record`, are dropped).
//!
//! Records written before this layout kept the metadata (strings, flags, extension outputs,
//! registration time) as one JSON field (tag 15) next to the id, user handle, COSE key, counter
//! and backup flag; they are still read, and a credential is written in the binary layout the
//! first time its body is rewritten.

use std::time::{Duration, SystemTime};

use super::b64::Base64UrlBytes;
use super::extensions::{CredentialProtectionPolicy, RegistrationExtensionOutputs};
use super::options::AuthenticatorAttachment;
use super::{AttestationType, RegisteredCredential, WebAuthnFailure};
use crate::error::{Error, Result};
use crate::store::Key;
use crate::store::record::{self, Fields, RecordReader, RecordWriter};

/// Record kind of a user's credentials.
const RECORD_USER_CREDENTIALS: u8 = 0x30;
/// One credential (nested body), repeated.
const TAG_CREDENTIAL: u8 = 1;

// Credential body fields. A tag's meaning never changes once released.
const C_ID: u8 = 1;
const C_USER: u8 = 2;
const C_KEY: u8 = 3;
const C_COUNT: u8 = 4;
const C_BACKED_UP: u8 = 5;
const C_ALG: u8 = 6;
/// Omitted when all zero.
const C_AAGUID: u8 = 7;
/// Repeated, in order.
const C_TRANSPORT: u8 = 8;
const C_USER_VERIFIED: u8 = 9;
const C_BACKUP_ELIGIBLE: u8 = 10;
const C_ATTESTATION_FORMAT: u8 = 11;
const C_ATTESTATION_TYPE: u8 = 12;
/// Registration time: whole seconds since the Unix epoch, and the nanoseconds (omitted when 0).
const C_CREATED_SECS: u8 = 13;
const C_CREATED_NANOS: u8 = 14;
/// Records written before the binary layout: every other member as JSON. Read, never written.
const C_META_JSON: u8 = 15;
/// Present only when the browser said.
const C_DISCOVERABLE: u8 = 16;
/// One DER certificate, repeated, leaf first.
const C_ATTESTATION_CERT: u8 = 17;
const C_ATTACHMENT: u8 = 18;
/// Nested body of `E_*` fields; omitted when there is no output.
const C_EXTENSIONS: u8 = 19;
const C_USER_NAME: u8 = 20;
const C_USER_DISPLAY_NAME: u8 = 21;

/// The tags this release writes or reads; a rewrite keeps every other field of a body as it was
/// (a later release's additions survive a counter update made by this one).
const KNOWN: [u8; 21] = [
    C_ID,
    C_USER,
    C_KEY,
    C_COUNT,
    C_BACKED_UP,
    C_ALG,
    C_AAGUID,
    C_TRANSPORT,
    C_USER_VERIFIED,
    C_BACKUP_ELIGIBLE,
    C_ATTESTATION_FORMAT,
    C_ATTESTATION_TYPE,
    C_CREATED_SECS,
    C_CREATED_NANOS,
    C_META_JSON,
    C_DISCOVERABLE,
    C_ATTESTATION_CERT,
    C_ATTACHMENT,
    C_EXTENSIONS,
    C_USER_NAME,
    C_USER_DISPLAY_NAME,
];

// Extension output fields (inside `C_EXTENSIONS`), each present only when `Some`.
const E_PRF_ENABLED: u8 = 1;
const E_LARGE_BLOB_SUPPORTED: u8 = 2;
const E_APPID_EXCLUDE: u8 = 3;
/// The CTAP level (1 to 3).
const E_CRED_PROTECT: u8 = 4;
const E_CRED_BLOB_STORED: u8 = 5;
const E_MIN_PIN_LENGTH: u8 = 6;
const E_HMAC_SECRET: u8 = 7;

/// Whether this release knows an extension output tag.
fn known_extension(tag: u8) -> bool {
    (E_PRF_ENABLED..=E_HMAC_SECRET).contains(&tag)
}

/// Whether this release knows a credential body tag.
fn known(tag: u8) -> bool {
    KNOWN.contains(&tag)
}

pub(super) fn user_key(user_id: &[u8]) -> Key {
    Key::durable("webauthn").part("user").bytes(user_id)
}

pub(super) fn hint_key(credential_id: &[u8]) -> Key {
    Key::durable("webauthn").part("cred").bytes(credential_id)
}

pub(super) fn ceremony_key(kind: &str, ceremony_id: &str) -> Key {
    Key::ephemeral("webauthn").part(kind).part(ceremony_id)
}

fn corrupt(what: &str) -> Error {
    Error::storage(format!("stored credential {what} is corrupt"))
}

fn attestation_type_code(t: AttestationType) -> u64 {
    match t {
        AttestationType::None => 0,
        AttestationType::SelfAttestation => 1,
        AttestationType::Basic => 2,
        AttestationType::AttCa => 3,
        AttestationType::AnonCa => 4,
    }
}

fn attestation_type(code: u64) -> Result<AttestationType> {
    Ok(match code {
        0 => AttestationType::None,
        1 => AttestationType::SelfAttestation,
        2 => AttestationType::Basic,
        3 => AttestationType::AttCa,
        4 => AttestationType::AnonCa,
        _ => return Err(corrupt("attestation type")),
    })
}

fn attachment_code(a: AuthenticatorAttachment) -> u64 {
    match a {
        AuthenticatorAttachment::Platform => 1,
        AuthenticatorAttachment::CrossPlatform => 2,
    }
}

fn attachment(code: u64) -> Result<AuthenticatorAttachment> {
    match code {
        1 => Ok(AuthenticatorAttachment::Platform),
        2 => Ok(AuthenticatorAttachment::CrossPlatform),
        _ => Err(corrupt("authenticator attachment")),
    }
}

fn opt_bool(w: &mut RecordWriter, tag: u8, v: Option<bool>) {
    if let Some(v) = v {
        w.bool(tag, v);
    }
}

fn read_opt_bool(f: &RecordReader<'_>, tag: u8) -> Result<Option<bool>> {
    match f.opt_bytes(tag) {
        None => Ok(None),
        Some([0]) => Ok(Some(false)),
        Some([1]) => Ok(Some(true)),
        Some(_) => Err(corrupt("flag")),
    }
}

/// The extension outputs' body; `kept` are fields of an earlier body of it that this release
/// does not know (written back, so the body exists whenever one of them does).
fn encode_extensions(
    e: &RegistrationExtensionOutputs,
    kept: Option<&RecordReader<'_>>,
) -> Option<RecordWriter> {
    let carries = kept.is_some_and(|k| {
        k.fields()
            .any(|(t, _)| !known_extension(t) && record::carried(t))
    });
    if *e == RegistrationExtensionOutputs::default() && !carries {
        return None;
    }
    let mut w = RecordWriter::body();
    opt_bool(&mut w, E_PRF_ENABLED, e.prf_enabled);
    opt_bool(&mut w, E_LARGE_BLOB_SUPPORTED, e.large_blob_supported);
    opt_bool(&mut w, E_APPID_EXCLUDE, e.appid_exclude);
    if let Some(p) = e.cred_protect {
        w.u64(E_CRED_PROTECT, u64::from(p.level()));
    }
    opt_bool(&mut w, E_CRED_BLOB_STORED, e.cred_blob_stored);
    if let Some(n) = e.min_pin_length {
        w.u64(E_MIN_PIN_LENGTH, u64::from(n));
    }
    opt_bool(&mut w, E_HMAC_SECRET, e.hmac_secret);
    if let Some(k) = kept {
        w.carry(k.fields(), known_extension);
    }
    Some(w)
}

fn decode_extensions(body: &[u8]) -> Result<RegistrationExtensionOutputs> {
    let f = RecordReader::parse_body(body)?;
    Ok(RegistrationExtensionOutputs {
        prf_enabled: read_opt_bool(&f, E_PRF_ENABLED)?,
        large_blob_supported: read_opt_bool(&f, E_LARGE_BLOB_SUPPORTED)?,
        appid_exclude: read_opt_bool(&f, E_APPID_EXCLUDE)?,
        cred_protect: f
            .opt_u64(E_CRED_PROTECT)?
            .map(|l| {
                CredentialProtectionPolicy::from_level(l).ok_or_else(|| corrupt("credProtect"))
            })
            .transpose()?,
        cred_blob_stored: read_opt_bool(&f, E_CRED_BLOB_STORED)?,
        min_pin_length: f
            .opt_u64(E_MIN_PIN_LENGTH)?
            .map(|n| u32::try_from(n).map_err(|_| corrupt("minimum PIN length")))
            .transpose()?,
        hmac_secret: read_opt_bool(&f, E_HMAC_SECRET)?,
    })
}

/// One credential's body; `old` is the body it replaces, whose fields this release does not know
/// (its own and its extension outputs') are written back unchanged (`store::record`: derived
/// fields of a later release dropped).
fn encode_body(c: &RegisteredCredential, old: Option<&RecordReader<'_>>) -> Result<RecordWriter> {
    let created = c
        .created_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| {
            Error::storage("a registration time before the Unix epoch cannot be stored")
        })?;
    let mut w = RecordWriter::body();
    w.bytes(C_ID, &c.credential_id)
        .bytes(C_USER, &c.user_id)
        .bytes(C_KEY, &c.public_key_cose)
        .u64(C_COUNT, u64::from(c.sign_count))
        .i64(C_ALG, c.algorithm);
    if c.backed_up {
        w.bool(C_BACKED_UP, true);
    }
    if c.aaguid != [0; 16] {
        w.bytes(C_AAGUID, &c.aaguid);
    }
    for t in &c.transports {
        w.str(C_TRANSPORT, t);
    }
    if c.user_verified {
        w.bool(C_USER_VERIFIED, true);
    }
    if c.backup_eligible {
        w.bool(C_BACKUP_ELIGIBLE, true);
    }
    w.str(C_ATTESTATION_FORMAT, &c.attestation_format)
        .u64(
            C_ATTESTATION_TYPE,
            attestation_type_code(c.attestation_type),
        )
        .u64(C_CREATED_SECS, created.as_secs());
    if created.subsec_nanos() != 0 {
        w.u64(C_CREATED_NANOS, u64::from(created.subsec_nanos()));
    }
    opt_bool(&mut w, C_DISCOVERABLE, c.discoverable);
    for cert in &c.attestation_chain {
        w.bytes(C_ATTESTATION_CERT, cert.as_slice());
    }
    if let Some(a) = c.authenticator_attachment {
        w.u64(C_ATTACHMENT, attachment_code(a));
    }
    let old_ext = match old.and_then(|o| o.opt_bytes(C_EXTENSIONS)) {
        Some(body) => Some(RecordReader::parse_body(body)?),
        None => None,
    };
    if let Some(ext) = encode_extensions(&c.extensions, old_ext.as_ref()) {
        w.nested(C_EXTENSIONS, ext);
    }
    if let Some(name) = &c.user_name {
        w.str(C_USER_NAME, name);
    }
    if let Some(name) = &c.user_display_name {
        w.str(C_USER_DISPLAY_NAME, name);
    }
    if let Some(old) = old {
        w.carry(old.fields(), known);
    }
    Ok(w)
}

/// Encodes a user's credentials (a record built from values alone: tests and fixtures).
#[cfg(test)]
pub(super) fn encode(credentials: &[RegisteredCredential]) -> Result<Vec<u8>> {
    let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
    for c in credentials {
        w.nested(TAG_CREDENTIAL, encode_body(c, None)?);
    }
    Ok(w.finish())
}

fn decode_body(body: &[u8]) -> Result<RegisteredCredential> {
    let f = RecordReader::parse_body(body)?;
    let mut c = match f.opt_bytes(C_META_JSON) {
        // An earlier release's body: the metadata is JSON, the raw fields fill in the rest.
        Some(json) => crate::store::decode_json::<RegisteredCredential>(json)?,
        None => {
            let secs = f.u64(C_CREATED_SECS)?;
            let nanos = u32::try_from(f.opt_u64(C_CREATED_NANOS)?.unwrap_or(0))
                .ok()
                .filter(|n| *n < 1_000_000_000)
                .ok_or_else(|| corrupt("registration time"))?;
            RegisteredCredential {
                credential_id: Vec::new(),
                user_id: Vec::new(),
                public_key_cose: Vec::new(),
                algorithm: f.i64(C_ALG)?,
                sign_count: 0,
                aaguid: match f.opt_bytes(C_AAGUID) {
                    None => [0; 16],
                    Some(b) => b.try_into().map_err(|_| corrupt("aaguid"))?,
                },
                transports: f
                    .all(C_TRANSPORT)
                    .map(|t| {
                        std::str::from_utf8(t)
                            .map(str::to_owned)
                            .map_err(|_| corrupt("transport"))
                    })
                    .collect::<Result<_>>()?,
                user_verified: f.flag(C_USER_VERIFIED)?,
                backup_eligible: f.flag(C_BACKUP_ELIGIBLE)?,
                backed_up: false,
                attestation_format: f.str(C_ATTESTATION_FORMAT)?.to_owned(),
                attestation_type: attestation_type(f.u64(C_ATTESTATION_TYPE)?)?,
                created_at: SystemTime::UNIX_EPOCH
                    .checked_add(Duration::new(secs, nanos))
                    .ok_or_else(|| corrupt("registration time"))?,
                discoverable: read_opt_bool(&f, C_DISCOVERABLE)?,
                attestation_chain: f
                    .all(C_ATTESTATION_CERT)
                    .map(|der| Base64UrlBytes(der.to_vec()))
                    .collect(),
                authenticator_attachment: f.opt_u64(C_ATTACHMENT)?.map(attachment).transpose()?,
                extensions: match f.opt_bytes(C_EXTENSIONS) {
                    Some(body) => decode_extensions(body)?,
                    None => RegistrationExtensionOutputs::default(),
                },
                prf: None,
                user_name: f.opt_str(C_USER_NAME)?.map(str::to_owned),
                user_display_name: f.opt_str(C_USER_DISPLAY_NAME)?.map(str::to_owned),
            }
        }
    };
    c.credential_id = f.bytes(C_ID)?.to_vec();
    c.user_id = f.bytes(C_USER)?.to_vec();
    c.public_key_cose = f.bytes(C_KEY)?.to_vec();
    c.sign_count = u32::try_from(f.u64(C_COUNT)?).map_err(|_| corrupt("sign count"))?;
    c.backed_up = f.flag(C_BACKED_UP)?;
    c.prf = None;
    Ok(c)
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

/// The credential bodies of a record, in order.
fn bodies(bytes: &[u8]) -> Result<impl Iterator<Item = Result<&[u8]>>> {
    let body = record::body_of(RECORD_USER_CREDENTIALS, bytes)?;
    Ok(Fields::new(body).filter_map(|field| match field {
        Ok((TAG_CREDENTIAL, body)) => Some(Ok(body)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }))
}

/// Whether a credential body is the one with this id (its first id field).
fn has_id(body: &[u8], credential_id: &[u8]) -> Result<bool> {
    for field in Fields::new(body) {
        let (tag, value) = field?;
        if tag == C_ID {
            return Ok(value == credential_id);
        }
    }
    Err(corrupt("id"))
}

/// Decodes a user's credentials.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<RegisteredCredential>> {
    bodies(bytes)?.map(|body| decode_body(body?)).collect()
}

/// The credential with this id, decoding no other credential of the record.
pub(super) fn find(bytes: &[u8], credential_id: &[u8]) -> Result<Option<RegisteredCredential>> {
    for body in bodies(bytes)? {
        let body = body?;
        if has_id(body, credential_id)? {
            return decode_body(body).map(Some);
        }
    }
    Ok(None)
}

/// The record with the credential of `updated`'s id replaced by `updated` (fields this release
/// does not know kept); every other field and credential is copied as it was. Fails if the
/// record does not hold the id.
pub(super) fn replace(bytes: &[u8], updated: &RegisteredCredential) -> Result<Vec<u8>> {
    let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
    let mut replaced = false;
    for field in Fields::new(record::body_of(RECORD_USER_CREDENTIALS, bytes)?) {
        let (tag, value) = field?;
        if tag == TAG_CREDENTIAL && !replaced && has_id(value, &updated.credential_id)? {
            let old = RecordReader::parse_body(value)?;
            w.nested(TAG_CREDENTIAL, encode_body(updated, Some(&old))?);
            replaced = true;
        } else if tag == TAG_CREDENTIAL || record::carried(tag) {
            // Another credential, unchanged; a record-level field this release does not know
            // (derived ones dropped: the record changed under them).
            w.bytes(tag, value);
        }
    }
    if !replaced {
        return Err(corrupt("id"));
    }
    Ok(w.finish())
}

/// The record with `credential` added (after the fields already there), or a new record of it
/// alone. Every other credential gets the names of `credential` ([`refresh_user`]): one whose
/// names change is rewritten with the fields this release does not know kept, every other
/// credential and record-level field is copied as it was (derived record-level fields dropped,
/// `store::record`). Fails with [`WebAuthnFailure::CredentialAlreadyRegistered`] if the record
/// holds its id and with invalid input if it already holds `max` credentials.
pub(super) fn add(
    current: Option<&[u8]>,
    credential: &RegisteredCredential,
    max: usize,
) -> Result<Vec<u8>> {
    let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
    let mut count = 0usize;
    if let Some(bytes) = current {
        for field in Fields::new(record::body_of(RECORD_USER_CREDENTIALS, bytes)?) {
            let (tag, value) = field?;
            if tag != TAG_CREDENTIAL {
                if record::carried(tag) {
                    w.bytes(tag, value);
                }
                continue;
            }
            let mut existing = decode_body(value)?;
            if existing.credential_id == credential.credential_id {
                return Err(Error::webauthn(
                    WebAuthnFailure::CredentialAlreadyRegistered,
                ));
            }
            count += 1;
            let named = (
                existing.user_name.clone(),
                existing.user_display_name.clone(),
            );
            refresh_user(std::slice::from_mut(&mut existing), credential);
            if (&existing.user_name, &existing.user_display_name) == (&named.0, &named.1) {
                w.bytes(tag, value);
            } else {
                let old = RecordReader::parse_body(value)?;
                w.nested(TAG_CREDENTIAL, encode_body(&existing, Some(&old))?);
            }
        }
    }
    if count >= max {
        return Err(Error::invalid_input("too many credentials for this user"));
    }
    w.nested(TAG_CREDENTIAL, encode_body(credential, None)?);
    Ok(w.finish())
}

/// What [`remove`] left of a record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Removed {
    /// The record does not hold the id.
    Absent,
    /// The record held that credential alone (and no field to keep): delete it.
    Empty,
    /// The record without that credential.
    Rest(Vec<u8>),
}

/// The record without the credential of this id; every other credential and record-level field
/// is copied as it was (derived record-level fields dropped, `store::record`). A record left
/// with no credential but with fields a later release added is kept, holding those alone.
pub(super) fn remove(bytes: &[u8], credential_id: &[u8]) -> Result<Removed> {
    let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
    let mut removed = false;
    let mut kept = 0usize;
    for field in Fields::new(record::body_of(RECORD_USER_CREDENTIALS, bytes)?) {
        let (tag, value) = field?;
        if tag == TAG_CREDENTIAL {
            if !removed && has_id(value, credential_id)? {
                removed = true;
                continue;
            }
        } else if !record::carried(tag) {
            continue;
        }
        kept += 1;
        w.bytes(tag, value);
    }
    Ok(match (removed, kept) {
        (false, _) => Removed::Absent,
        (true, 0) => Removed::Empty,
        (true, _) => Removed::Rest(w.finish()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::webauthn::alg;

    /// A user record as the previous layout wrote it (metadata as one JSON field, tag 15),
    /// captured from `encode` at commit cdbccf5 (before the binary metadata fields): a credential
    /// with every member set, and an imported one with none.
    const LEGACY_RECORD_HEX: &str = concat!(
        "013001f2060110070707070707070707070707070707070210757365722d68616e646c652d30303031034da5",
        "01020326200121582060fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6225820",
        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d44622990401290501010ff6057b2263",
        "726564656e7469616c5f6964223a5b5d2c22757365725f6964223a5b5d2c227075626c69635f6b65795f636f",
        "7365223a5b5d2c22616c676f726974686d223a2d372c227369676e5f636f756e74223a34312c226161677569",
        "64223a5b3137332c3137332c3137332c3137332c3137332c3137332c3137332c3137332c3137332c3137332c",
        "3137332c3137332c3137332c3137332c3137332c3137335d2c227472616e73706f727473223a5b22696e7465",
        "726e616c222c22687962726964225d2c22757365725f7665726966696564223a747275652c226261636b7570",
        "5f656c696769626c65223a747275652c226261636b65645f7570223a747275652c226174746573746174696f",
        "6e5f666f726d6174223a227061636b6564222c226174746573746174696f6e5f74797065223a224261736963",
        "222c22637265617465645f6174223a7b22736563735f73696e63655f65706f6368223a313736343539303430",
        "302c226e616e6f735f73696e63655f65706f6368223a3132333435363738397d2c22646973636f7665726162",
        "6c65223a747275652c226174746573746174696f6e5f636861696e223a5b224d49494241674d222c224d416b",
        "225d2c2261757468656e74696361746f725f6174746163686d656e74223a2263726f73732d706c6174666f72",
        "6d222c22657874656e73696f6e73223a7b227072665f656e61626c6564223a747275652c226c617267655f62",
        "6c6f625f737570706f72746564223a66616c73652c2261707069645f6578636c756465223a747275652c2263",
        "7265645f70726f74656374223a2275736572566572696669636174696f6e4f7074696f6e616c576974684372",
        "6564656e7469616c49444c697374222c22637265645f626c6f625f73746f726564223a747275652c226d696e",
        "5f70696e5f6c656e677468223a362c22686d61635f736563726574223a747275657d2c22757365725f6e616d",
        "65223a22616c696365406578616d706c652e636f6d222c22757365725f646973706c61795f6e616d65223a22",
        "416c696365227d01ef0301200808080808080808080808080808080808080808080808080808080808080808",
        "0210757365722d68616e646c652d30303031034da501020326200121582060fed4ba255a9d31c961eb74c635",
        "6d68c049b8923b61fa6ce669622e60f29fb62258207903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f",
        "5177a3c294d44622990401000501000fe3027b2263726564656e7469616c5f6964223a5b5d2c22757365725f",
        "6964223a5b5d2c227075626c69635f6b65795f636f7365223a5b5d2c22616c676f726974686d223a2d372c22",
        "7369676e5f636f756e74223a302c22616167756964223a5b302c302c302c302c302c302c302c302c302c302c",
        "302c302c302c302c302c305d2c227472616e73706f727473223a5b5d2c22757365725f766572696669656422",
        "3a66616c73652c226261636b75705f656c696769626c65223a66616c73652c226261636b65645f7570223a66",
        "616c73652c226174746573746174696f6e5f666f726d6174223a226e6f6e65222c226174746573746174696f",
        "6e5f74797065223a224e6f6e65222c22637265617465645f6174223a7b22736563735f73696e63655f65706f",
        "6368223a302c226e616e6f735f73696e63655f65706f6368223a307d2c22646973636f76657261626c65223a",
        "6e756c6c2c22657874656e73696f6e73223a7b7d7d",
    );

    const COSE_ES256: &str = "a501020326200121582060fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb62258207903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

    fn legacy_record() -> Vec<u8> {
        crate::hex::decode(LEGACY_RECORD_HEX).unwrap()
    }

    /// The two credentials of [`LEGACY_RECORD_HEX`], as they were built for the capture.
    fn full_and_bare() -> (RegisteredCredential, RegisteredCredential) {
        let cose = crate::hex::decode(COSE_ES256).unwrap();
        let mut a =
            RegisteredCredential::imported(vec![7u8; 16], *b"user-handle-0001", cose.clone(), 41)
                .unwrap();
        a.aaguid = [0xad; 16];
        a.transports = vec!["internal".into(), "hybrid".into()];
        a.user_verified = true;
        a.backup_eligible = true;
        a.backed_up = true;
        a.attestation_format = "packed".into();
        a.attestation_type = AttestationType::Basic;
        a.created_at = SystemTime::UNIX_EPOCH + Duration::new(1_764_590_400, 123_456_789);
        a.discoverable = Some(true);
        a.attestation_chain = vec![
            Base64UrlBytes(vec![0x30, 0x82, 1, 2, 3]),
            Base64UrlBytes(vec![0x30, 9]),
        ];
        a.authenticator_attachment = Some(AuthenticatorAttachment::CrossPlatform);
        a.extensions.prf_enabled = Some(true);
        a.extensions.large_blob_supported = Some(false);
        a.extensions.appid_exclude = Some(true);
        a.extensions.cred_protect =
            Some(CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList);
        a.extensions.cred_blob_stored = Some(true);
        a.extensions.min_pin_length = Some(6);
        a.extensions.hmac_secret = Some(true);
        a.user_name = Some("alice@example.com".into());
        a.user_display_name = Some("Alice".into());
        let b =
            RegisteredCredential::imported(vec![8u8; 32], *b"user-handle-0001", cose, 0).unwrap();
        (a, b)
    }

    #[test]
    fn long_ids_give_bounded_keys() {
        assert!(hint_key(&[1; 1023]).as_str().len() <= Key::MAX_LEN);
        assert!(user_key(&[1; 64]).as_str().len() <= Key::MAX_LEN);
    }

    #[test]
    fn records_of_the_json_metadata_layout_still_read() {
        let (a, b) = full_and_bare();
        let bytes = legacy_record();
        assert_eq!(decode(&bytes).unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(find(&bytes, &a.credential_id).unwrap(), Some(a.clone()));
        assert_eq!(find(&bytes, &b.credential_id).unwrap(), Some(b.clone()));
        assert_eq!(find(&bytes, &[9; 16]).unwrap(), None);
        // A counter update rewrites that credential in the binary layout and leaves the other
        // one's bytes as they were.
        let mut counted = a.clone();
        counted.sign_count = 42;
        counted.backed_up = false;
        let rewritten = replace(&bytes, &counted).unwrap();
        assert_eq!(
            decode(&rewritten).unwrap(),
            vec![counted.clone(), b.clone()]
        );
        let legacy_b = bodies(&bytes).unwrap().nth(1).unwrap().unwrap();
        let kept_b = bodies(&rewritten).unwrap().nth(1).unwrap().unwrap();
        assert_eq!(legacy_b, kept_b);
        let new_a = bodies(&rewritten).unwrap().next().unwrap().unwrap();
        assert!(
            RecordReader::parse_body(new_a)
                .unwrap()
                .opt_bytes(C_META_JSON)
                .is_none()
        );
        assert!(rewritten.len() < bytes.len());
    }

    #[test]
    fn every_member_round_trips_in_the_binary_layout() {
        let (a, b) = full_and_bare();
        let bytes = encode(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(decode(&bytes).unwrap(), vec![a.clone(), b.clone()]);
        for body in bodies(&bytes).unwrap() {
            assert!(
                RecordReader::parse_body(body.unwrap())
                    .unwrap()
                    .opt_bytes(C_META_JSON)
                    .is_none()
            );
        }
        // Each option and flag on its own, so no member hides behind another.
        let mut c = b.clone();
        c.discoverable = Some(false);
        c.extensions.large_blob_supported = Some(true);
        c.authenticator_attachment = Some(AuthenticatorAttachment::Platform);
        c.attestation_type = AttestationType::AnonCa;
        c.algorithm = alg::RS256;
        c.user_name = Some(String::new());
        c.created_at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 4);
        for t in [
            AttestationType::None,
            AttestationType::SelfAttestation,
            AttestationType::Basic,
            AttestationType::AttCa,
        ] {
            let mut d = c.clone();
            d.attestation_type = t;
            assert_eq!(decode(&encode(&[d.clone()]).unwrap()).unwrap(), vec![d]);
        }
        assert_eq!(decode(&encode(&[c.clone()]).unwrap()).unwrap(), vec![c]);
        // The binary layout is smaller than the JSON one it replaces.
        assert!(bytes.len() * 2 < legacy_record().len());
    }

    /// A record as a later release might write it: unknown fields (carried and derived) at the
    /// record level, in each credential's body and in its extension outputs.
    fn later_record(creds: &[&RegisteredCredential]) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
        w.bytes(99, b"record-level, later");
        for (i, c) in creds.iter().enumerate() {
            let mut bare = (*c).clone();
            bare.extensions = RegistrationExtensionOutputs::default();
            let mut body = encode_body(&bare, None).unwrap();
            body.bytes(200, format!("later {i}").as_bytes())
                .bytes(record::DERIVED, b"derived")
                .bytes(201, b"second");
            // An extension output of a later release, after the ones this release knows.
            let mut ext = encode_extensions(&as_later(c).extensions, None).unwrap();
            ext.bytes(50, b"later ext");
            body.nested(C_EXTENSIONS, ext);
            w.nested(TAG_CREDENTIAL, body);
        }
        w.bytes(record::DERIVED + 1, b"record-level derived")
            .bytes(98, b"record-level, after");
        w.finish()
    }

    fn unknown_of(body: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let r = RecordReader::parse_body(body).unwrap();
        let mut out: Vec<_> = r
            .fields()
            .filter(|(t, _)| !known(*t))
            .map(|(t, v)| (t, v.to_vec()))
            .collect();
        if let Some(ext) = r.opt_bytes(C_EXTENSIONS) {
            out.extend(
                RecordReader::parse_body(ext)
                    .unwrap()
                    .fields()
                    .filter(|(t, _)| !known_extension(*t))
                    .map(|(t, v)| (t, v.to_vec())),
            );
        }
        out
    }

    fn record_level(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        RecordReader::parse(RECORD_USER_CREDENTIALS, bytes)
            .unwrap()
            .fields()
            .filter(|(t, _)| *t != TAG_CREDENTIAL)
            .map(|(t, v)| (t, v.to_vec()))
            .collect()
    }

    /// What a rewrite of the `i`th body keeps of [`later_record`]'s unknown fields.
    fn carried_of(i: usize) -> Vec<(u8, Vec<u8>)> {
        vec![
            (200, format!("later {i}").into_bytes()),
            (201, b"second".to_vec()),
            (50, b"later ext".to_vec()),
        ]
    }

    fn as_later(c: &RegisteredCredential) -> RegisteredCredential {
        let mut c = c.clone();
        c.extensions.prf_enabled = Some(true);
        c
    }

    #[test]
    fn a_counter_update_keeps_fields_of_a_later_release() {
        let (a, b) = full_and_bare();
        let bytes = later_record(&[&a, &b]);
        let mut counted = as_later(&a);
        counted.sign_count = 99;
        let rewritten = replace(&bytes, &counted).unwrap();
        assert_eq!(decode(&rewritten).unwrap(), vec![counted, as_later(&b)]);
        let new: Vec<_> = bodies(&rewritten).unwrap().map(Result::unwrap).collect();
        let old: Vec<_> = bodies(&bytes).unwrap().map(Result::unwrap).collect();
        // The rewritten body keeps its unknown fields (in order) but not its derived one; the
        // other body is the same bytes, derived field included.
        assert_eq!(unknown_of(new[0]), carried_of(0));
        assert_eq!(new[1], old[1]);
        assert_eq!(
            record_level(&rewritten),
            vec![
                (99, b"record-level, later".to_vec()),
                (98, b"record-level, after".to_vec())
            ]
        );
        let mut stranger = a;
        stranger.credential_id = vec![1; 16];
        assert!(replace(&bytes, &stranger).is_err());
    }

    #[test]
    fn registering_another_credential_keeps_fields_of_a_later_release() {
        let (a, b) = full_and_bare();
        let bytes = later_record(&[&a]);
        // `b` has no names: `a` keeps its body byte for byte.
        let added = add(Some(&bytes), &b, 10).unwrap();
        assert_eq!(decode(&added).unwrap(), vec![as_later(&a), b.clone()]);
        let old_a = bodies(&bytes).unwrap().next().unwrap().unwrap();
        let new_a = bodies(&added).unwrap().next().unwrap().unwrap();
        assert_eq!(old_a, new_a);
        assert_eq!(
            record_level(&added),
            vec![
                (99, b"record-level, later".to_vec()),
                (98, b"record-level, after".to_vec())
            ]
        );
        // New names rewrite `a`'s body for them, keeping its unknown fields.
        let mut c = b.clone();
        c.credential_id = vec![9; 20];
        c.user_name = Some("alice@new.example".into());
        c.user_display_name = Some("Alice N.".into());
        let renamed = add(Some(&added), &c, 10).unwrap();
        let creds = decode(&renamed).unwrap();
        assert_eq!(creds.len(), 3);
        assert!(creds.iter().all(|x| x.user_name == c.user_name));
        let new_a = bodies(&renamed).unwrap().next().unwrap().unwrap();
        assert_eq!(unknown_of(new_a), carried_of(0));
        assert_eq!(record_level(&renamed), record_level(&added));
        // The refusals, with the record as it was.
        assert!(matches!(
            add(Some(&bytes), &a, 10).unwrap_err().webauthn_failure(),
            Some(WebAuthnFailure::CredentialAlreadyRegistered)
        ));
        assert!(add(Some(&bytes), &b, 1).is_err());
        assert_eq!(decode(&add(None, &b, 1).unwrap()).unwrap(), vec![b]);
    }

    #[test]
    fn deleting_a_credential_keeps_fields_of_a_later_release() {
        let (a, b) = full_and_bare();
        let bytes = later_record(&[&a, &b]);
        let Removed::Rest(rest) = remove(&bytes, &a.credential_id).unwrap() else {
            panic!("one credential is left");
        };
        assert_eq!(decode(&rest).unwrap(), vec![as_later(&b)]);
        let old_b = bodies(&bytes).unwrap().nth(1).unwrap().unwrap();
        assert_eq!(bodies(&rest).unwrap().next().unwrap().unwrap(), old_b);
        assert_eq!(
            record_level(&rest),
            vec![
                (99, b"record-level, later".to_vec()),
                (98, b"record-level, after".to_vec())
            ]
        );
        assert_eq!(remove(&rest, &a.credential_id).unwrap(), Removed::Absent);
        // The last credential gone, the later release's record-level fields are what is left.
        let Removed::Rest(left) = remove(&rest, &b.credential_id).unwrap() else {
            panic!("record-level fields are left");
        };
        assert_eq!(decode(&left).unwrap(), vec![]);
        assert_eq!(record_level(&left), record_level(&rest));
        // A record of this release's fields alone goes away with its last credential.
        let plain = encode(std::slice::from_ref(&b)).unwrap();
        assert_eq!(remove(&plain, &b.credential_id).unwrap(), Removed::Empty);
    }

    /// The same through the relying party and its store: a record holding a later release's
    /// fields keeps them through a registration, a counter update and a deletion.
    #[tokio::test]
    async fn the_relying_partys_rewrites_keep_fields_of_a_later_release() {
        use std::sync::Arc;

        use crate::store::{MemoryStore, StateStore, Ttl, Write};
        use crate::webauthn::soft::SoftAuthenticator;
        use crate::webauthn::{
            AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig,
            UserEntity,
        };
        use crate::{AuthenticatorVerifier, Env, ManualClock};

        const ORIGIN: &str = "https://example.com";
        let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
        let env = Env::system().with_clock(clock);
        let store = Arc::new(MemoryStore::new().env(env.clone()));
        let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN).unwrap();
        let rp = RelyingParty::new(config, store.clone()).env(env);
        let user = UserEntity::new(vec![9; 16], "u@example.com", "U").unwrap();
        async fn register(
            rp: &RelyingParty,
            user: &UserEntity,
            auth: &SoftAuthenticator,
        ) -> RegisteredCredential {
            let (options, state) = rp
                .start_registration(RegistrationRequest::new(user.clone()))
                .await
                .unwrap();
            rp.finish_registration(state, &auth.register(&options).unwrap())
                .await
                .unwrap()
        }
        let first = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
        first.set_knobs(|k| k.counter_step = 1);
        let first_id = register(&rp, &user, &first).await.credential_id;
        // A later release's fields: one of the record, one in the credential's body.
        let key = user_key(&[9; 16]);
        let entry = store.get(&key).await.unwrap().unwrap();
        let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
        for field in Fields::new(record::body_of(RECORD_USER_CREDENTIALS, &entry.value).unwrap()) {
            let (tag, value) = field.unwrap();
            let mut body = RecordWriter::body();
            body.bytes(200, b"later body");
            w.bytes(tag, &[value, &body.finish()].concat());
        }
        w.bytes(99, b"later record");
        let write = Write::Set {
            value: w.finish(),
            ttl: Ttl::Keep,
        };
        store
            .compare_and_swap(&key, entry.version, write)
            .await
            .unwrap();
        let later = || async {
            let bytes = store.get(&key).await.unwrap().unwrap().value;
            let first_body = bodies(&bytes)
                .unwrap()
                .map(Result::unwrap)
                .find(|b| has_id(b, &first_id).unwrap())
                .map(|b| {
                    RecordReader::parse_body(b)
                        .unwrap()
                        .opt_bytes(200)
                        .map(<[u8]>::to_vec)
                });
            let record = RecordReader::parse(RECORD_USER_CREDENTIALS, &bytes)
                .unwrap()
                .opt_bytes(99)
                .map(<[u8]>::to_vec);
            (first_body.flatten(), record)
        };
        let expected = (Some(b"later body".to_vec()), Some(b"later record".to_vec()));
        assert_eq!(later().await, expected);
        // Another credential registered.
        let second = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
        let second_id = register(&rp, &user, &second).await.credential_id;
        assert_eq!(later().await, expected);
        // A sign-in with the first, whose counter grows: its body is rewritten.
        let (options, state) = rp
            .start_authentication(AuthenticationRequest::discoverable())
            .await
            .unwrap();
        let assertion = first.authenticate(&options).unwrap();
        let verified = rp.finish_authentication(state, &assertion).await.unwrap();
        assert!(verified.sign_count() > 0);
        let stored = rp.credentials_for_user(&[9; 16]).await.unwrap();
        let stored_first = stored.iter().find(|c| c.credential_id == first_id).unwrap();
        assert_eq!(stored_first.sign_count, verified.sign_count());
        assert_eq!(later().await, expected);
        // The second deleted.
        assert!(rp.delete_credential(&[9; 16], &second_id).await.unwrap());
        assert_eq!(later().await, expected);
        assert_eq!(rp.credentials_for_user(&[9; 16]).await.unwrap().len(), 1);
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let (a, b) = full_and_bare();
        for bytes in [encode(&[a.clone(), b]).unwrap(), legacy_record()] {
            for cut in 0..bytes.len() {
                let cut = &bytes[..cut];
                let _ = decode(cut);
                let _ = find(cut, &a.credential_id);
                let _ = replace(cut, &a);
                let _ = add(Some(cut), &a, 10);
                let _ = remove(cut, &a.credential_id);
            }
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0xff;
                let _ = decode(&bad);
                let _ = find(&bad, &a.credential_id);
                let _ = replace(&bad, &a);
                let _ = add(Some(&bad), &a, 10);
                let _ = remove(&bad, &a.credential_id);
            }
        }
        let body = |f: &dyn Fn(&mut RecordWriter)| {
            let mut body = RecordWriter::body();
            body.bytes(C_ID, b"id")
                .bytes(C_USER, b"u")
                .bytes(C_KEY, b"k")
                .u64(C_COUNT, 0);
            f(&mut body);
            let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
            w.nested(TAG_CREDENTIAL, body);
            decode(&w.finish())
        };
        let base = |w: &mut RecordWriter| {
            w.i64(C_ALG, -7)
                .str(C_ATTESTATION_FORMAT, "none")
                .u64(C_CREATED_SECS, 1);
        };
        assert!(
            body(&|w| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 0);
            })
            .is_ok()
        );
        for bad in [
            &(|w: &mut RecordWriter| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 5);
            }) as &dyn Fn(&mut RecordWriter),
            &|w| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 0).u64(C_ATTACHMENT, 3);
            },
            &|w| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 0)
                    .u64(C_CREATED_NANOS, 1_000_000_000);
            },
            &|w| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 0).bytes(C_AAGUID, &[0; 15]);
            },
            &|w| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 0).bytes(C_DISCOVERABLE, &[2]);
            },
            &|w| {
                base(w);
                let mut ext = RecordWriter::body();
                ext.u64(E_CRED_PROTECT, 4);
                w.u64(C_ATTESTATION_TYPE, 0).nested(C_EXTENSIONS, ext);
            },
            &|w| {
                base(w);
                w.u64(C_ATTESTATION_TYPE, 0);
                w.bytes(C_TRANSPORT, &[0xff]);
            },
            // No attestation type.
            &|w| base(w),
        ] {
            assert!(body(bad).is_err());
        }
    }

    #[test]
    fn a_registration_time_before_the_epoch_is_refused() {
        let (mut a, _) = full_and_bare();
        a.created_at = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert!(encode(&[a]).is_err());
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn opt_bool() -> impl Strategy<Value = Option<bool>> {
            prop::option::of(any::<bool>())
        }

        prop_compose! {
            fn extensions()(
                prf_enabled in opt_bool(),
                large_blob_supported in opt_bool(),
                appid_exclude in opt_bool(),
                cred_protect in prop::option::of(1u64..=3),
                cred_blob_stored in opt_bool(),
                min_pin_length in prop::option::of(any::<u32>()),
                hmac_secret in opt_bool(),
            ) -> RegistrationExtensionOutputs {
                RegistrationExtensionOutputs {
                    prf_enabled,
                    large_blob_supported,
                    appid_exclude,
                    cred_protect: cred_protect.and_then(CredentialProtectionPolicy::from_level),
                    cred_blob_stored,
                    min_pin_length,
                    hmac_secret,
                }
            }
        }

        prop_compose! {
            fn credential()(
                id in prop::collection::vec(any::<u8>(), 1..64),
                user in prop::collection::vec(any::<u8>(), 1..64),
                cose in prop::collection::vec(any::<u8>(), 0..100),
                algorithm in any::<i64>(),
                sign_count in any::<u32>(),
                aaguid in any::<[u8; 16]>(),
                transports in prop::collection::vec(".{0,12}", 0..4),
                flags in any::<(bool, bool, bool)>(),
                attestation_format in ".{0,16}",
                attestation_type in 0u64..5,
                created in (any::<u32>(), 0u32..1_000_000_000),
                discoverable in opt_bool(),
                chain in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3),
                attachment in prop::option::of(1u64..=2),
                extensions in extensions(),
                user_name in prop::option::of(".{0,20}"),
                user_display_name in prop::option::of(".{0,20}"),
            ) -> RegisteredCredential {
                RegisteredCredential {
                    credential_id: id,
                    user_id: user,
                    public_key_cose: cose,
                    algorithm,
                    sign_count,
                    aaguid,
                    transports,
                    user_verified: flags.0,
                    backup_eligible: flags.1,
                    backed_up: flags.2,
                    attestation_format,
                    attestation_type: attestation_type_of(attestation_type),
                    created_at: SystemTime::UNIX_EPOCH
                        + Duration::new(u64::from(created.0), created.1),
                    discoverable,
                    attestation_chain: chain.into_iter().map(Base64UrlBytes).collect(),
                    authenticator_attachment: attachment.map(|a| super::attachment(a).unwrap()),
                    extensions,
                    prf: None,
                    user_name,
                    user_display_name,
                }
            }
        }

        fn attestation_type_of(code: u64) -> AttestationType {
            attestation_type(code).unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            /// Every member survives the binary layout, each credential is found alone, and a
            /// rewrite of one leaves the others as they were.
            #[test]
            fn records_round_trip(mut creds in prop::collection::vec(credential(), 1..4), count in any::<u32>()) {
                // Distinct ids: each ends with its index.
                for (i, c) in creds.iter_mut().enumerate() {
                    c.credential_id.push(i as u8);
                }
                let bytes = encode(&creds).unwrap();
                prop_assert_eq!(&decode(&bytes).unwrap(), &creds);
                for c in &creds {
                    prop_assert_eq!(find(&bytes, &c.credential_id).unwrap(), Some(c.clone()));
                }
                let mut updated = creds.clone();
                updated[0].sign_count = count;
                updated[0].backed_up = !updated[0].backed_up;
                let rewritten = replace(&bytes, &updated[0]).unwrap();
                prop_assert_eq!(&decode(&rewritten).unwrap(), &updated);
                let old: Vec<_> = bodies(&bytes).unwrap().skip(1).collect::<Result<_>>().unwrap();
                let new: Vec<_> = bodies(&rewritten).unwrap().skip(1).collect::<Result<_>>().unwrap();
                prop_assert_eq!(old, new);
            }

            /// A record with a later release's fields (carried tags, anywhere in the record and
            /// in each body) keeps all of them, in order, through a counter update, a
            /// registration and a deletion.
            #[test]
            fn rewrites_keep_fields_of_a_later_release(
                mut creds in prop::collection::vec(credential(), 2..4),
                extra in credential(),
                record_fields in prop::collection::vec((22u8..record::DERIVED, prop::collection::vec(any::<u8>(), 0..8)), 0..4),
                body_fields in prop::collection::vec(prop::collection::vec((22u8..record::DERIVED, prop::collection::vec(any::<u8>(), 0..8)), 0..4), 4),
            ) {
                for (i, c) in creds.iter_mut().enumerate() {
                    c.credential_id.push(i as u8);
                    c.user_name = None;
                }
                let mut extra = extra;
                extra.credential_id.push(200);
                extra.user_name = None;
                let mut w = RecordWriter::new(RECORD_USER_CREDENTIALS);
                for (i, c) in creds.iter().enumerate() {
                    if let Some((tag, value)) = record_fields.get(i) {
                        w.bytes(*tag, value);
                    }
                    let mut body = encode_body(c, None).unwrap();
                    for (tag, value) in &body_fields[i] {
                        body.bytes(*tag, value);
                    }
                    w.nested(TAG_CREDENTIAL, body);
                }
                for (tag, value) in record_fields.iter().skip(creds.len()) {
                    w.bytes(*tag, value);
                }
                let bytes = w.finish();
                let owned = |v: &[(u8, Vec<u8>)]| v.to_vec();
                let body_later = |bytes: &[u8]| -> Vec<Vec<(u8, Vec<u8>)>> {
                    bodies(bytes)
                        .unwrap()
                        .map(|b| {
                            RecordReader::parse_body(b.unwrap())
                                .unwrap()
                                .fields()
                                .filter(|(t, _)| !known(*t))
                                .map(|(t, v)| (t, v.to_vec()))
                                .collect()
                        })
                        .collect()
                };
                prop_assert_eq!(&decode(&bytes).unwrap(), &creds);
                let expected: Vec<_> = body_fields[..creds.len()].iter().map(|f| owned(f)).collect();
                prop_assert_eq!(&body_later(&bytes), &expected);

                let mut counted = creds[0].clone();
                counted.sign_count = counted.sign_count.wrapping_add(1);
                let after = replace(&bytes, &counted).unwrap();
                prop_assert_eq!(&body_later(&after), &expected);
                prop_assert_eq!(record_level(&after), owned(&record_fields));

                let after = add(Some(&after), &extra, 10).unwrap();
                let mut with_extra = expected.clone();
                with_extra.push(Vec::new());
                prop_assert_eq!(&body_later(&after), &with_extra);
                prop_assert_eq!(record_level(&after), owned(&record_fields));

                let Removed::Rest(after) = remove(&after, &creds[1].credential_id).unwrap() else {
                    return Err(TestCaseError::fail("credentials are left"));
                };
                with_extra.remove(1);
                prop_assert_eq!(&body_later(&after), &with_extra);
                prop_assert_eq!(record_level(&after), owned(&record_fields));
                prop_assert_eq!(decode(&after).unwrap().len(), creds.len());
            }
        }
    }
}
