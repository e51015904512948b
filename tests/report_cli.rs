//! `convoy report`, `convoy compare` and `convoy baseline` as a user runs
//! them: the binary, real files, documented exit codes.

mod cli_support;
mod report_support;

use std::path::Path;
use std::process::Output;

use cli_support::{code, full_width, output_in, stderr, stdout};
use convoy::report::compare::{Change, Comparison};
use convoy::report::{self, Report, artifacts, json};
use report_support::{showcase_with_gates, synthetic};

/// `convoy ARGS` in `dir`, whole summaries.
fn convoy(args: &[&str], dir: &Path) -> Output {
    output_in(full_width(), args, dir)
}

fn save(dir: &Path, name: &str, r: &Report) {
    let run = dir.join(name);
    artifacts::write_all(r, &run).unwrap();
}

#[test]
fn report_re_renders_a_saved_run_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let r = showcase_with_gates();
    save(tmp.path(), "run1", &r);
    let saved = json::parse(&std::fs::read_to_string(tmp.path().join("run1/report.json")).unwrap())
        .unwrap();
    for (format, expected) in [
        ("table", report::text::render(&saved)),
        ("md", report::markdown::render(&saved)),
        ("markdown", report::markdown::render(&saved)),
        ("junit", report::junit::render(&saved)),
        ("html", report::html::render(&saved)),
        ("json", json::render(&saved)),
    ] {
        let o = convoy(&["report", "run1", "--format", format], tmp.path());
        assert_eq!(code(&o), 0, "{format}: {}", stderr(&o));
        assert_eq!(stdout(&o), expected, "{format}");
    }
    let o = convoy(
        &["report", "run1/report.json", "-f", "md", "-o", "out.md"],
        tmp.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out.md")).unwrap(),
        report::markdown::render(&saved)
    );
}

#[test]
fn report_input_errors_exit_3_and_say_where() {
    let tmp = tempfile::tempdir().unwrap();
    let o = convoy(&["report", "missing.json"], tmp.path());
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("cannot read missing.json"),
        "{}",
        stderr(&o)
    );

    std::fs::write(
        tmp.path().join("bad.json"),
        "{\n  \"schema\": \"convoy.report/v1\",\n  oops\n}",
    )
    .unwrap();
    let o = convoy(&["report", "bad.json"], tmp.path());
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("bad.json:3:3:"), "{}", stderr(&o));

    let other = json::render(&synthetic("x", 0, 10.0, 0, 1)).replace("convoy.report/v1", "k6/v0");
    std::fs::write(tmp.path().join("k6.json"), other).unwrap();
    let o = convoy(&["report", "k6.json"], tmp.path());
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("unsupported schema"), "{}", stderr(&o));

    let o = convoy(&["report", "k6.json", "--format", "pdf"], tmp.path());
    assert_eq!(code(&o), 3, "clap usage errors are exit 3 too");
}

#[test]
fn an_unwritable_output_is_a_local_error_not_the_targets() {
    let tmp = tempfile::tempdir().unwrap();
    save(tmp.path(), "run", &synthetic("run", 1, 100.0, 0, 1));
    let o = convoy(&["report", "run", "-o", "no/such/dir/out.md"], tmp.path());
    // Exit 4 says the target failed; an output path is convoy's own.
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write no/such/dir/out.md"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn report_gates_judge_a_saved_run() {
    let tmp = tempfile::tempdir().unwrap();
    save(tmp.path(), "run", &synthetic("run", 1, 100.0, 0, 1));
    save(tmp.path(), "base", &synthetic("base", 0, 100.0, 0, 1));
    let ok = convoy(
        &[
            "report",
            "run",
            "--gate",
            "p95 < 1s",
            "--gate",
            "error_rate < 1%",
        ],
        tmp.path(),
    );
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(stdout(&ok).contains("PASSED: all 2 gates passed"));
    let failed = convoy(
        &["report", "run", "--gate", "p95 < 1ms", "-f", "junit"],
        tmp.path(),
    );
    assert_eq!(code(&failed), 1);
    let doc = stdout(&failed);
    let xml = roxmltree::Document::parse(&doc).unwrap();
    assert_eq!(xml.root_element().attribute("failures"), Some("1"));

    let bad = convoy(&["report", "run", "--gate", "p95 < 5%"], tmp.path());
    assert_eq!(code(&bad), 3);
    assert!(stderr(&bad).contains("column 8"), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("latency unit"), "{}", stderr(&bad));

    let no_base = convoy(
        &["report", "run", "--gate", "p95 <= baseline * 1.1"],
        tmp.path(),
    );
    assert_eq!(code(&no_base), 3);
    assert!(
        stderr(&no_base).contains("--baseline"),
        "{}",
        stderr(&no_base)
    );
    let relative = convoy(
        &[
            "report",
            "run",
            "--baseline",
            "base",
            "--gate",
            "p95 <= baseline * 1.1",
        ],
        tmp.path(),
    );
    assert_eq!(code(&relative), 0, "{}", stderr(&relative));
}

