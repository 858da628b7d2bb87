//! `RedisStore` against real servers: the exported conformance suite on the machine's Redis and
//! on a three-node Redis Cluster started for the test; then what the suite cannot see: the key
//! prefix and server-kept TTLs, script reloading after `SCRIPT FLUSH`, a server that goes away
//! and comes back, and URLs with passwords kept out of `Debug` and errors.
#![cfg(all(feature = "redis", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;
#[path = "support/servers.rs"]
mod servers;

use std::time::{Duration, Instant};

use keyward::ErrorKind;
use keyward::store::{Key, RedisConfig, RedisStore, StateStore, StateStoreExt};
use keyward::testing::conformance::{self, StoreCapabilities};
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
