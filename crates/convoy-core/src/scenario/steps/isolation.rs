//! The `isolation` kind: another tenant's identity (the prober) tries a
//! resource's routes (`GET`, `PATCH /status`, or any method and path
//! template). Each probe is a metric of its own with two checks: it is
//! refused, and its answer reveals none of the markers (values only the
//! owner may see).
//!
//! Every answer falls in one of three classes, and only one of them is a
//! leak:
//!
//! - refused: a status of `refused` (403 or 404 unless the scenario says
//!   which answers this API refuses with): the probe passes if the answer
//!   reveals no marker;
//! - accepted: any 2xx (the target served, changed or deleted the other
//!   tenant's resource), or any answer that reveals a marker: a
//!   tenant-isolation violation;
//! - anything else (a 400, a 3xx, a 5xx, no answer at all): an error with
//!   its cause in the failure sample, never a pass and never a violation,
//!   since it proves nothing about the tenant wall.
//!
//! Probes are requests like any step's: built as a [`Request`] and rendered
//! by `request::prepare` as the prober, so what every request made as an
//! identity carries (its auth header, and whatever else that common path
//! adds for identities) reaches the probes too, and the refusal tested is
//! the tenant wall, not a malformed request.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::request::{self, Request};
use crate::engine::StepKind;
use crate::engine::http::{HttpFailure, HttpResponse};
use crate::metrics::Violation;
use crate::scenario::auth;
use crate::scenario::compile::{Compiler, METHODS, StepTable};
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::exchange::join_codes;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::model::{Body, JsonTemplate};
use crate::scenario::source::SpannedValue;
use crate::scenario::step_run::StepRun;
use crate::scenario::template::Template;

/// The `[step.isolation]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIsolation {
    #[serde(rename = "as")]
    identity: Spanned<String>,
    resource: Option<Spanned<String>>,
    routes: Spanned<Vec<Spanned<SpannedValue>>>,
    /// `expect` is the name older scenarios use.
    #[serde(alias = "expect")]
    refused: Option<Spanned<toml::Value>>,
    #[serde(default)]
    markers: Vec<Spanned<String>>,
    body: Option<Spanned<SpannedValue>>,
    #[serde(default)]
    headers: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// A tenant-isolation probe.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The other tenant's identity, which sends every probe.
    pub identity: usize,
    /// The routes tried, in order.
    pub probes: Vec<Probe>,
    /// Statuses that count as refused.
    pub refused: Vec<u16>,
    /// Values that must not appear in any answer.
    pub markers: Vec<Template>,
}

/// One route of an isolation step.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The route as written: `GET`, `POST /accept`, or
    /// `GET /tenants/{{ tenant }}/orders/{{ order_id }}`.
    pub route: String,
    /// What the prober sends: method, path, extra headers and, for POST,
    /// PUT and PATCH, the body; its `status` is the refusal statuses.
    pub request: Request,
}

/// The statuses that count as refused when the scenario names none.
pub const DEFAULT_REFUSED: [u16; 2] = [403, 404];

impl<S: StepTable> Compile<S> for Isolation {
    type Table = RawIsolation;

    const WHAT: &'static str = "an isolation step";
    // The prober is the table's `as`; the probes are its routes.
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(key: &str) -> Option<String> {
        Some(
            match key {
                "as" => "the prober is `as` inside [step.isolation]",
                "method" | "path" => {
                    "name the probed routes in [step.isolation]: `resource` and `routes`, or routes = [{ method = \"GET\", path = \"/...\" }]"
                }
                "headers" => "headers the probes send go in [step.isolation] as `headers`",
                "status" => "the statuses that count as refused are `refused` in [step.isolation]",
                "json" | "body" => "the body of POST, PUT and PATCH probes is `body` in [step.isolation]",
                "checks" | "capture" | "query" | "let" => {
                    "a probe's answer is judged by `refused` and `markers`; write the query into the route's path"
                }
                _ => return None,
            }
            .to_string(),
        )
    }

