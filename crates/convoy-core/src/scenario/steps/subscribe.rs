//! The `subscribe` kind: the user opens a stream (server-sent events or a
//! WebSocket) as one of its identities and keeps it across steps and
//! iterations; `[step.await]`, `[step.send]` and `[step.stream_isolation]`
//! name it by the step's name.
//!
//! Its request is a request step's (`path`, `query`, `headers`, `let`, `as`)
//! rendered by `request::prepare`, so the identity's credential (a bearer
//! header, or `?access_token=` when the auth places it in the query), its
//! headers and the scenario's default headers reach the stream as they
//! reach any request; what it sends as a credential joins the secrets.
//!
//! A subscribe step whose stream is still held does nothing; one whose
//! stream closed opens it again. Its metrics (kind `stream`): the connect
//! (to the response head, or the upgrade done), the time to the first
//! event after each connect, and each reconnect the policy makes.

use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::request::{self, Request};
use crate::engine::StepKind;
use crate::engine::http::HttpResponse;
use crate::scenario::auth;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::failure;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::step_run::StepRun;
use crate::scenario::stream::{
    self, OpenError, Opener, Reader, Reconnect, StreamKind, StreamMetrics,
};

/// The events a stream keeps for steps to await when none says otherwise.
pub const DEFAULT_BUFFER: usize = 256;
/// The most events a stream may keep.
pub const MAX_BUFFER: usize = 65_536;

/// The `[step.subscribe]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubscribe {
    kind: Spanned<String>,
    reconnect: Option<Spanned<toml::Value>>,
    buffer: Option<Spanned<i64>>,
}

/// A stream opened and held.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// The request that opens it (GET).
    pub request: Request,
    /// Its protocol.
    pub kind: StreamKind,
    /// What happens when it ends.
    pub reconnect: Reconnect,
    /// The most events kept for awaits.
    pub buffer: usize,
    /// Its index among the journey's streams.
    pub index: usize,
}

/// The metric name of a stream's time to first event.
pub fn first_event_name(step: &str) -> String {
    format!("{step} · first event")
}

/// The metric name of a stream's reconnects.
pub fn reconnect_name(step: &str) -> String {
    format!("{step} · reconnect")
}

impl<S: StepTable> Compile<S> for Subscribe {
    type Table = RawSubscribe;

    const WHAT: &'static str = "a subscribe step";
    const STEP_KEYS: &'static [&'static str] = &["as", "path", "query", "headers", "let"];

    fn unused_hint(key: &str) -> Option<String> {
        Some(
            match key {
                "method" => "a stream is opened with GET",
                "status" => "a stream opens with 200 (SSE) or 101 (WebSocket); anything else is `stream_refused`",
                "json" | "body" => "a stream's request has no body; send on a WebSocket with [step.send]",
                "checks" | "capture" => "judge the stream's events with [step.await] and its `checks`",
                _ => return None,
            }
            .to_string(),
        )
    }

    fn compile(
        c: &Compiler<'_>,
        step: &Spanned<S>,
        table: &Spanned<RawSubscribe>,
    ) -> Result<Self, Diagnostic> {
        let raw = table.get_ref();
        let kind = match raw.kind.get_ref().as_str() {
            "sse" => StreamKind::Sse,
            "ws" | "websocket" => StreamKind::Ws,
            other => {
                let d = c.err(raw.kind.span(), format!("unknown stream kind {other:?}"));
                return Err(match did_you_mean(other, ["sse", "ws"]) {
                    Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                    None => d.with_hint("use \"sse\" (server-sent events) or \"ws\" (WebSocket)"),
                });
            }
        };
        let reconnect = match &raw.reconnect {
            None => Reconnect::None,
            Some(r) => reconnect(c, r)?,
        };
        let buffer = match &raw.buffer {
            None => DEFAULT_BUFFER,
            Some(b) if (1..=MAX_BUFFER as i64).contains(b.get_ref()) => *b.get_ref() as usize,
            Some(b) => {
                return Err(c.err(
                    b.span(),
                    format!("`buffer` is a number of events from 1 to {MAX_BUFFER}"),
                ));
            }
        };
        Ok(Subscribe {
            request: request::compile(c, step.span(), &step.get_ref().keys())?,
            kind,
            reconnect,
            buffer,
            index: c.streams.len(),
        })
    }

    fn default_name(&self, step: &S) -> String {
        format!(
            "{} {}",
            self.kind.as_str(),
            crate::redact::path_for_name(step.keys().path.map_or("", |p| p.get_ref().as_str()))
        )
    }
}

/// `reconnect = "none"`, or `{ backoff = "100ms..5s", max = 5 }`.
fn reconnect(c: &Compiler<'_>, r: &Spanned<toml::Value>) -> Result<Reconnect, Diagnostic> {
    let shape = "`reconnect` is \"none\" or { backoff = \"100ms..5s\", max = 5 }";
    match r.get_ref() {
        toml::Value::String(s) if s == "none" => Ok(Reconnect::None),
        toml::Value::Table(t) => {
            for k in t.keys() {
                if k != "backoff" && k != "max" {
                    let d = c.err(r.span(), format!("unknown key \"{k}\" in `reconnect`"));
                    return Err(match did_you_mean(k, ["backoff", "max"]) {
                        Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                        None => d.with_hint(shape),
                    });
                }
            }
            let backoff = t
                .get("backoff")
                .and_then(|b| b.as_str())
                .ok_or_else(|| c.err(r.span(), shape))?;
            let (min, max) = c.think(&Spanned::new(r.span(), backoff.to_string()))?;
            if min.is_zero() {
                return Err(c
                    .err(r.span(), "a reconnect backoff starts above 0")
                    .with_hint("write backoff = \"100ms..5s\""));
            }
            let attempts = match t.get("max") {
                Some(toml::Value::Integer(n)) if (1..=1_000_000).contains(n) => *n as u32,
                Some(_) => {
                    return Err(c.err(
                        r.span(),
                        "`max` in `reconnect` is the number of reconnects allowed, 1 or more",
                    ));
                }
                None => {
                    return Err(c
                        .err(r.span(), "`reconnect` needs `max`, the reconnects allowed")
                        .with_hint(shape));
                }
            };
            Ok(Reconnect::Backoff { min, max, attempts })
        }
        _ => Err(c.err(r.span(), shape)),
    }
}

