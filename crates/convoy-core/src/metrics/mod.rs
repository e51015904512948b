//! Measurement values: histograms, per-step counters, per-worker shards and
//! the per-second timeline. Nothing here knows about HTTP clients or output
//! formats.
//!
//! Layering: a leaf. It imports no other module of the harness; the engine
//! records into it, reports, gates and live metrics read it.

pub mod checks;
pub mod histogram;
pub mod recorder;
pub mod stats;
pub mod timeline;

pub use checks::{CheckBook, CheckStats, FailureKind, FailureSample, Violation};
pub use histogram::LatencyHistogram;
pub use recorder::{Recorder, Shard};
pub use stats::{ErrorCause, Outcome, StepStats};
pub use timeline::{Timeline, TimelineSample};
