//! `convoy bench` end to end: the binary against in-process servers on
//! loopback ports (wiremock, which keeps every request it received, and the
//! reference target for a target that dies).

mod cli_support;

use std::path::Path;
use std::process::Output;

use cli_support::{MockApi, full_width, stderr, stdout};
use convoy::report::{self, Report};
use convoy::target::{self, Fault, TargetConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// Runs `convoy bench ARGS`, quietly.
fn bench(args: &[&str]) -> Output {
    full_width()
        .arg("bench")
        .args(args)
        .arg("-q")
        .output()
        .unwrap()
}

/// A wiremock server answering `GET /probe` with 200 and anything POSTed to
/// `/probe` with 201; `first_503` requests answer 503 first.
struct Probe(MockApi);

impl Probe {
    fn start(first_503: u64) -> Probe {
        let api = MockApi::start();
        if first_503 > 0 {
            api.mount(
                Mock::given(path("/probe"))
                    .respond_with(ResponseTemplate::new(503))
                    .up_to_n_times(first_503)
                    .with_priority(1),
            );
        }
        api.mount(
            Mock::given(method("GET"))
                .and(path("/probe"))
                .respond_with(ResponseTemplate::new(200).set_body_string("{\"status\":\"ok\"}")),
        );
        api.mount(
            Mock::given(method("POST"))
                .and(path("/probe"))
                .respond_with(ResponseTemplate::new(201)),
        );
        Probe(api)
    }

    fn url(&self) -> String {
        format!("{}/probe", self.0.uri())
    }

    fn received(&self) -> Vec<wiremock::Request> {
        self.0.received()
    }
}

fn parse(json: &str) -> Report {
    report::json::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn the_table_shows_requests_rates_percentiles_and_status_counts() {
    let probe = Probe::start(0);
    let out = bench(&[&probe.url(), "-n", "20", "-c", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("20 requests in "), "{text}");
    assert!(text.contains(" req/s · 0 errors (0"), "{text}");
    let header = text
        .lines()
        .find(|l| l.contains("step"))
        .unwrap_or_else(|| panic!("no table header in {text}"));
    let columns: Vec<&str> = header
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "step", "requests", "req/s", "errors", "p50 ms", "p90 ms", "p95 ms", "p99 ms",
            "p99.9 ms", "max ms", "mean ms"
        ]
    );
    let row = text
        .lines()
        .find(|l| l.contains("GET /probe"))
        .unwrap_or_else(|| panic!("no row for the step in {text}"));
    let cells: Vec<&str> = row.split('│').map(str::trim).collect();
    assert_eq!(cells[2], "20", "{row}");
    assert!(text.contains("status codes: 200 × 20"), "{text}");
    assert_eq!(probe.received().len(), 20);
}

#[test]
fn json_output_parses_back_with_the_request_and_status_counts() {
    let probe = Probe::start(5);
    let out = bench(&[&probe.url(), "-n", "20", "-c", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = parse(&stdout(&out));
    assert_eq!(r.schema, "convoy.report/v1");
    assert_eq!(r.overall.requests, 20);
    assert_eq!(r.overall.status_counts.get("200"), Some(&15));
    assert_eq!(r.overall.status_counts.get("503"), Some(&5));
    assert_eq!(r.overall.errors, 5, "5xx answers are errors");
    assert!(!r.partial);
    assert_eq!(probe.received().len(), 20);
}

#[test]
fn headers_method_and_body_reach_the_server() {
    let probe = Probe::start(0);
    let out = bench(&[
        &probe.url(),
        "-n",
        "3",
        "-c",
        "1",
        "-m",
        "POST",
        "--body",
        "{\"weight_kg\":2}",
        "-H",
        "X-Probe: 1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        parse(&stdout(&out)).overall.status_counts.get("201"),
        Some(&3)
    );
    let received = probe.received();
    assert_eq!(received.len(), 3);
    for r in received {
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(
            r.headers.get("x-probe").map(|v| v.to_str().unwrap()),
            Some("1")
        );
        assert_eq!(r.body, b"{\"weight_kg\":2}");
    }
}

#[test]
fn output_writes_the_same_json_as_stdout() {
    let probe = Probe::start(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.json");
    let out = bench(&[
        &probe.url(),
        "-n",
        "10",
        "--json",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(&file).expect("the report file is written");
    assert_eq!(written, stdout(&out));
    assert_eq!(parse(&written).overall.requests, 10);
}

#[test]
fn a_single_stage_runs() {
    let probe = Probe::start(0);
    let out = bench(&[&probe.url(), "--stages", "2,300ms", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = parse(&stdout(&out));
    assert!(r.overall.requests > 0);
    // What the server saw: every request counted, and those cut off in
    // flight when the stage ended if they had got far enough to be read.
    let received = probe.received().len() as u64;
    assert!(
        (r.overall.requests..=r.overall.requests + r.interrupted).contains(&received),
        "{received} received, {} answered, {} cut off",
        r.overall.requests,
        r.interrupted
    );
}

#[test]
fn bad_values_exit_3_naming_the_flag() {
    // Refused before any connection: the port need not be open.
    let url = "http://127.0.0.1:1/";
    for (args, named) in [
        (&["-d", "0s"][..], "-d/--duration"),
        (&["-n", "0"][..], "-n/--requests"),
        (&["--timeout", "0s"][..], "--timeout"),
        (&["--rate", "-5/s", "-d", "1s"][..], "invalid rate \"-5/s\""),
        (&["--rate=-5/s", "-d", "1s"][..], "invalid rate \"-5/s\""),
    ] {
        let out = bench(&[&[url][..], args].concat());
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed a report");
    }
}

fn report_at(path: &Path) -> Report {
    parse(&std::fs::read_to_string(path).expect("report written"))
}

#[test]
fn a_target_that_dies_stops_the_run_as_target_down() {
    let t = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(200))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("down.json");
    let out = bench(&[
        &format!("{}/health", t.base_url()),
        "-d",
        "60s",
        "-c",
        "4",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stopped accepting connections"), "{err}");
    assert!(err.contains("200 requests answered"), "{err}");
    assert!(
        err.contains("counted apart under error cause `refused`: not requests"),
        "{err}"
    );
    let r = report_at(&file);
    assert!(r.partial);
    assert_eq!(r.stop_reason, convoy::engine::StopReason::TargetDown);
    // Everything the target answered before it died is in the report.
    assert_eq!(r.overall.status_counts.get("200"), Some(&200));
    // The refused attempts after it are errors, never answers.
    assert_eq!(
        r.overall.errors,
        r.overall.requests - 200,
        "{:?}",
        r.overall.error_counts
    );
    // Far short of the 60 s planned (a bound, not a measurement).
    assert!(r.duration_secs < 30.0, "{}", r.duration_secs);
}

#[test]
fn a_target_that_dies_during_a_fixed_count_run_stops_it_as_target_down() {
    // The 2,000 requests after the death are refused in far less time than
    // the watch takes to be sure: the run must still end target_down, not
    // "completed" with 2,000 errors.
    let t = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(1000))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("down.json");
    let out = bench(&[
        &format!("{}/health", t.base_url()),
        "-n",
        "3000",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stopped accepting connections"), "{err}");
    assert!(err.contains("1000 requests answered"), "{err}");
    let r = report_at(&file);
    assert!(r.partial);
    assert_eq!(r.stop_reason, convoy::engine::StopReason::TargetDown);
    assert_eq!(r.overall.status_counts.get("200"), Some(&1000));
    assert_eq!(
        r.overall.errors,
        r.overall.requests - 1000,
        "{:?}",
        r.overall.error_counts
    );
    assert!(
        r.overall
            .error_counts
            .get(&convoy::metrics::ErrorCause::Refused)
            .is_some_and(|n| *n > 0),
        "{:?}",
        r.overall.error_counts
    );
}

#[test]
fn the_terminal_output_draws_a_latency_histogram_unless_quiet() {
    let probe = Probe::start(0);
    let out = full_width()
        .args(["bench", &probe.url(), "-n", "50", "-c", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let at = text
        .find("latency histogram")
        .unwrap_or_else(|| panic!("no histogram in {text}"));
    let counts: u64 = text[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.contains("] |"))
        .map(|l| {
            let inside = &l[l.find('[').unwrap() + 1..l.find(']').unwrap()];
            inside.trim().replace(',', "").parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(counts, 50, "every response in a bucket: {text}");
    // 50 samples support p95 but not p99 or p99.9, which show "–" once
    // explained.
    let row = text.lines().find(|l| l.contains("GET /probe")).unwrap();
    let cells: Vec<&str> = row.split('│').map(str::trim).collect();
    assert_ne!(cells[7], "–", "p95: {row}");
    assert_eq!(cells[8], "–", "p99: {row}");
    assert_eq!(cells[9], "–", "p99.9: {row}");
    assert_eq!(text.matches("too few samples").count(), 1, "{text}");

    let quiet = stdout(&bench(&[&probe.url(), "-n", "5"]));
    assert!(!quiet.contains("latency histogram"), "{quiet}");
}

#[test]
fn a_narrow_columns_fits_every_line() {
    let probe = Probe::start(0);
    let out = full_width()
        .env("COLUMNS", "60")
        .args(["bench", &probe.url(), "-n", "30", "-c", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in text.lines() {
        assert!(line.chars().count() <= 60, "{line:?} in\n{text}");
    }
    assert!(text.contains("latency histogram"), "{text}");
    assert!(text.contains("left out to fit 60 columns"), "{text}");
}
