//! Percentile summaries of latency histograms, in milliseconds, and
//! throughput: the figures a report shows for each step and the ones gates
//! judge.
//!
//! The summary is part of the `convoy.report/v1` schema (every step's
//! `latency_ms` and `service_ms`), yet it lives below [`crate::report`] and
//! [`crate::gate`] so that the live exporter can summarise a snapshot the
//! same way without building a report.

use serde::{Deserialize, Serialize};

use crate::metrics::LatencyHistogram;

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
}

impl LatencySummary {
    /// Summarises a histogram.
    pub fn of(h: &LatencyHistogram) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50: ms(h.quantile_micros(0.50)),
            p90: ms(h.quantile_micros(0.90)),
            p95: ms(h.quantile_micros(0.95)),
            p99: ms(h.quantile_micros(0.99)),
            p999: ms(h.quantile_micros(0.999)),
            max: ms(h.max_micros()),
            min: ms(h.min_micros()),
            mean: h.mean_micros() / 1000.0,
        }
    }
}

/// `count` per second over `duration_secs` (0 for a run of no length).
pub fn throughput(count: u64, duration_secs: f64) -> f64 {
    if duration_secs > 0.0 {
        count as f64 / duration_secs
    } else {
        0.0
    }
}
