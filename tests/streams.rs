//! Streams in scenarios, proven on a server that is not the reference
//! target ([`streams_support`]: tenant in the path, its own event-stream
//! and WebSocket framing): a user subscribes (SSE or WebSocket) as an
//! identity and keeps the stream across iterations, awaits the events its
//! requests cause, times them from the causing step's request, sends on a
//! WebSocket, and probes another tenant's stream for leaks. Each fault of
//! the server (delay, drop, close, refuse, leak) fails with its own cause or
//! violation, on both kinds; gates read event latency; no token reaches an
//! artifact; malformed stream steps are named at file:line:col.

mod cli_support;
mod engine_support;
mod streams_support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use cli_support::{convoy_with_env, files_under, outputs};
use convoy::engine::{self, EngineOptions, RunControl, RunResult, StepKind};
use convoy::metrics::{ErrorCause, StepStats, Violation};
use convoy::plan::{HttpOptions, LoadModel};
use convoy::report::{Report, StepReport};
use convoy::scenario::parse::{self, Env};
use convoy::scenario::{CustomRegistry, ScenarioWorkload};
use engine_support::{failed_checks, run_one_user};
use streams_support::{Knobs, Server, TOKENS};

/// The environment the scenarios read their tokens from.
fn env_vars() -> Vec<(String, String)> {
    TOKENS
        .iter()
        .map(|(t, tok)| (format!("RELAY_{}_TOKEN", t.to_uppercase()), tok.to_string()))
        .collect()
}

struct TestEnv;
impl Env for TestEnv {
    fn get(&self, name: &str) -> Option<String> {
        env_vars()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Which protocol a scenario streams over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sse,
    Ws,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sse => "sse",
            Kind::Ws => "ws",
        }
    }
    fn path(self) -> &'static str {
        match self {
            Kind::Sse => "events",
            Kind::Ws => "ws",
        }
    }
}

/// The journey: acme's dispatcher and globex's both subscribe; acme
/// creates an order and delivers it, awaiting each event; globex's stream
/// must carry none of it. `query`: tokens in `?access_token=`.
fn scenario(kind: Kind, query: bool) -> String {
    let placement = if query {
        "query = \"access_token\"\n"
    } else {
        ""
    };
    let (k, p) = (kind.name(), kind.path());
    let send = if kind == Kind::Ws {
        r#"
[[step]]
name = "ping"
[step.send]
stream = "orders"
json = { hello = "{{ order_id }}" }

[[step]]
name = "pong"
[step.await]
stream = "orders"
event = "pong"
timeout = "2s"
checks = [{ json = "/echo", contains = "{{ order_id }}" }]
"#
    } else {
        ""
    };
    format!(
        r#"name = "realtime-{k}"
gates = ["checks == 100%"]

[auth]
kind = "token"
{placement}
[identities.acme]
tenant = "acme"
token = "{{{{ env.RELAY_ACME_TOKEN }}}}"

[identities.globex]
tenant = "globex"
token = "{{{{ env.RELAY_GLOBEX_TOKEN }}}}"

[[step]]
name = "orders"
as = "acme"
path = "/t/{{{{ tenant }}}}/{p}"
[step.subscribe]
kind = "{k}"

[[step]]
name = "globex orders"
as = "globex"
path = "/t/{{{{ tenant }}}}/{p}"
[step.subscribe]
kind = "{k}"

[[step]]
name = "create order"
as = "acme"
method = "POST"
path = "/t/{{{{ tenant }}}}/orders"
status = 201
capture = {{ order_id = "/id" }}

[[step]]
name = "order created"
[step.await]
stream = "orders"
since = "create order"
event = "order.status"
timeout = "2s"
checks = [{{ json = "/order_id", equals = "{{{{ order_id }}}}" }}, {{ json = "/status", equals = "created" }}]

[[step]]
name = "deliver"
as = "acme"
method = "POST"
path = "/t/{{{{ tenant }}}}/orders/{{{{ order_id }}}}/deliver"

[[step]]
name = "order delivered"
[step.await]
stream = "orders"
since = "deliver"
event = "order.status"
timeout = "1s"
checks = [{{ json = "/order_id", equals = "{{{{ order_id }}}}" }}, {{ json = "/status", equals = "delivered" }}]
capture = {{ delivered_seq = "/seq" }}
{send}
[[step]]
name = "globex sees no acme event"
[step.stream_isolation]
stream = "globex orders"
markers = ["{{{{ order_id }}}}"]
timeout = "100ms"
"#
    )
}

