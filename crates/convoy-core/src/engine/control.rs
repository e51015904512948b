//! Stopping and pacing: the [`RunControl`] handle users hold (Ctrl-C,
//! abort-on-fail, the target watch) and the state the controller shares
//! with the workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::watch::TargetWatch;
use crate::plan::{LoadModel, Ramp};

/// A handle to stop a run from outside: cheap to clone, usable from any
/// thread (signal handlers, gate evaluators, tests).
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    inner: Arc<ControlInner>,
}

#[derive(Debug)]
struct ControlInner {
    stopping: AtomicBool,
    interrupted: AtomicBool,
    aborted: AtomicBool,
    target_down: AtomicBool,
    abort_notify: Notify,
    /// Whether the target answered, and the confirmation of its death.
    /// Kept here so that the engine runs made with one control share it.
    watch: TargetWatch,
    /// When the run began to stop, for whatever reason: the open model
    /// accounts for the arrivals due until then.
    stopped_at: std::sync::Mutex<Option<Instant>>,
    /// The most the graceful stop may last, in nanoseconds, whatever the
    /// run's own setting ([`RunControl::stop_within`]); `u64::MAX` when
    /// uncapped.
    grace_cap_nanos: AtomicU64,
}

impl Default for ControlInner {
    fn default() -> Self {
        ControlInner {
            stopping: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            target_down: AtomicBool::new(false),
            abort_notify: Notify::new(),
            watch: TargetWatch::default(),
            stopped_at: std::sync::Mutex::new(None),
            grace_cap_nanos: AtomicU64::new(u64::MAX),
        }
    }
}

impl RunControl {
    /// A fresh handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run early: no new iteration starts, iterations in flight
    /// get the graceful-stop period, and the result is marked partial.
    pub fn stop(&self) {
        self.inner.interrupted.store(true, Ordering::SeqCst);
        self.begin_stopping();
    }

    /// Like [`RunControl::stop`], but iterations in flight get at most
    /// `limit` to finish, whatever the run's graceful-stop period (SIGTERM:
    /// a container runtime kills the process a few seconds later). Takes
    /// effect on a run already stopping too: the earlier limit wins.
    pub fn stop_within(&self, limit: Duration) {
        let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        self.inner
            .grace_cap_nanos
            .fetch_min(nanos, Ordering::SeqCst);
        self.stop();
    }

    /// The cap [`RunControl::stop_within`] put on the graceful stop.
    fn grace_cap(&self) -> Duration {
        Duration::from_nanos(self.inner.grace_cap_nanos.load(Ordering::SeqCst))
    }

    /// Stops at once: iterations in flight are dropped (counted as
    /// interrupted). The result is marked partial if the plan had not ended.
    pub fn abort(&self) {
        if self.begin_stopping() {
            self.inner.interrupted.store(true, Ordering::SeqCst);
        }
        self.inner.aborted.store(true, Ordering::SeqCst);
        self.inner.abort_notify.notify_waiters();
    }

    /// The target died (it refuses every connection): stop at once, keep
    /// every measurement, and mark the result partial with
    /// [`super::StopReason::TargetDown`]. The engine's target watch calls it
    /// ([`super::EngineOptions::target_watch`]).
    pub fn target_down(&self) {
        self.inner.target_down.store(true, Ordering::SeqCst);
        self.abort();
    }

    /// True once [`RunControl::target_down`] was called.
    pub fn is_target_down(&self) -> bool {
        self.inner.target_down.load(Ordering::SeqCst)
    }

    /// The target watch of the runs made with this control.
    #[inline]
    pub(super) fn watch(&self) -> &TargetWatch {
        &self.inner.watch
    }

    /// True once the run is stopping, for whatever reason.
    #[inline]
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Relaxed)
    }

    /// True if the run was stopped before its plan ended.
    pub fn was_interrupted(&self) -> bool {
        self.inner.interrupted.load(Ordering::SeqCst)
    }

    /// True once the run was aborted.
    pub fn is_aborted(&self) -> bool {
        self.inner.aborted.load(Ordering::SeqCst)
    }

    /// The plan ended: stop softly without marking the run partial.
    pub(super) fn finish(&self) {
        self.begin_stopping();
    }

    /// Sets the stopping flag; true (and the stop time noted) if it was not
    /// set yet.
    fn begin_stopping(&self) -> bool {
        let mut at = self
            .inner
            .stopped_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let first = !self.inner.stopping.swap(true, Ordering::SeqCst);
        if first {
            *at = Some(Instant::now());
        }
        first
    }

    /// When the run began to stop, if it has.
    pub(super) fn stopped_at(&self) -> Option<Instant> {
        *self
            .inner
            .stopped_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once [`RunControl::abort`] was called.
    pub(super) async fn aborted(&self) {
        loop {
            let notified = self.inner.abort_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_aborted() {
                return;
            }
            notified.await;
        }
    }
}

