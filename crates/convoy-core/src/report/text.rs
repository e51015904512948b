//! The terminal summary: a headline, a table of steps with latency
//! percentiles, counts by status and by error cause, then what decides the
//! verdict: gates, checks, violations, the first failure examples, and the
//! comparison with a baseline when there is one.
//!
//! Fitted to a width when the command line knows one (a terminal's, or
//! `COLUMNS`): tables leave out their least useful columns and shorten step
//! names (see [`super::fit`]), prose wraps; without a width, as for files
//! and pipes, everything is shown. Either way a percentile is shown only
//! when the step has the samples to support it (p99 needs 100), and the
//! report files keep every figure.

use std::fmt::Write as _;

use super::compare::{Change, Comparison};
use super::fit::{self, Col};
use super::verdict::{stop_explanation, stop_heading};
use super::{Report, StepReport, Verdict};
use crate::engine::StopReason;
use crate::plan::format_duration;
/// Thousands grouping lives in [`crate::units`] with the other number
/// formats; renderers keep reading it from here.
pub use crate::units::group;

/// Failure examples shown in the terminal (the other formats show all).
const SHOWN_FAILURES: usize = 3;

/// What a table shows for a figure that was never measured (a latency of a
/// step that got no response), in every format.
pub const NO_VALUE: &str = "–";

/// How the terminal summary is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// The screen's width in characters; `None` shows every column and
    /// wraps nothing (files, pipes).
    pub width: Option<usize>,
    /// Draw the overall latency histogram under the steps (`convoy bench`).
    pub histogram: bool,
}

/// Renders the summary shown at the end of a run, whole (no width).
pub fn render(report: &Report) -> String {
    render_with(report, TextOptions::default())
}

/// Renders the summary shown at the end of a run, laid out by `opts`.
pub fn render_with(report: &Report, opts: TextOptions) -> String {
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
    out.push_str(&steps_table(report, opts.width));
    out.push('\n');
    if opts.histogram {
        let bars = super::bars::render(&o.histograms.latency, opts.width);
        if !bars.is_empty() {
            out.push_str(&bars);
            out.push('\n');
        }
    }
    counts_section(&mut out, report);
    queueing_line(&mut out, report);
    checks_section(&mut out, report);
    violations_section(&mut out, report);
    if !report.gates.is_empty() {
        out.push('\n');
        out.push_str(&gates_table(report, opts.width));
    }
    if let Some(c) = &report.comparison {
        out.push('\n');
        out.push_str(&comparison(c, opts.width));
    }
    failures_section(&mut out, report);
    let verdict = Verdict::of(report);
    if verdict.gates > 0 || verdict.check_evaluations > 0 || !verdict.passed() {
        let _ = writeln!(out, "\n{}", verdict.headline());
    }
    fit::wrap_all(&out, opts.width)
}

/// What `convoy smoke` listed before its summary: journeys by outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmokeTally {
    /// Journeys listed (each once, however many times it ran).
    pub journeys: usize,
    /// Of those, journeys with a failed check.
    pub failed: usize,
    /// How many times each journey ran.
    pub iterations: u64,
    /// Whether the list printed anything (`-q` with every check passing
    /// prints nothing): the summary is then set apart by a blank line.
    pub listed: bool,
}

