//! The suite's `[auth]` and identity from the document's
//! `securitySchemes`: a bearer token from a login operation when the
//! document has one (else from the environment), an API key in a header,
//! query parameter or cookie, HTTP Basic, or OAuth2 client credentials.
//! Every secret comes from an environment variable, listed for the README.

use serde_json::Value;

use super::InitError;
use super::openapi::{Operation, json_schema, success_responses};
use super::sample::{Sampler, required_names, schema_type};
use super::spec::{Spec, pointer_segment};
use super::toml_text::{key, string, value};

/// The identity every drafted step that needs credentials acts as.
pub const IDENTITY: &str = "user";

/// The auth part of a suite.
#[derive(Debug, Default)]
pub struct AuthDraft {
    /// `[auth]` and `[identities.user]`, as TOML text (empty: no auth).
    pub toml: String,
    /// Environment variables the identity reads: `(name, what it holds)`.
    pub env: Vec<(String, String)>,
    /// What the README says about how the suite authenticates.
    pub summary: String,
    /// The login operation used, if any (left out of the journeys).
    pub login: Option<(String, String)>,
}

/// Drafts the auth of `spec` with environment variables named `PREFIX_...`.
pub fn draft(spec: &Spec, ops: &[Operation], prefix: &str) -> Result<AuthDraft, InitError> {
    let Some((name, scheme, at)) = pick_scheme(spec)? else {
        return Ok(AuthDraft::default());
    };
    let kind = scheme.get("type").and_then(Value::as_str).unwrap_or("");
    let http_scheme = scheme
        .get("scheme")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let env = |s: &str| format!("{prefix}_{s}");
    let mut d = AuthDraft::default();
    let origin = format!("# From securitySchemes.{name} ({at}).\n");
    match (kind, http_scheme.as_str()) {
        ("http", "basic") => {
            d.toml = format!(
                "{origin}[auth]\nkind = \"basic\"\n\n[identities.{IDENTITY}]\nusername = \"{{{{ env.{u} }}}}\"\npassword = \"{{{{ env.{p} }}}}\"\n",
                u = env("USERNAME"),
                p = env("PASSWORD")
            );
            d.env
                .push((env("USERNAME"), "the user name sent with HTTP Basic".into()));
            d.env.push((env("PASSWORD"), "its password".into()));
            d.summary = format!("HTTP Basic (`{name}`)");
        }
        ("apiKey", _) => {
            let param = scheme
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("X-Api-Key");
            let place = match scheme.get("in").and_then(Value::as_str) {
                Some("query") => format!("query = {}", string(param)),
                Some("cookie") => format!("cookie = {}", string(param)),
                _ => format!("header = {}\nscheme = \"\"", string(param)),
            };
            d.toml = format!(
                "{origin}[auth]\nkind = \"token\"\n{place}\n\n[identities.{IDENTITY}]\ntoken = \"{{{{ env.{k} }}}}\"\n",
                k = env("KEY")
            );
            d.env
                .push((env("KEY"), format!("the API key sent as `{param}`")));
            d.summary = format!("an API key (`{name}`: `{param}`)");
        }
        ("oauth2", _)
            if scheme
                .pointer("/flows/clientCredentials/tokenUrl")
                .is_some() =>
        {
            let url = scheme
                .pointer("/flows/clientCredentials/tokenUrl")
                .and_then(Value::as_str)
                .unwrap_or("/oauth/token");
            d.toml = format!(
                "{origin}[auth]\nkind = \"oauth2\"\ntoken_url = {}\n\n[identities.{IDENTITY}]\nclient_id = \"{{{{ env.{i} }}}}\"\nclient_secret = \"{{{{ env.{s} }}}}\"\n",
                string(url),
                i = env("CLIENT_ID"),
                s = env("CLIENT_SECRET")
            );
            d.env
                .push((env("CLIENT_ID"), "the OAuth2 client id".into()));
            d.env.push((env("CLIENT_SECRET"), "its secret".into()));
            d.summary = format!("OAuth2 client credentials (`{name}`, token from `{url}`)");
        }
        _ => match find_login(spec, ops)? {
            Some(login) => {
                d.toml = format!(
                    "{origin}# Login: {} {} ({}).\n[auth]\npath = {}\nmethod = \"POST\"\nbody = {}\ntoken = {}\n{}\n[identities.{IDENTITY}]\n{} = \"{{{{ env.{u} }}}}\"\npassword = \"{{{{ env.{p} }}}}\"\n",
                    login.op.method,
                    login.op.path,
                    login.op.origin(),
                    string(&login.op.path),
                    value(&login.body).unwrap_or_else(|| "{}".into()),
                    string(&login.token),
                    login
                        .expires_in
                        .as_ref()
                        .map(|p| format!("expires_in = {}\n", string(p)))
                        .unwrap_or_default(),
                    key(&login.user_field),
                    u = env("USERNAME"),
                    p = env("PASSWORD"),
                );
                d.env.push((
                    env("USERNAME"),
                    format!("the `{}` the login takes", login.user_field),
                ));
                d.env.push((env("PASSWORD"), "its password".into()));
                d.summary = format!(
                    "a bearer token (`{name}`) from the login `{} {}`",
                    login.op.method, login.op.path
                );
                d.login = Some((login.op.method.clone(), login.op.path.clone()));
            }
            None => {
                d.toml = format!(
                    "{origin}[auth]\nkind = \"token\"\n\n[identities.{IDENTITY}]\ntoken = \"{{{{ env.{t} }}}}\"\n",
                    t = env("TOKEN")
                );
                d.env.push((
                    env("TOKEN"),
                    "a bearer token (no login operation was found)".into(),
                ));
                d.summary = format!("a bearer token (`{name}`) from the environment");
            }
        },
    }
    Ok(d)
}

