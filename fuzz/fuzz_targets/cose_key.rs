//! The COSE_Key decoder; whatever decodes must survive a verification attempt.
#![no_main]

use keyward::webauthn::{CredentialPublicKey, SignatureBackend};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = CredentialPublicKey::from_cose(data) {
        let _ = key.verify(SignatureBackend::Ring, b"message", &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
        let _ = key.verify(SignatureBackend::P256, b"message", data);
    }
});
