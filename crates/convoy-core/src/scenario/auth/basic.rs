//! The `basic` auth kind: HTTP Basic, `Authorization: Basic
//! base64(user:password)`, built once per identity from its fields
//! (`username` and `password` unless `[auth]` names other templates).

use base64::Engine as _;
use toml::Spanned;

use super::RawAuth;
use crate::scenario::compile::Compiler;
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::model::{AuthConfig, AuthValue, Credential, TokenPlacement};

/// Keys of `kind = "basic"`.
const KEYS: &[&str] = &["username", "password"];

/// Compiles `[auth]` of kind `basic`.
pub(super) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    a.only(c, "basic", KEYS)?;
    Ok(AuthConfig {
        kind: "basic",
        login: None,
        send: TokenPlacement::Header {
            name: http::header::AUTHORIZATION,
            scheme: "Basic".into(),
        },
        renew_after: std::time::Duration::MAX,
    })
}

/// An identity's `Authorization: Basic ...` header.
pub(super) fn credential(
    c: &mut Compiler<'_>,
    raw: &RawAuth,
    values: &[(String, String)],
) -> Result<Credential, Diagnostic> {
    let user = field(c, raw.username.as_ref(), "username", values)?;
    let password = field(c, raw.password.as_ref(), "password", values)?;
    let pair = format!("{user}:{password}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
    c.secrets.push(pair);
    c.secrets.push(password);
    let mut v = http::HeaderValue::from_str(&format!("Basic {encoded}"))
        .expect("base64 is a valid header value");
    v.set_sensitive(true);
    Ok(Credential::Fixed(AuthValue::Header(
        http::header::AUTHORIZATION,
        v,
    )))
}

/// A template of `[auth]` (or `{{ name }}` by default) rendered with an
/// identity's fields.
pub(super) fn field(
    c: &Compiler<'_>,
    raw: Option<&Spanned<String>>,
    name: &str,
    values: &[(String, String)],
) -> Result<String, Diagnostic> {
    match raw {
        Some(t) => {
            let tpl = c.template_at(t.get_ref(), t.span(), values)?;
            tpl.as_literal().map(str::to_string).ok_or_else(|| {
                c.err(
                    t.span(),
                    format!("`{name}` may only use identity fields and env"),
                )
            })
        }
        None => values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                c.err(0..0, format!("an identity has no `{name}` field"))
                    .with_hint(format!(
                        "give every identity `{name} = \"...\"`, or set `{name}` in [auth]"
                    ))
            }),
    }
}
