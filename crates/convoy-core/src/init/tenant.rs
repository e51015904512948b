//! Multi-tenant drafting: how the document says which tenant a request
//! acts for (a header parameter such as `X-Tenant-Id`, a path parameter
//! such as `/tenants/{tenantId}/orders`, or a tenant field in the login's
//! answer or body), the two identities that follow from it (`tenant_a`,
//! `tenant_b`, each with its own secrets and tenant), and the
//! tenant-isolation journey: tenant_a creates each resource, tenant_b
//! probes every read, update and delete route of it and must be refused,
//! and tenant_a still reads what it made.

use std::fmt::Write as _;

use serde_json::Value;

use super::InitError;
use super::auth::AuthDraft;
use super::openapi::{Operation, json_schema, success_responses};
use super::spec::{Spec, pointer_segment};
use super::steps::{StepPlan, Steps, request_body};
use super::toml_text::{comment, string, value};

/// The identity that creates; the other tenant's is [`PROBER`].
pub const OWNER: &str = "tenant_a";
/// The identity that probes the owner's resources.
pub const PROBER: &str = "tenant_b";

/// What a tenant path parameter becomes in drafted paths: the acting
/// identity's tenant.
pub const TENANT_VAR: &str = "{{ tenant }}";

/// Where a request says its tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Tenancy {
    /// A header parameter, named as the document names it.
    Header {
        /// `X-Tenant-Id`.
        name: String,
        /// The parameter's JSON pointer.
        pointer: String,
    },
    /// A path parameter, `{tenantId}`.
    Path {
        /// `tenantId`.
        param: String,
        /// The parameter's JSON pointer.
        pointer: String,
    },
    /// The login says it: a tenant field in its answer (the tenant is the
    /// user's) or in its body (`body_field` is then sent as `{{ tenant }}`).
    Login {
        /// Where the field was found.
        pointer: String,
        /// The login body's field that names the tenant, if any.
        body_field: Option<String>,
    },
}

impl Tenancy {
    /// Where it came from, for comments and the README.
    pub fn origin(&self) -> String {
        match self {
            Tenancy::Header { name, pointer } => format!("the header `{name}` (#{pointer})"),
            Tenancy::Path { param, pointer } => {
                format!("the path parameter `{{{param}}}` (#{pointer})")
            }
            Tenancy::Login { pointer, .. } => format!("the login's tenant field (#{pointer})"),
        }
    }

    /// Whether each identity needs a `tenant` value of its own.
    fn needs_value(&self) -> bool {
        !matches!(
            self,
            Tenancy::Login {
                body_field: None,
                ..
            }
        )
    }
}

/// Whether a parameter or field name names a tenant.
pub fn is_tenant_name(name: &str) -> bool {
    let bare = name
        .strip_prefix("X-")
        .or_else(|| name.strip_prefix("x-"))
        .unwrap_or(name);
    let n: String = bare
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let stems = [
        "tenant",
        "organization",
        "organisation",
        "workspace",
        "account",
    ];
    stems.iter().any(|s| n.starts_with(s)) || matches!(n.as_str(), "org" | "orgid" | "orgslug")
}

/// How `ops` (and the login) carry the tenant, if they do.
pub fn detect(
    spec: &Spec,
    ops: &[Operation],
    auth: &AuthDraft,
) -> Result<Option<Tenancy>, InitError> {
    for op in ops {
        for (p, at) in &op.params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if !is_tenant_name(name) {
                continue;
            }
            match p.get("in").and_then(Value::as_str) {
                Some("header") => {
                    return Ok(Some(Tenancy::Header {
                        name: name.to_string(),
                        pointer: at.clone(),
                    }));
                }
                Some("path") => {
                    return Ok(Some(Tenancy::Path {
                        param: name.to_string(),
                        pointer: at.clone(),
                    }));
                }
                _ => {}
            }
        }
    }
    let Some((_, login_path)) = &auth.login else {
        return Ok(None);
    };
    let Some(login) = ops
        .iter()
        .find(|o| o.method == "POST" && &o.path == login_path)
    else {
        return Ok(None);
    };
    if let Some((schema, at)) = login.request_schema(spec)? {
        let (schema, at) = spec.deref(schema, &at)?;
        if let Some(Value::Object(props)) = schema.get("properties")
            && let Some(k) = props
                .keys()
                .find(|k| is_tenant_name(k) && !k.to_ascii_lowercase().contains("account"))
        {
            return Ok(Some(Tenancy::Login {
                pointer: format!("{at}/properties/{}", pointer_segment(k)),
                body_field: Some(k.clone()),
            }));
        }
    }
    for (_, resp, at) in success_responses(spec, login)? {
        let Some((schema, at)) = json_schema(resp, &at) else {
            continue;
        };
        if let Some(ptr) = tenant_field(spec, schema, &at, 0)? {
            return Ok(Some(Tenancy::Login {
                pointer: ptr,
                body_field: None,
            }));
        }
    }
    Ok(None)
}

