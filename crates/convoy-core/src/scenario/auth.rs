//! Identities and their tokens: the `[auth]` login and `[identities]`
//! tables compiled, fixed tokens prebuilt, and while running the header a
//! step's identity sends, logging it in (under the shared
//! [`LOGIN_METRIC`]) when it has no token yet or its token is due for
//! renewal. A 401 answer drops the token (`steps/request.rs`), so the next
//! step logs in again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::check::LazyJson;
use super::compile::Compiler;
use super::diagnostic::Diagnostic;
use super::exchange::Prepared;
use super::model::{AuthConfig, Credential, Identity, JsonTemplate};
use super::source::SpannedValue;
use super::step_run::StepRun;

/// The metric of every login request, whichever journey needs it.
pub const LOGIN_METRIC: &str = "auth login";

/// The `[auth]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    path: Spanned<String>,
    method: Option<Spanned<String>>,
    body: Spanned<SpannedValue>,
    token: Spanned<String>,
    header: Option<Spanned<String>>,
    scheme: Option<String>,
    renew_after: Option<Spanned<String>>,
}

/// Compiles the `[auth]` table.
pub(crate) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    let method = match &a.method {
        Some(m) => c.method(m)?,
        None => http::Method::POST,
    };
    if !a.token.get_ref().starts_with('/') {
        return Err(c.err(
            a.token.span(),
            "token must be a JSON pointer such as \"/token\"",
        ));
    }
    super::json_pick::check_pointer_depth(a.token.get_ref())
        .map_err(|e| c.err(a.token.span(), e))?;
    let header = match &a.header {
        Some(h) => h
            .get_ref()
            .parse()
            .map_err(|_| c.err(h.span(), format!("invalid header name {:?}", h.get_ref())))?,
        None => http::header::AUTHORIZATION,
    };
    Ok(AuthConfig {
        method,
        path: a.path.get_ref().clone(),
        token_pointer: a.token.get_ref().clone(),
        header,
        scheme: a.scheme.clone().unwrap_or_else(|| "Bearer".into()),
        renew_after: match &a.renew_after {
            Some(d) => c.duration(d)?,
            None => Duration::from_secs(50 * 60),
        },
    })
}

