//! Change points in a series of numbers: where its level moved and stayed.
//!
//! The method is E-Divisive means (Matteson & James, 2014) with the
//! permutation test replaced by a deterministic two-sample test, as Apache
//! Otava (formerly hunter) does with a t-test, so the same series always
//! gives the same answer:
//!
//! 1. The series is cut into windows of [`Options::window`] points that
//!    overlap by half. In each window, divisive bisection: for every
//!    segment between the change points known so far, the split that
//!    maximises the energy statistic Q̂ (the mean distance across the split
//!    minus the mean distances within each side, weighted by the sides'
//!    sizes) is the candidate; the strongest candidate is kept when the
//!    [`LevelTest`] between its two sides, corrected for the search
//!    (below), gives a p-value at most [`Options::max_p_value`], and
//!    bisection goes on; otherwise the window is done.
//! 2. The candidates of all windows are merged over the whole series: each
//!    is tested again between its neighbouring change points, and the
//!    weakest (highest p-value, then smallest effect) is dropped while any
//!    fails the threshold, the noise test, [`Options::min_magnitude`] or
//!    the minimum level length, its neighbours then retested.
//!
//! # Why a rank test
//!
//! Run-to-run noise on a shared machine is not normal: most nights sit
//! within a few per cent, and now and then a stretch of nights runs 20 to
//! 100 % slower because something else had the CPU (recorded in
//! `ci/bench/history-noise.csv`). A test that assumes normal noise
//! misjudges such a series either way: Welch's t-test (the first method)
//! lets a few wild nights inflate its variance and missed even 50 % shifts
//! of p95 (11 % found), while a test on medians scaled by the median
//! absolute deviation (`LevelTest::Robust`) takes a cluster of slow nights
//! for a shift and raised 1.5 to 3 false alarms per 100 quiet nights. The
//! Mann–Whitney rank-sum test asks only whether the nights after a split
//! tend to rank above the nights before it, so its p-value is exact
//! whatever the noise's shape: on the recorded noise it keeps false alarms
//! near 0.15 per 100 quiet nights while finding 97.5–99.5 % of 50 % shifts
//! of p50, p95 and throughput (`ci/bench/history.sh`; the figures and the
//! other tests side by side in `ci/bench/README.md`).
//!
//! # Why the p-value is corrected, and the noise test
//!
//! The test judges the split the search picked as the best of all the
//! splits of its segment, so its plain p-value is optimistic: on a quiet
//! series the best of 45 splits looks far less likely than any one split
//! does. The p-value kept is therefore Šidák-corrected for the number `m`
//! of splits the search could have picked in that segment,
//! `1 − (1 − p)^m`, the chance that *some* split looks this strong when
//! nothing changed (exact for independent splits, conservative for the
//! overlapping ones a search compares). It is also the larger of the
//! test's p-value with and without each side's one point farthest towards
//! the other, so that no change rests on a single night (two slow nights
//! among four are not a level of four). Both make the p-value kept
//! conservative, so the threshold is 0.2 rather than Otava's 0.001: on the
//! recorded noise that is 0.11 to 0.15 false alarms per 100 quiet nights
//! per figure, and a nightly gate watches dozens of figures whose false
//! alarms add up; 0.5 would find 41 % of 10 % p50 shifts instead of 28 %
//! at 0.44 to 0.60.
//!
//! A change must also move the level by at least [`Options::min_sigmas`]
//! times the series' own run-to-run noise, estimated robustly as
//! `1.4826 × MAD` of each point from its own level's median (the mean
//! absolute deviation × 1.2533 when the MAD is 0 because most points tie):
//! a move smaller than one night's usual wobble is not worth a page. Both
//! are judged on the logarithm of the values when they are all positive:
//! noise in latency and throughput grows with the level.
//!
//! A level must hold for [`Options::min_run`] points to count: a single
//! slow night, or a two-night blip that returns, is noise, not a change.
//! The price is that a change is confirmed only `min_run` points after it
//! landed (it is then dated to the point where it landed).
//!
//! Pure arithmetic: no I/O, no randomness, no imports from the harness.

use crate::stats::{self, median};

/// How change points are searched for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// A change is kept when its test's two-sided p-value, corrected for
    /// the search, is at most this (see the module docs for why 0.2).
    pub max_p_value: f64,
    /// Points per search window; windows overlap by half (Otava's default:
    /// 50). Bounds the cost and lets an old change not mask a new one.
    pub window: usize,
    /// Fewest points a level must hold on each side of a change (4: two
    /// slow nights and an ordinary one are not a level).
    pub min_run: usize,
    /// Changes smaller than this relative move (0.05 = 5 %) are dropped.
    pub min_magnitude: f64,
    /// Changes that move the level by less than this many times the
    /// series' robust run-to-run noise (see the module docs) are dropped.
    pub min_sigmas: f64,
    /// How the two sides of a split are judged.
    pub test: LevelTest,
}

