//! A latency histogram drawn in text, as oha prints one after a benchmark:
//! equal-width buckets from the fastest answer to the slowest, each with
//! its count and a bar scaled to the fullest bucket. Terminal output only;
//! the report files carry the histogram itself.

use std::fmt::Write as _;

use crate::metrics::LatencyHistogram;
use crate::units::group;

/// Buckets drawn (fewer when there are fewer samples).
const BUCKETS: usize = 10;

/// The longest bar, in characters.
const MAX_BAR: usize = 40;

/// The histogram of `h` as lines of at most `width` characters (no limit
/// when `None`), under a heading; empty when `h` holds nothing.
pub fn render(h: &LatencyHistogram, width: Option<usize>) -> String {
    if h.is_empty() {
        return String::new();
    }
    let inner = h.inner();
    let (lo, hi) = (h.min_micros(), h.max_micros());
    let buckets = BUCKETS.min(h.count() as usize).max(1);
    let span = (hi - lo).max(1);
    let mut counts = vec![0u64; buckets];
    for v in inner.iter_recorded() {
        let value = v.value_iterated_to().clamp(lo, hi);
        let i = (((value - lo) as u128 * buckets as u128) / span as u128) as usize;
        counts[i.min(buckets - 1)] += v.count_at_value();
    }
    let upper = |i: usize| (lo as f64 + span as f64 * (i + 1) as f64 / buckets as f64) / 1000.0;
    let labels: Vec<String> = (0..buckets).map(|i| format!("{:.2}", upper(i))).collect();
    let numbers: Vec<String> = counts.iter().map(|&c| group(c)).collect();
    let label_w = labels.iter().map(String::len).max().unwrap_or(0);
    let count_w = numbers.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    // "  {label} ms [{count}] |"
    let prefix = 2 + label_w + 5 + count_w + 3;
    let room = width.map_or(MAX_BAR, |w| w.saturating_sub(prefix).min(MAX_BAR));
    let fullest = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut out =
        String::from("latency histogram (ms from scheduled start, bucket upper bounds):\n");
    for ((label, number), &count) in labels.iter().zip(&numbers).zip(&counts) {
        // A bucket with anything in it shows at least one mark.
        let len = (count as u128 * room as u128).div_ceil(fullest as u128) as usize;
        let _ = writeln!(
            out,
            "  {label:>label_w$} ms [{number:>count_w$}] |{}",
            "■".repeat(len.min(room))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_ms: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for &v in values_ms {
            h.record_micros(v * 1000);
        }
        h
    }

    #[test]
    fn counts_every_sample_and_scales_bars_to_the_fullest() {
        let values: Vec<u64> = (0..100).map(|i| if i < 90 { 10 } else { 100 }).collect();
        let text = render(&hist(&values), None);
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(rows.len(), BUCKETS);
        let count = |row: &str| -> u64 {
            let inside = &row[row.find('[').unwrap() + 1..row.find(']').unwrap()];
            inside.trim().replace(',', "").parse().unwrap()
        };
        assert_eq!(rows.iter().map(|r| count(r)).sum::<u64>(), 100);
        assert_eq!(count(rows[0]), 90);
        assert_eq!(count(rows[BUCKETS - 1]), 10);
        assert_eq!(rows[0].matches('■').count(), MAX_BAR);
        assert_eq!(rows[BUCKETS - 1].matches('■').count(), 5);
        assert_eq!(rows[1].matches('■').count(), 0);
    }

    #[test]
    fn fits_a_narrow_width_and_handles_one_sample() {
        let values: Vec<u64> = (1..=500).collect();
        let text = render(&hist(&values), Some(40));
        assert!(
            text.lines().skip(1).all(|l| l.chars().count() <= 40),
            "{text}"
        );
        assert_eq!(render(&hist(&[7]), None).lines().count(), 2);
        assert_eq!(render(&LatencyHistogram::new(), None), "");
    }
}
