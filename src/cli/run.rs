//! `convoy run [SCENARIO…] --profile NAME [--target URL]`: journeys under
//! load, gated by the profile's SLA. The target is `--target`, else the
//! scenarios' `base_url`, else the built-in reference API started in
//! process on an ephemeral loopback port (`target_opts.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub use super::exit::exit_code;
use super::exit::local_failure_note;
pub use super::target_opts::TargetOpts;
use super::{CliError, signals};
use crate::engine::http::preflight;
use crate::engine::{EngineOptions, RunControl, StopReason, WatchPolicy};
use crate::gate::{self, Gate, Metric};
use crate::live::{self, Exporter, ExporterConfig, RunInfo};
use crate::plan::{LoadModel, Shard, parse_duration};
use crate::progress::Progress;
use crate::redact::redact_url;
use crate::report::{self, Report, RunMeta};
use crate::scenario::{CustomRegistry, Scenario, ScenarioWorkload};

/// Live Prometheus metrics, shared by `run` and `bench`.
#[derive(Debug, clap::Args)]
pub struct MetricsOpts {
    /// Serve live Prometheus metrics at http://ADDR/metrics during the run,
    /// e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Allow a --metrics-addr that is not a loopback address (0.0.0.0:9464
    /// in a pod scraped by Prometheus).
    #[arg(long, requires = "metrics_addr")]
    pub metrics_public: bool,
    /// Keep serving the final figures this long after the run ends, so that
    /// the last scrape sees them.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub metrics_linger: Duration,
}

impl MetricsOpts {
    /// Starts the exporter when --metrics-addr was given.
    pub(crate) fn start(
        &self,
        info: RunInfo,
        gates: &[Gate],
    ) -> Result<Option<Exporter>, CliError> {
        let Some(addr) = self.metrics_addr else {
            return Ok(None);
        };
        let exporter = Exporter::start(ExporterConfig {
            addr,
            public: self.metrics_public,
            info,
            gates: gates.to_vec(),
        })
        .map_err(|e| CliError::usage(e.to_string()))?;
        // The port may have been 0: say where the metrics really are.
        crate::errln!("convoy: live metrics on http://{}/metrics", exporter.addr());
        Ok(Some(exporter))
    }
}

/// Arguments of `convoy run`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct RunArgs {
    /// Scenario files, folders of them, or built-in names (default: every
    /// built-in scenario: health, login, order-lifecycle,
    /// idempotent-replay, tenant-isolation, dispatch).
    pub scenarios: Vec<String>,
    /// Load profile: smoke, light, moderate, heavy, or one defined in a
    /// --profiles file.
    #[arg(short, long, default_value = "light")]
    pub profile: String,
    /// TOML files defining more profiles.
    #[arg(long = "profiles")]
    pub profile_files: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetOpts,
    /// Extra SLA gate, e.g. 'p99 < 1s', 'step:"create order" p95 < 300ms' or
    /// 'event:* p95 < 100ms' (every awaited event) (repeatable).
    #[arg(short, long = "gate")]
    pub gates: Vec<String>,
    /// A saved report.json to compare with; relative gates such as
    /// 'p95 <= baseline * 1.10' use it.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Earlier runs (saved report.json files): their spread tells noise
    /// from regression in the comparison with --baseline (default:
    /// reports/history), and the reports show the gated figures' trends
    /// over them, with change points.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// A change smaller than this is never a regression.
    #[arg(long, default_value = "10%", value_parser = crate::report::compare::parse_tolerance)]
    pub tolerance: f64,
    /// Stop early once a gate can no longer pass (a violation under
    /// `== 0`, errors past the allowed share of the planned requests, a
    /// failed check under `checks == 100%`). The run exits 1 and its
    /// report's stop reason is `aborted_by_gate`.
    #[arg(long)]
    pub abort_on_fail: bool,
    /// Run shard I of N (`0/4`): a deterministic 1/N slice of the load, to
    /// be merged with `convoy merge`.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Poll the health endpoint until it answers 200, for at most this
    /// long, before the load starts (exit 4 if it never does): for shards
    /// and jobs started beside a target that is still coming up.
    #[arg(long, value_parser = parse_duration)]
    pub wait_healthy: Option<Duration>,
    /// The health endpoint polled by --wait-healthy.
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// The commit or version under test, recorded in the report so `convoy
    /// history` can name it (default: $GITHUB_SHA or $CI_COMMIT_SHA).
    #[arg(long, env = "CONVOY_COMMIT", value_name = "REV")]
    pub commit: Option<String>,
    /// Where to write the reports (default: reports/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write no report files.
    #[arg(long)]
    pub no_reports: bool,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(short, long)]
    pub quiet: bool,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Time iterations in flight get to finish when the run stops.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub graceful_stop: Duration,
    #[command(flatten)]
    pub metrics: MetricsOpts,
}

