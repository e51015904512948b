//! The `auth_probe` kind: the step's request (its method, path, query,
//! headers and body, made as its identity or as nobody) sent with
//! credentials that must be refused: no token, an expired token, a token
//! signed by another key, a token under `alg: none`, a garbled token. The
//! JWTs are forged from the identity's real token (`scenario/jwt.rs`): same
//! claims, one thing wrong.
//!
//! Each probe is a metric of its own with one check, "refused (401)".
//! An answer with a refusal status passes; an accepted one (2xx) is an
//! auth violation; anything else (a 400, a 5xx, no answer) is an error
//! with its cause in the failure sample, never a violation. A probe that
//! cannot apply (the real token is not a JWT, the `key` given does not sign
//! it) is not sent, says why in a sample, and its check stays unevaluated.
//!
//! The probes go through the common path of requests made as an identity
//! (`request::prepare`), with the forged credential in place of the real
//! one, so whatever else that path adds for the identity reaches them.

use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::request::{self, Request};
use crate::engine::StepKind;
use crate::engine::http::{HttpFailure, HttpResponse};
use crate::metrics::Violation;
use crate::scenario::auth;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::exchange::join_codes;
use crate::scenario::jwt::{self, Jwt};
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::model::{AuthValue, TokenPlacement};
use crate::scenario::step_run::StepRun;

/// The `[step.auth_probe]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthProbe {
    probes: Option<Spanned<Vec<Spanned<String>>>>,
    refused: Option<Spanned<toml::Value>>,
    key: Option<Spanned<String>>,
    expired_token: Option<Spanned<String>>,
}

/// What one probe sends in place of the identity's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProbe {
    /// No credential at all.
    NoToken,
    /// The real token's claims, expired, signed with `key` (or the
    /// scenario's `expired_token` as it is).
    Expired,
    /// The real token signed by another key.
    ForeignKey,
    /// The real token's claims under `alg: none`, unsigned.
    AlgNone,
    /// Text that is no token at all.
    Garbled,
}

impl TokenProbe {
    const ALL: [TokenProbe; 5] = [
        TokenProbe::NoToken,
        TokenProbe::Expired,
        TokenProbe::ForeignKey,
        TokenProbe::AlgNone,
        TokenProbe::Garbled,
    ];

    /// The name written in `probes`.
    pub fn key(self) -> &'static str {
        match self {
            TokenProbe::NoToken => "no-token",
            TokenProbe::Expired => "expired",
            TokenProbe::ForeignKey => "foreign-key",
            TokenProbe::AlgNone => "alg-none",
            TokenProbe::Garbled => "garbled",
        }
    }

    /// How its metric is named.
    pub fn label(self) -> &'static str {
        match self {
            TokenProbe::NoToken => "no token",
            TokenProbe::Expired => "expired token",
            TokenProbe::ForeignKey => "token signed by another key",
            TokenProbe::AlgNone => "alg none token",
            TokenProbe::Garbled => "garbled token",
        }
    }

    /// Whether it forges the identity's own token.
    fn forges(self) -> bool {
        matches!(
            self,
            TokenProbe::Expired | TokenProbe::ForeignKey | TokenProbe::AlgNone
        )
    }
}

/// An auth probe.
#[derive(Debug, Clone)]
pub struct AuthProbe {
    /// The route sent, its `status` the refusal statuses.
    pub request: Request,
    /// What each probe sends, in order.
    pub probes: Vec<TokenProbe>,
    /// Statuses that count as refused.
    pub refused: Vec<u16>,
    /// The HMAC secret that signs the API's tokens, for the expired probe.
    pub key: Option<String>,
    /// An expired token to send as it is.
    pub expired_token: Option<String>,
    /// Whether the step acts as an identity.
    pub as_identity: bool,
}

/// The statuses that count as refused when the scenario names none.
pub const DEFAULT_REFUSED: [u16; 1] = [401];

impl<S: StepTable> Compile<S> for AuthProbe {
    type Table = RawAuthProbe;

