//! Streams a virtual user holds open across steps and iterations: a
//! server-sent events response ([`sse`]) or a WebSocket ([`ws`]), opened on
//! the engine's client (`HttpClient::open_stream`: a connection of its own,
//! TLS by the run's connector, a WebSocket by an HTTP/1.1 upgrade).
//!
//! A reader task per stream (on the user's worker) parses what arrives into
//! [`Event`]s, stamps each with its arrival, and keeps them in a bounded
//! [`Channel`]: an event that arrives before a step awaits it still counts,
//! and when the buffer is full the oldest is dropped (and counted). Steps
//! read the channel with [`wait_for`]. When the stream ends, the task
//! reconnects by the subscribe step's [`Reconnect`] policy (each reconnect
//! timed under its own metric), or marks the channel closed with why.
//!
//! Below the kinds: `steps/subscribe.rs` opens streams, `steps/await_event.rs`,
//! `steps/send.rs` and `steps/stream_isolation.rs` use them.

pub(crate) mod sse;
pub(crate) mod ws;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::engine::http::{Endpoint, HttpClient, HttpFailure};
use crate::metrics::{ErrorCause, Recorder};

/// The protocol of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Server-sent events: a `text/event-stream` response.
    Sse,
    /// A WebSocket: one event per text (or binary) message.
    Ws,
}

impl StreamKind {
    /// As a scenario writes it: `sse` or `ws`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Sse => "sse",
            StreamKind::Ws => "ws",
        }
    }
}

/// What a stream does when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Nothing: the stream is closed, and steps that await on it fail
    /// with `stream_closed` (the next subscribe opens it again).
    None,
    /// Reconnect after `min`, doubling up to `max` between attempts, at
    /// most `attempts` times over the stream's life.
    Backoff {
        /// The first wait.
        min: Duration,
        /// The longest wait.
        max: Duration,
        /// Reconnects allowed.
        attempts: u32,
    },
}

/// One event received on a stream.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// Its number on the stream (0-based, reconnects included).
    pub seq: u64,
    /// Its SSE `event:` name; `None` on a WebSocket, whose event name is
    /// the `type` field of its JSON.
    pub name: Option<String>,
    /// Its data (SSE `data:` lines, or the WebSocket message).
    pub data: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Event {
    /// Whether the event is named `want`: its SSE `event:`, or the string
    /// at `/type` of a WebSocket message's JSON.
    pub(crate) fn named(&self, want: &str) -> bool {
        match &self.name {
            Some(n) => n == want,
            None => {
                serde_json::from_slice::<serde_json::Value>(&self.data)
                    .ok()
                    .as_ref()
                    .and_then(|v| v.get("type"))
                    .and_then(|t| t.as_str())
                    == Some(want)
            }
        }
    }

    /// Its name as shown in a message.
    pub(crate) fn shown_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => serde_json::from_slice::<serde_json::Value>(&self.data)
                .ok()
                .as_ref()
                .and_then(|v| v.get("type"))
                .and_then(|t| t.as_str())
                .unwrap_or("(no type)")
                .to_string(),
        }
    }
}

/// Whether a stream can still deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// Connected.
    Open,
    /// Ended; reconnecting by its policy.
    Reconnecting,
    /// Ended for good, and why.
    Closed(String),
}

/// The events a stream received and not yet taken, bounded.
#[derive(Debug)]
pub(crate) struct Buffer {
    /// Oldest first.
    pub events: VecDeque<Event>,
    /// The most events kept.
    pub capacity: usize,
    /// Events dropped (oldest first) because the buffer was full.
    pub dropped: u64,
    /// Events received.
    pub received: u64,
    /// Reconnects made.
    pub reconnects: u64,
    /// Whether the stream can still deliver.
    pub status: Status,
}

