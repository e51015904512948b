//! The Prometheus text exposition format (version 0.0.4) of a run's
//! cumulative figures.
//!
//! Every counter is cumulative since the start of the run (the engine's
//! live snapshots are merges of every worker's shard so far), so counters
//! only go up from one scrape to the next. Latency histograms are converted
//! from HdrHistograms into the fixed [`BUCKETS_SECONDS`]: a bucket counts the
//! recorded values whose HdrHistogram bucket starts at or below its bound, so
//! a value exactly on a bound is counted in it, and a value at most
//! HdrHistogram's precision (0.1 %) above a bound may be too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::{CheckInfo, StepInfo, StepKind};
use crate::metrics::{CheckStats, ErrorCause, LatencyHistogram, StepStats, Violation};

/// Upper bounds of the latency histogram buckets, in seconds (`+Inf` is
/// added after them).
pub const BUCKETS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric family the exporter writes (histograms by their family
/// name; Prometheus adds `_bucket`, `_sum` and `_count`).
pub const METRIC_NAMES: [&str; 15] = [
    "convoy_run_info",
    "convoy_elapsed_seconds",
    "convoy_requests_total",
    "convoy_errors_total",
    "convoy_responses_total",
    "convoy_request_duration_seconds",
    "convoy_checks_total",
    "convoy_violations_total",
    "convoy_active_users",
    "convoy_dropped_total",
    "convoy_iterations_total",
    "convoy_interrupted_total",
    "convoy_gate_passing",
    "convoy_gates_evaluated",
    "convoy_run_finished",
];

/// The content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a run is, for `convoy_run_info`.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `bench`, `run`.
    pub command: String,
    /// The scenarios, comma-separated (empty for bench).
    pub scenario: String,
    /// The profile (empty for bench).
    pub profile: String,
    /// `I/N` when sharded, else empty.
    pub shard: String,
}

/// The cumulative figures of a run at one moment.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Seconds since the run started.
    pub elapsed_secs: f64,
    /// Steps with their measurements.
    pub steps: Vec<(StepInfo, StepStats)>,
    /// Checks with their passes and failures.
    pub checks: Vec<(CheckInfo, CheckStats)>,
    /// Violations by kind.
    pub violations: BTreeMap<Violation, u64>,
    /// Virtual users active now.
    pub active_users: u64,
    /// Arrivals dropped (open model).
    pub dropped: u64,
    /// Iterations completed.
    pub iterations: u64,
    /// Iterations cut off.
    pub interrupted: u64,
    /// Gates evaluated on these figures: expression and whether it holds.
    pub gates: Vec<(String, bool)>,
    /// True once the run has ended and these are its final figures.
    pub finished: bool,
}

