//! The compact, versioned encoding of keyward's stored records.
//!
//! ```text
//! record = format:u8 (= 1)  kind:u8  field*
//! field  = tag:u8 (1..=255)  len:varint  bytes[len]
//! ```
//!
//! Integers inside a field are LEB128 varints, booleans one byte, text UTF-8, bytes raw (never
//! arrays of integers). A reader looks fields up by tag and skips tags it does not know, so a
//! later release can add fields and still read every record an earlier one wrote; a tag's
//! meaning never changes once released. Fields may repeat (lists) and may hold a nested body
//! (`field*` without the two header bytes). One pass over the bytes decodes a record.
//!
//! A rewrite keeps what it does not know. When this release decodes a body, changes it and writes
//! it back, every field whose tag it does not know is written back raw and in order
//! ([`RecordWriter::carry`]), so an instance of an earlier release in a rolling upgrade does not
//! erase what a later one stored. One exception, the rule for future fields: a field whose value
//! is derived from other fields (a digest, a count, a cached verdict about the rest) takes a tag
//! in [`DERIVED`]`..=255`, and a rewrite by a release that does not know it drops it (the body
//! changed under it, so a stale copy would lie); the later release reads it as absent and
//! recomputes it. A body copied unchanged keeps every field, derived ones included.

use crate::error::{Error, Result};

/// The current format byte.
pub(crate) const FORMAT: u8 = 1;

/// The first tag of a derived field: an unknown tag at or above it is dropped, not carried, when
/// the body holding it is rewritten (see the module docs).
pub(crate) const DERIVED: u8 = 0xE0;

/// Whether a rewrite that does not know `tag` writes it back.
pub(crate) fn carried(tag: u8) -> bool {
    tag < DERIVED
}

/// The fields of a decoded body that this release does not know and carries over on a rewrite
/// (raw, in order): kept by records that are decoded into owned values and encoded again. Its
/// `Debug` shows tags and lengths only: a later release's field may hold a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Unknown(Vec<(u8, Vec<u8>)>);

impl std::fmt::Debug for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(t, v)| (t, v.len())))
            .finish()
    }
}

impl Unknown {
    /// Keeps a field this release does not know, if a rewrite carries it (see [`carried`]).
    pub(crate) fn keep(&mut self, tag: u8, value: &[u8]) {
        if carried(tag) {
            self.0.push((tag, value.to_vec()));
        }
    }

    /// The carried fields of `r` whose tags `known` does not claim.
    pub(crate) fn of(r: &RecordReader<'_>, known: impl Fn(u8) -> bool) -> Self {
        Unknown(
            r.fields
                .iter()
                .filter(|(t, _)| !known(*t) && carried(*t))
                .map(|(t, v)| (*t, v.to_vec()))
                .collect(),
        )
    }
}

fn corrupt() -> Error {
    Error::storage("stored record does not decode")
}

fn push_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or_else(corrupt)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if shift == 63 && b > 1 {
                return Err(corrupt());
            }
            return Ok(v);
        }
    }
    Err(corrupt())
}

/// Builds one record (or a nested body).
#[derive(Debug, Default)]
pub(crate) struct RecordWriter {
    buf: Vec<u8>,
}

impl RecordWriter {
    /// A record of `kind`.
    pub(crate) fn new(kind: u8) -> Self {
        let mut buf = Vec::with_capacity(192);
        buf.push(FORMAT);
        buf.push(kind);
        RecordWriter { buf }
    }

