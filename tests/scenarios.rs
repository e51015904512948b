//! The built-in journeys against the reference target: each passes with its
//! fault off and fails, with the right violation count, with it on.

mod engine_support;

use std::sync::Arc;

use convoy::cli::Exit;
use convoy::engine::{self, EngineOptions, RunControl, RunResult, StopReason, WatchPolicy};
use convoy::metrics::ErrorCause;
use convoy::metrics::Violation;
use convoy::plan::{HttpOptions, LoadModel};
use convoy::scenario::{self, CustomCtx, CustomJourney, CustomRegistry, ScenarioWorkload};
use convoy::target::{self, Fault, TargetConfig};

fn run_with(
    names: &[&str],
    config: TargetConfig,
    users: u32,
    iterations: u64,
    custom: CustomRegistry,
) -> RunResult {
    let t = target::spawn(config).unwrap();
    let model = LoadModel::closed(users, iterations);
    engine_support::run_scenarios(&t.base_url(), load(names), &model, custom, false)
}

/// As [`run`], with the workload watching for the target's death on the
/// run's control, as `convoy run` sets it up.
fn run_watched(names: &[&str], config: TargetConfig, users: u32, iterations: u64) -> RunResult {
    let t = target::spawn(config).unwrap();
    let model = LoadModel::closed(users, iterations);
    engine_support::run_scenarios(
        &t.base_url(),
        load(names),
        &model,
        CustomRegistry::new(),
        true,
    )
}

fn load(names: &[&str]) -> Vec<scenario::Scenario> {
    names
        .iter()
        .map(|n| scenario::load(n).unwrap_or_else(|d| panic!("{d}")))
        .collect()
}

/// The exit code `convoy run` gives `r` (no gates).
fn exit_of(r: &RunResult) -> Exit {
    let report = convoy::report::Report::new(r, convoy::report::RunMeta::new("run", "test"));
    convoy::cli::run::exit_code(&report)
}

fn run(names: &[&str], config: TargetConfig, users: u32, iterations: u64) -> RunResult {
    run_with(names, config, users, iterations, CustomRegistry::new())
}

fn fault(s: &str) -> Fault {
    s.parse().unwrap()
}

fn violations(r: &RunResult, v: Violation) -> u64 {
    r.violations.get(&v).copied().unwrap_or(0)
}

#[test]
fn every_builtin_passes_against_the_reference_target() {
    let names = scenario::builtin::NAMES;
    let r = run(names, TargetConfig::default(), 3, 6);
    assert_eq!(r.check_failures(), 0, "failures: {:#?}", r.failures);
    assert_eq!(r.iterations, 18);
    assert_eq!(r.overall().errors, 0, "{:?}", r.overall().status_counts);
    assert!(r.violations.values().all(|v| *v == 0));
    // Every journey ran: each journey metric has samples.
    for n in names {
        let s = r.steps.iter().find(|s| s.info.name == *n).unwrap();
        assert!(s.stats.requests > 0, "{n} never ran");
    }
}

#[test]
fn the_lifecycle_writes_one_ledger_row_per_delivery() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let url: url::Url = t.base_url().parse().unwrap();
    let s = scenario::load("order-lifecycle").unwrap();
    let w = ScenarioWorkload::new(
        vec![s],
        Some(&url),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .unwrap();
    let r = engine::run(
        &LoadModel::closed(2, 5),
        &EngineOptions::default(),
        Arc::new(w),
        &RunControl::new(),
        |_| {},
    )
    .unwrap();
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(t.ledger_rows("acme"), 10);
    assert_eq!(t.orders_count("acme"), 10);
}

