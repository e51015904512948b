//! What the gates read of a report: its stored figures, as they are
//! rendered, so a gate verdict and the table beside it never disagree.

use super::{Report, StepReport};
use crate::engine::StepKind;
use crate::gate::{CheckFigures, Figures, Scope, ScopeFigures};
use crate::metrics::Violation;

/// The gate scope that names metric `name` of kind `kind`.
pub(crate) fn scope_of(kind: StepKind, name: &str) -> Scope {
    let name = name.to_string();
    match kind {
        StepKind::Request => Scope::Step(name),
        StepKind::Journey => Scope::Journey(name),
        StepKind::Event => Scope::Event(name),
        StepKind::Stream => Scope::Stream(name),
    }
}

impl Figures for Report {
    fn overall(&self) -> ScopeFigures {
        self.overall.gate_figures()
    }

    fn parts(&self) -> Vec<(Scope, ScopeFigures)> {
        self.steps
            .iter()
            .map(|s| {
                let scope = scope_of(s.kind, &s.name);
                (scope, s.gate_figures())
            })
            .collect()
    }

    fn checks(&self) -> Vec<CheckFigures> {
        self.checks
            .iter()
            .map(|c| CheckFigures {
                step: c.step.clone(),
                name: c.name.clone(),
                passes: c.passes,
                failures: c.failures,
                pass_rate: c.pass_rate,
            })
            .collect()
    }

    fn violations(&self, kind: Violation) -> u64 {
        self.violations.get(&kind).copied().unwrap_or(0)
    }
}

impl StepReport {
    /// The figures the gates read of this step.
    pub fn gate_figures(&self) -> ScopeFigures {
        ScopeFigures {
            requests: self.requests,
            errors: self.errors,
            error_rate: self.error_rate,
            rps: self.rps,
            dropped: self.dropped,
            latency_ms: self.has_latency().then_some(self.latency_ms),
        }
    }
}
