//! The [`StateStore`] conformance suite.
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: a broken promise panics with its name"
)]

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::join_all;
use crate::clock::ManualClock;
use crate::error::{ErrorKind, Result};
use crate::store::{CasOutcome, Key, Role, StateStore, StateStoreExt, Ttl, Update, Version, Write};

/// How the suite moves time forward for a store.
#[derive(Clone)]
pub enum TimeControl {
    /// The store expires entries by this clock (as [`MemoryStore`](crate::store::MemoryStore)
    /// does with an injected clock): the suite advances it, and a time unit is 10 s.
    Manual(Arc<ManualClock>),
    /// The store's clock is its own (a server's): the suite sleeps for real, with TTLs in units
    /// of `unit` (a few hundred milliseconds is enough for a local server; the TTL part of the
    /// suite sleeps 3 units in all).
    RealTime {
        /// The time unit: TTLs are small multiples of it.
        unit: Duration,
    },
}

impl fmt::Debug for TimeControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeControl::Manual(_) => f.write_str("Manual"),
            TimeControl::RealTime { unit } => {
                f.debug_struct("RealTime").field("unit", unit).finish()
            }
        }
    }
}

impl TimeControl {
    fn unit(&self) -> Duration {
        match self {
            TimeControl::Manual(_) => Duration::from_secs(10),
            TimeControl::RealTime { unit } => *unit,
        }
    }

    async fn pass(&self, d: Duration) {
        match self {
            TimeControl::Manual(clock) => clock.advance(d),
            TimeControl::RealTime { .. } => tokio::time::sleep(d).await,
        }
    }
}

/// What the suite may assume about a store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreCapabilities {
    /// How time moves for the store's expiry.
    pub time: TimeControl,
    /// The largest value the store accepts; the suite writes one of exactly this size.
    pub max_value_len: usize,
    /// Whether a value one byte over `max_value_len` is refused with a storage error (a store
    /// with no limit of its own, such as PostgreSQL `bytea` up to 1 GB, says `false`).
    pub refuses_larger_values: bool,
    /// The namespace of every key the suite writes: give each run its own so parallel runs on one
    /// server never collide.
    pub namespace: String,
}

impl StoreCapabilities {
    /// A store whose expiry follows `clock`, with a 1 MiB value limit that it enforces.
    pub fn manual_clock(clock: Arc<ManualClock>) -> Self {
        StoreCapabilities {
            time: TimeControl::Manual(clock),
            max_value_len: 1 << 20,
            refuses_larger_values: true,
            namespace: "conformance".to_owned(),
        }
    }

    /// A store with its own clock: the suite sleeps, with TTLs in multiples of `unit`.
    pub fn real_time(unit: Duration) -> Self {
        StoreCapabilities {
            time: TimeControl::RealTime { unit },
            max_value_len: 1 << 20,
            refuses_larger_values: false,
            namespace: "conformance".to_owned(),
        }
    }

    /// Sets the namespace of the suite's keys.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the value limit and whether the store refuses values over it.
    pub fn with_max_value_len(mut self, max: usize, refused_beyond: bool) -> Self {
        self.max_value_len = max;
        self.refuses_larger_values = refused_beyond;
        self
    }
}

struct Suite<'a> {
    store: &'a dyn StateStore,
    caps: &'a StoreCapabilities,
}

impl Suite<'_> {
    fn key(&self, role: Role, test: &str, name: &str) -> Key {
        Key::new(role, &self.caps.namespace).part(test).part(name)
    }

    fn e(&self, test: &str, name: &str) -> Key {
        self.key(Role::Ephemeral, test, name)
    }

    fn d(&self, test: &str, name: &str) -> Key {
        self.key(Role::Durable, test, name)
    }

    async fn value(&self, key: &Key) -> Option<Vec<u8>> {
        self.store
            .get(key)
            .await
            .expect("get must succeed")
            .map(|e| e.value)
    }

    async fn version(&self, key: &Key) -> Version {
        self.store
            .get(key)
            .await
            .expect("get must succeed")
            .expect("the key must be live")
            .version
    }

    async fn clean(&self, keys: &[&Key]) {
        for k in keys {
            self.store.take(k).await.expect("take must succeed");
        }
    }
}

fn storage_error<T: fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(e) if *e.kind() == ErrorKind::Storage => {}
        other => panic!("{what}: expected a storage error, got {other:?}"),
    }
}

fn invalid_input<T: fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(e) if *e.kind() == ErrorKind::InvalidInput => {}
        other => panic!("{what}: expected an invalid-input error, got {other:?}"),
    }
}

