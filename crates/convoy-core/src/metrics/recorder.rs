//! Per-worker recording shards.
//!
//! Every engine worker thread owns one [`Shard`] behind its own mutex. The hot
//! path locks only its worker's mutex, which no other thread touches except
//! the once-a-second sampler, so recording never contends on a shared lock.
//! At the end the shards are merged by histogram addition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::histogram::LatencyHistogram;
use super::stats::{ErrorCause, Outcome, StepStats};

/// What one worker measured.
#[derive(Debug, Clone, Default)]
pub struct Shard {
    /// One entry per step, indexed by step id.
    pub steps: Vec<StepStats>,
    /// Iterations that ran to completion.
    pub iterations: u64,
    /// Open model: arrivals that could not start in time.
    pub dropped: u64,
    /// Iterations cut off by the end of the run or an interruption.
    pub interrupted: u64,
    /// Checks, violations and failure examples.
    pub book: super::CheckBook,
    /// Since the sampler last drained it.
    pub interval: IntervalStats,
    /// Refused connects held apart while the target watch decides whether
    /// the target died ([`Recorder::with_refusal_hold`]); not merged.
    held: Vec<HeldRefusals>,
}

/// Refused connects of one step, held apart: how many, and how many of
/// them counted as errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct HeldRefusals {
    requests: u64,
    errors: u64,
}

/// Counters for the current timeline window, drained by the sampler.
#[derive(Debug, Clone, Default)]
pub struct IntervalStats {
    /// Requests finished in this window.
    pub requests: u64,
    /// Failed requests in this window.
    pub errors: u64,
    /// Dropped arrivals in this window.
    pub dropped: u64,
    /// Requests of this window that could not connect at all.
    pub connect_failures: u64,
    /// Latency of the requests of this window, every step together.
    pub latency: LatencyHistogram,
}

impl IntervalStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &IntervalStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.dropped += other.dropped;
        self.connect_failures += other.connect_failures;
        self.latency.merge(&other.latency);
    }

    /// Empties the window, keeping allocations.
    pub fn reset(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.dropped = 0;
        self.connect_failures = 0;
        self.latency.reset();
    }
}

impl Shard {
    /// A shard for `steps` steps.
    pub fn new(steps: usize) -> Self {
        Shard {
            steps: vec![StepStats::default(); steps],
            ..Shard::default()
        }
    }

    /// Adds `other` into `self` (the interval window is not merged).
    pub fn merge(&mut self, other: &Shard) {
        if self.steps.len() < other.steps.len() {
            self.steps.resize(other.steps.len(), StepStats::default());
        }
        for (a, b) in self.steps.iter_mut().zip(&other.steps) {
            a.merge(b);
        }
        self.iterations += other.iterations;
        self.dropped += other.dropped;
        self.interrupted += other.interrupted;
        self.book.merge(&other.book);
    }
}

/// A handle to one worker's shard; cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    shard: Arc<Mutex<Shard>>,
    /// While set, refused connects are held apart instead of counted as
    /// requests ([`Recorder::with_refusal_hold`]).
    hold: Option<Arc<AtomicBool>>,
}

impl Recorder {
    /// A recorder over a fresh shard with `steps` steps.
    pub fn new(steps: usize) -> Self {
        Recorder {
            shard: Arc::new(Mutex::new(Shard::new(steps))),
            hold: None,
        }
    }

    /// A recorder that holds refused connects apart while `hold` is set:
    /// the engine sets it while its target watch confirms that the target
    /// died, so that the refused reconnects of a dead target (by the
    /// thousand a second) are not counted as requests, throughput or
    /// errors before the verdict. [`Recorder::release_held`] decides what
    /// they become.
    pub fn with_refusal_hold(steps: usize, hold: Arc<AtomicBool>) -> Self {
        Recorder {
            hold: Some(hold),
            ..Recorder::new(steps)
        }
    }

