//! Regression detection: a run compared with a baseline, step by step, with
//! the run-to-run noise of earlier runs taken into account.
//!
//! # The rule
//!
//! For the overall figures and every step (and journey) present in both
//! reports, five figures are compared: p50, p95 and p99 latency, error rate
//! and throughput (rps). For each, `delta = current − baseline` and
//! `relative = delta / baseline` (for error rates the divisor is at least
//! [`ERROR_RATE_FLOOR`], so 0 % → 0.05 % is a change of +5 % of 1 %, not an
//! infinite one). A change is a **regression** when all three hold:
//!
//! 1. it goes the bad way (latency or error rate up, throughput down);
//! 2. it is beyond the tolerance: `|relative| > tolerance`;
//! 3. it is beyond the noise: `|delta| > noise`, where
//!    `noise = t × √2 × σ` and `σ` estimates one run's standard deviation
//!    of the same figure over the history:
//!    * normally `1.4826 × MAD` (median absolute deviation), which is
//!      robust: a single bad night barely moves it;
//!    * but when more than half the runs lie within one resolution step of
//!      the median (MAD at or below the [resolution](resolution)), the MAD
//!      says nothing about the runs that differ: short runs' percentiles
//!      often land on the very same microsecond. Then `σ = 1.2533 × mean
//!      absolute deviation` (Iglewicz and Hoaglin's fallback for a zero
//!      MAD), so the runs that did move set the band;
//!    * at least the second-largest deviation from the median over 2:
//!      latency on a shared machine has heavy tails (most runs tight, a
//!      few nights far off) that the MAD does not see, while one wild
//!      night alone still cannot widen the band;
//!    * and never less than one resolution step of the figure: the width
//!      of an HdrHistogram bucket at that latency (1 µs below 2 ms, then
//!      1/1,024 to 1/2,048 of the value), one request's share of the error
//!      rate, one request's worth of throughput.
//!
//!    `√2` turns `σ` into the deviation of the difference of two runs;
//!    `t` of those makes a false alarm on pure noise rare: `t` is
//!    Student's t for `n − 1` degrees of freedom (`n` runs in the
//!    history) leaving [`NOISE_P_VALUE`] (0.27 %, about 1 in 370 per
//!    figure) in its tails, 3 for a long history of normal noise, 3.6 for
//!    20 runs and 6.6 for 5, because a `σ` estimated from a handful of
//!    runs is itself uncertain and a fixed 3 cried wolf on short histories.
//!    The band is never narrower than the sampling noise within the two
//!    runs (below): a history of quiet nights cannot vouch for a figure
//!    the runs themselves measured loosely.
//!
//! The same change the good way is an **improvement**. A change beyond the
//! tolerance but within the noise is reported as **noise**, not flagged. A
//! percentile that either run has too few samples for (p95 needs 20, p99
//! 100, as the reports' tables say) is **no data**: it is that run's few
//! slowest requests, not a percentile.
//!
//! The history is the saved reports of earlier runs (see [`super::history`]),
//! filtered to those comparable with the current run: same command, scenario
//! and profile, not partial, not the current run itself. The most recent
//! [`HISTORY_WINDOW`] of them are used, plus the baseline when it is not one
//! of them.
//!
//! # Too little history: the noise within the two runs
//!
//! With fewer than [`MIN_HISTORY`] values for a figure, its run-to-run
//! noise cannot be estimated, and a tolerance alone cries wolf: two
//! identical short runs differ by more than 10 % in many a p99. Then the
//! band is the sampling noise *within* the two runs, from what each report
//! stores ([`within_run_band`]), `noise = 3 × √(σ_b² + σ_c²)`:
//!
//! * a percentile `q` of `n` samples: its rank is uncertain by
//!   `√(n·q·(1−q))` samples (the binomial spread of how many samples fall
//!   below it), so `σ` is half the distance between the run's own
//!   latency histogram's values at `q ± √(q·(1−q)/n)`; few samples or a
//!   long tail make it wide, as they should;
//! * an error rate: the binomial `σ² = p·(1−p)/n` with `p` the two runs'
//!   pooled rate;
//! * throughput: counting noise, `σ = rps / √requests`;
//!
//! each at least the figure's resolution. A change for the worse beyond the
//! tolerance and this band is **unconfirmed**, not a regression: listed,
//! never failed. Within-run noise cannot see what changes between runs
//! (the machine's load, a neighbour's build, a cold cache), and measured
//! on a busy 2-core machine, identical back-to-back runs differ by far more
//! than it (p50 +55 %, p95 six-fold, throughput halved: see
//! `ci/bench/history.sh`); only the history can tell that from a
//! regression. Each row says where its noise came from (`noise_source`),
//! and the summary says "noise within the runs" and how many changes are
//! unconfirmed (and names a history directory that was given but does not
//! exist, so that a mistyped path does not pass for "no history yet").
//!
//! # Is the baseline comparable?
//!
//! A baseline of another profile, scenario set or target answers a
//! different question. [`mismatches`] lists what differs, on the fields
//! merging insists on (see [`mod@super::merge`]: command, scenario, profile,
//! target with loopback ports ignored, steps) plus the load model and the
//! shard; the comparison carries them so every format warns, and `convoy
//! compare --require-comparable` refuses such a pair.

