//! `reports/schema/report-v1.schema.json` against what convoy really
//! writes: the reports of real runs of the binary (a normal run, a run
//! whose target dies, a shard, a run compared with a baseline), and every
//! value the Rust types can serialise for the schema's enums. The schema's
//! objects are closed, so a member the reports gain without the schema
//! (and reports/README.md) fails here.
//!
//! The validator is Python's `jsonschema` (the reference implementation of
//! JSON Schema), run as `python3`: the Rust validators cost minutes of
//! compile time on a two-core CI machine for one test. Skipped, with a
//! notice, when it is not installed, unless `CONVOY_REQUIRE_JSONSCHEMA` is
//! set, as `.ci/run` does after `pip install jsonschema`.

mod cli_support;
mod report_support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::convoy_as_is;
use convoy::engine::{StepKind, StopReason};
use convoy::metrics::{ErrorCause, Violation};
use convoy::plan::{LoadModel, OpenModel, Ramp};
use convoy::report::TargetSource;
use convoy::report::compare::{Change, Figure};
use convoy::target::{self, Fault, TargetConfig};
use serde_json::Value;

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/report-v1.schema.json")
}

/// Validates each document against the schema; returns, per document, the
/// validation errors (`path: message`), empty when valid. `None` when no
/// validator is installed (and that is allowed).
fn validate(documents: &[(&str, Value)]) -> Option<Vec<(String, Vec<String>)>> {
    const SCRIPT: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    print("NO_JSONSCHEMA")
    sys.exit(0)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
out = []
for name, doc in json.load(sys.stdin):
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out.append([name, ["%s: %s" % (e.json_path, e.message[:300]) for e in errors]])
print(json.dumps(out))
"#;
    let child = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(schema_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return skip(&format!("python3 does not run: {e}")),
    };
    let input = serde_json::to_vec(documents).unwrap();
    // Without jsonschema the script exits before reading: a closed pipe
    // here is that, told apart below by what it printed.
    if let Err(e) = child.stdin.take().unwrap().write_all(&input) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the schema check failed (is the schema itself valid?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    if stdout.trim() == "NO_JSONSCHEMA" {
        return skip("python3 has no jsonschema module (pip install jsonschema)");
    }
    Some(serde_json::from_str(&stdout).expect("the validator prints JSON"))
}

fn skip(why: &str) -> Option<Vec<(String, Vec<String>)>> {
    assert!(
        std::env::var_os("CONVOY_REQUIRE_JSONSCHEMA").is_none(),
        "CONVOY_REQUIRE_JSONSCHEMA is set but {why}"
    );
    eprintln!("NOTICE: skipping the JSON Schema check: {why}");
    None
}

/// Asserts every document is valid.
fn assert_valid(documents: &[(&str, Value)]) {
    let Some(results) = validate(documents) else {
        return;
    };
    assert_eq!(results.len(), documents.len());
    let invalid: Vec<String> = results
        .iter()
        .filter(|(_, errors)| !errors.is_empty())
        .map(|(name, errors)| format!("{name}:\n  {}", errors.join("\n  ")))
        .collect();
    assert!(
        invalid.is_empty(),
        "reports the schema rejects:\n{}",
        invalid.join("\n")
    );
}

/// Runs convoy and asserts it exits with one of `codes`, showing its stderr
/// when it does not.
fn convoy_exits(codes: &[i32], args: &[&str]) {
    let o = convoy_as_is(args);
    assert!(
        o.status.code().is_some_and(|c| codes.contains(&c)),
        "exit {:?}, expected one of {codes:?}:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `convoy run SCENARIOS... ARGS... --quiet --out OUT`, which must exit with
/// one of `codes`.
fn run_into(out: &Path, codes: &[i32], args: &[&str]) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend(["--quiet", "--out", path(out)]);
    convoy_exits(codes, &all);
}

fn report_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_reports_of_real_runs_match_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    // A normal run against the embedded reference target.
    let normal = d.join("normal");
    run_into(
        &normal,
        &[0],
        &["health", "order-lifecycle", "--profile", "smoke"],
    );

    // A target that dies mid-run: a partial report, stop reason target_down.
    let profiles = d.join("profiles.toml");
    std::fs::write(&profiles, "[profile.long]\nusers = 2\nduration = \"60s\"\n").unwrap();
    let dying = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(200))).unwrap();
    let down = d.join("down");
    run_into(
        &down,
        &[4],
        &[
            "health",
            "--profile",
            "long",
            "--profiles",
            path(&profiles),
            "--target",
            &dying.base_url(),
        ],
    );

    // One shard of a sharded run.
    let shard = d.join("shard");
    run_into(
        &shard,
        &[0],
        &["health", "--profile", "light", "--shard", "1/2"],
    );

    // A run compared with a baseline and a history: another scenario set,
    // so the comparison also carries mismatches, and a --history that does
    // not exist, so it names it.
    let history = d.join("history");
    convoy_exits(
        &[0],
        &[
            "baseline",
            "record",
            path(&normal),
            "--history",
            path(&history),
        ],
    );
    let compared = d.join("compared");
    run_into(
        &compared,
        &[0, 1],
        &[
            "health",
            "--profile",
            "smoke",
            "--baseline",
            path(&normal),
            "--history",
            path(&d.join("no-such-history")),
        ],
    );
    let compared_with_history = d.join("compared-with-history");
    run_into(
        &compared_with_history,
        &[0, 1],
        &[
            "health",
            "order-lifecycle",
            "--profile",
            "smoke",
            "--baseline",
            path(&normal),
            "--history",
            path(&history),
        ],
    );

    // The other commands that write reports: bench, smoke, and merge of
    // the two shards of one run.
    let healthy = target::spawn(TargetConfig::default()).unwrap();
    let bench = d.join("bench.json");
    convoy_exits(
        &[0],
        &[
            "bench",
            &format!("{}/health", healthy.base_url()),
            "-n",
            "50",
            "-c",
            "2",
            "--quiet",
            "--output",
            path(&bench),
        ],
    );
    let smoke = d.join("smoke");
    convoy_exits(
        &[0],
        &[
            "smoke",
            "--target",
            &healthy.base_url(),
            "--quiet",
            "--out",
            path(&smoke),
        ],
    );
    let shard0 = d.join("shard0");
    run_into(
        &shard0,
        &[0],
        &["health", "--profile", "light", "--shard", "0/2"],
    );
    let merged = d.join("merged.json");
    convoy_exits(
        &[0],
        &[
            "merge",
            path(&shard0),
            path(&shard),
            "--output",
            path(&merged),
        ],
    );
    let file =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };

    let reports: Vec<(&str, Value)> = vec![
        ("normal", report_json(&normal)),
        ("target down", report_json(&down)),
        ("shard", report_json(&shard)),
        ("compared", report_json(&compared)),
        ("compared with history", report_json(&compared_with_history)),
        ("bench", file(&bench)),
        ("smoke", report_json(&smoke)),
        ("merged shards", file(&merged)),
    ];
    // They are the reports the test means: each case shows what it covers.
    let field = |i: usize, key: &str| reports[i].1[key].clone();
    assert_eq!(field(0, "stop_reason"), "completed");
    assert_eq!(field(1, "stop_reason"), "target_down");
    assert_eq!(field(1, "partial"), true);
    assert_eq!(
        field(2, "shard"),
        serde_json::json!({"index": 1, "count": 2})
    );
    let comparison = field(3, "comparison");
    assert!(!comparison["rows"].as_array().unwrap().is_empty());
    assert_eq!(comparison["mismatches"][0]["field"], "scenario");
    assert!(
        comparison["missing_history"]
            .as_str()
            .unwrap()
            .ends_with("no-such-history")
    );
    assert_eq!(field(4, "comparison")["history_runs"], 1);
    assert!(field(4, "comparison").get("mismatches").is_none());
    assert_eq!(field(5, "command"), "bench");
    assert_eq!(field(6, "command"), "smoke");
    assert_eq!(field(7, "shard"), Value::Null);

    // `convoy compare --format json` prints the same comparison object.
    let o = convoy_as_is(&[
        "compare",
        path(&normal),
        path(&compared),
        "--format",
        "json",
    ]);
    let printed: Value = serde_json::from_slice(&o.stdout).expect("compare prints JSON");
    let mut wrapped = reports[3].1.clone();
    wrapped["comparison"] = printed;

    let mut all = reports;
    all.push(("compare --format json, in a report", wrapped));
    assert_valid(&all);
}

