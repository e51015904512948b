//! Where a request goes: a target's base URL and the one rule that joins a
//! path to it, used for every request a run sends (steps, logins, replays
//! and their `verify`, isolation probes, custom journeys) and by
//! `convoy smoke --wait-healthy`'s health poll, so none of them can disagree.
//!
//! The rule, as `scenarios/README.md` documents it:
//!
//! * A target may carry a base path: `https://gw.example.com/api`. Its
//!   trailing `/` does not count (`/api/` is `/api`).
//! * A step's path is relative to that base path: `/orders` goes to
//!   `/api/orders`.
//! * A path that already begins with the base path (at a segment boundary:
//!   `/api`, `/api/…` or `/api?…`, never `/apis`) is used as is, so the base
//!   path is joined once: scenarios written with full paths (the built-in
//!   ones request `/api/orders`) and scenarios written relative to the base
//!   both work against `--target https://host/api`.
//! * A path without a leading `/` is taken as if it had one.
//! * An absolute URL (`http://…` or `https://…`) is used as is when it is on
//!   the target (same scheme, host and port); one on any other host is
//!   refused, so every request of a run goes to the host the allow-list
//!   judged.
//!
//! Layering: a leaf; it imports no other module of the harness.

use std::fmt;

/// A target's base URL with its base path, ready to join paths onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: url::Url,
    /// The base path without its trailing `/`: `""` or `/api`.
    base_path: String,
}

impl TargetUrl {
    /// The target at `url`: an absolute `http` or `https` URL.
    pub fn new(url: &url::Url) -> Result<Self, String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "unsupported scheme {:?}: use http or https",
                url.scheme()
            ));
        }
        if url.host_str().is_none() {
            return Err("the URL has no host".into());
        }
        Ok(TargetUrl {
            url: url.clone(),
            base_path: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The base path without its trailing `/` (`""` for none).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Whether two targets are the same place: same scheme, host, port and
    /// base path (a trailing `/` aside).
    pub fn same_as(&self, other: &TargetUrl) -> bool {
        self.url.origin() == other.url.origin() && self.base_path == other.base_path
    }

    /// The origin-form URI (`/api/orders?x=1`) that `path` names on this
    /// target, by the rule of this module. `Err` for an absolute URL on
    /// another host, or one that does not parse.
    pub fn join(&self, path: &str) -> Result<String, JoinError> {
        if is_absolute(path) {
            let u: url::Url = path.parse().map_err(|e| JoinError::Invalid {
                url: path.to_string(),
                why: format!("{e}"),
            })?;
            if u.origin() != self.url.origin() {
                return Err(JoinError::OtherHost {
                    url: path.to_string(),
                    target: self.url.origin().ascii_serialization(),
                });
            }
            let mut out = u.path().to_string();
            if let Some(q) = u.query() {
                out.push('?');
                out.push_str(q);
            }
            return Ok(out);
        }
        let mut out = String::with_capacity(self.base_path.len() + path.len() + 1);
        if !self.carries_base(path) {
            out.push_str(&self.base_path);
        }
        if !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
        Ok(out)
    }

    /// The absolute URL that `path` names on this target.
    pub fn join_url(&self, path: &str) -> Result<url::Url, JoinError> {
        let origin_form = self.join(path)?;
        let mut u = self.url.clone();
        u.set_query(None);
        u.set_fragment(None);
        let (p, q) = match origin_form.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (origin_form.as_str(), None),
        };
        u.set_path(p);
        u.set_query(q);
        Ok(u)
    }

    /// Whether `path` already begins with the base path, at a segment
    /// boundary.
    fn carries_base(&self, path: &str) -> bool {
        let base = self.base_path.as_str();
        !base.is_empty()
            && path.strip_prefix(base).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
            })
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.url.fmt(f)
    }
}

/// Whether `path` is an absolute `http` or `https` URL.
pub fn is_absolute(path: &str) -> bool {
    // On every request's path: no allocation.
    let starts = |scheme: &str| {
        path.as_bytes()
            .get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme.as_bytes()))
    };
    starts("http://") || starts("https://")
}

