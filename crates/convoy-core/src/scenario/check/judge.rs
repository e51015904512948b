//! One value judged by one predicate: whether it holds ([`holds`]), and
//! when it does not, what a failure message shows of the value (redacted
//! by name, scrubbed of the run's secrets, cut short).
//!
//! Numbers: a JSON number, or a string that reads as a decimal number
//! (`"12.50"`, a header such as `X-RateLimit-Remaining: 7`), compares as
//! that number; whole numbers exactly, others as `f64`. Anything else is
//! "not a number" and fails every comparison.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::redact::{REDACTED, Secrets, is_sensitive_name};
use crate::scenario::model::{Check, Comparison, Num, Predicate, Subject};
use crate::scenario::render::expected_json;
use crate::scenario::template::RenderCtx;

/// A value a check looks at, borrowed from the answer.
#[derive(Debug, Clone, Copy)]
pub(super) enum Found<'a> {
    /// A JSON value.
    Json(&'a Value),
    /// A header's value or the body, as text.
    Text(&'a str),
}

/// A predicate's expectation, rendered once per evaluation (borrowed when
/// it holds no variable).
pub(super) enum Want<'c> {
    /// `equals`: this value.
    Json(Cow<'c, Value>),
    /// `contains`: this text.
    Text(Cow<'c, str>),
    /// The predicate expects nothing rendered.
    Nothing,
}

impl<'c> Want<'c> {
    /// Renders what `p` expects.
    pub(super) fn of(p: &'c Predicate, ctx: &'c RenderCtx<'_>) -> Result<Self, String> {
        let unset =
            |u: crate::scenario::template::Unset| format!("variable \"{}\" has no value", u.0);
        Ok(match p {
            Predicate::Equals(t) => Want::Json(expected_json(t, ctx).map_err(unset)?),
            Predicate::Contains(t) => Want::Text(match t.as_literal() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(t.render(ctx).map_err(unset)?),
            }),
            _ => Want::Nothing,
        })
    }
}

/// Judges one value (`None`: absent). An absent value fails every
/// predicate but `exists = false`, negated ones included: "is not
/// `refund`" says something of a value that is there.
pub(super) fn judge(
    check: &Check,
    want: &Want<'_>,
    found: Option<Found<'_>>,
    secrets: &Secrets,
) -> Result<(), String> {
    match found {
        _ if passes(check, want, found) => Ok(()),
        None => Err("absent".into()),
        Some(v) => Err(why(check, want, v, secrets)),
    }
}

/// Whether [`judge`] passes, without saying why not.
pub(super) fn passes(check: &Check, want: &Want<'_>, found: Option<Found<'_>>) -> bool {
    match found {
        None => check.negated && matches!(check.predicate, Predicate::Exists),
        Some(v) => holds(&check.predicate, want, v) != check.negated,
    }
}

/// Whether the positive form of `p` holds of a present value.
pub(super) fn holds(p: &Predicate, want: &Want<'_>, v: Found<'_>) -> bool {
    match (p, want) {
        (Predicate::Exists, _) => true,
        (Predicate::Equals(_), Want::Json(w)) => match v {
            Found::Json(j) => loosely_equal(j, w),
            Found::Text(t) => text_equals(w, t),
        },
        (Predicate::Contains(_), Want::Text(needle)) => match (text(v), v) {
            (Some(s), _) => s.contains(needle.as_ref()),
            (None, Found::Json(Value::Array(a))) => a.iter().any(|x| text_equals(x, needle)),
            (None, _) => false,
        },
        (Predicate::Matches(re), _) => match (text(v), v) {
            (Some(s), _) => re.is_match(s),
            (None, Found::Json(j @ (Value::Number(_) | Value::Bool(_)))) => {
                re.is_match(&j.to_string())
            }
            (None, _) => false,
        },
        (Predicate::Length(n), _) => length(v) == Some(*n),
        (Predicate::Compare(c), _) => number(v).is_some_and(|x| c.holds(x)),
        _ => false,
    }
}

/// Why `v` fails `check` (whose expectation is `want`).
fn why(check: &Check, want: &Want<'_>, v: Found<'_>, secrets: &Secrets) -> String {
    let shown = |v: Found<'_>| shown(secrets, &check.subject, v);
    let needle = match want {
        Want::Text(t) => t.as_ref(),
        _ => "",
    };
    match (&check.predicate, check.negated) {
        (Predicate::Exists, _) => format!("present: {}", shown(v)),
        (Predicate::Equals(_), false) => {
            let w = match want {
                Want::Json(w) => shown(Found::Json(w)),
                _ => String::new(),
            };
            format!("expected {w}, found {}", shown(v))
        }
        (Predicate::Equals(_), true) => format!("found {}", shown(v)),
        (Predicate::Contains(_), false) => {
            format!("{} does not contain {needle:?}", shown(v))
        }
        (Predicate::Contains(_), true) => format!("{} contains {needle:?}", shown(v)),
        (Predicate::Matches(_), false) => format!("{} does not match", shown(v)),
        (Predicate::Matches(_), true) => format!("{} matches", shown(v)),
        (Predicate::Length(_), _) => match length(v) {
            Some(l) => format!("length {l}"),
            None => "not an array, string or object".into(),
        },
        (Predicate::Compare(_), _) => match number(v) {
            Some(_) => format!("found {}", shown(v)),
            None => format!("{} is not a number", shown(v)),
        },
        (Predicate::Below(_), _) => String::new(),
    }
}

/// `v` as a failure message shows it: redacted when the subject is named
/// like a secret, scrubbed and cut otherwise.
pub(super) fn shown(secrets: &Secrets, subject: &Subject, v: Found<'_>) -> String {
    let sensitive = match subject {
        Subject::Json(ptr) => ptr.rsplit('/').next().is_some_and(is_sensitive_name),
        Subject::Elements(e) => e.pointer.rsplit('/').next().is_some_and(is_sensitive_name),
        Subject::Header(h) => is_sensitive_name(h.as_str()),
        Subject::Body | Subject::Latency => false,
    };
    if sensitive {
        return REDACTED.to_string();
    }
    match v {
        Found::Json(j) => short(&j.to_string(), secrets),
        Found::Text(t) => short(&Value::from(t).to_string(), secrets),
    }
}

/// `text` cut at 120 characters, scrubbed first so that no secret is cut
/// in two (its first half would stay).
pub(super) fn short(text: &str, secrets: &Secrets) -> String {
    let s = secrets.scrub(text);
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// The text of a JSON string, a header or a body.
fn text(v: Found<'_>) -> Option<&str> {
    match v {
        Found::Json(Value::String(s)) => Some(s),
        Found::Text(s) => Some(s),
        Found::Json(_) => None,
    }
}

fn length(v: Found<'_>) -> Option<usize> {
    match v {
        Found::Json(Value::Array(a)) => Some(a.len()),
        Found::Json(Value::Object(o)) => Some(o.len()),
        _ => text(v).map(|s| s.chars().count()),
    }
}

fn number(v: Found<'_>) -> Option<Num> {
    match v {
        Found::Json(Value::Number(n)) => Num::of_json(n),
        _ => text(v).and_then(Num::parse),
    }
}

/// Equal, or the same number written as a string (`"1"` and `1`).
pub(super) fn loosely_equal(a: &Value, b: &Value) -> bool {
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

/// `loosely_equal(v, Value::String(t))`, without building the string.
fn text_equals(v: &Value, t: &str) -> bool {
    match v {
        Value::String(s) => s == t,
        Value::Number(n) => t.parse::<f64>().ok() == n.as_f64(),
        _ => false,
    }
}

impl Num {
    /// A JSON number.
    pub(crate) fn of_json(n: &serde_json::Number) -> Option<Num> {
        if let Some(i) = n.as_i64() {
            Some(Num::Int(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(Num::Int(i128::from(u)))
        } else {
            n.as_f64().filter(|f| f.is_finite()).map(Num::Float)
        }
    }

    /// A string that is a decimal number (`"7"`, `"-12.50"`, `"1e3"`);
    /// `None` for anything else, `"NaN"` and `"inf"` included.
    pub(crate) fn parse(s: &str) -> Option<Num> {
        if let Ok(i) = s.parse::<i128>() {
            return Some(Num::Int(i));
        }
        // Rust also reads "inf", "infinity" and "nan", which JSON and
        // people do not mean as numbers.
        if !s.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Num::Float)
    }

    fn cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

impl Comparison {
    /// Whether `x` passes.
    pub(crate) fn holds(&self, x: Num) -> bool {
        use Ordering::*;
        match *self {
            Comparison::Less(b) => x.cmp(b) == Some(Less),
            Comparison::AtMost(b) => matches!(x.cmp(b), Some(Less | Equal)),
            Comparison::Greater(b) => x.cmp(b) == Some(Greater),
            Comparison::AtLeast(b) => matches!(x.cmp(b), Some(Greater | Equal)),
            Comparison::Between(lo, hi) => {
                matches!(x.cmp(lo), Some(Greater | Equal))
                    && matches!(x.cmp(hi), Some(Less | Equal))
            }
        }
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Comparison::Less(b) => write!(f, "< {b}"),
            Comparison::AtMost(b) => write!(f, "<= {b}"),
            Comparison::Greater(b) => write!(f, "> {b}"),
            Comparison::AtLeast(b) => write!(f, ">= {b}"),
            Comparison::Between(lo, hi) => write!(f, "between {lo} and {hi}"),
        }
    }
}
