//! The `stream_isolation` kind: the isolation probe over streams. Another
//! tenant's identity holds a stream (an earlier subscribe step made as it);
//! after the owner's steps made events about a resource, this step watches
//! that stream for `timeout`, and every event that carries one of the
//! resource's markers (its id captured earlier, a reference only the owner
//! may see) is a `tenant_isolation_violations`, with a failure sample of
//! kind violation. Events already buffered count too: a leak that arrived
//! before the probe started is a leak.
//!
//! Its check passes when the watch ends with no marker seen; a stream that
//! closes during the watch proves nothing and is an error (`stream_closed`).

use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::await_event::{positive, stream_named};
use crate::metrics::{ErrorCause, Violation};
use crate::plan::format_duration;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::step_run::StepRun;
use crate::scenario::stream::{self, Wait};
use crate::scenario::template::Template;

/// How long the probe watches when the scenario says nothing.
pub const DEFAULT_WATCH: std::time::Duration = std::time::Duration::from_millis(500);

/// The `[step.stream_isolation]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStreamIsolation {
    stream: Spanned<String>,
    markers: Spanned<Vec<Spanned<String>>>,
    timeout: Option<Spanned<String>>,
}

/// A watch for another tenant's events on a stream.
#[derive(Debug, Clone)]
pub struct StreamIsolation {
    /// The prober's stream, by index among the journey's.
    pub stream: usize,
    /// Its name.
    pub stream_name: String,
    /// Values that must not appear in any event of it.
    pub markers: Vec<Template>,
    /// How long to watch.
    pub timeout: std::time::Duration,
}

impl<S: StepTable> Compile<S> for StreamIsolation {
    type Table = RawStreamIsolation;

    const WHAT: &'static str = "a stream isolation step";
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(_key: &str) -> Option<String> {
        Some(
            "a stream isolation step watches a stream another tenant subscribed to: `stream`, `markers` and `timeout` in [step.stream_isolation]"
                .to_string(),
        )
    }

    fn compile(
        c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<RawStreamIsolation>,
    ) -> Result<Self, Diagnostic> {
        let raw = table.get_ref();
        let (stream, _) = stream_named(c, &raw.stream)?;
        if raw.markers.get_ref().is_empty() {
            return Err(c
                .err(
                    raw.markers.span(),
                    "a stream isolation probe needs at least one marker",
                )
                .with_hint(
                    "markers = [\"{{ order_id }}\"]: values of the other tenant's resource",
                ));
        }
        Ok(StreamIsolation {
            stream,
            stream_name: raw.stream.get_ref().clone(),
            markers: raw
                .markers
                .get_ref()
                .iter()
                .map(|m| c.template(m))
                .collect::<Result<_, _>>()?,
            timeout: match &raw.timeout {
                Some(t) => positive(c, t)?,
                None => DEFAULT_WATCH,
            },
        })
    }

    fn default_name(&self, _step: &S) -> String {
        format!("stream isolation on {}", self.stream_name)
    }
}

/// The check id of a stream isolation step.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamIsolationIds {
    /// "no event carries a marker".
    pub hidden: usize,
}

impl StreamIsolation {
    fn label(&self) -> String {
        format!(
            "no event carries a marker within {}",
            format_duration(self.timeout)
        )
    }
}

impl Kind for StreamIsolation {
    type Ids = StreamIsolationIds;

    fn metric_names(&self, _step: &str, _out: &mut Vec<String>) {}

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<StreamIsolationIds, String> {
        let name = r.qualify(step);
        Ok(StreamIsolationIds {
            hidden: r.check(&name, self.label()),
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(0)
    }

    fn max_logins(&self) -> u64 {
        0
    }

    async fn execute(&self, ids: &StreamIsolationIds, run: &mut StepRun<'_>) -> bool {
        Box::pin(watch(self, ids, run)).await
    }
}

async fn watch(s: &StreamIsolation, ids: &StreamIsolationIds, run: &mut StepRun<'_>) -> bool {
    let label = s.label();
    let markers = match s
        .markers
        .iter()
        .map(|m| m.render(&run.ctx()))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(m) => m.into_iter().filter(|m| !m.is_empty()).collect::<Vec<_>>(),
        Err(u) => {
            run.it.recorder.check(ids.hidden, false);
            run.sample(
                &label,
                format!("variable \"{}\" has no value", u.0),
                String::new(),
                String::new(),
            );
            return false;
        }
    };
    let request = format!(
        "watch stream \"{}\" for another tenant's events",
        s.stream_name
    );
    let Some(ch) = run.user.journeys[run.ji].streams[s.stream]
        .as_ref()
        .map(|h| h.channel.clone())
    else {
        run.it.recorder.check(ids.hidden, false);
        run.sample_stream(
            &label,
            None,
            None,
            Some(ErrorCause::StreamClosed),
            format!(
                "stream \"{}\" is not open: its subscribe step has not opened it",
                s.stream_name
            ),
            request,
            String::new(),
        );
        return false;
    };
    if markers.is_empty() {
        run.it.recorder.check(ids.hidden, false);
        run.sample(
            &label,
            "every marker is empty: nothing to watch for".into(),
            request,
            String::new(),
        );
        return false;
    }
    let deadline = Instant::now() + s.timeout;
    let mut from = 0;
    let mut leaks = 0u64;
    loop {
        let wait = stream::wait_for(&ch, deadline, &mut from, |e| {
            let text = String::from_utf8_lossy(&e.data);
            markers.iter().any(|m| text.contains(m.as_str()))
        })
        .await;
        match wait {
            Wait::Found(e) => {
                leaks += 1;
                let kind = Violation::TenantIsolationViolations;
                run.it.recorder.violation(kind, 1);
                let shown = markers
                    .iter()
                    .filter(|m| String::from_utf8_lossy(&e.data).contains(m.as_str()))
                    .count();
                run.sample_stream(
                    &label,
                    Some(kind),
                    None,
                    None,
                    format!(
                        "another tenant's subscriber received event {} carrying {shown} marker(s) of the resource",
                        e.shown_name()
                    ),
                    request.clone(),
                    String::from_utf8_lossy(&e.data).into_owned(),
                );
            }
            Wait::Closed(why) => {
                run.it.recorder.check(ids.hidden, false);
                run.sample_stream(
                    &label,
                    None,
                    None,
                    Some(ErrorCause::StreamClosed),
                    format!(
                        "error, not a verdict: stream \"{}\" closed during the watch: {why}",
                        s.stream_name
                    ),
                    request,
                    String::new(),
                );
                return false;
            }
            Wait::TimedOut => break,
        }
    }
    run.it.recorder.check(ids.hidden, leaks == 0);
    leaks == 0
}
