//! Evaluating gates: a [`Gate`] measured on any [`Figures`] gives the
//! [`GateResult`] every report carries.

use serde::{Deserialize, Serialize};

use super::{CheckFigures, Figures, Gate, Metric, Op, Scope, ScopeFigures, ScopeKind, Threshold};
use crate::summary::LatencySummary;

/// One SLA gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate as written, e.g. `step:create_order p95 < 500ms`.
    pub expression: String,
    /// `overall`, `step:NAME`, `journey:NAME`, `event:NAME`, `stream:NAME`,
    /// or a wildcard such as `event:*`.
    pub scope: String,
    /// The metric, e.g. `p95`, `error_rate`.
    pub metric: String,
    /// The threshold as a person reads it, e.g. `< 500ms`.
    pub threshold: String,
    /// The measured value in the metric's unit (ms, fraction, count, /s),
    /// `None` when the scope had no data.
    pub actual: Option<f64>,
    /// The measured value as a person reads it, e.g. `312.4ms`.
    pub actual_display: String,
    /// Whether the gate held.
    pub passed: bool,
}

impl Gate {
    /// Evaluates the gate on `figures` (and `baseline` for relative gates).
    pub fn evaluate<F: Figures + ?Sized>(&self, figures: &F, baseline: Option<&F>) -> GateResult {
        let verdict = match &self.scope {
            Scope::Every(kind) => self.judge_every(*kind, figures, baseline),
            scope => self.judge(scope, figures, baseline),
        };
        GateResult {
            expression: self.expression.clone(),
            scope: self.scope.to_string(),
            metric: self.metric.name().to_string(),
            threshold: verdict
                .threshold
                .unwrap_or_else(|| self.threshold_display()),
            actual: verdict.actual,
            actual_display: verdict.display,
            passed: verdict.passed,
        }
    }

    /// The gate judged on one named scope (or the whole run).
    fn judge<F: Figures + ?Sized>(
        &self,
        scope: &Scope,
        figures: &F,
        baseline: Option<&F>,
    ) -> Verdict {
        let actual = match measure(figures, scope, self.metric) {
            Ok(v) => v,
            Err(why) => return Verdict::unmeasured(why),
        };
        let mut verdict = Verdict {
            actual: Some(actual),
            display: self.metric.format(actual),
            threshold: None,
            passed: false,
        };
        if self.metric == Metric::Checks && *scope == Scope::Overall && figures.checks().is_empty()
        {
            verdict.display += " (no checks)";
        }
        let limit = match self.threshold {
            Threshold::Value(v) => v,
            Threshold::Baseline { factor } => {
                let Some(base) = baseline else {
                    verdict.display += " (no baseline given)";
                    return verdict;
                };
                match measure(base, scope, self.metric) {
                    Ok(b) => {
                        let limit = b * factor;
                        verdict.threshold = Some(format!(
                            "{} (= {}, baseline {})",
                            self.threshold_display(),
                            self.metric.format(limit),
                            self.metric.format(b)
                        ));
                        limit
                    }
                    Err(why) => {
                        verdict.display += &format!(" (baseline: {why})");
                        return verdict;
                    }
                }
            }
        };
        verdict.passed = self.op.holds(actual, limit);
        verdict
    }