fn run_text(server: &Server, text: &str, iterations: u64) -> RunResult {
    let s =
        parse::parse(Path::new("realtime.toml"), text, &TestEnv).unwrap_or_else(|d| panic!("{d}"));
    run_one_user(&server.url(), s, iterations)
}

fn run(knobs: Knobs, kind: Kind, iterations: u64) -> RunResult {
    let server = Server::start(knobs);
    run_text(&server, &scenario(kind, false), iterations)
}

fn metric<'a>(r: &'a RunResult, name: &str, kind: StepKind) -> &'a StepStats {
    let s = r
        .steps
        .iter()
        .find(|s| s.info.name == name)
        .unwrap_or_else(|| panic!("no metric {name:?}"));
    assert_eq!(s.info.kind, kind, "{name}");
    &s.stats
}

const KINDS: [Kind; 2] = [Kind::Sse, Kind::Ws];

#[test]
fn awaits_pass_on_a_healthy_relay_and_the_stream_is_held_across_iterations() {
    for kind in KINDS {
        let r = run(Knobs::default(), kind, 3);
        assert!(
            failed_checks(&r).is_empty(),
            "{kind:?}: {:?}",
            failed_checks(&r)
        );
        for event in ["order created", "order delivered"] {
            let e = metric(&r, event, StepKind::Event);
            assert_eq!((e.requests, e.errors), (3, 0), "{kind:?} {event}");
            assert_eq!(e.latency.count(), 3, "{kind:?} {event}");
        }
        // One connect for three iterations: the stream is held.
        let orders = metric(&r, "orders", StepKind::Stream);
        assert_eq!((orders.requests, orders.errors), (1, 0), "{kind:?}");
        let first = metric(&r, "orders · first event", StepKind::Stream);
        assert_eq!(first.requests, 1, "{kind:?}");
        assert_eq!(
            metric(&r, "orders · reconnect", StepKind::Stream).requests,
            0,
            "{kind:?}"
        );
        assert!(r.violations.values().all(|n| *n == 0), "{kind:?}");
        // Stream metrics and events are not requests: the overall figures
        // count the three requests of each iteration only.
        assert_eq!(r.overall().requests, 6, "{kind:?}");
    }
}

#[test]
fn event_latency_counts_from_the_causing_request_and_covers_a_planted_delay() {
    let delay = Duration::from_millis(40);
    for kind in KINDS {
        let r = run(
            Knobs {
                delay,
                ..Knobs::default()
            },
            kind,
            2,
        );
        assert!(
            failed_checks(&r).is_empty(),
            "{kind:?}: {:?}",
            failed_checks(&r)
        );
        for event in ["order created", "order delivered"] {
            let e = metric(&r, event, StepKind::Event);
            assert_eq!(e.latency.count(), 2, "{kind:?} {event}");
            let min = Duration::from_micros(e.latency.min_micros());
            assert!(min >= delay, "{kind:?} {event}: {min:?} < {delay:?}");
        }
    }
}

