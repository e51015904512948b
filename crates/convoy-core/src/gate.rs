//! SLA gates: thresholds on a run's figures, written the way people say
//! them (`p95 < 500ms`, `error_rate < 1%`, `step:"create order" p99 < 1s`,
//! `p95 <= baseline * 1.10`), parsed into [`Gate`]s and evaluated on a run's
//! [`Figures`] into the [`GateResult`]s every report carries.
//!
//! # Syntax
//!
//! ```text
//! gate      = [scope " "] metric op threshold
//! scope     = ("step:" | "journey:" | "event:" | "stream:")
//!             (name | '"' name with spaces '"' | "*")
//! metric    = p50 | p90 | p95 | p99 | p999 | max | min | mean
//!           | error_rate | errors | rps | checks | requests | dropped
//!           | idempotency_violations | tenant_isolation_violations
//!           | auth_violations
//! op        = "<" | "<=" | ">" | ">=" | "==" | "!="
//! threshold = number [unit] | "baseline" ["*" number]
//! ```
//!
//! Latencies take `us`, `ms` or `s` (a bare number is milliseconds); rates
//! (`error_rate`, `checks`, the pass rate of every check) take a percentage
//! (`1%`) or a fraction (`0.01`); `rps` takes a bare number or `/s`; counts
//! are bare whole numbers. Without a scope a gate applies to the whole run
//! (every request step merged). `dropped` and the violation counters exist
//! for the whole run only.
//!
//! A `*` for the name is every metric of that kind, each judged as its own
//! gate would be ([`Scope::Every`]): `event:* p95 < 100ms` holds when it
//! holds for every awaited event of the run; its verdict names each that
//! failed, and its `actual` is the worst value. `stream:*` passes over a
//! stream row that counted nothing (the reconnects of a stream that held);
//! every other kind judges, and fails, a metric without data as its named
//! gate does. `step:"*"` is a step called `*`.
//!
//! A `baseline` threshold is the same figure (same scope and metric) in a
//! baseline run, times the factor: `p95 <= baseline * 1.10` allows 10 %
//! more than the baseline's p95.
//!
//! # Verdicts without data
//!
//! A gate fails, with a reason in [`GateResult::actual_display`], when its
//! scope is not in the run (`no such step`; a wildcard that matches no
//! metric: `no such event (the run has none)`), when a latency gate has no
//! latency sample to measure, when a scoped `checks` gate finds no check in
//! its step, or when a baseline gate is evaluated without a baseline. An
//! overall `checks` gate on a run with no checks at all passes: there was
//! nothing to fail.
//!
//! # What this module owns, and what it must not import
//!
//! It owns the gate language (syntax tree and parser), the [`Figures`] the
//! language can name, evaluation into [`GateResult`]s, and the early
//! verdicts of `--abort-on-fail` ([`already_lost`] on [`LiveFigures`]).
//!
//! It reads figures and nothing else: it must not import `report`, `live`,
//! the command line or engine execution (runs, live statuses). Whoever holds
//! the measurements provides the figures: a report (`impl Figures for
//! Report`, also after a merge of shards), the live exporter (a
//! [`RunFigures`] of its latest snapshot), a test (a hand-built
//! [`RunFigures`]). It may use the layers below everyone: `metrics` (the
//! violation kinds), `summary` (latency percentiles), `units` (how a value
//! is written) and `rls` (the name of the coverage check).

mod evaluate;
mod figures;
mod lost;
mod parse;
mod syntax;

pub use evaluate::{GateResult, all_passed, evaluate, measure};
pub use figures::{CheckFigures, Figures, RunFigures, ScopeFigures};
pub use lost::{LiveFigures, already_lost};
pub use syntax::{Gate, GateError, Metric, Op, Scope, ScopeKind, Threshold, Unit, parse_all};
