//! Fixtures shared by `state.rs` (criterion) and `counts.rs` (callgrind).
#![allow(dead_code)]

use keyward::store::{Key, MemoryStore, MemoryStoreLimits, StateStore};
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, RegistrationRequest, RelyingParty, RelyingPartyConfig, SignatureBackend,
    UserEntity, alg,
};
use keyward::{AuthenticatorVerifier, Env, ManualClock};
use std::sync::Arc;

pub(crate) const ORIGIN: &str = "https://example.com";

/// Counts the operations that reach the store (each is one round trip on the shared engines:
/// one command or script, one statement). Over any pointer to a store: `Arc<MemoryStore>` keeps
/// the memory benches on static dispatch, `Arc<dyn StateStore>` serves the engines bench.
pub(crate) use keyward::testing::RecordingStore as Counting;

/// The benches' reading of a [`Counting`] store.
pub(crate) trait CountingExt {
    /// (reads, writes) so far.
    fn snapshot(&self) -> (usize, usize);
    /// Reads plus writes so far.
    fn total(&self) -> usize;
}

impl<S> CountingExt for Counting<S> {
    fn snapshot(&self) -> (usize, usize) {
        let trips = self.round_trips();
        (trips.reads, trips.writes)
    }
    fn total(&self) -> usize {
        self.round_trips().total()
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

pub(crate) struct Passkey {
    pub(crate) rp: RelyingParty,
    pub(crate) auth: SoftAuthenticator,
    pub(crate) user_id: Vec<u8>,
    pub(crate) store: Arc<Counting>,
    pub(crate) clock: Arc<ManualClock>,
}

impl Passkey {
    /// The registered credential's id, as an assertion carries it.
    pub(crate) fn credential_id(&self, rt: &tokio::runtime::Runtime) -> Vec<u8> {
        rt.block_on(async {
            let (options, _) = self
                .rp
                .start_authentication(AuthenticationRequest::for_user(self.user_id.clone()))
                .await
                .expect("start");
            self.auth
                .authenticate(&options)
                .expect("sign")
                .raw_id
                .as_slice()
                .to_vec()
        })
    }
}

pub(crate) fn user(n: u64) -> UserEntity {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    UserEntity::new(id, format!("user{n}@example.com"), format!("User {n}")).expect("user")
}

pub(crate) fn passkey(rt: &tokio::runtime::Runtime, counter_step: u32) -> Passkey {
    passkey_on(rt, counter_step, SignatureBackend::default())
}

/// A registered ES256 credential on a relying party verifying with `backend`.
pub(crate) fn passkey_on(
    rt: &tokio::runtime::Runtime,
    counter_step: u32,
    backend: SignatureBackend,
) -> Passkey {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let env = Env::system().with_clock(clock.clone());
    let limits = MemoryStoreLimits::new().max_durable_entries(8_000_000);
    let store = Arc::new(Counting::new(Arc::new(
        MemoryStore::new().env(env.clone()).limits(limits),
    )));
    let config = RelyingPartyConfig::new("example.com", "Example", ORIGIN)
        .expect("config")
        .signature_backend(backend);
    let rp = RelyingParty::new(config, store.clone()).env(env);
    let auth = SoftAuthenticator::new(alg::ES256, ORIGIN).expect("authenticator");
    auth.set_knobs(|k| k.counter_step = counter_step);
    let credential = rt.block_on(async {
        let (options, state) = rp
            .start_registration(RegistrationRequest::new(user(1)))
            .await
            .expect("start registration");
        rp.finish_registration(state, &auth.register(&options).expect("register"))
            .await
            .expect("finish registration")
    });
    Passkey {
        rp,
        auth,
        user_id: credential.user_id,
        store,
        clock,
    }
}

/// Resident set size in bytes.
pub(crate) fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Fills the store up to `n` credentials: copies of the real user record and credential hint
/// (same bytes, other keys), so every stored credential has the size of a real one.
pub(crate) fn pad(
    rt: &tokio::runtime::Runtime,
    store: &dyn StateStore,
    user_id: &[u8],
    credential_id: &[u8],
    n: u64,
) {
    rt.block_on(async {
        let record = store
            .get(&Key::durable("webauthn").part("user").bytes(user_id))
            .await
            .expect("get")
            .expect("the user's record")
            .value;
        let hint = store
            .get(&Key::durable("webauthn").part("cred").bytes(credential_id))
            .await
            .expect("get")
            .expect("the credential's hint")
            .value;
        for i in 2..=n {
            let mut handle = [0u8; 16];
            handle[..8].copy_from_slice(&i.to_be_bytes());
            let mut id = [0x5au8; 32];
            id[..8].copy_from_slice(&i.to_be_bytes());
            store
                .put(
                    &Key::durable("webauthn").part("user").bytes(&handle),
                    record.clone(),
                    None,
                )
                .await
                .expect("put record");
            store
                .put(
                    &Key::durable("webauthn").part("cred").bytes(&id),
                    hint.clone(),
                    None,
                )
                .await
                .expect("put hint");
        }
    });
}
