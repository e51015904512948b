//! The terminal summary: a headline, a table of steps with latency
//! percentiles, and counts by status and by error cause.

use std::fmt::Write as _;

use tabled::builder::Builder;
use tabled::settings::object::{Columns, Rows};
use tabled::settings::{Alignment, Modify, Style};

use super::{Report, StepReport};
use crate::engine::StopReason;
use crate::plan::format_duration;

/// Renders the summary shown at the end of a run.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let o = &report.overall;
    let _ = writeln!(
        out,
        "convoy {} · {} · {}",
        report.command,
        report.target,
        report.load_model.describe()
    );
    if report.partial {
        let _ = writeln!(
            out,
            "PARTIAL RESULT: the run was stopped before its plan ended ({:?}); figures cover what ran.",
            report.stop_reason
        );
    } else if report.stop_reason != StopReason::Completed {
        let _ = writeln!(out, "stopped: {:?}", report.stop_reason);
    }
    let _ = writeln!(
        out,
        "{} requests in {} · {} req/s · {} errors ({}) · {} dropped · {} iterations{}",
        group(o.requests),
        format_duration(report.duration()),
        fixed(o.rps, 1),
        group(o.errors),
        percent(o.error_rate),
        group(o.dropped),
        group(report.iterations),
        if report.interrupted > 0 {
            format!(" · {} cut off at stop", group(report.interrupted))
        } else {
            String::new()
        }
    );
    out.push('\n');
    out.push_str(&steps_table(report));
    out.push('\n');
    if !o.status_counts.is_empty() {
        let codes: Vec<String> = o
            .status_counts
            .iter()
            .map(|(code, n)| format!("{code} × {}", group(*n)))
            .collect();
        let _ = writeln!(out, "status codes: {}", codes.join(", "));
    }
    if !o.error_counts.is_empty() {
        let causes: Vec<String> = o
            .error_counts
            .iter()
            .map(|(cause, n)| format!("{cause} × {}", group(*n)))
            .collect();
        let _ = writeln!(out, "transport errors: {}", causes.join(", "));
    }
    if o.latency_ms != o.service_ms && o.latency_ms.p99 > o.service_ms.p99 * 1.05 {
        let _ = writeln!(
            out,
            "queueing: p99 latency from scheduled start {} ms vs service time {} ms (coordinated omission corrected)",
            fixed(o.latency_ms.p99, 2),
            fixed(o.service_ms.p99, 2)
        );
    }
    out
}

fn steps_table(report: &Report) -> String {
    let mut b = Builder::default();
    b.push_record([
        "step", "requests", "req/s", "errors", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms",
        "max ms", "mean ms",
    ]);
    let mut push = |s: &StepReport| {
        let l = &s.latency_ms;
        b.push_record([
            s.name.clone(),
            group(s.requests),
            fixed(s.rps, 1),
            format!("{} ({})", group(s.errors), percent(s.error_rate)),
            fixed(l.p50, 2),
            fixed(l.p90, 2),
            fixed(l.p95, 2),
            fixed(l.p99, 2),
            fixed(l.p999, 2),
            fixed(l.max, 2),
            fixed(l.mean, 2),
        ]);
    };
    for s in &report.steps {
        push(s);
    }
    if report.steps.len() > 1 {
        push(&report.overall);
    }
    let mut t = b.build();
    t.with(Style::rounded())
        .with(Modify::new(Columns::new(1..)).with(Alignment::right()))
        .with(Modify::new(Rows::first()).with(Alignment::center()));
    let mut s = t.to_string();
    s.push('\n');
    s
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

/// A float with `places` decimals.
pub fn fixed(v: f64, places: usize) -> String {
    format!("{v:.places$}")
}

/// A fraction as a percentage: `0.0123` → `1.23 %`.
pub fn percent(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
