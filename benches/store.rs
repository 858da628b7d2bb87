//! State store micro-benchmarks: the operations every backend's hot path goes through.
#![allow(clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::store::{Key, MemoryStore, StateStore, StateStoreExt, Ttl, Update};

fn bench_memory_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = MemoryStore::new();
    let counter = Key::ephemeral("bench").part("counter");
    let challenge = Key::ephemeral("bench").part("challenge");
    let json = Key::ephemeral("bench").part("json");
    c.bench_function("memory_store/increment", |b| {
        b.iter(|| rt.block_on(store.increment(&counter, 1, None)))
    });
    c.bench_function("memory_store/put_take", |b| {
        b.iter(|| {
            rt.block_on(async {
                store
                    .put(&challenge, vec![7; 32], Some(Duration::from_secs(60)))
                    .await?;
                store.take(&challenge).await
            })
        })
    });
    c.bench_function("memory_store/update_json", |b| {
        b.iter(|| {
            rt.block_on(store.update_json::<u64, (), _>(&json, |v| {
                Ok(Update::Set(v.unwrap_or(0) + 1, Ttl::Keep, ()))
            }))
        })
    });
}

criterion_group!(benches, bench_memory_store);
criterion_main!(benches);
