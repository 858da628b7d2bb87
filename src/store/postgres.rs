//! [`PostgresStore`]: a [`StateStore`] on PostgreSQL (feature `postgres`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;

use super::{CasOutcome, Entry, Key, StateStore, Ttl, Version, Write, check_ttl, check_write};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::{SystemRandom, random_array};

const MAX_VALUE_LEN: usize = 1 << 20;
/// Rows one sweep statement deletes at most.
const SWEEP_BATCH: i64 = 1_000;
/// Sweep statements per round at most (so one round deletes at most 100,000 rows).
const SWEEP_BATCHES: usize = 100;

/// Embedded migrations, applied in order; each runs once per schema (`{schema}` is replaced
/// by the quoted schema name). Append only: a released migration is never edited.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS {schema}.keyward_state (
        key text PRIMARY KEY,
        value bytea NOT NULL,
        version bigint NOT NULL,
        expires_at timestamptz
    );
    CREATE INDEX IF NOT EXISTS keyward_state_expires_at
        ON {schema}.keyward_state (expires_at) WHERE expires_at IS NOT NULL;
    CREATE DOMAIN {schema}.keyward_u64 AS numeric(20, 0)
        CHECK (VALUE >= 0 AND VALUE <= 18446744073709551615);",
)];

/// How to reach PostgreSQL: URL, schema, pool size and time bounds.
///
/// `Debug` shows the URL's scheme and host only, never the user's password.
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    schema: String,
    pool_size: usize,
    connect_timeout: Duration,
    operation_timeout: Duration,
    sweep_interval: Option<Duration>,
    application_name: String,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("sweep_interval", &self.sweep_interval)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl PostgresConfig {
    /// A database URL (`postgres://user:password@host:port/db?sslmode=…`, or the key-value form
    /// `host=… user=… dbname=…`).
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "keyward".to_owned(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            sweep_interval: Some(Duration::from_secs(60)),
            application_name: "keyward".to_owned(),
        }
    }

    /// The `application_name` the connections report (default `keyward`), which operators see
    /// in `pg_stat_activity`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// The schema holding keyward's table (default `keyward`; created if absent). Lower-case
    /// letters, digits and `_`, starting with a letter or `_`, at most 63 bytes.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Most connections the pool opens (default 16).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Bound on opening one connection (default 3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on one store operation, waiting for a pooled connection included (default 5 s).
    /// The server also ends the statement (`statement_timeout`) after this long.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How often expired rows are deleted (default every 60 s; `None`: never, for a host that
    /// sweeps itself). Expired rows are invisible whether or not they are swept.
    pub fn sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.sweep_interval = interval;
        self
    }

    fn validate(&self) -> Result<()> {
        let schema_ok = !self.schema.is_empty()
            && self.schema.len() <= 63
            && self
                .schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !self.schema.as_bytes()[0].is_ascii_digit()
            && !self.schema.starts_with("pg_");
        if !schema_ok {
            return Err(Error::new(
                ErrorKind::Config,
                "postgres: the schema name must be lower-case letters, digits and `_`",
            ));
        }
        if self.pool_size == 0 {
            return Err(Error::new(ErrorKind::Config, "postgres: pool size is zero"));
        }
        if self.connect_timeout.is_zero()
            || self.operation_timeout.is_zero()
            || self.sweep_interval.is_some_and(|d| d.is_zero())
        {
            return Err(Error::new(
                ErrorKind::Config,
                "postgres: a duration is zero",
            ));
        }
        Ok(())
    }
}

/// Scheme and host of a URL (or `host=` of a key-value string), without user or password.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        return match authority.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => format!("{scheme}://{authority}"),
        };
    }
    let host = url
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("host="))
        .unwrap_or("?");
    format!("host={host}")
}