/// Runs every part of the [`StateStore`] suite against `store`.
///
/// Parts: basic reads and writes, versions and compare-and-swap, counters, racing callers
/// (1,000 increments, 200 takes, 200 inserts, 200 compare-and-swaps on one version, 32 update
/// loops), expiry (by [`StoreCapabilities::time`]), limits and bad input, and role isolation.
pub async fn state_store(store: &dyn StateStore, caps: &StoreCapabilities) {
    let s = Suite { store, caps };
    basics(&s).await;
    versions(&s).await;
    counters(&s).await;
    races(&s).await;
    expiry(&s).await;
    limits(&s).await;
    roles(&s).await;
}

async fn basics(s: &Suite<'_>) {
    let k = s.e("basics", "k");
    s.clean(&[&k]).await;
    assert_eq!(s.value(&k).await, None, "an absent key reads as None");
    let v1 = s
        .store
        .insert(&k, b"one".to_vec(), None)
        .await
        .expect("insert must succeed")
        .expect("insert on an absent key must write");
    assert_eq!(
        s.store
            .insert(&k, b"two".to_vec(), None)
            .await
            .expect("insert"),
        None,
        "insert on a live key must not write"
    );
    let entry = s.store.get(&k).await.expect("get").expect("live");
    assert_eq!(entry.value, b"one", "insert must not overwrite");
    assert_eq!(entry.version, v1, "get must return the version insert gave");
    let v2 = s.store.put(&k, b"three".to_vec(), None).await.expect("put");
    assert_ne!(v1, v2, "put must give a new version");
    assert_eq!(s.value(&k).await.as_deref(), Some(&b"three"[..]));
    assert_eq!(
        s.store.take(&k).await.expect("take").as_deref(),
        Some(&b"three"[..]),
        "take returns the value"
    );
    assert_eq!(s.store.take(&k).await.expect("take"), None, "take removes");
    assert_eq!(s.value(&k).await, None);
    // Any bytes, including none, NUL and invalid UTF-8, round-trip.
    let all: Vec<u8> = (0..=255).collect();
    s.store
        .put(&k, all.clone(), None)
        .await
        .expect("put binary");
    assert_eq!(s.value(&k).await, Some(all), "binary values round-trip");
    s.store.put(&k, Vec::new(), None).await.expect("put empty");
    assert_eq!(
        s.value(&k).await,
        Some(Vec::new()),
        "an empty value is a value"
    );
    assert!(
        s.store.delete(&k).await.expect("delete"),
        "delete of a live key"
    );
    assert!(
        !s.store.delete(&k).await.expect("delete"),
        "delete of an absent key"
    );
}

async fn versions(s: &Suite<'_>) {
    let k = s.e("versions", "k");
    s.clean(&[&k]).await;
    let missing = s
        .store
        .compare_and_swap(&k, Version::from_raw(1), Write::Delete)
        .await
        .expect("cas");
    assert_eq!(
        missing,
        CasOutcome::Conflict,
        "cas on an absent key is a conflict"
    );
    let v1 = s
        .store
        .insert(&k, b"a".to_vec(), None)
        .await
        .expect("insert")
        .expect("absent");
    let set = |value: &[u8]| Write::Set {
        value: value.to_vec(),
        ttl: Ttl::Keep,
    };
    let CasOutcome::Swapped { version: Some(v2) } = s
        .store
        .compare_and_swap(&k, v1, set(b"b"))
        .await
        .expect("cas")
    else {
        panic!("cas with the current version must swap and return a version");
    };
    assert_ne!(v1, v2, "a cas gives a new version");
    assert_eq!(s.version(&k).await, v2, "get returns the cas's version");
    assert_eq!(
        s.store
            .compare_and_swap(&k, v1, set(b"c"))
            .await
            .expect("cas"),
        CasOutcome::Conflict,
        "cas with a stale version conflicts"
    );
    assert_eq!(
        s.value(&k).await.as_deref(),
        Some(&b"b"[..]),
        "a conflict changes nothing"
    );
    // A version is never handed out twice for a key, even across a delete (no ABA).
    let mut seen: HashSet<Version> = [v1, v2].into_iter().collect();
    for i in 0..20u8 {
        s.store.take(&k).await.expect("take");
        let v = s
            .store
            .insert(&k, vec![i], None)
            .await
            .expect("insert")
            .expect("absent after take");
        assert!(seen.insert(v), "a re-created key got an old version");
        assert_eq!(
            s.store
                .compare_and_swap(&k, v2, set(b"x"))
                .await
                .expect("cas"),
            CasOutcome::Conflict,
            "a version from before a delete must not match the new value"
        );
        let p = s.store.put(&k, vec![i, i], None).await.expect("put");
        assert!(seen.insert(p), "put repeated a version");
    }
    let current = s.version(&k).await;
    assert_eq!(
        s.store
            .compare_and_swap(&k, current, Write::Delete)
            .await
            .expect("cas delete"),
        CasOutcome::Swapped { version: None },
        "cas delete with the current version"
    );
    assert_eq!(s.value(&k).await, None, "cas delete removes");
    // An arbitrary version never matches a live key it was not given for.
    let v = s.store.put(&k, b"z".to_vec(), None).await.expect("put");
    for raw in [
        0,
        1,
        u64::MAX,
        v.raw().wrapping_add(1),
        v.raw().wrapping_sub(1),
    ] {
        if raw == v.raw() {
            continue;
        }
        assert_eq!(
            s.store
                .compare_and_swap(&k, Version::from_raw(raw), Write::Delete)
                .await
                .expect("cas"),
            CasOutcome::Conflict,
            "a made-up version must conflict"
        );
    }
    s.clean(&[&k]).await;
}

