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
        let _ = writeln!(out, "{}  ", md_escape(line));
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
        "{} runs in {} series; change points by E-Divisive with {} (p ≤ {} corrected for the search, a move ≥ {}σ of the runs' noise, window {}, a level holds ≥ {} runs{})\n",
        a.runs,
        a.series.len(),
        match m.name.strip_prefix("e_divisive_") {
            Some("rank_sum") => "a rank-sum test",
            Some("robust_shift") => "a robust shift test",
            Some("welch") => "Welch's t-test",
            _ => "a two-sample test",
        },
        m.max_p_value,
        m.min_sigmas,
        m.window,
        m.min_run,
        if m.min_magnitude > 0.0 {
            format!(", changes ≥ {}", units::percent(m.min_magnitude))
        } else {
            String::new()
        }
    );
    if let Some(g) = &a.gate {
        let newest = if g.since == 1 {
            "the newest run".to_string()
        } else {
            format!("the newest {} runs", g.since)
        };
        if g.failed {
            let _ = writeln!(
                out,
                "GATE FAILED: {} regression(s) first shown by {newest}:",
                g.regressions.len()
            );
            for h in &g.regressions {
                let c = &h.change;
                let _ = writeln!(
                    out,
                    "  {} · {} {}: {} → {} ({}), landed in run {}{}",
                    h.series,
                    c.step,
                    c.metric.name(),
                    value(c.metric, c.before),
                    value(c.metric, c.after),
                    c.magnitude
                        .map_or("from 0".to_string(), |m| format!("{:+.1}%", m * 100.0)),
                    c.run_id,
                    c.commit
                        .as_ref()
                        .map_or(String::new(), |c| format!(" (commit {c})"))
                );
            }
        } else {
            let _ = writeln!(out, "gate passed: no regression first shown by {newest}");
        }
    }
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
    s.title()
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

/// The analysis as a standalone HTML page: the Markdown's content, and a
/// small chart per figure that changed (and per step's p95), its change
/// points dashed and the newest run ringed.
pub fn html(a: &Analysis) -> String {
    use crate::report::html::escape;
    use crate::report::trend;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
<title>convoy history: change points</title>\n<style>\n\
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#111827}\
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #d1d5db;padding:3px 8px;text-align:left}\
.trends{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #d1d5db;border-radius:6px;padding:6px}\
figure.regressed{border-color:#dc2626}figcaption{font-size:12px;color:#4b5563}.fail{color:#dc2626;font-weight:600}\n\
</style>\n</head>\n<body>\n<h1>Run history: change points</h1>\n",
    );
    for line in header(a).lines() {
        let class = if line.starts_with("GATE FAILED") {
            " class=\"fail\""
        } else {
            ""
        };
        let _ = writeln!(out, "<p{class}>{}</p>", escape(line));
    }
    for s in &a.series {
        let _ = writeln!(
            out,
            "<section>\n<h2>{}</h2>\n<p>{} runs, newest <code>{}</code>.</p>",
            escape(&title(s)),
            s.runs,
            escape(&s.last_run)
        );
        if s.changes.is_empty() {
            out.push_str("<p>No change points.</p>\n");
        } else {
            out.push_str("<table>\n<tr><th>step</th><th>figure</th><th>run</th><th>date</th><th>commit</th><th>before → after</th><th>change</th><th>p</th></tr>\n");
            for c in &s.changes {
                out.push_str("<tr>");
                for cell in cells(c) {
                    let _ = write!(out, "<td>{}</td>", escape(&cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        if !s.charts.is_empty() {
            out.push_str("<div class=\"trends\">\n");
            for t in &s.charts {
                let _ = writeln!(
                    out,
                    "<figure{}>{}<figcaption>{} {} · {}</figcaption></figure>",
                    if t.regressed {
                        " class=\"regressed\""
                    } else {
                        ""
                    },
                    trend::svg(t),
                    escape(&t.step),
                    t.figure.name(),
                    escape(&trend::sparkline(&t.values)),
                );
            }
            out.push_str("</div>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
