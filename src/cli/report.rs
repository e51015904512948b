//! `convoy report` (placeholder: the reports-and-gates work replaces this file).

use std::process::ExitCode;

use super::CliError;

/// Arguments of `convoy report`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `convoy report`.
pub fn run(_args: Args) -> Result<ExitCode, CliError> {
    Err(CliError::usage("convoy report is not built yet"))
}
