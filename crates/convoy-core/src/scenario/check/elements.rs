//! Checks over the values a wildcard pointer selects
//! (`/data/entries/*/kind`): every `*` stands for each element of an array
//! (or each member of an object). The part of the pointer before the first
//! `*` must find an array or object, else the check fails as absent (a
//! missing ledger is not an empty one). Past it, an element where the rest
//! of the pointer finds nothing counts as an absent value.
//!
//! How the values are judged ([`Quantifier`]):
//! - `any`, and a predicate without `any`/`all`: some value passes.
//! - `all`: there is at least one value, and every value passes.
//! - a negated predicate without `any`/`all` (`not_equals`,
//!   `not_contains`, `not_matches`, `exists = false`): no value passes the
//!   predicate it negates; absent values and an empty array pass.
//!
//! The values are walked in place, without allocating; a failure walks
//! them again to say which element failed (its own pointer) and what it
//! held.

use std::ops::ControlFlow;

use serde_json::Value;

use super::judge::{Found, Want, judge, passes, shown};
use crate::redact::Secrets;
use crate::scenario::model::{Check, Elements, Predicate, Quantifier};

/// How many elements a failed `any` lists.
const LISTED: usize = 5;

/// Judges the values `e` selects in `doc`.
pub(super) fn judge_all(
    check: &Check,
    e: &Elements,
    want: &Want<'_>,
    doc: &Value,
    secrets: &Secrets,
) -> Result<(), String> {
    let first = e
        .tokens
        .iter()
        .position(Option::is_none)
        .unwrap_or(e.tokens.len());
    let (before, after) = e.tokens.split_at(first);
    let rest = after.get(1..).unwrap_or_default();
    let container = before
        .iter()
        .try_fold(doc, |v, t| step(v, t.as_deref().unwrap_or_default()));
    let container = match container {
        Some(v @ (Value::Array(_) | Value::Object(_))) => v,
        found => {
            if check.negated && matches!(check.predicate, Predicate::Exists) {
                return Ok(());
            }
            let at = pointer_of(before);
            let at = if at.is_empty() { "the body" } else { &at };
            // What a scalar there was is not kept (the JSON reader reads
            // no further than the paths need), so it is not shown.
            return Err(match found {
                None => format!("absent: nothing at {at}"),
                Some(_) => format!("{at} is not an array or object"),
            });
        }
    };
    let every = match e.quantifier {
        Quantifier::All => true,
        Quantifier::Any => false,
        Quantifier::Implicit => check.negated,
    };
    let mut n = 0usize;
    if every {
        // An element passes a negation without a quantifier when absent.
        let absent_passes = e.quantifier == Quantifier::Implicit;
        let ok = |v: Option<&Value>| {
            (absent_passes && v.is_none()) || passes(check, want, v.map(Found::Json))
        };
        let flow = each(container, rest, None, &mut |v, _| {
            n += 1;
            if ok(v) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        if flow.is_continue() {
            return if n == 0 && e.quantifier == Quantifier::All {
                Err(format!("no element at {}", e.pointer))
            } else {
                Ok(())
            };
        }
        // Failed: walk again to name the first failure and count them.
        let (mut failing, mut total, mut first) = (0usize, 0usize, None);
        let mut path = pointer_of(before);
        let _ = each(container, rest, Some(&mut path), &mut |v, at| {
            total += 1;
            if !ok(v) {
                failing += 1;
                if first.is_none() {
                    let why = judge(check, want, v.map(Found::Json), secrets)
                        .err()
                        .unwrap_or_else(|| "absent".into());
                    first = Some(format!("{}: {why}", at.unwrap_or_default()));
                }
            }
            ControlFlow::Continue(())
        });
        let first = first.unwrap_or_default();
        Err(format!("{first} ({failing} of {total} elements fail)"))
    } else {
        let flow = each(container, rest, None, &mut |v, _| {
            n += 1;
            if passes(check, want, v.map(Found::Json)) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if flow.is_break() {
            return Ok(());
        }
        if n == 0 {
            return Err(format!("no element at {}", e.pointer));
        }
        let mut listed = Vec::new();
        let mut path = pointer_of(before);
        let _ = each(container, rest, Some(&mut path), &mut |v, at| {
            if listed.len() == LISTED {
                return ControlFlow::Break(());
            }
            let value = match v {
                Some(v) => shown(secrets, &check.subject, Found::Json(v)),
                None => "absent".into(),
            };
            listed.push(format!("{} {value}", at.unwrap_or_default()));
            ControlFlow::Continue(())
        });
        let more = if n > listed.len() { ", …" } else { "" };
        Err(format!(
            "none of the {n} elements passes: {}{more}",
            listed.join(", ")
        ))
    }
}

/// The callback of a walk: a selected value (`None`: absent) and, when
/// the walk keeps it, that value's own pointer.
type Visit<'v, 'f> = dyn FnMut(Option<&'v Value>, Option<&str>) -> ControlFlow<()> + 'f;

/// Visits the value `tokens` select in each element of `container`.
fn each<'v>(
    container: &'v Value,
    tokens: &[Option<String>],
    mut path: Option<&mut String>,
    f: &mut Visit<'v, '_>,
) -> ControlFlow<()> {
    match container {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.as_ref().map(|p| p.len());
                if let Some(p) = path.as_deref_mut() {
                    p.push('/');
                    p.push_str(&i.to_string());
                }
                walk(item, tokens, path.as_deref_mut(), f)?;
                truncate(path.as_deref_mut(), len);
            }
        }
        Value::Object(members) => {
            for (k, item) in members {
                let len = path.as_ref().map(|p| p.len());
                if let Some(p) = path.as_deref_mut() {
                    push_token(p, k);
                }
                walk(item, tokens, path.as_deref_mut(), f)?;
                truncate(path.as_deref_mut(), len);
            }
        }
        _ => {}
    }
    ControlFlow::Continue(())
}

/// Visits what `tokens` select in `v`. Depth is bounded by the pointer's
/// segments, which a scenario caps at `MAX_POINTER_SEGMENTS`.
fn walk<'v>(
    v: &'v Value,
    tokens: &[Option<String>],
    mut path: Option<&mut String>,
    f: &mut Visit<'v, '_>,
) -> ControlFlow<()> {
    let Some((token, rest)) = tokens.split_first() else {
        return f(Some(v), path.as_deref().map(String::as_str));
    };
    let next = match token {
        Some(key) => step(v, key),
        None if v.is_array() || v.is_object() => return each(v, rest, path, f),
        None => None,
    };
    let len = path.as_ref().map(|p| p.len());
    let flow = match next {
        Some(child) => {
            if let (Some(p), Some(key)) = (path.as_deref_mut(), token) {
                push_token(p, key);
            }
            walk(child, rest, path.as_deref_mut(), f)
        }
        None => {
            // Absent: named by the rest of the pointer, as written.
            if let Some(p) = path.as_deref_mut() {
                p.push_str(&pointer_of(tokens));
            }
            f(None, path.as_deref().map(String::as_str))
        }
    };
    truncate(path, len);
    flow
}

/// One reference token applied to `v`, as `Value::pointer` reads it.
fn step<'v>(v: &'v Value, token: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => m.get(token),
        Value::Array(a) => crate::scenario::json_pick::array_index(token).and_then(|i| a.get(i)),
        _ => None,
    }
}

fn truncate(path: Option<&mut String>, len: Option<usize>) {
    if let (Some(p), Some(len)) = (path, len) {
        p.truncate(len);
    }
}

/// Tokens written back as a pointer, `*` for a wildcard.
fn pointer_of(tokens: &[Option<String>]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            Some(k) => push_token(&mut out, k),
            None => out.push_str("/*"),
        }
    }
    out
}

fn push_token(out: &mut String, token: &str) {
    out.push('/');
    out.push_str(&token.replace('~', "~0").replace('/', "~1"));
}
