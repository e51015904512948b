//! Hand-built, deterministic reports for the gate, report and compare
//! tests: fixed timestamps and run ids, latencies from a seeded generator,
//! no network.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use convoy::engine::{
    CheckInfo, CheckResult, RunResult, StepInfo, StepKind, StepResult, StopReason,
};
use convoy::metrics::{
    CheckStats, ErrorCause, FailureSample, Outcome, StepStats, Timeline, TimelineSample, Violation,
};
use convoy::plan::LoadModel;
use convoy::report::{Report, RunMeta};

/// 2026-11-18T04:41:00Z, a fixed start for every fixture.
pub fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_794_976_860)
}

/// Step stats with `n` responses whose latencies are `f(i)` ms, `errors`
/// of them 500s, plus `refused` transport failures.
pub fn stats(n: u64, errors: u64, refused: u64, f: impl Fn(u64) -> f64) -> StepStats {
    let mut s = StepStats::default();
    for i in 0..n {
        let d = Duration::from_secs_f64(f(i) / 1000.0);
        let status = if i < errors { 500 } else { 201 };
        s.record(d, d, Outcome::Status(status));
    }
    for _ in 0..refused {
        s.record(
            Duration::ZERO,
            Duration::ZERO,
            Outcome::Failed(ErrorCause::Refused),
        );
    }
    s
}

/// A step result.
pub fn step(name: &str, kind: StepKind, stats: StepStats) -> StepResult {
    StepResult {
        info: StepInfo {
            name: name.to_string(),
            kind,
        },
        stats,
    }
}

/// A run result around `steps`, with a ten-second timeline.
pub fn result(steps: Vec<StepResult>, secs: f64) -> RunResult {
    let mut timeline = Timeline::default();
    for t in 0..secs.ceil() as u64 {
        let wobble = (t % 4) as f64;
        timeline.push(TimelineSample {
            t: t as f64,
            window: 1.0,
            requests: 180 + t * 3,
            errors: if t == 6 { 9 } else { t % 2 },
            dropped: 0,
            p50_ms: 40.0 + wobble,
            p95_ms: 120.0 + 10.0 * wobble,
            p99_ms: 210.0 + 25.0 * wobble + if t == 6 { 300.0 } else { 0.0 },
            max_ms: 480.0,
            active_users: 20,
            latency: None,
        });
    }
    RunResult {
        steps,
        iterations: 200,
        dropped: 0,
        interrupted: 0,
        auth_renewals: 0,
        started_at: epoch(),
        ended_at: epoch() + Duration::from_secs_f64(secs),
        duration_secs: secs,
        model: LoadModel::closed(20, 10),
        stop_reason: StopReason::Completed,
        timeline,
        checks: Vec::new(),
        violations: Violation::ALL.iter().map(|v| (*v, 0)).collect(),
        failures: Vec::new(),
    }
}

/// The metadata every fixture uses.
pub fn meta(run_id: &str) -> RunMeta {
    let mut m = RunMeta::new("run", "https://staging.example.test/api");
    m.run_id = Some(run_id.to_string());
    m.scenario = Some("order_lifecycle".to_string());
    m.profile = Some("moderate".to_string());
    m
}

/// Finishes a report: builds it and pins the version so expected files do
/// not change with every release.
pub fn report(result: &RunResult, run_id: &str) -> Report {
    let mut r = Report::new(result, meta(run_id));
    r.convoy_version = "0.0.0-test".to_string();
    r
}

