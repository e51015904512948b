//! Checks: compiling them from a step's `checks` and evaluating them
//! against an answer. A failed check says what was found instead, without
//! showing values that look secret. A response's JSON is parsed at most
//! once per exchange, and only along the paths the step reads
//! ([`LazyJson`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use toml::Spanned;

use super::compile::Compiler;
use super::diagnostic::{Diagnostic, did_you_mean};
use super::json_pick::JsonPaths;
use super::model::{Check, Predicate, Subject};
use super::render::expected_json;
use super::source::SpannedValue;
use super::template::RenderCtx;
use crate::engine::http::HttpResponse;
use crate::redact::{REDACTED, Secrets, is_sensitive_name};

/// Compiles one check table: one subject (`json`, `header`, ...) and one
/// predicate (`equals`, `matches`, ...), or `body_contains` or
/// `latency_below` alone.
pub(crate) fn compile(
    c: &Compiler<'_>,
    raw: &Spanned<BTreeMap<Spanned<String>, Spanned<SpannedValue>>>,
) -> Result<Check, Diagnostic> {
    const SUBJECTS: &[&str] = &[
        "json",
        "jsonpath",
        "header",
        "body_contains",
        "latency_below",
    ];
    const PREDICATES: &[&str] = &["equals", "exists", "matches", "contains", "length"];
    let map = raw.get_ref();
    for k in map.keys() {
        if !SUBJECTS.contains(&k.get_ref().as_str()) && !PREDICATES.contains(&k.get_ref().as_str())
        {
            let d = c.err(k.span(), format!("unknown check key \"{}\"", k.get_ref()));
            return Err(
                match did_you_mean(k.get_ref(), SUBJECTS.iter().chain(PREDICATES).copied()) {
                    Some(s) => d.with_hint(format!("did you mean \"{s}\"?")),
                    None => d.with_hint(format!(
                        "a check has one of {} and one of {}",
                        SUBJECTS.join(", "),
                        PREDICATES.join(", ")
                    )),
                },
            );
        }
    }
    let get = |k: &str| {
        map.iter()
            .find(|(key, _)| key.get_ref() == k)
            .map(|(_, v)| v)
    };
    let string = |v: &Spanned<SpannedValue>| -> Result<String, Diagnostic> {
        match v.get_ref() {
            SpannedValue::String(s) => Ok(s.clone()),
            _ => Err(c.err(v.span(), "expected a string")),
        }
    };
    if let Some(v) = get("body_contains") {
        let s = Spanned::new(v.span(), string(v)?);
        return Ok(Check {
            label: format!("body contains {:?}", s.get_ref()),
            subject: Subject::Body,
            predicate: Predicate::Contains(c.template(&s)?),
        });
    }
    if let Some(v) = get("latency_below") {
        let s = Spanned::new(v.span(), string(v)?);
        let d = c.duration(&s)?;
        return Ok(Check {
            label: format!("latency < {}", s.get_ref()),
            subject: Subject::Latency,
            predicate: Predicate::Below(d),
        });
    }
    let (subject, subject_label) = if let Some(v) = get("json") {
        let p = string(v)?;
        if !(p.is_empty() || p.starts_with('/')) {
            return Err(c
                .err(
                    v.span(),
                    format!("invalid JSON pointer {p:?}: it starts with '/', such as \"/id\""),
                )
                .with_hint("for JSONPath such as $.id use `jsonpath = ...`"));
        }
        super::json_pick::check_pointer_depth(&p).map_err(|e| c.err(v.span(), e))?;
        (Subject::Json(p.clone()), format!("json {p}"))
    } else if let Some(v) = get("jsonpath") {
        let p = string(v)?;
        let ptr = super::data::jsonpath_to_pointer(&p).map_err(|e| c.err(v.span(), e))?;
        (Subject::Json(ptr), format!("jsonpath {p}"))
    } else if let Some(v) = get("header") {
        let h = string(v)?;
        let name: http::HeaderName = h
            .parse()
            .map_err(|_| c.err(v.span(), format!("invalid header name {h:?}")))?;
        (Subject::Header(name), format!("header {h}"))
    } else {
        return Err(c.err(
            raw.span(),
            "a check needs a subject: json, jsonpath, header, body_contains or latency_below",
        ));
    };
    let mut predicates = PREDICATES.iter().filter_map(|p| get(p).map(|v| (*p, v)));
    let Some((pred, v)) = predicates.next() else {
        return Err(c.err(
            raw.span(),
            "a check needs a predicate: equals, exists, matches, contains or length",
        ));
    };
    if let Some((other, ov)) = predicates.next() {
        return Err(c.err(
            ov.span(),
            format!("a check has one predicate; found both {pred} and {other}"),
        ));
    }
    let (predicate, label) = match pred {
        "equals" => {
            let t = c.json_template(v, &[])?;
            (
                Predicate::Equals(t),
                format!(
                    "{subject_label} == {}",
                    serde_json::to_string(v.get_ref()).unwrap_or_default()
                ),
            )
        }
        "exists" => match v.get_ref() {
            SpannedValue::Boolean(b) => (
                Predicate::Exists(*b),
                format!(
                    "{subject_label} {}",
                    if *b { "exists" } else { "is absent" }
                ),
            ),
            _ => return Err(c.err(v.span(), "exists takes true or false")),
        },
        "matches" => {
            let s = string(v)?;
            let re = regex_lite::Regex::new(&s)
                .map_err(|e| c.err(v.span(), format!("invalid regular expression: {e}")))?;
            (
                Predicate::Matches(re),
                format!("{subject_label} matches {s:?}"),
            )
        }
        "contains" => {
            let s = Spanned::new(v.span(), string(v)?);
            (
                Predicate::Contains(c.template(&s)?),
                format!("{subject_label} contains {:?}", s.get_ref()),
            )
        }
        "length" => match v.get_ref() {
            SpannedValue::Integer(n) if *n >= 0 => (
                Predicate::Length(*n as usize),
                format!("{subject_label} has length {n}"),
            ),
            _ => return Err(c.err(v.span(), "length takes a whole number")),
        },
        _ => unreachable!("PREDICATES lists every case"),
    };
    Ok(Check {
        label,
        subject,
        predicate,
    })
}

