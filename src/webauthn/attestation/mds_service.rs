//! A FIDO MDS3 fetcher (feature `mds`): downloads the BLOB, verifies it against the FIDO root
//! the host supplies, caches it in the state store and refreshes it in the background.
//!
//! Store layout (durable role, shared by every instance):
//!
//! | key | value |
//! |---|---|
//! | `d:webauthn:mds:head` | JSON: serial number, `nextUpdate`, length, SHA-256 and chunk count of the cached BLOB |
//! | `d:webauthn:mds:blob:<no>:<i>` | chunk `i` (at most 512 KiB) of BLOB number `no`, as downloaded |
//!
//! The BLOB (a few megabytes) is larger than one store value may be (1 MiB), hence the chunks.
//! Chunks are written before the head, so a reader never finds a head without its chunks, and
//! a head is replaced only by a BLOB with a higher serial number (compare-and-swap). A cached
//! BLOB is verified again (signature, chain at the clock's time, SHA-256) every time it is
//! loaded: the store is never trusted with metadata.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::MetadataCell;
use super::mds::{MAX_BLOB_LEN, MetadataBlob};
use super::trust::TrustAnchor;
use crate::Env;
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::error::{Error, ErrorKind, RemoteError, Result};
use crate::http::{HttpClient, HttpConfig, Idempotency};
use crate::store::{CasOutcome, Key, StateStore, StateStoreExt, Write};

/// The FIDO Alliance's MDS3 endpoint (the BLOB itself, a signed JWT).
pub const FIDO_MDS3_URL: &str = "https://mds3.fidoalliance.org/";

/// Largest chunk of a cached BLOB in one store value.
const CHUNK_LEN: usize = 512 * 1024;

/// Where the BLOB comes from, what verifies it, and how often it is fetched.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MetadataServiceConfig {
    /// The BLOB's URL (default [`FIDO_MDS3_URL`]). `https://` only, or `http://` to a loopback
    /// host with [`HttpConfig::allow_http_loopback`]; redirects are never followed.
    pub url: String,
    /// The root the BLOB's `x5c` chain must validate to (FIDO's MDS root, "GlobalSign Root
    /// CA - R3" for the production service): download it once from the FIDO Alliance and ship
    /// it with your service.
    pub fido_root: TrustAnchor,
    /// Timeouts and retries (default: 60 s per request, 3 retries on 429 / 5xx / transport
    /// errors). Its `max_body_bytes` is ignored: the BLOB is always bounded by [`MAX_BLOB_LEN`]
    /// (a few MiB today, more than `HttpConfig::default()`'s 1 MiB).
    pub http: HttpConfig,
    /// Shortest wait between two background refreshes (default 1 hour): the wait when the BLOB
    /// is past its `nextUpdate` and the service still serves the same one.
    pub min_refresh: Duration,
    /// Longest wait between two background refreshes (default 24 hours), whatever
    /// `nextUpdate` says: status reports (a revocation) can be published before it.
    pub max_refresh: Duration,
    /// The first wait after a failed refresh (default 5 minutes), doubling with each failure up
    /// to `max_refresh`.
    pub retry_after_failure: Duration,
}

impl MetadataServiceConfig {
    /// The production service verified against `fido_root`, with the defaults above.
    pub fn new(fido_root: TrustAnchor) -> Self {
        MetadataServiceConfig {
            url: FIDO_MDS3_URL.to_owned(),
            fido_root,
            http: HttpConfig {
                request_timeout: Duration::from_secs(60),
                ..HttpConfig::default()
            },
            min_refresh: Duration::from_secs(3600),
            max_refresh: Duration::from_secs(24 * 3600),
            retry_after_failure: Duration::from_secs(300),
        }
    }

    /// Fetches from `url` instead (a mirror, or a test server).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The HTTP settings (timeouts, retries, `allow_http_loopback`); the body bound stays
    /// [`MAX_BLOB_LEN`] whatever `max_body_bytes` says.
    pub fn http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// The bounds of the background refresh interval (`min` is raised to at least 1 second,
    /// `max` to at least `min`).
    pub fn refresh_interval(mut self, min: Duration, max: Duration) -> Self {
        self.min_refresh = min.max(Duration::from_secs(1));
        self.max_refresh = max.max(self.min_refresh);
        self
    }

