//! Scenarios run through the library's engine as `convoy run` drives it
//! (two workers, a graceful stop long enough never to cut an iteration),
//! for the tests of what journeys do rather than of the command line.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use convoy::engine::{self, EngineOptions, RunControl, RunResult, WatchPolicy};
use convoy::plan::{HttpOptions, LoadModel};
use convoy::scenario::{CustomRegistry, Scenario, ScenarioWorkload};

/// Runs `scenarios` (with the `custom` journeys) under `model` against
/// `base_url`. With `watch`, the run watches for the target's death as
/// `convoy run` sets it up: the engine's target watch with `convoy run`'s
/// policy.
pub fn run_scenarios(
    base_url: &str,
    scenarios: Vec<Scenario>,
    model: &LoadModel,
    custom: CustomRegistry,
    watch: bool,
) -> RunResult {
    let url: url::Url = base_url.parse().unwrap();
    let control = RunControl::new();
    let w = ScenarioWorkload::new(scenarios, Some(&url), HttpOptions::default(), custom).unwrap();
    let options = EngineOptions {
        workers: 2,
        graceful_stop: Duration::from_secs(30),
        target_watch: watch.then_some(WatchPolicy::RUN),
        ..EngineOptions::default()
    };
    engine::run(model, &options, Arc::new(w), &control, |_| {}).unwrap()
}
