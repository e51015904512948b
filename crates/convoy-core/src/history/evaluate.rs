//! How well a nightly gate finds regressions on real run-to-run noise: the
//! figures of issue 18, computed the same way by `ci/bench/history.sh`
//! (on noise recorded there) and by the unit tests (on the recorded file).
//!
//! A synthetic nightly series is built by resampling a recorded noise
//! series (each night a recorded run's value, relative to the recording's
//! median, drawn with a seeded generator) and planting, at night
//! [`Setup::at`], a lasting shift towards worse or a single-night spike.
//! Every night from [`Setup::warmup`] on, each method sees the nights so
//! far and either raises an alarm or not:
//!
//! * **convoy**: `convoy history --fail-on-change-since 1`: a regression
//!   change point that tonight's analysis shows and no earlier night's
//!   did;
//! * **tolerance**: the plain rule, tonight worse than the baseline (the
//!   series' first night, a promoted run) by more than the tolerance;
//! * **compare**: `convoy compare`'s rule, the tolerance *and* the noise
//!   band of the last [`crate::report::compare::HISTORY_WINDOW`] nights;
//! * **oracle**: a bound no method can beat by much, not a method: told the
//!   night of the plant, it makes one test on the last night of the
//!   lookahead, the nights since the plant against the nights before it
//!   (one-sided rank-sum at 1 % false alarms per test). Where the oracle
//!   falls short of a recall, no nightly gate reaches it on that noise.
//!
//! An alarm on a night before the plant, or anywhere in a quiet series, is
//! a false alarm. A shift is found when an alarm falls within
//! [`Setup::lookahead`] nights of it; alarms after the first are repeats.
//! A spike is a night of noise: any alarm it draws is counted as flagging
//! it. Pure arithmetic and a seeded generator: the same noise gives the
//! same figures.

use super::changepoint::{self, ChangePoint, Options};
use crate::report::compare::{HISTORY_WINDOW, noise_band};

/// The oracle's false-alarm rate per test (one-sided).
pub const ORACLE_ALPHA: f64 = 0.01;

/// One recorded noise series: a figure of a step over repeated runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    /// `step figure`, e.g. `overall p95`.
    pub name: String,
    /// Whether a rise is worse (latency) or a fall is (throughput).
    pub worse_when_up: bool,
    /// The recorded values, one per run.
    pub values: Vec<f64>,
}

/// Reads the noise file `ci/bench/history.sh` records: a CSV header
/// `run,step,FIGURE...` then one line per run and step. Each figure whose
/// name ends in `_ms` is a latency (worse when up); `rps` is worse when
/// down; other columns are ignored.
pub fn parse_noise(text: &str) -> Result<Vec<Noise>, String> {
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header: Vec<&str> = lines.next().ok_or("empty noise file")?.split(',').collect();
    if header.len() < 3 || header[0] != "run" || header[1] != "step" {
        return Err("the header must start with run,step".to_string());
    }
    let mut out: Vec<Noise> = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            return Err(format!(
                "line {}: {} cells, the header has {}",
                n + 2,
                cells.len(),
                header.len()
            ));
        }
        for (col, name) in header.iter().enumerate().skip(2) {
            let worse_when_up = if name.ends_with("_ms") {
                true
            } else if *name == "rps" {
                false
            } else {
                continue;
            };
            let v: f64 = cells[col]
                .trim()
                .parse()
                .map_err(|_| format!("line {}: {name} is not a number: {:?}", n + 2, cells[col]))?;
            let label = format!("{} {}", cells[1].trim(), name.trim_end_matches("_ms"));
            match out.iter_mut().find(|s| s.name == label) {
                Some(s) => s.values.push(v),
                None => out.push(Noise {
                    name: label,
                    worse_when_up,
                    values: vec![v],
                }),
            }
        }
    }
    Ok(out)
}

/// `n` values around 100 with normal noise of relative size `sd`, from a
/// seeded generator: a machine quieter than the recorded one.
pub fn gaussian_noise(n: usize, sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| {
            // Box–Muller.
            let (u, v) = (1.0 - rng.f64(), rng.f64());
            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            (100.0 * (1.0 + sd * z)).max(f64::MIN_POSITIVE)
        })
        .collect()
}

/// What is planted in a synthetic series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plant {
    /// Nothing: every night is quiet.
    Quiet,
    /// From night `at` on, the level is this much worse (0.10 = 10 %).
    Shift(f64),
    /// Night `at` alone is this much worse.
    Spike(f64),
}

