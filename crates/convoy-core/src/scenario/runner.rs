//! Running journeys on the engine: the [`Workload`] behind `convoy run` and
//! `convoy smoke`.
//!
//! Each virtual user keeps its own connection, variables and tokens per
//! journey. An iteration runs one journey (picked by weight) step by step,
//! each by its kind ([`super::steps`]): render the request from its parsed
//! templates, send it, record latency and status, evaluate checks, capture
//! values. A step whose status or checks fail ends its journey (later
//! steps would act on missing data) and the journey is recorded as failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::auth;
use super::journey::{Scenario, Step};
use super::json_pick::JsonPaths;
use super::kind::Registrar;
use super::step_run::{Journey, JourneyState, Shared, StepRun};
use super::steps::StepIds;
use crate::engine::http::{Connection, Endpoint, HttpClient};
use crate::engine::{
    self, CheckInfo, EngineError, EngineOptions, Iteration, LiveStatus, RunControl, RunResult,
    StepInfo, StepKind, Workload,
};
use crate::plan::HttpOptions;
use crate::plan::LoadModel;
use crate::redact::Secrets;
use crate::target_url::TargetUrl;

pub use super::auth::LOGIN_METRIC;
pub use super::custom::{CustomCtx, CustomJourney, CustomRegistry};
pub use super::step_run::UserState;

/// A scenario ready to run: its steps with their ids, and the journey its
/// steps see.
struct Ready {
    journey: Journey,
    steps: Vec<Step>,
    ids: Vec<StepIds>,
    /// Starting values of the variables.
    initial: Vec<Option<serde_json::Value>>,
    metric: usize,
    completed_check: usize,
    /// The streams its subscribe steps open.
    streams: usize,
    /// Per step, whether an await times from its request (`since`); empty
    /// when the journey awaits nothing.
    timed: Vec<bool>,
}

/// Journeys under load.
pub struct ScenarioWorkload {
    journeys: Vec<Ready>,
    pick: Vec<usize>,
    steps: Vec<StepInfo>,
    checks: Vec<CheckInfo>,
    shared: Shared,
}

impl ScenarioWorkload {
    /// Prepares `scenarios` to run against `target` (or each scenario's own
    /// `base_url` when `None`).
    pub fn new(
        scenarios: Vec<Scenario>,
        target: Option<&url::Url>,
        http: HttpOptions,
        custom: CustomRegistry,
    ) -> Result<Self, String> {
        let names = RunNames::of(&scenarios)?;
        Self::named(scenarios, &names, target, http, custom)
    }

    /// [`ScenarioWorkload::new`] for some of a run's scenarios, named as the
    /// whole run names them (`names`): `convoy smoke` runs each journey as a
    /// workload of its own, and its metrics must be named as `convoy run`
    /// over every journey names them (a step name two journeys share is
    /// qualified with the journey's).
    pub fn named(
        scenarios: Vec<Scenario>,
        names: &RunNames,
        target: Option<&url::Url>,
        http: HttpOptions,
        custom: CustomRegistry,
    ) -> Result<Self, String> {
        if scenarios.is_empty() {
            return Err("no scenario to run".into());
        }
        let mut steps = Vec::new();
        let mut checks = Vec::new();
        let seen = &names.seen;
        let logs_in = logs_in_any(&scenarios);
        let mut r = Registrar {
            steps: &mut steps,
            checks: &mut checks,
            seen,
            journey: "",
            slots: &[],
            custom: &custom,
        };
        // Only journeys with login identities get the shared login metric.
        let login_metric = if logs_in {
            r.step(LOGIN_METRIC.into(), StepKind::Request)
        } else {
            usize::MAX
        };
        // One login check per identity name: a smoke shows one line for
        // each user that logs in, however many journeys log in as it.
        let mut login_check_of: HashMap<String, usize> = HashMap::new();
        // One set for the whole run: a password of one scenario is
        // scrubbed from what another one shows.
        let secrets = Secrets::new();
        for s in &scenarios {
            secrets.extend(&s.secrets);
        }
        let mut journeys = Vec::new();
        let mut weights = Vec::new();
        for scenario in scenarios {
            let base = match (target, &scenario.base_url) {
                (Some(t), _) => t.clone(),
                (None, Some(b)) => b.clone(),
                (None, None) => {
                    return Err(format!(
                        "scenario \"{}\" has no base_url: pass --target URL",
                        scenario.name
                    ));
                }
            };
            let endpoint = Endpoint::from_url(&base)?;
            let target = TargetUrl::new(&base)?;
            let mut r = Registrar {
                steps: &mut steps,
                checks: &mut checks,
                seen,
                journey: &scenario.name,
                slots: &scenario.slots,
                custom: &custom,
            };
            let login_checks = scenario
                .identities
                .iter()
                .map(|id| {
                    if !auth::logs_in(std::slice::from_ref(id)) {
                        return usize::MAX;
                    }
                    *login_check_of.entry(id.name.clone()).or_insert_with(|| {
                        r.check(
                            LOGIN_METRIC,
                            format!("login as {} answers 2xx with a token", id.name),
                        )
                    })
                })
                .collect();
            let metric = r.step(scenario.name.clone(), StepKind::Journey);
            let completed_check = r.check(&scenario.name, "journey completes".into());
            let ids = scenario
                .steps
                .iter()
                .map(|st| st.action.register(&st.name, &mut r))
                .collect::<Result<Vec<_>, _>>()?;
            let token_json = JsonPaths::new(
                scenario
                    .auth
                    .as_ref()
                    .and_then(|a| a.login.as_ref())
                    .into_iter()
                    .flat_map(|l| {
                        let token = match &l.token {
                            super::model::TokenSource::Json(p) => Some(p.as_str()),
                            _ => None,
                        };
                        token.into_iter().chain(l.expires_in.as_deref())
                    }),
            );
            weights.push(scenario.weight);
            let streams = scenario
                .steps
                .iter()
                .filter(|s| matches!(s.action, super::steps::Action::Subscribe(_)))
                .count();
            let mut timed = Vec::new();
            for s in &scenario.steps {
                if let super::steps::Action::Await(a) = &s.action
                    && let Some(i) = a.since
                {
                    timed.resize(scenario.steps.len(), false);
                    timed[i] = true;
                }
            }
            journeys.push(Ready {
                journey: Journey {
                    endpoint,
                    target,
                    slots: scenario.slots,
                    data: scenario.data,
                    auth: scenario.auth,
                    identities: scenario.identities,
                    login_checks,
                    ident_fields: scenario.ident_fields,
                    default_headers: scenario.default_headers,
                    token_json,
                },
                steps: scenario.steps,
                ids,
                initial: scenario.initial,
                metric,
                completed_check,
                streams,
                timed,
            });
        }
        // Metric and check names become report rows and Prometheus labels:
        // a secret written literally in a path or a check does not.
        for st in &mut steps {
            secrets.scrub_in_place(&mut st.name);
        }
        for c in &mut checks {
            secrets.scrub_in_place(&mut c.step);
            secrets.scrub_in_place(&mut c.name);
        }
        let pick = weighted_cycle(&weights);
        Ok(ScenarioWorkload {
            journeys,
            pick,
            steps,
            checks,
            shared: Shared {
                http,
                login_metric,
                custom,
                secrets,
            },
        })
    }

