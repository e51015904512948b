//! The load engine: executes a [`LoadModel`] by driving a [`Workload`].
//!
//! # What it owns
//!
//! - Running a plan: worker threads, virtual users, the open and closed
//!   models, ramps, iteration limits and pacing (`closed`, `open`,
//!   `control`).
//! - Stopping it: [`RunControl`] (Ctrl-C, abort-on-fail, plan end,
//!   graceful stop) and [`StopReason`].
//! - The HTTP client every workload sends with ([`http`]): connections,
//!   TLS, timeouts, and the classification of failures into causes.
//! - The target watch (`watch`): the HTTP client feeds it with every
//!   exchange, and it ends a run whose target died as
//!   [`StopReason::TargetDown`], with the thresholds of
//!   [`EngineOptions::target_watch`] ([`WatchPolicy`]).
//! - How many connections this machine lets a run hold ([`limits`]).
//! - Merging the workers' measurements into a [`RunResult`], and the live
//!   status ([`LiveStatus`]) observers get while it runs.
//!
//! # What it must not import
//!
//! The engine sits below everything that gives a run its meaning: it uses
//! [`crate::metrics`] and [`crate::plan`] only. It must not import
//! `scenario` (journeys are [`Workload`]s built on it), `report`, `gate`,
//! `live` (they read a [`RunResult`] or [`LiveStatus`]), nor the command
//! line of the `convoy` binary. A feature that needs one of them belongs in
//! that module, given what the engine hands out.
//!
//! # Shape
//!
//! [`run`] starts one OS thread per worker, each with its own single-threaded
//! tokio runtime (the model of wrk and of thread-per-core servers: no work
//! stealing, no cross-thread wakeups on the hot path). Virtual users are
//! spread round-robin over the workers and live on their worker for the
//! whole run, together with their keep-alive connection. Each worker records
//! into its own [`Recorder`] shard. The calling thread runs the controller:
//! it moves ramps forward, samples the timeline once a second, reports live
//! progress and decides when to stop. At the end the shards are merged into a
//! [`RunResult`].
//!
//! # Stopping
//!
//! A run stops *softly* (no new iterations start) when its plan ends, when
//! its iteration limits are reached or when [`RunControl::stop`] is called;
//! iterations in flight then get the graceful-stop period to finish, after
//! which the workers drop them and count them as `interrupted`. A run stops
//! *at once* when [`RunControl::abort`] or [`RunControl::target_down`] is
//! called: the latter by the target watch, once the target it had answered
//! refuses fresh connections for the policy's confirmation window.

mod closed;
mod control;
pub mod http;
pub mod limits;
mod open;
mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::metrics::recorder::IntervalStats;
use crate::metrics::{
    CheckStats, FailureSample, Recorder, Shard, StepStats, Timeline, TimelineSample, Violation,
};
use crate::plan::{LoadModel, PlanError};

pub use control::RunControl;
use control::Shared;
pub use watch::WatchPolicy;

/// What the engine runs: the body of an iteration, and the per-worker and
/// per-user state it needs.
///
/// An iteration is anything from one HTTP request (`convoy bench`) to a
/// whole journey of steps. It records its own requests through the
/// [`Iteration`]'s recorder, by step index.
pub trait Workload: Send + Sync + 'static {
    /// State shared by the users of one worker thread (an HTTP client, ...).
    type Worker: 'static;
    /// State of one virtual user (its connection, captured variables, ...).
    type User: 'static;

    /// Names of the steps this workload records into, by index.
    fn steps(&self) -> Vec<StepInfo>;

    /// Names of the checks this workload records into, by index.
    fn checks(&self) -> Vec<CheckInfo> {
        Vec::new()
    }

    /// Builds the state of worker `index` (called on that worker's thread).
    fn worker(&self, index: usize) -> Result<Self::Worker, EngineError>;

    /// Builds the state of virtual user `vu` (0-based, unique in the run).
    fn user(&self, worker: &Self::Worker, vu: u64) -> Self::User;

    /// Runs one iteration for `user`.
    fn iteration<'a>(
        &'a self,
        worker: &'a Self::Worker,
        user: &'a mut Self::User,
        it: Iteration<'a>,
    ) -> impl Future<Output = ()> + 'a;
}

/// The context of one iteration.
#[derive(Debug, Clone, Copy)]
pub struct Iteration<'a> {
    /// The user's own iteration counter (0-based).
    pub index: u64,
    /// The virtual user running it.
    pub vu: u64,
    /// When the iteration should have started. In the open model this is
    /// the arrival's scheduled time, so latency measured from it includes
    /// any queueing (coordinated omission corrected).
    pub scheduled: Instant,
    /// Open model: which arrival of the schedule this iteration serves;
    /// `None` in the closed model.
    pub arrival: Option<Arrival>,
    /// Where to record requests.
    pub recorder: &'a Recorder,
}

