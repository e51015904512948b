//! How faults reach requests: the middleware that every request passes and
//! the response body that trickles or breaks.
//!
//! Faults are compiled once into a [`FaultPlan`] so the per-request path only
//! reads plain fields. The front middleware runs for every route (`/health`
//! included): it counts requests, handles `x-request-id`, and applies the
//! crash, stall, latency and error-rate faults. The body middleware runs for
//! API routes only and applies `slow-body` and `truncated-body`.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use super::error::ApiError;
use super::fault::{Fault, Latency};
use super::server::{AnswerLedger, AppState, KillReason};

/// The request-id header, read and written.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a truncated body waits before it breaks the connection.
const TRUNCATION_PAUSE: Duration = Duration::from_millis(20);

/// Longest a crash waits for the answers it owes to be written.
const CRASH_DRAIN: Duration = Duration::from_secs(5);

/// Longest incoming request id echoed back; longer ones are replaced.
const MAX_REQUEST_ID: usize = 200;

/// The faults of a target, folded into what the middleware needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FaultPlan {
    pub latency: Vec<Latency>,
    /// Chance that a request fails: the faults' rates combined as independent
    /// events.
    pub error_rate: f64,
    /// Stall windows as offsets from the server's start.
    pub stalls: Vec<(Duration, Duration)>,
    pub tenant_leak: f64,
    pub idempotency_race: bool,
    pub slow_body: Option<(Duration, usize)>,
    pub truncated_body: bool,
    pub crash_after: Option<u64>,
    /// What token verification lets through that it should not.
    pub auth_lax: crate::auth::Lax,
    /// Delays of every event to every subscriber (several add up).
    pub event_delay: Vec<Latency>,
    /// Chance that a subscriber misses an event, the faults combined.
    pub event_drop: f64,
    /// Chance that an event also goes to another tenant, combined.
    pub event_leak: f64,
    /// How long a stream lives before the server closes it (the shortest).
    pub stream_close: Option<Duration>,
}

impl FaultPlan {
    /// Folds a list of faults; later `slow-body` and `crash-after` faults
    /// replace earlier ones, the shortest `stream-close` wins, others
    /// accumulate.
    pub fn new(faults: &[Fault]) -> Self {
        let mut plan = FaultPlan::default();
        let mut keep_going = 1.0;
        let mut no_leak = 1.0;
        let mut no_event_drop = 1.0;
        let mut no_event_leak = 1.0;
        for fault in faults {
            match *fault {
                Fault::Latency(latency) => plan.latency.push(latency),
                Fault::ErrorRate(p) => keep_going *= 1.0 - p,
                Fault::Stall { duration, after } => plan.stalls.push((after, after + duration)),
                Fault::TenantLeak(p) => no_leak *= 1.0 - p,
                Fault::IdempotencyRace => plan.idempotency_race = true,
                Fault::SlowBody {
                    interval,
                    chunk_bytes,
                } => plan.slow_body = Some((interval, chunk_bytes)),
                Fault::TruncatedBody => plan.truncated_body = true,
                Fault::CrashAfter(n) => plan.crash_after = Some(n),
                Fault::AuthAcceptExpired => plan.auth_lax.expired = true,
                Fault::AuthAcceptAlgNone => plan.auth_lax.alg_none = true,
                Fault::AuthAcceptForeignKey => plan.auth_lax.foreign_key = true,
                Fault::EventDelay(latency) => plan.event_delay.push(latency),
                Fault::EventDrop(p) => no_event_drop *= 1.0 - p,
                Fault::EventLeak(p) => no_event_leak *= 1.0 - p,
                Fault::StreamClose(after) => {
                    plan.stream_close = Some(plan.stream_close.map_or(after, |d| d.min(after)));
                }
            }
        }
        plan.event_drop = 1.0 - no_event_drop;
        plan.event_leak = 1.0 - no_event_leak;
        plan.error_rate = 1.0 - keep_going;
        plan.tenant_leak = 1.0 - no_leak;
        plan
    }

    /// Whether the front middleware has any fault to apply.
    fn has_front_faults(&self) -> bool {
        !self.latency.is_empty()
            || self.error_rate > 0.0
            || !self.stalls.is_empty()
            || self.crash_after.is_some()
    }

    /// Whether the body middleware is needed at all.
    pub fn has_body_faults(&self) -> bool {
        self.slow_body.is_some() || self.truncated_body
    }

