//! The noise band of a figure: how far two runs of the same code may
//! differ by chance, from the history of earlier runs or, without one,
//! from the sampling noise within the two runs (the rules are in the
//! parent module's docs).

use super::{Figure, MIN_HISTORY, NOISE_P_VALUE, NOISE_SIGMAS};
use crate::report::StepReport;
use crate::stats::{self, MAD_TO_SIGMA, MEAN_DEVIATION_TO_SIGMA, median};

/// The noise band of a figure whose history is `values`, measured with a
/// resolution of `resolution` (the smallest step between two values that
/// means anything): `t × √2 × σ`, `σ` and `t` as the module docs say.
/// `None` with fewer than [`MIN_HISTORY`] values.
pub fn noise_band(values: &[f64], resolution: f64) -> Option<f64> {
    if values.len() < MIN_HISTORY {
        return None;
    }
    let m = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    let mad = median(&deviations);
    let sigma = if mad > resolution {
        MAD_TO_SIGMA * mad
    } else {
        // Half the runs or more sit on the median: the MAD sees none of
        // the runs that moved. Their mean distance from the median does.
        let mean_deviation = deviations.iter().sum::<f64>() / deviations.len() as f64;
        (MEAN_DEVIATION_TO_SIGMA * mean_deviation).max(MAD_TO_SIGMA * mad)
    };
    // Heavy tails: on a shared machine most runs sit tight and a few
    // nights stray far, which the MAD does not see. The second-largest
    // deviation does (one wild night still cannot widen the band).
    let mut sorted = deviations.clone();
    sorted.sort_by(f64::total_cmp);
    let second = sorted[sorted.len() - 2];
    let sigma = sigma.max(second / TAIL_DEVIATION_TO_SIGMA);
    Some(history_sigmas(values.len()) * std::f64::consts::SQRT_2 * sigma.max(resolution.max(0.0)))
}

/// How many standard deviations of the difference of two runs are beyond
/// the noise when `σ` was estimated from `n` runs: Student's t for `n − 1`
/// degrees of freedom leaving [`NOISE_P_VALUE`] in its two tails (3.0 for
/// a long history, 3.6 for 20 runs, 6.6 for 5: a σ from few runs is
/// itself uncertain).
pub fn history_sigmas(n: usize) -> f64 {
    stats::t_two_sided_quantile(NOISE_P_VALUE, n.saturating_sub(1).max(1) as f64)
}

/// The noise band of `figure` from the sampling noise within `base` and
/// `current` alone (see the module docs): `None` when either run has no
/// sample of it.
pub fn within_run_band(figure: Figure, base: &StepReport, current: &StepReport) -> Option<f64> {
    let sd = |step: &StepReport| -> Option<f64> {
        let n = step.requests as f64;
        match figure {
            Figure::P50 | Figure::P95 | Figure::P99 => {
                quantile_sd_ms(&step.histograms.latency, figure.quantile()?)
            }
            Figure::Rps => (n > 0.0).then(|| step.rps / n.sqrt()),
            Figure::ErrorRate => None,
        }
    };
    let sigma = match figure {
        Figure::ErrorRate => {
            let (nb, nc) = (base.requests as f64, current.requests as f64);
            if nb == 0.0 || nc == 0.0 {
                return None;
            }
            let p = (base.errors + current.errors) as f64 / (nb + nc);
            (p * (1.0 - p) * (1.0 / nb + 1.0 / nc)).sqrt()
        }
        _ => {
            let (b, c) = (sd(base)?, sd(current)?);
            (b * b + c * c).sqrt()
        }
    };
    let values = [figure.of(base)?, figure.of(current)?];
    let floor = resolution(figure, current, &values);
    Some(NOISE_SIGMAS * sigma.max(floor.max(0.0)))
}

/// The standard deviation, in ms, of quantile `q` of the samples in `h`:
/// half the spread between the values one binomial standard deviation of
/// rank either side of it. `None` for an empty histogram.
fn quantile_sd_ms(h: &crate::metrics::histogram::LatencyHistogram, q: f64) -> Option<f64> {
    let n = h.count();
    if n == 0 {
        return None;
    }
    let s = (q * (1.0 - q) / n as f64).sqrt();
    let lo = h.quantile_micros((q - s).max(0.0));
    let hi = h.quantile_micros((q + s).min(1.0));
    Some(hi.saturating_sub(lo) as f64 / 2000.0)
}

/// The second-largest of 5 to 20 absolute deviations of normally
/// distributed values is about 1.2 to 1.9 standard deviations: 2 keeps
/// Gaussian histories' bands where the MAD puts them.
const TAIL_DEVIATION_TO_SIGMA: f64 = 2.0;

