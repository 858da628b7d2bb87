//! Real Redis and PostgreSQL for the shared-store tests.
//!
//! - [`shared_redis`] / [`shared_postgres`]: the machine's services on 127.0.0.1:6379 and :5432
//!   (skip-or-require through `external.rs`); each test isolates itself with [`unique`] names.
//! - [`RedisServer`]: a private standalone `redis-server` on a free loopback port, in a temporary
//!   directory, that a fault test may stop and start again; killed on drop.
//! - [`RedisCluster`]: three `redis-server --cluster-enabled yes` on free loopback ports joined
//!   with `redis-cli --cluster create`; killed on drop.
//!
//! Include with `#[path = "support/servers.rs"] mod servers;` next to `external.rs`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::external;

/// The machine's Redis.
pub const REDIS_ADDR: &str = "127.0.0.1:6379";
/// The machine's PostgreSQL.
pub const POSTGRES_ADDR: &str = "127.0.0.1:5432";
/// URL of the machine's Redis.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// URL of the machine's PostgreSQL (trust auth).
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name no other test (in this run or a parallel one) uses: `<tag>_<pid>_<random>_<n>`,
/// lower case, usable as a key prefix and as a PostgreSQL schema name.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let random = keyward::random_array::<6>(&keyward::SystemRandom::new()).unwrap();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{tag}_{}_{hex}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A key prefix of the machine's Redis (`<tag>_<pid>_<random>_<n>:`) whose keys are deleted when
/// it is dropped, a failing test's included, so runs leave nothing behind in the shared server
/// (durable records carry no TTL). Deleting is best effort: without `redis-cli` nothing happens.
#[derive(Debug)]
pub struct SharedRedisPrefix(String);

impl SharedRedisPrefix {
    /// A fresh prefix for `tag`.
    pub fn new(tag: &str) -> SharedRedisPrefix {
        SharedRedisPrefix(format!("{}:", unique(tag)))
    }

    /// The prefix, with its trailing `:`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Keys under the prefix now (`KEYS`; the test server is small).
    pub fn keys(&self) -> usize {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", "6379", "--raw", "KEYS"])
            .arg(format!("{}*", self.0))
            .stdin(Stdio::null())
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .unwrap_or(0)
    }
}

impl SharedRedisPrefix {
    /// Deletes every key under the prefix (best effort).
    pub fn clear(&self) {
        const UNLINK_ALL: &str = "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do \
             redis.call('UNLINK', k) n = n + 1 end return n";
        let _ = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", "6379", "EVAL", UNLINK_ALL, "0"])
            .arg(format!("{}*", self.0))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for SharedRedisPrefix {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Whether the machine's Redis answers; skips (or fails, in CI) the test when it does not.
pub fn shared_redis(test: &str) -> bool {
    external::available_or_skip(
        test,
        "Redis on 127.0.0.1:6379",
        "apt-get install redis-server, then `redis-server --daemonize yes --save '' --appendonly no`",
        external::tcp_answers(REDIS_ADDR),
    )
}

/// Whether the machine's PostgreSQL answers; skips (or fails, in CI) the test when it does not.
pub fn shared_postgres(test: &str) -> bool {
    external::available_or_skip(
        test,
        "PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`)",
        "apt-get install postgresql, then `pg_ctlcluster <version> main start` (see .ci/run)",
        external::tcp_answers(POSTGRES_ADDR),
    )
}

/// Whether `redis-server` and `redis-cli` are installed; skips (or fails, in CI) otherwise.
pub fn redis_binaries(test: &str) -> bool {
    external::available_or_skip(
        test,
        "redis-server and redis-cli",
        "apt-get install redis-server",
        external::program_exists("redis-server") && external::program_exists("redis-cli"),
    )
}

/// A loopback port free now, whose cluster bus port (`port + 10000`) is free too.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair found");
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} not ready after {timeout:?}");
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `redis-server` process on a loopback port, its files in a temporary directory.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server (nothing on disk) on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_on_free_port(extra.iter().map(|s| s.to_string()).collect())
    }