/// One arrival of the open model's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Its number in the schedule (0-based, each served at most once).
    pub number: u64,
    /// When the schedule puts it, from the start of the run
    /// ([`crate::plan::Ramp::arrival_time`]).
    pub due: Duration,
}

/// A named step of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    /// The step's metric name.
    pub name: String,
    /// What the step measures.
    pub kind: StepKind,
}

/// A named check of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInfo {
    /// The step the check belongs to.
    pub step: String,
    /// What it checks, e.g. `status == 201`.
    pub name: String,
}

/// One check's name and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Step and name.
    #[serde(flatten)]
    pub info: CheckInfo,
    /// Passes and failures.
    #[serde(flatten)]
    pub stats: CheckStats,
}

/// What a metric times: a request, a whole journey, an awaited event or a
/// stream's connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// One HTTP request.
    Request,
    /// A journey (an iteration of several requests), timed end to end.
    Journey,
    /// An awaited event: from the request of the step that caused it to
    /// the event's arrival on a stream (`[step.await]`).
    Event,
    /// A stream (server-sent events or WebSocket): its connects (to the
    /// response head, or the upgrade done), or the time to its first event.
    Stream,
}

impl StepKind {
    /// How a report names a metric of this kind: `NAME`, `NAME (journey)`,
    /// `event:NAME`, `stream:NAME`.
    pub fn label(self, name: &str) -> String {
        match self {
            StepKind::Request => name.to_string(),
            StepKind::Journey => format!("{name} (journey)"),
            StepKind::Event => format!("event: {name}"),
            StepKind::Stream => format!("stream: {name}"),
        }
    }
}

/// Settings of the engine itself, besides the load model.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// Worker threads; defaults to the number of CPUs available.
    pub workers: usize,
    /// Time iterations in flight get to finish once the run stops.
    pub graceful_stop: Duration,
    /// How often the live observer is called.
    pub progress_interval: Duration,
    /// Virtual user numbering for sharded runs: this process's user `k` is
    /// user `k * vu_stride + vu_offset` of the whole run, so `{{ vu }}`
    /// never collides across shards. (Data rows are kept apart by giving
    /// each shard its own rows: `DataSet::shard`.)
    pub vu_offset: u64,
    /// See [`EngineOptions::vu_offset`]; 1 when not sharded.
    pub vu_stride: u64,
    /// Merge the shards once a second and hand the result to the observer
    /// ([`LiveStatus::snapshot`], on one status a second). Off by default:
    /// it costs a merge per second.
    pub live_snapshots: bool,
    /// Watch for the target's death and stop the run as
    /// [`StopReason::TargetDown`] when it dies, with the thresholds of
    /// the policy (each command has its own: [`WatchPolicy::BENCH`],
    /// [`WatchPolicy::RUN`], [`WatchPolicy::SMOKE`]). Off by default: a
    /// library caller that wants a dead target's refusals measured to the
    /// end of the plan gets that.
    pub target_watch: Option<WatchPolicy>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            workers: thread::available_parallelism().map_or(1, |n| n.get()),
            graceful_stop: Duration::ZERO,
            progress_interval: Duration::from_millis(250),
            vu_offset: 0,
            vu_stride: 1,
            live_snapshots: false,
            target_watch: None,
        }
    }
}

/// The engine could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A worker could not be set up.
    #[error("cannot set up worker: {0}")]
    Setup(String),
    /// An OS resource could not be obtained.
    #[error("cannot start worker thread: {0}")]
    Io(#[from] std::io::Error),
    /// A worker thread panicked: a bug in convoy, never a result.
    #[error("a worker thread of convoy failed ({0}); this is a bug in convoy, please report it")]
    Panicked(String),
}

