#![no_main]
//! TPM 2.0 `TPMT_PUBLIC` (pubArea) and `TPMS_ATTEST` (certInfo) decoders.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keyward::webauthn::attestation::fuzzing::tpm_structures(data);
});
