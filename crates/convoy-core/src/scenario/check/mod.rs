//! Checks: compiling them from a step's `checks` ([`compile()`]) and
//! evaluating them against an answer ([`evaluate`]). A failed check says
//! what was found instead, without showing values that look secret.
//!
//! Everything a check needs is prepared when the file loads (regular
//! expressions compiled, pointers split, bounds parsed), so evaluating one
//! that passes reads the answer in place: a header or body is looked at as
//! the `&str` it already is, an expected value that holds no variable is
//! borrowed, and a response's JSON is parsed at most once per exchange, and
//! only along the paths the step reads ([`LazyJson`]). Messages are built
//! only for checks that fail.
//!
//! One value is judged in `judge`; the values a wildcard pointer
//! (`/entries/*/kind`) selects are walked and judged together in
//! `elements`.

mod compile;
mod elements;
mod judge;

use std::time::Duration;

use serde_json::Value;

pub(crate) use compile::compile;
use judge::{Found, Want, judge};

use super::json_pick::JsonPaths;
use super::model::{Check, Predicate, Subject};
use super::template::RenderCtx;
use crate::engine::http::HttpResponse;
use crate::redact::Secrets;

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
    if let Predicate::Below(limit) = &check.predicate {
        return if latency < *limit {
            Ok(())
        } else {
            Err(format!("took {:.1} ms", latency.as_secs_f64() * 1000.0))
        };
    }
    let want = Want::of(&check.predicate, ctx)?;
    match &check.subject {
        Subject::Json(ptr) => {
            let doc = json.get().ok_or("the response is not JSON")?;
            judge(check, &want, doc.pointer(ptr).map(Found::Json), secrets)
        }
        Subject::Elements(e) => {
            let doc = json.get().ok_or("the response is not JSON")?;
            elements::judge_all(check, e, &want, doc, secrets)
        }
        Subject::Header(h) => match resp.headers.get(h) {
            None => judge(check, &want, None, secrets),
            Some(v) => match v.to_str() {
                Ok(s) => judge(check, &want, Some(Found::Text(s)), secrets),
                // Bytes beyond visible ASCII: judged as read, lossily.
                Err(_) => {
                    let s = String::from_utf8_lossy(v.as_bytes());
                    judge(check, &want, Some(Found::Text(&s)), secrets)
                }
            },
        },
        Subject::Body => {
            // Borrowed unless the body is not UTF-8.
            let text = String::from_utf8_lossy(&resp.body);
            judge(check, &want, Some(Found::Text(&text)), secrets)
        }
        Subject::Latency => Err("a latency is judged only by latency_below".into()),
    }
}

/// Compiles a regular expression of a check or capture; the error says
/// what is wrong and at which byte of the pattern, when that is known.
pub(crate) fn regex(pattern: &str) -> Result<regex::Regex, RegexError> {
    // regex's own error is a multi-line drawing; regex-syntax (which it
    // parses with) tells where the mistake is, so the diagnostic's caret
    // can point at it in the file.
    let mut parser = regex_syntax::ParserBuilder::new().build();
    if let Err(e) = parser.parse(pattern) {
        let (message, span) = match &e {
            regex_syntax::Error::Parse(p) => (p.kind().to_string(), Some(p.span())),
            regex_syntax::Error::Translate(t) => (t.kind().to_string(), Some(t.span())),
            other => (other.to_string(), None),
        };
        return Err(RegexError {
            message: format!("invalid regular expression: {message}"),
            at: span.map(|s| s.start.offset..s.end.offset),
        });
    }
    regex::Regex::new(pattern).map_err(|e| RegexError {
        message: format!("invalid regular expression: {e}"),
        at: None,
    })
}

/// A regular expression that does not compile.
#[derive(Debug)]
pub(crate) struct RegexError {
    /// What is wrong, on one line.
    pub message: String,
    /// Which bytes of the pattern, when known.
    pub at: Option<std::ops::Range<usize>>,
}

impl std::fmt::Display for RegexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<RegexError> for String {
    fn from(e: RegexError) -> String {
        e.message
    }
}

#[cfg(test)]
mod tests;
