//! Drafting a suite from an OpenAPI 3.0/3.1 document: a health scenario,
//! one lifecycle journey per resource that can be created (create → read
//! → update → list → delete, as far as the document offers them, the id
//! captured from the create answer and reused), a `suite.toml` with the
//! auth and identity, and a README naming the environment variables and
//! every operation left out, with why.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use super::auth::{self, AuthDraft, IDENTITY};
use super::sample::{Sampler, required_names, schema_type};
use super::spec::{Spec, pointer_segment};
use super::toml_text::{comment, string, value};
use super::{Draft, InitError};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Paths that are a health check by name, best first.
const HEALTH_PATHS: [&str; 8] = [
    "/health",
    "/healthz",
    "/health/live",
    "/livez",
    "/ready",
    "/readyz",
    "/ping",
    "/status",
];

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path template, `/orders/{orderId}`.
    pub path: String,
    /// The operation object, `$ref`s of the path item followed.
    pub op: Value,
    /// Its JSON pointer, `/paths/~1orders/post`.
    pub pointer: String,
    /// Its `operationId`.
    pub operation_id: Option<String>,
    /// Path-level and operation-level parameters, resolved, with pointers.
    pub params: Vec<(Value, String)>,
    /// Whether it needs the identity's credentials.
    pub secured: bool,
}

impl Operation {
    /// Where it came from, for comments: `operationId createOrder, #/paths/~1orders/post`.
    pub fn origin(&self) -> String {
        match &self.operation_id {
            Some(id) => format!("operationId {id}, #{}", self.pointer),
            None => format!("#{}", self.pointer),
        }
    }

    /// The schema of its JSON request body and that schema's pointer.
    pub fn request_schema<'a>(
        &'a self,
        spec: &'a Spec,
    ) -> Result<Option<(&'a Value, String)>, InitError> {
        let Some(body) = self.op.get("requestBody") else {
            return Ok(None);
        };
        let (body, at) = spec.deref(body, &format!("{}/requestBody", self.pointer))?;
        Ok(json_schema(body, &at))
    }
}

/// The JSON media type object of a request body or response.
/// With its pointer (`AT/content/application~1json`).
pub fn json_media<'a>(holder: &'a Value, at: &str) -> Option<(&'a Value, String)> {
    let Some(Value::Object(content)) = holder.get("content") else {
        return None;
    };
    content
        .iter()
        .find(|(k, _)| k.starts_with("application/json"))
        .or_else(|| content.iter().find(|(k, _)| k.contains("json")))
        .map(|(k, v)| (v, format!("{at}/content/{}", pointer_segment(k))))
}

/// The schema of a JSON request body or response, with its pointer.
pub fn json_schema<'a>(holder: &'a Value, at: &str) -> Option<(&'a Value, String)> {
    let (media, at) = json_media(holder, at)?;
    media.get("schema").map(|s| (s, format!("{at}/schema")))
}

/// A documented success: its status (`None` for `2XX`), the response
/// object and its pointer.
pub type Success<'a> = (Option<u16>, &'a Value, String);

/// The operation's documented 2xx responses: `(status, response, pointer)`,
/// lowest first. `2XX` counts as no status.
pub fn success_responses<'a>(
    spec: &'a Spec,
    op: &'a Operation,
) -> Result<Vec<Success<'a>>, InitError> {
    let mut out = Vec::new();
    if let Some(Value::Object(rs)) = op.op.get("responses") {
        for (code, r) in rs {
            let at = format!("{}/responses/{}", op.pointer, pointer_segment(code));
            let status = code.parse::<u16>().ok();
            let ok = matches!(status, Some(200..=299)) || code.eq_ignore_ascii_case("2XX");
            if ok {
                let (r, at) = spec.deref(r, &at)?;
                out.push((status, r, at));
            }
        }
    }
    out.sort_by_key(|(s, _, _)| s.unwrap_or(299));
    Ok(out)
}

fn documents(op: &Operation, status: u16) -> bool {
    op.op
        .get("responses")
        .and_then(|r| r.get(status.to_string()))
        .is_some()
}

