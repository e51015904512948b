//! Reading scenario files, the front-end: TOML into raw structs that keep
//! source spans, then into the compiled [`Scenario`], with every mistake
//! reported as a [`Diagnostic`] at its file, line and column. The
//! scenario's own tables (`[vars]`, `secrets`, `gates`, `[data]`) are
//! compiled here; `[auth]` and `[identities]` by [`super::auth`]; each
//! `[[step]]` by its kind ([`super::steps`]).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::auth::{self, RawAuth, RawIdentity};
pub use super::compile::{Env, EnvScope};

use super::compile::{Compiler, StepTable};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::journey::{Scenario, Step};
use super::model::{DataSet, JsonTemplate};
use super::source::SpannedValue;
use super::steps::{Action, RawStep};

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
    identities: BTreeMap<Spanned<String>, RawIdentity>,
    defaults: Option<RawDefaults>,
    #[serde(default, rename = "step")]
    steps: Vec<Spanned<RawStep>>,
}

/// The `[defaults]` table: what every request of the scenario has unless
/// its identity or step says otherwise.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    #[serde(default)]
    headers: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// A suite file (`suite.toml`): what every scenario of its folder shares.
/// A scenario's own keys override it: its `base_url`, `[auth]`, each
/// `[vars]` variable, identity (whole) and default header of the same
/// name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    secrets: Vec<Spanned<String>>,
    #[serde(default)]
    vars: BTreeMap<Spanned<String>, Spanned<SpannedValue>>,
    auth: Option<RawAuth>,
    #[serde(default)]
    identities: BTreeMap<Spanned<String>, RawIdentity>,
    defaults: Option<RawDefaults>,
}

/// The name of a folder's suite file.
pub const SUITE_FILE: &str = "suite.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    file: Spanned<String>,
    mode: Option<Spanned<String>>,
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
    let suite_path = path.parent().unwrap_or(Path::new(".")).join(SUITE_FILE);
    let is_suite = path.file_name() == Some(std::ffi::OsStr::new(SUITE_FILE));
    if !is_suite && suite_path.is_file() {
        let suite = read_text(&suite_path)?;
        return parse_in_suite(path, &text, Some((&suite_path, &suite)), &EnvScope);
    }
    parse(path, &text, &EnvScope)
}

/// Reads a suite file, as a scenario file is read.
fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = read_bounded(path, MAX_FILE_BYTES)
        .map_err(|e| Diagnostic::file(path, format!("cannot read suite file: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::file(
            path,
            format!("suite file is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        Diagnostic::at(path, &valid, at..at, "the file is not valid UTF-8")
    })?;
    Ok(text
        .strip_prefix(super::diagnostic::BOM)
        .map(str::to_string)
        .unwrap_or(text))
}

/// What a TOML file in a folder of scenarios is, by what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A scenario: it has `[[step]]` tables.
    Scenario,
    /// A suite file: no steps, and shared tables (`[auth]`,
    /// `[identities]`, `[defaults]`, `[vars]`) or the name `suite.toml`.
    Suite,
    /// A profiles file (`[profile.NAME]` tables).
    Profiles,
    /// Anything else.
    Other,
}

/// Tells what TOML `text` (from `path`) is; a file that is no valid TOML
/// is a mistake at its place.
pub fn classify(path: &Path, text: &str) -> Result<FileKind, Diagnostic> {
    let text = text.strip_prefix(super::diagnostic::BOM).unwrap_or(text);
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    Ok(if table.contains_key("step") {
        FileKind::Scenario
    } else if path.file_name() == Some(std::ffi::OsStr::new(SUITE_FILE))
        || ["auth", "identities", "defaults"]
            .iter()
            .any(|k| table.contains_key(*k))
    {
        FileKind::Suite
    } else if table.contains_key("profile") {
        FileKind::Profiles
    } else {
        FileKind::Other
    })
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

/// Compiles scenario `text`, which came from `path`.
pub fn parse(path: &Path, text: &str, env: &dyn Env) -> Result<Scenario, Diagnostic> {
    parse_in_suite(path, text, None, env)
}

/// Compiles scenario `text`, which came from `path`, with the suite file
/// `suite` (its path and text) of its folder, if it has one.
pub fn parse_in_suite(
    path: &Path,
    text: &str,
    suite: Option<(&Path, &str)>,
    env: &dyn Env,
) -> Result<Scenario, Diagnostic> {
    let text = text.strip_prefix(super::diagnostic::BOM).unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Diagnostic::file(path, "the scenario file is empty")
            .with_hint("a scenario needs at least one [[step]]"));
    }
    let suite = match suite {
        Some((p, t)) => {
            let raw: RawSuite = toml::from_str(t).map_err(|e| toml_error(p, t, &e))?;
            Some((p, t, raw))
        }
        None => None,
    };
    let raw: RawScenario = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let suite_ref = suite.as_ref().map(|(p, t, r)| ((*p, *t), r));
    compile(Compiler::new(path, text, env), raw, suite_ref)
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