/// The showcase report: three request steps (one with spaces in its name),
/// a journey, checks with failures, a tenant isolation violation and
/// failure samples whose text needs escaping in every format.
pub fn showcase() -> Report {
    let mut r = result(
        vec![
            step(
                "create_order",
                StepKind::Request,
                stats(800, 4, 0, |i| 20.0 + (i % 100) as f64 * 3.1),
            ),
            step(
                "accept_order",
                StepKind::Request,
                stats(800, 0, 2, |i| 12.0 + (i % 50) as f64 * 0.9),
            ),
            step(
                "GET /health",
                StepKind::Request,
                stats(400, 0, 0, |i| 0.8 + (i % 10) as f64 * 0.05),
            ),
            step(
                "order_lifecycle",
                StepKind::Journey,
                stats(200, 4, 0, |i| 90.0 + (i % 40) as f64 * 6.0),
            ),
        ],
        10.0,
    );
    r.checks = vec![
        check("create_order", "status == 201", 796, 4),
        check("create_order", "body.id exists", 800, 0),
        check("accept_order", "status == 200", 798, 2),
    ];
    r.violations = BTreeMap::from([
        (Violation::IdempotencyViolations, 0),
        (Violation::TenantIsolationViolations, 1),
    ]);
    r.failures = vec![
        FailureSample {
            step: "create_order".into(),
            check: "status == 201".into(),
            message: "expected status 201, got 500".into(),
            request: "POST https://staging.example.test/api/orders\nauthorization: [redacted]\n\n{\"ref\":\"a<b&c\"}".into(),
            response: "HTTP 500\ncontent-type: text/plain\n\ninternal error | ```boom``` \u{7}".into(),
            vu: 3,
            iteration: 7,
            violation: None,
            status: Some(500),
            cause: None,
        },
        FailureSample {
            step: "tenant_isolation".into(),
            check: "tenant_isolation_violations".into(),
            message: "tenant B read order 42 of tenant A".into(),
            request: "GET https://staging.example.test/api/orders/42".into(),
            response: "HTTP 200".into(),
            vu: 1,
            iteration: 2,
            violation: Some(Violation::TenantIsolationViolations),
            status: Some(200),
            cause: None,
        },
    ];
    report(&r, "20261118T044100Z-abc123")
}

/// A check result.
pub fn check(step: &str, name: &str, passes: u64, failures: u64) -> CheckResult {
    CheckResult {
        info: CheckInfo {
            step: step.into(),
            name: name.into(),
        },
        stats: CheckStats { passes, failures },
    }
}

/// A run of one step, `create_order`, whose latencies are drawn from a
/// log-normal-ish distribution around `median_ms` with a seeded generator;
/// `started` orders runs in a history.
pub fn synthetic(run_id: &str, started: u64, median_ms: f64, errors: u64, seed: u64) -> Report {
    let mut rng = fastrand::Rng::with_seed(seed);
    let samples: Vec<f64> = (0..2000)
        .map(|_| {
            // Sum of uniforms: a bell shape, skewed right by the exponent.
            let z: f64 = (0..6).map(|_| rng.f64()).sum::<f64>() - 3.0;
            median_ms * (z * 0.35).exp()
        })
        .collect();
    let mut r = result(
        vec![step(
            "create_order",
            StepKind::Request,
            stats(2000, errors, 0, |i| samples[i as usize]),
        )],
        20.0,
    );
    r.started_at = epoch() + Duration::from_secs(started * 86_400);
    r.ended_at = r.started_at + Duration::from_secs(20);
    report(&r, run_id)
}

/// Compares `actual` with `tests/expected/NAME`; with `UPDATE_EXPECTED=1`
/// in the environment, writes it instead (then review the diff).
pub fn assert_expected(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name);
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (run with UPDATE_EXPECTED=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the expected file, first at line {}:\n  expected: {:?}\n  actual:   {:?}\n--- actual output ---\n{actual}\n(run with UPDATE_EXPECTED=1 to accept)",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// The showcase with gates evaluated (some pass, some fail).
pub fn showcase_with_gates() -> Report {
    let mut r = showcase();
    let gates = convoy::gate::parse_all(&[
        "p95 < 500ms",
        "error_rate < 1%",
        "checks > 99.9%",
        "step:create_order p99 < 300ms",
        r#"step:"GET /health" p95 < 10ms"#,
        "journey:order_lifecycle p95 < 2s",
        "tenant_isolation_violations == 0",
        "rps >= 100",
    ])
    .unwrap();
    r.gates = convoy::gate::evaluate(&gates, &r, None);
    r
}
