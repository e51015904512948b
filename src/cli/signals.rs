//! Ctrl-C (SIGINT) and SIGTERM, and what each one does to a run.
//!
//! During the load:
//!
//! 1. The first signal asks the run to stop: no new iteration starts, and
//!    the iterations in flight get the graceful-stop period to finish
//!    (`--graceful-stop`). A SIGTERM caps that period at
//!    [`SIGTERM_GRACE`] (3 s): it is what a container runtime sends before
//!    it kills the process (Kubernetes waits 30 s by default, Docker 10 s),
//!    so the partial report must be written well before that, whatever the
//!    target does. Iterations still in flight then are cut off and counted
//!    as `interrupted`.
//! 2. The second signal skips what is left of the graceful stop: the
//!    iterations in flight are cut off at once, and the partial report is
//!    still written.
//! 3. The third one exits at once with status 130, without a report (for a
//!    report that cannot be written, e.g. a hung disk).
//!
//! Outside the load, a signal ends what convoy is waiting for:
//! `--metrics-linger` ends early (the run's exit code stands: its report is
//! whole), and `convoy smoke --wait-healthy` stops waiting with exit 5
//! (no journey ran).
//!
//! Bound: from a SIGTERM to the exit, [`SIGTERM_GRACE`] plus one controller
//! tick (a quarter of a second) plus the time to cut the iterations off and
//! write the reports; about 3.5 s against a target that never answers
//! (README, "Exit codes").

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::engine::RunControl;

/// Exit status on a third signal, as shells report SIGINT.
const HARD_EXIT: i32 = 130;

/// The most a SIGTERM lets iterations in flight run on (see the module
/// docs): a few seconds, so that the partial report is written well within
/// a container runtime's grace period (Docker's is 10 s).
pub const SIGTERM_GRACE: Duration = Duration::from_secs(3);

/// What the process is doing when a signal comes; it decides what the
/// signal does and says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Generating load (or about to): stop it, as the module docs say.
    Load = 0,
    /// `--metrics-linger`: stop lingering.
    Linger = 1,
    /// `--wait-healthy`: stop waiting.
    WaitHealthy = 2,
}

#[derive(Debug, Default)]
struct State {
    /// Signals received so far.
    count: AtomicU32,
    /// Signals received during the load.
    during_load: AtomicU32,
    phase: AtomicU8,
    /// Guards nothing but the condition variable's waits.
    lock: Mutex<()>,
    signalled: Condvar,
}

/// The signals of one command: what they did so far, and waits that a
/// signal ends.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    state: Arc<State>,
}

impl Signals {
    /// Says what the process is doing now.
    pub fn set_phase(&self, phase: Phase) {
        self.state.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// How many signals came so far.
    pub fn count(&self) -> u32 {
        self.state.count.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, or until a signal comes; true if one came (or had
    /// come already, then without sleeping).
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut guard = self.state.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.count() > 0 {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .state
                .signalled
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Keeps `exporter` serving the final figures for `linger`, unless a
    /// signal came or comes meanwhile, then closes it.
    pub fn linger(&self, exporter: crate::live::Exporter, linger: Duration) {
        if !linger.is_zero() {
            self.set_phase(Phase::Linger);
            self.sleep(linger);
        }
        exporter.close(Duration::ZERO);
    }

    fn notify(&self) {
        let _guard = self.state.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.state.signalled.notify_all();
    }
}

/// Which signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Interrupt,
    Terminate,
}

/// Sets up, once per process and before any other thread, what every tokio
/// runtime of convoy shares for signals: a socket pair that tokio opens on
/// first use and panics when it cannot. Out of file descriptors from the
/// start is then a local error (exit 3), not a panic in whichever thread
/// came first.
pub fn prepare() -> Result<(), super::CliError> {
    let local = |e: std::io::Error| {
        super::CliError::usage(format!(
            "cannot start: {e}: convoy ran out of file descriptors on this machine (a local \
             error, not the target); raise the open-file limit with `ulimit -n`"
        ))
    };
    // The runtime's poller and waker, then tokio's pair: room for three
    // pairs is checked first, since the last step panics where it fails.
    #[cfg(unix)]
    {
        let room: Result<Vec<_>, _> = (0..3)
            .map(|_| std::os::unix::net::UnixStream::pair())
            .collect();
        drop(room.map_err(local)?);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(local)?;
    drop(rt);
    Ok(())
}

/// Starts a thread that turns signals into [`RunControl::stop`] and friends
/// (see the module docs), and returns the handle that tells what came.
pub fn install(control: RunControl, quiet: bool) -> Signals {
    let signals = Signals::default();
    let seen = signals.clone();
    // The caller waits until the handlers are in place (or known to be
    // impossible), so a signal sent right after is never missed.
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
    let spawned = std::thread::Builder::new()
        .name("convoy-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let streams = signal(SignalKind::interrupt())
                        .and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
                    let (mut int, mut term) = match streams {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        let kind = tokio::select! {
                            _ = int.recv() => Kind::Interrupt,
                            _ = term.recv() => Kind::Terminate,
                        };
                        on_signal(&seen, &control, kind, quiet);
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = ready_tx.send(Ok(()));
                    while tokio::signal::ctrl_c().await.is_ok() {
                        on_signal(&seen, &control, Kind::Interrupt, quiet);
                    }
                }
            });
        });
    let failed = match spawned {
        Err(e) => Some(e.to_string()),
        Ok(_) => match ready_rx.recv() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("the signal thread ended".into()),
        },
    };
    if let Some(e) = failed {
        crate::errln!("convoy: warning: cannot watch for Ctrl-C and SIGTERM: {e}");
    }
    signals
}

fn on_signal(signals: &Signals, control: &RunControl, kind: Kind, quiet: bool) {
    let state = &signals.state;
    state.count.fetch_add(1, Ordering::SeqCst);
    let phase = state.phase.load(Ordering::SeqCst);
    if phase == Phase::Linger as u8 {
        if !quiet {
            crate::errln!(
                "\nconvoy: signal received: no more lingering, the metrics endpoint closes"
            );
        }
    } else if phase == Phase::WaitHealthy as u8 {
        control.stop();
        crate::errln!("\nconvoy: interrupted while waiting for the target to become healthy");
    } else {
        match state.during_load.fetch_add(1, Ordering::SeqCst) {
            0 => {
                let how = match kind {
                    Kind::Interrupt => {
                        control.stop();
                        "letting requests in flight finish".to_string()
                    }
                    Kind::Terminate => {
                        control.stop_within(SIGTERM_GRACE);
                        format!(
                            "SIGTERM: letting requests in flight finish for at most {}",
                            crate::plan::format_duration(SIGTERM_GRACE)
                        )
                    }
                };
                if !quiet {
                    crate::errln!(
                        "\nconvoy: stopping: {how}, then writing a partial report (press Ctrl-C again to cut them off now)"
                    );
                }
            }
            1 => {
                control.abort();
                crate::errln!(
                    "\nconvoy: cutting off the requests in flight; writing the partial report (press Ctrl-C again to quit at once, with no report)"
                );
            }
            _ => {
                crate::errln!("\nconvoy: quitting at once; no report written");
                std::process::exit(HARD_EXIT);
            }
        }
    }
    signals.notify();
}
