//! Where requests go is never a surprise: a scenario's `base_url` is
//! honoured (the built-in reference API starts only when nothing names a
//! target), `--target` overrides it, scenarios naming different targets are
//! refused, every output mode names the target and where it came from, and
//! a target's path prefix is joined once for steps, logins, isolation
//! probes and `--wait-healthy`'s poll. The servers are small wiremock APIs,
//! not the reference target, which keep every request they received.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::{MockApi, convoy_from_root, lossy, write};
use serde_json::Value;
use wiremock::matchers::{header_exists, method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

/// A small API on loopback, with a runtime of its own.
struct Api(MockApi);

impl Api {
    /// An API that answers `GET {prefix}/health` with 200, and nothing else
    /// (wiremock answers 404 to anything unmatched).
    fn health_only(prefix: &str) -> Api {
        let api = MockApi::start();
        api.mount(
            Mock::given(method("GET"))
                .and(path(format!("{prefix}/health")))
                .respond_with(
                    ResponseTemplate::new(200)
                        .insert_header("x-request-id", "r-1")
                        .set_body_string(r#"{"status":"ok"}"#),
                ),
        );
        Api(api)
    }

    /// An API shaped like the reference target's login and orders, served
    /// only under `/api`: `GET /api/health`, `POST /api/auth/login` (a
    /// token), `GET /api/orders` (200 with a token, 401 without), `POST
    /// /api/orders` (201 with an id); anything else, `/api/api/...`
    /// included, is 404.
    fn under_api() -> Api {
        let api = Api::health_only("/api");
        for mock in [
            Mock::given(method("POST"))
                .and(path("/api/auth/login"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_string(r#"{"token":"tok-under-api"}"#),
                ),
            Mock::given(method("GET"))
                .and(path("/api/orders"))
                .and(header_exists("authorization"))
                .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"orders":[]}"#))
                .with_priority(1),
            Mock::given(method("GET"))
                .and(path("/api/orders"))
                .respond_with(ResponseTemplate::new(401))
                .with_priority(2),
            Mock::given(method("POST"))
                .and(path("/api/orders"))
                .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"id":"o-1"}"#)),
            // Another tenant's order: refused.
            Mock::given(path_regex("^/api/orders/o-1(/.*)?$"))
                .respond_with(ResponseTemplate::new(404)),
        ] {
            api.0.mount(mock);
        }
        api
    }

    fn uri(&self) -> String {
        self.0.uri()
    }

    /// `METHOD path` of every request received, in order.
    fn received(&self) -> Vec<String> {
        self.0
            .received()
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect()
    }
}

fn health_scenario(dir: &Path, name: &str, base_url: Option<&str>) -> PathBuf {
    let base = base_url.map_or(String::new(), |u| format!("base_url = \"{u}\"\n"));
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\n{base}\n[[step]]\nname = \"health of {name}\"\npath = \"/health\"\nstatus = 200\n"
        ),
    )
}

fn json_report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", lossy(&out.stdout), lossy(&out.stderr)))
}

