//! One exit-code rule when several things fail at once, applied the same
//! way by `run`, `smoke`, `merge` and `report --gate` (and `bench`, whose
//! runs have no checks or gates): the code is the first that happened of
//! target down (4), local error (3), stopped by `--abort-on-fail` (1),
//! interrupted (5), target unreachable (4), checks or violations (2),
//! gates or regression (1). See README, "Exit codes".

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::{convoy_from_root, lossy, start_target};
use serde_json::Value;

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn read(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) -> PathBuf {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path.to_path_buf()
}

/// Every read of another tenant's order leaks, and every answer is 300 ms
/// late: checks fail, violations are counted and a latency gate fails, all
/// in one run.
const LEAKY_AND_SLOW: &[&str] = &["tenant-leak=1.0", "latency=300ms"];

#[test]
fn failed_checks_and_a_failed_gate_exit_2_in_run_and_smoke() {
    let t = start_target(LEAKY_AND_SLOW);
    let url = t.base_url();
    let dir = tempfile::tempdir().unwrap();
    for command in [
        vec!["smoke", "tenant-isolation"],
        vec!["run", "tenant-isolation", "-p", "smoke"],
    ] {
        let out_dir = dir.path().join(command[0]);
        let mut args = command.clone();
        args.extend([
            "-g",
            "p95 < 200ms",
            "--target",
            &url,
            "-q",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let out = convoy_from_root(&args);
        assert_eq!(code(&out), Some(2), "{command:?}: {}", lossy(&out.stderr));
        let r = read(&out_dir);
        // All three happened: the code is the checks'.
        assert!(r["violations"]["tenant_isolation_violations"].as_u64() > Some(0));
        let gates = r["gates"].as_array().unwrap();
        assert!(
            gates
                .iter()
                .any(|g| g["expression"] == "p95 < 200ms" && g["passed"] == false),
            "{gates:?}"
        );
    }
}

#[test]
fn report_gate_judges_a_saved_report_by_the_same_rule() {
    let t = start_target(LEAKY_AND_SLOW);
    let dir = tempfile::tempdir().unwrap();
    let leaky = dir.path().join("leaky");
    let out = convoy_from_root(&[
        "smoke",
        "tenant-isolation",
        "--target",
        &t.base_url(),
        "-q",
        "--out",
        leaky.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), Some(2), "{}", lossy(&out.stderr));
    let leaky = leaky.to_str().unwrap();
    // Checks failed in the report, whatever the new gates say: 2.
    for g in ["p95 < 200ms", "p95 < 60s"] {
        let out = convoy_from_root(&["report", leaky, "--gate", g]);
        assert_eq!(code(&out), Some(2), "{g}: {}", lossy(&out.stderr));
    }
    // Rendering alone judges nothing.
    let out = convoy_from_root(&["report", leaky]);
    assert_eq!(code(&out), Some(0), "{}", lossy(&out.stderr));

    let healthy = start_target(&["latency=300ms"]);
    let clean = dir.path().join("clean");
    let out = convoy_from_root(&[
        "smoke",
        "health",
        "--target",
        &healthy.base_url(),
        "-q",
        "--out",
        clean.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), Some(0), "{}", lossy(&out.stderr));
    let clean_dir = clean.clone();
    let clean = clean.to_str().unwrap();
    assert_eq!(
        code(&convoy_from_root(&[
            "report",
            clean,
            "--gate",
            "p95 < 200ms"
        ])),
        Some(1)
    );
    assert_eq!(
        code(&convoy_from_root(&["report", clean, "--gate", "p95 < 60s"])),
        Some(0)
    );

    // The same clean report, edited: a violation counted with every check
    // passing is still a wrong answer (2), before the failed gate (1).
    let mut r = read(&clean_dir);
    r["violations"]["tenant_isolation_violations"] = 1.into();
    let violated = write_json(&dir.path().join("violated.json"), &r);
    let out = convoy_from_root(&[
        "report",
        violated.to_str().unwrap(),
        "--gate",
        "p95 < 200ms",
    ]);
    assert_eq!(code(&out), Some(2), "{}", lossy(&out.stderr));
    // Interrupted, with a failed gate and a violation: 5.
    r["partial"] = true.into();
    r["stop_reason"] = "interrupted".into();
    let interrupted = write_json(&dir.path().join("interrupted.json"), &r);
    let out = convoy_from_root(&[
        "report",
        interrupted.to_str().unwrap(),
        "--gate",
        "p95 < 200ms",
    ]);
    assert_eq!(code(&out), Some(5), "{}", lossy(&out.stderr));
    // The target died too: 4 before everything.
    r["stop_reason"] = "target_down".into();
    let down = write_json(&dir.path().join("down.json"), &r);
    let out = convoy_from_root(&["report", down.to_str().unwrap(), "--gate", "p95 < 200ms"]);
    assert_eq!(code(&out), Some(4), "{}", lossy(&out.stderr));
}

#[test]
fn merge_applies_the_rule_to_the_union_of_its_shards() {
    let t = start_target(LEAKY_AND_SLOW);
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.toml");
    std::fs::write(&profiles, "[profile.pair]\nusers = 2\niterations = 1\n").unwrap();
    let mut shards = Vec::new();
    for i in 0..2 {
        let out_dir = dir.path().join(format!("shard-{i}"));
        let shard = format!("{i}/2");
        let out = convoy_from_root(&[
            "run",
            "tenant-isolation",
            "--profiles",
            profiles.to_str().unwrap(),
            "-p",
            "pair",
            "--shard",
            &shard,
            "-g",
            "p95 < 200ms",
            "--target",
            &t.base_url(),
            "-q",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), Some(2), "shard {shard}: {}", lossy(&out.stderr));
        shards.push(out_dir);
    }
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    args.push("--json");
    let out = convoy_from_root(&args);
    assert_eq!(code(&out), Some(2), "{}", lossy(&out.stderr));
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        merged["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["expression"] == "p95 < 200ms" && g["passed"] == false)
    );
}

#[test]
fn the_readme_and_help_state_the_rule() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("the code is the **first** of these that\nhappened"));
    for command in ["run", "smoke", "bench", "merge", "report"] {
        let out = convoy_from_root(&[command, "--help"]);
        assert_eq!(code(&out), Some(0));
        let help = lossy(&out.stdout);
        assert!(
            help.contains("When several happen at once")
                && help.contains("4 target died mid-run, 3 local error"),
            "{command} --help:\n{help}"
        );
    }
}
