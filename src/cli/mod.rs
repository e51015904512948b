//! The command line: clap structs that hold what the user typed, turned into
//! validated plans before anything runs. Only this module knows about clap;
//! the engine sees plans.
//!
//! Exit codes (documented in the README and `convoy --help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | the run passed |
//! | 1 | SLA gates failed (or one was lost early: `--abort-on-fail`) |
//! | 2 | checks failed or violations were counted |
//! | 3 | configuration or usage error, or a local error (convoy's own environment) |
//! | 4 | run aborted: target unreachable or died, or another runtime failure |
//! | 5 | interrupted (Ctrl-C, SIGTERM): a partial report was written |
//!
//! When several happen at once, one rule picks the code for every command:
//! `exit.rs`. How signals stop a run, and within what bound: `signals.rs`.

pub mod baseline;
pub mod bench;
pub mod compare;
pub mod completions;
pub mod console;
pub mod exit;
pub mod history;
pub mod init;
mod init_har;
mod inputs;
pub mod man;
pub mod merge;
pub mod report;
pub mod run;
mod signals;
pub mod smoke;
pub mod target;
pub mod target_opts;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The run passed.
    Pass = 0,
    /// SLA gates failed, or one was lost early and the run aborted
    /// (`--abort-on-fail`).
    GatesFailed = 1,
    /// Checks failed.
    ChecksFailed = 2,
    /// Configuration or usage error, or a local error: convoy's own
    /// environment (disk, descriptors, output paths), never the target.
    Usage = 3,
    /// Run aborted: target unreachable or died, or another runtime failure.
    Aborted = 4,
    /// Interrupted by a signal; the report is partial.
    Interrupted = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error that knows its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// Which exit code to use.
    pub exit: Exit,
    /// What to tell the user.
    pub message: String,
}

impl CliError {
    /// A configuration or usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    /// A runtime failure.
    pub fn aborted(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::Aborted,
            message: message.into(),
        }
    }
}

const AFTER_HELP: &str = "\
Exit codes:
  0  passed
  1  SLA gates failed, or a regression against --baseline (or a gate was lost
     early under --abort-on-fail)
  2  checks failed or violations were counted
  3  configuration or usage error, or a local error (convoy's own environment:
     an unwritable output path, a full disk, out of file descriptors, more
     connections than `ulimit -n` and memory allow)
  4  run aborted: target unreachable or died
  5  interrupted (Ctrl-C, SIGTERM); a partial report was written

When several happen at once (run, smoke, bench, merge, report --gate), the
code is the first of: 4 target died mid-run, 3 local error, 1 stopped by
--abort-on-fail, 5 interrupted, 4 no request reached the target, 2 checks or
violations, 1 gates or regression, 0 passed. What stopped the run from
measuring comes first, then wrong answers, then slow ones.

Stopping: the first Ctrl-C lets requests in flight finish (--graceful-stop),
a SIGTERM gives them at most 3s, so the partial report is written well within
a container's grace period (Docker: 10s); a second signal cuts them off at
once and still writes the partial report; a third quits at once (exit 130,
no report). A signal during --metrics-linger ends it (the run's exit code
stands), one during --wait-healthy stops the wait (exit 5, no journey ran).";

/// convoy: load tests and smoke gates for logistics HTTP APIs.
#[derive(Debug, Parser)]
#[command(name = "convoy", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run journeys under a load profile and gate on its SLA (no --target
    /// and no base_url: the built-in reference API).
    Run(Box<run::RunArgs>),
    /// Post-deploy gate: every journey once (or --iterations N times), check
    /// by check, gated like a run.
    Smoke(Box<smoke::SmokeArgs>),
    /// Hammer one URL, like oha or hey, with exact percentiles.
    Bench(Box<bench::BenchArgs>),
    /// Serve the built-in reference logistics API.
    Target(target::TargetArgs),
    /// Re-render a saved report.json as a table, Markdown, JUnit or HTML.
    Report(report::Args),
    /// Compare a run with a baseline, step by step, with noise taken into account.
    Compare(compare::Args),
    /// Manage the stored baseline and run history.
    Baseline(baseline::Args),
    /// Merge the reports of a sharded run exactly, then gate on the whole.
    Merge(merge::Args),
    /// Draft a suite folder from an OpenAPI document or a recorded HAR session, ready for `convoy smoke DIR`.
    Init(init::InitArgs),
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish).
    Completions(completions::Args),
    /// Print the manual page (roff), or write one page per command with --dir.
    Man(man::Args),
    /// Find where a history of runs changed level: change points per step.
    History(history::Args),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Exit::Pass.into()
                }
                _ => Exit::Usage.into(),
            };
        }
    };
    if let Err(e) = signals::prepare() {
        crate::errln!("error: {}", e.message);
        return console::finish(e.exit.into());
    }
    let outcome = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Smoke(args) => smoke::run(*args),
        Command::Bench(args) => bench::run(*args),
        Command::Target(args) => target::run(args).map_err(|e| CliError::aborted(format!("{e:#}"))),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Baseline(args) => baseline::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Init(args) => init::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::History(args) => history::run(args),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            crate::errln!("error: {}", e.message);
            e.exit.into()
        }
    };
    console::finish(code)
}

/// `--format` of `convoy report`: the report formats, listed in `--help`.
pub(crate) fn format_parser() -> impl clap::builder::TypedValueParser<Value = crate::report::Format>
{
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(crate::report::Format::NAMES)
        .try_map(|s| s.parse::<crate::report::Format>())
}

/// `--http` of `run` and `bench`: the HTTP versions, listed in `--help`.
pub(crate) fn http_version_parser()
-> impl clap::builder::TypedValueParser<Value = crate::plan::HttpVersion> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(crate::plan::HttpVersion::NAMES)
        .try_map(|s| s.parse::<crate::plan::HttpVersion>())
}
