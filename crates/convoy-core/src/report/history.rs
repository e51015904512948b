//! The run history: a directory of saved `report.json` files, one per run
//! (`reports/history/<run-id>.json`), from which [`mod@super::compare`] learns
//! how much each figure moves between runs when nothing changed.
//!
//! A directory of plain reports is easy to keep in a CI cache or artifact,
//! to inspect by hand and to prune. Files that cannot be read as reports are
//! skipped (and listed), so that one damaged file does not stop a nightly
//! comparison.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Report, json};

/// The default history directory.
pub const DEFAULT_DIR: &str = "reports/history";

/// The runs found in a history directory.
#[derive(Debug, Default)]
pub struct History {
    /// Reports, oldest first.
    pub runs: Vec<Report>,
    /// Files that could not be read, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// The directory does not exist. Loading still succeeds (a nightly's
    /// first run has no history yet), but a caller that was given the
    /// directory should say so: a mistyped path looks exactly like this.
    pub missing: bool,
}

/// Reads every `*.json` report in `dir`, oldest run first. A missing
/// directory is an empty history with [`History::missing`] set.
pub fn load(dir: &Path) -> io::Result<History> {
    let mut history = History {
        missing: !dir.exists(),
        ..History::default()
    };
    for path in json_files(dir)? {
        // The one report reader: size-capped and validated.
        match super::artifacts::read_report(&path).map_err(|e| e.to_string()) {
            Ok(report) => history.runs.push(report),
            Err(why) => history.skipped.push((path, why)),
        }
    }
    history
        .runs
        .sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
    Ok(history)
}

/// Saves `report` into `dir` as `<run-id>.json` (creating the directory),
/// then, when `keep` is given, deletes the oldest runs beyond that many.
/// Returns the file written.
pub fn record(report: &Report, dir: &Path, keep: Option<usize>) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(file_name(&report.run_id));
    super::artifacts::write_atomic(&path, json::render(report).as_bytes())?;
    if let Some(keep) = keep {
        prune(dir, keep.max(1))?;
    }
    Ok(path)
}

/// The file name of a run in the history: its id with anything but
/// letters, digits, `-`, `_` and `.` replaced, so an id can never name a
/// path outside the directory.
pub fn file_name(run_id: &str) -> String {
    let safe: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "run.json".to_string()
    } else {
        format!("{safe}.json")
    }
}

/// Deletes the oldest readable runs of `dir` beyond the newest `keep`.
fn prune(dir: &Path, keep: usize) -> io::Result<()> {
    let mut dated = Vec::new();
    for path in json_files(dir)? {
        let date = fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Dated>(&t).ok());
        if let Some(d) = date {
            dated.push((d.started_at, path));
        }
    }
    dated.sort();
    let excess = dated.len().saturating_sub(keep);
    for (_, path) in dated.into_iter().take(excess) {
        fs::remove_file(path)?;
    }
    Ok(())
}

/// Just enough of a report to date it without decoding its histograms.
#[derive(serde::Deserialize)]
struct Dated {
    #[serde(with = "crate::engine::rfc3339")]
    started_at: std::time::SystemTime,
}

fn json_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_cannot_escape_the_directory() {
        assert_eq!(
            file_name("20261122T044100Z-1a2b3c"),
            "20261122T044100Z-1a2b3c.json"
        );
        assert_eq!(file_name("../../etc/passwd"), "_.._etc_passwd.json");
        assert_eq!(file_name(".."), "run.json");
        assert_eq!(file_name("a/b"), "a_b.json");
    }

    #[test]
    fn a_missing_directory_is_an_empty_history_marked_missing() {
        let h = load(Path::new("/nonexistent/convoy/history")).unwrap();
        assert!(h.runs.is_empty() && h.skipped.is_empty());
        assert!(h.missing);
        let dir = tempfile::tempdir().unwrap();
        let empty = load(dir.path()).unwrap();
        assert!(empty.runs.is_empty() && !empty.missing);
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(load(file.path()).is_err());
    }
}
