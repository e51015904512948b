//! Saved reports are input: `convoy report`, `report --gate`, `merge` and
//! `compare` read files anyone may have written. Hostile numbers, files that
//! never end, truncated and non-JSON files are refused with exit 3 and a
//! message naming the file and the field, never a panic (exit 101) or an
//! abort (134); whatever the reader accepts renders, gates, merges and
//! compares without panicking (the deterministic counterpart of the
//! `report_read` fuzz target, over the same seeds).

mod cli_support;
mod report_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cli_support::{code, command, output_in, stderr};
use convoy::gate::{self, Gate};
use convoy::report::{self, Format, Report, artifacts, compare, json, merge};
use serde_json::Value;

/// `convoy ARGS` in `dir`.
fn convoy(args: &[&str], dir: &Path) -> Output {
    output_in(command(), args, dir)
}

/// The seed reports of the fuzz target: real runs (a whole run, a shard,
/// merged shards, a run compared with a baseline).
fn seeds() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/report_read");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 3, "seeds in {}", dir.display());
    out
}

fn real_run() -> Value {
    let (_, text) = seeds()
        .into_iter()
        .find(|(n, _)| n == "run.json")
        .expect("run.json seed");
    serde_json::from_str(&text).unwrap()
}

/// Writes `doc` as `name` in `dir`.
fn save(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path
}

/// `pointer` (a JSON pointer) set to `value` in a copy of `doc`.
fn with(doc: &Value, pointer: &str, value: Value) -> Value {
    let mut d = doc.clone();
    *d.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in the seed")) = value;
    d
}

