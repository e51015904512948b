//! The HTML report: one self-contained page (inline CSS, inline SVG charts
//! drawn in Rust, a few lines of inline script) that opens from a CI
//! artifact without any network. A Content-Security-Policy forbids every
//! external load, so a page that looks right offline is right.
//!
//! Sections: the verdict, the key figures, charts of latency percentiles,
//! throughput and error rate over time (from the report's timeline), the
//! gate table, the per-step table, checks, violations, the comparison with
//! a baseline, and the failure examples.

use std::fmt::Write as _;

use super::compare::{Change, Comparison};
use super::format::{millis, per_second, percent, trim_float};
use super::svg::{self, Chart, Series};
use super::text::NO_VALUE;
use super::text::group;
use super::verdict::stop_explanation;
use super::{Report, StepReport, Verdict};
use crate::engine::StepKind;
use crate::metrics::checks::EXAMPLES_PER_KIND;
use crate::plan::format_duration;

const STYLE: &str = include_str!("html.css");

/// Marks the page once the browser has laid the charts out: a check that
/// the SVG really rendered, used by the headless-browser test and harmless
/// elsewhere.
const SCRIPT: &str = "document.addEventListener('DOMContentLoaded',function(){\
var n=0;document.querySelectorAll('svg.chart').forEach(function(s){\
var b=s.getBoundingClientRect();var l=0;\
s.querySelectorAll('polyline').forEach(function(p){l+=p.getTotalLength();});\
if(b.width>0&&b.height>0&&l>0){n++;s.setAttribute('data-rendered','true');}});\
document.documentElement.setAttribute('data-charts-rendered',String(n));});";

/// Renders the whole page.
pub fn render(report: &Report) -> String {
    let v = Verdict::of(report);
    let class = if v.partial {
        "partial"
    } else if v.passed() {
        "pass"
    } else {
        "fail"
    };
    let what = report.scenario.as_deref().unwrap_or(&report.command);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>convoy {what}: {word} · {run}</title>
<style>{STYLE}</style>
</head>
<body>
<header class="verdict {class}">
<h1><span id="verdict" class="word">{word_shown}</span> convoy {what}</h1>
<p class="detail">{detail}</p>
<p class="meta">{meta}</p>
</header>
<main>
"#,
        what = escape(what),
        word = v.word(),
        run = escape(&report.run_id),
        word_shown = v.heading(),
        detail = escape(&v.detail()),
        meta = meta(report),
    );
    figures(&mut out, report);
    charts(&mut out, report);
    gates(&mut out, report);
    steps(&mut out, report);
    checks(&mut out, report);
    violations(&mut out, report);
    if let Some(c) = &report.comparison {
        comparison(&mut out, c);
    }
    out.push_str(&super::trend::html(&report.trends));
    failures(&mut out, report);
    let _ = write!(
        out,
        "</main>\n<footer>convoy {} · report {}</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        escape(&report.convoy_version),
        escape(super::SCHEMA)
    );
    out
}

fn meta(report: &Report) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &report.profile {
        parts.push(format!("profile <b>{}</b>", escape(p)));
    }
    parts.push(match report.target_source {
        Some(s) => format!(
            "target <code>{}</code> ({})",
            escape(&report.target),
            escape(s.describe())
        ),
        None => format!("target <code>{}</code>", escape(&report.target)),
    });
    parts.push(escape(&report.load_model.describe()));
    parts.push(format!(
        "{} from {}",
        format_duration(report.duration()),
        humantime::format_rfc3339_seconds(report.started_at)
    ));
    parts.push(format!("run <code>{}</code>", escape(&report.run_id)));
    if report.partial {
        parts.push(format!(
            "<b>partial: {}</b>",
            stop_explanation(report.stop_reason)
        ));
    }
    parts.join(" · ")
}

fn figures(out: &mut String, report: &Report) {
    let o = &report.overall;
    let l = &o.latency_ms;
    let cards = [
        ("requests", "requests", group(o.requests)),
        ("rps", "throughput", per_second(o.rps)),
        ("error_rate", "error rate", percent(o.error_rate)),
        ("p50", "p50", latency(o, l.p50)),
        ("p95", "p95", latency(o, l.p95)),
        ("p99", "p99", latency(o, l.p99)),
    ];
    out.push_str("<section id=\"figures\" class=\"cards\">\n");
    for (key, label, value) in cards {
        let _ = writeln!(
            out,
            r#"<div class="card"><div class="label">{label}</div><div class="value" data-figure="{key}">{}</div></div>"#,
            escape(&value)
        );
    }
    out.push_str("</section>\n");
}

