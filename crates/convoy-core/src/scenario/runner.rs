//! Running journeys on the engine: the [`Workload`] behind `convoy run` and
//! `convoy smoke`.
//!
//! Each virtual user keeps its own connection, variables and tokens per
//! journey. An iteration runs one journey (picked by weight) step by step:
//! render the request from its parsed templates, send it, record latency
//! and status, evaluate checks, capture values. A step whose status or
//! checks fail ends its journey (later steps would act on missing data) and
//! the journey is recorded as failed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;

use super::json_pick::JsonPaths;
use super::model::*;
use super::template::RenderCtx;
use crate::engine::http::{
    Connection, Endpoint, HttpClient, HttpFailure, HttpResponse, RequestBody,
};
use crate::engine::{CheckInfo, EngineError, Iteration, RunControl, StepInfo, StepKind, Workload};
use crate::metrics::{ErrorCause, FailureSample, Outcome, Recorder, Violation};
use crate::plan::HttpOptions;
use crate::redact::{REDACTED, is_sensitive_name};

/// A journey written in Rust, for what the scenario format cannot express.
/// Register it by name in a [`CustomRegistry`]; a step `custom = "NAME"`
/// runs it.
pub trait CustomJourney: Send + Sync {
    /// Runs the journey once. Record requests with [`CustomCtx::send`];
    /// return `Err` with a reason to fail the step.
    fn run<'a>(
        &'a self,
        ctx: CustomCtx<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;
}

/// Custom journeys by name.
#[derive(Clone, Default)]
pub struct CustomRegistry {
    map: HashMap<String, Arc<dyn CustomJourney>>,
}

impl CustomRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `journey` under `name`.
    pub fn register(&mut self, name: &str, journey: impl CustomJourney + 'static) {
        self.map.insert(name.to_string(), Arc::new(journey));
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// What a custom journey may use.
pub struct CustomCtx<'a> {
    client: &'a HttpClient,
    conn: &'a mut Connection,
    endpoint: &'a Endpoint,
    base_path: &'a str,
    recorder: &'a Recorder,
    step: usize,
    /// The virtual user.
    pub vu: u64,
    /// Its iteration.
    pub iteration: u64,
}

impl CustomCtx<'_> {
    /// Sends `method path` (relative to the target's base URL) with an
    /// optional JSON body, records it under the step's metric, and returns
    /// the response.
    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        json: Option<&Value>,
    ) -> Result<HttpResponse, HttpFailure> {
        let uri = format!("{}{}", self.base_path, path);
        let mut req = http::Request::new(RequestBody::new(json.map_or_else(Bytes::new, |j| {
            Bytes::from(serde_json::to_vec(j).expect("JSON values serialise"))
        })));
        *req.method_mut() = method;
        *req.uri_mut() = uri.parse().map_err(|e| HttpFailure {
            cause: crate::metrics::ErrorCause::Other,
            message: format!("invalid path {path:?}: {e}"),
        })?;
        if json.is_some() {
            req.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let sent = Instant::now();
        let r = self.client.send(self.conn, self.endpoint, req).await;
        let done = Instant::now();
        let outcome = outcome_of(&r);
        self.recorder
            .record(self.step, done - sent, done - sent, outcome);
        r
    }
}

/// Metric and check ids of one step.
#[derive(Debug, Clone, Default)]
struct StepIds {
    metric: usize,
    verify_metric: usize,
    probe_metrics: Vec<usize>,
    status: usize,
    checks: Vec<usize>,
    captures: usize,
    replay_status: usize,
    replay_same_id: usize,
    verify_checks: Vec<usize>,
    probe_refused: Vec<usize>,
    probe_hidden: Vec<usize>,
    /// What the step's checks and captures read of a JSON answer.
    json: JsonPaths,
    /// The same for a replay's single-entry verification.
    verify_json: JsonPaths,
    /// A replay's id pointer.
    replay_id: JsonPaths,
}

/// A scenario ready to run: its endpoint, ids and prebuilt credentials.
struct Journey {
    scenario: Scenario,
    endpoint: Endpoint,
    /// `host:port` of the endpoint, for [`DeathWatch`]'s own connects.
    addr: String,
    base_path: String,
    metric: usize,
    completed_check: usize,
    steps: Vec<StepIds>,
    /// Fixed-token identities' header values, prebuilt.
    fixed_tokens: Vec<Option<HeaderValue>>,
    /// Where a login answer has its token.
    token_json: JsonPaths,
}

/// Journeys under load.
pub struct ScenarioWorkload {
    journeys: Vec<Journey>,
    pick: Vec<usize>,
    steps: Vec<StepInfo>,
    checks: Vec<CheckInfo>,
    http: HttpOptions,
    login_metric: usize,
    login_check: usize,
    custom: CustomRegistry,
    death: DeathWatch,
}

/// How often [`DeathWatch`] tries to connect before it calls the target
/// down, and how long apart: together the same 3 s of nothing but refusals
/// that `convoy run`'s live watch waits for.
const DEATH_PROBES: u32 = 15;
const DEATH_PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Notices a target that died mid-run, for runs too short for the live
/// watch ([`crate::engine::TargetWatch`] needs 3 s of windows with nothing
/// but connect failures; a run of a fixed number of iterations against a
/// dead port fails them all in far less and would end "completed" with
/// failed checks). Once the target has answered, a refused connection makes
/// one user check for itself: if fresh connects are refused for
/// [`DEATH_PROBES`] × [`DEATH_PROBE_INTERVAL`] and no other request got an
/// answer meanwhile, it calls [`RunControl::target_down`]. A refusal before
/// any answer is left to the caller's preflight.
#[derive(Default)]
struct DeathWatch {
    control: Option<RunControl>,
    answered: AtomicBool,
    confirming: AtomicBool,
    answered_meanwhile: AtomicBool,
}

impl DeathWatch {
    /// Notes one exchange; true when it was a refusal worth confirming.
    /// Answers cost two relaxed loads of flags that are rarely written.
    #[inline]
    fn saw(&self, res: &Result<HttpResponse, HttpFailure>) -> bool {
        if self.control.is_none() {
            return false;
        }
        match res {
            Ok(_) => {
                if !self.answered.load(Ordering::Relaxed) {
                    self.answered.store(true, Ordering::Relaxed);
                }
                if self.confirming.load(Ordering::Relaxed) {
                    self.answered_meanwhile.store(true, Ordering::Relaxed);
                }
                false
            }
            Err(f) => f.cause == ErrorCause::Refused && self.answered.load(Ordering::Relaxed),
        }
    }

    /// Connects to `addr` until it is sure the target is down (then stops
    /// the run) or sees a sign of life; one user at a time.
    async fn confirm(&self, addr: &str) {
        let Some(control) = &self.control else {
            return;
        };
        if control.is_aborted() || self.confirming.swap(true, Ordering::SeqCst) {
            return;
        }
        self.answered_meanwhile.store(false, Ordering::SeqCst);
        let mut refusals = 0;
        while refusals < DEATH_PROBES
            && !control.is_aborted()
            && !self.answered_meanwhile.load(Ordering::SeqCst)
        {
            tokio::time::sleep(DEATH_PROBE_INTERVAL).await;
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(DEATH_PROBE_INTERVAL, connect).await {
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => refusals += 1,
                // Accepted, or a failure that is no proof of death (a slow
                // or filtered network): let the run go on.
                _ => break,
            }
        }
        if refusals == DEATH_PROBES
            && !control.is_aborted()
            && !self.answered_meanwhile.load(Ordering::SeqCst)
        {
            control.target_down();
        }
        self.confirming.store(false, Ordering::SeqCst);
    }
}

