//! `--metrics-addr`: `/metrics` scraped while the real binary runs, parsed
//! with the reference Prometheus text-format parser (Python's
//! `prometheus_client`):
//! counters only go up, and once the run has ended the figures equal the
//! report's.

mod cli_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cli_support::command;
use convoy::report::{Report, artifacts};
use convoy::target::{self, TargetConfig};

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `GET /metrics`, or `None` while nothing listens.
fn get_metrics(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: convoy\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_string())
}

/// True when the reference parser cannot run here: the test is then
/// skipped with a notice naming what to install, unless
/// `CONVOY_REQUIRE_PROMETHEUS_CLIENT` is set (as `.ci/run` does after
/// `pip install prometheus-client`), where that is a failure.
fn no_reference_parser() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return false;
    }
    assert!(
        std::env::var_os("CONVOY_REQUIRE_PROMETHEUS_CLIENT").is_none(),
        "CONVOY_REQUIRE_PROMETHEUS_CLIENT is set but python3 cannot import prometheus_client"
    );
    eprintln!(
        "NOTICE: skipping: the scrape is parsed with Python's prometheus_client (pip install prometheus-client)"
    );
    true
}

/// Parses a scrape with the reference parser, Python's
/// `prometheus_client.parser` (strict: it raises on any line it cannot
/// read; the `prometheus-parse` crate silently skips label values holding
/// `}`, such as check names with templates). Needs `python3` with
/// `prometheus-client` installed (`pip install prometheus-client`).
fn parse(body: &str) -> Vec<Sample> {
    const SCRIPT: &str = "
import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([
    {'type': f.type, 'name': s.name, 'labels': s.labels, 'value': s.value}
    for f in text_string_to_metric_families(sys.stdin.read())
    for s in f.samples
]))
";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the reference Prometheus parser is Python's prometheus_client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the scrape (or is not installed: pip install prometheus-client):\n{}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<Sample> = serde_json::from_slice(&out.stdout).unwrap();
    let lines = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    assert_eq!(samples.len(), lines, "samples lost in\n{body}");
    samples
}

/// One parsed sample.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    #[serde(rename = "type")]
    family_type: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Every counter and histogram series (buckets, sums, counts), by name and
/// labels.
fn monotonic_values(scrape: &[Sample]) -> BTreeMap<String, f64> {
    scrape
        .iter()
        .filter(|s| matches!(s.family_type.as_str(), "counter" | "histogram"))
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect()
}

