//! Failure samples: what a report shows of a failed check. Requests and
//! answers are written out for people, with everything secret taken out
//! first: sensitive headers, query parameters and JSON fields, and every
//! value of the run's secret set ([`Secrets`]). Bodies are cut at
//! [`SAMPLE_BODY_LIMIT`] bytes.

use std::fmt::Write as _;

use serde_json::Value;

use super::exchange::Prepared;
use crate::engine::http::{HttpFailure, HttpResponse};
use crate::metrics::FailureSample;
use crate::redact::{REDACTED, Secrets, is_sensitive_name};

/// Where a failure happened, and what must not be shown of it.
pub(crate) struct Origin<'a> {
    /// The step's metric name.
    pub step: &'a str,
    /// The virtual user.
    pub vu: u64,
    /// Its iteration.
    pub iteration: u64,
    /// The run's secret values, learnt ones included.
    pub secrets: &'a Secrets,
}

/// A failure sample at `at`, every text scrubbed of the scenario's secrets.
pub(crate) fn sample(
    at: &Origin<'_>,
    check: &str,
    message: &str,
    request: &str,
    response: &str,
) -> FailureSample {
    FailureSample {
        step: at.secrets.scrub(at.step).into_owned(),
        check: at.secrets.scrub(check).into_owned(),
        message: at.secrets.scrub(message).into_owned(),
        request: at.secrets.scrub(request).into_owned(),
        response: at.secrets.scrub(response).into_owned(),
        vu: at.vu,
        iteration: at.iteration,
        violation: None,
        status: None,
        cause: None,
    }
}

/// A request as a sample shows it: method, URI, headers and body, redacted.
pub(crate) fn request_text(p: &Prepared, secrets: &Secrets) -> String {
    let mut request = format!("{} {}\n", p.method, redact_query(&p.uri));
    write_headers(&mut request, &p.headers);
    push_body(&mut request, &p.body, secrets);
    request
}

/// An answer as a sample shows it: status, headers and body, redacted; or
/// why there was none.
pub(crate) fn response_text(res: &Result<HttpResponse, HttpFailure>, secrets: &Secrets) -> String {
    match res {
        Ok(r) => {
            let mut s = format!("HTTP {}\n", r.status);
            write_headers(&mut s, &r.headers);
            push_body(&mut s, &r.body, secrets);
            s
        }
        Err(f) => format!("no response: {f}"),
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

/// The most of a body a sample shows.
pub(crate) const SAMPLE_BODY_LIMIT: usize = 2048;

fn push_body(out: &mut String, body: &[u8], secrets: &Secrets) {
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
    // Scrubbed before it is cut: a secret across the cut would leave its
    // first half.
    let text = secrets.scrub(&text);
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn secrets_and_sensitive_fields_are_redacted() {
        let mut s = String::new();
        push_body(
            &mut s,
            br#"{"token":"abc.def","user":{"password":"p"},"id":1}"#,
            &Secrets::new(),
        );
        assert!(!s.contains("abc.def") && !s.contains("\"p\""), "{s}");
        assert!(s.contains("\"id\":1"));
        assert_eq!(
            Secrets::of(["hunter22"]).scrub("pw=hunter22;"),
            "pw=[REDACTED];"
        );
        let mut h = http::HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer xyz"));
        let mut out = String::new();
        write_headers(&mut out, &h);
        assert!(!out.contains("xyz"));
    }

    #[test]
    fn a_secret_across_the_cut_is_scrubbed_before_it() {
        let secret = "LOGINTOKEN-across-the-cut-0123";
        let mut body = "a".repeat(SAMPLE_BODY_LIMIT - 10);
        body.push_str(secret);
        let mut s = String::new();
        push_body(&mut s, body.as_bytes(), &Secrets::of([secret]));
        assert!(!s.contains("LOGINTOKEN"), "{s}");
        assert!(s.contains(REDACTED), "{s}");
    }
}
