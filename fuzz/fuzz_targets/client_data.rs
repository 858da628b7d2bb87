//! The clientDataJSON parser and challenge comparison.
#![no_main]

use keyward::webauthn::ClientData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cd) = ClientData::parse(data, 4096) {
        let _ = cd.challenge_matches(&[0u8; 32]);
        let _ = (cd.kind(), cd.origin(), cd.cross_origin(), cd.top_origin());
    }
});
