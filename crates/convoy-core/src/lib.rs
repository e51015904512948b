//! convoy's harness: everything that measures, nothing that is measured.
//!
//! The `convoy` binary (the workspace's root crate) joins this library with
//! the reference API (`crates/reference-api`); this crate depends on neither
//! and never starts a server but its own `/metrics` endpoint. It is
//! organised as a pipeline, each stage usable on its own:
//!
//! * [`plan`] holds validated run plans (load models, HTTP options). The
//!   command line (the `convoy` crate's `cli`) and scenario files are turned
//!   into a plan; the engine only ever sees a plan.
//! * [`engine`] executes a plan: virtual users (closed model) or arrivals
//!   (open model) drive a [`engine::Workload`], recording into
//!   [`metrics`] without a shared lock on the hot path.
//! * [`metrics`] holds the mergeable measurement values: HdrHistograms per
//!   step, counters by status and by error cause, a per-second timeline.
//! * [`report`] turns a run result into the versioned `convoy.report/v1`
//!   document and renders it (terminal table, JSON, ...).
//! * [`gate`] parses SLA gates and evaluates them on the figures a run
//!   provides (a report, a merge of shards, the [`live`] exporter's
//!   snapshot); it imports none of them.
//! * [`summary`] and [`units`] sit below gates, reports and live metrics:
//!   latency percentiles and throughput, and how a figure is written.
//! * [`target_url`] is the one rule that joins a path to a target's base
//!   URL, for every request a run sends and for the health poll.

pub mod bench;
pub mod engine;
pub mod gate;
pub mod history;
pub mod init;
pub mod live;
pub mod metrics;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod redact;
pub mod report;
pub mod rls;
pub mod safety;
pub mod scenario;
pub mod stats;
pub mod summary;
pub mod target_url;
pub mod units;
