//! The `send` kind: one text message on a held WebSocket (`body`, or a
//! `json` template rendered as a request's body is). A server-sent events
//! stream only receives: a send on one is refused when the file loads.

use serde::Deserialize;
use toml::Spanned;

use super::await_event::stream_named;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::model::Body;
use crate::scenario::render::write_json;
use crate::scenario::source::SpannedValue;
use crate::scenario::step_run::StepRun;
use crate::scenario::stream::{StreamKind, ws};

/// The `[step.send]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSend {
    stream: Spanned<String>,
    body: Option<Spanned<String>>,
    json: Option<Spanned<SpannedValue>>,
}

/// A message sent on a WebSocket.
#[derive(Debug, Clone)]
pub struct Send {
    /// The stream's index among the journey's.
    pub stream: usize,
    /// Its name.
    pub stream_name: String,
    /// The message.
    pub body: Body,
}

impl<S: StepTable> Compile<S> for Send {
    type Table = RawSend;

    const WHAT: &'static str = "a send step";
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(key: &str) -> Option<String> {
        Some(match key {
            "json" | "body" => "the message is `body` or `json` inside [step.send]".to_string(),
            _ => "a send step writes one message on a WebSocket: `stream` and `body` (or `json`) in [step.send]".to_string(),
        })
    }

    fn compile(
        c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<RawSend>,
    ) -> Result<Self, Diagnostic> {
        let raw = table.get_ref();
        let (stream, kind) = stream_named(c, &raw.stream)?;
        if kind != StreamKind::Ws {
            return Err(c
                .err(
                    raw.stream.span(),
                    format!(
                        "stream \"{}\" is server-sent events: it only receives, nothing can be sent on it",
                        raw.stream.get_ref()
                    ),
                )
                .with_hint("send on a WebSocket (kind = \"ws\"), or make the request a step of its own"));
        }
        let body = match (&raw.body, &raw.json) {
            (Some(_), Some(j)) => {
                return Err(c.err(j.span(), "a send has either `json` or `body`, not both"));
            }
            (Some(b), None) => Body::Raw(c.template(b)?),
            (None, Some(j)) => Body::Json(c.json_template(j, &[])?),
            (None, None) => {
                return Err(c
                    .err(table.span(), "a send step needs the message: `body` or `json`")
                    .with_hint("body = \"ping\", or json = { type = \"subscribe\", order = \"{{ order_id }}\" }"));
            }
        };
        Ok(Send {
            stream,
            stream_name: raw.stream.get_ref().clone(),
            body,
        })
    }

    fn default_name(&self, _step: &S) -> String {
        format!("send on {}", self.stream_name)
    }
}

/// The check id of a send.
#[derive(Debug, Clone, Default)]
pub(crate) struct SendIds {
    /// "message sent".
    pub sent: usize,
}

impl Kind for Send {
    type Ids = SendIds;

    fn metric_names(&self, _step: &str, _out: &mut Vec<String>) {}

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<SendIds, String> {
        let name = r.qualify(step);
        Ok(SendIds {
            sent: r.check(&name, "message sent".into()),
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(0)
    }

    fn max_logins(&self) -> u64 {
        0
    }

    async fn execute(&self, ids: &SendIds, run: &mut StepRun<'_>) -> bool {
        Box::pin(send(self, ids, run)).await
    }
}

async fn send(s: &Send, ids: &SendIds, run: &mut StepRun<'_>) -> bool {
    let ctx = run.ctx();
    let text = match &s.body {
        Body::None => Ok(String::new()),
        Body::Raw(t) => t.render(&ctx).map_err(|u| u.0),
        Body::Json(t) => {
            let mut out = Vec::new();
            write_json(t, &ctx, &mut out)
                .map(|_| String::from_utf8_lossy(&out).into_owned())
                .map_err(|u| u.0)
        }
    };
    let text = match text {
        Ok(t) => t,
        Err(var) => {
            run.it.recorder.check(ids.sent, false);
            run.sample(
                "message sent",
                format!("variable \"{var}\" has no value (an earlier capture failed?)"),
                String::new(),
                String::new(),
            );
            return false;
        }
    };
    let channel = run.user.journeys[run.ji].streams[s.stream]
        .as_ref()
        .map(|h| h.channel.clone());
    let res = match channel {
        Some(ch) => ws::send(&ch, text.clone()).await,
        None => Err(format!("stream \"{}\" is not open", s.stream_name)),
    };
    run.it.recorder.check(ids.sent, res.is_ok());
    if let Err(why) = res {
        run.sample_stream(
            "message sent",
            None,
            None,
            Some(crate::metrics::ErrorCause::StreamClosed),
            why,
            format!("send on stream \"{}\"\n{text}", s.stream_name),
            String::new(),
        );
        return false;
    }
    true
}