/// Renders `figures` (`None` before the first snapshot) in the text format.
pub fn render(info: &RunInfo, figures: Option<&Figures>) -> String {
    let mut out = String::new();
    let w = &mut out;
    family(
        w,
        "convoy_run_info",
        "gauge",
        "The run being exported (always 1).",
    );
    sample(
        w,
        "convoy_run_info",
        &[
            ("command", &info.command),
            ("scenario", &info.scenario),
            ("profile", &info.profile),
            ("shard", &info.shard),
        ],
        1.0,
    );
    let empty = Figures::default();
    let f = figures.unwrap_or(&empty);

    family(
        w,
        "convoy_elapsed_seconds",
        "gauge",
        "Seconds since the run started.",
    );
    sample(w, "convoy_elapsed_seconds", &[], f.elapsed_secs);
    family(
        w,
        "convoy_run_finished",
        "gauge",
        "1 once the run has ended and the figures are final.",
    );
    sample(
        w,
        "convoy_run_finished",
        &[],
        f64::from(u8::from(f.finished)),
    );

    family(
        w,
        "convoy_requests_total",
        "counter",
        "Requests completed, with a response or a transport error (kind=journey: journeys completed).",
    );
    for (s, st) in &f.steps {
        sample(
            w,
            "convoy_requests_total",
            &[("step", &s.name), ("kind", kind(s.kind))],
            st.requests as f64,
        );
    }

    family(
        w,
        "convoy_errors_total",
        "counter",
        "Failed requests by cause: a transport cause (timeout, refused, reset...) or status (a response judged a failure).",
    );
    for (s, st) in &f.steps {
        let transport: u64 = st.error_counts.values().sum();
        for cause in ErrorCause::ALL {
            let n = st.error_counts.get(&cause).copied().unwrap_or(0);
            sample(
                w,
                "convoy_errors_total",
                &[
                    ("step", &s.name),
                    ("kind", kind(s.kind)),
                    ("cause", cause.as_str()),
                ],
                n as f64,
            );
        }
        sample(
            w,
            "convoy_errors_total",
            &[
                ("step", &s.name),
                ("kind", kind(s.kind)),
                ("cause", "status"),
            ],
            st.errors.saturating_sub(transport) as f64,
        );
    }

    family(
        w,
        "convoy_responses_total",
        "counter",
        "Responses by HTTP status class (1xx..5xx).",
    );
    for (s, st) in f.steps.iter().filter(|(s, _)| s.kind == StepKind::Request) {
        let mut classes = [0u64; 5];
        for (code, n) in &st.status_counts {
            if let Some(c) = classes.get_mut((*code / 100) as usize - 1) {
                *c += n;
            }
        }
        for (i, n) in classes.iter().enumerate() {
            let class = format!("{}xx", i + 1);
            sample(
                w,
                "convoy_responses_total",
                &[("step", &s.name), ("status_class", &class)],
                *n as f64,
            );
        }
    }

    family(
        w,
        "convoy_request_duration_seconds",
        "histogram",
        "Latency from each request's scheduled start, of requests that got a response (kind=journey: whole journeys).",
    );
    for (s, st) in &f.steps {
        histogram(w, &s.name, kind(s.kind), &st.latency);
    }

    family(
        w,
        "convoy_checks_total",
        "counter",
        "Check evaluations by result (pass, fail).",
    );
    for (c, st) in &f.checks {
        for (result, n) in [("pass", st.passes), ("fail", st.failures)] {
            sample(
                w,
                "convoy_checks_total",
                &[("step", &c.step), ("check", &c.name), ("result", result)],
                n as f64,
            );
        }
    }

    family(
        w,
        "convoy_violations_total",
        "counter",
        "Breaches of idempotency, tenant isolation and authentication.",
    );
    for v in Violation::ALL {
        let n = f.violations.get(&v).copied().unwrap_or(0);
        sample(
            w,
            "convoy_violations_total",
            &[("kind", v.as_str())],
            n as f64,
        );
    }

    for (name, kind, help, value) in [
        (
            "convoy_active_users",
            "gauge",
            "Virtual users busy or waiting now.",
            f.active_users,
        ),
        (
            "convoy_dropped_total",
            "counter",
            "Arrivals dropped because they could not start in time (open model).",
            f.dropped,
        ),
        (
            "convoy_iterations_total",
            "counter",
            "Iterations completed.",
            f.iterations,
        ),
        (
            "convoy_interrupted_total",
            "counter",
            "Iterations cut off by the end of the run.",
            f.interrupted,
        ),
    ] {
        family(w, name, kind, help);
        sample(w, name, &[], value as f64);
    }

    family(
        w,
        "convoy_gates_evaluated",
        "gauge",
        "Number of SLA gates evaluated on the live figures.",
    );
    sample(w, "convoy_gates_evaluated", &[], f.gates.len() as f64);
    family(
        w,
        "convoy_gate_passing",
        "gauge",
        "1 while the SLA gate holds on the figures so far, 0 when it does not.",
    );
    for (gate, passed) in &f.gates {
        sample(
            w,
            "convoy_gate_passing",
            &[("gate", gate)],
            f64::from(u8::from(*passed)),
        );
    }
    out
}

fn kind(k: StepKind) -> &'static str {
    match k {
        StepKind::Request => "request",
        StepKind::Journey => "journey",
    }
}

fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    w.push_str(name);
    if !labels.is_empty() {
        w.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            let _ = write!(w, "{k}=\"{}\"", escape_label(v));
        }
        w.push('}');
    }
    let _ = writeln!(w, " {}", number(value));
}

