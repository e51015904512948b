//! The run over time: one sample per window (a second by default) with
//! throughput, errors and latency percentiles, for progress display and the
//! HTML report's charts.
//!
//! Each sample also keeps its window's latency histogram, encoded
//! ([`WindowLatency`]), so that windows merge exactly: coarsening two
//! neighbouring windows or adding the windows of a run's shards recomputes
//! the percentiles from the added histograms instead of guessing them from
//! the parts. Only samples read from reports written before the histograms
//! were kept merge their percentiles as the highest of the parts, an upper
//! bound.
//!
//! Memory stays bounded however long the run: past [`Timeline::MAX_SAMPLES`]
//! samples, neighbouring windows are merged pairwise, halving the
//! resolution.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::histogram::LatencyHistogram;
use super::recorder::IntervalStats;

/// A window's latency histogram, kept as its HdrHistogram V2 deflate
/// encoding (base64): a few hundred bytes, where a live histogram of the
/// same window would hold tens of kilobytes of counters. Decoded only to
/// merge windows.
#[derive(Clone, PartialEq)]
pub struct WindowLatency(Box<str>);

impl WindowLatency {
    /// Encodes `h`.
    pub fn encode(h: &LatencyHistogram) -> Self {
        WindowLatency(h.to_base64().into_boxed_str())
    }

    /// The histogram back. The encoding was checked when it was made or
    /// read, so decoding cannot fail.
    pub fn decode(&self) -> LatencyHistogram {
        LatencyHistogram::from_base64(&self.0).expect("window histograms are checked when read")
    }

    /// Bytes of the encoding (as stored in a report).
    pub fn encoded_len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for WindowLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowLatency({} bytes)", self.0.len())
    }
}

impl Serialize for WindowLatency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WindowLatency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Checked here, so that a damaged report is refused when read, not
        // when a merge would decode it.
        LatencyHistogram::from_base64(&s).map_err(serde::de::Error::custom)?;
        Ok(WindowLatency(s.into_boxed_str()))
    }
}

/// One window of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The window's latency histogram, every step together, from which the
    /// percentiles above come; absent in reports of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<WindowLatency>,
}

impl TimelineSample {
    /// A window of these counts whose latency is not set yet.
    fn counts(
        t: f64,
        window: f64,
        requests: u64,
        errors: u64,
        dropped: u64,
        active_users: u64,
    ) -> Self {
        TimelineSample {
            t,
            window,
            requests,
            errors,
            dropped,
            p50_ms: 0.0,
            p95_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            active_users,
            latency: None,
        }
    }

    /// Builds a sample from a drained window.
    pub fn from_interval(t: f64, window: f64, iv: &IntervalStats, active_users: u64) -> Self {
        let mut s = Self::counts(t, window, iv.requests, iv.errors, iv.dropped, active_users);
        s.set_latency(&iv.latency);
        s
    }

    /// Requests per second in this window.
    pub fn rps(&self) -> f64 {
        if self.window > 0.0 {
            self.requests as f64 / self.window
        } else {
            0.0
        }
    }

    /// Sets the percentiles from `h` and keeps `h` (encoded).
    fn set_latency(&mut self, h: &LatencyHistogram) {
        let ms = |us: u64| us as f64 / 1000.0;
        self.p50_ms = ms(h.quantile_micros(0.5));
        self.p95_ms = ms(h.quantile_micros(0.95));
        self.p99_ms = ms(h.quantile_micros(0.99));
        self.max_ms = ms(h.max_micros());
        self.latency = Some(WindowLatency::encode(h));
    }