async fn counters(s: &Suite<'_>) {
    let c = s.e("counters", "c");
    let other = s.e("counters", "not-a-counter");
    s.clean(&[&c, &other]).await;
    assert_eq!(s.store.increment(&c, 5, None).await.expect("increment"), 5);
    let before = s.version(&c).await;
    assert_eq!(s.store.increment(&c, 2, None).await.expect("increment"), 7);
    assert_ne!(
        s.version(&c).await,
        before,
        "an increment gives a new version"
    );
    assert_eq!(s.store.increment(&c, 0, None).await.expect("increment"), 7);
    assert_eq!(
        s.value(&c).await.as_deref(),
        Some(&b"7"[..]),
        "counters are stored as ASCII decimal"
    );
    s.store
        .put(&other, b"hello".to_vec(), None)
        .await
        .expect("put");
    storage_error(
        s.store.increment(&other, 1, None).await,
        "increment on a non-counter value",
    );
    assert_eq!(
        s.value(&other).await.as_deref(),
        Some(&b"hello"[..]),
        "and changes nothing"
    );
    s.store
        .put(&c, (u64::MAX - 1).to_string().into_bytes(), None)
        .await
        .expect("put");
    assert_eq!(
        s.store.increment(&c, 1, None).await.expect("increment"),
        u64::MAX
    );
    storage_error(s.store.increment(&c, 1, None).await, "a counter overflow");
    assert_eq!(
        s.value(&c).await,
        Some(u64::MAX.to_string().into_bytes()),
        "an overflow changes nothing"
    );
    s.clean(&[&c, &other]).await;
}

async fn races(s: &Suite<'_>) {
    // 1,000 increments: the total is exact and every intermediate value is returned once.
    let c = s.e("races", "counter");
    s.clean(&[&c]).await;
    let ttl = Some(Duration::from_secs(600));
    let results = join_all((0..1000).map(|_| s.store.increment(&c, 1, ttl)).collect()).await;
    let mut values: Vec<u64> = results
        .into_iter()
        .map(|r| r.expect("racing increment"))
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=1000).collect::<Vec<_>>(),
        "1,000 racing increments must return 1..=1000 once each"
    );
    assert_eq!(s.value(&c).await.as_deref(), Some(&b"1000"[..]));

    // 200 takes of one key: one winner.
    let t = s.e("races", "take");
    s.store
        .put(&t, b"challenge".to_vec(), ttl)
        .await
        .expect("put");
    let takes = join_all((0..200).map(|_| s.store.take(&t)).collect()).await;
    let winners = takes
        .into_iter()
        .map(|r| r.expect("racing take"))
        .filter(Option::is_some)
        .count();
    assert_eq!(winners, 1, "200 racing takes must have exactly one winner");

    // 200 inserts of one key: one winner.
    let i = s.e("races", "insert");
    s.clean(&[&i]).await;
    let inserts = join_all(
        (0..200u8)
            .map(|n| s.store.insert(&i, vec![n], ttl))
            .collect(),
    )
    .await;
    let won: Vec<_> = inserts
        .into_iter()
        .filter_map(|r| r.expect("racing insert"))
        .collect();
    assert_eq!(
        won.len(),
        1,
        "200 racing inserts must have exactly one winner"
    );
    assert_eq!(
        s.version(&i).await,
        won[0],
        "the winner's version is the live one"
    );

    // 200 compare-and-swaps on one version: one winner.
    let v = s.version(&i).await;
    let swaps = join_all(
        (0..200u8)
            .map(|n| {
                s.store.compare_and_swap(
                    &i,
                    v,
                    Write::Set {
                        value: vec![n, n],
                        ttl: Ttl::Keep,
                    },
                )
            })
            .collect(),
    )
    .await;
    let swapped: Vec<u8> = swaps
        .into_iter()
        .zip(0u8..)
        .filter_map(|(r, n)| match r.expect("racing cas") {
            CasOutcome::Swapped { .. } => Some(n),
            CasOutcome::Conflict => None,
        })
        .collect();
    assert_eq!(
        swapped.len(),
        1,
        "200 racing cas on one version: exactly one swaps"
    );
    assert_eq!(
        s.value(&i).await,
        Some(vec![swapped[0], swapped[0]]),
        "the live value is the winner's"
    );

    // 32 read-modify-write loops: no update lost.
    let l = s.e("races", "list");
    s.clean(&[&l]).await;
    let updates = join_all(
        (0..32u8)
            .map(|n| {
                s.store.update_bytes(&l, move |current| {
                    let mut v = current.map(<[u8]>::to_vec).unwrap_or_default();
                    v.push(n);
                    Ok(Update::Set(v, Ttl::After(Duration::from_secs(600)), ()))
                })
            })
            .collect(),
    )
    .await;
    for u in updates {
        u.expect("racing update loop");
    }
    let mut list = s.value(&l).await.expect("list written");
    list.sort_unstable();
    assert_eq!(
        list,
        (0..32).collect::<Vec<u8>>(),
        "racing updates lose nothing"
    );
    s.clean(&[&c, &i, &l]).await;
}

