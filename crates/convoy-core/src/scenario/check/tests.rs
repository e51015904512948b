//! Each check kind, passing and failing, with its message; and the
//! mistakes compiling refuses.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::*;
use crate::scenario::compile::Env;
use crate::scenario::steps::Action;
use crate::scenario::steps::request::request_paths;
use crate::scenario::{Diagnostic, Scenario, parse};

struct NoEnv;
impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

fn scenario(checks: &str) -> Result<Scenario, Diagnostic> {
    let text = format!(
        "[vars]\nwanted = \"delivery_fee\"\n[[step]]\npath = \"/x\"\nchecks = [\n{checks}\n]\n"
    );
    parse::parse(Path::new("s.toml"), &text, &NoEnv)
}

/// The diagnostic for one check written as `check`, on line 6.
fn refused(check: &str) -> Diagnostic {
    scenario(check).expect_err("refused")
}

/// A response: `body`, and `headers` as `name: value` pairs.
fn response(body: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    HttpResponse {
        status: 200,
        headers: map,
        body: Bytes::from(body.to_string()),
    }
}

/// Every check of `checks` evaluated against `resp`, after `latency`,
/// with `secrets`: each label and verdict.
fn run_with(
    checks: &str,
    resp: &HttpResponse,
    latency: Duration,
    secrets: &Secrets,
) -> Vec<(String, Result<(), String>)> {
    let s = scenario(checks).unwrap_or_else(|d| panic!("{d:?}"));
    let Action::Request(r) = &s.steps[0].action else {
        panic!("a request step");
    };
    let paths = request_paths(r);
    let mut json = LazyJson::new(&resp.body, &paths);
    let ctx = RenderCtx {
        vu: 0,
        iteration: 0,
        vars: &s.initial,
        data: None,
        names: &s.slots,
        ident: &[],
        ident_names: &[],
    };
    r.checks
        .iter()
        .map(|c| {
            (
                c.label.clone(),
                evaluate(c, resp, &mut json, latency, &ctx, secrets),
            )
        })
        .collect()
}

/// The verdict of the one check `check` on `body`.
fn verdict(check: &str, body: &str) -> Result<(), String> {
    let resp = response(body, &[]);
    run_with(check, &resp, Duration::ZERO, &Secrets::default())
        .remove(0)
        .1
}

fn label(check: &str) -> String {
    run_with(
        check,
        &response("{}", &[]),
        Duration::ZERO,
        &Secrets::default(),
    )
    .remove(0)
    .0
}

const LEDGER: &str = r#"{"data": {"id": 7, "entries": [
    {"kind": "fare", "amount": 1200, "ref": "adj-1"},
    {"kind": "delivery_fee", "amount": "250", "ref": "adj-2"}
], "empty": [], "total": "1450.00", "big": 9007199254740993, "note": "late by 5 min"}}"#;

