//! `convoy init --openapi FILE|URL [--out DIR]`: drafts a suite folder from an
//! API's OpenAPI document (the drafting is `convoy_core::init`), so
//! `convoy smoke DIR` runs at once; `--har FILE` drafts a journey from a
//! recorded session instead (`super::init_har`). Exit 3 when the document
//! cannot be read or understood, with the file (and the JSON pointer)
//! named.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliError, Exit};
use crate::init::openapi::{self, Options};

/// Arguments of `convoy init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The OpenAPI 3.0/3.1 document (JSON or YAML) to draft from: a file,
    /// or an http(s) URL fetched with one GET.
    #[arg(
        long,
        value_name = "FILE|URL",
        required_unless_present = "har",
        conflicts_with = "har"
    )]
    pub openapi: Option<String>,
    /// A recorded session (HAR 1.2, as browsers and proxies export it) to
    /// draft a journey from.
    #[arg(long, value_name = "FILE")]
    pub har: Option<PathBuf>,
    /// With --har: the API's host (`api.example.com`, `127.0.0.1:8080`);
    /// default: the host most JSON/XHR calls of the recording went to.
    #[arg(long, value_name = "HOST", requires = "har")]
    pub host: Option<String>,
    /// The folder to write the suite into.
    #[arg(long, value_name = "DIR", default_value = "convoy-suite")]
    pub out: PathBuf,
    /// Prefix of the environment variables the credentials come from
    /// (`API_USERNAME`, `API_PASSWORD`, `API_TOKEN`, `API_KEY`, ...).
    #[arg(long, value_name = "PREFIX", default_value = "API")]
    pub env_prefix: String,
    /// Write into a folder that already holds files (the drafted files
    /// are overwritten, others left alone).
    #[arg(long)]
    pub force: bool,
}

/// Runs `convoy init`.
pub fn run(args: InitArgs) -> Result<ExitCode, CliError> {
    let prefix = args.env_prefix.trim_end_matches('_').to_string();
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(CliError::usage(format!(
            "--env-prefix {:?}: letters, digits and `_` only",
            args.env_prefix
        )));
    }
    let Some(spec) = &args.openapi else {
        return super::init_har::run(&args, prefix);
    };
    let opts = Options {
        env_prefix: prefix,
        source_name: if crate::init::fetch::is_url(spec) {
            spec.clone()
        } else {
            std::path::Path::new(spec)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| spec.clone())
        },
    };
    let draft =
        openapi::draft_source(spec, &opts).map_err(|e| CliError::usage(format!("{e:#}")))?;
    draft
        .write(&args.out, args.force)
        .map_err(|e| CliError::usage(format!("{e:#}")))?;
    crate::outln!(
        "wrote {} files to {}: {} operations found, {} lifecycle journeys, {} idempotent replays{} drafted; see {}",
        draft.files.len(),
        args.out.display(),
        draft.operations,
        draft.journeys,
        draft.replays,
        if draft.isolation {
            ", a tenant-isolation journey"
        } else {
            ""
        },
        args.out.join("README.md").display()
    );
    Ok(Exit::Pass.into())
}