/// The statements, with the schema name in place.
#[derive(Debug)]
struct Sql {
    get: String,
    insert: String,
    put: String,
    cas_set: String,
    cas_delete: String,
    take: String,
    increment: String,
    sweep: String,
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let t = format!("\"{schema}\".keyward_state");
        let live = "(expires_at IS NULL OR expires_at > now())";
        let expiry = "CASE WHEN $4::bigint IS NULL THEN NULL \
                      ELSE now() + $4::bigint * interval '1 millisecond' END";
        Sql {
            get: format!("SELECT value, version FROM {t} WHERE key = $1 AND {live}"),
            insert: format!(
                "INSERT INTO {t} AS s (key, value, version, expires_at) VALUES ($1, $2, $3, {expiry}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, \
                 expires_at = EXCLUDED.expires_at \
                 WHERE s.expires_at IS NOT NULL AND s.expires_at <= now() RETURNING version"
            ),
            put: format!(
                "INSERT INTO {t} AS s (key, value, version, expires_at) VALUES ($1, $2, $3, {expiry}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, \
                 expires_at = EXCLUDED.expires_at RETURNING version"
            ),
            // $4: ttl in ms (for 'after'); $5: 'keep' | 'never' | 'after'; $6: expected version.
            cas_set: format!(
                "UPDATE {t} SET value = $2, version = $3, expires_at = CASE $5::text \
                 WHEN 'keep' THEN expires_at WHEN 'never' THEN NULL \
                 ELSE now() + $4::bigint * interval '1 millisecond' END \
                 WHERE key = $1 AND version = $6 AND {live} RETURNING version"
            ),
            cas_delete: format!(
                "DELETE FROM {t} WHERE key = $1 AND version = $2 AND {live} RETURNING version"
            ),
            take: format!("DELETE FROM {t} WHERE key = $1 AND {live} RETURNING value"),
            // $2: delta (decimal text); $3: new version; $4: ttl in ms or NULL. An expired row
            // starts over. A stored value that is not decimal digits casts 'not a counter' to
            // numeric (SQLSTATE 22P02); a sum beyond u64 breaks the domain's check (23514).
            increment: format!(
                "INSERT INTO {t} AS s (key, value, version, expires_at) \
                 VALUES ($1, convert_to($2::text, 'UTF8'), $3, {expiry}) \
                 ON CONFLICT (key) DO UPDATE SET \
                 value = CASE WHEN s.expires_at IS NOT NULL AND s.expires_at <= now() THEN EXCLUDED.value \
                   ELSE convert_to(((CASE WHEN encode(s.value, 'escape') ~ '^[0-9]{{1,20}}$' \
                     THEN encode(s.value, 'escape') ELSE 'not a counter' END)::numeric \
                     + $2::text::numeric)::\"{schema}\".keyward_u64::text, 'UTF8') END, \
                 version = EXCLUDED.version, \
                 expires_at = CASE WHEN s.expires_at IS NOT NULL AND s.expires_at <= now() \
                   THEN EXCLUDED.expires_at ELSE s.expires_at END \
                 RETURNING convert_from(value, 'UTF8')"
            ),
            sweep: format!(
                "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} \
                 WHERE expires_at <= now() LIMIT {SWEEP_BATCH} FOR UPDATE SKIP LOCKED)"
            ),
        }
    }
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    sql: Sql,
    schema: String,
    url: String,
    operation_timeout: Duration,
    random: SystemRandom,
    sweeper: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// [`PostgresStore`]: a [`StateStore`] on PostgreSQL (feature `postgres`).
