//! Mistakes in scenario files are reported at the right file, line and
//! column, with a hint, never a panic.

use std::path::Path;

use convoy::scenario::Diagnostic;
use convoy::scenario::parse::{Env, parse};

struct NoEnv;
impl Env for NoEnv {
    fn get(&self, name: &str) -> Option<String> {
        (name == "API_TOKEN").then(|| "tok-123456".into())
    }
}

fn err(text: &str) -> Diagnostic {
    match parse(Path::new("s.toml"), text, &NoEnv) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(d) => d,
    }
}

/// Line and column of the first occurrence of `needle` (1-based).
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let col = text[..at].rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

fn assert_at(d: &Diagnostic, text: &str, needle: &str) {
    assert_eq!((d.line, d.column), pos(text, needle), "{d}");
    let shown = d.to_string();
    assert!(
        shown.contains(&format!("--> s.toml:{}:{}", d.line, d.column)),
        "{shown}"
    );
    assert!(shown.contains('^'), "{shown}");
}

const STEP: &str = "[[step]]\nname = \"a\"\npath = \"/health\"\n";

#[test]
fn unknown_key_suggests_the_right_one() {
    let text = format!("{STEP}captrue = {{ id = \"/id\" }}\n");
    let d = err(&text);
    assert_at(&d, &text, "captrue");
    assert!(d.message.contains("unknown key \"captrue\""), "{d}");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"capture\"?"));
}

#[test]
fn toml_syntax_errors_are_located() {
    let text = format!("{STEP}status = [200,\n");
    let d = err(&text);
    // Reported where the `]` was expected: the end of line 4.
    assert_eq!((d.line, d.column), (4, "status = [200,".len() + 1), "{d}");
    assert!(d.message.contains("unclosed array"), "{d}");
}

#[test]
fn wrong_types_are_located() {
    let text = format!("{STEP}status = \"ok\"\n");
    let d = err(&text);
    assert_at(&d, &text, "\"ok\"");
    assert!(d.message.contains("invalid status"), "{d}");
}

#[test]
fn undefined_variables_point_inside_the_string() {
    let text = "[[step]]\nname = \"a\"\npath = \"/orders/{{ ordr_id }}\"\ncapture = { order_id = \"/id\" }\n";
    let d = err(text);
    assert_at(&d, text, "ordr_id");
    assert!(d.message.contains("undefined variable \"ordr_id\""), "{d}");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"order_id\"?"));
    assert_eq!(d.width, "ordr_id".len());
}

#[test]
fn undefined_variables_in_json_bodies_are_located() {
    let text = "[[step]]\nname = \"a\"\nmethod = \"POST\"\npath = \"/o\"\njson = { ref = \"{{ nope }}\" }\n";
    let d = err(text);
    assert_at(&d, text, "nope");
}

#[test]
fn missing_environment_variables_are_reported_at_load() {
    let text = "[identities.ci]\ntoken = \"{{ env.MISSING_TOKEN }}\"\n[[step]]\nas = \"ci\"\npath = \"/\"\n";
    let d = err(text);
    assert_at(&d, text, "env.MISSING_TOKEN");
    assert!(d.message.contains("MISSING_TOKEN is not set"), "{d}");
    // A set one is accepted.
    let ok =
        "[identities.ci]\ntoken = \"{{ env.API_TOKEN }}\"\n[[step]]\nas = \"ci\"\npath = \"/\"\n";
    assert!(parse(Path::new("s.toml"), ok, &NoEnv).is_ok());
}

#[test]
fn undefined_identities_suggest_declared_ones() {
    let text = "[identities.admin]\ntoken = \"t\"\n[[step]]\nas = \"admn\"\npath = \"/\"\n";
    let d = err(text);
    assert_at(&d, text, "\"admn\"");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"admin\"?"));
}

#[test]
fn bad_durations_methods_urls_and_pointers() {
    let text = format!("{STEP}think = \"5 parsecs\"\n");
    assert_at(&err(&text), &text, "\"5 parsecs\"");

    let text = "[[step]]\nmethod = \"GTE\"\npath = \"/\"\n";
    let d = err(text);
    assert_at(&d, text, "\"GTE\"");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"GET\"?"));

    let text = format!("base_url = \"ftp://x\"\n{STEP}");
    assert_at(&err(&text), &text, "\"ftp://x\"");

    let text = format!("{STEP}capture = {{ id = \"id\" }}\n");
    let d = err(&text);
    assert!(d.message.contains("JSON pointer"), "{d}");
    assert_eq!(d.line, 4);
}

