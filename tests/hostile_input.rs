//! Input no user should give, given anyway: convoy answers with a clear
//! error and a documented exit code, never a panic (exit 101) or an abort
//! (134). Each case here once crashed the binary.

mod cli_support;

use std::process::{Command, Output};

use cli_support::{BIN, command, convoy_as_is};
use convoy::target::{self, TargetConfig};

/// Exit 3 (usage) with `message` on stderr, and no panic.
fn assert_usage_error(out: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in:\n{stderr}"
    );
}

const TOO_LONG: &str = "at most 365 days";

#[test]
fn durations_beyond_any_run_are_refused_before_the_run_starts() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let url = format!("{}/health", t.base_url());
    let huge = "18446744073709551615s";
    for flags in [
        vec!["-d", huge],
        vec!["-d", "500000000000y"],
        vec!["--rate", "10/s", "-d", "1s", "--max-lag", huge],
        vec!["--stages", &format!("5,{huge}")],
        vec!["--stages", "5,1s;10,400d"],
        vec!["-d", "1s", "--timeout", huge],
        vec!["-d", "1s", "--connect-timeout", huge],
    ] {
        let mut args = vec!["bench", url.as_str(), "-q"];
        args.extend(flags.iter().copied());
        assert_usage_error(&convoy_as_is(&args), TOO_LONG);
    }
    let base = t.base_url().to_string();
    for flags in [
        vec!["--timeout", huge],
        vec!["--graceful-stop", huge],
        vec!["--metrics-linger", huge],
    ] {
        let mut args = vec![
            "run",
            "health",
            "--target",
            base.as_str(),
            "-q",
            "--no-reports",
        ];
        args.extend(flags.iter().copied());
        assert_usage_error(&convoy_as_is(&args), TOO_LONG);
    }
}

#[test]
fn a_profile_file_with_a_duration_beyond_any_run_is_refused() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [
        (
            "duration",
            "[profile.p]\nusers = 1\nduration = \"18446744073709551615s\"\n",
        ),
        (
            "ramp_up",
            "[profile.p]\nusers = 2\nduration = \"1s\"\nramp_up = \"999999999999s\"\n",
        ),
        (
            "max_lag",
            "[profile.p]\nrate = \"10/s\"\nduration = \"1s\"\nmax_lag = \"400d\"\n",
        ),
        (
            "stages",
            "[profile.p]\nstages = \"1,1s;2,18446744073709551615s\"\n",
        ),
    ] {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = convoy_as_is(&[
            "run",
            "health",
            "--target",
            t.base_url().as_str(),
            "--profiles",
            file.to_str().unwrap(),
            "-p",
            "p",
            "-q",
            "--no-reports",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(out.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains(TOO_LONG), "{name}: {stderr}");
    }
}

/// Runs convoy with its standard output on `stdout`; returns its exit code
/// and standard error.
fn convoy_with_stdout(args: &[&str], stdout: std::process::Stdio) -> (Option<i32>, String) {
    let mut child = command()
        .args(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A reader that went away before the first line: every write is EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_the_output_quietly_and_the_reports_are_still_written() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = t.base_url().to_string();
    let junit = dir.path().join("smoke.xml");
    let run_dir = dir.path().join("run");
    for (name, args) in [
        (
            "smoke",
            vec![
                "smoke",
                "health",
                "--target",
                base.as_str(),
                "--junit",
                junit.to_str().unwrap(),
            ],
        ),
        (
            "run",
            vec![
                "run",
                "health",
                "--target",
                base.as_str(),
                "--out",
                run_dir.to_str().unwrap(),
            ],
        ),
    ] {
        let (code, stderr) = convoy_with_stdout(&args, std::process::Stdio::piped());
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(code, Some(0), "{name}: the verdict stands: {stderr}");
    }
    assert!(junit.is_file(), "smoke wrote no JUnit file");
    assert!(run_dir.join("report.json").is_file(), "run wrote no report");
}

#[test]
fn a_full_standard_output_is_a_local_error_named_as_such() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("NOTICE: skipping: this system has no /dev/full");
        return;
    };
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = t.base_url().to_string();
    let (code, stderr) = convoy_with_stdout(
        &[
            "run",
            "health",
            "--target",
            base.as_str(),
            "--out",
            dir.path().to_str().unwrap(),
        ],
        full.into(),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output"),
        "{stderr}"
    );
}

