//! Open model: iterations start at their scheduled arrival times, whatever
//! the target does.
//!
//! There is no central scheduler. Arrival `n` is due at
//! `start + rate.arrival_time(n)`; every free slot (a virtual user with its
//! own connection) claims the next arrival number from a shared counter,
//! sleeps until it is due, and runs it. When every slot is busy, arrivals
//! wait, and their latency is measured from the time they were *due*
//! (coordinated omission corrected, as in wrk2). An arrival that could not
//! start within `max_lag` of its due time is counted as dropped. An arrival
//! whose slot was idle and waiting for it is timed from the moment the
//! timer woke the slot: the timer's own millisecond resolution is not
//! queueing.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Workload;
use super::closed::UserCtx;
use crate::plan::Ramp;

/// One slot of the open model.
pub(super) async fn run_user<W: Workload>(
    ctx: UserCtx<W>,
    rate: Ramp,
    max_lag: Duration,
    total: Option<u64>,
) {
    let mut user = ctx.workload.user(&ctx.worker, ctx.global_vu);
    let mut index = 0u64;
    loop {
        if ctx.shared.control.is_stopping() {
            break;
        }
        let n = ctx.shared.next_arrival.fetch_add(1, Ordering::Relaxed);
        if total.is_some_and(|t| n >= t) {
            break;
        }
        let Some(offset) = rate.arrival_time(n) else {
            break;
        };
        let mut scheduled = ctx.shared.start + offset;
        let now = Instant::now();
        if scheduled > now {
            // The slot was free before the arrival was due: nothing queued.
            // The timer wakes up to a millisecond late (its resolution);
            // that lag is the generator's, not the target's, so latency
            // counts from the wake-up rather than from the due time.
            tokio::time::sleep_until(scheduled.into()).await;
            if ctx.shared.control.is_stopping() {
                break;
            }
            scheduled = Instant::now();
        } else if now - scheduled > max_lag {
            ctx.recorder.dropped();
            continue;
        }
        ctx.iterate(&mut user, index, scheduled).await;
        index += 1;
    }
}
