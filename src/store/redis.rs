//! [`RedisStore`]: a [`StateStore`] on Redis, standalone or Redis Cluster (feature `redis`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

use super::{CasOutcome, Entry, Key, StateStore, Ttl, Version, Write, check_ttl, check_write};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::{SecureRandom, SystemRandom, random_array};

/// Largest value accepted (as [`MemoryStore`](super::MemoryStore)'s default).
const MAX_VALUE_LEN: usize = 1 << 20;

const VERSION_LEN: usize = 16;

// ARGV: expected version, 'del' | 'set', new stored value, 'keep' | 'never' | ttl in ms.
const CAS_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, 16) ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == 'keep' then
  redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
elseif ARGV[4] == 'never' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
";

// ARGV: delta (decimal), new version, ttl in ms or ''. Returns the new count as a decimal string.
// u64 arithmetic on decimal strings: Lua 5.1 numbers are doubles, exact only to 2^53.
const INCREMENT_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2] .. ARGV[1])
  else
    redis.call('SET', KEYS[1], ARGV[2] .. ARGV[1], 'PX', ARGV[3])
  end
  return ARGV[1]
end
local a = string.sub(cur, 17)
if not string.match(a, '^%d+$') then return redis.error_reply('KEYWARD_NOT_COUNTER') end
a = string.gsub(a, '^0+', '')
if a == '' then a = '0' end
local max = '18446744073709551615'
if string.len(a) > 20 or (string.len(a) == 20 and a > max) then
  return redis.error_reply('KEYWARD_NOT_COUNTER')
end
local b = ARGV[1]
local out = {}
local carry = 0
local i, j = string.len(a), string.len(b)
while i > 0 or j > 0 or carry > 0 do
  local s = carry
  if i > 0 then s = s + string.byte(a, i) - 48 end
  if j > 0 then s = s + string.byte(b, j) - 48 end
  out[#out + 1] = string.char(48 + s % 10)
  carry = (s - s % 10) / 10
  i = i - 1
  j = j - 1
end
local n = string.reverse(table.concat(out))
if string.len(n) > 20 or (string.len(n) == 20 and n > max) then
  return redis.error_reply('KEYWARD_OVERFLOW')
end
redis.call('SET', KEYS[1], ARGV[2] .. n, 'KEEPTTL')
return n
";

/// How to reach Redis: one server or a cluster, with the key prefix and time bounds.
///
/// `Debug` shows each node's scheme and host only, never a user name or password.
#[derive(Clone)]
pub struct RedisConfig {
    urls: Vec<String>,
    cluster: bool,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedisConfig")
            .field("nodes", &nodes)
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// One Redis server (`redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS).
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            urls: vec![url.into()],
            cluster: false,
            prefix: "keyward:".to_owned(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(3),
        }
    }

    /// A Redis Cluster, reached through any of these seed nodes.
    pub fn cluster<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = RedisConfig::new(String::new());
        config.urls = urls.into_iter().map(Into::into).collect();
        config.cluster = true;
        config
    }

    /// Prepends `prefix` to every key (default `keyward:`), so several applications or test runs
    /// share one server without meeting. It may not contain `{` or `}`: hash tags belong to the
    /// keys themselves.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bound on establishing one connection (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on the server's answer to one command (default 2 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Bound on one store operation, reconnecting included (default 3 s).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.urls.is_empty() || self.urls.iter().any(|u| u.is_empty()) {
            return Err(Error::new(ErrorKind::Config, "redis: no server url given"));
        }
        if self.prefix.contains(['{', '}']) {
            return Err(Error::new(
                ErrorKind::Config,
                "redis: the key prefix may not contain `{` or `}`",
            ));
        }
        if [
            self.connect_timeout,
            self.response_timeout,
            self.operation_timeout,
        ]
        .contains(&Duration::ZERO)
        {
            return Err(Error::new(ErrorKind::Config, "redis: a timeout is zero"));
        }
        Ok(())
    }
}

