//! The attestation object CBOR decoder, and the authenticator data inside whatever decodes.
#![no_main]

use keyward::webauthn::AttestationObject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = AttestationObject::parse(data, 64 * 1024) {
        let _ = obj.format();
        let _ = obj.authenticator_data(8192);
    }
});
