//! The authenticator data parser (flags, counter, attested credential data, COSE key, extensions).
#![no_main]

use keyward::webauthn::AuthenticatorData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ad) = AuthenticatorData::parse(data, 8192) {
        assert_eq!(ad.raw(), data);
        assert_eq!(ad.rp_id_hash().len(), 32);
        if let Some(cred) = ad.attested_credential() {
            assert!(!cred.credential_id().is_empty() && cred.credential_id().len() <= 1023);
        }
    }
});
