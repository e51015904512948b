//! Identities and their credentials: the `[auth]` table and the
//! `[identities]` compiled, and while running the one place every request
//! made as an identity goes through ([`credential`] then [`finish`]): its
//! token (logging in under the shared [`LOGIN_METRIC`] when it has none yet
//! or it is due for renewal), its headers, the scenario's default headers.
//!
//! One file per auth kind: [`login`] (a login request whose answer carries
//! a token in its body, a header or a cookie), [`cookie`] (a login whose
//! session cookie is sent back), [`static_token`] (a token or API key from
//! the environment), [`basic`] (HTTP Basic) and [`oauth2`] (client
//! credentials). Every kind is compiled into an [`AuthConfig`] and, per
//! identity, a [`Credential`]: nothing is parsed or rendered per request
//! but the scenario's templated default headers.
//!
//! A token that is due (`renew_after`, or the `expires_in` its answer
//! gave) is renewed before it is used; a 401 on a request that used a
//! login's token drops it, and a plain request (or a replay's `verify`)
//! is sent once more with a fresh one (`steps/request.rs`). Every login
//! after an identity's first is counted as an `auth_renewals`.

pub(crate) mod basic;
pub(crate) mod cookie;
pub(crate) mod login;
pub(crate) mod oauth2;
pub(crate) mod static_token;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use http::HeaderValue;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::compile::Compiler;
use super::diagnostic::{Diagnostic, did_you_mean};
use super::model::{AuthConfig, AuthValue, Credential, HeaderTemplate, Identity, TokenPlacement};
use super::source::SpannedValue;
use super::step_run::StepRun;

/// The metric of every login request, whichever journey needs it.
pub const LOGIN_METRIC: &str = "auth login";

/// The auth kinds, as `kind = "..."` names them.
const KINDS: &[&str] = &["login", "cookie", "token", "basic", "oauth2"];

/// The `[auth]` table, as written: the keys of every kind; each kind
/// refuses those it does not use.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    kind: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    body: Option<Spanned<SpannedValue>>,
    token: Option<Spanned<toml::Value>>,
    expires_in: Option<Spanned<String>>,
    header: Option<Spanned<String>>,
    scheme: Option<Spanned<String>>,
    query: Option<Spanned<String>>,
    cookie: Option<Spanned<String>>,
    renew_after: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    client_secret: Option<Spanned<String>>,
    scope: Option<Spanned<String>>,
}

impl RawAuth {
    /// The keys written, with where.
    fn written(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut out = Vec::new();
        macro_rules! key {
            ($($k:ident),*) => {$(
                if let Some(v) = &self.$k {
                    out.push((stringify!($k), v.span()));
                }
            )*};
        }
        key!(
            path,
            method,
            body,
            token,
            expires_in,
            header,
            scheme,
            query,
            cookie,
            renew_after,
            username,
            password,
            token_url,
            client_id,
            client_secret,
            scope
        );
        out
    }

    /// Refuses, at its place, the first key written that kind `kind` does
    /// not use.
    fn only(&self, c: &Compiler<'_>, kind: &str, used: &[&str]) -> Result<(), Diagnostic> {
        match self.written().into_iter().find(|(k, _)| !used.contains(k)) {
            Some((k, span)) => Err(c
                .err(span, format!("`{k}` means nothing to auth kind \"{kind}\""))
                .with_hint(format!("kind \"{kind}\" takes: kind, {}", used.join(", ")))),
            None => Ok(()),
        }
    }
}

/// Compiles the `[auth]` table.
pub(crate) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    let kind = a.kind.as_ref().map_or("login", |k| k.get_ref().as_str());
    match kind {
        "login" => login::compile(c, a),
        "cookie" => cookie::compile(c, a),
        "token" => static_token::compile(c, a),
        "basic" => basic::compile(c, a),
        "oauth2" => oauth2::compile(c, a),
        other => {
            let k = a.kind.as_ref().expect("only a written kind is unknown");
            let d = c.err(k.span(), format!("unknown auth kind \"{other}\""));
            Err(match did_you_mean(other, KINDS.iter().copied()) {
                Some(s) => d.with_hint(format!("did you mean \"{s}\"?")),
                None => d.with_hint(format!("use one of {}", KINDS.join(", "))),
            })
        }
    }
}