    /// A wildcard gate (`event:* p95 < 100ms`): the gate judged on every
    /// metric of `kind`, holding when it holds for each. The verdict names
    /// each metric that failed, or the worst value when none did.
    fn judge_every<F: Figures + ?Sized>(
        &self,
        kind: ScopeKind,
        figures: &F,
        baseline: Option<&F>,
    ) -> Verdict {
        let word = kind.word();
        let parts = figures.parts();
        let members: Vec<&(Scope, ScopeFigures)> = parts
            .iter()
            .filter(|(s, _)| s.kind() == Some(kind))
            .collect();
        if members.is_empty() {
            // As for a name the run does not have: the gate fails, saying so.
            return Verdict::unmeasured(format!("no such {word} (the run has none)"));
        }
        // A stream's rows count things that may rightly never happen (a
        // reconnect, when the stream held): a row that counted nothing has
        // nothing to judge. An await or a step that never ran is judged,
        // and fails, as its own gate would.
        let (quiet, judged): (Vec<_>, Vec<_>) = members
            .into_iter()
            .partition(|(_, f)| kind == ScopeKind::Stream && f.requests == 0 && f.errors == 0);
        // A stream has several rows (connects, first events, reconnects):
        // the verdict counts rows, not streams.
        let noun = match kind {
            ScopeKind::Stream => "stream row",
            _ => word,
        };
        let count = |n: usize| match n {
            1 => format!("1 {noun}"),
            n => format!("{n} {noun}s"),
        };
        if judged.is_empty() {
            return Verdict::unmeasured(format!(
                "nothing measured ({} counted nothing)",
                count(quiet.len())
            ));
        }
        let verdicts: Vec<(&str, Verdict)> = judged
            .iter()
            .map(|(s, _)| {
                (
                    s.name().unwrap_or_default(),
                    self.judge(s, figures, baseline),
                )
            })
            .collect();
        let failed: Vec<&(&str, Verdict)> = verdicts.iter().filter(|(_, v)| !v.passed).collect();
        let pool: Vec<&(&str, Verdict)> = if failed.is_empty() {
            verdicts.iter().collect()
        } else {
            failed.clone()
        };
        let worst = self.worst(&pool);
        let of = count(verdicts.len());
        let display = if failed.is_empty() {
            match worst {
                Some((name, v)) => format!("{} at worst ({name:?}), {of}", v.display),
                None => format!("{of} held"),
            }
        } else {
            let each: Vec<String> = failed
                .iter()
                .map(|(name, v)| match &v.threshold {
                    Some(t) if v.actual.is_some() => format!("{name:?} {} against {t}", v.display),
                    _ => format!("{name:?} {}", v.display),
                })
                .collect();
            format!("{} failed of {of}: {}", failed.len(), each.join("; "))
        };
        Verdict {
            actual: worst.and_then(|(_, v)| v.actual),
            display,
            // Each metric has its own baseline: the verdict names the
            // limits of those that failed.
            threshold: None,
            passed: failed.is_empty(),
        }
    }

    /// The verdict furthest on the wrong side of the operator: the largest
    /// value for `<`, the smallest for `>`, the first for `==` and `!=`.
    fn worst<'v>(&self, pool: &[&'v (&'v str, Verdict)]) -> Option<(&'v str, &'v Verdict)> {
        let measured = pool
            .iter()
            .filter_map(|(n, v)| v.actual.map(|a| (a, *n, v)));
        let pick = match self.op {
            Op::Lt | Op::Le => measured.max_by(|a, b| a.0.total_cmp(&b.0)),
            Op::Gt | Op::Ge => measured.min_by(|a, b| a.0.total_cmp(&b.0)),
            Op::Eq | Op::Ne => measured.into_iter().next(),
        };
        pick.map(|(_, n, v)| (n, v))
    }
}

/// A gate's verdict on one scope, before it becomes a [`GateResult`].
struct Verdict {
    actual: Option<f64>,
    display: String,
    /// The threshold as shown, when it is not the gate's own (a baseline
    /// gate shows the limit it worked out).
    threshold: Option<String>,
    passed: bool,
}

impl Verdict {
    /// No value to judge, for the reason `why`: a failed gate.
    fn unmeasured(why: String) -> Verdict {
        Verdict {
            actual: None,
            display: why,
            threshold: None,
            passed: false,
        }
    }
}

/// Evaluates every gate on `figures`; relative gates use `baseline`.
pub fn evaluate<F: Figures + ?Sized>(
    gates: &[Gate],
    figures: &F,
    baseline: Option<&F>,
) -> Vec<GateResult> {
    gates
        .iter()
        .map(|g| g.evaluate(figures, baseline))
        .collect()
}

/// Whether every gate passed (true when there are none).
pub fn all_passed(results: &[GateResult]) -> bool {
    results.iter().all(|r| r.passed)
}

