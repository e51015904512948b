//! How a figure is written: milliseconds, percentages, rates and counts.
//!
//! The gates write their thresholds and measured values with these, and so
//! does every report renderer, so a figure reads the same in a gate verdict,
//! the terminal, Markdown, JUnit and HTML. It sits below both (it imports
//! nothing of the crate) so neither has to import the other for it.

/// Milliseconds with a precision that suits their size: `1,234.5ms`,
/// `312.4ms`, `4.21ms`, `0.412ms`.
pub fn millis(v: f64) -> String {
    // Decide on the rounded value, so 999.96 reads `1,000.0ms`.
    if v >= 999.95 {
        let tenths = (v * 10.0).round() as u64;
        format!("{}.{}ms", group(tenths / 10), tenths % 10)
    } else if v >= 99.995 {
        format!("{v:.1}ms")
    } else if v >= 0.9995 {
        format!("{v:.2}ms")
    } else {
        format!("{v:.3}ms")
    }
}

/// A fraction as a percentage with up to three decimals: `1.25%`, `100%`.
/// A fraction that is not exactly 0 or 1 never reads as `0%` or `100%`.
pub fn percent(v: f64) -> String {
    let shown = trim_float(v * 100.0, 3);
    if shown == "100" && v < 1.0 {
        ">99.999%".to_string()
    } else if shown == "0" && v > 0.0 {
        "<0.001%".to_string()
    } else {
        format!("{shown}%")
    }
}

/// Requests per second with one decimal: `98.1/s`.
pub fn per_second(v: f64) -> String {
    format!("{v:.1}/s")
}

/// `v` with at most `places` decimals, trailing zeros removed.
pub fn trim_float(v: f64, places: usize) -> String {
    let s = format!("{v:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_never_round_to_the_extremes() {
        assert_eq!(percent(0.0125), "1.25%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.9999999), ">99.999%");
        assert_eq!(percent(0.0000001), "<0.001%");
    }

    #[test]
    fn millis_precision_follows_size() {
        assert_eq!(millis(1234.56), "1,234.6ms");
        assert_eq!(millis(999.96), "1,000.0ms");
        assert_eq!(millis(312.44), "312.4ms");
        assert_eq!(millis(4.213), "4.21ms");
        assert_eq!(millis(0.4123), "0.412ms");
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