/// `header`, `scheme`, `query` and `cookie`: how a token is sent, the
/// `Authorization: Bearer` header unless they say otherwise.
fn placement(c: &Compiler<'_>, a: &RawAuth, scheme: &str) -> Result<TokenPlacement, Diagnostic> {
    let ways = [&a.header, &a.query, &a.cookie]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if let [_, second, ..] = ways.as_slice() {
        return Err(c.err(
            second.span(),
            "a token is sent one way: `header`, `query` or `cookie`",
        ));
    }
    if let Some(q) = &a.query {
        if let Some(s) = &a.scheme {
            return Err(c.err(s.span(), "`scheme` is for a token sent in a header"));
        }
        if q.get_ref().is_empty() {
            return Err(c.err(q.span(), "the query parameter's name is empty"));
        }
        return Ok(TokenPlacement::Query(q.get_ref().clone()));
    }
    if let Some(k) = &a.cookie {
        if let Some(s) = &a.scheme {
            return Err(c.err(s.span(), "`scheme` is for a token sent in a header"));
        }
        return Ok(TokenPlacement::Cookie(cookie_name(c, k)?));
    }
    let name = match &a.header {
        Some(h) => header_name(c, h)?,
        None => http::header::AUTHORIZATION,
    };
    Ok(TokenPlacement::Header {
        name,
        scheme: a
            .scheme
            .as_ref()
            .map_or_else(|| scheme.to_string(), |s| s.get_ref().clone()),
    })
}

fn header_name(c: &Compiler<'_>, h: &Spanned<String>) -> Result<http::HeaderName, Diagnostic> {
    h.get_ref()
        .parse()
        .map_err(|_| c.err(h.span(), format!("invalid header name {:?}", h.get_ref())))
}

fn cookie_name(c: &Compiler<'_>, k: &Spanned<String>) -> Result<String, Diagnostic> {
    let n = k.get_ref();
    if n.is_empty()
        || !n
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    {
        return Err(c.err(k.span(), format!("invalid cookie name {n:?}")));
    }
    Ok(n.clone())
}

fn renew_after(c: &Compiler<'_>, a: &RawAuth) -> Result<Duration, Diagnostic> {
    match &a.renew_after {
        Some(d) => c.duration(d),
        None => Ok(Duration::from_secs(50 * 60)),
    }
}

/// What `token` sends once placed: a sensitive header, or a query
/// parameter.
pub(crate) fn place(send: &TokenPlacement, token: &str) -> Result<AuthValue, String> {
    let header = |name: http::HeaderName, text: String| {
        let mut v = HeaderValue::from_str(&text)
            .map_err(|_| "the token is not a valid header value".to_string())?;
        v.set_sensitive(true);
        Ok(AuthValue::Header(name, v))
    };
    match send {
        TokenPlacement::Header { name, scheme } if scheme.is_empty() => {
            header(name.clone(), token.to_string())
        }
        TokenPlacement::Header { name, scheme } => {
            header(name.clone(), format!("{scheme} {token}"))
        }
        TokenPlacement::Cookie(n) => header(http::header::COOKIE, format!("{n}={token}")),
        TokenPlacement::Query(n) => {
            let mut q = String::new();
            super::render::encode_component(n, &mut q);
            q.push('=');
            super::render::encode_component(token, &mut q);
            Ok(AuthValue::Query(q))
        }
    }
}

