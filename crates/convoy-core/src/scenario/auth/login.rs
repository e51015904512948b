//! The `login` auth kind, and the login request every kind that obtains a
//! token uses (`cookie`, `oauth2`): each identity's path and body rendered
//! once from its fields, the token read from the answer's body (a JSON
//! pointer), a header or a cookie, with its lifetime (`expires_in`).

use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;
use toml::Spanned;

use super::{RawAuth, TokenSlot};
use crate::scenario::check::LazyJson;
use crate::scenario::compile::Compiler;
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::exchange::Prepared;
use crate::scenario::model::{
    AuthConfig, AuthValue, Credential, JsonTemplate, LoginConfig, TokenSource,
};
use crate::scenario::step_run::StepRun;

/// Keys of `kind = "login"`.
const KEYS: &[&str] = &[
    "path",
    "method",
    "body",
    "token",
    "expires_in",
    "header",
    "scheme",
    "query",
    "cookie",
    "renew_after",
];

/// Compiles `[auth]` of kind `login`.
pub(super) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    a.only(c, "login", KEYS)?;
    let token = match &a.token {
        Some(t) => token_source(c, t)?,
        None => TokenSource::Json("/token".into()),
    };
    Ok(AuthConfig {
        kind: "login",
        login: Some(login_config(c, a, token, "application/json")?),
        send: super::placement(c, a, "Bearer")?,
        renew_after: super::renew_after(c, a)?,
    })
}

/// The login request's shared parts: `path` and `body` are required.
pub(super) fn login_config(
    c: &Compiler<'_>,
    a: &RawAuth,
    token: TokenSource,
    content_type: &'static str,
) -> Result<LoginConfig, Diagnostic> {
    let at = a.kind.as_ref().map_or(0..0, |k| k.span());
    if a.path.is_none() {
        return Err(c
            .err(at, "missing key \"path\" in [auth]")
            .with_hint("add `path = \"/auth/login\"`: where identities log in"));
    }
    if a.body.is_none() {
        return Err(c
            .err(at, "missing key \"body\" in [auth]")
            .with_hint("add `body = { email = \"{{ email }}\", password = \"{{ password }}\" }`"));
    }
    let method = match &a.method {
        Some(m) => c.method(m)?,
        None => http::Method::POST,
    };
    let expires_in = match &a.expires_in {
        Some(p) => Some(pointer(c, p.get_ref(), p.span(), "expires_in")?),
        None => None,
    };
    Ok(LoginConfig {
        method,
        content_type: HeaderValue::from_static(content_type),
        token,
        expires_in,
    })
}

fn pointer(c: &Compiler<'_>, p: &str, span: Range<usize>, key: &str) -> Result<String, Diagnostic> {
    if !p.starts_with('/') {
        return Err(c.err(
            span,
            format!("{key} must be a JSON pointer such as \"/{key}\""),
        ));
    }
    crate::scenario::json_pick::check_pointer_depth(p).map_err(|e| c.err(span, e))?;
    Ok(p.to_string())
}

/// `token`: a JSON pointer, or a table with one of `json`, `header`,
/// `cookie`.
fn token_source(c: &Compiler<'_>, t: &Spanned<toml::Value>) -> Result<TokenSource, Diagnostic> {
    match t.get_ref() {
        toml::Value::String(s) => Ok(TokenSource::Json(pointer(c, s, t.span(), "token")?)),
        toml::Value::Table(tab) if tab.len() == 1 => {
            let (k, v) = tab.iter().next().expect("one entry");
            let s = v
                .as_str()
                .ok_or_else(|| c.err(t.span(), format!("token `{k}` takes a string")))?;
            match k.as_str() {
                "json" => Ok(TokenSource::Json(pointer(c, s, t.span(), "token")?)),
                "header" => s
                    .parse()
                    .map(TokenSource::Header)
                    .map_err(|_| c.err(t.span(), format!("invalid header name {s:?}"))),
                "cookie" => {
                    super::cookie_name(c, &Spanned::new(t.span(), s.to_string()))
                        .map(TokenSource::Cookie)
                }
                other => {
                    let d = c.err(t.span(), format!("unknown token source \"{other}\""));
                    Err(match did_you_mean(other, ["json", "header", "cookie"]) {
                        Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                        None => d.with_hint("use json, header or cookie"),
                    })
                }
            }
        }
        _ => Err(c.err(
            t.span(),
            "token is a JSON pointer such as \"/token\", or { header = \"X-Auth-Token\" } or { cookie = \"sid\" }",
        )),
    }
}

/// An identity's login: the path and body of `[auth]` rendered with its
/// fields.
pub(super) fn credential(
    c: &mut Compiler<'_>,
    raw: &RawAuth,
    values: &[(String, String)],
) -> Result<Credential, Diagnostic> {
    let path = raw.path.as_ref().expect("checked when [auth] compiled");
    let body = raw.body.as_ref().expect("checked when [auth] compiled");
    let path = literal_path(c, path, values)?;
    let body = match c.json_template(body, values)? {
        JsonTemplate::Fixed(v) => v,
        _ => {
            return Err(c.err(
                body.span(),
                "the login body may only use identity fields and env",
            ));
        }
    };
    Ok(Credential::Login {
        path,
        body: Bytes::from(serde_json::to_vec(&body).expect("JSON values serialise")),
    })
}

