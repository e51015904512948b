//! From the scenario arguments of `convoy run` and `convoy smoke` to the
//! scenarios to load: built-in names, files, and folders. A folder stands
//! for the scenario files in it (not its subfolders), told from its
//! profiles file, its suite file (`suite.toml`) and other TOML by what
//! they hold ([`scenario::parse::classify`]), so `convoy smoke dir/` and
//! `convoy smoke dir/*.toml` run the same scenarios.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::scenario::parse::FileKind;
use crate::scenario::{self, Scenario};

/// The scenario arguments `names` (every built-in when empty) with each
/// folder replaced by its scenario files, sorted; files that are no
/// scenario (a profiles file, the suite) are left out with a notice unless
/// `quiet`.
pub(crate) fn scenario_args(names: &[String], quiet: bool) -> Result<Vec<String>, CliError> {
    if names.is_empty() {
        return Ok(scenario::builtin::NAMES
            .iter()
            .map(|s| s.to_string())
            .collect());
    }
    let mut out = Vec::new();
    for n in names {
        let path = Path::new(n);
        if path.is_dir() {
            let files = folder_scenarios(path)?;
            if files.is_empty() {
                return Err(CliError::usage(format!(
                    "{n}: the folder holds no scenario file (a TOML file with [[step]] tables)"
                )));
            }
            out.extend(files.into_iter().map(|p| p.to_string_lossy().into_owned()));
        } else if path.is_file()
            && let Some(kind) = not_a_scenario(path)
        {
            if !quiet {
                eprintln!("convoy: {n} is {kind}, not a scenario: left out");
            }
        } else {
            out.push(n.clone());
        }
    }
    if out.is_empty() {
        return Err(CliError::usage(
            "no scenario among the files given (profiles and suite files are not scenarios)",
        ));
    }
    Ok(out)
}

/// Loads the scenarios named by `names` ([`scenario_args`]).
pub(crate) fn load_scenarios(names: &[String], quiet: bool) -> Result<Vec<Scenario>, CliError> {
    scenario_args(names, quiet)?
        .iter()
        .map(|n| {
            scenario::load(n).map_err(|d| CliError::usage(d.to_string().trim_end().to_string()))
        })
        .collect()
}

/// The scenario files of folder `dir`, sorted by name.
fn folder_scenarios(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("{}: cannot read the folder: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        match classify(&f)? {
            FileKind::Scenario => out.push(f),
            FileKind::Suite | FileKind::Profiles | FileKind::Other => {}
        }
    }
    Ok(out)
}

/// What a file named as a scenario is when it is none: `Some("a profiles
/// file")`; `None` for a scenario or a file that cannot be read or parsed
/// (loading it then says why, at its place).
fn not_a_scenario(path: &Path) -> Option<&'static str> {
    match classify(path).ok()? {
        FileKind::Profiles => Some("a profiles file (give it with --profiles)"),
        FileKind::Suite => Some("the folder's suite file (its scenarios use it)"),
        FileKind::Scenario | FileKind::Other => None,
    }
}

/// Reads and classifies `path`; a file that is no valid TOML is an error
/// at its place.
fn classify(path: &Path) -> Result<FileKind, CliError> {
    let bytes = scenario::parse::read_bounded(path, scenario::parse::MAX_FILE_BYTES)
        .map_err(|e| CliError::usage(format!("{}: cannot read: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    scenario::parse::classify(path, &text)
        .map_err(|d| CliError::usage(d.to_string().trim_end().to_string()))
}
