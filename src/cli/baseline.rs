//! `convoy baseline` (placeholder: the reports-and-gates work replaces this file).

use std::process::ExitCode;

use super::CliError;

/// Arguments of `convoy baseline`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `convoy baseline`.
pub fn run(_args: Args) -> Result<ExitCode, CliError> {
    Err(CliError::usage("convoy baseline is not built yet"))
}
