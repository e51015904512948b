//! The `isolation` kind: another tenant's identity tries a resource's
//! routes (`GET`, `PATCH /status`, ...). Each probe is a metric of its own
//! with two checks: it is refused, and its answer reveals none of the
//! markers (values only the owner may see). A probe that is served, or
//! that reveals a marker, is a tenant-isolation violation.

use std::time::Instant;

use bytes::Bytes;
use http::HeaderValue;
use serde::Deserialize;
use toml::Spanned;

use crate::engine::StepKind;
use crate::engine::http::{HttpFailure, HttpResponse};
use crate::metrics::Violation;
use crate::scenario::auth;
use crate::scenario::compile::{Compiler, METHODS, StepTable};
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::exchange::{Prepared, join_codes};
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::model::JsonTemplate;
use crate::scenario::render::write_json;
use crate::scenario::source::SpannedValue;
use crate::scenario::step_run::StepRun;
use crate::scenario::template::Template;

/// The `[step.isolation]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIsolation {
    #[serde(rename = "as")]
    identity: Spanned<String>,
    resource: Spanned<String>,
    routes: Spanned<Vec<Spanned<String>>>,
    expect: Option<Spanned<toml::Value>>,
    #[serde(default)]
    markers: Vec<Spanned<String>>,
    body: Option<Spanned<SpannedValue>>,
}

/// A tenant-isolation probe.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The other tenant's identity.
    pub identity: usize,
    /// The resource's path.
    pub resource: Template,
    /// Routes tried: method and a suffix to the resource path.
    pub probes: Vec<(http::Method, String)>,
    /// Statuses that count as refused.
    pub expect: Vec<u16>,
    /// Values that must not appear in any answer.
    pub markers: Vec<Template>,
    /// Body sent with PATCH, PUT and POST probes.
    pub body: Option<JsonTemplate>,
}

impl<S: StepTable> Compile<S> for Isolation {
    type Table = RawIsolation;

    fn compile(
        c: &Compiler<'_>,
        step: &Spanned<S>,
        table: &Spanned<RawIsolation>,
    ) -> Result<Self, Diagnostic> {
        let keys = step.get_ref().keys();
        if keys.method.is_some() || keys.path.is_some() {
            return Err(c
                .err(
                    table.span(),
                    "an isolation step has no method or path of its own",
                )
                .with_hint("describe the probed resource with `resource` and `routes`"));
        }
        let raw = table.get_ref();
        let identity = c.identity_index(&raw.identity)?;
        if raw.routes.get_ref().is_empty() {
            return Err(c.err(
                raw.routes.span(),
                "an isolation probe needs at least one route, such as routes = [\"GET\"]",
            ));
        }
        let mut probes = Vec::new();
        for r in raw.routes.get_ref() {
            let (m, suffix) = match r.get_ref().trim().split_once(' ') {
                Some((m, s)) => (m, s.trim()),
                None => (r.get_ref().trim(), ""),
            };
            if !(suffix.is_empty() || suffix.starts_with('/')) {
                return Err(c.err(
                    r.span(),
                    format!(
                        "invalid route {:?}: expected METHOD or METHOD /suffix",
                        r.get_ref()
                    ),
                ));
            }
            let up = m.to_ascii_uppercase();
            if !METHODS.contains(&up.as_str()) {
                return Err(c
                    .err(
                        r.span(),
                        format!("invalid method {m:?} in route {:?}", r.get_ref()),
                    )
                    .with_hint(format!("use one of {}", METHODS.join(", "))));
            }
            let method: http::Method = up.parse().expect("standard methods parse");
            probes.push((method, suffix.to_string()));
        }
        Ok(Isolation {
            identity,
            resource: c.template(&raw.resource)?,
            probes,
            expect: match &raw.expect {
                Some(s) => c.statuses(s)?,
                None => vec![403, 404],
            },
            markers: raw
                .markers
                .iter()
                .map(|m| c.template(m))
                .collect::<Result<_, _>>()?,
            body: raw
                .body
                .as_ref()
                .map(|b| c.json_template(b, &[]))
                .transpose()?,
        })
    }

    fn default_name(&self, _step: &S) -> String {
        "tenant isolation".to_string()
    }
}

/// The metric name of one isolation probe.
pub fn probe_name(step: &str, method: &http::Method, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("{step} · {method}")
    } else {
        // A route written with a query keeps no sensitive value in a name.
        format!(
            "{step} · {method} {}",
            crate::redact::path_for_name(suffix)
        )
    }
}

/// Metric and check ids of an isolation step: one metric per probe.
#[derive(Debug, Clone, Default)]
pub(crate) struct IsolationIds {
    /// Each probe's metric.
    pub metrics: Vec<usize>,
    /// Each probe's "refused" check.
    pub refused: Vec<usize>,
    /// Each probe's "reveals no marker" check.
    pub hidden: Vec<usize>,
}

impl Kind for Isolation {
    type Ids = IsolationIds;

    fn metric_names(&self, step: &str, out: &mut Vec<String>) {
        for (m, suffix) in &self.probes {
            out.push(probe_name(step, m, suffix));
        }
    }

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<IsolationIds, String> {
        let mut id = IsolationIds::default();
        for (m, suffix) in &self.probes {
            let pname = r.qualify(&probe_name(step, m, suffix));
            id.metrics.push(r.step(pname.clone(), StepKind::Request));
            id.refused
                .push(r.check(&pname, format!("refused ({})", join_codes(&self.expect))));
            id.hidden.push(r.check(&pname, "reveals no marker".into()));
        }
        Ok(id)
    }

    fn max_requests(&self) -> Option<u64> {
        Some(self.probes.len() as u64)
    }