    /// `parts` made one window starting at `t`, `window` long: counters
    /// add; percentiles come from the added histograms when every part has
    /// one, else they are the highest of the parts' (an upper bound).
    /// `active_users` is computed by the caller (the same users over time
    /// are not added up, different shards' users are).
    fn combine(t: f64, window: f64, parts: &[&TimelineSample], active_users: u64) -> Self {
        let mut out = Self::counts(
            t,
            window,
            // Saturating: merged windows come from report files.
            parts.iter().fold(0, |n, p| n.saturating_add(p.requests)),
            parts.iter().fold(0, |n, p| n.saturating_add(p.errors)),
            parts.iter().fold(0, |n, p| n.saturating_add(p.dropped)),
            active_users,
        );
        if parts.iter().all(|p| p.latency.is_some()) {
            let mut h = LatencyHistogram::new();
            for p in parts {
                h.merge(&p.latency.as_ref().expect("checked").decode());
            }
            out.set_latency(&h);
        } else {
            let most =
                |f: fn(&TimelineSample) -> f64| parts.iter().map(|p| f(p)).fold(0.0, f64::max);
            out.p50_ms = most(|p| p.p50_ms);
            out.p95_ms = most(|p| p.p95_ms);
            out.p99_ms = most(|p| p.p99_ms);
            out.max_ms = most(|p| p.max_ms);
        }
        out
    }

    fn coarsen(a: &TimelineSample, b: &TimelineSample) -> TimelineSample {
        let users = a.active_users.max(b.active_users);
        TimelineSample::combine(a.t, a.window + b.window, &[a, b], users)
    }

