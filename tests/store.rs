//! The in-memory state store: the exported conformance suite (on an injected clock and on real
//! time), the role router, racing on many threads, limits per role, and what only the memory
//! store promises.

use std::sync::Arc;
use std::time::Duration;

use keyward::Env;
use keyward::store::{
    Key, MemoryStore, MemoryStoreLimits, Role, StateStore, StateStoreExt, Stores, Ttl, Update,
    Version,
};
use keyward::testing::conformance::{self, StoreCapabilities};
use keyward::{ErrorKind, ManualClock};

fn store_at(secs: u64) -> (Arc<ManualClock>, Arc<MemoryStore>) {
    let clock = Arc::new(ManualClock::at_unix(secs));
    (
        clock.clone(),
        Arc::new(MemoryStore::new().env(Env::system().with_clock(clock))),
    )
}

#[tokio::test]
async fn memory_store_passes_the_conformance_suite_on_a_manual_clock() {
    let (clock, store) = store_at(1_000);
    conformance::state_store(store.as_ref(), &StoreCapabilities::manual_clock(clock)).await;
    assert!(store.is_empty(), "the suite cleans up after itself");
}

#[tokio::test]
async fn memory_store_passes_the_conformance_suite_in_real_time() {
    // The hook server-clock stores use: real sleeps with short TTLs.
    let store = MemoryStore::new();
    let caps =
        StoreCapabilities::real_time(Duration::from_millis(100)).with_max_value_len(1 << 20, true);
    conformance::state_store(&store, &caps).await;
}

#[tokio::test]
async fn a_split_store_passes_the_suite_and_routes_by_role() {
    let clock = Arc::new(ManualClock::at_unix(1_000));
    let ephemeral = Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let durable = Arc::new(MemoryStore::new().env(Env::system().with_clock(clock.clone())));
    let stores = Stores::split(ephemeral.clone(), durable.clone());
    conformance::state_store(&stores, &StoreCapabilities::manual_clock(clock)).await;
    stores
        .put(&Key::ephemeral("t").part("a"), b"e".to_vec(), None)
        .await
        .unwrap();
    stores
        .put(&Key::durable("t").part("a"), b"d".to_vec(), None)
        .await
        .unwrap();
    assert_eq!(
        (
            ephemeral.len_of(Role::Ephemeral),
            ephemeral.len_of(Role::Durable)
        ),
        (1, 0)
    );
    assert_eq!(
        (
            durable.len_of(Role::Ephemeral),
            durable.len_of(Role::Durable)
        ),
        (0, 1)
    );
    let single = Stores::single(ephemeral.clone());
    assert!(Arc::ptr_eq(
        single.for_role(Role::Durable),
        single.for_role(Role::Ephemeral)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_on_many_threads_loses_nothing() {
    let (_, store) = store_at(1_000);
    let counter = Key::ephemeral("t").part("ctr");
    let list = Key::ephemeral("t").part("list");
    let challenge = Key::ephemeral("t").part("challenge");
    store.put(&challenge, b"c".to_vec(), None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let (store, counter, list, challenge) = (
            store.clone(),
            counter.clone(),
            list.clone(),
            challenge.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                store.increment(&counter, 1, None).await.unwrap();
            }
            store
                .update_json::<Vec<u64>, (), _>(&list, |v| {
                    let mut v = v.unwrap_or_default();
                    v.push(i);
                    Ok(Update::Set(v, Ttl::Keep, ()))
                })
                .await
                .unwrap();
            store.take(&challenge).await.unwrap().is_some()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(store.increment(&counter, 0, None).await.unwrap(), 6_400);
    let mut got: Vec<u64> = store.get_json(&list).await.unwrap().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..64).collect::<Vec<_>>());
}

#[tokio::test]
async fn ephemeral_traffic_never_fills_the_room_of_durable_records() {
    let clock = Arc::new(ManualClock::at_unix(1_000));
    let store = MemoryStore::new()
        .env(Env::system().with_clock(clock.clone()))
        .limits(
            MemoryStoreLimits::new()
                .max_ephemeral_entries(100)
                .max_durable_entries(10)
                .max_value_len(4),
        );
    let ttl = Some(Duration::from_secs(3_600));
    for i in 0..100 {
        store
            .increment(&Key::ephemeral("decoy").part(&i.to_string()), 1, ttl)
            .await
            .unwrap();
    }
    let full = store
        .increment(&Key::ephemeral("decoy").part("one-more"), 1, ttl)
        .await
        .unwrap_err();
    assert_eq!(full.kind(), &ErrorKind::Storage);
    // Durable writes still succeed, and a refused write changed nothing.
    for i in 0..10 {
        store
            .put(&Key::durable("cred").part(&i.to_string()), vec![1], None)
            .await
            .unwrap();
    }
    assert_eq!(store.len_of(Role::Ephemeral), 100);
    assert_eq!(
        store
            .put(&Key::durable("cred").part("x"), vec![0; 5], None)
            .await
            .unwrap_err()
            .kind(),
        &ErrorKind::Storage,
        "the value limit holds"
    );
    // Expired entries free their room, found through the expiry index.
    clock.advance(Duration::from_secs(3_600));
    store
        .increment(&Key::ephemeral("decoy").part("one-more"), 1, ttl)
        .await
        .unwrap();
    assert_eq!(store.len_of(Role::Ephemeral), 1);
}

#[tokio::test]
async fn update_errors_write_nothing_and_corrupt_json_is_a_storage_error() {
    let (_, store) = store_at(1_000);
    let k = Key::ephemeral("t").part("k");
    store.put(&k, b"5".to_vec(), None).await.unwrap();
    let err = store
        .update_json::<u64, (), _>(&k, |_| Err(keyward::Error::invalid_input("refused")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(store.get(&k).await.unwrap().unwrap().value, b"5");
    let bad = Key::ephemeral("t").part("bad");
    store.put(&bad, b"{".to_vec(), None).await.unwrap();
    let err = store
        .update_json::<u64, (), _>(&bad, |_| Ok(Update::Keep(())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Storage);
}

#[test]
fn entry_debug_hides_value() {
    let entry = keyward::store::Entry {
        value: b"hashed-code".to_vec(),
        version: Version::from_raw(1),
    };
    let shown = format!("{entry:?}");
    assert!(!shown.contains("hashed"), "{shown}");
    assert!(shown.contains("11 bytes"));
}
