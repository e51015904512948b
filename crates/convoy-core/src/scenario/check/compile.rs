//! Compiling one check table, as written in a step's `checks`: one subject
//! (`json`, `jsonpath`, `header`), one predicate (`equals`, `not_contains`,
//! `at_least`, ...) and, for a pointer with a `*`, at most one of `any` and
//! `all`; or one of the checks written as a single key (`body_contains`,
//! `body_not_contains`, `latency_below`). A key that is unknown, a second
//! subject or predicate, and a key that means nothing with the others are
//! refused where they are written.

use std::collections::BTreeMap;

use toml::Spanned;

use crate::scenario::compile::Compiler;
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::json_pick::check_pointer_depth;
use crate::scenario::model::{Check, Comparison, Elements, Num, Predicate, Quantifier, Subject};
use crate::scenario::source::SpannedValue;

/// What a check looks at.
const SUBJECTS: &[&str] = &["json", "jsonpath", "header"];
/// Checks written as one key.
const WHOLE: &[&str] = &["body_contains", "body_not_contains", "latency_below"];
/// What must hold of the subject.
const PREDICATES: &[&str] = &[
    "equals",
    "not_equals",
    "exists",
    "matches",
    "not_matches",
    "contains",
    "not_contains",
    "length",
    "less_than",
    "at_most",
    "greater_than",
    "at_least",
    "between",
];
/// How the elements a wildcard selects are judged.
const QUANTIFIERS: &[&str] = &["any", "all"];

/// Every key a check may have, for the docs' test.
#[cfg(test)]
pub(super) const KEYS: [&[&str]; 4] = [SUBJECTS, WHOLE, PREDICATES, QUANTIFIERS];

type Entry<'r> = (&'r Spanned<String>, &'r Spanned<SpannedValue>);

/// Compiles one check table.
pub(crate) fn compile(
    c: &Compiler<'_>,
    raw: &Spanned<BTreeMap<Spanned<String>, Spanned<SpannedValue>>>,
) -> Result<Check, Diagnostic> {
    // In file order, so that "found both" points at the later key.
    let mut keys: Vec<Entry<'_>> = raw.get_ref().iter().collect();
    keys.sort_by_key(|(k, _)| k.span().start);
    let known = || {
        SUBJECTS
            .iter()
            .chain(WHOLE)
            .chain(PREDICATES)
            .chain(QUANTIFIERS)
            .copied()
    };
    for (k, _) in &keys {
        if !known().any(|n| n == k.get_ref()) {
            let d = c.err(k.span(), format!("unknown check key \"{}\"", k.get_ref()));
            return Err(match did_you_mean(k.get_ref(), known()) {
                Some(s) => d.with_hint(format!("did you mean \"{s}\"?")),
                None => d.with_hint(format!(
                    "a check has one of {} and one of {} (see scenarios/README.md, Checks)",
                    SUBJECTS.join(", "),
                    PREDICATES.join(", ")
                )),
            });
        }
    }
    let of = |set: &[&str]| -> Vec<Entry<'_>> {
        keys.iter()
            .filter(|(k, _)| set.contains(&k.get_ref().as_str()))
            .copied()
            .collect()
    };
    let (subjects, whole, predicates, quantifiers) =
        (of(SUBJECTS), of(WHOLE), of(PREDICATES), of(QUANTIFIERS));
    if let Some(&(w, _)) = whole.first() {
        if let Some(&(other, _)) = keys.iter().find(|(k, _)| k.get_ref() != w.get_ref()) {
            return Err(c
                .err(
                    other.span(),
                    format!(
                        "`{}` is a check of its own: it takes no `{}`",
                        w.get_ref(),
                        other.get_ref()
                    ),
                )
                .with_hint("write each check as its own { ... } in `checks`"));
        }
        return compile_whole(c, &keys[0]);
    }
    one_of(c, &subjects, "subject")?;
    one_of(c, &predicates, "predicate")?;
    let Some(&(sk, sv)) = subjects.first() else {
        return Err(c.err(
            raw.span(),
            format!(
                "a check needs a subject: {}, or one of {}",
                SUBJECTS.join(", "),
                WHOLE.join(", ")
            ),
        ));
    };
    let Some(&(pk, pv)) = predicates.first() else {
        return Err(c.err(
            raw.span(),
            format!("a check needs a predicate: {}", PREDICATES.join(", ")),
        ));
    };
    if let [(a, _), (b, _), ..] = quantifiers[..] {
        return Err(c.err(
            b.span(),
            format!(
                "a check takes `any` or `all`, not both (found `{}` first)",
                a.get_ref()
            ),
        ));
    }
    let quantifier = match quantifiers.first() {
        None => None,
        Some((k, v)) => match v.get_ref() {
            SpannedValue::Boolean(true) => Some((
                *k,
                if k.get_ref() == "all" {
                    Quantifier::All
                } else {
                    Quantifier::Any
                },
            )),
            SpannedValue::Boolean(false) => {
                return Err(c
                    .err(v.span(), format!("`{} = false` means nothing", k.get_ref()))
                    .with_hint(format!(
                        "leave `{}` out, or write `{} = true`",
                        k.get_ref(),
                        k.get_ref()
                    )));
            }
            _ => return Err(c.err(v.span(), format!("`{}` takes true", k.get_ref()))),
        },
    };
    let (subject, subject_label) = subject(c, sk, sv)?;
    let subject = match (subject, quantifier) {
        (Subject::Elements(mut e), q) => {
            e.quantifier = q.map_or(Quantifier::Implicit, |(_, q)| q);
            Subject::Elements(e)
        }
        (_, Some((k, _))) => {
            return Err(c
                .err(
                    k.span(),
                    format!(
                        "`{}` applies to a JSON pointer with a `*` segment",
                        k.get_ref()
                    ),
                )
                .with_hint("such as json = \"/data/entries/*/kind\" (every element's kind)"));
        }
        (s, None) => s,
    };
    let (predicate, negated) = predicate(c, pk, pv)?;
    let ops = (
        op(pk.get_ref(), pv, &predicate, negated),
        op(pk.get_ref(), pv, &predicate, false),
    );
    let label = label(&subject, &subject_label, &ops, negated);
    Ok(Check {
        label,
        subject,
        predicate,
        negated,
    })
}

