//! Benchmarks of the scenario path: what a journey step costs on top of the
//! bare request `convoy bench` repeats.
//!
//! Two groups:
//!
//! - `template`: parsing (once per scenario load) and rendering (once per
//!   request, for the path, headers, body fields and check values) of the
//!   templates `order-lifecycle` uses. Rendering is on every step's path, so
//!   it should stay in the tens of nanoseconds, far below a request's cost.
//! - `journey`: one iteration, end to end, against an in-process reference
//!   target, with one virtual user on one worker: `bench_get_health` (the
//!   [`BenchWorkload`] behind `convoy bench`), `scenario_health` (the
//!   one-step `health` scenario: templates, checks on a JSON body and a
//!   header) and `order_lifecycle` (five steps with JSON bodies, captures
//!   and checks). Each sample is a whole `engine::run` of N iterations, and
//!   criterion's linear sampling fits time against N: the slope is the time
//!   per iteration, without the fixed cost of starting the engine, opening
//!   the connection and logging in. Throughput is set to the requests of
//!   one iteration, so `thrpt` reads as requests per second for one user.
//!   The time includes the target's own work on the other runtime threads
//!   and loopback round trips: compare the three with each other, per
//!   request, not with CPU figures (`ci/bench/journey.sh` measures CPU).
//!
//! Quick by design (short warm-up and measurement, few samples):
//! `cargo bench --bench scenario`, `cargo bench --bench scenario -- journey`
//! for one group, `-- --quick` for a rougher pass.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use serde_json::Value;

use convoy::bench::{BenchWorkload, RequestSpec};
use convoy::engine::{self, EngineOptions, RunControl, Workload};
use convoy::plan::{ClosedModel, HttpOptions, LoadModel, Ramp};
use convoy::scenario::template::{Part, RenderCtx, Resolve, Template};
use convoy::scenario::{self, CustomRegistry, ScenarioWorkload};
use convoy::target::{self, RunningTarget, TargetConfig};

/// The names `order-lifecycle`'s templates refer to, as the scenario
/// resolves them: two captured variables and a data column.
struct LifecycleNames;

impl Resolve for LifecycleNames {
    fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)> {
        match name {
            "order_id" => Ok(Part::Var(0)),
            "adjustment_id" => Ok(Part::Var(1)),
            "data.city" => Ok(Part::Data(0)),
            _ => Err((format!("undefined variable {name:?}"), None)),
        }
    }
}

/// Every templated string of `order-lifecycle`'s steps, in order.
const LIFECYCLE_TEMPLATES: &[&str] = &[
    "/api/orders",
    "{{ uuid }}",
    "PO-{{ vu }}-{{ iteration }}",
    "Am Sandtorkai 1, Hamburg",
    "/api/orders/{{ order_id }}/accept",
    "{{ order_id }}",
    "/api/orders/{{ order_id }}/route",
    "/api/orders/{{ order_id }}/deliver",
    "/api/orders/{{ order_id }}/adjustments",
    "{{ adjustment_id }}",
];

