//! `convoy init --har FILE [--host HOST] [--out DIR]`: drafts a journey
//! from a recorded session (the drafting is `convoy_core::init::har`).
//! Exit 3 when the file cannot be read or holds no API call, with the
//! file and the JSON position or entry named.

use std::process::ExitCode;

use super::init::InitArgs;
use super::{CliError, Exit};
use crate::init::har::{self, Options};

/// Runs `convoy init --har`; `prefix` is the checked `--env-prefix`.
pub(super) fn run(args: &InitArgs, prefix: String) -> Result<ExitCode, CliError> {
    let file = args
        .har
        .as_ref()
        .ok_or_else(|| CliError::usage("pass --openapi FILE or --har FILE"))?;
    let opts = Options {
        env_prefix: prefix,
        source_name: file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.display().to_string()),
        host: args.host.clone(),
    };
    let (draft, summary) =
        har::draft_file(file, &opts).map_err(|e| CliError::usage(format!("{e:#}")))?;
    draft
        .write(&args.out, args.force)
        .map_err(|e| CliError::usage(format!("{e:#}")))?;
    crate::outln!(
        "wrote {} files to {}: {} entries recorded, {} steps, {} values correlated, {} identities; see {}",
        draft.files.len(),
        args.out.display(),
        summary.entries,
        summary.steps,
        summary.correlated,
        summary.identities,
        args.out.join("README.md").display()
    );
    Ok(Exit::Pass.into())
}
