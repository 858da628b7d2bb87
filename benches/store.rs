//! State store micro-benchmarks: the operations every backend's hot path goes through.
#![allow(clippy::expect_used, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keyward::store::{MemoryStore, StateStore, Ttl, Update, update_json};

fn bench_memory_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = MemoryStore::new();
    c.bench_function("memory_store/increment", |b| {
        b.iter(|| rt.block_on(store.increment("bench:counter", 1, None)))
    });
    c.bench_function("memory_store/put_take", |b| {
        b.iter(|| {
            rt.block_on(async {
                store
                    .put(
                        "bench:challenge",
                        vec![7; 32],
                        Some(Duration::from_secs(60)),
                    )
                    .await?;
                store.take("bench:challenge").await
            })
        })
    });
    c.bench_function("memory_store/update_json", |b| {
        b.iter(|| {
            rt.block_on(update_json::<u64, (), _>(&store, "bench:json", |v| {
                Ok(Update::Set(v.unwrap_or(0) + 1, Ttl::Keep, ()))
            }))
        })
    });
}

criterion_group!(benches, bench_memory_store);
criterion_main!(benches);
