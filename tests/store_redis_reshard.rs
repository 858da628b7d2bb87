//! `RedisStore` on a three-node Redis Cluster while one slot really moves between nodes, and back
//! (issue #13).
//!
//! Concurrent increments, compare-and-swap updates, inserts and takes run on keys of one slot
//! while the test migrates that slot by hand, as `redis-cli --cluster reshard` does:
//! `CLUSTER SETSLOT … IMPORTING` / `MIGRATING`, the keys moved a few at a time with `MIGRATE`
//! while the slot is held mid-migration (so the source answers `ASK` for every key already
//! moved or not there), then `CLUSTER SETSLOT … NODE` on every node (after which the old owner
//! answers `MOVED` until the client refreshes its slot map). Then the slot goes back.
//!
//! What must hold: every operation the store reported `Ok` was applied exactly once and every
//! error was not applied (the increments' answers are exactly 1..=n and the counter ends at n;
//! the successful compare-and-swaps form one unbroken version chain ending at the stored entry;
//! each inserted value is taken at most once, only if its insert succeeded, and is still stored
//! with its insert's version when never taken); every error is a retryable storage error; `ASK`
//! and `MOVED` really were answered; and the same store value works after the migrations.
#![cfg(all(feature = "redis", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/external.rs"]
mod external;
#[path = "support/servers.rs"]
mod servers;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward::ErrorKind;
use keyward::store::{CasOutcome, Entry, Key, RedisConfig, RedisStore, StateStore, Ttl, Write};
use redis::aio::MultiplexedConnection;
use servers::{RedisCluster, unique};

/// Cluster slots.
const SLOTS: u16 = 16_384;
/// Keys for the inserts (each inserted at most once).
const ITEMS: usize = 600;
/// How long a slot is held mid-migration at least (keys moving a few at a time).
const HOLD: Duration = Duration::from_millis(1_500);
/// How long the store works on each side of a migration.
const SETTLE: Duration = Duration::from_millis(1_000);

/// Where the workers are; every outcome is tagged with the phase its operation started in.
const BEFORE: u8 = 0;
const FIRST_MOVE: u8 = 1;
const BETWEEN: u8 = 2;
const SECOND_MOVE: u8 = 3;
const AFTER: u8 = 4;

/// CRC16/XMODEM, the Redis Cluster key hash (the slot is the CRC modulo 16384 when the key has
/// no hash tag; keyward keys and prefixes never contain `{`).
struct Crc16([u16; 256]);

impl Crc16 {
    fn new() -> Crc16 {
        let mut table = [0u16; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut crc = (i as u16) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
            *entry = crc;
        }
        Crc16(table)
    }

    fn update(&self, mut crc: u16, bytes: &[u8]) -> u16 {
        for &b in bytes {
            crc = (crc << 8) ^ self.0[usize::from((crc >> 8) as u8 ^ b)];
        }
        crc
    }

    fn slot(&self, key: &str) -> u16 {
        self.update(0, key.as_bytes()) % SLOTS
    }
}

/// `count` keys `<base>:<n>` whose full name (with `prefix`) is in `slot`. The CRC of the common
/// beginning is computed once, so each candidate costs only its few digits.
fn keys_in_slot(crc: &Crc16, prefix: &str, base: &Key, slot: u16, count: usize) -> Vec<Key> {
    let head = crc.update(0, format!("{prefix}{}:", base.as_str()).as_bytes());
    let mut out = Vec::with_capacity(count);
    let mut n: u64 = 0;
    while out.len() < count {
        let digits = n.to_string();
        if crc.update(head, digits.as_bytes()) % SLOTS == slot {
            let key = base.clone().part(&digits);
            assert_eq!(crc.slot(&format!("{prefix}{}", key.as_str())), slot);
            out.push(key);
        }
        n += 1;
    }
    out
}

/// One cluster node, reached directly (not through the store).
struct Node {
    port: u16,
    id: String,
    conn: MultiplexedConnection,
}

