//! Writing a recorded session as a journey: one `[[step]]` per API call,
//! its recorded values replaced by the captures and fresh uuids the
//! correlation chose, credentials left to the `[auth]` and secrets to the
//! environment, the recorded status expected, and the user's pauses kept
//! as `think`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::correlate::{Correlation, Source, header_dropped, percent_decode};
use super::credentials::{Credentials, secret_env};
use super::model::{Exchange, PostBody};
use crate::init::toml_text::{string, value};
use crate::redact::is_sensitive_name;

/// Pauses shorter than this are the browser's, not the user's.
const MIN_THINK_MS: i64 = 100;
/// Longer pauses (a user who left for lunch) are cut to this.
const MAX_THINK_MS: i64 = 60_000;

/// Things the README reports about the steps.
#[derive(Debug, Default)]
pub struct StepNotes {
    /// Environment variables for secrets outside the auth: name → what.
    pub env: BTreeMap<String, String>,
    /// `(entry, what was not replayed)`.
    pub not_replayed: Vec<(usize, String)>,
    /// Pauses cut to the maximum: entries.
    pub long_pauses: Vec<usize>,
    /// Steps written.
    pub steps: usize,
}

struct Writer<'a> {
    steps: &'a [Exchange],
    corr: &'a Correlation,
    creds: &'a Credentials,
    prefix: &'a str,
    notes: StepNotes,
}

impl Writer<'_> {
    /// The text a recorded `value` (under `key`) is written as in step `i`.
    fn text(&mut self, i: usize, key: &str, value: &str) -> String {
        self.text_in(i, key, value, true)
    }

    /// As [`Self::text`]; `by_name`: whether a name like a secret makes the
    /// value one (not for a path segment: `/auth/refresh` is no secret).
    fn text_in(&mut self, i: usize, key: &str, value: &str, by_name: bool) -> String {
        if let Some(t) = self.corr.templates[i].get(value) {
            return t.clone();
        }
        if self.creds.secrets.contains(value)
            || (by_name && is_sensitive_name(key) && value.len() >= 4)
        {
            let var = secret_env(self.prefix, key);
            self.notes.env.entry(var.clone()).or_insert_with(|| {
                format!(
                    "the `{key}` entry {} sent (a secret: not written from the recording)",
                    self.steps[i].index
                )
            });
            return format!("{{{{ env.{var} }}}}");
        }
        value.to_string()
    }

    fn json(&mut self, i: usize, key: &str, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(i, key, s)),
            Value::Number(n) => {
                let s = n.to_string();
                match self.corr.templates[i].get(&s) {
                    Some(t) => Value::String(t.clone()),
                    None => v.clone(),
                }
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.json(i, key, x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.json(i, k, x)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }

    fn step(&mut self, i: usize, name: &str, think_ms: Option<i64>) -> String {
        let e = &self.steps[i];
        let mut s = String::new();
        // The recorded path may hold ids: the comment names the entry only.
        let _ = writeln!(s, "# entry {} of the recording", e.index);
        s.push_str("[[step]]\n");
        let _ = writeln!(s, "name = {}", string(name));
        if let Some(id) = &self.creds.identity[i] {
            let _ = writeln!(s, "as = \"{id}\"");
        }
        let _ = writeln!(s, "method = {}", string(&e.method));
        // The path, segment by segment, so an id inside it is a variable.
        let mut path = String::new();
        let mut prev = String::new();
        for seg in e.url.path().split('/').skip(1) {
            path.push('/');
            let raw = percent_decode(seg);
            let t = self.text_in(i, &prev, &raw, false);
            if t == raw {
                path.push_str(seg);
            } else {
                path.push_str(&t);
            }
            prev = raw;
        }
        if path.is_empty() {
            path.push('/');
        }
        let auth = &self.creds.sent_by_auth[i];
        let pairs: Vec<(String, String)> = e
            .url
            .query_pairs()
            .filter(|(k, _)| !auth.contains(&format!("?{k}")))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let unique: HashSet<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let mut query = Map::new();
        if unique.len() == pairs.len() {
            for (k, v) in &pairs {
                let t = self.text(i, k, v);
                query.insert(k.clone(), Value::String(t));
            }
        } else {
            // A repeated name has no TOML table form: it stays in the path.
            let parts: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    let t = self.text(i, k, v);
                    let t = if t == *v { encode(v) } else { t };
                    format!("{}={t}", encode(k))
                })
                .collect();
            path = format!("{path}?{}", parts.join("&"));
        }
        let _ = writeln!(s, "path = {}", string(&path));
        if !query.is_empty() {
            let _ = writeln!(
                s,
                "query = {}",
                value(&Value::Object(query)).unwrap_or_default()
            );
        }
        let mut headers = Map::new();
        for (k, v) in &e.request_headers {
            let lower = k.to_ascii_lowercase();
            if header_dropped(k)
                || auth.contains(&lower)
                || (lower == "content-type" && matches!(e.body, PostBody::Json(_)))
                || (lower == "accept" && (v.contains("json") || v.trim() == "*/*"))
            {
                continue;
            }
            let t = if lower == "idempotency-key" && !self.corr.templates[i].contains_key(v) {
                "{{ uuid }}".to_string()
            } else if lower == "authorization"
                && let Some((scheme, token)) = v.trim().split_once(' ')
                && let Some(t) = self.corr.templates[i].get(token.trim())
            {
                // A token an answer gave that no `[auth]` sends (a form
                // login): the captured one, after the recorded scheme.
                format!("{scheme} {t}")
            } else {
                self.text(i, k, v)
            };
            headers.insert(k.clone(), Value::String(t));
        }
        if !self.corr.lets[i].is_empty() {
            let lets: Map<String, Value> = self.corr.lets[i]
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let _ = writeln!(
                s,
                "let = {}",
                value(&Value::Object(lets)).unwrap_or_default()
            );
        }
        let body = e.body.clone();
        match &body {
            PostBody::None => {}
            PostBody::Json(v) => {
                let v = self.json(i, "", v);
                let _ = writeln!(s, "json = {}", json_toml(&v));
            }
            PostBody::Form(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| {
                        let t = self.text(i, k, v);
                        let t = if t == *v { encode(v) } else { t };
                        format!("{}={t}", encode(k))
                    })
                    .collect();
                let _ = writeln!(s, "body = {}", string(&parts.join("&")));
            }
            PostBody::Text(t, _) => {
                let mut text = t.clone();
                for (from, to) in &self.corr.templates[i] {
                    text = text.replace(from.as_str(), to);
                }
                for secret in &self.creds.secrets {
                    if secret.len() >= 4 && text.contains(secret.as_str()) {
                        text = text.replace(secret.as_str(), "");
                        self.notes
                            .not_replayed
                            .push((e.index, "a credential in its text body, left out".into()));
                    }
                }
                let _ = writeln!(s, "body = {}", string(&text));
            }
            PostBody::Unsupported(mime) => self.notes.not_replayed.push((
                e.index,
                format!("its `{mime}` body (not replayable as text); the step sends none"),
            )),
        }
        if !headers.is_empty() {
            let _ = writeln!(
                s,
                "headers = {}",
                value(&Value::Object(headers)).unwrap_or_default()
            );
        }
        if e.status == 304 {
            // The conditional headers that earned a 304 are not replayed.
            s.push_str("status = [200, 304]\n");
        } else {
            let _ = writeln!(s, "status = {}", e.status);
        }
        let mut checks: Vec<String> = self.corr.echoes[i]
            .iter()
            .map(|(p, var)| {
                format!(
                    "{{ json = {}, equals = {} }}",
                    string(p),
                    string(&format!("{{{{ {var} }}}}"))
                )
            })
            .collect();
        if (200..300).contains(&e.status)
            && let Some(Value::Object(m)) = e.response_json()
        {
            // Ids and states first: they say most about the answer.
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| {
                let l = k.to_ascii_lowercase();
                !(l == "id" || l == "status" || l == "state" || l.ends_with("_id"))
            });
            for k in keys.into_iter().take(4) {
                let p = format!("/{}", crate::init::spec::pointer_segment(k));
                if !self.corr.echoes[i].iter().any(|(q, _)| *q == p) {
                    checks.push(format!("{{ json = {}, exists = true }}", string(&p)));
                }
            }
        }
        if !checks.is_empty() {
            let _ = writeln!(s, "checks = [\n  {},\n]", checks.join(",\n  "));
        }
        if !self.corr.captures[i].is_empty() {
            let caps: Vec<String> = self.corr.captures[i]
                .iter()
                .map(|(var, src)| match src {
                    Source::Json(p) => format!("{var} = {}", string(p)),
                    Source::Header(h) => format!("{var} = {{ header = {} }}", string(h)),
                })
                .collect();
            let _ = writeln!(s, "capture = {{ {} }}", caps.join(", "));
        }
        if let Some(ms) = think_ms {
            let _ = writeln!(s, "think = \"{ms}ms\"");
        }
        s.push('\n');
        self.notes.steps += 1;
        s
    }
}