    /// The run is over: the refused connects held apart become requests
    /// again (failed, cause `refused`), unless `target_down`: then they
    /// are counted only under the cause `refused` of their step's
    /// `error_counts`, apart from requests, errors, throughput and latency.
    /// Returns how many were held.
    pub fn release_held(&self, target_down: bool) -> u64 {
        let mut shard = self.lock();
        let shard = &mut *shard;
        let held = std::mem::take(&mut shard.held);
        let mut total = 0;
        for (step, h) in held.iter().enumerate() {
            if h.requests == 0 {
                continue;
            }
            total += h.requests;
            let stats = &mut shard.steps[step];
            *stats.error_counts.entry(ErrorCause::Refused).or_insert(0) += h.requests;
            if !target_down {
                stats.requests += h.requests;
                stats.errors += h.errors;
                shard.interval.requests += h.requests;
                shard.interval.errors += h.errors;
                shard.interval.connect_failures += h.requests;
            }
        }
        total
    }

    /// Locks the shard. A worker that panicked while holding the lock leaves
    /// counters that are still valid numbers, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, Shard> {
        self.shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one finished request of step `step`.
    ///
    /// `latency` runs from the scheduled start, `service` from the moment
    /// the request was actually sent.
    #[inline]
    pub fn record(&self, step: usize, latency: Duration, service: Duration, outcome: Outcome) {
        self.record_as(step, latency, service, outcome, outcome.is_error());
    }

    /// Like [`Recorder::record`], with the error verdict decided by the
    /// caller (from the statuses the step expects).
    #[inline]
    pub fn record_as(
        &self,
        step: usize,
        latency: Duration,
        service: Duration,
        outcome: Outcome,
        error: bool,
    ) {
        let mut shard = self.lock();
        let shard = &mut *shard;
        if step >= shard.steps.len() {
            shard.steps.resize(step + 1, StepStats::default());
        }
        if outcome == Outcome::Failed(ErrorCause::Refused)
            && self
                .hold
                .as_ref()
                .is_some_and(|h| h.load(Ordering::Relaxed))
        {
            if step >= shard.held.len() {
                shard.held.resize(step + 1, HeldRefusals::default());
            }
            let held = &mut shard.held[step];
            held.requests += 1;
            held.errors += u64::from(error);
            return;
        }
        shard.steps[step].record_as(latency, service, outcome, error);
        let interval = &mut shard.interval;
        interval.requests += 1;
        if error {
            interval.errors += 1;
        }
        match outcome {
            Outcome::Status(_) => interval.latency.record(latency),
            Outcome::Failed(ErrorCause::Refused | ErrorCause::Connect | ErrorCause::Dns) => {
                interval.connect_failures += 1;
            }
            Outcome::Failed(_) => {}
        }
    }

    /// Records one stream connect or awaited event of metric `step`
    /// ([`StepStats::record_stream`]): into the step's figures only, never
    /// into the per-second window of requests.
    ///
    /// [`StepStats::record_stream`]: super::StepStats::record_stream
    pub fn record_stream(
        &self,
        step: usize,
        latency: Option<Duration>,
        status: Option<u16>,
        cause: Option<ErrorCause>,
        error: bool,
    ) {
        let mut shard = self.lock();
        if step >= shard.steps.len() {
            shard.steps.resize(step + 1, StepStats::default());
        }
        shard.steps[step].record_stream(latency, status, cause, error);
    }

    /// Counts one evaluation of check `id`.
    #[inline]
    pub fn check(&self, id: usize, passed: bool) {
        self.lock().book.check(id, passed);
    }

    /// Counts `n` violations of `kind`.
    pub fn violation(&self, kind: super::Violation, n: u64) {
        self.lock().book.violation(kind, n);
    }

    /// Counts one token renewed mid-run.
    pub fn auth_renewal(&self) {
        self.lock().book.auth_renewals += 1;
    }