#[test]
fn compare_exits_1_on_a_regression_and_0_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    save(tmp.path(), "base", &synthetic("base", 0, 100.0, 0, 1));
    save(tmp.path(), "same", &synthetic("same", 1, 100.0, 0, 1));
    save(tmp.path(), "slow", &synthetic("slow", 2, 150.0, 0, 2));
    let o = convoy(&["compare", "base", "same"], tmp.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("no regressions"), "{}", stdout(&o));
    // Without history a slowdown is unconfirmed: listed, exit 0.
    let o = convoy(&["compare", "base", "slow"], tmp.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("unconfirmed"), "{}", stdout(&o));
    // With a quiet history it is a regression.
    for i in 0..6 {
        let name = format!("h{i}");
        let night = synthetic(&name, 10 + i, 100.0 * (1.0 + 0.01 * i as f64), 0, 30 + i);
        convoy::report::history::record(&night, &tmp.path().join("history"), None).unwrap();
    }
    let o = convoy(
        &[
            "compare",
            "base/report.json",
            "slow",
            "--format",
            "json",
            "--history",
            "history",
        ],
        tmp.path(),
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let c: Comparison = serde_json::from_str(&stdout(&o)).expect("JSON comparison");
    assert!(
        c.rows
            .iter()
            .any(|r| r.step == "create_order" && r.change == Change::Regression)
    );
    let o = convoy(
        &["compare", "base", "slow", "-f", "md", "--tolerance", "80%"],
        tmp.path(),
    );
    assert_eq!(code(&o), 0, "a generous tolerance: {}", stdout(&o));
    assert!(stdout(&o).starts_with("### ✅ Compared with baseline"));
    let o = convoy(
        &["compare", "base", "slow", "--tolerance", "10"],
        tmp.path(),
    );
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("did you mean 10%"), "{}", stderr(&o));
}

#[test]
fn baseline_promote_and_record_feed_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let noisy = [0.85, 1.12, 0.95, 1.15, 0.9, 1.05, 0.88, 1.1];
    for (i, f) in noisy.iter().enumerate() {
        let name = format!("run{i}");
        save(
            d,
            &name,
            &synthetic(&name, i as u64, 100.0 * f, 0, 10 + i as u64),
        );
        let o = convoy(
            &["baseline", "record", &name, "--history", "reports/history"],
            d,
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_dir(d.join("reports/history"))
            .unwrap()
            .count(),
        8
    );

    let o = convoy(&["baseline", "promote", "run4"], d);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.join("reports/baseline.json")).unwrap(),
        std::fs::read(d.join("run4/report.json")).unwrap(),
        "the baseline is the run's file, byte for byte"
    );

    // A slow night within the history's swings: not a regression with the
    // history; without it, unconfirmed (the run-to-run noise is unknown).
    save(d, "tonight", &synthetic("tonight", 20, 112.0, 0, 99));
    let with = convoy(
        &[
            "compare",
            "reports/baseline.json",
            "tonight",
            "--history",
            "reports/history",
        ],
        d,
    );
    assert_eq!(code(&with), 0, "{}", stdout(&with));
    let without = convoy(&["compare", "reports/baseline.json", "tonight"], d);
    assert_eq!(code(&without), 0, "{}", stdout(&without));
    assert!(
        stdout(&without).contains("unconfirmed"),
        "{}",
        stdout(&without)
    );

    let mut partial = synthetic("partial", 21, 100.0, 0, 1);
    partial.partial = true;
    partial.stop_reason = convoy::engine::StopReason::Interrupted;
    save(d, "partial", &partial);
    let o = convoy(
        &["baseline", "promote", "partial", "--baseline", "b.json"],
        d,
    );
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("partial"), "{}", stderr(&o));
    assert!(!d.join("b.json").exists());
    let o = convoy(
        &[
            "baseline",
            "record",
            "partial",
            "--history",
            "reports/history",
        ],
        d,
    );
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("not recorded"));
    assert_eq!(
        std::fs::read_dir(d.join("reports/history"))
            .unwrap()
            .count(),
        8
    );
}

