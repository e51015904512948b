//! One drafted `[[step]]` from one operation: its path with captured
//! ids, required query parameters and headers (a fresh `{{ uuid }}` for an
//! idempotency key), its JSON body (the document's example, else one made
//! from the schema), the documented success statuses and a check per
//! required field of the answer.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::InitError;
use super::auth::IDENTITY;
use super::openapi::{Operation, json_media, json_schema, success_responses};
use super::sample::{Sampler, required_names};
use super::spec::{Spec, pointer_segment};
use super::toml_text::{string, value};

/// What a step adds to the operation's own request.
#[derive(Debug, Default)]
pub(super) struct StepPlan {
    /// `{param}` → template (`{{ order_id }}`).
    pub(super) path_vars: Vec<(String, String)>,
    pub(super) capture: Option<(String, String)>,
    /// Extra checks, as TOML inline tables.
    pub(super) checks: Vec<String>,
    /// Overrides the body (update).
    pub(super) body: Option<Value>,
    /// Expect this status instead of the documented ones.
    pub(super) status: Option<u16>,
    /// Leave out the required-field checks (e.g. a 404 answer).
    pub(super) bare: bool,
    /// The idempotency key's template instead of a fresh `{{ uuid }}`.
    pub(super) idempotency_key: Option<String>,
    /// `let` variables, `(name, template)`.
    pub(super) lets: Vec<(String, String)>,
}

pub(super) struct Steps<'a> {
    spec: &'a Spec,
    /// The identity secured steps act as.
    identity: &'a str,
    /// Every step acts as it, secured or not (its headers carry the tenant).
    every: bool,
    /// Header parameters the identity sends itself (the tenant header),
    /// lower case.
    skip_headers: Vec<String>,
}

impl<'a> Steps<'a> {
    pub(super) fn new(spec: &'a Spec) -> Self {
        Steps {
            spec,
            identity: IDENTITY,
            every: false,
            skip_headers: Vec::new(),
        }
    }

    /// Steps acting as `identity`; all of them when `every`.
    pub(super) fn acting_as(mut self, identity: &'a str, every: bool) -> Self {
        self.identity = identity;
        self.every = every;
        self
    }

    /// Leaves the header parameter `name` to the identity.
    pub(super) fn skipping_header(mut self, name: &str) -> Self {
        self.skip_headers.push(name.to_ascii_lowercase());
        self
    }

    /// One `[[step]]` for `op`.
    pub(super) fn step(
        &self,
        op: &Operation,
        name: &str,
        plan: &StepPlan,
    ) -> Result<String, InitError> {
        let spec = self.spec;
        let mut s = String::new();
        let summary = op
            .op
            .get("summary")
            .and_then(Value::as_str)
            .map(|t| format!(": {t}"))
            .unwrap_or_default();
        let _ = writeln!(s, "# {} {} ({}){summary}", op.method, op.path, op.origin());
        s.push_str("[[step]]\n");
        let _ = writeln!(s, "name = {}", string(name));
        if op.secured || self.every {
            let _ = writeln!(s, "as = \"{}\"", self.identity);
        }
        let _ = writeln!(s, "method = \"{}\"", op.method);
        let mut path = op.path.clone();
        for (p, t) in &plan.path_vars {
            path = path.replace(&format!("{{{p}}}"), t);
        }
        let _ = writeln!(s, "path = {}", string(&path));
        if !plan.lets.is_empty() {
            let lets: Vec<String> = plan
                .lets
                .iter()
                .map(|(k, v)| format!("{k} = {}", string(v)))
                .collect();
            let _ = writeln!(s, "let = {{ {} }}", lets.join(", "));
        }
        let mut query = Map::new();
        let mut headers = Map::new();
        for (p, at) in &op.params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let required = p.get("required") == Some(&Value::Bool(true));
            let lower = name.to_ascii_lowercase();
            if self.skip_headers.contains(&lower)
                && p.get("in").and_then(Value::as_str) == Some("header")
            {
                continue;
            }
            match p.get("in").and_then(Value::as_str) {
                Some("query") if required => {
                    query.insert(name.into(), Value::String(param_value(spec, p, at, name)?));
                }
                Some("header") if lower.contains("idempotency") => {
                    let key = plan.idempotency_key.as_deref().unwrap_or("{{ uuid }}");
                    headers.insert(name.into(), Value::String(key.into()));
                }
                Some("header")
                    if required
                        && !matches!(
                            lower.as_str(),
                            "authorization" | "content-type" | "accept"
                        ) =>
                {
                    headers.insert(name.into(), Value::String(param_value(spec, p, at, name)?));
                }
                _ => {}
            }
        }
        if !query.is_empty() {
            let _ = writeln!(
                s,
                "query = {}",
                value(&Value::Object(query)).unwrap_or_default()
            );
        }
        if !headers.is_empty() {
            let _ = writeln!(
                s,
                "headers = {}",
                value(&Value::Object(headers)).unwrap_or_default()
            );
        }
        let body = match &plan.body {
            Some(b) => Some(b.clone()),
            None => request_body(spec, op)?,
        };
        if let Some(b) = body {
            let _ = writeln!(s, "json = {}", value(&b).unwrap_or_else(|| "{}".into()));
        }
        let ok = success_responses(spec, op)?;
        let statuses: Vec<u16> = match plan.status {
            Some(st) => vec![st],
            None if ok.iter().any(|(st, _, _)| st.is_none()) => Vec::new(),
            None => ok.iter().filter_map(|(st, _, _)| *st).collect(),
        };
        match statuses.as_slice() {
            [] => {}
            [one] => {
                let _ = writeln!(s, "status = {one}");
            }
            many => {
                let list: Vec<String> = many.iter().map(u16::to_string).collect();
                let _ = writeln!(s, "status = [{}]", list.join(", "));
            }
        }
        let mut checks = Vec::new();
        if !plan.bare
            && let Some((_, resp, at)) = ok.first()
            && let Some((schema, at)) = json_schema(resp, at)
        {
            for (field, _) in properties(spec, schema, &at)?
                .into_iter()
                .filter(|(_, req)| *req)
            {
                checks.push(format!(
                    "{{ json = {}, exists = true }}",
                    string(&format!("/{}", pointer_segment(&field)))
                ));
            }
        }
        checks.extend(plan.checks.iter().cloned());
        checks.dedup();
        if !checks.is_empty() {
            let _ = writeln!(s, "checks = [\n  {},\n]", checks.join(",\n  "));
        }
        if let Some((var, ptr)) = &plan.capture {
            let _ = writeln!(s, "capture = {{ {var} = {} }}", string(ptr));
        }
        s.push('\n');
        Ok(s)
    }
}

