//! Guards that keep convoy from harming what it was not pointed at on
//! purpose: a load heavier than smoke only goes to loopback or to hosts the
//! user named with `--allow-host`, and a run only writes inside its output
//! directory.
//!
//! What counts as smoke is measured, not named: a plan is smoke when an
//! upper bound on what it can send ([`LoadBound`]: its iterations times the
//! most requests one iteration sends, logins, renewals, replays' copies,
//! isolation probes and verify requests included; its users times the most
//! requests one iteration has in flight; its users) stays within the smoke
//! allowance: at most [`SMOKE_MAX_REQUESTS`] (500) requests,
//! [`SMOKE_MAX_IN_FLIGHT`] (20) in flight at once, from
//! [`SMOKE_MAX_USERS`] (1) user. Every built-in scenario and every preset in
//! `scenarios/presets/` fits it, by `convoy smoke` or `convoy run -p smoke`,
//! so the post-deploy smoke gate works against any host: all the built-ins
//! together send at most 43 requests, 5 at once (the concurrent replay;
//! 9 by `convoy run -p smoke`, whose one user holds the four streams of the
//! realtime journeys beside it: a held stream counts as a request at once);
//! the largest preset (`logistik`) 21. A plan with no
//! finite bound (an open model, a duration, a custom journey in Rust) is
//! never smoke.
//!
//! Both checks are pure: they look at the URL and the path as written and
//! never resolve DNS or touch the file system, so they give the same answer
//! on every machine and can run before anything else does.
//!
//! Layering: a leaf; it imports no other module of the harness.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

/// The most requests a plan may send to a host that is neither loopback
/// nor allowed with `--allow-host`: a smoke test's worth. The largest
/// built-in scenario or preset journey sends well under a tenth of it.
pub const SMOKE_MAX_REQUESTS: u64 = 500;

/// The most requests a plan may have in flight at once against such a
/// host: a concurrent replay of up to this many copies.
pub const SMOKE_MAX_IN_FLIGHT: u64 = 20;

/// The most virtual users a plan may run against such a host: smoke is one
/// user going through the journeys, so `--profile light` (5 users × 10
/// iterations of `health`, 50 requests) is load however few its requests.
pub const SMOKE_MAX_USERS: u64 = 1;

/// An upper bound on what a plan can send to its target; `None` where the
/// plan has no finite bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadBound {
    /// The most requests, over the whole run.
    pub requests: Option<u64>,
    /// The most requests in flight at once.
    pub in_flight: Option<u64>,
    /// The most virtual users (or in-flight slots of an open model).
    pub users: Option<u64>,
}

impl LoadBound {
    /// True when the bound is within the smoke allowance.
    pub fn is_smoke(&self) -> bool {
        self.requests.is_some_and(|n| n <= SMOKE_MAX_REQUESTS)
            && self.in_flight.is_some_and(|n| n <= SMOKE_MAX_IN_FLIGHT)
            && self.users.is_some_and(|n| n <= SMOKE_MAX_USERS)
    }
}

impl std::fmt::Display for LoadBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.requests {
            Some(n) => write!(f, "up to {n} requests")?,
            None => write!(
                f,
                "an unbounded number of requests (an open model, a duration or a custom journey has no finite bound)"
            )?,
        }
        match self.in_flight {
            Some(n) => write!(f, ", {n} at once")?,
            None => write!(f, ", with no bound on how many at once")?,
        }
        match self.users {
            Some(1) => write!(f, ", from 1 user"),
            Some(n) => write!(f, ", from {n} users"),
            None => Ok(()),
        }
    }
}

