//! The compiled scenario: a [`Scenario`] (one journey) and its [`Step`]s,
//! what `parse` builds from a file and `runner` runs.
//! Above the step kinds, since a step holds one ([`Action`]); its parts
//! are the vocabulary of [`super::model`].

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::model::{AuthConfig, DataSet, HeaderTemplate, Identity};
use super::steps::Action;

/// A journey: steps run in order by each virtual user, once per iteration.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The journey's name (its metric name).
    pub name: String,
    /// What it checks, for people.
    pub description: String,
    /// Relative weight when several journeys are mixed.
    pub weight: u32,
    /// Where requests go unless `--target` overrides it.
    pub base_url: Option<url::Url>,
    /// Gates the scenario asks for (checked by the gate parser).
    pub gates: Vec<String>,
    /// Names of the per-user variable slots.
    pub slots: Vec<String>,
    /// Starting values of the slots (`[vars]`), `None` for captures.
    pub initial: Vec<Option<Value>>,
    /// Rows of the data file, if any.
    pub data: Option<DataSet>,
    /// How identities log in.
    pub auth: Option<AuthConfig>,
    /// Who the steps act as.
    pub identities: Vec<Identity>,
    /// The names of the identities' fields (template variables whose
    /// value is the acting identity's), by index.
    pub ident_fields: Vec<String>,
    /// Headers every request sends unless its identity or step sets the
    /// same one (`[defaults] headers`).
    pub default_headers: Vec<(http::HeaderName, HeaderTemplate)>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Values never to show: passwords, tokens, secret variables.
    pub secrets: Vec<String>,
    /// The file it came from (`builtin:NAME` for built-ins).
    pub source: PathBuf,
}

/// One step of a journey.
#[derive(Debug, Clone)]
pub struct Step {
    /// Metric name.
    pub name: String,
    /// Index into [`Scenario::identities`].
    pub identity: Option<usize>,
    /// What the step does.
    pub action: Action,
    /// Pause after the step: a fixed time, or uniform in a range.
    pub think: Option<(Duration, Duration)>,
}

impl Scenario {
    /// True when one of the scenario's identities logs in (its steps may
    /// then send a login before their own requests).
    fn logs_in(&self) -> bool {
        super::auth::logs_in(&self.identities)
    }

    /// An upper bound on the requests and queries one iteration makes,
    /// logins and token renewals included: per step its own (a replay's
    /// copies and its verification, one per isolation probe, one query for
    /// a database step) plus, when the scenario logs in, one login each
    /// time the step asks for a token (a short `renew_after` can make that
    /// every time), all of it twice when the scenario logs in (a 401 on a
    /// login's token renews it and sends the request, or every copy of a
    /// replay, again). `None` when a custom journey (Rust code) makes any
    /// number. An iteration stops at its first failed step, so it makes at
    /// most this many.
    pub fn max_requests_per_iteration(&self) -> Option<u64> {
        let logs_in = self.logs_in();
        self.steps.iter().try_fold(0u64, |n, step| {
            let own = step.action.max_requests()?;
            // A 401 on a login's token renews it and sends again: twice
            // the requests and logins at worst.
            Some(if logs_in {
                n + 2 * own + 2 * step.action.max_logins()
            } else {
                n + own
            })
        })
    }

    /// Like [`Scenario::max_requests_per_iteration`], counting only the
    /// HTTP requests that go to the target: database steps send none.
    pub fn max_target_requests_per_iteration(&self) -> Option<u64> {
        let logs_in = self.logs_in();
        self.steps.iter().try_fold(0u64, |n, step| {
            let own = step.action.max_target_requests()?;
            // A 401 on a login's token renews it and sends again: twice
            // the requests and logins at worst.
            Some(if logs_in {
                n + 2 * own + 2 * step.action.max_logins()
            } else {
                n + own
            })
        })
    }

    /// The most requests one iteration has in flight at once: steps run
    /// one after another, so the largest of one step's (a concurrent
    /// replay's copies), at least 1.
    pub fn max_in_flight_per_iteration(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| s.action.max_in_flight())
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// The connections a user running this journey keeps open besides its
    /// own for requests: one per stream it subscribes to, held across steps
    /// and iterations (and so at once with every request it sends).
    pub fn held_connections(&self) -> u64 {
        self.steps.iter().map(|s| s.action.held_connections()).sum()
    }

    /// Names of every step metric this scenario records, in order, with the
    /// request steps of replays and probes expanded.
    pub fn step_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            s.action.metric_names(&s.name, &mut out);
        }
        out
    }

    /// Cuts this scenario's data rows to `shard`'s slice (see
    /// [`DataSet::shard`]); a scenario without data is left as it is. The
    /// error names the scenario and its file.
    pub fn shard_data(&mut self, shard: &crate::plan::Shard) -> Result<(), String> {
        match &mut self.data {
            Some(d) => d
                .shard(shard)
                .map_err(|e| format!("scenario {} ({}): {e}", self.name, self.source.display())),
            None => Ok(()),
        }
    }
}
