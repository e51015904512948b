//! Whether a baseline measured the same thing as the run compared with it
//! (see the parent module's docs, "Is the baseline comparable?").

use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::report::merge::target_identity;

/// One way in which a baseline differs from the run compared with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// What differs: `command`, `scenario`, `profile`, `target`, `steps`,
    /// `load_model`, `shard`.
    pub field: String,
    /// The baseline's value, as a person reads it.
    pub baseline: String,
    /// The current run's value.
    pub current: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.field == "steps" {
            "differ"
        } else {
            "differs"
        };
        write!(
            f,
            "{} {verb}: baseline {}, this run {}",
            self.field, self.baseline, self.current
        )
    }
}

/// What makes `baseline` measure something else than `current`: the
/// fields merging requires equal (command, scenario, profile, target with
/// loopback ports ignored, steps), the load model and the shard. Empty when
/// the two are comparable.
pub fn mismatches(baseline: &Report, current: &Report) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differs = |field: &str, b: String, c: String| {
        out.push(Mismatch {
            field: field.to_string(),
            baseline: b,
            current: c,
        })
    };
    let quoted = |s: &Option<String>| {
        s.as_deref()
            .map_or("none".to_string(), |s| format!("{s:?}"))
    };
    if baseline.command != current.command {
        differs(
            "command",
            format!("{:?}", baseline.command),
            format!("{:?}", current.command),
        );
    }
    if baseline.scenario != current.scenario {
        differs(
            "scenario",
            quoted(&baseline.scenario),
            quoted(&current.scenario),
        );
    }
    if baseline.profile != current.profile {
        differs(
            "profile",
            quoted(&baseline.profile),
            quoted(&current.profile),
        );
    }
    if target_identity(&baseline.target) != target_identity(&current.target) {
        differs(
            "target",
            format!("{:?}", baseline.target),
            format!("{:?}", current.target),
        );
    }
    let names =
        |r: &Report| -> Vec<String> { r.steps.iter().map(|s| s.kind.label(&s.name)).collect() };
    let (base_steps, current_steps) = (names(baseline), names(current));
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|s| !b.contains(s)).cloned().collect()
    };
    let (gone, new) = (
        only(&base_steps, &current_steps),
        only(&current_steps, &base_steps),
    );
    if !gone.is_empty() || !new.is_empty() {
        let list = |v: &[String]| {
            if v.is_empty() {
                "nothing else".to_string()
            } else {
                format!("also {}", v.join(", "))
            }
        };
        differs("steps", list(&gone), list(&new));
    }
    if baseline.load_model != current.load_model {
        differs(
            "load_model",
            format!("{:?}", baseline.load_model.describe()),
            format!("{:?}", current.load_model.describe()),
        );
    }
    if baseline.shard != current.shard {
        let shard = |s: &Option<crate::plan::Shard>| {
            s.map_or("the whole run".to_string(), |s| format!("shard {s}"))
        };
        differs("shard", shard(&baseline.shard), shard(&current.shard));
    }
    out
}
