//! `convoy completions SHELL`: a completion script for the shell, generated
//! from the clap definitions themselves (clap_complete), so every
//! subcommand, flag and fixed value list (`--format`, `--http`) completes as
//! `--help` lists it, with nothing kept by hand to fall behind.

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::{Cli, CliError, Exit};

/// Arguments of `convoy completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Install (the script goes to stdout):
  bash        convoy completions bash > ~/.local/share/bash-completion/completions/convoy
  zsh         convoy completions zsh > \"${fpath[1]}/_convoy\"
  fish        convoy completions fish > ~/.config/fish/completions/convoy.fish
  powershell  convoy completions powershell >> $PROFILE")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script of `args.shell` on stdout.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let script = script(args.shell);
    super::man::write_stdout(&script)?;
    Ok(Exit::Pass.into())
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "convoy", &mut out);
    out
}
