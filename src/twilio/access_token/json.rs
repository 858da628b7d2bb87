//! JSON written exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it, and an
//! ordered JSON value for grant contents.
//!
//! Twilio's Python helper (through PyJWT) serializes with `ensure_ascii=True`: every character
//! outside printable ASCII (space to `~`) becomes `\uXXXX` with lowercase hex, characters above
//! U+FFFF become a surrogate pair, and `"`, `\`, backspace, form feed, newline, carriage return
//! and tab use their short escapes. DEL (U+007F) is escaped too. We write the JSON ourselves, key
//! by key, so the bytes match for every input.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};

/// Deepest nesting accepted in a grant's free-form JSON (player grant, voice parameters).
pub(crate) const MAX_DEPTH: usize = 32;

/// A JSON value whose objects keep their keys in order, as a Python `dict` does.
///
/// Used for the free-form parts of grants (the player grant, voice outgoing parameters). Numbers
/// are integers only: Python writes floats with its own `repr`, which keyward does not
/// reproduce, and no Twilio grant uses them.
///
/// ```
/// use keyward::video::twilio::JsonValue;
/// let v = JsonValue::object([("playbackUrl", JsonValue::from("https://example.com/x")), ("n", 3.into())]);
/// assert_eq!(v.to_python_json(), r#"{"playbackUrl":"https://example.com/x","n":3}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonValue {
    /// `null` (Python `None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object, keys in insertion order. Keys must be unique.
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// An object from key/value pairs, in the given order.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, JsonValue)>) -> JsonValue {
        JsonValue::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value as Python's `json.dumps(value, separators=(",", ":"))` writes it.
    pub fn to_python_json(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self);
        out
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsonValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Checks what the writer relies on: unique keys in every object, nesting at most
    /// [`MAX_DEPTH`] deep.
    pub(crate) fn check(&self, what: &'static str) -> Result<()> {
        self.check_depth(what, 0)
    }

    fn check_depth(&self, what: &'static str, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid_input(format!(
                "{what} is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        match self {
            JsonValue::Array(items) => items
                .iter()
                .try_for_each(|v| v.check_depth(what, depth + 1)),
            JsonValue::Object(pairs) => {
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if pairs.iter().take(i).any(|(k, _)| k == key) {
                        return Err(Error::invalid_input(format!("{what} has a duplicate key")));
                    }
                    value.check_depth(what, depth + 1)?;
                }
                Ok(())
            }
            JsonValue::Null | JsonValue::Bool(_) | JsonValue::Int(_) | JsonValue::String(_) => {
                Ok(())
            }
        }
    }
}

impl From<&str> for JsonValue {
    fn from(s: &str) -> Self {
        JsonValue::String(s.to_owned())
    }
}

impl From<String> for JsonValue {
    fn from(s: String) -> Self {
        JsonValue::String(s)
    }
}

impl From<bool> for JsonValue {
    fn from(b: bool) -> Self {
        JsonValue::Bool(b)
    }
}

impl From<i64> for JsonValue {
    fn from(n: i64) -> Self {
        JsonValue::Int(n)
    }
}

impl From<i32> for JsonValue {
    fn from(n: i32) -> Self {
        JsonValue::Int(i64::from(n))
    }
}

/// Appends `s` as a JSON string literal, escaped as Python's `ensure_ascii` encoder does.
///
/// Runs of printable ASCII that need no escape are copied as whole slices; only the characters
/// between them are looked at one by one (identities and room names are mostly such runs).
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut rest = s;
    while let Some(at) = rest
        .bytes()
        .position(|b| !matches!(b, b' '..=b'~') || b == b'"' || b == b'\\')
    {
        let (plain, tail) = rest.split_at(at);
        out.push_str(plain);
        let mut chars = tail.chars();
        let Some(c) = chars.next() else { break };
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u_escape(out, *unit);
                }
            }
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// Appends the decimal digits of `value` (no allocation, unlike `to_string`).
pub(crate) fn push_uint(out: &mut String, value: u64) {
    out.push_str(crate::decimal::text(value, &mut [0u8; 20]));
}