/// A response's JSON, parsed at most once and only along the paths a step
/// reads (see [`JsonPaths`]).
pub(crate) struct LazyJson<'a> {
    body: &'a [u8],
    paths: &'a JsonPaths,
    parsed: Option<Option<Value>>,
}

impl<'a> LazyJson<'a> {
    /// The JSON of `body`, read along `paths` when first asked for.
    pub(crate) fn new(body: &'a [u8], paths: &'a JsonPaths) -> Self {
        LazyJson {
            body,
            paths,
            parsed: None,
        }
    }

    /// The pruned document, or `None` when the body is not JSON.
    pub(crate) fn get(&mut self) -> Option<&Value> {
        self.parsed
            .get_or_insert_with(|| self.paths.parse(self.body))
            .as_ref()
    }
}

/// Evaluates one check; `Err` says what was found instead.
pub(crate) fn evaluate(
    check: &Check,
    resp: &HttpResponse,
    json: &mut LazyJson<'_>,
    latency: Duration,
    ctx: &RenderCtx<'_>,
    secrets: &Secrets,
) -> Result<(), String> {
    let subject: Option<Cow<'_, Value>> = match &check.subject {
        Subject::Json(ptr) => match json.get() {
            Some(v) => v.pointer(ptr).map(Cow::Borrowed),
            None => return Err("the response is not JSON".into()),
        },
        Subject::Header(h) => resp.headers.get(h).map(|v| {
            Cow::Owned(Value::String(
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        }),
        Subject::Body => Some(Cow::Owned(Value::String(
            String::from_utf8_lossy(&resp.body).into_owned(),
        ))),
        Subject::Latency => None,
    };
    let subject = subject.as_deref();
    match &check.predicate {
        Predicate::Below(limit) => {
            if latency < *limit {
                Ok(())
            } else {
                Err(format!("took {:.1} ms", latency.as_secs_f64() * 1000.0))
            }
        }
        Predicate::Exists(want) => match (subject.is_some(), want) {
            (true, true) | (false, false) => Ok(()),
            (false, true) => Err("absent".into()),
            (true, false) => Err(format!(
                "present: {}",
                shown(secrets, &check.subject, subject.expect("present"))
            )),
        },
        Predicate::Equals(t) => {
            let want =
                expected_json(t, ctx).map_err(|u| format!("variable \"{}\" has no value", u.0))?;
            match subject {
                Some(got) if loosely_equal(got, &want) => Ok(()),
                Some(got) => Err(format!(
                    "expected {}, found {}",
                    shown(secrets, &check.subject, &want),
                    shown(secrets, &check.subject, got)
                )),
                None => Err(format!(
                    "expected {}, found nothing",
                    shown(secrets, &check.subject, &want)
                )),
            }
        }
        Predicate::Matches(re) => match subject {
            Some(Value::String(s)) if re.is_match(s) => Ok(()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) if re.is_match(&v.to_string()) => Ok(()),
            Some(v) => Err(format!(
                "{} does not match",
                shown(secrets, &check.subject, v)
            )),
            None => Err("absent".into()),
        },
        Predicate::Contains(t) => {
            let needle = t
                .render(ctx)
                .map_err(|u| format!("variable \"{}\" has no value", u.0))?;
            match subject {
                Some(Value::String(s)) if s.contains(&needle) => Ok(()),
                Some(Value::Array(a))
                    if a.iter()
                        .any(|x| loosely_equal(x, &Value::String(needle.clone()))) =>
                {
                    Ok(())
                }
                Some(v) => Err(format!(
                    "{} does not contain {needle:?}",
                    shown(secrets, &check.subject, v)
                )),
                None => Err("absent".into()),
            }
        }
        Predicate::Length(n) => {
            let len = match subject {
                Some(Value::Array(a)) => Some(a.len()),
                Some(Value::String(s)) => Some(s.chars().count()),
                Some(Value::Object(o)) => Some(o.len()),
                _ => None,
            };
            match len {
                Some(l) if l == *n => Ok(()),
                Some(l) => Err(format!("length {l}")),
                None => Err("not an array, string or object".into()),
            }
        }
    }
}

/// Equal, or the same number written as a string (`"1"` and `1`).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => false,
    }
}