/// What a live observer sees, every [`EngineOptions::progress_interval`]
/// and once at the end.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Planned length of the run, when bounded by time.
    pub planned: Option<Duration>,
    /// Requests finished so far (each counted once: the sum of every
    /// status's `window_requests` up to this one).
    pub requests: u64,
    /// Failed requests so far.
    pub errors: u64,
    /// Dropped arrivals so far.
    pub dropped: u64,
    /// Iterations finished so far.
    pub iterations: u64,
    /// Expected iterations when bounded by count.
    pub planned_iterations: Option<u64>,
    /// Requests per second over the last whole second (the latest
    /// timeline sample; during the first second, the rate so far).
    pub current_rps: f64,
    /// Requests finished since the previous status.
    pub window_requests: u64,
    /// Of those, how many could not connect (refused, DNS, connect).
    pub window_connect_failures: u64,
    /// True once the run is stopping.
    pub stopping: bool,
    /// Every shard merged so far (steps, checks, violations), when
    /// [`EngineOptions::live_snapshots`] asked for it: what live exporters
    /// (Prometheus) publish.
    pub snapshot: Option<Arc<LiveSnapshot>>,
}

/// Cumulative measurements of a run in progress.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    /// Step names and kinds, by index.
    pub steps: Vec<StepInfo>,
    /// Check names, by index.
    pub checks: Vec<CheckInfo>,
    /// The merged measurements.
    pub shard: Shard,
    /// Virtual users active now.
    pub active_users: u64,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The plan ran to its end.
    Completed,
    /// [`RunControl::stop`] was called (Ctrl-C, SIGTERM).
    Interrupted,
    /// Stopped early by abort-on-fail: a gate could no longer pass. The
    /// engine never sets it; the command that judged the gate does.
    AbortedByGate,
    /// The target stopped accepting connections
    /// ([`RunControl::target_down`]).
    TargetDown,
}

/// Everything a run measured; mergeable and serialisable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The steps, in workload order.
    pub steps: Vec<StepResult>,
    /// Iterations that ran to completion.
    pub iterations: u64,
    /// Arrivals that could not start in time (open model).
    pub dropped: u64,
    /// Iterations cut off by the end of the run.
    pub interrupted: u64,
    /// Wall-clock start.
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    /// Wall-clock end.
    #[serde(with = "rfc3339")]
    pub ended_at: SystemTime,
    /// Measured length of the run (monotonic clock).
    pub duration_secs: f64,
    /// The load model that ran.
    pub model: LoadModel,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// The run over time.
    pub timeline: Timeline,
    /// Checks, in workload order.
    pub checks: Vec<CheckResult>,
    /// Violations by kind (every kind present, zero when none).
    pub violations: BTreeMap<Violation, u64>,
    /// The first failures, as examples.
    pub failures: Vec<FailureSample>,
    /// Tokens renewed mid-run by a fresh login (expired, or answered 401).
    #[serde(default)]
    pub auth_renewals: u64,
}

/// One step's name and measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Name and kind.
    #[serde(flatten)]
    pub info: StepInfo,
    /// Measurements.
    pub stats: StepStats,
}

impl RunResult {
    /// All request steps merged: the run's overall figures.
    pub fn overall(&self) -> StepStats {
        let mut all = StepStats::default();
        for s in self
            .steps
            .iter()
            .filter(|s| s.info.kind == StepKind::Request)
        {
            all.merge(&s.stats);
        }
        all
    }

    /// Failed check evaluations over every check.
    pub fn check_failures(&self) -> u64 {
        self.checks.iter().map(|c| c.stats.failures).sum()
    }

    /// True when the run was stopped before its plan ended.
    pub fn is_partial(&self) -> bool {
        self.stop_reason != StopReason::Completed
    }
}

