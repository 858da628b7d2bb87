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
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::otp::{Channel, CheckCode, LocalOtpProvider, Outbox, StartVerification};
use keyward::store::{
    Key, MemoryStore, PostgresConfig, PostgresStore, RedisConfig, RedisStore, StateStore,
};
use keyward::testing::SoftAuthenticator;
use keyward::webauthn::{
    AuthenticationRequest, AuthenticatorVerifier, RegistrationRequest, RelyingParty,
    RelyingPartyConfig, UserEntity,
};
use keyward::{OtpProvider, Secret};

#[path = "state_support.rs"]
mod support;
use support::CountingExt;

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
        .send_budget(None)
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
        match engine.name {
            "postgres" => drop_schema(&rt),
            "redis" => delete_redis_keys(),
            _ => {}
        }
    }
}

/// Deletes every Redis key under this run's prefix (`kwbench<pid>:`): the registered passkeys
/// and user records have no expiry and would stay behind otherwise.
fn delete_redis_keys() {
    let pattern = format!("{}:*", run_id());
    let deleted = redis::Client::open(REDIS_URL)
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| {
            let mut deleted = 0u64;
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)?;
                if !keys.is_empty() {
                    deleted += redis::cmd("UNLINK").arg(&keys).query::<u64>(&mut conn)?;
                }
                if next == 0 {
                    return Ok(deleted);
                }
                cursor = next;
            }
        });
    match deleted {
        Ok(n) => eprintln!("deleted the bench's {n} Redis keys ({pattern})"),
        Err(e) => eprintln!("could not delete the bench's Redis keys ({pattern}): {e}"),
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
    println!("load: {}", load_average());
    println!("| engine | flow | clients | p50 | p99 | ops/s | store round trips per op |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for engine in engines {
        let counting = Arc::new(support::Counting::new(engine.store.clone()));
        let store: Arc<dyn StateStore> = counting.clone();
        for clients in [1usize, 2] {
            // Each client is its own relying party (an instance) on the shared store, with its
            // ceremonies started beforehand so that only finishes are timed.
            let mut prepared = Vec::new();
            for c in 0..clients {
                let passkey = Arc::new(Passkey::new(store.clone(), &format!("lat-{c}")).await);
                let mut ceremonies = Vec::with_capacity(N);
                for _ in 0..N {
                    ceremonies.push(passkey.prepared().await);
                }
                // Popped from the end: the first signed (lowest counter) must finish first.
                ceremonies.reverse();
                prepared.push((passkey, std::sync::Mutex::new(ceremonies)));
            }
            let prepared = Arc::new(prepared);
            let before = counting.total();
            let (lat, wall) = {
                let prepared = prepared.clone();
                measure(clients, N, move |i| {
                    let prepared = prepared.clone();
                    async move {
                        let (passkey, ceremonies) = &prepared[i / N];
                        let (state, response) = ceremonies.lock().unwrap().pop().unwrap();
                        let started = Instant::now();
                        passkey
                            .rp
                            .finish_authentication(state, &response)
                            .await
                            .unwrap();
                        started.elapsed()
                    }
                })
                .await
            };
            let trips = (counting.total() - before) as f64 / (N * clients) as f64;
            println!(
                "| {} | finish_authentication | {clients} | {:.0} µs | {:.0} µs | {:.0} | {trips:.2} |",
                engine.name,
                percentile(&lat, 0.5).as_secs_f64() * 1e6,
                percentile(&lat, 0.99).as_secs_f64() * 1e6,
                (N * clients) as f64 / wall.as_secs_f64(),
            );

            let providers: Vec<Arc<(LocalOtpProvider, Outbox)>> =
                (0..clients).map(|_| Arc::new(otp(store.clone()))).collect();
            let before = counting.total();
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
            let trips = (counting.total() - before) as f64 / (N * clients) as f64;
            println!(
                "| {} | otp start + check | {clients} | {:.0} µs | {:.0} µs | {:.0} | {trips:.2} |",
                engine.name,
                percentile(&lat, 0.5).as_secs_f64() * 1e6,
                percentile(&lat, 0.99).as_secs_f64() * 1e6,
                (N * clients) as f64 / wall.as_secs_f64(),
            );
        }
    }
    println!("load: {}", load_average());
}

