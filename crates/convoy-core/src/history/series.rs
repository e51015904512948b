//! Stored runs grouped into comparable series, and the change points of
//! each step's figures over them: the `convoy.history/v1` document.
//!
//! Runs are comparable when they ran the same command, scenario set and
//! load profile against the same target (the built-in reference API counts
//! as one target whatever port it was given). Within a series each step's
//! p50, p95 and p99 latency, error rate and throughput are analysed apart;
//! runs stopped before their plan ended measured less and are left out.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::changepoint::{self, Options};
use crate::report::{Report, StepReport, TargetSource};

/// The schema identifier of the history analysis.
pub const SCHEMA: &str = "convoy.history/v1";

/// A figure followed over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median latency, ms.
    P50Ms,
    /// 95th percentile latency, ms.
    P95Ms,
    /// 99th percentile latency, ms.
    P99Ms,
    /// Failed requests / requests.
    ErrorRate,
    /// Requests per second.
    Rps,
}

impl Metric {
    /// Every metric, in the order they are shown.
    pub const ALL: [Metric; 5] = [
        Metric::P50Ms,
        Metric::P95Ms,
        Metric::P99Ms,
        Metric::ErrorRate,
        Metric::Rps,
    ];

    /// The name the outputs use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50Ms => "p50",
            Metric::P95Ms => "p95",
            Metric::P99Ms => "p99",
            Metric::ErrorRate => "error rate",
            Metric::Rps => "throughput",
        }
    }

    /// Whether a rise is a change for the worse.
    pub fn worse_when_up(self) -> bool {
        !matches!(self, Metric::Rps)
    }

    /// The figure in a step's report; `None` when the step has none (no
    /// timed response means no latency).
    fn of(self, step: &StepReport) -> Option<f64> {
        let v = match self {
            Metric::P50Ms => step.has_latency().then_some(step.latency_ms.p50)?,
            Metric::P95Ms => step.has_latency().then_some(step.latency_ms.p95)?,
            Metric::P99Ms => step.has_latency().then_some(step.latency_ms.p99)?,
            Metric::ErrorRate => (step.requests > 0).then_some(step.error_rate)?,
            Metric::Rps => step.rps,
        };
        v.is_finite().then_some(v)
    }
}

/// Which way a change went for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Slower, more errors, or less throughput.
    Regression,
    /// Faster, fewer errors, or more throughput.
    Improvement,
}

/// The analysis of a history directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The method's settings.
    pub method: Method,
    /// Runs read.
    pub runs: usize,
    /// Runs left out because they were stopped early (partial).
    pub partial_runs: usize,
    /// One entry per comparable series, largest first.
    pub series: Vec<Series>,
}

/// The change-point method and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// Always `e_divisive_t_test`.
    pub name: String,
    /// Largest p-value a change may have.
    pub max_p_value: f64,
    /// Points per search window.
    pub window: usize,
    /// Fewest runs a level must hold.
    pub min_run: usize,
    /// Smallest relative change kept.
    pub min_magnitude: f64,
}

/// Runs of one command, scenario set and profile against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// `run`, `smoke`, `bench`.
    pub command: String,
    /// The scenario set, if any.
    pub scenario: Option<String>,
    /// The load profile, if any.
    pub profile: Option<String>,
    /// The target: its URL, or `builtin` for the reference API.
    pub target: String,
    /// Runs in the series.
    pub runs: usize,
    /// The newest run's id.
    pub last_run: String,
    /// Change points, per step and metric, oldest first.
    pub changes: Vec<Change>,
}

/// One change point of one step's figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The step (`overall` for the whole run of a multi-step scenario).
    pub step: String,
    /// The figure.
    pub metric: Metric,
    /// The first run at the new level.
    pub run_id: String,
    /// When it started.
    #[serde(with = "crate::engine::rfc3339")]
    pub started_at: SystemTime,
    /// The commit or version it tested, when recorded.
    pub commit: Option<String>,
    /// Runs at the new level, this one included, up to the next change or
    /// the newest run.
    pub runs_since: usize,
    /// Mean of the level before.
    pub before: f64,
    /// Mean of the level after.
    pub after: f64,
    /// `after / before - 1`; `null` when the level before was 0.
    pub magnitude: Option<f64>,
    /// The t-test's p-value: lower is more certain.
    pub p_value: f64,
    /// Worse or better for the user.
    pub direction: Direction,
}

/// The series a run belongs to.
type Key = (String, Option<String>, Option<String>, String);

fn key(r: &Report) -> Key {
    let target = if r.target_source == Some(TargetSource::Builtin) {
        "builtin".to_string()
    } else {
        r.target.clone()
    };
    (
        r.command.clone(),
        r.scenario.clone(),
        r.profile.clone(),
        target,
    )
}

/// The steps followed in a run: each step, plus the whole run when it has
/// several.
fn steps(r: &Report) -> Vec<&StepReport> {
    let mut out: Vec<&StepReport> = r.steps.iter().collect();
    if out.len() != 1 {
        out.push(&r.overall);
    }
    out
}

/// Analyses `runs` (oldest first, as [`crate::report::history::load`]
/// returns them).
pub fn analyse(runs: &[Report], options: &Options) -> Analysis {
    let mut groups: BTreeMap<Key, Vec<&Report>> = BTreeMap::new();
    let mut partial_runs = 0;
    for r in runs {
        if r.partial {
            partial_runs += 1;
        } else {
            groups.entry(key(r)).or_default().push(r);
        }
    }
    let mut series: Vec<Series> = groups
        .into_iter()
        .map(|((command, scenario, profile, target), runs)| Series {
            command,
            scenario,
            profile,
            target,
            runs: runs.len(),
            last_run: runs.last().map(|r| r.run_id.clone()).unwrap_or_default(),
            changes: changes(&runs, options),
        })
        .collect();
    series.sort_by_key(|s| std::cmp::Reverse(s.runs));
    Analysis {
        schema: SCHEMA.to_string(),
        method: Method {
            name: "e_divisive_t_test".to_string(),
            max_p_value: options.max_p_value,
            window: options.window,
            min_run: options.min_run,
            min_magnitude: options.min_magnitude,
        },
        runs: runs.len(),
        partial_runs,
        series,
    }
}

/// The change points of every step's figures over one series' runs.
fn changes(runs: &[&Report], options: &Options) -> Vec<Change> {
    // Step names in first-seen order, so output follows the scenario.
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        for s in steps(r) {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        for metric in Metric::ALL {
            let points: Vec<(&Report, f64)> = runs
                .iter()
                .filter_map(|r| {
                    let step = steps(r).into_iter().find(|s| s.name == name)?;
                    Some((*r, metric.of(step)?))
                })
                .collect();
            let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
            let found = changepoint::detect(&values, options);
            for (k, cp) in found.iter().enumerate() {
                let next = found.get(k + 1).map_or(points.len(), |n| n.index);
                let run = points[cp.index].0;
                let up = cp.mean_after > cp.mean_before;
                out.push(Change {
                    step: name.to_string(),
                    metric,
                    run_id: run.run_id.clone(),
                    started_at: run.started_at,
                    commit: run.commit.clone(),
                    runs_since: next - cp.index,
                    before: cp.mean_before,
                    after: cp.mean_after,
                    magnitude: cp.magnitude,
                    p_value: cp.p_value,
                    direction: if up == metric.worse_when_up() {
                        Direction::Regression
                    } else {
                        Direction::Improvement
                    },
                });
            }
        }
    }
    out
}
