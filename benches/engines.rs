//! The flows through the shared engines on loopback: `finish_authentication` and a self-hosted
//! OTP start + check through `RedisStore` and `PostgresStore` (and `MemoryStore` in the same run,
//! for the ratio), with one and two client instances.
//!
//! Criterion measures the mean time per operation; after it, a fixed run of each flow prints
//! p50 / p99 latency, operations per second with one and two concurrent clients (two relying
//! parties or providers on the one store, as two instances would be), and the store round trips
//! per operation (store operations counted by a wrapper: each is one command or one statement).
//!
//! Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`);
//! an engine that does not answer is skipped with a line on standard error.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::otp::{Channel, CheckCode, LocalOtpProvider, Outbox, StartVerification};
use keyward::store::{
    CasOutcome, Entry, Key, MemoryStore, PostgresConfig, PostgresStore, RedisConfig, RedisStore,
    StateStore, Version, Write,
};
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, AuthenticatorVerifier, RegistrationRequest, RelyingParty,
    RelyingPartyConfig, UserEntity,
};
use keyward::{OtpProvider, Secret};

const ORIGIN: &str = "https://bench.example";
const REDIS_URL: &str = "redis://127.0.0.1:6379";
const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn answers(addr: &str) -> bool {
    TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

fn run_id() -> String {
    format!("kwbench{}", std::process::id())
}

struct Engine {
    name: &'static str,
    store: Arc<dyn StateStore>,
}

fn engines(rt: &tokio::runtime::Runtime) -> Vec<Engine> {
    let mut out = vec![Engine {
        name: "memory",
        store: Arc::new(MemoryStore::new()),
    }];
    if answers("127.0.0.1:6379") {
        let store = rt
            .block_on(RedisStore::connect(
                RedisConfig::new(REDIS_URL).prefix(format!("{}:", run_id())),
            ))
            .expect("redis");
        out.push(Engine {
            name: "redis",
            store: Arc::new(store),
        });
    } else {
        eprintln!("skipped: redis bench needs Redis on 127.0.0.1:6379");
    }
    if answers("127.0.0.1:5432") {
        let store = rt
            .block_on(PostgresStore::connect(
                PostgresConfig::new(POSTGRES_URL).schema(run_id()),
            ))
            .expect("postgres");
        out.push(Engine {
            name: "postgres",
            store: Arc::new(store),
        });
    } else {
        eprintln!("skipped: postgres bench needs PostgreSQL on 127.0.0.1:5432");
    }
    out
}

/// One relying party on `store` with one registered passkey.
struct Passkey {
    rp: RelyingParty,
    soft: SoftAuthenticator,
    user: Vec<u8>,
}

impl Passkey {
    async fn new(store: Arc<dyn StateStore>, user: &str) -> Passkey {
        let rp = RelyingParty::new(
            RelyingPartyConfig::new("bench.example", "Bench", ORIGIN).unwrap(),
            store,
        );
        let soft = SoftAuthenticator::new(-7, ORIGIN).unwrap();
        let user = user.as_bytes().to_vec();
        let request = RegistrationRequest::new(UserEntity::new(user.clone(), "u", "u").unwrap());
        let (options, state) = rp.start_registration(request).await.unwrap();
        let response = soft.register(&options).unwrap();
        rp.finish_registration(state, &response).await.unwrap();
        Passkey { rp, soft, user }
    }

    /// A started ceremony and the authenticator's answer: what a finish consumes.
    async fn prepared(
        &self,
    ) -> (
        keyward::webauthn::AuthenticationState,
        keyward::webauthn::AuthenticationResponseJson,
    ) {
        let (options, state) = self
            .rp
            .start_authentication(AuthenticationRequest::for_user(self.user.clone()))
            .await
            .unwrap();
        (state, self.soft.authenticate(&options).unwrap())
    }
}

fn otp(store: Arc<dyn StateStore>) -> (LocalOtpProvider, Outbox) {
    let outbox = Outbox::with_capacity(64);
    let otp = LocalOtpProvider::builder(store, Arc::new(outbox.clone()), Secret::new([42u8; 32]))
        .send_rate_limit(None)
        .build()
        .unwrap();
    (otp, outbox)
}

async fn otp_round(otp: &LocalOtpProvider, outbox: &Outbox, to: &str) {
    let v = otp
        .start(StartVerification::new(to, Channel::Sms))
        .await
        .unwrap();
    let code = outbox.last_code_to(&v.to).unwrap();
    let outcome = otp.check(CheckCode::sid(&v.sid, code)).await.unwrap();
    assert!(outcome.approved().is_some());
}

fn bench_engines(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engines = engines(&rt);
    let mut group = c.benchmark_group("engines");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(4));
    for engine in &engines {
        let passkey = rt.block_on(Passkey::new(engine.store.clone(), "bench-user"));
        group.bench_function(format!("{}/finish_authentication", engine.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (state, response) = passkey.prepared().await;
                        let started = Instant::now();
                        passkey
                            .rp
                            .finish_authentication(state, &response)
                            .await
                            .unwrap();
                        total += started.elapsed();
                    }
                    total
                })
            })
        });
        let (provider, outbox) = otp(engine.store.clone());
        group.bench_function(format!("{}/otp_start_check", engine.name), |b| {
            b.iter(|| rt.block_on(otp_round(&provider, &outbox, "+15017122661")))
        });
    }
    group.finish();
    rt.block_on(report(&engines));
    for engine in &engines {
        if engine.name == "postgres" {
            drop_schema(&rt);
        }
    }
}

