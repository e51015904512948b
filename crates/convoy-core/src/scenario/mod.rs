//! Scenarios: journeys as data.
//!
//! A scenario file (TOML) describes one journey: identities and how they log
//! in, then steps of several kinds (requests with checks and captures,
//! idempotent replays, tenant-isolation probes, auth probes, SQL and RLS
//! steps, custom journeys in Rust, streams: subscribe, await, send and
//! stream isolation). [`parse`] compiles a file into a [`Scenario`] with
//! every template parsed and every name resolved, reporting mistakes at
//! their file, line and column; [`runner`] runs scenarios on the engine.
//! The format is documented in `scenarios/README.md`.
//!
//! Layers, each using only those below it (no module imports one above):
//!
//! 1. Vocabulary: [`model`] (identities, checks, captures, JSON
//!    templates, data rows), [`template`], [`source`], [`diagnostic`],
//!    [`data`], `json_pick`.
//! 2. Services: `exchange` (a rendered request and its recorded
//!    outcome), `stream` (streams a user holds: the SSE parser, the
//!    WebSocket client, their buffers and reconnects), `render` (templates into bodies and values), `failure`
//!    (failure samples and redaction), `db` (PostgreSQL connections and
//!    queries), `jwt` (tokens forged for the auth probes), [`custom`] (the
//!    API of journeys in Rust).
//! 3. Contexts: `compile` (what compiling a step needs) and `step_run`
//!    (what running one needs); on them `check` (compiling and evaluating
//!    checks), `kind` (the contract of a step kind) and [`auth`]
//!    (identities, login, tokens and their renewal).
//! 4. Kinds: [`steps`], one module per kind, listed once in `steps/mod.rs`.
//! 5. The compiled scenario: [`journey`] ([`Scenario`], [`Step`]).
//! 6. Front-ends: [`parse`] and [`builtin`] (files in), [`runner`] (the
//!    engine's workload), and [`load`] here.
//!
//! This module may use the crate's `engine`, `metrics`, `plan`, `redact`
//! and `rls`; it must not import `report`, `live` or the binary's `cli`
//! (they consume it). `gate` is used in one place only: [`parse`] checks a
//! scenario's `gates` with the gate parser, so a wrong gate is reported at
//! its line; nothing else of `gate` may be imported.

pub mod auth;
pub mod builtin;
mod check;
mod compile;
pub mod custom;
pub mod data;
mod db;
pub mod diagnostic;
mod exchange;
mod failure;
pub mod journey;
mod json_pick;
mod jwt;
mod kind;
pub mod model;
pub mod parse;
mod render;
pub mod runner;
pub mod source;
mod step_run;
pub mod steps;
mod stream;
pub mod template;

pub use custom::{CustomCtx, CustomJourney, CustomRegistry};
pub use diagnostic::Diagnostic;
pub use journey::{Scenario, Step};
pub use runner::ScenarioWorkload;
pub use steps::Action;

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
