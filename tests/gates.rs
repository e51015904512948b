//! SLA gates against hand-built reports: every operator at its boundary,
//! every metric, every scope, baseline gates, and the failures that carry a
//! reason instead of a number.

mod report_support;

use convoy::gate::{self, Gate, GateError, LiveFigures, Metric, Scope, already_lost};
use convoy::report::{GateResult, Report};
use report_support::{showcase, synthetic};

fn eval(expr: &str, report: &Report, baseline: Option<&Report>) -> GateResult {
    let g: Gate = expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}"));
    g.evaluate(report, baseline)
}

fn passes(expr: &str, report: &Report) -> bool {
    eval(expr, report, None).passed
}

#[test]
fn every_operator_at_its_boundary() {
    let r = showcase();
    assert_eq!(r.overall.requests, 2002);
    let table = [
        ("requests < 2002", false),
        ("requests < 2003", true),
        ("requests <= 2002", true),
        ("requests <= 2001", false),
        ("requests > 2002", false),
        ("requests > 2001", true),
        ("requests >= 2002", true),
        ("requests >= 2003", false),
        ("requests == 2002", true),
        ("requests == 2001", false),
        ("requests != 2002", false),
        ("requests != 2001", true),
    ];
    for (expr, expected) in table {
        assert_eq!(passes(expr, &r), expected, "{expr}");
    }
}

#[test]
fn latency_gates_read_the_overall_percentiles_in_any_unit() {
    let r = showcase();
    let l = r.overall.latency_ms;
    for (metric, v) in [
        ("p50", l.p50),
        ("p90", l.p90),
        ("p95", l.p95),
        ("p99", l.p99),
        ("p999", l.p999),
        ("max", l.max),
        ("min", l.min),
        ("mean", l.mean),
    ] {
        let res = eval(&format!("{metric} <= {v}ms"), &r, None);
        assert!(res.passed, "{metric}: {res:?}");
        assert_eq!(res.actual, Some(v));
        assert_eq!(res.metric, metric);
        assert!(!passes(&format!("{metric} < {v}"), &r), "{metric} bare ms");
        // The same limit in seconds and microseconds.
        assert!(passes(&format!("{metric} <= {}s", v / 1000.0 + 1e-9), &r));
        assert!(passes(&format!("{metric} <= {}us", v * 1000.0 + 1e-6), &r));
    }
    let res = eval("p95 < 500ms", &r, None);
    assert!(res.passed);
    assert_eq!(res.threshold, "< 500ms");
    assert_eq!(res.scope, "overall");
    assert_eq!(res.actual_display, Metric::P95.format(l.p95));
}

#[test]
fn rate_count_and_violation_gates() {
    let r = showcase();
    // 6 errors in 2,002 requests.
    assert!(passes("error_rate < 1%", &r));
    assert!(passes("error_rate < 0.01", &r));
    assert!(!passes("error_rate < 0.2%", &r));
    assert!(passes("errors == 6", &r));
    assert!(passes("rps >= 200", &r));
    assert!(!passes("rps >= 200.3/s", &r));
    // 2,394 of 2,400 check evaluations passed: 99.75 %.
    assert!(passes("checks > 99.7%", &r));
    assert!(!passes("checks > 99.9%", &r));
    assert!(passes("dropped == 0", &r));
    assert!(passes("idempotency_violations == 0", &r));
    let res = eval("tenant_isolation_violations == 0", &r, None);
    assert!(!res.passed);
    assert_eq!(res.actual, Some(1.0));
    assert_eq!(res.actual_display, "1");
}

