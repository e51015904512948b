//! A latency histogram in microseconds: an HdrHistogram with 3 significant
//! digits that serialises as HdrHistogram V2 (deflate, base64), the format of
//! HdrHistogram log files, so results can be merged exactly after a round
//! trip through JSON.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Significant digits kept by every histogram: values are exact to 0.1 %.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// The largest value recorded, in microseconds (one hour); longer values are
/// clamped so that a pathological sample cannot blow up memory.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A mergeable latency histogram in microseconds.
///
/// Memory grows with the largest value recorded (auto-resize), not with the
/// number of samples: a run of any length at a given latency range has a
/// constant footprint.
#[derive(Clone, PartialEq)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .field("max_us", &self.0.max())
            .finish()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let mut h = Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits are valid");
        h.auto(true);
        Self(h)
    }

    /// Records one duration.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.record_micros(d.as_micros().min(MAX_MICROS as u128) as u64);
    }

    /// Records one value in microseconds (clamped to 1 µs ..= one hour).
    #[inline]
    pub fn record_micros(&mut self, us: u64) {
        // Auto-resize is on and the value is clamped, so recording cannot fail.
        let _ = self.0.record(us.clamp(1, MAX_MICROS));
    }

    /// Adds every sample of `other` into `self`: exact merge.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Auto-resize is on, so adding cannot fail for lack of range.
        let _ = self.0.add(&other.0);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// True when no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn quantile_micros(&self, q: f64) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// Largest value in microseconds (0 when empty).
    pub fn max_micros(&self) -> u64 {
        if self.is_empty() { 0 } else { self.0.max() }
    }

    /// Smallest value in microseconds (0 when empty).
    pub fn min_micros(&self) -> u64 {
        if self.is_empty() { 0 } else { self.0.min() }
    }

    /// Mean in microseconds (0 when empty).
    pub fn mean_micros(&self) -> f64 {
        if self.is_empty() { 0.0 } else { self.0.mean() }
    }

    /// Empties the histogram, keeping its allocation.
    pub fn reset(&mut self) {
        self.0.reset();
    }

    /// The underlying HdrHistogram.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Encodes as base64 of the HdrHistogram V2 deflate encoding.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::with_capacity(256);
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut buf)
            .expect("serialising into a Vec cannot fail");
        BASE64.encode(buf)
    }

    /// Decodes the output of [`LatencyHistogram::to_base64`] (plain V2 is
    /// accepted too).
    pub fn from_base64(s: &str) -> Result<Self, HistogramDecodeError> {
        let bytes = BASE64
            .decode(s.trim())
            .map_err(|e| HistogramDecodeError(format!("invalid base64: {e}")))?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistogramDecodeError(format!("invalid HdrHistogram V2 data: {e:?}")))?;
        h.auto(true);
        Ok(Self(h))
    }
}

/// A serialised histogram could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode histogram: {0}")]
pub struct HistogramDecodeError(String);

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LatencyHistogram::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for &v in values {
            h.record_micros(v);
        }
        h
    }

    #[test]
    fn quantiles_are_exact_to_three_digits() {
        let h = hist(&(1..=10_000).collect::<Vec<_>>());
        let p50 = h.quantile_micros(0.5) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.001, "p50 {p50}");
        let p99 = h.quantile_micros(0.99) as f64;
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.001, "p99 {p99}");
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn merge_equals_recording_the_union() {
        let a: Vec<u64> = (0..5000).map(|i| 100 + i * 7 % 9000).collect();
        let b: Vec<u64> = (0..3000).map(|i| 20_000 + i * 13 % 1_000_000).collect();
        let mut merged = hist(&a);
        merged.merge(&hist(&b));
        let union = hist(&[a, b].concat());
        assert_eq!(merged, union);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.quantile_micros(q), union.quantile_micros(q));
        }
    }

    #[test]
    fn base64_round_trip_is_lossless() {
        let h = hist(&[1, 5, 900, 20_000, 20_013, 3_000_000]);
        let back = LatencyHistogram::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back, h);
        let json = serde_json::to_string(&h).unwrap();
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(LatencyHistogram::from_base64("not base64!").is_err());
        assert!(LatencyHistogram::from_base64("aGVsbG8gd29ybGQ=").is_err());
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut h = LatencyHistogram::new();
        h.record_micros(0);
        h.record_micros(u64::MAX);
        assert_eq!(h.count(), 2);
        assert!(h.max_micros() >= MAX_MICROS);
        assert_eq!(h.min_micros(), 1);
    }
}