/// `/proc/loadavg`'s three load averages, to print next to every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `KW_BENCH_CREDENTIALS=10000000`: `finish_authentication` on PostgreSQL holding that many
/// credentials against the same holding 1,000, measured interleaved in one run.
///
/// Each size gets its own schema (the store's own migrations, then the primary key dropped, the
/// rows loaded with binary `COPY` and the key rebuilt, as a bulk import would), dropped at the
/// end. The rows are real credential records: one passkey is registered through the relying
/// party, and its user record and credential-id hint are copied for every other user with the
/// user handle and credential id patched in (same lengths), so every row is the record a
/// registration of that user would have written, with real keys.
fn bench_postgres_scale(c: &mut Criterion) {
    let Some(big) = std::env::var("KW_BENCH_CREDENTIALS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        eprintln!("skipped: set KW_BENCH_CREDENTIALS=10000000 for the PostgreSQL scale bench");
        return;
    };
    if !answers("127.0.0.1:5432") {
        eprintln!("skipped: postgres scale bench needs PostgreSQL on 127.0.0.1:5432");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sizes = [1_000u64, big];
    let mut loaded = Vec::new();
    for size in sizes {
        let schema = format!("{}_scale_{size}", run_id());
        let started = Instant::now();
        let (passkey, bytes) = rt.block_on(load_credentials(&schema, size));
        println!(
            "loaded {size} credentials into {schema} in {:.1} s ({:.2} GB with indexes; load {})",
            started.elapsed().as_secs_f64(),
            bytes as f64 / 1e9,
            load_average()
        );
        loaded.push((size, schema, passkey));
    }
    // Warm both (index pages into the cache), then measure interleaved rounds so that load
    // changes on the shared machine fall on both sizes alike.
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); loaded.len()];
    rt.block_on(async {
        for (_, _, passkey) in &loaded {
            for _ in 0..100 {
                let (state, response) = passkey.prepared().await;
                passkey
                    .rp
                    .finish_authentication(state, &response)
                    .await
                    .unwrap();
            }
        }
        for _ in 0..20 {
            for (i, (_, _, passkey)) in loaded.iter().enumerate() {
                for _ in 0..50 {
                    let (state, response) = passkey.prepared().await;
                    let started = Instant::now();
                    passkey
                        .rp
                        .finish_authentication(state, &response)
                        .await
                        .unwrap();
                    latencies[i].push(started.elapsed());
                }
            }
        }
    });
    let mut group = c.benchmark_group("engines_scale");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for (size, _, passkey) in &loaded {
        group.bench_function(format!("postgres/{size}/finish_authentication"), |b| {
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
    }
    group.finish();
    println!();
    println!("load: {}", load_average());
    println!("| credentials in PostgreSQL | finishes | p50 | p99 | mean |");
    println!("| --- | --- | --- | --- | --- |");
    let mut means = Vec::new();
    for ((size, _, _), lat) in loaded.iter().zip(latencies.iter_mut()) {
        lat.sort_unstable();
        let mean = lat.iter().map(Duration::as_secs_f64).sum::<f64>() / lat.len() as f64;
        means.push((percentile(lat, 0.5).as_secs_f64(), mean));
        println!(
            "| {size} | {} | {:.0} µs | {:.0} µs | {:.0} µs |",
            lat.len(),
            percentile(lat, 0.5).as_secs_f64() * 1e6,
            percentile(lat, 0.99).as_secs_f64() * 1e6,
            mean * 1e6
        );
    }
    if let [(p50_small, mean_small), (p50_big, mean_big)] = means[..] {
        println!(
            "ratio {big} / 1000: p50 {:.3}, mean {:.3}",
            p50_big / p50_small,
            mean_big / mean_small
        );
    }
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        for (_, schema, _) in &loaded {
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await
                .unwrap();
        }
    });
}

/// Creates `schema` through the store, registers the template passkey, bulk-loads `size - 1`
/// more users' credentials, and answers the template passkey (on its own store) and the bytes
/// the table and its indexes take.
async fn load_credentials(schema: &str, size: u64) -> (Passkey, i64) {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;

    const TEMPLATE: &str = "bulk-user-000000000";
    let store = PostgresStore::connect(PostgresConfig::new(POSTGRES_URL).schema(schema))
        .await
        .expect("postgres");
    let passkey = Passkey::new(Arc::new(store), TEMPLATE).await;
    let user_key = Key::durable("webauthn")
        .part("user")
        .bytes(TEMPLATE.as_bytes());
    let template = passkey
        .rp
        .credentials_for_user(TEMPLATE.as_bytes())
        .await
        .unwrap();
    let cred_id = template[0].credential_id.clone();
    let (client, conn) = tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let table = format!("\"{schema}\".keyward_state");
    let record: Vec<u8> = client
        .query_one(
            &format!("SELECT value FROM {table} WHERE key = $1"),
            &[&user_key.as_str()],
        )
        .await
        .unwrap()
        .get(0);
    let find = |needle: &[u8]| -> Vec<usize> {
        (0..=record.len() - needle.len())
            .filter(|&i| &record[i..i + needle.len()] == needle)
            .collect()
    };
    let (user_at, cred_at) = (find(TEMPLATE.as_bytes()), find(&cred_id));
    assert!(
        !user_at.is_empty() && !cred_at.is_empty(),
        "template fields"
    );

    client
        .batch_execute(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT keyward_state_pkey"
        ))
        .await
        .unwrap();
    let sink = client
        .copy_in(&format!(
            "COPY {table} (key, value, version, expires_at) FROM STDIN BINARY"
        ))
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::TEXT, Type::BYTEA, Type::INT8, Type::TIMESTAMPTZ],
    );
    let mut writer = std::pin::pin!(writer);
    let none: Option<std::time::SystemTime> = None;
    for i in 1..size {
        let user = format!("bulk-user-{i:09}");
        let mut cred = cred_id.clone();
        let n = cred.len();
        cred[n - 8..].copy_from_slice(&i.to_be_bytes());
        let mut value = record.clone();
        for &at in &user_at {
            value[at..at + user.len()].copy_from_slice(user.as_bytes());
        }
        for &at in &cred_at {
            value[at..at + n].copy_from_slice(&cred);
        }
        let version = (i as i64).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64);
        let key = Key::durable("webauthn").part("user").bytes(user.as_bytes());
        writer
            .as_mut()
            .write(&[&key.as_str(), &value, &version, &none])
            .await
            .unwrap();
        let hint = Key::durable("webauthn").part("cred").bytes(&cred);
        writer
            .as_mut()
            .write(&[
                &hint.as_str(),
                &user.as_bytes(),
                &version.wrapping_add(1),
                &none,
            ])
            .await
            .unwrap();
    }
    writer.finish().await.unwrap();
    client
        .batch_execute(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT keyward_state_pkey PRIMARY KEY (key); ANALYZE {table}"
        ))
        .await
        .unwrap();
    let bytes: i64 = client
        .query_one(&format!("SELECT pg_total_relation_size('{table}')"), &[])
        .await
        .unwrap()
        .get(0);
    (passkey, bytes)
}

criterion_group!(benches, bench_engines, bench_postgres_scale);
criterion_main!(benches);
