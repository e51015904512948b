//! The `convoy` binary end to end: exit codes, report files, interruption
//! and a target that dies mid-run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convoy::target::{self, Fault, TargetConfig};

fn convoy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_convoy"))
}

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
    let out = convoy()
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
    let out = convoy()
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
    let out = convoy()
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
    let out = convoy().arg("run").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:1"), "{err}");
    assert!(err.contains("did you mean \"capture\"?"), "{err}");

    let out = convoy()
        .args(["run", "--profile", "lihgt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"light\""));

    let out = convoy()
        .args(["bench", "http://127.0.0.1:1/", "--rate", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn an_unreachable_target_exits_4_within_the_connect_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let out = convoy()
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
    let out = convoy()
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

#[cfg(unix)]
#[test]
fn ctrl_c_writes_a_partial_report_and_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = long_profile(dir.path());
    let out_dir = dir.path().join("out");
    let t = target::spawn(TargetConfig::default()).unwrap();
    let mut child = convoy()
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
    let out = convoy()
        .args(["bench", "https://api.example.com/health", "-n", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-host api.example.com"), "{err}");

    let out = convoy()
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
