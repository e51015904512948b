//! `convoy bench URL`: the oha/hey-style ad-hoc mode.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;

use super::{CliError, signals};
use crate::bench::{self, BenchPlan, RequestSpec};
use crate::engine::http::preflight;
use crate::engine::{EngineOptions, RunControl, WatchPolicy};
use crate::plan::{
    ClosedModel, HttpOptions, HttpVersion, LoadModel, OpenModel, Ramp, Rate, parse_duration,
    parse_stages,
};
use crate::progress::Progress;
use crate::redact::redact_url;
use crate::report::{self, Report, RunMeta};

/// From this many connections on, each gets a small fixed read buffer.
const SMALL_BUFFERS_FROM: u32 = 1000;

/// Largest `--body-file` accepted. The body is held in memory and sent
/// with every request; a bigger one is almost surely the wrong file (or
/// `/dev/zero`), refused before it exhausts memory.
pub const MAX_BODY_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Arguments of `convoy bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct BenchArgs {
    /// The URL to request.
    pub url: String,
    /// Concurrent connections (virtual users); with --rate, the most
    /// requests in flight.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: u32,
    /// Run for this long (e.g. 10s, 1m). Default: -n 200 when neither is given.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Send this many requests in total.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Open model: start requests at this rate (500/s, 30/m), whatever the
    /// target's latency. Latency then counts from each request's scheduled
    /// start. With --stages, the rate the first stage ramps from (k6's
    /// startRate): `--rate 0/s` ramps from zero.
    // Hyphen values are taken so that `--rate -5/s` is refused as a bad
    // rate rather than read as an unknown flag `-5`.
    #[arg(long, value_parser = clap::value_parser!(Rate), allow_hyphen_values = true)]
    pub rate: Option<Rate>,
    /// Staged plan: `USERS,DURATION;...` (closed; users ramp from 0) or,
    /// with --rate, `RATE,DURATION;...` (e.g. `100/s,30s;500/s,1m`; the rate
    /// ramps from --rate), moving linearly to each stage's target over its
    /// duration. The run lasts the stages' total unless -d is longer.
    #[arg(long)]
    pub stages: Option<String>,
    /// Closed model: ramp users linearly from 0 to -c over this long before
    /// holding for --duration.
    #[arg(long, value_parser = parse_duration)]
    pub ramp_up: Option<Duration>,
    /// Open model: an arrival that cannot start within this delay of its
    /// scheduled time is counted as dropped. Late arrivals may still start
    /// after the schedule ends, so a saturated run can last up to its
    /// duration plus this delay; arrivals still waiting when it ends count
    /// as dropped.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub max_lag: Duration,
    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Extra header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(short = 'b', long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from a file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Time allowed for one whole request.
    #[arg(short = 't', long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Time allowed to connect.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub connect_timeout: Duration,
    /// HTTP version.
    #[arg(long = "http", default_value = "1.1", value_parser = super::http_version_parser())]
    pub http_version: HttpVersion,
    /// Accept invalid TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    /// Allow load against this host (repeatable, or comma-separated in
    /// CONVOY_ALLOW_HOST; a pasted URL counts as its host). Loopback is
    /// always allowed; any other host must be named here.
    #[arg(long = "allow-host", env = "CONVOY_ALLOW_HOST", value_delimiter = ',')]
    pub allow_hosts: Vec<String>,
    /// SLA gate on the run, in `convoy run`'s language (repeatable), e.g.
    /// 'p95 < 200ms', 'error_rate < 1%', 'rps >= 500'. A failed gate
    /// exits 1. The request's step is named `METHOD /path`.
    #[arg(short = 'g', long = "gate")]
    pub gates: Vec<String>,
    /// Read at most this many bytes of each response body.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_body: usize,
    /// Time requests in flight get to finish when the run ends.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub graceful_stop: Duration,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Run shard I of N (`0/4`): a deterministic 1/N slice of the load, to
    /// be merged with `convoy merge`.
    #[arg(long)]
    pub shard: Option<crate::plan::Shard>,
    /// The commit or version under test, recorded in the report so `convoy
    /// history` can name it (default: $GITHUB_SHA or $CI_COMMIT_SHA).
    #[arg(long, env = "CONVOY_COMMIT", value_name = "REV")]
    pub commit: Option<String>,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// No progress display.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub metrics: super::run::MetricsOpts,
}

