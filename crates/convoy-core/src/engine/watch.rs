//! The target watch: notices a target that died mid-run and stops the run
//! as [`super::StopReason::TargetDown`], with what it measured.
//!
//! # Fed by every exchange
//!
//! The engine's HTTP client ([`super::http::HttpClient`]) feeds the watch
//! itself, so no workload has to remember to: bench requests, scenario
//! steps and custom Rust journeys alike. A client built on an engine worker
//! thread of a watched run ([`super::EngineOptions::target_watch`]) picks
//! up the run's watch when it is built ([`current`]); one built anywhere
//! else (a health poll before the run, a test) feeds nothing.
//!
//! - Every response head that arrives is an *answer*: it tells the watch the
//!   target is alive. On the hot path this is one relaxed atomic load of a
//!   flag word that is written a handful of times per run; no lock, no
//!   allocation, no system call.
//! - A TCP connect refused on every address of the endpoint is the only
//!   proof of death the watch accepts: nothing listens on the port any
//!   more. Timeouts, resets, DNS and routing failures are not: they are
//!   what a slow, overloaded or filtered target gives too, and a run must
//!   measure those, not stop on them.
//!
//! # Deciding
//!
//! - A refusal before the target ever answered is the preflight's business
//!   (the commands check that the target accepts connections before they
//!   start): the watch ignores it. What the target answered is remembered
//!   by the [`RunControl`], so `convoy smoke`, which runs the engine once
//!   per journey on one control, keeps it from one journey to the next.
//! - Once the target answered, a refusal starts a *confirmation*, unless
//!   one is already running (one confirmer at a time). The confirmer is a
//!   thread of its own that connects afresh every
//!   [`WatchPolicy::probe_every`]; if every connect for
//!   [`WatchPolicy::confirm_for`] is refused and no request got an answer
//!   meanwhile, it calls [`RunControl::target_down`]. A sign of life (an
//!   answer, an accepted probe, or a probe failing any other way) ends the
//!   confirmation and the run goes on; if a refusal comes after that sign
//!   of life while the confirmation is still winding down, it starts over
//!   instead, as that refusal would have started one of its own. The users
//!   never wait for it: the refused request is recorded as the error it is,
//!   with its own latency.
//! - From the refusal that starts a confirmation until a sign of life, the
//!   run's recorders hold refused connects apart: once a target died, its
//!   refused reconnects (by the thousand a second) are not requests, nor
//!   throughput, nor errors of the run. When the target is declared down
//!   they are counted under the cause `refused` of their step's
//!   `error_counts` only; otherwise they become the failed requests they
//!   were when the run ends ([`crate::metrics::Recorder::release_held`]).
//! - A run whose users all finished while a confirmation is running (a
//!   fixed number of iterations against a dead port fails them all in far
//!   less than the confirmation takes) waits for its verdict before it
//!   reports ([`TargetWatch::settle`]), so a short run against a dead
//!   target ends `target_down`, not `completed`. An interrupted run does
//!   not wait.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::control::RunControl;

/// How sure the watch must be before it calls a target dead, per command.
/// Every threshold of the watch is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchPolicy {
    /// How long fresh connects must keep being refused, with no answer to
    /// any request meanwhile, before the target is declared down.
    pub confirm_for: Duration,
    /// How often the confirmer connects during [`WatchPolicy::confirm_for`];
    /// also the most one of its connects may take.
    pub probe_every: Duration,
}

impl WatchPolicy {
    /// `convoy bench`: half a second of refusals (10 probes 50 ms apart),
    /// so the run stops well within a second of the target's death. An
    /// ad-hoc bench hammers one URL as fast as it can: refused connects
    /// fail in microseconds and would pile up by the hundred thousand as
    /// errors, and a benchmark of a dead port measures nothing. The same
    /// half second of failed connects the live-window watch used before.
    pub const BENCH: WatchPolicy = WatchPolicy {
        confirm_for: Duration::from_millis(500),
        probe_every: Duration::from_millis(50),
    };

