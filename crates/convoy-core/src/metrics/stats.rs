//! Per-step measurements: latency histograms, counters by status and by
//! error cause. Every value here merges exactly, so per-worker shards, shards
//! of a distributed run and saved reports all combine the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::LatencyHistogram;

/// Why a request failed before an HTTP status was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCause {
    /// The target refused the TCP connection.
    Refused,
    /// The host name could not be resolved.
    Dns,
    /// Connecting failed for another reason (unreachable network, ...).
    Connect,
    /// The connect or request timeout elapsed.
    Timeout,
    /// The TLS handshake or session failed.
    Tls,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The response was not valid HTTP.
    Protocol,
    /// Reading the response body failed (truncated, too large, ...).
    Body,
    /// Anything else.
    Other,
    /// convoy's own machine failed the request before it reached the
    /// network: out of file descriptors (`EMFILE`, `ENFILE`) or of local
    /// memory for sockets. Not the target's doing: the commands report it
    /// as a local error (exit 3), never as an unreachable or dead target.
    Local,
    /// A stream (server-sent events or WebSocket) was answered with a
    /// status other than the one that opens it (200, or 101 for a
    /// WebSocket): the status is counted beside it.
    StreamRefused,
    /// A stream closed (or broke) while an event was awaited on it.
    StreamClosed,
    /// No event matching an await arrived within its timeout.
    EventTimeout,
}

impl ErrorCause {
    /// Every cause, in report order.
    pub const ALL: [ErrorCause; 13] = [
        ErrorCause::Refused,
        ErrorCause::Dns,
        ErrorCause::Connect,
        ErrorCause::Timeout,
        ErrorCause::Tls,
        ErrorCause::Reset,
        ErrorCause::Protocol,
        ErrorCause::Body,
        ErrorCause::Other,
        ErrorCause::Local,
        ErrorCause::StreamRefused,
        ErrorCause::StreamClosed,
        ErrorCause::EventTimeout,
    ];

    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCause::Refused => "refused",
            ErrorCause::Dns => "dns",
            ErrorCause::Connect => "connect",
            ErrorCause::Timeout => "timeout",
            ErrorCause::Tls => "tls",
            ErrorCause::Reset => "reset",
            ErrorCause::Protocol => "protocol",
            ErrorCause::Body => "body",
            ErrorCause::Other => "other",
            ErrorCause::Local => "local",
            ErrorCause::StreamRefused => "stream_refused",
            ErrorCause::StreamClosed => "stream_closed",
            ErrorCause::EventTimeout => "event_timeout",
        }
    }
}

impl fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this status arrived and its body was read.
    Status(u16),
    /// No usable response: the request failed for this cause.
    Failed(ErrorCause),
}

impl Outcome {
    /// Whether this outcome counts as an error: a transport failure, or a
    /// status outside 200..=399 (k6's `http_req_failed` rule).
    #[inline]
    pub fn is_error(self) -> bool {
        match self {
            Outcome::Status(s) => !(200..400).contains(&s),
            Outcome::Failed(_) => true,
        }
    }
}

/// Everything measured for one step (or one journey, or the whole run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Requests that completed, with a response or a transport error.
    pub requests: u64,
    /// Requests that failed: transport errors and statuses outside 200..=399.
    pub errors: u64,
    /// Latency measured from each request's scheduled start: in the open
    /// model this includes time spent waiting for a free slot (coordinated
    /// omission corrected); in the closed model it equals service time.
    /// Only requests that received a response are recorded.
    pub latency: LatencyHistogram,
    /// Service time: from the moment the request was sent to the end of its
    /// body.
    pub service: LatencyHistogram,
    /// Responses by HTTP status.
    pub status_counts: BTreeMap<u16, u64>,
    /// Transport failures by cause.
    pub error_counts: BTreeMap<ErrorCause, u64>,
}

impl StepStats {
    /// Records one finished request, judged by the default rule
    /// ([`Outcome::is_error`]).
    #[inline]
    pub fn record(&mut self, latency: Duration, service: Duration, outcome: Outcome) {
        self.record_as(latency, service, outcome, outcome.is_error());
    }

