//! The JSON rendering of a report, and reading one back.

use super::{Report, SCHEMA};

/// A saved report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON, or not a report.
    #[error("line {line}, column {column}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde said.
        message: String,
    },
    /// A report of another schema.
    #[error("unsupported schema {found:?}: this convoy reads {SCHEMA:?}")]
    Schema {
        /// The schema the file declares.
        found: String,
    },
}

/// Pretty-printed JSON, newline-terminated.
pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a report always serialises");
    s.push('\n');
    s
}

/// Parses a report, checks its schema and recomputes its derived figures.
pub fn parse(text: &str) -> Result<Report, ReadError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ReadError::Parse {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema != SCHEMA {
        return Err(ReadError::Schema {
            found: schema.to_string(),
        });
    }
    let mut report: Report = serde_json::from_value(value).map_err(|e| ReadError::Parse {
        line: 0,
        column: 0,
        message: e.to_string(),
    })?;
    report.recompute();
    Ok(report)
}
