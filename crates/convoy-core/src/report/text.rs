//! The terminal summary: a headline, a table of steps with latency
//! percentiles, counts by status and by error cause, then what decides the
//! verdict: gates, checks, violations, the first failure examples, and the
//! comparison with a baseline when there is one.

use std::fmt::Write as _;

use tabled::builder::Builder;
use tabled::settings::object::{Columns, Rows};
use tabled::settings::{Alignment, Modify, Style};

use super::compare::{Change, Comparison};
use super::verdict::{stop_explanation, stop_heading};
use super::{Report, StepReport, Verdict};
use crate::engine::{StepKind, StopReason};
use crate::plan::format_duration;
/// Thousands grouping lives in [`crate::units`] with the other number
/// formats; renderers keep reading it from here.
pub use crate::units::group;

/// Failure examples shown in the terminal (the other formats show all).
const SHOWN_FAILURES: usize = 3;

/// What a table shows for a figure that was never measured (a latency of a
/// step that got no response), in every format.
pub const NO_VALUE: &str = "–";

/// Renders the summary shown at the end of a run.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let o = &report.overall;
    let _ = writeln!(
        out,
        "convoy {} · {} · {}",
        report.command,
        report.target_label(),
        report.load_model.describe()
    );
    if report.partial || report.stop_reason != StopReason::Completed {
        let _ = writeln!(
            out,
            "{} — partial result: {}; the figures cover what ran.",
            stop_heading(report.stop_reason),
            stop_explanation(report.stop_reason)
        );
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
    // Only the open model queues arrivals; in the closed model the two
    // differ by the time to build a request, which is not worth a line.
    let open = matches!(report.load_model, crate::plan::LoadModel::Open(_));
    if open && o.latency_ms.p99 > o.service_ms.p99 * 1.05 {
        let _ = writeln!(
            out,
            "queueing: p99 latency from scheduled start {} ms vs service time {} ms (coordinated omission corrected)",
            fixed(o.latency_ms.p99, 2),
            fixed(o.service_ms.p99, 2)
        );
    }
    checks_section(&mut out, report);
    violations_section(&mut out, report);
    if !report.gates.is_empty() {
        out.push('\n');
        out.push_str(&gates_table(report));
    }
    if let Some(c) = &report.comparison {
        out.push('\n');
        out.push_str(&render_comparison(c));
    }
    failures_section(&mut out, report);
    let verdict = Verdict::of(report);
    if verdict.gates > 0 || verdict.check_evaluations > 0 || !verdict.passed() {
        let _ = writeln!(out, "\n{}", verdict.headline());
    }
    out
}

fn gates_table(report: &Report) -> String {
    let mut b = Builder::default();
    b.push_record(["gate", "threshold", "actual", "verdict"]);
    for g in &report.gates {
        let subject = if g.scope == "overall" {
            g.metric.clone()
        } else {
            format!("{} {}", g.scope, g.metric)
        };
        b.push_record([
            subject,
            g.threshold.clone(),
            g.actual_display.clone(),
            if g.passed { "pass" } else { "FAIL" }.to_string(),
        ]);
    }
    let mut t = b.build();
    t.with(Style::rounded())
        .with(Modify::new(Columns::new(2..3)).with(Alignment::right()))
        .with(Modify::new(Rows::first()).with(Alignment::center()));
    format!("SLA gates\n{t}\n")
}

fn checks_section(out: &mut String, report: &Report) {
    if report.checks.is_empty() {
        return;
    }
    let total: u64 = report.checks.iter().fold(0u64, |n, c| {
        n.saturating_add(c.passes).saturating_add(c.failures)
    });
    let failed = report.check_failures();
    let _ = writeln!(
        out,
        "checks: {} evaluations, {} failed ({} passed)",
        group(total),
        group(failed),
        super::format::percent(report.checks_pass_rate())
    );
    for c in report.checks.iter().filter(|c| c.failures > 0) {
        let _ = writeln!(
            out,
            "  ✗ {} › {}: {} of {} failed",
            c.step,
            c.name,
            group(c.failures),
            group(c.passes + c.failures)
        );
    }
    for c in report.checks.iter().filter(|c| c.passes + c.failures == 0) {
        let _ = writeln!(out, "  – {} › {}: never evaluated", c.step, c.name);
    }
}