impl Node {
    async fn open(port: u16) -> Node {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async(&mut conn)
            .await
            .unwrap();
        Node { port, id, conn }
    }

    async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let mut conn = self.conn.clone();
        match cmd.query_async(&mut conn).await {
            Ok(v) => v,
            Err(e) => panic!("{args:?} on node {}: {e}", self.port),
        }
    }

    async fn keys_in(&self, slot: u16, count: usize) -> Vec<String> {
        self.query(&[
            "CLUSTER",
            "GETKEYSINSLOT",
            &slot.to_string(),
            &count.to_string(),
        ])
        .await
    }

    async fn count_in(&self, slot: u16) -> u64 {
        self.query(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
            .await
    }

    /// Whether this node's own line of `CLUSTER NODES` lists `slot` among its slots.
    async fn owns(&self, slot: u16) -> bool {
        let nodes: String = self.query(&["CLUSTER", "NODES"]).await;
        let line = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .expect("CLUSTER NODES has a myself line");
        line.split_whitespace().skip(8).any(|range| {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                _ => false,
            }
        })
    }

    /// This node's own `CLUSTER NODES` line.
    async fn own_line(&self) -> String {
        let nodes: String = self.query(&["CLUSTER", "NODES"]).await;
        nodes
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_owned()
    }
}

/// Moves `slot` from `from` to `to` as `redis-cli --cluster reshard` does, holding it
/// mid-migration for at least [`HOLD`]: `first` moves at once, the remaining keys four every
/// 100 ms. Returns how many keys moved.
async fn migrate_slot(from: &Node, to: &Node, other: &Node, slot: u16, first: &[String]) -> usize {
    let s = slot.to_string();
    to.query::<()>(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &from.id])
        .await;
    from.query::<()>(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &to.id])
        .await;
    // The slot really is mid-migration on both sides.
    let line = from.own_line().await;
    assert!(
        line.contains(&format!("[{slot}->-{}]", to.id)),
        "source not migrating: {line}"
    );
    let line = to.own_line().await;
    assert!(
        line.contains(&format!("[{slot}-<-{}]", from.id)),
        "target not importing: {line}"
    );
    let started = Instant::now();
    let mut moved = move_keys(from, to, first).await;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let keys = from.keys_in(slot, 4).await;
        if keys.is_empty() {
            if started.elapsed() >= HOLD {
                break;
            }
            continue;
        }
        moved += move_keys(from, to, &keys).await;
    }
    // As the reshard tool does: the new owner first, then the old one, then the rest.
    for node in [to, from, other] {
        node.query::<()>(&["CLUSTER", "SETSLOT", &s, "NODE", &to.id])
            .await;
    }
    moved
}

/// `MIGRATE` of `keys` from `from` to `to`; returns how many existed (and moved).
async fn move_keys(from: &Node, to: &Node, keys: &[String]) -> usize {
    let mut moved = 0;
    for key in keys {
        let port = to.port.to_string();
        let answer: String = from
            .query(&["MIGRATE", "127.0.0.1", &port, key, "0", "5000"])
            .await;
        match answer.as_str() {
            "OK" => moved += 1,
            "NOKEY" => {}
            other => panic!("MIGRATE answered {other}"),
        }
    }
    moved
}