/// A login path rendered with an identity's fields: it starts with '/'.
pub(super) fn literal_path(
    c: &Compiler<'_>,
    p: &Spanned<String>,
    values: &[(String, String)],
) -> Result<String, Diagnostic> {
    let t = c.template_at(p.get_ref(), p.span(), values)?;
    let text = t.as_literal().ok_or_else(|| {
        c.err(
            p.span(),
            "the login path may only use identity fields and env",
        )
    })?;
    if !text.starts_with('/') {
        return Err(c.err(
            p.span(),
            format!("invalid path {text:?}: it starts with '/', relative to the base URL"),
        ));
    }
    Ok(text.to_string())
}

/// Logs identity `identity` in with its `path` and `body`, keeps its token
/// and returns what requests made as it send.
pub(super) async fn login(
    run: &mut StepRun<'_>,
    identity: usize,
    auth: &AuthConfig,
    path: &str,
    body: &Bytes,
) -> Result<AuthValue, String> {
    let j = run.j;
    let login = auth.login.as_ref().expect("kinds that log in have a login");
    let name = &j.identities[identity].name;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, login.content_type.clone());
    let mut uri = match j.target.join(path) {
        Ok(uri) => uri,
        Err(e) => {
            let why = format!("login as \"{name}\": {e}");
            run.it.recorder.check(j.login_checks[identity], false);
            run.sample("login", why.clone(), String::new(), String::new());
            return Err(why);
        }
    };
    // The identity's own headers (its tenant) and the defaults go with its
    // login too.
    super::finish(run, Some(identity), None, &mut uri, &mut headers)?;
    let prepared = Prepared {
        method: login.method.clone(),
        uri,
        headers,
        body: body.clone(),
    };
    let (res, _) = run
        .send(&prepared, run.shared.login_metric, Instant::now(), &[])
        .await;
    let found = match &res {
        Ok(r) if (200..300).contains(&r.status) => read_token(r, login, &j.token_json),
        _ => None,
    };
    run.it
        .recorder
        .check(j.login_checks[identity], found.is_some());
    let Some((token, lifetime)) = found else {
        let why = match &res {
            Ok(r) => format!(
                "login as \"{name}\" answered {} without a token {}",
                r.status,
                describe(&login.token)
            ),
            Err(f) => format!("login as \"{name}\" failed: {f}"),
        };
        run.sample_exchange("login", why.clone(), &prepared, &res);
        return Err(why);
    };
    // The target may echo the token anywhere from now on.
    run.shared.secrets.learn(&token);
    let value = super::place(&auth.send, &token)?;
    if let Some(text) = super::sent_text(&value) {
        run.shared.secrets.learn(text);
    }
    let now = Instant::now();
    // Renewed a little before it expires, so no request carries a token
    // that dies in flight.
    let due = match lifetime {
        Some(l) => auth.renew_after.min(l.mul_f64(0.9)),
        None => auth.renew_after,
    };
    let slot: &mut TokenSlot = &mut run.user.journeys[run.ji].tokens[identity];
    if slot.logins > 0 {
        run.it.recorder.auth_renewal();
    }
    slot.logins = slot.logins.saturating_add(1);
    slot.value = Some(value.clone());
    slot.renew_at = Some(now + due);
    Ok(value)
}

fn describe(t: &TokenSource) -> String {
    match t {
        TokenSource::Json(p) => format!("at {p}"),
        TokenSource::Header(h) => format!("in header {h}"),
        TokenSource::Cookie(c) => format!("in cookie {c}"),
    }
}

/// The token of a login answer and its lifetime, if it says one.
fn read_token(
    r: &crate::engine::http::HttpResponse,
    login: &LoginConfig,
    paths: &crate::scenario::json_pick::JsonPaths,
) -> Option<(String, Option<Duration>)> {
    let mut json = LazyJson::new(&r.body, paths);
    let token = match &login.token {
        TokenSource::Json(p) => json
            .get()
            .and_then(|v| v.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_string),
        TokenSource::Header(h) => r
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        TokenSource::Cookie(name) => r
            .headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| cookie_value(v, name)),
    }
    .filter(|t| !t.is_empty())?;
    let lifetime = login.expires_in.as_ref().and_then(|p| {
        let v = json.get()?.pointer(p)?;
        let secs = v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
    });
    Some((token, lifetime))
}

/// The value of cookie `name` in a `Set-Cookie` header.
fn cookie_value(set_cookie: &str, name: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?;
    let (k, v) = pair.split_once('=')?;
    (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_values_are_read_by_name() {
        assert_eq!(
            cookie_value("sid=abc123; Path=/; HttpOnly", "sid").as_deref(),
            Some("abc123")
        );
        assert_eq!(cookie_value("theme=dark; Path=/", "sid"), None);
        assert_eq!(cookie_value("sid=\"q\"", "sid").as_deref(), Some("q"));
        assert_eq!(cookie_value("garbage", "sid"), None);
    }
}
