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
    /// A JSON report of this schema whose values are out of bounds.
    #[error("{0}")]
    Invalid(#[from] super::validate::Invalid),
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

/// A comparison as pretty-printed JSON, newline-terminated.
pub fn render_comparison(c: &super::Comparison) -> String {
    let mut s = serde_json::to_string_pretty(c).expect("a comparison always serialises");
    s.push('\n');
    s
}

/// Parses a report, checks its schema and its values
/// ([`super::validate`]) and recomputes its derived figures.
pub fn parse(text: &str) -> Result<Report, ReadError> {
    if text.trim().is_empty() {
        return Err(ReadError::Parse {
            line: 1,
            column: 1,
            message: format!("the file is empty: expected a {SCHEMA} JSON document"),
        });
    }
    // A first pass reads the schema and counts the steps and windows,
    // allocating nothing for the rest of the document.
    let shape: super::validate::Shape = serde_json::from_str(text).map_err(parse_error)?;
    let schema = shape.schema.as_deref().unwrap_or("");
    if schema != SCHEMA {
        return Err(ReadError::Schema {
            found: schema.to_string(),
        });
    }
    shape.check()?;
    // Parsing the text again (rather than the value) is what gives a
    // structural error its line and column.
    let mut report: Report = serde_json::from_str(text).map_err(parse_error)?;
    super::validate::check(&report)?;
    report.recompute();
    Ok(report)
}

fn parse_error(e: serde_json::Error) -> ReadError {
    let full = e.to_string();
    // serde_json appends " at line L column C"; the position has fields.
    let message = match full.rsplit_once(" at line ") {
        Some((m, _)) if e.line() > 0 => m.to_string(),
        _ => full,
    };
    ReadError::Parse {
        line: e.line().max(1),
        // serde_json says column 0 for "before the first character of the
        // line" (the end of an empty line, say); editors count from 1.
        column: e.column().max(1),
        message,
    }
}
