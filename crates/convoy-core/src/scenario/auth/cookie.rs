//! The `cookie` auth kind: a login whose answer sets a session cookie
//! (`cookie = "sid"`), sent back as that cookie on every request made as
//! the identity. The login itself is [`super::login`]'s.

use super::RawAuth;
use crate::scenario::compile::Compiler;
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::model::{AuthConfig, TokenPlacement, TokenSource};

/// Keys of `kind = "cookie"`.
const KEYS: &[&str] = &["path", "method", "body", "cookie", "renew_after"];

/// Compiles `[auth]` of kind `cookie`.
pub(super) fn compile(c: &Compiler<'_>, a: &RawAuth) -> Result<AuthConfig, Diagnostic> {
    a.only(c, "cookie", KEYS)?;
    let Some(raw) = &a.cookie else {
        return Err(c
            .err(
                a.kind.as_ref().map_or(0..0, |k| k.span()),
                "missing key \"cookie\" in [auth]",
            )
            .with_hint("name the session cookie the login sets: `cookie = \"sid\"`"));
    };
    let name = super::cookie_name(c, raw)?;
    Ok(AuthConfig {
        kind: "cookie",
        login: Some(super::login::login_config(
            c,
            a,
            TokenSource::Cookie(name.clone()),
            "application/json",
        )?),
        send: TokenPlacement::Cookie(name),
        renew_after: super::renew_after(c, a)?,
    })
}
