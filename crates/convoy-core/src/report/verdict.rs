//! The verdict of a report in one line, shared by every renderer so the
//! terminal, the step summary, JUnit and the HTML page never disagree about
//! whether a run passed.
//!
//! A run fails when a gate failed, a check failed, a violation was counted,
//! or its comparison with a baseline found a regression; a run stopped
//! before its plan ended is headed by how it stopped (`TARGET DOWN`,
//! `INTERRUPTED`, `ABORTED BY GATE`) whatever its figures. (Which exit code each failure maps
//! to is the command line's business.)

use super::Report;
use super::compare::Change;
use crate::engine::StopReason;
use crate::metrics::Violation;

/// The heading of a run that ended this way before its plan did:
/// `TARGET DOWN`, `INTERRUPTED`, `ABORTED BY GATE`. A report marked partial whose reason says
/// completed (edited by hand) is just `PARTIAL`.
pub fn stop_heading(reason: StopReason) -> &'static str {
    // No wildcard: a new way for a run to end must get its own words here.
    match reason {
        StopReason::Completed => "PARTIAL",
        StopReason::Interrupted => "INTERRUPTED",
        StopReason::AbortedByGate => "ABORTED BY GATE",
        StopReason::TargetDown => "TARGET DOWN",
    }
}

/// Why the run ended, as a phrase a person reads (never a Rust name).
pub fn stop_explanation(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Completed => "the plan ran to its end",
        StopReason::Interrupted => "the run was interrupted by a signal (Ctrl-C, SIGTERM)",
        StopReason::AbortedByGate => {
            "--abort-on-fail stopped the run: a gate could no longer pass (marked in the gate table)"
        }
        StopReason::TargetDown => "the target stopped accepting connections during the run",
    }
}

/// What went wrong in a run, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Gates evaluated.
    pub gates: usize,
    /// Gates that failed.
    pub gates_failed: usize,
    /// Check evaluations.
    pub check_evaluations: u64,
    /// Failed check evaluations.
    pub check_failures: u64,
    /// Idempotency violations.
    pub idempotency_violations: u64,
    /// Tenant isolation violations.
    pub tenant_isolation_violations: u64,
    /// Authentication violations.
    pub auth_violations: u64,
    /// Regressions found by the comparison with a baseline.
    pub regressions: usize,
    /// The run was stopped before its plan ended.
    pub partial: bool,
    /// How the run ended.
    pub stop_reason: StopReason,
}

impl Verdict {
    /// Counts what went wrong in `report`.
    pub fn of(report: &Report) -> Self {
        let violations = |v| report.violations.get(&v).copied().unwrap_or(0);
        Verdict {
            gates: report.gates.len(),
            gates_failed: report.gates.iter().filter(|g| !g.passed).count(),
            check_evaluations: report.checks.iter().fold(0u64, |n, c| {
                n.saturating_add(c.passes).saturating_add(c.failures)
            }),
            check_failures: report.check_failures(),
            idempotency_violations: violations(Violation::IdempotencyViolations),
            tenant_isolation_violations: violations(Violation::TenantIsolationViolations),
            auth_violations: violations(Violation::AuthViolations),
            regressions: report
                .comparison
                .as_ref()
                .map_or(0, |c| c.count(Change::Regression)),
            partial: report.partial,
            stop_reason: report.stop_reason,
        }
    }

    /// Whether nothing went wrong and the run completed.
    pub fn passed(&self) -> bool {
        !self.partial && self.problems().is_empty()
    }

    /// `PASSED`, `FAILED`, or for a partial run how it stopped
    /// ([`stop_heading`]: `TARGET DOWN`, `INTERRUPTED`).
    pub fn word(&self) -> &'static str {
        if self.partial {
            stop_heading(self.stop_reason)
        } else if self.passed() {
            "PASSED"
        } else {
            "FAILED"
        }
    }

    /// What went wrong, one phrase each: `2 of 5 gates failed`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.gates_failed > 0 {
            out.push(format!(
                "{} of {} gates failed",
                self.gates_failed, self.gates
            ));
        }
        if self.check_failures > 0 {
            out.push(plural(self.check_failures, "failed check", "failed checks"));
        }
        if self.tenant_isolation_violations > 0 {
            out.push(plural(
                self.tenant_isolation_violations,
                "tenant isolation violation",
                "tenant isolation violations",
            ));
        }
        if self.auth_violations > 0 {
            out.push(plural(
                self.auth_violations,
                "auth violation",
                "auth violations",
            ));
        }
        if self.idempotency_violations > 0 {
            out.push(plural(
                self.idempotency_violations,
                "idempotency violation",
                "idempotency violations",
            ));
        }
        if self.regressions > 0 {
            out.push(plural(self.regressions as u64, "regression", "regressions"));
        }
        out
    }

    /// What the verdict rests on: `1 of 5 gates failed · 3 failed checks`,
    /// `all 5 gates passed`.
    pub fn detail(&self) -> String {
        let problems = self.problems();
        if !problems.is_empty() {
            problems.join(" · ")
        } else if self.gates == 1 {
            "the gate passed".to_string()
        } else if self.gates > 0 {
            format!("all {} gates passed", self.gates)
        } else if self.check_evaluations > 0 {
            "all checks passed".to_string()
        } else {
            "no gates or checks failed".to_string()
        }
    }

    /// The verdict word with `— partial result` after it for a partial run:
    /// `TARGET DOWN — partial result`, `PASSED`.
    pub fn heading(&self) -> String {
        if self.partial {
            format!("{} — partial result", self.word())
        } else {
            self.word().to_string()
        }
    }

    /// `PASSED: all 5 gates passed`, `FAILED: 1 of 5 gates failed · 3
    /// failed checks`, `TARGET DOWN — partial result: ...`.
    pub fn headline(&self) -> String {
        let detail = self.detail();
        if self.partial {
            format!("{}: {detail}", self.heading())
        } else {
            format!("{}: {detail}", self.word())
        }
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        super::text::group(n),
        if n == 1 { one } else { many }
    )
}