#[test]
fn an_empty_report_file_is_pointed_at_line_1_column_1() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, content) in [("empty.json", ""), ("blank.json", "\n  \n")] {
        std::fs::write(tmp.path().join(name), content).unwrap();
        let o = convoy(&["report", name], tmp.path());
        assert_eq!(code(&o), 3);
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{name}:1:1: the file is empty")),
            "{err}"
        );
    }
    // serde_json's column 0 (an error at the start of a line) reads as 1.
    std::fs::write(tmp.path().join("cut.json"), "{\n").unwrap();
    let o = convoy(&["report", "cut.json"], tmp.path());
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("cut.json:2:1:"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(":0:"), "{}", stderr(&o));
}

#[test]
fn a_history_directory_that_is_not_there_is_named_not_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    save(tmp.path(), "base", &synthetic("base", 0, 100.0, 0, 1));
    save(tmp.path(), "same", &synthetic("same", 1, 100.0, 0, 1));
    // A typo: compare still runs (a first nightly has no history yet) but
    // says which directory it did not find, on stderr and in the summary.
    let o = convoy(
        &["compare", "base", "same", "--history", "reports/histroy"],
        tmp.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no history at reports/histroy"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("no history at reports/histroy: directory not found"),
        "{}",
        stdout(&o)
    );
    let o = convoy(
        &[
            "compare",
            "base",
            "same",
            "--history",
            "reports/histroy",
            "-f",
            "json",
        ],
        tmp.path(),
    );
    let c: Comparison = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(c.missing_history.as_deref(), Some("reports/histroy"));
    // An existing, empty directory is a plain empty history: no warning.
    std::fs::create_dir_all(tmp.path().join("reports/history")).unwrap();
    let o = convoy(
        &["compare", "base", "same", "--history", "reports/history"],
        tmp.path(),
    );
    assert_eq!(code(&o), 0);
    assert!(!stderr(&o).contains("no history at"), "{}", stderr(&o));
    assert!(stdout(&o).contains("no history: noise within the runs"));
    // Without --history nothing is said about a directory.
    let o = convoy(&["compare", "base", "same"], tmp.path());
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // A file where the directory should be cannot be a history.
    std::fs::write(tmp.path().join("notadir"), "x").unwrap();
    let o = convoy(
        &["compare", "base", "same", "--history", "notadir"],
        tmp.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read history notadir"));
}

#[test]
fn an_incomparable_baseline_is_warned_about_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = synthetic("base", 0, 100.0, 0, 1);
    let mut heavy = synthetic("heavy", 1, 100.0, 0, 2);
    heavy.profile = Some("heavy".into());
    heavy.target = "https://prod.example.test/api".into();
    save(tmp.path(), "base", &base);
    save(tmp.path(), "heavy", &heavy);
    let o = convoy(&["compare", "base", "heavy"], tmp.path());
    assert_eq!(code(&o), 0, "a warning, not a failure: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            r#"WARNING: the baseline is not comparable with this run: profile differs: baseline "moderate", this run "heavy"; target differs"#
        ),
        "{out}"
    );
    let o = convoy(&["compare", "base", "heavy", "-f", "md"], tmp.path());
    assert!(stdout(&o).contains("> [!WARNING]\n> the baseline is not comparable"));
    // To a file: the warning goes to stderr too.
    let o = convoy(
        &["compare", "base", "heavy", "-f", "json", "-o", "c.json"],
        tmp.path(),
    );
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("warning: the baseline is not comparable"));
    let c: Comparison =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("c.json")).unwrap()).unwrap();
    let fields: Vec<_> = c.mismatches.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["profile", "target"]);
    // Refused under --require-comparable, with the usage exit code.
    let o = convoy(
        &["compare", "base", "heavy", "--require-comparable"],
        tmp.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("profile differs"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // A comparable pair passes the flag: same profile and target, and a
    // loopback target on another port is the same target.
    let mut a = synthetic("a", 2, 100.0, 0, 3);
    let mut b = synthetic("b", 3, 100.0, 0, 4);
    a.target = "http://127.0.0.1:40001/".into();
    b.target = "http://127.0.0.1:40002/".into();
    save(tmp.path(), "a", &a);
    save(tmp.path(), "b", &b);
    let o = convoy(&["compare", "a", "b", "--require-comparable"], tmp.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("WARNING"), "{}", stdout(&o));
}