/// The scheme the document's top-level `security` names first, else the
/// first one declared.
fn pick_scheme(spec: &Spec) -> Result<Option<(String, &Value, String)>, InitError> {
    let Some(Value::Object(schemes)) = spec.root.pointer("/components/securitySchemes") else {
        return Ok(None);
    };
    let named = spec
        .root
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys())
        .find(|k| schemes.contains_key(*k))
        .cloned();
    let Some(name) = named.or_else(|| schemes.keys().next().cloned()) else {
        return Ok(None);
    };
    let at = format!("/components/securitySchemes/{}", pointer_segment(&name));
    let (scheme, at) = spec.deref(&schemes[&name], &at)?;
    Ok(Some((name, scheme, at)))
}

struct Login<'a> {
    op: &'a Operation,
    body: Value,
    user_field: String,
    token: String,
    expires_in: Option<String>,
}

/// A POST that looks like a login (`/login`, `/auth/token`, `signIn`...)
/// and takes a JSON body.
fn find_login<'a>(spec: &Spec, ops: &'a [Operation]) -> Result<Option<Login<'a>>, InitError> {
    for op in ops.iter().filter(|o| o.method == "POST") {
        if !is_login(op) {
            continue;
        }
        let Some((schema, at)) = op.request_schema(spec)? else {
            continue;
        };
        let (schema, at) = spec.deref(schema, &at)?;
        let mut body = serde_json::Map::new();
        let mut user_field = String::from("username");
        let props = schema.get("properties").and_then(Value::as_object);
        let mut names = required_names(schema);
        if names.is_empty()
            && let Some(p) = props
        {
            names = p.keys().cloned().collect();
        }
        for n in names {
            let lower = n.to_ascii_lowercase();
            if lower.contains("pass") || lower.contains("secret") {
                body.insert(n, Value::String("{{ password }}".into()));
            } else if super::tenant::is_tenant_name(&n) && !lower.contains("account") {
                // The identity's own tenant (the suite is then multi-tenant).
                body.insert(n, Value::String("{{ tenant }}".into()));
            } else if ["email", "user", "login", "name", "client_id", "account"]
                .iter()
                .any(|w| lower.contains(w))
            {
                user_field = lower.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                body.insert(n, Value::String(format!("{{{{ {user_field} }}}}")));
            } else if let Some(p) = props.and_then(|p| p.get(&n)) {
                let v = Sampler::new(spec).sample(
                    p,
                    &format!("{at}/properties/{}", pointer_segment(&n)),
                    &n,
                )?;
                if let Some(v) = v {
                    body.insert(n, v);
                }
            }
        }
        let (token, expires_in) = token_pointer(spec, op)?;
        return Ok(Some(Login {
            op,
            body: Value::Object(body),
            user_field,
            token,
            expires_in,
        }));
    }
    Ok(None)
}

fn is_login(op: &Operation) -> bool {
    let path = op.path.to_ascii_lowercase();
    let id = op
        .operation_id
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    ["login", "signin", "sign-in", "sign_in"]
        .iter()
        .any(|w| path.contains(w) || id.contains(w))
        || path.ends_with("/token")
        || path.ends_with("/session")
        || path.ends_with("/sessions")
}

/// Where the login's answer carries the token (default `/token`), and its
/// lifetime if the schema names one.
fn token_pointer(spec: &Spec, op: &Operation) -> Result<(String, Option<String>), InitError> {
    const TOKENS: [&str; 6] = [
        "access_token",
        "accessToken",
        "token",
        "jwt",
        "id_token",
        "idToken",
    ];
    const EXPIRES: [&str; 2] = ["expires_in", "expiresIn"];
    for (_, resp, at) in success_responses(spec, op)? {
        let Some((schema, at)) = json_schema(resp, &at) else {
            continue;
        };
        let (schema, _) = spec.deref(schema, &at)?;
        let mut stack = vec![(schema.clone(), String::new())];
        for _ in 0..2 {
            let mut next = Vec::new();
            for (s, prefix) in stack {
                let Some(props) = s.get("properties").and_then(Value::as_object) else {
                    continue;
                };
                if let Some(t) = TOKENS.iter().find(|t| props.contains_key(**t)) {
                    let e = EXPIRES
                        .iter()
                        .find(|e| props.contains_key(**e))
                        .map(|e| format!("{prefix}/{e}"));
                    return Ok((format!("{prefix}/{t}"), e));
                }
                for (k, v) in props {
                    let (v, _) = spec.deref(v, "")?;
                    if schema_type(v).as_deref() == Some("object") || v.get("properties").is_some()
                    {
                        next.push((v.clone(), format!("{prefix}/{}", pointer_segment(k))));
                    }
                }
            }
            stack = next;
        }
    }
    Ok(("/token".into(), None))
}
