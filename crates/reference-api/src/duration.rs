//! Durations as fault values spell them (`20ms`, `1.5s`, `10-50ms`).
//!
//! The harness has its own parser for the same spellings (`plan` in
//! convoy-core). This one is a deliberate copy: the reference API depends on
//! no harness code, so the thing measured cannot drift into leaning on the
//! thing that measures it. The two accept the same inputs; the fault tests
//! pin this one.

use std::time::Duration;

/// Parses `20ms`, `1s`, `1.5s`, `2m`, or anything humantime accepts.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    // Decimal seconds and friends ("1.5s"), which humantime rejects.
    if let Some((num, unit)) = split_number(t)
        && num.contains('.')
    {
        let v: f64 = num.parse().ok()?;
        let secs = match unit {
            "ms" => v / 1000.0,
            "s" => v,
            "m" => v * 60.0,
            "h" => v * 3600.0,
            _ => return None,
        };
        return Duration::try_from_secs_f64(secs).ok();
    }
    humantime::parse_duration(t).ok()
}

fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)?;
    Some((&s[..end], s[end..].trim()))
}

/// The shortest spelling `parse_duration` reads back: `20ms`, `1.5s`, `2m`.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d.subsec_nanos() != 0 && d < Duration::from_secs(10) {
        let ms = d.as_secs_f64() * 1000.0;
        if ms < 1000.0 {
            return format!("{}ms", trim_float(ms));
        }
        return format!("{}s", trim_float(d.as_secs_f64()));
    }
    humantime::format_duration(Duration::from_secs(d.as_secs()))
        .to_string()
        .replace(' ', "")
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        for s in ["20ms", "1.5s", "2m", "1h", "250ms", "0s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Some(d), "{s}");
        }
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("nope"), None);
        assert_eq!(parse_duration(""), None);
    }
}