/// A JSON body as TOML: an inline table when it is an object, else the
/// JSON text as a string (`json` takes a TOML value).
fn json_toml(v: &Value) -> String {
    value(v).unwrap_or_else(|| "{}".into())
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The step's name: `METHOD /path` with variables as `{var}`.
fn step_name(e: &Exchange, corr: &Correlation, i: usize) -> String {
    let mut path = String::new();
    for seg in e.url.path().split('/').skip(1) {
        path.push('/');
        match corr.templates[i].get(&percent_decode(seg)) {
            Some(t) => path.push_str(&t.replace("{{ ", "{").replace(" }}", "}")),
            None => path.push_str(seg),
        }
    }
    format!("{} {}", e.method, if path.is_empty() { "/" } else { &path })
}

/// The `[[step]]`s of the journey and what the README should say of them.
pub fn steps(
    steps: &[Exchange],
    corr: &Correlation,
    creds: &Credentials,
    prefix: &str,
) -> (String, StepNotes) {
    let mut w = Writer {
        steps,
        corr,
        creds,
        prefix,
        notes: StepNotes::default(),
    };
    let mut out = String::new();
    let mut names: HashSet<String> = HashSet::new();
    for i in 0..steps.len() {
        if creds.logins.contains(&i) {
            continue;
        }
        let e = &steps[i];
        let think = match (e.started_ms, steps.get(i + 1).and_then(|n| n.started_ms)) {
            (Some(a), Some(b)) => {
                let gap = b - a - e.time_ms.round() as i64;
                if gap > MAX_THINK_MS {
                    w.notes.long_pauses.push(e.index);
                }
                (gap >= MIN_THINK_MS).then(|| gap.min(MAX_THINK_MS))
            }
            _ => None,
        };
        let base = step_name(e, corr, i);
        let mut name = base.clone();
        let mut k = 2;
        while !names.insert(name.clone()) {
            name = format!("{base} #{k}");
            k += 1;
        }
        out.push_str(&w.step(i, &name, think));
    }
    (out, w.notes)
}