/// Scheme and host of a URL, with any user, password, path or query removed.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("?", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// [`RedisStore`]: a [`StateStore`] on Redis, standalone or Redis Cluster (feature `redis`).
///
/// Every operation is one command on one key, so each maps to one cluster slot and is atomic on
/// the server:
///
/// | operation | command |
/// | --- | --- |
/// | `get` | `GET` |
/// | `insert` | `SET key value NX [PX ttl]` |
/// | `put` | `SET key value [PX ttl]` |
/// | `compare_and_swap` | a Lua script comparing the stored version |
/// | `take` | `GETDEL` |
/// | `increment` | a Lua script (create with `PX ttl`, or add keeping the expiry) |
///
/// Scripts run with `EVALSHA` and are loaded again when the server answers `NOSCRIPT` (after a
/// restart or a failover). Expiry is kept by the server (`PX`), so every instance agrees on it.
///
/// A stored value is its version (16 lower-case hex digits) followed by the payload bytes.
/// Versions are random 64-bit numbers drawn on every write, so a version is never equal to the one
/// it replaces and a version read before a delete matches a later entry of the same key only with
/// probability 2⁻⁶⁴. Counters are ASCII decimal payloads, as the contract says, over the full
/// `u64` range (the script adds decimal strings digit by digit: Lua numbers are doubles).
///
/// The connection is a reconnecting `ConnectionManager` (standalone) or a `ClusterConnection`
/// (cluster), over TCP or TLS (`rediss://`, rustls with the ring provider). Every operation is
/// bounded by [`RedisConfig::operation_timeout`]; a lost connection or a slow server gives an
/// [`ErrorKind::Storage`] error marked retryable ([`Error::is_retryable`]), and the next
/// operation reconnects by itself. Nothing is retried blindly: a write whose answer was lost is
/// reported as failed (it may or may not have been applied, and it was sent once), and every
/// flow built on the store fails closed on such an error. A `take` whose answer was lost has
/// removed the value all the same: the flow fails closed and the ceremony (or code) starts again.
/// In cluster mode this includes `MOVED` / `ASK` redirects while slots move (the cluster client
/// cannot retry redirects without also re-sending writes whose answer was lost): they come back
/// as retryable storage errors, and none was executed. After a `MOVED` the next operation uses
/// the refreshed slot map; an `ASK` leaves the map as it is, so while a slot is mid-migration
/// every operation on one of its keys already moved (or not there yet: an insert, a first
/// increment) is refused that way until the migration of that slot ends. Right after
/// the connection to one node drops, an operation or two for that node's keys can also be refused
/// that way: until the connection is back, the cluster client sends them to another node, which
/// answers `MOVED` (nothing is executed).
///
/// The connection URLs (which may hold a user and password) never appear in `Debug` output,
/// logs or errors: only the scheme and host do.
///
///
/// Cloning is cheap and clones share the connection.
///
/// ```no_run
/// # async fn run() -> keyward::Result<()> {
/// use keyward::store::{RedisConfig, RedisStore, StateStore};
/// let store = RedisStore::connect(RedisConfig::new("redis://127.0.0.1:6379").prefix("app:")).await?;
/// let key = keyward::store::Key::ephemeral("app").part("hits");
/// assert_eq!(store.increment(&key, 1, None).await?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    operation_timeout: Duration,
    nodes: Vec<String>,
    cluster: bool,
    random: std::sync::Arc<dyn SecureRandom>,
    cas_script: Script,
    increment_script: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("nodes", &self.nodes)
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (and checks the server answers `PING`) within the connect timeout.
    ///
    /// Errors: [`ErrorKind::Config`] for a malformed URL or configuration,
    /// [`ErrorKind::Storage`] when the server cannot be reached (retryable) or refuses (wrong
    /// password, …).
    pub async fn connect(config: RedisConfig) -> Result<RedisStore> {
        config.validate()?;
        let nodes: Vec<String> = config.urls.iter().map(|u| redact_url(u)).collect();
        let bound = config.connect_timeout + config.operation_timeout;
        let connection = tokio::time::timeout(bound, open(&config))
            .await
            .map_err(|_| unavailable("redis: connecting timed out"))??;
        let store = RedisStore {
            connection,
            prefix: config.prefix,
            operation_timeout: config.operation_timeout,
            nodes,
            cluster: config.cluster,
            random: std::sync::Arc::new(SystemRandom::new()),
            cas_script: Script::new(CAS_SCRIPT),
            increment_script: Script::new(INCREMENT_SCRIPT),
        };
        let pong: String = store.run(redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(Error::new(
                ErrorKind::Protocol,
                "redis: unexpected answer to PING",
            ));
        }
        Ok(store)
    }

    /// The key prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &Key) -> String {
        // Keys are bounded by construction (`Key::MAX_LEN`); the prefix is the host's own.
        let mut full = String::with_capacity(self.prefix.len() + key.as_str().len());
        full.push_str(&self.prefix);
        full.push_str(key.as_str());
        full
    }

    fn version(&self) -> Result<(Version, String)> {
        let v = u64::from_be_bytes(random_array::<8>(self.random.as_ref())?);
        Ok((Version::from_raw(v), format!("{v:016x}")))
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        let mut connection = self.connection.clone();
        self.bounded(async move { cmd.query_async(&mut connection).await })
            .await
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.operation_timeout, f).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(unavailable(
                "redis: operation timed out (it may or may not have been applied)",
            )),
        }
    }
}