    const WHAT: &'static str = "an auth probe step";
    const STEP_KEYS: &'static [&'static str] = &[
        "as", "method", "path", "query", "headers", "let", "json", "body",
    ];

    fn unused_hint(key: &str) -> Option<String> {
        Some(
            match key {
                "status" => "the statuses that count as refused are `refused` in [step.auth_probe]",
                "checks" | "capture" => "a probe's answer is judged by `refused` alone",
                _ => return None,
            }
            .to_string(),
        )
    }

    fn compile(
        c: &Compiler<'_>,
        step: &Spanned<S>,
        table: &Spanned<RawAuthProbe>,
    ) -> Result<Self, Diagnostic> {
        let raw = table.get_ref();
        let as_identity = step.get_ref().present().iter().any(|(k, _)| *k == "as");
        let literal = |s: &Spanned<String>| -> Result<String, Diagnostic> {
            let t = c.template(s)?;
            t.as_literal().map(str::to_string).ok_or_else(|| {
                c.err(
                    s.span(),
                    "it may use {{ env.NAME }} but no per-request placeholder",
                )
            })
        };
        let key = raw.key.as_ref().map(literal).transpose()?;
        let expired_token = raw.expired_token.as_ref().map(literal).transpose()?;
        let probes = match &raw.probes {
            None => TokenProbe::ALL
                .into_iter()
                .filter(|p| match p {
                    TokenProbe::Expired => {
                        as_identity && (key.is_some() || expired_token.is_some())
                    }
                    p => as_identity || !p.forges(),
                })
                .collect(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(c.err(
                        list.span(),
                        "an auth probe needs at least one probe, such as probes = [\"no-token\"]",
                    ));
                }
                let mut out = Vec::new();
                for p in list.get_ref() {
                    let name = p.get_ref().as_str();
                    let Some(probe) = TokenProbe::ALL.into_iter().find(|t| t.key() == name) else {
                        let names = TokenProbe::ALL.map(TokenProbe::key);
                        let d = c.err(p.span(), format!("unknown probe \"{name}\""));
                        return Err(match did_you_mean(name, names) {
                            Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                            None => d.with_hint(format!("use {}", names.join(", "))),
                        });
                    };
                    if out.contains(&probe) {
                        return Err(c.err(p.span(), format!("probe \"{name}\" is listed twice")));
                    }
                    if probe.forges() && !as_identity {
                        return Err(c
                            .err(
                                p.span(),
                                format!("the {name} probe forges the identity's own token, and the step has no `as`"),
                            )
                            .with_hint("add `as = \"IDENTITY\"` to the step, whose login gives the token"));
                    }
                    if probe == TokenProbe::Expired && key.is_none() && expired_token.is_none() {
                        return Err(c
                            .err(p.span(), "the expired probe needs `key` or `expired_token`")
                            .with_hint("an expired token must carry a valid signature, or the target refuses it for that alone: give `key = \"{{ env.JWT_SECRET }}\"` (the HMAC secret of a test environment) or `expired_token`"));
                    }
                    out.push(probe);
                }
                out
            }
        };
        let refused = match &raw.refused {
            Some(s) => c.statuses(s)?,
            None => DEFAULT_REFUSED.to_vec(),
        };
        if let Some(s) = &raw.refused
            && let Some(ok) = refused.iter().find(|s| (200..300).contains(*s))
        {
            return Err(c
                .err(s.span(), format!("{ok} is an acceptance, not a refusal"))
                .with_hint(
                    "list the statuses this API refuses bad credentials with, such as [401]",
                ));
        }
        let mut request = request::compile(c, step.span(), &step.get_ref().keys())?;
        request.status = refused.clone();
        Ok(AuthProbe {
            request,
            probes,
            refused,
            key,
            expired_token,
            as_identity,
        })
    }

    fn default_name(&self, step: &S) -> String {
        format!("auth probe {}", self.request.default_name(step))
    }
}

/// The metric name of one probe.
pub fn probe_name(step: &str, probe: TokenProbe) -> String {
    format!("{step} · {}", probe.label())
}