use serde::{Deserialize, Serialize};

use super::{Report, StepReport};
use crate::engine::StepKind;

mod mismatch;
mod noise;

pub use mismatch::{Mismatch, mismatches};
use noise::resolution;
pub use noise::{history_sigmas, latency_resolution_ms, noise_band, within_run_band};

/// Default tolerance: 10 %.
pub const DEFAULT_TOLERANCE: f64 = 0.10;
/// At most this many of the most recent comparable runs make the history.
pub const HISTORY_WINDOW: usize = 20;
/// Fewer values than this and the noise of a figure is unknown.
pub const MIN_HISTORY: usize = 5;
/// Error rates below this are taken as this for the relative change.
pub const ERROR_RATE_FLOOR: f64 = 0.01;
/// How many standard deviations of the sampling noise within two runs
/// count as beyond the noise.
pub const NOISE_SIGMAS: f64 = 3.0;
/// The chance a quiet run falls beyond the history's noise band: that of
/// a normal value beyond ±3σ. The band's width in σ is Student's t for
/// this chance ([`noise::history_sigmas`]), as σ is estimated from the
/// history's few runs.
pub const NOISE_P_VALUE: f64 = 0.0027;

/// The figures compared, for every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Median latency, ms.
    P50,
    /// 95th percentile latency, ms.
    P95,
    /// 99th percentile latency, ms.
    P99,
    /// Failed over completed requests.
    ErrorRate,
    /// Requests per second.
    Rps,
}

impl Figure {
    /// Every figure, in table order.
    pub const ALL: [Figure; 5] = [
        Figure::P50,
        Figure::P95,
        Figure::P99,
        Figure::ErrorRate,
        Figure::Rps,
    ];

    /// The name used in tables.
    pub fn name(self) -> &'static str {
        match self {
            Figure::P50 => "p50",
            Figure::P95 => "p95",
            Figure::P99 => "p99",
            Figure::ErrorRate => "error_rate",
            Figure::Rps => "rps",
        }
    }

    /// The quantile of a latency percentile (0.95 for p95); `None` for
    /// the error rate and throughput.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Figure::P50 => Some(0.50),
            Figure::P95 => Some(0.95),
            Figure::P99 => Some(0.99),
            Figure::ErrorRate | Figure::Rps => None,
        }
    }

    /// Whether a larger value is worse.
    pub fn higher_is_worse(self) -> bool {
        !matches!(self, Figure::Rps)
    }

    /// The value of this figure in `step`; `None` for a latency without
    /// samples.
    pub fn of(self, step: &StepReport) -> Option<f64> {
        let has_latency = !step.histograms.latency.is_empty();
        match self {
            Figure::P50 => has_latency.then_some(step.latency_ms.p50),
            Figure::P95 => has_latency.then_some(step.latency_ms.p95),
            Figure::P99 => has_latency.then_some(step.latency_ms.p99),
            Figure::ErrorRate => Some(step.error_rate),
            Figure::Rps => Some(step.rps),
        }
    }

    /// Formats a value: `312.4ms`, `1.25%`, `98.1/s`.
    pub fn format(self, v: f64) -> String {
        match self {
            Figure::P50 | Figure::P95 | Figure::P99 => super::format::millis(v),
            Figure::ErrorRate => super::format::percent(v),
            Figure::Rps => super::format::per_second(v),
        }
    }

    /// Formats a signed change: `+12.5ms`, `-0.2%` (percentage points),
    /// `-3.1/s`.
    pub fn format_delta(self, d: f64) -> String {
        let sign = if d < 0.0 { "-" } else { "+" };
        format!("{sign}{}", self.format(d.abs()))
    }
}

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Within the tolerance.
    Unchanged,
    /// Beyond the tolerance but within the run-to-run noise.
    Noise,
    /// Worse, beyond both tolerance and noise.
    Regression,
    /// Better, beyond both tolerance and noise.
    Improvement,
    /// Worse beyond the tolerance and the sampling noise within the two
    /// runs, with too little history to know the run-to-run noise: it may
    /// be the machine. Listed, not failed.
    Unconfirmed,
    /// The step is new in the current run.
    Added,
    /// The step is gone from the current run.
    Removed,
    /// No latency samples on one side.
    NoData,
}

