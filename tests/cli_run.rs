//! The `convoy` binary end to end: exit codes, report files, interruption
//! and a target that dies mid-run.

mod cli_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{free_port, full_width};
use convoy::target::{self, Fault, TargetConfig};

fn read_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).unwrap()
}

fn long_profile(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("profiles.toml");
    std::fs::write(&p, "[profile.long]\nusers = 2\nduration = \"60s\"\n").unwrap();
    p
}

#[test]
fn run_passes_against_the_embedded_target_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = full_width()
        .args([
            "run",
            "health",
            "order-lifecycle",
            "--profile",
            "smoke",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["report.json", "report.md", "junit.xml", "report.html"] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let r = read_report(dir.path());
    assert_eq!(r["schema"], "convoy.report/v1");
    assert_eq!(r["partial"], false);
    assert_eq!(r["profile"], "smoke");
}

#[test]
fn failing_checks_exit_2_and_failing_gates_exit_1() {
    let t = target::spawn(TargetConfig::default().with_fault(Fault::IdempotencyRace)).unwrap();
    let out = full_width()
        .args([
            "run",
            "idempotent-replay",
            "--profile",
            "smoke",
            "--no-reports",
            "--target",
            &t.base_url(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let t = target::spawn(TargetConfig::default()).unwrap();
    let out = full_width()
        .args([
            "run",
            "health",
            "--profile",
            "smoke",
            "--no-reports",
            "--gate",
            "p99 < 1us",
            "--target",
            &t.base_url(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn usage_errors_exit_3_with_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[[step]]\npath = \"/\"\ncaptrue = 1\n").unwrap();
    let out = full_width().arg("run").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:1"), "{err}");
    assert!(err.contains("did you mean \"capture\"?"), "{err}");

    let out = full_width()
        .args(["run", "--profile", "lihgt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"light\""));

    let out = full_width()
        .args(["bench", "http://127.0.0.1:1/", "--rate", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn an_unreachable_target_exits_4_within_the_connect_timeout() {
    let port = free_port();
    let start = Instant::now();
    let out = full_width()
        .args([
            "run",
            "health",
            "--no-reports",
            "--connect-timeout",
            "2s",
            "--target",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("target unreachable"));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_target_that_dies_mid_run_gives_a_partial_report_and_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = long_profile(dir.path());
    let t = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(300))).unwrap();
    let out_dir = dir.path().join("out");
    let out = full_width()
        .args(["run", "health", "--profile", "long", "--profiles"])
        .arg(&profiles)
        .arg("--out")
        .arg(&out_dir)
        .args(["--target", &t.base_url()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_report(&out_dir);
    assert_eq!(r["partial"], true);
    assert_eq!(r["stop_reason"], "target_down");
    // Every answer the target gave before it died is in the report.
    assert_eq!(r["overall"]["status_counts"]["200"], 300);
    assert!(r["duration_secs"].as_f64().unwrap() < 30.0);
}

#[test]
fn smoke_against_a_target_that_dies_gives_a_partial_report_and_exit_4() {
    // The built-in journeys need far more than 5 requests: the target dies
    // in one of them and refuses every connection after.
    let t = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(5))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = full_width()
        .args(["smoke", "--quiet", "--target", &t.base_url(), "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("stopped accepting connections"), "{err}");
    let r = read_report(dir.path());
    assert_eq!(r["stop_reason"], "target_down");
    assert_eq!(r["partial"], true);
    // Every answer the target gave before it died is in the report.
    let answered: u64 = r["overall"]["status_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(answered, 5, "{:#}", r["overall"]);
    assert!(
        r["overall"]["error_counts"]["refused"].as_u64().unwrap() > 0,
        "{:#}",
        r["overall"]
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_writes_a_partial_report_and_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = long_profile(dir.path());
    let out_dir = dir.path().join("out");
    let t = target::spawn(TargetConfig::default()).unwrap();
    let mut child = full_width()
        .args(["run", "health", "--profile", "long", "--profiles"])
        .arg(&profiles)
        .arg("--out")
        .arg(&out_dir)
        .args(["--target", &t.base_url()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "convoy did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(5));
    let r = read_report(&out_dir);
    assert_eq!(r["partial"], true);
    assert_eq!(r["stop_reason"], "interrupted");
    assert!(r["overall"]["requests"].as_u64().unwrap() > 0);
}

#[test]
fn load_against_a_host_not_on_the_allow_list_is_refused_before_any_traffic() {
    // The check happens before any lookup or connection: nothing is sent.
    let out = full_width()
        .args(["bench", "https://api.example.com/health", "-n", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-host api.example.com"), "{err}");

    let out = full_width()
        .args([
            "run",
            "health",
            "--profile",
            "light",
            "--no-reports",
            "--target",
            "https://api.example.com",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-host"));
}

/// A profile file with one closed profile of `body` (TOML keys).
fn profile_file(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("custom-profiles.toml");
    std::fs::write(&p, format!("[profile.custom]\n{body}\n")).unwrap();
    p
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `convoy run SCENARIO` with the custom profile of `profiles` against
/// `target`, judged by `gates` with `--abort-on-fail`, its reports in `out`.
fn run_aborting_on(
    scenario: &str,
    profiles: &Path,
    gates: &[&str],
    target: &str,
    out: &Path,
) -> std::process::Output {
    let mut cmd = full_width();
    cmd.args(["run", scenario, "--profile", "custom", "--profiles"])
        .arg(profiles);
    for gate in gates {
        cmd.args(["--gate", gate]);
    }
    cmd.args(["--abort-on-fail", "--quiet", "--target", target, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn abort_on_fail_stops_a_leaking_run_at_its_first_violation_and_names_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    // Ten minutes of load unless the lost gate stops it.
    let profiles = profile_file(dir.path(), "users = 2\nduration = \"10m\"");
    let t = target::spawn(TargetConfig::default().with_fault(Fault::TenantLeak(1.0))).unwrap();
    let out_dir = dir.path().join("out");
    let out = run_aborting_on(
        "tenant-isolation",
        &profiles,
        &["p95 < 10s", "tenant_isolation_violations == 0"],
        &t.base_url(),
        &out_dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gate tenant_isolation_violations == 0 can no longer pass"),
        "{}",
        stderr(&out)
    );
    let r = read_report(&out_dir);
    assert_eq!(r["partial"], true);
    assert_eq!(r["stop_reason"], "aborted_by_gate");
    assert!(r["duration_secs"].as_f64().unwrap() < 600.0);
    assert!(
        r["violations"]["tenant_isolation_violations"]
            .as_u64()
            .unwrap()
            > 0
    );
    let gates = r["gates"].as_array().unwrap();
    let lost: Vec<&str> = gates
        .iter()
        .filter(|g| g["actual_display"].as_str().unwrap().contains("lost early"))
        .map(|g| g["expression"].as_str().unwrap())
        .collect();
    assert_eq!(lost, ["tenant_isolation_violations == 0"]);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("lost early"), "{md}");
}

#[test]
fn abort_on_fail_judges_the_error_rate_against_the_most_requests_the_plan_can_make() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = profile_file(dir.path(), "users = 4\niterations = 20000");
    let t = target::spawn(TargetConfig::default().with_fault(Fault::ErrorRate(0.3))).unwrap();
    let out_dir = dir.path().join("out");
    let out = run_aborting_on(
        "health",
        &profiles,
        &["error_rate < 1%"],
        &t.base_url(),
        &out_dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = read_report(&out_dir);
    assert_eq!(r["stop_reason"], "aborted_by_gate");
    // `health` makes one request per iteration: 80,000 at most, of which
    // 1 % is 800 errors. The gate is lost there and not before.
    let errors = r["overall"]["errors"].as_u64().unwrap();
    assert!(errors >= 800, "{errors} errors");
    assert!(r["iterations"].as_u64().unwrap() < 80_000);

    // A rate that may still end below its threshold does not stop the run.
    let profiles = profile_file(dir.path(), "users = 2\niterations = 50");
    let out = run_aborting_on(
        "health",
        &profiles,
        &["error_rate < 90%"],
        &t.base_url(),
        &out_dir,
    );
    // The run ends as planned; the 500s fail health's status check (2).
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = read_report(&out_dir);
    assert_eq!(r["stop_reason"], "completed");
    assert_eq!(r["iterations"], 100);
}

#[test]
fn abort_on_fail_stops_at_the_first_failed_check_under_checks_100() {
    let dir = tempfile::tempdir().unwrap();
    // Ten minutes of load unless the lost gate stops it. A truncated login
    // answer fails the login check of the very first iteration.
    let profiles = profile_file(dir.path(), "users = 2\nduration = \"10m\"");
    let t = target::spawn(TargetConfig::default().with_fault(Fault::TruncatedBody)).unwrap();
    let out_dir = dir.path().join("out");
    let out = run_aborting_on(
        "order-lifecycle",
        &profiles,
        &["checks > 99.9%", "checks == 100%"],
        &t.base_url(),
        &out_dir,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gate checks == 100% can no longer pass"),
        "{}",
        stderr(&out)
    );
    let r = read_report(&out_dir);
    assert_eq!(r["stop_reason"], "aborted_by_gate");
    assert!(r["duration_secs"].as_f64().unwrap() < 600.0);
    // Only the 100 % bar is decided early; 99.9 % depends on what follows.
    let lost: Vec<&str> = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["actual_display"].as_str().unwrap().contains("lost early"))
        .map(|g| g["expression"].as_str().unwrap())
        .collect();
    assert_eq!(lost, ["checks == 100%"]);
}

#[test]
fn a_relative_gate_without_a_baseline_is_refused_before_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = full_width()
        .args(["run", "health", "--profile", "smoke", "--gate"])
        .arg("p95 <= baseline * 1.10")
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("--baseline"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "nothing ran, nothing was written");
}

#[test]
fn the_smoke_profile_runs_every_journey_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = full_width()
        .args(["run", "--profile", "smoke", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = read_report(dir.path());
    let journeys: Vec<(&str, u64)> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "journey")
        .map(|s| (s["name"].as_str().unwrap(), s["requests"].as_u64().unwrap()))
        .collect();
    let expected: Vec<(&str, u64)> = convoy::scenario::builtin::NAMES
        .iter()
        .map(|n| (*n, 1))
        .collect();
    assert_eq!(journeys, expected);
    assert_eq!(r["iterations"], expected.len() as u64);
}

#[test]
fn an_unwritable_out_is_a_configuration_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    // The target is unreachable: had convoy gone as far as the load, it
    // would have exited 4.
    let port = free_port();
    for command in ["run", "smoke"] {
        let out = full_width()
            .args([command, "health", "--target"])
            .arg(format!("http://127.0.0.1:{port}"))
            .arg("--out")
            .arg(file.join("reports"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("cannot write reports"), "{err}");
        assert!(err.contains("is not a directory"), "{err}");
    }
}

#[test]
fn history_problems_are_said_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let t = target::spawn(TargetConfig::default()).unwrap();
    let base = dir.path().join("base");
    let run = |extra: &[&std::ffi::OsStr]| {
        full_width()
            .args(["run", "health", "--profile", "smoke", "--quiet"])
            .args(["--target", &t.base_url()])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--out".as_ref(), base.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let missing = dir.path().join("no-such-history");
    let out = run(&[
        "--no-reports".as_ref(),
        "--baseline".as_ref(),
        base.as_os_str(),
        "--history".as_ref(),
        missing.as_os_str(),
    ]);
    let err = stderr(&out);
    assert!(err.contains("no-such-history does not exist"), "{err}");

    let history = dir.path().join("history");
    std::fs::create_dir(&history).unwrap();
    std::fs::write(history.join("broken.json"), "{").unwrap();
    let out = run(&[
        "--no-reports".as_ref(),
        "--baseline".as_ref(),
        base.as_os_str(),
        "--history".as_ref(),
        history.as_os_str(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("skipped") && err.contains("broken.json"),
        "{err}"
    );
}

#[test]
fn baseline_record_refuses_to_keep_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let history = dir.path().join("history");
    let out = full_width()
        .args(["run", "health", "--profile", "smoke", "--quiet", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let record = |keep: &str| {
        full_width()
            .args(["baseline", "record"])
            .arg(&out_dir)
            .arg("--history")
            .arg(&history)
            .args(["--keep", keep])
            .output()
            .unwrap()
    };
    let out = record("0");
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("keep at least 1"), "{}", stderr(&out));
    assert!(!history.exists(), "nothing recorded");
    let out = record("1");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&history).unwrap().count(), 1);
}