#[test]
fn check_mistakes() {
    let text = format!("{STEP}checks = [{{ json = \"/a\", equls = 1 }}]\n");
    let d = err(&text);
    assert_at(&d, &text, "equls");
    assert_eq!(d.hint.as_deref(), Some("did you mean \"equals\"?"));

    let text = format!("{STEP}checks = [{{ json = \"/a\" }}]\n");
    assert!(err(&text).message.contains("needs a predicate"));

    let text = format!("{STEP}checks = [{{ json = \"/a\", matches = \"(\" }}]\n");
    let d = err(&text);
    assert!(d.message.contains("regular expression"), "{d}");
    // At the mistake inside the pattern: the group left open.
    assert_at(&d, &text, "(");

    let text = format!("{STEP}checks = [{{ jsonpath = \"$..a\", exists = true }}]\n");
    assert!(err(&text).message.contains("unsupported JSONPath"));
}

#[test]
fn template_syntax_errors() {
    let text = "[[step]]\npath = \"/a/{{ uuid\"\n";
    let d = err(text);
    assert_at(&d, text, "{{ uuid");
    assert!(d.message.contains("unclosed"), "{d}");
}

#[test]
fn empty_and_stepless_files() {
    assert!(err("").message.contains("empty"));
    assert!(err("   \n# only a comment\n").message.contains("no steps"));
    assert!(err("name = \"x\"\n").message.contains("no steps"));
}

#[test]
fn duplicate_step_names() {
    let text = "[[step]]\nname = \"a\"\npath = \"/\"\n[[step]]\nname = \"a\"\npath = \"/b\"\n";
    let d = err(text);
    assert_eq!(d.line, 5, "{d}");
    assert!(d.message.contains("two steps are named"), "{d}");
}

#[test]
fn isolation_and_replay_mistakes() {
    let text = "[identities.x]\ntoken = \"t\"\n[[step]]\nname = \"p\"\n[step.isolation]\nas = \"x\"\nresource = \"/o\"\nroutes = [\"GET\", \"FETCH /a\"]\n";
    let d = err(text);
    assert_at(&d, text, "\"FETCH /a\"");

    let text = format!("{STEP}[step.replay]\ntimes = 1\nid = \"/id\"\n");
    let d = err(&text);
    assert_at(&d, &text, "1\nid");
}

#[test]
fn invalid_utf8_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
    let d = convoy::scenario::parse::load_file(&path).unwrap_err();
    assert!(d.message.contains("UTF-8"), "{d}");
    assert_eq!(d.line, 1);
}

#[test]
fn a_mistake_in_a_json_table_is_located_not_its_copy_in_a_comment() {
    // The same text sits in a comment above; the mistake is in an array of
    // the `[step.json]` table.
    let text = "[[step]]\nmethod = \"POST\"\npath = \"/o\"\n# \"{{ nope }}\"\n\
                [step.json]\nnote = \"{{ uuid }}\"\nlines = [{ a = 1 }, { b = \"{{ nope }}\" }]\n";
    let d = err(text);
    assert!(d.message.contains("undefined variable \"nope\""), "{d}");
    let line = text.lines().position(|l| l.starts_with("lines")).unwrap() + 1;
    let col = text.lines().nth(line - 1).unwrap().find("nope").unwrap() + 1;
    assert_eq!((d.line, d.column), (line, col), "{d}");
}

#[test]
fn a_placeholder_after_escapes_is_located_exactly() {
    let text = "[[step]]\npath = \"/o/\\u00FC\\t{{ nope }}\"\n";
    let d = err(text);
    assert_at(&d, text, "nope");
}

#[test]
fn a_byte_order_mark_is_not_a_column() {
    let text = "\u{feff}nmae = \"x\"\n[[step]]\npath = \"/health\"\n";
    let d = err(text);
    assert_eq!((d.line, d.column), (1, 1), "{d}");
    assert!(d.to_string().contains("1 | nmae = \"x\""), "{d}");
}

#[test]
fn a_data_file_over_the_limit_is_refused_naming_it_and_the_limit() {
    use convoy::scenario::data::MAX_DATA_FILE_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.csv");
    // Sparse: no disk is written for the zeros.
    std::fs::File::create(&data)
        .unwrap()
        .set_len(MAX_DATA_FILE_BYTES as u64 + 1)
        .unwrap();
    let scenario = dir.path().join("s.toml");
    let text = "[data]\nfile = \"rows.csv\"\n\n[[step]]\npath = \"/c/{{ data.city }}\"\n";
    std::fs::write(&scenario, text).unwrap();
    let d = convoy::scenario::parse::load_file(&scenario).unwrap_err();
    assert_eq!((d.line, d.column), (2, 8), "{d}");
    assert!(d.message.contains(&data.display().to_string()), "{d}");
    assert!(d.message.contains("64 MiB"), "{d}");
    assert!(d.message.contains("the limit for data files"), "{d}");
}