/// The value of `metric` in `scope`, or why there is none.
pub fn measure<F: Figures + ?Sized>(
    figures: &F,
    scope: &Scope,
    metric: Metric,
) -> Result<f64, String> {
    if let Some(v) = metric.violation() {
        return Ok(figures.violations(v) as f64);
    }
    let step = find_scope(figures, scope)?;
    let latency = |pick: fn(&LatencySummary) -> f64| {
        step.latency_ms
            .as_ref()
            .map(pick)
            .ok_or_else(|| "no latency samples".to_string())
    };
    match metric {
        Metric::P50 => latency(|l| l.p50),
        Metric::P90 => latency(|l| l.p90),
        Metric::P95 => latency(|l| l.p95),
        Metric::P99 => latency(|l| l.p99),
        Metric::P999 => latency(|l| l.p999),
        Metric::Max => latency(|l| l.max),
        Metric::Min => latency(|l| l.min),
        Metric::Mean => latency(|l| l.mean),
        Metric::ErrorRate => Ok(step.error_rate),
        Metric::Errors => Ok(step.errors as f64),
        Metric::Rps => Ok(step.rps),
        Metric::Requests => Ok(step.requests as f64),
        Metric::Dropped => Ok(step.dropped as f64),
        Metric::Checks => match scope {
            Scope::Overall => Ok(checks_pass_rate(&figures.checks())),
            Scope::Every(_) => Err(format!("{scope} is judged metric by metric")),
            Scope::Step(name) | Scope::Journey(name) | Scope::Event(name) | Scope::Stream(name) => {
                let (mut passes, mut failures) = (0u64, 0u64);
                for c in figures.checks().iter().filter(|c| &c.step == name) {
                    passes += c.passes;
                    failures += c.failures;
                }
                if passes + failures == 0 {
                    Err(format!("no checks ran in {scope}"))
                } else {
                    Ok(passes as f64 / (passes + failures) as f64)
                }
            }
        },
        Metric::RlsCoverage => {
            let name = scope.name();
            figures
                .checks()
                .iter()
                .filter(|c| c.name == crate::rls::TABLE_CHECK)
                .filter(|c| name.is_none_or(|n| c.step == n))
                .filter(|c| c.passes + c.failures > 0)
                .map(|c| c.pass_rate)
                .min_by(f64::total_cmp)
                .ok_or_else(|| format!("no RLS probe ran in {scope}"))
        }
        Metric::IdempotencyViolations
        | Metric::TenantIsolationViolations
        | Metric::AuthViolations => {
            unreachable!("handled above")
        }
    }
}

/// Fraction of check evaluations that passed; 1 when there were none, as
/// nothing failed.
fn checks_pass_rate(checks: &[CheckFigures]) -> f64 {
    let passes: u64 = checks.iter().map(|c| c.passes).sum();
    let failures: u64 = checks.iter().map(|c| c.failures).sum();
    let total = passes + failures;
    if total == 0 {
        1.0
    } else {
        passes as f64 / total as f64
    }
}

/// The name of a step or journey scope.
fn name_of(scope: &Scope) -> Option<&str> {
    scope.name()
}

fn find_scope<F: Figures + ?Sized>(figures: &F, scope: &Scope) -> Result<ScopeFigures, String> {
    let (name, word) = match (scope, scope.name()) {
        (Scope::Every(_), _) => {
            return Err(format!("{scope} names every {}, not one", scope.word()));
        }
        (_, None) => return Ok(figures.overall()),
        (_, Some(n)) => (n, scope.word()),
    };
    let parts = figures.parts();
    if let Some((_, f)) = parts.iter().find(|(s, _)| s == scope) {
        return Ok(*f);
    }
    // The same name under the other kind: the usual slip is `step:` for a
    // journey or the reverse, and the message says what to write.
    if let Some((other, _)) = parts.iter().find(|(s, _)| name_of(s) == Some(name)) {
        let other_word = other.word();
        return Err(format!(
            "no such {word} ({name:?} is a {other_word}: write {other})"
        ));
    }
    let known: Vec<&str> = parts
        .iter()
        .filter(|(s, _)| std::mem::discriminant(s) == std::mem::discriminant(scope))
        .filter_map(|(s, _)| name_of(s))
        .collect();
    Err(match known.len() {
        0 => format!("no such {word} (the run has none)"),
        n if n <= 6 => format!("no such {word} (have: {})", known.join(", ")),
        n => format!(
            "no such {word} (have: {}, and {} more)",
            known[..5].join(", "),
            n - 5
        ),
    })
}

#[cfg(test)]
mod tests {
    //! Gates on hand-built figures: no report, no run, no engine.

    use std::collections::BTreeMap;

    use super::*;
    use crate::gate::RunFigures;
    use crate::metrics::Violation;

