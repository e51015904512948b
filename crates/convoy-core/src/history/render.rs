//! The history analysis as a terminal table and as Markdown (JSON is the
//! [`Analysis`] serialised). Both list, per series, each change point with
//! the run it landed in, its date and commit, the level before and after,
//! its size and its p-value.

use std::fmt::Write as _;

use super::series::{Analysis, Change, Direction, Metric, Series};
use crate::units;

/// The analysis as JSON (`convoy.history/v1`).
pub fn json(a: &Analysis) -> String {
    let mut s = serde_json::to_string_pretty(a).expect("an analysis serialises");
    s.push('\n');
    s
}

/// The analysis as a terminal table.
pub fn table(a: &Analysis) -> String {
    let mut out = header(a);
    for s in &a.series {
        let _ = writeln!(
            out,
            "\n{} ({} runs, newest {})",
            title(s),
            s.runs,
            s.last_run
        );
        if s.changes.is_empty() {
            out.push_str("  no change points\n");
            continue;
        }
        let rows: Vec<[String; 8]> = std::iter::once(
            [
                "step",
                "figure",
                "run",
                "date",
                "commit",
                "before → after",
                "change",
                "p",
            ]
            .map(String::from),
        )
        .chain(s.changes.iter().map(cells))
        .collect();
        let widths: Vec<usize> = (0..8)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let mut line = String::from(" ");
            for (cell, w) in r.iter().zip(&widths) {
                let _ = write!(line, " {cell:<w$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// The analysis as Markdown, for a pull request or issue comment.
pub fn markdown(a: &Analysis) -> String {
    let mut out = String::from("## Run history: change points\n\n");
    for line in header(a).lines() {
        let _ = writeln!(out, "{line}  ");
    }
    for s in &a.series {
        let _ = writeln!(
            out,
            "\n### {}\n\n{} runs, newest `{}`.\n",
            md_escape(&title(s)),
            s.runs,
            md_escape(&s.last_run)
        );
        if s.changes.is_empty() {
            out.push_str("No change points.\n");
            continue;
        }
        out.push_str("| step | figure | run | date | commit | before → after | change | p |\n");
        out.push_str("|---|---|---|---|---|---|---:|---:|\n");
        for c in &s.changes {
            let cells = cells(c).map(|c| md_escape(&c));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    out
}

fn header(a: &Analysis) -> String {
    let m = &a.method;
    let mut out = format!(
        "{} runs in {} series; change points by E-Divisive with a t-test (p ≤ {}, window {}, a level holds ≥ {} runs{})\n",
        a.runs,
        a.series.len(),
        m.max_p_value,
        m.window,
        m.min_run,
        if m.min_magnitude > 0.0 {
            format!(", changes ≥ {}", units::percent(m.min_magnitude))
        } else {
            String::new()
        }
    );
    if a.partial_runs > 0 {
        let _ = writeln!(
            out,
            "{} partial run(s) left out: stopped early, they measured less",
            a.partial_runs
        );
    }
    out
}

fn title(s: &Series) -> String {
    let mut t = s.command.clone();
    if let Some(sc) = &s.scenario {
        let _ = write!(t, " {sc}");
    }
    if let Some(p) = &s.profile {
        let _ = write!(t, " profile {p}");
    }
    let _ = write!(t, " against {}", s.target);
    t
}

fn value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => units::millis(v),
        Metric::ErrorRate => units::percent(v),
        Metric::Rps => units::per_second(v),
    }
}

fn cells(c: &Change) -> [String; 8] {
    let change = match c.magnitude {
        Some(m) => format!("{:+.1}%", m * 100.0),
        None => "from 0".to_string(),
    };
    let verdict = match c.direction {
        Direction::Regression => "worse",
        Direction::Improvement => "better",
    };
    [
        c.step.clone(),
        c.metric.name().to_string(),
        c.run_id.clone(),
        humantime::format_rfc3339_seconds(c.started_at).to_string(),
        c.commit.clone().unwrap_or_else(|| "-".to_string()),
        format!(
            "{} → {}",
            value(c.metric, c.before),
            value(c.metric, c.after)
        ),
        format!("{change} {verdict}"),
        format!("{:.1e}", c.p_value),
    ]
}

/// Escapes what would break a table cell or turn into markup.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '\\' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}
