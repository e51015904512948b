//! Real runs of `convoy run order-lifecycle` against the built-in reference
//! API, as a nightly makes them:
//!
//! * ten pairs of identical back-to-back runs, each compared with
//!   `convoy compare` without history and with the runs before it as
//!   history: without history (or under 5 earlier runs) no regression and
//!   exit 0, the rows judged by the noise within the two runs; with more
//!   history the count is printed (on a busy shared machine the history's
//!   band is what separates a regression from a neighbour's build, and
//!   `ci/bench/history.sh` reports it over more runs);
//! * a run given `--history` carries the trends of its gated figures, and
//!   its HTML and Markdown reports show them.
//!
//! Runs last one second (two users, closed model): long enough that one
//! scheduling hiccup of a busy machine does not make half the run; no
//! timing is asserted.

mod cli_support;

use std::path::Path;

use cli_support::convoy_as_is;

/// A one-second profile, written beside `out`.
fn profiles(out: &Path) -> std::path::PathBuf {
    let path = out.parent().unwrap().join("profiles.toml");
    if !path.exists() {
        std::fs::write(
            &path,
            "[profile.nightly]\nusers = 2\nduration = \"1s\"\ngates = [\"p95 < 1s\", \"error_rate == 0%\", 'step:\"create order\" p99 < 5s', \"step:* p50 < 5s\"]\n",
        )
        .unwrap();
    }
    path
}

fn run(out: &Path, extra: &[&str]) {
    let profiles = profiles(out);
    let mut args = vec![
        "run",
        "order-lifecycle",
        "--profiles",
        profiles.to_str().unwrap(),
        "--profile",
        "nightly",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = convoy_as_is(&args);
    assert!(
        out.join("report.json").exists(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The regressions `convoy compare` finds, and its exit code.
fn compare(a: &Path, b: &Path, history: Option<&Path>) -> (usize, Option<i32>, serde_json::Value) {
    let mut args = vec![
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
    ];
    if let Some(h) = history {
        args.extend(["--history", h.to_str().unwrap()]);
    }
    let o = convoy_as_is(&args);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let regressions = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["change"] == "regression")
        .count();
    (regressions, o.status.code(), json)
}

#[test]
fn identical_back_to_back_runs_do_not_cry_wolf() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    let mut found = Vec::new();
    for pair in 0..10 {
        let a = tmp.path().join(format!("a{pair}"));
        let b = tmp.path().join(format!("b{pair}"));
        run(&a, &[]);
        run(&b, &[]);
        let (plain, code, json) = compare(&a, &b, None);
        // Too little history: the rule is the noise within the two runs,
        // and every row with two values says so.
        assert!(
            json["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["delta"].is_number())
                .all(|r| r["noise_source"] == "within_run"),
            "{json:#}"
        );
        let (with, code_with, _) = compare(&a, &b, Some(&history));
        found.push((pair, plain, with));
        if plain > 0 || with > 0 {
            eprintln!("pair {pair}: {json:#}");
        }
        assert_eq!(code, Some(if plain > 0 { 1 } else { 0 }));
        assert_eq!(code_with, Some(if with > 0 { 1 } else { 0 }));
        for run in [&a, &b] {
            let o = convoy_as_is(&[
                "baseline",
                "record",
                run.to_str().unwrap(),
                "--history",
                history.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
    println!("regressions per pair (without history, with history): {found:?}");
    // Without history (and with under 5 earlier runs) nothing is failed:
    // the noise within the runs cannot see what changes between runs.
    assert!(found.iter().all(|&(_, plain, _)| plain == 0), "{found:?}");
    assert!(
        found[..2].iter().all(|&(_, _, with)| with == 0),
        "{found:?}"
    );
    // The summary says which rule judged.
    let a = tmp.path().join("a0");
    let text = convoy_as_is(&[
        "compare",
        a.to_str().unwrap(),
        tmp.path().join("b0").to_str().unwrap(),
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("no history: noise within the runs"), "{text}");
}

#[test]
fn a_run_with_history_shows_its_trends() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history");
    for i in 0..4 {
        let out = tmp.path().join(format!("night{i}"));
        run(&out, &[]);
        let o = convoy_as_is(&[
            "baseline",
            "record",
            out.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
        ]);
        assert!(o.status.success());
    }
    let tonight = tmp.path().join("tonight");
    run(&tonight, &["--history", history.to_str().unwrap()]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tonight.join("report.json")).unwrap())
            .unwrap();
    let trends = report["trends"].as_array().expect("trends in report.json");
    // The profile gates p95 and error_rate, overall, and steps.
    let names: Vec<(String, String)> = trends
        .iter()
        .map(|t| {
            (
                t["step"].as_str().unwrap().to_string(),
                t["figure"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        names.contains(&("overall".to_string(), "p95".to_string())),
        "{names:?}"
    );
    // A quoted step name and a wildcard name steps too.
    assert!(
        names.contains(&("create order".to_string(), "p99".to_string())),
        "{names:?}"
    );
    for step in ["create order", "deliver"] {
        assert!(
            names.contains(&(step.to_string(), "p50".to_string())),
            "{step}: {names:?}"
        );
    }
    for t in trends {
        assert_eq!(t["values"].as_array().unwrap().len(), 5, "{t}");
        assert_eq!(t["run_ids"][4], report["run_id"], "this run is last");
    }
    let html = std::fs::read_to_string(tonight.join("report.html")).unwrap();
    assert!(html.contains("id=\"trends\""));
    assert!(html.contains("class=\"tonight\""));
    // Without history, no trends.
    let alone = tmp.path().join("alone");
    run(&alone, &[]);
    let report = std::fs::read_to_string(alone.join("report.json")).unwrap();
    assert!(!report.contains("\"trends\""));
}
