//! `convoy bench`: one request, repeated under load, on the same engine as
//! scenarios. The workload behind the oha-style ad-hoc mode.
//!
//! Layering: a workload like the scenario runner's, beside it: it imports
//! the engine, metrics and plans only, never scenarios, reports or gates.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::engine::http::{Connection, Endpoint, HttpClient, RequestBody, origin_form};
use crate::engine::{
    self, EngineError, EngineOptions, Iteration, LiveStatus, RunControl, RunResult, StepInfo,
    StepKind, Workload,
};
use crate::plan::{HttpOptions, LoadModel};

/// The request `convoy bench` repeats.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: http::Method,
    /// Absolute URL.
    pub url: url::Url,
    /// Headers sent with every request.
    pub headers: http::HeaderMap,
    /// Body sent with every request (empty for none).
    pub body: Bytes,
}

impl RequestSpec {
    /// The step name used in reports: `GET /path`.
    pub fn step_name(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }
}

/// A validated `convoy bench` plan.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// What to send.
    pub request: RequestSpec,
    /// How much of it.
    pub model: LoadModel,
    /// Client settings.
    pub http: HttpOptions,
    /// Engine settings.
    pub engine: EngineOptions,
}

/// Metadata describing a bench run in its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchTarget {
    /// Method and URL, secrets removed.
    pub request: String,
}

/// The workload: send the request, discard the body, record the outcome.
#[derive(Debug)]
pub struct BenchWorkload {
    spec: RequestSpec,
    endpoint: Endpoint,
    uri: http::Uri,
    http: HttpOptions,
}

impl BenchWorkload {
    /// A workload sending `spec` with client settings `http`.
    pub fn new(spec: RequestSpec, http: HttpOptions) -> Result<Self, EngineError> {
        let endpoint = Endpoint::from_url(&spec.url).map_err(EngineError::Setup)?;
        let uri = origin_form(&spec.url);
        Ok(BenchWorkload {
            spec,
            endpoint,
            uri,
            http,
        })
    }

    fn request(&self) -> http::Request<RequestBody> {
        let mut req = http::Request::new(RequestBody::new(self.spec.body.clone()));
        *req.method_mut() = self.spec.method.clone();
        *req.uri_mut() = self.uri.clone();
        if !self.spec.headers.is_empty() {
            *req.headers_mut() = self.spec.headers.clone();
        }
        req
    }
}

impl Workload for BenchWorkload {
    type Worker = HttpClient;
    type User = Connection;

    fn steps(&self) -> Vec<StepInfo> {
        vec![StepInfo {
            name: self.spec.step_name(),
            kind: StepKind::Request,
        }]
    }

    fn worker(&self, _index: usize) -> Result<HttpClient, EngineError> {
        HttpClient::new(&self.http)
    }

    fn user(&self, _worker: &HttpClient, _vu: u64) -> Connection {
        Connection::new()
    }

    async fn iteration<'a>(
        &'a self,
        client: &'a HttpClient,
        conn: &'a mut Connection,
        it: Iteration<'a>,
    ) {
        let req = self.request();
        let sent = Instant::now();
        let outcome = client.send_discard(conn, &self.endpoint, req).await;
        let done = Instant::now();
        it.recorder
            .record(0, done - it.scheduled, done - sent, outcome);
    }
}

/// Runs a bench plan to completion (or until `control` stops it).
pub fn run(
    plan: &BenchPlan,
    control: &RunControl,
    mut observer: impl FnMut(&LiveStatus),
) -> Result<RunResult, EngineError> {
    run_here(plan, control, &mut observer)
}

/// [`run`], not generic on purpose: the engine's loop for this workload is
/// compiled here, in the crate of the workload it drives, so the request
/// path inlines as one unit. Instantiated in the command line's crate
/// instead, the bench cost 6 % more instructions per request (callgrind:
/// futures built out of line and copied into their callers).
fn run_here(
    plan: &BenchPlan,
    control: &RunControl,
    observer: &mut dyn FnMut(&LiveStatus),
) -> Result<RunResult, EngineError> {
    let workload = Arc::new(BenchWorkload::new(plan.request.clone(), plan.http.clone())?);
    engine::run(&plan.model, &plan.engine, workload, control, observer)
}
