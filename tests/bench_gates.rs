//! `convoy bench -g/--gate`: the gate language of `convoy run`, judged on
//! the bench run, exit 1 when a gate fails (a bench at 100 % errors used to
//! exit 0), `CONVOY_ALLOW_HOST` read by bench as by run, and
//! `--metrics-addr` saying where it serves.

mod cli_support;

use std::process::Output;

use clap::Parser as _;
use cli_support::{MockApi, command, text};
use convoy::report::Report;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

/// A wiremock server answering every request to `/probe` with `status`.
struct Server(MockApi);

impl Server {
    fn answering(status: u16) -> Server {
        let api = MockApi::start();
        api.mount(
            Mock::given(path("/probe"))
                .respond_with(ResponseTemplate::new(status).set_body_string("{}")),
        );
        Server(api)
    }

    fn url(&self) -> String {
        format!("{}/probe", self.0.uri())
    }

    fn received(&self) -> usize {
        self.0.received().len()
    }
}

fn bench(args: &[&str]) -> Output {
    command()
        .arg("bench")
        .args(args)
        .args(["-q", "-c", "2"])
        .output()
        .unwrap()
}

fn report(o: &Output) -> Report {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn an_error_rate_gate_fails_a_bench_of_errors_with_exit_1() {
    let server = Server::answering(422);
    let url = server.url();
    // Without a gate the run itself is the verdict: it ran, exit 0.
    let ungated = bench(&[&url, "-n", "40"]);
    assert_eq!(ungated.status.code(), Some(0), "{}", text(&ungated));

    let gated = bench(&[&url, "-n", "40", "-g", "error_rate < 1%", "--json"]);
    assert_eq!(gated.status.code(), Some(1), "{}", text(&gated));
    let r = report(&gated);
    assert_eq!(r.overall.requests, 40);
    assert_eq!(r.gates.len(), 1);
    assert_eq!(r.gates[0].expression, "error_rate < 1%");
    assert!(!r.gates[0].passed, "{:?}", r.gates[0]);
}

#[test]
fn passing_gates_exit_0_and_the_table_shows_them() {
    let server = Server::answering(200);
    let url = server.url();
    let o = bench(&[
        &url,
        "-n",
        "30",
        "--gate",
        "error_rate == 0%",
        "-g",
        "p99 < 30s",
        "-g",
        "step:\"GET /probe\" requests == 30",
        "-g",
        "rps > 0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("SLA gates"), "{table}");
    assert!(table.contains("step:\"GET /probe\" requests"), "{table}");
    assert!(table.contains("PASSED: all 4 gates passed"), "{table}");
}

#[test]
fn a_gate_on_a_step_bench_does_not_have_fails_with_the_reason() {
    let server = Server::answering(200);
    let o = bench(&[
        &server.url(),
        "-n",
        "10",
        "-g",
        "step:\"create order\" p95 < 1s",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert!(!r.gates[0].passed);
    assert!(
        r.gates[0].actual_display.contains("no such step"),
        "{:?}",
        r.gates[0]
    );
}

#[test]
fn bad_and_baseline_gates_are_refused_before_any_request() {
    let server = Server::answering(200);
    let url = server.url();
    for (gate, says) in [
        ("p95 <", "invalid gate \"p95 <\""),
        ("latency < 1s", "invalid gate \"latency < 1s\""),
        ("p95 <= baseline * 1.10", "does not take"),
    ] {
        let o = bench(&[&url, "-n", "10", "-g", gate]);
        assert_eq!(o.status.code(), Some(3), "{gate}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{gate}: {}",
            text(&o)
        );
    }
    assert_eq!(server.received(), 0, "a refused gate sends nothing");
}

/// `convoy bench`'s arguments as convoy reads them.
#[derive(clap::Parser)]
struct BenchCommand {
    #[command(flatten)]
    bench: convoy::cli::bench::BenchArgs,
}

#[test]
fn convoy_allow_host_allows_bench_load_as_it_does_for_run() {
    let url: url::Url = "https://staging.example.com/api/orders".parse().unwrap();
    let parse = |env: Option<&str>| {
        // The parse happens in this process, with the variable set only
        // here. The other tests of this binary spawn convoy against
        // loopback, which is allowed whatever the variable says.
        // SAFETY: std's own environment lock orders this with their spawns;
        // no C code of this binary reads the environment.
        unsafe {
            match env {
                Some(v) => std::env::set_var("CONVOY_ALLOW_HOST", v),
                None => std::env::remove_var("CONVOY_ALLOW_HOST"),
            }
        }
        let args = BenchCommand::try_parse_from(["bench", url.as_str(), "-d", "10s"])
            .unwrap()
            .bench;
        unsafe { std::env::remove_var("CONVOY_ALLOW_HOST") };
        args.allow_hosts
    };
    let none = parse(None);
    assert!(convoy::safety::check_target(&url, true, &none).is_err());
    let allowed = parse(Some("other.example.com,https://staging.example.com/"));
    assert_eq!(
        allowed,
        ["other.example.com", "https://staging.example.com/"]
    );
    assert!(
        convoy::safety::check_target(&url, true, &allowed).is_ok(),
        "{allowed:?}"
    );
}

#[test]
fn metrics_addr_says_where_the_metrics_are_served() {
    let server = Server::answering(200);
    let o = bench(&[&server.url(), "-n", "5", "--metrics-addr", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let url = err
        .lines()
        .find_map(|l| l.strip_prefix("convoy: live metrics on "))
        .unwrap_or_else(|| panic!("no metrics URL: {}", text(&o)));
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/metrics"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{url}"));
    assert_ne!(port, 0, "the bound port, not the one asked for");
}
