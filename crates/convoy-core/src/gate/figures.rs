//! The figures a gate can name, and nothing more: whoever holds a run's
//! measurements (a finished report, a merge of shards, the live exporter's
//! latest snapshot) provides them through [`Figures`], and the gates never
//! see where they came from.

use std::collections::BTreeMap;

use super::Scope;
use crate::metrics::Violation;
use crate::summary::LatencySummary;

/// What the gate language can read of a run.
///
/// [`super::evaluate`] asks for a scope's figures once per gate, so an
/// implementation that derives them (rather than reading stored ones)
/// should derive them once up front, e.g. into a [`RunFigures`].
pub trait Figures {
    /// Every request step together: the scope of a gate written without
    /// one.
    fn overall(&self) -> ScopeFigures;

    /// The run's steps and journeys in the run's order, each under the
    /// scope a gate names it by ([`Scope::Step`] or [`Scope::Journey`]).
    fn parts(&self) -> Vec<(Scope, ScopeFigures)>;

    /// Every check, with the step it belongs to.
    fn checks(&self) -> Vec<CheckFigures>;

    /// Violations of `kind` counted over the whole run.
    fn violations(&self, kind: Violation) -> u64;
}

/// The figures of one scope: a step, a journey or the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScopeFigures {
    /// Requests completed (journeys completed, for a journey).
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Arrivals dropped before the scope could start (open model).
    pub dropped: u64,
    /// Latency from scheduled start; `None` when no response was timed, so
    /// that a latency gate fails for want of data instead of reading 0.
    pub latency_ms: Option<LatencySummary>,
}

/// One check's evaluations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckFigures {
    /// The step (or journey) it belongs to.
    pub step: String,
    /// What it checks.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub failures: u64,
    /// `passes / (passes + failures)`.
    pub pass_rate: f64,
}

/// Figures gathered into a value of their own, for a source that has to
/// derive them (the live exporter) or has none at all (tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFigures {
    /// See [`Figures::overall`].
    pub overall: ScopeFigures,
    /// See [`Figures::parts`].
    pub parts: Vec<(Scope, ScopeFigures)>,
    /// See [`Figures::checks`].
    pub checks: Vec<CheckFigures>,
    /// Violations by kind; a kind not listed counts 0.
    pub violations: BTreeMap<Violation, u64>,
}

impl Figures for RunFigures {
    fn overall(&self) -> ScopeFigures {
        self.overall
    }

    fn parts(&self) -> Vec<(Scope, ScopeFigures)> {
        self.parts.clone()
    }

    fn checks(&self) -> Vec<CheckFigures> {
        self.checks.clone()
    }

    fn violations(&self, kind: Violation) -> u64 {
        self.violations.get(&kind).copied().unwrap_or(0)
    }
}