/// What a stream's reader task shares with the steps.
#[derive(Debug)]
pub(crate) struct Channel {
    buf: Mutex<Buffer>,
    notify: Notify,
    /// A WebSocket's writing half (none on SSE, or while reconnecting).
    pub sink: tokio::sync::Mutex<Option<ws::Sink>>,
}

impl Channel {
    fn new(capacity: usize) -> Self {
        Channel {
            buf: Mutex::new(Buffer {
                events: VecDeque::new(),
                capacity: capacity.max(1),
                dropped: 0,
                received: 0,
                reconnects: 0,
                status: Status::Open,
            }),
            notify: Notify::new(),
            sink: tokio::sync::Mutex::new(None),
        }
    }

    /// The buffer, locked (a poisoned lock still holds valid events).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, name: Option<String>, data: Bytes, at: Instant) {
        {
            let mut b = self.lock();
            if b.events.len() >= b.capacity {
                b.events.pop_front();
                b.dropped += 1;
            }
            let seq = b.received;
            b.received += 1;
            b.events.push_back(Event {
                seq,
                name,
                data,
                at,
            });
        }
        self.notify.notify_waiters();
    }

    fn set_status(&self, status: Status) {
        self.lock().status = status;
        self.notify.notify_waiters();
    }
}

/// How a wait for an event ended.
#[derive(Debug)]
pub(crate) enum Wait {
    /// This event matched (it is taken from the buffer).
    Found(Event),
    /// The stream closed for good, and why.
    Closed(String),
    /// Nothing matched before the deadline.
    TimedOut,
}

/// Waits until an event of `ch` matches (each event is judged once, from
/// event number `from` on), the stream closes, or `deadline` passes.
/// Returns with the number of the next event to judge.
pub(crate) async fn wait_for(
    ch: &Channel,
    deadline: Instant,
    from: &mut u64,
    mut matches: impl FnMut(&Event) -> bool,
) -> Wait {
    loop {
        let notified = ch.notify.notified();
        tokio::pin!(notified);
        // Registered before the buffer is read: an event pushed between
        // the read and the wait still wakes it.
        notified.as_mut().enable();
        {
            let mut b = ch.lock();
            let start = b.events.partition_point(|e| e.seq < *from);
            let mut found = None;
            for (i, e) in b.events.iter().enumerate().skip(start) {
                *from = e.seq + 1;
                if matches(e) {
                    found = Some(i);
                    break;
                }
            }
            if let Some(i) = found {
                return Wait::Found(b.events.remove(i).expect("found in the buffer"));
            }
            if let Status::Closed(why) = &b.status {
                return Wait::Closed(why.clone());
            }
        }
        if tokio::time::timeout_at(deadline.into(), notified)
            .await
            .is_err()
        {
            return Wait::TimedOut;
        }
    }
}

/// The ids of a stream's metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamMetrics {
    /// Time to the first event after each connect.
    pub first_event: usize,
    /// Each reconnect, timed like the first connect.
    pub reconnect: usize,
}

/// What opening a stream needs, kept to open it again.
#[derive(Clone)]
pub(crate) struct Opener {
    /// The worker's client.
    pub client: HttpClient,
    /// Where.
    pub endpoint: Endpoint,
    /// The request's method, origin-form URI and headers (credentials
    /// included: a reconnect sends what the subscribe sent).
    pub method: http::Method,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// The protocol.
    pub kind: StreamKind,
    /// Bound of one event, in bytes.
    pub max_event: usize,
}

/// A stream just opened.
pub(crate) enum Conn {
    /// An event-stream body.
    Sse(Incoming),
    /// A WebSocket, split.
    Ws(ws::Sink, ws::Read),
}

/// Why a stream did not open.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Answered with a status that does not open it.
    Refused {
        /// The status.
        status: u16,
        /// Why it is not a stream, for people.
        why: String,
        /// The answer's headers.
        headers: http::HeaderMap,
        /// The first bytes of its body.
        body: Bytes,
    },
    /// No answer.
    Failed(HttpFailure),
}

