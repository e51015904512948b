//! Keeping secrets out of everything convoy prints or writes.
//!
//! Tokens, passwords and `Authorization` headers are replaced by
//! [`REDACTED`] before they reach a report, a log line or an error message.
//!
//! Layering: a leaf, imported by whatever prints or writes; it imports no
//! other module of the harness.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Whether a header, query parameter or variable name suggests a secret.
pub fn is_sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "passwd",
        "api-key",
        "api_key",
        "apikey",
        "x-api-key",
        "signature",
        "credential",
        "session",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// A URL fit for display: the password of its user info and the values of
/// sensitive query parameters are redacted.
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v: Cow<str> = if is_sensitive_name(&k) {
                    REDACTED.into()
                } else {
                    v
                };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string().replace("%5BREDACTED%5D", REDACTED)
}

/// A header value fit for display.
pub fn redact_header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if is_sensitive_name(name) {
        REDACTED.into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_and_tokens() {
        let u: url::Url = "http://bob:hunter2@127.0.0.1:8080/x?access_token=abc123&page=2"
            .parse()
            .unwrap();
        let shown = redact_url(&u);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("abc123"), "{shown}");
        assert!(shown.contains("page=2"), "{shown}");
        assert!(shown.contains("bob"), "{shown}");
    }

    #[test]
    fn headers() {
        assert_eq!(redact_header("Authorization", "Bearer x"), REDACTED);
        assert_eq!(redact_header("X-Api-Key", "k"), REDACTED);
        assert_eq!(
            redact_header("Accept", "application/json"),
            "application/json"
        );
    }
}