    /// A nested body (no header), for [`RecordWriter::nested`].
    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "lists and nested bodies serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn body() -> Self {
        RecordWriter {
            buf: Vec::with_capacity(128),
        }
    }

    pub(crate) fn bytes(&mut self, tag: u8, v: &[u8]) -> &mut Self {
        self.buf.push(tag);
        push_varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub(crate) fn str(&mut self, tag: u8, v: &str) -> &mut Self {
        self.bytes(tag, v.as_bytes())
    }

    pub(crate) fn u64(&mut self, tag: u8, v: u64) -> &mut Self {
        // The varint is at most 10 bytes (7 bits each), so its length prefix is one byte; it is
        // written in place rather than copied from a scratch buffer.
        let len = (64 - (v | 1).leading_zeros()).div_ceil(7);
        self.buf.push(tag);
        self.buf.push(len as u8);
        push_varint(&mut self.buf, v);
        self
    }

    /// A signed integer (zigzag, so small negative values stay one byte).
    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "signed fields serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn i64(&mut self, tag: u8, v: i64) -> &mut Self {
        self.u64(tag, ((v << 1) ^ (v >> 63)) as u64)
    }

    pub(crate) fn bool(&mut self, tag: u8, v: bool) -> &mut Self {
        self.bytes(tag, &[u8::from(v)])
    }

    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "lists and nested bodies serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn nested(&mut self, tag: u8, body: RecordWriter) -> &mut Self {
        self.bytes(tag, &body.buf)
    }

    /// Writes back, raw and in order, every field of `fields` that `known` does not claim and
    /// that a rewrite carries (tags below [`DERIVED`]).
    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "borrowed carries serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn carry<'b>(
        &mut self,
        fields: impl Iterator<Item = (u8, &'b [u8])>,
        known: impl Fn(u8) -> bool,
    ) -> &mut Self {
        for (tag, value) in fields {
            if !known(tag) && carried(tag) {
                self.bytes(tag, value);
            }
        }
        self
    }

    /// Writes back the fields an [`Unknown`] kept.
    pub(crate) fn unknown(&mut self, kept: &Unknown) -> &mut Self {
        for (tag, value) in &kept.0 {
            self.bytes(*tag, value);
        }
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// A decoded record: its fields, borrowed from the stored bytes.
#[derive(Debug)]
pub(crate) struct RecordReader<'a> {
    fields: Vec<(u8, &'a [u8])>,
}

impl<'a> RecordReader<'a> {
    /// Decodes a record, checking its format and kind.
    pub(crate) fn parse(kind: u8, bytes: &'a [u8]) -> Result<Self> {
        match bytes {
            [FORMAT, k, rest @ ..] if *k == kind => Self::parse_body(rest),
            _ => Err(corrupt()),
        }
    }

    /// Decodes a nested body.
    pub(crate) fn parse_body(bytes: &'a [u8]) -> Result<Self> {
        let mut fields = Vec::with_capacity(24);
        for field in Fields::new(bytes) {
            fields.push(field?);
        }
        Ok(RecordReader { fields })
    }

    /// Every field, in order.
    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "field copies serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn fields(&self) -> impl Iterator<Item = (u8, &'a [u8])> + '_ {
        self.fields.iter().copied()
    }

    pub(crate) fn opt_bytes(&self, tag: u8) -> Option<&'a [u8]> {
        self.fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }

    pub(crate) fn bytes(&self, tag: u8) -> Result<&'a [u8]> {
        self.opt_bytes(tag).ok_or_else(corrupt)
    }

    /// Every occurrence of a repeated field, in order.
    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "lists and nested bodies serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn all(&self, tag: u8) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.fields
            .iter()
            .filter(move |(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    pub(crate) fn opt_str(&self, tag: u8) -> Result<Option<&'a str>> {
        self.opt_bytes(tag)
            .map(|b| std::str::from_utf8(b).map_err(|_| corrupt()))
            .transpose()
    }

    pub(crate) fn str(&self, tag: u8) -> Result<&'a str> {
        self.opt_str(tag)?.ok_or_else(corrupt)
    }

    pub(crate) fn opt_u64(&self, tag: u8) -> Result<Option<u64>> {
        self.opt_bytes(tag).map(decode_u64).transpose()
    }

    pub(crate) fn u64(&self, tag: u8) -> Result<u64> {
        self.opt_u64(tag)?.ok_or_else(corrupt)
    }

    #[cfg_attr(
        not(any(feature = "webauthn", test)),
        expect(
            dead_code,
            reason = "signed fields serve the WebAuthn credential records"
        )
    )]
    pub(crate) fn i64(&self, tag: u8) -> Result<i64> {
        let z = self.u64(tag)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A boolean field; absent means `false`.
    pub(crate) fn flag(&self, tag: u8) -> Result<bool> {
        match self.opt_bytes(tag) {
            None | Some([0]) => Ok(false),
            Some([1]) => Ok(true),
            Some(_) => Err(corrupt()),
        }
    }
}

/// The body of a record of `kind` (the fields after the two header bytes), for [`Fields`].
pub(crate) fn body_of(kind: u8, bytes: &[u8]) -> Result<&[u8]> {
    match bytes {
        [FORMAT, k, rest @ ..] if *k == kind => Ok(rest),
        _ => Err(corrupt()),
    }
}