#[test]
fn a_scenarios_base_url_is_honoured_and_named_in_every_mode() {
    let api = Api::health_only("");
    let dir = tempfile::tempdir().unwrap();
    let file = health_scenario(dir.path(), "mine", Some(&api.uri()));
    let file = file.to_str().unwrap();
    for command in [
        &["smoke", file, "--no-reports", "--json"][..],
        &["run", file, "-p", "smoke", "--no-reports", "--json"][..],
    ] {
        let before = api.received().len();
        let out = convoy_from_root(command);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command:?}: {}",
            lossy(&out.stderr)
        );
        let r = json_report(&out);
        // The small server, not the built-in API, got the request...
        assert_eq!(api.received().len(), before + 1, "{command:?}");
        assert_eq!(api.received().last().unwrap(), "GET /health");
        // ... and the report says so.
        assert_eq!(r["target"], format!("{}/", api.uri()), "{command:?}");
        assert_eq!(r["target_source"], "base_url", "{command:?}");
    }
    // -q: the header of the summary names it, with where it came from.
    let out = convoy_from_root(&["smoke", file, "--no-reports", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    let head = lossy(&out.stdout).lines().next().unwrap_or("").to_string();
    assert!(
        head.starts_with(&format!(
            "convoy smoke · {}/ (the scenarios' base_url)",
            api.uri()
        )),
        "{head}"
    );
    assert!(
        !lossy(&out.stdout).contains("built-in"),
        "{}",
        lossy(&out.stdout)
    );
}

#[test]
fn target_overrides_base_url_and_says_so() {
    let named = Api::health_only("");
    let flag = Api::health_only("");
    let dir = tempfile::tempdir().unwrap();
    let file = health_scenario(dir.path(), "mine", Some(&named.uri()));
    let out = convoy_from_root(&[
        "smoke",
        file.to_str().unwrap(),
        "--no-reports",
        "--target",
        &flag.uri(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    assert_eq!(flag.received(), ["GET /health"]);
    assert!(named.received().is_empty(), "{:?}", named.received());
    assert!(
        lossy(&out.stderr).contains("overrides the base_url"),
        "{}",
        lossy(&out.stderr)
    );
    let head = lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("convoy smoke"))
        .unwrap_or("")
        .to_string();
    assert!(
        head.contains(&format!("{}/ (from --target)", flag.uri())),
        "{head}"
    );
}

#[test]
fn scenarios_naming_different_targets_are_refused_before_any_request() {
    let a = Api::health_only("");
    let b = Api::health_only("");
    let dir = tempfile::tempdir().unwrap();
    let fa = health_scenario(dir.path(), "a", Some(&a.uri()));
    let fb = health_scenario(dir.path(), "b", Some(&b.uri()));
    let none = health_scenario(dir.path(), "c", None);
    for (x, y) in [(&fa, &fb), (&fa, &none)] {
        for command in ["smoke", "run"] {
            let out = convoy_from_root(&[
                command,
                x.to_str().unwrap(),
                y.to_str().unwrap(),
                "--no-reports",
            ]);
            assert_eq!(out.status.code(), Some(3), "{}", lossy(&out.stderr));
            let err = lossy(&out.stderr);
            assert!(err.contains("different targets"), "{err}");
            assert!(err.contains("scenario \"a\""), "{err}");
        }
    }
    assert!(a.received().is_empty() && b.received().is_empty());
    // Same base_url (a trailing slash aside): one target, fine.
    let fa2 = health_scenario(dir.path(), "a2", Some(&format!("{}/", a.uri())));
    let out = convoy_from_root(&[
        "smoke",
        fa.to_str().unwrap(),
        fa2.to_str().unwrap(),
        "--no-reports",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    assert_eq!(a.received().len(), 2);
}

#[test]
fn the_built_in_api_is_named_as_such_in_every_mode() {
    let out = convoy_from_root(&["smoke", "health", "--no-reports", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    let r = json_report(&out);
    assert_eq!(r["target_source"], "builtin");
    // --json and -q print no notice on stderr; the report and the header
    // say it.
    assert!(
        !lossy(&out.stderr).contains("built-in"),
        "{}",
        lossy(&out.stderr)
    );
    let out = convoy_from_root(&["run", "health", "-p", "smoke", "--no-reports", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    let head = lossy(&out.stdout).lines().next().unwrap_or("").to_string();
    assert!(
        head.starts_with("convoy run · http://127.0.0.1:")
            && head.contains("(the built-in reference API)"),
        "{head}"
    );
}

#[test]
fn a_path_prefix_is_joined_once_for_steps_logins_probes_and_the_health_poll() {
    let api = Api::under_api();
    let dir = tempfile::tempdir().unwrap();
    // Written relative to the base path: login, a step, an isolation probe.
    let relative = write(
        dir.path(),
        "relative.toml",
        r#"name = "relative"

[auth]
path = "/auth/login"
body = { email = "{{ email }}", password = "{{ password }}" }
token = "/token"

[identities.admin]
email = "admin@example.test"
password = "pw-relative"

[identities.other]
email = "other@example.test"
password = "pw-other"

[[step]]
name = "create"
as = "admin"
method = "POST"
path = "/orders"
json = { reference = "r" }
status = 201
capture = { order_id = "/id" }

[[step]]
name = "other tenant probes"

[step.isolation]
as = "other"
resource = "/orders/{{ order_id }}"
routes = ["GET", "POST /accept"]
expect = [403, 404]
markers = ["{{ order_id }}"]
"#,
    );
    let target = format!("{}/api", api.uri());
    let out = convoy_from_root(&[
        "smoke",
        // Written with full paths, as the built-ins are.
        "health",
        "login",
        relative.to_str().unwrap(),
        "--target",
        &target,
        "--wait-healthy",
        "10s",
        "--no-reports",
    ]);
    let received = api.received();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{received:#?}",
        lossy(&out.stdout),
        lossy(&out.stderr)
    );
    assert!(
        received
            .iter()
            .all(|r| r.contains(" /api/") && !r.contains("/api/api")),
        "{received:#?}"
    );
    for expected in [
        // The --wait-healthy poll, then the health journey.
        "GET /api/health",
        // The built-in login scenario's `/api/auth/login` and `/api/orders`.
        "POST /api/auth/login",
        "GET /api/orders",
        // The relative scenario's `/orders` and its probes.
        "POST /api/orders",
        "GET /api/orders/o-1",
        "POST /api/orders/o-1/accept",
    ] {
        assert!(
            received.iter().any(|r| r == expected),
            "{expected} not in {received:#?}"
        );
    }
    // The poll and the health journey: two health requests.
    assert_eq!(
        received.iter().filter(|r| *r == "GET /api/health").count(),
        2,
        "{received:#?}"
    );
}

#[test]
fn an_absolute_url_on_another_host_is_never_sent() {
    let api = Api::health_only("");
    let other = Api::health_only("");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "away.toml",
        &format!(
            "name = \"away\"\n\n[[step]]\nname = \"on the target\"\npath = \"{}/health\"\nstatus = 200\n\n[[step]]\nname = \"elsewhere\"\npath = \"{}/health\"\nstatus = 200\n",
            api.uri(),
            other.uri()
        ),
    );
    let out = convoy_from_root(&[
        "smoke",
        file.to_str().unwrap(),
        "--target",
        &api.uri(),
        "--no-reports",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", lossy(&out.stderr));
    assert_eq!(api.received(), ["GET /health"]);
    assert!(other.received().is_empty(), "{:?}", other.received());
    assert!(
        lossy(&out.stdout).contains("is not on the target"),
        "{}",
        lossy(&out.stdout)
    );
}