/// Compiles the scenario `raw` with `c`, and what it takes from `suite`
/// (the suite file's path and text, and its tables).
fn compile<'a>(
    mut c: Compiler<'a>,
    raw: RawScenario,
    suite: Option<((&'a Path, &'a str), &RawSuite)>,
) -> Result<Scenario, Diagnostic> {
    let suite_file: auth::File<'a> = suite.map(|(f, _)| f);
    let suite = suite.map(|(_, s)| s);
    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(c.err(n.span(), "the scenario name is empty"));
        }
        Some(n) => n.get_ref().clone(),
        None => c
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into()),
    };
    let weight = match &raw.weight {
        Some(w) if !(1..=1_000_000).contains(w.get_ref()) => {
            return Err(c.err(w.span(), "weight must be between 1 and 1000000"));
        }
        Some(w) => *w.get_ref() as u32,
        None => 1,
    };
    let base_url = match (&raw.base_url, suite.and_then(|s| s.base_url.as_ref())) {
        (Some(u), _) => base_url(&c, u)?,
        (None, Some(u)) => auth::in_file(&mut c, suite_file, |c| base_url(c, u))?,
        (None, None) => None,
    };

    // Variables first: later templates may use them. The suite's, unless
    // the scenario has its own of the same name.
    if let Some(suite) = suite {
        for (k, v) in &suite.vars {
            if !raw.vars.keys().any(|x| x.get_ref() == k.get_ref()) {
                auth::in_file(&mut c, suite_file, |c| var(c, k, v))?;
            }
        }
    }
    for (k, v) in &raw.vars {
        var(&mut c, k, v)?;
    }
    if let Some(suite) = suite {
        auth::in_file(&mut c, suite_file, |c| secrets(c, &suite.secrets))?;
    }
    secrets(&mut c, &raw.secrets)?;

    for g in &raw.gates {
        if let Err(e) = g.get_ref().parse::<crate::gate::Gate>() {
            // Point at the column the gate parser names, inside the string.
            let text = g.get_ref();
            let at = super::diagnostic::column_in_string(c.text, g.span(), text, e.column);
            return Err(c.err(at, format!("invalid gate {text:?}: {}", e.message)));
        }
    }
    let data = raw.data.as_ref().map(|d| data(&mut c, d)).transpose()?;

    // Declare every let and capture, so steps may use values captured
    // by earlier steps (and loops of journeys by later ones).
    for st in &raw.steps {
        st.get_ref().declare(&mut c)?;
    }

    // Identities: the suite's, unless the scenario has its own of the same
    // name; each compiled where it is written.
    let mut people: BTreeMap<&str, (&Spanned<String>, &RawIdentity, auth::File<'a>)> =
        BTreeMap::new();
    if let Some(suite) = suite {
        for (k, v) in &suite.identities {
            people.insert(k.get_ref().as_str(), (k, v, suite_file));
        }
    }
    for (k, v) in &raw.identities {
        people.insert(k.get_ref().as_str(), (k, v, None));
    }
    for (k, fields, file) in people.values() {
        auth::in_file(&mut c, *file, |c| {
            c.check_name(k)?;
            auth::declare_fields(c, fields)
        })?;
    }
    let raw_auth = match (&raw.auth, suite.and_then(|s| s.auth.as_ref())) {
        (Some(a), _) => Some((a, None)),
        (None, Some(a)) => Some((a, suite_file)),
        (None, None) => None,
    };
    let auth = match raw_auth {
        Some((a, file)) => Some(auth::in_file(&mut c, file, |c| auth::compile(c, a))?),
        None => None,
    };
    c.identities = people.keys().map(|k| k.to_string()).collect();
    let mut identities = Vec::new();
    for (k, fields, file) in people.values() {
        let id = auth::in_file(&mut c, *file, |c| {
            auth::identity(c, k, fields, raw_auth, auth.as_ref())
        })?;
        identities.push(id);
    }
    // Default headers: the suite's, unless the scenario sets the same one.
    let mut default_headers = Vec::new();
    if let Some(d) = suite.and_then(|s| s.defaults.as_ref()) {
        let own = raw.defaults.as_ref().map(|d| &d.headers);
        let inherited: BTreeMap<Spanned<String>, Spanned<String>> = d
            .headers
            .iter()
            .filter(|(k, _)| {
                !own.is_some_and(|o| {
                    o.keys()
                        .any(|x| x.get_ref().eq_ignore_ascii_case(k.get_ref()))
                })
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        default_headers.extend(auth::in_file(&mut c, suite_file, |c| {
            auth::default_headers(c, &inherited)
        })?);
    }
    if let Some(d) = &raw.defaults {
        default_headers.extend(auth::default_headers(&mut c, &d.headers)?);
    }

    if raw.steps.is_empty() {
        return Err(
            Diagnostic::at(c.path, c.text, 0..0, "the scenario has no steps")
                .with_hint("add at least one [[step]] with a method and a path"),
        );
    }
    let mut steps = Vec::new();
    let mut names = std::collections::HashSet::new();
    for st in &raw.steps {
        let step = step(&c, st)?;
        c.step_names.push(step.name.clone());
        if let Action::Subscribe(s) = &step.action {
            c.streams.push((step.name.clone(), s.kind));
        }
        if !names.insert(step.name.clone()) {
            let span = st.get_ref().name.as_ref().map_or(st.span(), |n| n.span());
            return Err(c
                .err(span, format!("two steps are named \"{}\"", step.name))
                .with_hint("step names are metric names: make each unique"));
        }
        steps.push(step);
    }
    // Database URLs carry passwords: never show them.
    for st in &steps {
        c.secrets.extend(st.action.secrets());
    }
    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        weight,
        base_url,
        gates: raw.gates.iter().map(|g| g.get_ref().clone()).collect(),
        slots: c.slots,
        initial: c.initial,
        data,
        auth,
        identities,
        ident_fields: c.ident_fields,
        default_headers,
        steps,
        secrets: c.secrets,
        source: c.path.to_path_buf(),
    })
}