/// Every operation of `spec`, in path order.
pub fn operations(spec: &Spec) -> Result<Vec<Operation>, InitError> {
    let global_secured = secured(spec.root.get("security")).unwrap_or(false);
    let mut out = Vec::new();
    let Some(Value::Object(paths)) = spec.root.get("paths") else {
        return Ok(out);
    };
    for (path, item) in paths {
        let item_at = format!("/paths/{}", pointer_segment(path));
        let (item, item_at) = spec.deref(item, &item_at)?;
        let shared = params(
            spec,
            item.get("parameters"),
            &format!("{item_at}/parameters"),
        )?;
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let at = format!("{item_at}/{m}");
            let mut ps = params(spec, op.get("parameters"), &format!("{at}/parameters"))?;
            for (p, pat) in &shared {
                let same = ps
                    .iter()
                    .any(|(q, _)| q.get("name") == p.get("name") && q.get("in") == p.get("in"));
                if !same {
                    ps.push((p.clone(), pat.clone()));
                }
            }
            out.push(Operation {
                method: m.to_ascii_uppercase(),
                path: path.clone(),
                op: op.clone(),
                pointer: at,
                operation_id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(String::from),
                params: ps,
                secured: secured(op.get("security")).unwrap_or(global_secured),
            });
        }
    }
    Ok(out)
}

/// Whether a `security` list asks for credentials (`[]` and `[{}]` do not).
fn secured(security: Option<&Value>) -> Option<bool> {
    let list = security?.as_array()?;
    Some(
        list.iter()
            .any(|r| r.as_object().is_some_and(|m| !m.is_empty())),
    )
}

fn params(spec: &Spec, list: Option<&Value>, at: &str) -> Result<Vec<(Value, String)>, InitError> {
    let mut out = Vec::new();
    if let Some(Value::Array(a)) = list {
        for (i, p) in a.iter().enumerate() {
            let (p, pat) = spec.deref(p, &format!("{at}/{i}"))?;
            out.push((p.clone(), pat));
        }
    }
    Ok(out)
}

/// Options of a draft.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of the environment variables the secrets come from.
    pub env_prefix: String,
    /// How the spec file is named in comments and the README.
    pub source_name: String,
}

/// Drafts the suite of the document at `path`.
pub fn draft_file(path: &Path, opts: &Options) -> Result<Draft, InitError> {
    draft(&Spec::load(path)?, opts)
}

/// Drafts the suite of `spec`.
pub fn draft(spec: &Spec, opts: &Options) -> Result<Draft, InitError> {
    let ops = operations(spec)?;
    let auth = auth::draft(spec, &ops, &opts.env_prefix)?;
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let mut left_out: Vec<(String, String)> = Vec::new();
    if let Some(l) = &auth.login {
        used.insert(l.clone());
    }
    let title = spec
        .root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("the API");
    let version = spec
        .root
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let header = format!(
        "Drafted by `convoy init --openapi {}` from {title} {version}.\nEdit freely: convoy reads it as any scenario.\n",
        opts.source_name
    );
    let mut files = Vec::new();
    let mut journeys = 0;

    // Health.
    let health = pick_health(&ops, auth.login.as_ref());
    match health {
        Some(op) => {
            used.insert((op.method.clone(), op.path.clone()));
            let mut s = comment(&header);
            let _ = writeln!(
                s,
                "name = \"health\"\ndescription = {}\n",
                string(&format!("{} {} answers as documented", op.method, op.path))
            );
            s.push_str(&Steps::new(spec).step(op, "health", &StepPlan::default())?);
            files.push(("health.toml".to_string(), s));
        }
        None => left_out.push((
            "health".into(),
            "no GET without parameters: no health scenario".into(),
        )),
    }

    // Lifecycles.
    let mut names = BTreeSet::new();
    for create in ops.iter().filter(|o| o.method == "POST") {
        let key = (create.method.clone(), create.path.clone());
        if used.contains(&key) || create.path.trim_end_matches('/').ends_with('}') {
            continue;
        }
        match lifecycle(spec, &ops, create, &header, &mut used)? {
            Ok((resource, text)) => {
                let mut name = format!("{resource}-lifecycle");
                let mut n = 2;
                while !names.insert(name.clone()) {
                    name = format!("{resource}-lifecycle-{n}");
                    n += 1;
                }
                files.push((format!("{name}.toml"), text));
                journeys += 1;
            }
            Err(why) => {
                used.insert(key);
                left_out.push((format!("POST {}", create.path), why));
            }
        }
    }
    for op in &ops {
        if !used.contains(&(op.method.clone(), op.path.clone())) {
            left_out.push((
                format!("{} {}", op.method, op.path),
                "not part of a create → read → update → list → delete journey".into(),
            ));
        }
    }
    left_out.sort();
    left_out.dedup();

    let mut suite = comment(&header);
    suite.push_str("# What every scenario of this folder shares.\n");
    suite.push_str("[defaults]\nheaders = { \"Accept\" = \"application/json\" }\n\n");
    suite.push_str(&auth.toml);
    files.insert(0, ("suite.toml".into(), suite));
    files.push((
        "README.md".into(),
        readme(spec, opts, &auth, &files, &left_out, ops.len()),
    ));
    Ok(Draft {
        files,
        operations: ops.len(),
        journeys,
    })
}

