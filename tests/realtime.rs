//! The built-in `realtime` journeys (`realtime` over server-sent events,
//! `realtime-ws` over WebSocket) against the reference target, through the
//! binary as a user types them: healthy they pass `convoy run` and
//! `convoy smoke`; each event fault of the target fails them with its own
//! cause, violation or gate and exit code, on both kinds of stream.
//!
//! No test bounds a time: the planted delay (150 ms) is judged by convoy's
//! own `event:... p95 < 100ms` gates, with a wide margin.

mod cli_support;
mod target_support;

use std::path::Path;
use std::process::Output;

use cli_support::{command, text};
use convoy::engine::StepKind;
use convoy::metrics::{ErrorCause, Violation};
use convoy::report::{Report, StepReport};

/// The built-in journey of a kind of stream, and what its steps are named.
#[derive(Debug, Clone, Copy)]
struct Journey {
    name: &'static str,
    /// What the journey's event and request names end with.
    suffix: &'static str,
    /// The acme dispatcher's stream.
    stream: &'static str,
    /// The isolation probe on globex's stream.
    probe: &'static str,
}

const SSE: Journey = Journey {
    name: "realtime",
    suffix: "",
    stream: "dispatcher events",
    probe: "globex sees no acme order",
};

const WS: Journey = Journey {
    name: "realtime-ws",
    suffix: " (ws)",
    stream: "dispatcher ws",
    probe: "globex sees no acme order (ws)",
};

const STATES: [&str; 4] = ["created", "accepted", "routed", "delivered"];

impl Journey {
    /// The event metrics, one per state change, in the journey's order.
    fn events(self) -> Vec<String> {
        STATES
            .iter()
            .map(|s| format!("order {s}{}", self.suffix))
            .collect()
    }
}

/// `convoy ARGS`, with the report it wrote to `out` read back.
fn convoy(args: &[&str], out: &Path) -> (Output, Report) {
    let output = command()
        .args(args)
        .arg("--out")
        .arg(out)
        .env_remove("CONVOY_TARGET")
        .output()
        .expect("the convoy binary runs");
    let report = convoy::report::artifacts::read_report(out)
        .unwrap_or_else(|e| panic!("no report in {} ({e}): {}", out.display(), text(&output)));
    (output, report)
}

/// `convoy smoke JOURNEY --iterations N` against a reference target with
/// `faults`.
fn smoke(journey: Journey, faults: &[&str], iterations: u64, out: &Path) -> (Output, Report) {
    let target = target_support::start(faults);
    let url = target.base_url();
    let n = iterations.to_string();
    convoy(
        &[
            "smoke",
            journey.name,
            "--target",
            &url,
            "--iterations",
            &n,
            "-q",
        ],
        out,
    )
}

fn step<'a>(r: &'a Report, name: &str) -> &'a StepReport {
    r.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no metric {name:?} in {:?}", names(r)))
}

fn names(r: &Report) -> Vec<&str> {
    r.steps.iter().map(|s| s.name.as_str()).collect()
}

fn failed_checks(r: &Report) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| c.failures > 0)
        .map(|c| format!("{} › {}", c.step, c.name))
        .collect()
}

fn isolation_violations(r: &Report) -> u64 {
    r.violations
        .get(&Violation::TenantIsolationViolations)
        .copied()
        .unwrap_or(0)
}

/// The event gates a journey carries, with their verdicts.
fn event_gates(r: &Report) -> Vec<&convoy::report::GateResult> {
    r.gates
        .iter()
        .filter(|g| g.scope.starts_with("event:"))
        .collect()
}

