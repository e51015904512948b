//! Evaluating gates: a [`Gate`] measured on any [`Figures`] gives the
//! [`GateResult`] every report carries.

use serde::{Deserialize, Serialize};

use super::{CheckFigures, Figures, Gate, Metric, Scope, ScopeFigures, Threshold};
use crate::summary::LatencySummary;

/// One SLA gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate as written, e.g. `step:create_order p95 < 500ms`.
    pub expression: String,
    /// `overall`, `step:NAME` or `journey:NAME`.
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
        let mut result = GateResult {
            expression: self.expression.clone(),
            scope: self.scope.to_string(),
            metric: self.metric.name().to_string(),
            threshold: self.threshold_display(),
            actual: None,
            actual_display: String::new(),
            passed: false,
        };
        let actual = match measure(figures, &self.scope, self.metric) {
            Ok(v) => v,
            Err(why) => {
                result.actual_display = why;
                return result;
            }
        };
        result.actual = Some(actual);
        result.actual_display = self.metric.format(actual);
        if self.metric == Metric::Checks
            && self.scope == Scope::Overall
            && figures.checks().is_empty()
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
            Scope::Step(name) | Scope::Journey(name) => {
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
            let name = match scope {
                Scope::Overall => None,
                Scope::Step(n) | Scope::Journey(n) => Some(n),
            };
            figures
                .checks()
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
    match scope {
        Scope::Overall => None,
        Scope::Step(n) | Scope::Journey(n) => Some(n),
    }
}

fn find_scope<F: Figures + ?Sized>(figures: &F, scope: &Scope) -> Result<ScopeFigures, String> {
    let (name, word) = match scope {
        Scope::Overall => return Ok(figures.overall()),
        Scope::Step(n) => (n, "step"),
        Scope::Journey(n) => (n, "journey"),
    };
    let parts = figures.parts();
    if let Some((_, f)) = parts.iter().find(|(s, _)| s == scope) {
        return Ok(*f);
    }
    // The same name under the other kind: the usual slip is `step:` for a
    // journey or the reverse, and the message says what to write.
    if let Some((other, _)) = parts.iter().find(|(s, _)| name_of(s) == Some(name)) {
        let other_word = match other {
            Scope::Journey(_) => "journey",
            _ => "step",
        };
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
