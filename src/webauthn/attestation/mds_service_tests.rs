//! The MDS3 fetcher against a local HTTP server (axum on a loopback port) serving BLOBs signed
//! by a test FIDO root built with rcgen.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rcgen::BasicConstraints;

use super::super::mds_tests::{AAGUID, Ca, Registration, blob, now, payload, root, vendor_leaf};
use super::*;
use crate::Env;
use crate::clock::ManualClock;
use crate::store::MemoryStore;
use crate::webauthn::WebAuthnFailure;
use crate::webauthn::attestation::AttestationPolicy;

/// What the test server answers on `/`.
#[derive(Clone)]
enum Answer {
    Blob(Vec<u8>),
    Status(u16),
    Redirect,
}

#[derive(Clone)]
struct Server {
    answer: Arc<Mutex<Answer>>,
    hits: Arc<AtomicUsize>,
    url: String,
}

impl Server {
    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(state: State<Server>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let answer = state.answer.lock().unwrap().clone();
    match answer {
        Answer::Blob(jwt) => ([(header::CONTENT_TYPE, "application/jwt")], jwt).into_response(),
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Redirect => (
            StatusCode::FOUND,
            [(header::LOCATION, "http://127.0.0.1:9/elsewhere")],
        )
            .into_response(),
    }
}

async fn start(answer: Answer) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = Server {
        answer: Arc::new(Mutex::new(answer)),
        hits: Arc::new(AtomicUsize::new(0)),
        url: format!("http://127.0.0.1:{port}/"),
    };
    let app = axum::Router::new()
        .route("/", axum::routing::get(serve))
        .with_state(server.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    server
}

struct Fixture {
    fido: Ca,
    vendor: Ca,
    clock: Arc<ManualClock>,
    store: Arc<dyn StateStore>,
}

impl Fixture {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(now()));
        Fixture {
            fido: root("Test FIDO Root", BasicConstraints::Unconstrained),
            vendor: root("Test Vendor Root", BasicConstraints::Unconstrained),
            store: Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone()))),
            clock,
        }
    }

    /// A BLOB numbered `no`, due on `next_update`, whose test entry has `status`.
    fn jwt(&self, no: u64, next_update: &str, status: &str) -> Vec<u8> {
        let mut p = payload(&self.vendor.der, status);
        p["no"] = no.into();
        p["nextUpdate"] = next_update.into();
        blob(&self.fido, &p, (2024, 2030))
    }

    fn config(&self, server: &Server) -> MetadataServiceConfig {
        MetadataServiceConfig::new(TrustAnchor::from_der(self.fido.der.clone()).unwrap())
            .url(server.url.clone())
            // The default 1 MiB body bound would refuse the 1.5 MiB BLOB: it is not used.
            .http(HttpConfig {
                max_retries: 1,
                initial_backoff: Duration::from_millis(10),
                ..HttpConfig::default().allow_http_loopback(true)
            })
    }

    fn service(&self, server: &Server) -> MetadataService {
        MetadataService::new(self.config(server), self.store.clone())
            .unwrap()
            .env(Env::system().with_clock(self.clock.clone()))
    }
}

