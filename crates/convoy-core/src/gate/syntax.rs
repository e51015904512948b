//! The syntax tree of a gate: what it looks at ([`Scope`]), what it
//! measures ([`Metric`] and its [`Unit`]), how it compares ([`Op`]) and with
//! what ([`Threshold`]); the grammar is in the parent module, the parser in
//! `parse`.

use std::fmt;
use std::str::FromStr;

use super::parse;
use crate::metrics::Violation;
use crate::units::{
    group, millis as format_millis, per_second, percent as format_percent, trim_float,
};

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

/// The kinds of metric a scope names: what `step:`, `journey:`, `event:`
/// and `stream:` each pick out of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// Request steps.
    Step,
    /// Journeys (whole iterations).
    Journey,
    /// Awaited events (`[step.await]`).
    Event,
    /// Stream metrics (`[step.subscribe]`): connects, first events,
    /// reconnects.
    Stream,
}

impl ScopeKind {
    /// The word a gate writes before the name: `step`, `journey`, `event`,
    /// `stream`.
    pub fn word(self) -> &'static str {
        match self {
            ScopeKind::Step => "step",
            ScopeKind::Journey => "journey",
            ScopeKind::Event => "event",
            ScopeKind::Stream => "stream",
        }
    }

    /// The scope of the metric of this kind called `name`.
    pub fn named(self, name: String) -> Scope {
        match self {
            ScopeKind::Step => Scope::Step(name),
            ScopeKind::Journey => Scope::Journey(name),
            ScopeKind::Event => Scope::Event(name),
            ScopeKind::Stream => Scope::Stream(name),
        }
    }
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
    /// One awaited event (`[step.await]`), by its step's name: the latency
    /// from the step that caused it to its arrival.
    Event(String),
    /// One stream (`[step.subscribe]`), by its step's name: its connects.
    Stream(String),
    /// Every metric of a kind, each judged on its own (`event:*`): the gate
    /// holds when it holds for each of them.
    Every(ScopeKind),
}

impl Scope {
    /// The name of a step, journey, event or stream scope (`None` for the
    /// whole run and for a wildcard).
    pub fn name(&self) -> Option<&str> {
        match self {
            Scope::Overall | Scope::Every(_) => None,
            Scope::Step(n) | Scope::Journey(n) | Scope::Event(n) | Scope::Stream(n) => Some(n),
        }
    }

    /// The kind of metric the scope names (`None` for the whole run).
    pub fn kind(&self) -> Option<ScopeKind> {
        match self {
            Scope::Overall => None,
            Scope::Step(_) => Some(ScopeKind::Step),
            Scope::Journey(_) => Some(ScopeKind::Journey),
            Scope::Event(_) => Some(ScopeKind::Event),
            Scope::Stream(_) => Some(ScopeKind::Stream),
            Scope::Every(k) => Some(*k),
        }
    }

    /// The word a gate writes before the name: `step`, `journey`, `event`,
    /// `stream` (`overall` for the whole run).
    pub fn word(&self) -> &'static str {
        self.kind().map_or("overall", ScopeKind::word)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Scope::Every(kind) = self {
            return write!(f, "{}:*", kind.word());
        }
        let (kind, name) = match self.name() {
            None => return f.write_str("overall"),
            Some(n) => (self.word(), n),
        };
        // A step really called `*` is quoted, so that it reads back as that
        // step and not as the wildcard.
        if name == "*" || name.chars().any(|c| c.is_whitespace() || c == '"') {
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
    /// Authentication violations: a route served a request without valid
    /// credentials (`[step.auth_probe]`).
    AuthViolations,
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
    pub const ALL: [Metric; 18] = [
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
        Metric::AuthViolations,
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
            Metric::AuthViolations => "auth_violations",
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
            Metric::AuthViolations => Some(Violation::AuthViolations),
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

    pub(super) fn from_name(s: &str) -> Option<Metric> {
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

    #[test]
    fn parses_wildcard_scopes() {
        let g = gate("event:* p95 < 100ms");
        assert_eq!(g.scope, Scope::Every(ScopeKind::Event));
        assert_eq!(g.scope.to_string(), "event:*");
        assert_eq!(
            gate("stream:*  p99 < 1s").scope,
            Scope::Every(ScopeKind::Stream)
        );
        assert_eq!(
            gate("step:* errors == 0").scope,
            Scope::Every(ScopeKind::Step)
        );
        assert_eq!(
            gate("journey:* p95 < 2s").scope,
            Scope::Every(ScopeKind::Journey)
        );
        // Quoted, `*` is a name like any other, and shows quoted again.
        let g = gate(r#"step:"*" p95 < 10ms"#);
        assert_eq!(g.scope, Scope::Step("*".into()));
        assert_eq!(g.scope.to_string(), r#"step:"*""#);
        assert_eq!(gate("step:*x p95 < 1s").scope, Scope::Step("*x".into()));
        // The whole-run counters refuse a wildcard as they refuse a name.
        let e = err("event:* dropped == 0");
        assert_eq!(e.column, 1);
        assert!(e.message.contains("drop `event:*`"), "{e}");
        let e = err("event:*");
        assert!(
            e.message.contains("expected a space after `event:*`"),
            "{e}"
        );
    }
}