/// The text of `value` as sent, to join the secrets.
fn sent_text(value: &AuthValue) -> Option<&str> {
    match value {
        AuthValue::Header(_, v) => v.to_str().ok(),
        AuthValue::Query(q) => Some(q),
    }
}

/// An identity's fields as written: values of its variables, and
/// `headers`.
pub(crate) type RawIdentity = Spanned<BTreeMap<String, Spanned<SpannedValue>>>;

/// Adds the field names of an identity (`headers` aside) to
/// `c.ident_fields`, refusing a name a variable already has.
pub(crate) fn declare_fields(c: &mut Compiler<'_>, fields: &RawIdentity) -> Result<(), Diagnostic> {
    for (k, v) in fields.get_ref() {
        if k == "headers" || c.ident_fields.contains(k) {
            continue;
        }
        let named = Spanned::new(v.span(), k.clone());
        c.check_name(&named).map_err(|d| {
            Diagnostic {
                message: format!("invalid identity field name {k:?}"),
                ..d
            }
            .with_hint("field names use letters, digits, '_' and '-', and are not uuid, vu, iteration, now_ms, env or data")
        })?;
        if c.slots.contains(k) {
            return Err(c
                .err(
                    v.span(),
                    format!("identity field \"{k}\" has the name of a variable"),
                )
                .with_hint("rename one: an identity's fields are template variables too"));
        }
        c.ident_fields.push(k.clone());
    }
    Ok(())
}

/// A file other than the scenario's that an item was written in (the
/// suite's), so its mistakes are reported there.
pub(crate) type File<'a> = Option<(&'a std::path::Path, &'a str)>;

/// Runs `f` with `c` reporting mistakes in `file` (the scenario's own when
/// `None`).
pub(crate) fn in_file<'a, T>(
    c: &mut Compiler<'a>,
    file: File<'a>,
    f: impl FnOnce(&mut Compiler<'a>) -> T,
) -> T {
    let saved = (c.path, c.text);
    if let Some((p, t)) = file {
        c.path = p;
        c.text = t;
    }
    let out = f(c);
    (c.path, c.text) = saved;
    out
}

