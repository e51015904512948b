//! The Prometheus text exposition format (version 0.0.4) of a run's
//! cumulative figures.
//!
//! Every counter is cumulative since the start of the run (the engine's
//! live snapshots are merges of every worker's shard so far), so counters
//! only go up from one scrape to the next. Latency histograms are converted
//! from HdrHistograms into the fixed [`buckets_seconds`]: a bucket counts the
//! recorded values whose HdrHistogram bucket starts at or below its bound, so
//! a value exactly on a bound is counted in it, and a value at most
//! HdrHistogram's precision (0.1 %) above a bound may be too.
//!
//! # Why these buckets
//!
//! Prometheus' `histogram_quantile` interpolates linearly inside the bucket
//! the quantile falls in, so its error is bounded by the bucket's width. The
//! bounds are round numbers at most 5 % apart from 50 µs to 10 s (steps of
//! 0.05 from 1 to 2, of 0.1 from 2 to 5, of 0.25 from 5 to 10, in every
//! decade), then 15, 20, 30 and 60 s: a p50, p95 or p99 computed by
//! Prometheus lands within 5 % of the report's (measured: `cargo nextest run
//! --test live_metrics quantiles`), and every usual threshold (1, 2, 2.5, 5
//! × 10ⁿ ms) is a bound, so `le="0.5"` counts the requests under 500 ms
//! exactly. The price is 375 buckets per step where 13 were 20–60 % wide
//! (the dashboard's p95 was off by half). Native histograms would carry the
//! same resolution in one series, but only in the protobuf exposition
//! format and behind a Prometheus feature flag; exact quantiles exported
//! as gauges would be exact, but could not be added across steps, shards or
//! time ranges as buckets can.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::engine::{CheckInfo, StepInfo, StepKind};
use crate::metrics::{CheckStats, ErrorCause, LatencyHistogram, StepStats, Violation};

/// Upper bounds of the latency histogram buckets, in seconds, ascending
/// (`+Inf` is added after them); see the module documentation.
pub fn buckets_seconds() -> &'static [f64] {
    static BOUNDS: OnceLock<Vec<f64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        // Mantissas of one decade, in hundredths: at most 5 % apart.
        let mantissas: Vec<u32> = (100..200)
            .step_by(5)
            .chain((200..500).step_by(10))
            .chain((500..1000).step_by(25))
            .collect();
        let mut out = Vec::new();
        // Decades from 10 µs to 1 s, in nanoseconds: integers, no drift.
        for decade_ns in [
            10_000u64,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
            1_000_000_000,
        ] {
            for m in &mantissas {
                let ns = decade_ns * u64::from(*m) / 100;
                if ns >= 50_000 {
                    out.push(ns);
                }
            }
        }
        out.extend([10, 15, 20, 30, 60].map(|s| s * 1_000_000_000));
        // Divided once: the nearest f64 to each round bound, printed as
        // written (`0.0525`, `2.5`).
        out.into_iter().map(|ns| ns as f64 / 1e9).collect()
    })
}