    /// `convoy run`: three seconds of refusals (15 probes 200 ms apart).
    /// Journeys run against deployed services, where a listener can be
    /// briefly away (a process re-exec'ing, a port-forward reconnecting)
    /// without the target being dead; a load test that lasts minutes loses
    /// little by waiting three seconds, and this is the figure `convoy run`
    /// has always used.
    pub const RUN: WatchPolicy = WatchPolicy {
        confirm_for: Duration::from_secs(3),
        probe_every: Duration::from_millis(200),
    };

    /// `convoy smoke`: the same three seconds as `convoy run`, so a smoke
    /// gate and a load run of the same journeys call a target dead alike.
    /// Smoke sends one request at a time, so waiting costs the target no
    /// load, and right after a deploy it tolerates a listener that is
    /// briefly away.
    pub const SMOKE: WatchPolicy = WatchPolicy::RUN;

    /// How many refused probes make a confirmation: at least one.
    pub fn probes(&self) -> u32 {
        let every = self.probe_every.as_nanos().max(1);
        (self.confirm_for.as_nanos() / every).clamp(1, u32::MAX as u128) as u32
    }
}

/// How often a user held by [`TargetWatch::hold_while_suspected`] looks
/// again: short against the shortest confirmation (bench's half second).
const HOLD_POLL: Duration = Duration::from_millis(10);

/// The target answered at least once (the only bit set on the hot path's
/// fast case).
const ANSWERED: u8 = 1;
/// A confirmation is running.
const CONFIRMING: u8 = 2;
/// The running confirmation saw a sign of life: an answer to a request, or
/// a probe that was not refused.
const REVIVED: u8 = 4;
/// A refusal came after the last sign of life. With [`REVIVED`], the
/// confirmation starts over instead of ending: that refusal would have
/// started one of its own, had this one been finished already. (An answer
/// that was in flight when the target died can arrive just after the first
/// refusal; without this, a short run whose other refusals all came while
/// the cancelled confirmation was still winding down would end
/// `completed`.)
const AGAIN: u8 = 8;

/// The state of the watch; one per [`RunControl`], kept across the engine
/// runs made with that control.
#[derive(Debug, Default)]
pub(super) struct TargetWatch {
    /// [`ANSWERED`], [`CONFIRMING`], [`REVIVED`], [`AGAIN`].
    state: AtomicU8,
    /// Set by [`TargetWatch::settle`] on an interrupted run: the running
    /// confirmation gives up.
    cancel: AtomicBool,
    /// The policy of the run being watched, if one is.
    policy: Mutex<Option<WatchPolicy>>,
    /// The confirmer thread, for [`TargetWatch::settle`] to wait for.
    confirmer: Mutex<Option<JoinHandle<()>>>,
    /// Set from the refusal that starts a confirmation until the target
    /// shows a sign of life: the run's recorders hold refused connects
    /// apart meanwhile ([`crate::metrics::Recorder::with_refusal_hold`]),
    /// so that a dead target's refused reconnects are not requests. Stays
    /// set once the target is declared down.
    hold: Mutex<Option<Arc<AtomicBool>>>,
}

impl TargetWatch {
    /// Starts watching a run with `policy`; `hold` is set while a
    /// confirmation runs (see [`TargetWatch::hold`]).
    pub(super) fn arm(&self, policy: WatchPolicy, hold: Arc<AtomicBool>) {
        *lock(&self.policy) = Some(policy);
        *lock(&self.hold) = Some(hold);
        self.cancel.store(false, Ordering::SeqCst);
    }

    /// Sets or clears the run's refusal hold.
    fn set_hold(&self, on: bool) {
        if let Some(h) = lock(&self.hold).as_ref() {
            h.store(on, Ordering::SeqCst);
        }
    }

