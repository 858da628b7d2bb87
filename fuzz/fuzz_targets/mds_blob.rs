#![no_main]
//! FIDO MDS3 BLOBs (compact JWS) from untrusted bytes, checked against a fixed root.
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use keyward::webauthn::attestation::{MetadataBlob, TrustAnchor};
use libfuzzer_sys::fuzz_target;

/// The Yubico U2F root from the test vectors, as an arbitrary but real root.
fn root() -> &'static TrustAnchor {
    static ROOT: OnceLock<TrustAnchor> = OnceLock::new();
    ROOT.get_or_init(|| {
        let text = include_str!("../../tests/vectors/webauthn/registration-yubikey5-fido-u2f.json");
        let start = text.find("-----BEGIN CERTIFICATE-----").unwrap();
        let end = text.find("-----END CERTIFICATE-----").unwrap() + 25;
        let pem = text[start..end].replace("\\n", "\n");
        TrustAnchor::from_pem(&pem).unwrap().remove(0)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = MetadataBlob::from_jwt(data, root(), UNIX_EPOCH + Duration::from_secs(1_795_000_000));
});
