//! The `await` kind: wait on a held stream for an event that matches, then
//! time it. An event matches when it arrived after the request of the
//! `since` step was sent, carries the `event` name (SSE `event:`, or the
//! `type` of a WebSocket message's JSON) when one is asked for, and passes
//! every check, in the check language of responses, over the event's data
//! (`{ json = "/order_id", equals = "{{ order_id }}" }`). Events that do
//! not match are left for later awaits; the stream's buffer keeps those
//! that came before the await started.
//!
//! Its metric (kind `event`, gated as `event:"NAME"`) is the latency from
//! the `since` step's request to the event's arrival. No match within
//! `timeout` is a failed check with cause `event_timeout`; a stream closed
//! for good is an error with cause `stream_closed`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use toml::Spanned;

use super::request;
use crate::engine::StepKind;
use crate::engine::http::HttpResponse;
use crate::metrics::ErrorCause;
use crate::plan::format_duration;
use crate::scenario::check::{self, LazyJson};
use crate::scenario::compile::{Compiler, RawChecks, StepTable};
use crate::scenario::diagnostic::{Diagnostic, did_you_mean};
use crate::scenario::json_pick::JsonPaths;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::model::{Capture, CaptureSource, Check, Subject};
use crate::scenario::step_run::StepRun;
use crate::scenario::stream::{self, Event, Wait};

/// How long an await waits when it names no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `[step.await]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAwait {
    stream: Spanned<String>,
    since: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    event: Option<Spanned<String>>,
    #[serde(default)]
    checks: RawChecks,
    #[serde(default)]
    capture: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// An awaited event.
#[derive(Debug, Clone)]
pub struct Await {
    /// The stream's index among the journey's.
    pub stream: usize,
    /// The stream's name (its subscribe step's).
    pub stream_name: String,
    /// The step whose request the latency counts from, by index.
    pub since: Option<usize>,
    /// How long to wait.
    pub timeout: Duration,
    /// The event name asked for.
    pub event: Option<String>,
    /// Checks over the event's data.
    pub checks: Vec<Check>,
    /// Values captured from it.
    pub captures: Vec<Capture>,
}

/// Resolves a stream named in a step's table: one an earlier step
/// subscribes. Returns its index and kind.
pub(crate) fn stream_named(
    c: &Compiler<'_>,
    name: &Spanned<String>,
) -> Result<(usize, stream::StreamKind), Diagnostic> {
    match c.streams.iter().position(|(n, _)| n == name.get_ref()) {
        Some(i) => Ok((i, c.streams[i].1)),
        None => {
            let d = c.err(
                name.span(),
                format!(
                    "no earlier step subscribes to a stream named \"{}\"",
                    name.get_ref()
                ),
            );
            Err(
                match did_you_mean(name.get_ref(), c.streams.iter().map(|(n, _)| n.as_str())) {
                    Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                    None => d.with_hint(
                        "a stream is named by the step that opens it: [[step]] name = \"orders\" with [step.subscribe] kind = \"sse\", before this step",
                    ),
                },
            )
        }
    }
}

impl<S: StepTable> Compile<S> for Await {
    type Table = RawAwait;

    const WHAT: &'static str = "an await step";
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(key: &str) -> Option<String> {
        Some(
            match key {
                "checks" | "capture" => {
                    "an await's checks and captures are keys of [step.await]: write them after it"
                }
                "as" => "an await reads the stream as the identity that subscribed to it",
                _ => "an await sends nothing: it waits on a stream for an event",
            }
            .to_string(),
        )
    }

    fn declare(c: &mut Compiler<'_>, table: &RawAwait) -> Result<(), Diagnostic> {
        for k in table.capture.keys() {
            c.check_name(k)?;
            c.slot(k.get_ref());
        }
        Ok(())
    }

    fn compile(
        c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<RawAwait>,
    ) -> Result<Self, Diagnostic> {
        let raw = table.get_ref();
        let (stream, _) = stream_named(c, &raw.stream)?;
        let since = match &raw.since {
            None => None,
            Some(s) => Some(step_named(c, s)?),
        };
        let timeout = match &raw.timeout {
            Some(t) => positive(c, t)?,
            None => DEFAULT_TIMEOUT,
        };
        let mut checks = Vec::new();
        for ch in &raw.checks {
            checks.push(check::compile(c, ch)?);
        }
        let mut captures = Vec::new();
        for (k, v) in &raw.capture {
            let slot = c
                .slots
                .iter()
                .position(|s| s == k.get_ref())
                .expect("declared in the first pass");
            captures.push(Capture {
                slot,
                sensitive: crate::redact::is_sensitive_name(k.get_ref()),
                source: request::capture_source(c, v)?,
            });
        }
        Ok(Await {
            stream,
            stream_name: raw.stream.get_ref().clone(),
            since,
            timeout,
            event: raw.event.as_ref().map(|e| e.get_ref().clone()),
            checks,
            captures,
        })
    }

