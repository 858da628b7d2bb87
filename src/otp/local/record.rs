//! The stored verification: one record per destination, in the crate's compact versioned
//! encoding (`store::record`), and the PSD2 transaction it is bound to.

use crate::error::{Error, Result};
use crate::otp::Channel;
#[cfg(test)]
use crate::store::record::RecordReader;
use crate::store::record::{Fields, RecordWriter, Unknown, body_of, decode_u64};

/// Record kind of a self-hosted verification (see `store::record`).
const RECORD_OTP_VERIFICATION: u8 = 0x10;

/// Why a verification ended. Expiry is not stored: a pending record past its expiry is expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Approved = 1,
    Canceled = 2,
    MaxAttemptsReached = 3,
}

impl Ended {
    fn from_u64(v: u64) -> Result<Ended> {
        match v {
            1 => Ok(Ended::Approved),
            2 => Ok(Ended::Canceled),
            3 => Ok(Ended::MaxAttemptsReached),
            _ => Err(Error::storage("stored verification state is corrupt")),
        }
    }
}

/// A verification as stored, under one key per destination (`e:otp:v:{destination tag}`):
/// every rule (one live verification per destination, the attempt limit, the send limit,
/// single-use approval, why it ended) reads and changes this one key, and no other key exists
/// per verification.
///
/// The destination itself is not stored: the key holds its keyed hash, the record its masked
/// form (`+1********61`) for display. The code is not stored either: a derived code is
/// recomputed from the sid, a host-chosen one is kept as a keyed hash.
#[derive(Clone)]
pub(super) struct Record {
    pub(super) sid: [u8; 16],
    /// The destination's keyed hash (its first [`TAG_LEN`] bytes are the key's part).
    pub(super) destination: [u8; 16],
    pub(super) masked_to: String,
    pub(super) channel: Channel,
    pub(super) locale: Option<String>,
    /// HMAC(server secret, "keyward-otp-custom-v2" || sid || code || transaction) of a
    /// host-chosen code; `None` for a code derived from the sid.
    pub(super) custom_hash: Option<[u8; 32]>,
    pub(super) code_len: u8,
    pub(super) sends: u32,
    pub(super) attempts: u32,
    pub(super) created_ms: u64,
    pub(super) updated_ms: u64,
    pub(super) expires_ms: u64,
    pub(super) ended: Option<Ended>,
    /// The sender name shown in the message (`CustomFriendlyName`).
    pub(super) friendly_name: Option<String>,
    /// The message text replacing the template (`CustomMessage`).
    pub(super) custom_message: Option<String>,
    /// The PSD2 transaction the code is bound to (`Amount`, `Payee`).
    pub(super) amount: Option<String>,
    pub(super) payee: Option<String>,
    /// Android SMS Retriever hash appended to SMS (`AppHash`).
    pub(super) app_hash: Option<String>,
    /// Fields of a later release, written back by a re-send, a check or a cancel of this
    /// verification (`store::record`); a new verification starts without them.
    pub(super) later: Unknown,
}

// Field tags of a verification record; a tag's meaning never changes once released.
const F_SID: u8 = 1;
const F_MASKED_TO: u8 = 2;
const F_CHANNEL: u8 = 3;
const F_LOCALE: u8 = 4;
const F_CUSTOM_HASH: u8 = 5;
const F_CODE_LEN: u8 = 6;
const F_SENDS: u8 = 7;
const F_ATTEMPTS: u8 = 8;
const F_CREATED: u8 = 9;
const F_UPDATED: u8 = 10;
const F_EXPIRES: u8 = 11;
const F_ENDED: u8 = 12;
const F_FRIENDLY_NAME: u8 = 13;
const F_CUSTOM_MESSAGE: u8 = 14;
const F_AMOUNT: u8 = 15;
const F_PAYEE: u8 = 16;
const F_APP_HASH: u8 = 17;
const F_DESTINATION: u8 = 18;

/// Whether this release knows a field tag of a verification record.
fn known(tag: u8) -> bool {
    (F_SID..=F_DESTINATION).contains(&tag)
}

