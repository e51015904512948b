//! What a step runs with: one user running one step of one journey
//! ([`StepRun`]), the journey as its steps see it ([`Journey`]), the state
//! a virtual user keeps ([`UserState`]) and what the whole workload shares
//! ([`Shared`]). Below the kinds: every kind's `execute` gets a `StepRun`,
//! renders with [`StepRun::ctx`], sends with [`StepRun::send`] (which
//! records the exchange; the engine's client feeds the target watch) and
//! reports failures
//! with [`StepRun::sample`], [`StepRun::sample_exchange`] and
//! [`StepRun::sample_violation`].

use std::time::{Duration, Instant};

use serde_json::Value;

use super::custom::CustomRegistry;
use super::exchange::{Prepared, outcome_of, status_expected};
use super::failure::{self, Origin};
use super::json_pick::JsonPaths;
use super::model::{AuthConfig, DataSet, HeaderTemplate, Identity};
use super::template::RenderCtx;
use crate::engine::Iteration;
use crate::engine::http::{Connection, Endpoint, HttpClient, HttpFailure, HttpResponse};
use crate::metrics::{FailureKind, Violation};
use crate::plan::HttpOptions;
use crate::redact::Secrets;
use crate::target_url::TargetUrl;

/// What the steps of every journey share while running.
pub(crate) struct Shared {
    /// HTTP options (their timeout bounds database calls too).
    pub http: HttpOptions,
    /// The metric of every login, `usize::MAX` when nothing logs in.
    pub login_metric: usize,
    /// Custom journeys by name.
    pub custom: CustomRegistry,
    /// The run's secrets: every scenario's, and what the run learns.
    pub secrets: Secrets,
}

/// A journey as its steps see it while running: where requests go, and
/// what steps read of the scenario.
pub(crate) struct Journey {
    /// The target.
    pub endpoint: Endpoint,
    /// The target's base URL: every path a step sends is joined to it by
    /// [`TargetUrl::join`] (its base path joined once).
    pub target: TargetUrl,
    /// Names of the variable slots.
    pub slots: Vec<String>,
    /// Rows of the data file, if any.
    pub data: Option<DataSet>,
    /// How identities log in.
    pub auth: Option<AuthConfig>,
    /// Who the steps act as.
    pub identities: Vec<Identity>,
    /// Per identity, the check of its logins (one per identity name in the
    /// run, shared by the journeys that log in as it); `usize::MAX` for
    /// identities that do not log in.
    pub login_checks: Vec<usize>,
    /// The names of the identities' fields, by index.
    pub ident_fields: Vec<String>,
    /// Headers every request of the journey sends (`[defaults] headers`).
    pub default_headers: Vec<(http::HeaderName, HeaderTemplate)>,
    /// Where a login answer has its token and lifetime.
    pub token_json: JsonPaths,
}

/// Per-user state of one journey.
pub(crate) struct JourneyState {
    /// The variables' values.
    pub vars: Vec<Option<Value>>,
    /// Login identities' tokens, by identity.
    pub tokens: Vec<super::auth::TokenSlot>,
    /// The streams the user holds, by the journey's stream index (its
    /// subscribe steps, in order); kept across iterations.
    pub streams: Vec<Option<super::stream::Held>>,
    /// When each step an await times from (`since`) last sent its request,
    /// by step index; empty when no step awaits an event.
    pub sent_at: Vec<Option<Instant>>,
}

/// A virtual user.
pub struct UserState {
    pub(crate) conn: Connection,
    pub(crate) db: super::db::Connections,
    pub(crate) spare: Vec<Connection>,
    pub(crate) journeys: Vec<JourneyState>,
    /// What this user's requests have already taught the run's secrets.
    pub(crate) learnt: crate::redact::LearntMemo,
    /// When the user's latest request was sent: read after a step that an
    /// await times from (`since`).
    pub(crate) last_sent: Option<Instant>,
}

/// One step being run by one user.
pub(crate) struct StepRun<'a> {
    /// What all journeys share.
    pub shared: &'a Shared,
    /// The step's journey.
    pub j: &'a Journey,
    /// Its index, into [`UserState`]'s journeys.
    pub ji: usize,
    /// The step's metric name.
    pub name: &'a str,
    /// Who the step acts as.
    pub identity: Option<usize>,
    /// The worker's client.
    pub client: &'a HttpClient,
    /// The user.
    pub user: &'a mut UserState,
    /// The iteration.
    pub it: Iteration<'a>,
    /// When the step should have started: latency counts from here.
    pub scheduled: Instant,
}