/// Per-user state of one journey.
struct JourneyState {
    vars: Vec<Option<Value>>,
    tokens: Vec<Option<(HeaderValue, Instant)>>,
}

/// A virtual user.
pub struct UserState {
    conn: Connection,
    db: super::sql::Connections,
    spare: Vec<Connection>,
    journeys: Vec<JourneyState>,
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
        if scenarios.is_empty() {
            return Err("no scenario to run".into());
        }
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
        let mut steps = Vec::new();
        let mut checks = Vec::new();
        let mut seen = HashMap::new();
        for s in &scenarios {
            // Journey metrics share the namespace with step metrics.
            *seen.entry(s.name.clone()).or_insert(0) += 1;
            for n in s.step_names() {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
        if logs_in_any(&scenarios) {
            *seen.entry(LOGIN_METRIC.to_string()).or_insert(0) += 1;
        }
        let mut add_step = |name: String, kind: StepKind| {
            steps.push(StepInfo { name, kind });
            steps.len() - 1
        };
        let logs_in = logs_in_any(&scenarios);
        // Only journeys with login identities get the shared login metric.
        let login_metric = if logs_in {
            add_step(LOGIN_METRIC.into(), StepKind::Request)
        } else {
            usize::MAX
        };
        let mut add_check = |step: &str, name: String| {
            checks.push(CheckInfo {
                step: step.to_string(),
                name,
            });
            checks.len() - 1
        };
        let login_check = if logs_in {
            add_check(LOGIN_METRIC, "login answers 2xx with a token".into())
        } else {
            usize::MAX
        };
        let mut journeys = Vec::new();
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
            let addr = format!(
                "{}:{}",
                base.host_str().unwrap_or_default(),
                base.port_or_known_default().unwrap_or_default()
            );
            let base_path = base.path().trim_end_matches('/').to_string();
            let qualify = |n: &str| {
                if seen.get(n).copied().unwrap_or(0) > 1 {
                    format!("{}/{n}", scenario.name)
                } else {
                    n.to_string()
                }
            };
            let metric = add_step(scenario.name.clone(), StepKind::Journey);
            let completed_check = add_check(&scenario.name, "journey completes".into());
            let mut ids = Vec::new();
            for st in &scenario.steps {
                let name = qualify(&st.name);
                let mut id = StepIds::default();
                match &st.action {
                    Action::Request(r) | Action::Replay(r, _) => {
                        id.json = request_paths(r);
                        id.metric = add_step(name.clone(), StepKind::Request);
                        id.status = add_check(&name, status_label(&r.status));
                        id.checks = r
                            .checks
                            .iter()
                            .map(|c| add_check(&name, c.label.clone()))
                            .collect();
                        if !r.captures.is_empty() {
                            let names: Vec<&str> = r
                                .captures
                                .iter()
                                .map(|c| scenario.slots[c.slot].as_str())
                                .collect();
                            id.captures =
                                add_check(&name, format!("captures {}", names.join(", ")));
                        }
                        if let Action::Replay(_, rp) = &st.action {
                            id.replay_status = add_check(
                                &name,
                                format!(
                                    "replay: {} answers, each {}",
                                    rp.times,
                                    status_label(&rp.statuses)
                                ),
                            );
                            id.replay_same_id = add_check(
                                &name,
                                format!("replay: every answer has the same {}", rp.id_pointer),
                            );
                            id.replay_id = JsonPaths::new([rp.id_pointer.as_str()]);
                            if let Some(v) = &rp.verify {
                                id.verify_json = request_paths(v);
                                let vname = qualify(&format!("{} · verify", st.name));
                                id.verify_metric = add_step(vname.clone(), StepKind::Request);
                                id.verify_checks = std::iter::once(status_label(&v.status))
                                    .chain(v.checks.iter().map(|c| c.label.clone()))
                                    .map(|l| add_check(&vname, format!("single entry: {l}")))
                                    .collect();
                            }
                        }
                    }
                    Action::Isolation(iso) => {
                        for (m, suffix) in &iso.probes {
                            let pname = qualify(&probe_name(&st.name, m, suffix));
                            id.probe_metrics
                                .push(add_step(pname.clone(), StepKind::Request));
                            id.probe_refused.push(add_check(
                                &pname,
                                format!("refused ({})", join_codes(&iso.expect)),
                            ));
                            id.probe_hidden
                                .push(add_check(&pname, "reveals no marker".into()));
                        }
                    }
                    Action::Custom(c) => {
                        if !custom.contains(c) {
                            return Err(format!(
                                "step \"{}\" uses custom journey \"{c}\", which is not registered",
                                st.name
                            ));
                        }
                        id.metric = add_step(name.clone(), StepKind::Request);
                        id.status = add_check(&name, format!("custom journey {c} succeeds"));
                    }
                    Action::Sql(q) => {
                        id.metric = add_step(name.clone(), StepKind::Request);
                        id.status = add_check(&name, super::sql::QUERY_CHECK.into());
                        id.checks = q
                            .checks
                            .iter()
                            .map(|c| add_check(&name, c.label()))
                            .collect();
                    }
                    Action::Rls(r) => {
                        id.metric = add_step(name.clone(), StepKind::Request);
                        id.status = add_check(&name, r.label());
                        id.checks = vec![add_check(&name, crate::rls::TABLE_CHECK.into())];
                    }
                }
                ids.push(id);
            }
            let fixed_tokens = scenario
                .identities
                .iter()
                .map(|i| match &i.credential {
                    Credential::Token(t) => {
                        let scheme = scenario
                            .auth
                            .as_ref()
                            .map_or("Bearer", |a| a.scheme.as_str());
                        let text = if scheme.is_empty() {
                            t.clone()
                        } else {
                            format!("{scheme} {t}")
                        };
                        HeaderValue::from_str(&text).ok().map(|mut v| {
                            v.set_sensitive(true);
                            v
                        })
                    }
                    Credential::Login(_) => None,
                })
                .collect();
            let token_json =
                JsonPaths::new(scenario.auth.as_ref().map(|a| a.token_pointer.as_str()));
            journeys.push(Journey {
                token_json,
                scenario,
                endpoint,
                addr,
                base_path,
                metric,
                completed_check,
                steps: ids,
                fixed_tokens,
            });
        }
        let pick = weighted_cycle(
            &journeys
                .iter()
                .map(|j| j.scenario.weight)
                .collect::<Vec<_>>(),
        );
        Ok(ScenarioWorkload {
            journeys,
            pick,
            steps,
            checks,
            http,
            login_metric,
            login_check,
            custom,
            death: DeathWatch::default(),
        })
    }

    /// Lets the workload stop the run on `control` with
    /// [`RunControl::target_down`] when the target dies mid-run (it refuses
    /// connections after it had answered). Pass the control the engine runs
    /// with; without it a dead target only fails checks.
    pub fn watch_target(mut self, control: RunControl) -> Self {
        self.death.control = Some(control);
        self
    }

    /// How many iterations run every journey exactly once per weight unit.
    pub fn cycle_len(&self) -> usize {
        self.pick.len()
    }
}

/// The metric of every login request, whichever journey needs it.
pub const LOGIN_METRIC: &str = "auth login";

fn logs_in_any(scenarios: &[Scenario]) -> bool {
    scenarios.iter().any(|s| {
        s.identities
            .iter()
            .any(|i| matches!(i.credential, Credential::Login(_)))
    })
}

