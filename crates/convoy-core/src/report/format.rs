//! Number formatting shared by every renderer; it lives in [`crate::units`],
//! below the gates and the reports, and is re-exported here so renderers
//! (and callers) keep reading it as `report::format`.

pub use crate::units::{millis, per_second, percent, trim_float};