/// Metric and check ids of an auth probe step: one metric per probe.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthProbeIds {
    /// Each probe's metric.
    pub metrics: Vec<usize>,
    /// Each probe's "refused" check.
    pub refused: Vec<usize>,
}

impl Kind for AuthProbe {
    type Ids = AuthProbeIds;

    fn metric_names(&self, step: &str, out: &mut Vec<String>) {
        for p in &self.probes {
            out.push(probe_name(step, *p));
        }
    }

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<AuthProbeIds, String> {
        let mut id = AuthProbeIds::default();
        for p in &self.probes {
            let name = r.qualify(&probe_name(step, *p));
            id.metrics.push(r.step(name.clone(), StepKind::Request));
            id.refused
                .push(r.check(&name, format!("refused ({})", join_codes(&self.refused))));
        }
        Ok(id)
    }

    fn max_requests(&self) -> Option<u64> {
        Some(self.probes.len() as u64)
    }

    fn max_logins(&self) -> u64 {
        u64::from(self.as_identity)
    }

    fn secrets(&self) -> Vec<String> {
        self.key
            .iter()
            .chain(&self.expired_token)
            .cloned()
            .collect()
    }

    async fn execute(&self, ids: &AuthProbeIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: several probes make a large future, which every plain
        // request step would otherwise carry and move.
        Box::pin(probe(self, ids, run)).await
    }
}

/// How a probe was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// With a refusal status.
    Refused,
    /// Served (2xx): an auth violation.
    Accepted(String),
    /// Neither: an error, with its cause.
    Inconclusive(String),
}

fn classify(res: &Result<HttpResponse, HttpFailure>, refused: &[u16]) -> Answer {
    let codes = join_codes(refused);
    match res {
        Ok(r) if refused.contains(&r.status) => Answer::Refused,
        Ok(r) if (200..300).contains(&r.status) => Answer::Accepted(format!(
            "accepted: answered {} instead of {codes}",
            r.status
        )),
        Ok(r) => Answer::Inconclusive(format!(
            "error, not a violation: answered {}, neither a refusal ({codes}) nor an acceptance (2xx); \
             if this API refuses with {}, add it to `refused`",
            r.status, r.status
        )),
        Err(f) => Answer::Inconclusive(format!("error, not a violation: no answer ({f})")),
    }
}

/// The credential probe `p` sends (`None`: none at all), or why it cannot
/// be sent.
fn credential(
    ap: &AuthProbe,
    p: TokenProbe,
    real: Option<&Result<Jwt, jwt::JwtError>>,
) -> Result<Option<String>, String> {
    let jwt = || match real {
        Some(Ok(j)) => Ok(j),
        Some(Err(e)) => Err(format!(
            "the identity's token: {e}; only no-token and garbled apply"
        )),
        None => Err("the identity has no token".to_string()),
    };
    Ok(Some(match p {
        TokenProbe::NoToken => return Ok(None),
        TokenProbe::Garbled => jwt::garbled(),
        TokenProbe::ForeignKey => jwt()?.foreign_key(),
        TokenProbe::AlgNone => jwt()?.alg_none(),
        TokenProbe::Expired => match (&ap.expired_token, &ap.key) {
            (Some(t), _) => t.clone(),
            (None, Some(key)) => {
                let j = jwt()?;
                // A key that did not sign the real token would make an
                // expired token the target refuses for its signature
                // alone: that proves nothing about expiry.
                if !j.signed_by(key.as_bytes()) {
                    return Err(match j.expired(key.as_bytes()) {
                        Err(e) => e.to_string(),
                        Ok(_) => "`key` did not sign the identity's token, so an expired token signed with it would be refused for its signature alone".to_string(),
                    });
                }
                j.expired(key.as_bytes()).map_err(|e| e.to_string())?
            }
            (None, None) => return Err("no `key` or `expired_token`".into()),
        },
    }))
}