fn status_label(codes: &[u16]) -> String {
    if codes.is_empty() {
        "status is 2xx or 3xx".into()
    } else {
        format!("status is {}", join_codes(codes))
    }
}

fn join_codes(codes: &[u16]) -> String {
    codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Journey indexes repeated by weight (reduced by their gcd), interleaved.
fn weighted_cycle(weights: &[u32]) -> Vec<usize> {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let reduced: Vec<u32> = weights.iter().map(|w| (w / g).max(1)).collect();
    let total: u32 = reduced.iter().sum();
    // Smooth weighted round robin: spreads each journey over the cycle.
    let mut current = vec![0i64; reduced.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total.min(100_000) {
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

/// A response's JSON, parsed at most once and only along the paths a step
/// reads (see [`JsonPaths`]).
struct LazyJson<'a> {
    body: &'a [u8],
    paths: &'a JsonPaths,
    parsed: Option<Option<Value>>,
}

impl<'a> LazyJson<'a> {
    fn new(body: &'a [u8], paths: &'a JsonPaths) -> Self {
        LazyJson {
            body,
            paths,
            parsed: None,
        }
    }

    /// The pruned document, or `None` when the body is not JSON.
    fn get(&mut self) -> Option<&Value> {
        self.parsed
            .get_or_insert_with(|| self.paths.parse(self.body))
            .as_ref()
    }
}

/// The JSON pointers a request's checks and captures read.
fn request_paths(r: &Request) -> JsonPaths {
    let checks = r.checks.iter().filter_map(|c| match &c.subject {
        Subject::Json(p) => Some(p.as_str()),
        _ => None,
    });
    let captures = r.captures.iter().filter_map(|c| match &c.source {
        CaptureSource::Json(p) => Some(p.as_str()),
        _ => None,
    });
    JsonPaths::new(checks.chain(captures))
}

/// A request rendered and ready to send (kept for failure samples).
struct Prepared {
    method: http::Method,
    uri: String,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Prepared {
    fn to_request(&self) -> Result<http::Request<RequestBody>, String> {
        let mut req = http::Request::new(RequestBody::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self
            .uri
            .parse()
            .map_err(|e| format!("invalid URL path {:?}: {e}", self.uri))?;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
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
        HttpClient::new(&self.http)
    }

    fn user(&self, _worker: &HttpClient, _vu: u64) -> UserState {
        UserState {
            conn: Connection::new(),
            db: super::sql::Connections::default(),
            spare: Vec::new(),
            journeys: self
                .journeys
                .iter()
                .map(|j| JourneyState {
                    vars: j.scenario.initial.clone(),
                    tokens: vec![None; j.scenario.identities.len()],
                })
                .collect(),
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
        for (si, st) in j.scenario.steps.iter().enumerate() {
            let scheduled = if si == 0 {
                it.scheduled
            } else {
                Instant::now()
            };
            let mut run = StepRun {
                w: self,
                j,
                ji,
                ids: &j.steps[si],
                step: st,
                client,
                user: &mut *user,
                it,
                scheduled,
            };
            if !run.execute().await {
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

/// One step being run by one user.
struct StepRun<'a> {
    w: &'a ScenarioWorkload,
    j: &'a Journey,
    ji: usize,
    ids: &'a StepIds,
    step: &'a Step,
    client: &'a HttpClient,
    user: &'a mut UserState,
    it: Iteration<'a>,
    scheduled: Instant,
}

impl StepRun<'_> {
    fn ctx(&self) -> RenderCtx<'_> {
        RenderCtx {
            vu: self.it.vu,
            iteration: self.it.index,
            vars: &self.user.journeys[self.ji].vars,
            data: self
                .j
                .scenario
                .data
                .as_ref()
                .map(|d| d.row(self.it.vu, self.it.index)),
            names: &self.j.scenario.slots,
        }
    }

    async fn execute(&mut self) -> bool {
        match &self.step.action {
            Action::Request(r) => self.request_step(r).await,
            // The other kinds' futures are larger (several requests, a
            // database client): boxed, so that every plain request step does
            // not carry and move their size.
            Action::Replay(r, rp) => Box::pin(self.replay_step(r, rp)).await,
            Action::Isolation(iso) => Box::pin(self.isolation_step(iso)).await,
            Action::Sql(q) => Box::pin(self.sql_step(q)).await,
            Action::Rls(r) => Box::pin(self.rls_step(r)).await,
            Action::Custom(name) => {
                let journey = self
                    .w
                    .custom
                    .map
                    .get(name)
                    .expect("checked at load")
                    .clone();
                let ctx = CustomCtx {
                    client: self.client,
                    conn: &mut self.user.conn,
                    endpoint: &self.j.endpoint,
                    base_path: &self.j.base_path,
                    recorder: self.it.recorder,
                    step: self.ids.metric,
                    vu: self.it.vu,
                    iteration: self.it.index,
                };
                let r = journey.run(ctx).await;
                self.it.recorder.check(self.ids.status, r.is_ok());
                if let Err(e) = &r {
                    self.sample(
                        &format!("custom journey {name}"),
                        e.clone(),
                        String::new(),
                        String::new(),
                    );
                }
                r.is_ok()
            }
        }
    }

    /// The auth header of `identity`, logging in when needed.
    async fn auth_header(
        &mut self,
        identity: usize,
    ) -> Result<Option<(http::HeaderName, HeaderValue)>, String> {
        let j = self.j;
        let id = &j.scenario.identities[identity];
        let header = j
            .scenario
            .auth
            .as_ref()
            .map_or(http::header::AUTHORIZATION, |a| a.header.clone());
        match &id.credential {
            Credential::Token(_) => Ok(j.fixed_tokens[identity].clone().map(|v| (header, v))),
            Credential::Login(body) => {
                let auth = j
                    .scenario
                    .auth
                    .as_ref()
                    .expect("login identities have [auth]");
                if let Some((v, at)) = &self.user.journeys[self.ji].tokens[identity]
                    && at.elapsed() < auth.renew_after
                {
                    return Ok(Some((header, v.clone())));
                }
                // Boxed: logging in is rare and its future is large; every
                // step awaits this one.
                let v = Box::pin(self.login(identity, auth, body)).await;
                // A login is its own request with its own metric: the step's
                // latency starts after it, not at the iteration's scheduled
                // time.
                self.scheduled = self.scheduled.max(Instant::now());
                Ok(Some((header, v?)))
            }
        }
    }

    /// Logs `identity` in with `body`, keeps its token and returns the auth
    /// header's value.
    async fn login(
        &mut self,
        identity: usize,
        auth: &AuthConfig,
        body: &Bytes,
    ) -> Result<HeaderValue, String> {
        let j = self.j;
        let name = &j.scenario.identities[identity].name;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let prepared = Prepared {
            method: auth.method.clone(),
            uri: format!("{}{}", j.base_path, auth.path),
            headers,
            body: body.clone(),
        };
        let (res, _) = self
            .send(&prepared, self.w.login_metric, Instant::now(), &[])
            .await;
        let token = match &res {
            Ok(r) if (200..300).contains(&r.status) => LazyJson::new(&r.body, &j.token_json)
                .get()
                .and_then(|v| v.pointer(&auth.token_pointer))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        self.it.recorder.check(self.w.login_check, token.is_some());
        let Some(token) = token else {
            let why = match &res {
                Ok(r) => format!(
                    "login as \"{name}\" answered {} without a token at {}",
                    r.status, auth.token_pointer
                ),
                Err(f) => format!("login as \"{name}\" failed: {f}"),
            };
            self.sample_exchange("login", why.clone(), &prepared, &res);
            return Err(why);
        };
        let text = if auth.scheme.is_empty() {
            token
        } else {
            format!("{} {token}", auth.scheme)
        };
        let mut v = HeaderValue::from_str(&text)
            .map_err(|_| "the login token is not a valid header value".to_string())?;
        v.set_sensitive(true);
        self.user.journeys[self.ji].tokens[identity] = Some((v.clone(), Instant::now()));
        Ok(v)
    }

    fn prepare(
        &mut self,
        r: &Request,
        identity_header: Option<(http::HeaderName, HeaderValue)>,
    ) -> Result<Prepared, String> {
        for (slot, t) in &r.lets {
            let v = t
                .render_value(&self.ctx())
                .map_err(|u| format!("variable \"{}\" has no value", u.0))?;
            self.user.journeys[self.ji].vars[*slot] = Some(v);
        }
        let ctx = self.ctx();
        let unset = |u: super::template::Unset| {
            format!(
                "variable \"{}\" has no value (an earlier capture failed?)",
                u.0
            )
        };
        let path = r.path.render(&ctx).map_err(unset)?;
        let mut uri = if path.starts_with("http://") || path.starts_with("https://") {
            let u: url::Url = path
                .parse()
                .map_err(|e| format!("invalid URL {path:?}: {e}"))?;
            crate::engine::http::origin_form(&u).to_string()
        } else {
            format!("{}{}", self.j.base_path, path)
        };
        if !r.query.is_empty() {
            uri.push(if uri.contains('?') { '&' } else { '?' });
            for (i, (k, v)) in r.query.iter().enumerate() {
                if i > 0 {
                    uri.push('&');
                }
                encode_component(k, &mut uri);
                uri.push('=');
                encode_component(&v.render(&ctx).map_err(unset)?, &mut uri);
            }
        }
        let mut headers = http::HeaderMap::with_capacity(r.headers.len() + 2);
        for (k, v) in &r.headers {
            let text = v.render(&ctx).map_err(unset)?;
            let value = HeaderValue::from_str(&text)
                .map_err(|_| format!("header {k} has an invalid value"))?;
            headers.insert(k.clone(), value);
        }
        if let Some((k, v)) = identity_header {
            headers.insert(k, v);
        }
        let body = match &r.body {
            Body::None => Bytes::new(),
            Body::Raw(t) => Bytes::from(t.render(&ctx).map_err(unset)?),
            Body::Json(t) => {
                if !headers.contains_key(http::header::CONTENT_TYPE) {
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                let mut out = Vec::with_capacity(256);
                write_json(t, &ctx, &mut out).map_err(unset)?;
                Bytes::from(out)
            }
        };
        Ok(Prepared {
            method: r.method.clone(),
            uri,
            headers,
            body,
        })
    }

    /// Sends and records under `metric` (an error unless the status is one
    /// of `expected`, or 2xx/3xx when empty); returns the result and its
    /// latency.
    async fn send(
        &mut self,
        p: &Prepared,
        metric: usize,
        scheduled: Instant,
        expected: &[u16],
    ) -> (Result<HttpResponse, HttpFailure>, Duration) {
        let req = match p.to_request() {
            Ok(r) => r,
            Err(e) => {
                return (
                    Err(HttpFailure {
                        cause: crate::metrics::ErrorCause::Other,
                        message: e,
                    }),
                    Duration::ZERO,
                );
            }
        };
        let sent = Instant::now();
        let res = self
            .client
            .send(&mut self.user.conn, &self.j.endpoint, req)
            .await;
        let done = Instant::now();
        let outcome = outcome_of(&res);
        self.it.recorder.record_as(
            metric,
            done - scheduled,
            done - sent,
            outcome,
            !status_expected(&outcome, expected),
        );
        if self.w.death.saw(&res) {
            self.w.death.confirm(&self.j.addr).await;
        }
        (res, done - scheduled)
    }

    async fn identity_header(
        &mut self,
        identity: Option<usize>,
    ) -> Result<Option<(http::HeaderName, HeaderValue)>, ()> {
        match identity {
            Some(i) => self.auth_header(i).await.map_err(|_| ()),
            None => Ok(None),
        }
    }

    async fn request_step(&mut self, r: &Request) -> bool {
        let Ok(auth) = self.identity_header(self.step.identity).await else {
            self.it.recorder.check(self.ids.status, false);
            return false;
        };
        let p = match self.prepare(r, auth) {
            Ok(p) => p,
            Err(e) => {
                self.it.recorder.check(self.ids.status, false);
                self.sample("request", e, String::new(), String::new());
                return false;
            }
        };
        let (res, latency) = self
            .send(&p, self.ids.metric, self.scheduled, &r.status)
            .await;
        let ids = self.ids;
        self.after_response(
            r,
            &ids.json,
            &p,
            &res,
            latency,
            ids.status,
            &ids.checks,
            Some(ids.captures),
        )
    }

    /// Status, checks and captures of one response; true when all held.
    #[allow(clippy::too_many_arguments)]
    fn after_response(
        &mut self,
        r: &Request,
        paths: &JsonPaths,
        p: &Prepared,
        res: &Result<HttpResponse, HttpFailure>,
        latency: Duration,
        status_check: usize,
        check_ids: &[usize],
        capture_check: Option<usize>,
    ) -> bool {
        let resp = match res {
            Ok(resp) => resp,
            Err(f) => {
                self.it.recorder.check(status_check, false);
                self.sample_exchange(&status_label(&r.status), f.to_string(), p, res);
                return false;
            }
        };
        if resp.status == 401
            && let Some(i) = self.step.identity
        {
            // The token expired or was revoked: log in again next time.
            self.user.journeys[self.ji].tokens[i] = None;
        }
        let status_ok = if r.status.is_empty() {
            (200..400).contains(&resp.status)
        } else {
            r.status.contains(&resp.status)
        };
        self.it.recorder.check(status_check, status_ok);
        let mut all_ok = status_ok;
        if !status_ok {
            self.sample_exchange(
                &status_label(&r.status),
                format!("got status {}", resp.status),
                p,
                res,
            );
        }
        let mut json = LazyJson::new(&resp.body, paths);
        for (check, id) in r.checks.iter().zip(check_ids) {
            let verdict = evaluate(check, resp, &mut json, latency, &self.ctx());
            self.it.recorder.check(*id, verdict.is_ok());
            if let Err(why) = verdict {
                all_ok = false;
                self.sample_exchange(&check.label, why, p, res);
            }
        }
        if let Some(cid) = capture_check.filter(|_| !r.captures.is_empty()) {
            let mut missing = Vec::new();
            for c in &r.captures {
                let v = match &c.source {
                    CaptureSource::Json(ptr) => json.get().and_then(|j| j.pointer(ptr)).cloned(),
                    CaptureSource::Header(h) => resp
                        .headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(|s| Value::String(s.to_string())),
                    CaptureSource::Regex(re) => {
                        let text = String::from_utf8_lossy(&resp.body);
                        re.captures(&text).and_then(|caps| {
                            caps.get(1)
                                .or_else(|| caps.get(0))
                                .map(|m| Value::String(m.as_str().to_string()))
                        })
                    }
                };
                match v {
                    Some(v) => self.user.journeys[self.ji].vars[c.slot] = Some(v),
                    None => missing.push(self.j.scenario.slots[c.slot].clone()),
                }
            }
            self.it.recorder.check(cid, missing.is_empty());
            if !missing.is_empty() {
                all_ok = false;
                // Say why when the body could not be read as JSON at all,
                // as a check in the same spot does.
                let not_json = r
                    .captures
                    .iter()
                    .any(|c| matches!(c.source, CaptureSource::Json(_)))
                    && json.get().is_none();
                let why = if not_json {
                    "the response is not JSON, so nothing to capture for"
                } else {
                    "nothing to capture for"
                };
                self.sample_exchange("captures", format!("{why} {}", missing.join(", ")), p, res);
            }
        }
        all_ok
    }

    async fn replay_step(&mut self, r: &Request, rp: &Replay) -> bool {
        let Ok(auth) = self.identity_header(self.step.identity).await else {
            self.it.recorder.check(self.ids.status, false);
            return false;
        };
        let p = match self.prepare(r, auth) {
            Ok(p) => p,
            Err(e) => {
                self.it.recorder.check(self.ids.status, false);
                self.sample("request", e, String::new(), String::new());
                return false;
            }
        };
        let mut results = Vec::with_capacity(rp.times as usize);
        if rp.concurrent {
            // Each copy on its own connection, all in flight together.
            while self.user.spare.len() < rp.times as usize - 1 {
                self.user.spare.push(Connection::new());
            }
            let mut tasks = Vec::new();
            let conns = std::iter::once(std::mem::take(&mut self.user.conn))
                .chain(self.user.spare.drain(..rp.times as usize - 1));
            for mut conn in conns {
                let client = self.client.clone();
                let endpoint = self.j.endpoint.clone();
                let req = p.to_request();
                tasks.push(tokio::task::spawn_local(async move {
                    let sent = Instant::now();
                    let res = match req {
                        Ok(req) => client.send(&mut conn, &endpoint, req).await,
                        Err(e) => Err(HttpFailure {
                            cause: crate::metrics::ErrorCause::Other,
                            message: e,
                        }),
                    };
                    (conn, res, sent, Instant::now())
                }));
            }
            for (i, t) in tasks.into_iter().enumerate() {
                let Ok((conn, res, sent, done)) = t.await else {
                    continue;
                };
                if i == 0 {
                    self.user.conn = conn;
                } else {
                    self.user.spare.push(conn);
                }
                let outcome = outcome_of(&res);
                self.it.recorder.record_as(
                    self.ids.metric,
                    done - self.scheduled,
                    done - sent,
                    outcome,
                    !status_expected(&outcome, &rp.statuses),
                );
                results.push((res, done - self.scheduled));
            }
            if results
                .iter()
                .fold(false, |r, (res, _)| self.w.death.saw(res) || r)
            {
                self.w.death.confirm(&self.j.addr).await;
            }
        } else {
            for i in 0..rp.times {
                let scheduled = if i == 0 {
                    self.scheduled
                } else {
                    Instant::now()
                };
                results.push(
                    self.send(&p, self.ids.metric, scheduled, &rp.statuses)
                        .await,
                );
            }
        }
        // The first answer goes through the step's own checks and captures.
        let Some((first, first_latency)) = results.first() else {
            return false;
        };
        let step_ids = self.ids;
        let mut ok = self.after_response(
            r,
            &step_ids.json,
            &p,
            first,
            *first_latency,
            step_ids.status,
            &step_ids.checks,
            Some(step_ids.captures),
        );
        // Every answer: an allowed status and the same id.
        let mut bad_status = Vec::new();
        let mut ids = Vec::new();
        for (res, _) in &results {
            match res {
                Ok(resp) if rp.statuses.contains(&resp.status) => {
                    ids.push(
                        LazyJson::new(&resp.body, &step_ids.replay_id)
                            .get()
                            .and_then(|v| v.pointer(&rp.id_pointer))
                            .cloned(),
                    );
                }
                Ok(resp) => bad_status.push(resp.status.to_string()),
                Err(f) => bad_status.push(f.cause.to_string()),
            }
        }
        let status_ok = bad_status.is_empty() && results.len() == rp.times as usize;
        self.it.recorder.check(self.ids.replay_status, status_ok);
        let same_id =
            ids.first().is_some_and(|f| f.is_some()) && ids.windows(2).all(|w| w[0] == w[1]);
        let same_ok = status_ok && same_id;
        self.it.recorder.check(self.ids.replay_same_id, same_ok);
        let distinct: Vec<String> = {
            let mut d: Vec<String> = ids
                .iter()
                .map(|v| v.as_ref().map_or("(none)".into(), Value::to_string))
                .collect();
            d.sort();
            d.dedup();
            d
        };
        if !status_ok || !same_ok {
            ok = false;
            // A duplicate is proven only by two accepted answers carrying
            // different ids. A replay that failed (5xx, refused, reset) or an
            // answer without an id fails the checks above and counts as an
            // error, not as a violation: it proves nothing about the key.
            if proves_duplicate(&ids) {
                self.it
                    .recorder
                    .violation(Violation::IdempotencyViolations, 1);
            }
            let why = if !status_ok {
                format!("replays answered {}", bad_status.join(", "))
            } else {
                format!(
                    "{} replays returned {} different ids: {}",
                    rp.times,
                    distinct.len(),
                    distinct.join(", ")
                )
            };
            let last = &results.last().expect("non-empty").0;
            self.sample_exchange("idempotent replay", why, &p, last);
        }
        if let Some(v) = &rp.verify {
            let auth = self
                .identity_header(self.step.identity)
                .await
                .ok()
                .flatten();
            match self.prepare(v, auth) {
                Ok(vp) => {
                    let (res, latency) = self
                        .send(&vp, self.ids.verify_metric, Instant::now(), &v.status)
                        .await;
                    let (status_id, rest) = step_ids
                        .verify_checks
                        .split_first()
                        .expect("status check first");
                    let verified = self.after_response(
                        v,
                        &step_ids.verify_json,
                        &vp,
                        &res,
                        latency,
                        *status_id,
                        rest,
                        None,
                    );
                    if !verified {
                        ok = false;
                        // The listing proves a duplicate only when every
                        // replay was accepted (so one entry must exist) and
                        // it answered as expected with a JSON body its checks
                        // then disagree with; a failed listing is an error.
                        if status_ok && answered_json(&res, &v.status) {
                            self.it
                                .recorder
                                .violation(Violation::IdempotencyViolations, 1);
                        }
                    }
                }
                Err(e) => {
                    ok = false;
                    self.sample("single entry", e, String::new(), String::new());
                }
            }
        }
        ok
    }

    async fn isolation_step(&mut self, iso: &Isolation) -> bool {
        let Ok(auth) = self.identity_header(Some(iso.identity)).await else {
            for id in &self.ids.probe_refused {
                self.it.recorder.check(*id, false);
            }
            return false;
        };
        let ctx = self.ctx();
        let (resource, markers) = match (
            iso.resource.render(&ctx),
            iso.markers
                .iter()
                .map(|m| m.render(&ctx))
                .collect::<Result<Vec<_>, _>>(),
        ) {
            (Ok(r), Ok(m)) => (r, m),
            (Err(u), _) | (_, Err(u)) => {
                for id in &self.ids.probe_refused {
                    self.it.recorder.check(*id, false);
                }
                self.sample(
                    "tenant isolation",
                    format!("variable \"{}\" has no value", u.0),
                    String::new(),
                    String::new(),
                );
                return false;
            }
        };
        // Rendered once for every probe; `{}` when there is none or a
        // variable in it has no value.
        let body = iso
            .body
            .as_ref()
            .and_then(|b| {
                let mut out = Vec::new();
                write_json(b, &ctx, &mut out)
                    .ok()
                    .map(|()| Bytes::from(out))
            })
            .unwrap_or_else(|| Bytes::from_static(b"{}"));
        let mut ok = true;
        for (i, (method, suffix)) in iso.probes.iter().enumerate() {
            let mut headers = http::HeaderMap::new();
            if let Some((k, v)) = &auth {
                headers.insert(k.clone(), v.clone());
            }
            let with_body = matches!(
                *method,
                http::Method::POST | http::Method::PUT | http::Method::PATCH
            );
            let payload = if with_body {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                body.clone()
            } else {
                Bytes::new()
            };
            let p = Prepared {
                method: method.clone(),
                uri: format!("{}{}{}", self.j.base_path, resource, suffix),
                headers,
                body: payload,
            };
            let (res, _) = self
                .send(&p, self.ids.probe_metrics[i], Instant::now(), &iso.expect)
                .await;
            let (refused, hidden, why) = match &res {
                Ok(resp) => {
                    let refused = iso.expect.contains(&resp.status);
                    let text = String::from_utf8_lossy(&resp.body);
                    let leaked: Vec<&String> = markers
                        .iter()
                        .filter(|m| !m.is_empty())
                        .filter(|m| {
                            text.contains(m.as_str())
                                || resp
                                    .headers
                                    .values()
                                    .any(|v| v.to_str().is_ok_and(|s| s.contains(m.as_str())))
                        })
                        .collect();
                    let mut why = Vec::new();
                    if !refused {
                        why.push(format!(
                            "answered {} instead of {}",
                            resp.status,
                            join_codes(&iso.expect)
                        ));
                    }
                    if !leaked.is_empty() {
                        why.push(format!("revealed {} marker(s)", leaked.len()));
                    }
                    (refused, leaked.is_empty(), why.join("; "))
                }
                Err(f) => (false, true, format!("probe failed: {f}")),
            };
            self.it.recorder.check(self.ids.probe_refused[i], refused);
            self.it.recorder.check(self.ids.probe_hidden[i], hidden);
            if !(refused && hidden) {
                ok = false;
                if discloses(&res, hidden) {
                    self.it
                        .recorder
                        .violation(Violation::TenantIsolationViolations, 1);
                }
                let label = format!(
                    "tenant isolation {method}{}{suffix}",
                    if suffix.is_empty() { "" } else { " " }
                );
                self.sample_exchange(&label, why, &p, &res);
            }
        }
        ok
    }

    /// A `sql` step: the query's latency is the step's (status 200 when it
    /// ran, its failure's cause when not), then its row checks.
    async fn sql_step(&mut self, q: &super::sql::SqlStep) -> bool {
        let ctx = self.ctx();
        let params = q
            .params
            .iter()
            .map(|t| t.render(&ctx))
            .collect::<Result<Vec<_>, _>>();
        let request = format!("SQL {}\nparams: {:?}", q.query, params);
        let params = match params {
            Ok(p) => p,
            Err(u) => {
                self.it.recorder.check(self.ids.status, false);
                let why = format!(
                    "variable \"{}\" has no value (an earlier capture failed?)",
                    u.0
                );
                self.sample(super::sql::QUERY_CHECK, why, request, String::new());
                return false;
            }
        };
        let timeout = self.w.http.timeout;
        let sent = Instant::now();
        let res = match self.user.db.get(&q.url, timeout).await {
            Ok(client) => super::sql::query(client, &q.query, &params, q.writes, timeout).await,
            Err(f) => Err(f),
        };
        let rows = match self.record_db(res, sent) {
            Ok(rows) => rows,
            Err(f) => {
                self.user.db.drop_connection(&q.url);
                self.sample(super::sql::QUERY_CHECK, f.message, request, String::new());
                return false;
            }
        };
        self.it.recorder.check(self.ids.status, true);
        let mut ok = true;
        for (check, id) in q.checks.iter().zip(&self.ids.checks) {
            let expected = match check {
                super::sql::RowCheck::Value { equals, .. } => Some(
                    render_json(equals, &self.ctx())
                        .map_err(|u| format!("variable \"{}\" has no value", u.0)),
                ),
                super::sql::RowCheck::Rows(_) => None,
            }
            .transpose();
            let verdict = expected.and_then(|e| super::sql::evaluate(check, &rows, e.as_ref()));
            self.it.recorder.check(*id, verdict.is_ok());
            if let Err(why) = verdict {
                ok = false;
                self.sample(&check.label(), why, request.clone(), rows.show());
            }
        }
        ok
    }

    /// An `rls` step: one evaluation of [`crate::rls::TABLE_CHECK`] per
    /// tenant table, and the step passes when coverage reaches its minimum.
    async fn rls_step(&mut self, r: &super::sql::RlsStep) -> bool {
        let timeout = self.w.http.timeout;
        let sent = Instant::now();
        let res = match self.user.db.get(&r.url, timeout).await {
            Ok(client) => {
                let doing = "probing row-level security";
                match tokio::time::timeout(timeout, crate::rls::probe(client, &r.tenant_columns))
                    .await
                {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => Err(super::sql::SqlFailure::from_pg(&e, doing)),
                    Err(_) => Err(super::sql::SqlFailure::timeout(doing, timeout)),
                }
            }
            Err(f) => Err(f),
        };
        let request = format!(
            "RLS probe of tables with a column {}",
            r.tenant_columns.join(" or ")
        );
        let coverage = match self.record_db(res, sent) {
            Ok(c) => c,
            Err(f) => {
                self.user.db.drop_connection(&r.url);
                self.sample(&r.label(), f.message, request, String::new());
                return false;
            }
        };
        for t in &coverage.tables {
            self.it.recorder.check(self.ids.checks[0], t.covered());
        }
        let ok = coverage
            .fraction()
            .is_some_and(|f| f + 1e-9 >= r.min_coverage);
        self.it.recorder.check(self.ids.status, ok);
        if !ok {
            self.sample(&r.label(), coverage.summary(), request, String::new());
        }
        ok
    }

    /// Records a database call under the step's metric: `Status(200)` when
    /// it ran, its cause when it failed (and the status check with it).
    fn record_db<T>(
        &mut self,
        res: Result<T, super::sql::SqlFailure>,
        sent: Instant,
    ) -> Result<T, super::sql::SqlFailure> {
        let done = Instant::now();
        let outcome = match &res {
            Ok(_) => Outcome::Status(200),
            Err(f) => Outcome::Failed(f.cause),
        };
        self.it.recorder.record_as(
            self.ids.metric,
            done - self.scheduled,
            done - sent,
            outcome,
            res.is_err(),
        );
        if res.is_err() {
            self.it.recorder.check(self.ids.status, false);
        }
        res
    }

    fn sample(&self, check: &str, message: String, request: String, response: String) {
        let secrets = &self.j.scenario.secrets;
        self.it.recorder.failure_sample(|| FailureSample {
            step: self.step.name.clone(),
            check: check.to_string(),
            message: scrub(&message, secrets),
            request: scrub(&request, secrets),
            response: scrub(&response, secrets),
            vu: self.it.vu,
            iteration: self.it.index,
        });
    }

    fn sample_exchange(
        &self,
        check: &str,
        message: String,
        p: &Prepared,
        res: &Result<HttpResponse, HttpFailure>,
    ) {
        let secrets = &self.j.scenario.secrets;
        self.it.recorder.failure_sample(|| {
            let mut request = format!("{} {}\n", p.method, redact_query(&p.uri));
            write_headers(&mut request, &p.headers);
            push_body(&mut request, &p.body);
            let response = match res {
                Ok(r) => {
                    let mut s = format!("HTTP {}\n", r.status);
                    write_headers(&mut s, &r.headers);
                    push_body(&mut s, &r.body);
                    s
                }
                Err(f) => format!("no response: {f}"),
            };
            FailureSample {
                step: self.step.name.clone(),
                check: check.to_string(),
                message: scrub(&message, secrets),
                request: scrub(&request, secrets),
                response: scrub(&response, secrets),
                vu: self.it.vu,
                iteration: self.it.index,
            }
        });
    }
}

/// The outcome of an exchange, as recorded.
/// Whether replay answers prove a broken idempotency key: two accepted
/// answers carry different ids. Answers without an id (failed, not JSON) are
/// left out: they are errors, not evidence.
fn proves_duplicate(ids: &[Option<Value>]) -> bool {
    let mut seen = ids.iter().flatten();
    seen.next().is_some_and(|first| seen.any(|id| id != first))
}

/// Whether `res` answered one of `expected` (any 2xx when empty) with a body
/// that parses as JSON: a check failing on it speaks of the data, not of a
/// broken exchange.
fn answered_json(res: &Result<HttpResponse, HttpFailure>, expected: &[u16]) -> bool {
    res.as_ref().is_ok_and(|r| {
        let status_ok = if expected.is_empty() {
            (200..300).contains(&r.status)
        } else {
            expected.contains(&r.status)
        };
        status_ok && serde_json::from_slice::<serde::de::IgnoredAny>(&r.body).is_ok()
    })
}

/// Whether a cross-tenant probe's answer is a tenant-isolation violation:
/// the target accepted it (2xx/3xx: it served, changed or deleted the other
/// tenant's order) or its answer revealed a marker, whatever the status. A
/// 5xx, an unexpected 4xx or a transport failure that reveals nothing is an
/// error (the probe's `refused` check fails and the request counts as
/// failed), not a leak.
fn discloses(res: &Result<HttpResponse, HttpFailure>, hidden: bool) -> bool {
    match res {
        Ok(resp) => (200..400).contains(&resp.status) || !hidden,
        Err(_) => false,
    }
}

fn outcome_of(res: &Result<HttpResponse, HttpFailure>) -> Outcome {
    match res {
        Ok(resp) => Outcome::Status(resp.status),
        Err(f) => Outcome::Failed(f.cause),
    }
}

/// Whether an outcome is what a step expects: one of `expected`, or any
/// 2xx/3xx when `expected` is empty.
fn status_expected(outcome: &Outcome, expected: &[u16]) -> bool {
    match outcome {
        Outcome::Status(s) if expected.is_empty() => (200..400).contains(s),
        Outcome::Status(s) => expected.contains(s),
        Outcome::Failed(_) => false,
    }
}

/// Evaluates one check; `Err` says what was found instead.
fn evaluate(
    check: &Check,
    resp: &HttpResponse,
    json: &mut LazyJson<'_>,
    latency: Duration,
    ctx: &RenderCtx<'_>,
) -> Result<(), String> {
    let subject: Option<Cow<'_, Value>> = match &check.subject {
        Subject::Json(ptr) => match json.get() {
            Some(v) => v.pointer(ptr).map(Cow::Borrowed),
            None => return Err("the response is not JSON".into()),
        },
        Subject::Header(h) => resp.headers.get(h).map(|v| {
            Cow::Owned(Value::String(
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        }),
        Subject::Body => Some(Cow::Owned(Value::String(
            String::from_utf8_lossy(&resp.body).into_owned(),
        ))),
        Subject::Latency => None,
    };
    let subject = subject.as_deref();
    match &check.predicate {
        Predicate::Below(limit) => {
            if latency < *limit {
                Ok(())
            } else {
                Err(format!("took {:.1} ms", latency.as_secs_f64() * 1000.0))
            }
        }
        Predicate::Exists(want) => match (subject.is_some(), want) {
            (true, true) | (false, false) => Ok(()),
            (false, true) => Err("absent".into()),
            (true, false) => Err(format!(
                "present: {}",
                shown(&check.subject, subject.expect("present"))
            )),
        },
        Predicate::Equals(t) => {
            let want =
                expected_json(t, ctx).map_err(|u| format!("variable \"{}\" has no value", u.0))?;
            match subject {
                Some(got) if loosely_equal(got, &want) => Ok(()),
                Some(got) => Err(format!(
                    "expected {}, found {}",
                    shown(&check.subject, &want),
                    shown(&check.subject, got)
                )),
                None => Err(format!(
                    "expected {}, found nothing",
                    shown(&check.subject, &want)
                )),
            }
        }
        Predicate::Matches(re) => match subject {
            Some(Value::String(s)) if re.is_match(s) => Ok(()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) if re.is_match(&v.to_string()) => Ok(()),
            Some(v) => Err(format!("{} does not match", shown(&check.subject, v))),
            None => Err("absent".into()),
        },
        Predicate::Contains(t) => {
            let needle = t
                .render(ctx)
                .map_err(|u| format!("variable \"{}\" has no value", u.0))?;
            match subject {
                Some(Value::String(s)) if s.contains(&needle) => Ok(()),
                Some(Value::Array(a))
                    if a.iter()
                        .any(|x| loosely_equal(x, &Value::String(needle.clone()))) =>
                {
                    Ok(())
                }
                Some(v) => Err(format!(
                    "{} does not contain {needle:?}",
                    shown(&check.subject, v)
                )),
                None => Err("absent".into()),
            }
        }
        Predicate::Length(n) => {
            let len = match subject {
                Some(Value::Array(a)) => Some(a.len()),
                Some(Value::String(s)) => Some(s.chars().count()),
                Some(Value::Object(o)) => Some(o.len()),
                _ => None,
            };
            match len {
                Some(l) if l == *n => Ok(()),
                Some(l) => Err(format!("length {l}")),
                None => Err("not an array, string or object".into()),
            }
        }
    }
}

/// Equal, or the same number written as a string (`"1"` and `1`).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => false,
    }
}

/// A value for a failure message; `subject` decides whether it may be shown.
fn shown(subject: &Subject, v: &Value) -> String {
    if let Subject::Json(ptr) = subject
        && ptr.rsplit('/').next().is_some_and(is_sensitive_name)
    {
        return REDACTED.to_string();
    }
    if let Subject::Header(h) = subject
        && is_sensitive_name(h.as_str())
    {
        return REDACTED.to_string();
    }
    short(v)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}

/// The value a check expects: borrowed when the scenario fixed it or it is
/// one variable, rendered otherwise.
fn expected_json<'c>(
    t: &'c JsonTemplate,
    ctx: &'c RenderCtx<'_>,
) -> Result<Cow<'c, Value>, super::template::Unset> {
    match t {
        JsonTemplate::Fixed(v) => Ok(Cow::Borrowed(v)),
        JsonTemplate::Text(t) => match t.as_var() {
            Some(slot) => ctx
                .vars
                .get(slot)
                .and_then(Option::as_ref)
                .map(Cow::Borrowed)
                .ok_or_else(|| {
                    super::template::Unset(ctx.names.get(slot).cloned().unwrap_or_default())
                }),
            None => t.render_value(ctx).map(Cow::Owned),
        },
        _ => render_json(t, ctx).map(Cow::Owned),
    }
}

fn render_json(t: &JsonTemplate, ctx: &RenderCtx<'_>) -> Result<Value, super::template::Unset> {
    Ok(match t {
        JsonTemplate::Fixed(v) => v.clone(),
        JsonTemplate::Text(t) => t.render_value(ctx)?,
        JsonTemplate::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_json(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        JsonTemplate::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, ctx)?)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Writes the JSON of `t` to `out`, as `render_json` then `to_vec` would
/// but without building the value first; object keys keep the order the
/// scenario gives them.
fn write_json(
    t: &JsonTemplate,
    ctx: &RenderCtx<'_>,
    out: &mut Vec<u8>,
) -> Result<(), super::template::Unset> {
    // Writing JSON to a Vec cannot fail.
    match t {
        JsonTemplate::Fixed(v) => serde_json::to_writer(&mut *out, v).expect("JSON serialises"),
        JsonTemplate::Text(t) => {
            serde_json::to_writer(&mut *out, &t.render_value(ctx)?).expect("JSON serialises")
        }
        JsonTemplate::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, ctx, out)?;
            }
            out.push(b']');
        }
        JsonTemplate::Object(fields) => {
            out.push(b'{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k.as_str()).expect("JSON serialises");
                out.push(b':');
                write_json(v, ctx, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// An origin-form URI with the values of sensitive query parameters
/// (`access_token`, `api_key`, …) redacted.
fn redact_query(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_sensitive_name(k) => format!("{k}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn write_headers(out: &mut String, headers: &http::HeaderMap) {
    for (k, v) in headers {
        let shown = if v.is_sensitive() || is_sensitive_name(k.as_str()) {
            REDACTED.to_string()
        } else {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        let _ = writeln!(out, "{k}: {shown}");
    }
}

const SAMPLE_BODY_LIMIT: usize = 2048;

fn push_body(out: &mut String, body: &[u8]) {
    if body.is_empty() {
        return;
    }
    out.push('\n');
    // Redact sensitive JSON fields (tokens in login answers, passwords).
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_json(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    if text.len() > SAMPLE_BODY_LIMIT {
        let mut cut = SAMPLE_BODY_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&text[..cut]);
        let _ = write!(out, "… ({} bytes)", text.len());
    } else {
        out.push_str(&text);
    }
}

fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if is_sensitive_name(k) && !x.is_object() && !x.is_array() {
                    *x = Value::String(REDACTED.into());
                } else {
                    redact_json(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// Replaces every secret value in `text`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &'static str) -> Result<HttpResponse, HttpFailure> {
        Ok(HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        })
    }

    fn refused() -> Result<HttpResponse, HttpFailure> {
        Err(HttpFailure {
            cause: ErrorCause::Refused,
            message: "connection refused".into(),
        })
    }

    #[test]
    fn only_accepted_or_revealing_probes_are_isolation_violations() {
        assert!(discloses(&answer(200, "{}"), true));
        assert!(discloses(&answer(204, ""), true));
        assert!(discloses(&answer(500, "SECRET-1"), false));
        assert!(!discloses(&answer(500, "{}"), true));
        assert!(!discloses(&answer(503, "{}"), true));
        assert!(!discloses(&answer(401, "{}"), true));
        assert!(!discloses(&answer(404, "{}"), true));
        assert!(!discloses(&refused(), true));
    }

    #[test]
    fn only_two_ids_for_one_key_prove_a_duplicate() {
        let id = |n: u64| Some(Value::from(n));
        assert!(proves_duplicate(&[id(1), id(1), id(2)]));
        assert!(!proves_duplicate(&[id(1), id(1), id(1)]));
        // Failed replays and answers without an id prove nothing.
        assert!(!proves_duplicate(&[id(1), None, id(1)]));
        assert!(!proves_duplicate(&[None, None]));
        assert!(!proves_duplicate(&[]));
        assert!(answered_json(&answer(200, r#"{"count":2}"#), &[200]));
        assert!(!answered_json(&answer(200, r#"{"count":"#), &[200]));
        assert!(!answered_json(&answer(503, "{}"), &[200]));
        assert!(!answered_json(&refused(), &[200]));
    }

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

    #[test]
    fn loose_equality_of_numbers_and_strings() {
        assert!(loosely_equal(&Value::from(1), &Value::from("1")));
        assert!(loosely_equal(&Value::from(1.0), &Value::from(1)));
        assert!(!loosely_equal(&Value::from("a"), &Value::from(1)));
    }

    #[test]
    fn secrets_and_sensitive_fields_are_redacted() {
        let mut s = String::new();
        push_body(
            &mut s,
            br#"{"token":"abc.def","user":{"password":"p"},"id":1}"#,
        );
        assert!(!s.contains("abc.def") && !s.contains("\"p\""), "{s}");
        assert!(s.contains("\"id\":1"));
        assert_eq!(
            scrub("pw=hunter22;", &["hunter22".into()]),
            "pw=[REDACTED];"
        );
        let mut h = http::HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer xyz"));
        let mut out = String::new();
        write_headers(&mut out, &h);
        assert!(!out.contains("xyz"));
    }

    #[test]
    fn json_bodies_are_written_as_their_rendered_value_in_the_scenarios_key_order() {
        use super::super::template::{Part, Resolve, Template};
        struct Scope;
        impl Resolve for Scope {
            fn resolve(&self, name: &str) -> Result<Part, (String, Option<String>)> {
                match name {
                    "id" => Ok(Part::Var(0)),
                    "n" => Ok(Part::Var(1)),
                    _ => Err((format!("undefined variable {name:?}"), None)),
                }
            }
        }
        let text = |t: &str| JsonTemplate::Text(Template::parse(t, &Scope).unwrap());
        let body = JsonTemplate::Object(vec![
            ("z".into(), text("PO-{{ vu }}-{{ iteration }}")),
            ("id".into(), text("{{ id }}")),
            ("n".into(), text("{{ n }}")),
            ("vu".into(), text("{{ vu }}")),
            (
                "a \"quoted\" key".into(),
                JsonTemplate::Array(vec![
                    JsonTemplate::Fixed(serde_json::json!({"x": [1.5, null, true]})),
                    text("line\nbreak \u{1} é"),
                    JsonTemplate::Array(vec![]),
                    JsonTemplate::Object(vec![]),
                ]),
            ),
        ]);
        let vars = vec![
            Some(Value::from("ord-\"7\"")),
            Some(serde_json::json!({"deep": [1, 2]})),
        ];
        let names = vec!["id".to_string(), "n".to_string()];
        let ctx = RenderCtx {
            vu: 3,
            iteration: 9,
            vars: &vars,
            data: None,
            names: &names,
        };
        let mut out = Vec::new();
        write_json(&body, &ctx, &mut out).unwrap();
        let written: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(written, render_json(&body, &ctx).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"z":"PO-3-9","id":"ord-\"7\"","n":{"deep":[1,2]},"vu":3,"#),
            "{text}"
        );

        let unset = JsonTemplate::Array(vec![text_unset()]);
        fn text_unset() -> JsonTemplate {
            struct Only;
            impl Resolve for Only {
                fn resolve(&self, _: &str) -> Result<Part, (String, Option<String>)> {
                    Ok(Part::Var(0))
                }
            }
            JsonTemplate::Text(Template::parse("{{ later }}", &Only).unwrap())
        }
        let empty = vec![None];
        let ctx = RenderCtx {
            vars: &empty,
            names: &names[..1],
            ..ctx
        };
        assert_eq!(
            write_json(&unset, &ctx, &mut Vec::new()).unwrap_err().0,
            "id"
        );
    }

    #[test]
    fn query_components_are_encoded() {
        let mut s = String::new();
        encode_component("a b&c=d/é", &mut s);
        assert_eq!(s, "a%20b%26c%3Dd%2F%C3%A9");
    }
}
