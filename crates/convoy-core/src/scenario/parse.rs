//! Reading scenario files: TOML into raw structs that keep source spans,
//! then into the compiled [`Scenario`], with every mistake reported as a
//! [`Diagnostic`] at its file, line and column.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::diagnostic::{Diagnostic, did_you_mean, range_in_string};
use super::model::*;
use super::source::SpannedValue;
use super::template::{Part, Resolve, Template};
use crate::plan::parse_duration;

/// Largest scenario file accepted.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<Spanned<String>>,
    description: Option<String>,
    weight: Option<Spanned<i64>>,
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    secrets: Vec<Spanned<String>>,
    #[serde(default)]
    gates: Vec<Spanned<String>>,
    #[serde(default)]
    vars: BTreeMap<Spanned<String>, Spanned<SpannedValue>>,
    data: Option<RawData>,
    auth: Option<RawAuth>,
    #[serde(default)]
    identities: BTreeMap<Spanned<String>, Spanned<BTreeMap<String, Spanned<String>>>>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    file: Spanned<String>,
    mode: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    path: Spanned<String>,
    method: Option<Spanned<String>>,
    body: Spanned<SpannedValue>,
    token: Spanned<String>,
    header: Option<Spanned<String>>,
    scheme: Option<String>,
    renew_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<Spanned<String>>,
    #[serde(rename = "as")]
    identity: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    #[serde(default)]
    query: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(rename = "let", default)]
    lets: BTreeMap<Spanned<String>, Spanned<String>>,
    json: Option<Spanned<SpannedValue>>,
    body: Option<Spanned<String>>,
    status: Option<Spanned<toml::Value>>,
    #[serde(default)]
    checks: Vec<Spanned<BTreeMap<Spanned<String>, Spanned<SpannedValue>>>>,
    #[serde(default)]
    capture: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    think: Option<Spanned<String>>,
    replay: Option<Spanned<RawReplay>>,
    isolation: Option<Spanned<RawIsolation>>,
    custom: Option<Spanned<String>>,
    sql: Option<Spanned<super::sql::RawSql>>,
    rls: Option<Spanned<super::sql::RawRls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplay {
    times: Spanned<i64>,
    #[serde(default)]
    concurrent: bool,
    id: Spanned<String>,
    status: Option<Spanned<toml::Value>>,
    verify: Option<Spanned<Box<RawStep>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIsolation {
    #[serde(rename = "as")]
    identity: Spanned<String>,
    resource: Spanned<String>,
    routes: Spanned<Vec<Spanned<String>>>,
    expect: Option<Spanned<toml::Value>>,
    #[serde(default)]
    markers: Vec<Spanned<String>>,
    body: Option<Spanned<SpannedValue>>,
}

/// Reads and compiles the scenario file at `path`.
pub fn load_file(path: &Path) -> Result<Scenario, Diagnostic> {
    let bytes = read_bounded(path, MAX_FILE_BYTES)
        .map_err(|e| Diagnostic::file(path, format!("cannot read scenario file: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::file(
            path,
            format!(
                "scenario file is {} bytes; the limit is {MAX_FILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    // A byte-order mark is no part of the scenario (and no column).
    let mut bytes = bytes;
    if bytes.starts_with("\u{feff}".as_bytes()) {
        bytes.drain(..3);
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
            return Err(
                Diagnostic::at(path, &valid, at..at, "the file is not valid UTF-8")
                    .with_hint("save the scenario as UTF-8"),
            );
        }
    };
    parse(path, &text, &EnvScope)
}

/// Reads at most `limit + 1` bytes of `path`, so a huge or endless file
/// (`/dev/zero`) is refused by its size instead of exhausting memory.
pub fn read_bounded(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

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

/// Compiles scenario `text`, which came from `path`.
pub fn parse(path: &Path, text: &str, env: &dyn Env) -> Result<Scenario, Diagnostic> {
    let text = text.strip_prefix(super::diagnostic::BOM).unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Diagnostic::file(path, "the scenario file is empty")
            .with_hint("a scenario needs at least one [[step]]"));
    }
    let raw: RawScenario = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    Compiler {
        path,
        text,
        env,
        slots: Vec::new(),
        initial: Vec::new(),
        data_columns: Vec::new(),
        secrets: Vec::new(),
    }
    .compile(raw)
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let msg = e.message().trim().to_string();
    // serde: "unknown field `captrue`, expected one of `a`, `b`"
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        let mut d = Diagnostic::at(path, text, span, format!("unknown key \"{field}\""));
        d = match did_you_mean(field, candidates.iter().copied()) {
            Some(s) => d.with_hint(format!("did you mean \"{s}\"?")),
            None if !candidates.is_empty() => {
                d.with_hint(format!("expected one of: {}", candidates.join(", ")))
            }
            None => d,
        };
        return d;
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return Diagnostic::at(path, text, span, format!("missing key \"{field}\""))
            .with_hint(format!("add `{field} = ...` to this table"));
    }
    Diagnostic::at(path, text, span, msg)
}

pub(super) struct Compiler<'a> {
    path: &'a Path,
    text: &'a str,
    env: &'a dyn Env,
    slots: Vec<String>,
    initial: Vec<Option<Value>>,
    data_columns: Vec<String>,
    secrets: Vec<String>,
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
            None => {
                let known = self
                    .c
                    .slots
                    .iter()
                    .map(String::as_str)
                    .chain(self.extra.iter().map(|(n, _)| n.as_str()));
                let hint = did_you_mean(name, known)
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| {
                        "define it in [vars], `let`, or a `capture` of an earlier step".into()
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
    pub(super) fn err(&self, span: Range<usize>, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.path, self.text, span, msg)
    }

    /// An error at bytes `at` of string value `s`: where they are written
    /// inside the quotes, or at the whole value when that cannot be told.
    pub(super) fn err_inside(
        &self,
        s: &Spanned<String>,
        at: Range<usize>,
        msg: impl Into<String>,
    ) -> Diagnostic {
        self.err(range_in_string(self.text, s.span(), s.get_ref(), at), msg)
    }

    fn slot(&mut self, name: &str) -> usize {
        match self.slots.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                self.slots.push(name.to_string());
                self.initial.push(None);
                self.slots.len() - 1
            }
        }
    }

    pub(super) fn template(&self, s: &Spanned<String>) -> Result<Template, Diagnostic> {
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
    fn template_at(
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

    fn duration(&self, s: &Spanned<String>) -> Result<Duration, Diagnostic> {
        parse_duration(s.get_ref()).map_err(|e| self.err(s.span(), e.to_string()))
    }

    /// A JSON body (or expected value) with placeholders in its strings;
    /// a mistake in one is reported where that string is written.
    pub(super) fn json_template(
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

    fn statuses(&self, v: &Spanned<toml::Value>) -> Result<Vec<u16>, Diagnostic> {
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

    fn compile(mut self, raw: RawScenario) -> Result<Scenario, Diagnostic> {
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(self.err(n.span(), "the scenario name is empty"));
            }
            Some(n) => n.get_ref().clone(),
            None => self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
        };
        let weight = match &raw.weight {
            Some(w) if !(1..=1_000_000).contains(w.get_ref()) => {
                return Err(self.err(w.span(), "weight must be between 1 and 1000000"));
            }
            Some(w) => *w.get_ref() as u32,
            None => 1,
        };
        let base_url = match &raw.base_url {
            Some(u) => {
                let t = self.template(u)?;
                let text = t.as_literal().ok_or_else(|| {
                    self.err(
                        u.span(),
                        "base_url may use {{ env.NAME }} but no per-request placeholder",
                    )
                })?;
                let url: url::Url = text
                    .parse()
                    .map_err(|e| self.err(u.span(), format!("invalid base_url {text:?}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(self.err(
                        u.span(),
                        format!("invalid base_url {text:?}: the scheme must be http or https"),
                    ));
                }
                Some(url)
            }
            None => None,
        };

        // Variables first: later templates may use them.
        for (k, v) in &raw.vars {
            check_name(self.path, self.text, k)?;
            let value = match v.get_ref() {
                SpannedValue::String(s) => {
                    let t = self.template_at(s, v.span(), &[])?;
                    Value::String(t.as_literal().map(str::to_string).ok_or_else(|| {
                        self.err(v.span(), "a [vars] value may use {{ env.NAME }} but no per-request placeholder; use `let` in a step")
                    })?)
                }
                _ => match self.json_template(v, &[])? {
                    JsonTemplate::Fixed(v) => v,
                    _ => return Err(self.err(v.span(), "a [vars] value cannot hold placeholders")),
                },
            };
            let slot = self.slot(k.get_ref());
            self.initial[slot] = Some(value);
        }
        let secret_names: Vec<String> = raw.secrets.iter().map(|s| s.get_ref().clone()).collect();
        for s in &raw.secrets {
            match self.slots.iter().position(|n| n == s.get_ref()) {
                Some(i) => {
                    if let Some(Some(Value::String(v))) = self.initial.get(i) {
                        self.secrets.push(v.clone());
                    }
                }
                None => {
                    return Err(self.err(
                        s.span(),
                        format!("secret \"{}\" is not a [vars] variable", s.get_ref()),
                    ));
                }
            }
        }

        for g in &raw.gates {
            if let Err(e) = g.get_ref().parse::<crate::gate::Gate>() {
                // Point at the column the gate parser names, inside the string.
                let text = g.get_ref();
                let at = super::diagnostic::column_in_string(self.text, g.span(), text, e.column);
                return Err(self.err(at, format!("invalid gate {text:?}: {}", e.message)));
            }
        }
        let data = raw.data.as_ref().map(|d| self.data(d)).transpose()?;

        // Declare every let and capture, so steps may use values captured
        // by earlier steps (and loops of journeys by later ones).
        for st in &raw.steps {
            declare_step(&mut self, st.get_ref())?;
        }

        let auth = raw.auth.as_ref().map(|a| self.auth(a)).transpose()?;
        let mut identities = Vec::new();
        for (k, fields) in &raw.identities {
            check_name(self.path, self.text, k)?;
            identities.push(self.identity(k, fields, raw.auth.as_ref(), auth.is_some())?);
        }

        if raw.steps.is_empty() {
            return Err(
                Diagnostic::at(self.path, self.text, 0..0, "the scenario has no steps")
                    .with_hint("add at least one [[step]] with a method and a path"),
            );
        }
        let mut steps = Vec::new();
        let mut names = std::collections::HashSet::new();
        for st in &raw.steps {
            let step = self.step(st, &raw.identities)?;
            if !names.insert(step.name.clone()) {
                let span = st.get_ref().name.as_ref().map_or(st.span(), |n| n.span());
                return Err(self
                    .err(span, format!("two steps are named \"{}\"", step.name))
                    .with_hint("step names are metric names: make each unique"));
            }
            steps.push(step);
        }
        let _ = secret_names;
        // Database URLs carry passwords: never show them.
        for st in &steps {
            if let Action::Sql(super::sql::SqlStep { url, .. })
            | Action::Rls(super::sql::RlsStep { url, .. }) = &st.action
            {
                self.secrets.extend(super::sql::url_secrets(url));
            }
        }
        Ok(Scenario {
            name,
            description: raw.description.unwrap_or_default(),
            weight,
            base_url,
            gates: raw.gates.iter().map(|g| g.get_ref().clone()).collect(),
            slots: self.slots,
            initial: self.initial,
            data,
            auth,
            identities,
            steps,
            secrets: self.secrets,
            source: self.path.to_path_buf(),
        })
    }

    fn data(&mut self, d: &RawData) -> Result<DataSet, Diagnostic> {
        let random = match d.mode.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("sequential") => false,
            Some("random") => true,
            Some(other) => {
                let m = d.mode.as_ref().expect("matched Some");
                return Err(self
                    .err(m.span(), format!("unknown data mode \"{other}\""))
                    .with_hint("use \"sequential\" or \"random\""));
            }
        };
        let file = self
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join(d.file.get_ref());
        let text = self.read_data_file(&file, d.file.span())?;
        let (columns, rows) = if file.extension().is_some_and(|e| e == "json") {
            super::data::parse_json(&text)
        } else {
            super::data::parse_csv(&text)
        }
        .map_err(|e| {
            self.err(
                d.file.span(),
                format!("invalid data file {}: {e}", file.display()),
            )
        })?;
        if rows.is_empty() {
            return Err(self.err(
                d.file.span(),
                format!("data file {} has no rows", file.display()),
            ));
        }
        self.data_columns = columns.clone();
        Ok(DataSet {
            columns,
            rows,
            random,
            user_stride: 1,
        })
    }

    /// Reads data file `file`, named at `span`, refusing one larger than
    /// [`MAX_DATA_FILE_BYTES`](super::data::MAX_DATA_FILE_BYTES) before it
    /// exhausts memory.
    fn read_data_file(&self, file: &Path, span: Range<usize>) -> Result<String, Diagnostic> {
        use super::data::MAX_DATA_FILE_BYTES;
        let bytes = read_bounded(file, MAX_DATA_FILE_BYTES).map_err(|e| {
            self.err(
                span.clone(),
                format!("cannot read data file {}: {e}", file.display()),
            )
        })?;
        if bytes.len() > MAX_DATA_FILE_BYTES {
            return Err(self
                .err(
                    span,
                    format!(
                        "data file {} is larger than {} MiB ({MAX_DATA_FILE_BYTES} bytes), the limit for data files",
                        file.display(),
                        MAX_DATA_FILE_BYTES / (1024 * 1024)
                    ),
                )
                .with_hint("use a smaller sample of the rows"));
        }
        String::from_utf8(bytes).map_err(|e| {
            self.err(
                span,
                format!(
                    "invalid data file {}: not valid UTF-8 at byte {}",
                    file.display(),
                    e.utf8_error().valid_up_to()
                ),
            )
        })
    }

    fn auth(&self, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
        let method = match &a.method {
            Some(m) => parse_method(self, m)?,
            None => http::Method::POST,
        };
        if !a.token.get_ref().starts_with('/') {
            return Err(self.err(
                a.token.span(),
                "token must be a JSON pointer such as \"/token\"",
            ));
        }
        let header = match &a.header {
            Some(h) => h.get_ref().parse().map_err(|_| {
                self.err(h.span(), format!("invalid header name {:?}", h.get_ref()))
            })?,
            None => http::header::AUTHORIZATION,
        };
        Ok(AuthConfig {
            method,
            path: a.path.get_ref().clone(),
            token_pointer: a.token.get_ref().clone(),
            header,
            scheme: a.scheme.clone().unwrap_or_else(|| "Bearer".into()),
            renew_after: match &a.renew_after {
                Some(d) => self.duration(d)?,
                None => Duration::from_secs(50 * 60),
            },
        })
    }

    fn identity(
        &mut self,
        name: &Spanned<String>,
        fields: &Spanned<BTreeMap<String, Spanned<String>>>,
        raw_auth: Option<&RawAuth>,
        has_auth: bool,
    ) -> Result<Identity, Diagnostic> {
        // Identity fields may use env; they are rendered once.
        let mut values = Vec::new();
        for (k, v) in fields.get_ref() {
            let t = self.template(v)?;
            let text = t.as_literal().map(str::to_string).ok_or_else(|| {
                self.err(
                    v.span(),
                    "identity fields may use {{ env.NAME }} but no per-request placeholder",
                )
            })?;
            if matches!(k.as_str(), "password" | "token" | "secret")
                || crate::redact::is_sensitive_name(k)
            {
                self.secrets.push(text.clone());
            }
            values.push((k.clone(), text));
        }
        if let Some((_, token)) = values.iter().find(|(k, _)| k == "token") {
            return Ok(Identity {
                name: name.get_ref().clone(),
                credential: Credential::Token(token.clone()),
            });
        }
        let Some(raw_auth) = raw_auth.filter(|_| has_auth) else {
            return Err(self.err(fields.span(), format!("identity \"{}\" has no token and the scenario has no [auth] login", name.get_ref()))
                .with_hint("give it `token = \"{{ env.API_TOKEN }}\"`, or add an [auth] table describing the login request"));
        };
        let body = match self.json_template(&raw_auth.body, &values)? {
            JsonTemplate::Fixed(v) => v,
            _ => {
                return Err(self.err(
                    raw_auth.body.span(),
                    "the login body may only use identity fields and env",
                ));
            }
        };
        Ok(Identity {
            name: name.get_ref().clone(),
            credential: Credential::Login(bytes::Bytes::from(
                serde_json::to_vec(&body).expect("JSON values serialise"),
            )),
        })
    }

    fn identity_index(
        &self,
        s: &Spanned<String>,
        identities: &BTreeMap<Spanned<String>, Spanned<BTreeMap<String, Spanned<String>>>>,
    ) -> Result<usize, Diagnostic> {
        identities
            .keys()
            .position(|k| k.get_ref() == s.get_ref())
            .ok_or_else(|| {
                let d = self.err(s.span(), format!("undefined identity \"{}\"", s.get_ref()));
                match did_you_mean(s.get_ref(), identities.keys().map(|k| k.get_ref().as_str())) {
                    Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                    None => d.with_hint("declare it under [identities.NAME]"),
                }
            })
    }

    fn step(
        &self,
        st: &Spanned<RawStep>,
        identities: &BTreeMap<Spanned<String>, Spanned<BTreeMap<String, Spanned<String>>>>,
    ) -> Result<Step, Diagnostic> {
        let raw = st.get_ref();
        let identity = raw
            .identity
            .as_ref()
            .map(|i| self.identity_index(i, identities))
            .transpose()?;
        let think = match &raw.think {
            Some(t) => Some(match t.get_ref().split_once("..") {
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
            }),
            None => None,
        };
        if let Some(c) = &raw.custom {
            let name = raw
                .name
                .as_ref()
                .map_or_else(|| c.get_ref().clone(), |n| n.get_ref().clone());
            return Ok(Step {
                name,
                identity,
                action: Action::Custom(c.get_ref().clone()),
                think,
            });
        }
        if let Some(db) = raw
            .sql
            .as_ref()
            .map(|q| (q.span(), "sql"))
            .or(raw.rls.as_ref().map(|r| (r.span(), "rls")))
        {
            let (span, kind) = db;
            if raw.method.is_some() || raw.path.is_some() || !raw.checks.is_empty() {
                return Err(self
                    .err(
                        span,
                        format!("an {kind} step has no method, path or checks of its own"),
                    )
                    .with_hint(format!("put its checks inside [step.{kind}]")));
            }
            let name = raw
                .name
                .as_ref()
                .map_or_else(|| kind.to_string(), |n| n.get_ref().clone());
            let action = match (&raw.sql, &raw.rls) {
                (Some(q), None) => Action::Sql(super::sql::compile_sql(self, q.get_ref())?),
                (None, Some(r)) => Action::Rls(super::sql::compile_rls(self, r.get_ref())?),
                _ => {
                    return Err(
                        self.err(span, "a step has either [step.sql] or [step.rls], not both")
                    );
                }
            };
            return Ok(Step {
                name,
                identity,
                action,
                think,
            });
        }
        if let Some(iso) = &raw.isolation {
            if raw.method.is_some() || raw.path.is_some() {
                return Err(self
                    .err(
                        iso.span(),
                        "an isolation step has no method or path of its own",
                    )
                    .with_hint("describe the probed resource with `resource` and `routes`"));
            }
            let name = raw
                .name
                .as_ref()
                .map_or_else(|| "tenant isolation".to_string(), |n| n.get_ref().clone());
            return Ok(Step {
                name,
                identity,
                action: Action::Isolation(self.isolation(iso.get_ref(), identities)?),
                think,
            });
        }
        let request = self.request(st.span(), raw)?;
        let name = match &raw.name {
            Some(n) => n.get_ref().clone(),
            None => format!(
                "{} {}",
                request.method,
                raw.path.as_ref().map_or("", |p| p.get_ref().as_str())
            ),
        };
        let action = match &raw.replay {
            Some(r) => Action::Replay(request, self.replay(r)?),
            None => Action::Request(request),
        };
        Ok(Step {
            name,
            identity,
            action,
            think,
        })
    }

    fn request(&self, span: Range<usize>, raw: &RawStep) -> Result<Request, Diagnostic> {
        let path = raw.path.as_ref().ok_or_else(|| {
            self.err(span.start..span.start, "missing key \"path\"")
                .with_hint("add `path = \"/api/...\"` to this step")
        })?;
        let p = path.get_ref();
        if !(p.starts_with('/')
            || p.starts_with("{{")
            || p.starts_with("http://")
            || p.starts_with("https://"))
        {
            return Err(self.err(path.span(), format!("invalid path {p:?}: it starts with '/' (relative to the base URL) or is an absolute http(s) URL"))
                .with_hint(format!("write \"/{p}\"")));
        }
        let method = match &raw.method {
            Some(m) => parse_method(self, m)?,
            None => http::Method::GET,
        };
        if let (Some(_), Some(b)) = (&raw.json, &raw.body) {
            return Err(self.err(b.span(), "a step has either `json` or `body`, not both"));
        }
        let mut headers = Vec::new();
        for (k, v) in &raw.headers {
            let name: http::HeaderName = k.get_ref().parse().map_err(|_| {
                self.err(k.span(), format!("invalid header name {:?}", k.get_ref()))
            })?;
            let t = self.template(v)?;
            if let Some(lit) = t.as_literal()
                && http::HeaderValue::from_str(lit).is_err()
            {
                return Err(self.err(v.span(), format!("invalid header value for {}: HTTP cannot carry control characters or line breaks", k.get_ref())));
            }
            headers.push((name, t));
        }
        let mut lets = Vec::new();
        for (k, v) in &raw.lets {
            let slot = self
                .slots
                .iter()
                .position(|s| s == k.get_ref())
                .expect("declared in the first pass");
            lets.push((slot, self.template(v)?));
        }
        let mut checks = Vec::new();
        for c in &raw.checks {
            checks.push(self.check(c)?);
        }
        let mut captures = Vec::new();
        for (k, v) in &raw.capture {
            let slot = self
                .slots
                .iter()
                .position(|s| s == k.get_ref())
                .expect("declared in the first pass");
            captures.push(Capture {
                slot,
                source: self.capture_source(v)?,
            });
        }
        Ok(Request {
            method,
            path: self.template(path)?,
            query: raw
                .query
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.template(v)?)))
                .collect::<Result<_, Diagnostic>>()?,
            headers,
            body: match (&raw.json, &raw.body) {
                (Some(j), _) => Body::Json(self.json_template(j, &[])?),
                (None, Some(b)) => Body::Raw(self.template(b)?),
                (None, None) => Body::None,
            },
            lets,
            status: raw
                .status
                .as_ref()
                .map(|s| self.statuses(s))
                .transpose()?
                .unwrap_or_default(),
            checks,
            captures,
        })
    }

    fn check(
        &self,
        c: &Spanned<BTreeMap<Spanned<String>, Spanned<SpannedValue>>>,
    ) -> Result<Check, Diagnostic> {
        const SUBJECTS: &[&str] = &[
            "json",
            "jsonpath",
            "header",
            "body_contains",
            "latency_below",
        ];
        const PREDICATES: &[&str] = &["equals", "exists", "matches", "contains", "length"];
        let map = c.get_ref();
        for k in map.keys() {
            if !SUBJECTS.contains(&k.get_ref().as_str())
                && !PREDICATES.contains(&k.get_ref().as_str())
            {
                let d = self.err(k.span(), format!("unknown check key \"{}\"", k.get_ref()));
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
                _ => Err(self.err(v.span(), "expected a string")),
            }
        };
        if let Some(v) = get("body_contains") {
            let s = Spanned::new(v.span(), string(v)?);
            return Ok(Check {
                label: format!("body contains {:?}", s.get_ref()),
                subject: Subject::Body,
                predicate: Predicate::Contains(self.template(&s)?),
            });
        }
        if let Some(v) = get("latency_below") {
            let s = Spanned::new(v.span(), string(v)?);
            let d = self.duration(&s)?;
            return Ok(Check {
                label: format!("latency < {}", s.get_ref()),
                subject: Subject::Latency,
                predicate: Predicate::Below(d),
            });
        }
        let (subject, subject_label) = if let Some(v) = get("json") {
            let p = string(v)?;
            if !(p.is_empty() || p.starts_with('/')) {
                return Err(self
                    .err(
                        v.span(),
                        format!("invalid JSON pointer {p:?}: it starts with '/', such as \"/id\""),
                    )
                    .with_hint("for JSONPath such as $.id use `jsonpath = ...`"));
            }
            (Subject::Json(p.clone()), format!("json {p}"))
        } else if let Some(v) = get("jsonpath") {
            let p = string(v)?;
            let ptr = super::data::jsonpath_to_pointer(&p).map_err(|e| self.err(v.span(), e))?;
            (Subject::Json(ptr), format!("jsonpath {p}"))
        } else if let Some(v) = get("header") {
            let h = string(v)?;
            let name: http::HeaderName = h
                .parse()
                .map_err(|_| self.err(v.span(), format!("invalid header name {h:?}")))?;
            (Subject::Header(name), format!("header {h}"))
        } else {
            return Err(self.err(
                c.span(),
                "a check needs a subject: json, jsonpath, header, body_contains or latency_below",
            ));
        };
        let mut predicates = PREDICATES.iter().filter_map(|p| get(p).map(|v| (*p, v)));
        let Some((pred, v)) = predicates.next() else {
            return Err(self.err(
                c.span(),
                "a check needs a predicate: equals, exists, matches, contains or length",
            ));
        };
        if let Some((other, ov)) = predicates.next() {
            return Err(self.err(
                ov.span(),
                format!("a check has one predicate; found both {pred} and {other}"),
            ));
        }
        let (predicate, label) = match pred {
            "equals" => {
                let t = self.json_template(v, &[])?;
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
                _ => return Err(self.err(v.span(), "exists takes true or false")),
            },
            "matches" => {
                let s = string(v)?;
                let re = regex_lite::Regex::new(&s)
                    .map_err(|e| self.err(v.span(), format!("invalid regular expression: {e}")))?;
                (
                    Predicate::Matches(re),
                    format!("{subject_label} matches {s:?}"),
                )
            }
            "contains" => {
                let s = Spanned::new(v.span(), string(v)?);
                (
                    Predicate::Contains(self.template(&s)?),
                    format!("{subject_label} contains {:?}", s.get_ref()),
                )
            }
            "length" => match v.get_ref() {
                SpannedValue::Integer(n) if *n >= 0 => (
                    Predicate::Length(*n as usize),
                    format!("{subject_label} has length {n}"),
                ),
                _ => return Err(self.err(v.span(), "length takes a whole number")),
            },
            _ => unreachable!("PREDICATES lists every case"),
        };
        Ok(Check {
            label,
            subject,
            predicate,
        })
    }

    fn capture_source(&self, v: &Spanned<toml::Value>) -> Result<CaptureSource, Diagnostic> {
        let pointer = |p: &str| -> Result<CaptureSource, Diagnostic> {
            if p.is_empty() || p.starts_with('/') {
                Ok(CaptureSource::Json(p.to_string()))
            } else {
                Err(self.err(
                    v.span(),
                    format!("invalid JSON pointer {p:?}: it starts with '/', such as \"/id\""),
                ))
            }
        };
        match v.get_ref() {
            toml::Value::String(s) => pointer(s),
            toml::Value::Table(t) if t.len() == 1 => {
                let (k, val) = t.iter().next().expect("one entry");
                let s = val.as_str().ok_or_else(|| self.err(v.span(), format!("capture `{k}` takes a string")))?;
                match k.as_str() {
                    "json" => pointer(s),
                    "jsonpath" => super::data::jsonpath_to_pointer(s)
                        .map(CaptureSource::Json)
                        .map_err(|e| self.err(v.span(), e)),
                    "header" => s
                        .parse()
                        .map(CaptureSource::Header)
                        .map_err(|_| self.err(v.span(), format!("invalid header name {s:?}"))),
                    "regex" => regex_lite::Regex::new(s)
                        .map(CaptureSource::Regex)
                        .map_err(|e| self.err(v.span(), format!("invalid regular expression: {e}"))),
                    other => {
                        let d = self.err(v.span(), format!("unknown capture source \"{other}\""));
                        Err(match did_you_mean(other, ["json", "jsonpath", "header", "regex"]) {
                            Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                            None => d.with_hint("use json, jsonpath, header or regex"),
                        })
                    }
                }
            }
            _ => Err(self.err(v.span(), "a capture is a JSON pointer string or a table with one of json, jsonpath, header, regex")),
        }
    }

    fn replay(&self, r: &Spanned<RawReplay>) -> Result<Replay, Diagnostic> {
        let raw = r.get_ref();
        if !(2..=1000).contains(raw.times.get_ref()) {
            return Err(self.err(raw.times.span(), "replay times must be between 2 and 1000"));
        }
        if !raw.id.get_ref().starts_with('/') {
            return Err(self.err(raw.id.span(), "id must be a JSON pointer such as \"/id\""));
        }
        let verify = match &raw.verify {
            Some(v) => Some(Box::new(self.request(v.span(), v.get_ref())?)),
            None => None,
        };
        Ok(Replay {
            times: *raw.times.get_ref() as u32,
            concurrent: raw.concurrent,
            id_pointer: raw.id.get_ref().clone(),
            statuses: match &raw.status {
                Some(s) => self.statuses(s)?,
                None => vec![200, 201],
            },
            verify,
        })
    }

    fn isolation(
        &self,
        raw: &RawIsolation,
        identities: &BTreeMap<Spanned<String>, Spanned<BTreeMap<String, Spanned<String>>>>,
    ) -> Result<Isolation, Diagnostic> {
        let identity = self.identity_index(&raw.identity, identities)?;
        if raw.routes.get_ref().is_empty() {
            return Err(self.err(
                raw.routes.span(),
                "an isolation probe needs at least one route, such as routes = [\"GET\"]",
            ));
        }
        let mut probes = Vec::new();
        for r in raw.routes.get_ref() {
            let (m, suffix) = match r.get_ref().trim().split_once(' ') {
                Some((m, s)) => (m, s.trim()),
                None => (r.get_ref().trim(), ""),
            };
            if !(suffix.is_empty() || suffix.starts_with('/')) {
                return Err(self.err(
                    r.span(),
                    format!(
                        "invalid route {:?}: expected METHOD or METHOD /suffix",
                        r.get_ref()
                    ),
                ));
            }
            let up = m.to_ascii_uppercase();
            if !METHODS.contains(&up.as_str()) {
                return Err(self
                    .err(
                        r.span(),
                        format!("invalid method {m:?} in route {:?}", r.get_ref()),
                    )
                    .with_hint(format!("use one of {}", METHODS.join(", "))));
            }
            let method: http::Method = up.parse().expect("standard methods parse");
            probes.push((method, suffix.to_string()));
        }
        Ok(Isolation {
            identity,
            resource: self.template(&raw.resource)?,
            probes,
            expect: match &raw.expect {
                Some(s) => self.statuses(s)?,
                None => vec![403, 404],
            },
            markers: raw
                .markers
                .iter()
                .map(|m| self.template(m))
                .collect::<Result<_, _>>()?,
            body: raw
                .body
                .as_ref()
                .map(|b| self.json_template(b, &[]))
                .transpose()?,
        })
    }
}