/// `convoy run NAME` as typed (the built-in reference API, the light
/// profile: 5 users x 10 iterations), then `convoy smoke NAME --target`.
fn healthy(journey: Journey) {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = convoy(&["run", journey.name, "-q"], &dir.path().join("run"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(failed_checks(&r).is_empty(), "{:?}", failed_checks(&r));
    assert_eq!(isolation_violations(&r), 0);
    assert_eq!(r.iterations, 50);
    for event in journey.events() {
        let e = step(&r, &event);
        assert_eq!(e.kind, StepKind::Event, "{event}");
        assert_eq!((e.requests, e.errors), (50, 0), "{event}");
        assert_eq!(e.histograms.latency.count(), 50, "{event}");
    }
    // Each of the 5 users opened its stream once and held it across its
    // 10 iterations.
    let s = step(&r, journey.stream);
    assert_eq!((s.kind, s.requests, s.errors), (StepKind::Stream, 5, 0));
    // The journey's own gates: every event (one `event:*` gate), checks,
    // isolation.
    let gates = event_gates(&r);
    assert_eq!(gates.len(), 1, "{:#?}", r.gates);
    assert!(gates[0].actual_display.ends_with(", 4 events"), "{gates:?}");
    assert!(r.gates.iter().all(|g| g.passed), "{:#?}", r.gates);
    for metric in ["checks", "tenant_isolation_violations"] {
        assert!(r.gates.iter().any(|g| g.metric == metric), "{metric}");
    }

    let (o, r) = smoke(journey, &[], 1, &dir.path().join("smoke"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for event in journey.events() {
        assert_eq!(step(&r, &event).histograms.latency.count(), 1, "{event}");
    }
    assert_eq!(event_gates(&r).len(), 1);
    assert!(r.gates.iter().all(|g| g.passed), "{:#?}", r.gates);
}

#[test]
fn sse_realtime_passes_run_and_smoke_on_a_healthy_target() {
    healthy(SSE);
}

#[test]
fn ws_realtime_passes_run_and_smoke_on_a_healthy_target() {
    healthy(WS);
}

/// `event-drop=1`: the dispatcher never hears of the order.
fn dropped(journey: Journey) {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = smoke(journey, &["event-drop=1"], 1, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let first = &journey.events()[0];
    let e = step(&r, first);
    assert_eq!(
        e.error_counts.get(&ErrorCause::EventTimeout),
        Some(&1),
        "{:?}",
        e.error_counts
    );
    let check = r
        .checks
        .iter()
        .find(|c| c.step == *first && c.name.contains("arrives within 1s"))
        .unwrap_or_else(|| panic!("no arrival check: {:?}", r.checks));
    assert_eq!(check.failures, 1);
    let sample = r
        .failures
        .iter()
        .find(|f| f.step == *first)
        .expect("a failure sample");
    assert_eq!(sample.cause, Some(ErrorCause::EventTimeout));
    // A lost event is not a leak.
    assert_eq!(isolation_violations(&r), 0);
}

#[test]
fn sse_event_drop_fails_the_awaits_with_event_timeout() {
    dropped(SSE);
}

#[test]
fn ws_event_drop_fails_the_awaits_with_event_timeout() {
    dropped(WS);
}

/// `event-leak=1`: every acme event also reaches globex's dispatcher.
fn leaked(journey: Journey) {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = smoke(journey, &["event-leak=1"], 1, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // The owner still hears every event: no await fails, the probe is
    // what fails.
    let events = journey.events();
    let failed = failed_checks(&r);
    assert!(
        failed.iter().any(|c| c.starts_with(journey.probe)),
        "{failed:?}"
    );
    assert!(
        r.checks
            .iter()
            .filter(|c| events.contains(&c.step))
            .all(|c| c.failures == 0 && c.passes == 1),
        "{failed:?}"
    );
    // The order's four state changes, each leaked once.
    assert_eq!(isolation_violations(&r), 4, "{:?}", r.violations);
    let sample = r
        .failures
        .iter()
        .find(|f| f.violation == Some(Violation::TenantIsolationViolations))
        .expect("a violation sample");
    assert_eq!(sample.step, journey.probe);
    assert!(
        sample.response.contains("\"tenant\":\"acme\""),
        "{}",
        sample.response
    );
    let gate = r
        .gates
        .iter()
        .find(|g| g.metric == "tenant_isolation_violations")
        .expect("the journey's isolation gate");
    assert!(!gate.passed);
}

#[test]
fn sse_event_leak_counts_tenant_isolation_violations() {
    leaked(SSE);
}

#[test]
fn ws_event_leak_counts_tenant_isolation_violations() {
    leaked(WS);
}

/// `stream-close=300ms` with every request 100 ms late (`latency=100ms`):
/// the dispatcher's stream closes while the order is still moving on. The
/// journeys do not reconnect (`reconnect` is `"none"`), so awaits on the
/// closed stream fail with `stream_closed`, and the next iteration's
/// subscribe opens the stream again (a connect, not a policy reconnect).
fn closed(journey: Journey) {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = smoke(
        journey,
        &["stream-close=300ms", "latency=100ms"],
        2,
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let closed: u64 = journey
        .events()
        .iter()
        .map(|e| {
            step(&r, e)
                .error_counts
                .get(&ErrorCause::StreamClosed)
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert!(closed >= 2, "one per iteration at least: {closed}");
    assert!(
        r.failures
            .iter()
            .any(|f| f.cause == Some(ErrorCause::StreamClosed)),
        "{:#?}",
        r.failures
    );
    let s = step(&r, journey.stream);
    assert_eq!((s.requests, s.errors), (2, 0), "opened once per iteration");
    let reconnects = step(&r, &format!("{} · reconnect", journey.stream));
    assert_eq!(reconnects.requests, 0);
}

#[test]
fn sse_stream_close_fails_the_awaits_with_stream_closed() {
    closed(SSE);
}

#[test]
fn ws_stream_close_fails_the_awaits_with_stream_closed() {
    closed(WS);
}

/// `event-delay=150ms`: every event arrives, too late for the SLA.
fn delayed(journey: Journey) {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = smoke(journey, &["event-delay=150ms"], 1, dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(failed_checks(&r).is_empty(), "{:?}", failed_checks(&r));
    assert_eq!(isolation_violations(&r), 0);
    let gates = event_gates(&r);
    assert_eq!(gates.len(), 1, "{:#?}", r.gates);
    for g in gates {
        assert!(!g.passed, "{g:?}");
        assert!(g.actual.unwrap() >= 150.0, "{g:?}");
        // Each late event named.
        assert!(
            g.actual_display.starts_with("4 failed of 4 events: "),
            "{g:?}"
        );
        for event in journey.events() {
            assert!(g.actual_display.contains(&format!("{event:?} ")), "{g:?}");
        }
    }
    let checks = r.gates.iter().find(|g| g.metric == "checks").unwrap();
    assert!(checks.passed, "{checks:?}");
}

#[test]
fn sse_event_delay_fails_the_event_gates_while_checks_pass() {
    delayed(SSE);
}

#[test]
fn ws_event_delay_fails_the_event_gates_while_checks_pass() {
    delayed(WS);
}

#[test]
fn both_journeys_run_side_by_side_with_their_own_events_and_each_gate_once() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = convoy(
        &["run", "realtime", "realtime-ws", "--profile", "smoke", "-q"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for journey in [SSE, WS] {
        for event in journey.events() {
            assert_eq!(step(&r, &event).histograms.latency.count(), 1, "{event}");
        }
    }
    // One event gate over the eight events, and the gates both journeys
    // carry listed once.
    let gates = event_gates(&r);
    assert_eq!(gates.len(), 1, "{:#?}", r.gates);
    assert!(gates[0].actual_display.ends_with(", 8 events"), "{gates:?}");
    let mut expressions: Vec<&str> = r.gates.iter().map(|g| g.expression.as_str()).collect();
    let all = expressions.len();
    expressions.sort();
    expressions.dedup();
    assert_eq!(expressions.len(), all, "{expressions:?}");
}

#[test]
fn the_seed_003_preset_gates_real_time_updates_at_100ms() {
    let preset = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/presets/logistics-ai.toml");
    let preset = preset.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (faults, code) in [(&[][..], 0), (&["event-delay=150ms"][..], 1)] {
        let target = target_support::start(faults);
        let url = target.base_url();
        let out = dir.path().join(format!("out-{code}"));
        let (o, r) = convoy(&["smoke", preset, "--target", &url, "-q"], &out);
        assert_eq!(o.status.code(), Some(code), "{faults:?}: {}", text(&o));
        assert!(failed_checks(&r).is_empty(), "{:?}", failed_checks(&r));
        let gates = event_gates(&r);
        assert_eq!(gates.len(), 1, "{:#?}", r.gates);
        assert!(gates.iter().all(|g| g.threshold == "< 100ms"), "{gates:#?}");
        let judged = if code == 0 {
            ", 4 events"
        } else {
            " of 4 events: "
        };
        assert!(gates[0].actual_display.contains(judged), "{gates:#?}");
        assert!(gates.iter().all(|g| g.passed == (code == 0)), "{gates:#?}");
    }
}
