//! Run history analysis: where a nightly series of runs changed level.
//!
//! [`changepoint`] finds change points in one series of numbers;
//! [`series`] groups stored reports into comparable series and runs it on
//! each figure of each step; [`evaluate`] measures how well a nightly gate
//! on them finds planted regressions in recorded noise. Reading and writing the history directory is
//! [`crate::report::history`]'s.

pub mod changepoint;
pub mod evaluate;
pub mod render;
pub mod series;
pub mod trend;

pub use changepoint::{ChangePoint, LevelTest, Options};
pub use series::{Analysis, analyse};