#[test]
fn a_json_pointer_of_200000_segments_is_refused_at_load_with_its_position() {
    // It once overflowed the stack (the pointer tree was dropped by
    // recursion): now it is refused at load, wherever a pointer is taken.
    let dir = tempfile::tempdir().unwrap();
    let deep = "/a".repeat(200_000);
    let deep_path = format!("${}", ".a".repeat(200_000));
    let cases = [
        (
            "check.toml",
            format!(
                "name = \"deep\"\n\n[[step]]\npath = \"/health\"\nchecks = [\n  {{ json = \"{deep}\", equals = 1 }},\n]\n"
            ),
            ":6:12",
        ),
        (
            "capture.toml",
            format!(
                "name = \"deep\"\n\n[[step]]\npath = \"/health\"\ncapture = {{ x = \"{deep}\" }}\n"
            ),
            ":5:",
        ),
        (
            "jsonpath.toml",
            format!(
                "name = \"deep\"\n\n[[step]]\npath = \"/health\"\nchecks = [\n  {{ jsonpath = \"{deep_path}\", exists = true }},\n]\n"
            ),
            ":6:",
        ),
        (
            "replay.toml",
            format!(
                "name = \"deep\"\n\n[[step]]\nmethod = \"POST\"\npath = \"/api/orders\"\n\n[step.replay]\ntimes = 2\nid = \"{deep}\"\n"
            ),
            ":9:6",
        ),
    ];
    for (name, text, position) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = convoy_as_is(&["smoke", path.to_str().unwrap(), "--no-reports"]);
        assert_usage_error(&out, "has 200000 segments, more than the 128 allowed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{name}{position}")),
            "{name}: no position {position} in:\n{}",
            &stderr[..stderr.len().min(600)]
        );
    }
}
/// A path no file can be written at, whoever runs the test (root too): its
/// parent is a regular file.
fn unwritable_path(dir: &std::path::Path, name: &str) -> String {
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    file.join(name).to_str().unwrap().to_string()
}

#[test]
fn unwritable_output_paths_are_refused_before_any_request() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = t.base_url().to_string();
    let url = format!("{base}/health");
    let bad = unwritable_path(dir.path(), "out.json");
    let a_dir = dir.path().to_str().unwrap().to_string();
    for args in [
        vec!["bench", url.as_str(), "-n", "5", "-q", "-o", bad.as_str()],
        vec!["bench", url.as_str(), "-n", "5", "-q", "-o", a_dir.as_str()],
        vec![
            "smoke",
            "health",
            "--target",
            base.as_str(),
            "--no-reports",
            "--junit",
            bad.as_str(),
        ],
        vec![
            "run",
            "health",
            "--target",
            base.as_str(),
            "-q",
            "--out",
            bad.as_str(),
        ],
    ] {
        let out = convoy_as_is(&args);
        assert_usage_error(&out, "cannot write");
        assert_eq!(t.requests_seen(), 0, "{args:?}: a request was sent");
    }
}

#[test]
fn a_report_file_lost_to_a_full_disk_is_a_local_error_after_the_summary() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("NOTICE: skipping: this system has no /dev/full");
        return;
    }
    let t = target::spawn(TargetConfig::default()).unwrap();
    let url = format!("{}/health", t.base_url());
    let out = convoy_as_is(&["bench", url.as_str(), "-n", "5", "-q", "-o", "/dev/full"]);
    assert_usage_error(&out, "cannot write /dev/full");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("5 requests"),
        "the summary is printed: {stdout}"
    );
}

#[test]
fn zero_timeouts_are_usage_errors_in_every_command() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let base = t.base_url().to_string();
    let url = format!("{base}/health");
    for flag in ["--timeout", "--connect-timeout"] {
        for args in [
            vec!["bench", url.as_str(), "-n", "1", "-q", flag, "0s"],
            vec![
                "run",
                "health",
                "--target",
                &base,
                "-q",
                "--no-reports",
                flag,
                "0s",
            ],
            vec![
                "smoke",
                "health",
                "--target",
                &base,
                "--no-reports",
                flag,
                "0ms",
            ],
        ] {
            assert_usage_error(&convoy_as_is(&args), flag);
        }
    }
    assert_eq!(t.requests_seen(), 0);
}

