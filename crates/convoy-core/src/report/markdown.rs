//! The Markdown report: what a GitHub step summary or a pull-request
//! comment shows. The verdict comes first, then the gates (the reason for
//! the verdict), the steps, checks, violations, the comparison with a
//! baseline, and the failure examples folded in `<details>`.
//!
//! One function per section, each skipped when it has nothing to say.

use std::fmt::Write as _;

use super::compare::{Change, Comparison};
use super::format::{millis, per_second, percent};
use super::text::NO_VALUE;
use super::text::group;
use super::verdict::{stop_explanation, stop_heading};
use super::{Report, StepReport, Verdict};
use crate::engine::StepKind;

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    headline(&mut out, report);
    summary(&mut out, report);
    gates(&mut out, report);
    steps(&mut out, report);
    checks(&mut out, report);
    violations(&mut out, report);
    if let Some(c) = &report.comparison {
        out.push_str(&render_comparison(c));
    }
    out.push_str(&super::trend::markdown(&report.trends));
    failures(&mut out, report);
    footer(&mut out, report);
    out
}

fn headline(out: &mut String, report: &Report) {
    let v = Verdict::of(report);
    let icon = if v.partial {
        "⚠️"
    } else if v.passed() {
        "✅"
    } else {
        "❌"
    };
    let what = report.scenario.as_deref().unwrap_or(&report.command);
    let _ = writeln!(
        out,
        "## {icon} convoy {} {}\n\n**{}**\n",
        code(what),
        v.heading(),
        cell(&v.detail())
    );
    let mut facts = Vec::new();
    if let Some(p) = &report.profile {
        facts.push(format!("**profile** {}", code(p)));
    }
    facts.push(match report.target_source {
        Some(s) => format!("**target** {} ({})", code(&report.target), s.describe()),
        None => format!("**target** {}", code(&report.target)),
    });
    facts.push(cell(&report.load_model.describe()));
    facts.push(crate::plan::format_duration(report.duration()));
    facts.push(format!("run {}", code(&report.run_id)));
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    if report.partial {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {}: {}; the figures cover what ran.\n",
            stop_heading(report.stop_reason),
            stop_explanation(report.stop_reason)
        );
    }
}

fn summary(out: &mut String, report: &Report) {
    let o = &report.overall;
    let l = &o.latency_ms;
    let _ = writeln!(
        out,
        "| requests | throughput | errors | p50 | p95 | p99 | max |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let ms = |v: f64| latency(o, v);
    let _ = writeln!(
        out,
        "| {} | {} | {} ({}) | {} | {} | {} | {} |\n",
        group(o.requests),
        per_second(o.rps),
        group(o.errors),
        percent(o.error_rate),
        ms(l.p50),
        ms(l.p95),
        ms(l.p99),
        ms(l.max)
    );
}

fn gates(out: &mut String, report: &Report) {
    if report.gates.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### SLA gates\n\n| | gate | threshold | actual |\n|---|---|---|---:|"
    );
    for g in &report.gates {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            if g.passed { "✅" } else { "❌" },
            code(&g.expression),
            cell(&g.threshold),
            cell(&g.actual_display)
        );
    }
    out.push('\n');
}

fn steps(out: &mut String, report: &Report) {
    if report.steps.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Steps\n\n| step | requests | req/s | errors | p50 | p90 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let row = |out: &mut String, s: &StepReport, name: String| {
        let l = &s.latency_ms;
        let ms = |v: f64| latency(s, v);
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {} ({}) | {} | {} | {} | {} | {} |",
            group(s.requests),
            s.rps,
            group(s.errors),
            percent(s.error_rate),
            ms(l.p50),
            ms(l.p90),
            ms(l.p95),
            ms(l.p99),
            ms(l.max)
        );
    };
    for s in report.shown_steps() {
        let name = match s.kind {
            StepKind::Request => code(&s.name),
            StepKind::Journey => format!("{} (journey)", code(&s.name)),
            StepKind::Event => format!("event {}", code(&s.name)),
            StepKind::Stream => format!("stream {}", code(&s.name)),
        };
        row(out, s, name);
    }
    if report.steps.len() > 1 {
        row(out, &report.overall, "**overall**".to_string());
    }
    out.push('\n');
}

/// A latency of `step`, or [`NO_VALUE`] when it has none.
fn latency(step: &StepReport, v: f64) -> String {
    if step.has_latency() {
        millis(v)
    } else {
        NO_VALUE.to_string()
    }
}

fn checks(out: &mut String, report: &Report) {
    if report.checks.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Checks\n\n{} passed overall\n\n| | step | check | passed | failed | pass rate |\n|---|---|---|---:|---:|---:|",
        percent(report.checks_pass_rate())
    );
    for c in &report.checks {
        // A check never evaluated neither passed nor failed.
        let evaluated = c.passes + c.failures > 0;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            if !evaluated {
                "➖ not run"
            } else if c.failures == 0 {
                "✅"
            } else {
                "❌"
            },
            code(&c.step),
            code(&c.name),
            group(c.passes),
            group(c.failures),
            if evaluated {
                percent(c.pass_rate)
            } else {
                NO_VALUE.to_string()
            }
        );
    }
    out.push('\n');
}