async fn open(config: &RedisConfig) -> Result<Connection> {
    if config.cluster {
        let client = redis::cluster::ClusterClientBuilder::new(config.urls.clone())
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            // No retries: the cluster client retries every request the same way (a lost answer
            // on an I/O error re-sends the command, exactly like a MOVED redirect), so a retried
            // increment could count twice and a retried GETDEL lose the value. A redirect during
            // resharding is reported as a retryable storage error; the slot map is refreshed
            // and the next operation goes to the right node.
            .retries(0)
            .build()
            .map_err(|_| Error::new(ErrorKind::Config, "redis: invalid cluster url"))?;
        let connection = client.get_async_connection().await.map_err(map_error)?;
        return Ok(Connection::Cluster(connection));
    }
    let url = config.urls.first().map(String::as_str).unwrap_or("");
    let client = redis::Client::open(url)
        .map_err(|_| Error::new(ErrorKind::Config, "redis: invalid server url"))?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    let manager = ConnectionManager::new_with_config(client, manager_config)
        .await
        .map_err(map_error)?;
    Ok(Connection::Single(manager))
}

/// A redis-rs error as ours (a storage error, as the contract says), without its text, which
/// can echo configuration. Connection loss and time-outs are retryable.
fn map_error(e: redis::RedisError) -> Error {
    if e.is_timeout() {
        return unavailable("redis: the server did not answer in time");
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        return unavailable("redis: connection to the server failed");
    }
    match e.kind() {
        redis::ErrorKind::AuthenticationFailed => Error::storage("redis: authentication failed"),
        redis::ErrorKind::InvalidClientConfig => {
            Error::new(ErrorKind::Config, "redis: invalid client configuration")
        }
        redis::ErrorKind::ClusterConnectionNotFound => {
            unavailable("redis: no connection to the cluster node")
        }
        // Redis may answer a script's error_reply as `ERR KEYWARD_…` or as `KEYWARD_…`.
        _ if script_error(&e, "KEYWARD_NOT_COUNTER") => {
            Error::storage("increment on a value that is not a counter")
        }
        _ if script_error(&e, "KEYWARD_OVERFLOW") => Error::storage("counter overflow"),
        _ => match e.code() {
            Some(code) if e.is_cluster_error() => {
                unavailable(format!("redis: cluster not ready ({})", sanitize(code)))
            }
            Some(code) => Error::storage(format!("redis: server error {}", sanitize(code))),
            None => Error::storage(format!("redis: {}", e.category())),
        },
    }
}

fn script_error(e: &redis::RedisError, name: &str) -> bool {
    e.code() == Some(name) || e.detail().is_some_and(|d| d.trim_start().starts_with(name))
}

fn unavailable(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::storage(message).with_retryable(true)
}

/// A server error code, kept to a short upper-case word.
fn sanitize(code: &str) -> String {
    code.chars()
        .take(32)
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn ttl_ms(ttl: Duration) -> u64 {
    // PX takes whole milliseconds, at least 1; round up so an entry never outlives nothing.
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

fn encode(version: &str, value: &[u8]) -> Result<Vec<u8>> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::storage("value too large for the store"));
    }
    let mut out = Vec::with_capacity(VERSION_LEN + value.len());
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(value);
    Ok(out)
}

fn split_stored(stored: Vec<u8>) -> Result<(Version, Vec<u8>)> {
    if stored.len() < VERSION_LEN {
        return Err(Error::storage("stored value is not a keyward entry"));
    }
    let version = std::str::from_utf8(&stored[..VERSION_LEN])
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| Error::storage("stored value is not a keyward entry"))?;
    Ok((Version::from_raw(version), stored[VERSION_LEN..].to_vec()))
}