    /// Whether a run is being watched.
    pub(super) fn is_armed(&self) -> bool {
        lock(&self.policy).is_some()
    }

    /// The run's users are done: waits for the verdict of a running
    /// confirmation (cancelling it first when the run was interrupted, so
    /// nothing waits after a Ctrl-C), then stops watching.
    pub(super) fn settle(&self, control: &RunControl) {
        if control.was_interrupted() {
            self.cancel.store(true, Ordering::SeqCst);
        }
        let confirmer = lock(&self.confirmer).take();
        if let Some(handle) = confirmer {
            let _ = handle.join();
        }
        *lock(&self.policy) = None;
        *lock(&self.hold) = None;
    }

    /// Whether the target is suspected dead: a confirmation runs and no
    /// sign of life came after the last refusal. One relaxed load; see
    /// [`TargetWatch::hold_while_suspected`].
    #[inline]
    pub(super) fn suspected(&self) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        // A refusal after the last sign of life ([`AGAIN`]) keeps the
        // suspicion: the latest word on the target is that it refused.
        s & CONFIRMING != 0 && (s & REVIVED == 0 || s & AGAIN != 0)
    }

    /// Holds a virtual user before its next iteration while the target is
    /// suspected dead, until the confirmation ends either way or the run
    /// stops. Without it, users of a fixed-iteration run would burn through
    /// every iteration they have left against a refusing port in the
    /// milliseconds the confirmation takes to decide, and count each
    /// refused connect as a request. A target that is alive shows it
    /// within one probe, so a false suspicion costs at most that.
    pub(super) async fn hold_while_suspected(&self, control: &RunControl) {
        while self.suspected() && !control.is_stopping() {
            tokio::time::sleep(HOLD_POLL).await;
        }
    }

    /// An answer arrived. The fast case, once the target answered and
    /// while no confirmation runs, is one relaxed load.
    #[inline]
    fn answered(&self) {
        let s = self.state.load(Ordering::Relaxed);
        if s != ANSWERED {
            self.answered_slow(s);
        }
    }

    #[cold]
    fn answered_slow(&self, s: u8) {
        if s & ANSWERED == 0 {
            self.state.fetch_or(ANSWERED, Ordering::SeqCst);
        }
        self.sign_of_life();
    }

    /// Notes a sign of life for the running confirmation, if one runs and
    /// has not noted one since the last refusal.
    fn sign_of_life(&self) {
        let mut s = self.state.load(Ordering::SeqCst);
        while s & CONFIRMING != 0 && (s & REVIVED == 0 || s & AGAIN != 0) {
            let next = (s | REVIVED) & !AGAIN;
            match self
                .state
                .compare_exchange(s, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
    }

    /// A connect was refused: the policy when this starts a confirmation,
    /// which the caller must then run ([`TargetWatch::confirm`]). None
    /// before the target ever answered (the preflight's business), while
    /// another confirmation runs (noted for it, see [`AGAIN`]), and when no
    /// run is being watched.
    fn claim(&self) -> Option<WatchPolicy> {
        let mut s = self.state.load(Ordering::SeqCst);
        let mut policy = None;
        loop {
            let next = if s & ANSWERED == 0 {
                return None;
            } else if s & CONFIRMING == 0 {
                if policy.is_none() {
                    policy = Some((*lock(&self.policy))?);
                }
                (s | CONFIRMING) & !(REVIVED | AGAIN)
            } else if s & AGAIN == 0 {
                s | AGAIN
            } else {
                // Refusals come by the thousand a second once a target
                // died: most end here, without a lock or a write.
                return None;
            };
            match self
                .state
                .compare_exchange(s, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) if s & CONFIRMING == 0 => {
                    // Before the refusal that claimed is recorded.
                    self.set_hold(true);
                    return policy;
                }
                Ok(_) => return None,
                Err(now) => s = now,
            }
        }
    }

    /// Runs a confirmation claimed with [`TargetWatch::claim`]: `probe` is
    /// called every [`WatchPolicy::probe_every`]; once it said
    /// [`Probe::Refused`] [`WatchPolicy::probes`] times in a row with no
    /// sign of life meanwhile, the target is declared down on `control`.
    /// Returns whether it was.
    fn confirm(
        &self,
        control: &RunControl,
        policy: WatchPolicy,
        mut probe: impl FnMut() -> Probe,
    ) -> bool {
        let needed = policy.probes();
        let mut refusals = 0;
        loop {
            let s = self.state.load(Ordering::SeqCst);
            let stopped = self.cancel.load(Ordering::SeqCst) || control.was_interrupted();
            if !stopped && s & REVIVED != 0 && s & AGAIN != 0 {
                // Alive, then refused again: start over.
                let next = s & !(REVIVED | AGAIN);
                if self
                    .state
                    .compare_exchange(s, next, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    refusals = 0;
                }
                continue;
            }
            let down = !stopped && s & REVIVED == 0 && refusals >= needed;
            if down {
                control.target_down();
                self.state
                    .fetch_and(!(CONFIRMING | REVIVED | AGAIN), Ordering::SeqCst);
                return true;
            }
            if stopped || s & REVIVED != 0 {
                // Done, unless a refusal came in between (then look again).
                // Once CONFIRMING is clear, a new refusal may start another.
                let next = s & !(CONFIRMING | REVIVED | AGAIN);
                if self
                    .state
                    .compare_exchange(s, next, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    // Not dead (or no longer asked): refusals count as
                    // requests again.
                    self.set_hold(false);
                    return false;
                }
                continue;
            }
            thread::sleep(policy.probe_every);
            match probe() {
                Probe::Refused => refusals += 1,
                // Accepted, or a failure that is no proof of death (a slow
                // or filtered network): a sign of life.
                Probe::NoProof => self.sign_of_life(),
            }
        }
    }
}