/// Exhaustive lists of the values of the enums that reach a report. Each
/// `match` has no wildcard, so a new variant stops this test compiling
/// until it is listed here, and so checked against the schema.
fn every_stop_reason() -> Vec<StopReason> {
    let all = vec![
        StopReason::Completed,
        StopReason::Interrupted,
        StopReason::AbortedByGate,
        StopReason::TargetDown,
    ];
    for r in &all {
        match r {
            StopReason::Completed
            | StopReason::Interrupted
            | StopReason::AbortedByGate
            | StopReason::TargetDown => {}
        }
    }
    all
}

fn every_error_cause() -> Vec<ErrorCause> {
    for c in ErrorCause::ALL {
        match c {
            ErrorCause::Refused
            | ErrorCause::Dns
            | ErrorCause::Connect
            | ErrorCause::Timeout
            | ErrorCause::Tls
            | ErrorCause::Reset
            | ErrorCause::Protocol
            | ErrorCause::Body
            | ErrorCause::Other
            | ErrorCause::Local
            | ErrorCause::StreamRefused
            | ErrorCause::StreamClosed
            | ErrorCause::EventTimeout => {}
        }
    }
    ErrorCause::ALL.to_vec()
}

fn every_change() -> Vec<Change> {
    let all = vec![
        Change::Unchanged,
        Change::Noise,
        Change::Regression,
        Change::Improvement,
        Change::Unconfirmed,
        Change::Added,
        Change::Removed,
        Change::NoData,
    ];
    for c in &all {
        match c {
            Change::Unchanged
            | Change::Noise
            | Change::Regression
            | Change::Improvement
            | Change::Unconfirmed
            | Change::Added
            | Change::Removed
            | Change::NoData => {}
        }
    }
    all
}

