//! Check outcomes, seed-specific violations and the first few failures kept
//! as examples. Like every measurement, they merge by addition.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Passes and failures of one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStats {
    /// Times the check held.
    pub passes: u64,
    /// Times it did not.
    pub failures: u64,
}

impl CheckStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &CheckStats) {
        // Saturating: the counts of merged reports come from files.
        self.passes = self.passes.saturating_add(other.passes);
        self.failures = self.failures.saturating_add(other.failures);
    }

    /// Fraction of evaluations that passed (1 when never evaluated).
    pub fn pass_rate(&self) -> f64 {
        let total = self.passes + self.failures;
        if total == 0 {
            1.0
        } else {
            self.passes as f64 / total as f64
        }
    }
}

/// Breaches of the guarantees the seeds care most about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Violation {
    /// A replay with the same `Idempotency-Key` created a second resource or
    /// answered differently.
    IdempotencyViolations,
    /// Another tenant's identity could read, change or see a resource.
    TenantIsolationViolations,
}

impl Violation {
    /// Every kind, in report order.
    pub const ALL: [Violation; 2] = [
        Violation::IdempotencyViolations,
        Violation::TenantIsolationViolations,
    ];

    /// The metric name used in reports and gates.
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::IdempotencyViolations => "idempotency_violations",
            Violation::TenantIsolationViolations => "tenant_isolation_violations",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check or violation, kept as an example for the report.
/// Request and response texts are redacted before they are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureSample {
    /// The step that failed.
    pub step: String,
    /// The check or violation.
    pub check: String,
    /// What was expected and what was found.
    pub message: String,
    /// The request, as `METHOD URL`, headers and body (redacted, truncated).
    pub request: String,
    /// The response status, headers and body (redacted, truncated).
    pub response: String,
    /// The virtual user and its iteration.
    pub vu: u64,
    /// The iteration of that user.
    pub iteration: u64,
}

/// At most this many failure samples are kept per run (per worker before
/// merging); the counters keep counting.
pub const MAX_FAILURE_SAMPLES: usize = 20;

/// Checks, violations and failure samples of one shard or run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckBook {
    /// One entry per check, indexed by check id.
    pub checks: Vec<CheckStats>,
    /// Violations by kind.
    pub violations: BTreeMap<Violation, u64>,
    /// The first failures.
    pub samples: Vec<FailureSample>,
    /// Tokens renewed mid-run (expired, or answered 401) by a fresh login.
    #[serde(default)]
    pub auth_renewals: u64,
}

impl CheckBook {
    /// Counts one evaluation of check `id`.
    #[inline]
    pub fn check(&mut self, id: usize, passed: bool) {
        if id >= self.checks.len() {
            self.checks.resize(id + 1, CheckStats::default());
        }
        let c = &mut self.checks[id];
        if passed {
            c.passes += 1;
        } else {
            c.failures += 1;
        }
    }

    /// Counts `n` violations of `kind`.
    pub fn violation(&mut self, kind: Violation, n: u64) {
        *self.violations.entry(kind).or_insert(0) += n;
    }

    /// Keeps `sample` if there is room.
    pub fn sample(&mut self, sample: FailureSample) {
        if self.samples.len() < MAX_FAILURE_SAMPLES {
            self.samples.push(sample);
        }
    }

    /// Whether another sample would be kept (to skip building one).
    pub fn wants_sample(&self) -> bool {
        self.samples.len() < MAX_FAILURE_SAMPLES
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &CheckBook) {
        if self.checks.len() < other.checks.len() {
            self.checks
                .resize(other.checks.len(), CheckStats::default());
        }
        for (a, b) in self.checks.iter_mut().zip(&other.checks) {
            a.merge(b);
        }
        for (k, v) in &other.violations {
            *self.violations.entry(*k).or_insert(0) += v;
        }
        for s in &other.samples {
            self.sample(s.clone());
        }
        self.auth_renewals = self.auth_renewals.saturating_add(other.auth_renewals);
    }

    /// Total failed check evaluations.
    pub fn failures(&self) -> u64 {
        self.checks.iter().map(|c| c.failures).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_bounds_samples() {
        let mut a = CheckBook::default();
        let mut b = CheckBook::default();
        a.check(0, true);
        a.check(2, false);
        b.check(0, false);
        b.violation(Violation::TenantIsolationViolations, 2);
        let sample = FailureSample {
            step: "s".into(),
            check: "c".into(),
            message: "m".into(),
            request: String::new(),
            response: String::new(),
            vu: 0,
            iteration: 0,
        };
        for _ in 0..MAX_FAILURE_SAMPLES {
            a.sample(sample.clone());
            b.sample(sample.clone());
        }
        a.merge(&b);
        assert_eq!(
            a.checks[0],
            CheckStats {
                passes: 1,
                failures: 1
            }
        );
        assert_eq!(a.checks[2].failures, 1);
        assert_eq!(a.violations[&Violation::TenantIsolationViolations], 2);
        assert_eq!(a.samples.len(), MAX_FAILURE_SAMPLES);
        assert_eq!(a.failures(), 2);
        assert!((a.checks[0].pass_rate() - 0.5).abs() < 1e-12);
    }
}