#[test]
fn more_connections_than_the_machine_can_hold_are_refused_with_the_cap() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let url = format!("{}/health", t.base_url());
    let out = convoy_as_is(&["bench", url.as_str(), "-c", "100000000", "-n", "5", "-q"]);
    assert_usage_error(&out, "more than convoy can hold here: at most ");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("100000000"), "{stderr}");
    assert!(
        stderr.contains("ulimit -n") || stderr.contains("memory"),
        "says how to raise it: {stderr}"
    );
    assert_eq!(t.requests_seen(), 0);
    // Users of a staged plan and of a profile alike.
    let out = convoy_as_is(&["bench", url.as_str(), "--stages", "100000000,1s", "-q"]);
    assert_usage_error(&out, "at most ");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.toml");
    std::fs::write(
        &file,
        "[profile.huge]\nusers = 100000000\nduration = \"1s\"\n",
    )
    .unwrap();
    let base = t.base_url().to_string();
    let out = convoy_as_is(&[
        "run",
        "health",
        "--target",
        &base,
        "--profiles",
        file.to_str().unwrap(),
        "-p",
        "huge",
        "-q",
        "--no-reports",
    ]);
    assert_usage_error(&out, "at most ");
    assert_eq!(t.requests_seen(), 0);
}

#[test]
fn refused_reconnects_after_a_crash_are_not_counted_as_requests() {
    use convoy::metrics::ErrorCause;
    const ANSWERED: u64 = 50;
    const CONNECTIONS: u64 = 4;
    let t = target::spawn(TargetConfig {
        faults: vec![format!("crash-after={ANSWERED}").parse().unwrap()],
        ..TargetConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("down.json");
    let url = format!("{}/health", t.base_url());
    let c = CONNECTIONS.to_string();
    let out = convoy_as_is(&[
        "bench",
        url.as_str(),
        "-c",
        &c,
        "-d",
        "60s",
        "-q",
        "-o",
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let o = &r["overall"];
    assert_eq!(r["stop_reason"], "target_down", "{r}");
    assert_eq!(o["status_counts"]["200"], ANSWERED, "{o}");
    // Requests: exactly the answered ones plus those the crash cut off
    // (resets: none of them a refused connect).
    let requests = o["requests"].as_u64().unwrap();
    let cut_off: u64 = o["error_counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(cause, _)| *cause != ErrorCause::Refused.as_str())
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(requests, ANSWERED + cut_off, "{o}");
    assert_eq!(o["errors"].as_u64().unwrap(), cut_off, "{o}");
    // The crash cuts off the request in flight on each keep-alive
    // connection, and one sent on each fresh connection the dying target
    // still accepts while it waits for the answers it owes (measured: 0 to
    // 2 per connection). Ten per connection is far above that and far
    // below the thousands of refused reconnects the watch's half second of
    // confirmation sees.
    assert!(
        requests <= ANSWERED + 10 * CONNECTIONS,
        "requests {requests}: {o}"
    );
    // They are still visible, under their cause.
    let refused = o["error_counts"][ErrorCause::Refused.as_str()]
        .as_u64()
        .unwrap_or(0);
    assert!(refused > 0, "{o}");
    assert!(
        stderr.contains(&format!("{refused} connection attempts refused")),
        "{stderr}"
    );
}

#[test]
fn running_out_of_file_descriptors_is_a_local_error_not_the_targets() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let base = t.base_url();
    let url = format!("{base}/health");
    // Every open-file limit from "not even a runtime" to "enough": each
    // step of start-up (signal handling, the preflight, worker threads, the
    // requests) runs out in turn. Whatever fails, the failure is convoy's:
    // exit 3 naming `ulimit -n`, never a panic, never the target blamed.
    let commands: [&[&str]; 3] = [
        &["bench", url.as_str(), "-n", "5", "-c", "1", "-q"],
        &["smoke", "--target", base.as_str(), "-q"],
        &[
            "run",
            "order-lifecycle",
            "--target",
            base.as_str(),
            "-p",
            "smoke",
            "-q",
            "--no-reports",
        ],
    ];
    for args in commands {
        let mut passed = false;
        for limit in 4..=24 {
            let out = Command::new("sh")
                .args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
                .arg(BIN)
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let context = format!("{args:?} with ulimit -n {limit}:\n{stderr}");
            assert!(!stderr.contains("panicked"), "{context}");
            assert!(!stderr.contains("target unreachable"), "{context}");
            assert!(!stderr.contains("stopped accepting"), "{context}");
            match out.status.code() {
                Some(0) => passed = true,
                Some(3) => assert!(stderr.contains("ulimit -n"), "{context}"),
                other => panic!("exit {other:?} for {context}"),
            }
        }
        assert!(passed, "{args:?} never passed, even with 24 descriptors");
    }
}
