//! Closed model: each virtual user starts its next iteration when the
//! previous one ends.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::control::Shared;
use super::{Arrival, Iteration, Workload};
use crate::metrics::Recorder;

/// What a virtual user task owns.
pub(super) struct UserCtx<W: Workload> {
    /// The user's number in this process (for the ramp).
    pub vu: u64,
    /// The user's number in the whole (possibly sharded) run.
    pub global_vu: u64,
    pub workload: Arc<W>,
    pub worker: Rc<W::Worker>,
    pub shared: Arc<Shared>,
    pub recorder: Recorder,
    pub in_flight: Arc<AtomicU64>,
}

impl<W: Workload> UserCtx<W> {
    /// Runs one iteration scheduled at `scheduled` (open model: arrival
    /// `arrival`), keeping the in-flight count right.
    pub async fn iterate(
        &self,
        user: &mut W::User,
        index: u64,
        scheduled: Instant,
        arrival: Option<Arrival>,
    ) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let it = Iteration {
            index,
            vu: self.global_vu,
            scheduled,
            arrival,
            recorder: &self.recorder,
        };
        self.workload.iteration(&self.worker, user, it).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.recorder.iteration_done();
    }
}

/// One virtual user of the closed model.
pub(super) async fn run_user<W: Workload>(ctx: UserCtx<W>, per_user: Option<u64>) {
    let mut user = ctx.workload.user(&ctx.worker, ctx.global_vu);
    let mut index = 0u64;
    loop {
        if ctx.shared.control.is_stopping() {
            break;
        }
        if !ctx.shared.user_active(ctx.vu) {
            if !ctx.shared.wait_active(ctx.vu).await {
                break;
            }
            continue;
        }
        let watch = ctx.shared.control.watch();
        if watch.suspected() {
            watch.hold_while_suspected(&ctx.shared.control).await;
            continue;
        }
        if per_user.is_some_and(|n| index >= n) || !ctx.shared.claim_iteration() {
            break;
        }
        ctx.iterate(&mut user, index, Instant::now(), None).await;
        index += 1;
    }
}
