//! Deciding a gate before the run ends: which gates are already lost on
//! the figures known while the run goes on, the basis of `--abort-on-fail`.

use std::collections::BTreeMap;

use super::{Gate, Metric, Op, Scope, Threshold};
use crate::metrics::Violation;

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
}
