//! Recordings for unit tests: a HAR document from a table of exchanges.

use super::model::{Exchange, Har};

/// `(method, url, request headers, request body, response headers, response body)`.
pub type Entry<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
);

pub fn exchanges(entries: &[Entry]) -> Vec<Exchange> {
    let pairs = |h: &[(&str, &str)]| {
        serde_json::to_string(
            &h.iter()
                .map(|(n, v)| serde_json::json!({ "name": n, "value": v }))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let list: Vec<String> = entries
        .iter()
        .map(|(m, u, rh, b, sh, r)| {
            let post = if b.is_empty() {
                String::new()
            } else {
                format!(
                    r#","postData":{{"mimeType":"application/json","text":{}}}"#,
                    serde_json::to_string(b).unwrap()
                )
            };
            format!(
                r#"{{"request":{{"method":"{m}","url":"{u}","headers":{}{post}}},"response":{{"status":200,"headers":{},"content":{{"mimeType":"application/json","text":{}}}}}}}"#,
                pairs(rh),
                pairs(sh),
                serde_json::to_string(r).unwrap()
            )
        })
        .collect();
    Har::parse(
        "t.har",
        &format!("{{\"log\":{{\"entries\":[{}]}}}}", list.join(",")),
    )
    .unwrap()
    .exchanges
}