fn violations(out: &mut String, report: &Report) {
    if report.auth_renewals > 0 {
        let _ = writeln!(
            out,
            "Auth renewals: **{}** (tokens renewed mid-run by a fresh login)\n",
            group(report.auth_renewals)
        );
    }
    let any = report.violations.values().any(|n| *n > 0);
    if report.violations.is_empty() || !(any || report.scenario.is_some()) {
        return;
    }
    let _ = writeln!(
        out,
        "### Violations\n\n| | violation | count |\n|---|---|---:|"
    );
    for (v, n) in &report.violations {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            if *n == 0 { "✅" } else { "🚨" },
            code(v.as_str()),
            group(*n)
        );
    }
    out.push('\n');
}

/// The comparison with a baseline as a Markdown section: a summary line and
/// the figures that moved beyond the tolerance (regressions first).
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = String::new();
    let icon = if c.has_regressions() { "❌" } else { "✅" };
    let _ = writeln!(
        out,
        "### {icon} Compared with baseline {}\n\n{}\n",
        code(&c.baseline_run_id),
        cell(&c.summary())
    );
    if let Some(warning) = c.mismatch_warning() {
        let _ = writeln!(out, "> [!WARNING]\n> {}\n", cell(&warning));
    }
    let mut moved: Vec<_> = c
        .rows
        .iter()
        .filter(|r| !matches!(r.change, Change::Unchanged))
        .collect();
    if moved.is_empty() {
        let _ = writeln!(out, "Every figure is within the tolerance.\n");
        return out;
    }
    moved.sort_by_key(|r| r.change != Change::Regression);
    let _ = writeln!(
        out,
        "| | step | figure | baseline | current | change | noise ± |\n|---|---|---|---:|---:|---:|---:|"
    );
    for r in moved {
        let f = r.figure;
        let show = |v: Option<f64>| v.map_or("–".to_string(), |v| f.format(v));
        let change = match (r.delta, r.relative) {
            (Some(d), Some(rel)) => format!("{} ({:+.1}%)", f.format_delta(d), rel * 100.0),
            (Some(d), None) => f.format_delta(d),
            _ => "–".to_string(),
        };
        let icon = match r.change {
            Change::Regression => "❌",
            Change::Improvement => "🟢",
            Change::Noise => "〰️",
            Change::Unconfirmed => "❔",
            _ => "➖",
        };
        let _ = writeln!(
            out,
            "| {icon} {} | {} | {} | {} | {} | {} | {} |",
            r.change.label(),
            code(&r.step),
            f.name(),
            show(r.baseline),
            show(r.current),
            change,
            r.noise.map_or("n/a".to_string(), |n| f.format(n))
        );
    }
    out.push('\n');
    out
}

/// At most this many failure examples are quoted, one of each kind.
const SHOWN_FAILURES: usize = 10;

fn failures(out: &mut String, report: &Report) {
    if report.failures.is_empty() {
        return;
    }
    // A pull-request comment holds 65,536 characters: one example of each
    // kind, a bounded number of kinds; report.json and the HTML page keep
    // them all.
    let mut shown: Vec<&crate::metrics::FailureSample> = Vec::new();
    for f in &report.failures {
        if shown.len() < SHOWN_FAILURES && !shown.iter().any(|s| s.kind() == f.kind()) {
            shown.push(f);
        }
    }
    if shown.len() == report.failures.len() {
        let _ = writeln!(
            out,
            "<details><summary>Failure examples ({}, redacted)</summary>\n",
            report.failures.len()
        );
    } else {
        let _ = writeln!(
            out,
            "<details><summary>Failure examples ({} of {} kept, one of each kind; all in report.json and report.html; redacted)</summary>\n",
            shown.len(),
            report.failures.len()
        );
    }
    for f in shown {
        let _ = writeln!(
            out,
            "**{} › {}** (vu {}, iteration {}): {}\n",
            cell(&f.step),
            cell(&f.check),
            f.vu,
            f.iteration,
            cell(&f.message)
        );
        for text in [&f.request, &f.response] {
            if !text.trim().is_empty() {
                out.push_str(&fenced(text));
            }
        }
    }
    let _ = writeln!(out, "</details>\n");
}

fn footer(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "<sub>convoy {} · started {} · {} iterations{}</sub>",
        cell(&report.convoy_version),
        humantime::format_rfc3339_seconds(report.started_at),
        group(report.iterations),
        if report.interrupted > 0 {
            format!(" ({} cut off at stop)", group(report.interrupted))
        } else {
            String::new()
        }
    );
}

/// Text safe in a table cell or a line: no table breaks, no HTML.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '*' | '_' | '`' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span that survives any content, including backticks and
/// pipes (GitHub tables need `\|` even inside code).
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = longest_run(&s, '`');
    let ticks = "`".repeat(longest + 1);
    if longest > 0 || s.starts_with(' ') || s.ends_with(' ') {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

/// A fenced block longer than any backtick run in `s`, control characters
/// replaced.
fn fenced(s: &str) -> String {
    let fence = "`".repeat(longest_run(s, '`').max(2) + 1);
    let clean: String = s
        .trim_end()
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    format!("{fence}\n{clean}\n{fence}\n\n")
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_a_table_or_inject_html() {
        assert_eq!(cell("a|b<script>"), "a\\|b&lt;script&gt;");
        assert_eq!(cell("x\ny"), "x y");
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("p95 < 500ms"), "`p95 < 500ms`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(fenced("x\n```\ny"), "````\nx\n```\ny\n````\n\n");
    }
}
