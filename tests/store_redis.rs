//! `RedisStore` against real servers: the exported conformance suite on the machine's Redis and
//! on a three-node Redis Cluster started for the test (and the key-split suite on a local SSKS
//! kept there); then what the suite cannot see: the key
//! prefix and server-kept TTLs, script reloading after `SCRIPT FLUSH`, a server that goes away
//! and comes back, answers lost between the server and the client (through a proxy that cuts
//! the connection after the server executed a command), and URLs with passwords kept out of
//! `Debug` and errors.
#![cfg(all(feature = "redis", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward::ErrorKind;
use keyward::store::{
    CasOutcome, Key, RedisConfig, RedisStore, StateStore, StateStoreExt, Ttl, Write,
};
use keyward::testing::conformance::{self, StoreCapabilities};
use proxy::{Answer, CutProxy};
use servers::{RedisCluster, RedisServer, unique};

fn caps(namespace: &str) -> StoreCapabilities {
    StoreCapabilities::real_time(Duration::from_millis(250))
        .with_namespace(namespace)
        .with_max_value_len(1 << 20, true)
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_standalone_redis() {
    if !servers::shared_redis("conformance_on_standalone_redis") {
        return;
    }
    let prefix = format!("{}:", unique("kwtest"));
    let store = RedisStore::connect(RedisConfig::new(servers::REDIS_URL).prefix(&prefix))
        .await
        .unwrap();
    conformance::state_store(&store, &caps(&unique("conf"))).await;
    // Every key the suite wrote carried the prefix, and the suite cleaned up after itself.
    let mut conn = raw(servers::REDIS_URL).await;
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left.is_empty(), "the suite left keys behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_redis_cluster() {
    if !servers::redis_binaries("conformance_on_redis_cluster") {
        return;
    }
    let cluster = RedisCluster::start();
    let store = RedisStore::connect(RedisConfig::cluster(cluster.urls()).prefix("kw:"))
        .await
        .unwrap();
    conformance::state_store(&store, &caps(&unique("conf"))).await;
    // Keys are spread over the slots of all three primaries.
    for i in 0..60 {
        let key = Key::ephemeral("spread").part(&i.to_string());
        store
            .put(&key, b"x".to_vec(), Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    for node in 0..3 {
        assert!(cluster.dbsize(node) > 0, "node {node} holds no key");
    }
    // The local SSKS's rules (one compare-and-swap per validation, 20 racing right answers) hold
    // on the cluster's single-key operations too.
    local_ssks_conformance(Arc::new(store)).await;
}

/// The key-split conformance suite on a local SSKS kept in `store`.
async fn local_ssks_conformance(store: Arc<dyn StateStore>) {
    use keyward::keysplit::local::LocalKeySplitStore;
    use keyward::testing::conformance::{KeySplitCapabilities, key_split_store};
    use keyward::{Env, ManualClock, otp::Outbox};
    // Sessions expire by the SSKS's clock (moved by the suite), entries by the server's.
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let outbox = Outbox::new();
    let local = LocalKeySplitStore::new(store, Arc::new(outbox.clone()))
        .env(Env::system().with_clock(clock.clone()));
    key_split_store(
        &local,
        &KeySplitCapabilities::new(outbox, clock).with_prefix(unique("ssks")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ssks_conformance_on_standalone_redis() {
    if !servers::shared_redis("local_ssks_conformance_on_standalone_redis") {
        return;
    }
    let prefix = servers::SharedRedisPrefix::new("kwssks");
    let store = RedisStore::connect(RedisConfig::new(servers::REDIS_URL).prefix(prefix.as_str()))
        .await
        .unwrap();
    local_ssks_conformance(Arc::new(store)).await;
    // The durable records it wrote stay until the prefix is cleared (as every shared-Redis test
    // does on drop), which leaves nothing behind.
    assert!(
        prefix.keys() > 0,
        "the suite stored nothing under its prefix"
    );
    prefix.clear();
    assert_eq!(prefix.keys(), 0, "keys left under the test's prefix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_prefixed_and_ttls_kept_by_the_server() {
    if !servers::shared_redis("keys_are_prefixed_and_ttls_kept_by_the_server") {
        return;
    }
    let prefix = format!("{}:", unique("kwtest"));
    let store = RedisStore::connect(RedisConfig::new(servers::REDIS_URL).prefix(&prefix))
        .await
        .unwrap();
    let key = Key::ephemeral("otp").part("rec").part("ve1");
    store
        .put(&key, b"v".to_vec(), Some(Duration::from_secs(90)))
        .await
        .unwrap();
    store
        .increment(
            &Key::ephemeral("otp").part("n"),
            3,
            Some(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    let mut conn = raw(servers::REDIS_URL).await;
    let full = format!("{prefix}{}", key.as_str());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&full)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((85_000..=90_000).contains(&pttl), "pttl {pttl}");
    let counter_ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}e:otp:n"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (1..=1500).contains(&counter_ttl),
        "counter pttl {counter_ttl}"
    );
    // Another store with another prefix on the same server sees none of it.
    let other = RedisStore::connect(RedisConfig::new(servers::REDIS_URL).prefix("other:"))
        .await
        .unwrap();
    assert_eq!(other.get(&key).await.unwrap(), None);
    assert!(store.delete(&key).await.unwrap());
    store.take(&Key::ephemeral("otp").part("n")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_reloaded_after_script_flush() {
    if !servers::redis_binaries("scripts_are_reloaded_after_script_flush") {
        return;
    }
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisConfig::new(server.url()))
        .await
        .unwrap();
    let c = Key::ephemeral("n").part("c");
    assert_eq!(store.increment(&c, 1, None).await.unwrap(), 1);
    let mut conn = raw(&server.url()).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.increment(&c, 1, None).await.unwrap(),
        2,
        "NOSCRIPT reloads"
    );
    let v = store.get(&c).await.unwrap().unwrap().version;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        store
            .compare_and_swap(&c, v, keyward::store::Write::Delete)
            .await
            .unwrap(),
        keyward::store::CasOutcome::Swapped { version: None }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_gives_storage_errors_then_works_again() {
    if !servers::redis_binaries("a_server_that_goes_away_gives_storage_errors_then_works_again") {
        return;
    }
    let mut server = RedisServer::start();
    let store = RedisStore::connect(
        RedisConfig::new(server.url())
            .connect_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_millis(500))
            .operation_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let k = Key::ephemeral("fault").part("k");
    store.put(&k, b"before".to_vec(), None).await.unwrap();
    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get(&k).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Storage, "{err:?}");
        assert!(err.is_retryable(), "connection loss is retryable: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "bounded: {:?}",
            started.elapsed()
        );
        let err = store.increment(&k, 1, None).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::Storage);
        assert!(store.take(&k).await.is_err());
    }
    server.resume();
    // The same store value reconnects by itself (the server came back empty: no persistence).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.put(&k, b"after".to_vec(), None).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(*e.kind(), ErrorKind::Storage);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("store did not reconnect: {e:?}"),
        }
    }
    assert_eq!(
        store.take(&k).await.unwrap().as_deref(),
        Some(&b"after"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_stay_out_of_debug_and_errors() {
    if !servers::redis_binaries("passwords_stay_out_of_debug_and_errors") {
        return;
    }
    let server = RedisServer::start_with(&["--requirepass", "right-password-7f3a"]);
    let good = format!("redis://:right-password-7f3a@127.0.0.1:{}", server.port());
    let bad = format!("redis://:wrong-password-c91e@127.0.0.1:{}", server.port());
    let config = RedisConfig::new(&bad);
    let shown = format!("{config:?}");
    assert!(!shown.contains("wrong-password"), "{shown}");
    let err = RedisStore::connect(config).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-password"), "{text}");
    assert_eq!(*err.kind(), ErrorKind::Storage);
    let store = RedisStore::connect(RedisConfig::new(&good)).await.unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains("right-password"), "{shown}");
    assert!(shown.contains("***@127.0.0.1"), "{shown}");
    store
        .put(&Key::durable("x").part("y"), b"1".to_vec(), None)
        .await
        .unwrap();
    // A malformed URL is a configuration error that does not echo it.
    let err = RedisStore::connect(RedisConfig::new("redis://:sec%ret@[bad"))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("sec%ret"));
}

/// The stored bytes of `full_key` read on the servers themselves, not through a proxy: on a
/// cluster the node owning the key's slot answers and the others answer `MOVED`.
async fn read_direct(ports: &[u16], full_key: &str) -> Option<Vec<u8>> {
    for port in ports {
        let mut conn = raw(&format!("redis://127.0.0.1:{port}")).await;
        let answer: redis::RedisResult<Option<Vec<u8>>> =
            redis::cmd("GET").arg(full_key).query_async(&mut conn).await;
        if let Ok(stored) = answer {
            return stored;
        }
    }
    panic!("no node answered GET {full_key}");
}

/// The payload of a stored entry (after its 16-digit version).
fn payload(stored: &[u8]) -> &[u8] {
    &stored[16..]
}

fn cuts(proxies: &[CutProxy]) -> u32 {
    proxies.iter().map(CutProxy::cuts).sum()
}

/// Asserts the proxies have cut `expected` answers in all, the last one `what`'s.
fn assert_cut(proxies: &[CutProxy], expected: u32, what: &str, error: &keyward::Error) {
    let matched: u32 = proxies.iter().map(CutProxy::matched).sum();
    assert_eq!(
        cuts(proxies),
        expected,
        "the proxy cut the {what}'s answer (the store answered {error:?}; \
         {matched} requests matched so far)"
    );
}

/// Arms every proxy to lose the answer to the next command naming `full_key`.
fn lose_answer_to(proxies: &[CutProxy], full_key: &str) {
    for p in proxies {
        p.cut_answer_to(full_key.as_bytes());
    }
}

fn disarm(proxies: &[CutProxy]) {
    for p in proxies {
        p.disarm();
    }
}

/// A lost answer must come back as a retryable storage error, never as the answer to a
/// second, re-sent execution.
fn assert_lost<T: std::fmt::Debug>(what: &str, result: keyward::Result<T>) -> keyward::Error {
    match result {
        Err(e) => {
            assert_eq!(*e.kind(), ErrorKind::Storage, "{what}: {e:?}");
            assert!(
                e.is_retryable(),
                "{what}: a lost answer is retryable: {e:?}"
            );
            e
        }
        Ok(answer) => panic!(
            "{what}: the answer was lost, yet the store reported {answer:?} \
             (the client re-sent the command after the connection dropped)"
        ),
    }
}

/// Reads `key` until the store answers again after a cut connection, within 10 s; returns how
/// many reads were refused meanwhile (each a retryable storage error).
///
/// A standalone store reconnects on the next operation. A cluster store may refuse a few: while
/// the connection to the node is being re-established, redis-rs sends the command to another
/// node, which answers `MOVED`, and with no client retries that is a retryable error (nothing
/// was executed).
async fn works_again(store: &RedisStore, key: &Key) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = 0;
    loop {
        match store.get(key).await {
            Ok(_) => return refused,
            Err(e) => {
                assert_eq!(*e.kind(), ErrorKind::Storage, "{e:?}");
                assert!(e.is_retryable(), "{e:?}");
                assert!(
                    Instant::now() < deadline,
                    "the store did not work again: {e:?}"
                );
                refused += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Every write whose answer is lost (the proxies cut the connection once the server executed
/// it): the caller gets a retryable storage error, the server applied it exactly once, and the
/// same store value works again afterwards. Returns how many reads were refused while it
/// reconnected (see [`works_again`]).
async fn lost_answers_are_errors_not_resends(
    store: &RedisStore,
    proxies: &[CutProxy],
    direct_ports: &[u16],
) -> u32 {
    let mut refused = 0;
    let full = |k: &Key| format!("{}{}", store.prefix(), k.as_str());
    let ttl = Some(Duration::from_secs(60));

    // An increment (EVALSHA) whose answer is lost counts once.
    let counter = Key::ephemeral("lost").part(&unique("inc"));
    lose_answer_to(proxies, &full(&counter));
    let error = assert_lost("increment", store.increment(&counter, 1, ttl).await);
    assert_cut(proxies, 1, "increment", &error);
    let stored = read_direct(direct_ports, &full(&counter)).await.unwrap();
    assert_eq!(
        payload(&stored),
        b"1",
        "the server counted the increment exactly once"
    );
    // The same store value works again without being re-created.
    refused += works_again(store, &counter).await;
    assert_eq!(store.increment(&counter, 1, ttl).await.unwrap(), 2);
    let stored = read_direct(direct_ports, &full(&counter)).await.unwrap();
    assert_eq!(payload(&stored), b"2");

    // A compare-and-swap (EVALSHA) whose answer is lost is applied once, and not reported as
    // a conflict (which a re-send, meeting its own write, would answer).
    let entry = Key::ephemeral("lost").part(&unique("cas"));
    let old = store.put(&entry, b"old".to_vec(), ttl).await.unwrap();
    lose_answer_to(proxies, &full(&entry));
    let write = Write::Set {
        value: b"new".to_vec(),
        ttl: Ttl::Keep,
    };
    let error = assert_lost(
        "compare_and_swap",
        store.compare_and_swap(&entry, old, write).await,
    );
    assert_cut(proxies, 2, "swap", &error);
    let stored = read_direct(direct_ports, &full(&entry)).await.unwrap();
    assert_eq!(payload(&stored), b"new", "the swap was applied");
    refused += works_again(store, &entry).await;
    let now = store.get(&entry).await.unwrap().unwrap();
    assert_eq!(now.value, b"new");
    assert_ne!(now.version, old);
    assert_eq!(
        store
            .compare_and_swap(&entry, old, Write::Delete)
            .await
            .unwrap(),
        CasOutcome::Conflict,
        "the old version no longer matches"
    );
    assert_eq!(
        store
            .compare_and_swap(&entry, now.version, Write::Delete)
            .await
            .unwrap(),
        CasOutcome::Swapped { version: None }
    );

    // A take (GETDEL) whose answer is lost reports an error; the value is gone on the server
    // (a flow built on it fails closed and the ceremony starts again).
    let single_use = Key::ephemeral("lost").part(&unique("take"));
    store
        .put(&single_use, b"challenge".to_vec(), ttl)
        .await
        .unwrap();
    lose_answer_to(proxies, &full(&single_use));
    let error = assert_lost("take", store.take(&single_use).await);
    assert_cut(proxies, 3, "take", &error);
    assert_eq!(read_direct(direct_ports, &full(&single_use)).await, None);
    refused += works_again(store, &single_use).await;
    assert_eq!(store.take(&single_use).await.unwrap(), None);

    // Nothing is armed any more and the store carries on.
    disarm(proxies);
    store
        .put(&single_use, b"again".to_vec(), ttl)
        .await
        .unwrap();
    assert_eq!(
        store.take(&single_use).await.unwrap().as_deref(),
        Some(&b"again"[..])
    );
    assert!(store.delete(&counter).await.unwrap());
    assert_eq!(cuts(proxies), 3);
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lost_answers_are_errors_not_resends() {
    if !servers::redis_binaries("cluster_lost_answers_are_errors_not_resends") {
        return;
    }
    // Each node advertises its proxy, so the client's slot map (and any MOVED) leads through
    // the proxies; the test reads the nodes directly.
    let proxies = [(); 3].map(|()| CutProxy::start(0, Answer::Redis));
    let cluster = RedisCluster::start_announcing(proxies.each_ref().map(CutProxy::port));
    for (proxy, port) in proxies.iter().zip(cluster.ports()) {
        proxy.set_target(port);
    }
    let seeds: Vec<String> = proxies
        .iter()
        .map(|p| format!("redis://127.0.0.1:{}", p.port()))
        .collect();
    let store =
        RedisStore::connect(RedisConfig::cluster(seeds).prefix(format!("{}:", unique("kwlost"))))
            .await
            .unwrap();
    let refused = lost_answers_are_errors_not_resends(&store, &proxies, &cluster.ports()).await;
    eprintln!("cluster: {refused} reads refused (MOVED) while reconnecting after 3 cuts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_lost_answers_are_errors_not_resends() {
    if !servers::redis_binaries("standalone_lost_answers_are_errors_not_resends") {
        return;
    }
    let server = RedisServer::start();
    let proxies = [CutProxy::start(server.port(), Answer::Redis)];
    let url = format!("redis://127.0.0.1:{}", proxies[0].port());
    let store = RedisStore::connect(RedisConfig::new(url).prefix(format!("{}:", unique("kwlost"))))
        .await
        .unwrap();
    let refused = lost_answers_are_errors_not_resends(&store, &proxies, &[server.port()]).await;
    assert_eq!(
        refused, 0,
        "a standalone store reconnects on the next operation"
    );
}