fn pick_health<'a>(
    ops: &'a [Operation],
    login: Option<&(String, String)>,
) -> Option<&'a Operation> {
    let gets = || ops.iter().filter(|o| o.method == "GET");
    for h in HEALTH_PATHS {
        if let Some(op) = gets()
            .find(|o| o.path.eq_ignore_ascii_case(h) || o.path.to_ascii_lowercase().ends_with(h))
        {
            return Some(op);
        }
    }
    let _ = login;
    gets()
        .filter(|o| {
            !o.path.contains('{')
                && !o
                    .params
                    .iter()
                    .any(|(p, _)| p.get("required") == Some(&Value::Bool(true)))
        })
        .min_by_key(|o| (o.secured, o.path.matches('/').count(), o.path.len()))
}

/// What a step adds to the operation's own request.
#[derive(Debug, Default)]
struct StepPlan {
    /// `{param}` → template (`{{ order_id }}`).
    path_vars: Vec<(String, String)>,
    capture: Option<(String, String)>,
    /// Extra checks, as TOML inline tables.
    checks: Vec<String>,
    /// Overrides the body (update).
    body: Option<Value>,
    /// Expect this status instead of the documented ones.
    status: Option<u16>,
    /// Leave out the required-field checks (e.g. a 404 answer).
    bare: bool,
}

struct Steps<'a> {
    spec: &'a Spec,
}

impl<'a> Steps<'a> {
    fn new(spec: &'a Spec) -> Self {
        Steps { spec }
    }