impl Record {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new(RECORD_OTP_VERIFICATION);
        w.bytes(F_SID, &self.sid)
            .bytes(F_DESTINATION, &self.destination)
            .str(F_MASKED_TO, &self.masked_to)
            .str(F_CHANNEL, self.channel.as_str())
            .u64(F_CODE_LEN, u64::from(self.code_len))
            .u64(F_SENDS, u64::from(self.sends))
            .u64(F_ATTEMPTS, u64::from(self.attempts))
            .u64(F_CREATED, self.created_ms)
            .u64(F_UPDATED, self.updated_ms)
            .u64(F_EXPIRES, self.expires_ms);
        if let Some(hash) = &self.custom_hash {
            w.bytes(F_CUSTOM_HASH, hash);
        }
        if let Some(ended) = self.ended {
            w.u64(F_ENDED, ended as u64);
        }
        for (tag, value) in [
            (F_LOCALE, &self.locale),
            (F_FRIENDLY_NAME, &self.friendly_name),
            (F_CUSTOM_MESSAGE, &self.custom_message),
            (F_AMOUNT, &self.amount),
            (F_PAYEE, &self.payee),
            (F_APP_HASH, &self.app_hash),
        ] {
            if let Some(v) = value {
                w.str(tag, v);
            }
        }
        w.unknown(&self.later);
        w.finish()
    }

    /// Decodes a stored verification in one pass over its fields, without allocating an index
    /// (a start and a check each decode one): the first occurrence of each known tag counts, as
    /// [`RecordReader`] reads it; unknown fields are kept, in order, for the rewrite.
    pub(super) fn decode(bytes: &[u8]) -> Result<Record> {
        let mut later = Unknown::default();
        let slots = scan(bytes, |tag, value| later.keep(tag, value))?;
        let field = |tag: u8| slots[usize::from(tag)];
        let required = |tag: u8| field(tag).ok_or_else(corrupt);
        let number = |tag: u8| -> Result<u64> { decode_u64(required(tag)?) };
        let small = |tag: u8| -> Result<u32> { u32::try_from(number(tag)?).map_err(|_| corrupt()) };
        let utf8 = |v: &[u8]| -> Result<String> {
            std::str::from_utf8(v)
                .map(str::to_owned)
                .map_err(|_| corrupt())
        };
        let text = |tag: u8| -> Result<Option<String>> { field(tag).map(utf8).transpose() };
        let array = |tag: u8| -> Result<[u8; 16]> { id(required(tag)?) };
        Ok(Record {
            sid: array(F_SID)?,
            destination: array(F_DESTINATION)?,
            masked_to: utf8(required(F_MASKED_TO)?)?,
            channel: match required(F_CHANNEL)? {
                // As written by `encode` (no allocation); anything else as `Channel::parse`
                // reads it.
                b"sms" => Channel::Sms,
                b"call" => Channel::Call,
                b"email" => Channel::Email,
                b"whatsapp" => Channel::Whatsapp,
                other => Channel::parse(std::str::from_utf8(other).map_err(|_| corrupt())?),
            },
            locale: text(F_LOCALE)?,
            custom_hash: field(F_CUSTOM_HASH)
                .map(|h| h.try_into().map_err(|_| corrupt()))
                .transpose()?,
            code_len: u8::try_from(number(F_CODE_LEN)?).map_err(|_| corrupt())?,
            sends: small(F_SENDS)?,
            attempts: small(F_ATTEMPTS)?,
            created_ms: number(F_CREATED)?,
            updated_ms: number(F_UPDATED)?,
            expires_ms: number(F_EXPIRES)?,
            ended: end_state(field(F_ENDED))?,
            friendly_name: text(F_FRIENDLY_NAME)?,
            custom_message: text(F_CUSTOM_MESSAGE)?,
            amount: text(F_AMOUNT)?,
            payee: text(F_PAYEE)?,
            app_hash: text(F_APP_HASH)?,
            later,
        })
    }

    pub(super) fn sid(&self) -> String {
        let mut text = [0u8; 34];
        text[..2].copy_from_slice(b"VE");
        crate::hex::write(&mut text[2..], &self.sid);
        // `VE` and hex digits: always ASCII.
        std::str::from_utf8(&text).unwrap_or_default().to_owned()
    }

    /// What a start needs of the destination's current record to choose between a re-send and
    /// a new verification, read without decoding the rest (an ended or expired verification is
    /// replaced whole): its destination and whether it is pending. The first occurrence of a
    /// tag counts, as in [`decode`](Self::decode).
    pub(super) fn peek(bytes: &[u8], now_ms: u64) -> Result<Peek> {
        let slots = scan(bytes, |_, _| {})?;
        let required = |tag: u8| slots[usize::from(tag)].ok_or_else(corrupt);
        let expires_ms = decode_u64(required(F_EXPIRES)?)?;
        Ok(Peek {
            destination: id(required(F_DESTINATION)?)?,
            pending: end_state(slots[usize::from(F_ENDED)])?.is_none() && now_ms < expires_ms,
        })
    }

    /// Whether checks and re-sends still apply.
    pub(super) fn is_pending(&self, now_ms: u64) -> bool {
        self.ended.is_none() && now_ms < self.expires_ms
    }
}