/// Compiles `base_url`.
fn base_url(c: &Compiler<'_>, u: &Spanned<String>) -> Result<Option<url::Url>, Diagnostic> {
    let t = c.template(u)?;
    let text = t.as_literal().ok_or_else(|| {
        c.err(
            u.span(),
            "base_url may use {{ env.NAME }} but no per-request placeholder",
        )
    })?;
    let url: url::Url = text
        .parse()
        .map_err(|e| c.err(u.span(), format!("invalid base_url {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(c.err(
            u.span(),
            format!("invalid base_url {text:?}: the scheme must be http or https"),
        ));
    }
    Ok(Some(url))
}

/// Compiles one `[vars]` variable into its slot.
fn var(
    c: &mut Compiler<'_>,
    k: &Spanned<String>,
    v: &Spanned<SpannedValue>,
) -> Result<(), Diagnostic> {
    c.check_name(k)?;
    let value = match v.get_ref() {
        SpannedValue::String(s) => {
            let t = c.template_at(s, v.span(), &[])?;
            Value::String(t.as_literal().map(str::to_string).ok_or_else(|| {
                c.err(v.span(), "a [vars] value may use {{ env.NAME }} but no per-request placeholder; use `let` in a step")
            })?)
        }
        _ => match c.json_template(v, &[])? {
            JsonTemplate::Fixed(v) => v,
            _ => return Err(c.err(v.span(), "a [vars] value cannot hold placeholders")),
        },
    };
    let slot = c.slot(k.get_ref());
    c.initial[slot] = Some(value);
    Ok(())
}