/// The short summary under `convoy smoke`'s check list, which has already
/// shown every check and its failures: one line of totals, the counts, the
/// gates as a list and the verdict. The latency table is in the report
/// files.
pub fn render_smoke(report: &Report, tally: SmokeTally, opts: TextOptions) -> String {
    let mut out = String::new();
    let o = &report.overall;
    if tally.listed {
        out.push('\n');
    }
    let _ = writeln!(out, "convoy smoke · {}", report.target_label());
    if report.partial || report.stop_reason != StopReason::Completed {
        let _ = writeln!(
            out,
            "{} — partial result: {}; the figures cover what ran.",
            stop_heading(report.stop_reason),
            stop_explanation(report.stop_reason)
        );
    }
    let evaluations: u64 = report.checks.iter().fold(0u64, |n, c| {
        n.saturating_add(c.passes).saturating_add(c.failures)
    });
    let times = if tally.iterations > 1 {
        format!(" × {} iterations", group(tally.iterations))
    } else {
        String::new()
    };
    let n = o.histograms.latency.count();
    let latency = if !o.has_latency() {
        String::new()
    } else if n >= samples_for(0.95) {
        format!(" · p95 {} ms", fixed(o.latency_ms.p95, 2))
    } else {
        format!(" · slowest {} ms", fixed(o.latency_ms.max, 2))
    };
    let _ = writeln!(
        out,
        "{} journeys{times}: {} passed, {} failed · {} checks, {} failed · {} requests in {}{latency}",
        tally.journeys,
        tally.journeys - tally.failed.min(tally.journeys),
        tally.failed,
        group(evaluations),
        group(report.check_failures()),
        group(o.requests),
        format_duration(report.duration()),
    );
    counts_section(&mut out, report);
    violations_section(&mut out, report);
    for g in &report.gates {
        let _ = writeln!(
            out,
            "{} gate {} (actual {})",
            if g.passed { "  ok  " } else { "  FAIL" },
            g.expression.trim(),
            g.actual_display
        );
    }
    let _ = writeln!(out, "{}", Verdict::of(report).headline());
    fit::wrap_all(&out, opts.width)
}

/// Counts by status and by transport error cause.
fn counts_section(out: &mut String, report: &Report) {
    let o = &report.overall;
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
}

/// Whether service time differs from latency enough to be shown beside it:
/// only the open model queues arrivals; in the closed model the two differ
/// by the time to build a request, which is not worth a column.
fn service_differs(report: &Report) -> bool {
    let o = &report.overall;
    matches!(report.load_model, crate::plan::LoadModel::Open(_))
        && o.has_latency()
        && o.latency_ms.p99 > o.service_ms.p99 * 1.05
}

fn queueing_line(out: &mut String, report: &Report) {
    let o = &report.overall;
    if service_differs(report) {
        let _ = writeln!(
            out,
            "queueing: p99 latency from scheduled start {} ms vs service time {} ms (coordinated omission corrected)",
            fixed(o.latency_ms.p99, 2),
            fixed(o.service_ms.p99, 2)
        );
    }
}

fn gates_table(report: &Report, width: Option<usize>) -> String {
    let cols = [
        Col::kept("gate", false),
        Col::kept("threshold", false),
        Col::kept("actual", true),
        Col::kept("verdict", false),
    ];
    let rows: Vec<Vec<String>> = report
        .gates
        .iter()
        .map(|g| {
            let subject = if g.scope == "overall" {
                g.metric.clone()
            } else {
                format!("{} {}", g.scope, g.metric)
            };
            vec![
                subject,
                g.threshold.clone(),
                g.actual_display.clone(),
                if g.passed { "pass" } else { "FAIL" }.to_string(),
            ]
        })
        .collect();
    format!("SLA gates\n{}", fit::table(&cols, &rows, width).text)
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
    comparison(c, None)
}

fn comparison(c: &Comparison, width: Option<usize>) -> String {
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
    let cols = [
        Col::kept("step", false),
        Col::kept("figure", false),
        Col::droppable("baseline", 1),
        Col::kept("current", true),
        Col::droppable("change", 2),
        Col::kept("change %", true),
        Col::droppable("noise ±", 3),
        Col::kept("verdict", false),
    ];
    let rows: Vec<Vec<String>> = moved
        .into_iter()
        .map(|r| {
            let f = r.figure;
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| f.format(v));
            vec![
                r.step.clone(),
                f.name().to_string(),
                show(r.baseline),
                show(r.current),
                r.delta.map_or("-".to_string(), |d| f.format_delta(d)),
                r.relative
                    .map_or("-".to_string(), |x| format!("{:+.1}%", x * 100.0)),
                r.noise.map_or("n/a".to_string(), |n| f.format(n)),
                r.change.label().to_string(),
            ]
        })
        .collect();
    let t = fit::table(&cols, &rows, width);
    out.push_str(&t.text);
    left_out_note(&mut out, &t.dropped, width);
    out
}