/// The test that judges whether the two sides of a split sit at different
/// levels (see the module docs for why the default is what it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelTest {
    /// Mann–Whitney rank-sum test, exact in the tail (the default).
    Ranks,
    /// Hodges–Lehmann shift over the pooled robust deviation.
    Robust,
    /// Welch's t-test on the values themselves (convoy's first method).
    Welch,
}

impl LevelTest {
    /// Every test, default first.
    pub const ALL: [LevelTest; 3] = [LevelTest::Ranks, LevelTest::Robust, LevelTest::Welch];

    /// The name on the command line and in `convoy.history/v1`'s method.
    pub fn name(self) -> &'static str {
        match self {
            LevelTest::Ranks => "rank_sum",
            LevelTest::Robust => "robust_shift",
            LevelTest::Welch => "welch",
        }
    }

    /// The test named `name`.
    pub fn from_name(name: &str) -> Option<LevelTest> {
        LevelTest::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The p-value that `a` and `b` sit at the same level, the larger of
    /// the test on them and on them less each side's one point farthest
    /// towards the other: a change must not rest on a single night (two
    /// slow nights among four are not a level of four).
    fn p_value(self, a: &[f64], b: &[f64]) -> f64 {
        let full = self.test(a, b);
        if a.len() < 3 || b.len() < 3 {
            return full;
        }
        let up = median(b) > median(a);
        let without = |xs: &[f64], drop_max: bool| -> Vec<f64> {
            let pick = if drop_max {
                xs.iter()
                    .copied()
                    .enumerate()
                    .max_by(|x, y| x.1.total_cmp(&y.1))
            } else {
                xs.iter()
                    .copied()
                    .enumerate()
                    .min_by(|x, y| x.1.total_cmp(&y.1))
            };
            let skip = pick.map_or(usize::MAX, |(i, _)| i);
            xs.iter()
                .enumerate()
                .filter(|&(i, _)| i != skip)
                .map(|(_, &x)| x)
                .collect()
        };
        full.max(self.test(&without(a, !up), &without(b, up)))
    }

    fn test(self, a: &[f64], b: &[f64]) -> f64 {
        match self {
            LevelTest::Robust => stats::robust_shift_test(a, b),
            LevelTest::Ranks => stats::rank_sum_test(a, b),
            LevelTest::Welch => stats::welch(a, b),
        }
    }

    /// Whether the series is judged on a log scale: run-to-run noise in
    /// latency and throughput is proportional to the level, so a 10 %
    /// move is the same size at 2 ms as at 200 ms.
    fn log_scale(self) -> bool {
        self != LevelTest::Welch
    }
}

/// The default of [`Options::min_sigmas`].
pub const MIN_SIGMAS: f64 = 1.0;

impl Default for Options {
    fn default() -> Self {
        Options {
            max_p_value: 0.2,
            window: 50,
            min_run: 4,
            min_magnitude: 0.0,
            min_sigmas: MIN_SIGMAS,
            test: LevelTest::Ranks,
        }
    }
}

/// A point where the series' level changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// Index of the first point of the new level.
    pub index: usize,
    /// Median of the level before (back to the previous change point).
    pub before: f64,
    /// Median of the level after (up to the next change point).
    pub after: f64,
    /// `after / before - 1`; `None` when the level before was 0
    /// (an error rate going from none to some has no relative size).
    pub magnitude: Option<f64>,
    /// The test's two-sided p-value, corrected for the search over the
    /// segment's splits: the chance that some split of it would show a
    /// difference this large if there were no change.
    pub p_value: f64,
    /// The level's move in units of the run-to-run noise (the robust
    /// standard deviation of the points around their levels); infinite
    /// when the points do not vary around their levels at all.
    pub sigmas: f64,
}

/// The change points of `series`, in order. Series shorter than
/// `2 * min_run` points, or holding a value that is not finite, have none.
pub fn detect(series: &[f64], options: &Options) -> Vec<ChangePoint> {
    let min_run = options.min_run.max(2);
    let window = options.window.max(2 * min_run);
    if series.len() < 2 * min_run || series.iter().any(|v| !v.is_finite()) {
        return Vec::new();
    }
    let judged: Vec<f64> = if options.test.log_scale() && series.iter().all(|&v| v > 0.0) {
        series.iter().map(|v| v.ln()).collect()
    } else {
        series.to_vec()
    };
    let mut found = Vec::new();
    let step = window / 2;
    let mut start = 0;
    loop {
        let end = (start + window).min(series.len());
        for i in bisect(&judged[start..end], options, min_run) {
            found.push(start + i);
        }
        if end == series.len() {
            break;
        }
        start += step;
    }
    found.sort_unstable();
    found.dedup();
    merge(series, &judged, found, options, min_run)
}