    /// One `[[step]]` for `op`.
    fn step(&self, op: &Operation, name: &str, plan: &StepPlan) -> Result<String, InitError> {
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
        if op.secured {
            let _ = writeln!(s, "as = \"{IDENTITY}\"");
        }
        let _ = writeln!(s, "method = \"{}\"", op.method);
        let mut path = op.path.clone();
        for (p, t) in &plan.path_vars {
            path = path.replace(&format!("{{{p}}}"), t);
        }
        let _ = writeln!(s, "path = {}", string(&path));
        let mut query = Map::new();
        let mut headers = Map::new();
        for (p, at) in &op.params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let required = p.get("required") == Some(&Value::Bool(true));
            let lower = name.to_ascii_lowercase();
            match p.get("in").and_then(Value::as_str) {
                Some("query") if required => {
                    query.insert(name.into(), Value::String(param_value(spec, p, at, name)?));
                }
                Some("header") if lower.contains("idempotency") => {
                    headers.insert(name.into(), Value::String("{{ uuid }}".into()));
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
fn request_body(spec: &Spec, op: &Operation) -> Result<Option<Value>, InitError> {
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
fn properties(spec: &Spec, schema: &Value, at: &str) -> Result<Vec<(String, bool)>, InitError> {
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

/// The resource's name from its collection path: `/v1/orders` → `orders`.
fn resource_name(path: &str) -> String {
    let seg = path
        .trim_end_matches('/')
        .rsplit('/')
        .find(|s| !s.starts_with('{') && !s.is_empty())
        .unwrap_or("items");
    seg.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn singular(name: &str) -> String {
    let n = name.replace('-', "_");
    if let Some(stem) = n.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = n.strip_suffix('s').filter(|s| !s.ends_with('s')) {
        stem.to_string()
    } else {
        n
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// Where the create answer carries the new resource's id: the `links`
/// naming `param`, else a property named like it (at the top or in a
/// `data` envelope). `Err` says why none was found.
fn id_pointer(
    spec: &Spec,
    create: &Operation,
    param: &str,
) -> Result<Result<String, String>, InitError> {
    let ok = success_responses(spec, create)?;
    for (_, resp, _) in &ok {
        if let Some(Value::Object(links)) = resp.get("links") {
            for (_, link) in links {
                let (link, _) = spec.deref(link, "")?;
                if let Some(expr) = link
                    .pointer(&format!("/parameters/{}", pointer_segment(param)))
                    .and_then(Value::as_str)
                    && let Some(ptr) = expr.strip_prefix("$response.body#")
                {
                    return Ok(Ok(ptr.to_string()));
                }
            }
        }
    }
    let Some((_, resp, at)) = ok.first() else {
        return Ok(Err("its create documents no success response".into()));
    };
    let Some((schema, sat)) = json_schema(resp, at) else {
        return Ok(Err(
            "its create answer has no JSON schema to find the id in".into(),
        ));
    };
    let (schema, sat) = spec.deref(schema, &sat)?;
    let candidates = [param.to_string(), "id".into(), snake(param), "uuid".into()];
    let mut prefix = String::new();
    let mut cur = (schema.clone(), sat);
    for _ in 0..2 {
        let props = properties(spec, &cur.0, &cur.1)?;
        if let Some(c) = candidates
            .iter()
            .find(|c| props.iter().any(|(n, _)| n == *c))
        {
            return Ok(Ok(format!("{prefix}/{}", pointer_segment(c))));
        }
        let envelope = ["data", "result", "item"]
            .into_iter()
            .find(|e| props.iter().any(|(n, _)| n == e));
        let Some(env) = envelope else { break };
        let Some(inner) = find_property(spec, &cur.0, &cur.1, env)? else {
            break;
        };
        prefix = format!("{prefix}/{env}");
        cur = inner;
    }
    Ok(Err(format!(
        "its create answer names no id (looked for `{param}`, `id`, links)"
    )))
}

fn find_property(
    spec: &Spec,
    schema: &Value,
    at: &str,
    name: &str,
) -> Result<Option<(Value, String)>, InitError> {
    let (s, at) = spec.deref(schema, at)?;
    if let Some(p) = s.pointer(&format!("/properties/{}", pointer_segment(name))) {
        let (p, pat) = spec.deref(p, &format!("{at}/properties/{}", pointer_segment(name)))?;
        return Ok(Some((p.clone(), pat)));
    }
    if let Some(Value::Array(parts)) = s.get("allOf") {
        for (i, part) in parts.iter().enumerate() {
            if let Some(found) = find_property(spec, part, &format!("{at}/allOf/{i}"), name)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

type Lifecycle = Result<(String, String), String>;

/// The lifecycle journey of the collection `create.path`, or why none.
fn lifecycle(
    spec: &Spec,
    ops: &[Operation],
    create: &Operation,
    header: &str,
    used: &mut BTreeSet<(String, String)>,
) -> Result<Lifecycle, InitError> {
    let coll = create.path.trim_end_matches('/');
    if coll.contains('{') {
        return Ok(Err(
            "its path has parameters convoy cannot fill yet (nested resource)".into(),
        ));
    }
    if request_body(spec, create)?.is_none() && create.op.get("requestBody").is_some() {
        return Ok(Err("its request body is not JSON".into()));
    }
    // The item path: the collection plus one `{param}` segment.
    let item = ops.iter().find_map(|o| {
        let rest = o.path.strip_prefix(coll)?.strip_prefix('/')?;
        let p = rest.strip_prefix('{')?.strip_suffix('}')?;
        (!p.contains(['/', '{'])).then(|| (o.path.clone(), p.to_string()))
    });
    let find = |m: &str, p: &str| ops.iter().find(|o| o.method == m && o.path == p);
    let list = find("GET", &create.path).or_else(|| find("GET", coll));
    if item.is_none() && list.is_none() {
        return Ok(Err(
            "no item path or list beside it: not a collection".into()
        ));
    }
    let resource = resource_name(coll);
    let steps = Steps::new(spec);
    let mut s = comment(header);
    let _ = writeln!(s, "name = {}", string(&format!("{resource}-lifecycle")));
    let mut done = vec!["create"];
    let mut body = String::new();
    let mut notes = Vec::new();

    let mut item_ops = None;
    if let Some((item_path, param)) = &item {
        match id_pointer(spec, create, param)? {
            Ok(ptr) => {
                let var = if param == "id" {
                    format!("{}_id", singular(&resource))
                } else {
                    snake(param)
                };
                item_ops = Some((item_path.clone(), param.clone(), var, ptr));
            }
            Err(why) => notes.push(format!("read, update and delete left out: {why}")),
        }
    }
    let capture = item_ops
        .as_ref()
        .map(|(_, _, var, ptr)| (var.clone(), ptr.clone()));
    body.push_str(&steps.step(
        create,
        &format!("create {}", singular(&resource)),
        &StepPlan {
            capture,
            ..Default::default()
        },
    )?);
    used.insert((create.method.clone(), create.path.clone()));

    if let Some((item_path, param, var, ptr)) = &item_ops {
        let path_vars = vec![(param.clone(), format!("{{{{ {var} }}}}"))];
        let same_id = format!("{{ json = {}, equals = \"{{{{ {var} }}}}\" }}", string(ptr));
        if let Some(read) = find("GET", item_path) {
            let plan = StepPlan {
                path_vars: path_vars.clone(),
                checks: vec![same_id.clone()],
                ..Default::default()
            };
            body.push_str(&steps.step(read, &format!("read {}", singular(&resource)), &plan)?);
            used.insert((read.method.clone(), read.path.clone()));
            done.push("read");
        }
        if let Some(update) = find("PATCH", item_path).or_else(|| find("PUT", item_path)) {
            let (upd_body, checks) = update_body(spec, update)?;
            let plan = StepPlan {
                path_vars: path_vars.clone(),
                body: upd_body,
                checks,
                ..Default::default()
            };
            body.push_str(&steps.step(
                update,
                &format!("update {}", singular(&resource)),
                &plan,
            )?);
            used.insert((update.method.clone(), update.path.clone()));
            done.push("update");
        }
        if let Some(list) = list {
            body.push_str(&steps.step(list, &format!("list {resource}"), &StepPlan::default())?);
            used.insert((list.method.clone(), list.path.clone()));
            done.push("list");
        }
        if let Some(delete) = find("DELETE", item_path) {
            let plan = StepPlan {
                path_vars: path_vars.clone(),
                ..Default::default()
            };
            body.push_str(&steps.step(
                delete,
                &format!("delete {}", singular(&resource)),
                &plan,
            )?);
            used.insert((delete.method.clone(), delete.path.clone()));
            done.push("delete");
            if let Some(read) = find("GET", item_path).filter(|r| documents(r, 404)) {
                let plan = StepPlan {
                    path_vars,
                    status: Some(404),
                    bare: true,
                    ..Default::default()
                };
                body.push_str(&steps.step(
                    read,
                    &format!("{} is gone", singular(&resource)),
                    &plan,
                )?);
            }
        }
    } else if let Some(list) = list {
        body.push_str(&steps.step(list, &format!("list {resource}"), &StepPlan::default())?);
        used.insert((list.method.clone(), list.path.clone()));
        done.push("list");
    }
    let mut desc = format!("{} of {coll}", done.join(" → "));
    if !notes.is_empty() {
        desc.push_str(&format!(" ({})", notes.join("; ")));
    }
    let _ = writeln!(s, "description = {}\n", string(&desc));
    s.push_str(&body);
    Ok(Ok((resource, s)))
}

/// The update's body: its example, or its required fields, or (nothing
/// required) its first writable field, so the update changes something;
/// and a check that each plain value came back.
fn update_body(spec: &Spec, op: &Operation) -> Result<(Option<Value>, Vec<String>), InitError> {
    let mut b = request_body(spec, op)?;
    if let (Some(Value::Object(m)), Some((schema, at))) = (&b, op.request_schema(spec)?)
        && m.is_empty()
    {
        let (schema, at) = spec.deref(schema, &at)?;
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (k, p) in props {
                let pat = format!("{at}/properties/{}", pointer_segment(k));
                let (pr, _) = spec.deref(p, &pat)?;
                if pr.get("readOnly") == Some(&Value::Bool(true))
                    || schema_type(pr).as_deref() == Some("object")
                {
                    continue;
                }
                if let Some(v) = Sampler::new(spec).sample(p, &pat, k)? {
                    b = Some(Value::Object(Map::from_iter([(k.clone(), v)])));
                    break;
                }
            }
        }
    }
    let mut checks = Vec::new();
    let answers_body = success_responses(spec, op)?
        .first()
        .is_some_and(|(st, r, at)| *st != Some(204) && json_media(r, at).is_some());
    if answers_body && let Some(Value::Object(m)) = &b {
        for (k, v) in m {
            let plain = match v {
                Value::String(s) => !s.contains("{{"),
                Value::Number(_) | Value::Bool(_) => true,
                _ => false,
            };
            if plain && let Some(t) = value(v) {
                checks.push(format!(
                    "{{ json = {}, equals = {t} }}",
                    string(&format!("/{}", pointer_segment(k)))
                ));
            }
        }
    }
    Ok((b, checks))
}

fn readme(
    spec: &Spec,
    opts: &Options,
    auth: &AuthDraft,
    files: &[(String, String)],
    left_out: &[(String, String)],
    ops: usize,
) -> String {
    let title = spec
        .root
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("the API");
    let mut r = format!(
        "# convoy suite for {title}\n\nDrafted by `convoy init --openapi {}` ({ops} operations found). ",
        opts.source_name
    );
    r.push_str("Every file says which operation each step comes from; edit them freely.\n\n## Run it\n\n```sh\n");
    for (var, _) in &auth.env {
        let _ = writeln!(r, "export {var}=...");
    }
    let servers: Vec<&str> = spec
        .root
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url").and_then(Value::as_str))
        .collect();
    let _ = writeln!(
        r,
        "convoy smoke . --target {}\n```\n",
        servers
            .first()
            .filter(|u| u.starts_with("http"))
            .copied()
            .unwrap_or("http://127.0.0.1:8080")
    );
    if !servers.is_empty() {
        let _ = writeln!(
            r,
            "The document's servers: {}. Pass the one to test as `--target` (its path, such as `/v1`, is joined to every step's path).\n",
            servers
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if auth.env.is_empty() {
        r.push_str("## Credentials\n\nThe document declares no security scheme: requests are sent without credentials.\n\n");
    } else {
        let _ = writeln!(
            r,
            "## Credentials\n\nThe suite authenticates with {} (`suite.toml`). Its secrets come from these environment variables (a missing one is an error when the suite loads; convoy redacts their values everywhere):\n",
            auth.summary
        );
        for (var, what) in &auth.env {
            let _ = writeln!(r, "- `{var}`: {what}");
        }
        r.push('\n');
    }
    r.push_str("## Files\n\n");
    for (name, text) in files {
        let desc = text
            .lines()
            .find_map(|l| l.strip_prefix("description = "))
            .map(|d| d.trim_matches('"').to_string());
        let _ = writeln!(
            r,
            "- `{name}`{}",
            desc.map(|d| format!(": {d}"))
                .unwrap_or_else(|| ": the auth and identity every scenario shares".into())
        );
    }
    r.push_str("\n## Left out\n\n");
    if left_out.is_empty() {
        r.push_str("Nothing: every operation is in a journey.\n");
    } else {
        for (what, why) in left_out {
            let _ = writeln!(r, "- `{what}`: {why}");
        }
    }
    r
}
