//! Fuzzes the opening of SSKS 2-man-rule blobs (untrusted bytes from the key-storage server):
//! `cargo fuzz run ssks_blob_open` from the repository root.
//!
//! Raw-key mode only: the free-form mode runs scrypt (N = 16384) per input, far too slow to
//! fuzz, and differs from the raw mode only by the salt split before the same `open`.

#![no_main]

use keyward::keysplit::TwoManRuleKey;
use keyward::keysplit::crypto::{self, SymKey};
use libfuzzer_sys::fuzz_target;

/// base64 of 64 bytes 0x00..0x3f.
const RAW_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

fuzz_target!(|data: &[u8]| {
    let Ok(key) = TwoManRuleKey::raw(RAW_KEY) else {
        return;
    };
    // Bytes as a decoded blob, and as the `data_b64` text SSKS answers with.
    assert!(crypto::open_identity_bytes(&key, "app", "user", data).is_err());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crypto::open_identity(&key, "app", "user", text);
    }
    let sym = SymKey::from_bytes([0x5a; 64]);
    assert!(crypto::open(&sym, data).is_err());
});