fn histogram(w: &mut String, step: &str, kind: &str, h: &LatencyHistogram) {
    let name = "convoy_request_duration_seconds";
    let cumulative = buckets(h);
    for (bound, n) in BUCKETS_SECONDS.iter().zip(&cumulative) {
        let le = number(*bound);
        sample(
            w,
            &format!("{name}_bucket"),
            &[("step", step), ("kind", kind), ("le", &le)],
            *n as f64,
        );
    }
    let labels = [("step", step), ("kind", kind)];
    let count = h.count() as f64;
    sample(
        w,
        &format!("{name}_bucket"),
        &[("step", step), ("kind", kind), ("le", "+Inf")],
        count,
    );
    sample(
        w,
        &format!("{name}_sum"),
        &labels,
        h.mean_micros() * count / 1e6,
    );
    sample(w, &format!("{name}_count"), &labels, count);
}

/// Cumulative counts at each of [`BUCKETS_SECONDS`].
pub fn buckets(h: &LatencyHistogram) -> [u64; BUCKETS_SECONDS.len()] {
    let mut out = [0u64; BUCKETS_SECONDS.len()];
    for v in h.inner().iter_recorded() {
        let secs = h.inner().lowest_equivalent(v.value_iterated_to()) as f64 / 1e6;
        for (bound, n) in BUCKETS_SECONDS.iter().zip(out.iter_mut()) {
            if secs <= *bound {
                *n += v.count_at_value();
            }
        }
    }
    out
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` as
/// the format spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escapes backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Outcome;
    use std::time::Duration;

    fn figures() -> Figures {
        let mut st = StepStats::default();
        for ms in [1, 3, 3, 40, 700, 20_000] {
            let d = Duration::from_millis(ms);
            st.record(d, d, Outcome::Status(if ms == 700 { 503 } else { 200 }));
        }
        st.record(
            Duration::ZERO,
            Duration::ZERO,
            Outcome::Failed(ErrorCause::Timeout),
        );
        Figures {
            elapsed_secs: 2.5,
            steps: vec![(
                StepInfo {
                    name: "POST \"orders\"\\n\new".into(),
                    kind: StepKind::Request,
                },
                st,
            )],
            checks: vec![(
                CheckInfo {
                    step: "s".into(),
                    name: "status == 201".into(),
                },
                CheckStats {
                    passes: 5,
                    failures: 1,
                },
            )],
            gates: vec![("p95 < 500ms".into(), false)],
            ..Figures::default()
        }
    }

    #[test]
    fn buckets_are_cumulative_and_end_with_the_count() {
        let f = figures();
        let b = buckets(&f.steps[0].1.latency);
        // 1ms | 3ms 3ms | 40ms | 700ms | 20s (beyond the last bound).
        assert_eq!(b, [1, 1, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5]);
        let text = render(&RunInfo::default(), Some(&f));
        assert!(text.contains(
            "convoy_request_duration_seconds_bucket{step=\"POST \\\"orders\\\"\\\\n\\new\",kind=\"request\",le=\"+Inf\"} 6\n"
        ));
        assert!(text.contains("convoy_request_duration_seconds_count{step=\"POST \\\"orders\\\"\\\\n\\new\",kind=\"request\"} 6\n"));
    }

    #[test]
    fn errors_split_into_causes_and_statuses() {
        let text = render(&RunInfo::default(), Some(&figures()));
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with("convoy_errors_total") && l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
                .to_string()
        };
        assert!(line("cause=\"timeout\"").ends_with(" 1"));
        assert!(line("cause=\"status\"").ends_with(" 1"));
        assert!(text.contains("status_class=\"5xx\"} 1\n"));
        assert!(text.contains("convoy_gate_passing{gate=\"p95 < 500ms\"} 0\n"));
        assert!(text.contains("result=\"fail\"} 1\n"));
    }

    #[test]
    fn every_family_is_declared_in_metric_names() {
        let text = render(&RunInfo::default(), Some(&figures()));
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = l.split_whitespace().nth(2).unwrap();
            assert!(METRIC_NAMES.contains(&name), "{name}");
        }
        let declared = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(declared, METRIC_NAMES.len());
    }
}