/// `secrets`: names of `[vars]` variables whose values are secrets.
fn secrets(c: &mut Compiler<'_>, names: &[Spanned<String>]) -> Result<(), Diagnostic> {
    for s in names {
        match c.slots.iter().position(|n| n == s.get_ref()) {
            Some(i) => {
                if let Some(Some(Value::String(v))) = c.initial.get(i) {
                    let v = v.clone();
                    c.secrets.push(v);
                }
            }
            None => {
                return Err(c.err(
                    s.span(),
                    format!("secret \"{}\" is not a [vars] variable", s.get_ref()),
                ));
            }
        }
    }
    Ok(())
}

/// Reads and compiles the `[data]` file.
fn data(c: &mut Compiler<'_>, d: &RawData) -> Result<DataSet, Diagnostic> {
    let random = match d.mode.as_ref().map(|m| m.get_ref().as_str()) {
        None | Some("sequential") => false,
        Some("random") => true,
        Some(other) => {
            let m = d.mode.as_ref().expect("matched Some");
            return Err(c
                .err(m.span(), format!("unknown data mode \"{other}\""))
                .with_hint("use \"sequential\" or \"random\""));
        }
    };
    let file = c
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join(d.file.get_ref());
    let text = read_data_file(c, &file, d.file.span())?;
    let (columns, rows) = if file.extension().is_some_and(|e| e == "json") {
        super::data::parse_json(&text)
    } else {
        super::data::parse_csv(&text)
    }
    .map_err(|e| {
        c.err(
            d.file.span(),
            format!("invalid data file {}: {e}", file.display()),
        )
    })?;
    if rows.is_empty() {
        return Err(c.err(
            d.file.span(),
            format!("data file {} has no rows", file.display()),
        ));
    }
    c.data_columns = columns.clone();
    Ok(DataSet {
        columns,
        rows: std::sync::Arc::new(rows),
        random,
        user_stride: 1,
    })
}

