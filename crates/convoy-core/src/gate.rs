//! SLA gates: thresholds on a run's figures, written the way people say
//! them (`p95 < 500ms`, `error_rate < 1%`, `step:"create order" p99 < 1s`,
//! `p95 <= baseline * 1.10`), parsed into [`Gate`]s and evaluated against a
//! finished [`Report`] into the [`GateResult`]s every report carries.
//!
//! # Syntax
//!
//! ```text
//! gate      = [scope " "] metric op threshold
//! scope     = ("step:" | "journey:") (name | '"' name with spaces '"')
//! metric    = p50 | p90 | p95 | p99 | p999 | max | min | mean
//!           | error_rate | errors | rps | checks | requests | dropped
//!           | idempotency_violations | tenant_isolation_violations
//! op        = "<" | "<=" | ">" | ">=" | "==" | "!="
//! threshold = number [unit] | "baseline" ["*" number]
//! ```
//!
//! Latencies take `us`, `ms` or `s` (a bare number is milliseconds); rates
//! (`error_rate`, `checks`, the pass rate of every check) take a percentage
//! (`1%`) or a fraction (`0.01`); `rps` takes a bare number or `/s`; counts
//! are bare whole numbers. Without a scope a gate applies to the whole run
//! (every request step merged). `dropped` and the violation counters exist
//! for the whole run only.
//!
//! A `baseline` threshold is the same figure (same scope and metric) in a
//! baseline report, times the factor: `p95 <= baseline * 1.10` allows 10 %
//! more than the baseline's p95.
//!
//! # Verdicts without data
//!
//! A gate fails, with a reason in [`GateResult::actual_display`], when its
//! scope is not in the report (`no such step`), when a latency gate has no
//! latency sample to measure, when a scoped `checks` gate finds no check in
//! its step, or when a baseline gate is evaluated without a baseline. An
//! overall `checks` gate on a run with no checks at all passes: there was
//! nothing to fail.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::engine::{LiveStatus, StepKind};
use crate::metrics::Violation;
use crate::report::format::{
    millis as format_millis, per_second, percent as format_percent, trim_float,
};
use crate::report::text::group;
use crate::report::{GateResult, Report, StepReport};

mod parse;

/// A gate could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}\n    {expression}\n    {caret}^", caret = " ".repeat(.column.saturating_sub(1)))]
pub struct GateError {
    /// 1-based column (in characters) where the problem starts.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
    /// The gate as written.
    pub expression: String,
}

/// Which part of the run a gate looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every request step together.
    Overall,
    /// One request step, by name.
    Step(String),
    /// One journey (whole iterations), by name.
    Journey(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name) = match self {
            Scope::Overall => return f.write_str("overall"),
            Scope::Step(n) => ("step", n),
            Scope::Journey(n) => ("journey", n),
        };
        if name.chars().any(|c| c.is_whitespace() || c == '"') {
            write!(f, "{kind}:\"{}\"", name.replace('"', "\\\""))
        } else {
            write!(f, "{kind}:{name}")
        }
    }
}

/// What a gate measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Median latency.
    P50,
    /// 90th percentile latency.
    P90,
    /// 95th percentile latency.
    P95,
    /// 99th percentile latency.
    P99,
    /// 99.9th percentile latency.
    P999,
    /// Largest latency.
    Max,
    /// Smallest latency.
    Min,
    /// Mean latency.
    Mean,
    /// Failed requests over requests.
    ErrorRate,
    /// Failed requests.
    Errors,
    /// Requests per second over the run.
    Rps,
    /// Pass rate of check evaluations.
    Checks,
    /// Requests completed.
    Requests,
    /// Arrivals dropped (open model).
    Dropped,
    /// Idempotency violations.
    IdempotencyViolations,
    /// Tenant isolation violations.
    TenantIsolationViolations,
    /// Share of tenant tables with row-level security and a policy, as the
    /// RLS probe step (`[step.rls]`) found them; the lowest figure when
    /// several probes ran.
    RlsCoverage,
}

/// The unit a metric is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Millis,
    /// A fraction between 0 and 1, shown as a percentage.
    Fraction,
    /// Per second.
    PerSecond,
    /// A count.
    Count,
}