impl BenchArgs {
    /// Validates the arguments into a plan.
    pub fn plan(&self) -> Result<BenchPlan, CliError> {
        let url: url::Url = self.url.parse().map_err(|e| {
            let shown = crate::redact::redact_typed(&self.url);
            CliError::usage(format!("invalid URL {shown:?}: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CliError::usage(format!(
                "invalid URL {:?}: the scheme must be http or https",
                redact_url(&url)
            )));
        }
        let method: http::Method = self
            .method
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| CliError::usage(format!("invalid method {:?}", self.method)))?;
        let mut headers = http::HeaderMap::new();
        for h in &self.headers {
            // A header's value is never quoted back: it may be a credential.
            let shown = || crate::redact::header_for_error(h);
            let (name, value) = h.split_once(':').ok_or_else(|| {
                CliError::usage(format!(
                    "invalid header {}: expected 'Name: value'",
                    shown()
                ))
            })?;
            let name: http::HeaderName = name
                .trim()
                .parse()
                .map_err(|_| CliError::usage(format!("invalid header name in {}", shown())))?;
            let value: http::HeaderValue = value
                .trim()
                .parse()
                .map_err(|_| CliError::usage(format!("invalid header value for {name}")))?;
            headers.append(name, value);
        }
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => Bytes::from(b.clone()),
            (None, Some(p)) => Bytes::from(read_body_file(p)?),
            (None, None) => Bytes::new(),
        };
        if self.connections == 0 {
            return Err(CliError::usage("-c/--connections must be at least 1"));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(CliError::usage("-d/--duration must be above 0 (e.g. 10s)"));
        }
        if self.requests == Some(0) {
            return Err(CliError::usage("-n/--requests must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(CliError::usage(
                "-t/--timeout must be above 0: every request would time out",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(CliError::usage(
                "--connect-timeout must be above 0: no connection could be made",
            ));
        }
        let mut model = self.model()?;
        model
            .validate()
            .map_err(|e| CliError::usage(e.to_string()))?;
        if let Some(shard) = &self.shard {
            model = model
                .shard_checked(shard)
                .map_err(|e| CliError::usage(e.to_string()))?;
        }
        // Each user holds a connection: refuse what this machine cannot
        // hold before anything is allocated for it.
        let what = if self.stages.is_some() && self.rate.is_none() {
            "--stages (its peak users)"
        } else {
            "-c/--connections"
        };
        crate::engine::limits::ConnectionCap::here(crate::engine::limits::PerUser::ONE)
            .check(u64::from(model.max_users()), what)
            .map_err(CliError::usage)?;
        let mut engine = EngineOptions {
            graceful_stop: self.graceful_stop,
            target_watch: Some(WatchPolicy::BENCH),
            ..EngineOptions::default()
        };
        if let Some(w) = self.workers {
            if w == 0 {
                return Err(CliError::usage("--workers must be at least 1"));
            }
            engine.workers = w;
        }
        if let Some(shard) = &self.shard {
            engine.vu_offset = shard.index as u64;
            engine.vu_stride = shard.count as u64;
        }
        Ok(BenchPlan {
            request: RequestSpec {
                method,
                url,
                headers,
                body,
            },
            model,
            http: HttpOptions {
                connect_timeout: self.connect_timeout,
                timeout: self.timeout,
                version: self.http_version,
                insecure: self.insecure,
                max_body_bytes: self.max_body,
                // Thousands of mostly idle connections: memory per
                // connection matters more than big reads.
                small_buffers: self.connections >= SMALL_BUFFERS_FROM,
            },
            engine,
        })
    }

    fn model(&self) -> Result<LoadModel, CliError> {
        let bad = |e: crate::plan::PlanError| CliError::usage(e.to_string());
        let c = self.connections as f64;
        if let Some(rate) = self.rate {
            let ramp = match (&self.stages, self.duration, self.requests) {
                // As k6's ramping-arrival-rate: --rate is the start rate.
                (Some(s), _, _) => Ramp {
                    start: rate.0,
                    stages: parse_stages(s, true).map_err(bad)?,
                },
                (None, Some(d), _) => Ramp::constant(rate.0, d),
                (None, None, Some(n)) => {
                    if rate.0 <= 0.0 {
                        return Err(CliError::usage("--rate must be above 0"));
                    }
                    Ramp::constant(rate.0, Duration::from_secs_f64(n as f64 / rate.0))
                }
                (None, None, None) => {
                    return Err(CliError::usage(
                        "--rate needs -d/--duration, -n/--requests or --stages",
                    ));
                }
            };
            return Ok(LoadModel::Open(OpenModel {
                rate: ramp,
                max_in_flight: self.connections,
                max_lag: self.max_lag,
                total_iterations: self.requests,
            }));
        }
        let users = match (&self.stages, self.ramp_up) {
            (Some(s), _) => Ramp {
                start: 0.0,
                stages: parse_stages(s, false).map_err(bad)?,
            },
            (None, Some(r)) => {
                let mut ramp = Ramp {
                    start: 0.0,
                    stages: vec![crate::plan::Stage {
                        target: c,
                        duration: r,
                    }],
                };
                if let Some(d) = self.duration {
                    ramp.stages.push(crate::plan::Stage {
                        target: c,
                        duration: d,
                    });
                }
                ramp
            }
            (None, None) => Ramp::constant(c, Duration::ZERO),
        };
        let requests = match (self.duration, self.requests, &self.stages) {
            (None, None, None) => Some(200),
            _ => self.requests,
        };
        let duration = match (self.ramp_up, self.duration, &self.stages) {
            (Some(r), Some(d), _) => Some(r + d),
            // Stages bound the run by their total, even a single one.
            (_, None, Some(_)) => Some(users.duration()),
            (_, d, _) => d,
        };
        Ok(LoadModel::Closed(ClosedModel {
            users,
            iterations_per_user: None,
            total_iterations: requests,
            duration,
        }))
    }
}