/// Compiles identity `name`: its fixed token, or the login body its
/// fields fill in. Secret fields join the scenario's secrets.
pub(crate) fn identity(
    c: &mut Compiler<'_>,
    name: &Spanned<String>,
    fields: &Spanned<BTreeMap<String, Spanned<String>>>,
    raw_auth: Option<&RawAuth>,
    has_auth: bool,
) -> Result<Identity, Diagnostic> {
    // Identity fields may use env; they are rendered once.
    let mut values: Vec<(String, String)> = Vec::new();
    let mut secret = Vec::new();
    for (k, v) in fields.get_ref() {
        let t = c.template(v)?;
        let text = t.as_literal().map(str::to_string).ok_or_else(|| {
            c.err(
                v.span(),
                "identity fields may use {{ env.NAME }} but no per-request placeholder",
            )
        })?;
        if matches!(k.as_str(), "password" | "token" | "secret")
            || crate::redact::is_sensitive_name(k)
        {
            c.secrets.push(text.clone());
            secret.push(k.clone());
        }
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
    if let Some((_, token)) = values.iter().find(|(k, _)| k == "token") {
        return Ok(Identity {
            name: name.get_ref().clone(),
            credential: Credential::Token(token.clone()),
        });
    }
    let Some(raw_auth) = raw_auth.filter(|_| has_auth) else {
        return Err(c.err(fields.span(), format!("identity \"{}\" has no token and the scenario has no [auth] login", name.get_ref()))
            .with_hint("give it `token = \"{{ env.API_TOKEN }}\"`, or add an [auth] table describing the login request"));
    };
    let body = match c.json_template(&raw_auth.body, &values)? {
        JsonTemplate::Fixed(v) => v,
        _ => {
            return Err(c.err(
                raw_auth.body.span(),
                "the login body may only use identity fields and env",
            ));
        }
    };
    Ok(Identity {
        name: name.get_ref().clone(),
        credential: Credential::Login(bytes::Bytes::from(
            serde_json::to_vec(&body).expect("JSON values serialise"),
        )),
    })
}

/// The header values of fixed-token identities, prebuilt; `None` for those
/// that log in (and tokens that are no valid header value).
pub(crate) fn fixed_tokens(
    identities: &[Identity],
    auth: Option<&AuthConfig>,
) -> Vec<Option<HeaderValue>> {
    identities
        .iter()
        .map(|i| match &i.credential {
            Credential::Token(t) => {
                let scheme = auth.map_or("Bearer", |a| a.scheme.as_str());
                let text = if scheme.is_empty() {
                    t.clone()
                } else {
                    format!("{scheme} {t}")
                };
                HeaderValue::from_str(&text).ok().map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
            }
            Credential::Login(_) => None,
        })
        .collect()
}

/// Whether any identity of `identities` logs in.
pub(crate) fn logs_in(identities: &[Identity]) -> bool {
    identities
        .iter()
        .any(|i| matches!(i.credential, Credential::Login(_)))
}

/// The auth header of `identity`, if the step acts as one; `Err` when its
/// login failed (the login recorded why).
pub(crate) async fn identity_header(
    run: &mut StepRun<'_>,
    identity: Option<usize>,
) -> Result<Option<(http::HeaderName, HeaderValue)>, ()> {
    match identity {
        Some(i) => auth_header(run, i).await.map_err(|_| ()),
        None => Ok(None),
    }
}

/// The auth header of `identity`, logging in when needed.
pub(crate) async fn auth_header(
    run: &mut StepRun<'_>,
    identity: usize,
) -> Result<Option<(http::HeaderName, HeaderValue)>, String> {
    let j = run.j;
    let id = &j.identities[identity];
    let header = j
        .auth
        .as_ref()
        .map_or(http::header::AUTHORIZATION, |a| a.header.clone());
    match &id.credential {
        Credential::Token(_) => Ok(j.fixed_tokens[identity].clone().map(|v| (header, v))),
        Credential::Login(body) => {
            let auth = j.auth.as_ref().expect("login identities have [auth]");
            if let Some((v, at)) = &run.user.journeys[run.ji].tokens[identity]
                && at.elapsed() < auth.renew_after
            {
                return Ok(Some((header, v.clone())));
            }
            // Boxed: logging in is rare and its future is large; every
            // step awaits this one.
            let v = Box::pin(login(run, identity, auth, body)).await;
            // A login is its own request with its own metric: the step's
            // latency starts after it, not at the iteration's scheduled
            // time.
            run.scheduled = run.scheduled.max(Instant::now());
            Ok(Some((header, v?)))
        }
    }
}

/// Logs `identity` in with `body`, keeps its token and returns the auth
/// header's value.
async fn login(
    run: &mut StepRun<'_>,
    identity: usize,
    auth: &AuthConfig,
    body: &Bytes,
) -> Result<HeaderValue, String> {
    let j = run.j;
    let name = &j.identities[identity].name;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let uri = match j.target.join(&auth.path) {
        Ok(uri) => uri,
        Err(e) => {
            let why = format!("login as \"{name}\": {e}");
            run.it.recorder.check(j.login_checks[identity], false);
            run.sample("login", why.clone(), String::new(), String::new());
            return Err(why);
        }
    };
    let prepared = Prepared {
        method: auth.method.clone(),
        uri,
        headers,
        body: body.clone(),
    };
    let (res, _) = run
        .send(&prepared, run.shared.login_metric, Instant::now(), &[])
        .await;
    let token = match &res {
        Ok(r) if (200..300).contains(&r.status) => LazyJson::new(&r.body, &j.token_json)
            .get()
            .and_then(|v| v.pointer(&auth.token_pointer))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    run.it
        .recorder
        .check(j.login_checks[identity], token.is_some());
    let Some(token) = token else {
        let why = match &res {
            Ok(r) => format!(
                "login as \"{name}\" answered {} without a token at {}",
                r.status, auth.token_pointer
            ),
            Err(f) => format!("login as \"{name}\" failed: {f}"),
        };
        run.sample_exchange("login", why.clone(), &prepared, &res);
        return Err(why);
    };
    // The target may echo the token anywhere from now on.
    run.shared.secrets.learn(&token);
    let text = if auth.scheme.is_empty() {
        token
    } else {
        format!("{} {token}", auth.scheme)
    };
    run.shared.secrets.learn(&text);
    let mut v = HeaderValue::from_str(&text)
        .map_err(|_| "the login token is not a valid header value".to_string())?;
    v.set_sensitive(true);
    run.user.journeys[run.ji].tokens[identity] = Some((v.clone(), Instant::now()));
    Ok(v)
}
