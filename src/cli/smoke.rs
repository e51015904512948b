//! `convoy smoke [SCENARIO…] [--target URL]`: the post-deploy gate. Every
//! journey runs once (or `--iterations N` times, to catch a fault that
//! shows some of the time); each check is listed pass or fail, a failed
//! one with the start of the answer that failed it; the run is gated by
//! `checks == 100%`, the scenarios' `gates` and `-g/--gate`, and exits by
//! the rule every command follows (`exit.rs`). `--wait-healthy 60s` polls
//! the health endpoint first, so the gate can run right after a deploy
//! starts.
//!
//! Each journey runs as a workload of its own (so `--fail-fast` can stop
//! between journeys), named as `convoy run` names the same journeys
//! together: a step name two journeys share is qualified with the
//! journey's, and the login metric and each identity's login check are one
//! row however many journeys log in.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::run::{
    Summary, TargetOpts, check_output_file, check_writable, finish, load_scenarios, reports_dir,
    write_failed,
};
use super::signals::{self, Phase, Signals};
use super::{CliError, Exit};
use crate::engine::http::preflight;
use crate::engine::{EngineOptions, RunControl, RunResult, StopReason, WatchPolicy};
use crate::gate::{self, Gate};
use crate::plan::{LoadModel, parse_duration};
use crate::redact::{Secrets, redact_url};
use crate::report::{self, Report, RunMeta};
use crate::scenario::runner::{LOGIN_METRIC, RunNames};
use crate::scenario::{CustomRegistry, ScenarioWorkload};
use crate::target_url::TargetUrl;

/// The gate every smoke has: every check passed.
const CHECKS_GATE: &str = "checks == 100%";

/// How much of a failed answer's body the listing shows; the reports keep
/// more (2 KiB), redacted the same way.
const BODY_PREVIEW_CHARS: usize = 240;

/// How many failure examples the listing shows per journey; the reports
/// keep the first 20 of the run.
const SHOWN_FAILURES: usize = 5;

/// Arguments of `convoy smoke`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct SmokeArgs {
    /// Scenario files or built-in names (default: every built-in scenario).
    pub scenarios: Vec<String>,
    #[command(flatten)]
    pub target: TargetOpts,
    /// Run every journey this many times, one after another, to catch a
    /// fault that shows some of the time. The smoke allowance (500
    /// requests to a host that is not loopback or --allow-host'ed) counts
    /// every repetition.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub iterations: u64,
    /// Extra SLA gate, e.g. 'p95 < 200ms' (repeatable); besides
    /// `checks == 100%` and the scenarios' own `gates`.
    #[arg(short, long = "gate", value_name = "EXPR")]
    pub gates: Vec<String>,
    /// Poll the health endpoint until it answers 200, for at most this long.
    #[arg(long, value_parser = parse_duration)]
    pub wait_healthy: Option<Duration>,
    /// The health endpoint polled by --wait-healthy, joined to the target
    /// as a step's path is (`--target https://h/api`: /api/health).
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// Stop at the first journey that fails.
    #[arg(long)]
    pub fail_fast: bool,
    /// The commit or version under test, recorded in the report so `convoy
    /// history` can name it (default: $GITHUB_SHA or $CI_COMMIT_SHA).
    #[arg(long, env = "CONVOY_COMMIT", value_name = "REV")]
    pub commit: Option<String>,
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
    /// Print only failures (and the summary).
    #[arg(short, long)]
    pub quiet: bool,
}

