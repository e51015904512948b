//! `convoy man`: the manual page, rendered from the clap definitions
//! (clap_mangen) at the user's request rather than at build time, so the
//! build stays as it is and the page cannot disagree with `--help`.
//!
//! `convoy man` prints `convoy.1` (the commands, the exit codes); `convoy
//! man --dir DIR` writes it and one page per subcommand (`convoy-run.1`, …)
//! into DIR, for `MANPATH` or a package.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory as _;

use super::{Cli, CliError, Exit};

/// Arguments of `convoy man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  convoy man > convoy.1 && man -l convoy.1
  convoy man --dir ~/.local/share/man/man1     # convoy.1 and convoy-run.1, convoy-smoke.1, ...")]
pub struct Args {
    /// Write convoy.1 and one page per subcommand (convoy-run.1, …) into
    /// this directory instead of printing convoy.1.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Prints or writes the manual pages.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    match &args.dir {
        None => write_stdout(&page()?)?,
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::usage(format!("cannot create --dir {}: {e}", dir.display()))
            })?;
            let mut cmd = Cli::command().disable_help_subcommand(true);
            cmd.build();
            clap_mangen::generate_to(cmd, dir).map_err(|e| {
                CliError::usage(format!(
                    "cannot write the manual pages to {}: {e}",
                    dir.display()
                ))
            })?;
            crate::errln!("convoy: manual pages written to {}", dir.display());
        }
    }
    Ok(Exit::Pass.into())
}

/// `convoy.1`, as roff.
pub fn page() -> Result<Vec<u8>, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| CliError::usage(format!("cannot render the manual page: {e}")))?;
    Ok(out)
}

/// Prints generated text through the console (a closed pipe, `| head`,
/// ends quietly; a full disk is a local error once the command is done).
pub(super) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    crate::out!("{}", String::from_utf8_lossy(bytes));
    Ok(())
}