    fn compile(
        c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<RawIsolation>,
    ) -> Result<Self, Diagnostic> {
        let raw = table.get_ref();
        let identity = c.identity_index(&raw.identity)?;
        if raw.routes.get_ref().is_empty() {
            return Err(c.err(
                raw.routes.span(),
                "an isolation probe needs at least one route, such as routes = [\"GET\"]",
            ));
        }
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
                    "list the statuses this API refuses another tenant with, such as [403, 404]",
                ));
        }
        let mut headers = Vec::new();
        for (k, v) in &raw.headers {
            headers.push(request::header(c, k, v)?);
        }
        let body = match &raw.body {
            Some(b) => c.json_template(b, &[])?,
            None => JsonTemplate::Fixed(serde_json::Value::Object(Default::default())),
        };
        let mut probes = Vec::new();
        for r in raw.routes.get_ref() {
            let (method, route, path, span) = parse_route(c, r, raw.resource.as_ref())?;
            let with_body = matches!(
                method,
                http::Method::POST | http::Method::PUT | http::Method::PATCH
            );
            probes.push(Probe {
                route,
                request: Request {
                    method,
                    path: c.template_at(&path, span, &[])?,
                    query: Vec::new(),
                    headers: headers.clone(),
                    body: if with_body {
                        Body::Json(body.clone())
                    } else {
                        Body::None
                    },
                    lets: Vec::new(),
                    status: refused.clone(),
                    checks: Vec::new(),
                    captures: Vec::new(),
                },
            });
        }
        if let Some(res) = &raw.resource
            && raw
                .routes
                .get_ref()
                .iter()
                .all(|r| matches!(r.get_ref(), SpannedValue::Table(_)))
        {
            return Err(c
                .err(
                    res.span(),
                    "`resource` is used by no route: each names its whole path",
                )
                .with_hint(
                    "remove `resource`, or write routes as \"METHOD\" or \"METHOD /suffix\" of it",
                ));
        }
        Ok(Isolation {
            identity,
            probes,
            refused,
            markers: raw
                .markers
                .iter()
                .map(|m| c.template(m))
                .collect::<Result<_, _>>()?,
        })
    }

    fn default_name(&self, _step: &S) -> String {
        "tenant isolation".to_string()
    }
}

/// One route as written: `"METHOD"` or `"METHOD /suffix"` (of `resource`),
/// or `{ method = "GET", path = "/..." }`. Returns its method, how it is
/// named, the path template's text and where that text is written.
fn parse_route(
    c: &Compiler<'_>,
    r: &Spanned<SpannedValue>,
    resource: Option<&Spanned<String>>,
) -> Result<(http::Method, String, String, Range<usize>), Diagnostic> {
    match r.get_ref() {
        SpannedValue::String(s) => {
            let (m, suffix) = match s.trim().split_once(' ') {
                Some((m, rest)) => (m, rest.trim()),
                None => (s.trim(), ""),
            };
            if !(suffix.is_empty() || suffix.starts_with('/')) {
                return Err(c.err(
                    r.span(),
                    format!("invalid route {s:?}: expected METHOD or METHOD /suffix"),
                ));
            }
            let up = m.to_ascii_uppercase();
            if !METHODS.contains(&up.as_str()) {
                return Err(c
                    .err(r.span(), format!("invalid method {m:?} in route {s:?}"))
                    .with_hint(format!("use one of {}", METHODS.join(", "))));
            }
            let Some(resource) = resource else {
                return Err(c
                    .err(
                        r.span(),
                        format!("route {s:?} is a suffix of `resource`, which is missing"),
                    )
                    .with_hint(
                        "add resource = \"/api/orders/{{ order_id }}\", or write the route as { method = \"GET\", path = \"/...\" }",
                    ));
            };
            let method: http::Method = up.parse().expect("standard methods parse");
            let route = if suffix.is_empty() {
                method.to_string()
            } else {
                format!("{method} {suffix}")
            };
            Ok((
                method,
                route,
                format!("{}{suffix}", resource.get_ref()),
                resource.span(),
            ))
        }
        SpannedValue::Table(t) => {
            for (k, v) in t {
                if k != "method" && k != "path" {
                    let d = c.err(v.span(), format!("unknown key \"{k}\" in a route"));
                    return Err(match did_you_mean(k, ["method", "path"]) {
                        Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                        None => d.with_hint("a route has a `method` and a `path`"),
                    });
                }
            }
            let text = |key: &str| -> Result<Spanned<String>, Diagnostic> {
                let v = t.get(key).ok_or_else(|| {
                    c.err(r.span(), format!("missing key \"{key}\" in a route"))
                        .with_hint("write a route as { method = \"GET\", path = \"/...\" }")
                })?;
                match v.get_ref() {
                    SpannedValue::String(s) => Ok(Spanned::new(v.span(), s.clone())),
                    _ => Err(c.err(v.span(), format!("a route's `{key}` is a string"))),
                }
            };
            let method = c.method(&text("method")?)?;
            let path = text("path")?;
            let p = path.get_ref();
            if !(p.starts_with('/') || p.starts_with("{{")) {
                return Err(c
                    .err(
                        path.span(),
                        format!(
                            "invalid path {p:?}: it starts with '/' (relative to the base URL)"
                        ),
                    )
                    .with_hint(format!("write \"/{p}\"")));
            }
            Ok((
                method.clone(),
                format!("{method} {p}"),
                p.clone(),
                path.span(),
            ))
        }
        _ => Err(c.err(
            r.span(),
            "a route is \"METHOD\", \"METHOD /suffix\" or { method = \"GET\", path = \"/...\" }",
        )),
    }
}

