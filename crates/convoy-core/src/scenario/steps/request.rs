//! The `request` kind, every step's base: one request with its status,
//! checks and captures. Compiled from a step's request keys (`method`,
//! `path`, `query`, `headers`, `json`/`body`, `let`, `status`, `checks`,
//! `capture`); run by rendering it (`prepare`), sending it and judging
//! the answer (`after_response`). The replay kind reuses all three.
//!
//! The plain request step is the hot path: nothing here is boxed or
//! dynamically dispatched, and a body is written straight from its
//! template.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;
use toml::Spanned;

use crate::engine::StepKind;
use crate::engine::http::{HttpFailure, HttpResponse};
use crate::scenario::auth;
use crate::scenario::check::{self, LazyJson};
use crate::scenario::compile::{Compiler, RequestKeys, StepTable};
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::exchange::{Prepared, status_label};
use crate::scenario::json_pick::JsonPaths;
use crate::scenario::kind::{Kind, Registrar};
use crate::scenario::model::{AuthValue, Body, Capture, CaptureSource, Check, Subject};
use crate::scenario::render::{encode_component, write_json};
use crate::scenario::step_run::StepRun;
use crate::scenario::template::{Template, Unset};

/// A request template with its checks and captures.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: http::Method,
    /// Path (or absolute URL) template.
    pub path: Template,
    /// Query parameters.
    pub query: Vec<(String, Template)>,
    /// Headers.
    pub headers: Vec<(http::HeaderName, Template)>,
    /// Body.
    pub body: Body,
    /// Variables set before the request is rendered (`let`).
    pub lets: Vec<(usize, Template)>,
    /// Accepted statuses; empty means any 2xx or 3xx.
    pub status: Vec<u16>,
    /// Checks on the response.
    pub checks: Vec<Check>,
    /// Values captured from the response.
    pub captures: Vec<Capture>,
}

impl Request {
    /// The step keys a request step reads (besides `name` and `think`):
    /// all of them.
    pub(crate) const STEP_KEYS: &'static [&'static str] = &[
        "as", "method", "path", "query", "headers", "let", "json", "body", "status", "checks",
        "capture",
    ];

    /// Compiles `step` as a plain request (it has no kind table).
    pub(crate) fn compile_step<S: StepTable>(
        c: &Compiler<'_>,
        step: &Spanned<S>,
    ) -> Result<Self, Diagnostic> {
        compile(c, step.span(), &step.get_ref().keys())
    }

    /// `METHOD path`, as written but for the values of sensitive query
    /// parameters.
    pub(crate) fn default_name<S: StepTable>(&self, step: &S) -> String {
        // A token written in the query must not become a metric name.
        format!(
            "{} {}",
            self.method,
            crate::redact::path_for_name(step.keys().path.map_or("", |p| p.get_ref().as_str()))
        )
    }
}

/// Metric and check ids of a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestIds {
    /// The request's metric.
    pub metric: usize,
    /// Its status check.
    pub status: usize,
    /// Its checks, in order.
    pub checks: Vec<usize>,
    /// Its captures' check (unused without captures).
    pub captures: usize,
    /// What its checks and captures read of a JSON answer.
    pub json: JsonPaths,
}

/// Registers the metric and checks of request `req`, named `name`.
pub(crate) fn register(req: &Request, name: &str, r: &mut Registrar<'_>) -> RequestIds {
    let json = request_paths(req);
    let metric = r.step(name.to_string(), StepKind::Request);
    let status = r.check(name, status_label(&req.status));
    let checks = req
        .checks
        .iter()
        .map(|c| r.check(name, c.label.clone()))
        .collect();
    let mut captures = 0;
    if !req.captures.is_empty() {
        let slots = r.slots;
        let names: Vec<&str> = req
            .captures
            .iter()
            .map(|c| slots[c.slot].as_str())
            .collect();
        captures = r.check(name, format!("captures {}", names.join(", ")));
    }
    RequestIds {
        metric,
        status,
        checks,
        captures,
        json,
    }
}

impl Kind for Request {
    type Ids = RequestIds;

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<RequestIds, String> {
        let name = r.qualify(step);
        Ok(register(self, &name, r))
    }

    fn max_requests(&self) -> Option<u64> {
        Some(1)
    }

    async fn execute(&self, ids: &RequestIds, run: &mut StepRun<'_>) -> bool {
        let Some((p, res, latency)) = exchange(run, self, ids.metric, ids.status).await else {
            return false;
        };
        after_response(
            run,
            self,
            &ids.json,
            &p,
            &res,
            latency,
            ids.status,
            &ids.checks,
            Some(ids.captures),
        )
    }
}