/// Runs `convoy bench`.
/// Reads `--body-file`, refusing one larger than [`MAX_BODY_FILE_BYTES`].
fn read_body_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let bytes = crate::scenario::parse::read_bounded(path, MAX_BODY_FILE_BYTES)
        .map_err(|e| CliError::usage(format!("cannot read body file {}: {e}", path.display())))?;
    if bytes.len() > MAX_BODY_FILE_BYTES {
        return Err(CliError::usage(format!(
            "body file {} is larger than {} MiB ({MAX_BODY_FILE_BYTES} bytes), the limit for --body-file",
            path.display(),
            MAX_BODY_FILE_BYTES / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

pub fn run(args: BenchArgs) -> Result<ExitCode, CliError> {
    let mut plan = args.plan()?;
    let gates = parse_gates(&args.gates)?;
    if let Some(path) = &args.output {
        super::run::check_output_file(path, "-o/--output")?;
    }
    crate::safety::check_target(&plan.request.url, !plan.model.is_smoke(), &args.allow_hosts)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let target = format!("{} {}", plan.request.method, redact_url(&plan.request.url));
    // Named before the run: the live metrics carry it from the first scrape.
    let run_id = report::new_run_id(std::time::SystemTime::now());
    let info = crate::live::RunInfo {
        command: "bench".into(),
        shard: args.shard.map(|s| s.to_string()).unwrap_or_default(),
        run_id: run_id.clone(),
        ..Default::default()
    };
    let exporter = args.metrics.start(info, &gates)?;
    plan.engine.live_snapshots = exporter.is_some();
    // Watched from before the preflight: a SIGTERM then ends the run at
    // once, with its (empty) partial report and exit 5.
    let control = RunControl::new();
    let signals = signals::install(control.clone(), args.quiet);
    preflight(&plan.request.url, plan.http.connect_timeout)
        .map_err(super::run::preflight_failed)?;
    let progress = Progress::new(!args.quiet && !args.json);
    let result = bench::run(&plan, &control, |s| {
        progress.update(s);
        if let Some(e) = &exporter {
            e.observe(s);
        }
    })
    .map_err(super::run::engine_failed)?;
    progress.finish();
    if let Some(e) = &exporter {
        e.finish(&result);
    }
    let mut meta = RunMeta::new("bench", &target);
    meta.run_id = Some(run_id);
    meta.shard = args.shard;
    meta.commit = super::history::commit_under_test(args.commit.as_deref());
    let mut report = Report::new(&result, meta);
    report.gates = crate::gate::evaluate(&gates, &report, None);
    report.scrub(&bench_secrets(&plan.request));
    if args.json {
        crate::out!("{}", report::json::render(&report));
    } else {
        // -q keeps the table and drops the histogram, as oha's does.
        let opts = report::text::TextOptions {
            width: super::console::width(),
            histogram: !args.quiet,
        };
        crate::out!("{}", report::text::render_with(&report, opts));
    }
    // After the summary: a file that cannot be written (a full disk) must
    // not take the table with it.
    if let Some(path) = &args.output {
        std::fs::write(path, report::json::render(&report))
            .map_err(|e| super::run::write_failed(path, &e))?;
    }
    if let Some(e) = exporter {
        signals.linger(e, args.metrics.metrics_linger);
    }
    // The rule every command applies (`exit.rs`): what stopped it from
    // measuring first, then the -g gates (exit 1); bench has no checks.
    let outcome = super::exit::Outcome::of(&report);
    if outcome.target_down {
        crate::errln!("error: {}", target_down_note(&report.overall));
    } else if let Some(note) = super::exit::local_failure_note(&report) {
        crate::errln!("error: {note}");
    } else if outcome.never_reached && !outcome.interrupted {
        crate::errln!("error: target unreachable: no request got a response");
    }
    Ok(outcome.exit().into())
}

/// `-g/--gate` parsed; a gate against a baseline is refused: bench has no
/// `--baseline`, so it could only fail.
fn parse_gates(texts: &[String]) -> Result<Vec<crate::gate::Gate>, CliError> {
    texts
        .iter()
        .map(|g| {
            let gate = g
                .parse::<crate::gate::Gate>()
                .map_err(|e| CliError::usage(format!("invalid gate {g:?}: {e}")))?;
            if gate.needs_baseline() {
                return Err(CliError::usage(format!(
                    "gate {g:?} compares with a baseline, which `convoy bench` does not take: \
                     save the run with -o FILE and judge it with `convoy report FILE --gate ... --baseline BASE`"
                )));
            }
            Ok(gate)
        })
        .collect()
}

/// What a bench request sends as credentials: the URL's user info, its
/// sensitive query values and its sensitive headers' values.
fn bench_secrets(r: &crate::bench::RequestSpec) -> crate::redact::Secrets {
    let secrets = crate::redact::Secrets::new();
    if let Some(p) = r.url.password() {
        secrets.add(p);
        if let Ok(p) = urlencoding_decode(p) {
            secrets.add(&p);
        }
    }
    let origin = match r.url.query() {
        Some(q) => format!("{}?{q}", r.url.path()),
        None => r.url.path().to_string(),
    };
    secrets.learn_request(&origin, &r.headers);
    secrets
}

/// A percent-encoded URL part decoded.
fn urlencoding_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

/// What to say when the target died mid-run: how many requests it
/// answered, and that the refused connects after it are counted apart.
fn target_down_note(o: &crate::report::StepReport) -> String {
    let answered: u64 = o.status_counts.values().sum();
    let refused = o
        .error_counts
        .get(&crate::metrics::ErrorCause::Refused)
        .copied()
        .unwrap_or(0);
    format!(
        "the target stopped accepting connections; the run was aborted and its report is partial: \
         {answered} requests answered, {refused} connection attempts refused after it died \
         (counted apart under error cause `refused`: not requests, errors or throughput)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Exit;
    use clap::Parser;

    /// `convoy bench ARGS...` as clap reads it.
    #[derive(clap::Parser)]
    struct Bench {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(args: &[&str]) -> Result<BenchPlan, CliError> {
        let argv = ["bench", "http://127.0.0.1:1/"].iter().chain(args);
        Bench::try_parse_from(argv)
            .expect("arguments parse")
            .args
            .plan()
    }

    fn body_file_of(len: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body.json");
        // Sparse: no disk is written for the zeros.
        std::fs::File::create(&path).unwrap().set_len(len).unwrap();
        (dir, path)
    }

    #[test]
    fn a_single_closed_stage_runs_for_its_duration() {
        let plan = plan(&["--stages", "10,1s"]).expect("accepted");
        assert_eq!(plan.model.planned_duration(), Some(Duration::from_secs(1)));
        assert_eq!(plan.model.max_users(), 10);
    }

    #[test]
    fn staged_rates_ramp_from_the_given_rate() {
        let staged = plan(&["--rate", "999/s", "--stages", "50/s,1s"]).expect("accepted");
        let LoadModel::Open(o) = &staged.model else {
            panic!("open model expected: {:?}", staged.model)
        };
        assert_eq!(o.rate.start, 999.0);
        // (999 + 50) / 2 arrivals over the one second.
        assert_eq!(o.rate.total_arrivals(), 524.5);
        let from_zero = plan(&["--rate", "0/s", "--stages", "50/s,1s"]).expect("accepted");
        let LoadModel::Open(o) = &from_zero.model else {
            panic!("open model expected")
        };
        assert_eq!(o.rate.start, 0.0);
        assert_eq!(o.rate.total_arrivals(), 25.0);
    }

    #[test]
    fn zero_durations_counts_and_timeouts_are_refused_naming_the_flag() {
        for (args, flag) in [
            (&["-d", "0s"][..], "--duration"),
            (&["-n", "0"][..], "--requests"),
            (&["--timeout", "0s"][..], "--timeout"),
            (&["--connect-timeout", "0ms"][..], "--connect-timeout"),
            (&["--rate", "100/s", "-d", "0s"][..], "--duration"),
        ] {
            let e = plan(args).expect_err("refused");
            assert_eq!(e.exit, Exit::Usage, "{args:?}");
            assert!(e.message.contains(flag), "{args:?}: {e}");
        }
    }

    #[test]
    fn a_negative_rate_is_refused_as_a_rate() {
        let e = Bench::try_parse_from(["bench", "http://127.0.0.1:1/", "--rate", "-5/s"])
            .err()
            .expect("refused");
        let text = e.to_string();
        assert!(text.contains("invalid rate \"-5/s\""), "{text}");
        assert!(!text.contains("unexpected argument"), "{text}");
    }

    #[test]
    fn a_body_file_at_the_limit_is_sent() {
        let (_dir, path) = body_file_of(MAX_BODY_FILE_BYTES as u64);
        let plan = plan(&["--body-file", path.to_str().unwrap()]).expect("accepted");
        assert_eq!(plan.request.body.len(), MAX_BODY_FILE_BYTES);
    }

    #[test]
    fn a_body_file_over_the_limit_is_refused_naming_it_and_the_limit() {
        let (_dir, path) = body_file_of(MAX_BODY_FILE_BYTES as u64 + 1);
        let e = plan(&["--body-file", path.to_str().unwrap()]).expect_err("refused");
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains(&path.display().to_string()), "{e}");
        assert!(e.message.contains("16 MiB"), "{e}");
        assert!(e.message.contains("--body-file"), "{e}");
    }

    #[test]
    fn a_missing_body_file_is_named() {
        let e = plan(&["--body-file", "/nonexistent/body.json"]).expect_err("refused");
        assert!(
            e.message
                .contains("cannot read body file /nonexistent/body.json"),
            "{e}"
        );
    }
}
