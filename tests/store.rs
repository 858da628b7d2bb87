//! The in-memory state store: atomicity under concurrency, expiry at the injected clock's time,
//! compare-and-swap, single-use take, limits.

use std::sync::Arc;
use std::time::Duration;

use keyward::store::{
    CasOutcome, MemoryStore, MemoryStoreLimits, StateStore, Ttl, Update, Write, get_json,
    update_json,
};
use keyward::{ErrorKind, ManualClock};

fn store_at(secs: u64) -> (Arc<ManualClock>, Arc<MemoryStore>) {
    let clock = Arc::new(ManualClock::at_unix(secs));
    (clock.clone(), Arc::new(MemoryStore::with_clock(clock)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_end_at_exact_total() {
    let (_, store) = store_at(1_000);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                store.increment("ctr", 1, None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.increment("ctr", 0, None).await.unwrap(), 6_400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_update_json_loses_no_update() {
    let (_, store) = store_at(1_000);
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            update_json::<Vec<u64>, (), _>(store.as_ref(), "list", |v| {
                let mut v = v.unwrap_or_default();
                v.push(i);
                Ok(Update::Set(v, Ttl::Keep, ()))
            })
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut list: Vec<u64> = get_json(store.as_ref(), "list").await.unwrap().unwrap();
    list.sort_unstable();
    assert_eq!(list, (0..32).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_of_many_concurrent_checks_gets_the_fifth_attempt() {
    // The pattern the OTP providers use: increment, then compare with the limit.
    let (_, store) = store_at(1_000);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .increment("attempts", 1, Some(Duration::from_secs(600)))
                .await
                .unwrap()
        }));
    }
    let mut got_fifth = 0;
    for t in tasks {
        if t.await.unwrap() == 5 {
            got_fifth += 1;
        }
    }
    assert_eq!(got_fifth, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_hands_a_value_out_once() {
    let (_, store) = store_at(1_000);
    store.put("challenge", b"c".to_vec(), None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.take("challenge").await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn entries_expire_at_the_injected_clock_time() {
    let (clock, store) = store_at(1_000);
    store
        .put("a", b"1".to_vec(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    store
        .increment("n", 3, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(9));
    assert!(store.get("a").await.unwrap().is_some());
    assert_eq!(
        store
            .increment("n", 1, Some(Duration::from_secs(100)))
            .await
            .unwrap(),
        4
    );
    clock.advance(Duration::from_secs(1));
    assert!(store.get("a").await.unwrap().is_none());
    assert!(store.take("a").await.unwrap().is_none());
    assert!(!store.delete("a").await.unwrap());
    // The counter kept its first TTL and restarts from zero after it.
    assert_eq!(store.increment("n", 1, None).await.unwrap(), 1);
    // An expired key can be inserted again.
    assert!(
        store
            .insert("a", b"2".to_vec(), None)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn compare_and_swap_detects_interleaved_writes() {
    let (clock, store) = store_at(1_000);
    let v1 = store
        .insert("k", b"one".to_vec(), Some(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .insert("k", b"dup".to_vec(), None)
            .await
            .unwrap()
            .is_none()
    );
    let v2 = store
        .put("k", b"two".to_vec(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let stale = store
        .compare_and_swap(
            "k",
            v1,
            Write::Set {
                value: b"lost".to_vec(),
                ttl: Ttl::Keep,
            },
        )
        .await
        .unwrap();
    assert_eq!(stale, CasOutcome::Conflict);
    let ok = store
        .compare_and_swap(
            "k",
            v2,
            Write::Set {
                value: b"three".to_vec(),
                ttl: Ttl::Keep,
            },
        )
        .await
        .unwrap();
    let CasOutcome::Swapped { version: v3 } = ok else {
        panic!("expected swap")
    };
    let entry = store.get("k").await.unwrap().unwrap();
    assert_eq!(entry.value, b"three");
    assert_eq!(entry.version, v3);
    // Ttl::Keep kept the 60 s expiry of the put.
    clock.advance(Duration::from_secs(60));
    assert!(store.get("k").await.unwrap().is_none());
    // A CAS on an expired or absent entry never matches.
    assert_eq!(
        store
            .compare_and_swap("k", v3, Write::Delete)
            .await
            .unwrap(),
        CasOutcome::Conflict
    );
}

#[tokio::test]
async fn versions_are_not_reused_after_delete() {
    let (_, store) = store_at(1_000);
    let v1 = store.put("k", b"a".to_vec(), None).await.unwrap();
    assert!(store.delete("k").await.unwrap());
    let v2 = store.put("k", b"a".to_vec(), None).await.unwrap();
    assert_ne!(v1, v2);
}

#[tokio::test]
async fn limits_are_enforced_with_typed_errors() {
    let clock = Arc::new(ManualClock::at_unix(1_000));
    let store = MemoryStore::with_clock(clock.clone()).with_limits(MemoryStoreLimits {
        max_entries: 2,
        max_key_len: 8,
        max_value_len: 4,
    });
    assert_eq!(
        store
            .put("toolongkey", vec![], None)
            .await
            .unwrap_err()
            .kind(),
        &ErrorKind::Storage
    );
    assert_eq!(
        store.put("k", vec![0; 5], None).await.unwrap_err().kind(),
        &ErrorKind::Storage
    );
    store
        .put("a", vec![], Some(Duration::from_secs(1)))
        .await
        .unwrap();
    store.put("b", vec![], None).await.unwrap();
    assert_eq!(
        store.put("c", vec![], None).await.unwrap_err().kind(),
        &ErrorKind::Storage
    );
    // Once an entry expires its room is reclaimed.
    clock.advance(Duration::from_secs(1));
    store.put("c", vec![], None).await.unwrap();
    // A failed write left the others intact.
    assert!(store.get("b").await.unwrap().is_some());
}

#[tokio::test]
async fn increment_on_non_counter_is_an_error_and_keeps_the_value() {
    let (_, store) = store_at(1_000);
    store.put("k", b"text".to_vec(), None).await.unwrap();
    assert_eq!(
        store.increment("k", 1, None).await.unwrap_err().kind(),
        &ErrorKind::Storage
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().value, b"text");
}

#[tokio::test]
async fn update_json_errors_write_nothing() {
    let (_, store) = store_at(1_000);
    store.put("k", b"5".to_vec(), None).await.unwrap();
    let err = update_json::<u64, (), _>(store.as_ref(), "k", |_| {
        Err(keyward::Error::invalid_input("refused"))
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(store.get("k").await.unwrap().unwrap().value, b"5");
    // Corrupt stored JSON is a storage error, not a panic.
    store.put("bad", b"{".to_vec(), None).await.unwrap();
    let err = update_json::<u64, (), _>(store.as_ref(), "bad", |_| Ok(Update::Keep(())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Storage);
}

#[test]
fn entry_debug_hides_value() {
    let entry = keyward::store::Entry {
        value: b"hashed-code".to_vec(),
        version: 1,
        expires_at: None,
    };
    let shown = format!("{entry:?}");
    assert!(!shown.contains("hashed"), "{shown}");
    assert!(shown.contains("11 bytes"));
}