fn every_target_source() -> Vec<Option<TargetSource>> {
    let all = vec![
        None,
        Some(TargetSource::Flag),
        Some(TargetSource::BaseUrl),
        Some(TargetSource::Builtin),
    ];
    for s in all.iter().flatten() {
        match s {
            TargetSource::Flag | TargetSource::BaseUrl | TargetSource::Builtin => {}
        }
    }
    all
}

fn every_step_kind() -> Vec<StepKind> {
    let all = vec![
        StepKind::Request,
        StepKind::Journey,
        StepKind::Event,
        StepKind::Stream,
    ];
    for k in &all {
        match k {
            StepKind::Request | StepKind::Journey | StepKind::Event | StepKind::Stream => {}
        }
    }
    all
}

#[test]
fn every_value_the_rust_types_can_write_is_in_the_schema() {
    let base = report_support::synthetic("base", 0, 100.0, 0, 1);
    let mut documents: Vec<(String, Value)> = Vec::new();
    let mut push = |name: String, r: &convoy::report::Report| {
        documents.push((name, serde_json::to_value(r).unwrap()));
    };

    for reason in every_stop_reason() {
        let mut r = base.clone();
        r.stop_reason = reason;
        r.partial = reason != StopReason::Completed;
        push(format!("stop_reason {reason:?}"), &r);
    }

    let mut causes = base.clone();
    for (i, cause) in every_error_cause().into_iter().enumerate() {
        causes.overall.error_counts.insert(cause, i as u64 + 1);
    }
    push("every error cause".into(), &causes);

    let mut open = base.clone();
    open.load_model = LoadModel::Open(OpenModel {
        rate: Ramp::constant(50.0, std::time::Duration::from_secs(30)),
        max_in_flight: 100,
        max_lag: std::time::Duration::from_secs(1),
        total_iterations: Some(1500),
    });
    push("open load model".into(), &open);
    for model in [&base.load_model, &open.load_model] {
        match model {
            LoadModel::Closed(_) | LoadModel::Open(_) => {}
        }
    }

    let mut kinds = base.clone();
    for kind in every_step_kind() {
        let mut s = kinds.steps[0].clone();
        s.kind = kind;
        s.name = format!("{kind:?}");
        kinds.steps.push(s);
    }
    push("every step kind".into(), &kinds);

    for source in every_target_source() {
        let mut r = base.clone();
        r.target_source = source;
        push(format!("target_source {source:?}"), &r);
    }

    let mut violations = base.clone();
    for v in Violation::ALL {
        violations.violations.insert(v, 1);
    }
    push("every violation".into(), &violations);

    // A comparison whose rows hold every figure and every verdict, with a
    // missing history and every kind of mismatch.
    let mut other = report_support::synthetic("other", 1, 150.0, 10, 2);
    other.profile = Some("heavy".into());
    other.command = "bench".into();
    other.scenario = Some("dispatch".into());
    other.target = "https://elsewhere.example.test".into();
    other.load_model = open.load_model.clone();
    other.shard = Some("0/2".parse().unwrap());
    other.steps[0].name = "renamed".into();
    let mut c = convoy::report::compare(&base, &other, &[], 0.10);
    c.missing_history = Some("reports/history".into());
    let template = c.rows[0].clone();
    c.rows.clear();
    for figure in Figure::ALL {
        for change in every_change() {
            let mut row = template.clone();
            row.figure = figure;
            row.change = change;
            c.rows.push(row);
        }
    }
    let fields: Vec<&str> = c.mismatches.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "command",
            "scenario",
            "profile",
            "target",
            "steps",
            "load_model",
            "shard"
        ],
        "every kind of mismatch"
    );
    let mut compared = base.clone();
    compared.comparison = Some(c);
    push("every figure, verdict and mismatch".into(), &compared);

    let borrowed: Vec<(&str, Value)> = documents
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    assert_valid(&borrowed);
}