/// Every metric family the exporter writes (histograms by their family
/// name; Prometheus adds `_bucket`, `_sum` and `_count`).
pub const METRIC_NAMES: [&str; 17] = [
    "convoy_run_info",
    "convoy_elapsed_seconds",
    "convoy_requests_total",
    "convoy_errors_total",
    "convoy_responses_total",
    "convoy_request_duration_seconds",
    "convoy_event_latency_seconds",
    "convoy_stream_connect_seconds",
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
    /// The run's id, as its report names it: two runs scraped by one
    /// Prometheus stay apart.
    pub run_id: String,
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
            ("run_id", &info.run_id),
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
        if matches!(s.kind, StepKind::Request | StepKind::Journey) {
            histogram(
                w,
                "convoy_request_duration_seconds",
                &[("step", &s.name), ("kind", kind(s.kind))],
                &st.latency,
            );
        }
    }

    family(
        w,
        "convoy_event_latency_seconds",
        "histogram",
        "Latency of awaited events: from the request of the step that caused each event to its arrival on a stream.",
    );
    for (s, st) in f.steps.iter().filter(|(s, _)| s.kind == StepKind::Event) {
        histogram(
            w,
            "convoy_event_latency_seconds",
            &[("event", &s.name)],
            &st.latency,
        );
    }

    family(
        w,
        "convoy_stream_connect_seconds",
        "histogram",
        "Streams (server-sent events, WebSocket): time to the response head or the upgrade done, and to the first event.",
    );
    for (s, st) in f.steps.iter().filter(|(s, _)| s.kind == StepKind::Stream) {
        histogram(
            w,
            "convoy_stream_connect_seconds",
            &[("stream", &s.name)],
            &st.latency,
        );
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
        StepKind::Event => "event",
        StepKind::Stream => "stream",
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

fn histogram(w: &mut String, name: &str, labels: &[(&str, &str)], h: &LatencyHistogram) {
    fn with_le<'a>(labels: &[(&'a str, &'a str)], le: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut l = labels.to_vec();
        l.push(("le", le));
        l
    }
    let cumulative = buckets(h);
    for (bound, n) in buckets_seconds().iter().zip(&cumulative) {
        let le = number(*bound);
        sample(
            w,
            &format!("{name}_bucket"),
            &with_le(labels, &le),
            *n as f64,
        );
    }
    let count = h.count() as f64;
    sample(
        w,
        &format!("{name}_bucket"),
        &with_le(labels, "+Inf"),
        count,
    );
    sample(
        w,
        &format!("{name}_sum"),
        labels,
        h.mean_micros() * count / 1e6,
    );
    sample(w, &format!("{name}_count"), labels, count);
}

