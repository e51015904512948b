//! The `oauth2` auth kind: the client credentials grant. Each identity
//! posts `grant_type=client_credentials` with its client id and secret
//! (and `scope`) to `token_url` and sends the `access_token` it answers as
//! a bearer token, renewed before its `expires_in` runs out. The request
//! is [`super::login`]'s, with a form body.

use super::RawAuth;
use crate::scenario::compile::Compiler;
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::model::{AuthConfig, Credential, TokenSource};

/// Keys of `kind = "oauth2"`.
const KEYS: &[&str] = &[
    "token_url",
    "client_id",
    "client_secret",
    "scope",
    "header",
    "scheme",
    "renew_after",
];

/// Compiles `[auth]` of kind `oauth2`.
pub(super) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    a.only(c, "oauth2", KEYS)?;
    if a.token_url.is_none() {
        return Err(c
            .err(
                a.kind.as_ref().map_or(0..0, |k| k.span()),
                "missing key \"token_url\" in [auth]",
            )
            .with_hint("add `token_url = \"/oauth/token\"`, relative to the base URL"));
    }
    Ok(AuthConfig {
        kind: "oauth2",
        login: Some(crate::scenario::model::LoginConfig {
            method: http::Method::POST,
            content_type: http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            token: TokenSource::Json("/access_token".into()),
            expires_in: Some("/expires_in".into()),
        }),
        send: super::placement(c, a, "Bearer")?,
        renew_after: super::renew_after(c, a)?,
    })
}

/// An identity's token request: its client id and secret, form-encoded.
pub(super) fn credential(
    c: &mut Compiler<'_>,
    raw: &RawAuth,
    values: &[(String, String)],
) -> Result<Credential, Diagnostic> {
    let url = raw
        .token_url
        .as_ref()
        .expect("checked when [auth] compiled");
    let path = super::login::literal_path(c, url, values)?;
    let id = super::basic::field(c, raw.client_id.as_ref(), "client_id", values)?;
    let secret = super::basic::field(c, raw.client_secret.as_ref(), "client_secret", values)?;
    c.secrets.push(secret.clone());
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    form.append_pair("client_id", &id);
    form.append_pair("client_secret", &secret);
    if let Some(s) = &raw.scope {
        let scope = super::basic::field(c, Some(s), "scope", values)?;
        form.append_pair("scope", &scope);
    }
    let body = form.finish();
    Ok(Credential::Login {
        path,
        body: bytes::Bytes::from(body),
    })
}