/// The smallest meaningful step of `figure` around the values of its
/// history (see the module docs).
pub(super) fn resolution(figure: Figure, step: &StepReport, history: &[f64]) -> f64 {
    match figure {
        Figure::P50 | Figure::P95 | Figure::P99 => latency_resolution_ms(median(history)),
        Figure::ErrorRate if step.requests > 0 => 1.0 / step.requests as f64,
        Figure::Rps if step.requests > 0 => step.rps / step.requests as f64,
        Figure::ErrorRate | Figure::Rps => 0.0,
    }
}

/// The width, in ms, of the HdrHistogram bucket that holds `ms`: the
/// histograms keep [`SIGNIFICANT_DIGITS`] digits, so values below the
/// first power of two above `2 × 10^digits` µs are exact to 1 µs, and
/// above it the step doubles with every power of two.
///
/// [`SIGNIFICANT_DIGITS`]: crate::metrics::histogram::SIGNIFICANT_DIGITS
pub fn latency_resolution_ms(ms: f64) -> f64 {
    let digits = crate::metrics::histogram::SIGNIFICANT_DIGITS as i32;
    let exact_below = (2.0 * 10f64.powi(digits)).log2().ceil(); // 2^11 µs for 3 digits
    let us = (ms * 1000.0).max(1.0);
    let magnitude = us.log2().floor();
    let step_us = if magnitude < exact_below {
        1.0
    } else {
        (magnitude - exact_below + 1.0).exp2()
    };
    step_us / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mad_ignores_one_wild_run() {
        let calm = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0];
        let mut wild = calm.to_vec();
        wild.push(400.0);
        let a = noise_band(&calm, 0.1).unwrap();
        let b = noise_band(&wild, 0.1).unwrap();
        assert!(a > 0.0 && b < 2.0 * a, "{a} vs {b}");
        assert_eq!(noise_band(&calm[..4], 0.1), None);
    }

    #[test]
    fn ties_on_the_median_do_not_collapse_the_band() {
        // Six of eight runs read the same microsecond: MAD = 0.
        let tied = [0.151, 0.151, 0.151, 0.151, 0.151, 0.151, 0.143, 0.213];
        let deviations: Vec<f64> = tied.iter().map(|v| (v - 0.151f64).abs()).collect();
        assert_eq!(median(&deviations), 0.0, "the case the fallback is for");
        let band = noise_band(&tied, latency_resolution_ms(0.151)).unwrap();
        // 1.2533 × mean deviation (0.07 / 8) × t(7) × √2.
        let t = history_sigmas(8);
        let expected = t * std::f64::consts::SQRT_2 * 1.2533 * (0.008 + 0.062) / 8.0;
        assert!((band - expected).abs() < 1e-9, "{band} vs {expected}");
        // Every run equal: only the resolution is left, never 0.
        let same = [0.151; 6];
        let floor = noise_band(&same, 0.001).unwrap();
        let t = history_sigmas(6);
        assert!((floor - t * std::f64::consts::SQRT_2 * 0.001).abs() < 1e-12);
    }

    #[test]
    fn the_band_widens_when_sigma_comes_from_few_runs() {
        // Student's t leaving 0.27 % in its tails: 3σ for normal noise.
        assert!((history_sigmas(100_000) - 3.0).abs() < 0.01);
        let (five, twenty) = (history_sigmas(5), history_sigmas(20));
        assert!((6.0..7.5).contains(&five), "{five}");
        assert!((3.3..3.8).contains(&twenty), "{twenty}");
        let runs = [100.0, 102.0, 98.0, 101.0, 99.0];
        let more: Vec<f64> = runs.iter().cycle().take(20).copied().collect();
        assert!(noise_band(&runs, 0.1).unwrap() > noise_band(&more, 0.1).unwrap());
    }

    #[test]
    fn latency_resolution_follows_the_histogram_buckets() {
        assert_eq!(latency_resolution_ms(0.151), 0.001);
        assert_eq!(latency_resolution_ms(2.047), 0.001);
        assert_eq!(latency_resolution_ms(2.048), 0.002);
        assert_eq!(latency_resolution_ms(5.0), 0.004);
        assert_eq!(latency_resolution_ms(1000.0), 0.512);
        // The same widths the histogram itself reports.
        let h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for us in [151u64, 2047, 2048, 5000, 1_000_000] {
            let range = h.equivalent_range(us) as f64 / 1000.0;
            assert_eq!(latency_resolution_ms(us as f64 / 1000.0), range, "{us} µs");
        }
    }
}