/// What one probe of a confirmation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// The connect was refused: nothing listens.
    Refused,
    /// Accepted, or failed in a way that proves nothing.
    NoProof,
}

/// One fresh TCP connect to `addr`, given `limit`.
fn probe(addr: SocketAddr, limit: Duration) -> Probe {
    match TcpStream::connect_timeout(&addr, limit) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        _ => Probe::NoProof,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What an HTTP client feeds: the watch of the run whose worker built it.
#[derive(Debug, Clone)]
pub(super) struct Feed(RunControl);

impl Feed {
    /// A response head arrived.
    #[inline]
    pub(super) fn answered(&self) {
        self.0.watch().answered();
    }

    /// Every address of the endpoint refused the connect; `addr` was the
    /// last one tried. Starts a confirmation on a thread of its own if this
    /// refusal calls for one.
    #[cold]
    pub(super) fn refused(&self, addr: SocketAddr) {
        let watch = self.0.watch();
        if self.0.is_target_down() {
            return;
        }
        let Some(policy) = watch.claim() else {
            return;
        };
        let control = self.0.clone();
        let spawned = thread::Builder::new()
            .name("convoy-target-watch".into())
            .spawn(move || {
                control
                    .watch()
                    .confirm(&control, policy, || probe(addr, policy.probe_every));
            });
        match spawned {
            Ok(handle) => {
                // A previous confirmer, if any, has finished its work (it
                // cleared CONFIRMING, the claim could not succeed before).
                *lock(&watch.confirmer) = Some(handle);
            }
            Err(_) => {
                // No thread, no confirmation: let a later refusal try again.
                watch.set_hold(false);
                watch
                    .state
                    .fetch_and(!(CONFIRMING | REVIVED | AGAIN), Ordering::SeqCst);
            }
        }
    }
}

thread_local! {
    /// The control of the watched run this thread works for, if any.
    static CURRENT: RefCell<Option<RunControl>> = const { RefCell::new(None) };
}

/// Makes the current thread a worker of the watched run of `control` until
/// the guard is dropped: HTTP clients built meanwhile feed its watch.
pub(super) fn enter(control: RunControl) -> Entered {
    CURRENT.with(|c| *c.borrow_mut() = Some(control));
    Entered(())
}

/// See [`enter`].
#[must_use]
pub(super) struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// The feed of the watched run the current thread works for, if any.
pub(super) fn current() -> Option<Feed> {
    CURRENT.with(|c| c.borrow().clone().map(Feed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy quick enough for tests: 3 probes 1 ms apart.
    const QUICK: WatchPolicy = WatchPolicy {
        confirm_for: Duration::from_millis(3),
        probe_every: Duration::from_millis(1),
    };

    fn armed() -> RunControl {
        let control = RunControl::new();
        control.watch().arm(QUICK, Arc::default());
        control
    }

    /// A loopback address nothing listens on.
    fn dead_port() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        addr
    }

    #[test]
    fn the_policies_keep_their_figures() {
        assert_eq!(WatchPolicy::BENCH.probes(), 10);
        assert_eq!(WatchPolicy::RUN.probes(), 15);
        assert_eq!(WatchPolicy::SMOKE, WatchPolicy::RUN);
        let odd = WatchPolicy {
            confirm_for: Duration::ZERO,
            probe_every: Duration::ZERO,
        };
        assert_eq!(odd.probes(), 1);
    }

    #[test]
    fn a_refusal_before_any_answer_is_left_to_the_preflight() {
        let control = armed();
        assert_eq!(control.watch().claim(), None);
        // The same refusal once the target answered starts a confirmation.
        control.watch().answered();
        assert_eq!(control.watch().claim(), Some(QUICK));
    }

    #[test]
    fn nothing_is_confirmed_when_no_run_is_watched() {
        let control = RunControl::new();
        control.watch().answered();
        assert_eq!(control.watch().claim(), None);
        control.watch().arm(QUICK, Arc::default());
        control.watch().settle(&control);
        assert_eq!(control.watch().claim(), None);
    }

    #[test]
    fn one_confirmer_at_a_time() {
        let control = armed();
        let w = control.watch();
        w.answered();
        assert!(w.claim().is_some());
        assert_eq!(w.claim(), None, "a second confirmer while one runs");
        // The first one ends (the target answered its probe): a later
        // refusal may start another.
        assert!(!w.confirm(&control, QUICK, || Probe::NoProof));
        assert!(w.claim().is_some());
    }

    #[test]
    fn refusals_for_the_whole_window_declare_the_target_down() {
        let control = armed();
        let w = control.watch();
        w.answered();
        let policy = w.claim().unwrap();
        let mut probes = 0;
        assert!(w.confirm(&control, policy, || {
            probes += 1;
            Probe::Refused
        }));
        assert_eq!(probes, QUICK.probes());
        assert!(control.is_target_down() && control.is_aborted());
    }

    #[test]
    fn users_are_held_only_while_the_target_is_suspected_and_the_run_goes_on() {
        let control = armed();
        let w = control.watch();
        assert!(!w.suspected(), "nothing is suspected before a refusal");
        w.answered();
        assert!(!w.suspected());
        assert!(w.claim().is_some());
        assert!(w.suspected(), "a confirmation is running");
        w.answered();
        assert!(!w.suspected(), "a sign of life lifts the suspicion");
        assert_eq!(w.claim(), None, "noted for the running confirmation");
        assert!(w.suspected(), "a refusal after the sign of life renews it");
        w.answered();
        assert!(!w.suspected());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Revived: the hold returns at once.
        rt.block_on(w.hold_while_suspected(&control));
        // Suspected again: a stopping run releases its users.
        assert!(!w.confirm(&control, QUICK, || Probe::NoProof));
        assert!(w.claim().is_some());
        assert!(w.suspected());
        control.stop();
        rt.block_on(w.hold_while_suspected(&control));
    }

    #[test]
    fn an_answer_meanwhile_cancels_the_confirmation() {
        let control = armed();
        let w = control.watch();
        w.answered();
        let policy = w.claim().unwrap();
        let mut probes = 0;
        let down = w.confirm(&control, policy, || {
            probes += 1;
            if probes == 2 {
                // Another user's request got an answer.
                w.answered();
            }
            Probe::Refused
        });
        assert!(!down);
        assert_eq!(probes, 2);
        assert!(!control.is_target_down() && !control.is_stopping());
        // The answer was remembered as the target's, not as a revival of
        // the next confirmation.
        assert!(w.claim().is_some());
        assert!(w.confirm(&control, policy, || Probe::Refused));
    }

    #[test]
    fn a_refusal_after_the_answer_that_revived_starts_the_confirmation_over() {
        let control = armed();
        let w = control.watch();
        w.answered();
        let policy = w.claim().unwrap();
        // An answer that was in flight when the target died comes in after
        // the first refusal; then the other users are refused again.
        w.answered();
        assert_eq!(w.claim(), None, "one confirmer at a time");
        let mut probes = 0;
        assert!(w.confirm(&control, policy, || {
            probes += 1;
            Probe::Refused
        }));
        assert_eq!(probes, QUICK.probes());
        assert!(control.is_target_down());
    }

    #[test]
    fn a_refusal_before_an_answer_does_not_outweigh_it() {
        let control = armed();
        let w = control.watch();
        w.answered();
        let policy = w.claim().unwrap();
        assert_eq!(w.claim(), None);
        w.answered();
        let mut probes = 0;
        assert!(!w.confirm(&control, policy, || {
            probes += 1;
            Probe::Refused
        }));
        assert_eq!(probes, 0);
        assert!(!control.is_target_down());
    }

    #[test]
    fn a_probe_that_proves_nothing_lets_the_run_go_on() {
        let control = armed();
        let w = control.watch();
        w.answered();
        let policy = w.claim().unwrap();
        let mut n = 0;
        assert!(!w.confirm(&control, policy, || {
            n += 1;
            if n < 3 {
                Probe::Refused
            } else {
                Probe::NoProof
            }
        }));
        assert!(!control.is_target_down());
    }

    #[test]
    fn an_interrupted_run_declares_nothing() {
        let control = armed();
        let w = control.watch();
        w.answered();
        let policy = w.claim().unwrap();
        control.stop();
        assert!(!w.confirm(&control, policy, || Probe::Refused));
        assert!(!control.is_target_down());
    }

    #[test]
    fn probes_tell_a_refused_port_from_a_listening_one() {
        assert_eq!(probe(dead_port(), QUICK.probe_every), Probe::Refused);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            probe(l.local_addr().unwrap(), Duration::from_secs(5)),
            Probe::NoProof
        );
    }

    #[test]
    fn a_fed_refusal_confirms_on_its_own_thread_and_settle_waits_for_it() {
        let control = armed();
        let feed = Feed(control.clone());
        feed.answered();
        feed.refused(dead_port());
        control.watch().settle(&control);
        assert!(control.is_target_down());
    }

    #[test]
    fn settle_cancels_the_confirmation_of_an_interrupted_run() {
        let control = RunControl::new();
        control.watch().arm(WatchPolicy::RUN, Arc::default());
        let feed = Feed(control.clone());
        feed.answered();
        feed.refused(dead_port());
        control.stop();
        control.watch().settle(&control);
        assert!(!control.is_target_down());
    }

    #[test]
    fn clients_feed_the_run_their_thread_works_for() {
        assert!(current().is_none());
        let control = armed();
        {
            let _in = enter(control.clone());
            current().expect("inside the run").answered();
        }
        assert!(current().is_none());
        assert!(control.watch().claim().is_some(), "the answer was fed");
    }
}