/// Below this many timeline windows, charts over time would show a dot or
/// two on an axis of a second: the page shows how the requests' latencies
/// are distributed instead.
const MIN_TIMELINE_WINDOWS: usize = 3;

fn charts(out: &mut String, report: &Report) {
    let samples = report.timeline.samples();
    if samples.len() < MIN_TIMELINE_WINDOWS {
        distribution(out, report);
        return;
    }
    let mid = |s: &crate::metrics::TimelineSample| s.t + s.window / 2.0;
    let secs = |x: f64| {
        if x < 60.0 {
            format!("{}s", trim_float(x, 1))
        } else {
            // Axis values come from the report's timeline: clamp, never panic.
            format_duration(
                std::time::Duration::try_from_secs_f64(x.round())
                    .unwrap_or(std::time::Duration::MAX),
            )
        }
    };
    // Axis ticks are round numbers: no fixed decimals.
    let ms = |y: f64| format!("{}ms", trim_float(y, 3));
    let rate = |y: f64| format!("{}/s", trim_float(y, 2));
    let pct = |y: f64| format!("{}%", trim_float(y * 100.0, 3));
    // Windows without a response have no latency: leave them out rather
    // than draw a false zero.
    let with_latency: Vec<_> = samples
        .iter()
        .filter(|s| s.requests > s.errors || s.p50_ms > 0.0)
        .collect();
    let latency = svg::charts(&Chart {
        id: "chart-latency",
        title: "Latency percentiles over time",
        series: vec![
            Series {
                name: "p50",
                color: "#2b8a3e",
                points: with_latency.iter().map(|s| (mid(s), s.p50_ms)).collect(),
            },
            Series {
                name: "p95",
                color: "#e8590c",
                points: with_latency.iter().map(|s| (mid(s), s.p95_ms)).collect(),
            },
            Series {
                name: "p99",
                color: "#c92a2a",
                points: with_latency.iter().map(|s| (mid(s), s.p99_ms)).collect(),
            },
        ],
        format_y: &ms,
        format_x: &secs,
        min_y_max: 1.0,
        x_ticks: Vec::new(),
    });
    let throughput = svg::charts(&Chart {
        id: "chart-throughput",
        title: "Throughput over time",
        series: vec![
            Series {
                name: "requests/s",
                color: "#1c7ed6",
                points: samples.iter().map(|s| (mid(s), s.rps())).collect(),
            },
            Series {
                name: "errors/s",
                color: "#c92a2a",
                points: samples
                    .iter()
                    .map(|s| (mid(s), per_window(s.errors, s.window)))
                    .collect(),
            },
        ],
        format_y: &rate,
        format_x: &secs,
        min_y_max: 1.0,
        x_ticks: Vec::new(),
    });
    let errors = svg::charts(&Chart {
        id: "chart-errors",
        title: "Error rate over time",
        series: vec![Series {
            name: "error rate",
            color: "#c92a2a",
            points: samples
                .iter()
                .filter(|s| s.requests > 0)
                .map(|s| (mid(s), s.errors as f64 / s.requests as f64))
                .collect(),
        }],
        format_y: &pct,
        format_x: &secs,
        min_y_max: 0.01,
        x_ticks: Vec::new(),
    });
    let _ = write!(
        out,
        "<section id=\"charts\">\n<h2>Over time</h2>\n<figure>{latency}<figcaption>Latency percentiles per {w}</figcaption></figure>\n<figure>{throughput}<figcaption>Requests and errors per second</figcaption></figure>\n<figure>{errors}<figcaption>Failed requests over requests, per {w}</figcaption></figure>\n</section>\n",
        w = window_name(report),
    );
}

