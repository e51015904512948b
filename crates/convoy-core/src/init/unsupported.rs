//! What a document holds that convoy does not draft, each named with its
//! JSON pointer for the README's "Left out" list, so nothing is skipped
//! without a word: webhooks and callbacks (requests the API sends, not
//! answers it gives), methods other than GET/POST/PUT/PATCH/DELETE,
//! required cookie parameters, security schemes drafted as something
//! else, and a document without `servers`. (External `$ref`s and
//! unresolvable ones are errors, at their pointer: see `spec`.)

use serde_json::Value;

use super::openapi::Operation;
use super::spec::{Spec, pointer_segment};

/// `(what, why)` for each feature left out.
pub(super) fn left_out(spec: &Spec, ops: &[Operation]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(Value::Object(hooks)) = spec.root.get("webhooks") {
        for name in hooks.keys() {
            out.push((
                format!("webhook {name}"),
                format!(
                    "#/webhooks/{}: a request the API sends, which convoy does not receive",
                    pointer_segment(name)
                ),
            ));
        }
    }
    if let Some(Value::Object(paths)) = spec.root.get("paths") {
        for (path, item) in paths {
            let at = format!("/paths/{}", pointer_segment(path));
            for m in ["head", "options", "trace"] {
                if item.get(m).is_some() {
                    out.push((
                        format!("{} {path}", m.to_ascii_uppercase()),
                        format!(
                            "#{at}/{m}: convoy drafts GET, POST, PUT, PATCH and DELETE operations"
                        ),
                    ));
                }
            }
            if item.get("servers").is_some() {
                out.push((
                    format!("servers of {path}"),
                    format!("#{at}/servers: every step goes to --target; a path's own servers are not used"),
                ));
            }
        }
    }
    for op in ops {
        if let Some(Value::Object(cbs)) = op.op.get("callbacks") {
            for name in cbs.keys() {
                out.push((
                    format!("callback {name} of {} {}", op.method, op.path),
                    format!(
                        "#{}/callbacks/{}: a request the API sends, which convoy does not receive",
                        op.pointer,
                        pointer_segment(name)
                    ),
                ));
            }
        }
        for (p, at) in &op.params {
            if p.get("in").and_then(Value::as_str) == Some("cookie")
                && p.get("required") == Some(&Value::Bool(true))
            {
                let name = p.get("name").and_then(Value::as_str).unwrap_or("?");
                out.push((
                    format!("cookie {name} of {} {}", op.method, op.path),
                    format!("#{at}: required cookie parameters are not sent; add it to the step's headers as `Cookie`"),
                ));
            }
        }
    }
    if let Some(Value::Object(schemes)) = spec.root.pointer("/components/securitySchemes") {
        for (name, s) in schemes {
            let kind = s.get("type").and_then(Value::as_str).unwrap_or("");
            let scheme = s
                .get("scheme")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let drafted = match kind {
                "apiKey" => true,
                "http" => scheme == "basic" || scheme == "bearer",
                "oauth2" => s.pointer("/flows/clientCredentials").is_some(),
                _ => false,
            };
            if !drafted {
                out.push((
                    format!("security scheme {name}"),
                    format!(
                        "#/components/securitySchemes/{}: type `{kind}`{} is not drafted as such; where it is the scheme used, the suite sends a bearer token (a login's, or one from the environment)",
                        pointer_segment(name),
                        if scheme.is_empty() { String::new() } else { format!(" `{scheme}`") }
                    ),
                ));
            }
        }
    }
    let servers = spec
        .root
        .get("servers")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if !servers {
        out.push((
            "servers".into(),
            "#/servers: the document names none; pass the API's base URL as --target".into(),
        ));
    }
    out
}
