//! `convoy compare`: a run against a baseline, step by step, with the noise
//! of earlier runs taken into account (the rule is documented in
//! [`mod@crate::report::compare`]). Exit 1 when a regression is found.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::{emit, read_path};
use super::{CliError, Exit};
use crate::report::compare::parse_tolerance;
use crate::report::{self, compare, history};

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
    /// their spread is the noise a change must exceed.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
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
    let runs = match &args.history {
        Some(dir) => {
            let h = history::load(dir).map_err(|e| {
                CliError::usage(format!("cannot read history {}: {e}", dir.display()))
            })?;
            for (path, why) in &h.skipped {
                eprintln!("warning: history: skipped {}: {why}", path.display());
            }
            h.runs
        }
        None => Vec::new(),
    };
    let c = compare(&baseline, &current, &runs, args.tolerance);
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