/// The fields of a body, one at a time and without allocating (for scans that stop early).
#[derive(Clone)]
pub(crate) struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A body can hold keyed hashes and key material: `Debug` shows the position and length only.
impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("pos", &self.pos)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl<'a> Fields<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Fields {
            bytes: body,
            pos: 0,
        }
    }

    fn next_field(&mut self) -> Result<(u8, &'a [u8])> {
        let bytes = self.bytes;
        let tag = *bytes.get(self.pos).ok_or_else(corrupt)?;
        let mut pos = self.pos + 1;
        let len = match bytes.get(pos) {
            // Most fields are shorter than 128 bytes: a one-byte length.
            Some(&b) if b < 0x80 => {
                pos += 1;
                usize::from(b)
            }
            _ => usize::try_from(read_varint(bytes, &mut pos)?).map_err(|_| corrupt())?,
        };
        let end = pos.checked_add(len).ok_or_else(corrupt)?;
        let value = bytes.get(pos..end).ok_or_else(corrupt)?;
        self.pos = end;
        Ok((tag, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let field = self.next_field();
        if field.is_err() {
            // Stop after the first error.
            self.pos = self.bytes.len();
        }
        Some(field)
    }
}

/// A varint field's value.
pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64> {
    if let [b] = bytes
        && *b < 0x80
    {
        return Ok(u64::from(*b));
    }
    let mut pos = 0;
    let v = read_varint(bytes, &mut pos)?;
    if pos != bytes.len() {
        return Err(corrupt());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_fields_are_skipped() {
        let mut w = RecordWriter::new(7);
        w.bytes(1, &[0, 1, 2, 255])
            .str(2, "hé")
            .u64(3, u64::MAX)
            .bool(4, true)
            .bytes(200, b"from a later release")
            .u64(5, 0);
        let mut inner = RecordWriter::body();
        inner.u64(1, 300);
        w.nested(6, inner);
        w.bytes(9, b"a").bytes(9, b"b");
        w.i64(10, -7).i64(11, i64::MIN).i64(12, i64::MAX).i64(13, 0);
        let bytes = w.finish();
        let r = RecordReader::parse(7, &bytes).unwrap();
        assert_eq!(r.bytes(1).unwrap(), &[0, 1, 2, 255]);
        assert_eq!(r.str(2).unwrap(), "hé");
        assert_eq!(r.u64(3).unwrap(), u64::MAX);
        assert!(r.flag(4).unwrap());
        assert!(!r.flag(8).unwrap());
        assert_eq!(r.u64(5).unwrap(), 0);
        let n = RecordReader::parse_body(r.bytes(6).unwrap()).unwrap();
        assert_eq!(n.u64(1).unwrap(), 300);
        assert_eq!(r.all(9).collect::<Vec<_>>(), vec![b"a".as_slice(), b"b"]);
        assert!(RecordReader::parse(8, &bytes).is_err());
        assert_eq!(r.i64(10).unwrap(), -7);
        assert_eq!(r.opt_bytes(10).unwrap().len(), 1);
        assert_eq!(r.i64(11).unwrap(), i64::MIN);
        assert_eq!(r.i64(12).unwrap(), i64::MAX);
        assert_eq!(r.i64(13).unwrap(), 0);
        let scanned: Vec<_> = Fields::new(body_of(7, &bytes).unwrap())
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(scanned, r.fields().collect::<Vec<_>>());
        assert!(body_of(8, &bytes).is_err());
    }

    #[test]
    fn integers_of_every_width_round_trip() {
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) | 1] {
                let mut w = RecordWriter::new(7);
                w.u64(1, v).u64(2, u64::MAX - v);
                let bytes = w.finish();
                let r = RecordReader::parse(7, &bytes).unwrap();
                assert_eq!(r.u64(1).unwrap(), v);
                assert_eq!(r.u64(2).unwrap(), u64::MAX - v);
                let mut varint = Vec::new();
                push_varint(&mut varint, v);
                assert_eq!(r.bytes(1).unwrap(), varint.as_slice());
            }
        }
    }

    #[test]
    fn a_rewrite_carries_unknown_fields_in_order_and_drops_derived_ones() {
        let mut w = RecordWriter::new(7);
        w.u64(1, 5)
            .bytes(40, b"later a")
            .bytes(DERIVED, b"derived")
            .u64(2, 6)
            .bytes(40, b"later b")
            .bytes(255, b"derived too")
            .bytes(41, b"later c");
        let bytes = w.finish();
        let r = RecordReader::parse(7, &bytes).unwrap();
        let known = |t| t == 1 || t == 2;
        let kept = Unknown::of(&r, known);
        let mut direct = RecordWriter::new(7);
        direct.u64(1, 9).carry(r.fields(), known);
        let mut owned = RecordWriter::new(7);
        owned.u64(1, 9).unknown(&kept);
        let direct = direct.finish();
        assert_eq!(direct, owned.finish());
        let back = RecordReader::parse(7, &direct).unwrap();
        assert_eq!(
            back.fields().collect::<Vec<_>>(),
            vec![
                (1, &[9][..]),
                (40, &b"later a"[..]),
                (40, &b"later b"[..]),
                (41, &b"later c"[..]),
            ]
        );
        assert!(carried(DERIVED - 1) && !carried(DERIVED) && !carried(255));
        // Tags and lengths, never the bytes.
        assert_eq!(format!("{kept:?}"), "[(40, 7), (40, 7), (41, 7)]");
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let mut w = RecordWriter::new(1);
        w.bytes(1, &[9; 300]).u64(2, 1 << 40);
        let bytes = w.finish();
        for cut in 0..bytes.len() {
            let _ = RecordReader::parse(1, &bytes[..cut]).and_then(|r| r.u64(2));
            let fields: Vec<_> = Fields::new(body_of(1, &bytes[..cut]).unwrap_or(&[])).collect();
            // A scan of cut bytes ends at the first error, if any.
            let first_err = fields.iter().position(|f| f.is_err());
            assert!(first_err.is_none_or(|i| i + 1 == fields.len()));
        }
        assert!(decode_u64(&[0xff; 11]).is_err());
        assert!(decode_u64(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]).is_err());
        assert!(
            RecordReader::parse(
                1,
                &[
                    1, 1, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
                ]
            )
            .is_err()
        );
    }
}
