//! The trends a run's reports show: each gated figure (and each figure the
//! comparison with the baseline flagged) over the recent runs of the run's
//! series, with its change points, this run last ([`trends`]).

use super::changepoint::{self, Options};
use super::series::same_series;
use crate::engine::StepKind;
use crate::report::Report;
use crate::report::compare::{Change, Figure};
use crate::report::trend::Trend;

/// The gate language's scope word for metrics of `kind`.
fn scope_kind(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Request => "step",
        StepKind::Journey => "journey",
        StepKind::Event => "event",
        StepKind::Stream => "stream",
    }
}

/// At most this many runs (this one included) in a trend.
pub const TREND_RUNS: usize = 30;

/// The trends of `current` over `history` (stored runs, any order; those
/// of another series, partial or the current run itself are left out).
/// The figures are those its gates name (p50, p95, p99, error rate,
/// throughput, overall or of a step) and those its comparison flagged;
/// overall p95 when there are none. Empty when no earlier run of the
/// series is in the history.
pub fn trends(current: &Report, history: &[Report], options: &Options) -> Vec<Trend> {
    let mut runs: Vec<&Report> = history
        .iter()
        .filter(|r| !r.partial && r.run_id != current.run_id && same_series(r, current))
        .collect();
    if runs.is_empty() {
        return Vec::new();
    }
    runs.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
    let keep = runs.len().saturating_sub(TREND_RUNS - 1);
    let mut runs = runs.split_off(keep);
    runs.push(current);

    let mut wanted: Vec<(String, Figure)> = Vec::new();
    let want = |wanted: &mut Vec<(String, Figure)>, step: &str, figure: Figure| {
        if !wanted.iter().any(|(s, f)| s == step && *f == figure) {
            wanted.push((step.to_string(), figure));
        }
    };
    for g in &current.gates {
        let Some(f) = Figure::ALL.into_iter().find(|f| f.name() == g.metric) else {
            continue;
        };
        match g.scope.split_once(':') {
            // `event:*`: every metric of that kind the run has.
            Some((kind, "*")) => {
                for s in current.steps.iter().filter(|s| scope_kind(s.kind) == kind) {
                    want(&mut wanted, &s.name, f);
                }
            }
            Some((_, name)) => want(&mut wanted, name.trim_matches('"'), f),
            None => want(&mut wanted, "overall", f),
        }
    }
    if let Some(c) = &current.comparison {
        for r in c.rows.iter().filter(|r| r.change == Change::Regression) {
            want(&mut wanted, &r.step, r.figure);
        }
    }
    if wanted.is_empty() {
        want(&mut wanted, "overall", Figure::P95);
    }

    let flagged: Vec<(String, Figure)> = current
        .comparison
        .iter()
        .flat_map(|c| c.regressions())
        .map(|r| (r.step.clone(), r.figure))
        .collect();
    wanted
        .into_iter()
        .filter_map(|(step, figure)| {
            let points: Vec<(&Report, f64)> = runs
                .iter()
                .filter_map(|r| {
                    let s = if step == "overall" {
                        Some(&r.overall)
                    } else {
                        r.steps.iter().find(|s| s.name == step)
                    }?;
                    Some((*r, figure.of(s).filter(|v| v.is_finite())?))
                })
                .collect();
            // This run must be in it, with at least one run before it.
            if points.len() < 2 || points.last()?.0.run_id != current.run_id {
                return None;
            }
            let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
            let found = changepoint::detect(&values, options);
            let worse =
                |c: &changepoint::ChangePoint| (c.after > c.before) == figure.higher_is_worse();
            let confirmed_tonight = found.iter().any(|c| {
                worse(c) && changepoint::flagged_runs_ago(&values, c, options, 1) == Some(0)
            });
            Some(Trend {
                regressed: confirmed_tonight
                    || flagged.iter().any(|(s, f)| *s == step && *f == figure),
                step,
                figure,
                run_ids: points.iter().map(|(r, _)| r.run_id.clone()).collect(),
                changes: found.iter().map(|c| c.index).collect(),
                values,
            })
        })
        .collect()
}
