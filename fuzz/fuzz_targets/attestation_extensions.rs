#![no_main]
//! X.509 extension contents (AAGUID, Apple nonce, Android key description), certificates and
//! COSE keys from untrusted bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keyward::webauthn::attestation::fuzzing::extension_decoders(data);
});