impl OpenError {
    /// The cause it is counted under.
    pub(crate) fn cause(&self) -> ErrorCause {
        match self {
            OpenError::Refused { .. } => ErrorCause::StreamRefused,
            OpenError::Failed(f) => f.cause,
        }
    }

    /// The status it was answered with, if any.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            OpenError::Refused { status, .. } => Some(*status),
            OpenError::Failed(_) => None,
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Refused { why, .. } => write!(f, "stream_refused: {why}"),
            OpenError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// The most bytes of a refusal's body kept for its failure sample.
const REFUSAL_BODY: usize = 4096;

/// Opens the stream `o` describes: the request, then (SSE) a 200 of type
/// `text/event-stream`, or (WebSocket) a 101 and the upgrade.
pub(crate) async fn open(o: &Opener) -> Result<Conn, OpenError> {
    let mut req = http::Request::new(crate::engine::http::RequestBody::new(Bytes::new()));
    *req.method_mut() = o.method.clone();
    *req.uri_mut() = o.uri.parse().map_err(|e| {
        OpenError::Failed(HttpFailure {
            cause: ErrorCause::Other,
            message: format!("invalid URL path: {e}"),
        })
    })?;
    *req.headers_mut() = o.headers.clone();
    match o.kind {
        StreamKind::Sse => {
            req.headers_mut()
                .entry(http::header::ACCEPT)
                .or_insert(http::HeaderValue::from_static("text/event-stream"));
            req.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-cache"),
            );
        }
        StreamKind::Ws => ws::request_headers(req.headers_mut()),
    }
    let resp = o
        .client
        .open_stream(&o.endpoint, req)
        .await
        .map_err(OpenError::Failed)?;
    let status = resp.status().as_u16();
    let refused = |why: String, resp: http::Response<Incoming>| async move {
        let (parts, body) = resp.into_parts();
        OpenError::Refused {
            status,
            why,
            headers: parts.headers,
            body: first_bytes(body).await,
        }
    };
    match o.kind {
        StreamKind::Sse => {
            if status != 200 {
                return Err(refused(format!("answered {status}, not 200"), resp).await);
            }
            let ctype = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ctype
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
            {
                let why = format!("answered 200 of type {ctype:?}, not text/event-stream");
                return Err(refused(why, resp).await);
            }
            Ok(Conn::Sse(resp.into_body()))
        }
        StreamKind::Ws => {
            if status != 101 {
                return Err(refused(
                    format!("answered {status}, not 101 (switching protocols)"),
                    resp,
                )
                .await);
            }
            let (sink, read) = ws::upgrade(resp, o.max_event).await.map_err(|why| {
                OpenError::Failed(HttpFailure {
                    cause: ErrorCause::Protocol,
                    message: why,
                })
            })?;
            Ok(Conn::Ws(sink, read))
        }
    }
}

/// The first bytes of a refusal's body, without waiting long for more.
async fn first_bytes(mut body: Incoming) -> Bytes {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                out.extend_from_slice(&d[..d.len().min(REFUSAL_BODY - out.len())]);
                if out.len() >= REFUSAL_BODY {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(200), read).await;
    Bytes::from(out)
}

