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
//!
//! Every arrival due before the run stops is counted exactly once: as a
//! request (an iteration), as dropped, or as interrupted when it was cut off
//! in flight. Arrivals still waiting for a slot when the run stops (every
//! slot busy until the end, e.g. with a long `max_lag`) never started, so
//! the engine counts them as dropped too
//! ([`super::control::Shared::unclaimed_arrivals`]). Late arrivals may start
//! up to `max_lag` after the schedule ends, so a saturated run can last up
//! to its duration plus `max_lag`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::closed::UserCtx;
use super::{Arrival, Workload};
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
        let due = ctx.shared.start + offset;
        let mut scheduled = due;
        let now = Instant::now();
        if scheduled > now {
            // The slot was free before the arrival was due: nothing queued.
            // The timer wakes up to a millisecond late (its resolution);
            // that lag is the generator's, not the target's, so latency
            // counts from the wake-up rather than from the due time.
            tokio::time::sleep_until(scheduled.into()).await;
            if ctx.shared.control.is_stopping() {
                // Due before the run stopped (the timer woke late): it
                // belongs to the run but will never start.
                if ctx.shared.control.stopped_at().is_some_and(|s| due <= s) {
                    ctx.recorder.dropped();
                }
                break;
            }
            scheduled = Instant::now();
        } else if now - scheduled > max_lag {
            ctx.recorder.dropped();
            continue;
        }
        let arrival = Arrival {
            number: n,
            due: offset,
        };
        ctx.iterate(&mut user, index, scheduled, Some(arrival))
            .await;
        index += 1;
    }
}