async fn expiry(s: &Suite<'_>) {
    let u = s.caps.time.unit();
    let long = u * 20;
    let k = s.e("expiry", "k");
    let c = s.e("expiry", "c");
    let keep = s.e("expiry", "keep");
    let never = s.e("expiry", "never");
    let after = s.e("expiry", "after");
    let put_clears = s.e("expiry", "put-clears");
    let far = s.e("expiry", "far");
    s.clean(&[&k, &c, &keep, &never, &after, &put_clears, &far])
        .await;

    invalid_input(
        s.store.put(&k, vec![1], Some(Duration::ZERO)).await,
        "put with a zero ttl",
    );
    invalid_input(
        s.store.insert(&k, vec![1], Some(Duration::ZERO)).await,
        "insert with a zero ttl",
    );
    invalid_input(
        s.store.increment(&c, 1, Some(Duration::ZERO)).await,
        "increment with a zero ttl",
    );
    assert_eq!(s.value(&k).await, None, "a refused write writes nothing");

    // Time 0: set everything up.
    s.store
        .put(&k, b"v".to_vec(), Some(u * 2))
        .await
        .expect("put");
    s.store
        .increment(&c, 1, Some(u * 2))
        .await
        .expect("increment");
    let vk = s
        .store
        .put(&keep, b"v".to_vec(), Some(u * 2))
        .await
        .expect("put");
    let vn = s
        .store
        .put(&never, b"v".to_vec(), Some(u * 2))
        .await
        .expect("put");
    s.store.put(&after, b"v".to_vec(), None).await.expect("put");
    s.store
        .put(&put_clears, b"v".to_vec(), Some(u * 2))
        .await
        .expect("put");
    s.store
        .put(&far, b"v".to_vec(), Some(long))
        .await
        .expect("put");
    assert!(
        s.value(&k).await.is_some(),
        "an entry is live before its ttl"
    );
    let va = s.version(&after).await;
    let swapped = |r: Result<CasOutcome>| {
        assert!(
            matches!(r.expect("cas"), CasOutcome::Swapped { .. }),
            "cas must swap"
        );
    };
    swapped(
        s.store
            .compare_and_swap(
                &keep,
                vk,
                Write::Set {
                    value: b"w".to_vec(),
                    ttl: Ttl::Keep,
                },
            )
            .await,
    );
    swapped(
        s.store
            .compare_and_swap(
                &never,
                vn,
                Write::Set {
                    value: b"w".to_vec(),
                    ttl: Ttl::Never,
                },
            )
            .await,
    );
    swapped(
        s.store
            .compare_and_swap(
                &after,
                va,
                Write::Set {
                    value: b"w".to_vec(),
                    ttl: Ttl::After(u * 2),
                },
            )
            .await,
    );
    s.store
        .put(&put_clears, b"w".to_vec(), None)
        .await
        .expect("put");
    // An increment of a live counter keeps its first ttl, whatever ttl it passes.
    assert_eq!(
        s.store
            .increment(&c, 1, Some(long))
            .await
            .expect("increment"),
        2
    );

    // Time 3 units: every 2-unit ttl has passed.
    s.caps.time.pass(u * 3).await;
    assert_eq!(s.value(&k).await, None, "an entry is gone after its ttl");
    assert_eq!(
        s.store.take(&k).await.expect("take"),
        None,
        "take of an expired entry"
    );
    assert!(
        !s.store.delete(&k).await.expect("delete"),
        "delete of an expired entry"
    );
    assert_eq!(
        s.value(&keep).await,
        None,
        "cas with Ttl::Keep keeps the expiry"
    );
    assert_eq!(
        s.value(&never).await.as_deref(),
        Some(&b"w"[..]),
        "cas with Ttl::Never removes the expiry"
    );
    assert_eq!(
        s.value(&after).await,
        None,
        "cas with Ttl::After sets an expiry"
    );
    assert_eq!(
        s.value(&put_clears).await.as_deref(),
        Some(&b"w"[..]),
        "put without a ttl replaces the old expiry"
    );
    assert!(s.value(&far).await.is_some(), "a longer ttl is still live");
    assert_eq!(
        s.store
            .increment(&c, 1, Some(long))
            .await
            .expect("increment"),
        1,
        "a counter restarts after its first ttl"
    );
    assert_eq!(
        s.store
            .compare_and_swap(&keep, vk, Write::Delete)
            .await
            .expect("cas"),
        CasOutcome::Conflict,
        "cas on an expired entry conflicts"
    );
    assert!(
        s.store
            .insert(&k, b"again".to_vec(), Some(long))
            .await
            .expect("insert")
            .is_some(),
        "insert over an expired entry writes"
    );
    s.clean(&[&k, &c, &keep, &never, &after, &put_clears, &far])
        .await;
}