    fn default_name(&self, _step: &S) -> String {
        match &self.event {
            Some(e) => format!("{} on {}", e, self.stream_name),
            None => format!("event on {}", self.stream_name),
        }
    }
}

/// A duration above zero.
pub(crate) fn positive(c: &Compiler<'_>, t: &Spanned<String>) -> Result<Duration, Diagnostic> {
    let d = c.duration(t)?;
    if d.is_zero() {
        return Err(c.err(t.span(), "a timeout is above 0, such as \"2s\""));
    }
    Ok(d)
}

/// The index of an earlier step named `s`.
pub(crate) fn step_named(c: &Compiler<'_>, s: &Spanned<String>) -> Result<usize, Diagnostic> {
    c.step_names
        .iter()
        .position(|n| n == s.get_ref())
        .ok_or_else(|| {
            let d = c.err(
                s.span(),
                format!("no earlier step is named \"{}\"", s.get_ref()),
            );
            match did_you_mean(s.get_ref(), c.step_names.iter().map(String::as_str)) {
                Some(m) => d.with_hint(format!("did you mean \"{m}\"?")),
                None => d.with_hint(
                    "`since` names the step whose request causes the event (one before this one)",
                ),
            }
        })
}

/// Metric and check ids of an await.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwaitIds {
    /// The event's latency.
    pub metric: usize,
    /// "event arrives within ...".
    pub arrives: usize,
    /// Its checks.
    pub checks: Vec<usize>,
    /// Its captures' check.
    pub captures: usize,
    /// What the checks and captures read of an event's JSON.
    pub json: JsonPaths,
}

impl Await {
    /// The label of its arrival check.
    fn arrives_label(&self) -> String {
        let what = match &self.event {
            Some(e) => format!("event {e}"),
            None => "event".to_string(),
        };
        format!("{what} arrives within {}", format_duration(self.timeout))
    }
}

impl Kind for Await {
    type Ids = AwaitIds;

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<AwaitIds, String> {
        let name = r.qualify(step);
        let metric = r.step(name.clone(), StepKind::Event);
        let arrives = r.check(&name, self.arrives_label());
        let checks = self
            .checks
            .iter()
            .map(|c| r.check(&name, c.label.clone()))
            .collect();
        let mut captures = 0;
        if !self.captures.is_empty() {
            let names: Vec<&str> = self
                .captures
                .iter()
                .map(|c| r.slots[c.slot].as_str())
                .collect();
            captures = r.check(&name, format!("captures {}", names.join(", ")));
        }
        let json = JsonPaths::new(
            self.checks
                .iter()
                .filter_map(|c| match &c.subject {
                    Subject::Json(p) => Some(p.as_str()),
                    Subject::Elements(e) => Some(e.pointer.as_str()),
                    _ => None,
                })
                .chain(self.captures.iter().filter_map(|c| match &c.source {
                    CaptureSource::Json(p) => Some(p.as_str()),
                    _ => None,
                })),
        );
        Ok(AwaitIds {
            metric,
            arrives,
            checks,
            captures,
            json,
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(0)
    }

    fn max_logins(&self) -> u64 {
        0
    }

    async fn execute(&self, ids: &AwaitIds, run: &mut StepRun<'_>) -> bool {
        Box::pin(await_event(self, ids, run)).await
    }
}

/// The answer a check reads of an event: its data as the body.
pub(crate) fn as_answer(e: &Event) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: http::HeaderMap::new(),
        body: e.data.clone(),
    }
}

