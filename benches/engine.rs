//! Micro-benchmarks of the engine's recording hot path.
//!
//! Every finished request goes through [`Recorder::record`]: a lock of the
//! worker's own shard, a [`StepStats::record`] (two histogram records and a
//! status count) and one more histogram record for the live timeline. At
//! 100k responses a second on one core that path has a budget of well under
//! a microsecond, so a regression here shows up in `ci/bench/peers.sh`'s CPU
//! per 10k responses long before anyone notices it in a run. Merging
//! [`StepStats`] is what the end of a run, shards and re-rendering do, once
//! per worker and step.
//!
//! Quick by design (short warm-up and measurement):
//! `cargo bench --bench engine`, or `cargo bench --bench engine -- recorder`
//! for one group.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use convoy::metrics::{LatencyHistogram, Outcome, Recorder, StepStats};

/// Latencies spread like a real run's: mostly around a millisecond, a tail
/// out to ~200 ms, so records touch many histogram buckets rather than one
/// hot cache line. Deterministic (a fixed LCG), so runs compare.
fn latencies(n: usize) -> Vec<Duration> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            // Log-uniform between 100 µs and ~200 ms.
            let micros = 100.0 * (2000.0f64).powf(unit * unit);
            Duration::from_micros(micros as u64)
        })
        .collect()
}

/// A step with `n` recorded requests, a few of them failures.
fn step_with(n: usize, seed_offset: usize) -> StepStats {
    let lat = latencies(n + seed_offset);
    let mut s = StepStats::default();
    for (i, d) in lat.iter().skip(seed_offset).enumerate() {
        let outcome = if i % 100 == 0 {
            Outcome::Status(503)
        } else {
            Outcome::Status(200)
        };
        s.record(*d, *d, outcome);
    }
    s
}

fn recorder(c: &mut Criterion) {
    let lat = latencies(4096);
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record_status_200", |b| {
        let rec = Recorder::new(1);
        let mut i = 0usize;
        b.iter(|| {
            let d = lat[i & 4095];
            i = i.wrapping_add(1);
            rec.record(
                black_box(0),
                black_box(d),
                black_box(d),
                black_box(Outcome::Status(200)),
            );
        });
    });
    group.bench_function("record_step_3_of_4", |b| {
        let rec = Recorder::new(4);
        let mut i = 0usize;
        b.iter(|| {
            let d = lat[i & 4095];
            i = i.wrapping_add(1);
            rec.record(
                black_box(3),
                black_box(d),
                black_box(d),
                black_box(Outcome::Status(200)),
            );
        });
    });
    group.finish();
}

fn histogram(c: &mut Criterion) {
    let lat = latencies(4096);
    let mut group = c.benchmark_group("histogram");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record", |b| {
        let mut h = LatencyHistogram::new();
        let mut i = 0usize;
        b.iter(|| {
            h.record(black_box(lat[i & 4095]));
            i = i.wrapping_add(1);
        });
    });
    group.finish();
}

fn step_stats(c: &mut Criterion) {
    let lat = latencies(4096);
    let mut group = c.benchmark_group("step_stats");
    // What Recorder::record does under its lock, without the lock and the
    // timeline's histogram: the difference is the shard's overhead.
    group.bench_function("record", |b| {
        let mut s = StepStats::default();
        let mut i = 0usize;
        b.iter(|| {
            let d = lat[i & 4095];
            i = i.wrapping_add(1);
            s.record(black_box(d), black_box(d), black_box(Outcome::Status(200)));
        });
    });
    let a = step_with(100_000, 0);
    let other = step_with(100_000, 7);
    group.bench_function("merge_100k_into_100k", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |acc| acc.merge(black_box(&other)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = engine;
    config = quick();
    targets = recorder, histogram, step_stats
}
criterion_main!(engine);
