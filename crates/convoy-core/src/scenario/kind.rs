//! The contract of a step kind. A kind is a type (its compiled form, such
//! as `SqlStep`) in a module of its own under
//! `steps/`, implementing [`Compile`] (from its table in a `[[step]]`) and
//! [`Kind`] (its metrics, checks and execution); the list in `steps/mod.rs`
//! names it once, which generates the `Action` enum and every dispatch,
//! all static (a `match`, no `dyn`).
//!
//! Sits above the compile and run contexts ([`Compiler`], [`StepRun`]) and
//! below the kinds.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::compile::{Compiler, StepTable};
use super::custom::CustomRegistry;
use super::diagnostic::Diagnostic;
use super::step_run::StepRun;
use crate::engine::{CheckInfo, StepInfo, StepKind};

/// How a kind is compiled from a step table `S` that has its table.
pub(crate) trait Compile<S: StepTable>: Sized {
    /// The kind's own value in a step, as written: the `[step.sql]` table,
    /// the `custom = "NAME"` string, ...
    type Table: DeserializeOwned;

    /// How a step of the kind is named in messages: "an isolation step".
    const WHAT: &'static str;

    /// The keys of its `[[step]]` the kind reads besides `name`, `think` and
    /// its own table; any other key a step of the kind has is refused where
    /// it is written, so nothing is silently ignored.
    const STEP_KEYS: &'static [&'static str];

    /// Where a key the kind does not use belongs, if it can be told.
    fn unused_hint(_key: &str) -> Option<String> {
        None
    }

    /// Declares the variables its table holds, before any step compiles.
    fn declare(_c: &mut Compiler<'_>, _table: &Self::Table) -> Result<(), Diagnostic> {
        Ok(())
    }

    /// Compiles `step`, whose kind table is `table`.
    fn compile(
        c: &Compiler<'_>,
        step: &Spanned<S>,
        table: &Spanned<Self::Table>,
    ) -> Result<Self, Diagnostic>;

    /// The step's name (its metric's) when the scenario gives none.
    fn default_name(&self, step: &S) -> String;
}

/// What a compiled step of a kind records, and how it runs.
pub(crate) trait Kind: Sized {
    /// The ids of the metrics and checks one step of this kind records.
    type Ids;

    /// Appends the metric names a step named `step` records, in order.
    fn metric_names(&self, step: &str, out: &mut Vec<String>) {
        out.push(step.to_string());
    }

    /// Registers the metrics and checks of a step named `step`; `Err` when
    /// the step cannot run (it names something not registered).
    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<Self::Ids, String>;

    /// The most requests (or queries) one run of the step makes, its
    /// identity's login aside; `None` when there is no bound.
    fn max_requests(&self) -> Option<u64>;

    /// The most HTTP requests one run of the step sends to the target,
    /// its identity's logins aside: its requests, unless it queries a
    /// database instead (those send none).
    fn max_target_requests(&self) -> Option<u64> {
        self.max_requests()
    }

    /// The most times one run of the step asks for its identity's token,
    /// each of which can be a login (a first one, or a renewal).
    fn max_logins(&self) -> u64 {
        1
    }

    /// The most requests one run of the step has in flight at once.
    fn max_in_flight(&self) -> u64 {
        1
    }

    /// The connections a user keeps open after the step, besides its own
    /// for requests: a held stream's (`[step.subscribe]`), for the rest of
    /// the user's life. They count against the open-file limit and the
    /// smoke allowance's requests at once.
    fn held_connections(&self) -> u64 {
        0
    }

    /// Values the step holds that must never be shown.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    /// Runs the step once; true when everything held.
    async fn execute(&self, ids: &Self::Ids, run: &mut StepRun<'_>) -> bool;
}

/// Collects the workload's metrics and checks while steps register theirs.
pub(crate) struct Registrar<'r> {
    /// Every metric, in order.
    pub steps: &'r mut Vec<StepInfo>,
    /// Every check, in order.
    pub checks: &'r mut Vec<CheckInfo>,
    /// How many metrics of all journeys share each name.
    pub seen: &'r HashMap<String, usize>,
    /// The journey registering.
    pub journey: &'r str,
    /// Its variable slots' names.
    pub slots: &'r [String],
    /// Custom journeys by name.
    pub custom: &'r CustomRegistry,
}

impl Registrar<'_> {
    /// Adds metric `name`; returns its id.
    pub fn step(&mut self, name: String, kind: StepKind) -> usize {
        self.steps.push(StepInfo { name, kind });
        self.steps.len() - 1
    }

    /// Adds check `name` of metric `step`; returns its id.
    pub fn check(&mut self, step: &str, name: String) -> usize {
        self.checks.push(CheckInfo {
            step: step.to_string(),
            name,
        });
        self.checks.len() - 1
    }

    /// Metric name `n`, prefixed with the journey's name when another
    /// metric of the run has the same name.
    pub fn qualify(&self, n: &str) -> String {
        if self.seen.get(n).copied().unwrap_or(0) > 1 {
            format!("{}/{n}", self.journey)
        } else {
            n.to_string()
        }
    }
}