    /// The run's secret set: what the scenarios name as secret and what
    /// the run learns (tokens, credentials sent). Scrub what leaves the
    /// run with it, and the report with it once the run is over.
    pub fn secrets(&self) -> &Secrets {
        &self.shared.secrets
    }

    /// Uses `run` as the secret set, adding this workload's secrets to it:
    /// for runs made of several workloads (`convoy smoke`), so one set
    /// covers them all.
    pub fn with_secrets(mut self, run: &Secrets) -> Self {
        for v in self.shared.secrets.values() {
            run.add(&v);
        }
        self.shared.secrets = run.clone();
        self
    }

    /// The metrics whose rows the scenarios rule out: the reconnect row
    /// of each stream whose policy is `reconnect = "none"`, which never
    /// counts anything ([`crate::report::Report::rule_out`]).
    pub fn ruled_out_metrics(&self) -> Vec<String> {
        let mut out = Vec::new();
        for j in &self.journeys {
            for (st, ids) in j.steps.iter().zip(&j.ids) {
                if let (super::steps::Action::Subscribe(s), super::steps::StepIds::Subscribe(ids)) =
                    (&st.action, ids)
                    && matches!(s.reconnect, super::stream::Reconnect::None)
                {
                    out.push(self.steps[ids.reconnect].name.clone());
                }
            }
        }
        out
    }

    /// How many iterations run every journey exactly once per weight unit.
    pub fn cycle_len(&self) -> usize {
        self.pick.len()
    }
}

/// How a run names its metrics: how many metrics of all its journeys share
/// each name (a name shared is qualified with its journey's).
pub struct RunNames {
    seen: HashMap<String, usize>,
}