#[test]
fn dates_convert_to_unix_midnights() {
    assert_eq!(date_to_unix("1970-01-01"), Some(0));
    assert_eq!(date_to_unix("2026-12-01"), Some(1_796_083_200));
    assert_eq!(date_to_unix("2024-02-29"), Some(1_709_164_800));
    for bad in [
        "",
        "2026-13-01",
        "2026-1-01",
        "26-12-01",
        "2026-12-01T00",
        "abcd-ef-gh",
    ] {
        assert_eq!(date_to_unix(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn a_download_is_verified_cached_and_shared_through_the_store() {
    let f = Fixture::new();
    let server = start(Answer::Blob(f.jwt(42, "2026-12-01", "FIDO_CERTIFIED"))).await;
    let mds = f.service(&server);
    assert!(mds.current().is_none());
    assert_eq!(
        mds.refresh().await.unwrap(),
        RefreshOutcome::Downloaded { no: 42 }
    );
    assert_eq!(mds.current().unwrap().no(), 42);
    assert_eq!(server.hits(), 1);

    // A second instance on the same store starts from the cache, without the network.
    let other = f.service(&server);
    assert_eq!(other.load_cached().await.unwrap().unwrap().no(), 42);
    assert_eq!(server.hits(), 1);
    // Not due before nextUpdate: nothing fetched.
    assert_eq!(
        other.refresh_if_due().await.unwrap(),
        RefreshOutcome::NotDue { no: 42 }
    );
    assert_eq!(server.hits(), 1);

    // The first instance downloads number 43; the second picks it up from the store.
    server.set(Answer::Blob(f.jwt(43, "2026-12-15", "FIDO_CERTIFIED")));
    assert_eq!(
        mds.refresh().await.unwrap(),
        RefreshOutcome::Downloaded { no: 43 }
    );
    assert_eq!(
        other.refresh_if_due().await.unwrap(),
        RefreshOutcome::FromStore { no: 43 }
    );
    assert_eq!(server.hits(), 2);
    // The chunks of number 42 were removed.
    assert!(f.store.get(&chunk_key(42, 0)).await.unwrap().is_none());
    assert!(f.store.get(&chunk_key(43, 0)).await.unwrap().is_some());
}

#[tokio::test]
async fn older_unverifiable_and_redirected_answers_change_nothing() {
    let f = Fixture::new();
    let server = start(Answer::Blob(f.jwt(42, "2026-12-01", "FIDO_CERTIFIED"))).await;
    let mds = f.service(&server);
    mds.refresh().await.unwrap();

    // A replayed older BLOB.
    server.set(Answer::Blob(f.jwt(41, "2026-11-01", "FIDO_CERTIFIED")));
    assert_eq!(
        mds.refresh().await.unwrap(),
        RefreshOutcome::Unchanged { no: 42 }
    );

    // A BLOB signed under another root.
    let impostor = root("Impostor Root", BasicConstraints::Unconstrained);
    let p = payload(&f.vendor.der, "FIDO_CERTIFIED");
    let mut forged = p.clone();
    forged["no"] = 99.into();
    server.set(Answer::Blob(blob(&impostor, &forged, (2024, 2030))));
    let err = mds.refresh().await.unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WebAuthn(WebAuthnFailure::UntrustedAttestation(_))
    ));

    // A truncated BLOB, a redirect (never followed), a server error (retried, then reported).
    let mut truncated = f.jwt(50, "2026-12-01", "FIDO_CERTIFIED");
    truncated.truncate(truncated.len() - 10);
    server.set(Answer::Blob(truncated));
    assert!(mds.refresh().await.is_err());
    server.set(Answer::Redirect);
    assert_eq!(
        mds.refresh().await.unwrap_err().kind(),
        &ErrorKind::Protocol
    );
    let before = server.hits();
    server.set(Answer::Status(503));
    let err = mds.refresh().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Backend);
    assert_eq!(err.remote().map(|r| r.status), Some(503));
    assert_eq!(server.hits() - before, 2, "one retry");

    assert_eq!(mds.current().unwrap().no(), 42);
    let (head, _) = mds.read_head().await.unwrap().unwrap();
    assert_eq!(head.no, 42);
}

#[tokio::test]
async fn plain_http_needs_the_loopback_opt_in() {
    let f = Fixture::new();
    let server = start(Answer::Status(404)).await;
    let mut config = f.config(&server);
    config.http.allow_http_loopback = false;
    let err = MetadataService::new(config, f.store.clone()).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    let config = f.config(&server).url("http://mds.example.com/");
    let err = MetadataService::new(config, f.store.clone()).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
}

#[tokio::test]
async fn a_cached_blob_is_verified_again_when_loaded() {
    let f = Fixture::new();
    let server = start(Answer::Blob(f.jwt(42, "2026-12-01", "FIDO_CERTIFIED"))).await;
    f.service(&server).refresh().await.unwrap();

    // One byte of the cached BLOB altered in the store.
    let key = chunk_key(42, 0);
    let mut chunk = f.store.get(&key).await.unwrap().unwrap().value;
    chunk[10] ^= 1;
    f.store.put(&key, chunk, None).await.unwrap();
    let err = f.service(&server).load_cached().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Storage);
    // The damaged copy was dropped: the next download is cached again and loads.
    assert_eq!(
        f.service(&server).refresh().await.unwrap(),
        RefreshOutcome::Downloaded { no: 42 }
    );
    assert_eq!(
        f.service(&server)
            .load_cached()
            .await
            .unwrap()
            .unwrap()
            .no(),
        42
    );

    // The chain no longer valid at the clock's time (2031, past the certificates).
    let fresh = Fixture::new();
    let mds = fresh.service(&server);
    server.set(Answer::Blob(fresh.jwt(42, "2026-12-01", "FIDO_CERTIFIED")));
    mds.refresh().await.unwrap();
    fresh
        .clock
        .set(UNIX_EPOCH + Duration::from_secs(1_925_000_000));
    let err = fresh.service(&server).load_cached().await.unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WebAuthn(WebAuthnFailure::UntrustedAttestation(_))
    ));
}

