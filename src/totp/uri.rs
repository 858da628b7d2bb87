//! The `otpauth://` key URI authenticator apps read (Google Authenticator's "Key Uri Format",
//! also what Twilio Verify and pyotp produce), and its QR code as SVG.

use std::fmt::Write as _;

use super::{TotpAlgorithm, TotpParams};
use crate::secret::Secret;

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=…&digits=…&period=…`, every
/// parameter written even at its default (apps that ignore `algorithm`, `digits` or `period`
/// then at least show something the user can report). `secret_b32` is the unpadded base32
/// secret. The result holds the secret, so it is a [`Secret`].
///
/// ```
/// use keyward::Secret;
/// use keyward::totp::{TotpParams, totp_uri};
/// let uri = totp_uri("test-issuer", "John’s Account Name", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", &TotpParams::default());
/// assert_eq!(
///     uri.expose_str().unwrap(),
///     "otpauth://totp/test-issuer:John%E2%80%99s%20Account%20Name?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=test-issuer&algorithm=SHA1&digits=6&period=30",
/// );
/// ```
pub fn totp_uri(issuer: &str, account: &str, secret_b32: &str, params: &TotpParams) -> Secret {
    let mut uri = String::from("otpauth://totp/");
    write_label_and_secret(&mut uri, issuer, account, secret_b32);
    let _ = write!(
        uri,
        "&algorithm={}&digits={}&period={}",
        params.algorithm.uri_name(),
        params.digits,
        params.period
    );
    Secret::from(uri)
}

/// `otpauth://hotp/{issuer}:{account}?secret=…&issuer=…&algorithm=…&digits=…&counter=…` for a
/// counter-based (RFC 4226) token starting at `counter`.
pub fn hotp_uri(
    issuer: &str,
    account: &str,
    secret_b32: &str,
    algorithm: TotpAlgorithm,
    digits: u8,
    counter: u64,
) -> Secret {
    let mut uri = String::from("otpauth://hotp/");
    write_label_and_secret(&mut uri, issuer, account, secret_b32);
    let _ = write!(
        uri,
        "&algorithm={}&digits={digits}&counter={counter}",
        algorithm.uri_name()
    );
    Secret::from(uri)
}

fn write_label_and_secret(uri: &mut String, issuer: &str, account: &str, secret_b32: &str) {
    if !issuer.is_empty() {
        encode(uri, issuer);
        uri.push(':');
    }
    encode(uri, account);
    uri.push_str("?secret=");
    uri.push_str(secret_b32);
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        encode(uri, issuer);
    }
}

/// Renders `uri` as a QR code in SVG (error correction level M, 8 px per module, the standard
/// 4-module quiet zone), black on white. The SVG encodes the secret: treat it like one.
#[cfg(feature = "qr")]
pub fn qr_svg(uri: &Secret) -> crate::Result<Secret> {
    use qrcode::render::svg;
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(uri.expose(), EcLevel::M)
        .map_err(|_| crate::Error::invalid_input("the uri is too long for a qr code"))?;
    let image = code
        .render::<svg::Color<'_>>()
        .module_dimensions(8, 8)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    Ok(Secret::from(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_issuers_are_percent_encoded() {
        let params = TotpParams {
            algorithm: TotpAlgorithm::Sha512,
            digits: 8,
            period: 60,
            skew: 1,
        };
        let uri = totp_uri("Acme & Co", "alice@example.com", "ABCD", &params);
        assert_eq!(
            uri.expose_str().unwrap(),
            "otpauth://totp/Acme%20%26%20Co:alice%40example.com?secret=ABCD&issuer=Acme%20%26%20Co&algorithm=SHA512&digits=8&period=60"
        );
        let uri = totp_uri("", "alice", "ABCD", &TotpParams::default());
        assert_eq!(
            uri.expose_str().unwrap(),
            "otpauth://totp/alice?secret=ABCD&algorithm=SHA1&digits=6&period=30"
        );
        let uri = hotp_uri("Acme", "bob", "ABCD", TotpAlgorithm::Sha1, 6, 7);
        assert_eq!(
            uri.expose_str().unwrap(),
            "otpauth://hotp/Acme:bob?secret=ABCD&issuer=Acme&algorithm=SHA1&digits=6&counter=7"
        );
    }
}