    fn latency(p95: f64) -> Option<LatencySummary> {
        Some(LatencySummary {
            p50: p95 / 2.0,
            p90: p95 * 0.8,
            p95,
            p99: p95 * 1.5,
            p999: p95 * 3.0,
            max: p95 * 4.0,
            min: 1.0,
            mean: p95 / 2.0,
        })
    }

    fn scope(requests: u64, errors: u64, p95: Option<f64>) -> ScopeFigures {
        ScopeFigures {
            requests,
            errors,
            error_rate: errors as f64 / requests as f64,
            rps: requests as f64 / 20.0,
            dropped: 0,
            latency_ms: p95.and_then(latency),
        }
    }

    fn check(step: &str, name: &str, passes: u64, failures: u64) -> CheckFigures {
        CheckFigures {
            step: step.into(),
            name: name.into(),
            passes,
            failures,
            pass_rate: passes as f64 / (passes + failures) as f64,
        }
    }

    /// A run of two request steps (one never answered) and a journey.
    fn run() -> RunFigures {
        RunFigures {
            overall: ScopeFigures {
                dropped: 2,
                ..scope(1000, 5, Some(250.0))
            },
            parts: vec![
                (
                    Scope::Step("create order".into()),
                    scope(600, 5, Some(280.0)),
                ),
                (Scope::Step("GET /health".into()), scope(400, 0, None)),
                (
                    Scope::Journey("order lifecycle".into()),
                    scope(200, 1, Some(1500.0)),
                ),
            ],
            checks: vec![
                check("create order", "status is 201", 99, 1),
                check("rls", crate::rls::TABLE_CHECK, 3, 1),
            ],
            violations: BTreeMap::from([(Violation::TenantIsolationViolations, 1)]),
        }
    }