    async fn execute(&self, ids: &IsolationIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: one probe after another makes a large future, which every
        // plain request step would otherwise carry and move.
        Box::pin(probe(self, ids, run)).await
    }
}

/// Runs every probe of `iso`.
async fn probe(iso: &Isolation, ids: &IsolationIds, run: &mut StepRun<'_>) -> bool {
    // The probes are made as the prober: its variables, its headers (its
    // own tenant header) and its token.
    run.identity = Some(iso.identity);
    let Ok(auth) = auth::credential(run, run.identity).await else {
        for id in &ids.refused {
            run.it.recorder.check(*id, false);
        }
        return false;
    };
    let ctx = run.ctx();
    let (resource, markers) = match (
        iso.resource.render(&ctx),
        iso.markers
            .iter()
            .map(|m| m.render(&ctx))
            .collect::<Result<Vec<_>, _>>(),
    ) {
        (Ok(r), Ok(m)) => (r, m),
        (Err(u), _) | (_, Err(u)) => {
            for id in &ids.refused {
                run.it.recorder.check(*id, false);
            }
            run.sample(
                "tenant isolation",
                format!("variable \"{}\" has no value", u.0),
                String::new(),
                String::new(),
            );
            return false;
        }
    };
    // Rendered once for every probe; `{}` when there is none or a
    // variable in it has no value.
    let body = iso
        .body
        .as_ref()
        .and_then(|b| {
            let mut out = Vec::new();
            write_json(b, &ctx, &mut out)
                .ok()
                .map(|()| Bytes::from(out))
        })
        .unwrap_or_else(|| Bytes::from_static(b"{}"));
    let mut ok = true;
    for (i, (method, suffix)) in iso.probes.iter().enumerate() {
        let mut headers = http::HeaderMap::new();
        let mut uri = match run.j.target.join(&format!("{resource}{suffix}")) {
            Ok(uri) => uri,
            Err(e) => {
                run.it.recorder.check(ids.refused[i], false);
                run.sample("tenant isolation", e.to_string(), String::new(), String::new());
                ok = false;
                continue;
            }
        };
        if let Err(e) = auth::finish(run, run.identity, auth.clone(), &mut uri, &mut headers) {
            run.it.recorder.check(ids.refused[i], false);
            run.sample("tenant isolation", e, String::new(), String::new());
            ok = false;
            continue;
        }
        let with_body = matches!(
            *method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        );
        let payload = if with_body {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            body.clone()
        } else {
            Bytes::new()
        };
        let mut p = Prepared {
            method: method.clone(),
            uri,
            headers,
            body: payload,
        };
        let (res, _) = auth::send_as(
            run,
            run.identity,
            &mut p,
            ids.metrics[i],
            Instant::now(),
            &iso.expect,
        )
        .await;
        let (refused, hidden, why) = match &res {
            Ok(resp) => {
                let refused = iso.expect.contains(&resp.status);
                let text = String::from_utf8_lossy(&resp.body);
                let leaked: Vec<&String> = markers
                    .iter()
                    .filter(|m| !m.is_empty())
                    .filter(|m| {
                        text.contains(m.as_str())
                            || resp
                                .headers
                                .values()
                                .any(|v| v.to_str().is_ok_and(|s| s.contains(m.as_str())))
                    })
                    .collect();
                let mut why = Vec::new();
                if !refused {
                    why.push(format!(
                        "answered {} instead of {}",
                        resp.status,
                        join_codes(&iso.expect)
                    ));
                }
                if !leaked.is_empty() {
                    why.push(format!("revealed {} marker(s)", leaked.len()));
                }
                (refused, leaked.is_empty(), why.join("; "))
            }
            Err(f) => (false, true, format!("probe failed: {f}")),
        };
        run.it.recorder.check(ids.refused[i], refused);
        run.it.recorder.check(ids.hidden[i], hidden);
        if !(refused && hidden) {
            ok = false;
            if discloses(&res, hidden) {
                run.it
                    .recorder
                    .violation(Violation::TenantIsolationViolations, 1);
            }
            let label = format!(
                "tenant isolation {method}{}{suffix}",
                if suffix.is_empty() { "" } else { " " }
            );
            run.sample_exchange(&label, why, &p, &res);
        }
    }
    ok
}

/// Whether a cross-tenant probe's answer is a tenant-isolation violation:
/// the target accepted it (2xx/3xx: it served, changed or deleted the other
/// tenant's order) or its answer revealed a marker, whatever the status. A
/// 5xx, an unexpected 4xx or a transport failure that reveals nothing is an
/// error (the probe's `refused` check fails and the request counts as
/// failed), not a leak.
fn discloses(res: &Result<HttpResponse, HttpFailure>, hidden: bool) -> bool {
    match res {
        Ok(resp) => (200..400).contains(&resp.status) || !hidden,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorCause;

    fn answer(status: u16, body: &'static str) -> Result<HttpResponse, HttpFailure> {
        Ok(HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    fn refused() -> Result<HttpResponse, HttpFailure> {
        Err(HttpFailure {
            cause: ErrorCause::Refused,
            message: "connection refused".into(),
        })
    }

    #[test]
    fn only_accepted_or_revealing_probes_are_isolation_violations() {
        assert!(discloses(&answer(200, "{}"), true));
        assert!(discloses(&answer(204, ""), true));
        assert!(discloses(&answer(500, "SECRET-1"), false));
        assert!(!discloses(&answer(500, "{}"), true));
        assert!(!discloses(&answer(503, "{}"), true));
        assert!(!discloses(&answer(401, "{}"), true));
        assert!(!discloses(&answer(404, "{}"), true));
        assert!(!discloses(&refused(), true));
    }
}
