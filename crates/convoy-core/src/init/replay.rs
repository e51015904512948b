//! The idempotent-replay journey: every create that takes an
//! `Idempotency-Key` header is sent several times at once with the same key
//! and body; every answer must carry the same id and a documented status,
//! and, when the list operation filters by the key, a list afterwards must
//! hold a single entry. What was created is deleted after, when the
//! document offers a delete.

use std::fmt::Write as _;

use serde_json::Value;

use super::InitError;
use super::openapi::{Operation, json_schema, success_responses};
use super::sample::schema_type;
use super::spec::{Spec, pointer_segment};
use super::steps::{StepPlan, Steps, properties};
use super::toml_text::{comment, string};

/// How many copies of each create are sent at once: enough to race, well
/// within the smoke allowance (20 in flight).
const TIMES: u32 = 3;

/// The `Idempotency-Key` header parameter of `op`, by name.
pub(super) fn key_header(op: &Operation) -> Option<String> {
    op.params.iter().find_map(|(p, _)| {
        let name = p.get("name").and_then(Value::as_str)?;
        (p.get("in").and_then(Value::as_str) == Some("header")
            && name.to_ascii_lowercase().contains("idempotency"))
        .then(|| name.to_string())
    })
}

/// A create to replay: the operation, the resource's name, the id's
/// pointer in its answer and the variable it is captured in.
pub(super) struct Create<'a> {
    pub(super) op: &'a Operation,
    pub(super) name: String,
    pub(super) id_pointer: String,
    pub(super) var: String,
    /// The item path and its id parameter, to delete what was created.
    pub(super) item: (String, String),
}

/// The replay journey over `creates`, or `None` when there is none.
pub(super) fn replay(
    spec: &Spec,
    steps: &Steps<'_>,
    ops: &[Operation],
    creates: &[Create<'_>],
    header: &str,
) -> Result<Option<String>, InitError> {
    if creates.is_empty() {
        return Ok(None);
    }
    let mut body = String::new();
    let mut names = Vec::new();
    for c in creates {
        let Some(key_name) = key_header(c.op) else {
            continue;
        };
        body.push_str(&steps.step(
            c.op,
            &format!("create {} (replayed)", c.name),
            &StepPlan {
                capture: Some((c.var.clone(), c.id_pointer.clone())),
                idempotency_key: Some("{{ key }}".into()),
                lets: vec![("key".into(), "{{ uuid }}".into())],
                ..Default::default()
            },
        )?);
        // The step's text ends with a blank line; its replay table follows.
        body.pop();
        let statuses: Vec<String> = success_responses(spec, c.op)?
            .iter()
            .filter_map(|(st, _, _)| st.map(|s| s.to_string()))
            .collect();
        let _ = writeln!(
            body,
            "# The same `{key_name}` and body {TIMES} times at once: one {}, one id.",
            c.name
        );
        let _ = writeln!(
            body,
            "[step.replay]\ntimes = {TIMES}\nconcurrent = true\nid = {}",
            string(&c.id_pointer)
        );
        if !statuses.is_empty() {
            let _ = writeln!(
                body,
                "status = [{}]  # the create's documented successes",
                statuses.join(", ")
            );
        }
        match verify(spec, ops, c.op)? {
            Some((v, origin)) => {
                let _ = writeln!(
                    body,
                    "# A single entry for the key: {origin}.\nverify = {v}"
                );
            }
            None => {
                let _ = writeln!(
                    body,
                    "# No list filters by the key: the single entry is not verified."
                );
            }
        }
        body.push('\n');
        let (item_path, param) = &c.item;
        if let Some(delete) = ops
            .iter()
            .find(|o| o.method == "DELETE" && &o.path == item_path)
        {
            body.push_str(&steps.step(
                delete,
                &format!("delete {} (replayed)", c.name),
                &StepPlan {
                    path_vars: vec![(param.clone(), format!("{{{{ {} }}}}", c.var))],
                    ..Default::default()
                },
            )?);
        }
        names.push(c.name.clone());
    }
    if names.is_empty() {
        return Ok(None);
    }
    let mut s = comment(header);
    let _ = writeln!(
        s,
        "name = \"idempotent-replay\"\ndescription = {}\n",
        string(&format!(
            "each create replayed {TIMES} times at once with one Idempotency-Key: {}",
            names.join(", ")
        ))
    );
    s.push_str(&body);
    Ok(Some(s))
}

/// The replay's `verify`: the list beside the create, filtered by a query
/// parameter named like the key, checked to hold one entry.
fn verify(
    spec: &Spec,
    ops: &[Operation],
    create: &Operation,
) -> Result<Option<(String, String)>, InitError> {
    let coll = create.path.trim_end_matches('/');
    let Some(list) = ops
        .iter()
        .find(|o| o.method == "GET" && o.path.trim_end_matches('/') == coll)
    else {
        return Ok(None);
    };
    let Some(filter) = list.params.iter().find_map(|(p, _)| {
        let name = p.get("name").and_then(Value::as_str)?;
        (p.get("in").and_then(Value::as_str) == Some("query")
            && name.to_ascii_lowercase().contains("idempotency"))
        .then(|| name.to_string())
    }) else {
        return Ok(None);
    };
    let Some((_, resp, at)) = success_responses(spec, list)?.into_iter().next() else {
        return Ok(None);
    };
    let Some((schema, sat)) = json_schema(resp, &at) else {
        return Ok(None);
    };
    let (schema, sat) = spec.deref(schema, &sat)?;
    let check = if schema_type(schema).as_deref() == Some("array") {
        "{ json = \"/0\", exists = true }, { json = \"/1\", exists = false }".to_string()
    } else {
        let props = properties(spec, schema, &sat)?;
        let named = |n: &str| props.iter().any(|(p, _)| p == n);
        if let Some(count) = ["count", "total", "total_count", "totalCount"]
            .into_iter()
            .find(|n| named(n))
        {
            format!("{{ json = {}, equals = 1 }}", string(&format!("/{count}")))
        } else {
            let mut array = None;
            for (p, _) in &props {
                let at = format!("{sat}/properties/{}", pointer_segment(p));
                if let Some(ps) = schema.pointer(&format!("/properties/{}", pointer_segment(p))) {
                    let (ps, _) = spec.deref(ps, &at)?;
                    if schema_type(ps).as_deref() == Some("array") {
                        array = Some(p.clone());
                        break;
                    }
                }
            }
            let Some(a) = array else { return Ok(None) };
            format!(
                "{{ json = {}, length = 1 }}",
                string(&format!("/{}", pointer_segment(&a)))
            )
        }
    };
    Ok(Some((
        format!(
            "{{ path = {}, query = {{ {} = \"{{{{ key }}}}\" }}, checks = [{check}] }}",
            string(&list.path),
            super::toml_text::key(&filter)
        ),
        format!("{} {} ({})", list.method, list.path, list.origin()),
    )))
}