fn drop_schema(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        if let Ok((client, conn)) =
            tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls).await
        {
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", run_id()))
                .await;
        }
    });
}

/// Counts the store operations a flow makes: each is one round trip on both engines (one
/// command or script, one statement), once scripts and statements are cached.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn StateStore>,
    ops: AtomicU64,
}

impl Counting {
    fn tick(&self) {
        self.ops.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl StateStore for Counting {
    async fn get(&self, key: &Key) -> keyward::Result<Option<Entry>> {
        self.tick();
        self.inner.get(key).await
    }
    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> keyward::Result<Option<Version>> {
        self.tick();
        self.inner.insert(key, value, ttl).await
    }
    async fn put(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> keyward::Result<Version> {
        self.tick();
        self.inner.put(key, value, ttl).await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> keyward::Result<CasOutcome> {
        self.tick();
        self.inner.compare_and_swap(key, expected, write).await
    }
    async fn take(&self, key: &Key) -> keyward::Result<Option<Vec<u8>>> {
        self.tick();
        self.inner.take(key).await
    }
    async fn increment(
        &self,
        key: &Key,
        delta: u64,
        ttl: Option<Duration>,
    ) -> keyward::Result<u64> {
        self.tick();
        self.inner.increment(key, delta, ttl).await
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies of `n` sequential runs of `op` on each of `clients` concurrent clients.
async fn measure<F, Fut>(clients: usize, n: usize, op: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Duration> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(op(client * n + i).await);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    (all, started.elapsed())
}

async fn report(engines: &[Engine]) {
    const N: usize = 400;
    println!();
    println!("| engine | flow | clients | p50 | p99 | ops/s | store round trips per op |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for engine in engines {
        let counting = Arc::new(Counting {
            inner: engine.store.clone(),
            ops: AtomicU64::new(0),
        });
        let store: Arc<dyn StateStore> = counting.clone();
        for clients in [1usize, 2] {
            // Each client is its own relying party (an instance) on the shared store.
            let mut passkeys = Vec::new();
            for c in 0..clients {
                passkeys.push(Arc::new(
                    Passkey::new(store.clone(), &format!("lat-{c}")).await,
                ));
            }
            let finish_ops = Arc::new(AtomicU64::new(0));
            let (lat, wall) = {
                let passkeys = passkeys.clone();
                let (counting, finish_ops) = (counting.clone(), finish_ops.clone());
                measure(clients, N, move |i| {
                    let passkey = passkeys[i / N].clone();
                    let (counting, finish_ops) = (counting.clone(), finish_ops.clone());
                    async move {
                        let (state, response) = passkey.prepared().await;
                        let before = counting.ops.load(Ordering::Relaxed);
                        let started = Instant::now();
                        passkey
                            .rp
                            .finish_authentication(state, &response)
                            .await
                            .unwrap();
                        let elapsed = started.elapsed();
                        // Exact with one client; with two, the other client's operations in
                        // the window are counted too, so only the one-client figure is printed.
                        finish_ops.fetch_add(
                            counting.ops.load(Ordering::Relaxed) - before,
                            Ordering::Relaxed,
                        );
                        elapsed
                    }
                })
                .await
            };
            let trips = if clients == 1 {
                format!(
                    "{:.2}",
                    finish_ops.load(Ordering::Relaxed) as f64 / N as f64
                )
            } else {
                "(as 1)".to_owned()
            };
            let busy: f64 = lat.iter().map(Duration::as_secs_f64).sum();
            println!(
                "| {} | finish_authentication | {clients} | {:.0} µs | {:.0} µs | {:.0} | {trips} |",
                engine.name,
                percentile(&lat, 0.5).as_secs_f64() * 1e6,
                percentile(&lat, 0.99).as_secs_f64() * 1e6,
                // Finishes per second of finishing time, the clients running side by side.
                (N * clients) as f64 / (busy / clients as f64),
            );
            let _ = wall;

            let providers: Vec<Arc<(LocalOtpProvider, Outbox)>> =
                (0..clients).map(|_| Arc::new(otp(store.clone()))).collect();
            let before = counting.ops.load(Ordering::Relaxed);
            let (lat, wall) = measure(clients, N, move |i| {
                let pair = providers[i / N].clone();
                async move {
                    let to = format!("+1501712{:04}", i % 10_000);
                    let started = Instant::now();
                    otp_round(&pair.0, &pair.1, &to).await;
                    started.elapsed()
                }
            })
            .await;
            let trips =
                (counting.ops.load(Ordering::Relaxed) - before) as f64 / (N * clients) as f64;
            println!(
                "| {} | otp start + check | {clients} | {:.0} µs | {:.0} µs | {:.0} | {trips:.2} |",
                engine.name,
                percentile(&lat, 0.5).as_secs_f64() * 1e6,
                percentile(&lat, 0.99).as_secs_f64() * 1e6,
                (N * clients) as f64 / wall.as_secs_f64(),
            );
        }
    }
}

criterion_group!(benches, bench_engines);
criterion_main!(benches);