/// Cumulative counts at each of [`buckets_seconds`], in one pass over the
/// recorded values (ascending) and the bounds.
pub fn buckets(h: &LatencyHistogram) -> Vec<u64> {
    let bounds = buckets_seconds();
    let mut out = vec![0u64; bounds.len()];
    let mut below = 0u64; // values counted so far
    let mut i = 0;
    for v in h.inner().iter_recorded() {
        let secs = h.inner().lowest_equivalent(v.value_iterated_to()) as f64 / 1e6;
        while i < bounds.len() && secs > bounds[i] {
            out[i] = below;
            i += 1;
        }
        below += v.count_at_value();
    }
    for n in &mut out[i..] {
        *n = below;
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
        let at = |secs: f64| {
            let i = buckets_seconds()
                .iter()
                .position(|b| (*b - secs).abs() < 1e-12)
                .unwrap_or_else(|| panic!("{secs} is a bound"));
            b[i]
        };
        // 1ms | 3ms 3ms | 40ms | 700ms | 20s.
        assert_eq!(at(0.00095), 0);
        assert_eq!(at(0.001), 1);
        assert_eq!(at(0.0029), 1);
        assert_eq!(at(0.003), 3);
        assert_eq!(at(0.04), 4);
        assert_eq!(at(0.5), 4);
        assert_eq!(at(0.7), 5);
        assert_eq!(at(15.0), 5);
        assert_eq!(at(20.0), 6);
        assert_eq!(b.windows(2).filter(|w| w[0] > w[1]).count(), 0);
        let text = render(&RunInfo::default(), Some(&f));
        assert!(text.contains(
            "convoy_request_duration_seconds_bucket{step=\"POST \\\"orders\\\"\\\\n\\new\",kind=\"request\",le=\"+Inf\"} 6\n"
        ));
        assert!(text.contains("convoy_request_duration_seconds_count{step=\"POST \\\"orders\\\"\\\\n\\new\",kind=\"request\"} 6\n"));
    }

    #[test]
    fn events_and_streams_have_histograms_of_their_own() {
        let mut f = figures();
        let mut event = StepStats::default();
        let mut stream = StepStats::default();
        for ms in [40, 45, 120] {
            event.record_stream(Some(Duration::from_millis(ms)), None, None, false);
        }
        event.record_stream(None, None, Some(ErrorCause::EventTimeout), true);
        stream.record_stream(Some(Duration::from_millis(2)), Some(200), None, false);
        f.steps.push((
            StepInfo {
                name: "order delivered".into(),
                kind: StepKind::Event,
            },
            event,
        ));
        f.steps.push((
            StepInfo {
                name: "orders".into(),
                kind: StepKind::Stream,
            },
            stream,
        ));
        let text = render(&RunInfo::default(), Some(&f));
        assert!(text.contains("# TYPE convoy_event_latency_seconds histogram\n"));
        assert!(text.contains(
            "convoy_event_latency_seconds_bucket{event=\"order delivered\",le=\"0.05\"} 2\n"
        ));
        assert!(text.contains(
            "convoy_event_latency_seconds_bucket{event=\"order delivered\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains("convoy_event_latency_seconds_count{event=\"order delivered\"} 3\n"));
        assert!(
            text.contains("convoy_stream_connect_seconds_count{stream=\"orders\"} 1\n"),
            "{text}"
        );
        // Neither is a request's latency; the timeout is an error by cause.
        assert!(!text.contains("convoy_request_duration_seconds_count{step=\"order delivered\""));
        assert!(text.contains(
            "convoy_errors_total{step=\"order delivered\",kind=\"event\",cause=\"event_timeout\"} 1\n"
        ));
    }

    #[test]
    fn bounds_are_round_ascending_and_at_most_five_percent_apart_to_ten_seconds() {
        let b = buckets_seconds();
        assert_eq!(b.len(), 375);
        assert_eq!(b[0], 0.00005);
        assert_eq!(*b.last().unwrap(), 60.0);
        for w in b.windows(2) {
            assert!(w[1] > w[0]);
            if w[1] <= 10.0 {
                assert!(w[1] / w[0] <= 1.05 + 1e-9, "{} -> {}", w[0], w[1]);
            }
        }
        // The usual thresholds are bounds, written as Prometheus reads them.
        for t in [
            "0.0001", "0.001", "0.0025", "0.005", "0.01", "0.1", "0.2", "0.25", "0.5", "1", "2",
            "2.5", "5", "10",
        ] {
            assert!(b.iter().any(|x| number(*x) == t), "{t}");
        }
    }

    /// `histogram_quantile` as Prometheus computes it: the bucket the rank
    /// falls in, linear interpolation inside it (from 0 for the first).
    fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[u64], count: u64) -> f64 {
        let rank = q * count as f64;
        let i = cumulative
            .iter()
            .position(|c| *c as f64 >= rank)
            .unwrap_or(bounds.len() - 1);
        let (lo, below) = if i == 0 {
            (0.0, 0)
        } else {
            (bounds[i - 1], cumulative[i - 1])
        };
        let inside = (cumulative[i] - below) as f64;
        lo + (bounds[i] - lo) * (rank - below as f64) / inside
    }

    #[test]
    fn prometheus_quantiles_land_within_five_percent_of_the_exact_ones() {
        // Seeded, log-normal-ish latencies around several medians: a fast
        // loopback target, an API, a slow one; and a two-peak mix.
        let mut rng = fastrand::Rng::with_seed(7);
        let mut cases: Vec<(String, LatencyHistogram)> = Vec::new();
        for median_ms in [0.3, 4.0, 45.0, 800.0] {
            let mut h = LatencyHistogram::new();
            for _ in 0..20_000 {
                let z: f64 = (0..6).map(|_| rng.f64()).sum::<f64>() - 3.0;
                h.record(Duration::from_secs_f64(median_ms * (z * 0.5).exp() / 1e3));
            }
            cases.push((format!("around {median_ms}ms"), h));
        }
        let mut mix = LatencyHistogram::new();
        for i in 0..10_000u64 {
            let ms = if i % 10 == 0 {
                300.0 + (i % 97) as f64
            } else {
                25.0 + (i % 13) as f64
            };
            mix.record(Duration::from_secs_f64(ms / 1e3));
        }
        cases.push(("two peaks".into(), mix));
        for (name, h) in &cases {
            let cumulative = buckets(h);
            for q in [0.5, 0.95, 0.99] {
                let exact = h.quantile_micros(q) as f64 / 1e6;
                let prom = histogram_quantile(q, buckets_seconds(), &cumulative, h.count());
                let off = (prom - exact).abs() / exact;
                assert!(
                    off <= 0.05,
                    "{name} p{}: {prom} vs {exact} ({:.1} %)",
                    q * 100.0,
                    off * 100.0
                );
            }
        }
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