    fn eval(expr: &str, figures: &RunFigures, baseline: Option<&RunFigures>) -> GateResult {
        let g: Gate = expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}"));
        g.evaluate(figures, baseline)
    }

    /// Passed, actual, threshold and actual as shown.
    fn verdict(r: &GateResult) -> (bool, Option<f64>, &str, &str) {
        (r.passed, r.actual, &r.threshold, &r.actual_display)
    }

    #[test]
    fn whole_run_gates_read_the_overall_figures_and_counters() {
        let f = run();
        let r = eval("p95 < 500ms", &f, None);
        assert_eq!(verdict(&r), (true, Some(250.0), "< 500ms", "250.0ms"));
        assert_eq!((r.scope.as_str(), r.metric.as_str()), ("overall", "p95"));
        let r = eval("error_rate < 1%", &f, None);
        assert_eq!(verdict(&r), (true, Some(0.005), "< 1%", "0.5%"));
        let r = eval("rps >= 40/s", &f, None);
        assert_eq!(verdict(&r), (true, Some(50.0), ">= 40/s", "50.0/s"));
        let r = eval("dropped == 0", &f, None);
        assert_eq!(verdict(&r), (false, Some(2.0), "== 0", "2"));
        let r = eval("tenant_isolation_violations == 0", &f, None);
        assert_eq!(verdict(&r), (false, Some(1.0), "== 0", "1"));
        let r = eval("idempotency_violations == 0", &f, None);
        assert_eq!(verdict(&r), (true, Some(0.0), "== 0", "0"));
    }

    #[test]
    fn step_and_journey_gates_read_their_own_figures() {
        let f = run();
        let r = eval(r#"step:"create order" p95 < 300ms"#, &f, None);
        assert_eq!(verdict(&r), (true, Some(280.0), "< 300ms", "280.0ms"));
        assert_eq!(r.scope, r#"step:"create order""#);
        let r = eval(r#"journey:"order lifecycle" p95 < 2s"#, &f, None);
        assert_eq!(verdict(&r), (true, Some(1500.0), "< 2s", "1,500.0ms"));
        let r = eval(r#"step:"create order" checks == 100%"#, &f, None);
        assert_eq!(verdict(&r), (false, Some(0.99), "== 100%", "99%"));
        let r = eval("rls_coverage == 100%", &f, None);
        assert_eq!(verdict(&r), (false, Some(0.75), "== 100%", "75%"));
        let r = eval("checks > 99%", &f, None);
        assert_eq!(
            verdict(&r),
            (false, Some(102.0 / 104.0), "> 99%", "98.077%")
        );
    }

    #[test]
    fn missing_data_fails_with_a_reason() {
        let f = run();
        let r = eval(r#"step:"GET /health" p95 < 10ms"#, &f, None);
        assert_eq!(verdict(&r), (false, None, "< 10ms", "no latency samples"));
        let r = eval(r#"step:"order lifecycle" p95 < 2s"#, &f, None);
        assert_eq!(
            r.actual_display,
            r#"no such step ("order lifecycle" is a journey: write journey:"order lifecycle")"#
        );
        let r = eval("step:nope errors == 0", &f, None);
        assert_eq!(
            r.actual_display,
            "no such step (have: create order, GET /health)"
        );
        let r = eval("journey:nope errors == 0", &f, None);
        assert_eq!(r.actual_display, "no such journey (have: order lifecycle)");
        let r = eval(r#"step:"GET /health" checks == 100%"#, &f, None);
        assert_eq!(r.actual_display, r#"no checks ran in step:"GET /health""#);
        // Nothing checked, nothing failed.
        let r = eval("checks == 100%", &RunFigures::default(), None);
        assert_eq!(
            verdict(&r),
            (true, Some(1.0), "== 100%", "100% (no checks)")
        );
    }

    #[test]
    fn baseline_gates_compare_the_same_figure_in_the_baseline() {
        let f = run();
        let mut base = run();
        base.overall.latency_ms = latency(240.0);
        base.parts[0].1.latency_ms = latency(260.0);
        let r = eval("p95 <= baseline * 1.10", &f, Some(&base));
        assert_eq!(
            verdict(&r),
            (
                true,
                Some(250.0),
                "<= baseline * 1.10 (= 264.0ms, baseline 240.0ms)",
                "250.0ms"
            )
        );
        let r = eval(r#"step:"create order" p95 <= baseline"#, &f, Some(&base));
        assert_eq!(
            verdict(&r),
            (
                false,
                Some(280.0),
                "<= baseline (= 260.0ms, baseline 260.0ms)",
                "280.0ms"
            )
        );
        let r = eval("p95 <= baseline * 1.10", &f, None);
        assert_eq!(
            verdict(&r),
            (
                false,
                Some(250.0),
                "<= baseline * 1.10",
                "250.0ms (no baseline given)"
            )
        );
        let r = eval(
            r#"step:"create order" p95 <= baseline"#,
            &f,
            Some(&RunFigures::default()),
        );
        assert_eq!(
            r.actual_display,
            "280.0ms (baseline: no such step (the run has none))"
        );
        assert!(!r.passed);
    }

    #[test]
    fn evaluates_every_gate_in_order() {
        let gates = crate::gate::parse_all(&["p95 < 500ms", "dropped == 0"]).unwrap();
        let results = evaluate(&gates, &run(), None);
        let passed: Vec<bool> = results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, false]);
        assert!(!all_passed(&results));
        assert!(all_passed(&results[..1]));
        assert!(all_passed(&[]));
    }

    /// A run with three awaited events (one never arrived) and a stream
    /// whose reconnect row counted nothing.
    fn realtime() -> RunFigures {
        let quiet = ScopeFigures {
            requests: 0,
            errors: 0,
            error_rate: 0.0,
            rps: 0.0,
            dropped: 0,
            latency_ms: None,
        };
        RunFigures {
            overall: scope(100, 0, Some(40.0)),
            parts: vec![
                (
                    Scope::Step("create order".into()),
                    scope(100, 0, Some(40.0)),
                ),
                (Scope::Stream("orders".into()), scope(10, 0, Some(20.0))),
                (
                    Scope::Stream("orders · first event".into()),
                    scope(10, 0, Some(30.0)),
                ),
                (Scope::Stream("orders · reconnect".into()), quiet),
                (
                    Scope::Event("order created".into()),
                    scope(100, 0, Some(80.0)),
                ),
                (
                    Scope::Event("order delivered".into()),
                    scope(100, 0, Some(95.0)),
                ),
                (
                    Scope::Journey("lifecycle".into()),
                    scope(100, 0, Some(300.0)),
                ),
            ],
            ..RunFigures::default()
        }
    }

    #[test]
    fn a_wildcard_judges_every_metric_of_its_kind() {
        let f = realtime();
        let r = eval("event:* p95 < 100ms", &f, None);
        assert_eq!(
            verdict(&r),
            (
                true,
                Some(95.0),
                "< 100ms",
                r#"95.00ms at worst ("order delivered"), 2 events"#
            )
        );
        assert_eq!(r.scope, "event:*");
        // The same gate, stricter: both fail, and each is named.
        let r = eval("event:* p95 < 90ms", &f, None);
        assert_eq!(
            verdict(&r),
            (
                false,
                Some(95.0),
                "< 90ms",
                r#"1 failed of 2 events: "order delivered" 95.00ms"#
            )
        );
        let r = eval("event:* p95 < 50ms", &f, None);
        assert_eq!(
            r.actual_display,
            r#"2 failed of 2 events: "order created" 80.00ms; "order delivered" 95.00ms"#
        );
        // `>` looks for the smallest value.
        let r = eval("event:* p95 > 50ms", &f, None);
        assert_eq!((r.passed, r.actual), (true, Some(80.0)));
        let r = eval("step:* p95 < 50ms", &f, None);
        assert_eq!((r.passed, r.actual), (true, Some(40.0)));
        let r = eval("journey:* p95 < 200ms", &f, None);
        assert_eq!(
            r.actual_display,
            r#"1 failed of 1 journey: "lifecycle" 300.0ms"#
        );
    }

    #[test]
    fn a_wildcard_fails_on_an_event_without_data_but_passes_over_a_quiet_stream_row() {
        let mut f = realtime();
        // Every await of "order routed" timed out: errors, no latency.
        f.parts
            .push((Scope::Event("order routed".into()), scope(5, 5, None)));
        let r = eval("event:* p95 < 100ms", &f, None);
        assert_eq!(
            verdict(&r),
            (
                false,
                None,
                "< 100ms",
                r#"1 failed of 3 events: "order routed" no latency samples"#
            )
        );
        // The reconnect row counted nothing: not judged.
        let r = eval("stream:* p95 < 100ms", &f, None);
        assert_eq!(
            verdict(&r),
            (
                true,
                Some(30.0),
                "< 100ms",
                r#"30.00ms at worst ("orders · first event"), 2 stream rows"#
            )
        );
        // Once it reconnects, it is.
        f.parts[3].1 = scope(1, 0, Some(400.0));
        let r = eval("stream:* p95 < 100ms", &f, None);
        assert_eq!(
            verdict(&r),
            (
                false,
                Some(400.0),
                "< 100ms",
                r#"1 failed of 3 stream rows: "orders · reconnect" 400.0ms"#
            )
        );
    }

    #[test]
    fn a_wildcard_that_matches_nothing_fails_like_an_unknown_name() {
        let f = run();
        let r = eval("event:* p95 < 100ms", &f, None);
        assert_eq!(
            verdict(&r),
            (false, None, "< 100ms", "no such event (the run has none)")
        );
        let r = eval("event:nope p95 < 100ms", &f, None);
        assert_eq!(r.actual_display, "no such event (the run has none)");
        let mut quiet = realtime();
        quiet
            .parts
            .retain(|(s, _)| s == &Scope::Stream("orders · reconnect".into()));
        let r = eval("stream:* p95 < 100ms", &quiet, None);
        assert_eq!(
            verdict(&r),
            (
                false,
                None,
                "< 100ms",
                "nothing measured (1 stream row counted nothing)"
            )
        );
    }

    #[test]
    fn a_wildcard_baseline_gate_compares_each_metric_with_its_own() {
        let f = realtime();
        let mut base = realtime();
        base.parts[4].1.latency_ms = latency(85.0); // order created
        base.parts[5].1.latency_ms = latency(70.0); // order delivered
        let r = eval("event:* p95 <= baseline * 1.10", &f, Some(&base));
        assert_eq!(
            verdict(&r),
            (
                false,
                Some(95.0),
                "<= baseline * 1.10",
                r#"1 failed of 2 events: "order delivered" 95.00ms against <= baseline * 1.10 (= 77.00ms, baseline 70.00ms)"#
            )
        );
        base.parts
            .retain(|(s, _)| s != &Scope::Event("order created".into()));
        let r = eval("event:* p95 <= baseline * 2", &f, Some(&base));
        assert_eq!(
            r.actual_display,
            r#"1 failed of 2 events: "order created" 80.00ms (baseline: no such event (have: order delivered))"#
        );
    }
}
