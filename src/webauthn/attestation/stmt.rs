//! Reading the members of an attestation statement: a CBOR map with text keys.

use ciborium::Value;

use crate::webauthn::WebAuthnFailure;

/// Most certificates a chain in a statement may carry (leaf included).
pub(crate) const MAX_CHAIN_LEN: usize = 8;
/// Largest DER certificate accepted in a statement.
pub(crate) const MAX_CERT_LEN: usize = 8 * 1024;

/// The value of `key` in the map `stmt`, if present. Fails if `stmt` is not a map or the key
/// appears twice.
pub(crate) fn member<'a>(stmt: &'a Value, key: &str) -> Result<Option<&'a Value>, WebAuthnFailure> {
    let Value::Map(entries) = stmt else {
        return Err(WebAuthnFailure::InvalidAttestation(
            "attestation statement is not a map",
        ));
    };
    let mut found = None;
    for (k, v) in entries {
        if matches!(k, Value::Text(t) if t == key) {
            if found.is_some() {
                return Err(WebAuthnFailure::InvalidAttestation(
                    "duplicate member in attestation statement",
                ));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// The `alg` member as a COSE algorithm identifier.
pub(crate) fn alg(stmt: &Value) -> Result<i64, WebAuthnFailure> {
    match member(stmt, "alg")? {
        Some(Value::Integer(i)) => i64::try_from(i128::from(*i))
            .map_err(|_| WebAuthnFailure::InvalidAttestation("attestation alg out of range")),
        Some(_) => Err(WebAuthnFailure::InvalidAttestation(
            "attestation alg is not an integer",
        )),
        None => Err(WebAuthnFailure::InvalidAttestation(
            "attestation alg missing",
        )),
    }
}

/// A required byte-string member.
pub(crate) fn bytes<'a>(
    stmt: &'a Value,
    key: &str,
    missing: &'static str,
) -> Result<&'a [u8], WebAuthnFailure> {
    match member(stmt, key)? {
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(WebAuthnFailure::InvalidAttestation(missing)),
    }
}

/// A required text member.
pub(crate) fn text<'a>(
    stmt: &'a Value,
    key: &str,
    missing: &'static str,
) -> Result<&'a str, WebAuthnFailure> {
    match member(stmt, key)? {
        Some(Value::Text(t)) => Ok(t),
        _ => Err(WebAuthnFailure::InvalidAttestation(missing)),
    }
}

/// The `x5c` member: a non-empty array of DER certificates, leaf first. `None` when absent.
pub(crate) fn x5c(stmt: &Value) -> Result<Option<Vec<&[u8]>>, WebAuthnFailure> {
    let Some(value) = member(stmt, "x5c")? else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(WebAuthnFailure::InvalidAttestation("x5c is not an array"));
    };
    if items.is_empty() {
        return Err(WebAuthnFailure::InvalidAttestation("x5c is empty"));
    }
    if items.len() > MAX_CHAIN_LEN {
        return Err(WebAuthnFailure::TooLarge("x5c"));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Bytes(der) if der.len() <= MAX_CERT_LEN => Ok(der.as_slice()),
            Value::Bytes(_) => Err(WebAuthnFailure::TooLarge("x5c certificate")),
            _ => Err(WebAuthnFailure::InvalidAttestation(
                "x5c entry is not a byte string",
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `authenticatorData || clientDataHash`, the message most formats sign.
pub(crate) fn signed_data(auth_data: &[u8], client_data_hash: &[u8; 32]) -> Vec<u8> {
    let mut data = Vec::with_capacity(auth_data.len() + 32);
    data.extend_from_slice(auth_data);
    data.extend_from_slice(client_data_hash);
    data
}

/// Copies a chain of borrowed DER certificates.
pub(crate) fn owned_chain(chain: &[&[u8]]) -> Vec<Vec<u8>> {
    chain.iter().map(|c| c.to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::Text(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn reads_members_and_refuses_duplicates() {
        let stmt = map(vec![
            ("alg", Value::Integer((-7).into())),
            ("sig", Value::Bytes(vec![1, 2])),
        ]);
        assert_eq!(alg(&stmt), Ok(-7));
        assert_eq!(bytes(&stmt, "sig", "sig missing"), Ok(&[1u8, 2][..]));
        assert_eq!(x5c(&stmt), Ok(None));
        let dup = map(vec![
            ("alg", Value::Integer((-7).into())),
            ("alg", Value::Integer((-8).into())),
        ]);
        assert!(alg(&dup).is_err());
        assert!(alg(&Value::Array(vec![])).is_err());
    }

    #[test]
    fn x5c_must_be_a_bounded_non_empty_array_of_bytes() {
        assert!(x5c(&map(vec![("x5c", Value::Array(vec![]))])).is_err());
        assert!(
            x5c(&map(vec![(
                "x5c",
                Value::Array(vec![Value::Text("a".into())])
            )]))
            .is_err()
        );
        let many = Value::Array(vec![Value::Bytes(vec![0]); MAX_CHAIN_LEN + 1]);
        assert_eq!(
            x5c(&map(vec![("x5c", many)])),
            Err(WebAuthnFailure::TooLarge("x5c"))
        );
        let one = Value::Array(vec![Value::Bytes(vec![1, 2, 3])]);
        assert_eq!(
            x5c(&map(vec![("x5c", one)])),
            Ok(Some(vec![&[1u8, 2, 3][..]]))
        );
    }
}