/// How many runs ago the analysis first showed `change` (a change point of
/// `series`): 0 when no analysis of the series without its newest runs
/// (back to `limit` runs ago) shows it, so tonight's run is the one that
/// made it visible. A change is confirmed only once its new level has held
/// [`Options::min_run`] points (more when the shift is small against the
/// noise), so this is the night a nightly gate should fail on, once, while
/// the change itself is dated to the run where it landed. A change that an
/// earlier night showed, then lost for a night as its p-value wavered, is
/// still as old as that earlier night: it does not fail the gate again.
/// `None` when it was already shown `limit` runs ago.
pub fn flagged_runs_ago(
    series: &[f64],
    change: &ChangePoint,
    options: &Options,
    limit: usize,
) -> Option<usize> {
    let up = change.after > change.before;
    let min_run = options.min_run.max(2);
    // Oldest analysis first: the first that showed it.
    for ago in (1..=limit.min(series.len())).rev() {
        let len = series.len() - ago;
        // Too few points for any analysis to show it, even dated as early
        // as `same_change` allows.
        if len < change.index.saturating_sub(2 * min_run - 1) + min_run {
            continue;
        }
        let earlier = detect(&series[..len], options);
        if earlier
            .iter()
            .any(|c| same_change(c, change.index, up, options))
        {
            return (ago < limit).then_some(ago);
        }
    }
    Some(0)
}

/// Whether `c` is the change that landed at `index` going up (or down),
/// as an analysis of a shorter or longer series shows it: the same way,
/// dated within two levels' length of it. More data moves the date: a
/// change first seen early, when noise before it leaned the same way, is
/// redated to where it landed a few nights later, and is the same change.
pub fn same_change(c: &ChangePoint, index: usize, up: bool, options: &Options) -> bool {
    (c.after > c.before) == up && c.index.abs_diff(index) < 2 * options.min_run.max(2)
}

/// Divisive bisection within one window: indices of its change points.
fn bisect(xs: &[f64], o: &Options, min_run: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = Vec::new();
    loop {
        let mut bounds = Vec::with_capacity(cuts.len() + 2);
        bounds.push(0);
        bounds.extend(&cuts);
        bounds.push(xs.len());
        let best = bounds
            .windows(2)
            .filter_map(|b| best_split(xs, b[0], b[1], min_run))
            .fold(None, |best: Option<(usize, f64)>, c| match best {
                Some(b) if b.1 >= c.1 => Some(b),
                _ => Some(c),
            });
        let Some((tau, _)) = best else { break };
        let i = bounds.partition_point(|&b| b <= tau);
        let (lo, hi) = (bounds[i - 1], bounds[i]);
        let p = searched(o.test.p_value(&xs[lo..tau], &xs[tau..hi]), hi - lo, min_run);
        if p > o.max_p_value {
            break;
        }
        cuts.push(tau);
        cuts.sort_unstable();
    }
    cuts
}

/// The split of `xs[lo..hi]` with the largest Q̂, and that Q̂; `None` when
/// the segment is too short to split with `min_run` points a side.
///
/// Q̂ of every split in O(n²) time and O(1) space: moving the split one
/// point right moves that point's distances to the points before it from
/// "across" to "within left", and its distances to the points after it
/// from "within right" to "across".
fn best_split(xs: &[f64], lo: usize, hi: usize, min_run: usize) -> Option<(usize, f64)> {
    if hi - lo < 2 * min_run {
        return None;
    }
    let seg = &xs[lo..hi];
    let len = seg.len();
    let mut within_left = 0.0;
    let mut within_right: f64 = (0..len)
        .map(|i| seg[i + 1..].iter().map(|b| (seg[i] - b).abs()).sum::<f64>())
        .sum();
    let mut across = 0.0;
    let mut best: Option<(usize, f64)> = None;
    for tau in 1..=len - min_run {
        let x = seg[tau - 1];
        let to_left: f64 = seg[..tau - 1].iter().map(|a| (a - x).abs()).sum();
        let to_right: f64 = seg[tau..].iter().map(|b| (b - x).abs()).sum();
        within_left += to_left;
        within_right -= to_right;
        across += to_right - to_left;
        if tau < min_run {
            continue;
        }
        let q = q_hat(tau, len - tau, across, within_left, within_right);
        if best.is_none_or(|(_, b)| q > b) {
            best = Some((lo + tau, q));
        }
    }
    best
}

