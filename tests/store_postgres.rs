//! `PostgresStore` against the machine's PostgreSQL: the exported conformance suite in a schema
//! of its own (and the key-split suite on a local SSKS kept there), then what the suite cannot see: idempotent migrations (also when instances start
//! together), the expiry sweeper, rows that stay whole when a connection is killed inside an
//! operation, answers lost between the server and the client (through a proxy that cuts the
//! connection after the statement committed), and passwords kept out of `Debug`.
#![cfg(all(feature = "postgres", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keyward::store::{CasOutcome, Key, PostgresConfig, PostgresStore, StateStore, Ttl, Write};
use keyward::testing::conformance::{self, StoreCapabilities};
use servers::unique;

/// A schema dropped when the test ends (pass or fail).
struct Schema(String);

impl Schema {
    fn new(tag: &str) -> Schema {
        Schema(unique(tag))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
            .arg(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0))
            .output();
    }
}

async fn raw() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(servers::POSTGRES_URL, tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client
}

async fn connect(schema: &Schema) -> PostgresStore {
    PostgresStore::connect(PostgresConfig::new(servers::POSTGRES_URL).schema(&schema.0))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_postgres() {
    if !servers::shared_postgres("conformance_on_postgres") {
        return;
    }
    let schema = Schema::new("kwconf");
    let store = connect(&schema).await;
    let caps = StoreCapabilities::real_time(Duration::from_millis(250))
        .with_namespace(unique("conf"))
        .with_max_value_len(1 << 20, true);
    conformance::state_store(&store, &caps).await;
}

/// The local SSKS's rules (one compare-and-swap per validation, 20 racing right answers) on
/// PostgreSQL's single-row statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ssks_conformance_on_postgres() {
    use keyward::keysplit::local::LocalKeySplitStore;
    use keyward::testing::conformance::{KeySplitCapabilities, key_split_store};
    use keyward::{Env, ManualClock, otp::Outbox};
    if !servers::shared_postgres("local_ssks_conformance_on_postgres") {
        return;
    }
    let schema = Schema::new("kwssks");
    let store = connect(&schema).await;
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let local = LocalKeySplitStore::new(Arc::new(store), Arc::new(outbox.clone()))
        .env(Env::system().with_clock(clock.clone()));
    key_split_store(&local, &KeySplitCapabilities::new(outbox, clock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_safe_when_instances_start_together() {
    if !servers::shared_postgres("migrations_are_idempotent") {
        return;
    }
    let schema = Schema::new("kwmig");
    let url = servers::POSTGRES_URL;
    let starts = (0..4).map(|_| {
        let name = schema.0.clone();
        tokio::spawn(async move {
            PostgresStore::connect(PostgresConfig::new(url).schema(name).pool_size(2)).await
        })
    });
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().unwrap());
    }
    let k = Key::durable("mig").part("k");
    stores[0].put(&k, b"kept".to_vec(), None).await.unwrap();
    // Connecting again applies nothing twice and keeps the data.
    let again = connect(&schema).await;
    assert_eq!(again.get(&k).await.unwrap().unwrap().value, b"kept");
    let client = raw().await;
    let applied: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".keyward_migrations", schema.0),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_are_invisible_then_swept() {
    if !servers::shared_postgres("expired_rows_are_invisible_then_swept") {
        return;
    }
    let schema = Schema::new("kwsweep");
    let store = PostgresStore::connect(
        PostgresConfig::new(servers::POSTGRES_URL)
            .schema(&schema.0)
            .sweep_interval(None),
    )
    .await
    .unwrap();
    for i in 0..2_500 {
        let key = Key::ephemeral("sweep").part(&i.to_string());
        store
            .put(&key, b"v".to_vec(), Some(Duration::from_millis(50)))
            .await
            .unwrap();
    }
    let durable = Key::durable("sweep").part("stays");
    store.put(&durable, b"d".to_vec(), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        store.get(&Key::ephemeral("sweep").part("7")).await.unwrap(),
        None
    );
    let client = raw().await;
    let sql = format!("SELECT count(*) FROM \"{}\".keyward_state", schema.0);
    let count = async |client: &tokio_postgres::Client| {
        client.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0)
    };
    assert_eq!(
        count(&client).await,
        2_501,
        "expired rows wait for the sweep"
    );
    assert_eq!(store.sweep_expired().await.unwrap(), 2_500);
    assert_eq!(count(&client).await, 1);
    assert_eq!(store.get(&durable).await.unwrap().unwrap().value, b"d");

    // The background task sweeps by itself.
    let swept = PostgresStore::connect(
        PostgresConfig::new(servers::POSTGRES_URL)
            .schema(&schema.0)
            .sweep_interval(Some(Duration::from_millis(100))),
    )
    .await
    .unwrap();
    swept
        .put(
            &Key::ephemeral("sweep").part("bg"),
            b"v".to_vec(),
            Some(Duration::from_millis(10)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&client).await, 1, "the sweeper ran");
}