/// What one exchange of a request gives: the request as sent, its answer
/// and latency.
pub(crate) type Exchange = (
    Prepared,
    Result<HttpResponse, HttpFailure>,
    std::time::Duration,
);

/// Sends request `r` as the step's identity under `metric`, once more
/// with a fresh token when the token a login gave is answered 401 (a step
/// that expects 401 is not retried). `None` when it could not be sent:
/// the login failed, or a variable had no value (check `status_check`
/// failed, and why is sampled).
pub(crate) async fn exchange(
    run: &mut StepRun<'_>,
    r: &Request,
    metric: usize,
    status_check: usize,
) -> Option<Exchange> {
    let identity = run.identity;
    let Ok(credential) = auth::credential(run, identity).await else {
        run.it.recorder.check(status_check, false);
        return None;
    };
    let mut p = match prepare(run, r, credential) {
        Ok(p) => p,
        Err(e) => {
            run.it.recorder.check(status_check, false);
            run.sample("request", e, String::new(), String::new());
            return None;
        }
    };
    let (res, latency) =
        auth::send_as(run, identity, &mut p, metric, run.scheduled, &r.status).await;
    Some((p, res, latency))
}

/// Sets the request's `let` variables, then renders it.
pub(crate) fn prepare(
    run: &mut StepRun<'_>,
    r: &Request,
    credential: Option<AuthValue>,
) -> Result<Prepared, String> {
    for (slot, t) in &r.lets {
        let v = t
            .render_value(&run.ctx())
            .map_err(|u| format!("variable \"{}\" has no value", u.0))?;
        run.user.journeys[run.ji].vars[*slot] = Some(v);
    }
    let ctx = run.ctx();
    let unset = |u: Unset| {
        format!(
            "variable \"{}\" has no value (an earlier capture failed?)",
            u.0
        )
    };
    let path = r.path.render(&ctx).map_err(unset)?;
    let mut uri = run.j.target.join(&path).map_err(|e| e.to_string())?;
    if !r.query.is_empty() {
        uri.push(if uri.contains('?') { '&' } else { '?' });
        for (i, (k, v)) in r.query.iter().enumerate() {
            if i > 0 {
                uri.push('&');
            }
            encode_component(k, &mut uri);
            uri.push('=');
            encode_component(&v.render(&ctx).map_err(unset)?, &mut uri);
        }
    }
    let mut headers = http::HeaderMap::with_capacity(r.headers.len() + 2);
    for (k, v) in &r.headers {
        let text = v.render(&ctx).map_err(unset)?;
        let value =
            HeaderValue::from_str(&text).map_err(|_| format!("header {k} has an invalid value"))?;
        headers.insert(k.clone(), value);
    }
    auth::finish(run, run.identity, credential, &mut uri, &mut headers)?;
    let body = match &r.body {
        Body::None => Bytes::new(),
        Body::Raw(t) => Bytes::from(t.render(&ctx).map_err(unset)?),
        Body::Json(t) => {
            if !headers.contains_key(http::header::CONTENT_TYPE) {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            let mut out = Vec::with_capacity(256);
            write_json(t, &ctx, &mut out).map_err(unset)?;
            Bytes::from(out)
        }
    };
    Ok(Prepared {
        method: r.method.clone(),
        uri,
        headers,
        body,
    })
}

/// Status, checks and captures of one response; true when all held.
#[allow(clippy::too_many_arguments)]
pub(crate) fn after_response(
    run: &mut StepRun<'_>,
    r: &Request,
    paths: &JsonPaths,
    p: &Prepared,
    res: &Result<HttpResponse, HttpFailure>,
    latency: Duration,
    status_check: usize,
    check_ids: &[usize],
    capture_check: Option<usize>,
) -> bool {
    let resp = match res {
        Ok(resp) => resp,
        Err(f) => {
            run.it.recorder.check(status_check, false);
            run.sample_exchange(&status_label(&r.status), f.to_string(), p, res);
            return false;
        }
    };
    if resp.status == 401
        && let Some(i) = run.identity
    {
        // The token expired or was revoked: log in again next time.
        auth::expire(run, i);
    }
    let status_ok = if r.status.is_empty() {
        (200..400).contains(&resp.status)
    } else {
        r.status.contains(&resp.status)
    };
    run.it.recorder.check(status_check, status_ok);
    let mut all_ok = status_ok;
    if !status_ok {
        run.sample_exchange(
            &status_label(&r.status),
            format!("got status {}", resp.status),
            p,
            res,
        );
    }
    let mut json = LazyJson::new(&resp.body, paths);
    for (check, id) in r.checks.iter().zip(check_ids) {
        let verdict = check::evaluate(
            check,
            resp,
            &mut json,
            latency,
            &run.ctx(),
            &run.shared.secrets,
        );
        run.it.recorder.check(*id, verdict.is_ok());
        if let Err(why) = verdict {
            all_ok = false;
            run.sample_exchange(&check.label, why, p, res);
        }
    }
    if let Some(cid) = capture_check.filter(|_| !r.captures.is_empty()) {
        let mut missing = Vec::new();
        for c in &r.captures {
            if !take_capture(run, c, &mut json, &resp.body, Some(&resp.headers)) {
                missing.push(run.j.slots[c.slot].clone());
            }
        }
        run.it.recorder.check(cid, missing.is_empty());
        if !missing.is_empty() {
            all_ok = false;
            // Say why when the body could not be read as JSON at all,
            // as a check in the same spot does.
            let not_json = r
                .captures
                .iter()
                .any(|c| matches!(c.source, CaptureSource::Json(_)))
                && json.get().is_none();
            let why = if not_json {
                "the response is not JSON, so nothing to capture for"
            } else {
                "nothing to capture for"
            };
            run.sample_exchange("captures", format!("{why} {}", missing.join(", ")), p, res);
        }
    }
    all_ok
}

/// The JSON pointers a request's checks and captures read.
pub(crate) fn request_paths(r: &Request) -> JsonPaths {
    let checks = r.checks.iter().filter_map(|c| match &c.subject {
        Subject::Json(p) => Some(p.as_str()),
        Subject::Elements(e) => Some(e.pointer.as_str()),
        _ => None,
    });
    let captures = r.captures.iter().filter_map(|c| match &c.source {
        CaptureSource::Json(p) => Some(p.as_str()),
        _ => None,
    });
    JsonPaths::new(checks.chain(captures))
}

/// Compiles the request keys `raw` of the step at `span`.
pub(crate) fn compile(
    c: &Compiler<'_>,
    span: Range<usize>,
    raw: &RequestKeys<'_>,
) -> Result<Request, Diagnostic> {
    let path = raw.path.ok_or_else(|| {
        c.err(span.start..span.start, "missing key \"path\"")
            .with_hint("add `path = \"/api/...\"` to this step")
    })?;
    let p = path.get_ref();
    if !(p.starts_with('/')
        || p.starts_with("{{")
        || p.starts_with("http://")
        || p.starts_with("https://"))
    {
        return Err(c.err(path.span(), format!("invalid path {p:?}: it starts with '/' (relative to the base URL) or is an absolute http(s) URL"))
            .with_hint(format!("write \"/{p}\"")));
    }
    let method = match raw.method {
        Some(m) => c.method(m)?,
        None => http::Method::GET,
    };
    if let (Some(_), Some(b)) = (raw.json, raw.body) {
        return Err(c.err(b.span(), "a step has either `json` or `body`, not both"));
    }
    let mut headers = Vec::new();
    for (k, v) in raw.headers {
        headers.push(header(c, k, v)?);
    }
    let mut lets = Vec::new();
    for (k, v) in raw.lets {
        let slot = c
            .slots
            .iter()
            .position(|s| s == k.get_ref())
            .expect("declared in the first pass");
        lets.push((slot, c.template(v)?));
    }
    let mut checks = Vec::new();
    for ch in raw.checks {
        checks.push(check::compile(c, ch)?);
    }
    let mut captures = Vec::new();
    for (k, v) in raw.capture {
        let slot = c
            .slots
            .iter()
            .position(|s| s == k.get_ref())
            .expect("declared in the first pass");
        captures.push(Capture {
            slot,
            sensitive: crate::redact::is_sensitive_name(k.get_ref()),
            source: capture_source(c, v)?,
        });
    }
    Ok(Request {
        method,
        path: c.template(path)?,
        query: raw
            .query
            .iter()
            .map(|(k, v)| Ok((k.clone(), c.template(v)?)))
            .collect::<Result<_, Diagnostic>>()?,
        headers,
        body: match (raw.json, raw.body) {
            (Some(j), _) => Body::Json(c.json_template(j, &[])?),
            (None, Some(b)) => Body::Raw(c.template(b)?),
            (None, None) => Body::None,
        },
        lets,
        status: raw
            .status
            .map(|s| c.statuses(s))
            .transpose()?
            .unwrap_or_default(),
        checks,
        captures,
    })
}

/// Compiles one header `k = v` of a request: a valid name, and a value
/// template whose fixed text HTTP can carry.
pub(crate) fn header(
    c: &Compiler<'_>,
    k: &Spanned<String>,
    v: &Spanned<String>,
) -> Result<(http::HeaderName, Template), Diagnostic> {
    let name: http::HeaderName = k
        .get_ref()
        .parse()
        .map_err(|_| c.err(k.span(), format!("invalid header name {:?}", k.get_ref())))?;
    let t = c.template(v)?;
    if let Some(lit) = t.as_literal()
        && http::HeaderValue::from_str(lit).is_err()
    {
        return Err(c.err(
            v.span(),
            format!(
                "invalid header value for {}: HTTP cannot carry control characters or line breaks",
                k.get_ref()
            ),
        ));
    }
    Ok((name, t))
}

/// Where a capture reads its value: a JSON pointer, or a table with one of
/// `json`, `jsonpath`, `header`, `regex`.
pub(crate) fn capture_source(
    c: &Compiler<'_>,
    v: &Spanned<toml::Value>,
) -> Result<CaptureSource, Diagnostic> {
    let pointer = |p: &str| -> Result<CaptureSource, Diagnostic> {
        if p.is_empty() || p.starts_with('/') {
            crate::scenario::json_pick::check_pointer_depth(p).map_err(|e| c.err(v.span(), e))?;
            Ok(CaptureSource::Json(p.to_string()))
        } else {
            Err(c.err(
                v.span(),
                format!("invalid JSON pointer {p:?}: it starts with '/', such as \"/id\""),
            ))
        }
    };
    match v.get_ref() {
        toml::Value::String(s) => pointer(s),
        toml::Value::Table(t) if t.len() == 1 => {
            let (k, val) = t.iter().next().expect("one entry");
            let s = val.as_str().ok_or_else(|| c.err(v.span(), format!("capture `{k}` takes a string")))?;
            match k.as_str() {
                "json" => pointer(s),
                "jsonpath" => crate::scenario::data::jsonpath_to_pointer(s)
                    .map(CaptureSource::Json)
                    .map_err(|e| c.err(v.span(), e)),
                "header" => s
                    .parse()
                    .map(CaptureSource::Header)
                    .map_err(|_| c.err(v.span(), format!("invalid header name {s:?}"))),
                "regex" => check::regex(s)
                    .map(CaptureSource::Regex)
                    .map_err(|e| c.err(v.span(), e)),
                other => {
                    let d = c.err(v.span(), format!("unknown capture source \"{other}\""));
                    Err(match did_you_mean(other, ["json", "jsonpath", "header", "regex"]) {
                        Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                        None => d.with_hint("use json, jsonpath, header or regex"),
                    })
                }
            }
        }
        _ => Err(c.err(v.span(), "a capture is a JSON pointer string or a table with one of json, jsonpath, header, regex")),
    }
}

/// Takes capture `c` from a body (a response's, with its `headers`, or an
/// event's) into the journey's variables; false when the value is not
/// there. A capture named like a secret (`session`, `token`) is one, and
/// joins the run's secrets; others become one when sent as a credential.
pub(super) fn take_capture(
    run: &mut StepRun<'_>,
    c: &Capture,
    json: &mut LazyJson<'_>,
    body: &[u8],
    headers: Option<&http::HeaderMap>,
) -> bool {
    let v = match &c.source {
        CaptureSource::Json(ptr) => json.get().and_then(|j| j.pointer(ptr)).cloned(),
        CaptureSource::Header(h) => headers
            .and_then(|hs| hs.get(h))
            .and_then(|v| v.to_str().ok())
            .map(|s| Value::String(s.to_string())),
        CaptureSource::Regex(re) => {
            let text = String::from_utf8_lossy(body);
            re.captures(&text).and_then(|caps| {
                caps.get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| Value::String(m.as_str().to_string()))
            })
        }
    };
    let Some(v) = v else { return false };
    if let Value::String(s) = &v
        && c.sensitive
    {
        run.shared.secrets.learn(s);
    }
    run.user.journeys[run.ji].vars[c.slot] = Some(v);
    true
}
