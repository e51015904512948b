//! `convoy report`: re-renders a saved `report.json` in any format, and
//! optionally judges it again against gates (so a CI step can gate on a
//! report another step produced).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliError, Exit};
use crate::gate::{self, Gate};
use crate::report::{self, Format, artifacts};

/// Arguments of `convoy report`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct Args {
    /// A saved report.json, or a run directory holding one.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short, default_value = "table", value_parser = super::format_parser())]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Judge the report against this SLA gate (repeatable), replacing the
    /// gates stored in it, and exit by the rule every run follows (a failed
    /// gate: 1; failed checks or violations in the report: 2; ...). E.g.
    /// 'p95 < 500ms'. Without it, the report is only rendered (exit 0).
    #[arg(long = "gate", value_name = "EXPR")]
    pub gates: Vec<Gate>,
    /// The baseline report for relative gates ('p95 <= baseline * 1.10').
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

/// Runs `convoy report`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let mut report = read_path(&args.file)?;
    let baseline = args.baseline.as_deref().map(read_path).transpose()?;
    if args.gates.iter().any(Gate::needs_baseline) && baseline.is_none() {
        return Err(CliError::usage(
            "a gate compares with the baseline: pass --baseline FILE",
        ));
    }
    let mut exit = Exit::Pass;
    if !args.gates.is_empty() {
        report.gates = gate::evaluate(&args.gates, &report, baseline.as_ref());
        // Judged as the run itself was: the same rule, on what it recorded.
        exit = super::exit::exit_code(&report);
    }
    emit(&report::render(&report, args.format), args.output.as_ref())?;
    Ok(exit.into())
}

/// Reads a report for the command line: every failure is a usage error
/// (exit 3) that names the file, and the line and column for bad JSON.
pub(crate) fn read_path(path: &std::path::Path) -> Result<report::Report, CliError> {
    artifacts::read_report(path).map_err(|e| CliError::usage(e.to_string()))
}

/// Writes `text` to `output`, or to standard output.
pub(crate) fn emit(text: &str, output: Option<&PathBuf>) -> Result<(), CliError> {
    match output {
        Some(path) => artifacts::write_atomic(path, text.as_bytes())
            // convoy's own environment, not the target's: a local error.
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display()))),
        None => {
            // A closed pipe (`convoy report ... | head`) is not an error;
            // a full disk is reported when the command ends (console).
            crate::out!("{text}");
            Ok(())
        }
    }
}