/// Writes of large values race with `pg_terminate_backend` on the store's connections: every
/// operation either fails with a storage error or lands whole, so the row read afterwards is
/// one value written entirely, with the version its write returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_inside_an_operation_leaves_the_row_old_or_new() {
    if !servers::shared_postgres("a_connection_killed_inside_an_operation") {
        return;
    }
    let schema = Schema::new("kwkill");
    // Only this test's connections are killed: they carry their own application_name.
    let app = schema.0.clone();
    let store = Arc::new(
        PostgresStore::connect(
            PostgresConfig::new(servers::POSTGRES_URL)
                .schema(&schema.0)
                .application_name(&app)
                .pool_size(4),
        )
        .await
        .unwrap(),
    );
    let k = Key::durable("kill").part("row");
    let value = |n: u8| vec![n; 256 * 1024];
    let v0 = store.put(&k, value(0), None).await.unwrap();

    // First, deterministically: a compare-and-swap blocked on the row's lock is killed.
    let mut locker = raw().await;
    let tx = locker.transaction().await.unwrap();
    tx.query(
        &format!(
            "SELECT 1 FROM \"{}\".keyward_state WHERE key = $1 FOR UPDATE",
            schema.0
        ),
        &[&k.as_str()],
    )
    .await
    .unwrap();
    let blocked = {
        let (store, k) = (store.clone(), k.clone());
        tokio::spawn(async move {
            store
                .compare_and_swap(
                    &k,
                    v0,
                    Write::Set {
                        value: value(9),
                        ttl: Ttl::Keep,
                    },
                )
                .await
        })
    };
    let killer_client = raw().await;
    let mut killed_blocked = 0;
    for _ in 0..200 {
        killed_blocked = killer_client
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if killed_blocked > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        killed_blocked, 1,
        "the blocked statement was found and killed"
    );
    let err = blocked.await.unwrap().unwrap_err();
    assert_eq!(*err.kind(), keyward::ErrorKind::Storage, "{err:?}");
    tx.rollback().await.unwrap();
    let entry = store.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (entry.value, entry.version),
        (value(0), v0),
        "the row is the old one"
    );

    // Then a storm: kills at random moments while writes go on.
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let client = raw().await;
            let mut killed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n: i64 = client
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE application_name = $1 AND pid <> pg_backend_pid() \
                         AND state = 'active'",
                        &[&app],
                    )
                    .await
                    .unwrap()
                    .get(0);
                killed += u64::try_from(n).unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            killed
        })
    };
    let (mut failed, mut landed) = (0, 0);
    let mut last_landed: Option<(u8, keyward::store::Version)> = None;
    for n in 1..=200u8 {
        let current = match store.get(&k).await {
            Ok(Some(entry)) => entry,
            Ok(None) => panic!("the row disappeared"),
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        assert!(
            current.value.iter().all(|b| *b == current.value[0])
                && current.value.len() == 256 * 1024,
            "a mixed row was read"
        );
        match store
            .compare_and_swap(
                &k,
                current.version,
                Write::Set {
                    value: value(n),
                    ttl: Ttl::Keep,
                },
            )
            .await
        {
            Ok(CasOutcome::Swapped { version }) => {
                landed += 1;
                last_landed = Some((n, version.unwrap()));
            }
            Ok(CasOutcome::Conflict) => panic!("nobody else writes this row"),
            Err(e) => {
                assert_eq!(*e.kind(), keyward::ErrorKind::Storage, "{e:?}");
                failed += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let killed = killer.await.unwrap();
    let end = store.get(&k).await.unwrap().unwrap();
    assert!(
        end.value.iter().all(|b| *b == end.value[0]),
        "the row is whole"
    );
    assert_eq!(end.value.len(), 256 * 1024);
    // The final row is the last write that reported success, or a later one whose answer was
    // lost with its connection (its version is then one no caller saw).
    if let Some((n, version)) = last_landed {
        assert!(end.value[0] >= n);
        if end.value[0] == n {
            assert_eq!(end.version, version);
        }
    }
    eprintln!("kill test: {killed} backends killed, {landed} writes landed, {failed} failed");
    assert!(landed > 0, "some writes must land");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_stay_out_of_debug() {
    if !servers::shared_postgres("passwords_stay_out_of_debug") {
        return;
    }
    let schema = Schema::new("kwpw");
    // Trust authentication ignores the password; it must still never be shown.
    let url = "postgres://postgres:pw-never-shown-51c@127.0.0.1:5432/test";
    let config = PostgresConfig::new(url).schema(&schema.0);
    assert!(!format!("{config:?}").contains("pw-never-shown"));
    let store = PostgresStore::connect(config).await.unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("pw-never-shown"), "{shown}");
    assert!(shown.contains("postgres://***@127.0.0.1:5432"), "{shown}");
    // A refused connection's error does not echo the URL either.
    let err = PostgresStore::connect(
        PostgresConfig::new("postgres://postgres:pw-never-shown-51c@127.0.0.1:1/test")
            .connect_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert_eq!(*err.kind(), keyward::ErrorKind::Storage);
    assert!(!format!("{err} {err:?}").contains("pw-never-shown"));
}

/// The stored value of `key` in `schema`, read directly (not through the proxy).
async fn read_direct(schema: &Schema, key: &Key) -> Option<Vec<u8>> {
    raw()
        .await
        .query_opt(
            &format!(
                "SELECT value FROM \"{}\".keyward_state WHERE key = $1",
                schema.0
            ),
            &[&key.as_str()],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

/// A lost answer must come back as a retryable storage error, never as the answer to a
/// second, re-sent execution.
fn assert_lost<T: std::fmt::Debug>(what: &str, result: keyward::Result<T>) {
    match result {
        Err(e) => {
            assert_eq!(*e.kind(), keyward::ErrorKind::Storage, "{what}: {e:?}");
            assert!(
                e.is_retryable(),
                "{what}: a lost answer is retryable: {e:?}"
            );
        }
        Ok(answer) => panic!(
            "{what}: the answer was lost, yet the store reported {answer:?} \
             (the driver re-sent the statement after the connection dropped)"
        ),
    }
}

/// tokio-postgres and deadpool never re-send a statement: a statement whose answer is lost
/// after it committed (the proxy waits for `ReadyForQuery`, then closes the connection) is a
/// retryable storage error, applied exactly once, and the store works again on a new
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_are_errors_not_resends() {
    if !servers::shared_postgres("lost_answers_are_errors_not_resends") {
        return;
    }
    let schema = Schema::new("kwlost");
    let proxy = proxy::CutProxy::start(5432, proxy::Answer::Postgres);
    let url = format!("postgres://postgres@127.0.0.1:{}/test", proxy.port());
    let store = PostgresStore::connect(
        PostgresConfig::new(url)
            .schema(&schema.0)
            .sweep_interval(None),
    )
    .await
    .unwrap();
    let ttl = Some(Duration::from_secs(60));

    let counter = Key::ephemeral("lost").part(&unique("inc"));
    proxy.cut_answer_to(counter.as_str().as_bytes());
    assert_lost("increment", store.increment(&counter, 1, ttl).await);
    assert_eq!(proxy.cuts(), 1, "the proxy cut the increment's answer");
    assert_eq!(
        read_direct(&schema, &counter).await.as_deref(),
        Some(&b"1"[..]),
        "the server counted the increment exactly once"
    );
    assert_eq!(store.increment(&counter, 1, ttl).await.unwrap(), 2);

    let entry = Key::ephemeral("lost").part(&unique("cas"));
    let old = store.put(&entry, b"old".to_vec(), ttl).await.unwrap();
    proxy.cut_answer_to(entry.as_str().as_bytes());
    let write = Write::Set {
        value: b"new".to_vec(),
        ttl: Ttl::Keep,
    };
    assert_lost(
        "compare_and_swap",
        store.compare_and_swap(&entry, old, write).await,
    );
    assert_eq!(proxy.cuts(), 2, "the proxy cut the swap's answer");
    assert_eq!(
        read_direct(&schema, &entry).await.as_deref(),
        Some(&b"new"[..])
    );
    let now = store.get(&entry).await.unwrap().unwrap();
    assert_eq!(
        (now.value.as_slice(), now.version != old),
        (&b"new"[..], true)
    );
    assert_eq!(
        store
            .compare_and_swap(&entry, old, Write::Delete)
            .await
            .unwrap(),
        CasOutcome::Conflict
    );

    let single_use = Key::ephemeral("lost").part(&unique("take"));
    store
        .put(&single_use, b"challenge".to_vec(), ttl)
        .await
        .unwrap();
    proxy.cut_answer_to(single_use.as_str().as_bytes());
    assert_lost("take", store.take(&single_use).await);
    assert_eq!(proxy.cuts(), 3, "the proxy cut the take's answer");
    assert_eq!(
        read_direct(&schema, &single_use).await,
        None,
        "the value is gone"
    );
    assert_eq!(store.take(&single_use).await.unwrap(), None);
    assert_eq!(proxy.cuts(), 3);
}
