//! Fuzzes the Twilio access token verifier: `cargo +nightly fuzz run video_token_decode`.
//!
//! The first byte picks the mode: even → the rest is the token text as given (exercises the
//! size, shape, base64 and signature checks); odd → the rest is split into a header and a
//! payload that are signed with the verifier's key, so the JSON and claim checks are reached.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward::twilio::TwilioCredentials;
use keyward::video::twilio::AccessTokenVerifier;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"keyward-fuzz-secret-0123456789ab";

fuzz_target!(|data: &[u8]| {
    let Ok(key) = TwilioCredentials::api_key(
        "AC0123456789abcdef0123456789abcdef",
        "SKfedcba9876543210fedcba9876543210",
        SECRET,
    ) else {
        return;
    };
    let Ok(verifier) = AccessTokenVerifier::new(key) else {
        return;
    };
    let verifier = verifier.leeway(Duration::from_secs(60));
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        assert!(verifier.verify_at(&text, now).is_err() || text.split('.').count() == 3);
    } else {
        let split = usize::from(mode) % (rest.len() + 1);
        let (header, payload) = rest.split_at(split);
        let mut signed = URL_SAFE_NO_PAD.encode(header);
        signed.push('.');
        signed.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET),
            signed.as_bytes(),
        );
        let jwt = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        let _ = verifier.verify_at(&jwt, now);
    }
});