/// A stream held by a user: its channel and its reader task (stopped when
/// the stream is dropped).
#[derive(Debug)]
pub(crate) struct Held {
    /// What the reader shares with the steps.
    pub channel: Arc<Channel>,
    task: JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a reader task needs besides its connection.
pub(crate) struct Reader {
    /// To reconnect.
    pub opener: Opener,
    /// Its policy.
    pub reconnect: Reconnect,
    /// Where it records.
    pub recorder: Recorder,
    /// What it records.
    pub metrics: StreamMetrics,
}

/// Starts holding `conn`, opened at `opened`, keeping at most `capacity`
/// events.
pub(crate) fn hold(conn: Conn, opened: Instant, capacity: usize, reader: Reader) -> Held {
    let channel = Arc::new(Channel::new(capacity));
    let ch = channel.clone();
    let task = tokio::spawn(pump(ch, conn, opened, reader));
    Held { channel, task }
}

/// Reads the stream until it ends, reconnecting by the policy.
async fn pump(ch: Arc<Channel>, mut conn: Conn, mut opened: Instant, mut r: Reader) {
    let mut attempts = 0u32;
    loop {
        let why = match conn {
            Conn::Sse(body) => {
                let mut last_id = String::new();
                let why = read_sse(&ch, body, opened, &r, &mut last_id).await;
                // A reconnect resumes where the stream was (its last `id:`).
                if let Ok(v) = http::HeaderValue::from_str(&last_id)
                    && !last_id.is_empty()
                {
                    r.opener.headers.insert("last-event-id", v);
                }
                why
            }
            Conn::Ws(sink, read) => {
                *ch.sink.lock().await = Some(sink);
                let why = ws::read(&ch, read, opened, &r).await;
                *ch.sink.lock().await = None;
                why
            }
        };
        let Reconnect::Backoff {
            min,
            max,
            attempts: most,
        } = r.reconnect
        else {
            ch.set_status(Status::Closed(why));
            return;
        };
        ch.set_status(Status::Reconnecting);
        conn = loop {
            if attempts >= most {
                ch.set_status(Status::Closed(format!(
                    "{why}; no reconnect left ({attempts} made, max = {most})"
                )));
                return;
            }
            let wait = min
                .saturating_mul(1u32 << attempts.min(20))
                .min(max.max(min));
            tokio::time::sleep(wait).await;
            attempts += 1;
            ch.lock().reconnects += 1;
            let t0 = Instant::now();
            // Boxed: opening (TCP, TLS, the request) is a large future that
            // every held stream's task would otherwise carry all its life.
            match Box::pin(open(&r.opener)).await {
                Ok(c) => {
                    let status = match r.opener.kind {
                        StreamKind::Sse => 200,
                        StreamKind::Ws => 101,
                    };
                    r.recorder.record_stream(
                        r.metrics.reconnect,
                        Some(t0.elapsed()),
                        Some(status),
                        None,
                        false,
                    );
                    opened = t0;
                    ch.set_status(Status::Open);
                    break c;
                }
                Err(e) => {
                    r.recorder.record_stream(
                        r.metrics.reconnect,
                        None,
                        e.status(),
                        Some(e.cause()),
                        true,
                    );
                }
            }
        };
    }
}

/// Records the time to the first event of a connection, once.
pub(crate) fn first_event(r: &Reader, pending: &mut bool, opened: Instant, at: Instant) {
    if std::mem::take(pending) {
        r.recorder.record_stream(
            r.metrics.first_event,
            Some(at.saturating_duration_since(opened)),
            None,
            None,
            false,
        );
    }
}

/// Reads an event-stream body into `ch`; returns why it ended, with the
/// last event id it set in `last_id`.
async fn read_sse(
    ch: &Channel,
    mut body: Incoming,
    opened: Instant,
    r: &Reader,
    last_id: &mut String,
) -> String {
    let mut parser = sse::SseParser::new(r.opener.max_event);
    let mut out = Vec::new();
    let mut pending = true;
    loop {
        if parser.last_id() != last_id.as_str() {
            *last_id = parser.last_id().to_string();
        }
        match body.frame().await {
            None => return "the server ended the event stream".into(),
            Some(Err(e)) => {
                return format!(
                    "the event stream broke: {}",
                    crate::engine::http::error_chain(&e)
                );
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let at = Instant::now();
                if let Err(e) = parser.feed(&data, &mut out) {
                    return format!("the event stream was refused: {e}");
                }
                if !out.is_empty() {
                    first_event(r, &mut pending, opened, at);
                }
                for e in out.drain(..) {
                    ch.push(Some(e.name), Bytes::from(e.data), at);
                }
            }
        }
    }
}