fn param_value(spec: &Spec, p: &Value, at: &str, name: &str) -> Result<String, InitError> {
    let v = if let Some(ex) = p.get("example") {
        Some(ex.clone())
    } else if let Some(Value::Object(exs)) = p.get("examples")
        && let Some((_, ex)) = exs.iter().next()
    {
        spec.deref(ex, at)?.0.get("value").cloned()
    } else if let Some(schema) = p.get("schema") {
        Sampler::new(spec).sample(schema, &format!("{at}/schema"), name)?
    } else {
        None
    };
    Ok(match v {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => "convoy".into(),
        Some(other) => other.to_string(),
    })
}

/// The JSON body of `op`: its media type's `example`, else the first of its
/// `examples`, else one made from its schema.
pub(super) fn request_body(spec: &Spec, op: &Operation) -> Result<Option<Value>, InitError> {
    let Some(body) = op.op.get("requestBody") else {
        return Ok(None);
    };
    let (body, at) = spec.deref(body, &format!("{}/requestBody", op.pointer))?;
    let Some((media, at)) = json_media(body, &at) else {
        return Ok(None);
    };
    if let Some(ex) = media.get("example") {
        return Ok(Some(ex.clone()));
    }
    if let Some(Value::Object(exs)) = media.get("examples")
        && let Some((k, ex)) = exs.iter().next()
    {
        let (ex, _) = spec.deref(ex, &format!("{at}/examples/{}", pointer_segment(k)))?;
        if let Some(v) = ex.get("value") {
            return Ok(Some(v.clone()));
        }
    }
    match media.get("schema") {
        Some(schema) => Sampler::new(spec).sample(schema, &format!("{at}/schema"), ""),
        None => Ok(None),
    }
}

/// The properties of an object schema (`allOf` merged): `(name, required)`.
pub(super) fn properties(
    spec: &Spec,
    schema: &Value,
    at: &str,
) -> Result<Vec<(String, bool)>, InitError> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut todo = vec![(schema.clone(), at.to_string())];
    let mut seen = 0;
    while let Some((s, at)) = todo.pop() {
        seen += 1;
        if seen > 64 {
            break;
        }
        let (s, at) = spec.deref(&s, &at)?;
        let req = required_names(s);
        if let Some(Value::Object(props)) = s.get("properties") {
            for k in props.keys() {
                let r = req.contains(k);
                match out.iter_mut().find(|(n, _)| n == k) {
                    Some(e) => e.1 |= r,
                    None => out.push((k.clone(), r)),
                }
            }
        }
        for k in &req {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.clone(), true));
            }
        }
        if let Some(Value::Array(parts)) = s.get("allOf") {
            for (i, p) in parts.iter().enumerate() {
                todo.push((p.clone(), format!("{at}/allOf/{i}")));
            }
        }
    }
    Ok(out)
}