/// Runs the four commands that read reports on `bad` and expects each to
/// refuse it with exit 3 and a message containing `says`.
fn refused_by_every_reader(dir: &Path, bad: &str, says: &str) {
    save(dir, "good.json", &real_run());
    let commands: [&[&str]; 5] = [
        &["report", bad],
        &["report", bad, "--gate", "p95 < 1s"],
        &["merge", bad, "good.json", "-o", "merged.json"],
        &["compare", "good.json", bad],
        &["compare", bad, "good.json"],
    ];
    for args in commands {
        let o = convoy(args, dir);
        assert_eq!(code(&o), 3, "convoy {args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(bad) && err.contains(says),
            "convoy {args:?} should name {bad} and say {says:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_duration_of_1e308_is_refused_by_every_reader_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = with(&real_run(), "/duration_secs", serde_json::json!(1e308));
    save(tmp.path(), "huge.json", &bad);
    refused_by_every_reader(tmp.path(), "huge.json", "duration_secs is 1e308");
}

#[test]
fn hostile_numbers_are_refused_with_the_field_named() {
    let tmp = tempfile::tempdir().unwrap();
    let run = real_run();
    let max = Value::from(u64::MAX);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/duration_secs",
            serde_json::json!(-1.0),
            "duration_secs is -1.0",
        ),
        (
            "/timeline/0/window",
            serde_json::json!(1e308),
            "timeline[0].window is 1e308",
        ),
        (
            "/timeline/0/t",
            serde_json::json!(-5.0),
            "timeline[0].t is -5.0",
        ),
        (
            "/timeline/0/p95_ms",
            serde_json::json!(1e300),
            "timeline[0].p95_ms is 1e300",
        ),
        (
            "/timeline/0/requests",
            max.clone(),
            "timeline[0].requests is 18446744073709551615",
        ),
        (
            "/iterations",
            max.clone(),
            "iterations is 18446744073709551615",
        ),
        ("/overall/requests", max.clone(), "overall.requests is"),
        ("/steps/0/errors", max.clone(), "steps[0].errors is"),
        ("/checks/0/failures", max.clone(), "checks[0].failures is"),
        ("/overall/dropped", max, "overall.dropped is"),
        (
            "/shard",
            serde_json::json!({"index": 7, "count": 2}),
            "shard is 7/2",
        ),
        (
            "/started_at",
            serde_json::json!("1970-01-01T00:00:00Z"),
            "ended_at is",
        ),
    ];
    for (i, (pointer, value, says)) in cases.into_iter().enumerate() {
        let name = format!("bad{i}.json");
        save(tmp.path(), &name, &with(&run, pointer, value));
        let o = convoy(&["report", &name], tmp.path());
        assert_eq!(code(&o), 3, "{pointer}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{pointer}: {}", stderr(&o));
        let o = convoy(&["merge", &name, &name], tmp.path());
        assert_eq!(code(&o), 3, "merge {pointer}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "merge {pointer}: {}", stderr(&o));
    }
}

#[test]
fn counts_that_only_overflow_when_added_up_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = real_run();
    let top = Value::from(1u64 << 53);
    // Each value is a count; their sum is not.
    let mut checks = with(&run, "/checks/0/passes", top.clone());
    checks = with(&checks, "/checks/1/passes", top.clone());
    save(tmp.path(), "checks.json", &checks);
    let o = convoy(
        &["report", "checks.json", "--gate", "checks > 99%"],
        tmp.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("checks is a list whose check evaluations add up to"),
        "{}",
        stderr(&o)
    );
    let mut window = run["timeline"][0].clone();
    window["requests"] = top.clone();
    let windows = with(&run, "/timeline", Value::Array(vec![window; 2]));
    save(tmp.path(), "windows.json", &windows);
    let o = convoy(&["report", "windows.json"], tmp.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("timeline is a list whose requests"),
        "{}",
        stderr(&o)
    );
    // Two runs whose counters are each at the bound merge past it.
    let a = with(&run, "/iterations", top.clone());
    let b = with(&a, "/run_id", Value::from("another-run"));
    save(tmp.path(), "a.json", &a);
    save(tmp.path(), "b.json", &b);
    let o = convoy(&["merge", "a.json", "b.json", "-o", "m.json"], tmp.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot merge: together the reports count more than"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("m.json").exists());
}

#[test]
fn a_number_json_cannot_hold_is_a_parse_error_with_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let text = serde_json::to_string_pretty(&real_run()).unwrap();
    let at = text.find("\"duration_secs\"").unwrap();
    let end = at + text[at..].find(',').unwrap();
    let bad = format!("{}\"duration_secs\": 1e400{}", &text[..at], &text[end..]);
    std::fs::write(tmp.path().join("inf.json"), bad).unwrap();
    let o = convoy(&["report", "inf.json", "--gate", "p95 < 1s"], tmp.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("inf.json:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("out of range"), "{}", stderr(&o));
}

#[test]
fn a_hostile_histogram_is_refused_before_it_is_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    // A plain V2 header that declares a 4 GiB payload and a range of 2^62
    // microseconds with 5 digits: hdrhistogram would allocate both before
    // reading a single count.
    let mut v2 = Vec::new();
    v2.extend(0x1c84_9313u32.to_be_bytes());
    v2.extend(u32::MAX.to_be_bytes());
    v2.extend(0u32.to_be_bytes());
    v2.extend(5u32.to_be_bytes());
    v2.extend(1u64.to_be_bytes());
    v2.extend((1u64 << 62).to_be_bytes());
    v2.extend(1f64.to_be_bytes());
    let bomb = Value::from(BASE64.encode(&v2));
    let run = real_run();
    for (i, pointer) in [
        "/overall/histograms/latency",
        "/steps/0/histograms/service",
        "/timeline/0/latency",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("hist{i}.json");
        save(tmp.path(), &name, &with(&run, pointer, bomb.clone()));
        let o = convoy(&["report", &name], tmp.path());
        assert_eq!(code(&o), 3, "{pointer}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("invalid HdrHistogram V2 data"),
            "{pointer}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn too_many_steps_are_refused_before_their_histograms_are_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = real_run();
    let step = run["steps"][0].clone();
    run["steps"] = Value::Array(vec![step; report::validate::MAX_STEPS + 1]);
    save(tmp.path(), "wide.json", &run);
    let o = convoy(&["report", "wide.json"], tmp.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wide.json: steps is a list of 1001"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dev_zero_is_refused_at_the_size_cap() {
    if !Path::new("/dev/zero").exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["report", "/dev/zero"][..],
        &["report", "/dev/zero", "--gate", "p95 < 1s"],
        &["compare", "/dev/zero", "/dev/zero"],
    ] {
        let o = convoy(args, tmp.path());
        assert_eq!(code(&o), 3, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/dev/zero: larger than 64 MiB"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_regular_file_over_the_cap_is_refused_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.json");
    let f = std::fs::File::create(&path).unwrap();
    // Sparse: no disk used, and convoy must not read it to know.
    f.set_len(artifacts::MAX_REPORT_BYTES + 1).unwrap();
    let o = convoy(&["report", "big.json"], tmp.path());
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("big.json: larger than 64 MiB"),
        "{}",
        stderr(&o)
    );
    // Exactly at the cap is read (and then is no report).
    f.set_len(artifacts::MAX_REPORT_BYTES).unwrap();
    let e = artifacts::read_capped(&path).map(|b| b.len());
    assert_eq!(e.unwrap() as u64, artifacts::MAX_REPORT_BYTES);
}

#[test]
fn truncated_and_non_json_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let text = serde_json::to_string_pretty(&real_run()).unwrap();
    std::fs::write(tmp.path().join("cut.json"), &text[..text.len() / 2]).unwrap();
    std::fs::write(
        tmp.path().join("photo.json"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    )
    .unwrap();
    std::fs::write(tmp.path().join("notes.json"), "these are not the figures\n").unwrap();
    let cases = [
        ("cut.json", "EOF while parsing"),
        ("photo.json", "cannot read photo.json"),
        ("notes.json", "notes.json:1:2: expected ident"),
    ];
    for (name, says) in cases {
        for args in [
            &["report", name][..],
            &["report", name, "--gate", "p95 < 1s"],
            &["merge", name, name],
        ] {
            let o = convoy(args, tmp.path());
            assert_eq!(code(&o), 3, "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(name), "{args:?}: {}", stderr(&o));
        }
    }
}

#[test]
fn a_history_file_with_hostile_numbers_is_skipped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let run = real_run();
    std::fs::create_dir(tmp.path().join("history")).unwrap();
    save(
        &tmp.path().join("history"),
        "bad.json",
        &with(&run, "/duration_secs", serde_json::json!(1e308)),
    );
    save(tmp.path(), "base.json", &run);
    let o = convoy(
        &["compare", "base.json", "base.json", "--history", "history"],
        tmp.path(),
    );
    assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped") && stderr(&o).contains("duration_secs is 1e308"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------------------
// Mutated real reports through the reader and everything after it.

const FORMATS: [Format; 5] = [
    Format::Table,
    Format::Json,
    Format::Md,
    Format::Junit,
    Format::Html,
];

/// What the fuzz target does with an accepted report: every format, gates
/// (one relative), a merge with itself, a comparison with itself.
fn exercise(r: &Report) {
    for f in FORMATS {
        let _ = report::render(r, f);
    }
    let back = artifacts::parse_report(Path::new("again.json"), json::render(r).as_bytes());
    assert!(back.is_ok(), "a rendered report reads back: {back:?}");
    let gates: Vec<Gate> = [
        "p95 < 1s",
        "error_rate < 1%",
        "rps > 10",
        "p95 <= baseline * 1.10",
    ]
    .iter()
    .map(|g| g.parse().unwrap())
    .collect();
    let _ = gate::evaluate(&gates, r, Some(r));
    if let Ok(m) = merge::merge(&[r.clone(), r.clone()]) {
        for f in FORMATS {
            let _ = report::render(&m, f);
        }
    }
    let mut c = r.clone();
    c.comparison = Some(compare::compare(r, r, std::slice::from_ref(r), 0.1));
    for f in FORMATS {
        let _ = report::render(&c, f);
    }
}

/// Values a hostile tester puts where a number was.
const HOSTILE: [&str; 16] = [
    "1e308",
    "-1e308",
    "-1",
    "0",
    "-0.0",
    "1e-320",
    "18446744073709551615",
    "18446744073709551616",
    "9007199254740993",
    "4294967295",
    "\"NaN\"",
    "\"inf\"",
    "null",
    "[]",
    "{}",
    "true",
];

/// The byte ranges of the numbers in `text`.
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b"-+.eE".contains(&b[i])) {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// The byte ranges of the histogram strings (long base64) in `text`.
fn histograms(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("\"HISTFAAA") {
        let start = from + at + 1;
        let Some(len) = text[start..].find('"') else {
            break;
        };
        let end = start + len;
        out.push((start, end));
        from = end + 1;
    }
    out
}

/// One mutation of `text`, chosen by `rng`.
fn mutate(text: &str, rng: &mut fastrand::Rng) -> Vec<u8> {
    let splice = |range: (usize, usize), with: &str| {
        let mut s = text[..range.0].to_string();
        s.push_str(with);
        s.push_str(&text[range.1..]);
        s.into_bytes()
    };
    if text.is_empty() {
        return Vec::new();
    }
    let (nums, hs) = (numbers(text), histograms(text));
    let mut kind = rng.u8(0..6);
    if (nums.is_empty() && matches!(kind, 0 | 1 | 5)) || (hs.is_empty() && kind == 2) {
        kind = 3;
    }
    match kind {
        0 | 1 => {
            let r = nums[rng.usize(..nums.len())];
            splice(r, HOSTILE[rng.usize(..HOSTILE.len())])
        }
        2 => {
            // A histogram with bytes of its V2 encoding changed.
            let r = hs[rng.usize(..hs.len())];
            let Ok(mut bytes) = BASE64.decode(&text[r.0..r.1]) else {
                return text.as_bytes()[..r.0].to_vec();
            };
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..bytes.len());
                match rng.u8(0..3) {
                    0 => bytes[i] ^= 1 << rng.u8(0..8),
                    1 => bytes[i] = 0xff,
                    _ => bytes.truncate(i),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            splice(r, &BASE64.encode(&bytes))
        }
        3 => {
            let mut b = text.as_bytes().to_vec();
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(..b.len());
                b[i] ^= 1 << rng.u8(0..8);
            }
            b
        }
        4 => text.as_bytes()[..rng.usize(..text.len())].to_vec(),
        _ => {
            // A long array where a number was: wide steps, long timelines.
            let r = nums[rng.usize(..nums.len())];
            let n = rng.usize(1..50_000);
            let item = HOSTILE[rng.usize(..8)];
            splice(r, &format!("[{}]", vec![item; n].join(",")))
        }
    }
}

#[test]
fn thousands_of_mutated_real_reports_never_panic() {
    let seeds = seeds();
    let mut rng = fastrand::Rng::with_seed(14);
    let (mut accepted, mut refused) = (0, 0);
    for (name, text) in &seeds {
        let r = artifacts::parse_report(Path::new(name), text.as_bytes())
            .unwrap_or_else(|e| panic!("seed {name}: {e}"));
        exercise(&r);
    }
    for round in 0..1500 {
        let (name, text) = &seeds[round % seeds.len()];
        let mut bytes = mutate(text, &mut rng);
        if rng.u8(0..4) == 0
            && let Ok(once) = String::from_utf8(bytes.clone())
        {
            bytes = mutate(&once, &mut rng);
        }
        match artifacts::parse_report(Path::new(name), &bytes) {
            Ok(r) => {
                accepted += 1;
                exercise(&r);
            }
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains(name.as_str()), "{e}");
            }
        }
    }
    // Both paths were taken many times.
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}
