//! Stored runs grouped into comparable series, and the change points of
//! each step's figures over them: the `convoy.history/v1` document.
//!
//! Runs are comparable when they ran the same command, scenario set and
//! load profile against the same target (the built-in reference API counts
//! as one target whatever port it was given, and so does any target on
//! loopback). Within a series each step's
//! p50, p95 and p99 latency, error rate and throughput are analysed apart;
//! runs stopped before their plan ended measured less and are left out.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::changepoint::{self, Options};
use crate::report::compare::Figure;
use crate::report::trend::Trend;
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

    /// The same figure as a comparison names it.
    pub fn figure(self) -> Figure {
        match self {
            Metric::P50Ms => Figure::P50,
            Metric::P95Ms => Figure::P95,
            Metric::P99Ms => Figure::P99,
            Metric::ErrorRate => Figure::ErrorRate,
            Metric::Rps => Figure::Rps,
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
    /// The nightly gate's verdict, when one was asked for
    /// (`--fail-on-change-since K`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// One entry per comparable series, largest first.
    pub series: Vec<Series>,
}

/// The nightly gate: fails when a regression was first shown by one of the
/// newest runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// K: a regression first shown by one of the newest K runs of its
    /// series fails the gate.
    pub since: usize,
    /// Whether it failed.
    pub failed: bool,
    /// The regressions that failed it (copies of entries of `changes`).
    pub regressions: Vec<GateHit>,
}

/// One regression that failed the gate, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateHit {
    /// The series' title (command, scenario, profile, target).
    pub series: String,
    /// The change.
    pub change: Change,
}

impl Analysis {
    /// Applies the nightly gate: fails when a regression (of at least
    /// the method's minimum change) was first shown by one of the newest
    /// `since` runs of its series.
    pub fn apply_gate(&mut self, since: usize) {
        let regressions: Vec<GateHit> = self
            .series
            .iter()
            .flat_map(|s| {
                s.changes
                    .iter()
                    .filter(move |c| {
                        c.direction == Direction::Regression
                            && c.flagged_runs_ago.is_some_and(|ago| ago < since)
                    })
                    .map(move |c| GateHit {
                        series: s.title(),
                        change: c.clone(),
                    })
            })
            .collect();
        self.gate = Some(Gate {
            since,
            failed: !regressions.is_empty(),
            regressions,
        });
    }
}

/// The change-point method and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// `e_divisive` and the test that judges each split:
    /// `e_divisive_rank_sum` (the default), `e_divisive_robust_shift` or
    /// `e_divisive_welch`.
    pub name: String,
    /// Largest p-value a change may have.
    pub max_p_value: f64,
    /// Points per search window.
    pub window: usize,
    /// Fewest runs a level must hold.
    pub min_run: usize,
    /// Smallest relative change kept.
    pub min_magnitude: f64,
    /// Smallest move kept, in robust standard deviations of the runs.
    pub min_sigmas: f64,
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
    /// The series of each figure that changed, and of each step's p95,
    /// for the HTML output (not part of the JSON).
    #[serde(skip)]
    pub charts: Vec<Trend>,
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
    /// The test's p-value, corrected for the search over split points:
    /// lower is more certain.
    pub p_value: f64,
    /// The move in robust standard deviations of the runs around their
    /// levels; `null` when they do not vary around their levels at all.
    pub sigmas: Option<f64>,
    /// How many runs ago the analysis first showed this change: 0 when
    /// the newest run made it visible (a change is confirmed once its new
    /// level has held `min_run` runs); `null` when it was shown more than
    /// a window ago.
    pub flagged_runs_ago: Option<usize>,
    /// Worse or better for the user.
    pub direction: Direction,
}

impl Series {
    /// `run order-lifecycle profile light against builtin`.
    pub fn title(&self) -> String {
        let mut t = self.command.clone();
        if let Some(sc) = &self.scenario {
            t.push(' ');
            t.push_str(sc);
        }
        if let Some(p) = &self.profile {
            t.push_str(" profile ");
            t.push_str(p);
        }
        t.push_str(" against ");
        t.push_str(&self.target);
        t
    }
}

/// Whether two runs belong to the same series (see the module docs).
pub fn same_series(a: &Report, b: &Report) -> bool {
    key(a) == key(b)
}

/// The series a run belongs to.
type Key = (String, Option<String>, Option<String>, String);

fn key(r: &Report) -> Key {
    let target = if r.target_source == Some(TargetSource::Builtin) {
        "builtin".to_string()
    } else {
        // A target on loopback is the same whatever port it was given, as
        // merging and comparing take it.
        crate::report::merge::target_identity(&r.target)
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
        .map(|((command, scenario, profile, target), runs)| {
            let (changes, charts) = changes(&runs, options);
            Series {
                command,
                scenario,
                profile,
                target,
                runs: runs.len(),
                last_run: runs.last().map(|r| r.run_id.clone()).unwrap_or_default(),
                changes,
                charts,
            }
        })
        .collect();
    series.sort_by_key(|s| std::cmp::Reverse(s.runs));
    Analysis {
        schema: SCHEMA.to_string(),
        method: Method {
            name: format!("e_divisive_{}", options.test.name()),
            max_p_value: options.max_p_value,
            window: options.window,
            min_run: options.min_run,
            min_magnitude: options.min_magnitude,
            min_sigmas: options.min_sigmas,
        },
        runs: runs.len(),
        partial_runs,
        gate: None,
        series,
    }
}

/// The change points of every step's figures over one series' runs.
fn changes(runs: &[&Report], options: &Options) -> (Vec<Change>, Vec<Trend>) {
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
    let mut charts = Vec::new();
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
            // Charted: what changed, and every step's p95 for context.
            if values.len() >= 2 && (!found.is_empty() || metric == Metric::P95Ms) {
                let newest = found.last().filter(|c| {
                    (c.after > c.before) == metric.worse_when_up()
                        && changepoint::flagged_runs_ago(&values, c, options, 1) == Some(0)
                });
                charts.push(Trend {
                    step: name.to_string(),
                    figure: metric.figure(),
                    run_ids: points.iter().map(|(r, _)| r.run_id.clone()).collect(),
                    changes: found.iter().map(|c| c.index).collect(),
                    regressed: newest.is_some(),
                    values: values.clone(),
                });
            }
            for (k, cp) in found.iter().enumerate() {
                let next = found.get(k + 1).map_or(points.len(), |n| n.index);
                let run = points[cp.index].0;
                let up = cp.after > cp.before;
                out.push(Change {
                    step: name.to_string(),
                    metric,
                    run_id: run.run_id.clone(),
                    started_at: run.started_at,
                    commit: run.commit.clone(),
                    runs_since: next - cp.index,
                    before: cp.before,
                    after: cp.after,
                    magnitude: cp.magnitude,
                    p_value: cp.p_value,
                    sigmas: cp.sigmas.is_finite().then_some(cp.sigmas),
                    flagged_runs_ago: changepoint::flagged_runs_ago(
                        &values,
                        cp,
                        options,
                        options.window,
                    ),
                    direction: if up == metric.worse_when_up() {
                        Direction::Regression
                    } else {
                        Direction::Improvement
                    },
                });
            }
        }
    }
    (out, charts)
}