fn violations_section(out: &mut String, report: &Report) {
    let found: Vec<String> = report
        .violations
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(v, n)| format!("{v} × {}", group(*n)))
        .collect();
    if !found.is_empty() {
        let _ = writeln!(out, "VIOLATIONS: {}", found.join(", "));
    } else if report.scenario.is_some() && !report.violations.is_empty() {
        let _ = writeln!(out, "violations: none");
    }
    if report.auth_renewals > 0 {
        let _ = writeln!(
            out,
            "auth renewals: {} (tokens renewed mid-run by a fresh login)",
            group(report.auth_renewals)
        );
    }
}

fn failures_section(out: &mut String, report: &Report) {
    if report.failures.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nfailure examples (first {} of {} kept, redacted):",
        report.failures.len().min(SHOWN_FAILURES),
        report.failures.len()
    );
    for f in report.failures.iter().take(SHOWN_FAILURES) {
        let _ = writeln!(
            out,
            "  {} › {} (vu {}, iteration {}): {}",
            f.step, f.check, f.vu, f.iteration, f.message
        );
        for (label, text) in [("request ", &f.request), ("response", &f.response)] {
            if let Some(first) = text.lines().find(|l| !l.trim().is_empty()) {
                let _ = writeln!(out, "    {label}  {}", first.trim_end());
            }
        }
    }
}

/// The comparison with a baseline as a terminal table: only the rows that
/// moved beyond the tolerance, then a one-line summary.
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = format!(
        "compared with baseline {}: {}\n",
        c.baseline_run_id,
        c.summary()
    );
    if let Some(warning) = c.mismatch_warning() {
        let _ = writeln!(out, "WARNING: {warning}");
    }
    let moved: Vec<_> = c
        .rows
        .iter()
        .filter(|r| r.change != Change::Unchanged)
        .collect();
    if moved.is_empty() {
        let _ = writeln!(out, "every figure within the tolerance");
        return out;
    }
    let mut b = Builder::default();
    b.push_record([
        "step", "figure", "baseline", "current", "change", "change %", "noise ±", "verdict",
    ]);
    for r in moved {
        let f = r.figure;
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| f.format(v));
        b.push_record([
            r.step.clone(),
            f.name().to_string(),
            show(r.baseline),
            show(r.current),
            r.delta.map_or("-".to_string(), |d| f.format_delta(d)),
            r.relative
                .map_or("-".to_string(), |x| format!("{:+.1}%", x * 100.0)),
            r.noise.map_or("n/a".to_string(), |n| f.format(n)),
            r.change.label().to_string(),
        ]);
    }
    let mut t = b.build();
    t.with(Style::rounded())
        .with(Modify::new(Columns::new(2..7)).with(Alignment::right()))
        .with(Modify::new(Rows::first()).with(Alignment::center()));
    let _ = writeln!(out, "{t}");
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
        // A step without a single response has no latency, not a 0 ms one.
        let ms = |v: f64| {
            if s.has_latency() {
                fixed(v, 2)
            } else {
                NO_VALUE.to_string()
            }
        };
        b.push_record([
            match s.kind {
                StepKind::Request => s.name.clone(),
                StepKind::Journey => format!("{} (journey)", s.name),
            },
            group(s.requests),
            fixed(s.rps, 1),
            format!("{} ({})", group(s.errors), percent(s.error_rate)),
            ms(l.p50),
            ms(l.p90),
            ms(l.p95),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(l.mean),
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

/// A float with `places` decimals.
pub fn fixed(v: f64, places: usize) -> String {
    format!("{v:.places$}")
}

/// A fraction as a percentage: `0.0123` → `1.23 %`.
pub fn percent(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}