/// The fields of a stored verification by tag, the first occurrence of each known one.
type Slots<'a> = [Option<&'a [u8]>; F_DESTINATION as usize + 1];

/// Reads a stored verification's fields in one pass, allocating nothing: the first occurrence
/// of each known tag into its slot, every unknown field to `unknown`, in order.
fn scan<'a>(bytes: &'a [u8], mut unknown: impl FnMut(u8, &'a [u8])) -> Result<Slots<'a>> {
    let mut slots: Slots<'a> = [None; F_DESTINATION as usize + 1];
    for field in Fields::new(body_of(RECORD_OTP_VERIFICATION, bytes)?) {
        let (tag, value) = field?;
        if known(tag) {
            let slot = &mut slots[usize::from(tag)];
            if slot.is_none() {
                *slot = Some(value);
            }
        } else {
            unknown(tag, value);
        }
    }
    Ok(slots)
}

fn corrupt() -> Error {
    Error::storage("stored verification is corrupt")
}

/// A 16-byte id field (sid, destination).
fn id(value: &[u8]) -> Result<[u8; 16]> {
    value.try_into().map_err(|_| corrupt())
}

/// The end state field, if present.
fn end_state(value: Option<&[u8]>) -> Result<Option<Ended>> {
    value
        .map(|v| decode_u64(v).and_then(Ended::from_u64))
        .transpose()
}

/// A stored verification's destination and whether it is pending ([`Record::peek`]).
pub(super) struct Peek {
    pub(super) destination: [u8; 16],
    pub(super) pending: bool,
}

/// The PSD2 transaction of a request, if any.
pub(super) fn transaction<'a>(
    amount: &'a Option<String>,
    payee: &'a Option<String>,
) -> Option<(&'a str, &'a str)> {
    match (amount, payee) {
        (None, None) => None,
        (a, p) => Some((a.as_deref().unwrap_or(""), p.as_deref().unwrap_or(""))),
    }
}