    /// Keeps a failure example of `kind`, built only if there is room for
    /// it (a kind has a few examples at most).
    pub fn failure_sample(
        &self,
        kind: &super::FailureKind<'_>,
        build: impl FnOnce() -> super::FailureSample,
    ) {
        if self.lock().book.wants_sample(kind) {
            let sample = build();
            self.lock().book.sample(sample);
        }
    }

    /// Records one finished journey of step `step` (a journey step).
    pub fn record_journey(&self, step: usize, duration: Duration, ok: bool) {
        let mut shard = self.lock();
        if step >= shard.steps.len() {
            shard.steps.resize(step + 1, StepStats::default());
        }
        shard.steps[step].record_journey(duration, ok);
    }

    /// Counts one completed iteration.
    #[inline]
    pub fn iteration_done(&self) {
        self.lock().iterations += 1;
    }

    /// Counts one arrival that could not start in time.
    pub fn dropped(&self) {
        let mut shard = self.lock();
        shard.dropped += 1;
        shard.interval.dropped += 1;
    }

    /// Counts `n` iterations cut off by the end of the run.
    pub fn interrupted(&self, n: u64) {
        self.lock().interrupted += n;
    }

    /// Moves the current window's counters into `into` and resets them.
    pub fn drain_interval(&self, into: &mut IntervalStats) {
        let mut shard = self.lock();
        into.merge(&shard.interval);
        shard.interval.reset();
    }

    /// A copy of the cumulative measurements.
    pub fn snapshot(&self) -> Shard {
        let shard = self.lock();
        Shard {
            steps: shard.steps.clone(),
            iterations: shard.iterations,
            dropped: shard.dropped,
            interrupted: shard.interrupted,
            book: shard.book.clone(),
            interval: IntervalStats::default(),
            held: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const REFUSED: Outcome = Outcome::Failed(ErrorCause::Refused);

    fn held_recorder() -> (Recorder, Arc<AtomicBool>) {
        let hold = Arc::new(AtomicBool::new(false));
        (Recorder::with_refusal_hold(1, hold.clone()), hold)
    }

    #[test]
    fn refusals_are_requests_while_nothing_is_held() {
        let (r, _hold) = held_recorder();
        r.record(0, MS, MS, REFUSED);
        assert_eq!(r.lock().steps[0].requests, 1);
        assert_eq!(r.release_held(true), 0);
        assert_eq!(r.lock().steps[0].requests, 1);
    }

    #[test]
    fn refusals_held_for_a_dead_target_are_counted_apart_from_requests() {
        let (r, hold) = held_recorder();
        r.record(0, MS, MS, Outcome::Status(200));
        hold.store(true, Ordering::SeqCst);
        for _ in 0..1000 {
            r.record(0, MS, MS, REFUSED);
        }
        // Only refusals are held: a reset of the crash is a request.
        r.record(0, MS, MS, Outcome::Failed(ErrorCause::Reset));
        assert_eq!(r.lock().steps[0].requests, 2, "held, not counted yet");
        assert_eq!(r.release_held(true), 1000);
        let shard = r.lock();
        let s = &shard.steps[0];
        assert_eq!((s.requests, s.errors), (2, 1));
        assert_eq!(s.error_counts.get(&ErrorCause::Refused), Some(&1000));
        assert_eq!(shard.interval.requests, 2);
    }

    #[test]
    fn refusals_held_for_a_target_that_lived_become_requests_again() {
        let (r, hold) = held_recorder();
        hold.store(true, Ordering::SeqCst);
        r.record(0, MS, MS, REFUSED);
        r.record(0, MS, MS, REFUSED);
        hold.store(false, Ordering::SeqCst);
        r.record(0, MS, MS, Outcome::Status(200));
        assert_eq!(r.release_held(false), 2);
        let shard = r.lock();
        let s = &shard.steps[0];
        assert_eq!((s.requests, s.errors), (3, 2));
        assert_eq!(s.error_counts.get(&ErrorCause::Refused), Some(&2));
        assert_eq!(shard.interval.connect_failures, 2);
    }
}
