//! The target's error answers: one JSON shape for every failing route.
//!
//! Scenario checks match on the status and on the stable `code`; people read
//! `error`; `field` names the offending input of a 422 so a client can point
//! at it.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failed request, answered as `{"error", "code", "field"?}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub field: Option<Cow<'static, str>>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 401: no usable credentials.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: authenticated, but this role or user may not act.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing of that name in the caller's tenant.
    pub fn not_found(what: &'static str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409: the resource is not in a state that allows the action.
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 400: the body is not the JSON document it claims to be.
    pub fn malformed(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 422: well-formed input with an invalid field.
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
    }

    /// 405: the route exists, the method does not (the `Allow` header says
    /// which do).
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }

    /// 413: the body is over the size the target reads.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body exceeds {} bytes",
                super::server::BODY_LIMIT
            ),
        )
    }

    /// 500/503 answered by the error-rate fault.
    pub fn injected(status: StatusCode) -> Self {
        Self::new(status, "injected_fault", "injected fault: error-rate")
    }

    /// 503: the database failed. Only the SQLSTATE is told, never the
    /// connection's details.
    pub fn storage(e: &tokio_postgres::Error) -> Self {
        let message = match e.code() {
            Some(code) => format!("the database failed (SQLSTATE {})", code.code()),
            None => "the database is unavailable".to_string(),
        };
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            message,
        )
    }

    /// Replaces the machine-readable code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Answers a known route called with a method it does not have.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Gives the answers axum writes by itself outside any handler (a body over
/// the limit is refused by the `Bytes` extractor, in plain text) the JSON
/// error shape of every other error. Only a 413 that is not JSON yet is
/// rewritten; its headers (the request id is added later) are kept.
pub(crate) fn in_json_shape(response: Response) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let json = ApiError::payload_too_large().into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, json.into_body())
}

/// Answers requests that match no route.
pub(crate) async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn validation_errors_name_the_field() {
        let (status, body) = body_json(ApiError::invalid("weight_kg", "must be > 0")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["field"], "weight_kg");
        assert_eq!(body["error"], "must be > 0");
    }

    #[tokio::test]
    async fn other_errors_have_no_field() {
        let (status, body) = body_json(ApiError::not_found("order")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.get("field").is_none());
        assert_eq!(body["code"], "not_found");
    }
}
