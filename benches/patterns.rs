//! Matcher throughput as the rule set grows, on ~1 KB CloudEvents, one core.
//!
//! cargo bench --bench patterns
//!
//! Each rule set mixes exact, prefix, suffix, numeric ranges, anything-but and cidr rules
//! over a realistic order event. Every rule keys on a value of its own (a tenant, a
//! customer, a shop, a network), drawn from spaces that grow with the rule set, so an
//! event matches a handful of rules whatever the set's size: the work that grows, if
//! any, is the matcher's. Events are matched from their raw JSON (attributes and data),
//! so flattening is included. Compile time and heap per rule are printed before the
//! criterion runs. A second group, `prefixes`, puts 10 or 10,000 distinct prefixes on
//! one field (the case where Quamina collapses).
//!
//! `PATTERN_BENCH_SIZES=10,10000 cargo bench --bench patterns -- rules` runs some sets only.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use serde_json::{json, Value};

/// The binary's allocator, counting live bytes to report memory per rule.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[path = "support/patterns_gen.rs"]
mod gen;
use gen::{compile, event, event_with_email, match_one, rule, Rng};

fn rule_sets(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(1));
    // PATTERN_BENCH_SIZES=10,1000 runs only those sets.
    let sizes: Vec<u64> = std::env::var("PATTERN_BENCH_SIZES")
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|_| vec![10, 1_000, 10_000, 100_000]);
    for n in sizes {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n);
        let patterns: Vec<Value> = (0..n).map(|i| rule(i, n, &mut rng)).collect();
        let before = LIVE.load(Relaxed);
        let started = Instant::now();
        let matcher = compile(&patterns);
        let took = started.elapsed();
        let bytes = LIVE.load(Relaxed) - before;
        let events: Vec<_> = (0..256).map(|_| event(n, &mut rng)).collect();
        let mut out = Vec::new();
        let mut matched = 0;
        for event in &events {
            matched += match_one(&matcher, event, &mut out);
        }
        let size = events.iter().map(|(a, d)| a.len() + d.len()).sum::<usize>() / events.len();
        eprintln!(
            "{n} rules: compiled in {took:.2?}, {} bytes/rule, events ~{size} B, {:.2} matches/event",
            bytes / n as usize,
            matched as f64 / events.len() as f64
        );
        let mut i = 0;
        group.bench_function(format!("{n}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(match_one(&matcher, &events[i % events.len()], &mut out))
            })
        });
    }
    group.finish();
}

fn prefixes(c: &mut Criterion) {
    let mut group = c.benchmark_group("prefixes");
    group.throughput(Throughput::Elements(1));
    for n in [10u64, 10_000] {
        let mut rng = Rng(7 + n);
        let patterns: Vec<Value> = (0..n)
            .map(|i| json!({"data": {"customer": {"email": [{"prefix": format!("user{i}-{}", rng.below(1000))}]}}}))
            .collect();
        let matcher = compile(&patterns);
        // Emails that share the rules' shape, so lookups walk deep into the prefixes.
        let events: Vec<_> = (0..256)
            .map(|_| {
                let email = format!("user{}-{}@example.com", rng.below(n), rng.below(1000));
                event_with_email(n, &mut rng, email)
            })
            .collect();
        let mut out = Vec::new();
        let mut i = 0;
        group.bench_function(format!("{n}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(match_one(&matcher, &events[i % events.len()], &mut out))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rule_sets, prefixes);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