/// The shape of the experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setup {
    /// Nights per series.
    pub len: usize,
    /// The night a shift or spike is planted.
    pub at: usize,
    /// Nights judged from (earlier ones are the first history).
    pub warmup: usize,
    /// A shift counts as found when an alarm falls this many nights after
    /// it, at most (the night itself included).
    pub lookahead: usize,
    /// Series per plant.
    pub series: usize,
    /// The first seed; series `i` uses `seed + i`.
    pub seed: u64,
    /// The change-point settings.
    pub options: Options,
    /// The tolerance of the plain rule and of compare's rule.
    pub tolerance: f64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            len: 60,
            at: 40,
            warmup: 10,
            lookahead: 10,
            series: 100,
            seed: 1,
            options: Options::default(),
            tolerance: crate::report::compare::DEFAULT_TOLERANCE,
        }
    }
}

/// The judges compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Change points, new tonight (`--fail-on-change-since 1`).
    Convoy,
    /// Tonight against the baseline, tolerance only.
    Tolerance,
    /// Tonight against the baseline, tolerance and noise band.
    Compare,
    /// Told the night of the plant; one test at the end of the lookahead.
    Oracle,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 4] = [
        Method::Convoy,
        Method::Tolerance,
        Method::Compare,
        Method::Oracle,
    ];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Method::Convoy => "convoy history",
            Method::Tolerance => "baseline ± tolerance",
            Method::Compare => "compare (tolerance + noise)",
            Method::Oracle => "oracle (told the night)",
        }
    }
}

/// The counts of one method on one plant over all its series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    /// Series.
    pub series: usize,
    /// Series whose plant drew an alarm within the lookahead.
    pub found: usize,
    /// Alarms on quiet nights (before the plant, or in a quiet series).
    pub false_alarms: usize,
    /// Quiet nights judged.
    pub quiet_nights: usize,
    /// Alarms after the first true one (the same regression again).
    pub repeats: usize,
}

impl Score {
    /// Found / series.
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.series)
    }

    /// Found / (found + false alarms): of the alarms that are not repeats,
    /// the share that were right.
    pub fn precision(&self) -> f64 {
        ratio(self.found, self.found + self.false_alarms)
    }

    /// False alarms per 100 quiet nights.
    pub fn false_per_100(&self) -> f64 {
        100.0 * ratio(self.false_alarms, self.quiet_nights)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// A synthetic series of `setup.len` nights at level 100 with `noise`'s
/// relative spread, `plant` planted towards worse.
pub fn synthesise(noise: &Noise, plant: Plant, setup: &Setup, seed: u64) -> Vec<f64> {
    let mut sorted = noise.values.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2].max(f64::MIN_POSITIVE);
    let mut rng = fastrand::Rng::with_seed(seed);
    let worse = |x: f64, by: f64| {
        if noise.worse_when_up {
            x * (1.0 + by)
        } else {
            x / (1.0 + by)
        }
    };
    (0..setup.len)
        .map(|night| {
            let x = 100.0 * noise.values[rng.usize(..noise.values.len())] / median;
            match plant {
                Plant::Shift(by) if night >= setup.at => worse(x, by),
                Plant::Spike(by) if night == setup.at => worse(x, by),
                _ => x,
            }
        })
        .collect()
}

/// The nights on which `method` raises an alarm over `series`.
pub fn alarms(method: Method, series: &[f64], worse_when_up: bool, setup: &Setup) -> Vec<usize> {
    let worse = |from: f64, to: f64| if worse_when_up { to > from } else { to < from };
    let mut out = Vec::new();
    if method == Method::Oracle {
        let night = (setup.at + setup.lookahead - 1).min(series.len() - 1);
        let (before, since) = (
            &series[setup.warmup.min(setup.at)..setup.at],
            &series[setup.at..=night],
        );
        let up = crate::stats::median(since) > crate::stats::median(before);
        if up == worse_when_up && crate::stats::rank_sum_test(before, since) <= 2.0 * ORACLE_ALPHA {
            out.push(night);
        }
        return out;
    }
    // Every change an earlier night showed: one that wavers out of sight
    // for a night and back is not new (as `flagged_runs_ago` judges).
    let mut shown: Vec<ChangePoint> = Vec::new();
    for night in 0..series.len() {
        let seen = &series[..=night];
        let alarm = match method {
            Method::Convoy => {
                let today = changepoint::detect(seen, &setup.options);
                let mut fresh = false;
                for c in today {
                    let up = c.after > c.before;
                    if !shown
                        .iter()
                        .any(|y| changepoint::same_change(y, c.index, up, &setup.options))
                    {
                        fresh |= worse(c.before, c.after);
                        shown.push(c);
                    }
                }
                fresh
            }
            Method::Oracle => false,
            Method::Tolerance | Method::Compare => {
                let (base, tonight) = (series[0], series[night]);
                let beyond =
                    worse(base, tonight) && (tonight - base).abs() > setup.tolerance * base;
                let history = &seen[night.saturating_sub(HISTORY_WINDOW)..night];
                let noisy = method == Method::Compare
                    && noise_band(history, 0.0).is_some_and(|band| (tonight - base).abs() <= band);
                beyond && !noisy
            }
        };
        if alarm && night >= setup.warmup {
            out.push(night);
        }
    }
    out
}