fn push_u_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12u16, 8, 4, 0] {
        let nibble = usize::from((unit >> shift) & 0xf);
        out.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
    }
}

/// Appends `value` as compact JSON (objects in insertion order).
pub(crate) fn write_value(out: &mut String, value: &JsonValue) {
    match value {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(true) => out.push_str("true"),
        JsonValue::Bool(false) => out.push_str("false"),
        JsonValue::Int(n) => {
            if *n < 0 {
                out.push('-');
            }
            push_uint(out, n.unsigned_abs());
        }
        JsonValue::String(s) => write_str(out, s),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        JsonValue::Object(pairs) => {
            let mut obj = ObjectWriter::new(out);
            for (key, value) in pairs {
                obj.value(key, value);
            }
            obj.end();
        }
    }
}

/// Writes one JSON object key by key, in the order the calls are made.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    /// Writes `"key":` and returns the output for the value.
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(':');
        self.out
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        write_str(out, value);
    }

    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    pub(crate) fn uint(&mut self, key: &str, value: u64) {
        let out = self.key(key);
        push_uint(out, value);
    }

    pub(crate) fn value(&mut self, key: &str, value: &JsonValue) {
        let out = self.key(key);
        write_value(out, value);
    }

    pub(crate) fn end(self) {
        self.out.push('}');
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = JsonValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value with integer numbers")
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<JsonValue, E> {
        Ok(JsonValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<JsonValue, E> {
        Ok(JsonValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<JsonValue, E> {
        i64::try_from(v)
            .map(JsonValue::Int)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> std::result::Result<JsonValue, E> {
        Err(E::custom("non-integer numbers are not supported"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<JsonValue, E> {
        Ok(JsonValue::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<JsonValue, E> {
        Ok(JsonValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<JsonValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonValue, A::Error> {
        let mut pairs: Vec<(String, JsonValue)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value()?;
            pairs.push((key, value));
        }
        Ok(JsonValue::Object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, input);
        out
    }

    #[test]
    fn escapes_like_python_ensure_ascii() {
        // Expected values from CPython 3.11: json.dumps(x).
        assert_eq!(s("abc ~"), r#""abc ~""#);
        assert_eq!(s("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{0}\u{1f}\u{7f}"), r#""\u0000\u001f\u007f""#);
        assert_eq!(s("Zoë"), r#""Zo\u00eb""#);
        assert_eq!(s("会議"), r#""\u4f1a\u8b70""#);
        assert_eq!(s("🎥"), r#""\ud83c\udfa5""#);
        assert_eq!(s("\u{ffff}\u{10000}"), r#""\uffff\ud800\udc00""#);
    }

    #[test]
    fn values_keep_order() {
        let v = JsonValue::object([
            ("z", JsonValue::Null),
            ("a", JsonValue::Array(vec![true.into(), (-5).into()])),
        ]);
        assert_eq!(v.to_python_json(), r#"{"z":null,"a":[true,-5]}"#);
        let back: JsonValue = serde_json::from_str(&v.to_python_json()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn check_refuses_duplicates_and_depth() {
        let dup = JsonValue::object([("a", JsonValue::Null), ("a", JsonValue::Null)]);
        assert!(dup.check("player grant").is_err());
        let mut deep = JsonValue::Null;
        for _ in 0..MAX_DEPTH {
            deep = JsonValue::Array(vec![deep]);
        }
        assert!(deep.check("player grant").is_ok());
        deep = JsonValue::Array(vec![deep]);
        assert!(deep.check("player grant").is_err());
    }

    #[test]
    fn decoding_refuses_duplicates_and_floats() {
        assert!(serde_json::from_str::<JsonValue>(r#"{"a":1,"a":2}"#).is_err());
        assert!(serde_json::from_str::<JsonValue>("1.5").is_err());
        assert!(serde_json::from_str::<JsonValue>("18446744073709551615").is_err());
    }
}