/// An event that never comes fails its await with the cause that says
/// why: a relay that drops it is `event_timeout`, a stream that closes is
/// `stream_closed`. Either way the arrival check fails once and the
/// failure sample names the cause.
#[test]
fn a_lost_event_is_an_error_of_its_cause() {
    let cases = [
        (
            "a dropped event",
            Knobs {
                drop: true,
                ..Knobs::default()
            },
            ErrorCause::EventTimeout,
            "no event on stream \"orders\"",
        ),
        (
            "a closed stream",
            Knobs {
                close: true,
                ..Knobs::default()
            },
            ErrorCause::StreamClosed,
            "closed",
        ),
    ];
    for (fault, knobs, cause, message) in cases {
        for kind in KINDS {
            let case = format!("{fault} on {kind:?}");
            let r = run(knobs.clone(), kind, 1);
            let e = metric(&r, "order created", StepKind::Event);
            assert_eq!(e.errors, 1, "{case}: {:?}", failed_checks(&r));
            assert_eq!(
                e.error_counts.get(&cause),
                Some(&1),
                "{case}: {:?}",
                failed_checks(&r)
            );
            let check = r
                .checks
                .iter()
                .find(|c| {
                    c.info.step == "order created" && c.info.name.contains("arrives within 2s")
                })
                .unwrap_or_else(|| panic!("{case}: no arrival check"));
            assert_eq!(check.stats.failures, 1, "{case}");
            let sample = r
                .failures
                .iter()
                .find(|f| f.step == "order created")
                .unwrap_or_else(|| panic!("{case}: no failure sample"));
            assert_eq!(sample.cause, Some(cause), "{case}");
            assert!(
                sample.message.contains(message),
                "{case}: {}",
                sample.message
            );
        }
    }
}

#[test]
fn a_refused_stream_is_an_error_of_cause_stream_refused_with_its_status() {
    for kind in KINDS {
        for status in [401u16, 403] {
            let r = run(
                Knobs {
                    refuse: Some(status),
                    ..Knobs::default()
                },
                kind,
                1,
            );
            let case = format!("{kind:?} {status}");
            let s = metric(&r, "orders", StepKind::Stream);
            assert_eq!(s.errors, 1, "{case}");
            assert_eq!(
                s.error_counts.get(&ErrorCause::StreamRefused),
                Some(&1),
                "{case}"
            );
            assert_eq!(s.status_counts.get(&status), Some(&1), "{case}");
            let sample = r
                .failures
                .iter()
                .find(|f| f.step == "orders")
                .unwrap_or_else(|| panic!("{case}: no failure sample"));
            assert_eq!(sample.cause, Some(ErrorCause::StreamRefused), "{case}");
            assert_eq!(sample.status, Some(status), "{case}");
            // The journey stops at the failed subscribe.
            assert_eq!(
                metric(&r, "order created", StepKind::Event).requests,
                0,
                "{case}"
            );
        }
    }
}

#[test]
fn a_leak_to_another_tenants_stream_is_a_tenant_isolation_violation() {
    for kind in KINDS {
        let healthy = run(Knobs::default(), kind, 2);
        assert_eq!(
            healthy
                .violations
                .get(&Violation::TenantIsolationViolations)
                .copied()
                .unwrap_or(0),
            0,
            "{kind:?}: the healthy relay leaks"
        );
        let r = run(
            Knobs {
                leak: true,
                ..Knobs::default()
            },
            kind,
            2,
        );
        let n = r
            .violations
            .get(&Violation::TenantIsolationViolations)
            .copied()
            .unwrap_or(0);
        // Each iteration's order made two events, both leaked.
        assert!(n >= 2, "{kind:?}: {n}");
        let sample = r
            .failures
            .iter()
            .find(|f| f.violation == Some(Violation::TenantIsolationViolations))
            .unwrap_or_else(|| panic!("{kind:?}: no violation sample"));
        assert_eq!(sample.step, "globex sees no acme event", "{kind:?}");
        assert!(
            sample.response.contains("ord-acme-"),
            "{kind:?}: {}",
            sample.response
        );
    }
}

#[test]
fn events_buffered_before_the_await_still_count() {
    // The event of `create order` arrives while nothing awaits it (a
    // think time after the request); the await finds it in the buffer.
    let server = Server::start(Knobs::default());
    let text = scenario(Kind::Sse, false).replace(
        "capture = { order_id = \"/id\" }\n",
        "capture = { order_id = \"/id\" }\nthink = \"150ms\"\n",
    );
    let r = run_text(&server, &text, 1);
    assert!(failed_checks(&r).is_empty(), "{:?}", failed_checks(&r));
    let e = metric(&r, "order created", StepKind::Event);
    assert_eq!(e.latency.count(), 1);
    // Its latency is its arrival, not the end of the think time.
    assert!(
        e.latency.max_micros() < 150_000,
        "{}",
        e.latency.max_micros()
    );
}

