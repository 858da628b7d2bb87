//! The same ES256 assertion verified by keyward and by webauthn-rs-core in one criterion run.
//!
//! webauthn-rs-core issues both challenges (registration and authentication) through its own
//! API; a software P-256 authenticator (ring, keyward's `SoftAuthenticator`) signs them; the
//! resulting browser JSON text is verified by both libraries, each from text to verdict.
//!
//! Rows: keyward on ring, on the pure-Rust `p256` crate and on its per-credential tables
//! (`fast-p256`, repeat credential), and webauthn-rs-core (OpenSSL).
//!
//! Run from the repository root:
//! `cargo bench --manifest-path benches/peer/Cargo.toml`
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::store::MemoryStore;
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, AuthenticationState, ParsedCredential, RegistrationRequest,
    RelyingParty, RelyingPartyConfig, SignatureBackend, UserEntity, alg, verify_assertion_json,
    verify_registration,
};
use url::Url;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::proto::{PublicKeyCredential, RegisterPublicKeyCredential};

const ORIGIN: &str = "https://example.com";
const USER_ID: [u8; 16] = *b"peer-bench-user1";

struct Fixture {
    peer: WebauthnCore,
    peer_state: webauthn_rs_core::proto::AuthenticationState,
    keyward_config: RelyingPartyConfig,
    keyward_state: AuthenticationState,
    keyward_credential: ParsedCredential,
    /// The browser's `AuthenticationResponseJSON` text, verified by both.
    json: String,
}

fn fixture(backend: SignatureBackend) -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let peer = WebauthnCore::new_unsafe_experts_only(
        "Example",
        "example.com",
        vec![Url::parse(ORIGIN).expect("url")],
        Duration::from_secs(300),
        None,
        None,
    );
    let keyward_config = RelyingPartyConfig::new("example.com", "Example", ORIGIN)
        .expect("config")
        .signature_backend(backend);
    // Only used to shape the browser options around webauthn-rs-core's challenges.
    let shaper = RelyingParty::new(keyward_config.clone(), Arc::new(MemoryStore::new()));
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).expect("authenticator");
    let user = UserEntity::new(USER_ID, "alice@example.com", "Alice").expect("user");

    // Registration: webauthn-rs-core's challenge, signed by the software authenticator, accepted
    // by both libraries.
    let builder = peer
        .new_challenge_register_builder(&USER_ID, "alice@example.com", "Alice")
        .expect("builder");
    let (peer_options, peer_reg_state) = peer
        .generate_challenge_register(builder)
        .expect("challenge");
    let challenge = peer_options.public_key.challenge.as_slice().to_vec();
    let (options, keyward_reg_state) = rt
        .block_on(
            shaper.start_registration_with_challenge(RegistrationRequest::new(user), challenge),
        )
        .expect("options");
    let registration = auth.register(&options).expect("register");
    let registration_json = serde_json::to_string(&registration).expect("json");
    let peer_registration: RegisterPublicKeyCredential =
        serde_json::from_str(&registration_json).expect("webauthn-rs registration json");
    let peer_credential = peer
        .register_credential(&peer_registration, &peer_reg_state, None)
        .expect("webauthn-rs-core accepts the registration");
    let keyward_credential = verify_registration(
        &keyward_config,
        &keyward_reg_state,
        &registration,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    )
    .expect("keyward accepts the registration");
    let keyward_credential = ParsedCredential::new(keyward_credential).expect("credential");

    // Authentication: webauthn-rs-core's challenge again.
    let builder = peer
        .new_challenge_authenticate_builder(vec![peer_credential], None)
        .expect("builder");
    let (peer_options, peer_state) = peer
        .generate_challenge_authenticate(builder)
        .expect("challenge");
    let challenge = peer_options.public_key.challenge.as_slice().to_vec();
    let (options, keyward_state) = rt
        .block_on(shaper.start_authentication_with_challenge(
            AuthenticationRequest::for_user(USER_ID.to_vec()),
            challenge,
        ))
        .expect("options");
    let assertion = auth.authenticate(&options).expect("authenticate");
    let json = serde_json::to_string(&assertion).expect("json");

    let f = Fixture {
        peer,
        peer_state,
        keyward_config,
        keyward_state,
        keyward_credential,
        json,
    };
    // Both must accept, or the benchmark would time an early rejection.
    peer_verify(&f);
    keyward_verify(&f);
    f
}

fn peer_verify(f: &Fixture) {
    let response: PublicKeyCredential = serde_json::from_str(black_box(&f.json)).expect("json");
    f.peer
        .authenticate_credential(&response, &f.peer_state)
        .expect("webauthn-rs-core accepts");
}

fn keyward_verify(f: &Fixture) {
    verify_assertion_json(
        &f.keyward_config,
        &f.keyward_state,
        &f.keyward_credential,
        black_box(&f.json),
    )
    .expect("keyward accepts");
}

fn bench_peers(c: &mut Criterion) {
    let mut g = c.benchmark_group("peer_es256_assertion");
    let f = fixture(SignatureBackend::Ring);
    g.bench_function("keyward_ring", |b| b.iter(|| keyward_verify(&f)));
    g.bench_function("webauthn-rs-core", |b| b.iter(|| peer_verify(&f)));
    let f = fixture(SignatureBackend::P256);
    g.bench_function("keyward_p256", |b| b.iter(|| keyward_verify(&f)));
    // The per-credential table (feature fast-p256): a returning credential, table already built
    // and kept with the decoded credential (the first verification below builds it).
    let f = fixture(SignatureBackend::Precomputed);
    keyward_verify(&f);
    g.bench_function("keyward_precomputed", |b| b.iter(|| keyward_verify(&f)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_peers
}
criterion_main!(benches);