/// A value for a failure message; `subject` decides whether it may be shown.
fn shown(secrets: &Secrets, subject: &Subject, v: &Value) -> String {
    if let Subject::Json(ptr) = subject
        && ptr.rsplit('/').next().is_some_and(is_sensitive_name)
    {
        return REDACTED.to_string();
    }
    if let Subject::Header(h) = subject
        && is_sensitive_name(h.as_str())
    {
        return REDACTED.to_string();
    }
    short(v, secrets)
}

/// `v` cut at 120 characters, scrubbed first so that no secret is cut in
/// two (its first half would stay).
fn short(v: &Value, secrets: &Secrets) -> String {
    let s = secrets.scrub(&v.to_string()).into_owned();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_equality_of_numbers_and_strings() {
        assert!(loosely_equal(&Value::from(1), &Value::from("1")));
        assert!(loosely_equal(&Value::from(1.0), &Value::from(1)));
        assert!(!loosely_equal(&Value::from("a"), &Value::from(1)));
    }

    #[test]
    fn a_secret_across_the_cut_of_a_shown_value_is_scrubbed_before_it() {
        let secret = "LOGINTOKEN-across-the-cut-0123";
        let v = Value::String(format!("{}{secret}", "a".repeat(110)));
        let shown = short(&v, &Secrets::of([secret]));
        assert!(!shown.contains("LOGINTOKEN"), "{shown}");
        // The marker itself may be cut; the secret is gone either way.
        assert!(shown.contains("[REDACTED"), "{shown}");
    }
}