///
/// One table, `<schema>.keyward_state (key text primary key, value bytea, version bigint,
/// expires_at timestamptz)`, and every operation is one SQL statement on one row, atomic under
/// PostgreSQL's default `READ COMMITTED` isolation:
///
/// | operation | statement |
/// | --- | --- |
/// | `get` | `SELECT … WHERE key = $1 AND <live>` |
/// | `insert` | `INSERT … ON CONFLICT (key) DO UPDATE … WHERE <the old row expired>` |
/// | `put` | `INSERT … ON CONFLICT (key) DO UPDATE` |
/// | `compare_and_swap` | `UPDATE … WHERE key = $1 AND version = $2 AND <live> RETURNING` (or `DELETE`) |
/// | `take` | `DELETE … WHERE key = $1 AND <live> RETURNING value` |
/// | `increment` | one `INSERT … ON CONFLICT DO UPDATE SET value = value + $2 … RETURNING` |
///
/// `<live>` is `expires_at IS NULL OR expires_at > now()`: expiry follows the database's clock,
/// so every instance agrees on it, and an expired row is invisible to every operation at once. A
/// background task deletes expired rows in bounded batches (see
/// [`PostgresConfig::sweep_interval`]); it stops when the last clone of the store is dropped.
///
/// Versions are random 64-bit numbers drawn on every write (never equal to the one they
/// replace; a version read before a delete matches a later row of the same key only with
/// probability 2⁻⁶⁴). Counters are ASCII decimal payloads over the full `u64` range, added as
/// `numeric` and bounded by the `keyward_u64` domain.
///
/// The schema and its migrations are embedded and applied by [`PostgresStore::connect`]
/// (idempotent, serialized between instances by an advisory lock). The connection URL's
/// password never appears in `Debug` output, logs or errors.
///
/// Client: `tokio-postgres` with a `deadpool` pool and rustls (ring provider, the platform's
/// root certificates). TLS: `sslmode=require` always uses TLS with the certificate verified,
/// `sslmode=disable` never does, and the default (`prefer`) uses verified TLS for every host but
/// loopback addresses and Unix sockets.
///
///
/// Cloning is cheap and clones share the pool.
///
/// ```no_run
/// # async fn run() -> keyward::Result<()> {
/// use keyward::store::{PostgresConfig, PostgresStore, StateStore};
/// let store = PostgresStore::connect(
///     PostgresConfig::new("postgres://keyward@db.internal/app?sslmode=require").schema("auth"),
/// )
/// .await?;
/// let key = keyward::store::Key::durable("app").part("settings");
/// store.put(&key, b"record".to_vec(), None).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.inner.url)
            .field("schema", &self.inner.schema)
            .field("pool_size", &self.inner.pool.status().max_size)
            .field("operation_timeout", &self.inner.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, applies the embedded migrations and starts the expiry sweeper.
    ///
    /// Errors: [`ErrorKind::Config`] for a malformed URL or configuration,
    /// [`ErrorKind::Storage`] when the server cannot be reached (retryable) or refuses
    /// (authentication, permissions, …).
    pub async fn connect(config: PostgresConfig) -> Result<PostgresStore> {
        config.validate()?;
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|_| Error::new(ErrorKind::Config, "postgres: invalid database url"))?;
        let local = !pg.get_hosts().is_empty()
            && pg.get_hosts().iter().all(|h| match h {
                Host::Tcp(name) => is_loopback(name),
                #[cfg(unix)]
                Host::Unix(_) => true,
            });
        match pg.get_ssl_mode() {
            SslMode::Disable | SslMode::Require => {}
            _ if local => {
                pg.ssl_mode(SslMode::Disable);
            }
            _ => {
                pg.ssl_mode(SslMode::Require);
            }
        }
        pg.connect_timeout(config.connect_timeout);
        pg.keepalives(true);
        pg.application_name(&config.application_name);
        pg.options(format!(
            "-c statement_timeout={}",
            config.operation_timeout.as_millis().max(1)
        ));
        let manager = Manager::from_config(
            pg,
            tls()?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.operation_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|_| Error::new(ErrorKind::Config, "postgres: cannot build the pool"))?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(&config.schema),
                schema: config.schema.clone(),
                url: redact_url(&config.url),
                operation_timeout: config.operation_timeout,
                random: SystemRandom::new(),
                sweeper: std::sync::Mutex::new(None),
            }),
        };
        store.migrate().await?;
        if let Some(interval) = config.sweep_interval {
            let weak = Arc::downgrade(&store.inner);
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    let store = PostgresStore { inner };
                    // A failed round is retried at the next tick.
                    let _ = store.sweep_expired().await;
                }
            });
            *store
                .inner
                .sweeper
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(store)
    }

    /// The schema in use.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Deletes expired rows now, in batches of 1,000 and at most 100,000 rows; returns how many
    /// were deleted. The background sweeper calls this; hosts that disabled it may call it
    /// themselves.
    pub async fn sweep_expired(&self) -> Result<u64> {
        let mut total = 0;
        for _ in 0..SWEEP_BATCHES {
            let sql = &self.inner.sql.sweep;
            let n = self.execute(sql, &[]).await?;
            total += n;
            if n < SWEEP_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    async fn migrate(&self) -> Result<()> {
        let schema = &self.inner.schema;
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(map_error)?;
            // Serialize instances starting together; the lock ends with the transaction.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('keyward-migrate:' || $1))",
                &[schema],
            )
            .await
            .map_err(map_error)?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 CREATE TABLE IF NOT EXISTS \"{schema}\".keyward_migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 );"
            ))
            .await
            .map_err(map_error)?;
            let applied = tx
                .query(
                    &format!("SELECT version FROM \"{schema}\".keyward_migrations"),
                    &[],
                )
                .await
                .map_err(map_error)?
                .iter()
                .map(|row| row.try_get::<_, i32>(0))
                .collect::<std::result::Result<Vec<i32>, _>>()
                .map_err(map_error)?;
            for (version, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                tx.batch_execute(&sql.replace("{schema}", &format!("\"{schema}\"")))
                    .await
                    .map_err(map_error)?;
                tx.execute(
                    &format!("INSERT INTO \"{schema}\".keyward_migrations (version) VALUES ($1)"),
                    &[version],
                )
                .await
                .map_err(map_error)?;
            }
            tx.commit().await.map_err(map_error)
        })
        .await
    }

    /// A pooled connection that is not known to be closed.
    async fn client(&self) -> Result<deadpool_postgres::Client> {
        // A connection the server closed while it sat in the pool (restart, failover,
        // `pg_terminate_backend`) is dropped here rather than failing the operation.
        for _ in 0..=self.inner.pool.status().max_size {
            let client = self.inner.pool.get().await.map_err(|e| match e {
                deadpool_postgres::PoolError::Timeout(_) => {
                    unavailable("postgres: no connection available in time")
                }
                deadpool_postgres::PoolError::Backend(e) => map_error(e),
                _ => unavailable("postgres: cannot open a connection"),
            })?;
            if !client.is_closed() {
                return Ok(client);
            }
            drop(deadpool_postgres::Object::take(client));
        }
        Err(unavailable("postgres: cannot open a connection"))
    }

    async fn bounded<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.inner.operation_timeout, f)
            .await
            .unwrap_or_else(|_| {
                Err(unavailable(
                    "postgres: operation timed out (it may or may not have been applied)",
                ))
            })
    }

    /// Runs one statement and returns its rows.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.bounded(async {
            let client = self.client().await?;
            let result = match client.prepare_cached(sql).await {
                Ok(statement) => client.query(&statement, params).await,
                Err(e) => Err(e),
            };
            result.map_err(|e| discard_if_broken(client, e))
        })
        .await
    }

    /// Runs one statement and returns the number of rows it changed.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        self.bounded(async {
            let client = self.client().await?;
            let result = match client.prepare_cached(sql).await {
                Ok(statement) => client.execute(&statement, params).await,
                Err(e) => Err(e),
            };
            result.map_err(|e| discard_if_broken(client, e))
        })
        .await
    }

    fn version(&self) -> Result<i64> {
        Ok(i64::from_be_bytes(random_array::<8>(&self.inner.random)?))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A platform certificate rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::new(ErrorKind::Config, "postgres: tls setup failed"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A tokio-postgres error as ours. Database errors keep only their SQLSTATE (their text can
/// quote values); connection errors say only that the connection failed.
fn map_error(e: tokio_postgres::Error) -> Error {
    if let Some(code) = e.code() {
        let kind = match *code {
            SqlState::INVALID_TEXT_REPRESENTATION | SqlState::CHARACTER_NOT_IN_REPERTOIRE => {
                return Error::storage("increment on a value that is not a counter");
            }
            SqlState::CHECK_VIOLATION | SqlState::NUMERIC_VALUE_OUT_OF_RANGE => {
                return Error::storage("counter overflow");
            }
            SqlState::QUERY_CANCELED
            | SqlState::ADMIN_SHUTDOWN
            | SqlState::CRASH_SHUTDOWN
            | SqlState::CANNOT_CONNECT_NOW
            | SqlState::CONNECTION_EXCEPTION
            | SqlState::CONNECTION_FAILURE
            | SqlState::TOO_MANY_CONNECTIONS
            | SqlState::T_R_SERIALIZATION_FAILURE
            | SqlState::T_R_DEADLOCK_DETECTED => true,
            _ => false,
        };
        return Error::storage(format!("postgres: error {}", code.code())).with_retryable(kind);
    }
    if e.is_closed() {
        return unavailable("postgres: connection closed");
    }
    unavailable("postgres: connection to the server failed")
}

/// Maps `e`; a connection that failed below SQL (closed, I/O, the server shutting it down) is
/// taken out of the pool so no later operation gets it.
fn discard_if_broken(client: deadpool_postgres::Client, e: tokio_postgres::Error) -> Error {
    let broken = e.is_closed()
        || e.code().is_none()
        || e.code()
            .is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"));
    if broken {
        drop(deadpool_postgres::Object::take(client));
    }
    map_error(e)
}

/// A retryable storage error: the server could not be reached or did not answer in time.
fn unavailable(message: &'static str) -> Error {
    Error::storage(message).with_retryable(true)
}

fn ttl_ms(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|d| i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX))
}

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::storage("value too large for the store"));
    }
    Ok(())
}