// ---- the binary: gates, exit codes, artifacts --------------------------

/// `convoy ARGS` in `cwd` with the relay's tokens in its environment.
fn convoy(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    convoy_with_env(args, cwd, env_vars())
}

/// The event step `name` of a written report.
fn written_event<'a>(r: &'a Report, name: &str) -> &'a StepReport {
    let e = r
        .steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name:?} in the report"));
    assert_eq!(e.kind, StepKind::Event, "{name}");
    e
}

fn run_cli(server: &Server, dir: &Path, text: &str, extra: &[&str]) -> (Output, PathBuf) {
    let file = dir.join("realtime.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join(format!("out-{}", fastrand::u32(..)));
    let url = server.url();
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--target",
        &url,
        "--out",
        out.to_str().unwrap(),
    ];
    if !extra.contains(&"--profile") {
        args.extend(["--profile", "smoke"]);
    }
    args.extend_from_slice(extra);
    (convoy(&args, dir), out)
}

#[test]
fn gates_read_event_latency() {
    let server = Server::start(Knobs {
        delay: Duration::from_millis(30),
        ..Knobs::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(Kind::Sse, false);
    let (pass, _) = run_cli(
        &server,
        dir.path(),
        &text,
        &["-g", "event:\"order delivered\" p95 < 10s"],
    );
    assert_eq!(pass.status.code(), Some(0), "{}", cli_support::text(&pass));
    let (fail, out) = run_cli(
        &server,
        dir.path(),
        &text,
        &["-g", "event:\"order delivered\" p95 < 5ms"],
    );
    assert_eq!(fail.status.code(), Some(1), "{}", cli_support::text(&fail));
    let report = convoy::report::artifacts::read_report(&out).unwrap();
    let gate = report
        .gates
        .iter()
        .find(|g| g.scope == "event:\"order delivered\"")
        .expect("the event gate");
    assert!(!gate.passed);
    // Every format shows the event.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("event `order delivered`"), "{md}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("order delivered"), "{junit}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<span class=\"tag\">event</span>"));
    // The written report keeps the event as an event step.
    written_event(&report, "order delivered");
}

#[test]
fn a_leak_exits_2_and_a_healthy_probe_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    for kind in KINDS {
        let text = scenario(kind, false);
        let healthy = Server::start(Knobs::default());
        let (o, _) = run_cli(&healthy, dir.path(), &text, &[]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{kind:?}: {}",
            cli_support::text(&o)
        );
        let leaky = Server::start(Knobs {
            leak: true,
            ..Knobs::default()
        });
        let (o, _) = run_cli(&leaky, dir.path(), &text, &[]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{kind:?}: {}",
            cli_support::text(&o)
        );
    }
}

#[test]
fn no_token_reaches_an_artifact_in_a_header_or_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for kind in KINDS {
        for query in [false, true] {
            let text = scenario(kind, query);
            // Refused streams echo the token in their body; dropped events
            // fail awaits with samples.
            for knobs in [
                Knobs {
                    refuse: Some(401),
                    ..Knobs::default()
                },
                Knobs {
                    drop: true,
                    ..Knobs::default()
                },
                Knobs {
                    leak: true,
                    ..Knobs::default()
                },
            ] {
                let case = format!("{kind:?} query={query} {knobs:?}");
                let server = Server::start(knobs);
                let (o, out) = run_cli(&server, dir.path(), &text, &[]);
                assert_ne!(o.status.code(), Some(0), "{case} fails on purpose");
                seen.extend(outputs(&case, &o));
                let files = files_under(&out);
                assert!(!files.is_empty(), "{case} wrote no report");
                seen.extend(files);
            }
        }
    }
    let mut samples = 0;
    for (path, text) in &seen {
        samples += text.matches("stream_refused").count();
        for (_, token) in TOKENS {
            assert!(!text.contains(token), "{path} shows a token");
        }
    }
    assert!(samples > 0, "the refusals were recorded");
}

