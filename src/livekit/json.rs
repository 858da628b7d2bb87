//! JSON exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it (what PyJWT and
//! LiveKit's Python SDK sign): compact, keys in insertion order, every character outside
//! printable ASCII escaped as lowercase `\uXXXX` (UTF-16 surrogate pairs beyond the BMP).

use std::io;

use serde::Serialize;

use crate::error::{Error, Result};

struct PythonAscii;

impl serde_json::ser::Formatter for PythonAscii {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                let mut buf = [0u8; 1];
                writer.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Serializes `value` as Python's compact, ASCII-only `json.dumps` would.
pub(crate) fn to_python_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonAscii);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::invalid_input(format!("cannot encode token claims: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_python() {
        let s = "é 😀 \u{7f} \u{1} \n\t\"\\ /";
        let out = to_python_json(&s).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#""\u00e9 \ud83d\ude00 \u007f \u0001 \n\t\"\\ /""#
        );
    }
}
