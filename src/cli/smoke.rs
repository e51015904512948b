//! `convoy smoke [SCENARIO…] [--target URL]`: the post-deploy gate. Every
//! journey runs once; each check is listed pass or fail; any failure exits
//! non-zero. `--wait-healthy 60s` polls the health endpoint first, so the
//! gate can run right after a deploy starts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::run::{
    TargetOpts, check_output_file, check_writable, finish, load_scenarios, reports_dir,
    write_failed,
};
use super::signals::{self, Phase, Signals};
use super::{CliError, Exit};
use crate::engine::http::preflight;
use crate::engine::{EngineOptions, RunControl, RunResult, StopReason, WatchPolicy};
use crate::gate::{self, Gate};
use crate::plan::parse_duration;
use crate::redact::redact_url;
use crate::report::{self, Report, RunMeta};
use crate::scenario::{CustomRegistry, ScenarioWorkload};

/// Arguments of `convoy smoke`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct SmokeArgs {
    /// Scenario files or built-in names (default: every built-in scenario).
    pub scenarios: Vec<String>,
    #[command(flatten)]
    pub target: TargetOpts,
    /// Poll the health endpoint until it answers 200, for at most this long.
    #[arg(long, value_parser = parse_duration)]
    pub wait_healthy: Option<Duration>,
    /// The health endpoint polled by --wait-healthy.
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// Stop at the first journey that fails.
    #[arg(long)]
    pub fail_fast: bool,
    /// Also write the JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Where to write the reports (default: reports/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write no report files.
    #[arg(long)]
    pub no_reports: bool,
    /// Print the JSON report on stdout instead of the listing.
    #[arg(long)]
    pub json: bool,
    /// Print only failures.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `convoy smoke`.
pub fn run(args: SmokeArgs) -> Result<ExitCode, CliError> {
    args.target.validate()?;
    let scenarios = load_scenarios(&args.scenarios)?;
    if !args.no_reports {
        check_writable(&reports_dir(args.out.as_deref()))?;
    }
    if let Some(path) = &args.junit {
        check_output_file(path, "--junit")?;
    }
    let (url, _embedded) = args.target.resolve(args.quiet || args.json)?;
    crate::safety::check_load(
        &url,
        &crate::profile::smoke_bound(&scenarios),
        &args.target.allow_hosts,
    )
    .map_err(|e| CliError::usage(e.to_string()))?;
    let http = args.target.http();
    let control = RunControl::new();
    let signals = signals::install(control.clone(), args.quiet);
    if let Some(limit) = args.wait_healthy {
        signals.set_phase(Phase::WaitHealthy);
        wait_healthy(&url, &args.health_path, limit, &http, args.quiet, &signals)?;
        signals.set_phase(Phase::Load);
    }
    preflight(&url, http.connect_timeout).map_err(super::run::preflight_failed)?;
    let model = crate::profile::builtin("smoke")
        .expect("smoke is built in")
        .model;
    let names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    // One secret set for every journey: the first journey's output is
    // scrubbed of the last one's passwords too.
    let secrets = crate::redact::Secrets::new();
    for s in &scenarios {
        secrets.extend(&s.secrets);
    }
    let mut results = Vec::new();
    for s in scenarios {
        let name = s.name.clone();
        let workload =
            ScenarioWorkload::new(vec![s], Some(&url), http.clone(), CustomRegistry::new())
                .map_err(CliError::usage)?
                .with_secrets(&secrets);
        let options = EngineOptions {
            workers: 1,
            graceful_stop: Duration::from_secs(30),
            // One control for every journey: what the target answered in
            // one is remembered in the next.
            target_watch: Some(WatchPolicy::SMOKE),
            ..EngineOptions::default()
        };
        let r = Arc::new(workload)
            .run(&model, &options, &control, |_| {})
            .map_err(super::run::engine_failed)?;
        let failed = r.check_failures() > 0;
        if !args.json {
            print_listing(&name, &r, args.quiet, &secrets);
        }
        results.push(r);
        if (failed && args.fail_fast) || control.is_stopping() {
            break;
        }
    }
    let result = concat(results);
    let mut meta = RunMeta::new("smoke", &redact_url(&url));
    meta.scenario = Some(names.join(", "));
    meta.profile = Some("smoke".into());
    let mut report = Report::new(&result, meta);
    let gates: Vec<Gate> = vec!["checks == 100%".parse().expect("a valid gate")];
    report.gates = gate::evaluate(&gates, &report, None);
    report.scrub(&secrets);
    // The summary first: a JUnit file that cannot be written (a full disk)
    // must not take the listing with it.
    let code = finish(&report, args.out.as_deref(), args.no_reports, args.json);
    if let Some(path) = &args.junit {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| write_failed(dir, &e))?;
        }
        std::fs::write(path, report::junit::render(&report)).map_err(|e| write_failed(path, &e))?;
    }
    code
}