/// State shared by the controller and every worker of one run.
#[derive(Debug)]
pub(super) struct Shared {
    pub control: RunControl,
    pub start: Instant,
    users: Option<Ramp>,
    target_users: AtomicU32,
    users_changed: Notify,
    deadline: Option<Instant>,
    graceful_stop: Duration,
    stop_seen: std::sync::Mutex<Option<Instant>>,
    total_iterations: Option<u64>,
    claimed: AtomicU64,
    /// Open model: the next arrival to serve.
    pub next_arrival: AtomicU64,
    /// Per worker: iterations in flight (single writer each).
    pub in_flight: Vec<Arc<AtomicU64>>,
}

impl Shared {
    pub fn new(
        control: RunControl,
        model: &LoadModel,
        start: Instant,
        workers: usize,
        graceful_stop: Duration,
    ) -> Self {
        let (users, total_iterations) = match model {
            LoadModel::Closed(c) => (Some(c.users.clone()), c.total_iterations),
            LoadModel::Open(o) => (None, o.total_iterations),
        };
        let initial = users
            .as_ref()
            .map_or(u32::MAX, |r| r.value_at(Duration::ZERO).round() as u32);
        Shared {
            control,
            start,
            users,
            target_users: AtomicU32::new(initial),
            users_changed: Notify::new(),
            // The open model serves (or drops) every arrival due before the
            // plan ends: its users leave by themselves once the schedule is
            // exhausted, and arrivals may start up to `max_lag` late.
            deadline: match model {
                LoadModel::Open(o) => Some(start + o.rate.duration() + o.max_lag),
                LoadModel::Closed(_) => model.planned_duration().map(|d| start + d),
            },
            graceful_stop,
            stop_seen: std::sync::Mutex::new(None),
            total_iterations,
            claimed: AtomicU64::new(0),
            next_arrival: AtomicU64::new(0),
            in_flight: (0..workers).map(|_| Arc::new(AtomicU64::new(0))).collect(),
        }
    }

    /// Controller tick: move the ramp, end the plan, enforce the graceful
    /// stop.
    pub fn advance(&self, now: Instant) {
        if let Some(ramp) = &self.users {
            let target = ramp.value_at(now - self.start).round() as u32;
            if self.target_users.swap(target, Ordering::SeqCst) != target {
                self.users_changed.notify_waiters();
            }
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.control.finish();
        }
        if self.control.is_stopping() {
            // Wake parked users so they can leave.
            self.users_changed.notify_waiters();
            let mut seen = self.stop_seen.lock().unwrap_or_else(|e| e.into_inner());
            let since = *seen.get_or_insert(now);
            let grace = self.graceful_stop.min(self.control.grace_cap());
            if now - since >= grace || self.total_in_flight() == 0 {
                self.control.abort();
            }
        }
    }

    /// Iterations in flight over every worker.
    pub fn total_in_flight(&self) -> u64 {
        self.in_flight
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// Users doing or ready to do work, for the timeline.
    pub fn active_users(&self) -> u64 {
        match &self.users {
            Some(_) => self.target_users.load(Ordering::Relaxed) as u64,
            None => self.total_in_flight(),
        }
    }

    /// Closed model: whether user `vu` should be running now.
    #[inline]
    pub fn user_active(&self, vu: u64) -> bool {
        vu < self.target_users.load(Ordering::Relaxed) as u64
    }

    /// Closed model: parks until user `vu` becomes active; false if the run
    /// is stopping instead.
    pub async fn wait_active(&self, vu: u64) -> bool {
        loop {
            let notified = self.users_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.control.is_stopping() {
                return false;
            }
            if self.user_active(vu) {
                return true;
            }
            notified.await;
        }
    }

    /// Open model: arrivals due before the run began to stop that no slot
    /// claimed, because every slot was busy until the end. They never
    /// started, so they count as dropped: with them, every arrival due in
    /// the run ends up a request, a drop or an interruption, exactly once.
    pub fn unclaimed_arrivals(&self, rate: &Ramp, total: Option<u64>) -> u64 {
        let until = self
            .control
            .stopped_at()
            .map_or(Duration::MAX, |t| t.saturating_duration_since(self.start));
        let due = rate.arrivals_until(until).min(total.unwrap_or(u64::MAX));
        due.saturating_sub(self.next_arrival.load(Ordering::SeqCst))
    }

    /// Claims one iteration against the run's total, if it has one.
    #[inline]
    pub fn claim_iteration(&self) -> bool {
        match self.total_iterations {
            None => true,
            Some(total) => self.claimed.fetch_add(1, Ordering::Relaxed) < total,
        }
    }
}