    /// Starts a server on a free port, choosing another one when the port was taken between
    /// [`free_port`] and the server's bind (any test binding port 0 can get it meanwhile).
    fn start_on_free_port(extra: Vec<String>) -> RedisServer {
        let mut server = RedisServer {
            port: 0,
            dir: tempfile::tempdir().unwrap(),
            extra,
            child: None,
        };
        for _ in 0..10 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server could not bind a free port in 10 tries");
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the process (as a crash or an outage would) and waits for the port to close.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = format!("127.0.0.1:{}", self.port);
        wait_until("redis port closed", Duration::from_secs(10), || {
            !external::tcp_answers(&addr)
        });
    }

    /// Starts the process again on the same port (after [`stop`](Self::stop)).
    pub fn resume(&mut self) {
        assert!(
            self.spawn(),
            "redis-server could not bind port {} again",
            self.port
        );
    }

    /// Spawns the process and waits until it answers on its port; false when it exited first
    /// (its port, or its cluster bus port, was taken). What answers must be this process: a
    /// port taken by another test's listener (a proxy in front of another server) can answer
    /// `PING` too, so the server's `dir` is compared with its own.
    fn spawn(&mut self) -> bool {
        assert!(self.child.is_none(), "server already running");
        let dir = self
            .dir
            .path()
            .canonicalize()
            .unwrap()
            .display()
            .to_string();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--dir", &dir])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut auth: Vec<&str> = Vec::new();
        if let Some(i) = self.extra.iter().position(|a| a == "--requirepass") {
            auth.extend(["--no-auth-warning", "-a", self.extra[i + 1].as_str()]);
        }
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            let mut args = auth.clone();
            args.extend(["config", "get", "dir"]);
            if redis_cli(port, &args).lines().any(|line| line == dir) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {port} not ready after 10 s");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A three-primary Redis Cluster on loopback, torn down on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them and waits for `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        RedisCluster::start_inner(&[])
    }

    /// Starts the cluster with node `i` advertising `127.0.0.1:<client_ports[i]>` to clients
    /// (`cluster-announce-port`: in `CLUSTER SLOTS` / `CLUSTER SHARDS` and in `MOVED` / `ASK`
    /// redirects) instead of its own port, typically a proxy to be pointed at
    /// [`ports`](Self::ports)`[i]`; the cluster bus stays on the node's own port + 10000
    /// (`cluster-announce-bus-port`), and the cluster is joined on the nodes' own ports.
    pub fn start_announcing(client_ports: [u16; 3]) -> RedisCluster {
        RedisCluster::start_inner(&client_ports)
    }

    fn start_inner(announce: &[u16]) -> RedisCluster {
        let mut nodes = Vec::new();
        for i in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let conf: PathBuf = dir.path().join("nodes.conf");
            let mut node = RedisServer {
                port: 0,
                dir,
                extra: Vec::new(),
                child: None,
            };
            let mut started = false;
            for _ in 0..10 {
                node.port = free_port();
                node.extra = vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                ];
                if let Some(client_port) = announce.get(i) {
                    node.extra.extend([
                        "--cluster-announce-ip".into(),
                        "127.0.0.1".into(),
                        "--cluster-announce-port".into(),
                        client_port.to_string(),
                        "--cluster-announce-bus-port".into(),
                        (node.port + 10_000).to_string(),
                    ]);
                }
                if node.spawn() {
                    started = true;
                    break;
                }
            }
            assert!(
                started,
                "cluster node could not bind a free port in 10 tries"
            );
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for node in &nodes {
            let port = node.port;
            wait_until("cluster_state:ok", Duration::from_secs(20), || {
                redis_cli(port, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        RedisCluster { nodes }
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// How many keys node `i` holds (`DBSIZE`).
    pub fn dbsize(&self, i: usize) -> u64 {
        redis_cli(self.nodes[i].port, &["dbsize"])
            .trim()
            .parse()
            .unwrap()
    }
}