fn value(scrape: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .iter()
        .filter(|s| {
            s.name == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    assert!(!found.is_empty(), "{metric} {labels:?} missing");
    found.iter().sum()
}

/// Scrapes every 150 ms until `child` exits; returns the bodies.
fn scrape_until_exit(mut child: Child, addr: SocketAddr) -> (Vec<String>, std::process::Output) {
    let mut bodies = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Some(b) = get_metrics(addr) {
            bodies.push(b);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    (bodies, child.wait_with_output().unwrap())
}

/// Runs the binary with `args` and its metrics on `addr` (still served for
/// `linger` after the run), scraping until it exits; asserts it exits 0 and
/// returns the scrapes, parsed.
fn scrape_convoy(args: &[&str], addr: SocketAddr, linger: &str) -> Vec<Vec<Sample>> {
    let child = command()
        .args(args)
        .args([
            "--metrics-addr",
            &addr.to_string(),
            "--metrics-linger",
            linger,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (bodies, output) = scrape_until_exit(child, addr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    bodies.iter().map(|b| parse(b)).collect()
}

fn assert_counters_only_go_up(scrapes: &[Vec<Sample>]) {
    for pair in scrapes.windows(2) {
        let (before, after) = (monotonic_values(&pair[0]), monotonic_values(&pair[1]));
        for (key, v) in &before {
            let now = after.get(key).unwrap_or_else(|| panic!("{key} vanished"));
            assert!(now >= v, "{key} went down: {v} -> {now}");
        }
    }
}

fn read(dir: &Path) -> Report {
    artifacts::read_report(dir).unwrap()
}

#[test]
fn run_metrics_go_up_and_end_equal_to_the_report() {
    if no_reference_parser() {
        return;
    }
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        "[profile.live]\nusers = 2\nduration = \"3s\"\ngates = [\"p95 < 500ms\", \"error_rate < 1%\", \"tenant_isolation_violations == 0\"]\n",
    )
    .unwrap();
    let addr = free_port();
    let out_dir = dir.path().join("out");
    let base_url = t.base_url();
    let scrapes = scrape_convoy(
        &[
            "run",
            "health",
            "order-lifecycle",
            "--profile",
            "live",
            "--profiles",
            profiles.to_str().unwrap(),
            "--target",
            &base_url,
            "--workers",
            "1",
            "-q",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        addr,
        "2s",
    );
    let finished = |s: &[Sample]| value(s, "convoy_run_finished", &[]) == 1.0;
    let during: Vec<&Vec<Sample>> = scrapes
        .iter()
        .filter(|s| !finished(s) && value(s, "convoy_iterations_total", &[]) > 0.0)
        .collect();
    assert!(
        during.len() >= 3,
        "only {} scrapes saw the run in progress",
        during.len()
    );
    assert!(
        during
            .iter()
            .any(|s| value(s, "convoy_active_users", &[]) > 0.0)
    );
    assert_counters_only_go_up(&scrapes);

    // After the end, the exporter serves the final figures: the report's.
    let last = scrapes.last().unwrap();
    assert!(finished(last), "no scrape after the end of the run");
    let report = read(&out_dir);
    assert!(report.overall.requests > 0);
    for step in &report.steps {
        let labels = [("step", step.name.as_str())];
        assert_eq!(
            value(last, "convoy_requests_total", &labels),
            step.requests as f64,
            "{}",
            step.name
        );
        assert_eq!(
            value(last, "convoy_request_duration_seconds_count", &labels),
            step.histograms.latency.count() as f64
        );
    }
    assert_eq!(
        value(last, "convoy_iterations_total", &[]),
        report.iterations as f64
    );
    let passes: u64 = report.checks.iter().map(|c| c.passes).sum();
    let failures: u64 = report.checks.iter().map(|c| c.failures).sum();
    assert_eq!(
        value(last, "convoy_checks_total", &[("result", "pass")]),
        passes as f64
    );
    assert_eq!(
        value(last, "convoy_checks_total", &[("result", "fail")]),
        failures as f64
    );
    assert_eq!(
        value(
            last,
            "convoy_violations_total",
            &[("kind", "tenant_isolation_violations")]
        ),
        0.0
    );
    assert_eq!(report.gates.len(), 3);
    for g in &report.gates {
        assert_eq!(
            value(last, "convoy_gate_passing", &[("gate", &g.expression)]),
            f64::from(u8::from(g.passed)),
            "{}",
            g.expression
        );
    }
    // The server is gone once the binary has exited.
    assert!(get_metrics(addr).is_none());
}

#[test]
fn bench_metrics_count_every_request_of_an_open_model_run() {
    if no_reference_parser() {
        return;
    }
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("bench.json");
    let addr = free_port();
    let url = format!("{}/health", t.base_url());
    let scrapes = scrape_convoy(
        &[
            "bench",
            &url,
            "--rate",
            "200/s",
            "-d",
            "2s",
            "-c",
            "4",
            "--workers",
            "1",
            "-q",
            "--output",
            report_path.to_str().unwrap(),
        ],
        addr,
        "1s",
    );
    assert!(scrapes.len() >= 3);
    assert_counters_only_go_up(&scrapes);
    let last = scrapes.last().unwrap();
    let report = read(&report_path);
    assert_eq!(
        value(last, "convoy_requests_total", &[]),
        report.overall.requests as f64
    );
    assert_eq!(
        value(last, "convoy_responses_total", &[("status_class", "2xx")]),
        report
            .overall
            .status_counts
            .get("200")
            .copied()
            .unwrap_or(0) as f64
    );
    assert_eq!(
        value(last, "convoy_dropped_total", &[]),
        report.overall.dropped as f64
    );
    assert_eq!(value(last, "convoy_run_info", &[("command", "bench")]), 1.0);
}

#[test]
fn errors_by_cause_are_scraped_while_a_failing_target_is_loaded() {
    if no_reference_parser() {
        return;
    }
    // A fifth of the answers are 500/503 (cause "status"); answers take up
    // to 60 ms against a 25 ms timeout (cause "timeout").
    let t = target::spawn(TargetConfig {
        faults: vec![
            "error-rate=0.2".parse().unwrap(),
            "latency=1ms..60ms".parse().unwrap(),
        ],
        ..TargetConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("bench.json");
    let addr = free_port();
    let url = format!("{}/health", t.base_url());
    // Failed requests are data: the run itself completes (its exit code is
    // a verdict on gates, none here).
    let scrapes = scrape_convoy(
        &[
            "bench",
            &url,
            "--rate",
            "100/s",
            "-d",
            "3s",
            "-c",
            "10",
            "-t",
            "25ms",
            "--workers",
            "1",
            "-q",
            "--output",
            report_path.to_str().unwrap(),
        ],
        addr,
        "1s",
    );
    assert_counters_only_go_up(&scrapes);
    // 0 while a scrape has no such series yet (before the first request).
    let errors = |s: &[Sample], cause: &str| -> f64 {
        s.iter()
            .filter(|x| {
                x.name == "convoy_errors_total"
                    && x.labels.get("cause").map(String::as_str) == Some(cause)
            })
            .map(|x| x.value)
            .sum()
    };
    let finished = |s: &[Sample]| value(s, "convoy_run_finished", &[]) == 1.0;
    // Both causes are visible while the run is still going, not only in
    // the final figures.
    assert!(
        scrapes
            .iter()
            .any(|s| !finished(s) && errors(s, "status") > 0.0 && errors(s, "timeout") > 0.0),
        "no scrape during the run saw both causes"
    );
    // Every cause is a series, at 0 when it never happened.
    let last = scrapes.last().unwrap();
    assert!(finished(last));
    assert_eq!(
        value(last, "convoy_errors_total", &[("cause", "refused")]),
        0.0
    );
    // The final figures by cause are the report's.
    let report = read(&report_path);
    let transport: u64 = report.overall.error_counts.values().sum();
    let timeouts = report
        .overall
        .error_counts
        .get(&convoy::metrics::ErrorCause::Timeout)
        .copied()
        .unwrap_or(0);
    assert!(timeouts > 0);
    assert_eq!(errors(last, "timeout"), timeouts as f64);
    assert_eq!(
        errors(last, "status"),
        (report.overall.errors - transport) as f64
    );
    let fivexx: u64 = ["500", "503"]
        .iter()
        .filter_map(|c| report.overall.status_counts.get(*c))
        .sum();
    assert!(fivexx > 0);
    assert_eq!(errors(last, "status"), fivexx as f64);
}

/// The metric names a PromQL expression reads (those of convoy).
fn convoy_metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("convoy_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

fn assert_emitted(expr: &str, origin: &str) {
    let names = convoy_metrics_in(expr);
    assert!(!names.is_empty(), "{origin}: {expr} reads no convoy metric");
    for name in names {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| *f == "convoy_request_duration_seconds")
            .unwrap_or(&name);
        assert!(
            convoy::live::render::METRIC_NAMES.contains(&family),
            "{origin}: {expr} reads {name}, which the exporter does not write"
        );
    }
}

/// Where a panel turns red, in the metric's base unit (seconds for a
/// latency, a fraction for a rate), whatever unit the panel displays.
fn alert_threshold(panel: &serde_json::Value) -> f64 {
    let defaults = &panel["fieldConfig"]["defaults"];
    let steps = defaults["thresholds"]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no thresholds", panel["title"]));
    let red = steps
        .iter()
        .find(|s| s["color"] == "red")
        .unwrap_or_else(|| panic!("{}: no red threshold", panel["title"]));
    let value = red["value"].as_f64().unwrap();
    match defaults["unit"].as_str() {
        Some("s" | "percentunit") => value,
        Some("ms") => value / 1000.0,
        Some("percent") => value / 100.0,
        other => panic!("{}: unexpected unit {other:?}", panel["title"]),
    }
}

#[test]
fn the_grafana_dashboard_and_alerts_read_only_metrics_the_exporter_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/grafana");
    let text = std::fs::read_to_string(root.join("convoy-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let panels = dash["panels"].as_array().unwrap();
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"].as_str().unwrap();
            assert_emitted(e, title);
            // Every selector keeps to the chosen job and run.
            let selectors = e.matches("convoy_").count();
            assert_eq!(
                e.matches(r#"{job=~"$job",instance=~"$instance""#).count(),
                selectors,
                "{title}: {e}"
            );
            exprs.push(e.to_string());
        }
    }
    // A run is picked by its id (convoy_run_info's run_id), which selects
    // the exporter's instance within the job.
    let vars = dash["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))["query"]["query"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(var("job"), "label_values(convoy_run_info, job)");
    assert!(var("run_id").starts_with("label_values(convoy_run_info{job=~\"$job\"}, run_id)"));
    assert!(var("instance").contains("run_id=~\"$run_id\""));
    // The panels the issue asks for.
    for needle in [
        "convoy_requests_total",
        "convoy_errors_total",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "convoy_active_users",
        "convoy_dropped_total",
        "convoy_violations_total",
        "convoy_gate_passing",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(needle)),
            "no panel uses {needle}"
        );
    }

    // The panels named after an alert are coloured at its threshold, in the
    // panel's own unit: 5xx > 1 % (a fraction), p95 > 500 ms (seconds).
    let panel = |needle: &str| {
        panels
            .iter()
            .find(|p| {
                p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["expr"].as_str().unwrap().contains(needle))
            })
            .unwrap_or_else(|| panic!("no panel reads {needle}"))
    };
    assert_eq!(alert_threshold(panel("status_class=\"5xx\"")), 0.01);
    let p95 = panel("histogram_quantile(0.95");
    assert_eq!(alert_threshold(p95), 0.5);
    assert_ne!(
        p95["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"].as_str(),
        Some("off"),
        "a time series shows its threshold only with a thresholdsStyle"
    );
    assert!(
        p95["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
            .as_str()
            .is_some()
    );

    let text = std::fs::read_to_string(root.join("convoy-alerts.yml")).unwrap();
    let doc = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    let rules = doc["groups"][0]["rules"].as_vec().unwrap();
    let mut alerts = Vec::new();
    for r in rules {
        let e = r["expr"].as_str().unwrap();
        assert_emitted(e, r["alert"].as_str().unwrap());
        alerts.push(e.to_string());
    }
    // The seeds' thresholds: 5xx > 1 %, p95 > 500 ms, isolation > 0.
    assert!(
        alerts
            .iter()
            .any(|e| e.contains("5xx") && e.ends_with("> 0.01"))
    );
    assert!(
        alerts
            .iter()
            .any(|e| e.contains("histogram_quantile(0.95") && e.ends_with("> 0.5"))
    );
    assert!(
        alerts
            .iter()
            .any(|e| e.contains("tenant_isolation_violations") && e.ends_with("> 0"))
    );
}

/// Spawns the binary with metrics on `addr`; waits until they are served.
fn spawn_with_metrics(args: &[&str], addr: SocketAddr) -> Child {
    let mut child = command()
        .args(args)
        .args(["--metrics-addr", &addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the metrics endpoint never listened on {addr}");
}

/// Waits for `child` to exit; kills it and fails after `limit`, a bound
/// far above the run's length that only a hang can reach.
fn exits_within(mut child: Child, limit: Duration) -> std::process::Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "convoy was still running after {limit:?}: a metrics client held it\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_metrics_client_that_never_finishes_its_request_cannot_keep_convoy_running() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let addr = free_port();
    let url = format!("{}/health", t.base_url());
    let child = spawn_with_metrics(&["bench", &url, "-d", "2s", "-c", "2", "-q"], addr);
    // Half a request head, held open.
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metr").unwrap();
    // Requests pipelined by a client that never reads its answers.
    let mut greedy = TcpStream::connect(addr).unwrap();
    let many = "GET /metrics HTTP/1.1\r\nHost: convoy\r\n\r\n".repeat(2000);
    let _ = greedy.write_all(many.as_bytes());
    // An idle keep-alive connection that sent nothing at all.
    let _idle = TcpStream::connect(addr).unwrap();
    let out = exits_within(child, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop((half, greedy));
}

/// `histogram_quantile` as Prometheus computes it (promql's
/// `bucketQuantile`): the first bucket whose cumulative count reaches the
/// rank, linear interpolation inside it, from 0 for the first bucket.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let count = buckets.last().unwrap().1;
    let rank = q * count;
    let i = buckets.iter().position(|(_, c)| *c >= rank).unwrap();
    let (le, cumulative) = buckets[i];
    assert!(le.is_finite(), "the quantile lands in +Inf: {buckets:?}");
    let (lower, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    lower + (le - lower) * (rank - below) / (cumulative - below)
}

/// The `(le, cumulative count)` series of the histogram buckets matching
/// `labels`, summed over every other label (`sum by (le)`), ascending.
fn buckets_of(scrape: &[Sample], labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in scrape.iter().filter(|s| {
        s.name == "convoy_request_duration_seconds_bucket"
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    }) {
        let le: f64 = match s.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
    }
    let mut out: Vec<(f64, f64)> = by_le.into_values().collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The scraped histograms, read as the dashboard reads them, agree with
/// the report of the same run: p50, p95 and p99 within 5 %, per step and
/// over every request step; `convoy_run_info` names the run.
#[test]
fn histogram_quantiles_of_the_scrape_agree_with_the_report() {
    if no_reference_parser() {
        return;
    }
    let t = target::spawn(TargetConfig {
        worker_threads: 1,
        ..TargetConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        "[profile.live]\nusers = 4\nduration = \"3s\"\ngates = [\"error_rate < 1%\"]\n",
    )
    .unwrap();
    let addr = free_port();
    let out_dir = dir.path().join("out");
    let scrapes = scrape_convoy(
        &[
            "run",
            "health",
            "order-lifecycle",
            "--profile",
            "live",
            "--profiles",
            profiles.to_str().unwrap(),
            "--target",
            &t.base_url(),
            "--workers",
            "1",
            "-q",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        addr,
        "2s",
    );
    let report = read(&out_dir);
    let during = scrapes
        .iter()
        .find(|s| value(s, "convoy_run_finished", &[]) == 0.0 && !s.is_empty())
        .expect("a scrape while the run was going");
    let last = scrapes.last().unwrap();
    assert_eq!(value(last, "convoy_run_finished", &[]), 1.0);
    // The run is named from the first scrape on.
    for s in [during, last] {
        assert_eq!(
            value(
                s,
                "convoy_run_info",
                &[
                    ("run_id", report.run_id.as_str()),
                    ("scenario", "health, order-lifecycle")
                ]
            ),
            1.0
        );
    }
    let mut compared = 0;
    let mut worst: (f64, String) = (0.0, String::new());
    let overall = buckets_of(last, &[("kind", "request")]);
    let steps = report
        .steps
        .iter()
        .filter(|s| s.has_latency())
        .map(|s| {
            let kind = match s.kind {
                convoy::engine::StepKind::Request => "request",
                convoy::engine::StepKind::Journey => "journey",
                // Events and streams have histograms of their own; these
                // scenarios have none.
                k => panic!("{}: no {k:?} in the built-in scenarios", s.name),
            };
            (
                s,
                buckets_of(last, &[("step", s.name.as_str()), ("kind", kind)]),
            )
        })
        .chain([(&report.overall, overall)]);
    for (step, buckets) in steps {
        let l = &step.latency_ms;
        for (q, exact_ms) in [(0.5, l.p50), (0.95, l.p95), (0.99, l.p99)] {
            let prom_ms = histogram_quantile(q, &buckets) * 1000.0;
            let off = (prom_ms - exact_ms).abs() / exact_ms;
            if off > worst.0 {
                worst = (off, format!("{} p{}", step.name, q * 100.0));
            }
            assert!(
                off <= 0.05,
                "{} p{}: histogram_quantile {prom_ms:.4} ms, report {exact_ms:.4} ms ({:.1} % off)",
                step.name,
                q * 100.0,
                off * 100.0
            );
            compared += 1;
        }
    }
    assert!(compared >= 3 * 8, "{compared}");
    eprintln!(
        "{compared} quantiles compared; the worst, {}, is {:.2} % off",
        worst.1,
        worst.0 * 100.0
    );
}