/// Why a path cannot be sent to the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// An absolute URL on a host other than the target.
    #[error(
        "{url} is not on the target {target}: a run sends every request to its target (use a path, or a URL on the target)"
    )]
    OtherHost {
        /// The URL as rendered.
        url: String,
        /// The target's origin.
        target: String,
    },
    /// An absolute URL that does not parse.
    #[error("invalid URL {url:?}: {why}")]
    Invalid {
        /// The URL as rendered.
        url: String,
        /// What is wrong with it.
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> TargetUrl {
        TargetUrl::new(&url.parse().unwrap()).unwrap()
    }

    #[test]
    fn a_target_without_a_base_path_takes_paths_as_they_are() {
        for base in ["http://h:1", "http://h:1/"] {
            let t = t(base);
            assert_eq!(t.join("/api/orders").unwrap(), "/api/orders");
            assert_eq!(t.join("/health").unwrap(), "/health");
            assert_eq!(t.join("health?x=1").unwrap(), "/health?x=1");
        }
    }

    #[test]
    fn the_base_path_is_joined_once() {
        for base in ["http://h:1/api", "http://h:1/api/"] {
            let t = t(base);
            assert_eq!(t.base_path(), "/api");
            // Relative to the base path.
            assert_eq!(t.join("/orders").unwrap(), "/api/orders");
            assert_eq!(t.join("/health").unwrap(), "/api/health");
            assert_eq!(t.join("orders").unwrap(), "/api/orders");
            // Already under it: as is.
            assert_eq!(t.join("/api/orders").unwrap(), "/api/orders");
            assert_eq!(t.join("/api/auth/login").unwrap(), "/api/auth/login");
            assert_eq!(t.join("/api").unwrap(), "/api");
            assert_eq!(t.join("/api?limit=1").unwrap(), "/api?limit=1");
            // Only at a segment boundary.
            assert_eq!(t.join("/apis").unwrap(), "/api/apis");
            assert_eq!(t.join("/apiv2/x").unwrap(), "/api/apiv2/x");
        }
        let deep = t("https://gw.example.com/svc/v1");
        assert_eq!(deep.join("/orders").unwrap(), "/svc/v1/orders");
        assert_eq!(deep.join("/svc/v1/orders").unwrap(), "/svc/v1/orders");
        assert_eq!(deep.join("/svc/orders").unwrap(), "/svc/v1/svc/orders");
    }

    #[test]
    fn absolute_urls_stay_on_the_target() {
        let t = t("http://127.0.0.1:8080/api");
        assert_eq!(
            t.join("http://127.0.0.1:8080/other/x?y=1").unwrap(),
            "/other/x?y=1"
        );
        assert_eq!(t.join("HTTP://127.0.0.1:8080/z").unwrap(), "/z");
        for other in [
            "http://127.0.0.1:9090/x",
            "https://127.0.0.1:8080/x",
            "http://evil.example.com/x",
        ] {
            match t.join(other) {
                Err(JoinError::OtherHost { .. }) => {}
                r => panic!("{other}: {r:?}"),
            }
        }
        assert!(matches!(
            t.join("http://[::1"),
            Err(JoinError::Invalid { .. })
        ));
    }

    #[test]
    fn join_url_keeps_the_origin() {
        let t = t("http://h:1/api/");
        assert_eq!(
            t.join_url("/health").unwrap().as_str(),
            "http://h:1/api/health"
        );
        assert_eq!(
            t.join_url("/api/x?q=1").unwrap().as_str(),
            "http://h:1/api/x?q=1"
        );
    }

    #[test]
    fn sameness_ignores_a_trailing_slash() {
        assert!(t("http://h:1/api").same_as(&t("http://h:1/api/")));
        assert!(t("http://h:80").same_as(&t("http://h/")));
        assert!(!t("http://h:1/api").same_as(&t("http://h:1/")));
        assert!(!t("http://h:1").same_as(&t("https://h:1")));
    }

    #[test]
    fn only_http_urls_are_targets() {
        assert!(TargetUrl::new(&"ftp://h/x".parse().unwrap()).is_err());
    }
}