// ---- malformed stream steps --------------------------------------------

fn load_error(text: &str) -> String {
    match parse::parse(Path::new("bad.toml"), text, &TestEnv) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(d) => d.to_string(),
    }
}

fn base() -> String {
    scenario(Kind::Sse, false)
}

#[test]
fn malformed_stream_steps_are_named_where_they_are_written() {
    // A send on server-sent events.
    let text = format!(
        "{}\n[[step]]\nname = \"s\"\n[step.send]\nstream = \"orders\"\nbody = \"x\"\n",
        base()
    );
    let line = text.lines().count() - 1;
    let e = load_error(&text);
    assert!(e.contains(&format!("bad.toml:{line}:10")), "{e}");
    assert!(e.contains("server-sent events"), "{e}");
    // An unknown key in [step.await].
    let text = base().replace("since = \"deliver\"", "sinse = \"deliver\"");
    let e = load_error(&text);
    assert!(e.contains("bad.toml:") && e.contains("sinse"), "{e}");
    // A stream no earlier step opens.
    let text = base().replace("stream = \"globex orders\"", "stream = \"globex order\"");
    let e = load_error(&text);
    assert!(e.contains("no earlier step subscribes"), "{e}");
    assert!(e.contains("did you mean \"globex orders\"?"), "{e}");
    // `since` naming a later or unknown step.
    let text = base().replace("since = \"create order\"", "since = \"deliver\"");
    let e = load_error(&text);
    assert!(e.contains("no earlier step is named \"deliver\""), "{e}");
    // An unknown stream kind, and a request key the kind does not use.
    let e = load_error(&base().replacen("kind = \"sse\"", "kind = \"sss\"", 1));
    assert!(
        e.contains("unknown stream kind") && e.contains("did you mean \"sse\"?"),
        "{e}"
    );
    let e = load_error(&base().replacen(
        "as = \"acme\"\npath",
        "as = \"acme\"\nmethod = \"POST\"\npath",
        1,
    ));
    assert!(e.contains("a subscribe step does not use `method`"), "{e}");
    // A bad reconnect policy.
    let e = load_error(&base().replacen(
        "kind = \"sse\"",
        "kind = \"sse\"\nreconnect = { backoff = \"5s..1s\", max = 2 }",
        1,
    ));
    assert!(e.contains("reversed"), "{e}");
}

// ---- reconnects and hostile peers ----------------------------------------

#[test]
fn a_reconnect_policy_is_followed_counted_and_stated() {
    for kind in KINDS {
        // Every stream closes as it opens: two reconnects, then closed.
        let server = Server::start(Knobs {
            close: true,
            ..Knobs::default()
        });
        let text = scenario(kind, false).replacen(
            &format!("kind = \"{}\"\n", kind.name()),
            &format!(
                "kind = \"{}\"\nreconnect = {{ backoff = \"10ms..20ms\", max = 2 }}\n",
                kind.name()
            ),
            1,
        );
        let r = run_text(&server, &text, 1);
        let reconnects = metric(&r, "orders · reconnect", StepKind::Stream);
        assert_eq!((reconnects.requests, reconnects.errors), (2, 0), "{kind:?}");
        let e = metric(&r, "order created", StepKind::Event);
        assert_eq!(
            e.error_counts.get(&ErrorCause::StreamClosed),
            Some(&1),
            "{kind:?}"
        );
        let sample = r
            .failures
            .iter()
            .find(|f| f.step == "order created")
            .unwrap_or_else(|| panic!("{kind:?}: no failure sample"));
        assert!(
            sample
                .message
                .contains("no reconnect left (2 made, max = 2)"),
            "{kind:?}: {}",
            sample.message
        );
    }
}

/// A peer that answers the stream's request with `head` and then `junk`,
/// and closes; it serves the order requests like a healthy relay would not,
/// so the scenario here is the stream and an await only.
fn hostile(head: &'static str, junk: Vec<u8>) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            let Ok(mut c) = conn else { return };
            let junk = junk.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(head.as_bytes());
                for chunk in junk.chunks(997) {
                    if c.write_all(chunk).is_err() {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            });
        }
    });
    addr
}

