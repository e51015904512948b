//! A resource's lifecycle journey: create → read → update → list →
//! delete (and read after delete, when a 404 is documented), as far as the
//! document offers them, with the id captured from the create answer (its
//! OpenAPI `links`, else a property named like the item path's parameter)
//! and reused in every later path.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::InitError;
use super::openapi::{Operation, documents, json_media, json_schema, success_responses};
use super::sample::{Sampler, schema_type};
use super::spec::{Spec, pointer_segment};
use super::steps::{StepPlan, Steps, properties, request_body};
use super::toml_text::{comment, string, value};

/// The resource's name from its collection path: `/v1/orders` → `orders`.
pub(super) fn resource_name(path: &str) -> String {
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

pub(super) fn singular(name: &str) -> String {
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

/// A drafted lifecycle: the resource's name, the journey's text, and
/// where its items live when the id could be found: `(item path, its
/// parameter, the variable the id is captured in, the id's pointer in the
/// create answer)`.
pub(super) struct Drafted {
    pub(super) resource: String,
    pub(super) text: String,
    pub(super) item: Option<(String, String, String, String)>,
}

pub(super) type Lifecycle = Result<Drafted, String>;

/// The lifecycle journey of the collection `create.path`, or why none.
pub(super) fn lifecycle(
    spec: &Spec,
    steps: &Steps<'_>,
    ops: &[Operation],
    create: &Operation,
    header: &str,
    used: &mut BTreeSet<(String, String)>,
) -> Result<Lifecycle, InitError> {
    let coll = create.path.trim_end_matches('/');
    // A tenant in the path is filled by the identity, not a nesting.
    if coll.replace(super::tenant::TENANT_VAR, "").contains('{') {
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
    Ok(Ok(Drafted {
        resource,
        text: s,
        item: item_ops,
    }))
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
