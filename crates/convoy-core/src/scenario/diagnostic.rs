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
/// TOML source spans `span`: inside the quotes (escapes and multi-line
/// strings included), or the whole value when that cannot be told.
pub fn column_in_string(
    text: &str,
    span: Range<usize>,
    value: &str,
    column: usize,
) -> Range<usize> {
    let offset: usize = value
        .chars()
        .take(column.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    let len = value[offset..].chars().next().map_or(0, char::len_utf8);
    range_in_string(text, span, value, offset..offset + len)
}

/// The bytes of `text` that wrote bytes `at` of string value `value`, whose
/// TOML source spans `span`; the whole value when they cannot be told, so
/// a caret is never put at a wrong place.
pub fn range_in_string(
    text: &str,
    span: Range<usize>,
    value: &str,
    at: Range<usize>,
) -> Range<usize> {
    text.get(span.clone())
        .and_then(|source| super::source::source_range(source, value, at))
        .map(|r| span.start + r.start..span.start + r.end)
        .unwrap_or(span)
}

/// The length of the UTF-8 byte-order mark `text` starts with, if any.
fn bom_len(text: &str) -> usize {
    if text.starts_with(BOM) {
        BOM.len_utf8()
    } else {
        0
    }
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
            let excerpt = Excerpt::new(&self.source_line, self.column, self.width);
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {}", self.line, excerpt.shown)?;
            write!(
                f,
                "{:gutter$} | {}{}",
                "",
                excerpt.pad,
                "^".repeat(excerpt.width)
            )?;
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

/// Longest source line shown whole, in characters. A longer one (a minified
/// body pasted on one line) is cut to a window of this many characters
/// around the caret, so a diagnostic stays a few lines of text.
pub const MAX_SHOWN_CHARS: usize = 120;

/// Characters shown before the caret when a long line is cut.
const CONTEXT_BEFORE_CARET: usize = 40;

/// The part of a source line a diagnostic shows, and its caret line.
struct Excerpt {
    /// The line, or a window of it with `…` where it was cut.
    shown: String,
    /// What goes before the caret: a space per character shown before the
    /// mistake, a tab per tab, so the caret lines up under it.
    pad: String,
    /// Carets, no wider than what is shown after the caret's column.
    width: usize,
}

impl Excerpt {
    fn new(line: &str, column: usize, width: usize) -> Self {
        let total = line.chars().count();
        let caret = column.saturating_sub(1).min(total);
        let (from, to) = if total <= MAX_SHOWN_CHARS {
            (0, total)
        } else {
            let from = caret
                .saturating_sub(CONTEXT_BEFORE_CARET)
                .min(total - MAX_SHOWN_CHARS);
            (from, from + MAX_SHOWN_CHARS)
        };
        let mut shown = String::new();
        let mut pad = String::new();
        if from > 0 {
            shown.push('…');
            pad.push(' ');
        }
        for (i, c) in line.chars().enumerate().skip(from).take(to - from) {
            shown.push(c);
            if i < caret {
                pad.push(if c == '\t' { '\t' } else { ' ' });
            }
        }
        if to < total {
            shown.push('…');
        }
        Excerpt {
            shown,
            pad,
            width: width.min(to.saturating_sub(caret)).max(1),
        }
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

    /// The caret line under the source line of a rendered diagnostic.
    fn shown_and_caret(d: &Diagnostic) -> (String, String) {
        let shown = d.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("{} | ", d.line)))
            .expect("a source line");
        let strip = |l: &str| l.split_once(" | ").expect("a gutter").1.to_string();
        (strip(lines[at]), strip(lines[at + 1]))
    }

    #[test]
    fn a_long_line_is_cut_around_the_caret() {
        let text = format!(
            "a = \"{}\" bad = 1 {}\n",
            "ü".repeat(5000),
            "x".repeat(5000)
        );
        let at = text.find("bad").unwrap();
        let d = Diagnostic::at(Path::new("s.toml"), &text, at..at + 3, "x");
        assert_eq!(d.column, 5 + 5000 + 3);
        let (line, caret) = shown_and_caret(&d);
        assert!(line.starts_with('…') && line.ends_with('…'), "{line}");
        assert_eq!(line.chars().count(), MAX_SHOWN_CHARS + 2, "{line}");
        let caret_at = caret.find('^').expect("a caret");
        assert_eq!(caret.trim_end(), format!("{}^^^", " ".repeat(caret_at)));
        let under: String = line.chars().skip(caret_at).take(3).collect();
        assert_eq!(under, "bad", "{line}\n{caret}");
        assert!(d.to_string().contains(&format!("s.toml:1:{}", d.column)));
    }

    #[test]
    fn a_long_line_keeps_tabs_in_the_caret_line_and_clips_the_carets() {
        let text = format!("\t\tkey = \"{}\"\n", "y".repeat(3000));
        let at = text.find("key").unwrap();
        let d = Diagnostic::at(Path::new("s.toml"), &text, at..text.len() - 1, "x");
        let (line, caret) = shown_and_caret(&d);
        assert!(line.starts_with("\t\tkey") && line.ends_with('…'), "{line}");
        assert_eq!(caret, format!("\t\t{}", "^".repeat(MAX_SHOWN_CHARS - 2)));
    }

    #[test]
    fn a_mistake_at_the_end_of_a_long_line_shows_the_end() {
        let text = format!("v = \"{}\" x\n", "z".repeat(3000));
        let at = text.rfind('x').unwrap();
        let d = Diagnostic::at(Path::new("s.toml"), &text, at..at + 1, "x");
        let (line, caret) = shown_and_caret(&d);
        assert!(line.starts_with('…') && line.ends_with("\" x"), "{line}");
        assert_eq!(
            caret.chars().count(),
            line.chars().count(),
            "{line}\n{caret}"
        );
        assert!(caret.ends_with(" ^"), "{caret}");
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
