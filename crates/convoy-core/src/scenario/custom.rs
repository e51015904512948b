//! Journeys written in Rust, for what the scenario format cannot express:
//! the [`CustomJourney`] trait, the [`CustomRegistry`] they are registered
//! in by name, and the [`CustomCtx`] they run with. A step
//! `custom = "NAME"` (the `custom` kind, `steps/custom.rs`) runs one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;

use super::exchange::outcome_of;
use crate::engine::http::{
    Connection, Endpoint, HttpClient, HttpFailure, HttpResponse, RequestBody,
};
use crate::metrics::Recorder;

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

    /// The journey registered under `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn CustomJourney>> {
        self.map.get(name)
    }
}

/// What a custom journey may use.
pub struct CustomCtx<'a> {
    pub(crate) client: &'a HttpClient,
    pub(crate) conn: &'a mut Connection,
    pub(crate) endpoint: &'a Endpoint,
    pub(crate) target: &'a crate::target_url::TargetUrl,
    pub(crate) recorder: &'a Recorder,
    pub(crate) step: usize,
    /// The virtual user.
    pub vu: u64,
    /// Its iteration.
    pub iteration: u64,
}

impl CustomCtx<'_> {
    /// Sends `method path` (joined to the target's base URL as every step's
    /// path is: [`crate::target_url`]) with an
    /// optional JSON body, records it under the step's metric, and returns
    /// the response.
    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        json: Option<&Value>,
    ) -> Result<HttpResponse, HttpFailure> {
        let uri = self.target.join(path).map_err(|e| HttpFailure {
            cause: crate::metrics::ErrorCause::Other,
            message: e.to_string(),
        })?;
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