#[test]
fn the_schema_rejects_what_convoy_never_writes() {
    let base = serde_json::to_value(report_support::synthetic("base", 0, 100.0, 0, 1)).unwrap();
    let mut unknown_reason = base.clone();
    unknown_reason["stop_reason"] = "TargetDown".into();
    let mut unknown_member = base.clone();
    unknown_member["undocumented"] = 1.into();
    let mut unknown_cause = base.clone();
    unknown_cause["overall"]["error_counts"]["flux"] = 1.into();
    let Some(results) = validate(&[
        ("a Debug name as stop reason", unknown_reason),
        ("an undocumented member", unknown_member),
        ("an unknown error cause", unknown_cause),
        ("the fixture itself", base),
    ]) else {
        return;
    };
    for (name, errors) in &results[..3] {
        assert!(!errors.is_empty(), "the schema accepted {name}");
    }
    assert!(results[3].1.is_empty(), "{:?}", results[3].1);
}

#[test]
fn the_readme_names_every_stop_reason() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/README.md"))
            .unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `stop_reason` |"))
        .expect("a stop_reason row");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let in_schema: Vec<&str> = schema["properties"]["stop_reason"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for reason in every_stop_reason() {
        let name = serde_json::to_value(reason).unwrap();
        let name = name.as_str().unwrap();
        assert!(row.contains(&format!("`{name}`")), "README lacks {name}");
        assert!(in_schema.contains(&name), "schema lacks {name}");
    }
    assert_eq!(in_schema.len(), every_stop_reason().len());
}

#[test]
fn a_report_with_streams_and_wildcard_gates_matches_the_schema() {
    // `realtime` holds two streams without a reconnect policy: their
    // reconnect rows are marked `ruled_out`; its own gate is `event:*`.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("realtime");
    run_into(
        &out,
        &[0],
        &["realtime", "--profile", "smoke", "-g", "stream:* p95 < 10s"],
    );
    let report = report_json(&out);
    let marked: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ruled_out"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        marked,
        ["dispatcher events · reconnect", "globex events · reconnect"]
    );
    let scopes: Vec<&str> = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scope"].as_str().unwrap())
        .collect();
    assert!(
        scopes.contains(&"event:*") && scopes.contains(&"stream:*"),
        "{scopes:?}"
    );
    assert_valid(&[("realtime", report)]);
}