fn print_listing(journey: &str, r: &RunResult, quiet: bool, secrets: &crate::redact::Secrets) {
    let failed = r.check_failures();
    if !quiet || failed > 0 {
        crate::outln!("{} {journey}", if failed == 0 { "PASS" } else { "FAIL" });
    }
    for c in &r.checks {
        let ok = c.stats.failures == 0;
        if quiet && ok {
            continue;
        }
        let evaluated = c.stats.passes + c.stats.failures > 0;
        let mark = match (ok, evaluated) {
            (true, true) => "  ok  ",
            (true, false) => "  --  ",
            (false, _) => "  FAIL",
        };
        let line = format!("{} · {}", c.info.step, c.info.name);
        crate::outln!("{mark} {}", secrets.scrub(&line));
    }
    for f in &r.failures {
        let line = format!("{} · {}: {}", f.step, f.check, f.message);
        crate::outln!("         {}", secrets.scrub(&line));
    }
}

/// One result holding every journey's steps and checks side by side.
fn concat(results: Vec<RunResult>) -> RunResult {
    let mut it = results.into_iter();
    let mut all = it.next().expect("at least one scenario ran");
    for r in it {
        all.steps.extend(r.steps);
        all.checks.extend(r.checks);
        all.iterations += r.iterations;
        all.dropped += r.dropped;
        all.interrupted += r.interrupted;
        all.ended_at = r.ended_at;
        all.duration_secs += r.duration_secs;
        for (k, v) in r.violations {
            *all.violations.entry(k).or_insert(0) += v;
        }
        all.failures.extend(r.failures);
        // The last journey that ran tells why the smoke ended early, if it
        // did (a journey after a stop never starts).
        if r.stop_reason != StopReason::Completed {
            all.stop_reason = r.stop_reason;
        }
        all.timeline.merge(&r.timeline);
    }
    all
}

/// Polls `path` until it answers 200 or `limit` passes; a signal stops
/// the wait at once, with exit 5. `convoy run --wait-healthy` uses it too.
pub(super) fn wait_healthy(
    url: &url::Url,
    path: &str,
    limit: Duration,
    http: &crate::plan::HttpOptions,
    quiet: bool,
    signals: &Signals,
) -> Result<(), CliError> {
    let health = url
        .join(path)
        .map_err(|e| CliError::usage(format!("invalid --health-path {path:?}: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| super::run::engine_failed(e.into()))?;
    let client = crate::engine::http::HttpClient::new(http).map_err(super::run::engine_failed)?;
    let endpoint = crate::engine::http::Endpoint::from_url(&health).map_err(CliError::usage)?;
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    if !quiet {
        crate::errln!(
            "convoy: waiting up to {} for {} to answer 200",
            crate::plan::format_duration(limit),
            redact_url(&health)
        );
    }
    let interrupted = |last: &str| CliError {
        exit: Exit::Interrupted,
        message: format!(
            "interrupted while waiting for {} to become healthy (last: {last}): no journey ran and no report was written",
            redact_url(&health)
        ),
    };
    while start.elapsed() < limit {
        if signals.count() > 0 {
            return Err(interrupted(&last));
        }
        let mut conn = crate::engine::http::Connection::new();
        let mut req = http::Request::new(crate::engine::http::RequestBody::default());
        *req.uri_mut() = crate::engine::http::origin_form(&health);
        let attempt = rt.block_on(async {
            let poll = tokio::time::timeout(
                Duration::from_secs(5),
                client.send(&mut conn, &endpoint, req),
            );
            // A signal ends the attempt too, within a tenth of a second.
            let signalled = async {
                while signals.count() == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::select! {
                r = poll => Some(r),
                _ = signalled => None,
            }
        });
        match attempt {
            None => return Err(interrupted(&last)),
            Some(Ok(Ok(r))) if r.status == 200 => return Ok(()),
            Some(Ok(Ok(r))) => last = format!("status {}", r.status),
            Some(Ok(Err(f))) => last = f.to_string(),
            Some(Err(_)) => last = "no answer within 5s".into(),
        }
        if signals.sleep(Duration::from_secs(1).min(limit.saturating_sub(start.elapsed()))) {
            return Err(interrupted(&last));
        }
    }
    Err(CliError::aborted(format!(
        "{} did not become healthy within {}: {last}",
        redact_url(&health),
        crate::plan::format_duration(limit)
    )))
}