/// Appends a PSD2 transaction (length-prefixed, so no two transactions share an encoding).
pub(super) fn push_transaction(msg: &mut Vec<u8>, txn: Option<(&str, &str)>) {
    if let Some((amount, payee)) = txn {
        msg.extend_from_slice(b"\0keyward-psd2-v1");
        for part in [amount, payee] {
            msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
            msg.extend_from_slice(part.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::otp::local::LocalOtpProvider;
    use crate::otp::{Outbox, StartVerification};
    use crate::secret::Secret;
    use crate::store::MemoryStore;
    use crate::testing::SeededRandom;

    fn provider() -> LocalOtpProvider {
        provider_on(Arc::new(MemoryStore::new()), Arc::new(Outbox::new()))
    }

    fn provider_on(store: Arc<MemoryStore>, outbox: Arc<Outbox>) -> LocalOtpProvider {
        LocalOtpProvider::builder(store, outbox, Secret::new([1u8; 32]))
            .env(crate::Env::system().with_random(Arc::new(SeededRandom::new(b"unit"))))
            .build()
            .unwrap()
    }

    /// A new verification's record for `+15017122661`.
    fn sample(p: &LocalOtpProvider, request: &StartVerification) -> Record {
        let to = "+15017122661";
        p.new_record(to, &p.destination_id(to), &Channel::Sms, request)
            .unwrap()
            .0
    }

    #[test]
    fn records_round_trip_and_hold_no_destination() {
        let p = provider();
        let request = StartVerification::new("+15017122661", Channel::Sms)
            .custom_code("4242")
            .locale("fr");
        let record = sample(&p, &request);
        let bytes = record.encode();
        assert!(!String::from_utf8_lossy(&bytes).contains("5017122661"));
        let back = Record::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.masked_to, "**********61");
        assert_eq!(back.locale.as_deref(), Some("fr"));
        assert!(back.custom_hash.is_some());
        for cut in 0..bytes.len() {
            let _ = Record::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn the_first_of_repeated_fields_counts_and_unknown_ones_are_kept_in_order() {
        let p = provider();
        let request = StartVerification::new("+15017122661", Channel::Sms).locale("fr");
        let record = sample(&p, &request);
        let mut bytes = record.encode();
        let mut w = RecordWriter::body();
        w.str(F_LOCALE, "de")
            .bytes(60, b"later a")
            .u64(F_ATTEMPTS, 9)
            .bytes(crate::store::record::DERIVED, b"derived")
            .bytes(61, b"later b");
        bytes.extend_from_slice(&w.finish());
        let back = Record::decode(&bytes).unwrap();
        // As `RecordReader` reads a record: the first occurrence of a tag.
        let r = RecordReader::parse(RECORD_OTP_VERIFICATION, &bytes).unwrap();
        assert_eq!(back.locale.as_deref(), r.opt_str(F_LOCALE).unwrap());
        assert_eq!(back.locale.as_deref(), Some("fr"));
        assert_eq!(u64::from(back.attempts), r.u64(F_ATTEMPTS).unwrap());
        assert_eq!(back.later, Unknown::of(&r, known));
        assert_eq!(
            later_fields(&back.encode()),
            vec![(60, b"later a".to_vec()), (61, b"later b".to_vec()),]
        );
        // A field that does not decode, wherever it is, makes the record corrupt.
        let mut bad = bytes.clone();
        bad.extend_from_slice(&[F_EXPIRES, 5, 1]);
        assert!(Record::decode(&bad).is_err());
        let mut bad_text = record.encode();
        bad_text.extend_from_slice(&[70, 1, 0xff]);
        assert!(
            Record::decode(&bad_text).is_ok(),
            "an unknown field is opaque"
        );
        let mut first_bad = RecordWriter::new(RECORD_OTP_VERIFICATION);
        first_bad.bytes(F_MASKED_TO, &[0xff]);
        let mut tail = record.encode();
        first_bad.bytes(F_SID, &record.sid);
        let mut joined = first_bad.finish();
        joined.extend_from_slice(&tail.split_off(2));
        assert!(
            Record::decode(&joined).is_err(),
            "the first masked_to is not UTF-8"
        );
    }

    #[test]
    fn a_peek_agrees_with_the_decoded_record() {
        let p = provider();
        let request = StartVerification::new("+15017122661", Channel::Sms);
        let mut record = sample(&p, &request);
        for ended in [None, Some(Ended::Approved), Some(Ended::Canceled)] {
            record.ended = ended;
            let mut bytes = record.encode();
            // A repeated tag after the first does not count, in either reading.
            let mut w = RecordWriter::body();
            w.u64(F_ENDED, 3)
                .u64(F_EXPIRES, 0)
                .bytes(F_DESTINATION, &[0; 16]);
            bytes.extend_from_slice(&w.finish());
            let full = Record::decode(&bytes).unwrap();
            for now in [0, record.expires_ms - 1, record.expires_ms, u64::MAX] {
                let peek = Record::peek(&bytes, now).unwrap();
                assert_eq!(peek.pending, full.is_pending(now), "{ended:?} at {now}");
                assert_eq!(peek.destination, full.destination);
            }
            for cut in 0..bytes.len() {
                let _ = Record::peek(&bytes[..cut], 0);
            }
        }
        // Without its destination or expiry, a record is corrupt to a peek too.
        let mut w = RecordWriter::new(RECORD_OTP_VERIFICATION);
        w.bytes(F_DESTINATION, &record.destination);
        assert!(Record::peek(&w.finish(), 0).is_err());
        // An unknown end state, as the first F_ENDED, is corrupt to both readings.
        record.ended = None;
        let mut bad_ended = record.encode();
        bad_ended.extend_from_slice(&[F_ENDED, 1, 9]);
        assert!(Record::peek(&bad_ended, 0).is_err());
        assert!(Record::decode(&bad_ended).is_err());
    }

    /// The later release's fields of the stored record, in order.
    fn later_fields(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        RecordReader::parse(RECORD_OTP_VERIFICATION, bytes)
            .unwrap()
            .fields()
            .filter(|(t, _)| !known(*t))
            .map(|(t, v)| (t, v.to_vec()))
            .collect()
    }

    #[tokio::test]
    async fn a_resend_a_check_and_a_cancel_keep_fields_of_a_later_release() {
        use crate::otp::{CheckCode, CheckOutcome, OtpProvider, VerificationRef};
        use crate::store::{StateStore, Ttl, Write};

        let store = Arc::new(MemoryStore::new());
        let outbox = Arc::new(Outbox::new());
        let p = provider_on(store.clone(), outbox.clone());
        let to = "+15017122661";
        let key =
            LocalOtpProvider::record_key(&p.destination_id(to)[..super::super::codes::TAG_LEN]);
        let expected = vec![
            (40, b"later a".to_vec()),
            (41, b"later b".to_vec()),
            (40, b"later c".to_vec()),
        ];
        // The record as a later release would leave it: this release's fields, then its own.
        let add_later = || async {
            let entry = store.get(&key).await.unwrap().unwrap();
            let mut bytes = entry.value.clone();
            let mut w = RecordWriter::body();
            w.bytes(40, b"later a")
                .bytes(crate::store::record::DERIVED, b"derived")
                .bytes(41, b"later b")
                .bytes(40, b"later c");
            bytes.extend_from_slice(&w.finish());
            let write = Write::Set {
                value: bytes,
                ttl: Ttl::Keep,
            };
            store
                .compare_and_swap(&key, entry.version, write)
                .await
                .unwrap();
        };
        let stored = || async { later_fields(&store.get(&key).await.unwrap().unwrap().value) };

        p.start(StartVerification::new(to, Channel::Sms))
            .await
            .unwrap();
        add_later().await;
        // A re-send.
        p.start(StartVerification::new(to, Channel::Sms))
            .await
            .unwrap();
        assert_eq!(stored().await, expected);
        // A wrong code, then the right one.
        let code = outbox.last_code_to(to).unwrap();
        let wrong = if code.expose() == b"000000" {
            "111111"
        } else {
            "000000"
        };
        let outcome = p.check(CheckCode::to(to, wrong)).await.unwrap();
        assert!(matches!(outcome, CheckOutcome::Rejected(_)));
        assert_eq!(stored().await, expected);
        let outcome = p.check(CheckCode::to(to, code)).await.unwrap();
        assert!(matches!(outcome, CheckOutcome::Approved(_)));
        assert_eq!(stored().await, expected);
        // A new verification replaces the ended one: the old one's fields go with it.
        p.start(StartVerification::new(to, Channel::Sms))
            .await
            .unwrap();
        assert_eq!(stored().await, vec![]);
        add_later().await;
        p.cancel(VerificationRef::To(to.into())).await.unwrap();
        assert_eq!(stored().await, expected);
    }
}
