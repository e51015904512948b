//! One exchange of a step: the request as rendered ([`Prepared`], kept for
//! failure samples) and how its outcome is recorded and labelled. Shared by
//! every kind that sends HTTP, by the login and by custom journeys; it knows
//! nothing of steps.

use bytes::Bytes;

use crate::engine::http::{HttpFailure, HttpResponse, RequestBody};
use crate::metrics::Outcome;

/// A request rendered and ready to send (kept for failure samples).
pub(crate) struct Prepared {
    /// HTTP method.
    pub method: http::Method,
    /// Origin-form URI: path and query.
    pub uri: String,
    /// Headers, the identity's among them.
    pub headers: http::HeaderMap,
    /// Body, empty for none.
    pub body: Bytes,
}

impl Prepared {
    /// The request to send (the body is shared, not copied).
    pub fn to_request(&self) -> Result<http::Request<RequestBody>, String> {
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

/// The outcome of an exchange, as recorded.
pub(crate) fn outcome_of(res: &Result<HttpResponse, HttpFailure>) -> Outcome {
    match res {
        Ok(resp) => Outcome::Status(resp.status),
        Err(f) => Outcome::Failed(f.cause),
    }
}

/// Whether an outcome is what a step expects: one of `expected`, or any
/// 2xx/3xx when `expected` is empty.
pub(crate) fn status_expected(outcome: &Outcome, expected: &[u16]) -> bool {
    match outcome {
        Outcome::Status(s) if expected.is_empty() => (200..400).contains(s),
        Outcome::Status(s) => expected.contains(s),
        Outcome::Failed(_) => false,
    }
}

/// The check name of a status expectation: `status is 201 or 200`, or
/// any 2xx or 3xx when `codes` is empty.
pub(crate) fn status_label(codes: &[u16]) -> String {
    if codes.is_empty() {
        "status is 2xx or 3xx".into()
    } else {
        format!("status is {}", join_codes(codes))
    }
}

/// Status codes as a report reads them: `403 or 404`.
pub(crate) fn join_codes(codes: &[u16]) -> String {
    codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}