/// The metric name of one isolation probe: the step's name and the route
/// as written (`GET`, `POST /accept`, `GET /tenants/...`).
pub fn probe_name(step: &str, route: &str) -> String {
    // A route written with a query keeps no sensitive value in a name.
    format!("{step} · {}", crate::redact::path_for_name(route))
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
        for p in &self.probes {
            out.push(probe_name(step, &p.route));
        }
    }

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<IsolationIds, String> {
        let mut id = IsolationIds::default();
        for p in &self.probes {
            let pname = r.qualify(&probe_name(step, &p.route));
            id.metrics.push(r.step(pname.clone(), StepKind::Request));
            id.refused
                .push(r.check(&pname, format!("refused ({})", join_codes(&self.refused))));
            id.hidden.push(r.check(&pname, "reveals no marker".into()));
        }
        Ok(id)
    }

    fn max_requests(&self) -> Option<u64> {
        Some(self.probes.len() as u64)
    }

    async fn execute(&self, ids: &IsolationIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: one probe after another makes a large future, which every
        // plain request step would otherwise carry and move. The probes are
        // made as the prober: what the common path adds for the step's
        // identity, it adds for the prober.
        let own = run.identity.replace(self.identity);
        let ok = Box::pin(probe(self, ids, run)).await;
        run.identity = own;
        ok
    }
}

/// How a probe was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// With a refusal status, revealing nothing.
    Refused,
    /// Served (2xx), or revealing a marker: a violation.
    Disclosed(String),
    /// Neither: an error, with its cause.
    Inconclusive(String),
}

/// Classifies `res` against the refusal statuses `refused`; `leaked` is how
/// many markers the answer revealed.
fn classify(res: &Result<HttpResponse, HttpFailure>, refused: &[u16], leaked: usize) -> Answer {
    let codes = join_codes(refused);
    let revealed = if leaked > 0 {
        format!(", and revealed {leaked} marker(s)")
    } else {
        String::new()
    };
    match res {
        Ok(r) if (200..300).contains(&r.status) => Answer::Disclosed(format!(
            "served another tenant's resource: answered {} instead of {codes}{revealed}",
            r.status
        )),
        Ok(r) if leaked > 0 => Answer::Disclosed(format!(
            "answered {} and revealed {leaked} marker(s) of another tenant's resource",
            r.status
        )),
        Ok(r) if refused.contains(&r.status) => Answer::Refused,
        Ok(r) => Answer::Inconclusive(format!(
            "error, not a violation: answered {}, neither a refusal ({codes}) nor an acceptance (2xx); \
             if this API refuses with {}, add it to `refused`",
            r.status, r.status
        )),
        Err(f) => Answer::Inconclusive(format!("error, not a violation: no answer ({f})")),
    }
}

