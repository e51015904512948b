//! Wildcard gate scopes on streams, through the binary as a user types
//! them, against the relay of [`streams_support`] (tenant in the path, its
//! own framing): `event:* p95 < …` judges every awaited event of the run
//! and names each that failed, from every place gates come from (a
//! scenario's `gates`, a profile's, `-g`, `convoy report --gate`,
//! `convoy merge`); `stream:*` passes over a stream row that counted
//! nothing; a wildcard that matches nothing fails its gate with the reason,
//! as an unknown name does.
//!
//! No test bounds a time: the relay delays every event by 30 ms, and the
//! failing gates ask for less than that.

mod cli_support;
mod streams_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use cli_support::{command, output_in, write};
use convoy::report::{GateResult, Report};
use streams_support::{Knobs, Server, TOKENS};

/// The delay the relay puts on every event: the failing gates ask for
/// less, the passing ones for far more.
const DELAY: Duration = Duration::from_millis(30);

/// acme's dispatcher subscribes; acme creates an order and delivers it,
/// awaiting both events; globex holds a stream that carries none of it
/// (its `· first event` row counts nothing).
fn scenario(gates: &[&str]) -> String {
    let gates: Vec<String> = gates.iter().map(|g| format!("{g:?}")).collect();
    format!(
        r#"name = "relay-events"
gates = [{}]

[auth]
kind = "token"

[identities.acme]
tenant = "acme"
token = "{{{{ env.RELAY_ACME_TOKEN }}}}"

[identities.globex]
tenant = "globex"
token = "{{{{ env.RELAY_GLOBEX_TOKEN }}}}"

[[step]]
name = "orders"
as = "acme"
path = "/t/{{{{ tenant }}}}/events"
[step.subscribe]
kind = "sse"

[[step]]
name = "globex orders"
as = "globex"
path = "/t/{{{{ tenant }}}}/events"
[step.subscribe]
kind = "sse"

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
checks = [{{ json = "/status", equals = "created" }}]

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
timeout = "2s"
checks = [{{ json = "/status", equals = "delivered" }}]
"#,
        gates.join(", ")
    )
}

/// The relay's tokens, as the scenario reads them.
fn env_vars() -> Vec<(String, String)> {
    TOKENS
        .iter()
        .map(|(t, tok)| (format!("RELAY_{}_TOKEN", t.to_uppercase()), tok.to_string()))
        .collect()
}

/// `convoy ARGS` in `dir` with the relay's tokens.
fn convoy_in(dir: &Path, args: &[&str]) -> Output {
    let mut c = command();
    c.envs(env_vars());
    output_in(c, args, dir)
}

/// `convoy run FILE --target RELAY --out DIR/OUT -p smoke EXTRA…`; the
/// run's exit and its report.
fn run(server: &Server, dir: &Path, file: &Path, out: &str, extra: &[&str]) -> (Output, Report) {
    let out = dir.join(out);
    let url = server.url();
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--target",
        url.as_str(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    if !extra.contains(&"--profile") {
        args.extend(["--profile", "smoke"]);
    }
    args.extend_from_slice(extra);
    let o = convoy_in(dir, &args);
    let report = convoy::report::artifacts::read_report(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", cli_support::text(&o)));
    (o, report)
}

fn gate<'a>(r: &'a Report, expression: &str) -> &'a GateResult {
    r.gates
        .iter()
        .find(|g| g.expression == expression)
        .unwrap_or_else(|| panic!("no gate {expression:?} in {:#?}", r.gates))
}

fn delayed() -> Server {
    Server::start(Knobs {
        delay: DELAY,
        ..Knobs::default()
    })
}

/// What a failed `event:*` gate must say: both events, each with its value.
fn names_both_events(g: &GateResult) {
    assert!(!g.passed, "{g:?}");
    assert_eq!(g.scope, "event:*");
    assert!(
        g.actual_display.starts_with("2 failed of 2 events: "),
        "{g:?}"
    );
    assert!(g.actual_display.contains("\"order created\" "), "{g:?}");
    assert!(g.actual_display.contains("\"order delivered\" "), "{g:?}");
    assert!(g.actual.unwrap() >= DELAY.as_secs_f64() * 1000.0, "{g:?}");
}

