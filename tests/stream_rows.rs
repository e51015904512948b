//! What a held stream costs and shows, through the binary, against the
//! relay of [`streams_support`] and the built-in `realtime` journey:
//!
//! - the `NAME · reconnect` row of a stream whose policy is
//!   `reconnect = "none"` counts nothing, ever: report.json keeps it
//!   (counting 0, marked `ruled_out`), the text, Markdown and HTML reports
//!   leave it out, and a stream that may reconnect keeps its row
//!   everywhere; shards merged, and a report rendered again, keep the mark;
//! - each held stream is a connection of its own: `convoy run` counts one
//!   more per subscribe step per user against the open-file limit, and the
//!   smoke allowance counts it as one more request at once.

mod cli_support;
mod streams_support;

use std::path::Path;
use std::process::{Command, Output};

use cli_support::{BIN, command, output_in, write};
use serde_json::Value;
use streams_support::{Knobs, Server, TOKENS};

/// acme's stream holds without a reconnect policy (`none`, the default);
/// globex's may reconnect but has no reason to.
const SCENARIO: &str = r#"name = "relay-rows"

[auth]
kind = "token"

[identities.acme]
tenant = "acme"
token = "{{ env.RELAY_ACME_TOKEN }}"

[identities.globex]
tenant = "globex"
token = "{{ env.RELAY_GLOBEX_TOKEN }}"

[[step]]
name = "orders"
as = "acme"
path = "/t/{{ tenant }}/events"
[step.subscribe]
kind = "sse"

[[step]]
name = "globex orders"
as = "globex"
path = "/t/{{ tenant }}/events"
[step.subscribe]
kind = "sse"
reconnect = { backoff = "10ms..20ms", max = 2 }

[[step]]
name = "create order"
as = "acme"
method = "POST"
path = "/t/{{ tenant }}/orders"
status = 201

[[step]]
name = "order created"
[step.await]
stream = "orders"
since = "create order"
event = "order.status"
timeout = "2s"
"#;

/// `convoy ARGS` in `dir` with the relay's tokens.
fn convoy_in(dir: &Path, args: &[&str]) -> Output {
    let mut c = command();
    c.envs(
        TOKENS
            .iter()
            .map(|(t, tok)| (format!("RELAY_{}_TOKEN", t.to_uppercase()), *tok)),
    );
    output_in(c, args, dir)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The step rows of a report.json, by name.
fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no row {name:?}"))
}

/// Checks a report.json of the relay scenario: both reconnect rows kept,
/// counting 0; only acme's marked.
fn kept_and_marked(report: &Value) {
    let none = row(report, "orders · reconnect");
    assert_eq!((&none["requests"], &none["errors"]), (&0.into(), &0.into()));
    assert_eq!(none["ruled_out"], true, "{none}");
    let backoff = row(report, "globex orders · reconnect");
    assert_eq!(backoff["requests"], 0);
    assert!(backoff.get("ruled_out").is_none(), "{backoff}");
    // Nothing else is.
    let marked = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get("ruled_out").is_some())
        .count();
    assert_eq!(marked, 1);
}

/// Checks the human-readable reports of a run directory (or the text
/// printed by `convoy report`): acme's reconnect row left out, globex's
/// shown, the other stream rows shown.
fn left_out_of(text: &str, md: &str, html: &str) {
    let text_rows: Vec<&str> = text.lines().filter(|l| l.contains("stream: ")).collect();
    assert!(
        text_rows
            .iter()
            .any(|l| l.contains("stream: globex orders · reconnect")),
        "{text}"
    );
    assert!(
        !text_rows
            .iter()
            .any(|l| l.contains("stream: orders · reconnect")),
        "{text}"
    );
    assert!(
        text_rows
            .iter()
            .any(|l| l.contains("stream: orders · first event")),
        "{text}"
    );
    assert!(md.contains("stream `globex orders · reconnect`"), "{md}");
    assert!(!md.contains("stream `orders · reconnect`"), "{md}");
    assert!(md.contains("stream `orders · first event`"), "{md}");
    assert!(html.contains("<code>globex orders · reconnect</code>"));
    assert!(!html.contains("<code>orders · reconnect</code>"));
    assert!(html.contains("<code>orders · first event</code>"));
}