/// Compiles identity `name`: its variables, headers and credential.
/// Secret fields, headers and credentials join the scenario's secrets.
pub(crate) fn identity<'a>(
    c: &mut Compiler<'a>,
    name: &Spanned<String>,
    fields: &RawIdentity,
    raw_auth: Option<(&RawAuth, File<'a>)>,
    auth: Option<&AuthConfig>,
) -> Result<Identity, Diagnostic> {
    // Fields may use env; they are rendered once.
    let mut values: Vec<(String, String)> = Vec::new();
    let mut vars = vec![None; c.ident_fields.len()];
    let mut secret = Vec::new();
    let mut raw_headers = None;
    for (k, v) in fields.get_ref() {
        if k == "headers" {
            raw_headers = Some(v);
            continue;
        }
        let value = match v.get_ref() {
            SpannedValue::String(s) => {
                let t = c.template_at(s, v.span(), &[])?;
                Value::String(t.as_literal().map(str::to_string).ok_or_else(|| {
                    c.err(
                        v.span(),
                        "identity fields may use {{ env.NAME }} but no per-request placeholder",
                    )
                })?)
            }
            _ => {
                // A PIN written as a number would lose its leading zeros.
                return Err(c
                    .err(
                        v.span(),
                        format!("invalid type: identity field \"{k}\" must be a string"),
                    )
                    .with_hint(format!("quote it: {k} = \"...\"")));
            }
        };
        let text = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if matches!(k.as_str(), "password" | "token" | "secret")
            || crate::redact::is_sensitive_name(k)
        {
            c.secrets.push(text.clone());
            secret.push(k.clone());
        }
        let i = c
            .ident_fields
            .iter()
            .position(|f| f == k)
            .expect("declared by declare_fields");
        vars[i] = Some(value);
        values.push((k.clone(), text));
    }
    // `user:password` pairs: their base64 is what HTTP Basic sends.
    for (k, user) in &values {
        if secret.contains(k) {
            continue;
        }
        for (s, password) in &values {
            if secret.contains(s) {
                c.secrets.push(format!("{user}:{password}"));
            }
        }
    }
    let headers = match raw_headers {
        Some(h) => identity_headers(c, h, &values)?,
        None => Vec::new(),
    };
    let fixed = values.iter().find(|(k, _)| k == "token");
    let credential = match (raw_auth, auth) {
        // An identity with a `token` field sends it, whichever kind logs
        // the others in (a CI token beside users who log in).
        (Some(_), Some(auth)) if auth.kind != "token" && fixed.is_some() => {
            let (_, token) = fixed.expect("matched by the guard");
            Credential::Fixed(place(&auth.send, token).map_err(|e| c.err(fields.span(), e))?)
        }
        (Some((raw, file)), Some(auth)) => match auth.kind {
            "login" | "cookie" => in_file(c, file, |c| login::credential(c, raw, &values))?,
            "token" => static_token::credential(c, auth, name, fields.span(), &values)?,
            "basic" => in_file(c, file, |c| basic::credential(c, raw, &values))?,
            "oauth2" => in_file(c, file, |c| oauth2::credential(c, raw, &values))?,
            k => unreachable!("auth kind {k} is compiled above"),
        },
        // Without [auth], a `token` field is a bearer token.
        _ => match values.iter().find(|(k, _)| k == "token") {
            Some((_, token)) => Credential::Fixed(
                place(&static_token::bearer(), token).map_err(|e| c.err(fields.span(), e))?,
            ),
            None if !headers.is_empty() => Credential::None,
            None => {
                return Err(c.err(fields.span(), format!("identity \"{}\" has no token and the scenario has no [auth] login", name.get_ref()))
                    .with_hint("give it `token = \"{{ env.API_TOKEN }}\"`, `headers = { \"X-Api-Key\" = \"{{ env.API_KEY }}\" }`, or add an [auth] table"));
            }
        },
    };
    if let Credential::Fixed(v) = &credential
        && let Some(text) = sent_text(v)
    {
        c.secrets.push(text.to_string());
    }
    Ok(Identity {
        name: name.get_ref().clone(),
        credential,
        vars,
        headers,
    })
}