#[test]
fn event_wildcards_judge_every_event_from_scenario_profile_and_command_line() {
    let server = delayed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // On the command line: a wide bar passes, with the worst event named.
    let plain = write(d, "plain.toml", &scenario(&[]));
    let (o, r) = run(&server, d, &plain, "wide", &["-g", "event:* p95 < 10s"]);
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
    let g = gate(&r, "event:* p95 < 10s");
    assert!(g.passed, "{g:?}");
    assert!(g.actual_display.contains("at worst (\"order "), "{g:?}");
    assert!(g.actual_display.ends_with(", 2 events"), "{g:?}");

    // Below the planted delay: exit 1, both events named.
    let (o, r) = run(&server, d, &plain, "cli", &["-g", "event:* p95 < 5ms"]);
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    names_both_events(gate(&r, "event:* p95 < 5ms"));

    // In the scenario's own gates.
    let own = write(d, "own.toml", &scenario(&["event:* p95 < 5ms"]));
    let (o, r) = run(&server, d, &own, "scenario", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    names_both_events(gate(&r, "event:* p95 < 5ms"));

    // In a profile's gates.
    let profiles = write(
        d,
        "profiles.toml",
        "[profile.once]\nusers = 1\niterations = 2\ngates = [\"event:* p95 < 5ms\"]\n",
    );
    let (o, r) = run(
        &server,
        d,
        &plain,
        "profile",
        &[
            "--profile",
            "once",
            "--profiles",
            profiles.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    names_both_events(gate(&r, "event:* p95 < 5ms"));

    // Judged again on a saved run: `convoy report --gate`.
    let o = convoy_in(
        d,
        &[
            "report",
            d.join("wide").to_str().unwrap(),
            "--gate",
            "event:* p95 < 5ms",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("2 failed of 2 events"), "{shown}");
}

#[test]
fn a_merge_judges_event_wildcards_on_the_union_of_the_shards() {
    let server = delayed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(d, "relay.toml", &scenario(&["event:* p95 < 10s"]));
    let mut reports = Vec::new();
    for (i, shard) in ["0/2", "1/2"].into_iter().enumerate() {
        let out = format!("shard{i}");
        let (o, r) = run(
            &server,
            d,
            &file,
            &out,
            &["--profile", "light", "--shard", shard],
        );
        assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
        assert!(gate(&r, "event:* p95 < 10s").passed);
        reports.push(d.join(out).join("report.json"));
    }
    let merged = d.join("merged.json");
    let o = convoy_in(
        d,
        &[
            "merge",
            reports[0].to_str().unwrap(),
            reports[1].to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
            "-g",
            "event:* p95 < 5ms",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    let m = convoy::report::artifacts::read_report(&merged).unwrap();
    // The shards' own wildcard, judged again on the merge, and the new one.
    let stored = gate(&m, "event:* p95 < 10s");
    assert!(stored.passed, "{stored:?}");
    assert!(stored.actual_display.ends_with(", 2 events"), "{stored:?}");
    names_both_events(gate(&m, "event:* p95 < 5ms"));
}

#[test]
fn a_stream_wildcard_passes_over_rows_that_counted_nothing() {
    let server = delayed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(d, "relay.toml", &scenario(&[]));
    // globex's stream never carries an event and neither stream
    // reconnects: three rows count nothing, three are judged.
    let (o, r) = run(&server, d, &file, "streams", &["-g", "stream:* p95 < 10s"]);
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
    let quiet: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.kind == convoy::engine::StepKind::Stream && s.requests == 0)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        quiet,
        [
            "orders · reconnect",
            "globex orders · first event",
            "globex orders · reconnect"
        ]
    );
    let g = gate(&r, "stream:* p95 < 10s");
    assert!(g.passed, "{g:?}");
    assert!(g.actual_display.ends_with(", 3 stream rows"), "{g:?}");
    // The same bar on one of those rows by name fails for want of data.
    let (o, r) = run(
        &server,
        d,
        &file,
        "named",
        &["-g", "stream:\"orders · reconnect\" p95 < 10s"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    let g = gate(&r, "stream:\"orders · reconnect\" p95 < 10s");
    assert_eq!(g.actual_display, "no latency samples");
}

#[test]
fn a_wildcard_that_matches_nothing_fails_like_an_unknown_name() {
    let server = delayed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Requests only: no stream, no await.
    let text = scenario(&[]);
    let requests_only = text[..text.find("[[step]]\nname = \"orders\"").unwrap()].to_string()
        + "[[step]]\nname = \"create order\"\nas = \"acme\"\nmethod = \"POST\"\npath = \"/t/{{ tenant }}/orders\"\nstatus = 201\n";
    let file = write(d, "requests.toml", &requests_only);
    let (o, r) = run(
        &server,
        d,
        &file,
        "none",
        &[
            "-g",
            "stream:* p95 < 10s",
            "-g",
            "event:* p95 < 10s",
            "-g",
            "stream:nope p95 < 10s",
            "-g",
            "step:* p95 < 10s",
        ],
    );
    // Loaded and run like a gate on a name the run lacks: judged, failed,
    // with the reason in the report.
    assert_eq!(o.status.code(), Some(1), "{}", cli_support::text(&o));
    for (expression, why) in [
        ("stream:* p95 < 10s", "no such stream (the run has none)"),
        ("event:* p95 < 10s", "no such event (the run has none)"),
        ("stream:nope p95 < 10s", "no such stream (the run has none)"),
    ] {
        let g = gate(&r, expression);
        assert_eq!((g.passed, g.actual_display.as_str()), (false, why));
    }
    assert!(gate(&r, "step:* p95 < 10s").passed);
}