#[test]
fn idempotency_race_is_caught_and_counted() {
    let ok = run(&["idempotent-replay"], TargetConfig::default(), 2, 3);
    assert_eq!(
        violations(&ok, Violation::IdempotencyViolations),
        0,
        "{:#?}",
        ok.failures
    );
    assert_eq!(ok.check_failures(), 0);

    let bad = run(
        &["idempotent-replay"],
        TargetConfig::default().with_fault(Fault::IdempotencyRace),
        2,
        3,
    );
    // Each of the 6 iterations creates 5 orders instead of 1: the ids differ
    // (one violation) and the single-entry verification fails (another).
    assert_eq!(
        violations(&bad, Violation::IdempotencyViolations),
        12,
        "{:#?}",
        bad.failures
    );
    assert!(bad.check_failures() > 0);
    let sample = bad
        .failures
        .iter()
        .find(|f| f.check == "idempotent replay")
        .expect("a sample");
    assert!(
        sample.message.contains("different ids"),
        "{}",
        sample.message
    );
}

#[test]
fn tenant_leak_is_caught_and_counted() {
    let ok = run(&["tenant-isolation"], TargetConfig::default(), 2, 2);
    assert_eq!(
        violations(&ok, Violation::TenantIsolationViolations),
        0,
        "{:#?}",
        ok.failures
    );
    assert_eq!(ok.check_failures(), 0);

    // Every cross-tenant read leaks: GET and GET /adjustments answer 200 with
    // the other tenant's data, 2 probes x 4 iterations.
    let bad = run(
        &["tenant-isolation"],
        TargetConfig::default().with_fault(fault("tenant-leak=1.0")),
        2,
        2,
    );
    assert_eq!(
        violations(&bad, Violation::TenantIsolationViolations),
        8,
        "{:#?}",
        bad.failures
    );
    let sample = bad
        .failures
        .iter()
        .find(|f| f.check.starts_with("tenant isolation"))
        .expect("a sample");
    assert!(
        sample.response.starts_with("HTTP 200"),
        "{}",
        sample.response
    );
    assert!(sample.message.contains("marker"), "{}", sample.message);
    // Secrets never reach the sample: the bearer token is redacted.
    assert!(
        sample.request.contains("authorization: [REDACTED]"),
        "{}",
        sample.request
    );
}

#[test]
fn server_errors_are_errors_not_isolation_or_idempotency_violations() {
    // Nearly a third of the answers are 5xx: probes and replays among them.
    // They fail checks and count as errors; only a disclosure or two ids for
    // one key would be a violation, and the target makes neither.
    let r = run(
        &["tenant-isolation", "idempotent-replay"],
        TargetConfig::default().with_fault(fault("error-rate=0.3")),
        4,
        6,
    );
    assert!(r.check_failures() > 0);
    let errors = |prefix: &str| -> u64 {
        r.steps
            .iter()
            .filter(|s| s.info.name.starts_with(prefix))
            .map(|s| s.stats.errors)
            .sum()
    };
    // The faults reached both kinds of step, so the zeros below are earned.
    assert!(errors("globex probes acme order") > 0, "{:#?}", r.steps);
    assert!(errors("create order (replayed)") > 0, "{:#?}", r.steps);
    assert!(r.overall().status_counts.keys().any(|s| *s >= 500));
    assert_eq!(
        violations(&r, Violation::TenantIsolationViolations),
        0,
        "{:#?}",
        r.failures
    );
    assert_eq!(
        violations(&r, Violation::IdempotencyViolations),
        0,
        "{:#?}",
        r.failures
    );
}

#[test]
fn server_errors_fail_the_lifecycle_checks() {
    let bad = run(
        &["order-lifecycle"],
        TargetConfig::default().with_fault(Fault::ErrorRate(1.0)),
        1,
        2,
    );
    assert!(bad.check_failures() > 0);
    let journey = bad
        .steps
        .iter()
        .find(|s| s.info.name == "order-lifecycle")
        .unwrap();
    assert_eq!(journey.stats.errors, 2, "both journeys failed");
}

