//! The files of a run: `report.json`, `report.md`, `junit.xml` and
//! `report.html`, written together into one directory (`reports/<run-id>/`),
//! and reading a saved report back from a file or a run directory.
//!
//! Every file is written to a temporary name beside its final one and then
//! renamed, so a CI step that picks the files up never sees half a report.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::{Format, Report, json, render};

/// The file name of the JSON report inside a run directory.
pub const REPORT_JSON: &str = "report.json";

/// The files [`write_all`] writes, with their formats.
pub const FILES: [(&str, Format); 4] = [
    (REPORT_JSON, Format::Json),
    ("report.md", Format::Md),
    ("junit.xml", Format::Junit),
    ("report.html", Format::Html),
];

/// Writes every artifact of `report` into `dir` (created if needed) and
/// returns the paths written, in [`FILES`] order. Only those fixed names
/// inside `dir` are ever written.
pub fn write_all(report: &Report, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::with_capacity(FILES.len());
    for (name, format) in FILES {
        let path = dir.join(name);
        write_atomic(&path, render(report, format).as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = match dir {
        Some(d) => d.join(&tmp_name),
        None => PathBuf::from(&tmp_name),
    };
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The largest report file convoy reads: 64 MiB.
///
/// The report of a real run is a few kilobytes to a few megabytes (its
/// size grows with the steps and the timeline windows, both bounded, not
/// with the requests), so this leaves ample headroom while a file that is
/// not a report at all (`/dev/zero`, a FIFO that never ends, a disk image)
/// is refused after reading at most this much: reading goes through
/// [`Read::take`], so memory stays bounded whatever the file claims to be.
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// A saved report could not be read from disk.
#[derive(Debug, thiserror::Error)]
pub enum ReadReportError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is larger than [`MAX_REPORT_BYTES`].
    #[error(
        "{}: larger than {} MiB, the most convoy reads as a report: not a convoy report?",
        .path.display(),
        MAX_REPORT_BYTES / (1024 * 1024)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a readable report.
    #[error("{}", invalid(path, source))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column when known.
        source: json::ReadError,
    },
}

fn invalid(path: &Path, source: &json::ReadError) -> String {
    match source {
        json::ReadError::Parse {
            line,
            column,
            message,
        } => format!("{}:{line}:{column}: {message}", path.display()),
        other => format!("{}: {other}", path.display()),
    }
}

/// Where the report of `path` is: the path itself, or `report.json` inside
/// it when it is a run directory.
pub fn report_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(REPORT_JSON)
    } else {
        path.to_path_buf()
    }
}

/// Reads the report at `path` (a `report.json` or a run directory holding
/// one): at most [`MAX_REPORT_BYTES`], then parsed and validated
/// ([`json::parse`]). Every command that reads a saved report (`report`,
/// `merge`, `compare`, `baseline`, the history) reads it through here.
pub fn read_report(path: &Path) -> Result<Report, ReadReportError> {
    let path = report_path(path);
    let bytes = read_capped(&path)?;
    parse_report(&path, &bytes)
}

/// The bytes of the file at `path`, refused when there are more than
/// [`MAX_REPORT_BYTES`]. A regular file's size is checked before reading;
/// anything else (a FIFO, `/dev/stdin`, a device) is read through
/// [`Read::take`] and refused once it passes the cap, so it cannot exhaust
/// memory.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadReportError> {
    let io_error = |source| ReadReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if meta.is_dir() {
        return Err(io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory without a report.json",
        )));
    }
    if meta.is_file() && meta.len() > MAX_REPORT_BYTES {
        return Err(ReadReportError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let expected = if meta.is_file() { meta.len() } else { 0 };
    let mut bytes = Vec::with_capacity(expected.min(MAX_REPORT_BYTES) as usize);
    file.take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(ReadReportError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Parses and validates the bytes of a report file; `path` only names the
/// file in errors. What [`read_report`] does once the bytes are read, for
/// callers (and the fuzzer) that have the bytes already.
pub fn parse_report(path: &Path, bytes: &[u8]) -> Result<Report, ReadReportError> {
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(ReadReportError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ReadReportError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })?;
    json::parse(text).map_err(|source| ReadReportError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
    }
}