/// `convoy report DIR -f FORMAT` on standard output.
fn rendered(dir: &Path, report: &Path, format: &str) -> String {
    let o = convoy_in(dir, &["report", report.to_str().unwrap(), "-f", format]);
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_reconnect_row_the_policy_rules_out_is_kept_in_json_and_left_out_of_the_tables() {
    let server = Server::start(Knobs::default());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(d, "relay.toml", SCENARIO);
    let url = server.url();
    let mut shards = Vec::new();
    for (i, shard) in ["0/2", "1/2"].into_iter().enumerate() {
        let out = d.join(format!("shard{i}"));
        let o = convoy_in(
            d,
            &[
                "run",
                file.to_str().unwrap(),
                "--target",
                &url,
                "--profile",
                "light",
                "--shard",
                shard,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
        let json: Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
        kept_and_marked(&json);
        // What the run printed, and the files it wrote.
        left_out_of(
            &String::from_utf8_lossy(&o.stdout),
            &read(&out.join("report.md")),
            &read(&out.join("report.html")),
        );
        shards.push(out.join("report.json"));
    }

    // Merged shards keep the mark, and render the same.
    let merged = d.join("merged.json");
    let o = convoy_in(
        d,
        &[
            "merge",
            shards[0].to_str().unwrap(),
            shards[1].to_str().unwrap(),
            "-o",
            merged.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
    kept_and_marked(&serde_json::from_str(&read(&merged)).unwrap());
    left_out_of(
        &rendered(d, &merged, "table"),
        &rendered(d, &merged, "md"),
        &rendered(d, &merged, "html"),
    );
    // The tools reading report.json see the 0, typed.
    let typed = convoy::report::artifacts::read_report(&merged).unwrap();
    let r = typed
        .steps
        .iter()
        .find(|s| s.name == "orders · reconnect")
        .unwrap();
    assert!(r.ruled_out && r.requests == 0 && !r.shown());
}

#[test]
fn the_builtin_realtime_journey_shows_no_reconnect_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = convoy_in(
        dir.path(),
        &[
            "run",
            "realtime",
            "--profile",
            "smoke",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", cli_support::text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Both streams hold without a policy: their reconnect rows are in the
    // JSON only.
    for stream in ["dispatcher events", "globex events"] {
        let name = format!("{stream} · reconnect");
        assert!(!stdout.contains(&name), "{stdout}");
        assert!(!read(&out.join("report.md")).contains(&name));
        assert!(!read(&out.join("report.html")).contains(&name));
        let json: Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
        assert_eq!(row(&json, &name)["ruled_out"], true);
        assert!(stdout.contains(&format!("stream: {stream} · first event")));
    }
}

#[test]
fn a_user_that_holds_streams_needs_a_connection_for_each() {
    // `realtime` holds two streams; the reference target runs in this
    // process, so each connection is two descriptors: 6 per user. With 200
    // descriptors (64 kept for convoy) that is 22 users, where counting
    // the request connection only allowed 68.
    let dir = tempfile::tempdir().unwrap();
    let profiles = write(
        dir.path(),
        "profiles.toml",
        "[profile.crowd]\nusers = 30\niterations = 1\n",
    );
    let out = Command::new("sh")
        .args(["-c", "ulimit -n 200 && exec \"$0\" \"$@\""])
        .arg(BIN)
        .args([
            "run",
            "realtime",
            "--profile",
            "crowd",
            "--profiles",
            profiles.to_str().unwrap(),
            "--no-reports",
            "-q",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", cli_support::text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("asks for 30, more than convoy can hold here: at most 22 users of 3 connections each (one for requests, 2 for the streams it holds)"),
        "{stderr}"
    );
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}

#[test]
fn held_streams_count_toward_the_smoke_allowance_at_once() {
    // Twenty streams held beside a request: 21 at once, one more than a
    // host that is not loopback may take. Refused before any lookup.
    let mut text = String::from("name = \"many streams\"\n");
    for i in 0..20 {
        text += &format!(
            "\n[[step]]\nname = \"stream {i}\"\npath = \"/events\"\n[step.subscribe]\nkind = \"sse\"\n"
        );
    }
    text += "\n[[step]]\npath = \"/health\"\nstatus = 200\n";
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "many.toml", &text);
    let scenario = convoy::scenario::load(file.to_str().unwrap()).unwrap();
    let bound = convoy::profile::smoke_bound(std::slice::from_ref(&scenario), 1);
    assert_eq!(bound.in_flight, Some(21), "{bound}");
    assert_eq!(bound.requests, Some(21), "{bound}");
    let out = convoy_in(
        dir.path(),
        &[
            "smoke",
            file.to_str().unwrap(),
            "--target",
            "https://not-allowed.invalid",
            "--no-reports",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", cli_support::text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to send up to 21 requests, 21 at once, from 1 user"),
        "{stderr}"
    );
    // `run -p smoke` counts them the same.
    let smoke = convoy::profile::builtin("smoke").unwrap().model;
    let run = convoy::profile::run_bound(&smoke, std::slice::from_ref(&scenario));
    assert_eq!(run.in_flight, Some(21), "{run}");
    // The built-ins still fit: both realtime journeys hold four streams.
    let builtins = convoy::scenario::builtin::all().unwrap();
    let all = convoy::profile::run_bound(&smoke, &builtins);
    assert!(all.is_smoke(), "{all}");
    // The concurrent replay's 5 copies, beside those four streams.
    assert_eq!(all.in_flight, Some(9), "{all}");
    let realtime = convoy::scenario::load("realtime").unwrap();
    assert_eq!(
        convoy::profile::smoke_bound(std::slice::from_ref(&realtime), 1).in_flight,
        Some(3)
    );
}
