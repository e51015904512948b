//! The run over time: one sample per window (a second by default) with
//! throughput, errors and latency percentiles, for progress display and the
//! HTML report's charts.
//!
//! Memory stays bounded however long the run: past [`Timeline::MAX_SAMPLES`]
//! samples, neighbouring windows are merged pairwise (counts add, percentiles
//! keep the worse of the two), halving the resolution.

use serde::{Deserialize, Serialize};

use super::recorder::IntervalStats;

/// One window of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelineSample {
    /// Seconds from the start of the run to the start of this window.
    pub t: f64,
    /// Length of the window in seconds.
    pub window: f64,
    /// Requests finished in the window.
    pub requests: u64,
    /// Failed requests in the window.
    pub errors: u64,
    /// Arrivals dropped in the window (open model).
    pub dropped: u64,
    /// Latency percentiles of the window, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Virtual users busy or waiting at the end of the window.
    pub active_users: u64,
}

impl TimelineSample {
    /// Builds a sample from a drained window.
    pub fn from_interval(t: f64, window: f64, iv: &IntervalStats, active_users: u64) -> Self {
        let ms = |q: f64| iv.latency.quantile_micros(q) as f64 / 1000.0;
        TimelineSample {
            t,
            window,
            requests: iv.requests,
            errors: iv.errors,
            dropped: iv.dropped,
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: iv.latency.max_micros() as f64 / 1000.0,
            active_users,
        }
    }

    /// Requests per second in this window.
    pub fn rps(&self) -> f64 {
        if self.window > 0.0 {
            self.requests as f64 / self.window
        } else {
            0.0
        }
    }

    fn coarsen(a: &TimelineSample, b: &TimelineSample) -> TimelineSample {
        TimelineSample {
            t: a.t,
            window: a.window + b.window,
            requests: a.requests + b.requests,
            errors: a.errors + b.errors,
            dropped: a.dropped + b.dropped,
            p50_ms: a.p50_ms.max(b.p50_ms),
            p95_ms: a.p95_ms.max(b.p95_ms),
            p99_ms: a.p99_ms.max(b.p99_ms),
            max_ms: a.max_ms.max(b.max_ms),
            active_users: a.active_users.max(b.active_users),
        }
    }
}

/// The samples of a run, bounded in memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeline {
    samples: Vec<TimelineSample>,
}

impl Timeline {
    /// Past this many samples, windows are merged pairwise.
    pub const MAX_SAMPLES: usize = 7200;

    /// Appends a sample, coarsening when the bound is reached.
    pub fn push(&mut self, s: TimelineSample) {
        self.samples.push(s);
        if self.samples.len() >= Self::MAX_SAMPLES {
            self.samples = self
                .samples
                .chunks(2)
                .map(|c| match c {
                    [a, b] => TimelineSample::coarsen(a, b),
                    [a] => *a,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> &[TimelineSample] {
        &self.samples
    }

    /// Merges another run's timeline (a shard of the same run) window by
    /// window, aligning on start times rounded to the window.
    pub fn merge(&mut self, other: &Timeline) {
        for s in &other.samples {
            match self
                .samples
                .iter_mut()
                .find(|x| (x.t - s.t).abs() < x.window.max(1e-9) / 2.0)
            {
                Some(x) => {
                    x.requests += s.requests;
                    x.errors += s.errors;
                    x.dropped += s.dropped;
                    x.p50_ms = x.p50_ms.max(s.p50_ms);
                    x.p95_ms = x.p95_ms.max(s.p95_ms);
                    x.p99_ms = x.p99_ms.max(s.p99_ms);
                    x.max_ms = x.max_ms.max(s.max_ms);
                    x.active_users += s.active_users;
                }
                None => self.samples.push(*s),
            }
        }
        self.samples.sort_by(|a, b| a.t.total_cmp(&b.t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, requests: u64, p99: f64) -> TimelineSample {
        TimelineSample {
            t,
            window: 1.0,
            requests,
            errors: 0,
            dropped: 0,
            p50_ms: p99 / 2.0,
            p95_ms: p99,
            p99_ms: p99,
            max_ms: p99,
            active_users: 1,
        }
    }

    #[test]
    fn stays_bounded_and_keeps_totals() {
        let mut t = Timeline::default();
        let n = Timeline::MAX_SAMPLES * 3;
        for i in 0..n {
            t.push(sample(i as f64, 10, if i == 5000 { 900.0 } else { 1.0 }));
        }
        assert!(t.samples().len() < Timeline::MAX_SAMPLES);
        let total: u64 = t.samples().iter().map(|s| s.requests).sum();
        assert_eq!(total, 10 * n as u64);
        let window: f64 = t.samples().iter().map(|s| s.window).sum();
        assert_eq!(window, n as f64);
        // A spike survives coarsening.
        assert!(t.samples().iter().any(|s| s.p99_ms == 900.0));
    }
}