/// Runs every probe of `ap`.
async fn probe(ap: &AuthProbe, ids: &AuthProbeIds, run: &mut StepRun<'_>) -> bool {
    let identity = run.identity;
    let Ok(real) = auth::credential(run, identity).await else {
        for id in &ids.refused {
            run.it.recorder.check(*id, false);
        }
        return false;
    };
    // Forged tokens go where the real one goes: the `[auth]` placement, or
    // a bearer token for identities with a fixed `token` and no `[auth]`.
    let placement = match &run.j.auth {
        Some(a) => a.send.clone(),
        None => TokenPlacement::Header {
            name: http::header::AUTHORIZATION,
            scheme: "Bearer".to_string(),
        },
    };
    let token = real.as_ref().and_then(|v| token_text(v, &placement));
    let parsed = token.as_deref().map(Jwt::parse);
    let mut ok = true;
    for (i, p) in ap.probes.iter().enumerate() {
        let label = format!("auth probe: {}", p.label());
        let sent = match credential(ap, *p, parsed.as_ref()) {
            Ok(c) => c,
            Err(why) => {
                run.sample(
                    &label,
                    format!("not sent: {why}"),
                    String::new(),
                    String::new(),
                );
                continue;
            }
        };
        let auth = match sent {
            None => None,
            Some(t) => match auth::place(&placement, &t) {
                Ok(v) => Some(v),
                Err(_) => {
                    run.sample(
                        &label,
                        "not sent: the forged token is not a valid header value".into(),
                        String::new(),
                        String::new(),
                    );
                    continue;
                }
            },
        };
        let prepared = match request::prepare(run, &ap.request, auth) {
            Ok(p) => p,
            Err(e) => {
                ok = false;
                run.it.recorder.check(ids.refused[i], false);
                run.sample(&label, e, String::new(), String::new());
                continue;
            }
        };
        let (res, _) = run
            .send(&prepared, ids.metrics[i], Instant::now(), &ap.refused)
            .await;
        let answer = classify(&res, &ap.refused);
        run.it
            .recorder
            .check(ids.refused[i], answer == Answer::Refused);
        match answer {
            Answer::Refused => {}
            Answer::Accepted(why) => {
                ok = false;
                let kind = Violation::AuthViolations;
                run.it.recorder.violation(kind, 1);
                run.sample_violation(kind, &label, why, &prepared, &res);
            }
            Answer::Inconclusive(why) => {
                ok = false;
                run.sample_exchange(&label, why, &prepared, &res);
            }
        }
    }
    ok
}

/// The token inside `value`, the credential as `placement` sends it.
fn token_text(value: &AuthValue, placement: &TokenPlacement) -> Option<String> {
    match (value, placement) {
        (AuthValue::Header(_, v), TokenPlacement::Header { scheme, .. }) => {
            let text = v.to_str().ok()?;
            Some(match text.strip_prefix(scheme.as_str()) {
                Some(rest) if !scheme.is_empty() => rest.trim_start().to_string(),
                _ => text.to_string(),
            })
        }
        (AuthValue::Header(_, v), TokenPlacement::Cookie(name)) => v
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| k == name)
            .map(|(_, t)| t.to_string()),
        (AuthValue::Query(q), TokenPlacement::Query(_)) => {
            url::form_urlencoded::parse(q.as_bytes())
                .next()
                .map(|(_, t)| t.into_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn answer(status: u16) -> Result<HttpResponse, HttpFailure> {
        Ok(HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        })
    }

    #[test]
    fn only_an_accepted_probe_is_an_auth_violation() {
        assert_eq!(classify(&answer(401), &DEFAULT_REFUSED), Answer::Refused);
        assert!(matches!(
            classify(&answer(200), &DEFAULT_REFUSED),
            Answer::Accepted(_)
        ));
        assert!(matches!(
            classify(&answer(204), &DEFAULT_REFUSED),
            Answer::Accepted(_)
        ));
        for s in [302, 400, 403, 500] {
            assert!(
                matches!(
                    classify(&answer(s), &DEFAULT_REFUSED),
                    Answer::Inconclusive(_)
                ),
                "{s}"
            );
        }
        assert_eq!(classify(&answer(403), &[401, 403]), Answer::Refused);
    }
}