/// Reads data file `file`, named at `span`, refusing one larger than
/// [`MAX_DATA_FILE_BYTES`](super::data::MAX_DATA_FILE_BYTES) before it
/// exhausts memory.
fn read_data_file(c: &Compiler<'_>, file: &Path, span: Range<usize>) -> Result<String, Diagnostic> {
    use super::data::MAX_DATA_FILE_BYTES;
    let bytes = read_bounded(file, MAX_DATA_FILE_BYTES).map_err(|e| {
        c.err(
            span.clone(),
            format!("cannot read data file {}: {e}", file.display()),
        )
    })?;
    if bytes.len() > MAX_DATA_FILE_BYTES {
        return Err(c
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
        c.err(
            span,
            format!(
                "invalid data file {}: not valid UTF-8 at byte {}",
                file.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Compiles one `[[step]]`: who it acts as, its pause, and what it does.
fn step(c: &Compiler<'_>, st: &Spanned<RawStep>) -> Result<Step, Diagnostic> {
    let raw = st.get_ref();
    let identity = raw
        .identity
        .as_ref()
        .map(|i| c.identity_index(i))
        .transpose()?;
    let think = raw.think.as_ref().map(|t| c.think(t)).transpose()?;
    let action = Action::compile(c, st)?;
    let name = match &raw.name {
        Some(n) => n.get_ref().clone(),
        None => action.default_name(raw),
    };
    Ok(Step {
        name,
        identity,
        action,
        think,
    })
}

/// Where a scenario named on the command line comes from.
pub fn resolve_path(arg: &str) -> PathBuf {
    PathBuf::from(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoEnv;
    impl Env for NoEnv {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn compile(text: &str) -> Result<Scenario, Diagnostic> {
        parse(Path::new("s.toml"), text, &NoEnv)
    }

    #[test]
    fn a_step_has_one_kind_and_uses_every_key_it_has() {
        let d = compile(
            "[[step]]\ncustom = \"flow\"\n[step.isolation]\nas = \"nobody\"\nresource = \"/o\"\nroutes = [\"GET\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            d.message,
            "a step has either `custom` or [step.isolation], not both"
        );
        assert_eq!(d.line, 3);
        let both = compile(
            "[[step]]\n[step.sql]\nurl = \"postgres://u@h/db\"\nquery = \"SELECT 1\"\n[step.rls]\nurl = \"postgres://u@h/db\"\n",
        )
        .unwrap_err();
        assert_eq!(
            both.message,
            "a step has either [step.sql] or [step.rls], not both"
        );
        // Each kind reads its own keys; a request key it does not read is
        // refused where it is written.
        let iso = "[identities.other]\ntoken = \"t\"\n[[step]]\nthink = \"1ms\"\n[step.isolation]\nas = \"other\"\nresource = \"/o\"\nroutes = [\"GET\"]\n";
        assert!(compile(iso).is_ok());
        for (key, value) in [
            ("as", "\"other\""),
            ("method", "\"GET\""),
            ("path", "\"/o\""),
            ("query", "{ a = \"b\" }"),
            ("headers", "{ X-Tenant = \"b\" }"),
            ("let", "{ a = \"b\" }"),
            ("json", "{ a = 1 }"),
            ("body", "\"x\""),
            ("status", "200"),
            ("checks", "[{ json = \"/id\", exists = true }]"),
            ("capture", "{ a = \"/id\" }"),
        ] {
            let text = iso.replace("think", &format!("{key} = {value}\nthink"));
            let d = compile(&text).unwrap_err();
            assert_eq!(
                d.message,
                format!("an isolation step does not use `{key}`"),
                "{key}"
            );
            assert_eq!(d.line, 4, "{key}");
        }
    }

    #[test]
    fn isolation_routes_take_either_form_and_refusals_either_name() {
        let s = compile(
            "[identities.other]\ntoken = \"t\"\n[vars]\nid = \"1\"\n[[step]]\nname = \"p\"\n[step.isolation]\nas = \"other\"\nresource = \"/o/{{ id }}\"\nroutes = [\"GET\", \"POST /accept\", { method = \"put\", path = \"/t/acme/o/{{ id }}\" }]\nexpect = [401]\nheaders = { X-Tenant = \"globex\" }\n",
        )
        .unwrap();
        let Action::Isolation(iso) = &s.steps[0].action else {
            panic!("an isolation step");
        };
        assert_eq!(iso.refused, [401]);
        let routes: Vec<&str> = iso.probes.iter().map(|p| p.route.as_str()).collect();
        assert_eq!(routes, ["GET", "POST /accept", "PUT /t/acme/o/{{ id }}"]);
        assert_eq!(iso.probes[2].request.method, http::Method::PUT);
        assert_eq!(iso.probes[1].request.headers[0].0.as_str(), "x-tenant");
        let mut names = Vec::new();
        s.steps[0].action.metric_names("p", &mut names);
        assert_eq!(names[2], "p · PUT /t/acme/o/{{ id }}");
    }

    fn in_suite(scenario: &str, suite: &str) -> Result<Scenario, Diagnostic> {
        parse_in_suite(
            Path::new("dir/orders.toml"),
            scenario,
            Some((Path::new("dir/suite.toml"), suite)),
            &NoEnv,
        )
    }

    const SUITE: &str = "[auth]\npath = \"/login\"\nbody = { user = \"{{ user }}\" }\n\n[identities.acme]\ntenant = \"acme\"\nuser = \"ops@acme\"\nheaders = { \"X-Tenant-Id\" = \"{{ tenant }}\" }\n\n[defaults]\nheaders = { \"X-Client\" = \"convoy\" }\n";

    #[test]
    fn a_suite_gives_its_folder_auth_identities_and_defaults() {
        let s = in_suite(
            "[[step]]\nas = \"acme\"\npath = \"/t/{{ tenant }}/orders\"\n",
            SUITE,
        )
        .unwrap();
        assert_eq!(s.identities.len(), 1);
        assert_eq!(s.ident_fields, ["tenant", "user"]);
        assert_eq!(s.identities[0].headers[0].1, "acme");
        assert_eq!(s.default_headers.len(), 1);
        assert_eq!(s.auth.as_ref().unwrap().kind, "login");
        // The scenario's own identity of the same name replaces the suite's.
        let own = in_suite(
            "[identities.acme]\ntoken = \"tok-own-1234\"\n[[step]]\nas = \"acme\"\npath = \"/\"\n",
            SUITE,
        )
        .unwrap();
        assert!(own.identities[0].headers.is_empty());
    }

    #[test]
    fn a_mistake_in_the_suite_is_reported_in_the_suite_at_its_place() {
        let bad = SUITE.replace("\"X-Client\"", "\"X Client\"");
        let d = in_suite("[[step]]\npath = \"/\"\n", &bad).unwrap_err();
        assert_eq!(d.path, Path::new("dir/suite.toml"));
        assert_eq!((d.line, d.column), (11, 13), "{d}");
        assert!(d.message.contains("invalid header name"), "{d}");
        let d = in_suite("[[step]]\npath = \"/\"\n", "[auth]\nkind = \"logn\"\n").unwrap_err();
        assert_eq!(d.path, Path::new("dir/suite.toml"));
        assert_eq!((d.line, d.column), (2, 8), "{d}");
        assert_eq!(d.hint.as_deref(), Some("did you mean \"login\"?"));
        let d = in_suite("[[step]]\npath = \"/\"\n", "[[step]]\npath = \"/\"\n").unwrap_err();
        assert_eq!(d.path, Path::new("dir/suite.toml"));
        assert_eq!(d.line, 1, "{d}");
        assert!(d.message.contains("unknown key \"step\""), "{d}");
    }

    #[test]
    fn auth_kinds_refuse_keys_they_do_not_use_at_their_place() {
        let d = compile(
            "[auth]\nkind = \"token\"\npath = \"/login\"\n[identities.a]\ntoken = \"abcd1234\"\n[[step]]\npath = \"/\"\n",
        )
        .unwrap_err();
        assert_eq!((d.line, d.column), (3, 8), "{d}");
        assert_eq!(d.message, "`path` means nothing to auth kind \"token\"");
        let d = compile("[auth]\nkind = \"oauth2\"\n[[step]]\npath = \"/\"\n").unwrap_err();
        assert!(d.message.contains("token_url"), "{d}");
        let d = compile(
            "[auth]\nkind = \"token\"\nheader = \"X-Api-Key\"\nquery = \"k\"\n[[step]]\npath = \"/\"\n",
        )
        .unwrap_err();
        assert_eq!(d.line, 4, "{d}");
    }

    #[test]
    fn identity_fields_are_variables_and_may_not_shadow_one() {
        let s = compile(
            "[identities.a]\ntoken = \"abcd1234\"\nregion = \"eu\"\n[[step]]\nas = \"a\"\npath = \"/{{ region }}\"\n",
        )
        .unwrap();
        assert_eq!(s.ident_fields, ["region", "token"]);
        let d = compile(
            "[vars]\nregion = \"x\"\n[identities.a]\ntoken = \"abcd1234\"\nregion = \"eu\"\n[[step]]\npath = \"/\"\n",
        )
        .unwrap_err();
        assert_eq!((d.line, d.column), (5, 10), "{d}");
        assert!(d.message.contains("has the name of a variable"), "{d}");
        let d = compile(
            "[identities.a]\ntoken = \"abcd1234\"\nheaders = { \"X-Id\" = \"{{ uuid }}\" }\n[[step]]\npath = \"/\"\n",
        )
        .unwrap_err();
        assert_eq!(d.line, 3, "{d}");
    }

    #[test]
    fn files_are_told_apart_by_what_they_hold() {
        let p = Path::new("x.toml");
        assert_eq!(
            classify(p, "[[step]]\npath = \"/\"\n").unwrap(),
            FileKind::Scenario
        );
        assert_eq!(
            classify(p, "[profile.n]\nusers = 2\n").unwrap(),
            FileKind::Profiles
        );
        assert_eq!(classify(p, SUITE).unwrap(), FileKind::Suite);
        assert_eq!(
            classify(Path::new("d/suite.toml"), "").unwrap(),
            FileKind::Suite
        );
        assert_eq!(classify(p, "a = 1\n").unwrap(), FileKind::Other);
        let d = classify(p, "a = \n").unwrap_err();
        assert_eq!(d.line, 1);
    }

    #[test]
    fn step_keys_are_listed_in_the_file_formats_order() {
        let d = compile("[[step]]\npath = \"/\"\nxyzzy = 1\n").unwrap_err();
        assert_eq!(
            d.hint.as_deref(),
            Some(
                "expected one of: name, as, method, path, query, headers, let, json, body, \
                 status, checks, capture, think, replay, isolation, custom, sql, rls, auth_probe, \
                 subscribe, await, send, stream_isolation"
            )
        );
    }
}