/// Runs `workload` under `model` on the calling thread (which becomes the
/// controller) and returns the merged result.
///
/// `observer` is called with live status every
/// [`EngineOptions::progress_interval`] and once at the end.
pub fn run<W: Workload>(
    model: &LoadModel,
    options: &EngineOptions,
    workload: Arc<W>,
    control: &RunControl,
    mut observer: impl FnMut(&LiveStatus),
) -> Result<RunResult, EngineError> {
    model.validate()?;
    let workers = options
        .workers
        .max(1)
        .min(model.max_users().max(1) as usize);
    let steps = workload.steps();
    let checks = workload.checks();
    // Set while the target watch confirms a death: refused connects are
    // then held apart from requests (watch.rs).
    let hold = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(policy) = options.target_watch {
        control.watch().arm(policy, hold.clone());
    }
    let started_at = SystemTime::now();
    let start = Instant::now();
    let shared = Arc::new(Shared::new(
        control.clone(),
        model,
        start,
        workers,
        options.graceful_stop,
    ));
    let recorders: Vec<Recorder> = (0..workers)
        .map(|_| match options.target_watch {
            Some(_) => Recorder::with_refusal_hold(steps.len(), hold.clone()),
            None => Recorder::new(steps.len()),
        })
        .collect();

    let (done_tx, done_rx) = mpsc::channel::<Result<(), EngineError>>();
    let mut handles = Vec::with_capacity(workers);
    for (index, recorder) in recorders.iter().cloned().enumerate() {
        let workload = workload.clone();
        let shared = shared.clone();
        let model = model.clone();
        let done = done_tx.clone();
        let numbering = (options.vu_offset, options.vu_stride.max(1));
        let handle = thread::Builder::new()
            .name(format!("convoy-worker-{index}"))
            .spawn(move || {
                // A panic ends the run as a failure of convoy, at once: the
                // other workers stop, and no half-measured run passes.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_worker(
                        index, workers, &model, workload, shared, recorder, numbering,
                    )
                }))
                .unwrap_or_else(|p| Err(EngineError::Panicked(panic_message(&*p))));
                let _ = done.send(r);
            })?;
        handles.push(handle);
    }
    drop(done_tx);

    let planned = model.planned_duration();
    let planned_iterations = match model {
        LoadModel::Closed(c) => c
            .total_iterations
            .or(c.iterations_per_user.map(|n| n * c.users.peak() as u64)),
        LoadModel::Open(o) => o.total_iterations,
    };
    let mut timeline = Timeline::default();
    // The current timeline window (one second): every shard drains into it
    // on each tick, and it is emptied when its sample is taken.
    let mut window = IntervalStats::default();
    let mut window_start = start;
    let mut last_sample = Duration::ZERO;
    // Requests, errors and dropped of the windows already sampled: the live
    // totals are these plus the current window, so each request is counted
    // once however many ticks its window spans.
    let mut sampled = (0u64, 0u64, 0u64);
    // The window's requests and connect failures at the previous tick, to
    // report what the last tick alone saw.
    let mut seen = (0u64, 0u64);
    let mut current_rps = 0.0;
    let mut finished = 0;
    let mut setup_error = None;
    let tick = options.progress_interval.min(Duration::from_secs(1));
    let mut next_tick = start + tick;

    while finished < workers {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(wait) {
            Ok(r) => {
                finished += 1;
                if let Err(e) = r {
                    setup_error.get_or_insert(e);
                    shared.control.abort();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        next_tick += tick;
        let now = Instant::now();
        shared.advance(now);
        for r in &recorders {
            r.drain_interval(&mut window);
        }
        let tick_requests = window.requests - seen.0;
        let tick_connect_failures = window.connect_failures - seen.1;
        let requests = sampled.0 + window.requests;
        let errors = sampled.1 + window.errors;
        let dropped = sampled.2 + window.dropped;
        let elapsed = now - start;
        let mut snapshot = None;
        // A second since the last sample, give or take half a tick: ticks
        // land a little early or late, and waiting for the next one would
        // stretch the window by a whole tick.
        if elapsed + tick / 2 >= last_sample + Duration::from_secs(1) {
            let t = (window_start - start).as_secs_f64();
            let len = (now - window_start).as_secs_f64();
            let sample = TimelineSample::from_interval(t, len, &window, shared.active_users());
            current_rps = sample.rps();
            timeline.push(sample);
            sampled = (requests, errors, dropped);
            window.reset();
            seen = (0, 0);
            window_start = now;
            last_sample = elapsed;
            // A merge of every shard is not worth paying on every tick.
            snapshot = options.live_snapshots.then(|| {
                let mut merged = Shard::new(steps.len());
                for r in &recorders {
                    merged.merge(&r.snapshot());
                }
                Arc::new(LiveSnapshot {
                    steps: steps.clone(),
                    checks: checks.clone(),
                    shard: merged,
                    active_users: shared.active_users(),
                })
            });
        } else {
            seen = (window.requests, window.connect_failures);
            if timeline.samples().is_empty() {
                // No whole second yet: the rate so far, rather than 0.
                current_rps = requests as f64 / elapsed.as_secs_f64();
            }
        }
        observer(&LiveStatus {
            elapsed,
            planned,
            requests,
            errors,
            dropped,
            iterations: recorders.iter().map(|r| r.lock().iterations).sum(),
            planned_iterations,
            current_rps,
            window_requests: tick_requests,
            window_connect_failures: tick_connect_failures,
            stopping: shared.control.is_stopping(),
            snapshot,
        });
    }
    for h in handles {
        let _ = h.join();
    }
    if let Some(e) = setup_error {
        control.watch().settle(control);
        return Err(e);
    }
    let end = Instant::now();
    // Every user is done; a confirmation of the target's death may still
    // be running (a fixed number of iterations against a dead port fails
    // them all in far less than it takes): its verdict decides the reason,
    // and what the refused connects held apart meanwhile become.
    control.watch().settle(control);
    for r in &recorders {
        r.release_held(control.is_target_down());
        r.drain_interval(&mut window);
    }
    let last_requests = window.requests - seen.0;
    let last_connect_failures = window.connect_failures - seen.1;
    let unclaimed = match model {
        LoadModel::Open(o) => shared.unclaimed_arrivals(&o.rate, o.total_iterations),
        LoadModel::Closed(_) => 0,
    };
    window.dropped += unclaimed;
    if window.requests > 0 || window.dropped > 0 {
        let t = (window_start - start).as_secs_f64();
        let len = (end - window_start).as_secs_f64();
        timeline.push(TimelineSample::from_interval(t, len, &window, 0));
    }

    let mut merged = Shard::new(steps.len());
    for r in &recorders {
        merged.merge(&r.snapshot());
    }
    merged.dropped += unclaimed;
    let stop_reason = if shared.control.is_target_down() {
        StopReason::TargetDown
    } else if shared.control.was_interrupted() {
        StopReason::Interrupted
    } else {
        StopReason::Completed
    };
    let result = RunResult {
        steps: steps
            .into_iter()
            .zip(merged.steps)
            .map(|(info, stats)| StepResult { info, stats })
            .collect(),
        iterations: merged.iterations,
        dropped: merged.dropped,
        interrupted: merged.interrupted,
        started_at,
        ended_at: SystemTime::now(),
        duration_secs: (end - start).as_secs_f64(),
        model: model.clone(),
        stop_reason,
        timeline,
        checks: checks
            .into_iter()
            .enumerate()
            .map(|(i, info)| CheckResult {
                info,
                stats: merged.book.checks.get(i).copied().unwrap_or_default(),
            })
            .collect(),
        violations: Violation::ALL
            .iter()
            .map(|v| (*v, merged.book.violations.get(v).copied().unwrap_or(0)))
            .collect(),
        failures: merged.book.samples,
        auth_renewals: merged.book.auth_renewals,
    };
    let overall = result.overall();
    observer(&LiveStatus {
        elapsed: end - start,
        planned,
        requests: overall.requests,
        errors: overall.errors,
        dropped: result.dropped,
        iterations: result.iterations,
        planned_iterations,
        current_rps,
        window_requests: last_requests,
        window_connect_failures: last_connect_failures,
        stopping: true,
        snapshot: None,
    });
    Ok(result)
}

/// One worker thread: a single-threaded runtime running its share of users
/// until the run stops.
/// The text of a panic's payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn run_worker<W: Workload>(
    index: usize,
    workers: usize,
    model: &LoadModel,
    workload: Arc<W>,
    shared: Arc<Shared>,
    recorder: Recorder,
    (vu_offset, vu_stride): (u64, u64),
) -> Result<(), EngineError> {
    // HTTP clients built on this thread feed the run's target watch.
    let _watched = shared
        .control
        .watch()
        .is_armed()
        .then(|| watch::enter(shared.control.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let worker_state = {
        let _guard = rt.enter();
        workload.worker(index)?
    };
    let worker_state = std::rc::Rc::new(worker_state);
    let in_flight = shared.in_flight[index].clone();
    let users = model.max_users() as u64;
    let mine: Vec<u64> = (index as u64..users).step_by(workers).collect();

    local.block_on(&rt, async {
        let mut tasks = tokio::task::JoinSet::new();
        for vu in mine {
            let ctx = closed::UserCtx {
                vu,
                global_vu: vu * vu_stride + vu_offset,
                workload: workload.clone(),
                worker: worker_state.clone(),
                shared: shared.clone(),
                recorder: recorder.clone(),
                in_flight: in_flight.clone(),
            };
            match model {
                LoadModel::Closed(c) => {
                    tasks.spawn_local(closed::run_user(ctx, c.iterations_per_user));
                }
                LoadModel::Open(o) => {
                    tasks.spawn_local(open::run_user(
                        ctx,
                        o.rate.clone(),
                        o.max_lag,
                        o.total_iterations,
                    ));
                }
            }
        }
        tokio::select! {
            _ = async { while tasks.join_next().await.is_some() {} } => {}
            _ = shared.control.aborted() => {}
        }
        // Whatever is still running is cut off.
        recorder.interrupted(in_flight.load(std::sync::atomic::Ordering::Relaxed));
        tasks.abort_all();
    });
    Ok(())
}

/// Serde helpers: wall-clock times as RFC 3339 strings.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as RFC 3339 with millisecond precision.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
    }

    /// Parses RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&s).map_err(serde::de::Error::custom)
    }
}
