//! `convoy init`: drafts a suite folder from what an API already says
//! about itself, so a team starts from a green smoke instead of a blank
//! file. Owns reading the description ([`spec`]), making example data
//! from its schemas ([`sample`]), drafting scenarios and the suite
//! ([`openapi`]: operations, the health scenario and the suite; one step
//! per operation in `steps`, lifecycle journeys in `lifecycle`, the README
//! in `readme`; the auth in [`auth`]; the tenants and the isolation
//! journey in [`tenant`], the idempotent replays in `replay`, the load
//! profiles in `profiles`; what is left out, with its JSON pointer, in
//! `unsupported`) and writing them as TOML
//! ([`toml_text`]). [`har`] drafts a journey from a recorded session
//! instead.
//!
//! What it writes is plain scenario files: `convoy smoke DIR` loads them
//! like any other, and nothing at run time knows they were generated.

pub mod auth;
pub mod fetch;
pub mod har;
mod lifecycle;
pub mod openapi;
mod profiles;
mod readme;
mod replay;
pub mod sample;
pub mod spec;
mod steps;
pub mod tenant;
pub mod toml_text;
mod unsupported;

use std::path::{Path, PathBuf};

/// Why a draft could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not well-formed JSON or YAML.
    #[error("{file}:{message}")]
    Syntax {
        /// The file.
        file: String,
        /// Where and what, `LINE:COL: ...`.
        message: String,
    },
    /// The document is well-formed but not a usable OpenAPI document.
    #[error("{file}: at {pointer}: {message}")]
    Spec {
        /// The file.
        file: String,
        /// The JSON pointer of the offending item (`#` for the root).
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// The document could not be fetched from its URL.
    #[error("{url}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The output folder exists and is not empty.
    #[error(
        "{0}: the folder exists and is not empty (pass --force to overwrite the files convoy writes)"
    )]
    OutExists(PathBuf),
}

impl InitError {
    pub(crate) fn io(file: &str, source: std::io::Error) -> Self {
        InitError::Io {
            file: file.to_string(),
            source,
        }
    }

    pub(crate) fn spec(file: &str, pointer: &str, message: String) -> Self {
        InitError::Spec {
            file: file.to_string(),
            pointer: format!("#{pointer}"),
            message,
        }
    }
}

/// A drafted suite: file names (no folders) and their contents.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// `(name, contents)`, in the order they are written.
    pub files: Vec<(String, String)>,
    /// Operations found in the document.
    pub operations: usize,
    /// Lifecycle journeys drafted.
    pub journeys: usize,
    /// Creates replayed with one `Idempotency-Key`.
    pub replays: usize,
    /// Whether a tenant-isolation journey was drafted.
    pub isolation: bool,
}

impl Draft {
    /// Writes every file into `dir` (created if missing). A folder that
    /// holds other files is refused unless `force`.
    pub fn write(&self, dir: &Path, force: bool) -> Result<(), InitError> {
        let name = dir.display().to_string();
        if let Ok(mut entries) = std::fs::read_dir(dir)
            && entries.next().is_some()
            && !force
        {
            return Err(InitError::OutExists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|e| InitError::io(&name, e))?;
        for (file, text) in &self.files {
            let path = dir.join(file);
            std::fs::write(&path, text)
                .map_err(|e| InitError::io(&path.display().to_string(), e))?;
        }
        Ok(())
    }
}
