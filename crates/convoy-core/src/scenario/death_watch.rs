//! [`DeathWatch`]: a fresh-connect confirmation that the target died
//! mid-run, for runs too short for the engine's live watch.
//!
//! Self-contained on purpose: an engine-level target watch is to replace
//! it. Its seams are three: `ScenarioWorkload::watch_target` (runner.rs)
//! hands it the run's control; `StepRun::send` (step_run.rs) and a
//! concurrent replay (steps/replay.rs, for its copies) feed it every
//! exchange through [`DeathWatch::saw`] and await [`DeathWatch::confirm`]
//! when that says so. Removing it is removing this file, the `death` field
//! of `step_run::Shared`, and those calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::engine::RunControl;
use crate::engine::http::{HttpFailure, HttpResponse};
use crate::metrics::ErrorCause;

/// How often [`DeathWatch`] tries to connect before it calls the target
/// down, and how long apart: together the same 3 s of nothing but refusals
/// that `convoy run`'s live watch waits for.
const DEATH_PROBES: u32 = 15;
const DEATH_PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Notices a target that died mid-run, for runs too short for the live
/// watch ([`crate::engine::TargetWatch`] needs 3 s of windows with nothing
/// but connect failures; a run of a fixed number of iterations against a
/// dead port fails them all in far less and would end "completed" with
/// failed checks). Once the target has answered, a refused connection makes
/// one user check for itself: if fresh connects are refused for
/// [`DEATH_PROBES`] × [`DEATH_PROBE_INTERVAL`] and no other request got an
/// answer meanwhile, it calls [`RunControl::target_down`]. A refusal before
/// any answer is left to the caller's preflight.
#[derive(Default)]
pub(crate) struct DeathWatch {
    /// The run to stop; `None` leaves the watch off.
    pub(crate) control: Option<RunControl>,
    answered: AtomicBool,
    confirming: AtomicBool,
    answered_meanwhile: AtomicBool,
}

impl DeathWatch {
    /// Notes one exchange; true when it was a refusal worth confirming.
    /// Answers cost two relaxed loads of flags that are rarely written.
    #[inline]
    pub(crate) fn saw(&self, res: &Result<HttpResponse, HttpFailure>) -> bool {
        if self.control.is_none() {
            return false;
        }
        match res {
            Ok(_) => {
                if !self.answered.load(Ordering::Relaxed) {
                    self.answered.store(true, Ordering::Relaxed);
                }
                if self.confirming.load(Ordering::Relaxed) {
                    self.answered_meanwhile.store(true, Ordering::Relaxed);
                }
                false
            }
            Err(f) => f.cause == ErrorCause::Refused && self.answered.load(Ordering::Relaxed),
        }
    }

    /// Connects to `addr` until it is sure the target is down (then stops
    /// the run) or sees a sign of life; one user at a time.
    pub(crate) async fn confirm(&self, addr: &str) {
        let Some(control) = &self.control else {
            return;
        };
        if control.is_aborted() || self.confirming.swap(true, Ordering::SeqCst) {
            return;
        }
        self.answered_meanwhile.store(false, Ordering::SeqCst);
        let mut refusals = 0;
        while refusals < DEATH_PROBES
            && !control.is_aborted()
            && !self.answered_meanwhile.load(Ordering::SeqCst)
        {
            tokio::time::sleep(DEATH_PROBE_INTERVAL).await;
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(DEATH_PROBE_INTERVAL, connect).await {
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => refusals += 1,
                // Accepted, or a failure that is no proof of death (a slow
                // or filtered network): let the run go on.
                _ => break,
            }
        }
        if refusals == DEATH_PROBES
            && !control.is_aborted()
            && !self.answered_meanwhile.load(Ordering::SeqCst)
        {
            control.target_down();
        }
        self.confirming.store(false, Ordering::SeqCst);
    }
}