impl Change {
    /// A word for tables.
    pub fn label(self) -> &'static str {
        match self {
            Change::Unchanged => "ok",
            Change::Noise => "noise",
            Change::Regression => "REGRESSION",
            Change::Improvement => "improved",
            Change::Unconfirmed => "unconfirmed",
            Change::Added => "new step",
            Change::Removed => "removed",
            Change::NoData => "no data",
        }
    }
}

/// One figure of one step, baseline against current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureDelta {
    /// The step (`overall` for the whole run).
    pub step: String,
    /// `request` or `journey`.
    pub kind: StepKind,
    /// The figure.
    pub figure: Figure,
    /// Its value in the baseline.
    pub baseline: Option<f64>,
    /// Its value in the current run.
    pub current: Option<f64>,
    /// `current − baseline`.
    pub delta: Option<f64>,
    /// `delta / baseline` (see the module docs for error rates).
    pub relative: Option<f64>,
    /// The noise band from the history, in the figure's unit; `None` when
    /// the history is too short.
    pub noise: Option<f64>,
    /// How many history values the noise was estimated from.
    pub history_values: usize,
    /// Where the noise band came from: the history, or (too little of it)
    /// the sampling noise within the two runs. Absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_source: Option<NoiseSource>,
    /// The verdict.
    pub change: Change,
}

/// Where a noise band came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseSource {
    /// The spread of the figure over earlier runs.
    History,
    /// The sampling noise within the baseline and the current run (too
    /// little history).
    WithinRun,
}

/// A run compared with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's run id.
    pub baseline_run_id: String,
    /// The current run's id.
    pub current_run_id: String,
    /// The tolerance used, as a fraction.
    pub tolerance: f64,
    /// Earlier runs the noise was estimated from.
    pub history_runs: usize,
    /// A history directory that was asked for but does not exist (so the
    /// noise is unknown for that reason, not because no run was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_history: Option<String>,
    /// What makes the baseline measure something else than the current
    /// run (empty when they are comparable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    /// Every figure of every step.
    pub rows: Vec<FigureDelta>,
}

impl Comparison {
    /// The rows flagged as regressions.
    pub fn regressions(&self) -> impl Iterator<Item = &FigureDelta> {
        self.rows.iter().filter(|r| r.change == Change::Regression)
    }

    /// Whether any figure regressed.
    pub fn has_regressions(&self) -> bool {
        self.regressions().next().is_some()
    }

    /// Counts rows with `change`.
    pub fn count(&self, change: Change) -> usize {
        self.rows.iter().filter(|r| r.change == change).count()
    }