#[test]
fn scoped_gates_read_their_step_or_journey() {
    let r = showcase();
    let create = &r.steps[0];
    let res = eval(
        &format!("step:create_order p95 <= {}ms", create.latency_ms.p95),
        &r,
        None,
    );
    assert!(res.passed);
    assert_eq!(res.scope, "step:create_order");
    assert!(passes(r#"step:"GET /health" p95 < 10ms"#, &r));
    assert!(!passes(r#"step:"GET /health" p95 < 1ms"#, &r));
    assert!(passes("journey:order_lifecycle p99 < 1s", &r));
    assert!(passes("journey:order_lifecycle requests == 200", &r));
    // create_order's checks: 1,596 of 1,600.
    let res = eval("step:create_order checks >= 99.75%", &r, None);
    assert!(res.passed, "{res:?}");
    assert!(passes("step:accept_order errors == 2", &r));
}

#[test]
fn a_missing_scope_fails_with_a_reason() {
    let r = showcase();
    let res = eval("step:cancel_order p95 < 1s", &r, None);
    assert!(!res.passed);
    assert_eq!(res.actual, None);
    assert!(res.actual_display.starts_with("no such step"), "{res:?}");
    assert!(
        res.actual_display.contains("create_order"),
        "lists the steps"
    );
    let res = eval("step:order_lifecycle p95 < 1s", &r, None);
    assert!(!res.passed);
    assert!(
        res.actual_display.contains("write journey:order_lifecycle"),
        "{res:?}"
    );
    let res = eval(r#"step:"GET /health" checks == 100%"#, &r, None);
    assert!(!res.passed);
    assert!(res.actual_display.contains("no checks"), "{res:?}");
}

#[test]
fn latency_without_samples_fails_rather_than_reading_zero() {
    let r = showcase();
    let mut only_refused = r.clone();
    only_refused.steps[1].histograms.latency = Default::default();
    only_refused.recompute();
    let res = eval("step:accept_order p95 < 1s", &only_refused, None);
    assert!(!res.passed);
    assert_eq!(res.actual_display, "no latency samples");
}

#[test]
fn baseline_gates_scale_the_baselines_figure() {
    let base = synthetic("base", 0, 100.0, 0, 1);
    let same = synthetic("same", 1, 100.0, 0, 2);
    let slower = synthetic("slower", 2, 130.0, 0, 3);
    let res = eval("p95 <= baseline * 1.10", &same, Some(&base));
    assert!(res.passed, "{res:?}");
    assert!(res.threshold.contains("baseline"), "{}", res.threshold);
    assert!(!eval("p95 <= baseline * 1.10", &slower, Some(&base)).passed);
    assert!(eval("p95 <= baseline * 1.40", &slower, Some(&base)).passed);
    assert!(eval("rps >= baseline * 0.9", &slower, Some(&base)).passed);
    assert!(eval("step:create_order p99 <= baseline*110%", &same, Some(&base)).passed);
    // Without a baseline the gate cannot hold.
    let res = eval("p95 <= baseline * 1.10", &same, None);
    assert!(!res.passed);
    assert!(res.actual_display.contains("no baseline"), "{res:?}");
    // A baseline without the step cannot vouch for it.
    let res = eval(
        r#"step:"GET /health" p95 <= baseline"#,
        &showcase(),
        Some(&base),
    );
    assert!(!res.passed);
    assert!(
        res.actual_display.contains("baseline: no such step"),
        "{res:?}"
    );
}

#[test]
fn evaluate_keeps_order_and_all_passed_summarises() {
    let r = showcase();
    let gates = gate::parse_all(&["p95 < 500ms", "tenant_isolation_violations == 0"]).unwrap();
    let results = gate::evaluate(&gates, &r, None);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].expression, "p95 < 500ms");
    assert!(results[0].passed && !results[1].passed);
    assert!(!gate::all_passed(&results));
    assert!(gate::all_passed(&results[..1]));
}

#[test]
fn parse_errors_say_what_was_expected_where() {
    let e: GateError = gate::parse_all(&["p95 < 1s", "p95 < 1 min"]).unwrap_err();
    assert_eq!(e.column, 9);
    assert!(e.message.contains("latency unit"), "{e}");
    let e = "throughput > 5".parse::<Gate>().unwrap_err();
    assert_eq!(e.column, 1);
    assert!(e.message.contains("unknown metric `throughput`"), "{e}");
    let e = "p95 500ms".parse::<Gate>().unwrap_err();
    assert_eq!(e.column, 5);
    assert!(e.message.contains("expected an operator"), "{e}");
    let e = "p95 < baseline + 10%".parse::<Gate>().unwrap_err();
    assert_eq!(e.column, 16);
    let e = "step: p95 < 1s".parse::<Gate>().unwrap_err();
    assert!(e.message.contains("expected a name"), "{e}");
    let e = "dropped == 0 == 0".parse::<Gate>().unwrap_err();
    assert!(e.message.contains("unexpected"), "{e}");
    let e = "checks > 101%".parse::<Gate>().unwrap_err();
    assert!(e.message.contains("above 100%"), "{e}");
}

#[test]
fn scopes_print_back_as_written() {
    for s in [
        "step:create_order",
        r#"step:"GET /health""#,
        "journey:order_lifecycle",
    ] {
        let g: Gate = format!("{s} p95 < 1s").parse().unwrap();
        assert_eq!(g.scope.to_string(), s);
    }
    let g: Gate = "p95<1s".parse().unwrap();
    assert_eq!(g.scope, Scope::Overall);
}

#[test]
fn abort_on_fail_from_live_figures() {
    let lost = |expr: &str, live: &LiveFigures| already_lost(&expr.parse().unwrap(), live);
    let live = LiveFigures {
        requests: 300,
        errors: 12,
        dropped: 0,
        planned_requests: Some(1000),
        ..Default::default()
    };
    assert!(lost("error_rate < 1%", &live));
    assert!(!lost("error_rate < 2%", &live));
    assert!(lost("errors <= 11", &live));
    assert!(!lost("dropped == 0", &live));
    assert!(!lost("p95 < 1ms", &live));
    assert!(!lost("error_rate <= baseline", &live));
}

#[test]
fn rls_coverage_reads_the_lowest_probe_figure() {
    use convoy::report::CheckReport;
    let mut r = showcase();
    let res = eval("rls_coverage == 100%", &r, None);
    assert!(!res.passed, "no probe ran: {res:?}");
    assert!(res.actual_display.contains("no RLS probe"), "{res:?}");
    let probe = |step: &str, passes: u64, failures: u64| CheckReport {
        step: step.into(),
        name: convoy::rls::TABLE_CHECK.into(),
        passes,
        failures,
        pass_rate: passes as f64 / (passes + failures) as f64,
    };
    r.checks.push(probe("rls", 2, 0));
    assert!(passes("rls_coverage == 100%", &r));
    // A second probe found one table of three without a policy.
    r.checks.push(probe("rls again", 2, 1));
    let res = eval("rls_coverage == 100%", &r, None);
    assert!(!res.passed);
    assert!((res.actual.unwrap() - 2.0 / 3.0).abs() < 1e-9, "{res:?}");
    assert!(passes("rls_coverage > 66%", &r));
}