/// Why a run may not go ahead, or a file may not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    /// A load heavier than smoke aimed at a host that is neither loopback
    /// nor on the allow list.
    #[error(
        "refusing to send a load heavier than smoke to {host}: only loopback hosts are allowed by default; if {host} is yours and may take this load, pass --allow-host {host}"
    )]
    HostNotAllowed {
        /// The host, as `--allow-host` takes it.
        host: String,
    },
    /// A plan whose bound exceeds the smoke allowance aimed at a host that
    /// is neither loopback nor on the allow list.
    #[error(
        "refusing to send {bound} to {host}: a host that is not loopback gets at most the smoke allowance of {max_requests} requests, {max_in_flight} at once, from {max_users} user; if {host} is yours and may take this load, pass --allow-host {host}",
        max_requests = SMOKE_MAX_REQUESTS,
        max_in_flight = SMOKE_MAX_IN_FLIGHT,
        max_users = SMOKE_MAX_USERS
    )]
    OverSmokeAllowance {
        /// The host, as `--allow-host` takes it.
        host: String,
        /// What the plan can send.
        bound: LoadBound,
    },
    /// The URL names no host at all, so it cannot be checked.
    #[error("the target URL {url} has no host")]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// An absolute path where a path inside the output directory belongs.
    #[error(
        "refusing to write {path}: it is absolute, and a run writes only inside its output directory {base}"
    )]
    AbsolutePath {
        /// The path as given.
        path: PathBuf,
        /// The output directory.
        base: PathBuf,
    },
    /// A path with a `..` component, which could leave the output directory.
    #[error(
        "refusing to write {path}: it contains `..`, and a run writes only inside its output directory {base}"
    )]
    ParentComponent {
        /// The path as given.
        path: PathBuf,
        /// The output directory.
        base: PathBuf,
    },
    /// A path that names the output directory itself, not a file in it.
    #[error("refusing to write {path}: it names no file inside the output directory {base}")]
    EmptyPath {
        /// The path as given.
        path: PathBuf,
        /// The output directory.
        base: PathBuf,
    },
}

