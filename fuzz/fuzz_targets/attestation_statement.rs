#![no_main]
//! Whole attestation statements (CBOR) through every format verifier and the trust policy.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keyward::webauthn::attestation::fuzzing::attestation_statement(data);
});