    /// The first wait after a failed refresh (at least 1 second).
    pub fn retry_after_failure(mut self, wait: Duration) -> Self {
        self.retry_after_failure = wait.max(Duration::from_secs(1));
        self
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// A newer BLOB was downloaded, verified, cached and installed.
    Downloaded {
        /// Its serial number.
        no: u64,
    },
    /// Another instance had cached a newer BLOB; it was verified and installed from the store.
    FromStore {
        /// Its serial number.
        no: u64,
    },
    /// Nothing newer: the service still serves (or replayed an older) BLOB than the one held.
    Unchanged {
        /// The serial number of the BLOB held.
        no: u64,
    },
    /// The BLOB held is not past its `nextUpdate` yet; nothing was fetched
    /// ([`refresh_if_due`](MetadataService::refresh_if_due) only).
    NotDue {
        /// The serial number of the BLOB held.
        no: u64,
    },
}

/// The cached BLOB's description, stored at the head key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    no: u64,
    next_update: String,
    len: usize,
    sha256: String,
    chunks: usize,
}

fn head_key() -> Key {
    Key::durable("webauthn").part("mds").part("head")
}

fn chunk_key(no: u64, index: usize) -> Key {
    Key::durable("webauthn")
        .part("mds")
        .part("blob")
        .part(&no.to_string())
        .part(&index.to_string())
}

fn hex_sha256(bytes: &[u8]) -> String {
    crate::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// `YYYY-MM-DD` as Unix seconds at 00:00 UTC; `None` when malformed.
pub(crate) fn date_to_unix(date: &str) -> Option<u64> {
    let mut parts = date.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok()?.checked_mul(86_400)
}

/// Downloads, verifies, caches and refreshes the FIDO MDS3 BLOB. Hand it to
/// [`AttestationPolicy::metadata_service`](super::AttestationPolicy::metadata_service): every
/// registration then reads the BLOB held at that moment.
///
/// ```no_run
/// # async fn wire(store: std::sync::Arc<dyn keyward::store::StateStore>) -> keyward::Result<()> {
/// use std::sync::Arc;
/// use keyward::webauthn::attestation::{
///     AttestationPolicy, MetadataService, MetadataServiceConfig, TrustAnchor,
/// };
/// let root = TrustAnchor::from_der(std::fs::read("fido-mds-root.der").unwrap())?;
/// let mds = Arc::new(MetadataService::new(MetadataServiceConfig::new(root), store)?);
/// // Start from the store (another instance's download) or a file shipped with the service,
/// // so registrations see metadata before the first download completes.
/// if mds.load_cached().await?.is_none() {
///     mds.seed_from_file("mds3-blob.jwt").await?;
/// }
/// let policy = AttestationPolicy::default().metadata_service(&mds);
/// let refresher = mds.clone().spawn_refresher();
/// // ... on shutdown:
/// refresher.stop().await;
/// # Ok(()) }
/// ```
pub struct MetadataService {
    config: MetadataServiceConfig,
    client: HttpClient,
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    cell: Arc<MetadataCell>,
}

impl fmt::Debug for MetadataService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataService")
            .field("url", &self.config.url)
            .field("no", &self.current().map(|b| b.no()))
            .finish_non_exhaustive()
    }
}

impl MetadataService {
    /// A service caching in `store` (its durable role), on [`Env::system`].
    ///
    /// Fails with [`ErrorKind::Config`] when the URL is not `https://` (or `http://` to a
    /// loopback host with [`HttpConfig::allow_http_loopback`]).
    pub fn new(config: MetadataServiceConfig, store: Arc<dyn StateStore>) -> Result<Self> {
        let mut http = config.http.clone();
        http.max_body_bytes = MAX_BLOB_LEN;
        let client = HttpClient::new(http, &config.url)?;
        Ok(MetadataService {
            config,
            client,
            store,
            clock: Arc::new(SystemClock),
            cell: Arc::new(MetadataCell::default()),
        })
    }

    /// Uses this environment's clock to check the BLOB's certificate chain and its
    /// `nextUpdate` (the service draws no randomness of its own).
    pub fn env(mut self, env: Env) -> Self {
        self.clock = env.clock().clone();
        self
    }