impl Metric {
    /// Every metric, in the order error messages list them.
    pub const ALL: [Metric; 17] = [
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::Min,
        Metric::Mean,
        Metric::ErrorRate,
        Metric::Errors,
        Metric::Rps,
        Metric::Checks,
        Metric::Requests,
        Metric::Dropped,
        Metric::IdempotencyViolations,
        Metric::TenantIsolationViolations,
        Metric::RlsCoverage,
    ];

    /// The name used in gates and reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Max => "max",
            Metric::Min => "min",
            Metric::Mean => "mean",
            Metric::ErrorRate => "error_rate",
            Metric::Errors => "errors",
            Metric::Rps => "rps",
            Metric::Checks => "checks",
            Metric::Requests => "requests",
            Metric::Dropped => "dropped",
            Metric::IdempotencyViolations => "idempotency_violations",
            Metric::TenantIsolationViolations => "tenant_isolation_violations",
            Metric::RlsCoverage => "rls_coverage",
        }
    }

    /// The metric's unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::P50
            | Metric::P90
            | Metric::P95
            | Metric::P99
            | Metric::P999
            | Metric::Max
            | Metric::Min
            | Metric::Mean => Unit::Millis,
            Metric::ErrorRate | Metric::Checks | Metric::RlsCoverage => Unit::Fraction,
            Metric::Rps => Unit::PerSecond,
            _ => Unit::Count,
        }
    }

    /// The violation counter behind this metric, if it is one.
    pub fn violation(self) -> Option<Violation> {
        match self {
            Metric::IdempotencyViolations => Some(Violation::IdempotencyViolations),
            Metric::TenantIsolationViolations => Some(Violation::TenantIsolationViolations),
            _ => None,
        }
    }

    /// Whether the metric exists for the whole run only.
    pub fn run_level_only(self) -> bool {
        matches!(self, Metric::Dropped) || self.violation().is_some()
    }

    /// Formats a value of this metric: `312.4ms`, `1.25%`, `98.1/s`, `1,000`.
    pub fn format(self, v: f64) -> String {
        match self.unit() {
            Unit::Millis => format_millis(v),
            Unit::Fraction => format_percent(v),
            Unit::PerSecond => per_second(v),
            Unit::Count => {
                if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
                    group(v as u64)
                } else {
                    trim_float(v, 3)
                }
            }
        }
    }

    fn from_name(s: &str) -> Option<Metric> {
        let s = s.to_ascii_lowercase();
        let alias = match s.as_str() {
            "p99.9" => "p999",
            "avg" | "average" => "mean",
            "median" => "p50",
            other => other,
        };
        Metric::ALL.into_iter().find(|m| m.name() == alias)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `actual OP threshold` holds. Equality allows for float
    /// rounding (a relative 1e-9), so `error_rate == 0.1%` holds for 1 error
    /// in 1,000 requests.
    pub fn holds(self, actual: f64, threshold: f64) -> bool {
        let eq = (actual - threshold).abs() <= 1e-9 * actual.abs().max(threshold.abs()).max(1.0);
        match self {
            Op::Lt => actual < threshold && !eq,
            Op::Le => actual <= threshold || eq,
            Op::Gt => actual > threshold && !eq,
            Op::Ge => actual >= threshold || eq,
            Op::Eq => eq,
            Op::Ne => !eq,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The right-hand side of a gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// A fixed value in the metric's unit (ms, fraction, /s, count).
    Value(f64),
    /// The baseline's value of the same figure times `factor`.
    Baseline {
        /// 1.10 for `baseline * 1.10`; 1 for a bare `baseline`.
        factor: f64,
    },
}

/// One parsed SLA gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The gate as written (trimmed).
    pub expression: String,
    /// Which part of the run it looks at.
    pub scope: Scope,
    /// What it measures.
    pub metric: Metric,
    /// How the measure is compared.
    pub op: Op,
    /// What it is compared with.
    pub threshold: Threshold,
    /// The threshold as written, e.g. `500ms` or `baseline * 1.10`.
    pub threshold_text: String,
}

impl Gate {
    /// `< 500ms`, `<= baseline * 1.10`.
    pub fn threshold_display(&self) -> String {
        format!("{} {}", self.op, self.threshold_text)
    }

    /// Whether the gate needs a baseline report to be evaluated.
    pub fn needs_baseline(&self) -> bool {
        matches!(self.threshold, Threshold::Baseline { .. })
    }

    /// Evaluates the gate against `report` (and `baseline` for relative
    /// gates).
    pub fn evaluate(&self, report: &Report, baseline: Option<&Report>) -> GateResult {
        let mut result = GateResult {
            expression: self.expression.clone(),
            scope: self.scope.to_string(),
            metric: self.metric.name().to_string(),
            threshold: self.threshold_display(),
            actual: None,
            actual_display: String::new(),
            passed: false,
        };
        let actual = match measure(report, &self.scope, self.metric) {
            Ok(v) => v,
            Err(why) => {
                result.actual_display = why;
                return result;
            }
        };
        result.actual = Some(actual);
        result.actual_display = self.metric.format(actual);
        if self.metric == Metric::Checks && self.scope == Scope::Overall && report.checks.is_empty()
        {
            result.actual_display += " (no checks)";
        }
        let limit = match self.threshold {
            Threshold::Value(v) => v,
            Threshold::Baseline { factor } => {
                let Some(base) = baseline else {
                    result.actual_display += " (no baseline given)";
                    return result;
                };
                match measure(base, &self.scope, self.metric) {
                    Ok(b) => {
                        let limit = b * factor;
                        result.threshold = format!(
                            "{} (= {}, baseline {})",
                            self.threshold_display(),
                            self.metric.format(limit),
                            self.metric.format(b)
                        );
                        limit
                    }
                    Err(why) => {
                        result.actual_display += &format!(" (baseline: {why})");
                        return result;
                    }
                }
            }
        };
        result.passed = self.op.holds(actual, limit);
        result
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl FromStr for Gate {
    type Err = GateError;

    fn from_str(s: &str) -> Result<Gate, GateError> {
        parse::Parser::new(s.trim()).gate()
    }
}

/// Parses several gates, stopping at the first that is wrong.
pub fn parse_all<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<Gate>, GateError> {
    exprs.iter().map(|e| e.as_ref().parse()).collect()
}

/// Evaluates every gate against `report`; relative gates use `baseline`.
pub fn evaluate(gates: &[Gate], report: &Report, baseline: Option<&Report>) -> Vec<GateResult> {
    gates.iter().map(|g| g.evaluate(report, baseline)).collect()
}

/// Whether every gate passed (true when there are none).
pub fn all_passed(results: &[GateResult]) -> bool {
    results.iter().all(|r| r.passed)
}

/// The value of `metric` in `scope`, or why there is none.
pub fn measure(report: &Report, scope: &Scope, metric: Metric) -> Result<f64, String> {
    if let Some(v) = metric.violation() {
        return Ok(report.violations.get(&v).copied().unwrap_or(0) as f64);
    }
    let step = find_scope(report, scope)?;
    let l = &step.latency_ms;
    let latency = |v: f64| {
        if step.histograms.latency.is_empty() {
            Err("no latency samples".to_string())
        } else {
            Ok(v)
        }
    };
    match metric {
        Metric::P50 => latency(l.p50),
        Metric::P90 => latency(l.p90),
        Metric::P95 => latency(l.p95),
        Metric::P99 => latency(l.p99),
        Metric::P999 => latency(l.p999),
        Metric::Max => latency(l.max),
        Metric::Min => latency(l.min),
        Metric::Mean => latency(l.mean),
        Metric::ErrorRate => Ok(step.error_rate),
        Metric::Errors => Ok(step.errors as f64),
        Metric::Rps => Ok(step.rps),
        Metric::Requests => Ok(step.requests as f64),
        Metric::Dropped => Ok(step.dropped as f64),
        Metric::Checks => match scope {
            Scope::Overall => Ok(report.checks_pass_rate()),
            Scope::Step(name) | Scope::Journey(name) => {
                let (mut passes, mut failures) = (0u64, 0u64);
                for c in report.checks.iter().filter(|c| &c.step == name) {
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
            let name = match scope {
                Scope::Overall => None,
                Scope::Step(n) | Scope::Journey(n) => Some(n),
            };
            report
                .checks
                .iter()
                .filter(|c| c.name == crate::rls::TABLE_CHECK)
                .filter(|c| name.is_none_or(|n| &c.step == n))
                .filter(|c| c.passes + c.failures > 0)
                .map(|c| c.pass_rate)
                .min_by(f64::total_cmp)
                .ok_or_else(|| format!("no RLS probe ran in {scope}"))
        }
        Metric::IdempotencyViolations | Metric::TenantIsolationViolations => {
            unreachable!("handled above")
        }
    }
}

fn find_scope<'a>(report: &'a Report, scope: &Scope) -> Result<&'a StepReport, String> {
    let (name, kind, word) = match scope {
        Scope::Overall => return Ok(&report.overall),
        Scope::Step(n) => (n, StepKind::Request, "step"),
        Scope::Journey(n) => (n, StepKind::Journey, "journey"),
    };
    if let Some(s) = report
        .steps
        .iter()
        .find(|s| &s.name == name && s.kind == kind)
    {
        return Ok(s);
    }
    if let Some(other) = report.steps.iter().find(|s| &s.name == name) {
        let (other_word, fixed) = match other.kind {
            StepKind::Request => ("step", Scope::Step(name.clone())),
            StepKind::Journey => ("journey", Scope::Journey(name.clone())),
        };
        return Err(format!(
            "no such {word} ({name:?} is a {other_word}: write {fixed})"
        ));
    }
    let known: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.name.as_str())
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

/// What is known about a run while it runs, for [`already_lost`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveFigures {
    /// Requests finished so far.
    pub requests: u64,
    /// Failed requests so far.
    pub errors: u64,
    /// Arrivals dropped so far.
    pub dropped: u64,
    /// Violations counted so far, by kind.
    pub violations: BTreeMap<Violation, u64>,
    /// Failed check evaluations so far.
    pub check_failures: u64,
    /// An upper bound on the requests the whole run will make, when the plan
    /// fixes one (iterations × requests per iteration); `None` otherwise.
    pub planned_requests: Option<u64>,
}

impl LiveFigures {
    /// The figures of a live status; `requests_per_iteration` (an upper
    /// bound on the requests one iteration makes, when the scenarios have
    /// one) turns planned iterations into planned requests. Violations are
    /// read from the status's snapshot, so the engine must be asked for
    /// snapshots ([`crate::engine::EngineOptions::live_snapshots`]) when a
    /// gate is on a violation counter; without a snapshot they are zero.
    pub fn from_status(status: &LiveStatus, requests_per_iteration: Option<u64>) -> Self {
        LiveFigures {
            requests: status.requests,
            errors: status.errors,
            dropped: status.dropped,
            violations: status
                .snapshot
                .as_ref()
                .map(|s| s.shard.book.violations.clone())
                .unwrap_or_default(),
            check_failures: status
                .snapshot
                .as_ref()
                .map(|s| s.shard.book.checks.iter().map(|c| c.failures).sum())
                .unwrap_or(0),
            planned_requests: status
                .planned_iterations
                .zip(requests_per_iteration)
                .map(|(i, r)| i.saturating_mul(r)),
        }
    }
}

/// Whether `gate` can no longer pass, whatever the rest of the run does:
/// the basis of abort-on-fail.
///
/// Only gates on figures that never go back are decided early, and only
/// for the whole run (scoped, latency, throughput and baseline gates can
/// still recover, so they are never lost early):
///
/// * counters (`errors`, `dropped`, `requests`, the violation counters) with
///   `<`, `<=` or `==`: lost once the count already breaks the threshold
///   (`dropped == 0` is lost at the first dropped arrival);
/// * `error_rate` with `<`, `<=` or `==`, when the run has an upper bound N
///   on its requests (a fixed number of iterations, and scenarios whose
///   iterations make at most a known number of requests): even if every
///   remaining request succeeded, the final rate would be at least
///   `errors / N`, so the gate is lost once that breaks the threshold
///   (`error_rate < 1%` is lost once errors reach 1 % of N). A run bounded
///   by time has no such N, and its `error_rate` gates are never lost early:
///   any number of successes may still come;
/// * `checks == 100%` (or `>= 100%`): lost at the first failed check. A
///   lower bar (`checks > 99.9%`) needs the number of evaluations still to
///   come, which no plan fixes, so it is never lost early.
pub fn already_lost(gate: &Gate, live: &LiveFigures) -> bool {
    if gate.metric == Metric::Checks {
        return gate.scope == Scope::Overall
            && matches!(gate.op, Op::Eq | Op::Ge)
            && matches!(gate.threshold, Threshold::Value(v) if v >= 1.0)
            && live.check_failures > 0;
    }
    if gate.scope != Scope::Overall || !matches!(gate.op, Op::Lt | Op::Le | Op::Eq) {
        return false;
    }
    let Threshold::Value(limit) = gate.threshold else {
        return false;
    };
    // The smallest value the metric can still end the run with.
    let floor = match gate.metric {
        Metric::Errors => live.errors as f64,
        Metric::Dropped => live.dropped as f64,
        Metric::Requests => live.requests as f64,
        Metric::ErrorRate => match live.planned_requests {
            Some(n) if n > 0 => live.errors as f64 / n as f64,
            _ => return false,
        },
        m => match m.violation() {
            Some(v) => live.violations.get(&v).copied().unwrap_or(0) as f64,
            None => return false,
        },
    };
    match gate.op {
        Op::Eq => floor > limit && !Op::Eq.holds(floor, limit),
        op => !op.holds(floor, limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(s: &str) -> Gate {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> GateError {
        s.parse::<Gate>().expect_err(s)
    }

    #[test]
    fn parses_the_everyday_forms() {
        let g = gate("p95 < 500ms");
        assert_eq!(
            (g.scope.clone(), g.metric, g.op, g.threshold),
            (Scope::Overall, Metric::P95, Op::Lt, Threshold::Value(500.0))
        );
        assert_eq!(g.threshold_display(), "< 500ms");
        assert_eq!(gate("p99 < 1s").threshold, Threshold::Value(1000.0));
        assert_eq!(gate("p50<250").threshold, Threshold::Value(250.0));
        assert_eq!(gate("max <= 800us").threshold, Threshold::Value(0.8));
        assert_eq!(gate("error_rate < 1%").threshold, Threshold::Value(0.01));
        assert_eq!(gate("error_rate < 0.01").threshold, Threshold::Value(0.01));
        assert_eq!(gate("checks > 99.9%").metric, Metric::Checks);
        assert_eq!(gate("rps >= 100/s").threshold, Threshold::Value(100.0));
        assert_eq!(
            gate("requests >= 1_000").threshold,
            Threshold::Value(1000.0)
        );
        assert_eq!(gate("p99.9 < 2s").metric, Metric::P999);
        assert_eq!(gate("avg < 2s").metric, Metric::Mean);
    }

    #[test]
    fn parses_scopes_and_baselines() {
        let g = gate("step:create_order p95 < 300ms");
        assert_eq!(g.scope, Scope::Step("create_order".into()));
        let g = gate(r#"step:"GET /health" p95 < 10ms"#);
        assert_eq!(g.scope, Scope::Step("GET /health".into()));
        assert_eq!(g.scope.to_string(), r#"step:"GET /health""#);
        let g = gate("journey:order_lifecycle p99 < 2s");
        assert_eq!(g.scope, Scope::Journey("order_lifecycle".into()));
        let g = gate("p95 <= baseline * 1.10");
        assert_eq!(g.threshold, Threshold::Baseline { factor: 1.10 });
        assert_eq!(g.threshold_display(), "<= baseline * 1.10");
        assert_eq!(
            gate("rps >= baseline*90%").threshold,
            Threshold::Baseline { factor: 0.9 }
        );
        assert_eq!(
            gate("requests == baseline").threshold,
            Threshold::Baseline { factor: 1.0 }
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = err("p95 < 5%");
        assert_eq!(e.column, 8);
        assert!(e.message.contains("latency unit"), "{e}");
        let e = err("step:a erorr_rate < 5%");
        assert_eq!(e.column, 8);
        assert!(e.message.contains("did you mean `error_rate`"), "{e}");
        let e = err("p95 = 5ms");
        assert_eq!(e.column, 5);
        assert!(e.message.contains("=="), "{e}");
        let e = err("error_rate < 5");
        assert!(e.message.contains("did you mean 5%"), "{e}");
        let e = err("step:\"GET /x p95 < 1ms");
        assert_eq!(e.column, 6);
        let e = err("step:a tenant_isolation_violations == 0");
        assert_eq!(e.column, 1);
        assert!(e.message.contains("whole run"), "{e}");
        let e = err("p95 < 500ms please");
        assert_eq!(e.column, 13);
        let e = err("p95 <");
        assert!(e.message.contains("found the end"), "{e}");
        let e = err("requests > 1.5");
        assert!(e.message.contains("whole number"), "{e}");
        // The rendering shows the gate and a caret under the column.
        let shown = err("p95 < 5%").to_string();
        assert!(shown.ends_with("p95 < 5%\n           ^"), "{shown}");
    }

    #[test]
    fn equality_tolerates_float_rounding() {
        assert!(Op::Eq.holds(0.1 + 0.2, 0.3));
        assert!(!Op::Lt.holds(0.3, 0.1 + 0.2));
        assert!(Op::Le.holds(0.1 + 0.2, 0.3));
        assert!(Op::Ne.holds(1.0, 1.001));
    }

    #[test]
    fn counters_are_lost_at_once_and_error_rates_against_the_plan() {
        let live = |errors, dropped, planned| LiveFigures {
            requests: 500,
            errors,
            dropped,
            violations: BTreeMap::new(),
            check_failures: 0,
            planned_requests: planned,
        };
        assert!(!already_lost(&gate("dropped == 0"), &live(0, 0, None)));
        assert!(already_lost(&gate("dropped == 0"), &live(0, 1, None)));
        assert!(!already_lost(
            &gate("error_rate < 1%"),
            &live(9, 0, Some(1000))
        ));
        assert!(already_lost(
            &gate("error_rate < 1%"),
            &live(10, 0, Some(1000))
        ));
        assert!(!already_lost(
            &gate("error_rate <= 1%"),
            &live(10, 0, Some(1000))
        ));
        // Without a plan the final count of requests is unknown.
        assert!(!already_lost(&gate("error_rate < 1%"), &live(400, 0, None)));
        // Gates that can recover are never lost early.
        assert!(!already_lost(&gate("p95 < 1ms"), &live(0, 0, None)));
        assert!(!already_lost(&gate("requests >= 10000"), &live(0, 0, None)));
        assert!(!already_lost(
            &gate("step:x errors == 0"),
            &live(5, 0, None)
        ));
        let mut l = live(0, 0, None);
        l.violations.insert(Violation::TenantIsolationViolations, 1);
        assert!(already_lost(&gate("tenant_isolation_violations == 0"), &l));
        assert!(!already_lost(&gate("idempotency_violations == 0"), &l));
        // checks == 100% is lost at the first failed check; a lower bar
        // depends on evaluations still to come.
        assert!(!already_lost(&gate("checks == 100%"), &l));
        l.check_failures = 1;
        assert!(already_lost(&gate("checks == 100%"), &l));
        assert!(already_lost(&gate("checks >= 100%"), &l));
        assert!(!already_lost(&gate("checks > 99.9%"), &l));
        assert!(!already_lost(&gate("step:x checks == 100%"), &l));
    }

    #[test]
    fn formats_values_in_their_unit() {
        assert_eq!(Metric::P95.format(312.44), "312.4ms");
        assert_eq!(Metric::P95.format(4.213), "4.21ms");
        assert_eq!(Metric::P95.format(0.4123), "0.412ms");
        assert_eq!(Metric::P95.format(1234.56), "1,234.6ms");
        assert_eq!(Metric::ErrorRate.format(0.0125), "1.25%");
        assert_eq!(Metric::Checks.format(1.0), "100%");
        assert_eq!(Metric::Rps.format(98.06), "98.1/s");
        assert_eq!(Metric::Requests.format(12345.0), "12,345");
    }
}