/// The gates of a smoke: `checks == 100%`, the scenarios' own, then the
/// command line's, each once.
fn smoke_gates(
    scenarios: &[crate::scenario::Scenario],
    extra: &[String],
) -> Result<Vec<Gate>, CliError> {
    let mut texts: Vec<String> = vec![CHECKS_GATE.to_string()];
    for g in scenarios.iter().flat_map(|s| s.gates.iter()).chain(extra) {
        if !texts.iter().any(|t| t.trim() == g.trim()) {
            texts.push(g.clone());
        }
    }
    let gates: Vec<Gate> = texts
        .iter()
        .map(|g| {
            g.parse::<Gate>()
                .map_err(|e| CliError::usage(format!("invalid gate {g:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if let Some(g) = gates.iter().find(|g| g.needs_baseline()) {
        return Err(CliError::usage(format!(
            "gate {:?} compares with a baseline, which convoy smoke has none of: use it with \
             convoy run --baseline FILE",
            g.expression
        )));
    }
    Ok(gates)
}

/// Runs `convoy smoke`.
pub fn run(args: SmokeArgs) -> Result<ExitCode, CliError> {
    args.target.validate()?;
    if args.iterations == 0 {
        return Err(CliError::usage(
            "--iterations must be at least 1: every journey runs that many times",
        ));
    }
    let scenarios = load_scenarios(&args.scenarios)?;
    let gates = smoke_gates(&scenarios, &args.gates)?;
    let names = RunNames::of(&scenarios).map_err(CliError::usage)?;
    if !args.no_reports {
        check_writable(&reports_dir(args.out.as_deref()))?;
    }
    if let Some(path) = &args.junit {
        check_output_file(path, "--junit")?;
    }
    let super::target_opts::Resolved {
        url,
        source,
        embedded: _embedded,
    } = args.target.resolve(&scenarios, args.quiet || args.json)?;
    // Before any request, the health poll's included: the repetitions count.
    crate::safety::check_load(
        &url,
        &crate::profile::smoke_bound(&scenarios, args.iterations),
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
    // One user: the journeys run one after another, each its iterations.
    let model = LoadModel::closed(1, args.iterations);
    let journey_names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    // One secret set for every journey: the first journey's output is
    // scrubbed of the last one's passwords too.
    let secrets = Secrets::new();
    for s in &scenarios {
        secrets.extend(&s.secrets);
    }
    let mut listing = Listing {
        quiet: args.quiet,
        iterations: args.iterations,
        logins_shown: HashSet::new(),
        width: super::console::width(),
        journeys: 0,
        failed: 0,
        printed: false,
    };
    let mut results = Vec::new();
    let mut ruled_out = Vec::new();
    for s in scenarios {
        let name = s.name.clone();
        let workload = ScenarioWorkload::named(
            vec![s],
            &names,
            Some(&url),
            http.clone(),
            CustomRegistry::new(),
        )
        .map_err(CliError::usage)?
        .with_secrets(&secrets);
        ruled_out.extend(workload.ruled_out_metrics());
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
            listing.print(&name, &r, &secrets);
        }
        results.push(r);
        if (failed && args.fail_fast) || control.is_stopping() {
            break;
        }
    }
    let result = concat(results);
    let mut meta = RunMeta::new("smoke", &redact_url(&url));
    meta.target_source = Some(source);
    meta.scenario = Some(journey_names.join(", "));
    meta.profile = Some("smoke".into());
    meta.commit = super::history::commit_under_test(args.commit.as_deref());
    let mut report = Report::new(&result, meta);
    report.rule_out(&ruled_out);
    report.gates = gate::evaluate(&gates, &report, None);
    report.scrub(&secrets);
    // The summary first: a JUnit file that cannot be written (a full disk)
    // must not take the listing with it.
    let tally = report::text::SmokeTally {
        journeys: listing.journeys,
        failed: listing.failed,
        iterations: args.iterations,
        listed: listing.printed,
    };
    let code = finish(
        &report,
        args.out.as_deref(),
        args.no_reports,
        args.json,
        Summary::Smoke(tally),
    );
    if let Some(path) = &args.junit {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| write_failed(dir, &e))?;
        }
        std::fs::write(path, report::junit::render(&report)).map_err(|e| write_failed(path, &e))?;
    }
    code
}

/// The check-by-check listing, journey after journey.
struct Listing {
    quiet: bool,
    iterations: u64,
    /// Login checks already shown passing: each identity's login is listed
    /// once, however many journeys log in as it (again only if it fails).
    logins_shown: HashSet<String>,
    /// The screen's width, when there is one: long lines wrap under their
    /// mark.
    width: Option<usize>,
    /// Journeys listed, and of those the ones with a failed check.
    journeys: usize,
    failed: usize,
    /// Whether any line was printed.
    printed: bool,
}

impl Listing {
    fn print(&mut self, journey: &str, r: &RunResult, secrets: &Secrets) {
        let failed = r.check_failures();
        self.journeys += 1;
        self.failed += usize::from(failed > 0);
        if !self.quiet || failed > 0 {
            self.line(&format!(
                "{} {journey}",
                if failed == 0 { "PASS" } else { "FAIL" }
            ));
        }
        for c in &r.checks {
            let ok = c.stats.failures == 0;
            if self.quiet && ok {
                continue;
            }
            if c.info.step == LOGIN_METRIC {
                let evaluated = c.stats.passes + c.stats.failures > 0;
                // A login this journey did not make, or one shown already.
                if ok && (!evaluated || !self.logins_shown.insert(c.info.name.clone())) {
                    continue;
                }
            }
            let evaluated = c.stats.passes + c.stats.failures > 0;
            let mark = match (ok, evaluated) {
                (true, true) => "  ok  ",
                (true, false) => "  --  ",
                (false, _) => "  FAIL",
            };
            let mut line = format!("{} · {}", c.info.step, c.info.name);
            if !ok && self.iterations > 1 {
                line += &format!(
                    " (failed {} of {})",
                    c.stats.failures,
                    c.stats.failures + c.stats.passes
                );
            }
            self.line(&format!("{mark} {}", secrets.scrub(&line)));
        }
        // One example of each failure (a repeated smoke fails alike many
        // times), the first few of them.
        let mut seen = HashSet::new();
        let distinct: Vec<_> = r
            .failures
            .iter()
            .filter(|f| seen.insert((&f.step, &f.check, &f.message)))
            .collect();
        for f in distinct.iter().take(SHOWN_FAILURES) {
            let line = format!("{} · {}: {}", f.step, f.check, f.message);
            self.line(&format!("         {}", secrets.scrub(&line)));
            if let Some(answer) = answer_preview(&f.response) {
                self.line(&format!("           answer: {}", secrets.scrub(&answer)));
            }
        }
        if r.failures.len() > SHOWN_FAILURES.min(distinct.len()) {
            self.line(&format!(
                "         … {} failure examples in all, in the reports",
                r.failures.len()
            ));
        }
    }

    /// Prints one line of the listing, wrapped to the screen.
    fn line(&mut self, text: &str) {
        self.printed = true;
        match self.width {
            Some(w) => {
                // Continuations start under the check's text, past the mark.
                for l in report::fit::wrap_hanging(text, w, 7) {
                    crate::outln!("{l}");
                }
            }
            None => crate::outln!("{text}"),
        }
    }
}

/// The status line and the start of the body of a failure sample's answer
/// (already redacted when it was kept), on one line: `HTTP 400 ·
/// {"error":"missing tenant header"}`. `None` when there was no answer
/// (the message says why).
fn answer_preview(response: &str) -> Option<String> {
    let status = response.lines().next().filter(|l| l.starts_with("HTTP "))?;
    let body = response
        .split_once("\n\n")
        .map(|(_, b)| b.trim())
        .unwrap_or("");
    if body.is_empty() {
        return Some(format!("{status} (empty body)"));
    }
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut shown: String = flat.chars().take(BODY_PREVIEW_CHARS).collect();
    if flat.chars().count() > BODY_PREVIEW_CHARS {
        shown.push('…');
    }
    Some(format!("{status} · {shown}"))
}

/// One result holding every journey's steps and checks side by side. A
/// metric or check two journeys share by name (the login metric, an
/// identity's login check) is one row, its measurements added.
fn concat(results: Vec<RunResult>) -> RunResult {
    let mut it = results.into_iter();
    let mut all = it.next().expect("at least one scenario ran");
    for r in it {
        for st in r.steps {
            match all.steps.iter_mut().find(|s| s.info == st.info) {
                Some(s) => s.stats.merge(&st.stats),
                None => all.steps.push(st),
            }
        }
        for c in r.checks {
            match all.checks.iter_mut().find(|x| x.info == c.info) {
                Some(x) => x.stats.merge(&c.stats),
                None => all.checks.push(c),
            }
        }
        all.iterations += r.iterations;
        all.dropped += r.dropped;
        all.interrupted += r.interrupted;
        all.auth_renewals += r.auth_renewals;
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

/// Polls `path` (joined to the target as a step's path is) until it
/// answers 200 or `limit` passes; a signal stops the wait at once, with
/// exit 5. `convoy run --wait-healthy` uses it too.
pub(super) fn wait_healthy(
    url: &url::Url,
    path: &str,
    limit: Duration,
    http: &crate::plan::HttpOptions,
    quiet: bool,
    signals: &Signals,
) -> Result<(), CliError> {
    let health = TargetUrl::new(url)
        .map_err(CliError::usage)?
        .join_url(path)
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
