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

/// The most samples a decoded histogram may hold (2^53, exact in an
/// `f64`). Real runs stay many orders of magnitude below; the bound keeps
/// the sums of counts (quantiles add bucket counts, merges add histograms)
/// far from overflowing `u64`.
pub const MAX_COUNT: u64 = 1 << 53;

/// The highest value a decoded histogram may declare it tracks, in
/// microseconds: 2^36 (about 19 hours, well above [`MAX_MICROS`]). The
/// counts array is allocated for this range when decoding, before any
/// count is read.
pub const MAX_TRACKABLE: u64 = 1 << 36;

/// The V2 header: cookie, payload length, normalising offset, significant
/// digits, lowest and highest trackable values, integer-to-double ratio.
const V2_HEADER_LEN: usize = 40;
/// The cookies of plain and deflate-compressed V2 encodings.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// The largest V2 payload (the counts, varint-encoded) a decoded histogram
/// may declare: one with [`SIGNIFICANT_DIGITS`] and [`MAX_TRACKABLE`] has
/// about 28,000 counts of at most 9 bytes each.
const MAX_PAYLOAD: usize = 1 << 20;

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
    ///
    /// The encoding comes from a file, so it is bounded before
    /// hdrhistogram sees it: hdrhistogram allocates the declared payload
    /// length and a counts array for the declared range before reading a
    /// single count. Here the decompressed encoding is read through
    /// [`Read::take`](std::io::Read::take) (a deflate bomb stops at the
    /// bound), and the header must declare at most [`SIGNIFICANT_DIGITS`]
    /// digits, a lowest trackable value of 1, a highest of at most
    /// [`MAX_TRACKABLE`] and a payload that fits what follows it. Once
    /// decoded, the total count must be at most [`MAX_COUNT`].
    pub fn from_base64(s: &str) -> Result<Self, HistogramDecodeError> {
        let err = |m: String| HistogramDecodeError(m);
        let bytes = BASE64
            .decode(s.trim())
            .map_err(|e| err(format!("invalid base64: {e}")))?;
        let plain = plain_v2(&bytes)?;
        check_header(&plain)?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut plain.as_slice())
            .map_err(|e| err(format!("invalid HdrHistogram V2 data: {e:?}")))?;
        let mut total: u64 = 0;
        for v in h.iter_recorded() {
            total = total
                .checked_add(v.count_at_value())
                .filter(|t| *t <= MAX_COUNT)
                .ok_or_else(|| {
                    err(format!(
                        "more than {MAX_COUNT} samples: not the histogram of a run"
                    ))
                })?;
        }
        h.auto(true);
        Ok(Self(h))
    }
}

/// The plain V2 encoding in `bytes`: as is, or decompressed (bounded).
fn plain_v2(bytes: &[u8]) -> Result<Vec<u8>, HistogramDecodeError> {
    use std::io::Read as _;
    let err = |m: &str| HistogramDecodeError(format!("invalid HdrHistogram V2 data: {m}"));
    let word = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match word(0) {
        Some(V2_COOKIE) => Ok(bytes.to_vec()),
        Some(V2_COMPRESSED_COOKIE) => {
            let len = word(4).ok_or_else(|| err("truncated header"))? as usize;
            let body = bytes
                .get(8..)
                .filter(|b| b.len() >= len)
                .map(|b| &b[..len])
                .ok_or_else(|| err("compressed length beyond the data"))?;
            let limit = (V2_HEADER_LEN + MAX_PAYLOAD) as u64;
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| err(&format!("cannot inflate: {e}")))?;
            if out.len() as u64 > limit {
                return Err(err("inflates beyond any histogram of a run"));
            }
            Ok(out)
        }
        _ => Err(err("not a V2 encoding (unknown cookie)")),
    }
}

