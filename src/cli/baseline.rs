//! `convoy baseline`: the stored baseline (`reports/baseline.json`) that
//! `convoy run --baseline` and `convoy compare` judge runs against, and the
//! history of earlier runs (`reports/history/`) that tells noise from
//! regressions.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::read_path;
use super::{CliError, Exit};
use crate::report::{artifacts, format, history};

/// The default baseline file.
pub const DEFAULT_BASELINE: &str = "reports/baseline.json";

/// Arguments of `convoy baseline`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Make a run the new baseline: copies its report.json to the baseline
    /// file.
    Promote {
        /// A run directory (reports/<run-id>/) or a report.json.
        #[arg(value_name = "RUN_DIR_OR_REPORT")]
        run: PathBuf,
        /// Where the baseline lives.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_BASELINE)]
        baseline: PathBuf,
        /// Accept a run that was stopped before its plan ended.
        #[arg(long)]
        allow_partial: bool,
    },
    /// Add a run to the history that compare uses to measure noise.
    Record {
        /// A run directory (reports/<run-id>/) or a report.json.
        #[arg(value_name = "RUN_DIR_OR_REPORT")]
        report: PathBuf,
        /// The history directory.
        #[arg(long, value_name = "DIR", default_value = history::DEFAULT_DIR)]
        history: PathBuf,
        /// Keep only the newest N runs in the history (at least 1).
        #[arg(long, value_name = "N", value_parser = parse_keep)]
        keep: Option<usize>,
    },
}

/// `--keep N`: a whole number of runs, at least 1 (keeping none would
/// delete the run just recorded).
fn parse_keep(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 would delete the run just recorded: keep at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a whole number of runs, found {s:?}")),
    }
}

/// Runs `convoy baseline`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    match args.action {
        Action::Promote {
            run,
            baseline,
            allow_partial,
        } => promote(run, baseline, allow_partial),
        Action::Record {
            report,
            history,
            keep,
        } => record(report, history, keep),
    }
}

fn promote(run: PathBuf, baseline: PathBuf, allow_partial: bool) -> Result<ExitCode, CliError> {
    let source = artifacts::report_path(&run);
    // Read once (size-capped), validate those bytes, and copy exactly them.
    let bytes = artifacts::read_capped(&source).map_err(|e| CliError::usage(e.to_string()))?;
    let report =
        artifacts::parse_report(&source, &bytes).map_err(|e| CliError::usage(e.to_string()))?;
    if report.partial && !allow_partial {
        return Err(CliError::usage(format!(
            "{} is a partial run (stopped before its plan ended); a baseline should be a complete run (--allow-partial to use it anyway)",
            source.display()
        )));
    }
    // Copy the file as it is: the baseline is exactly what the run wrote.
    if let Some(dir) = baseline.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::aborted(format!("cannot create {}: {e}", dir.display())))?;
    }
    artifacts::write_atomic(&baseline, &bytes)
        .map_err(|e| CliError::aborted(format!("cannot write {}: {e}", baseline.display())))?;
    let o = &report.overall;
    crate::errln!(
        "baseline {} is now run {} (p95 {}, {} req/s, error rate {})",
        baseline.display(),
        report.run_id,
        format::millis(o.latency_ms.p95),
        format::trim_float(o.rps, 1),
        format::percent(o.error_rate)
    );
    Ok(Exit::Pass.into())
}

fn record(report: PathBuf, dir: PathBuf, keep: Option<usize>) -> Result<ExitCode, CliError> {
    let report = read_path(&report)?;
    if report.partial {
        crate::errln!(
            "not recorded: run {} is partial, and partial runs say nothing about noise",
            report.run_id
        );
        return Ok(Exit::Pass.into());
    }
    let path = history::record(&report, &dir, keep)
        .map_err(|e| CliError::aborted(format!("cannot record into {}: {e}", dir.display())))?;
    crate::errln!("recorded run {} as {}", report.run_id, path.display());
    Ok(Exit::Pass.into())
}
