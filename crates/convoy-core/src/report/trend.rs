//! Trends: a figure of a step over the recent runs of its series, with the
//! change points found in it and this run marked last. The series and its
//! change points are computed from the run history by `crate::history`
//! (which reads reports; reports do not read it); this module holds the
//! result in the report and draws it: an inline SVG per trend for HTML, and
//! a sparkline line (`▁▂▃▅▇`) for Markdown and the terminal.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::compare::Figure;
use super::html::escape;

/// One figure of one step over the recent runs, this run last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The step (`overall` for the whole run).
    pub step: String,
    /// The figure.
    pub figure: Figure,
    /// Its value in each run, oldest first; the last is this run.
    pub values: Vec<f64>,
    /// The run ids, in the same order.
    pub run_ids: Vec<String>,
    /// Index (into `values`) of the first run at each new level.
    pub changes: Vec<usize>,
    /// This run confirmed a change point towards worse (it is new tonight),
    /// or the comparison with the baseline flagged this figure.
    pub regressed: bool,
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The values as a sparkline, lowest `▁`, highest `█`.
pub fn sparkline(values: &[f64]) -> String {
    let (lo, hi) = bounds(values);
    values
        .iter()
        .map(|v| {
            if hi > lo {
                let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                BARS[i.min(7)]
            } else {
                BARS[3]
            }
        })
        .collect()
}

fn bounds(values: &[f64]) -> (f64, f64) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) }
}

/// One line per regressed trend, for report.md: `` `create order` p95
/// ▁▂▁▂▇▇ 12.0ms → 15.3ms (+27.5%) ``. Empty when none regressed.
pub fn markdown(trends: &[Trend]) -> String {
    let regressed: Vec<&Trend> = trends.iter().filter(|t| t.regressed).collect();
    if regressed.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n## Trends of regressed figures\n\n");
    for t in regressed {
        let _ = writeln!(out, "- {}", line(t));
    }
    out
}

/// `create order p95 ▁▂▁▂▇▇ 12.0ms → 15.3ms (+27.5%) over 6 runs`.
pub fn line(t: &Trend) -> String {
    let last = t.values.last().copied().unwrap_or(0.0);
    // The level before the newest change point (or the first run).
    let before = match t.changes.last() {
        Some(&c) if c > 0 => {
            let start = t.changes.iter().rev().nth(1).copied().unwrap_or(0);
            mean(&t.values[start..c])
        }
        _ => t.values.first().copied().unwrap_or(0.0),
    };
    let change = if before != 0.0 {
        format!(" ({:+.1}%)", (last / before - 1.0) * 100.0)
    } else {
        String::new()
    };
    format!(
        "`{}` {} {} {} → {}{change} over {} runs",
        t.step.replace('`', "'"),
        t.figure.name(),
        sparkline(&t.values),
        t.figure.format(before),
        t.figure.format(last),
        t.values.len()
    )
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The trends as an HTML section of small inline SVG charts: the series as
/// a line, a dashed rule at each change point, this run as a ring.
pub fn html(trends: &[Trend]) -> String {
    if trends.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section id=\"trends\">\n<h2>Trends over recent runs</h2>\n<p>Each figure over the runs of this series, oldest first; dashed lines are change points (the first run at a new level), the ring is this run.</p>\n<div class=\"trends\">\n",
    );
    for t in trends {
        let _ = writeln!(
            out,
            "<figure class=\"trend{}\">{}<figcaption>{} {}: {}{}</figcaption></figure>",
            if t.regressed { " regressed" } else { "" },
            svg(t),
            escape(&t.step),
            t.figure.name(),
            escape(
                &t.values
                    .last()
                    .map_or("-".to_string(), |v| t.figure.format(*v))
            ),
            if t.regressed { " · regressed" } else { "" },
        );
    }
    out.push_str("</div>\n</section>\n");
    out
}

/// One trend as an inline SVG, 240 × 60.
pub fn svg(t: &Trend) -> String {
    const W: f64 = 240.0;
    const H: f64 = 60.0;
    const PAD: f64 = 6.0;
    let n = t.values.len();
    let (lo, hi) = bounds(&t.values);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |i: usize| {
        if n > 1 {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        } else {
            W / 2.0
        }
    };
    let y = |v: f64| H - PAD - (H - 2.0 * PAD) * ((v - lo) / span);
    let mut out = format!(
        "<svg class=\"trend-chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{} {} over {n} runs\">",
        escape(&t.step),
        t.figure.name()
    );
    for &c in &t.changes {
        // Between the last run of the old level and the first of the new.
        let cx = if c > 0 { (x(c - 1) + x(c)) / 2.0 } else { x(c) };
        let _ = write!(
            out,
            "<line class=\"change\" x1=\"{cx:.1}\" y1=\"2\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#b45309\" stroke-dasharray=\"3 2\"/>",
            H - 2.0
        );
    }
    let points: Vec<String> = t
        .values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" points=\"{}\"/>",
        points.join(" ")
    );
    if let Some(&last) = t.values.last().filter(|v| v.is_finite()) {
        let colour = if t.regressed { "#dc2626" } else { "#2563eb" };
        let _ = write!(
            out,
            "<circle class=\"tonight\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"><title>this run: {}</title></circle>",
            x(n - 1),
            y(last),
            escape(&t.figure.format(last))
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(values: &[f64], changes: &[usize], regressed: bool) -> Trend {
        Trend {
            step: "create <order>".to_string(),
            figure: Figure::P95,
            values: values.to_vec(),
            run_ids: (0..values.len()).map(|i| format!("r{i}")).collect(),
            changes: changes.to_vec(),
            regressed,
        }
    }

    #[test]
    fn sparklines_span_the_values() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0, 8.0]), "▁▂▃█");
        assert_eq!(sparkline(&[5.0, 5.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn only_regressed_trends_get_a_markdown_line() {
        let t = [
            trend(&[10.0, 10.0, 10.0, 13.0, 13.0, 13.0], &[3], true),
            trend(&[5.0, 5.0], &[], false),
        ];
        let md = markdown(&t);
        assert_eq!(md.matches("\n- ").count(), 1, "{md}");
        assert!(
            md.contains("p95 ▁▁▁███ 10.00ms → 13.00ms (+30.0%) over 6 runs"),
            "{md}"
        );
        assert_eq!(markdown(&t[1..]), "");
    }

    #[test]
    fn the_chart_marks_change_points_and_this_run() {
        let s = svg(&trend(&[10.0, 10.0, 10.0, 13.0, 13.0], &[3], true));
        assert_eq!(s.matches("class=\"change\"").count(), 1);
        assert_eq!(s.matches("class=\"tonight\"").count(), 1);
        assert!(s.contains("#dc2626"), "a regressed run is red");
        assert!(s.contains("create &lt;order&gt;"), "names are escaped");
        let h = html(&[trend(&[1.0], &[], false)]);
        assert!(h.contains("id=\"trends\"") && !h.contains("regressed"));
        assert_eq!(html(&[]), "");
    }
}
