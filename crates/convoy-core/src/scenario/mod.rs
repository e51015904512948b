//! Scenarios: journeys as data.
//!
//! A scenario file (TOML) describes one journey: identities and how they log
//! in, then steps (requests with checks and captures, idempotent replays,
//! tenant-isolation probes). [`parse`] compiles a file into a [`Scenario`]
//! with every template parsed and every name resolved, reporting mistakes at
//! their file, line and column; [`runner`] runs scenarios on the engine.
//! The format is documented in `scenarios/README.md`.

pub mod builtin;
pub mod data;
pub mod diagnostic;
mod json_pick;
pub mod model;
pub mod parse;
pub mod runner;
pub mod source;
pub mod sql;
pub mod template;

pub use diagnostic::Diagnostic;
pub use model::Scenario;
pub use runner::{CustomCtx, CustomJourney, CustomRegistry, ScenarioWorkload};

/// Loads a scenario named on the command line: a built-in name (`health`,
/// `order-lifecycle`, ...) or a path to a file.
pub fn load(arg: &str) -> Result<Scenario, Diagnostic> {
    let path = std::path::Path::new(arg);
    if !path.exists()
        && let Some(s) = builtin::get(arg)
    {
        return s;
    }
    if !path.exists() {
        let d = Diagnostic::file(
            path,
            format!("no scenario file or built-in scenario named \"{arg}\""),
        );
        return Err(
            match diagnostic::did_you_mean(arg, builtin::NAMES.iter().copied()) {
                Some(s) => d.with_hint(format!("did you mean the built-in \"{s}\"?")),
                None => d.with_hint(format!("built-in scenarios: {}", builtin::NAMES.join(", "))),
            },
        );
    }
    parse::load_file(path)
}
