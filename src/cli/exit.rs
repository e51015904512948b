//! The exit code of a finished run, by one rule that `run`, `smoke`,
//! `bench`, `merge` and `report --gate` all apply ([`exit_code`]).
//!
//! A run can fail in several ways at once. Its exit code names the first of
//! these that happened, in this order (README, "Exit codes"; `--help`):
//!
//! 1. **4** the target stopped accepting connections mid-run (target down);
//! 2. **3** convoy's own machine failed requests (errors of cause `local`:
//!    out of file descriptors), so nothing else it measured can be trusted;
//! 3. **1** `--abort-on-fail` stopped the run because a gate could no
//!    longer pass;
//! 4. **5** a signal stopped the run (its report is partial);
//! 5. **4** no request reached the target (refused, DNS, connect);
//! 6. **2** a check failed or a violation was counted: the target answered
//!    wrongly;
//! 7. **1** a gate failed, or `--baseline`'s comparison found a regression:
//!    the answers were right but the figures were not;
//! 8. **0** passed.
//!
//! What stopped the run from measuring comes first, then what the answers
//! showed: wrong answers before slow ones. Errors before a run starts (a
//! bad flag or scenario, an output path that cannot be written, a host the
//! allow-list refuses) exit 3 with nothing sent; a report that cannot be
//! written after the run exits 3 after the summary, whatever the verdict.

use super::Exit;
use crate::engine::StopReason;
use crate::gate;
use crate::report::Report;

/// What went wrong in a finished run, each independently of the others:
/// the facts the exit code is chosen from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The target stopped accepting connections mid-run.
    pub target_down: bool,
    /// convoy's own machine failed requests (cause `local`).
    pub local_error: bool,
    /// `--abort-on-fail` stopped the run.
    pub aborted_by_gate: bool,
    /// A signal stopped the run.
    pub interrupted: bool,
    /// Requests were made and none reached the target.
    pub never_reached: bool,
    /// A check failed or a violation was counted.
    pub checks_failed: bool,
    /// A gate failed, or the comparison with a baseline found a regression.
    pub gates_failed: bool,
}

impl Outcome {
    /// The facts of `report`.
    pub fn of(report: &Report) -> Self {
        Outcome {
            target_down: report.stop_reason == StopReason::TargetDown,
            local_error: local_failures(report) > 0,
            aborted_by_gate: report.stop_reason == StopReason::AbortedByGate,
            interrupted: report.stop_reason == StopReason::Interrupted || report.partial,
            never_reached: report.overall.never_reached(),
            checks_failed: report.check_failures() > 0 || report.violation_count() > 0,
            gates_failed: !gate::all_passed(&report.gates)
                || report
                    .comparison
                    .as_ref()
                    .is_some_and(|c| c.has_regressions()),
        }
    }

    /// The exit code, by the rule of this module: the first that happened.
    pub fn exit(&self) -> Exit {
        let order = [
            (self.target_down, Exit::Aborted),
            (self.local_error, Exit::Usage),
            (self.aborted_by_gate, Exit::GatesFailed),
            (self.interrupted, Exit::Interrupted),
            (self.never_reached, Exit::Aborted),
            (self.checks_failed, Exit::ChecksFailed),
            (self.gates_failed, Exit::GatesFailed),
        ];
        order
            .iter()
            .find(|(happened, _)| *happened)
            .map_or(Exit::Pass, |(_, exit)| *exit)
    }
}

/// The documented exit code of a finished run (see the module's rule).
pub fn exit_code(report: &Report) -> Exit {
    Outcome::of(report).exit()
}

/// Requests convoy's own machine failed (errors of cause `local`).
fn local_failures(report: &Report) -> u64 {
    report
        .overall
        .error_counts
        .get(&crate::metrics::ErrorCause::Local)
        .copied()
        .unwrap_or(0)
}

/// What to say when convoy's own machine failed requests (cause `local`:
/// out of file descriptors): a local error, with how to fix it.
pub(crate) fn local_failure_note(report: &Report) -> Option<String> {
    let n = Some(local_failures(report)).filter(|n| *n > 0)?;
    let limit = crate::engine::limits::open_files()
        .map_or_else(String::new, |l| format!(" (the limit is {l})"));
    Some(format!(
        "convoy ran out of file descriptors or socket buffers on this machine: {n} requests \
         could not open a connection (errors of cause `local`). This is convoy's own \
         environment, not the target: raise the open-file limit{limit} with `ulimit -n`, or use \
         fewer connections or users"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the seven facts.
    fn every_outcome() -> impl Iterator<Item = Outcome> {
        (0u8..128).map(|bits| {
            let b = |i: u8| bits & (1 << i) != 0;
            Outcome {
                target_down: b(0),
                local_error: b(1),
                aborted_by_gate: b(2),
                interrupted: b(3),
                never_reached: b(4),
                checks_failed: b(5),
                gates_failed: b(6),
            }
        })
    }

    #[test]
    fn the_code_is_one_that_happened_and_none_is_lost() {
        for o in every_outcome() {
            let e = o.exit();
            let happened: Vec<Exit> = [
                (o.target_down, Exit::Aborted),
                (o.local_error, Exit::Usage),
                (o.aborted_by_gate, Exit::GatesFailed),
                (o.interrupted, Exit::Interrupted),
                (o.never_reached, Exit::Aborted),
                (o.checks_failed, Exit::ChecksFailed),
                (o.gates_failed, Exit::GatesFailed),
            ]
            .into_iter()
            .filter_map(|(h, e)| h.then_some(e))
            .collect();
            if happened.is_empty() {
                assert_eq!(e, Exit::Pass, "{o:?}");
            } else {
                assert!(happened.contains(&e), "{o:?} gave {e:?}");
            }
        }
    }

    #[test]
    fn combinations_follow_the_documented_order() {
        let o = |f: fn(&mut Outcome)| {
            let mut o = Outcome::default();
            f(&mut o);
            o.exit()
        };
        // Wrong answers before slow ones.
        assert_eq!(
            o(|o| {
                o.checks_failed = true;
                o.gates_failed = true;
            }),
            Exit::ChecksFailed
        );
        // A stop before what the part that ran showed.
        assert_eq!(
            o(|o| {
                o.interrupted = true;
                o.checks_failed = true;
                o.gates_failed = true;
            }),
            Exit::Interrupted
        );
        assert_eq!(
            o(|o| {
                o.aborted_by_gate = true;
                o.interrupted = true;
                o.checks_failed = true;
            }),
            Exit::GatesFailed
        );
        // convoy's own machine before anything it measured.
        assert_eq!(
            o(|o| {
                o.local_error = true;
                o.aborted_by_gate = true;
                o.interrupted = true;
                o.never_reached = true;
                o.checks_failed = true;
            }),
            Exit::Usage
        );
        // A dead target before everything.
        assert_eq!(
            o(|o| {
                o.target_down = true;
                o.local_error = true;
                o.interrupted = true;
                o.checks_failed = true;
                o.gates_failed = true;
            }),
            Exit::Aborted
        );
        assert_eq!(
            o(|o| {
                o.never_reached = true;
                o.checks_failed = true;
                o.gates_failed = true;
            }),
            Exit::Aborted
        );
        assert_eq!(o(|o| o.gates_failed = true), Exit::GatesFailed);
        assert_eq!(o(|_| {}), Exit::Pass);
    }
}