    /// Where the middle of this window falls, `offset` seconds later.
    fn middle(&self, offset: f64) -> f64 {
        offset + self.t + self.window.max(0.0) / 2.0
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
                    [a] => a.clone(),
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> &[TimelineSample] {
        &self.samples
    }

    /// Merges another run's timeline (a run of the same length started at
    /// the same time) window by window: see [`Timeline::aligned`].
    pub fn merge(&mut self, other: &Timeline) {
        *self = Timeline::aligned(&[(0.0, &*self), (0.0, other)]);
    }

    /// The grid the windows of `parts` are merged onto: their usual window
    /// length (the median, rounded to a power of two seconds, as coarsening
    /// doubles windows), at least one second.
    pub fn common_window(parts: &[(f64, &Timeline)]) -> f64 {
        let mut lengths: Vec<f64> = parts
            .iter()
            .flat_map(|(_, t)| t.samples.iter().map(|s| s.window))
            .filter(|w| *w > 0.0)
            .collect();
        if lengths.is_empty() {
            return 1.0;
        }
        lengths.sort_by(f64::total_cmp);
        let median = lengths[lengths.len() / 2];
        2f64.powi(median.log2().round() as i32).max(1.0)
    }

    /// The timelines of several runs that ran side by side (the shards of
    /// one run), each `offset` seconds after the earliest, as one timeline
    /// on one grid: windows of [`Timeline::common_window`] seconds from the
    /// common start, `t = k * window`, never overlapping. Each sample goes
    /// whole into the window its middle falls in (a sample is never split:
    /// its histogram cannot be). Counters add, percentiles come from the
    /// added histograms (exact), active users are each run's highest in the
    /// window, added over the runs. The last window ends where the latest
    /// sample does.
    pub fn aligned(parts: &[(f64, &Timeline)]) -> Timeline {
        let w = Self::common_window(parts);
        let end = parts
            .iter()
            .flat_map(|(o, t)| t.samples.iter().map(move |s| o + s.t + s.window.max(0.0)))
            .fold(0.0, f64::max);
        // cell -> samples falling in it, with the run each came from.
        let mut cells: std::collections::BTreeMap<u64, Vec<(usize, &TimelineSample)>> =
            Default::default();
        for (run, (offset, t)) in parts.iter().enumerate() {
            for s in &t.samples {
                let k = (s.middle(*offset).max(0.0) / w).floor() as u64;
                cells.entry(k).or_default().push((run, s));
            }
        }
        let samples = cells
            .into_iter()
            .map(|(k, members)| {
                let start = k as f64 * w;
                let window = (end - start).clamp(f64::MIN_POSITIVE, w);
                let mut users = vec![0u64; parts.len()];
                for (run, s) in &members {
                    users[*run] = users[*run].max(s.active_users);
                }
                let samples: Vec<&TimelineSample> = members.iter().map(|(_, s)| *s).collect();
                let users = users.iter().fold(0u64, |n, u| n.saturating_add(*u));
                TimelineSample::combine(start, window, &samples, users)
            })
            .collect();
        Timeline { samples }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A one-second window at `t` without a histogram (as in older
    /// reports).
    fn sample(t: f64, requests: u64, p99: f64) -> TimelineSample {
        TimelineSample {
            p50_ms: p99 / 2.0,
            p95_ms: p99,
            p99_ms: p99,
            max_ms: p99,
            ..TimelineSample::counts(t, 1.0, requests, 0, 0, 1)
        }
    }

    /// A window at `t`, `window` long, of one request per latency in
    /// `latencies_ms`, as the engine makes it.
    fn measured(t: f64, window: f64, latencies_ms: &[u64], users: u64) -> TimelineSample {
        let mut iv = IntervalStats::default();
        for ms in latencies_ms {
            iv.requests += 1;
            iv.latency.record(Duration::from_millis(*ms));
        }
        TimelineSample::from_interval(t, window, &iv, users)
    }

    fn histogram_of(latencies_ms: impl IntoIterator<Item = u64>) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for ms in latencies_ms {
            h.record(Duration::from_millis(ms));
        }
        h
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

    #[test]
    fn coarsened_windows_have_the_percentiles_of_both() {
        // 99 fast requests in one window, one slow in the next: together
        // the p50 is fast, which "the worse of the two" (100 ms) is not.
        let a = measured(0.0, 1.0, &[10; 99], 3);
        let b = measured(1.0, 1.0, &[100], 4);
        let c = TimelineSample::coarsen(&a, &b);
        let union = histogram_of([10; 99].into_iter().chain([100]));
        assert_eq!(c.latency.as_ref().unwrap().decode(), union);
        assert_eq!(c.p50_ms, union.quantile_micros(0.5) as f64 / 1000.0);
        assert!(c.p50_ms < 11.0, "{}", c.p50_ms);
        assert_eq!(c.max_ms, union.max_micros() as f64 / 1000.0);
        assert_eq!(
            (c.t, c.window, c.requests, c.active_users),
            (0.0, 2.0, 100, 4)
        );
    }

    #[test]
    fn shard_windows_merge_exactly() {
        // Shard 0: 90 requests at 5..95 ms; shard 1: 10 at 400 ms. The
        // highest shard p50 (400 ms) is far from the union's p50.
        let fast: Vec<u64> = (5..95).collect();
        let one = Timeline {
            samples: vec![measured(0.0, 1.0, &fast, 2)],
        };
        let two = Timeline {
            samples: vec![measured(0.0, 1.0, &[400; 10], 3)],
        };
        let merged = Timeline::aligned(&[(0.0, &one), (0.0, &two)]);
        let [m] = merged.samples() else {
            panic!("{merged:?}")
        };
        let union = histogram_of(fast.iter().copied().chain([400; 10]));
        assert_eq!(m.latency.as_ref().unwrap().decode(), union);
        for (got, q) in [(m.p50_ms, 0.5), (m.p95_ms, 0.95), (m.p99_ms, 0.99)] {
            assert_eq!(got, union.quantile_micros(q) as f64 / 1000.0, "q{q}");
        }
        assert!(m.p50_ms < 100.0);
        assert_eq!((m.requests, m.active_users), (100, 5));
    }

    #[test]
    fn windows_without_histograms_merge_as_an_upper_bound() {
        let one = Timeline {
            samples: vec![sample(0.0, 10, 20.0)],
        };
        let two = Timeline {
            samples: vec![measured(0.0, 1.0, &[50; 10], 1)],
        };
        let merged = Timeline::aligned(&[(0.0, &one), (0.0, &two)]);
        let m = &merged.samples()[0];
        assert_eq!(m.latency, None);
        // The slower shard's figures (about 50 ms), not the faster's 20 ms.
        assert_eq!(
            (m.p50_ms, m.p99_ms),
            (two.samples[0].p50_ms, two.samples[0].p99_ms)
        );
        assert!(m.p50_ms >= 50.0);
        assert_eq!(m.requests, 20);
    }

    #[test]
    fn uneven_windows_of_shards_land_on_one_grid_without_overlap() {
        // The engine's windows drift by a tick: 1.002 s, 1.248 s, 1.0 s...
        // The second shard started 0.4 s after the first.
        let starts = [0.0, 1.002, 2.250, 3.250, 4.5];
        let shard = |users: u64| Timeline {
            samples: starts
                .windows(2)
                .map(|w| measured(w[0], w[1] - w[0], &[10, 20, 30], users))
                .collect(),
        };
        let (a, b) = (shard(2), shard(5));
        let merged = Timeline::aligned(&[(0.0, &a), (0.4, &b)]);
        let s = merged.samples();
        assert_eq!(Timeline::common_window(&[(0.0, &a), (0.4, &b)]), 1.0);
        for x in s {
            assert_eq!(x.t, x.t.round(), "{x:?} is not on the grid");
            assert!(x.window > 0.0 && x.window <= 1.0);
        }
        for pair in s.windows(2) {
            assert!(pair[0].t + pair[0].window <= pair[1].t, "{pair:?} overlap");
        }
        // Nothing lost, nothing counted twice.
        let total: u64 = s.iter().map(|x| x.requests).sum();
        assert_eq!(total, 2 * 4 * 3);
        let mut all = LatencyHistogram::new();
        for x in s {
            all.merge(&x.latency.as_ref().unwrap().decode());
        }
        assert_eq!(all, histogram_of([10, 20, 30].repeat(8)));
        // The last window ends with the latest sample (0.4 + 4.5 s).
        let last = s.last().unwrap();
        assert!((last.t + last.window - 4.9).abs() < 1e-9, "{last:?}");
    }

    #[test]
    fn coarsened_timelines_merge_on_their_coarser_grid() {
        let shard = |w: f64| Timeline {
            samples: (0..6)
                .map(|i| measured(i as f64 * w, w, &[10], 1))
                .collect(),
        };
        let (a, b) = (shard(2.0), shard(2.0));
        assert_eq!(Timeline::common_window(&[(0.0, &a), (0.0, &b)]), 2.0);
        let t: Vec<f64> = Timeline::aligned(&[(0.0, &a), (0.0, &b)])
            .samples()
            .iter()
            .map(|s| s.t)
            .collect();
        assert_eq!(t, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }

    #[test]
    fn damaged_window_histograms_are_refused_when_read() {
        let good = serde_json::to_string(&measured(0.0, 1.0, &[10], 1)).unwrap();
        let back: TimelineSample = serde_json::from_str(&good).unwrap();
        assert_eq!(back.latency.unwrap().decode(), histogram_of([10]));
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let mut bad = v.clone();
        bad["latency"] = "bm90IGEgaGlzdG9ncmFt".into();
        assert!(serde_json::from_value::<TimelineSample>(bad).is_err());
        // Older reports have no histogram at all: still read.
        let mut old = v;
        old.as_object_mut().unwrap().remove("latency");
        assert_eq!(
            serde_json::from_value::<TimelineSample>(old)
                .unwrap()
                .latency,
            None
        );
    }

    /// The size a window's histogram adds to a report, for a busy window:
    /// 2,000 requests spread from 2 ms to about 2 s (a long tail). Run with
    /// `--nocapture` to see the figure.
    #[test]
    fn a_busy_windows_histogram_stays_small() {
        let mut rng = fastrand::Rng::with_seed(7);
        let latencies: Vec<u64> = (0..2000)
            .map(|_| {
                // Log-uniform: every decade of latency as likely.
                let e = rng.f64() * 3.0;
                (2.0 * 10f64.powf(e)) as u64
            })
            .collect();
        let s = measured(0.0, 1.0, &latencies, 50);
        let bytes = s.latency.as_ref().unwrap().encoded_len();
        println!("window histogram: {bytes} bytes of base64 for 2000 requests");
        assert!(bytes < 4096, "{bytes} bytes");
    }
}