/// Runs every probe of `iso`; `run.identity` is the prober.
async fn probe(iso: &Isolation, ids: &IsolationIds, run: &mut StepRun<'_>) -> bool {
    // The probes are made as the prober: its variables, its headers (its
    // own tenant header) and its token.
    run.identity = Some(iso.identity);
    let fail_all = |run: &mut StepRun<'_>| {
        for id in &ids.refused {
            run.it.recorder.check(*id, false);
        }
    };
    let Ok(auth) = auth::credential(run, run.identity).await else {
        fail_all(run);
        return false;
    };
    let markers = match iso
        .markers
        .iter()
        .map(|m| m.render(&run.ctx()))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(m) => m,
        Err(u) => {
            fail_all(run);
            run.sample(
                "tenant isolation",
                format!("variable \"{}\" has no value", u.0),
                String::new(),
                String::new(),
            );
            return false;
        }
    };
    let mut ok = true;
    for (i, pr) in iso.probes.iter().enumerate() {
        let label = format!("tenant isolation {}", pr.route);
        let mut p = match request::prepare(run, &pr.request, auth.clone()) {
            Ok(p) => p,
            Err(e) => {
                ok = false;
                run.it.recorder.check(ids.refused[i], false);
                run.sample(&label, e, String::new(), String::new());
                continue;
            }
        };
        let (res, _) = auth::send_as(
            run,
            run.identity,
            &mut p,
            ids.metrics[i],
            Instant::now(),
            &iso.refused,
        )
        .await;
        let leaked = match &res {
            Ok(resp) => revealed(resp, &markers),
            Err(_) => 0,
        };
        let answer = classify(&res, &iso.refused, leaked);
        run.it
            .recorder
            .check(ids.refused[i], answer == Answer::Refused);
        run.it.recorder.check(ids.hidden[i], leaked == 0);
        match answer {
            Answer::Refused => {}
            Answer::Disclosed(why) => {
                ok = false;
                let kind = Violation::TenantIsolationViolations;
                run.it.recorder.violation(kind, 1);
                run.sample_violation(kind, &label, why, &p, &res);
            }
            Answer::Inconclusive(why) => {
                ok = false;
                run.sample_exchange(&label, why, &p, &res);
            }
        }
    }
    ok
}

/// How many of `markers` (the empty ones aside) `resp` shows in its body or
/// headers.
fn revealed(resp: &HttpResponse, markers: &[String]) -> usize {
    let text = String::from_utf8_lossy(&resp.body);
    markers
        .iter()
        .filter(|m| !m.is_empty())
        .filter(|m| {
            text.contains(m.as_str())
                || resp
                    .headers
                    .values()
                    .any(|v| v.to_str().is_ok_and(|s| s.contains(m.as_str())))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorCause;
    use bytes::Bytes;

    fn answer(status: u16) -> Result<HttpResponse, HttpFailure> {
        Ok(HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        })
    }

    fn refused() -> Result<HttpResponse, HttpFailure> {
        Err(HttpFailure {
            cause: ErrorCause::Refused,
            message: "connection refused".into(),
        })
    }

    fn disclosed(a: &Answer) -> bool {
        matches!(a, Answer::Disclosed(_))
    }

    fn inconclusive(a: &Answer) -> bool {
        matches!(a, Answer::Inconclusive(_))
    }

    #[test]
    fn only_accepted_or_revealing_probes_are_isolation_violations() {
        let r = &DEFAULT_REFUSED;
        assert!(disclosed(&classify(&answer(200), r, 0)));
        assert!(disclosed(&classify(&answer(204), r, 0)));
        assert!(disclosed(&classify(&answer(500), r, 1)));
        assert!(disclosed(&classify(&answer(404), r, 1)));
        assert_eq!(classify(&answer(404), r, 0), Answer::Refused);
        assert_eq!(classify(&answer(403), r, 0), Answer::Refused);
        for s in [301, 400, 401, 422, 500, 503] {
            assert!(inconclusive(&classify(&answer(s), r, 0)), "{s}");
        }
        assert!(inconclusive(&classify(&refused(), r, 0)));
        // What a refusal is, the scenario says.
        assert_eq!(classify(&answer(401), &[401], 0), Answer::Refused);
        assert!(inconclusive(&classify(&answer(404), &[401], 0)));
    }

    #[test]
    fn an_inconclusive_answer_names_its_status_and_the_way_out() {
        let Answer::Inconclusive(why) = classify(&answer(400), &DEFAULT_REFUSED, 0) else {
            panic!("400 is no verdict");
        };
        assert!(why.contains("answered 400"), "{why}");
        assert!(why.contains("add it to `refused`"), "{why}");
    }
}
