//! What compiling a step needs, below every kind: the [`Compiler`] (the
//! file's text for diagnostics, the variable slots, data columns and
//! identity names templates and steps resolve against, the secrets found so
//! far) with its helpers for templates, JSON templates, statuses, methods,
//! durations and names, reading `{{ env.NAME }}` through [`Env`]; and
//! [`StepTable`], a `[[step]]` table as written,
//! whose request keys ([`RequestKeys`]) every kind may read. The table
//! itself is generated where the kinds are listed (`steps/mod.rs`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use toml::Spanned;

use super::diagnostic::{Diagnostic, did_you_mean, range_in_string};
use super::model::JsonTemplate;
use super::source::SpannedValue;
use super::template::{Part, Resolve, Template};
use crate::plan::parse_duration;

/// Environment access for templates; tests substitute their own.
pub trait Env {
    /// The value of an environment variable.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct EnvScope;

impl Env for EnvScope {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A `[[step]]` table as written: its request keys, the keys it has, and
/// the variables it declares.
pub(crate) trait StepTable: DeserializeOwned {
    /// The keys that describe a request.
    fn keys(&self) -> RequestKeys<'_>;
    /// Declares the step's `let` and `capture` variables (and those of
    /// tables nested in it), before any step is compiled.
    fn declare(&self, c: &mut Compiler<'_>) -> Result<(), Diagnostic>;
    /// Every key the table has, in the file format's order, each with where
    /// it is written (its value, or its first entry for a table of entries;
    /// an empty one is left out: it asks for nothing).
    fn present(&self) -> Vec<(&'static str, Range<usize>)>;
}

/// Refuses the keys of a step (or of a nested request such as a replay's
/// `verify`) that its kind does not use: `present` is what the table has,
/// `uses` what the kind reads; `what` names the kind in the message ("an
/// isolation step"), `hint` may say where such a key belongs.
pub(crate) fn refuse_unused(
    c: &Compiler<'_>,
    present: &[(&'static str, Range<usize>)],
    uses: &[&str],
    what: &str,
    hint: impl Fn(&str) -> Option<String>,
) -> Result<(), Diagnostic> {
    for (key, span) in present {
        if uses.contains(key) {
            continue;
        }
        let d = c.err(span.clone(), format!("{what} does not use `{key}`"));
        return Err(match hint(key) {
            Some(h) => d.with_hint(h),
            None => d.with_hint(format!(
                "remove it; {what} reads {}",
                if uses.is_empty() {
                    "none of the request keys".to_string()
                } else {
                    uses.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        });
    }
    Ok(())
}

/// Checks as written: tables of one subject and one predicate.
pub(crate) type RawChecks = Vec<Spanned<BTreeMap<Spanned<String>, Spanned<SpannedValue>>>>;

/// The keys of a step table that describe its request, borrowed.
pub(crate) struct RequestKeys<'r> {
    /// `method`, GET when absent.
    pub method: Option<&'r Spanned<String>>,
    /// `path`, relative to the base URL or absolute.
    pub path: Option<&'r Spanned<String>>,
    /// `query` parameters.
    pub query: &'r BTreeMap<String, Spanned<String>>,
    /// `headers`.
    pub headers: &'r BTreeMap<Spanned<String>, Spanned<String>>,
    /// `let`: variables set before rendering.
    pub lets: &'r BTreeMap<Spanned<String>, Spanned<String>>,
    /// `json` body.
    pub json: Option<&'r Spanned<SpannedValue>>,
    /// `body`, raw text.
    pub body: Option<&'r Spanned<String>>,
    /// `status`: accepted codes.
    pub status: Option<&'r Spanned<toml::Value>>,
    /// `checks`.
    pub checks: &'r RawChecks,
    /// `capture`: variables read from the answer.
    pub capture: &'r BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// Compiles one scenario file: where mistakes are reported, and the names
/// its templates and steps resolve.
pub(crate) struct Compiler<'a> {
    /// The file compiled (`builtin:NAME` for built-ins).
    pub path: &'a Path,
    /// Its text, for diagnostics.
    pub text: &'a str,
    env: &'a dyn Env,
    /// Names of the per-user variable slots, declared so far.
    pub slots: Vec<String>,
    /// Their starting values (`[vars]`).
    pub initial: Vec<Option<Value>>,
    /// Columns of the data file, once read.
    pub data_columns: Vec<String>,
    /// Identity names, in the order the scenario's identities are kept.
    pub identities: Vec<String>,
    /// The names of every identity's fields (`tenant`, `email`): template
    /// variables whose value is that of the identity a request is made as.
    pub ident_fields: Vec<String>,
    /// Values never to show, found so far.
    pub secrets: Vec<String>,
    /// The names of the steps compiled so far, in order (what `since`
    /// names).
    pub step_names: Vec<String>,
    /// The streams subscribed by the steps compiled so far, in order: a
    /// stream's index is its place here.
    pub streams: Vec<(String, crate::scenario::stream::StreamKind)>,
}

struct Scope<'c, 'a> {
    c: &'c Compiler<'a>,
    extra: &'c [(String, String)],
}

impl Resolve for Scope<'_, '_> {
    fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)> {
        if let Some((_, v)) = self.extra.iter().find(|(n, _)| n == name) {
            return Ok(Part::Lit(v.clone()));
        }
        if let Some(col) = name.strip_prefix("data.") {
            return match self.c.data_columns.iter().position(|c| c == col) {
                Some(i) => Ok(Part::Data(i)),
                None if self.c.data_columns.is_empty() => Err((
                    format!("undefined data column \"{col}\": the scenario has no [data] file"),
                    None,
                )),
                None => Err((
                    format!("undefined data column \"{col}\""),
                    did_you_mean(col, self.c.data_columns.iter().map(String::as_str))
                        .map(|s| format!("did you mean \"data.{s}\"?"))
                        .or_else(|| Some(format!("columns: {}", self.c.data_columns.join(", ")))),
                )),
            };
        }
        match self.c.slots.iter().position(|s| s == name) {
            Some(i) => Ok(Part::Var(i)),
            None if self.c.ident_fields.iter().any(|s| s == name) => Ok(Part::Ident(
                self.c
                    .ident_fields
                    .iter()
                    .position(|s| s == name)
                    .expect("checked by the guard"),
            )),
            None => {
                let known = self
                    .c
                    .slots
                    .iter()
                    .map(String::as_str)
                    .chain(self.c.ident_fields.iter().map(String::as_str))
                    .chain(self.extra.iter().map(|(n, _)| n.as_str()));
                let hint = did_you_mean(name, known)
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| {
                        "define it in [vars], `let`, a `capture` of an earlier step, or as a field of the identities".into()
                    });
                Err((format!("undefined variable \"{name}\""), Some(hint)))
            }
        }
    }

    fn env(&self, name: &str) -> Option<String> {
        self.c.env.get(name)
    }
}

impl<'a> Compiler<'a> {
    /// A compiler for `text`, which came from `path`.
    pub fn new(path: &'a Path, text: &'a str, env: &'a dyn Env) -> Self {
        Compiler {
            path,
            text,
            env,
            slots: Vec::new(),
            initial: Vec::new(),
            data_columns: Vec::new(),
            identities: Vec::new(),
            ident_fields: Vec::new(),
            secrets: Vec::new(),
            step_names: Vec::new(),
            streams: Vec::new(),
        }
    }

    pub(crate) fn err(&self, span: Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.path, self.text, span, msg)
    }

    /// An error at bytes `at` of string value `s`: where they are written
    /// inside the quotes, or at the whole value when that cannot be told.
    pub(crate) fn err_inside(
        &self,
        s: &Spanned<String>,
        at: Range<usize>,
        msg: impl Into<String>,
    ) -> Diagnostic {
        self.err(range_in_string(self.text, s.span(), s.get_ref(), at), msg)
    }

    pub(crate) fn slot(&mut self, name: &str) -> usize {
        match self.slots.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                self.slots.push(name.to_string());
                self.initial.push(None);
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn template(&self, s: &Spanned<String>) -> Result<Template, Diagnostic> {
        self.template_with(s, &[])
    }

    fn template_with(
        &self,
        s: &Spanned<String>,
        extra: &[(String, String)],
    ) -> Result<Template, Diagnostic> {
        self.template_at(s.get_ref(), s.span(), extra)
    }

    /// Parses a template whose text lies within `span` of the file.
    pub(crate) fn template_at(
        &self,
        t: &str,
        span: Range<usize>,
        extra: &[(String, String)],
    ) -> Result<Template, Diagnostic> {
        Template::parse(t, &Scope { c: self, extra }).map_err(|e| {
            let at = range_in_string(self.text, span, t, e.offset..e.offset + e.len);
            let d = self.err(at, e.message);
            match e.hint {
                Some(h) => d.with_hint(h),
                None => d,
            }
        })
    }

    pub(crate) fn duration(&self, s: &Spanned<String>) -> Result<Duration, Diagnostic> {
        parse_duration(s.get_ref()).map_err(|e| self.err(s.span(), e.to_string()))
    }

    /// A JSON body (or expected value) with placeholders in its strings;
    /// a mistake in one is reported where that string is written.
    pub(crate) fn json_template(
        &self,
        v: &Spanned<SpannedValue>,
        extra: &[(String, String)],
    ) -> Result<JsonTemplate, Diagnostic> {
        let span = v.span();
        Ok(match v.get_ref() {
            SpannedValue::String(s) => {
                let t = self.template_at(s, span, extra)?;
                match t.as_literal() {
                    Some(l) => JsonTemplate::Fixed(Value::String(l.to_string())),
                    None => JsonTemplate::Text(t),
                }
            }
            SpannedValue::Integer(i) => JsonTemplate::Fixed(Value::from(*i)),
            SpannedValue::Float(f) => JsonTemplate::Fixed(
                serde_json::Number::from_f64(*f)
                    .map(Value::Number)
                    .ok_or_else(|| self.err(span, "JSON cannot hold NaN or infinity"))?,
            ),
            SpannedValue::Boolean(b) => JsonTemplate::Fixed(Value::Bool(*b)),
            SpannedValue::Datetime(d) => JsonTemplate::Fixed(Value::String(d.to_string())),
            SpannedValue::Array(a) => {
                let items = a
                    .iter()
                    .map(|x| self.json_template(x, extra))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|i| matches!(i, JsonTemplate::Fixed(_))) {
                    JsonTemplate::Fixed(Value::Array(
                        items
                            .into_iter()
                            .map(|i| match i {
                                JsonTemplate::Fixed(v) => v,
                                _ => unreachable!("checked above"),
                            })
                            .collect(),
                    ))
                } else {
                    JsonTemplate::Array(items)
                }
            }
            SpannedValue::Table(t) => {
                let fields = t
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), self.json_template(x, extra)?)))
                    .collect::<Result<Vec<_>, Diagnostic>>()?;
                if fields
                    .iter()
                    .all(|(_, i)| matches!(i, JsonTemplate::Fixed(_)))
                {
                    JsonTemplate::Fixed(Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, i)| match i {
                                JsonTemplate::Fixed(v) => (k, v),
                                _ => unreachable!("checked above"),
                            })
                            .collect(),
                    ))
                } else {
                    JsonTemplate::Object(fields)
                }
            }
        })
    }

    pub(crate) fn statuses(&self, v: &Spanned<toml::Value>) -> Result<Vec<u16>, Diagnostic> {
        let bad = || {
            self.err(
                v.span(),
                "invalid status: expected a code such as 201 or a list such as [200, 201]",
            )
        };
        let one = |x: &toml::Value| match x {
            toml::Value::Integer(i) if (100..=599).contains(i) => Ok(*i as u16),
            _ => Err(bad()),
        };
        match v.get_ref() {
            toml::Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
            x => Ok(vec![one(x)?]),
        }
    }

    /// Checks a variable or identity name: letters, digits, `_` and `-`,
    /// and none of the built-in names.
    pub(crate) fn check_name(&self, k: &Spanned<String>) -> Result<(), Diagnostic> {
        let n = k.get_ref();
        let ok = !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !matches!(
                n.as_str(),
                "uuid" | "vu" | "iteration" | "now_ms" | "env" | "data"
            );
        if ok {
            Ok(())
        } else {
            Err(Diagnostic::at(self.path, self.text, k.span(), format!("invalid name {n:?}"))
                .with_hint("names use letters, digits, '_' and '-', and are not uuid, vu, iteration, now_ms, env or data"))
        }
    }

    /// An HTTP method, one of [`METHODS`] in any case.
    pub(crate) fn method(&self, m: &Spanned<String>) -> Result<http::Method, Diagnostic> {
        let up = m.get_ref().to_ascii_uppercase();
        if METHODS.contains(&up.as_str()) {
            Ok(up.parse().expect("standard methods parse"))
        } else {
            let d = self.err(m.span(), format!("unknown method {:?}", m.get_ref()));
            Err(match did_you_mean(&up, METHODS.iter().copied()) {
                Some(s) => d.with_hint(format!("did you mean \"{s}\"?")),
                None => d.with_hint(format!("use one of {}", METHODS.join(", "))),
            })
        }
    }

    /// The index of the identity named by `s`.
    pub(crate) fn identity_index(&self, s: &Spanned<String>) -> Result<usize, Diagnostic> {
        self.identities
            .iter()
            .position(|k| k == s.get_ref())
            .ok_or_else(|| {
                let d = self.err(s.span(), format!("undefined identity \"{}\"", s.get_ref()));
                match did_you_mean(s.get_ref(), self.identities.iter().map(String::as_str)) {
                    Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                    None => d.with_hint("declare it under [identities.NAME]"),
                }
            })
    }

    /// A step's pause: a duration, or `LOW..HIGH` drawn uniformly.
    pub(crate) fn think(&self, t: &Spanned<String>) -> Result<(Duration, Duration), Diagnostic> {
        Ok(match t.get_ref().split_once("..") {
            Some((a, b)) => {
                let lo = parse_duration(a).map_err(|e| self.err(t.span(), e.to_string()))?;
                let hi = parse_duration(b).map_err(|e| self.err(t.span(), e.to_string()))?;
                if lo > hi {
                    return Err(self.err(t.span(), "think range is reversed: write LOW..HIGH"));
                }
                (lo, hi)
            }
            None => {
                let d = self.duration(t)?;
                (d, d)
            }
        })
    }
}

/// The methods a step or a route may use.
pub(crate) const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