fn await_only(kind: Kind) -> String {
    format!(
        r#"name = "hostile-{k}"

[[step]]
name = "orders"
path = "/{p}"
[step.subscribe]
kind = "{k}"

[[step]]
name = "anything"
[step.await]
stream = "orders"
timeout = "500ms"
checks = [{{ json = "/status", equals = "delivered" }}]
"#,
        k = kind.name(),
        p = kind.path()
    )
}

#[test]
fn garbage_from_a_stream_peer_is_an_error_never_a_panic() {
    let mut rng = fastrand::Rng::with_seed(16);
    for round in 0..6 {
        let mut junk: Vec<u8> = (0..rng.usize(1..20_000)).map(|_| rng.u8(..)).collect();
        if round % 2 == 0 {
            // A line longer than any bound.
            junk.extend(std::iter::repeat_n(b'x', 11 << 20));
        }
        for (kind, head) in [
            (
                Kind::Sse,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n",
            ),
            (
                Kind::Ws,
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n",
            ),
        ] {
            let addr = hostile(head, junk.clone());
            let s = parse::parse(Path::new("hostile.toml"), &await_only(kind), &TestEnv).unwrap();
            let url: url::Url = format!("http://{addr}/").parse().unwrap();
            let workload = ScenarioWorkload::new(
                vec![s],
                Some(&url),
                HttpOptions::default(),
                CustomRegistry::new(),
            )
            .unwrap();
            let r = engine::run(
                &LoadModel::closed(1, 1),
                &EngineOptions {
                    workers: 1,
                    ..EngineOptions::default()
                },
                Arc::new(workload),
                &RunControl::new(),
                |_| {},
            )
            .unwrap();
            let e = metric(&r, "anything", StepKind::Event);
            assert_eq!(e.errors, 1, "{kind:?} round {round}");
            let cause = e.error_counts.keys().next().copied();
            assert!(
                matches!(
                    cause,
                    Some(ErrorCause::StreamClosed | ErrorCause::EventTimeout)
                ),
                "{kind:?} round {round}: {cause:?}"
            );
        }
    }
}

#[test]
fn a_websocket_message_is_sent_and_its_answer_awaited() {
    let r = run(Knobs::default(), Kind::Ws, 2);
    assert!(failed_checks(&r).is_empty(), "{:?}", failed_checks(&r));
    let pong = metric(&r, "pong", StepKind::Event);
    assert_eq!((pong.requests, pong.errors), (2, 0));
    let sent = r
        .checks
        .iter()
        .find(|c| c.info.step == "ping" && c.info.name == "message sent")
        .unwrap();
    assert_eq!(sent.stats.passes, 2);
}

#[test]
fn event_latency_of_shards_merges_exactly() {
    let server = Server::start(Knobs::default());
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(Kind::Sse, false);
    let mut reports = Vec::new();
    let mut events = 0;
    for shard in ["0/2", "1/2"] {
        let (o, out) = run_cli(
            &server,
            dir.path(),
            &text,
            &["--profile", "light", "--shard", shard],
        );
        assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
        let r = convoy::report::artifacts::read_report(&out).unwrap();
        let e = written_event(&r, "order delivered");
        events += e.requests;
        reports.push(out.join("report.json"));
    }
    let merged = dir.path().join("merged.json");
    let o = convoy(
        &[
            "merge",
            reports[0].to_str().unwrap(),
            reports[1].to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
            "-g",
            "event:\"order delivered\" p95 < 10s",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
    let m = convoy::report::artifacts::read_report(&merged).unwrap();
    let e = written_event(&m, "order delivered");
    assert_eq!(e.requests, events);
    assert_eq!(events, 50, "light: 5 users x 10 iterations");
    assert!(
        m.gates
            .iter()
            .any(|g| g.scope == "event:\"order delivered\"" && g.passed)
    );
}