async fn limits(s: &Suite<'_>) {
    let k = s.d("limits", "big");
    s.clean(&[&k]).await;
    let big: Vec<u8> = (0..s.caps.max_value_len).map(|i| (i % 251) as u8).collect();
    s.store
        .put(&k, big.clone(), None)
        .await
        .expect("a value of max_value_len must be accepted");
    assert_eq!(
        s.value(&k).await,
        Some(big.clone()),
        "a large value round-trips"
    );
    if s.caps.refuses_larger_values {
        let mut over = big.clone();
        over.push(0);
        storage_error(
            s.store.put(&k, over.clone(), None).await,
            "a value over the limit",
        );
        storage_error(
            s.store
                .insert(&s.d("limits", "other"), over.clone(), None)
                .await,
            "an insert over the limit",
        );
        let v = s.version(&k).await;
        storage_error(
            s.store
                .compare_and_swap(
                    &k,
                    v,
                    Write::Set {
                        value: over,
                        ttl: Ttl::Keep,
                    },
                )
                .await,
            "a cas over the limit",
        );
        assert_eq!(
            s.value(&k).await,
            Some(big),
            "a refused write leaves the old value"
        );
    }
    // The longest keys a construction can give work, and so does a 1023-byte id.
    let longest = Key::new(Role::Durable, &"n".repeat(64))
        .part(&"p".repeat(64))
        .part(&"q".repeat(64))
        .part(&"r".repeat(64))
        .part(&s.caps.namespace);
    assert!(longest.as_str().len() <= Key::MAX_LEN);
    let id = Key::durable(&s.caps.namespace)
        .part("limits")
        .bytes(&[0xA5; 1023]);
    for key in [&longest, &id] {
        s.store
            .put(key, b"x".to_vec(), None)
            .await
            .expect("a long key must work");
        assert_eq!(s.value(key).await.as_deref(), Some(&b"x"[..]));
    }
    s.clean(&[&k, &longest, &id]).await;
}

async fn roles(s: &Suite<'_>) {
    let e = s.e("roles", "same");
    let d = s.d("roles", "same");
    s.clean(&[&e, &d]).await;
    s.store
        .put(&e, b"ephemeral".to_vec(), Some(Duration::from_secs(600)))
        .await
        .expect("put");
    s.store
        .put(&d, b"durable".to_vec(), None)
        .await
        .expect("put");
    assert_eq!(s.value(&e).await.as_deref(), Some(&b"ephemeral"[..]));
    assert_eq!(
        s.value(&d).await.as_deref(),
        Some(&b"durable"[..]),
        "keys of the two roles never share an entry"
    );
    s.clean(&[&e, &d]).await;
}