#[test]
fn negations_pass_and_fail_with_what_was_found() {
    assert_eq!(
        verdict(r#"{ json = "/data/id", not_equals = 8 }"#, LEDGER),
        Ok(())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/id", not_equals = "7" }"#, LEDGER),
        Err("found 7".into())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/note", not_contains = "early" }"#, LEDGER),
        Ok(())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/note", not_contains = "late" }"#, LEDGER),
        Err(r#""late by 5 min" contains "late""#.into())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/note", not_matches = "^\\d" }"#, LEDGER),
        Ok(())
    );
    assert_eq!(
        verdict(
            r#"{ json = "/data/note", not_matches = "\\d+ min" }"#,
            LEDGER
        ),
        Err(r#""late by 5 min" matches"#.into())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/gone", exists = false }"#, LEDGER),
        Ok(())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/id", exists = false }"#, LEDGER),
        Err("present: 7".into())
    );
    // A negation says something of a value that is there.
    assert_eq!(
        verdict(r#"{ json = "/data/gone", not_equals = "x" }"#, LEDGER),
        Err("absent".into())
    );
    assert_eq!(label(r#"{ json = "/a", not_equals = 1 }"#), "json /a != 1");
    assert_eq!(
        label(r#"{ json = "/a", not_contains = "x" }"#),
        "json /a does not contain \"x\""
    );
    assert_eq!(
        label(r#"{ json = "/a", not_matches = "x" }"#),
        "json /a does not match \"x\""
    );
}

#[test]
fn numeric_comparisons_read_numbers_and_numeric_strings() {
    let pass = [
        r#"{ json = "/data/id", less_than = 8 }"#,
        r#"{ json = "/data/id", at_most = 7 }"#,
        r#"{ json = "/data/id", greater_than = 6.5 }"#,
        r#"{ json = "/data/id", at_least = 7 }"#,
        r#"{ json = "/data/id", between = [7, 7] }"#,
        r#"{ json = "/data/total", between = [1000, 1450] }"#,
        r#"{ json = "/data/entries/1/amount", greater_than = 249.99 }"#,
        // Beyond 2^53, whole numbers compare exactly.
        r#"{ json = "/data/big", greater_than = 9007199254740992 }"#,
    ];
    for check in pass {
        assert_eq!(verdict(check, LEDGER), Ok(()), "{check}");
    }
    assert_eq!(
        verdict(r#"{ json = "/data/id", less_than = 7 }"#, LEDGER),
        Err("found 7".into())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/total", at_most = 1449.99 }"#, LEDGER),
        Err(r#"found "1450.00""#.into())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/note", at_least = 0 }"#, LEDGER),
        Err(r#""late by 5 min" is not a number"#.into())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/gone", at_least = 0 }"#, LEDGER),
        Err("absent".into())
    );
    assert_eq!(
        verdict(r#"{ json = "/n", at_least = 0 }"#, r#"{"n": "NaN"}"#),
        Err(r#""NaN" is not a number"#.into())
    );
    assert_eq!(label(r#"{ json = "/a", at_least = 2 }"#), "json /a >= 2");
    assert_eq!(
        label(r#"{ json = "/a", between = [1, 2.5] }"#),
        "json /a between 1 and 2.5"
    );
}

#[test]
fn regular_expressions_match_strings_and_numbers() {
    assert_eq!(
        verdict(
            r#"{ json = "/data/entries/0/ref", matches = "^adj-\\d+$" }"#,
            LEDGER
        ),
        Ok(())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/id", matches = "^7$" }"#, LEDGER),
        Ok(())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/note", matches = "(?i)^LATE" }"#, LEDGER),
        Ok(())
    );
    assert_eq!(
        verdict(r#"{ json = "/data/note", matches = "^early" }"#, LEDGER),
        Err(r#""late by 5 min" does not match"#.into())
    );
}

#[test]
fn some_element_every_element_and_no_element() {
    let some = r#"{ json = "/data/entries/*/kind", equals = "delivery_fee" }"#;
    assert_eq!(verdict(some, LEDGER), Ok(()));
    assert_eq!(
        label(some),
        r#"some json /data/entries/*/kind == "delivery_fee""#
    );
    // The same check on a ledger without the fee names what it found.
    let without = LEDGER.replace("delivery_fee", "tip");
    assert_eq!(
        verdict(some, &without),
        Err(r#"none of the 2 elements passes: /data/entries/0/kind "fare", /data/entries/1/kind "tip""#.into())
    );
    // With a template, as with a plain pointer.
    assert_eq!(
        verdict(
            r#"{ json = "/data/entries/*/kind", equals = "{{ wanted }}" }"#,
            LEDGER
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            r#"{ jsonpath = "$.data.entries[*].kind", contains = "delivery" }"#,
            LEDGER
        ),
        Ok(())
    );

    let none = r#"{ json = "/data/entries/*/kind", not_equals = "refund" }"#;
    assert_eq!(verdict(none, LEDGER), Ok(()));
    assert_eq!(label(none), r#"no json /data/entries/*/kind == "refund""#);
    assert_eq!(
        verdict(
            r#"{ json = "/data/entries/*/kind", not_equals = "fare" }"#,
            LEDGER
        ),
        Err(r#"/data/entries/0/kind: found "fare" (1 of 2 elements fail)"#.into())
    );
    // No element of an empty array is a refund; a missing ledger is absent.
    assert_eq!(
        verdict(
            r#"{ json = "/data/empty/*/kind", not_equals = "refund" }"#,
            LEDGER
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            r#"{ json = "/data/missing/*/kind", not_equals = "refund" }"#,
            LEDGER
        ),
        Err("absent: nothing at /data/missing".into())
    );
    assert_eq!(
        verdict(
            r#"{ json = "/data/note/*", not_equals = "refund" }"#,
            LEDGER
        ),
        Err("/data/note is not an array or object".into())
    );

    let every = r#"{ json = "/data/entries/*/amount", all = true, at_least = 100 }"#;
    assert_eq!(verdict(every, LEDGER), Ok(()));
    assert_eq!(label(every), "every json /data/entries/*/amount >= 100");
    assert_eq!(
        verdict(
            r#"{ json = "/data/entries/*/amount", all = true, greater_than = 1000 }"#,
            LEDGER
        ),
        Err(r#"/data/entries/1/amount: found "250" (1 of 2 elements fail)"#.into())
    );
    assert_eq!(
        verdict(
            r#"{ json = "/data/entries/*/refund", all = true, exists = true }"#,
            LEDGER
        ),
        Err("/data/entries/0/refund: absent (2 of 2 elements fail)".into())
    );
    // Every element of nothing proves nothing.
    assert_eq!(
        verdict(
            r#"{ json = "/data/empty/*/kind", all = true, equals = "fare" }"#,
            LEDGER
        ),
        Err("no element at /data/empty/*/kind".into())
    );
    let some_differs = r#"{ json = "/data/entries/*/kind", any = true, not_equals = "fare" }"#;
    assert_eq!(verdict(some_differs, LEDGER), Ok(()));
    assert_eq!(
        label(some_differs),
        r#"some json /data/entries/*/kind != "fare""#
    );
    assert_eq!(
        verdict(some_differs, &without.replace("tip", "fare")),
        Err(r#"none of the 2 elements passes: /data/entries/0/kind "fare", /data/entries/1/kind "fare""#.into())
    );
}

#[test]
fn wildcards_nest_and_walk_objects() {
    let body = r#"{"orders": [{"stops": [{"eta": 5}, {"eta": 9}]}, {"stops": [{"eta": 30}]}],
                  "rates": {"eu": 1.2, "us": 1.1}}"#;
    assert_eq!(
        verdict(
            r#"{ json = "/orders/*/stops/*/eta", all = true, less_than = 10 }"#,
            body
        ),
        Err("/orders/1/stops/0/eta: found 30 (1 of 3 elements fail)".into())
    );
    assert_eq!(
        verdict(
            r#"{ json = "/rates/*", all = true, between = [1, 2] }"#,
            body
        ),
        Ok(())
    );
    assert_eq!(
        verdict(
            r#"{ json = "/rates/*", all = true, less_than = 1.15 }"#,
            body
        ),
        Err("/rates/eu: found 1.2 (1 of 2 elements fail)".into())
    );
}

#[test]
fn header_checks() {
    let resp = response(
        "{}",
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("x-ratelimit-remaining", "7"),
            ("x-api-key", "k-123456789"),
        ],
    );
    let checks = r#"{ header = "content-type", equals = "application/json; charset=utf-8" },
{ header = "content-type", contains = "json" },
{ header = "content-type", matches = "^application/json" },
{ header = "content-type", not_contains = "xml" },
{ header = "x-request-id", exists = false },
{ header = "x-ratelimit-remaining", greater_than = 0 },
{ header = "Content-Type", exists = true },
{ header = "x-ratelimit-remaining", less_than = 5 },
{ header = "x-missing", exists = true },
{ header = "x-api-key", not_equals = "k-123456789" },
{ header = "content-type", equals = "text/html" },"#;
    let verdicts = run_with(checks, &resp, Duration::ZERO, &Secrets::default());
    for (label, v) in &verdicts[..7] {
        assert_eq!(v, &Ok(()), "{label}");
    }
    let failures: Vec<_> = verdicts[7..].iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(
        failures,
        [
            Err(r#"found "7""#.into()),
            Err("absent".into()),
            // Named like a secret: never shown.
            Err("found [REDACTED]".into()),
            Err(r#"expected "text/html", found "application/json; charset=utf-8""#.into()),
        ]
    );
}

#[test]
fn body_checks_and_the_latency_bound() {
    let resp = response("<h1>ok</h1>", &[]);
    let verdicts = run_with(
        r#"{ body_contains = "ok" }, { body_not_contains = "Exception" }, { body_not_contains = "h1" }, { latency_below = "50ms" }"#,
        &resp,
        Duration::from_millis(300),
        &Secrets::default(),
    );
    assert_eq!(verdicts[0], ("body contains \"ok\"".into(), Ok(())));
    assert_eq!(
        verdicts[1],
        ("body does not contain \"Exception\"".into(), Ok(()))
    );
    assert_eq!(verdicts[2].1, Err(r#""<h1>ok</h1>" contains "h1""#.into()));
    assert_eq!(
        verdicts[3],
        ("latency < 50ms".into(), Err("took 300.0 ms".into()))
    );
    let fast = run_with(
        r#"{ latency_below = "50ms" }"#,
        &resp,
        Duration::from_millis(10),
        &Secrets::default(),
    );
    assert_eq!(fast[0].1, Ok(()));
}

#[test]
fn failure_messages_are_redacted() {
    let secret = "SECRET-token-0123456789";
    let body = format!(
        r#"{{"entries": [{{"note": "{secret}"}}, {{"token": "t1"}}], "token": "t2", "n": "{secret}"}}"#
    );
    let resp = response(&body, &[("x-echo", secret)]);
    let secrets = Secrets::of([secret]);
    let verdicts = run_with(
        r#"{ json = "/entries/*/note", all = true, equals = "x" },
{ json = "/entries/*/note", equals = "x" },
{ json = "/entries/*/token", not_equals = "t1" },
{ json = "/token", not_equals = "t2" },
{ json = "/n", at_least = 1 },
{ header = "x-echo", not_contains = "SECRET" },"#,
        &resp,
        Duration::ZERO,
        &secrets,
    );
    for (label, v) in &verdicts {
        let why = v.clone().expect_err(label);
        assert!(!why.contains(secret), "{label}: {why}");
        assert!(!why.contains("t1") && !why.contains("t2"), "{label}: {why}");
        assert!(why.contains("[REDACTED"), "{label}: {why}");
    }
}

#[test]
fn a_secret_across_the_cut_of_a_shown_value_is_scrubbed_before_it() {
    let secret = "LOGINTOKEN-across-the-cut-0123";
    let v = Value::String(format!("{}{secret}", "a".repeat(110)));
    let shown = judge::short(&v.to_string(), &Secrets::of([secret]));
    assert!(!shown.contains("LOGINTOKEN"), "{shown}");
    // The marker itself may be cut; the secret is gone either way.
    assert!(shown.contains("[REDACTED"), "{shown}");
}

#[test]
fn loose_equality_of_numbers_and_strings() {
    use judge::loosely_equal;
    assert!(loosely_equal(&Value::from(1), &Value::from("1")));
    assert!(loosely_equal(&Value::from(1.0), &Value::from(1)));
    assert!(!loosely_equal(&Value::from("a"), &Value::from(1)));
}

#[test]
fn numbers_from_text() {
    use crate::scenario::model::Num;
    assert_eq!(Num::parse("7"), Some(Num::Int(7)));
    assert_eq!(Num::parse("-12.50"), Some(Num::Float(-12.5)));
    assert_eq!(Num::parse("1e3"), Some(Num::Float(1000.0)));
    for not in ["", "NaN", "inf", "-infinity", "7 apples", "0x10", " 7"] {
        assert_eq!(Num::parse(not), None, "{not:?}");
    }
}

#[test]
fn mistakes_are_refused_where_they_are_written() {
    // (check on line 6, expected column, message start, hint substring)
    let cases: &[(&str, usize, &str, Option<&str>)] = &[
        (
            r#"{ json = "/a", equals = 1, exists = true }"#,
            37,
            "a check has one predicate; found both equals and exists",
            None,
        ),
        (
            r#"{ json = "/a", header = "x", equals = 1 }"#,
            25,
            "a check has one subject; found both json and header",
            None,
        ),
        (
            r#"{ json = "/a", not_equal = 1 }"#,
            16,
            "unknown check key \"not_equal\"",
            Some("did you mean \"not_equals\"?"),
        ),
        (
            r#"{ json = "/a", less_than = "5" }"#,
            28,
            "expected a number",
            None,
        ),
        (
            r#"{ json = "/a", between = [5, 1] }"#,
            26,
            "between's LOW is above its HIGH",
            None,
        ),
        (
            r#"{ json = "/a", between = [1] }"#,
            26,
            "between takes [LOW, HIGH]",
            None,
        ),
        (
            r#"{ json = "/a", matches = "ab(c" }"#,
            29,
            "invalid regular expression: unclosed group",
            None,
        ),
        (
            r#"{ json = "/a", matches = "x{2,1}" }"#,
            28,
            "invalid regular expression",
            None,
        ),
        (
            r#"{ json = "/a", all = true, equals = 1 }"#,
            16,
            "`all` applies to a JSON pointer with a `*` segment",
            None,
        ),
        (
            r#"{ header = "x", any = true, equals = 1 }"#,
            17,
            "`any` applies to a JSON pointer with a `*` segment",
            None,
        ),
        (
            r#"{ json = "/a/*", any = true, all = true, equals = 1 }"#,
            30,
            "a check takes `any` or `all`, not both",
            None,
        ),
        (
            r#"{ json = "/a/*", all = false, equals = 1 }"#,
            24,
            "`all = false` means nothing",
            None,
        ),
        (
            r#"{ body_contains = "x", equals = "y" }"#,
            24,
            "`body_contains` is a check of its own: it takes no `equals`",
            None,
        ),
        (
            r#"{ latency_below = "1s", json = "/a" }"#,
            25,
            "`latency_below` is a check of its own: it takes no `json`",
            None,
        ),
        (
            r#"{ jsonpath = "$.a[?(@.b)]", equals = 1 }"#,
            14,
            "unsupported JSONPath",
            None,
        ),
        (
            r#"{ json = "/a", exists = "yes" }"#,
            25,
            "exists takes true or false",
            None,
        ),
    ];
    for (check, col, message, hint) in cases {
        let d = refused(check);
        assert_eq!((d.line, d.column), (6, *col), "{check}: {d:?}");
        assert!(d.message.starts_with(message), "{check}: {}", d.message);
        if let Some(h) = hint {
            assert_eq!(d.hint.as_deref(), Some(*h), "{check}");
        }
    }
}

/// The Checks section of scenarios/README.md.
fn documented() -> &'static str {
    let readme = include_str!("../../../../../scenarios/README.md");
    let start = readme.find("### Checks\n").expect("a Checks section");
    let end = readme[start..]
        .find("\n### ")
        .map_or(readme.len(), |e| start + e);
    &readme[start..end]
}

#[test]
fn the_documented_example_compiles_and_every_key_is_documented() {
    let section = documented();
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an example");
    let s = parse::parse(
        Path::new("README.md"),
        &format!("[[step]]\npath = \"/x\"\n{block}"),
        &NoEnv,
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let Action::Request(r) = &s.steps[0].action else {
        panic!("a request step");
    };
    assert_eq!(r.checks.len(), 10);
    for key in compile::KEYS.iter().flat_map(|k| k.iter()) {
        assert!(
            section.contains(&format!("`{key}")),
            "{key} is not documented"
        );
    }
}