fn unsigned(version: i64) -> Version {
    Version::from_raw(u64::from_be_bytes(version.to_be_bytes()))
}

fn signed(version: Version) -> i64 {
    i64::from_be_bytes(version.raw().to_be_bytes())
}

#[async_trait]
impl StateStore for PostgresStore {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.get", level = "debug", skip_all, fields(engine = "postgres", key = crate::trace::key_scope(key))))]
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let rows = self.query(&self.inner.sql.get, &[&key.as_str()]).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let value: Vec<u8> = row.try_get(0).map_err(map_error)?;
        let version: i64 = row.try_get(1).map_err(map_error)?;
        Ok(Some(Entry {
            value,
            version: unsigned(version),
        }))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.insert", level = "debug", skip_all, fields(engine = "postgres", key = crate::trace::key_scope(key))))]
    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        check_ttl(ttl)?;
        check_value(&value)?;
        let version = self.version()?;
        let rows = self
            .query(
                &self.inner.sql.insert,
                &[&key.as_str(), &value, &version, &ttl_ms(ttl)],
            )
            .await?;
        Ok(rows.first().map(|_| unsigned(version)))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.put", level = "debug", skip_all, fields(engine = "postgres", key = crate::trace::key_scope(key))))]
    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        check_ttl(ttl)?;
        check_value(&value)?;
        let version = self.version()?;
        self.query(
            &self.inner.sql.put,
            &[&key.as_str(), &value, &version, &ttl_ms(ttl)],
        )
        .await?;
        Ok(unsigned(version))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.compare_and_swap", level = "debug", skip_all, fields(engine = "postgres", key = crate::trace::key_scope(key))))]
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        check_write(&write)?;
        let expected = signed(expected);
        let key = key.as_str();
        let rows = match &write {
            Write::Delete => {
                self.query(&self.inner.sql.cas_delete, &[&key, &expected])
                    .await?
            }
            Write::Set { value, ttl } => {
                check_value(value)?;
                let version = self.version()?;
                let (ms, mode) = match ttl {
                    Ttl::Keep => (None, "keep"),
                    Ttl::Never => (None, "never"),
                    Ttl::After(d) => (ttl_ms(Some(*d)), "after"),
                };
                self.query(
                    &self.inner.sql.cas_set,
                    &[&key, value, &version, &ms, &mode, &expected],
                )
                .await?
            }
        };
        let Some(row) = rows.first() else {
            return Ok(CasOutcome::Conflict);
        };
        Ok(match write {
            Write::Delete => CasOutcome::Swapped { version: None },
            Write::Set { .. } => CasOutcome::Swapped {
                version: Some(unsigned(row.try_get(0).map_err(map_error)?)),
            },
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.take", level = "debug", skip_all, fields(engine = "postgres", key = crate::trace::key_scope(key))))]
    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let rows = self.query(&self.inner.sql.take, &[&key.as_str()]).await?;
        match rows.first() {
            Some(row) => Ok(Some(row.try_get(0).map_err(map_error)?)),
            None => Ok(None),
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.increment", level = "debug", skip_all, fields(engine = "postgres", key = crate::trace::key_scope(key))))]
    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        check_ttl(ttl)?;
        let delta = delta.to_string();
        let version = self.version()?;
        let rows = self
            .query(
                &self.inner.sql.increment,
                &[&key.as_str(), &delta, &version, &ttl_ms(ttl)],
            )
            .await?;
        let count: String = rows
            .first()
            .ok_or_else(|| Error::storage("postgres: increment returned no row"))?
            .try_get(0)
            .map_err(map_error)?;
        count
            .parse()
            .map_err(|_| Error::storage("postgres: the counter is not a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal:5433/auth?sslmode=require"),
            "postgres://***@db.internal:5433"
        );
        assert_eq!(redact_url("host=db user=app password=hunter2"), "host=db");
        let shown = format!("{:?}", PostgresConfig::new("postgres://u:hunter2@h/db"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn schema_names_are_checked() {
        for bad in ["", "Auth", "1x", "a-b", "a\"b", "pg_x", &"x".repeat(64)] {
            let e = PostgresConfig::new("postgres://h/db")
                .schema(bad)
                .validate();
            assert_eq!(
                e.err().map(|e| e.kind().clone()),
                Some(ErrorKind::Config),
                "{bad}"
            );
        }
        assert!(
            PostgresConfig::new("postgres://h/db")
                .schema("keyward_t1")
                .validate()
                .is_ok()
        );
        assert!(
            PostgresConfig::new("postgres://h/db")
                .pool_size(0)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("db.internal"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn versions_round_trip_through_bigint() {
        for v in [0, 1u64, u64::MAX, 1 << 63, 12345] {
            assert_eq!(unsigned(signed(Version::from_raw(v))).raw(), v);
        }
    }
}