/// Refuses a plain V2 header whose declared sizes would make hdrhistogram
/// allocate more than a histogram of a run needs.
fn check_header(plain: &[u8]) -> Result<(), HistogramDecodeError> {
    let err = |m: String| HistogramDecodeError(format!("invalid HdrHistogram V2 data: {m}"));
    if plain.len() < V2_HEADER_LEN {
        return Err(err("truncated header".to_string()));
    }
    let u32_at = |at: usize| u32::from_be_bytes(plain[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_be_bytes(plain[at..at + 8].try_into().expect("8 bytes"));
    if u32_at(0) != V2_COOKIE {
        return Err(err("not a V2 encoding (unknown cookie)".to_string()));
    }
    let payload = u32_at(4) as usize;
    if payload > MAX_PAYLOAD || payload > plain.len() - V2_HEADER_LEN {
        return Err(err(format!(
            "declares a payload of {payload} bytes where {} follow",
            plain.len() - V2_HEADER_LEN
        )));
    }
    let digits = u32_at(12);
    if digits == 0 || digits > u32::from(SIGNIFICANT_DIGITS) {
        return Err(err(format!(
            "{digits} significant digits (convoy keeps {SIGNIFICANT_DIGITS})"
        )));
    }
    let (low, high) = (u64_at(16), u64_at(24));
    if low != 1 {
        return Err(err(format!("lowest trackable value {low} (expected 1)")));
    }
    if high > MAX_TRACKABLE {
        return Err(err(format!(
            "highest trackable value {high} (at most {MAX_TRACKABLE} microseconds)"
        )));
    }
    Ok(())
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

    fn plain(h: &Histogram<u64>) -> Vec<u8> {
        let mut buf = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(h, &mut buf)
            .unwrap();
        buf
    }

    fn decode_err(bytes: &[u8]) -> String {
        LatencyHistogram::from_base64(&BASE64.encode(bytes))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_longest_latency_recorded_reads_back() {
        let h = hist(&[1, MAX_MICROS]);
        assert_eq!(LatencyHistogram::from_base64(&h.to_base64()).unwrap(), h);
        // Plain (uncompressed) V2 is accepted too.
        let back = LatencyHistogram::from_base64(&BASE64.encode(plain(h.inner()))).unwrap();
        assert_eq!(back.count(), 2);
    }

    #[test]
    fn declared_sizes_beyond_a_run_are_refused_before_allocating() {
        let wide = Histogram::<u64>::new_with_bounds(1, MAX_TRACKABLE * 4, 3).unwrap();
        assert!(decode_err(&plain(&wide)).contains("highest trackable value"));
        let precise = Histogram::<u64>::new_with_bounds(1, 1000, 5).unwrap();
        assert!(decode_err(&plain(&precise)).contains("significant digits"));
        let mut long = plain(&hist(&[5]).0);
        long[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            decode_err(&long).contains("declares a payload"),
            "{}",
            decode_err(&long)
        );
        let mut low = plain(&hist(&[5]).0);
        low[16..24].copy_from_slice(&1000u64.to_be_bytes());
        assert!(decode_err(&low).contains("lowest trackable"));
        assert!(decode_err(&plain(&hist(&[5]).0)[..20]).contains("truncated"));
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_bound() {
        use std::io::Write as _;
        let mut inner = plain(&hist(&[5]).0)[..V2_HEADER_LEN].to_vec();
        inner.resize(64 << 20, 0);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&inner).unwrap();
        let body = z.finish().unwrap();
        let mut bytes = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        bytes.extend((body.len() as u32).to_be_bytes());
        bytes.extend(body);
        assert!(decode_err(&bytes).contains("inflates beyond"));
        // A compressed length beyond the data.
        let mut short = hist(&[5]).to_base64();
        short = BASE64.encode(&BASE64.decode(short).unwrap()[..12]);
        assert!(LatencyHistogram::from_base64(&short).is_err());
    }

    #[test]
    fn counts_whose_sum_overflows_are_refused() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
        h.record_n(10, 1 << 62).unwrap();
        h.record_n(20, 1 << 62).unwrap();
        h.record_n(30, 1 << 62).unwrap();
        h.record_n(40, 1 << 62).unwrap();
        assert!(decode_err(&plain(&h)).contains("more than"));
        let mut ok = Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
        ok.record_n(10, MAX_COUNT).unwrap();
        assert!(LatencyHistogram::from_base64(&BASE64.encode(plain(&ok))).is_ok());
    }
}