/// Refuses a second key of one `kind` (subject, predicate), at its value.
fn one_of(c: &Compiler<'_>, found: &[Entry<'_>], kind: &str) -> Result<(), Diagnostic> {
    if let [(a, _), (b, bv), ..] = found[..] {
        return Err(c
            .err(
                bv.span(),
                format!(
                    "a check has one {kind}; found both {} and {}",
                    a.get_ref(),
                    b.get_ref()
                ),
            )
            .with_hint("write each check as its own { ... } in `checks`"));
    }
    Ok(())
}

/// `body_contains`, `body_not_contains` or `latency_below`.
fn compile_whole(c: &Compiler<'_>, (k, v): &Entry<'_>) -> Result<Check, Diagnostic> {
    let s = Spanned::new(v.span(), string(c, v)?);
    Ok(match k.get_ref().as_str() {
        "latency_below" => Check {
            label: format!("latency < {}", s.get_ref()),
            subject: Subject::Latency,
            predicate: Predicate::Below(c.duration(&s)?),
            negated: false,
        },
        key => {
            let negated = key == "body_not_contains";
            Check {
                label: format!(
                    "body {} {:?}",
                    if negated {
                        "does not contain"
                    } else {
                        "contains"
                    },
                    s.get_ref()
                ),
                subject: Subject::Body,
                predicate: Predicate::Contains(c.template(&s)?),
                negated,
            }
        }
    })
}

/// The subject `k = v` and how a label names it.
fn subject(
    c: &Compiler<'_>,
    k: &Spanned<String>,
    v: &Spanned<SpannedValue>,
) -> Result<(Subject, String), Diagnostic> {
    let written = string(c, v)?;
    let label = format!("{} {written}", k.get_ref());
    let pointer = match k.get_ref().as_str() {
        "header" => {
            let name: http::HeaderName = written
                .parse()
                .map_err(|_| c.err(v.span(), format!("invalid header name {written:?}")))?;
            return Ok((Subject::Header(name), label));
        }
        "jsonpath" => crate::scenario::data::jsonpath_to_pointer_with_wildcards(&written)
            .map_err(|e| c.err(v.span(), e))?,
        _ => {
            if !(written.is_empty() || written.starts_with('/')) {
                return Err(c
                    .err(
                        v.span(),
                        format!(
                            "invalid JSON pointer {written:?}: it starts with '/', such as \"/id\""
                        ),
                    )
                    .with_hint("for JSONPath such as $.id use `jsonpath = ...`"));
            }
            written
        }
    };
    check_pointer_depth(&pointer).map_err(|e| c.err(v.span(), e))?;
    let tokens: Vec<Option<String>> = match pointer.strip_prefix('/') {
        None => Vec::new(),
        Some(rest) => rest
            .split('/')
            .map(|t| (t != "*").then(|| t.replace("~1", "/").replace("~0", "~")))
            .collect(),
    };
    if tokens.iter().any(Option::is_none) {
        Ok((
            Subject::Elements(Elements {
                pointer,
                tokens,
                quantifier: Quantifier::Implicit,
            }),
            label,
        ))
    } else {
        Ok((Subject::Json(pointer), label))
    }
}

