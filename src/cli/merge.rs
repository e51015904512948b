//! `convoy merge REPORT… [-o merged.json] [--out DIR] [--gate EXPR]…`: the
//! reports of the shards of one run made into one report, exactly, then
//! gated like `convoy run` gates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::report::read_path;
use super::{CliError, Exit};
use crate::gate::{self, Gate};
use crate::report::{self, artifacts, merge};

/// Arguments of `convoy merge`.
#[derive(Debug, clap::Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct Args {
    /// Shard reports: report.json files or run directories holding one.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report to this file.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Write every report format (report.json, report.md, junit.xml,
    /// report.html) into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra SLA gate evaluated on the merged result, besides the gates the
    /// shards were run with (repeatable).
    #[arg(short, long = "gate")]
    pub gates: Vec<String>,
    /// A saved report.json to evaluate relative gates
    /// ('p95 <= baseline * 1.10') against.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `convoy merge`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let extra: Vec<Gate> = args
        .gates
        .iter()
        .map(|g| {
            g.parse::<Gate>()
                .map_err(|e| CliError::usage(format!("invalid gate {g:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let baseline = args.baseline.as_deref().map(read_path).transpose()?;
    let shards = args
        .reports
        .iter()
        .map(|p| read_path(p))
        .collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<String> = args
        .reports
        .iter()
        .map(|p| artifacts::report_path(p).display().to_string())
        .collect();
    let mut merged = merge::merge_labelled(&labels, &shards)
        .map_err(|e| CliError::usage(format!("cannot merge: {e}")))?;

    let mut gates = merge::stored_gates(&shards, |i| labels[i].clone())
        .map_err(|e| CliError::usage(format!("cannot merge: {e}")))?;
    for g in extra {
        if !gates.iter().any(|x| x.expression == g.expression) {
            gates.push(g);
        }
    }
    merged.gates = gate::evaluate(&gates, &merged, baseline.as_ref());

    if let Some(path) = &args.output {
        write(path, &merged)?;
    }
    if let Some(dir) = &args.out {
        artifacts::write_all(&merged, dir).map_err(|e| {
            CliError::usage(format!(
                "cannot write reports to {}: {e} (a local error)",
                dir.display()
            ))
        })?;
    }
    if args.json {
        crate::out!("{}", report::json::render(&merged));
    } else {
        crate::errln!(
            "convoy: merged {} reports: {} requests from {} to {}",
            shards.len(),
            merged.overall.requests,
            humantime::format_rfc3339_seconds(merged.started_at),
            humantime::format_rfc3339_seconds(merged.ended_at)
        );
        let opts = report::text::TextOptions {
            width: super::console::width(),
            histogram: false,
        };
        crate::out!("{}", report::text::render_with(&merged, opts));
        if let Some(dir) = &args.out {
            crate::outln!("reports: {}", dir.display());
        }
    }
    let code: Exit = super::exit::exit_code(&merged);
    Ok(code.into())
}

fn write(path: &Path, merged: &report::Report) -> Result<(), CliError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::usage(format!(
                "cannot create {}: {e} (a local error)",
                dir.display()
            ))
        })?;
    }
    artifacts::write_atomic(path, report::json::render(merged).as_bytes()).map_err(|e| {
        CliError::usage(format!(
            "cannot write {}: {e} (a local error)",
            path.display()
        ))
    })
}