#[test]
fn dispatch_and_health_pass_and_fail_with_errors() {
    let ok = run(&["dispatch", "health"], TargetConfig::default(), 2, 4);
    assert_eq!(ok.check_failures(), 0, "{:#?}", ok.failures);
    let bad = run(
        &["dispatch", "health"],
        TargetConfig::default().with_fault(Fault::ErrorRate(1.0)),
        2,
        4,
    );
    assert!(bad.check_failures() >= 8, "{}", bad.check_failures());
}

#[test]
fn expected_refusals_are_not_errors() {
    // The login journey expects a 401 for its anonymous step; the isolation
    // probes expect 403/404. Neither counts as an error.
    let r = run(
        &["login", "tenant-isolation"],
        TargetConfig::default(),
        1,
        2,
    );
    assert_eq!(r.overall().errors, 0, "{:?}", r.overall().status_counts);
    assert!(r.overall().status_counts.contains_key(&401));
    assert!(r.overall().status_counts.contains_key(&404));
}

struct Ping;

impl CustomJourney for Ping {
    fn run<'a>(
        &'a self,
        mut ctx: CustomCtx<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + 'a>> {
        Box::pin(async move {
            for _ in 0..3 {
                let r = ctx
                    .send(http::Method::GET, "/health", None)
                    .await
                    .map_err(|e| e.to_string())?;
                if r.status != 200 {
                    return Err(format!("health answered {}", r.status));
                }
            }
            Ok(())
        })
    }
}

#[test]
fn custom_journeys_run_from_scenario_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.toml");
    std::fs::write(
        &path,
        "name = \"custom\"\n[[step]]\nname = \"ping thrice\"\ncustom = \"ping\"\n",
    )
    .unwrap();
    let mut registry = CustomRegistry::new();
    registry.register("ping", Ping);
    let r = run_with(
        &[path.to_str().unwrap()],
        TargetConfig::default(),
        1,
        2,
        registry,
    );
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    let step = r
        .steps
        .iter()
        .find(|s| s.info.name == "ping thrice")
        .unwrap();
    assert_eq!(step.stats.requests, 6);

    let unregistered = scenario::load(path.to_str().unwrap()).unwrap();
    let url: url::Url = "http://127.0.0.1:1".parse().unwrap();
    let err = ScenarioWorkload::new(
        vec![unregistered],
        Some(&url),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .err()
    .unwrap();
    assert!(err.contains("not registered"), "{err}");
}

/// Runs the scenario file at `path` (whose steps are custom journeys of
/// `registry`) with 2 users × 20 iterations against a target with `config`,
/// with the engine's target watch set to `watch` and nothing else watching:
/// the scenario runner's own watch is never asked for, and it does not see
/// custom journeys' requests anyway.
fn run_custom(
    path: &std::path::Path,
    config: TargetConfig,
    registry: CustomRegistry,
    watch: Option<WatchPolicy>,
) -> RunResult {
    let t = target::spawn(config).unwrap();
    let url: url::Url = t.base_url().parse().unwrap();
    let scenarios = vec![scenario::load(path.to_str().unwrap()).unwrap()];
    let workload =
        ScenarioWorkload::new(scenarios, Some(&url), HttpOptions::default(), registry).unwrap();
    let options = EngineOptions {
        workers: 2,
        graceful_stop: std::time::Duration::from_secs(30),
        target_watch: watch,
        ..EngineOptions::default()
    };
    let model = LoadModel::closed(2, 20);
    engine::run(
        &model,
        &options,
        Arc::new(workload),
        &RunControl::new(),
        |_| {},
    )
    .unwrap()
}

