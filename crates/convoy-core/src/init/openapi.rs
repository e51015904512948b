//! Drafting a suite from an OpenAPI 3.0/3.1 document: a health scenario,
//! one lifecycle journey per resource that can be created (create → read
//! → update → list → delete, as far as the document offers them, the id
//! captured from the create answer and reused), a `suite.toml` with the
//! auth and identity, and a README naming the environment variables and
//! every operation left out, with why.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::auth;
use super::lifecycle::{lifecycle, singular};
use super::profiles;
use super::readme::readme;
use super::replay;
use super::spec::{Spec, pointer_segment};
use super::steps::{StepPlan, Steps};
use super::tenant::{self, Tenancy};
use super::toml_text::{comment, string};
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

pub(super) fn documents(op: &Operation, status: u16) -> bool {
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

/// Drafts the suite of the document at `source`: an `http(s)://` URL
/// (fetched with one GET) or a file.
pub fn draft_source(source: &str, opts: &Options) -> Result<Draft, InitError> {
    if super::fetch::is_url(source) {
        draft(&super::fetch::fetch(source)?, opts)
    } else {
        draft_file(Path::new(source), opts)
    }
}

/// Drafts the suite of `spec`.
pub fn draft(spec: &Spec, opts: &Options) -> Result<Draft, InitError> {
    let mut ops = operations(spec)?;
    let mut auth = auth::draft(spec, &ops, &opts.env_prefix)?;
    let tenancy = tenant::detect(spec, &ops, &auth)?;
    if let Some(Tenancy::Path { param, .. }) = &tenancy {
        for op in &mut ops {
            op.path = op.path.replace(&format!("{{{param}}}"), tenant::TENANT_VAR);
        }
    }
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
    let mut steps = Steps::new(spec);
    if tenancy.is_some() {
        steps = steps.acting_as(tenant::OWNER, true);
    }
    if let Some(Tenancy::Header { name, .. }) = &tenancy {
        steps = steps.skipping_header(name);
    }
    let mut files = Vec::new();
    let mut journeys = 0;

    // Health.
    let health = pick_health(&ops);
    match health {
        Some(op) => {
            used.insert((op.method.clone(), op.path.clone()));
            let mut s = comment(&header);
            let _ = writeln!(
                s,
                "name = \"health\"\ndescription = {}\n",
                string(&format!("{} {} answers as documented", op.method, op.path))
            );
            s.push_str(&steps.step(op, "health", &StepPlan::default())?);
            files.push(("health.toml".to_string(), s));
        }
        None => left_out.push((
            "health".into(),
            "no GET without parameters: no health scenario".into(),
        )),
    }

    // Lifecycles.
    let mut names = BTreeSet::new();
    let mut resources = Vec::new();
    let mut creates = Vec::new();
    let mut singulars = BTreeSet::new();
    for create in ops.iter().filter(|o| o.method == "POST") {
        let key = (create.method.clone(), create.path.clone());
        if used.contains(&key) || create.path.trim_end_matches('/').ends_with('}') {
            continue;
        }
        match lifecycle(spec, &steps, &ops, create, &header, &mut used)? {
            Ok(d) => {
                let mut name = format!("{}-lifecycle", d.resource);
                let mut n = 2;
                while !names.insert(name.clone()) {
                    name = format!("{}-lifecycle-{n}", d.resource);
                    n += 1;
                }
                // The journey's name is a metric name: unique, as the file's.
                let text = d.text.replacen(
                    &format!("name = \"{}-lifecycle\"", d.resource),
                    &format!("name = {}", string(&name)),
                    1,
                );
                files.push((format!("{name}.toml"), text));
                journeys += 1;
                // Step names are metric names: a second resource of the
                // same name is told apart by its path.
                let mut one = singular(&d.resource);
                if !singulars.insert(one.clone()) {
                    one = format!("{one} at {}", create.path);
                }
                match d.item {
                    Some((item_path, param, var, ptr)) => {
                        if replay::key_header(create).is_some() {
                            creates.push(replay::Create {
                                op: create,
                                name: one.clone(),
                                id_pointer: ptr.clone(),
                                var: var.clone(),
                                item: (item_path.clone(), param.clone()),
                            });
                        }
                        resources.push(tenant::Resource {
                            create,
                            item_path,
                            param,
                            var,
                            id_pointer: ptr,
                            name: one,
                        });
                    }
                    None if replay::key_header(create).is_some() => left_out.push((
                        format!("POST {} (idempotent replay)", create.path),
                        "its create answer names no id for the replays to agree on".into(),
                    )),
                    None => {}
                }
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
    left_out.extend(super::unsupported::left_out(spec, &ops));
    left_out.sort();
    left_out.dedup();

    let replays = creates.len();
    if let Some(text) = replay::replay(spec, &steps, &ops, &creates, &header)? {
        files.push(("idempotent-replay.toml".into(), text));
    }
    let mut isolation = false;
    if tenancy.is_some() {
        match tenant::isolation(spec, &steps, &ops, &resources, &header)? {
            Some(text) => {
                files.push(("tenant-isolation.toml".into(), text));
                isolation = true;
            }
            None => left_out.push((
                "tenant isolation".into(),
                "no resource with a read, update or delete route to probe".into(),
            )),
        }
    }

    let mut suite = comment(&header);
    suite.push_str("# What every scenario of this folder shares.\n");
    suite.push_str("[defaults]\nheaders = { \"Accept\" = \"application/json\" }\n\n");
    let mut tenancy_note = String::new();
    match &tenancy {
        Some(t) => {
            let (auth_part, fields) = match auth
                .toml
                .split_once(&format!("[identities.{}]\n", auth::IDENTITY))
            {
                Some((a, f)) => (a.to_string(), f.to_string()),
                None => (auth.toml.clone(), String::new()),
            };
            let (ids, env) = tenant::identities(t, &auth, &fields, &opts.env_prefix);
            suite.push_str(&auth_part);
            suite.push_str(&ids);
            auth.env = env;
            tenancy_note = format!(
                "## Tenants\n\nThe API is multi-tenant: {} says which tenant a request acts for. The suite acts as two identities, `{}` (every journey) and `{}` (the prober of `tenant-isolation.toml`, which must be refused everything of `{}`'s); give them users of two different tenants.\n\n",
                t.origin(),
                tenant::OWNER,
                tenant::PROBER,
                tenant::OWNER
            );
        }
        None => suite.push_str(&auth.toml),
    }
    files.insert(0, ("suite.toml".into(), suite));
    files.push((
        "profiles.toml".into(),
        profiles::profiles(
            &header,
            profiles::Counted {
                isolation,
                replay: replays > 0,
            },
        ),
    ));
    files.push((
        "README.md".into(),
        readme(
            spec,
            opts,
            &auth,
            &files,
            &left_out,
            ops.len(),
            &tenancy_note,
        ),
    ));
    Ok(Draft {
        files,
        operations: ops.len(),
        journeys,
        replays,
        isolation,
    })
}

fn pick_health(ops: &[Operation]) -> Option<&Operation> {
    let gets = || ops.iter().filter(|o| o.method == "GET");
    for h in HEALTH_PATHS {
        if let Some(op) = gets()
            .find(|o| o.path.eq_ignore_ascii_case(h) || o.path.to_ascii_lowercase().ends_with(h))
        {
            return Some(op);
        }
    }
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