    /// One line: `2 regressions, 1 improvement (tolerance 10%, noise from 8
    /// earlier runs)`.
    pub fn summary(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let regressions = self.count(Change::Regression);
        let mut parts = vec![if regressions == 0 {
            "no regressions".to_string()
        } else {
            plural(regressions, "regression", "regressions")
        }];
        let improvements = self.count(Change::Improvement);
        if improvements > 0 {
            parts.push(plural(improvements, "improvement", "improvements"));
        }
        let noise = self.count(Change::Noise);
        if noise > 0 {
            parts.push(format!("{noise} within noise"));
        }
        let unconfirmed = self.count(Change::Unconfirmed);
        if unconfirmed > 0 {
            parts.push(format!(
                "{unconfirmed} unconfirmed (worse beyond the tolerance, too little history to tell from run-to-run noise)"
            ));
        }
        let within = self
            .rows
            .iter()
            .any(|r| r.noise_source == Some(NoiseSource::WithinRun));
        let from_history = self
            .rows
            .iter()
            .any(|r| r.noise_source == Some(NoiseSource::History));
        let history = if let (0, Some(dir)) = (self.history_runs, &self.missing_history) {
            format!("no history at {dir}: directory not found, noise within the runs")
        } else if self.history_runs == 0 {
            "no history: noise within the runs".to_string()
        } else if within && !from_history {
            format!(
                "too little history ({}, {MIN_HISTORY} needed): noise within the runs",
                plural(self.history_runs, "earlier run", "earlier runs")
            )
        } else {
            format!(
                "noise from {}",
                plural(self.history_runs, "earlier run", "earlier runs")
            )
        };
        format!(
            "{} (tolerance {}, {history})",
            parts.join(", "),
            super::format::percent(self.tolerance)
        )
    }

    /// The warning about an incomparable baseline, one line, `None` when
    /// it is comparable: `the baseline is not comparable: profile differs:
    /// baseline "light", this run "heavy"`.
    pub fn mismatch_warning(&self) -> Option<String> {
        if self.mismatches.is_empty() {
            return None;
        }
        let what: Vec<String> = self.mismatches.iter().map(|m| m.to_string()).collect();
        Some(format!(
            "the baseline is not comparable with this run: {}",
            what.join("; ")
        ))
    }
}

/// Parses a tolerance: `10%` or a fraction such as `0.1`.
pub fn parse_tolerance(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && (scale == 100.0 || v <= 1.0) => Ok(v / scale),
        Ok(v) if v.is_finite() && v > 1.0 => Err(format!(
            "a tolerance is a percentage (10%) or a fraction (0.1): did you mean {v}%?"
        )),
        _ => Err(format!(
            "invalid tolerance {s:?}: expected a percentage such as 10% or a fraction such as 0.1"
        )),
    }
}

/// Compares `current` with `baseline`, using `history` (earlier runs, any
/// order, possibly including runs that are not comparable: they are
/// filtered out) for the noise. `tolerance` is a fraction (0.10 for 10 %).
pub fn compare(
    baseline: &Report,
    current: &Report,
    history: &[Report],
    tolerance: f64,
) -> Comparison {
    let mut runs: Vec<&Report> = history
        .iter()
        .filter(|h| comparable(h, current) && h.run_id != current.run_id)
        .collect();
    runs.sort_by_key(|h| h.started_at);
    let runs = &runs[runs.len().saturating_sub(HISTORY_WINDOW)..];
    let mut samples: Vec<&Report> = runs.to_vec();
    if !runs.iter().any(|h| h.run_id == baseline.run_id) {
        samples.push(baseline);
    }

    let mut rows = Vec::new();
    let current_rows = std::iter::once((Row::Overall, &current.overall))
        .chain(current.steps.iter().map(|s| (Row::Step(s), s)));
    for (row, step) in current_rows {
        let base = find(baseline, row);
        for figure in Figure::ALL {
            let history: Vec<f64> = samples
                .iter()
                .filter_map(|r| find(r, row).and_then(|s| figure.of(s)))
                .collect();
            rows.push(delta(figure, step, base, &history, tolerance));
        }
    }
    for gone in baseline
        .steps
        .iter()
        .filter(|s| find(current, Row::Step(s)).is_none())
    {
        for figure in Figure::ALL {
            rows.push(FigureDelta {
                step: gone.name.clone(),
                kind: gone.kind,
                figure,
                baseline: figure.of(gone),
                current: None,
                delta: None,
                relative: None,
                noise: None,
                history_values: 0,
                noise_source: None,
                change: Change::Removed,
            });
        }
    }
    Comparison {
        baseline_run_id: baseline.run_id.clone(),
        current_run_id: current.run_id.clone(),
        tolerance,
        history_runs: runs.len(),
        missing_history: None,
        mismatches: mismatches(baseline, current),
        rows,
    }
}