/// Every error the workers met, by operation and server code; each one checked to be a
/// retryable storage error.
#[derive(Default)]
struct Errors(Mutex<BTreeMap<(&'static str, String), u32>>);

impl Errors {
    fn note(&self, op: &'static str, e: &keyward::Error) {
        assert_eq!(*e.kind(), ErrorKind::Storage, "{op}: {e:?}");
        assert!(e.is_retryable(), "{op}: a redirect is retryable: {e:?}");
        let text = e.to_string();
        let code = ["ASK", "MOVED", "TRYAGAIN"]
            .into_iter()
            .find(|c| text.contains(&format!("({c})")))
            .map_or(text.clone(), str::to_owned);
        *self.0.lock().unwrap().entry((op, code)).or_default() += 1;
    }

    fn count(&self, code: &str) -> u32 {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|((_, c), _)| c == code)
            .map(|(_, n)| n)
            .sum()
    }

    fn total(&self) -> u32 {
        self.0.lock().unwrap().values().sum()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Inserted {
    Not,
    Ok(keyward::store::Version),
    Failed,
}

/// A compare-and-swap the store reported `Swapped`.
#[derive(Clone)]
struct Swap {
    expected: u64,
    new: u64,
    value: Vec<u8>,
    phase: u8,
}

/// What the workers saw.
#[derive(Default)]
struct Log {
    /// Answers of successful increments, with the phase each started in.
    increments: Mutex<Vec<(u64, u8)>>,
    /// Successful swaps.
    swaps: Mutex<Vec<Swap>>,
    conflicts: AtomicUsize,
    /// Insert outcome of each item.
    inserted: Mutex<Vec<Inserted>>,
    /// Items whose insert succeeded and which no take has returned yet.
    live: Mutex<Vec<usize>>,
    /// Items a take returned or whose insert failed: a take of one must find nothing.
    dead: Mutex<Vec<usize>>,
    /// Successful takes that returned a value: (item, value, phase).
    taken: Mutex<Vec<(usize, Vec<u8>, u8)>>,
    /// Successful takes that found nothing, and successful inserts, by phase.
    empty_takes: Mutex<Vec<u8>>,
    insert_phases: Mutex<Vec<u8>>,
}

struct World {
    store: RedisStore,
    counter: Key,
    cas: Key,
    items: Vec<Key>,
    phase: AtomicU8,
    stop: AtomicBool,
    next_item: AtomicUsize,
    log: Log,
    errors: Errors,
}

fn item_value(i: usize) -> Vec<u8> {
    format!("item-{i}").into_bytes()
}

async fn incrementer(w: Arc<World>) {
    while !w.stop.load(Ordering::Relaxed) {
        let phase = w.phase.load(Ordering::Relaxed);
        match w.store.increment(&w.counter, 1, None).await {
            Ok(n) => w.log.increments.lock().unwrap().push((n, phase)),
            Err(e) => w.errors.note("increment", &e),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

async fn swapper(w: Arc<World>, id: usize) {
    let mut seq = 0u64;
    while !w.stop.load(Ordering::Relaxed) {
        let phase = w.phase.load(Ordering::Relaxed);
        let current = match w.store.get(&w.cas).await {
            Ok(Some(entry)) => entry,
            Ok(None) => panic!("the compare-and-swap entry disappeared"),
            Err(e) => {
                w.errors.note("get", &e);
                tokio::time::sleep(Duration::from_millis(3)).await;
                continue;
            }
        };
        seq += 1;
        let value = format!("w{id}-{seq}").into_bytes();
        let write = Write::Set {
            value: value.clone(),
            ttl: Ttl::Keep,
        };
        match w
            .store
            .compare_and_swap(&w.cas, current.version, write)
            .await
        {
            Ok(CasOutcome::Swapped { version: Some(new) }) => {
                w.log.swaps.lock().unwrap().push(Swap {
                    expected: current.version.raw(),
                    new: new.raw(),
                    value,
                    phase,
                })
            }
            Ok(CasOutcome::Conflict) => {
                w.log.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => panic!("a set answered {other:?}"),
            Err(e) => w.errors.note("compare_and_swap", &e),
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

async fn inserter(w: Arc<World>) {
    while !w.stop.load(Ordering::Relaxed) {
        let i = w.next_item.fetch_add(1, Ordering::Relaxed);
        if i >= w.items.len() {
            return;
        }
        let phase = w.phase.load(Ordering::Relaxed);
        let outcome = match w.store.insert(&w.items[i], item_value(i), None).await {
            Ok(Some(version)) => {
                w.log.insert_phases.lock().unwrap().push(phase);
                Inserted::Ok(version)
            }
            Ok(None) => panic!("item {i} existed before its only insert"),
            Err(e) => {
                w.errors.note("insert", &e);
                Inserted::Failed
            }
        };
        w.log.inserted.lock().unwrap()[i] = outcome;
        match outcome {
            Inserted::Ok(_) => w.log.live.lock().unwrap().push(i),
            _ => w.log.dead.lock().unwrap().push(i),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn taker(w: Arc<World>, id: usize) {
    let mut n = id;
    while !w.stop.load(Ordering::Relaxed) {
        n += 1;
        // Mostly items still stored; every fourth take probes one that is gone or never was.
        let from_dead = n.is_multiple_of(4);
        let pick = {
            let list = if from_dead {
                w.log.dead.lock().unwrap()
            } else {
                w.log.live.lock().unwrap()
            };
            (!list.is_empty()).then(|| list[(n * 7) % list.len()])
        };
        let Some(i) = pick else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let phase = w.phase.load(Ordering::Relaxed);
        match w.store.take(&w.items[i]).await {
            Ok(Some(value)) => {
                w.log.taken.lock().unwrap().push((i, value, phase));
                w.log.live.lock().unwrap().retain(|&j| j != i);
                w.log.dead.lock().unwrap().push(i);
            }
            Ok(None) => w.log.empty_takes.lock().unwrap().push(phase),
            Err(e) => w.errors.note("take", &e),
        }
        // Slower than the inserts, so a stock of stored items builds up and moves with the slot.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A read through the store, repeated while it answers a retryable error (reads change
/// nothing, so repeating them is safe), within 10 s.
async fn read(store: &RedisStore, key: &Key) -> Option<Entry> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(key).await {
            Ok(entry) => return entry,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the store did not answer a read after the migrations: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_operations_stay_exactly_once_while_a_slot_migrates() {
    if !servers::redis_binaries("cluster_operations_stay_exactly_once_while_a_slot_migrates") {
        return;
    }
    let cluster = RedisCluster::start();
    let prefix = format!("{}:", unique("kwreshard"));
    // Generous bounds: on a loaded machine a time-out would be a lost answer (maybe applied),
    // and this test is about redirects, which are never applied.
    let store = RedisStore::connect(
        RedisConfig::cluster(cluster.urls())
            .prefix(&prefix)
            .response_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(15)),
    )
    .await
    .unwrap();

    // Every key of the test in the counter's slot.
    let crc = Crc16::new();
    let counter = Key::ephemeral("reshard").part("count");
    let full = |k: &Key| format!("{prefix}{}", k.as_str());
    let slot = crc.slot(&full(&counter));
    let cas = keys_in_slot(
        &crc,
        &prefix,
        &Key::ephemeral("reshard").part("cas"),
        slot,
        1,
    )
    .pop()
    .unwrap();
    let items = keys_in_slot(
        &crc,
        &prefix,
        &Key::ephemeral("reshard").part("item"),
        slot,
        ITEMS,
    );
    let mut nodes = Vec::new();
    for port in cluster.ports() {
        nodes.push(Node::open(port).await);
    }
    let keyslot: i64 = nodes[0]
        .query(&["CLUSTER", "KEYSLOT", &full(&items[ITEMS - 1])])
        .await;
    assert_eq!(
        keyslot,
        i64::from(slot),
        "the test's slot hash agrees with Redis"
    );
    let mut owner = None;
    for (i, node) in nodes.iter().enumerate() {
        if node.owns(slot).await {
            owner = Some(i);
        }
    }
    let owner = owner.expect("one node owns the slot");
    let (target, third) = ((owner + 1) % 3, (owner + 2) % 3);
    let (from, to, other) = (&nodes[owner], &nodes[target], &nodes[third]);

    let initial = store
        .put(&cas, b"start".to_vec(), None)
        .await
        .unwrap()
        .raw();
    let world = Arc::new(World {
        store: store.clone(),
        counter: counter.clone(),
        cas: cas.clone(),
        items: items.clone(),
        phase: AtomicU8::new(BEFORE),
        stop: AtomicBool::new(false),
        next_item: AtomicUsize::new(0),
        log: Log {
            inserted: Mutex::new(vec![Inserted::Not; ITEMS]),
            ..Log::default()
        },
        errors: Errors::default(),
    });
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(tokio::spawn(incrementer(world.clone())));
    }
    for id in 0..3 {
        tasks.push(tokio::spawn(swapper(world.clone(), id)));
    }
    for _ in 0..2 {
        tasks.push(tokio::spawn(inserter(world.clone())));
    }
    for id in 0..2 {
        tasks.push(tokio::spawn(taker(world.clone(), id)));
    }

    // The counter moves first, so increments meet `ASK` for the whole hold.
    let first = [full(&counter)];
    tokio::time::sleep(SETTLE).await;
    world.phase.store(FIRST_MOVE, Ordering::Relaxed);
    let moved_there = migrate_slot(from, to, other, slot, &first).await;
    world.phase.store(BETWEEN, Ordering::Relaxed);
    tokio::time::sleep(SETTLE).await;
    world.phase.store(SECOND_MOVE, Ordering::Relaxed);
    let moved_back = migrate_slot(to, from, other, slot, &first).await;
    world.phase.store(AFTER, Ordering::Relaxed);
    tokio::time::sleep(SETTLE).await;
    world.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // The slot is home again, with every key of the test.
    assert!(from.owns(slot).await && !to.owns(slot).await);
    assert_eq!(to.count_in(slot).await, 0, "no key left on the other node");
    for node in [from, to, other] {
        let line = node.own_line().await;
        assert!(!line.contains("->-") && !line.contains("-<-"), "{line}");
    }

    let log = &world.log;
    let errors = &world.errors;
    let increments = log.increments.lock().unwrap().clone();
    let swaps = log.swaps.lock().unwrap().clone();
    let inserted = log.inserted.lock().unwrap().clone();
    let taken = log.taken.lock().unwrap().clone();

    // Counter: the successful increments' answers are exactly 1..=n, and the counter is n (an
    // applied error would leave a gap in the answers or a count above n).
    let mut answers: Vec<u64> = increments.iter().map(|(n, _)| *n).collect();
    answers.sort_unstable();
    let expected: Vec<u64> = (1..=answers.len() as u64).collect();
    assert!(
        answers == expected,
        "increment answers are not 1..={}: first gap near {:?}",
        answers.len(),
        answers.iter().zip(&expected).find(|(a, e)| a != e)
    );
    let stored = read(&store, &counter).await.expect("the counter exists");
    assert_eq!(
        stored.value,
        answers.len().to_string().into_bytes(),
        "the counter counts each successful increment once and nothing else"
    );

    // Compare-and-swap: the successful swaps chain from the first version to the stored entry,
    // each taking the version the previous one wrote.
    let mut by_expected: HashMap<u64, (u64, Vec<u8>)> = HashMap::new();
    for swap in &swaps {
        assert!(
            by_expected
                .insert(swap.expected, (swap.new, swap.value.clone()))
                .is_none(),
            "two successful swaps from one version"
        );
    }
    let (mut version, mut value) = (initial, b"start".to_vec());
    let mut chain = 0;
    while let Some((new, v)) = by_expected.remove(&version) {
        (version, value) = (new, v);
        chain += 1;
    }
    assert!(
        by_expected.is_empty(),
        "{} successful swaps are off the chain (a swap was applied that was reported failed)",
        by_expected.len()
    );
    assert_eq!(chain, swaps.len());
    let entry = read(&store, &cas).await.expect("the entry exists");
    assert_eq!(
        (entry.version.raw(), entry.value),
        (version, value),
        "the stored entry is the last successful swap's"
    );

    // Inserts and takes: a value is taken at most once, only if its insert succeeded, and is
    // exactly what was inserted; an item never taken is still stored with its insert's version,
    // a failed insert left nothing.
    let mut takes_of: HashMap<usize, usize> = HashMap::new();
    for (i, value, _) in &taken {
        *takes_of.entry(*i).or_default() += 1;
        assert_eq!(value, &item_value(*i), "item {i} returned another value");
        assert!(
            matches!(inserted[*i], Inserted::Ok(_)),
            "item {i} was taken, but its insert was {:?}",
            inserted[*i]
        );
    }
    for (i, &n) in &takes_of {
        assert_eq!(n, 1, "item {i}'s value was returned by {n} takes");
    }
    for (i, outcome) in inserted.iter().enumerate() {
        let now = read(&store, &items[i]).await;
        match (outcome, takes_of.contains_key(&i)) {
            (Inserted::Ok(version), false) => {
                let now = now.unwrap_or_else(|| panic!("item {i}: never taken, yet gone"));
                assert_eq!((now.version, now.value), (*version, item_value(i)));
            }
            (Inserted::Ok(_), true) => assert_eq!(now, None, "item {i} taken, yet stored"),
            (Inserted::Failed | Inserted::Not, _) => {
                assert_eq!(now, None, "item {i}: the failed insert was applied");
            }
        }
    }

    // The redirects really happened, and every error was one of them.
    let table = errors.0.lock().unwrap().clone();
    let phases = |v: &[u8], p: u8| v.iter().filter(|&&x| x == p).count();
    let inc_phases: Vec<u8> = increments.iter().map(|(_, p)| *p).collect();
    let swap_phases: Vec<u8> = swaps.iter().map(|s| s.phase).collect();
    let take_phases: Vec<u8> = taken.iter().map(|t| t.2).collect();
    let insert_phases = log.insert_phases.lock().unwrap().clone();
    let empty_takes = log.empty_takes.lock().unwrap().clone();
    eprintln!(
        "reshard: slot {slot} node {} -> {} ({moved_there} keys) -> back ({moved_back} keys); \
         ok: {} increments, {} swaps ({} conflicts), {} inserts of {}, {} takes with a value, \
         {} empty; errors: {table:?}",
        from.port,
        to.port,
        increments.len(),
        swaps.len(),
        log.conflicts.load(Ordering::Relaxed),
        insert_phases.len(),
        world.next_item.load(Ordering::Relaxed).min(ITEMS),
        taken.len(),
        empty_takes.len(),
    );
    assert!(errors.count("ASK") > 0, "no ASK answered: {table:?}");
    assert!(errors.count("MOVED") > 0, "no MOVED answered: {table:?}");
    assert_eq!(
        errors.count("ASK") + errors.count("MOVED") + errors.count("TRYAGAIN"),
        errors.total(),
        "every error is a redirect: {table:?}"
    );
    assert!(
        table.contains_key(&("increment", "ASK".to_owned())),
        "increments met ASK while the counter had moved and the slot was held: {table:?}"
    );
    // Operations also succeeded while the slot was held (keys not yet moved), and the same
    // store value works after both migrations without being re-created.
    assert!(
        phases(&swap_phases, FIRST_MOVE) + phases(&swap_phases, SECOND_MOVE) > 0
            || phases(&take_phases, FIRST_MOVE) + phases(&take_phases, SECOND_MOVE) > 0,
        "nothing succeeded on the source while the slot was held"
    );
    assert!(
        phases(&inc_phases, AFTER) > 0,
        "no increment after the migrations"
    );
    assert!(
        phases(&swap_phases, AFTER) > 0,
        "no swap after the migrations"
    );
    assert!(
        phases(&take_phases, AFTER) + phases(&empty_takes, AFTER) > 0,
        "no take after the migrations"
    );
    if world.next_item.load(Ordering::Relaxed) < ITEMS {
        assert!(
            phases(&insert_phases, AFTER) > 0,
            "no insert after the migrations"
        );
    }
    assert_eq!(
        store.increment(&counter, 1, None).await.unwrap(),
        answers.len() as u64 + 1
    );
}