/// Loads the scenarios named on the command line (or every built-in);
/// folders stand for their scenario files ([`super::inputs`]).
pub(crate) fn load_scenarios(names: &[String]) -> Result<Vec<Scenario>, CliError> {
    super::inputs::load_scenarios(names, false)
}

/// Runs `convoy run`.
pub fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    args.target.validate()?;
    let mut scenarios = load_scenarios(&args.scenarios)?;
    if let Some(shard) = &args.shard {
        // Each shard uses its own data rows, disjoint from the others'.
        for s in &mut scenarios {
            s.shard_data(shard).map_err(CliError::usage)?;
        }
    }
    let profile =
        crate::profile::resolve(&args.profile, &args.profile_files).map_err(CliError::usage)?;
    // Each gate once, as smoke does: journeys that share a gate (the
    // realtime pair's `checks == 100%`) would otherwise list it per journey.
    let mut gate_texts: Vec<String> = Vec::new();
    for g in profile
        .gates
        .iter()
        .chain(scenarios.iter().flat_map(|s| s.gates.iter()))
        .chain(&args.gates)
    {
        if !gate_texts.iter().any(|t| t.trim() == g.trim()) {
            gate_texts.push(g.clone());
        }
    }
    let gates: Vec<Gate> = gate_texts
        .iter()
        .map(|g| {
            g.parse::<Gate>()
                .map_err(|e| CliError::usage(format!("invalid gate {g:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let baseline = args.baseline.as_deref().map(read_report).transpose()?;
    // Refused before the load, not judged failed after it: without a
    // baseline such a gate can only fail.
    if let Some(g) = gates.iter().find(|g| g.needs_baseline())
        && baseline.is_none()
    {
        return Err(CliError::usage(format!(
            "gate {:?} compares with the baseline: pass --baseline FILE",
            g.expression
        )));
    }
    if !args.no_reports {
        check_writable(&reports_dir(args.out.as_deref()))?;
    }

    let super::target_opts::Resolved {
        url,
        source,
        embedded,
    } = args.target.resolve(&scenarios, args.quiet || args.json)?;
    let bound = crate::profile::run_bound(&profile.model, &scenarios);
    crate::safety::check_load(&url, &bound, &args.target.allow_hosts)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let http = args.target.http();
    // Watched from before the preflight: a SIGTERM then ends the run at
    // once, with its (empty) partial report and exit 5.
    let control = RunControl::new();
    let signals = signals::install(control.clone(), args.quiet);
    if let Some(limit) = args.wait_healthy {
        signals.set_phase(signals::Phase::WaitHealthy);
        super::smoke::wait_healthy(&url, &args.health_path, limit, &http, args.quiet, &signals)?;
        signals.set_phase(signals::Phase::Load);
    }
    preflight(&url, http.connect_timeout).map_err(preflight_failed)?;
    let names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    let requests_per_iteration = max_requests_per_iteration(&scenarios);
    let held_streams = crate::profile::held_connections(&scenarios);
    let workload = ScenarioWorkload::new(scenarios, Some(&url), http, CustomRegistry::new())
        .map_err(CliError::usage)?;
    let secrets = workload.secrets().clone();
    let ruled_out = workload.ruled_out_metrics();
    let mut options = EngineOptions {
        graceful_stop: args.graceful_stop,
        target_watch: Some(WatchPolicy::RUN),
        ..EngineOptions::default()
    };
    if let Some(w) = args.workers {
        options.workers = w.max(1);
    }
    let planned = if profile.model.is_smoke() {
        every_journey_once(&profile.model, workload.cycle_len())
    } else {
        profile.model.clone()
    };
    let model = match &args.shard {
        Some(shard) => {
            options.vu_offset = shard.index as u64;
            options.vu_stride = shard.count as u64;
            planned
                .shard_checked(shard)
                .map_err(|e| CliError::usage(e.to_string()))?
        }
        None => planned,
    };
    // Each user holds a connection, and one more per stream it holds (two
    // descriptors each when the reference target runs in this process):
    // refuse what this machine cannot hold.
    let fds_per_connection = if embedded.is_some() { 2 } else { 1 };
    let per_user = crate::engine::limits::PerUser::with_streams(held_streams, fds_per_connection);
    crate::engine::limits::ConnectionCap::here(per_user)
        .check(
            u64::from(model.max_users()),
            &format!("profile {:?} (its peak users)", profile.name),
        )
        .map_err(CliError::usage)?;
    // Named before the run: the live metrics carry it from the first scrape.
    let run_id = report::new_run_id(std::time::SystemTime::now());
    let info = RunInfo {
        command: "run".into(),
        scenario: names.join(", "),
        profile: profile.name.clone(),
        shard: args.shard.map(|s| s.to_string()).unwrap_or_default(),
        run_id: run_id.clone(),
    };
    let exporter = args.metrics.start(info, &gates)?;
    // Violations and check failures are counted only in the merged
    // snapshot, so a gate on one needs snapshots to be judged live.
    let judge_violations = args.abort_on_fail
        && gates
            .iter()
            .any(|g| g.metric.violation().is_some() || g.metric == Metric::Checks);
    options.live_snapshots = exporter.is_some() || judge_violations;
    let progress = Progress::new(!args.quiet && !args.json);
    let mut lost_gate: Option<&Gate> = None;
    let mut result = Arc::new(workload)
        .run(&model, &options, &control, |s| {
            progress.update(s);
            if let Some(e) = &exporter {
                e.observe(s);
            }
            // The last call comes after the plan ended: nothing is left to stop.
            if args.abort_on_fail && lost_gate.is_none() && !s.stopping {
                let live = live::progress_figures(s, requests_per_iteration);
                if let Some(g) = gates.iter().find(|g| gate::already_lost(g, &live)) {
                    lost_gate = Some(g);
                    control.stop();
                }
            }
        })
        .map_err(engine_failed)?;
    progress.finish();
    if let Some(e) = &exporter {
        e.finish(&result);
    }
    if let Some(g) = lost_gate {
        crate::errln!(
            "convoy: --abort-on-fail: gate {g} can no longer pass; the run stopped early"
        );
        // A signal may have stopped it too; the lost gate came first.
        if result.stop_reason == StopReason::Interrupted {
            result.stop_reason = StopReason::AbortedByGate;
        }
    }

    let mut meta = RunMeta::new("run", &redact_url(&url));
    meta.target_source = Some(source);
    meta.run_id = Some(run_id);
    meta.scenario = Some(names.join(", "));
    meta.profile = Some(profile.name.clone());
    meta.shard = args.shard;
    meta.commit = super::history::commit_under_test(args.commit.as_deref());
    let mut report = Report::new(&result, meta);
    report.rule_out(&ruled_out);
    report.gates = gate::evaluate(&gates, &report, baseline.as_ref());
    if report.stop_reason == StopReason::AbortedByGate
        && let Some(g) = lost_gate
        && let Some(r) = report
            .gates
            .iter_mut()
            .find(|r| r.expression == g.expression)
    {
        // Every format shows the gate table: the gate that stopped the run
        // says so there.
        r.actual_display += " (lost early: the run was aborted)";
    }
    if baseline.is_some() || args.history.is_some() {
        let (history, missing) = load_history(args.history.as_deref());
        if let Some(b) = &baseline {
            let mut c = report::compare(b, &report, &history, args.tolerance);
            // The reports say it too, not only stderr: a mistyped --history.
            c.missing_history = missing;
            report.comparison = Some(c);
        }
        report.trends =
            crate::history::trend::trends(&report, &history, &crate::history::Options::default());
    }
    // Nothing of the report leaves convoy unscrubbed of what the run learnt.
    report.scrub(&secrets);
    let code = finish(
        &report,
        args.out.as_deref(),
        args.no_reports,
        args.json,
        Summary::Run,
    )?;
    if let Some(e) = exporter {
        signals.linger(e, args.metrics.metrics_linger);
    }
    Ok(code)
}

/// The runs of the history for the comparison with a baseline: `dir`, or
/// the default directory when none was given, and `dir` again when it was
/// given but does not exist ([`report::history::History::missing`]), for the
/// reports to say so. What cannot be read is said on stderr, and the
/// comparison goes on with what could.
fn load_history(dir: Option<&Path>) -> (Vec<Report>, Option<String>) {
    let path = dir.unwrap_or(Path::new(report::history::DEFAULT_DIR));
    match report::history::load(path) {
        Ok(h) => {
            for (file, why) in &h.skipped {
                crate::errln!(
                    "convoy: warning: history: skipped {}: {why}",
                    file.display()
                );
            }
            // A default directory that is not there yet is a first run; a
            // named one is more likely a typo.
            let missing = (h.missing && dir.is_some()).then(|| path.display().to_string());
            if let Some(missing) = &missing {
                crate::errln!(
                    "convoy: note: --history {missing} does not exist: no earlier runs, so only the noise within the runs is known and a change beyond it is unconfirmed, not a regression"
                );
            }
            (h.runs, missing)
        }
        Err(e) => {
            crate::errln!(
                "convoy: warning: cannot read history {}: {e}; comparing without it (by the noise within the runs; changes beyond it are unconfirmed)",
                path.display()
            );
            (Vec::new(), None)
        }
    }
}

/// The smoke shape of a profile (one user, one iteration) run as a smoke
/// test: one iteration per journey of the weighted cycle, so every journey
/// runs at least once, as `convoy smoke` runs them.
pub fn every_journey_once(model: &LoadModel, cycle_len: usize) -> LoadModel {
    let mut model = model.clone();
    if let LoadModel::Closed(c) = &mut model {
        c.iterations_per_user = Some(cycle_len.max(1) as u64);
        c.total_iterations = None;
    }
    model
}

/// An upper bound on the requests one iteration of any of `scenarios`
/// makes, so that abort-on-fail can judge an `error_rate` gate against the
/// most requests a run of fixed iterations can make; `None` when a custom
/// journey (Rust code) makes any number. See
/// [`Scenario::max_requests_per_iteration`]: each step's requests (a
/// replay's copies and its verification, one per isolation probe, one
/// query for a database step) and the logins it can make.
pub fn max_requests_per_iteration(scenarios: &[Scenario]) -> Option<u64> {
    scenarios
        .iter()
        .map(Scenario::max_requests_per_iteration)
        .try_fold(0, |most, n| Some(u64::max(most, n?)))
}

/// The directory a run's reports go to when no run id is known yet: `out`,
/// or `reports/` under which `reports/<run-id>` will be made.
pub(crate) fn reports_dir(out: Option<&Path>) -> PathBuf {
    out.map_or_else(|| PathBuf::from("reports"), Path::to_path_buf)
}

/// Refuses, before any load, a report directory that cannot be written: it
/// is a file, or its nearest existing ancestor is not a writable directory.
/// Nothing is created: a file is made and removed in the directory that
/// exists, to learn what the operating system allows.
pub(crate) fn check_writable(dir: &Path) -> Result<(), CliError> {
    writable_dir(dir).map_err(|why| {
        CliError::usage(format!(
            "cannot write reports to {}: {why} (choose another --out, or pass --no-reports)",
            dir.display()
        ))
    })
}

/// Refuses, before any load, an output file (`bench -o`, `smoke --junit`)
/// that cannot be written: a directory, an existing file that cannot be
/// opened for writing, or one whose directory cannot be made or written.
/// Nothing is created or truncated.
pub(crate) fn check_output_file(path: &Path, flag: &str) -> Result<(), CliError> {
    let refuse = |why: String| {
        CliError::usage(format!(
            "cannot write {flag} {}: {why} (checked before any request was sent)",
            path.display()
        ))
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".into()));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| refuse(e.to_string()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    writable_dir(dir).map_err(refuse)
}

/// Whether `dir` can be written, or made and written; why not.
fn writable_dir(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    while !existing.as_os_str().is_empty() && !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => break,
        }
    }
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    let probe = existing.join(format!(".convoy-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("{} is not writable: {e}", existing.display())),
    }
}

/// The engine could not run: never the target's doing (a bad plan, or
/// convoy's own machine: no thread, no descriptor), so a local error
/// (exit 3), with how to fix the usual cause.
/// A failed preflight: the target's fault (exit 4) unless convoy could not
/// open a socket at all (exit 3).
pub(crate) fn preflight_failed(e: crate::engine::http::PreflightError) -> CliError {
    match e {
        crate::engine::http::PreflightError::Local(_) => CliError::usage(e.to_string()),
        crate::engine::http::PreflightError::Unreachable(_) => CliError::aborted(e.to_string()),
    }
}

pub(crate) fn engine_failed(e: crate::engine::EngineError) -> CliError {
    match &e {
        crate::engine::EngineError::Io(io) if crate::engine::http::is_local_exhaustion(io) => {
            CliError::usage(format!(
                "{e}: convoy ran out of file descriptors on this machine (a local error, not the \
                 target); raise the open-file limit with `ulimit -n`"
            ))
        }
        crate::engine::EngineError::Io(_) => CliError::usage(format!(
            "{e} (a local error: convoy's own machine, not the target)"
        )),
        _ => CliError::usage(e.to_string()),
    }
}

/// A report file that could not be written after the run: convoy's own
/// environment (a full disk, a removed directory), a local error (exit 3),
/// said after the summary was printed.
pub(crate) fn write_failed(what: &Path, e: &std::io::Error) -> CliError {
    CliError::usage(format!(
        "cannot write {}: {e} (a local error: the summary above is all that is left of the run)",
        what.display()
    ))
}

/// Reads a saved report or run directory (for `--baseline`).
pub(crate) fn read_report(path: &Path) -> Result<Report, CliError> {
    report::artifacts::read_report(path).map_err(|e| CliError::usage(e.to_string()))
}

/// Which summary [`finish`] prints in the terminal.
pub(crate) enum Summary {
    /// The whole summary, steps table first.
    Run,
    /// The short one under smoke's check list.
    Smoke(report::text::SmokeTally),
}

/// Writes the artifacts, prints the summary and picks the exit code. A
/// report that cannot be written is a local error (exit 3), said after the
/// summary, which is printed anyway.
pub(crate) fn finish(
    report: &Report,
    out: Option<&Path>,
    no_reports: bool,
    json: bool,
    summary: Summary,
) -> Result<ExitCode, CliError> {
    let mut written = Vec::new();
    let mut failed = None;
    if !no_reports {
        let dir = out.map_or_else(
            || Path::new("reports").join(&report.run_id),
            Path::to_path_buf,
        );
        match report::artifacts::write_all(report, &dir) {
            Ok(w) => written = w,
            Err(e) => failed = Some(write_failed(&dir, &e)),
        }
    }
    if report.stop_reason == StopReason::TargetDown {
        crate::errln!(
            "convoy: the target stopped accepting connections; the run was aborted and its report is partial"
        );
    }
    if json {
        crate::out!("{}", report::json::render(report));
    } else {
        let opts = report::text::TextOptions {
            width: super::console::width(),
            histogram: false,
        };
        crate::out!(
            "{}",
            match summary {
                Summary::Run => report::text::render_with(report, opts),
                Summary::Smoke(tally) => report::text::render_smoke(report, tally, opts),
            }
        );
        if let Some(first) = written.first()
            && let Some(dir) = first.parent()
        {
            crate::outln!("reports: {}", dir.display());
        }
    }
    match failed {
        Some(e) => Err(e),
        None => {
            if let Some(note) = local_failure_note(report) {
                crate::errln!("error: {note}");
            }
            Ok(exit_code(report).into())
        }
    }
}