    /// Draws whether this request leaks another tenant's order.
    pub fn leaks_tenant(&self) -> bool {
        self.tenant_leak > 0.0 && fastrand::f64() < self.tenant_leak
    }
}

/// Runs for every request: counts it, gives the answer an `x-request-id`, and
/// applies the crash, stall, latency and error-rate faults.
pub(crate) async fn front(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ordinal = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID)
        .cloned()
        .unwrap_or_else(new_request_id);
    // Under `crash-after`, an answer within the limit is owed: the crash
    // waits until it is written.
    let owed = match state.faults.crash_after {
        Some(limit) if ordinal <= limit => owe(&state, &request),
        _ => None,
    };
    let mut response = if state.faults.has_front_faults() {
        match apply_front_faults(&state, ordinal).await {
            Some(response) => response,
            None => next.run(request).await,
        }
    } else {
        next.run(request).await
    };
    if let Some(ledger) = owed {
        response = response.map(|body| Body::new(OwedBody { body, ledger }));
    }
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response = super::error::in_json_shape(response);
    }
    response
        .headers_mut()
        .insert(REQUEST_ID.clone(), request_id);
    response
}

/// Records an answer owed under `crash-after` on the request's connection;
/// a request that came without one (served outside `serve`) settles at once.
fn owe(state: &AppState, request: &Request) -> Option<AnswerLedger> {
    match request.extensions().get::<ConnectInfo<AnswerLedger>>() {
        Some(ConnectInfo(ledger)) => {
            ledger.owe();
            Some(ledger.clone())
        }
        None => {
            state.settled.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

/// An owed answer's body; dropping it (hyper is done with it) marks the
/// answer finished, to be settled by the connection's next flush.
struct OwedBody {
    body: Body,
    ledger: AnswerLedger,
}

impl Drop for OwedBody {
    fn drop(&mut self) {
        self.ledger.finished();
    }
}

impl HttpBody for OwedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Applies the front faults; `Some` answers the request instead of the route.
async fn apply_front_faults(state: &AppState, ordinal: u64) -> Option<Response> {
    let plan = &state.faults;
    if let Some(limit) = plan.crash_after
        && ordinal > limit
    {
        // The first `limit` answers go out before the server dies, unless
        // one takes longer than CRASH_DRAIN.
        let deadline = Instant::now() + CRASH_DRAIN;
        while state.settled.load(Ordering::Acquire) < limit && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        state.kill.trigger(KillReason::Crash);
        // Answer only once the server is down: the write then fails on the
        // killed connection (or the runtime is gone), so the client never
        // sees a response.
        state.kill.wait().await;
        return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    let arrived = Instant::now();
    if let Some(end) = plan
        .stalls
        .iter()
        .map(|&(from, to)| (state.started + from, state.started + to))
        .filter(|&(from, to)| from <= arrived && arrived < to)
        .map(|(_, to)| to)
        .max()
    {
        tokio::time::sleep_until(end.into()).await;
    }
    let delay: Duration = plan.latency.iter().map(Latency::sample).sum();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if plan.error_rate > 0.0 && fastrand::f64() < plan.error_rate {
        let status = if fastrand::bool() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Some(ApiError::injected(status).into_response());
    }
    None
}

fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buffer))
        .expect("a UUID is a valid header value")
}

/// Runs for API routes when a body fault is on: re-sends the answer's body
/// slowly, or cut short against its `Content-Length`.
pub(crate) async fn body_faults(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if bytes.is_empty() {
        return Response::from_parts(parts, Body::empty());
    }
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let body = FaultyBody::new(bytes, state.faults.slow_body, state.faults.truncated_body);
    Response::from_parts(parts, Body::new(body))
}

/// The error that cuts a truncated body short.
#[derive(Debug, thiserror::Error)]
#[error("truncated-body fault: body cut after {sent} of {declared} bytes")]
pub(crate) struct Truncated {
    sent: usize,
    declared: usize,
}

/// A response body that trickles out in chunks and may end early.
///
/// Its size hint is deliberately unknown: hyper then frames the body by the
/// `Content-Length` header, and a body that stops short of it (by yielding an
/// error) makes hyper abort the connection, which is what a client of a
/// crashing upstream sees.
pub(crate) struct FaultyBody {
    data: Bytes,
    sent: usize,
    /// Where the body stops: the end, or the middle when truncated.
    stop: usize,
    truncated: bool,
    chunk: usize,
    interval: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl FaultyBody {
    /// Wraps `data`; `slow` is the chunk interval and size.
    pub fn new(data: Bytes, slow: Option<(Duration, usize)>, truncated: bool) -> Self {
        let stop = if truncated {
            data.len() / 2
        } else {
            data.len()
        };
        Self {
            stop,
            truncated,
            chunk: slow.map_or(data.len(), |(_, chunk)| chunk.max(1)),
            interval: slow.map(|(interval, _)| interval),
            sleep: None,
            sent: 0,
            data,
        }
    }
}

impl HttpBody for FaultyBody {
    type Data = Bytes;
    type Error = Truncated;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Truncated>>> {
        let this = &mut *self;
        if this.sent >= this.stop {
            if this.truncated {
                // Pause first: hyper flushes while the body is pending, so the
                // head and the first half reach the client before the cut.
                let pause = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(TRUNCATION_PAUSE)));
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
                this.truncated = false;
                return Poll::Ready(Some(Err(Truncated {
                    sent: this.sent,
                    declared: this.data.len(),
                })));
            }
            return Poll::Ready(None);
        }
        // The first chunk goes at once; each later one waits an interval.
        if let Some(interval) = this.interval
            && this.sent > 0
        {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        let end = (this.sent + this.chunk).min(this.stop);
        let chunk = this.data.slice(this.sent..end);
        this.sent = end;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.stop && !self.truncated
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn plan(faults: &[&str]) -> FaultPlan {
        let faults: Vec<Fault> = faults.iter().map(|f| Fault::from_str(f).unwrap()).collect();
        FaultPlan::new(&faults)
    }

    async fn collect(body: FaultyBody) -> Result<Vec<Bytes>, Truncated> {
        let mut body = std::pin::pin!(body);
        let mut chunks = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            chunks.push(frame?.into_data().unwrap());
        }
        Ok(chunks)
    }

    #[test]
    fn rates_combine_as_independent_events() {
        let plan = plan(&["error-rate=0.5", "error-rate=0.5", "tenant-leak=1"]);
        assert!((plan.error_rate - 0.75).abs() < 1e-12);
        assert_eq!(plan.tenant_leak, 1.0);
        assert!(plan.leaks_tenant());
    }

    #[test]
    fn event_faults_fold_like_the_others() {
        let plan = plan(&[
            "event-drop=0.5",
            "event-drop=0.5",
            "event-leak=0.1",
            "event-delay=5ms",
            "event-delay=1ms..2ms",
            "stream-close=30s",
            "stream-close=10s",
        ]);
        assert!((plan.event_drop - 0.75).abs() < 1e-12);
        assert!((plan.event_leak - 0.1).abs() < 1e-12);
        assert_eq!(plan.event_delay.len(), 2);
        assert_eq!(plan.stream_close, Some(Duration::from_secs(10)));
        // Event faults are not request faults: no middleware runs for them.
        assert!(!plan.has_front_faults());
        assert!(!plan.has_body_faults());
    }

    #[test]
    fn no_faults_means_no_work() {
        let plan = plan(&[]);
        assert!(!plan.has_front_faults());
        assert!(!plan.has_body_faults());
        assert!(!plan.leaks_tenant());
    }

    #[test]
    fn stall_windows_are_offsets_from_start() {
        let plan = plan(&["stall=1s@5s", "crash-after=3"]);
        assert_eq!(
            plan.stalls,
            [(Duration::from_secs(5), Duration::from_secs(6))]
        );
        assert_eq!(plan.crash_after, Some(3));
        assert!(plan.has_front_faults());
    }

    #[tokio::test]
    async fn slow_bodies_come_in_chunks() {
        let body = FaultyBody::new(
            Bytes::from_static(b"0123456789"),
            Some((Duration::from_millis(1), 4)),
            false,
        );
        let chunks = collect(body).await.unwrap();
        assert_eq!(chunks, ["0123", "4567", "89"]);
    }

    #[tokio::test]
    async fn truncated_bodies_stop_halfway_with_an_error() {
        let mut body = std::pin::pin!(FaultyBody::new(
            Bytes::from_static(b"0123456789"),
            None,
            true
        ));
        let first = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
            .await
            .unwrap();
        assert_eq!(first.unwrap().into_data().unwrap(), "01234");
        let second = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
            .await
            .unwrap();
        assert_eq!(
            second.unwrap_err().to_string(),
            "truncated-body fault: body cut after 5 of 10 bytes"
        );
        assert!(
            std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
                .await
                .is_none()
        );
    }
}