#[tokio::test]
async fn a_large_blob_spans_several_chunks() {
    let f = Fixture::new();
    let mut p = payload(&f.vendor.der, "FIDO_CERTIFIED");
    // About 1.5 MiB of entries: more than one store value may hold.
    let filler: Vec<serde_json::Value> = (0..12_000u32)
        .map(|i| {
            serde_json::json!({
                "aaguid": format!("00000000-0000-0000-0000-{i:012x}"),
                "metadataStatement": {"description": "x".repeat(100)},
                "statusReports": [{"status": "FIDO_CERTIFIED"}]
            })
        })
        .collect();
    p["entries"].as_array_mut().unwrap().extend(filler);
    let jwt = blob(&f.fido, &p, (2024, 2030));
    assert!(jwt.len() > 1 << 20, "{}", jwt.len());
    // Downloaded (past HttpConfig::default()'s 1 MiB body bound, which the service lifts).
    let server = start(Answer::Blob(jwt.clone())).await;
    let mds = f.service(&server);
    assert_eq!(
        mds.refresh().await.unwrap(),
        RefreshOutcome::Downloaded { no: 42 }
    );
    assert_eq!(mds.current().unwrap().entries().len(), 12_002);
    let (head, _) = mds.read_head().await.unwrap().unwrap();
    assert!(head.chunks >= 3, "{head:?}");
    let other = f.service(&server);
    assert_eq!(
        other.load_cached().await.unwrap().unwrap().entries().len(),
        12_002
    );
}

#[tokio::test]
async fn status_reports_of_the_held_blob_apply_at_registration() {
    let f = Fixture::new();
    let server = start(Answer::Blob(f.jwt(42, "2026-12-01", "FIDO_CERTIFIED"))).await;
    let mds = f.service(&server);
    let (leaf, leaf_key) = vendor_leaf(&f.vendor);
    let registration = Registration::new(&[&leaf], &leaf_key);
    let policy = AttestationPolicy::default()
        .require_trusted(true)
        .metadata_service(&mds);
    // No BLOB held yet: no metadata root, so no trust.
    assert!(matches!(
        registration.verify(&policy),
        Err(WebAuthnFailure::UntrustedAttestation(_))
    ));
    mds.refresh().await.unwrap();
    // The same policy now trusts the vendor root the BLOB lists.
    assert!(registration.verify(&policy).is_ok());
    // The vendor's model revoked in the next BLOB: refused, without touching the policy.
    server.set(Answer::Blob(f.jwt(43, "2026-12-15", "REVOKED")));
    mds.refresh().await.unwrap();
    assert_eq!(
        registration.verify(&policy),
        Err(WebAuthnFailure::UntrustedAttestation(
            "metadata status report: REVOKED"
        ))
    );
    assert!(
        mds.current()
            .unwrap()
            .entry(&AAGUID)
            .unwrap()
            .is_compromised()
    );
}

#[tokio::test]
async fn seeded_from_a_file_then_refreshed_in_the_background_until_stopped() {
    let f = Fixture::new();
    // Number 42 is already past its nextUpdate (the clock says 2026-11-18).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob.jwt");
    std::fs::write(&path, f.jwt(42, "2026-11-01", "FIDO_CERTIFIED")).unwrap();
    let server = start(Answer::Status(500)).await;
    let config = f
        .config(&server)
        .refresh_interval(Duration::from_secs(1), Duration::from_secs(1))
        .retry_after_failure(Duration::from_secs(1));
    let mds = Arc::new(
        MetadataService::new(config, f.store.clone())
            .unwrap()
            .env(Env::system().with_clock(f.clock.clone())),
    );
    assert_eq!(mds.seed_from_file(&path).await.unwrap().no(), 42);
    assert!(
        mds.seed_from_file(dir.path().join("missing"))
            .await
            .is_err()
    );

    let mut refresher = mds.clone().spawn_refresher();
    // First round: due, the service fails; the seeded BLOB stays.
    tokio::time::timeout(Duration::from_secs(20), refresher.wait_for_rounds(1))
        .await
        .unwrap();
    assert_eq!(refresher.rounds().1, Some(ErrorKind::Backend));
    assert_eq!(mds.current().unwrap().no(), 42);
    // The service recovers: a later round installs number 43 (itself already due, so every
    // round asks the server again).
    server.set(Answer::Blob(f.jwt(43, "2026-11-10", "FIDO_CERTIFIED")));
    tokio::time::timeout(Duration::from_secs(20), refresher.wait_for_rounds(2))
        .await
        .unwrap();
    assert_eq!(refresher.rounds().1, None);
    assert_eq!(mds.current().unwrap().no(), 43);
    let hits = server.hits();
    tokio::time::timeout(Duration::from_secs(20), refresher.wait_for_rounds(3))
        .await
        .unwrap();
    assert!(server.hits() > hits, "a round while running");
    refresher.stop().await;
    let hits = server.hits();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.hits(), hits, "no request after stop");
}