#[test]
fn a_custom_journey_whose_target_dies_ends_the_run_through_the_engine_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.toml");
    std::fs::write(
        &path,
        "name = \"custom\"\n[[step]]\nname = \"ping thrice\"\ncustom = \"ping\"\n",
    )
    .unwrap();
    let registry = || {
        let mut r = CustomRegistry::new();
        r.register("ping", Ping);
        r
    };
    let dying = || TargetConfig::default().with_fault(fault("crash-after=10"));
    let answered = |r: &RunResult| {
        let step = r
            .steps
            .iter()
            .find(|s| s.info.name == "ping thrice")
            .unwrap();
        step.stats.status_counts.get(&200).copied().unwrap_or(0)
    };

    // Without the engine's watch, the 40 journeys fail one after the other
    // against the dead port, and the run "completes" with failed checks.
    let unwatched = run_custom(&path, dying(), registry(), None);
    assert_eq!(unwatched.stop_reason, StopReason::Completed);
    assert_eq!(unwatched.iterations, 40);
    assert_eq!(answered(&unwatched), 10);

    // With it, the custom journeys' own requests tell it the target
    // answered and then refused: the run ends target_down, partial, exit 4.
    let watched = run_custom(&path, dying(), registry(), Some(WatchPolicy::RUN));
    assert_eq!(watched.stop_reason, StopReason::TargetDown);
    assert!(watched.is_partial());
    assert_eq!(exit_of(&watched), Exit::Aborted);
    // Everything the target answered before it died is kept.
    assert_eq!(answered(&watched), 10);
    assert!(
        watched
            .overall()
            .error_counts
            .contains_key(&ErrorCause::Refused),
        "{:?}",
        watched.overall().error_counts
    );
}

#[test]
fn every_seed_preset_runs_against_the_reference_target() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/presets");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".profiles.toml") {
            let profiles = convoy::profile::load_file(&path).unwrap_or_else(|d| panic!("{d}"));
            assert!(!profiles.is_empty(), "{name} defines no profile");
            for p in &profiles {
                for g in &p.gates {
                    g.parse::<convoy::gate::Gate>()
                        .unwrap_or_else(|e| panic!("{name}: {g}: {e}"));
                }
            }
        } else if name.ends_with(".toml") {
            seen += 1;
            let r = run(&[path.to_str().unwrap()], TargetConfig::default(), 2, 2);
            assert_eq!(r.check_failures(), 0, "{name}: {:#?}", r.failures);
            assert!(r.violations.values().all(|v| *v == 0), "{name}");
            assert_eq!(r.iterations, 4, "{name}");
        }
    }
    assert_eq!(seen, 5, "one preset per seed");
}

/// The light profile's gates on a run of `names` against `config`.
fn light_gates(names: &[&str], config: TargetConfig) -> Vec<convoy::report::GateResult> {
    let r = run(names, config, 2, 3);
    let report = convoy::report::Report::new(&r, convoy::report::RunMeta::new("run", "test"));
    let profile = convoy::profile::builtin("light").unwrap();
    let gates = convoy::gate::parse_all(&profile.gates).unwrap();
    convoy::gate::evaluate(&gates, &report, None)
}

/// The light profile's p95 gate on `health` against a target with the
/// fault `spec`, once the same run without it has passed every light gate.
fn light_p95_with(spec: &str) -> convoy::report::GateResult {
    let ok = light_gates(&["health"], TargetConfig::default());
    assert!(convoy::gate::all_passed(&ok), "{ok:#?}");
    let faulty = light_gates(&["health"], TargetConfig::default().with_fault(fault(spec)));
    faulty.into_iter().find(|g| g.metric == "p95").unwrap()
}

#[test]
fn latency_fails_the_light_profile_p95_gate() {
    let p95 = light_p95_with("latency=600ms");
    assert!(!p95.passed, "{p95:?}");
    assert!(p95.actual.unwrap() >= 600.0, "{p95:?}");
}