    pub(crate) fn cell(&self) -> Arc<MetadataCell> {
        self.cell.clone()
    }

    /// The BLOB registrations see now, if any.
    pub fn current(&self) -> Option<Arc<MetadataBlob>> {
        self.cell.get()
    }

    fn verify(&self, jwt: &[u8]) -> Result<MetadataBlob> {
        MetadataBlob::from_jwt(jwt, &self.config.fido_root, self.clock.now())
    }

    /// Verifies `jwt` (a BLOB shipped with the service, or fetched by other means), caches it
    /// if it is newer than the cached one, and installs it if it is newer than the one held.
    /// Returns the BLOB held afterwards.
    ///
    /// Errors: those of [`MetadataBlob::from_jwt`]; [`ErrorKind::Storage`] from the store.
    pub async fn seed(&self, jwt: &[u8]) -> Result<Arc<MetadataBlob>> {
        let blob = Arc::new(self.verify(jwt)?);
        self.cache(jwt, &blob).await?;
        self.cell.install(blob.clone());
        Ok(self.current().unwrap_or(blob))
    }

    /// [`seed`](Self::seed) from a file (read with blocking I/O: call it at start-up).
    pub async fn seed_from_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Arc<MetadataBlob>> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::invalid_input("cannot read metadata blob file").with_source(e))?;
        if bytes.len() > MAX_BLOB_LEN {
            return Err(Error::invalid_input("metadata blob too large"));
        }
        self.seed(&bytes).await
    }

    /// Loads the BLOB cached in the store (verifying it again) and installs it if it is newer
    /// than the one held. `None` when the store holds none.
    ///
    /// Errors: [`ErrorKind::Storage`] when the store fails or a chunk is missing or altered;
    /// those of [`MetadataBlob::from_jwt`] when the cached BLOB no longer verifies (its
    /// certificates expired, say).
    pub async fn load_cached(&self) -> Result<Option<Arc<MetadataBlob>>> {
        let Some((head, version)) = self.read_head().await? else {
            return Ok(None);
        };
        match self.read_chunks(&head).await {
            Ok(jwt) => {
                let blob = Arc::new(self.verify(&jwt)?);
                if blob.no() != head.no {
                    return Err(Error::storage(
                        "the cached metadata blob does not match its head",
                    ));
                }
                self.cell.install(blob);
                Ok(self.current())
            }
            Err(e) => {
                // A damaged copy is dropped (unless a newer head replaced it meanwhile), so the
                // next download is cached again.
                let _ = self
                    .store
                    .compare_and_swap(&head_key(), version, Write::Delete)
                    .await;
                Err(e)
            }
        }
    }

    /// The chunks of `head`, joined and checked against its length and SHA-256.
    async fn read_chunks(&self, head: &Head) -> Result<Vec<u8>> {
        let mut jwt = Vec::with_capacity(head.len);
        for index in 0..head.chunks {
            let chunk = self
                .store
                .get(&chunk_key(head.no, index))
                .await?
                .ok_or_else(|| Error::storage("a chunk of the cached metadata blob is missing"))?;
            if jwt.len() + chunk.value.len() > head.len.min(MAX_BLOB_LEN) {
                return Err(Error::storage(
                    "the cached metadata blob is longer than its head says",
                ));
            }
            jwt.extend_from_slice(&chunk.value);
        }
        if jwt.len() != head.len || hex_sha256(&jwt) != head.sha256 {
            return Err(Error::storage(
                "the cached metadata blob does not match its head",
            ));
        }
        Ok(jwt)
    }

    async fn read_head(&self) -> Result<Option<(Head, crate::store::Version)>> {
        let Some(entry) = self.store.get(&head_key()).await? else {
            return Ok(None);
        };
        let head: Head = serde_json::from_slice(&entry.value)
            .map_err(|_| Error::storage("the cached metadata head is not valid"))?;
        if head.len > MAX_BLOB_LEN || head.chunks != head.len.div_ceil(CHUNK_LEN) {
            return Err(Error::storage("the cached metadata head is not valid"));
        }
        Ok(Some((head, entry.version)))
    }

    /// Writes `jwt` to the store unless the store already holds this or a newer BLOB.
    async fn cache(&self, jwt: &[u8], blob: &MetadataBlob) -> Result<()> {
        let current = match self.read_head().await {
            Ok(current) => current,
            // A head that does not decode is replaced.
            Err(e) if e.kind() == &ErrorKind::Storage => None,
            Err(e) => return Err(e),
        };
        if let Some((head, _)) = &current
            && head.no >= blob.no()
        {
            return Ok(());
        }
        let head = Head {
            no: blob.no(),
            next_update: blob.next_update().to_owned(),
            len: jwt.len(),
            sha256: hex_sha256(jwt),
            chunks: jwt.len().div_ceil(CHUNK_LEN),
        };
        for (index, chunk) in jwt.chunks(CHUNK_LEN).enumerate() {
            self.store
                .put(&chunk_key(head.no, index), chunk.to_vec(), None)
                .await?;
        }
        let value = serde_json::to_vec(&head)
            .map_err(|_| Error::storage("cannot encode the metadata head"))?;
        let written = match &current {
            Some((_, version)) => matches!(
                self.store
                    .compare_and_swap(
                        &head_key(),
                        *version,
                        Write::Set {
                            value,
                            ttl: crate::store::Ttl::Never,
                        },
                    )
                    .await?,
                CasOutcome::Swapped { .. }
            ),
            None => self.store.insert(&head_key(), value, None).await?.is_some(),
        };
        let winner = self.read_head().await.ok().flatten().map(|(h, _)| h);
        // Remove the chunks no head points at (best effort: leftovers are never read).
        let orphan = if written {
            current.map(|(old, _)| old)
        } else if winner.as_ref().is_some_and(|w| w.no != head.no) {
            Some(head)
        } else {
            None
        };
        if let Some(orphan) = orphan
            && winner.as_ref().is_none_or(|w| w.no != orphan.no)
        {
            for index in 0..orphan.chunks {
                let _ = self.store.delete(&chunk_key(orphan.no, index)).await;
            }
        }
        Ok(())
    }

    async fn download(&self) -> Result<Vec<u8>> {
        let url = self.config.url.clone();
        let answer = self
            .client
            .send(
                Idempotency::Idempotent,
                |client| client.get(url.as_str()),
                |answer| answer.status == 429 || answer.status >= 500,
            )
            .await?;
        if answer.status != 200 {
            return Err(Error::new(
                ErrorKind::Backend,
                "the metadata service did not answer with the blob",
            )
            .with_remote(RemoteError {
                service: "fido-mds",
                status: answer.status,
                code: None,
                message: None,
            })
            .with_retryable(answer.status == 429 || answer.status >= 500));
        }
        Ok(answer.body)
    }

    /// Installs a newer BLOB another instance cached, if there is one.
    async fn newer_from_store(&self) -> Option<u64> {
        let held = self.current().map(|b| b.no());
        let (head, _) = self.read_head().await.ok().flatten()?;
        if held.is_some_and(|no| no >= head.no) {
            return None;
        }
        let blob = self.load_cached().await.ok().flatten()?;
        Some(blob.no())
    }

    /// Fetches the BLOB now: first from the store (another instance may have downloaded a
    /// newer one), else from the service. A downloaded BLOB must verify and be newer than the
    /// one held (an older serial number, a replay, is ignored) to be cached and installed.
    ///
    /// Errors: [`ErrorKind::Transport`], [`ErrorKind::Timeout`], [`ErrorKind::Protocol`] (a
    /// redirect, an oversized body) or [`ErrorKind::Backend`] (a status other than 200, with
    /// the [`RemoteError`]); those of [`MetadataBlob::from_jwt`] when the download does not
    /// verify; [`ErrorKind::Storage`]. The BLOB held stays in use on every error.
    pub async fn refresh(&self) -> Result<RefreshOutcome> {
        if let Some(no) = self.newer_from_store().await {
            return Ok(RefreshOutcome::FromStore { no });
        }
        let jwt = self.download().await?;
        let blob = Arc::new(self.verify(&jwt)?);
        let no = blob.no();
        if self.current().is_some_and(|held| held.no() >= no) {
            return Ok(RefreshOutcome::Unchanged {
                no: self.current().map_or(no, |b| b.no()),
            });
        }
        self.cache(&jwt, &blob).await?;
        self.cell.install(blob);
        Ok(RefreshOutcome::Downloaded { no })
    }

    /// [`refresh`](Self::refresh) only when no BLOB is held or the one held is past its
    /// `nextUpdate` (by the service's clock); a newer BLOB in the store is installed either way.
    pub async fn refresh_if_due(&self) -> Result<RefreshOutcome> {
        if let Some(no) = self.newer_from_store().await {
            return Ok(RefreshOutcome::FromStore { no });
        }
        match self.current() {
            Some(held) if !self.is_due(&held) => Ok(RefreshOutcome::NotDue { no: held.no() }),
            _ => self.refresh().await,
        }
    }

    fn is_due(&self, blob: &MetadataBlob) -> bool {
        date_to_unix(blob.next_update()).is_none_or(|due| unix_seconds(self.clock.now()) >= due)
    }

    /// How long the background task waits after a successful round: until `nextUpdate`, within
    /// `[min_refresh, max_refresh]`.
    fn wait_after_success(&self) -> Duration {
        let now = self.clock.now();
        let until_due = self
            .current()
            .and_then(|b| date_to_unix(b.next_update()))
            .map(|due| UNIX_EPOCH + Duration::from_secs(due))
            .and_then(|due: SystemTime| due.duration_since(now).ok())
            .unwrap_or(Duration::ZERO);
        until_due.clamp(self.config.min_refresh, self.config.max_refresh)
    }

    fn wait_after_failures(&self, failures: u32) -> Duration {
        self.config
            .retry_after_failure
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(self.config.max_refresh)
    }

    /// Starts a tokio task that calls [`refresh_if_due`](Self::refresh_if_due) now and then
    /// after each wait: until `nextUpdate` (within the configured bounds) after a success, a
    /// doubling back-off after a failure. The BLOB held stays in use while refreshes fail.
    /// Stop it with [`MetadataRefresher::stop`]; dropping the handle aborts the task.
    ///
    /// Must be called within a tokio runtime.
    pub fn spawn_refresher(self: Arc<Self>) -> MetadataRefresher {
        let stop = Arc::new(tokio::sync::Notify::new());
        let (rounds_tx, rounds) = tokio::sync::watch::channel(RefresherRounds::default());
        let signal = stop.clone();
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let outcome = self.refresh_if_due().await;
                let wait = match &outcome {
                    Ok(_) => {
                        failures = 0;
                        self.wait_after_success()
                    }
                    Err(_) => {
                        failures = failures.saturating_add(1);
                        self.wait_after_failures(failures)
                    }
                };
                rounds_tx.send_modify(|r| {
                    r.rounds += 1;
                    r.last_error = outcome.as_ref().err().map(|e| e.kind().clone());
                });
                // Woken by `stop` (a stored permit counts too), else after the wait.
                if tokio::time::timeout(wait, signal.notified()).await.is_ok() {
                    break;
                }
            }
        });
        MetadataRefresher {
            stop,
            task: Some(task),
            rounds,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct RefresherRounds {
    rounds: u64,
    last_error: Option<ErrorKind>,
}

/// The handle of the background refresh task of [`MetadataService::spawn_refresher`].
#[derive(Debug)]
pub struct MetadataRefresher {
    stop: Arc<tokio::sync::Notify>,
    task: Option<tokio::task::JoinHandle<()>>,
    rounds: tokio::sync::watch::Receiver<RefresherRounds>,
}

impl MetadataRefresher {
    /// Stops the task (between two rounds, or during a wait) and waits for it to end.
    pub async fn stop(mut self) {
        self.stop.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// How many rounds the task completed, and the kind of the last round's error (`None`
    /// after a success).
    pub fn rounds(&self) -> (u64, Option<ErrorKind>) {
        let r = self.rounds.borrow();
        (r.rounds, r.last_error.clone())
    }

    /// Waits until the task completed at least `n` rounds (or ended).
    pub async fn wait_for_rounds(&mut self, n: u64) {
        let _ = self.rounds.wait_for(|r| r.rounds >= n).await;
    }
}

impl Drop for MetadataRefresher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
#[path = "mds_service_tests.rs"]
mod tests;