/// Whether `run` measured the same thing as `current`.
fn comparable(run: &Report, current: &Report) -> bool {
    !run.partial
        && run.command == current.command
        && run.scenario == current.scenario
        && run.profile == current.profile
}

/// Where a row comes from: the overall figures or a named step.
#[derive(Clone, Copy)]
enum Row<'a> {
    Overall,
    Step(&'a StepReport),
}

/// The same row in another report, matched by name and kind.
fn find<'a>(report: &'a Report, row: Row<'_>) -> Option<&'a StepReport> {
    match row {
        Row::Overall => Some(&report.overall),
        Row::Step(step) => report
            .steps
            .iter()
            .find(|s| s.name == step.name && s.kind == step.kind),
    }
}

fn delta(
    figure: Figure,
    step: &StepReport,
    base: Option<&StepReport>,
    history: &[f64],
    tolerance: f64,
) -> FigureDelta {
    let current = figure.of(step);
    let baseline = base.and_then(|b| figure.of(b));
    // The history's band, never narrower than the sampling noise within
    // the two runs: a history of quiet nights says nothing about a run
    // too short to measure its own p99 well.
    let within = base.and_then(|b| within_run_band(figure, b, step));
    let (noise, noise_source) = match noise_band(history, resolution(figure, step, history)) {
        Some(n) => (
            Some(within.map_or(n, |w| n.max(w))),
            Some(NoiseSource::History),
        ),
        None => match within {
            Some(n) => (Some(n), Some(NoiseSource::WithinRun)),
            None => (None, None),
        },
    };
    let mut row = FigureDelta {
        step: step.name.clone(),
        kind: step.kind,
        figure,
        baseline,
        current,
        delta: None,
        relative: None,
        noise,
        history_values: history.len(),
        noise_source,
        change: Change::NoData,
    };
    if base.is_none() {
        row.change = Change::Added;
        row.noise = None;
        row.noise_source = None;
        return row;
    }
    let (Some(b), Some(c)) = (baseline, current) else {
        return row;
    };
    // A percentile either run lacks the samples for (p95 needs 20, p99
    // 100) is its slowest few requests, not a percentile: nothing to judge.
    if let Some(q) = figure.quantile()
        && base
            .into_iter()
            .chain([step])
            .any(|s| s.histograms.latency.count() < super::text::samples_for(q))
    {
        row.delta = Some(c - b);
        return row;
    }
    let d = c - b;
    let divisor = match figure {
        Figure::ErrorRate => b.max(ERROR_RATE_FLOOR),
        _ => b,
    };
    let relative = if divisor > 0.0 {
        d / divisor
    } else if d == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(d)
    };
    row.delta = Some(d);
    row.relative = relative.is_finite().then_some(relative);
    let worse = if figure.higher_is_worse() {
        d > 0.0
    } else {
        d < 0.0
    };
    row.change = if relative.abs() <= tolerance {
        Change::Unchanged
    } else if row.noise.is_some_and(|n| d.abs() <= n) {
        Change::Noise
    } else if worse && row.noise_source == Some(NoiseSource::WithinRun) {
        Change::Unconfirmed
    } else if worse {
        Change::Regression
    } else {
        Change::Improvement
    };
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_are_percentages_or_fractions() {
        assert_eq!(parse_tolerance("10%"), Ok(0.10));
        assert_eq!(parse_tolerance("0.25"), Ok(0.25));
        assert!(parse_tolerance("10").unwrap_err().contains("10%"));
        assert!(parse_tolerance("-1%").is_err());
        assert!(parse_tolerance("lots").is_err());
    }

    #[test]
    fn deltas_are_signed_in_the_figures_unit() {
        assert_eq!(Figure::P95.format_delta(12.5), "+12.50ms");
        assert_eq!(Figure::Rps.format_delta(-3.06), "-3.1/s");
        assert_eq!(Figure::ErrorRate.format_delta(0.002), "+0.2%");
    }
}
