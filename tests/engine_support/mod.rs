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

/// `scenario` walked `iterations` times by one user on one worker, with a
/// graceful stop of 5 s: how the tests of one journey against a small
/// server of their own run it.
pub fn run_one_user(base_url: &str, scenario: Scenario, iterations: u64) -> RunResult {
    let url: url::Url = base_url.parse().unwrap();
    let workload = ScenarioWorkload::new(
        vec![scenario],
        Some(&url),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .unwrap();
    let options = EngineOptions {
        workers: 1,
        graceful_stop: Duration::from_secs(5),
        ..EngineOptions::default()
    };
    engine::run(
        &LoadModel::closed(1, iterations),
        &options,
        Arc::new(workload),
        &RunControl::new(),
        |_| {},
    )
    .unwrap()
}

/// The failed checks of a run as `step › check`, then its failure samples
/// as `check: message`: what an assertion message shows.
pub fn failed_checks(r: &RunResult) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| c.stats.failures > 0)
        .map(|c| format!("{} › {}", c.info.step, c.info.name))
        .chain(
            r.failures
                .iter()
                .map(|f| format!("{}: {}", f.check, f.message)),
        )
        .collect()
}