    /// Records one finished request whose error verdict the caller decided
    /// (a scenario step that expects 404 does not count a 404 as an error).
    #[inline]
    pub fn record_as(
        &mut self,
        latency: Duration,
        service: Duration,
        outcome: Outcome,
        error: bool,
    ) {
        self.requests += 1;
        if error {
            self.errors += 1;
        }
        match outcome {
            Outcome::Status(code) => {
                *self.status_counts.entry(code).or_insert(0) += 1;
                self.latency.record(latency);
                self.service.record(service);
            }
            Outcome::Failed(cause) => {
                *self.error_counts.entry(cause).or_insert(0) += 1;
            }
        }
    }

    /// Records one stream connect or one awaited event: `latency` when it
    /// happened (`outcome` a status, or `None` for an event), else the
    /// error `cause`; `error` says whether it counts as one. Apart from
    /// requests: no service time.
    pub fn record_stream(
        &mut self,
        latency: Option<Duration>,
        status: Option<u16>,
        cause: Option<ErrorCause>,
        error: bool,
    ) {
        self.requests += 1;
        if error {
            self.errors += 1;
        }
        if let Some(code) = status {
            *self.status_counts.entry(code).or_insert(0) += 1;
        }
        if let Some(cause) = cause {
            *self.error_counts.entry(cause).or_insert(0) += 1;
        }
        if let Some(l) = latency {
            self.latency.record(l);
            self.service.record(l);
        }
    }

    /// Records one finished journey: its whole duration, and whether every
    /// step of it passed.
    #[inline]
    pub fn record_journey(&mut self, duration: Duration, ok: bool) {
        self.requests += 1;
        if !ok {
            self.errors += 1;
        }
        self.latency.record(duration);
        self.service.record(duration);
    }

    /// Adds `other` into `self`: exact merge.
    pub fn merge(&mut self, other: &StepStats) {
        // Saturating: the counts of merged reports come from files.
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        for (k, v) in &other.status_counts {
            let n = self.status_counts.entry(*k).or_insert(0);
            *n = n.saturating_add(*v);
        }
        for (k, v) in &other.error_counts {
            let n = self.error_counts.entry(*k).or_insert(0);
            *n = n.saturating_add(*v);
        }
    }

    /// Fraction of requests that failed (0 when nothing ran).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn status_outside_2xx_3xx_is_an_error() {
        assert!(!Outcome::Status(200).is_error());
        assert!(!Outcome::Status(304).is_error());
        assert!(Outcome::Status(404).is_error());
        assert!(Outcome::Status(503).is_error());
        assert!(Outcome::Failed(ErrorCause::Timeout).is_error());
    }

    #[test]
    fn record_counts_by_status_and_cause() {
        let mut s = StepStats::default();
        s.record(MS, MS, Outcome::Status(200));
        s.record(MS, MS, Outcome::Status(200));
        s.record(MS, MS, Outcome::Status(500));
        s.record(MS, MS, Outcome::Failed(ErrorCause::Refused));
        assert_eq!(s.requests, 4);
        assert_eq!(s.errors, 2);
        assert_eq!(s.status_counts[&200], 2);
        assert_eq!(s.status_counts[&500], 1);
        assert_eq!(s.error_counts[&ErrorCause::Refused], 1);
        // Transport failures have no latency sample.
        assert_eq!(s.latency.count(), 3);
        assert!((s.error_rate() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn merge_is_exact_and_order_free() {
        let mut a = StepStats::default();
        let mut b = StepStats::default();
        for i in 0..100u64 {
            a.record(MS * (i as u32 + 1), MS, Outcome::Status(200));
            b.record(
                MS * 3,
                MS,
                Outcome::Status(if i % 10 == 0 { 503 } else { 201 }),
            );
        }
        b.record(MS, MS, Outcome::Failed(ErrorCause::Reset));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.requests, 201);
        assert_eq!(ab.errors, 11);
        assert_eq!(ab.latency.count(), 200);
        let json = serde_json::to_string(&ab).unwrap();
        let back: StepStats = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ab);
    }
}