/// A tenant-named property of `schema`, two levels deep at most (a login
/// answers `{token, user: {tenant}}`).
fn tenant_field(
    spec: &Spec,
    schema: &Value,
    at: &str,
    depth: usize,
) -> Result<Option<String>, InitError> {
    let (schema, at) = spec.deref(schema, at)?;
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Ok(None);
    };
    for k in props.keys() {
        // A login answering the user's `account` says nothing of tenants.
        if is_tenant_name(k) && !k.to_ascii_lowercase().contains("account") {
            return Ok(Some(format!("{at}/properties/{}", pointer_segment(k))));
        }
    }
    if depth < 1 {
        for (k, p) in props {
            let pat = format!("{at}/properties/{}", pointer_segment(k));
            if let Some(found) = tenant_field(spec, p, &pat, depth + 1)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// The identity tables of a multi-tenant suite, and the environment
/// variables they read, `(name, what)`. `fields` are the single identity's
/// lines as `auth` drafted them; each tenant gets them with its own
/// variables (`API_TENANT_A_USERNAME`), plus its tenant where requests
/// carry one.
pub fn identities(
    tenancy: &Tenancy,
    auth: &AuthDraft,
    fields: &str,
    prefix: &str,
) -> (String, Vec<(String, String)>) {
    let mut toml = format!(
        "# Two tenants, one identity each: the API is multi-tenant by {}.\n",
        tenancy.origin()
    );
    let mut env = Vec::new();
    for (id, tag, label) in [(OWNER, "TENANT_A", "first"), (PROBER, "TENANT_B", "second")] {
        let _ = writeln!(toml, "[identities.{id}]");
        let from = format!("{{{{ env.{prefix}_");
        let to = format!("{{{{ env.{prefix}_{tag}_");
        toml.push_str(&fields.replace(&from, &to));
        for (var, what) in &auth.env {
            let renamed = var.replacen(&format!("{prefix}_"), &format!("{prefix}_{tag}_"), 1);
            env.push((renamed, format!("{what}, of a user of the {label} tenant")));
        }
        if tenancy.needs_value() {
            let var = format!("{prefix}_{tag}");
            let _ = writeln!(toml, "tenant = \"{{{{ env.{var} }}}}\"");
            env.push((var, format!("the {label} tenant's id, as the API names it")));
        }
        if let Tenancy::Header { name, .. } = tenancy {
            let _ = writeln!(
                toml,
                "headers = {{ {} = \"{{{{ tenant }}}}\" }}",
                string(name)
            );
        } else if auth.toml.is_empty() {
            // No security scheme: the identity sends no credential, only
            // names its tenant; convoy wants an identity to send something.
            toml.push_str("headers = { \"Accept\" = \"application/json\" }  # no credential: the document declares no security scheme\n");
        }
        toml.push('\n');
    }
    if auth.env.is_empty() && !tenancy.needs_value() {
        env.clear();
    }
    (toml, env)
}

/// The resource a create makes, as the isolation journey needs it.
pub(super) struct Resource<'a> {
    pub(super) create: &'a Operation,
    pub(super) item_path: String,
    pub(super) param: String,
    pub(super) var: String,
    pub(super) id_pointer: String,
    pub(super) name: String,
}

/// The tenant-isolation journey over `resources`, or `None` when none has
/// a route to probe.
/// `owner` drafts the steps made as [`OWNER`].
pub(super) fn isolation(
    spec: &Spec,
    owner: &Steps<'_>,
    ops: &[Operation],
    resources: &[Resource<'_>],
    header: &str,
) -> Result<Option<String>, InitError> {
    let mut body = String::new();
    let mut probed = Vec::new();
    for r in resources {
        let id = format!("{{{{ {} }}}}", r.var);
        // Every route on the item or under it that names no other id.
        let routes: Vec<&Operation> = ops
            .iter()
            .filter(|o| {
                let Some(rest) = o.path.strip_prefix(&r.item_path) else {
                    return false;
                };
                (rest.is_empty() || rest.starts_with('/'))
                    && !rest.contains('{')
                    && !(rest.is_empty() && o.method == "POST")
            })
            .collect();
        if routes.is_empty() {
            continue;
        }
        body.push_str(&owner.step(
            r.create,
            &format!("{OWNER} creates {}", r.name),
            &StepPlan {
                capture: Some((r.var.clone(), r.id_pointer.clone())),
                ..Default::default()
            },
        )?);
        let mut refused: Vec<u16> = Vec::new();
        let mut list = Vec::new();
        let mut origins = Vec::new();
        let mut probe_body = None;
        for o in &routes {
            let rest = &o.path[r.item_path.len()..];
            list.push(string(&if rest.is_empty() {
                o.method.clone()
            } else {
                format!("{} {rest}", o.method)
            }));
            origins.push(format!("#   {} {} ({})", o.method, o.path, o.origin()));
            for st in [403u16, 404] {
                if super::openapi::documents(o, st) && !refused.contains(&st) {
                    refused.push(st);
                }
            }
            if probe_body.is_none() && matches!(o.method.as_str(), "PUT" | "PATCH") {
                probe_body = request_body(spec, o)?;
            }
        }
        refused.sort_unstable();
        if refused.is_empty() {
            refused = vec![403, 404];
        }
        let resource = r.item_path.replace(&format!("{{{}}}", r.param), &id);
        let _ = writeln!(
            body,
            "# {PROBER} tries every read, update and delete route of {OWNER}'s {}:",
            r.name
        );
        for o in &origins {
            let _ = writeln!(body, "{o}");
        }
        let _ = writeln!(
            body,
            "# refused: the 403/404 these operations document (both when none does)."
        );
        let _ = writeln!(
            body,
            "[[step]]\nname = {}\n\n[step.isolation]\nas = \"{PROBER}\"\nresource = {}\nroutes = [{}]\nrefused = [{}]",
            string(&format!("{PROBER} probes {OWNER}'s {}", r.name)),
            string(&resource),
            list.join(", "),
            refused
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(b) = probe_body.as_ref().and_then(value) {
            let _ = writeln!(body, "body = {b}");
        }
        body.push('\n');
        if let Some(read) = ops
            .iter()
            .find(|o| o.method == "GET" && o.path == r.item_path)
        {
            body.push_str(&owner.step(
                read,
                &format!("{OWNER} still reads its {}", r.name),
                &StepPlan {
                    path_vars: vec![(r.param.clone(), id.clone())],
                    checks: vec![format!(
                        "{{ json = {}, equals = \"{id}\" }}",
                        string(&r.id_pointer)
                    )],
                    ..Default::default()
                },
            )?);
        }
        if let Some(delete) = ops
            .iter()
            .find(|o| o.method == "DELETE" && o.path == r.item_path)
        {
            body.push_str(&owner.step(
                delete,
                &format!("{OWNER} deletes its {}", r.name),
                &StepPlan {
                    path_vars: vec![(r.param.clone(), id)],
                    ..Default::default()
                },
            )?);
        }
        probed.push(r.name.clone());
    }
    if probed.is_empty() {
        return Ok(None);
    }
    let mut s = comment(header);
    let _ = writeln!(
        s,
        "name = \"tenant-isolation\"\ndescription = {}\n",
        string(&format!(
            "{OWNER} creates, {PROBER} is refused every read, update and delete of it: {}",
            probed.join(", ")
        ))
    );
    s.push_str(&body);
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{auth, openapi::operations};

    /// A document whose login answers `answer` (a JSON schema).
    fn login_doc(answer: &str) -> Spec {
        let answer: Value = serde_json::from_str(answer).unwrap();
        let body = serde_json::json!({ "type": "object", "properties": {
            "email": { "type": "string" }, "password": { "type": "string" } } });
        let doc = serde_json::json!({
            "openapi": "3.1.0",
            "security": [{ "b": [] }],
            "components": { "securitySchemes": { "b": { "type": "http", "scheme": "bearer" } } },
            "paths": { "/auth/login": { "post": {
                "requestBody": { "content": { "application/json": { "schema": body } } },
                "responses": { "200": { "description": "ok",
                    "content": { "application/json": { "schema": answer } } } }
            } } }
        });
        Spec::parse("t.json", &doc.to_string()).unwrap()
    }

    fn detected(spec: &Spec) -> Option<Tenancy> {
        let ops = operations(spec).unwrap();
        let a = auth::draft(spec, &ops, "API").unwrap();
        assert!(a.login.is_some(), "the login is found");
        detect(spec, &ops, &a).unwrap()
    }

    #[test]
    fn a_tenant_in_the_login_answer_is_found_and_an_account_is_not() {
        let t = detected(&login_doc(
            r#"{"type":"object","properties":{"token":{"type":"string"},"user":{"type":"object","properties":{"tenant":{"type":"string"}}}}}"#,
        ));
        assert!(
            matches!(&t, Some(Tenancy::Login { pointer, body_field: None }) if pointer.ends_with("/user/properties/tenant")),
            "{t:?}"
        );
        let t = detected(&login_doc(
            r#"{"type":"object","properties":{"token":{"type":"string"},"account":{"type":"object"}}}"#,
        ));
        assert_eq!(t, None);
    }

    #[test]
    fn tenant_names() {
        for n in [
            "X-Tenant-Id",
            "tenantId",
            "tenant",
            "X-Org-Id",
            "orgId",
            "workspace_id",
            "Account-Id",
            "organization",
        ] {
            assert!(is_tenant_name(n), "{n}");
        }
        for n in ["Idempotency-Key", "orderId", "X-Request-Id", "origin", "id"] {
            assert!(!is_tenant_name(n), "{n}");
        }
    }
}
