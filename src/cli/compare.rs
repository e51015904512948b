//! `convoy compare`: a run against a baseline, step by step, with the noise
//! of earlier runs taken into account (the rule is documented in
//! [`mod@crate::report::compare`]). Exit 1 when a regression is found; a
//! baseline that measured something else (another profile, scenario set or
//! target) is warned about, or refused with exit 3 under
//! `--require-comparable`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::report::{emit, read_path};
use super::{CliError, Exit};
use crate::report::compare::parse_tolerance;
use crate::report::{self, Report, compare, history};

/// How to print a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// A terminal table of the figures that moved.
    Table,
    /// Markdown, for a step summary or a pull-request comment.
    #[value(alias = "markdown")]
    Md,
    /// Every figure of every step, as JSON.
    Json,
}

/// Arguments of `convoy compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The baseline: a report.json or a run directory.
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The run to judge: a report.json or a run directory.
    #[arg(value_name = "CURRENT")]
    pub current: PathBuf,
    /// Directory of earlier runs' reports (see `convoy baseline record`);
    /// their spread is the noise a change must exceed. A directory that
    /// does not exist yet (a first nightly) means no history, and the
    /// output says so.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Refuse (exit 3) a baseline of another command, scenario set,
    /// profile, target, load or shard instead of warning about it.
    #[arg(long)]
    pub require_comparable: bool,
    /// Changes within this are never regressions: '10%' or '0.1'.
    #[arg(long, value_name = "PCT", default_value = "10%", value_parser = parse_tolerance)]
    pub tolerance: f64,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Runs `convoy compare`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let baseline = read_path(&args.baseline)?;
    let current = read_path(&args.current)?;
    let (runs, missing) = match &args.history {
        Some(dir) => load_history(dir, true)?,
        None => (Vec::new(), None),
    };
    let mut c = compare(&baseline, &current, &runs, args.tolerance);
    c.missing_history = missing;
    if let Some(warning) = c.mismatch_warning() {
        if args.require_comparable {
            return Err(CliError::usage(format!(
                "{}: {warning} (drop --require-comparable to compare anyway)",
                args.baseline.display()
            )));
        }
        // Table and Markdown carry the warning; say it where a person
        // looks when the output goes to a file or to a program.
        if args.output.is_some() || args.format == CompareFormat::Json {
            crate::errln!("warning: {warning}");
        }
    }
    let text = match args.format {
        CompareFormat::Table => report::text::render_comparison(&c),
        CompareFormat::Md => report::markdown::render_comparison(&c),
        CompareFormat::Json => report::json::render_comparison(&c),
    };
    emit(&text, args.output.as_ref())?;
    Ok(if c.has_regressions() {
        Exit::GatesFailed
    } else {
        Exit::Pass
    }
    .into())
}

/// Reads the history for a comparison with `--baseline`. Damaged files are
/// skipped with a warning. A directory that does not exist is no history,
/// returned as the second value when the user named it (`given`), so the
/// comparison says "no history at DIR" instead of passing a mistyped path
/// off as a first run; a default directory that is not there yet is
/// silently none. Anything else that stops the directory from being read
/// (a file in its place, no permission) is a usage error.
pub(crate) fn load_history(
    dir: &Path,
    given: bool,
) -> Result<(Vec<Report>, Option<String>), CliError> {
    let h = history::load(dir)
        .map_err(|e| CliError::usage(format!("cannot read history {}: {e}", dir.display())))?;
    for (path, why) in &h.skipped {
        crate::errln!("warning: history: skipped {}: {why}", path.display());
    }
    let missing = (h.missing && given).then(|| dir.display().to_string());
    if let Some(dir) = &missing {
        crate::errln!(
            "warning: no history at {dir}: the directory does not exist, so only the tolerance applies (record runs with `convoy baseline record --history {dir}`)"
        );
    }
    Ok((h.runs, missing))
}