impl StepRun<'_> {
    /// What templates render with: the user's variables and data row,
    /// and the fields of the identity the step acts as.
    #[inline]
    pub fn ctx(&self) -> RenderCtx<'_> {
        self.ctx_as(self.identity)
    }

    /// What templates render with for a request made as `identity`.
    #[inline]
    pub fn ctx_as(&self, identity: Option<usize>) -> RenderCtx<'_> {
        RenderCtx {
            vu: self.it.vu,
            iteration: self.it.index,
            vars: &self.user.journeys[self.ji].vars,
            data: self
                .j
                .data
                .as_ref()
                .map(|d| d.row(self.it.vu, self.it.index)),
            names: &self.j.slots,
            ident: identity.map_or(&[][..], |i| &self.j.identities[i].vars),
            ident_names: &self.j.ident_fields,
        }
    }

    /// Sends and records under `metric` (an error unless the status is one
    /// of `expected`, or 2xx/3xx when empty); returns the result and its
    /// latency.
    pub async fn send(
        &mut self,
        p: &Prepared,
        metric: usize,
        scheduled: Instant,
        expected: &[u16],
    ) -> (Result<HttpResponse, HttpFailure>, Duration) {
        self.send_renewable(p, metric, scheduled, expected, false)
            .await
    }

    /// [`StepRun::send`] of a request whose login token a 401 will renew
    /// (`renewable`): that 401 is recorded, but not as an error; the
    /// request is sent again with a fresh token.
    pub async fn send_renewable(
        &mut self,
        p: &Prepared,
        metric: usize,
        scheduled: Instant,
        expected: &[u16],
        renewable: bool,
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
        // What the request sends as credentials (a token, a captured
        // value in `X-Auth`, a query `access_token`) is a secret from now
        // on: the target may echo it anywhere. Known values cost a lookup.
        self.shared
            .secrets
            .learn_request_memo(&p.uri, &p.headers, &mut self.user.learnt);
        let sent = Instant::now();
        self.user.last_sent = Some(sent);
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
            !(status_expected(&outcome, expected)
                || (renewable && outcome == crate::metrics::Outcome::Status(401))),
        );
        (res, done - scheduled)
    }

    /// Keeps a failure sample of a step that sent nothing (or no HTTP).
    pub fn sample(&self, check: &str, message: String, request: String, response: String) {
        let kind = FailureKind {
            step: self.name,
            check,
            violation: None,
            status: None,
            cause: None,
        };
        self.it.recorder.failure_sample(&kind, || {
            failure::sample(&self.origin(), check, &message, &request, &response)
        });
    }

    /// Keeps a failure sample of exchange `p`, `res`.
    pub fn sample_exchange(
        &self,
        check: &str,
        message: String,
        p: &Prepared,
        res: &Result<HttpResponse, HttpFailure>,
    ) {
        self.sample_answer(check, None, message, p, res);
    }

    /// Keeps a failure sample of exchange `p`, `res`, counted as a
    /// `violation` (the caller counts it): kept apart from the step's other
    /// failures, so the violation always has examples.
    pub fn sample_violation(
        &self,
        violation: Violation,
        check: &str,
        message: String,
        p: &Prepared,
        res: &Result<HttpResponse, HttpFailure>,
    ) {
        self.sample_answer(check, Some(violation), message, p, res);
    }

    fn sample_answer(
        &self,
        check: &str,
        violation: Option<Violation>,
        message: String,
        p: &Prepared,
        res: &Result<HttpResponse, HttpFailure>,
    ) {
        let (status, cause) = match res {
            Ok(r) => (Some(r.status), None),
            Err(f) => (None, Some(f.cause)),
        };
        let kind = FailureKind {
            step: self.name,
            check,
            violation,
            status,
            cause,
        };
        self.it.recorder.failure_sample(&kind, || {
            let request = failure::request_text(p, &self.shared.secrets);
            let response = failure::response_text(res, &self.shared.secrets);
            let mut s = failure::sample(&self.origin(), check, &message, &request, &response);
            s.violation = violation;
            s.status = status;
            s.cause = cause;
            s
        });
    }

    /// Keeps a failure sample of a stream step: its cause, the status
    /// that refused the stream, and the violation it counts as (the caller
    /// counts it), with request and response as shown (scrubbed here).
    #[allow(clippy::too_many_arguments)]
    pub fn sample_stream(
        &self,
        check: &str,
        violation: Option<Violation>,
        status: Option<u16>,
        cause: Option<crate::metrics::ErrorCause>,
        message: String,
        request: String,
        response: String,
    ) {
        let kind = FailureKind {
            step: self.name,
            check,
            violation,
            status,
            cause,
        };
        self.it.recorder.failure_sample(&kind, || {
            let mut s = failure::sample(&self.origin(), check, &message, &request, &response);
            s.violation = violation;
            s.status = status;
            s.cause = cause;
            s
        });
    }

    fn origin(&self) -> Origin<'_> {
        Origin {
            step: self.name,
            vu: self.it.vu,
            iteration: self.it.index,
            secrets: &self.shared.secrets,
        }
    }
}