/// Scores `method` on `plant` over `setup.series` series of `noise`.
pub fn score(noise: &Noise, plant: Plant, method: Method, setup: &Setup) -> Score {
    let mut s = Score::default();
    for i in 0..setup.series {
        let series = synthesise(noise, plant, setup, setup.seed + i as u64);
        let nights = alarms(method, &series, noise.worse_when_up, setup);
        s.series += 1;
        let quiet_until = match plant {
            Plant::Quiet => setup.len,
            Plant::Shift(_) | Plant::Spike(_) => setup.at,
        };
        if method == Method::Oracle {
            // One test per series: on a quiet series it is the quiet night.
            if plant == Plant::Quiet {
                s.quiet_nights += 1;
                s.false_alarms += nights.len();
            } else if !nights.is_empty() {
                s.found += 1;
            }
            continue;
        }
        s.quiet_nights += quiet_until.saturating_sub(setup.warmup);
        s.false_alarms += nights.iter().filter(|&&n| n < quiet_until).count();
        let after: Vec<usize> = nights
            .iter()
            .copied()
            .filter(|&n| n >= quiet_until)
            .collect();
        if plant != Plant::Quiet
            && after
                .first()
                .is_some_and(|&n| n < setup.at + setup.lookahead)
        {
            s.found += 1;
            s.repeats += after.len() - 1;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The noise `ci/bench/history.sh` recorded on this project's machine.
    const RECORDED: &str = include_str!("../../../../ci/bench/history-noise.csv");

    fn recorded(name: &str) -> Noise {
        parse_noise(RECORDED)
            .unwrap()
            .into_iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no {name} in the recorded noise"))
    }

    #[test]
    fn the_recorded_noise_parses_into_series_per_step_and_figure() {
        let all = parse_noise(RECORDED).unwrap();
        let p95 = recorded("overall p95");
        assert!(p95.worse_when_up);
        assert!(p95.values.len() >= 50, "{}", p95.values.len());
        assert!(!recorded("overall rps").worse_when_up);
        assert!(all.len() >= 8, "{}", all.len());
        assert!(parse_noise("run,step,p50_ms\n1,overall,x\n").is_err());
        assert!(parse_noise("").is_err());
    }

    #[test]
    fn on_the_recorded_noise_the_gate_keeps_quiet_and_finds_large_shifts() {
        // A regression guard for the method on real noise (the full
        // figures, 200 series per case, are ci/bench/history.sh's).
        let setup = Setup {
            series: 30,
            ..Setup::default()
        };
        for name in ["overall p50", "overall p95"] {
            let noise = recorded(name);
            let quiet = score(&noise, Plant::Quiet, Method::Convoy, &setup);
            assert!(quiet.false_per_100() <= 1.0, "{name}: {quiet:?}");
            let plain = score(&noise, Plant::Quiet, Method::Tolerance, &setup);
            assert!(plain.false_per_100() > 10.0, "{name}: {plain:?}");
            let shift = score(&noise, Plant::Shift(0.5), Method::Convoy, &setup);
            assert!(shift.recall() >= 0.9, "{name}: {shift:?}");
            let spike = score(&noise, Plant::Spike(0.5), Method::Convoy, &setup);
            assert!(spike.recall() <= 0.1, "{name}: {spike:?}");
        }
    }

    #[test]
    fn the_oracle_bounds_what_the_gate_can_find() {
        let noise = recorded("overall p50");
        let setup = Setup {
            series: 40,
            ..Setup::default()
        };
        let convoy = score(&noise, Plant::Shift(0.10), Method::Convoy, &setup);
        let oracle = score(&noise, Plant::Shift(0.10), Method::Oracle, &setup);
        assert!(
            convoy.recall() <= oracle.recall() + 0.1,
            "{convoy:?} {oracle:?}"
        );
        let quiet = score(&noise, Plant::Quiet, Method::Oracle, &setup);
        assert_eq!(quiet.quiet_nights, 40);
        assert!(quiet.false_alarms <= 3, "{quiet:?}");
    }
}