/// The E-Divisive energy statistic of a split (α = 1) from its sums of
/// distances: how much farther apart points are across the split than
/// within each side, scaled by `m·n / (m + n)` so that splits of unequal
/// sides compare fairly.
fn q_hat(m: usize, n: usize, across: f64, within_left: f64, within_right: f64) -> f64 {
    let pairs = |k: usize| (k * k.saturating_sub(1) / 2).max(1) as f64;
    let (mf, nf) = (m as f64, n as f64);
    let e = 2.0 * across / (mf * nf) - within_left / pairs(m) - within_right / pairs(n);
    e * mf * nf / (mf + nf)
}

/// Merges the windows' candidates over the whole series: retests each
/// between its neighbours and drops the weakest failure until none fails.
fn merge(
    series: &[f64],
    judged: &[f64],
    mut cuts: Vec<usize>,
    o: &Options,
    min_run: usize,
) -> Vec<ChangePoint> {
    loop {
        let points = describe(series, judged, &cuts, o, min_run);
        let fails = |c: &ChangePoint, left: usize, right: usize| {
            left < min_run
                || right < min_run
                || c.p_value > o.max_p_value
                || c.sigmas < o.min_sigmas
                || c.magnitude.is_some_and(|m| m.abs() < o.min_magnitude)
        };
        let mut weakest: Option<(usize, (bool, f64, f64))> = None;
        for (k, c) in points.iter().enumerate() {
            let lo = if k == 0 { 0 } else { cuts[k - 1] };
            let hi = cuts.get(k + 1).copied().unwrap_or(series.len());
            if !fails(c, c.index - lo, hi - c.index) {
                continue;
            }
            // Short levels first, then the highest p-value, then the
            // smallest effect.
            let short = c.index - lo < min_run || hi - c.index < min_run;
            let key = (
                short,
                c.p_value,
                -c.magnitude.map_or(f64::INFINITY, f64::abs),
            );
            if weakest.is_none_or(|(_, w)| key.partial_cmp(&w).is_some_and(|o| o.is_gt())) {
                weakest = Some((k, key));
            }
        }
        match weakest {
            Some((k, _)) => {
                cuts.remove(k);
            }
            None => return points,
        }
    }
}

/// Each cut described between its neighbouring cuts: levels and
/// magnitude from the values themselves, the tests on the judged scale.
fn describe(
    series: &[f64],
    judged: &[f64],
    cuts: &[usize],
    o: &Options,
    min_run: usize,
) -> Vec<ChangePoint> {
    (0..cuts.len())
        .map(|k| {
            let lo = if k == 0 { 0 } else { cuts[k - 1] };
            let hi = cuts.get(k + 1).copied().unwrap_or(series.len());
            let (before, after) = (median(&series[lo..cuts[k]]), median(&series[cuts[k]..hi]));
            let (jb, ja) = (&judged[lo..cuts[k]], &judged[cuts[k]..hi]);
            ChangePoint {
                index: cuts[k],
                before,
                after,
                magnitude: (before != 0.0).then(|| after / before - 1.0),
                p_value: searched(o.test.p_value(jb, ja), hi - lo, min_run),
                sigmas: sigmas(jb, ja),
            }
        })
        .collect()
}

/// `p`, the p-value of the best of the splits of a segment of `len`
/// points that leave `min_run` a side, Šidák-corrected for that search.
fn searched(p: f64, len: usize, min_run: usize) -> f64 {
    let m = (len + 1).saturating_sub(2 * min_run).max(1) as f64;
    // 1 − (1 − p)^m without losing a tiny p to rounding.
    (-(m * (-p).ln_1p()).exp_m1()).clamp(0.0, 1.0)
}

/// How far apart the two levels are, in robust standard deviations of
/// the points around their own level's median. The new level is taken at
/// its most modest middle point (the lower of the two middle points of an
/// even count when it rose, the upper when it fell), so a level counts
/// only when most of its points moved: two slow nights and two ordinary
/// ones are not a new level, whatever the ranks say.
fn sigmas(before: &[f64], after: &[f64]) -> f64 {
    let sigma = stats::robust_sigma(before, after);
    let from = median(before);
    let up = median(after) > from;
    let mut sorted = after.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let modest = match n {
        0 => from,
        _ if n % 2 == 1 => sorted[n / 2],
        _ if up => sorted[n / 2 - 1],
        _ => sorted[n / 2],
    };
    let diff = if up == (modest > from) {
        (modest - from).abs()
    } else {
        0.0
    };
    if sigma > 0.0 {
        diff / sigma
    } else if diff > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests;
