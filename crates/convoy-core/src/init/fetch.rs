//! Reading an OpenAPI document from a URL (`convoy init --openapi
//! http://host/openapi.json`): one plain GET on the engine's own hyper
//! client, no redirects followed, the body capped like a file's. One
//! request is less than a smoke, so it may go to any host, as a smoke may.

use std::time::Duration;

use super::InitError;
use super::spec::{MAX_SPEC_BYTES, Spec};
use crate::engine::http::{Connection, Endpoint, HttpClient, RequestBody, origin_form};
use crate::plan::HttpOptions;

/// Whether `source` names a URL rather than a file.
pub fn is_url(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Fetches and parses the document at `url`.
pub fn fetch(url: &str) -> Result<Spec, InitError> {
    let failed = |message: String| InitError::Fetch {
        url: url.to_string(),
        message,
    };
    let parsed = url::Url::parse(url).map_err(|e| failed(format!("not a URL: {e}")))?;
    let opts = HttpOptions {
        timeout: Duration::from_secs(30),
        max_body_bytes: MAX_SPEC_BYTES as usize,
        ..HttpOptions::default()
    };
    let client = HttpClient::new(&opts).map_err(|e| failed(e.to_string()))?;
    let endpoint = Endpoint::from_url(&parsed).map_err(failed)?;
    let mut req = http::Request::new(RequestBody::default());
    *req.uri_mut() = origin_form(&parsed);
    req.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json, application/yaml;q=0.9, */*;q=0.1"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut conn = Connection::new();
    let resp = rt
        .block_on(client.send(&mut conn, &endpoint, req))
        .map_err(|f| failed(f.to_string()))?;
    if resp.status != 200 {
        return Err(failed(format!(
            "answered {} (200 expected; redirects are not followed)",
            resp.status
        )));
    }
    let text = String::from_utf8(resp.body.to_vec())
        .map_err(|_| failed("the answer is not UTF-8 text".into()))?;
    Spec::parse(url, &text)
}