/// The host of `url` as the user would type it: lower case, IPv6 without
/// brackets, no trailing dot.
fn host_of(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Normalises an `--allow-host` value the way [`host_of`] normalises URLs,
/// forgiving a pasted scheme, port or path (`https://api.example.com:8443/`
/// allows `api.example.com`).
fn normalise_allowed(entry: &str) -> String {
    let entry = entry.trim();
    let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let entry = entry.split(['/', '?', '#']).next().unwrap_or(entry);
    let host = if let Some(rest) = entry.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else if entry.matches(':').count() == 1 {
        // host:port; a bare IPv6 address has several colons and no port.
        entry.split(':').next().unwrap_or(entry)
    } else {
        entry
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// True when `host` (as returned by [`host_of`]) is loopback: `localhost`,
/// 127.0.0.0/8, `::1`, or an IPv4-mapped loopback address.
fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// True when `url` points at this machine's loopback interface, judged from
/// the URL alone (`localhost` is taken at its word; no DNS is consulted).
pub fn is_loopback(url: &url::Url) -> bool {
    host_of(url).is_some_and(|h| is_loopback_host(&h))
}

/// The allow-list rule: a smoke run may go anywhere; a load heavier than
/// smoke goes only to loopback or to a host named in `allowed_hosts` (the
/// values of repeated `--allow-host HOST` flags, compared without case,
/// scheme, port or path).
pub fn check_target(
    url: &url::Url,
    heavier_than_smoke: bool,
    allowed_hosts: &[String],
) -> Result<(), SafetyError> {
    if !heavier_than_smoke {
        return Ok(());
    }
    let host = host_of(url).ok_or_else(|| SafetyError::NoHost {
        url: url.to_string(),
    })?;
    if is_loopback_host(&host) || allowed_hosts.iter().any(|a| normalise_allowed(a) == host) {
        Ok(())
    } else {
        Err(SafetyError::HostNotAllowed { host })
    }
}

/// The allow-list rule judged on what the plan can send: a plan whose
/// `bound` is within the smoke allowance may go anywhere; a heavier one (or
/// one with no finite bound) goes only to loopback or to a host named in
/// `allowed_hosts`, as for [`check_target`]. Nothing is resolved or sent.
pub fn check_load(
    url: &url::Url,
    bound: &LoadBound,
    allowed_hosts: &[String],
) -> Result<(), SafetyError> {
    match check_target(url, !bound.is_smoke(), allowed_hosts) {
        Err(SafetyError::HostNotAllowed { host }) => Err(SafetyError::OverSmokeAllowance {
            host,
            bound: *bound,
        }),
        other => other,
    }
}

/// Joins `relative` onto the output directory `base`, refusing anything that
/// could land outside it: absolute paths (and, on Windows, drive prefixes),
/// and any `..` component, even one that would come back inside, because a
/// symbolic link on the way could make `..` leave `base`. `.` components are
/// dropped. The check is lexical: it does not follow links already inside
/// `base`.
pub fn contained_path(base: &Path, relative: &Path) -> Result<PathBuf, SafetyError> {
    let mut out = base.to_path_buf();
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(SafetyError::AbsolutePath {
                    path: relative.to_path_buf(),
                    base: base.to_path_buf(),
                });
            }
            Component::ParentDir => {
                return Err(SafetyError::ParentComponent {
                    path: relative.to_path_buf(),
                    base: base.to_path_buf(),
                });
            }
            Component::CurDir => {}
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
        }
    }
    if depth == 0 {
        return Err(SafetyError::EmptyPath {
            path: relative.to_path_buf(),
            base: base.to_path_buf(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        s.parse().unwrap()
    }

    fn allow(hosts: &[&str]) -> Vec<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn loopback_is_always_allowed() {
        for u in [
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://localhost:3000/api",
            "http://LOCALHOST/",
            "http://localhost./",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            // The URL parser reads these as 127.0.0.1, and so does the
            // connection: they are loopback whatever they look like.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert_eq!(check_target(&url(u), true, &[]), Ok(()), "{u}");
            assert!(is_loopback(&url(u)), "{u}");
        }
    }

    #[test]
    fn smoke_may_go_anywhere() {
        assert_eq!(
            check_target(&url("https://api.example.com/"), false, &[]),
            Ok(())
        );
    }

    #[test]
    fn other_hosts_need_the_flag_and_the_error_names_it() {
        let e = check_target(&url("https://api.example.com/orders"), true, &[]).unwrap_err();
        assert_eq!(
            e,
            SafetyError::HostNotAllowed {
                host: "api.example.com".into()
            }
        );
        assert!(
            e.to_string().contains("--allow-host api.example.com"),
            "{e}"
        );
        let e = check_target(&url("http://[2001:db8::1]:8080/"), true, &[]).unwrap_err();
        assert!(e.to_string().contains("--allow-host 2001:db8::1"), "{e}");
    }

    #[test]
    fn near_loopback_addresses_are_not_loopback() {
        for u in [
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://localhost.example.com/",
            "http://mylocalhost/",
            "http://api.localhost/",
            // Userinfo is not the host: this goes to evil.example.
            "http://127.0.0.1@evil.example/",
        ] {
            assert!(check_target(&url(u), true, &[]).is_err(), "{u}");
            assert!(!is_loopback(&url(u)), "{u}");
        }
    }

    fn bound(requests: Option<u64>, in_flight: Option<u64>) -> LoadBound {
        LoadBound {
            requests,
            in_flight,
            users: Some(1),
        }
    }

    #[test]
    fn a_plan_within_the_smoke_allowance_goes_anywhere() {
        for b in [
            bound(Some(1), Some(1)),
            bound(Some(SMOKE_MAX_REQUESTS), Some(SMOKE_MAX_IN_FLIGHT)),
        ] {
            assert!(b.is_smoke(), "{b}");
            assert_eq!(
                check_load(&url("https://api.example.com/"), &b, &[]),
                Ok(())
            );
        }
    }

    #[test]
    fn a_plan_over_the_allowance_is_refused_naming_its_bound_the_allowance_and_the_flag() {
        let target = url("https://not-allowed.invalid/");
        for b in [
            bound(Some(SMOKE_MAX_REQUESTS + 1), Some(1)),
            bound(Some(1), Some(SMOKE_MAX_IN_FLIGHT + 1)),
            bound(Some(100_000), Some(1)),
            bound(None, Some(1)),
            bound(Some(1), None),
            LoadBound {
                users: Some(5),
                ..bound(Some(50), Some(5))
            },
        ] {
            assert!(!b.is_smoke(), "{b}");
            let e = check_load(&target, &b, &[]).unwrap_err();
            assert_eq!(
                e,
                SafetyError::OverSmokeAllowance {
                    host: "not-allowed.invalid".into(),
                    bound: b
                }
            );
            let text = e.to_string();
            assert!(text.contains(&b.to_string()), "{text}");
            assert!(
                text.contains(&format!(
                    "{SMOKE_MAX_REQUESTS} requests, {SMOKE_MAX_IN_FLIGHT} at once, from 1 user"
                )),
                "{text}"
            );
            assert!(text.contains("--allow-host not-allowed.invalid"), "{text}");
            // Loopback and allowed hosts take it.
            assert_eq!(check_load(&url("http://127.0.0.1:1/"), &b, &[]), Ok(()));
            assert_eq!(
                check_load(&target, &b, &allow(&["not-allowed.invalid"])),
                Ok(())
            );
        }
        let e = check_load(&target, &bound(Some(100_000), Some(1000)), &[]).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "refusing to send up to 100000 requests, 1000 at once, from 1 user to"
            ),
            "{e}"
        );
    }

    #[test]
    fn allowed_hosts_match_without_case_scheme_port_or_path() {
        let target = url("https://API.Example.com:8443/v1/orders");
        for entry in [
            "api.example.com",
            "API.EXAMPLE.COM",
            "api.example.com.",
            "api.example.com:8443",
            "https://api.example.com/",
            " api.example.com ",
        ] {
            assert_eq!(
                check_target(&target, true, &allow(&[entry])),
                Ok(()),
                "{entry}"
            );
        }
        let v6 = url("http://[2001:db8::1]:8080/");
        for entry in ["2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:8080"] {
            assert_eq!(check_target(&v6, true, &allow(&[entry])), Ok(()), "{entry}");
        }
    }

    #[test]
    fn allowing_one_host_does_not_allow_its_neighbours() {
        let allowed = allow(&["api.example.com"]);
        for u in [
            "https://example.com/",
            "https://evil-api.example.com/",
            "https://api.example.com.evil.test/",
        ] {
            assert!(check_target(&url(u), true, &allowed).is_err(), "{u}");
        }
    }

    #[test]
    fn paths_stay_inside_the_output_directory() {
        let base = Path::new("/runs/out");
        assert_eq!(
            contained_path(base, Path::new("report.json")),
            Ok(PathBuf::from("/runs/out/report.json"))
        );
        assert_eq!(
            contained_path(base, Path::new("./samples/1.json")),
            Ok(PathBuf::from("/runs/out/samples/1.json"))
        );
    }

    #[test]
    fn escapes_are_refused() {
        let base = Path::new("out");
        for p in ["../report.json", "a/../../b", "a/../b", ".."] {
            assert!(
                matches!(
                    contained_path(base, Path::new(p)),
                    Err(SafetyError::ParentComponent { .. })
                ),
                "{p}"
            );
        }
        for p in ["/etc/passwd", "/"] {
            assert!(
                matches!(
                    contained_path(base, Path::new(p)),
                    Err(SafetyError::AbsolutePath { .. })
                ),
                "{p}"
            );
        }
        for p in ["", ".", "./."] {
            assert!(
                matches!(
                    contained_path(base, Path::new(p)),
                    Err(SafetyError::EmptyPath { .. })
                ),
                "{p:?}"
            );
        }
        let e = contained_path(base, Path::new("../x")).unwrap_err();
        assert!(e.to_string().contains("`..`"), "{e}");
    }
}
