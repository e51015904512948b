//! The `token` auth kind: each identity's fixed token or API key (its
//! `token` field, typically `{{ env.ACME_API_KEY }}`), sent in a header
//! (`Authorization: Bearer` unless `header` and `scheme` say otherwise), a
//! query parameter (`query = "api_key"`) or a cookie. Nothing to renew.

use std::ops::Range;

use toml::Spanned;

use super::RawAuth;
use crate::scenario::compile::Compiler;
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::model::{AuthConfig, Credential, TokenPlacement};

/// Keys of `kind = "token"`.
const KEYS: &[&str] = &["header", "scheme", "query", "cookie"];

/// `Authorization: Bearer TOKEN`, how a `token` field is sent without
/// `[auth]`.
pub(super) fn bearer() -> TokenPlacement {
    TokenPlacement::Header {
        name: http::header::AUTHORIZATION,
        scheme: "Bearer".into(),
    }
}

/// Compiles `[auth]` of kind `token`.
pub(super) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    a.only(c, "token", KEYS)?;
    Ok(AuthConfig {
        kind: "token",
        login: None,
        send: super::placement(c, a, "Bearer")?,
        renew_after: std::time::Duration::MAX,
    })
}

/// An identity's token: its `token` field, placed as `[auth]` says.
pub(super) fn credential(
    c: &Compiler<'_>,
    auth: &AuthConfig,
    name: &Spanned<String>,
    at: Range<usize>,
    values: &[(String, String)],
) -> Result<Credential, Diagnostic> {
    let Some((_, token)) = values.iter().find(|(k, _)| k == "token") else {
        return Err(c
            .err(
                at,
                format!(
                    "identity \"{}\" has no `token` field for [auth] kind \"token\"",
                    name.get_ref()
                ),
            )
            .with_hint("add `token = \"{{ env.API_KEY }}\"` to it"));
    };
    super::place(&auth.send, token)
        .map(Credential::Fixed)
        .map_err(|e| c.err(at, e))
}
