//! Stopping convoy from outside: SIGTERM within a container's grace period,
//! a second Ctrl-C that still writes the partial report, signals during
//! `--metrics-linger` and `smoke --wait-healthy` (src/cli/signals.rs).
//!
//! The bounds asserted here are watchdogs only a hang reaches (20 s for a
//! promise of about 3.5 s); the measured figures are in the commit that
//! added them.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cli_support::{command, free_port};
use convoy::target::{self, RunningTarget, TargetConfig};

/// What only a hang reaches.
const WATCHDOG: Duration = Duration::from_secs(20);

fn convoy(args: &[&str]) -> Command {
    let mut c = command();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Waits for `child` to exit, killing it (and failing) past the watchdog.
fn wait(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            panic!("convoy did not exit within {WATCHDOG:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `cond` holds (the run is under way); fails past the
/// watchdog.
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WATCHDOG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reference target whose every answer takes 30 s.
fn hung_target() -> RunningTarget {
    target::spawn(TargetConfig {
        faults: vec!["latency=30s".parse().unwrap()],
        ..TargetConfig::default()
    })
    .unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn sigterm_against_a_hung_target_writes_the_partial_report_within_seconds() {
    let t = hung_target();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The default --graceful-stop is 30 s: SIGTERM caps it at 3 s.
    let mut child = convoy(&[
        "run",
        "health",
        "--target",
        &t.base_url(),
        "-q",
        "--out",
        out.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    until("a request reached the target", || t.requests_seen() > 0);
    signal(&child, "-TERM");
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(5), "{status:?}");
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["partial"], true, "{report}");
    assert_eq!(report["stop_reason"], "interrupted", "{report}");
    assert!(
        report["interrupted"].as_u64().unwrap() >= 1,
        "the hung requests are counted as cut off: {report}"
    );
}

#[test]
fn a_second_sigint_skips_the_graceful_stop_and_still_writes_the_partial_report() {
    let t = hung_target();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let url = format!("{}/health", t.base_url());
    let mut child = convoy(&[
        "bench",
        &url,
        "-c",
        "3",
        "-d",
        "5m",
        "--graceful-stop",
        "5m",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    until("a request reached the target", || t.requests_seen() > 0);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(5), "{status:?}");
    let report = read_json(&out);
    assert_eq!(report["partial"], true, "{report}");
    assert_eq!(report["interrupted"], 3, "{report}");
}

#[test]
fn sigterm_during_metrics_linger_ends_it_with_the_runs_exit_code() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let url = format!("{}/health", t.base_url());
    let mut child = convoy(&[
        "bench",
        &url,
        "-n",
        "5",
        "-c",
        "1",
        "-q",
        "--metrics-addr",
        "127.0.0.1:0",
        "--metrics-linger",
        "60s",
        "-o",
        out.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    // The report is written before the linger starts.
    until("the report was written", || {
        std::fs::read_to_string(&out)
            .ok()
            .is_some_and(|s| serde_json::from_str::<serde_json::Value>(&s).is_ok())
    });
    signal(&child, "-TERM");
    let status = wait(&mut child);
    // The run itself completed and passed: its report is whole.
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(read_json(&out)["partial"], false);
}

#[test]
fn sigterm_during_wait_healthy_exits_5_and_says_so() {
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}");
    let mut child = convoy(&[
        "smoke",
        "health",
        "--target",
        &target,
        "--wait-healthy",
        "60s",
        "--no-reports",
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("waiting up to 1m"), "{first}");
    signal(&child, "-TERM");
    let status = wait(&mut child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(5), "{status:?}: {rest}");
    assert!(
        rest.contains("interrupted while waiting for"),
        "says what was interrupted: {rest}"
    );
}