/// The percentiles the distribution chart draws, evenly spaced along its
/// axis so that the tail, where latency problems are, gets as much room as
/// the median.
const DISTRIBUTION: [(f64, &str); 8] = [
    (0.0, "min"),
    (0.5, "p50"),
    (0.75, "p75"),
    (0.9, "p90"),
    (0.95, "p95"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (1.0, "max"),
];

/// A run too short for charts over time: latency and service time of every
/// request by percentile, from the run's histograms.
fn distribution(out: &mut String, report: &Report) {
    let o = &report.overall;
    let windows = report.timeline.samples().len();
    let window = report.timeline.samples().first().map_or(1.0, |s| s.window);
    let windows = match windows {
        0 => "no window".to_string(),
        1 => "one window".to_string(),
        n => format!("{n} windows"),
    };
    let _ = write!(
        out,
        "<section id=\"charts\">\n<h2>Latency distribution</h2>\n<p class=\"note\" id=\"short-run\">The run lasted {}: its timeline has {windows} (of {} each), too few for charts over time (they start at {MIN_TIMELINE_WINDOWS}). Below, the latency of every request by percentile.</p>\n",
        escape(&format_duration(report.duration())),
        escape(&format_duration(
            std::time::Duration::try_from_secs_f64(window.max(0.0))
                .unwrap_or(std::time::Duration::MAX)
        )),
    );
    let at = |h: &crate::metrics::LatencyHistogram| -> Vec<(f64, f64)> {
        if h.is_empty() {
            return Vec::new();
        }
        DISTRIBUTION
            .iter()
            .enumerate()
            .map(|(i, (q, _))| {
                let us = if i == 0 {
                    h.min_micros()
                } else if i == DISTRIBUTION.len() - 1 {
                    h.max_micros()
                } else {
                    h.quantile_micros(*q)
                };
                (i as f64, us as f64 / 1000.0)
            })
            .collect()
    };
    let label = |x: f64| {
        DISTRIBUTION
            .get(x.round().max(0.0) as usize)
            .map_or(String::new(), |(_, l)| (*l).to_string())
    };
    let ms = |y: f64| format!("{}ms", trim_float(y, 3));
    let chart = svg::charts(&Chart {
        id: "chart-distribution",
        title: "Latency by percentile",
        series: vec![
            Series {
                name: "latency",
                color: "#e8590c",
                points: at(&o.histograms.latency),
            },
            Series {
                name: "service time",
                color: "#1c7ed6",
                points: at(&o.histograms.service),
            },
        ],
        format_y: &ms,
        format_x: &label,
        min_y_max: 0.0,
        x_ticks: (0..DISTRIBUTION.len()).map(|i| i as f64).collect(),
    });
    let _ = write!(
        out,
        "<figure>{chart}<figcaption>Latency (from the scheduled start) and service time of {} requests, by percentile</figcaption></figure>\n</section>\n",
        group(o.histograms.latency.count()),
    );
}

fn per_window(n: u64, window: f64) -> f64 {
    if window > 0.0 { n as f64 / window } else { 0.0 }
}

fn window_name(report: &Report) -> String {
    match report.timeline.samples().first() {
        Some(s) if (s.window - 1.0).abs() > 0.05 => {
            format!("{}-second window", trim_float(s.window, 1))
        }
        _ => "second".to_string(),
    }
}

fn gates(out: &mut String, report: &Report) {
    if report.gates.is_empty() {
        return;
    }
    out.push_str("<section id=\"gates\">\n<h2>SLA gates</h2>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>verdict</th><th>gate</th><th>threshold</th><th class=\"num\">actual</th></tr></thead>\n<tbody>\n");
    for g in &report.gates {
        let (class, word) = if g.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            out,
            r#"<tr class="{class}"><td class="verdict-cell" data-gate-verdict="{class}">{word}</td><td><code>{}</code></td><td>{}</td><td class="num">{}</td></tr>"#,
            escape(&g.expression),
            escape(&g.threshold),
            escape(&g.actual_display)
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn steps(out: &mut String, report: &Report) {
    out.push_str("<section id=\"steps\">\n<h2>Steps</h2>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>step</th><th class=\"num\">requests</th><th class=\"num\">req/s</th><th class=\"num\">errors</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p95</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th></tr></thead>\n<tbody>\n");
    let row = |out: &mut String, s: &StepReport, class: &str| {
        let l = &s.latency_ms;
        let kind = match s.kind {
            StepKind::Request => "",
            StepKind::Journey => " <span class=\"tag\">journey</span>",
            StepKind::Event => " <span class=\"tag\">event</span>",
            StepKind::Stream => " <span class=\"tag\">stream</span>",
        };
        let _ = writeln!(
            out,
            r#"<tr class="{class}"><td><code>{}</code>{kind}</td><td class="num">{}</td><td class="num">{:.1}</td><td class="num">{} ({})</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(&s.name),
            group(s.requests),
            s.rps,
            group(s.errors),
            percent(s.error_rate),
            latency(s, l.p50),
            latency(s, l.p90),
            latency(s, l.p95),
            latency(s, l.p99),
            latency(s, l.p999),
            latency(s, l.max)
        );
    };
    for s in report.shown_steps() {
        row(out, s, "");
    }
    if report.steps.len() != 1 {
        row(out, &report.overall, "total");
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
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
    let _ = write!(
        out,
        "<section id=\"checks\">\n<h2>Checks <small>{} passed</small></h2>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>verdict</th><th>step</th><th>check</th><th class=\"num\">passed</th><th class=\"num\">failed</th><th class=\"num\">pass rate</th></tr></thead>\n<tbody>\n",
        percent(report.checks_pass_rate())
    );
    for c in &report.checks {
        // A check never evaluated neither passed nor failed.
        let evaluated = c.passes + c.failures > 0;
        let (class, word) = if !evaluated {
            ("skip", "not run")
        } else if c.failures == 0 {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            out,
            r#"<tr class="{class}"><td class="verdict-cell">{word}</td><td><code>{}</code></td><td><code>{}</code></td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(&c.step),
            escape(&c.name),
            group(c.passes),
            group(c.failures),
            if evaluated {
                percent(c.pass_rate)
            } else {
                NO_VALUE.to_string()
            }
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn violations(out: &mut String, report: &Report) {
    if report.auth_renewals > 0 {
        let _ = writeln!(
            out,
            r#"<p class="note">Auth renewals: <span data-auth-renewals>{}</span> (tokens renewed mid-run by a fresh login)</p>"#,
            group(report.auth_renewals)
        );
    }
    let any = report.violations.values().any(|n| *n > 0);
    if report.violations.is_empty() || !(any || report.scenario.is_some()) {
        return;
    }
    out.push_str("<section id=\"violations\">\n<h2>Violations</h2>\n<div class=\"table-wrap\"><table>\n<tbody>\n");
    for (v, n) in &report.violations {
        let class = if *n == 0 { "pass" } else { "fail" };
        let _ = writeln!(
            out,
            r#"<tr class="{class}"><td><code>{v}</code></td><td class="num" data-violation="{v}">{}</td></tr>"#,
            group(*n)
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn comparison(out: &mut String, c: &Comparison) {
    let _ = write!(
        out,
        "<section id=\"comparison\">\n<h2>Compared with baseline <code>{}</code></h2>\n<p>{}</p>\n",
        escape(&c.baseline_run_id),
        escape(&c.summary())
    );
    if let Some(warning) = c.mismatch_warning() {
        let _ = writeln!(
            out,
            "<p class=\"warning\" id=\"comparison-warning\">{}</p>",
            escape(&warning)
        );
    }
    let moved: Vec<_> = c
        .rows
        .iter()
        .filter(|r| r.change != Change::Unchanged)
        .collect();
    if moved.is_empty() {
        out.push_str("<p>Every figure is within the tolerance.</p>\n</section>\n");
        return;
    }
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr><th>verdict</th><th>step</th><th>figure</th><th class=\"num\">baseline</th><th class=\"num\">current</th><th class=\"num\">change</th><th class=\"num\">noise ±</th></tr></thead>\n<tbody>\n");
    for r in moved {
        let f = r.figure;
        let show = |v: Option<f64>| v.map_or("–".to_string(), |v| f.format(v));
        let class = match r.change {
            Change::Regression => "fail",
            Change::Improvement => "pass",
            _ => "",
        };
        let _ = writeln!(
            out,
            r#"<tr class="{class}"><td class="verdict-cell">{}</td><td><code>{}</code></td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            r.change.label(),
            escape(&r.step),
            f.name(),
            show(r.baseline),
            show(r.current),
            match (r.delta, r.relative) {
                (Some(d), Some(x)) => format!("{} ({:+.1}%)", f.format_delta(d), x * 100.0),
                (Some(d), None) => f.format_delta(d),
                _ => "–".to_string(),
            },
            r.noise.map_or("n/a".to_string(), |n| f.format(n))
        );
    }
    out.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn failures(out: &mut String, report: &Report) {
    if report.failures.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section id=\"failures\">\n<h2>Failure examples <small>{} kept, redacted: the first {EXAMPLES_PER_KIND} of each kind</small></h2>\n",
        report.failures.len()
    );
    for f in &report.failures {
        let mut tags = String::new();
        if let Some(v) = f.violation {
            let _ = write!(tags, " <span class=\"tag violation\">{v}</span>");
        }
        if let Some(status) = f.status {
            let _ = write!(tags, " <span class=\"tag\">HTTP {status}</span>");
        }
        if let Some(cause) = f.cause {
            let _ = write!(tags, " <span class=\"tag\">{cause}</span>");
        }
        let _ = write!(
            out,
            "<details><summary><code>{}</code> › <code>{}</code>{tags}: {} <small>(vu {}, iteration {})</small></summary>\n<pre>{}</pre>\n<pre>{}</pre>\n</details>\n",
            escape(&f.step),
            escape(&f.check),
            escape(&f.message),
            f.vu,
            f.iteration,
            escape(&f.request),
            escape(&f.response)
        );
    }
    out.push_str("</section>\n");
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
