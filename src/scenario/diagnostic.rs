//! Errors in scenario files, reported the way rustc does: `file:line:col`,
//! the offending line, a caret under the mistake, and a hint.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A mistake in a scenario (or profile) file, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
    /// The line's text.
    pub source_line: String,
    /// How many characters the caret underlines.
    pub width: usize,
}

impl std::error::Error for Diagnostic {}

impl Diagnostic {
    /// A diagnostic at byte range `span` of `text`.
    pub fn at(path: &Path, text: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        // A byte-order mark is invisible in an editor: it is no column.
        let start = floor_char_boundary(text, span.start.min(text.len())).max(bom_len(text));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(bom_len(text), |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        let width = text[start..end.min(line_end).max(start)]
            .chars()
            .count()
            .max(1);
        Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint: None,
            source_line,
            width,
        }
    }

    /// A diagnostic about the whole file (line 1, column 1).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: None,
            source_line: String::new(),
            width: 1,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The byte range of character `column` (1-based) of a string value whose
/// TOML source spans `span`: inside the quotes when the value is written
/// there verbatim, the whole value otherwise.
pub fn column_in_string(
    text: &str,
    span: Range<usize>,
    value: &str,
    column: usize,
) -> Range<usize> {
    let quoted = text.get(span.clone()).unwrap_or("");
    let start = if quoted.starts_with('"') || quoted.starts_with('\'') {
        span.start + 1
    } else {
        span.start
    };
    if text.get(start..start + value.len()) != Some(value) {
        return span;
    }
    let offset: usize = value
        .chars()
        .take(column.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    start + offset..start + offset + 1
}

/// The length of the UTF-8 byte-order mark `text` starts with, if any.
fn bom_len(text: &str) -> usize {
    if text.starts_with(BOM) { BOM.len_utf8() } else { 0 }
}

/// The UTF-8 byte-order mark some Windows editors put at the start of a file.
pub const BOM: char = '\u{feff}';

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        let gutter = self.line.to_string().len();
        writeln!(
            f,
            "{:gutter$}--> {}:{}:{}",
            "",
            self.path.display(),
            self.line,
            self.column
        )?;
        if !self.source_line.is_empty() {
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {}", self.line, self.source_line)?;
            let pad: String = self
                .source_line
                .chars()
                .take(self.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "{:gutter$} | {pad}{}", "", "^".repeat(self.width))?;
            if self.hint.is_none() {
                writeln!(f)?;
            }
        }
        if let Some(h) = &self.hint {
            if !self.source_line.is_empty() {
                writeln!(f, " {h}")?;
            } else {
                writeln!(f, "{:gutter$} = help: {h}", "")?;
            }
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely
/// typo (Levenshtein distance at most a third of the word, at least 1).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance where swapping two neighbours counts as one edit (optimal
/// string alignment), so `GTE` is one edit from `GET`.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_line_and_column() {
        let text = "name = \"x\"\n[[step]]\ncaptrue = 1\n";
        let at = text.find("captrue").unwrap();
        let d = Diagnostic::at(
            Path::new("s.toml"),
            text,
            at..at + 7,
            "unknown key \"captrue\"",
        )
        .with_hint("did you mean \"capture\"?");
        assert_eq!((d.line, d.column, d.width), (3, 1, 7));
        let shown = d.to_string();
        assert!(shown.contains("--> s.toml:3:1"), "{shown}");
        assert!(shown.contains("3 | captrue = 1"), "{shown}");
        assert!(
            shown.contains("  | ^^^^^^^ did you mean \"capture\"?"),
            "{shown}"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "a = \"ü\" bad";
        let at = text.find("bad").unwrap();
        let d = Diagnostic::at(Path::new("s.toml"), text, at..at + 3, "x");
        assert_eq!(d.column, 9);
    }

    #[test]
    fn a_byte_order_mark_is_no_column() {
        let text = "\u{feff}nmae = 1\nx = 2\n";
        let at = text.find("nmae").unwrap();
        let d = Diagnostic::at(Path::new("s.toml"), text, at..at + 4, "x");
        assert_eq!((d.line, d.column, d.width), (1, 1, 4));
        assert_eq!(d.source_line, "nmae = 1");
        let d = Diagnostic::at(Path::new("s.toml"), text, 0..0, "x");
        assert_eq!((d.line, d.column), (1, 1));
        assert_eq!(d.source_line, "nmae = 1");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("captrue", ["capture", "checks"]),
            Some("capture")
        );
        assert_eq!(did_you_mean("zzz", ["capture", "checks"]), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("GTE", "GET"), 1);
    }
}
