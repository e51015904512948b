//! `convoy compare` (placeholder: the reports-and-gates work replaces this file).

use std::process::ExitCode;

use super::CliError;

/// Arguments of `convoy compare`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `convoy compare`.
pub fn run(_args: Args) -> Result<ExitCode, CliError> {
    Err(CliError::usage("convoy compare is not built yet"))
}
