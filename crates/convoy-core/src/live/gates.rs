//! The live figures as the gates read them: the exporter's latest snapshot
//! turned into [`RunFigures`] for its `convoy_gate_passing` gauge, and an
//! engine status turned into [`LiveFigures`] for `--abort-on-fail`.
//!
//! The figures are derived the way a report derives its own (the overall
//! row merges the request steps; `dropped` goes to the overall row, and to
//! the step of a single-step run), so the gauge after the run agrees with
//! the report's gate table.

use super::render::Figures;
use crate::engine::{LiveStatus, StepKind};
use crate::gate::{CheckFigures, LiveFigures, RunFigures, ScopeFigures};
use crate::metrics::StepStats;
use crate::summary::{LatencySummary, throughput};

/// What the gates can read of `f`.
pub fn gate_figures(f: &Figures) -> RunFigures {
    let mut overall = StepStats::default();
    for (_, stats) in f.steps.iter().filter(|(s, _)| s.kind == StepKind::Request) {
        overall.merge(stats);
    }
    let single = f.steps.len() == 1;
    RunFigures {
        overall: scope_figures(&overall, f.elapsed_secs, f.dropped),
        parts: f
            .steps
            .iter()
            .map(|(info, stats)| {
                let scope = crate::report::figures::scope_of(info.kind, &info.name);
                let dropped = if single { f.dropped } else { 0 };
                (scope, scope_figures(stats, f.elapsed_secs, dropped))
            })
            .collect(),
        checks: f
            .checks
            .iter()
            .map(|(info, stats)| CheckFigures {
                step: info.step.clone(),
                name: info.name.clone(),
                passes: stats.passes,
                failures: stats.failures,
                pass_rate: stats.pass_rate(),
            })
            .collect(),
        violations: f.violations.clone(),
    }
}

fn scope_figures(stats: &StepStats, elapsed_secs: f64, dropped: u64) -> ScopeFigures {
    ScopeFigures {
        requests: stats.requests,
        errors: stats.errors,
        error_rate: stats.error_rate(),
        rps: throughput(stats.requests, elapsed_secs),
        dropped,
        latency_ms: (!stats.latency.is_empty()).then(|| LatencySummary::of(&stats.latency)),
    }
}

/// The figures of a live status that [`crate::gate::already_lost`] judges;
/// `requests_per_iteration` (an upper bound on the requests one iteration
/// makes, when the scenarios have one) turns planned iterations into
/// planned requests. Violations are
/// read from the status's snapshot, so the engine must be asked for
/// snapshots ([`crate::engine::EngineOptions::live_snapshots`]) when a
/// gate is on a violation counter; without a snapshot they are zero.
pub fn progress_figures(status: &LiveStatus, requests_per_iteration: Option<u64>) -> LiveFigures {
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