#[async_trait]
impl StateStore for RedisStore {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.get", level = "debug", skip_all, fields(engine = "redis", key = crate::trace::key_scope(key))))]
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        let stored: Option<Vec<u8>> = self.run(cmd).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let (version, value) = split_stored(stored)?;
        Ok(Some(Entry { value, version }))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.insert", level = "debug", skip_all, fields(engine = "redis", key = crate::trace::key_scope(key))))]
    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        check_ttl(ttl)?;
        let (version, hex) = self.version()?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(encode(&hex, &value)?).arg("NX");
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl_ms(ttl));
        }
        let reply: Option<String> = self.run(cmd).await?;
        Ok(reply.map(|_| version))
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.put", level = "debug", skip_all, fields(engine = "redis", key = crate::trace::key_scope(key))))]
    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        check_ttl(ttl)?;
        let (version, hex) = self.version()?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(encode(&hex, &value)?);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl_ms(ttl));
        }
        let _: String = self.run(cmd).await?;
        Ok(version)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.compare_and_swap", level = "debug", skip_all, fields(engine = "redis", key = crate::trace::key_scope(key))))]
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        check_write(&write)?;
        let (version, hex) = self.version()?;
        let mut invocation = self.cas_script.key(self.key(key));
        invocation.arg(format!("{:016x}", expected.raw()));
        match &write {
            Write::Delete => {
                invocation.arg("del").arg("").arg("");
            }
            Write::Set { value, ttl } => {
                invocation.arg("set").arg(encode(&hex, value)?);
                match ttl {
                    Ttl::Keep => invocation.arg("keep"),
                    Ttl::Never => invocation.arg("never"),
                    Ttl::After(d) => invocation.arg(ttl_ms(*d).to_string()),
                };
            }
        }
        let mut connection = self.connection.clone();
        let swapped: i64 = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        Ok(match (swapped, write) {
            (0, _) => CasOutcome::Conflict,
            (_, Write::Delete) => CasOutcome::Swapped { version: None },
            (_, Write::Set { .. }) => CasOutcome::Swapped {
                version: Some(version),
            },
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.take", level = "debug", skip_all, fields(engine = "redis", key = crate::trace::key_scope(key))))]
    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key(key));
        let stored: Option<Vec<u8>> = self.run(cmd).await?;
        match stored {
            Some(stored) => Ok(Some(split_stored(stored)?.1)),
            None => Ok(None),
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.store.increment", level = "debug", skip_all, fields(engine = "redis", key = crate::trace::key_scope(key))))]
    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        check_ttl(ttl)?;
        let (_, hex) = self.version()?;
        let mut invocation = self.increment_script.key(self.key(key));
        invocation
            .arg(delta.to_string())
            .arg(hex)
            .arg(ttl.map(|d| ttl_ms(d).to_string()).unwrap_or_default());
        let mut connection = self.connection.clone();
        let count: String = self
            .bounded(async move { invocation.invoke_async(&mut connection).await })
            .await?;
        count
            .parse()
            .map_err(|_| Error::storage("redis: the counter script answered a non-number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:hunter2@cache.example:6380/2?x=y"),
            "redis://***@cache.example:6380"
        );
        assert_eq!(
            redact_url("rediss://:p%40ss@10.0.0.1"),
            "rediss://***@10.0.0.1"
        );
        assert_eq!(redact_url("redis://127.0.0.1"), "redis://127.0.0.1");
        let config = RedisConfig::new("redis://u:hunter2@h:1").prefix("p:");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://***@h:1"), "{shown}");
    }

    #[test]
    fn bad_configuration_is_a_config_error() {
        let bad = [
            RedisConfig::new(""),
            RedisConfig::new("redis://h").prefix("{x}"),
            RedisConfig::new("redis://h").operation_timeout(Duration::ZERO),
            RedisConfig::cluster(Vec::<String>::new()),
        ];
        for config in bad {
            assert_eq!(
                config.validate().err().map(|e| e.kind().clone()),
                Some(ErrorKind::Config)
            );
        }
    }

    #[test]
    fn ttl_rounds_up_to_a_millisecond() {
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1_500)), 2);
        assert_eq!(ttl_ms(Duration::from_secs(600)), 600_000);
    }

    #[test]
    fn stored_values_split() {
        let (v, value) = split_stored(b"00000000000000ffhello".to_vec()).unwrap();
        assert_eq!((v.raw(), value.as_slice()), (255, &b"hello"[..]));
        assert!(split_stored(b"short".to_vec()).is_err());
        assert!(split_stored(b"zzzzzzzzzzzzzzzzhello".to_vec()).is_err());
    }
}
