//! `convoy history DIR`: the change points of a directory of stored runs
//! (see `convoy baseline record --history`), per comparable series, step
//! and figure. The method is [`crate::history::changepoint`]'s; this module
//! only reads the directory, takes the settings and prints.
//!
//! Exit 0 whatever it finds, unless `--fail-on-change-since K` asks for
//! the nightly gate: then exit 1 (a failed gate, as for every command) when
//! a regression was first shown by one of the newest K runs of its series.
//! Exit 3 when the directory cannot be read or holds no run.

use std::path::PathBuf;
use std::process::ExitCode;

use super::report::emit;
use super::{CliError, Exit};
use crate::history::{self, LevelTest, Options, render};

/// How to print the change points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// A terminal table per series.
    Table,
    /// Markdown, for a pull request or issue comment.
    #[value(alias = "markdown")]
    Md,
    /// `convoy.history/v1` JSON (reports/schema/history-v1.schema.json).
    Json,
    /// A standalone HTML page with a chart per figure that changed.
    Html,
}

/// Arguments of `convoy history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The history directory: one report.json per run.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = HistoryFormat::Table)]
    pub format: HistoryFormat,
    /// Shorthand for `--format json`.
    #[arg(long, conflicts_with_all = ["format", "md"])]
    pub json: bool,
    /// Shorthand for `--format md`.
    #[arg(long, conflicts_with = "format")]
    pub md: bool,
    /// A change is kept when its test's p-value, corrected for the search
    /// over split points, is at most this.
    #[arg(long, value_name = "P", default_value_t = Options::default().max_p_value, value_parser = parse_p)]
    pub max_p_value: f64,
    /// The test that judges a split: rank_sum (Mann–Whitney, exact
    /// whatever the noise's shape), robust_shift (medians over the MAD) or
    /// welch (Welch's t-test).
    #[arg(long, value_name = "TEST", default_value = "rank_sum", value_parser = parse_test)]
    pub test: LevelTest,
    /// Runs per search window (windows overlap by half).
    #[arg(long, value_name = "N", default_value_t = Options::default().window as u64, value_parser = clap::value_parser!(u64).range(6..=10_000))]
    pub window: u64,
    /// Runs a new level must hold to count (shorter excursions are blips).
    #[arg(long, value_name = "N", default_value_t = Options::default().min_run as u64, value_parser = clap::value_parser!(u64).range(2..=1_000))]
    pub min_run: u64,
    /// Drop changes smaller than this: '5%' or '0.05'.
    #[arg(long, value_name = "PCT", default_value = "0", value_parser = crate::report::compare::parse_tolerance)]
    pub min_change: f64,
    /// Drop changes that move the level by less than this many robust
    /// standard deviations of the runs' own noise.
    #[arg(long, value_name = "X", default_value_t = Options::default().min_sigmas, value_parser = parse_sigmas)]
    pub min_sigmas: f64,
    /// The nightly gate: exit 1 when a regression was first shown by one of
    /// the newest K runs of its series (K=1: on the night the change is
    /// confirmed, once; see the README).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub fail_on_change_since: Option<u64>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Also write the HTML page (charts of the figures that changed) to
    /// this file, whatever --format prints.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_test(s: &str) -> Result<LevelTest, String> {
    LevelTest::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = LevelTest::ALL.iter().map(|t| t.name()).collect();
        format!("unknown test {s:?}: one of {}", names.join(", "))
    })
}

fn parse_p(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(format!(
            "'{s}' is not a p-value between 0 and 1 (e.g. 0.001)"
        )),
    }
}

fn parse_sigmas(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=100.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not a number of standard deviations (e.g. 1)"
        )),
    }
}

/// Runs `convoy history`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let dir = &args.dir;
    let h = crate::report::history::load(dir)
        .map_err(|e| CliError::usage(format!("cannot read history {}: {e}", dir.display())))?;
    if h.missing {
        return Err(CliError::usage(format!(
            "no history at {}: the directory does not exist (record runs with `convoy baseline record --history {}`)",
            dir.display(),
            dir.display()
        )));
    }
    for (path, why) in &h.skipped {
        crate::errln!("warning: history: skipped {}: {why}", path.display());
    }
    if h.runs.is_empty() {
        return Err(CliError::usage(format!(
            "no runs in {}: it holds no readable report.json",
            dir.display()
        )));
    }
    let options = Options {
        max_p_value: args.max_p_value,
        window: args.window as usize,
        min_run: args.min_run as usize,
        min_magnitude: args.min_change,
        min_sigmas: args.min_sigmas,
        test: args.test,
    };
    let mut analysis = history::analyse(&h.runs, &options);
    if let Some(k) = args.fail_on_change_since {
        analysis.apply_gate(k as usize);
    }
    let format = if args.json {
        HistoryFormat::Json
    } else if args.md {
        HistoryFormat::Md
    } else {
        args.format
    };
    let text = match format {
        HistoryFormat::Table => render::table(&analysis),
        HistoryFormat::Md => render::markdown(&analysis),
        HistoryFormat::Json => render::json(&analysis),
        HistoryFormat::Html => render::html(&analysis),
    };
    emit(&text, args.output.as_ref())?;
    if let Some(path) = &args.html {
        emit(&render::html(&analysis), Some(path))?;
    }
    if let Some(g) = analysis.gate.as_ref().filter(|g| g.failed)
        && (args.output.is_some() || format == HistoryFormat::Json)
    {
        // Said where a person looks when the output goes elsewhere.
        crate::errln!(
            "convoy history: gate failed: {} regression(s) first shown by the newest {} run(s)",
            g.regressions.len(),
            g.since
        );
    }
    let failed = analysis.gate.as_ref().is_some_and(|g| g.failed);
    Ok(if failed {
        Exit::GatesFailed
    } else {
        Exit::Pass
    }
    .into())
}

/// The commit or version under test: `--commit` (or `CONVOY_COMMIT`), else
/// the commit CI says it built (GitHub Actions, GitLab CI). Blank values
/// are none; the value is cut to 100 characters, as it only names a run.
pub(crate) fn commit_under_test(flag: Option<&str>) -> Option<String> {
    let from_ci = || {
        ["GITHUB_SHA", "CI_COMMIT_SHA"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
    };
    let raw = match flag.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => from_ci()?,
    };
    Some(
        raw.trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect(),
    )
}