/// The predicate `k = v`, and whether it is negated.
fn predicate(
    c: &Compiler<'_>,
    k: &Spanned<String>,
    v: &Spanned<SpannedValue>,
) -> Result<(Predicate, bool), Diagnostic> {
    let key = k.get_ref().as_str();
    let negated = key.starts_with("not_");
    Ok(match positive_key(key) {
        "equals" => (Predicate::Equals(c.json_template(v, &[])?), negated),
        "exists" => match v.get_ref() {
            SpannedValue::Boolean(b) => (Predicate::Exists, !*b),
            _ => return Err(c.err(v.span(), "exists takes true or false")),
        },
        "matches" => {
            let s = Spanned::new(v.span(), string(c, v)?);
            let re = super::regex(s.get_ref()).map_err(|e| match e.at.clone() {
                Some(at) => c.err_inside(&s, at, e.message),
                None => c.err(s.span(), e.message),
            })?;
            (Predicate::Matches(re), negated)
        }
        "contains" => {
            let s = Spanned::new(v.span(), string(c, v)?);
            (Predicate::Contains(c.template(&s)?), negated)
        }
        "length" => match v.get_ref() {
            SpannedValue::Integer(n) if *n >= 0 => (Predicate::Length(*n as usize), false),
            _ => return Err(c.err(v.span(), "length takes a whole number")),
        },
        "between" => {
            let bad = || {
                c.err(
                    v.span(),
                    "between takes [LOW, HIGH]: two numbers, both included",
                )
            };
            let SpannedValue::Array(a) = v.get_ref() else {
                return Err(bad());
            };
            let [lo, hi] = &a[..] else {
                return Err(bad());
            };
            let (lo, hi) = (number(c, lo)?, number(c, hi)?);
            if Comparison::Less(lo).holds(hi) {
                return Err(c.err(v.span(), "between's LOW is above its HIGH"));
            }
            (Predicate::Compare(Comparison::Between(lo, hi)), false)
        }
        other => {
            let n = number(c, v)?;
            let cmp = match other {
                "less_than" => Comparison::Less(n),
                "at_most" => Comparison::AtMost(n),
                "greater_than" => Comparison::Greater(n),
                _ => Comparison::AtLeast(n),
            };
            (Predicate::Compare(cmp), false)
        }
    })
}

/// `not_equals` → `equals`; other keys as they are.
fn positive_key(key: &str) -> &str {
    key.strip_prefix("not_").unwrap_or(key)
}

/// A bound of a comparison: a TOML integer or float.
fn number(c: &Compiler<'_>, v: &Spanned<SpannedValue>) -> Result<Num, Diagnostic> {
    match v.get_ref() {
        SpannedValue::Integer(i) => Ok(Num::Int(i128::from(*i))),
        SpannedValue::Float(f) if f.is_finite() => Ok(Num::Float(*f)),
        _ => Err(c
            .err(v.span(), "expected a number, such as 10 or 2.5")
            .with_hint("a bound is written as a number, without quotes")),
    }
}

fn string(c: &Compiler<'_>, v: &Spanned<SpannedValue>) -> Result<String, Diagnostic> {
    match v.get_ref() {
        SpannedValue::String(s) => Ok(s.clone()),
        _ => Err(c.err(v.span(), "expected a string")),
    }
}

/// How predicate `key = v` reads after its subject: `== "x"`, `is absent`.
fn op(key: &str, v: &Spanned<SpannedValue>, p: &Predicate, negated: bool) -> String {
    let text = || match v.get_ref() {
        SpannedValue::String(s) => format!("{s:?}"),
        _ => String::new(),
    };
    match (p, negated) {
        (Predicate::Equals(_), _) => format!(
            "{} {}",
            if negated { "!=" } else { "==" },
            serde_json::to_string(v.get_ref()).unwrap_or_default()
        ),
        (Predicate::Exists, false) => "exists".into(),
        (Predicate::Exists, true) => "is absent".into(),
        (Predicate::Matches(_), false) => format!("matches {}", text()),
        (Predicate::Matches(_), true) => format!("does not match {}", text()),
        (Predicate::Contains(_), false) => format!("contains {}", text()),
        (Predicate::Contains(_), true) => format!("does not contain {}", text()),
        (Predicate::Length(n), _) => format!("has length {n}"),
        (Predicate::Compare(cmp), _) => cmp.to_string(),
        (Predicate::Below(_), _) => key.to_string(),
    }
}

/// How a check reads in reports. Over several elements it says whether
/// some, every or no element must pass.
/// `ops` is the predicate as written, then its positive form.
fn label(subject: &Subject, subject_label: &str, ops: &(String, String), negated: bool) -> String {
    let (op, positive_op) = ops;
    match subject {
        Subject::Elements(e) => match (e.quantifier, negated) {
            (Quantifier::Implicit, true) => format!("no {subject_label} {positive_op}"),
            (Quantifier::All, _) => format!("every {subject_label} {op}"),
            _ => format!("some {subject_label} {op}"),
        },
        _ => format!("{subject_label} {op}"),
    }
}