fn template(c: &mut Criterion) {
    let mut group = c.benchmark_group("template");
    group.bench_function("parse_path", |b| {
        b.iter(|| {
            Template::parse(
                black_box("/api/orders/{{ order_id }}/accept"),
                &LifecycleNames,
            )
        })
    });
    group.throughput(Throughput::Elements(LIFECYCLE_TEMPLATES.len() as u64));
    group.bench_function("parse_order_lifecycle", |b| {
        b.iter(|| {
            for text in LIFECYCLE_TEMPLATES {
                black_box(Template::parse(black_box(text), &LifecycleNames).unwrap());
            }
        })
    });
    group.throughput(Throughput::Elements(1));

    let vars = [
        Some(Value::from("ord-5f0c2a4e-8d7b-4c1e-9a3f-2b6d8e1f0a9c")),
        Some(Value::from("adj-000042")),
    ];
    let names = ["order_id".to_string(), "adjustment_id".to_string()];
    let ctx = RenderCtx {
        vu: 17,
        iteration: 4242,
        vars: &vars,
        data: None,
        names: &names,
        ident: &[],
        ident_names: &[],
    };
    let parse = |text| Template::parse(text, &LifecycleNames).unwrap();
    let path = parse("/api/orders/{{ order_id }}/accept");
    let reference = parse("PO-{{ vu }}-{{ iteration }}");
    let uuid = parse("{{ uuid }}");
    let captured = parse("{{ adjustment_id }}");
    let literal = parse("/api/orders");

    // The runner renders into a buffer it reuses; `render` allocates.
    group.bench_function("render_into_path", |b| {
        let mut out = String::with_capacity(128);
        b.iter(|| {
            out.clear();
            path.render_into(black_box(&ctx), &mut out).unwrap();
            black_box(out.len())
        })
    });
    group.bench_function("render_path", |b| {
        b.iter(|| path.render(black_box(&ctx)).unwrap())
    });
    group.bench_function("render_literal", |b| {
        b.iter(|| literal.render(black_box(&ctx)).unwrap())
    });
    group.bench_function("render_reference", |b| {
        b.iter(|| reference.render(black_box(&ctx)).unwrap())
    });
    group.bench_function("render_uuid", |b| {
        b.iter(|| uuid.render(black_box(&ctx)).unwrap())
    });
    group.bench_function("render_value_captured", |b| {
        b.iter(|| captured.render_value(black_box(&ctx)).unwrap())
    });
    group.finish();
}

/// One user running `iterations` iterations, then stopping.
fn one_user(iterations: u64) -> LoadModel {
    LoadModel::Closed(ClosedModel {
        users: Ramp::constant(1.0, Duration::ZERO),
        iterations_per_user: Some(iterations),
        total_iterations: None,
        duration: None,
    })
}

/// Wall time of one `engine::run` of `iterations` iterations of `workload`
/// on one worker. Panics when an iteration failed a check or a request, so
/// that a broken target is never mistaken for a fast one.
fn timed_run<W: Workload>(workload: &Arc<W>, iterations: u64) -> Duration {
    let options = EngineOptions {
        workers: 1,
        ..EngineOptions::default()
    };
    let start = Instant::now();
    let result = engine::run(
        &one_user(iterations),
        &options,
        workload.clone(),
        &RunControl::new(),
        |_| {},
    )
    .expect("the engine runs");
    let elapsed = start.elapsed();
    assert_eq!(result.iterations, iterations, "{:?}", result.stop_reason);
    assert_eq!(
        result.overall().errors,
        0,
        "{:?}",
        result.overall().status_counts
    );
    assert_eq!(result.check_failures(), 0, "{:#?}", result.failures);
    elapsed
}

/// Benchmarks `workload` as `name`, `requests` requests per iteration.
fn bench_journey<W: Workload>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    requests: u64,
    workload: W,
) {
    let workload = Arc::new(workload);
    // One run before measuring: the target's first orders and the
    // allocator's first pages are not typical.
    timed_run(&workload, 20);
    group.throughput(Throughput::Elements(requests));
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| timed_run(&workload, iterations))
    });
}

fn scenario_workload(name: &str, url: &url::Url) -> ScenarioWorkload {
    let s = scenario::load(name).unwrap_or_else(|d| panic!("{d}"));
    ScenarioWorkload::new(
        vec![s],
        Some(url),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .expect("the scenario prepares")
}

fn journey(c: &mut Criterion) {
    let target: RunningTarget = target::spawn(TargetConfig::default()).expect("target starts");
    let url: url::Url = target.base_url().parse().expect("valid URL");
    let mut group = c.benchmark_group("journey");
    group
        .sampling_mode(SamplingMode::Linear)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let health = RequestSpec {
        method: http::Method::GET,
        url: url.join("/health").expect("valid URL"),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::new(),
    };
    bench_journey(
        &mut group,
        "bench_get_health",
        1,
        BenchWorkload::new(health, HttpOptions::default()).expect("bench workload"),
    );
    bench_journey(
        &mut group,
        "scenario_health",
        1,
        scenario_workload("health", &url),
    );
    bench_journey(
        &mut group,
        "order_lifecycle",
        5,
        scenario_workload("order-lifecycle", &url),
    );
    group.finish();
    target.shutdown();
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = scenario;
    config = quick();
    targets = template, journey
}
criterion_main!(scenario);