/// Metric and check ids of a subscribe step.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubscribeIds {
    /// The connect.
    pub connect: usize,
    /// The time to the first event.
    pub first_event: usize,
    /// Each reconnect.
    pub reconnect: usize,
    /// Its "stream opens" check.
    pub opens: usize,
}

impl Kind for Subscribe {
    type Ids = SubscribeIds;

    fn metric_names(&self, step: &str, out: &mut Vec<String>) {
        out.push(step.to_string());
        out.push(first_event_name(step));
        out.push(reconnect_name(step));
    }

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<SubscribeIds, String> {
        let name = r.qualify(step);
        let connect = r.step(name.clone(), StepKind::Stream);
        let first_event = r.step(r.qualify(&first_event_name(step)), StepKind::Stream);
        let reconnect = r.step(r.qualify(&reconnect_name(step)), StepKind::Stream);
        let opens = r.check(
            &name,
            match self.kind {
                StreamKind::Sse => "stream opens (200 text/event-stream)".into(),
                StreamKind::Ws => "stream opens (101 websocket)".into(),
            },
        );
        Ok(SubscribeIds {
            connect,
            first_event,
            reconnect,
            opens,
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(1)
    }

    /// The stream, held after the step for the rest of the user's life.
    fn held_connections(&self) -> u64 {
        1
    }

    async fn execute(&self, ids: &SubscribeIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: opening a stream is a large future that plain request
        // steps would otherwise carry.
        Box::pin(subscribe(self, ids, run)).await
    }
}

async fn subscribe(s: &Subscribe, ids: &SubscribeIds, run: &mut StepRun<'_>) -> bool {
    let slot = &run.user.journeys[run.ji].streams[s.index];
    if slot.as_ref().is_some_and(|h| !closed(h)) {
        return true;
    }
    let identity = run.identity;
    let Ok(credential) = auth::credential(run, identity).await else {
        run.it.recorder.check(ids.opens, false);
        return false;
    };
    let p = match request::prepare(run, &s.request, credential) {
        Ok(p) => p,
        Err(e) => {
            run.it.recorder.check(ids.opens, false);
            run.sample("stream opens", e, String::new(), String::new());
            return false;
        }
    };
    // The stream's credential (header or `?access_token=`) is a secret from
    // now on, as any request's.
    run.shared
        .secrets
        .learn_request_memo(&p.uri, &p.headers, &mut run.user.learnt);
    let opener = Opener {
        client: run.client.clone(),
        endpoint: run.j.endpoint.clone(),
        method: p.method.clone(),
        uri: p.uri.clone(),
        headers: p.headers.clone(),
        kind: s.kind,
        max_event: run.shared.http.max_body_bytes,
    };
    let t0 = Instant::now();
    match stream::open(&opener).await {
        Ok(conn) => {
            let status = match s.kind {
                StreamKind::Sse => 200,
                StreamKind::Ws => 101,
            };
            run.it.recorder.record_stream(
                ids.connect,
                Some(t0.elapsed()),
                Some(status),
                None,
                false,
            );
            run.it.recorder.check(ids.opens, true);
            let held = stream::hold(
                conn,
                t0,
                s.buffer,
                Reader {
                    opener,
                    reconnect: s.reconnect,
                    recorder: run.it.recorder.clone(),
                    metrics: StreamMetrics {
                        first_event: ids.first_event,
                        reconnect: ids.reconnect,
                    },
                },
            );
            run.user.journeys[run.ji].streams[s.index] = Some(held);
            true
        }
        Err(e) => {
            run.it
                .recorder
                .record_stream(ids.connect, None, e.status(), Some(e.cause()), true);
            run.it.recorder.check(ids.opens, false);
            if e.status() == Some(401)
                && let Some(i) = identity
            {
                // The token expired or was revoked: log in again next time.
                auth::expire(run, i);
            }
            let request = failure::request_text(&p, &run.shared.secrets);
            let (status, response) = match &e {
                OpenError::Refused {
                    status,
                    headers,
                    body,
                    ..
                } => {
                    let answer = Ok(HttpResponse {
                        status: *status,
                        headers: headers.clone(),
                        body: body.clone(),
                    });
                    (
                        Some(*status),
                        failure::response_text(&answer, &run.shared.secrets),
                    )
                }
                OpenError::Failed(f) => (None, f.to_string()),
            };
            run.sample_stream(
                "stream opens",
                None,
                status,
                Some(e.cause()),
                format!("the {} stream did not open: {e}", s.kind.as_str()),
                request,
                response,
            );
            false
        }
    }
}

/// Whether a held stream closed for good.
fn closed(h: &stream::Held) -> bool {
    matches!(h.channel.lock().status, stream::Status::Closed(_))
}