impl RunNames {
    /// The names of a run over `scenarios`; `Err` when two scenarios share
    /// a name (journey names are metric names).
    pub fn of(scenarios: &[Scenario]) -> Result<Self, String> {
        for (i, a) in scenarios.iter().enumerate() {
            if let Some(b) = scenarios[i + 1..].iter().find(|b| b.name == a.name) {
                return Err(format!(
                    "two scenarios are named \"{}\" ({} and {}): journey names are metric names, make them unique",
                    a.name,
                    a.source.display(),
                    b.source.display()
                ));
            }
        }
        let mut seen = HashMap::new();
        for s in scenarios {
            // Journey metrics share the namespace with step metrics.
            *seen.entry(s.name.clone()).or_insert(0) += 1;
            for n in s.step_names() {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
        if logs_in_any(scenarios) {
            *seen.entry(LOGIN_METRIC.to_string()).or_insert(0) += 1;
        }
        Ok(RunNames { seen })
    }
}

fn logs_in_any(scenarios: &[Scenario]) -> bool {
    scenarios.iter().any(|s| auth::logs_in(&s.identities))
}

/// The longest weighted cycle: weights whose reduced sum is larger make a
/// cycle of this many iterations, cut short.
pub const MAX_CYCLE: u32 = 100_000;

/// The journeys' weights divided by their greatest common divisor: how
/// many times each journey comes in one whole cycle.
pub fn reduced_weights(weights: &[u32]) -> Vec<u32> {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = weights.iter().copied().fold(0, gcd).max(1);
    weights.iter().map(|w| (w / g).max(1)).collect()
}

/// Journey indexes repeated by weight (reduced by their gcd), interleaved.
fn weighted_cycle(weights: &[u32]) -> Vec<usize> {
    let reduced = reduced_weights(weights);
    let total: u32 = reduced.iter().sum();
    // Smooth weighted round robin: spreads each journey over the cycle.
    let mut current = vec![0i64; reduced.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total.min(MAX_CYCLE) {
        for (c, w) in current.iter_mut().zip(&reduced) {
            *c += *w as i64;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .expect("at least one journey");
        current[best] -= total as i64;
        out.push(best);
    }
    out
}

impl Workload for ScenarioWorkload {
    type Worker = HttpClient;
    type User = UserState;

    fn steps(&self) -> Vec<StepInfo> {
        self.steps.clone()
    }

    fn checks(&self) -> Vec<CheckInfo> {
        self.checks.clone()
    }

    fn worker(&self, _index: usize) -> Result<HttpClient, EngineError> {
        HttpClient::new(&self.shared.http)
    }

    fn user(&self, _worker: &HttpClient, _vu: u64) -> UserState {
        UserState {
            conn: Connection::new(),
            db: super::db::Connections::default(),
            spare: Vec::new(),
            journeys: self
                .journeys
                .iter()
                .map(|j| JourneyState {
                    vars: j.initial.clone(),
                    tokens: vec![Default::default(); j.journey.identities.len()],
                    streams: (0..j.streams).map(|_| None).collect(),
                    sent_at: vec![None; j.timed.len()],
                })
                .collect(),
            learnt: Default::default(),
            last_sent: None,
        }
    }

    async fn iteration<'a>(
        &'a self,
        client: &'a HttpClient,
        user: &'a mut UserState,
        it: Iteration<'a>,
    ) {
        let ji = self.pick[((it.vu as usize)
            .wrapping_mul(31)
            .wrapping_add(it.index as usize))
            % self.pick.len()];
        let j = &self.journeys[ji];
        let mut ok = true;
        for (si, (st, ids)) in j.steps.iter().zip(&j.ids).enumerate() {
            let scheduled = if si == 0 {
                it.scheduled
            } else {
                Instant::now()
            };
            let mut run = StepRun {
                shared: &self.shared,
                j: &j.journey,
                ji,
                name: &st.name,
                identity: st.identity,
                client,
                user: &mut *user,
                it,
                scheduled,
            };
            // Only a step an await times from keeps when it sent: a bool
            // read per step, nothing more, for journeys without streams.
            let timed = j.timed.get(si).copied().unwrap_or(false);
            if timed {
                run.user.last_sent = None;
            }
            let passed = st.action.execute(ids, &mut run).await;
            if timed {
                user.journeys[ji].sent_at[si] = user.last_sent;
            }
            if !passed {
                ok = false;
                break;
            }
            if let Some((lo, hi)) = st.think {
                let d = if hi > lo {
                    lo + Duration::from_nanos(fastrand::u64(0..=(hi - lo).as_nanos() as u64))
                } else {
                    lo
                };
                tokio::time::sleep(d).await;
            }
        }
        it.recorder.check(j.completed_check, ok);
        it.recorder
            .record_journey(j.metric, it.scheduled.elapsed(), ok);
    }
}

impl ScenarioWorkload {
    /// Runs the workload on the engine under `model` ([`engine::run`]).
    pub fn run(
        self: Arc<Self>,
        model: &LoadModel,
        options: &EngineOptions,
        control: &RunControl,
        mut observer: impl FnMut(&LiveStatus),
    ) -> Result<RunResult, EngineError> {
        run_here(self, model, options, control, &mut observer)
    }
}

/// [`ScenarioWorkload::run`], not generic on purpose: the engine's loop for
/// this workload is compiled here, in the crate of the workload it drives,
/// so the request path inlines as one unit rather than across crates (see
/// `bench::run_here`).
fn run_here(
    workload: Arc<ScenarioWorkload>,
    model: &LoadModel,
    options: &EngineOptions,
    control: &RunControl,
    observer: &mut dyn FnMut(&LiveStatus),
) -> Result<RunResult, EngineError> {
    engine::run(model, options, workload, control, observer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_spread_over_the_cycle() {
        assert_eq!(weighted_cycle(&[1]), vec![0]);
        assert_eq!(weighted_cycle(&[2, 2]), vec![0, 1]);
        let c = weighted_cycle(&[3, 1]);
        assert_eq!(c.len(), 4);
        assert_eq!(c.iter().filter(|&&i| i == 0).count(), 3);
        let c = weighted_cycle(&[1, 1, 1, 1, 1, 1]);
        let mut sorted = c.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4, 5]);
    }
}