/// An identity's `headers`: templates over its fields and env, rendered
/// once. Those named like a secret are secrets.
fn identity_headers(
    c: &mut Compiler<'_>,
    raw: &Spanned<SpannedValue>,
    values: &[(String, String)],
) -> Result<Vec<(http::HeaderName, HeaderValue)>, Diagnostic> {
    let SpannedValue::Table(t) = raw.get_ref() else {
        return Err(c.err(
            raw.span(),
            "an identity's `headers` is a table such as { \"X-Tenant-Id\" = \"acme\" }",
        ));
    };
    let mut out = Vec::new();
    for (k, v) in t {
        let name: http::HeaderName = k
            .parse()
            .map_err(|_| c.err(v.span(), format!("invalid header name {k:?}")))?;
        let Some(s) = v.get_ref().as_str() else {
            return Err(c.err(v.span(), format!("header {k} takes a string")));
        };
        let t = c.template_at(s, v.span(), values)?;
        let text = t.as_literal().ok_or_else(|| {
            c.err(
                v.span(),
                "an identity's headers may use its fields and {{ env.NAME }} but no per-request placeholder; use [defaults] headers",
            )
        })?;
        let mut value = HeaderValue::from_str(text).map_err(|_| {
            c.err(
                v.span(),
                format!("invalid header value for {k}: HTTP cannot carry control characters or line breaks"),
            )
        })?;
        if crate::redact::is_sensitive_name(k) {
            c.secrets.push(text.to_string());
            value.set_sensitive(true);
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Compiles `[defaults] headers`: sent on every request of the scenario
/// unless the identity or the step sets the same header. Templates may use
/// variables and identity fields, rendered per request.
pub(crate) fn default_headers(
    c: &mut Compiler<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<String>>,
) -> Result<Vec<(http::HeaderName, HeaderTemplate)>, Diagnostic> {
    let mut out = Vec::new();
    for (k, v) in raw {
        let name: http::HeaderName = k
            .get_ref()
            .parse()
            .map_err(|_| c.err(k.span(), format!("invalid header name {:?}", k.get_ref())))?;
        let t = c.template(v)?;
        let h = match t.as_literal() {
            Some(lit) => {
                let mut value = HeaderValue::from_str(lit).map_err(|_| {
                    c.err(v.span(), format!("invalid header value for {}: HTTP cannot carry control characters or line breaks", k.get_ref()))
                })?;
                if crate::redact::is_sensitive_name(k.get_ref()) {
                    c.secrets.push(lit.to_string());
                    value.set_sensitive(true);
                }
                HeaderTemplate::Fixed(value)
            }
            None => HeaderTemplate::Template(t),
        };
        out.push((name, h));
    }
    Ok(out)
}

/// Whether any identity of `identities` logs in.
pub(crate) fn logs_in(identities: &[Identity]) -> bool {
    identities
        .iter()
        .any(|i| matches!(i.credential, Credential::Login { .. }))
}

/// Whether a request made as `identity` uses a token a login obtained
/// (one a 401 may call to renew).
#[inline]
pub(crate) fn renewable(run: &StepRun<'_>, identity: Option<usize>) -> bool {
    identity.is_some_and(|i| matches!(run.j.identities[i].credential, Credential::Login { .. }))
}

/// Drops `identity`'s token: the next request made as it logs in again.
pub(crate) fn expire(run: &mut StepRun<'_>, identity: usize) {
    run.user.journeys[run.ji].tokens[identity].value = None;
}

/// The token of one identity for one user.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenSlot {
    /// What it adds to a request, while it is valid.
    pub value: Option<AuthValue>,
    /// When it is due for renewal.
    pub renew_at: Option<Instant>,
    /// Logins made for it so far (after the first, each is a renewal).
    pub logins: u32,
}

/// The credential `identity` sends, if the request is made as one,
/// logging in when needed; `Err` when its login failed (the login
/// recorded why).
pub(crate) async fn credential(
    run: &mut StepRun<'_>,
    identity: Option<usize>,
) -> Result<Option<AuthValue>, ()> {
    let Some(i) = identity else {
        return Ok(None);
    };
    let j = run.j;
    match &j.identities[i].credential {
        Credential::None => Ok(None),
        Credential::Fixed(v) => Ok(Some(v.clone())),
        Credential::Login { path, body } => {
            let slot = &run.user.journeys[run.ji].tokens[i];
            if let (Some(v), Some(at)) = (&slot.value, slot.renew_at)
                && Instant::now() < at
            {
                return Ok(Some(v.clone()));
            }
            let auth = j.auth.as_ref().expect("login identities have [auth]");
            // Boxed: logging in is rare and its future is large; every
            // step awaits this one.
            let v = Box::pin(login::login(run, i, auth, path, body)).await;
            // A login is its own request with its own metric: the step's
            // latency starts after it, not at the iteration's scheduled
            // time.
            run.scheduled = run.scheduled.max(Instant::now());
            v.map(Some).map_err(|_| ())
        }
    }
}

/// Completes the headers and URI of a request made as `identity` (or as
/// no one): its credential, then its headers and the scenario's default
/// headers where the step set none of the same name. The one place every
/// request made as an identity goes through: steps, replays and their
/// `verify`, isolation probes and logins.
pub(crate) fn finish(
    run: &StepRun<'_>,
    identity: Option<usize>,
    credential: Option<AuthValue>,
    uri: &mut String,
    headers: &mut http::HeaderMap,
) -> Result<(), String> {
    let j = run.j;
    if let Some(i) = identity {
        for (k, v) in &j.identities[i].headers {
            if !headers.contains_key(k) {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    if !j.default_headers.is_empty() {
        default_headers_into(run, identity, headers)?;
    }
    match credential {
        Some(AuthValue::Header(k, v)) => {
            headers.insert(k, v);
        }
        Some(AuthValue::Query(q)) => {
            uri.push(if uri.contains('?') { '&' } else { '?' });
            uri.push_str(&q);
        }
        None => {}
    }
    Ok(())
}

/// Sends `p`, made as `identity` with `credential`, and records it under
/// `metric` ([`StepRun::send`]); when a login's token is answered 401
/// (and 401 is not `expected`), renews it (counted) and sends `p` once
/// more with the fresh one. Every kind's requests go through here or
/// through its retrying equivalent for replays.
pub(crate) async fn send_as(
    run: &mut StepRun<'_>,
    identity: Option<usize>,
    p: &mut super::exchange::Prepared,
    metric: usize,
    scheduled: Instant,
    expected: &[u16],
) -> (
    Result<crate::engine::http::HttpResponse, crate::engine::http::HttpFailure>,
    Duration,
) {
    let renewable = renewable(run, identity) && !expected.contains(&401);
    let (res, latency) = run
        .send_renewable(p, metric, scheduled, expected, renewable)
        .await;
    if renewable && matches!(&res, Ok(r) if r.status == 401) {
        // Rare: boxed, so the plain request's future stays small.
        return Box::pin(resend(run, identity, p, metric, expected)).await;
    }
    (res, latency)
}

/// [`send_as`] after a 401: a fresh token in place of the one sent, then
/// `p` again; its answer stands, a second 401 included.
async fn resend(
    run: &mut StepRun<'_>,
    identity: Option<usize>,
    p: &mut super::exchange::Prepared,
    metric: usize,
    expected: &[u16],
) -> (
    Result<crate::engine::http::HttpResponse, crate::engine::http::HttpFailure>,
    Duration,
) {
    let old = identity.and_then(|i| run.user.journeys[run.ji].tokens[i].value.take());
    let fresh = match credential(run, identity).await {
        Ok(v) => v,
        Err(()) => {
            return (
                Err(crate::engine::http::HttpFailure {
                    cause: crate::metrics::ErrorCause::Other,
                    message: "the token was answered 401 and renewing it failed".into(),
                }),
                Duration::ZERO,
            );
        }
    };
    if let Some(AuthValue::Query(q)) = &old
        && let Some(rest) = p.uri.strip_suffix(q.as_str())
    {
        p.uri.truncate(rest.len().saturating_sub(1));
    }
    match fresh {
        Some(AuthValue::Header(k, v)) => {
            p.headers.insert(k, v);
        }
        Some(AuthValue::Query(q)) => {
            p.uri.push(if p.uri.contains('?') { '&' } else { '?' });
            p.uri.push_str(&q);
        }
        None => {}
    }
    let scheduled = run.scheduled.max(Instant::now());
    run.send(p, metric, scheduled, expected).await
}

/// The scenario's default headers, rendered as `identity`.
fn default_headers_into(
    run: &StepRun<'_>,
    identity: Option<usize>,
    headers: &mut http::HeaderMap,
) -> Result<(), String> {
    let ctx = run.ctx_as(identity);
    for (k, h) in &run.j.default_headers {
        if headers.contains_key(k) {
            continue;
        }
        let v = match h {
            HeaderTemplate::Fixed(v) => v.clone(),
            HeaderTemplate::Template(t) => {
                let text = t
                    .render(&ctx)
                    .map_err(|u| format!("variable \"{}\" has no value", u.0))?;
                HeaderValue::from_str(&text)
                    .map_err(|_| format!("header {k} has an invalid value"))?
            }
        };
        headers.insert(k.clone(), v);
    }
    Ok(())
}