/// Says which columns a narrow screen left out, once under the table.
fn left_out_note(out: &mut String, dropped: &[String], width: Option<usize>) {
    if let (false, Some(w)) = (dropped.is_empty(), width) {
        let _ = writeln!(
            out,
            "(left out to fit {w} columns: {}; in the report files)",
            dropped.join(", ")
        );
    }
}

/// The fewest samples that support the percentile `q`: at least one sample
/// above it (p90 needs 10, p99 100, p99.9 1,000). Below that the figure is
/// the slowest sample under another name.
pub fn samples_for(q: f64) -> u64 {
    (1.0 / (1.0 - q)).round() as u64
}

/// The footnote for a percentile left out for want of samples.
const FEW_SAMPLES_NOTE: &str =
    "– too few samples for that percentile (p90 needs 10, p95 20, p99 100, p99.9 1,000)";

fn steps_table(report: &Report, width: Option<usize>) -> String {
    let service = service_differs(report);
    // Higher ranks are left out first on a narrow screen.
    let mut cols = vec![
        Col::kept("step", false),
        Col::kept("requests", true),
        Col::droppable("req/s", 5),
        Col::kept("errors", true),
        Col::droppable("p50 ms", 2),
        Col::droppable("p90 ms", 6),
        Col::kept("p95 ms", true),
        Col::droppable("p99 ms", 3),
        Col::droppable("p99.9 ms", 8),
        Col::droppable("max ms", 7),
        Col::droppable("mean ms", 9),
    ];
    if service {
        cols.push(Col::droppable("svc p50 ms", 4));
        cols.push(Col::droppable("svc p99 ms", 1));
    }
    let mut few_samples = false;
    let mut row = |s: &StepReport| {
        let l = &s.latency_ms;
        let n = s.histograms.latency.count();
        // A step without a single response has no latency, not a 0 ms one.
        let ms = |v: f64| {
            if s.has_latency() {
                fixed(v, 2)
            } else {
                NO_VALUE.to_string()
            }
        };
        let mut pct = |v: f64, q: f64| {
            if s.has_latency() && n < samples_for(q) {
                few_samples = true;
                NO_VALUE.to_string()
            } else {
                ms(v)
            }
        };
        let mut cells = vec![
            s.kind.label(&s.name),
            group(s.requests),
            fixed(s.rps, 1),
            format!("{} ({})", group(s.errors), percent(s.error_rate)),
            ms(l.p50),
            pct(l.p90, 0.90),
            pct(l.p95, 0.95),
            pct(l.p99, 0.99),
            pct(l.p999, 0.999),
            ms(l.max),
            ms(l.mean),
        ];
        if service {
            cells.push(ms(s.service_ms.p50));
            cells.push(pct(s.service_ms.p99, 0.99));
        }
        cells
    };
    let mut rows: Vec<Vec<String>> = report.shown_steps().map(&mut row).collect();
    if report.steps.len() > 1 {
        rows.push(row(&report.overall));
    }
    // A percentile no row has the samples for says nothing: it goes first.
    for (i, col) in cols.iter_mut().enumerate() {
        if col.drop_rank > 0 && rows.iter().all(|r| r[i] == NO_VALUE) {
            col.drop_rank = 10;
        }
    }
    let t = fit::table(&cols, &rows, width);
    let mut s = t.text;
    if few_samples {
        let _ = writeln!(s, "{FEW_SAMPLES_NOTE}");
    }
    if service {
        let _ = writeln!(
            s,
            "svc: service time, from the send; the other figures count from the scheduled start"
        );
    }
    left_out_note(&mut s, &t.dropped, width);
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