fn declare_step(c: &mut Compiler<'_>, st: &RawStep) -> Result<(), Diagnostic> {
    for k in st.lets.keys().chain(st.capture.keys()) {
        check_name(c.path, c.text, k)?;
        c.slot(k.get_ref());
    }
    if let Some(r) = &st.replay
        && let Some(v) = &r.get_ref().verify
    {
        declare_step(c, v.get_ref())?;
    }
    Ok(())
}

fn check_name(path: &Path, text: &str, k: &Spanned<String>) -> Result<(), Diagnostic> {
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
        Err(Diagnostic::at(path, text, k.span(), format!("invalid name {n:?}"))
            .with_hint("names use letters, digits, '_' and '-', and are not uuid, vu, iteration, now_ms, env or data"))
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn parse_method(c: &Compiler<'_>, m: &Spanned<String>) -> Result<http::Method, Diagnostic> {
    let up = m.get_ref().to_ascii_uppercase();
    if METHODS.contains(&up.as_str()) {
        Ok(up.parse().expect("standard methods parse"))
    } else {
        let d = c.err(m.span(), format!("unknown method {:?}", m.get_ref()));
        Err(match did_you_mean(&up, METHODS.iter().copied()) {
            Some(s) => d.with_hint(format!("did you mean \"{s}\"?")),
            None => d.with_hint(format!("use one of {}", METHODS.join(", "))),
        })
    }
}

/// Where a scenario named on the command line comes from.
pub fn resolve_path(arg: &str) -> PathBuf {
    PathBuf::from(arg)
}
