//! The malformed corpus in `tests/malformed/`: every file there is a mistake
//! a user could make in a scenario (or, under `profiles/`, a profile file).
//! Each must be refused with a diagnostic at the right `file:line:col`,
//! never accepted and never a panic.
//!
//! A file states what it expects in its first lines:
//!
//! ```text
//! # expect: LINE:COL substring of the message
//! # hint: substring of the hint            (optional)
//! ```
//!
//! Files that cannot hold a comment (empty, invalid UTF-8, a byte-order
//! mark first) have the same lines in a sidecar `NAME.toml.expect`. Data
//! files the scenarios point at live in `data/`.

use std::any::Any;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use convoy::scenario::Diagnostic;
use convoy::scenario::parse::{self, MAX_FILE_BYTES};

/// Where the corpus lives.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

/// Which parser a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scenario,
    Profile,
}

/// One corpus file and what it expects.
#[derive(Debug)]
struct Case {
    path: PathBuf,
    kind: Kind,
    line: usize,
    column: usize,
    message: String,
    hint: Option<String>,
}

impl Case {
    fn name(&self) -> String {
        self.path
            .strip_prefix(corpus_dir())
            .unwrap_or(&self.path)
            .display()
            .to_string()
    }
}

/// Every `.toml` file of the corpus, in a stable order.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for (dir, kind) in [
        (corpus_dir(), Kind::Scenario),
        (corpus_dir().join("profiles"), Kind::Profile),
    ] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        cases.extend(paths.into_iter().map(|p| read_case(p, kind)));
    }
    cases
}

/// Reads the expectation header of `path` (or of its sidecar).
fn read_case(path: PathBuf, kind: Kind) -> Case {
    let sidecar = path.with_extension("toml.expect");
    let header = if sidecar.exists() {
        std::fs::read_to_string(&sidecar).expect("sidecar files are UTF-8")
    } else {
        String::from_utf8_lossy(&std::fs::read(&path).expect("corpus files are readable"))
            .into_owned()
    };
    let mut expect = None;
    let mut hint = None;
    for line in header.lines().take_while(|l| l.starts_with('#')) {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("# expect: ") {
            expect = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("# hint: ") {
            hint = Some(rest.to_string());
        }
    }
    let expect = expect.unwrap_or_else(|| {
        panic!(
            "{}: no `# expect: LINE:COL message` line (or sidecar .expect file)",
            path.display()
        )
    });
    let (position, message) = expect.split_once(' ').unwrap_or((&expect, ""));
    let (line, column) = position
        .split_once(':')
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
        .unwrap_or_else(|| panic!("{}: bad position {position:?}", path.display()));
    Case {
        path,
        kind,
        line,
        column,
        message: message.trim().to_string(),
        hint,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Loads the file the way `convoy run` would; a panic becomes an error.
fn diagnose(path: &Path, kind: Kind) -> Result<Diagnostic, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| match kind {
        Kind::Scenario => parse::load_file(path).map(|_| ()),
        Kind::Profile => convoy::profile::load_file(path).map(|_| ()),
    }));
    match outcome {
        Err(payload) => Err(format!("panicked: {}", panic_message(payload.as_ref()))),
        Ok(Ok(())) => Err("accepted: no diagnostic at all".into()),
        Ok(Err(d)) => Ok(d),
    }
}

/// Checks one case; the error says what differs from the expectation.
fn check(case: &Case) -> Result<(), String> {
    let d = diagnose(&case.path, case.kind)?;
    let mut problems = Vec::new();
    if (d.line, d.column) != (case.line, case.column) {
        problems.push(format!(
            "at {}:{}, expected {}:{}",
            d.line, d.column, case.line, case.column
        ));
    }
    if !d.message.contains(&case.message) {
        problems.push(format!("message {:?} lacks {:?}", d.message, case.message));
    }
    if let Some(h) = &case.hint
        && !d.hint.as_deref().is_some_and(|dh| dh.contains(h.as_str()))
    {
        problems.push(format!("hint {:?} lacks {h:?}", d.hint));
    }
    if d.path != case.path {
        problems.push(format!("names file {}", d.path.display()));
    }
    let shown = d.to_string();
    let location = format!("{}:{}:{}", case.path.display(), d.line, d.column);
    if !shown.contains(&location) {
        problems.push(format!("rendered text lacks {location}"));
    }
    let excerpt = format!("{} | ", d.line);
    if let Some(long) = shown
        .lines()
        .find(|l| l.starts_with(&excerpt) && l.chars().count() > MAX_EXCERPT_LINE)
    {
        problems.push(format!(
            "the source line is shown with {} characters",
            long.chars().count()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{}", problems.join("; "), indent(&shown)))
    }
}

/// Longest source line a rendered diagnostic may show, with its gutter and
/// `…` marks: a long line is cut to a window around the caret.
const MAX_EXCERPT_LINE: usize = 200;

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}\n")).collect()
}

