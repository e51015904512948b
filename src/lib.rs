//! convoy: a load-testing and smoke-test harness for the HTTP APIs of
//! logistics platforms.
//!
//! This crate is the `convoy` command: [`cli`] holds what the user types
//! (clap structs), turns it into plans and calls the two crates it joins:
//!
//! * [`convoy_core`], the harness (plans, the load engine, measurement,
//!   scenarios, gates, reports, live metrics), re-exported here module by
//!   module so that `convoy::engine` and `convoy_core::engine` are one path;
//! * [`reference_api`], the reference logistics API with faults on demand,
//!   re-exported as [`target`]. The harness never depends on it: only the
//!   command line starts it (`convoy run` without `--target`,
//!   `convoy target`).

pub mod cli;

pub use convoy_core::{
    bench, engine, gate, history, init, live, metrics, plan, profile, progress, redact, report,
    rls, safety, scenario, summary, target_url, units,
};
pub use reference_api as target;