#[test]
fn a_slow_body_fails_a_latency_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.toml");
    std::fs::write(
        &path,
        r#"
name = "slow"
[auth]
path = "/api/auth/login"
body = { email = "{{ email }}", password = "{{ password }}" }
token = "/token"
[identities.admin]
email = "admin@acme.test"
password = "convoy-demo"
[[step]]
name = "list orders"
as = "admin"
path = "/api/orders"
checks = [{ latency_below = "200ms" }]
"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let ok = run(&[p], TargetConfig::default(), 1, 2);
    assert_eq!(ok.check_failures(), 0, "{:#?}", ok.failures);
    // 4-byte chunks every 50 ms: even an empty list takes over 400 ms.
    let bad = run(
        &[p],
        TargetConfig::default().with_fault(fault("slow-body=4/50ms")),
        1,
        2,
    );
    let latency = bad
        .checks
        .iter()
        .find(|c| c.info.name == "latency < 200ms")
        .unwrap();
    assert_eq!(latency.stats.failures, 2, "{:#?}", bad.failures);
    assert!(
        bad.failures[0].message.starts_with("took"),
        "{:?}",
        bad.failures[0]
    );
}

#[test]
fn a_stall_fails_the_light_profile_p95_gate() {
    // Every request of the first second hangs until it ends: each user's
    // first of 3 iterations, a third of the samples, far above 5 %.
    let p95 = light_p95_with("stall=1s@0s");
    assert!(!p95.passed, "{p95:?}");
}

#[test]
fn a_truncated_body_fails_the_journeys_checks() {
    let ok = run(&["order-lifecycle"], TargetConfig::default(), 1, 2);
    assert_eq!(ok.check_failures(), 0, "{:#?}", ok.failures);
    // The login answer is cut halfway through its JSON: no token, so the
    // login check fails and the journey stops there, its body counted as
    // the cause. /health is exempt, so the target is alive throughout.
    let bad = run(
        &["order-lifecycle"],
        TargetConfig::default().with_fault(Fault::TruncatedBody),
        1,
        2,
    );
    let login = bad
        .checks
        .iter()
        .find(|c| c.info.name == "login as admin answers 2xx with a token")
        .unwrap();
    assert_eq!(login.stats.failures, 2, "{:#?}", bad.failures);
    let completed = bad
        .checks
        .iter()
        .find(|c| c.info.name == "journey completes")
        .unwrap();
    assert_eq!((completed.stats.passes, completed.stats.failures), (0, 2));
    assert!(
        bad.overall().error_counts.contains_key(&ErrorCause::Body),
        "{:?}",
        bad.overall().error_counts
    );
    // The target is alive throughout: a broken body is no death, and the
    // verdict is the failed checks (2), not an unreachable target (4).
    assert_eq!(bad.stop_reason, StopReason::Completed);
    assert_eq!(exit_of(&bad), Exit::ChecksFailed);
}

#[test]
fn a_crash_mid_run_stops_it_as_target_down_with_exit_4() {
    let names = scenario::builtin::NAMES;
    let ok = run_watched(names, TargetConfig::default(), 5, 10);
    assert_eq!(ok.stop_reason, StopReason::Completed);
    assert_eq!(ok.iterations, 50);
    assert_eq!(exit_of(&ok), Exit::Pass, "{:#?}", ok.failures);

    // The light profile's 50 journeys need far more than 100 requests: the
    // target dies partway, every later connection is refused, and the run
    // says so instead of ending "completed" with failed checks.
    let crashed = run_watched(
        names,
        TargetConfig::default().with_fault(fault("crash-after=100")),
        5,
        10,
    );
    assert_eq!(crashed.stop_reason, StopReason::TargetDown);
    assert!(crashed.is_partial());
    assert!(crashed.iterations < 50, "{}", crashed.iterations);
    assert_eq!(exit_of(&crashed), Exit::Aborted);
    assert!(
        crashed
            .overall()
            .error_counts
            .contains_key(&ErrorCause::Refused),
        "{:?}",
        crashed.overall().error_counts
    );
    // Refused replays and probes are errors, not violations.
    assert!(
        crashed.violations.values().all(|v| *v == 0),
        "{:?}",
        crashed.violations
    );
}