/// Runs `cases` and fails with one paragraph per case that went wrong.
fn assert_all_pass<'a>(cases: impl Iterator<Item = &'a Case>) -> usize {
    let mut report = String::new();
    let mut count = 0;
    for case in cases {
        count += 1;
        if let Err(why) = check(case) {
            let _ = writeln!(report, "  {}: {why}", case.name());
        }
    }
    assert!(report.is_empty(), "malformed files misreported:\n{report}");
    count
}

#[test]
fn corpus_is_large_and_every_file_states_its_expectation() {
    let cases = corpus();
    let scenarios = cases.iter().filter(|c| c.kind == Kind::Scenario).count();
    let profiles = cases.len() - scenarios;
    assert!(scenarios >= 60, "only {scenarios} scenario files");
    assert!(profiles >= 5, "only {profiles} profile files");
    for c in &cases {
        assert!(
            !c.message.is_empty(),
            "{}: the expectation names no message",
            c.name()
        );
    }
}

#[test]
fn every_malformed_file_is_refused_at_its_position() {
    let cases = corpus();
    let checked = assert_all_pass(cases.iter());
    assert!(checked >= 60, "only {checked} files checked");
}

/// A step, repeated to build large files.
fn step(i: usize) -> String {
    format!("[[step]]\nname = \"step {i}\"\npath = \"/api/orders/{i}\"\nstatus = 200\n\n")
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let mut text = String::new();
    let mut i = 0;
    while text.len() <= MAX_FILE_BYTES {
        text.push_str(&step(i));
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    let d = diagnose(&path, Kind::Scenario).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((d.line, d.column), (1, 1), "{d}");
    assert!(d.message.contains("the limit is"), "{d}");
    assert!(
        d.to_string().contains(&format!("{}:1:1", path.display())),
        "{d}"
    );
}

#[test]
fn large_file_under_the_limit_reports_its_mistake_at_the_very_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.toml");
    let mut text = String::new();
    let mut i = 0;
    while text.len() < MAX_FILE_BYTES - 64 * 1024 {
        text.push_str(&step(i));
        i += 1;
    }
    text.push_str("[[step]]\npath = \"/health\"\nstatsu = 200\n");
    std::fs::write(&path, &text).unwrap();
    let last_line = text.lines().count();
    let d = diagnose(&path, Kind::Scenario).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((d.line, d.column), (last_line, 1), "{d}");
    assert_eq!(d.message, "unknown key \"statsu\"");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"status\"?"));
}

#[test]
fn missing_scenario_file_is_reported_with_its_path() {
    let path = corpus_dir().join("this-file-does-not-exist.toml");
    let d = diagnose(&path, Kind::Scenario).unwrap_or_else(|e| panic!("{e}"));
    assert!(d.message.contains("cannot read scenario file"), "{d}");
    assert!(
        d.to_string().contains(&format!("{}:1:1", path.display())),
        "{d}"
    );
}

/// A mistake at the end of a one-line megabyte (a minified body pasted into
/// `json`) shows a window of the line around the caret, not a megabyte.
#[test]
fn a_mistake_on_a_very_long_line_renders_a_short_excerpt() {
    let filler = "x".repeat(1024 * 1024);
    let text = format!(
        "[[step]]\npath = \"/api/orders\"\njson = {{ note = \"{filler}\", other = \"{{{{ nope }}}}\" }}\n"
    );
    let d = parse::parse(Path::new("long.toml"), &text, &parse::EnvScope).unwrap_err();
    assert_eq!(d.line, 3, "{}", d.message);
    assert!(
        d.message.contains("undefined variable \"nope\""),
        "{}",
        d.message
    );
    let shown = d.to_string();
    assert!(
        shown.len() < 4096,
        "the diagnostic is {} bytes long",
        shown.len()
    );
    assert!(shown.contains("nope"), "the excerpt shows the mistake");
}