async fn await_event(a: &Await, ids: &AwaitIds, run: &mut StepRun<'_>) -> bool {
    let start = Instant::now();
    let js = &run.user.journeys[run.ji];
    let Some(held) = js.streams[a.stream].as_ref() else {
        fail(
            run,
            a,
            ids,
            ErrorCause::StreamClosed,
            format!(
                "stream \"{}\" is not open: its subscribe step has not opened it",
                a.stream_name
            ),
            String::new(),
        );
        return false;
    };
    let ch = held.channel.clone();
    let since = a.since.and_then(|i| js.sent_at.get(i).copied().flatten());
    let deadline = start + a.timeout;
    let mut from = 0;
    let mut judged = 0u64;
    let mut last_skipped: Option<Event> = None;
    let wait = {
        let ctx = run.ctx();
        let secrets = &run.shared.secrets;
        stream::wait_for(&ch, deadline, &mut from, |e| {
            if since.is_some_and(|s| e.at < s) {
                return false;
            }
            judged += 1;
            let ok = a.event.as_ref().is_none_or(|want| e.named(want)) && {
                let answer = as_answer(e);
                let mut json = LazyJson::new(&e.data, &ids.json);
                a.checks.iter().all(|c| {
                    check::evaluate(c, &answer, &mut json, Duration::ZERO, &ctx, secrets).is_ok()
                })
            };
            if !ok {
                last_skipped = Some(e.clone());
            }
            ok
        })
        .await
    };
    match wait {
        Wait::Found(e) => {
            let latency = e.at.saturating_duration_since(since.unwrap_or(start));
            run.it
                .recorder
                .record_stream(ids.metric, Some(latency), None, None, false);
            run.it.recorder.check(ids.arrives, true);
            for id in &ids.checks {
                run.it.recorder.check(*id, true);
            }
            capture(run, a, ids, &e)
        }
        Wait::Closed(why) => {
            fail(
                run,
                a,
                ids,
                ErrorCause::StreamClosed,
                format!("stream \"{}\" closed: {why}", a.stream_name),
                last_skipped.map(|e| shown(&e)).unwrap_or_default(),
            );
            false
        }
        Wait::TimedOut => {
            let dropped = ch.lock().dropped;
            let mut why = format!(
                "no event on stream \"{}\" matched within {} ({judged} judged",
                a.stream_name,
                format_duration(a.timeout)
            );
            if dropped > 0 {
                why.push_str(&format!(
                    ", {dropped} dropped from the stream's full buffer"
                ));
            }
            why.push(')');
            if let Some(e) = &last_skipped {
                why.push_str(&format!(
                    "; the last one skipped: {}",
                    skipped_because(run, a, ids, e)
                ));
            }
            fail(
                run,
                a,
                ids,
                ErrorCause::EventTimeout,
                why,
                last_skipped.map(|e| shown(&e)).unwrap_or_default(),
            );
            false
        }
    }
}

/// Why event `e` did not match `a`.
fn skipped_because(run: &StepRun<'_>, a: &Await, ids: &AwaitIds, e: &Event) -> String {
    if let Some(want) = &a.event
        && !e.named(want)
    {
        return format!("event {:?}, not {want:?}", e.shown_name());
    }
    let answer = as_answer(e);
    let mut json = LazyJson::new(&e.data, &ids.json);
    for c in &a.checks {
        if let Err(why) = check::evaluate(
            c,
            &answer,
            &mut json,
            Duration::ZERO,
            &run.ctx(),
            &run.shared.secrets,
        ) {
            return format!("{}: {why}", c.label);
        }
    }
    "it arrived before the `since` step's request".to_string()
}

/// An event as a failure sample shows it.
fn shown(e: &Event) -> String {
    let data = String::from_utf8_lossy(&e.data);
    let cut = crate::scenario::failure::SAMPLE_BODY_LIMIT.min(data.len());
    let mut end = cut;
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    format!("event {}\n{}", e.shown_name(), &data[..end])
}

/// Records a failed await: an error of `cause` on its metric, its arrival
/// check failed, a sample.
fn fail(
    run: &mut StepRun<'_>,
    a: &Await,
    ids: &AwaitIds,
    cause: ErrorCause,
    why: String,
    response: String,
) {
    run.it
        .recorder
        .record_stream(ids.metric, None, None, Some(cause), true);
    run.it.recorder.check(ids.arrives, false);
    run.sample_stream(
        &a.arrives_label(),
        None,
        None,
        Some(cause),
        why,
        format!("await on stream \"{}\"", a.stream_name),
        response,
    );
}

/// Captures `a`'s values from event `e`; true when every one was found.
fn capture(run: &mut StepRun<'_>, a: &Await, ids: &AwaitIds, e: &Event) -> bool {
    if a.captures.is_empty() {
        return true;
    }
    let mut json = LazyJson::new(&e.data, &ids.json);
    let mut missing = Vec::new();
    for c in &a.captures {
        if !request::take_capture(run, c, &mut json, &e.data, None) {
            missing.push(run.j.slots[c.slot].clone());
        }
    }
    run.it.recorder.check(ids.captures, missing.is_empty());
    if missing.is_empty() {
        return true;
    }
    run.sample_stream(
        "captures",
        None,
        None,
        None,
        format!("nothing to capture for {} in the event", missing.join(", ")),
        format!("await on stream \"{}\"", a.stream_name),
        shown(e),
    );
    false
}
