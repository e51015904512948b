//! Check outcomes, seed-specific violations and the first few failures kept
//! as examples. Like every measurement, they merge by addition.
//!
//! Examples are kept per kind of failure ([`FailureKind`]: the step, the
//! check, and what answered: a status, a transport cause, a violation), at
//! most [`EXAMPLES_PER_KIND`] of each: a run whose 5xx answers fail
//! thousands of checks still keeps examples of its one tenant-isolation
//! violation. [`MAX_FAILURE_SAMPLES`] bounds the whole; once it is reached,
//! a kind not yet seen takes the place of an example of the kind with the
//! most, so every kind keeps at least one while there are fewer kinds than
//! that bound.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ErrorCause;

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
    /// A route served a request whose credentials should have been refused:
    /// no token, an expired one, one signed by another key, `alg: none`.
    AuthViolations,
}

impl Violation {
    /// Every kind, in report order.
    pub const ALL: [Violation; 3] = [
        Violation::IdempotencyViolations,
        Violation::TenantIsolationViolations,
        Violation::AuthViolations,
    ];

    /// The metric name used in reports and gates.
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::IdempotencyViolations => "idempotency_violations",
            Violation::TenantIsolationViolations => "tenant_isolation_violations",
            Violation::AuthViolations => "auth_violations",
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
    /// The violation this failure was counted as, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation: Option<Violation>,
    /// The HTTP status answered, when there was an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why no answer came, when the request failed in transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ErrorCause>,
}

impl FailureSample {
    /// The kind of failure this is an example of.
    pub fn kind(&self) -> FailureKind<'_> {
        FailureKind {
            step: &self.step,
            check: &self.check,
            violation: self.violation,
            status: self.status,
            cause: self.cause,
        }
    }
}

/// What makes two failures examples of the same thing: the same check of
/// the same step, answered the same way (one status, one transport cause)
/// and counted as the same violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureKind<'a> {
    /// The step.
    pub step: &'a str,
    /// The check or violation label.
    pub check: &'a str,
    /// The violation counted, if any.
    pub violation: Option<Violation>,
    /// The status answered, if any.
    pub status: Option<u16>,
    /// The transport cause, if no answer came.
    pub cause: Option<ErrorCause>,
}

/// At most this many examples of one [`FailureKind`] are kept.
pub const EXAMPLES_PER_KIND: usize = 3;

/// At most this many failure samples are kept per run (per worker before
/// merging); the counters keep counting. Each is a few kilobytes at most
/// (bodies are cut at 2 KiB).
pub const MAX_FAILURE_SAMPLES: usize = 100;

/// Whether `kept` would keep an example of `kind` (see [`keep_example`]).
pub fn wants_example(kept: &[FailureSample], kind: &FailureKind<'_>) -> bool {
    let same = kept.iter().filter(|s| s.kind() == *kind).count();
    if same >= EXAMPLES_PER_KIND {
        return false;
    }
    kept.len() < MAX_FAILURE_SAMPLES || (same == 0 && most_kept(kept).is_some())
}

/// Keeps `sample` in `kept` if its kind has fewer than
/// [`EXAMPLES_PER_KIND`] examples there. When `kept` is full, an example of
/// a kind not kept yet replaces the latest example of the kind with the
/// most (while that has more than one): every kind keeps one.
pub fn keep_example(kept: &mut Vec<FailureSample>, sample: FailureSample) {
    if !wants_example(kept, &sample.kind()) {
        return;
    }
    if kept.len() >= MAX_FAILURE_SAMPLES {
        let Some(evict) = most_kept(kept) else {
            return;
        };
        kept.remove(evict);
    }
    kept.push(sample);
}

/// The index of the latest example of the kind with the most examples,
/// when that kind has more than one.
fn most_kept(kept: &[FailureSample]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (count, latest index)
    for (i, s) in kept.iter().enumerate() {
        let k = s.kind();
        let (count, latest) = kept
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind() == k)
            .fold((0, i), |(n, _), (j, _)| (n + 1, j));
        if count > 1 && best.is_none_or(|(n, _)| count > n) {
            best = Some((count, latest));
        }
    }
    best.map(|(_, i)| i)
}

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

    /// Keeps `sample` if its kind has room ([`keep_example`]).
    pub fn sample(&mut self, sample: FailureSample) {
        keep_example(&mut self.samples, sample);
    }

    /// Whether an example of `kind` would be kept (to skip building one).
    pub fn wants_sample(&self, kind: &FailureKind<'_>) -> bool {
        wants_example(&self.samples, kind)
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

    fn example(step: &str, check: &str, status: Option<u16>) -> FailureSample {
        FailureSample {
            step: step.into(),
            check: check.into(),
            message: "m".into(),
            request: String::new(),
            response: String::new(),
            vu: 0,
            iteration: 0,
            violation: None,
            status,
            cause: None,
        }
    }

    #[test]
    fn merge_adds_counts_and_bounds_samples() {
        let mut a = CheckBook::default();
        let mut b = CheckBook::default();
        a.check(0, true);
        a.check(2, false);
        b.check(0, false);
        b.violation(Violation::TenantIsolationViolations, 2);
        for i in 0..MAX_FAILURE_SAMPLES {
            a.sample(example(&format!("a{i}"), "c", Some(500)));
            b.sample(example(&format!("b{i}"), "c", Some(500)));
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

    #[test]
    fn noise_does_not_crowd_out_rarer_kinds() {
        let mut book = CheckBook::default();
        // Thousands of 5xx over a few steps, then one violation, one
        // timeout and another check's failure.
        for i in 0..5000 {
            book.sample(example(
                &format!("step {}", i % 40),
                "status 2xx",
                Some(503),
            ));
        }
        let mut leak = example("probe", "tenant isolation GET", Some(200));
        leak.violation = Some(Violation::TenantIsolationViolations);
        book.sample(leak.clone());
        let mut timeout = example("step 0", "status 2xx", None);
        timeout.cause = Some(ErrorCause::Timeout);
        book.sample(timeout);
        book.sample(example("step 0", "body.id exists", Some(201)));
        let s = &book.samples;
        assert!(s.len() <= MAX_FAILURE_SAMPLES);
        assert!(s.contains(&leak), "the violation was kept");
        assert!(s.iter().any(|x| x.cause == Some(ErrorCause::Timeout)));
        assert!(s.iter().any(|x| x.check == "body.id exists"));
        // Every kind has an example and none more than the cap.
        for i in 0..40 {
            let step = format!("step {i}");
            let n = s
                .iter()
                .filter(|x| x.step == step && x.status == Some(503))
                .count();
            assert!((1..=EXAMPLES_PER_KIND).contains(&n), "{step}: {n}");
        }
        // A kind keeps its first examples, no more than its cap.
        let mut fresh = CheckBook::default();
        for i in 0..5 {
            let mut l = leak.clone();
            l.iteration = i;
            fresh.sample(l);
        }
        let kept: Vec<u64> = fresh.samples.iter().map(|x| x.iteration).collect();
        assert_eq!(kept, [0, 1, 2]);
        assert!(!fresh.wants_sample(&leak.kind()));
    }
}
