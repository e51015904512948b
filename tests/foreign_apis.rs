//! APIs shaped unlike the reference target ([`foreign_support::Depot`]):
//! the tenant in a header or in the path; a login with a nested token, an
//! API key, a session cookie, OAuth2 client credentials, and tokens that
//! expire after a few uses. On each, one folder (a `suite.toml` stating
//! the auth and identities once, a scenario with a replay and its verify,
//! a PUT transition and an isolation probe) must pass on the healthy API;
//! the identity's headers and variables must reach every kind of request;
//! an expiring token must be renewed and counted without failing the
//! journey; a planted cross-tenant leak must count a violation; and no
//! secret of any auth kind may reach an artifact or the terminal, though
//! the server echoes every credential it is given.

mod cli_support;
mod engine_support;
mod foreign_support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use cli_support::{convoy_with_env, files_under, outputs};
use convoy::engine::RunResult;
use convoy::metrics::Violation;
use convoy::scenario::parse::{self, Env};
use engine_support::{failed_checks, run_one_user};
use foreign_support::{Auth, Depot, Tenancy, USERS};

/// The environment the scenarios read their secrets from.
fn env_vars() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (tenant, _, pass, key, _, secret) in USERS {
        let t = tenant.to_uppercase();
        out.push((format!("DEPOT_{t}_PASS"), pass.to_string()));
        out.push((format!("DEPOT_{t}_KEY"), key.to_string()));
        out.push((format!("DEPOT_{t}_SECRET"), secret.to_string()));
    }
    out
}

struct TestEnv;
impl Env for TestEnv {
    fn get(&self, name: &str) -> Option<String> {
        env_vars()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// The suite file of a folder testing Depot with `auth`.
fn suite(auth: Auth) -> String {
    let auth_table = match auth {
        Auth::Login | Auth::Expiring => {
            "[auth]\npath = \"/v2/session\"\nbody = { user = \"{{ user }}\", pass = \"{{ pass }}\" }\ntoken = \"/data/access\"\n"
        }
        Auth::ApiKey => "[auth]\nkind = \"token\"\nheader = \"X-Api-Key\"\nscheme = \"\"\n",
        Auth::Cookie => {
            "[auth]\nkind = \"cookie\"\npath = \"/session\"\nbody = { user = \"{{ user }}\", pass = \"{{ pass }}\" }\ncookie = \"depot_sid\"\n"
        }
        Auth::OAuth2 => {
            "[auth]\nkind = \"oauth2\"\ntoken_url = \"/oauth/token\"\nscope = \"orders:write\"\n"
        }
    };
    let mut out = String::from(auth_table);
    out.push_str(
        "\n[defaults]\nheaders = { \"X-Client\" = \"convoy-tests\", \"X-Acting-As\" = \"{{ tenant }}\" }\n",
    );
    for (tenant, user, _, _, client, _) in USERS {
        let t = tenant.to_uppercase();
        // A `token` field is the identity's credential whatever the kind:
        // only the API key shape has one.
        let key = if auth == Auth::ApiKey {
            format!("token = \"{{{{ env.DEPOT_{t}_KEY }}}}\"\n")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n[identities.{tenant}]\ntenant = \"{tenant}\"\nuser = \"{user}\"\npass = \"{{{{ env.DEPOT_{t}_PASS }}}}\"\n\
             {key}client_id = \"{client}\"\nclient_secret = \"{{{{ env.DEPOT_{t}_SECRET }}}}\"\n\
             headers = {{ \"X-Tenant-Id\" = \"{{{{ tenant }}}}\" }}\n"
        ));
    }
    out
}

/// The journey: create (replayed, verified), a PUT transition, another
/// tenant's probe, and a read back.
fn journey(tenancy: Tenancy) -> String {
    let p = match tenancy {
        Tenancy::Header => "",
        Tenancy::Path => "/tenants/{{ tenant }}",
    };
    format!(
        r#"name = "depot-orders"

[[step]]
name = "create order"
as = "acme"
method = "POST"
path = "{p}/orders"
let = {{ reference = "REF-{{{{ uuid }}}}", key = "{{{{ uuid }}}}" }}
headers = {{ "Idempotency-Key" = "{{{{ key }}}}" }}
json = {{ reference = "{{{{ reference }}}}", for = "{{{{ tenant }}}}" }}
status = 202
capture = {{ order_id = "/order/id" }}

[step.replay]
times = 3
id = "/order/id"
status = [202]
verify = {{ path = "{p}/orders", query = {{ reference = "{{{{ reference }}}}" }}, checks = [{{ json = "/count", equals = 1 }}] }}

[[step]]
name = "pick"
as = "acme"
method = "PUT"
path = "{p}/orders/{{{{ order_id }}}}/status"
json = {{ status = "picked" }}
status = 200
checks = [{{ json = "/order/status", equals = "picked" }}]

[[step]]
name = "globex probes"

[step.isolation]
as = "globex"
resource = "{p}/orders/{{{{ order_id }}}}"
routes = ["GET", "PUT /status"]
markers = ["{{{{ reference }}}}"]
body = {{ status = "stolen" }}

[[step]]
name = "read back"
as = "acme"
path = "{p}/orders/{{{{ order_id }}}}"
status = 200
checks = [{{ json = "/order/status", equals = "picked" }}]
"#
    )
}

/// A folder holding the suite, the journey and a profiles file (which
/// must be left out).
fn folder(auth: Auth, tenancy: Tenancy) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.toml"), suite(auth)).unwrap();
    std::fs::write(dir.path().join("orders.toml"), journey(tenancy)).unwrap();
    std::fs::write(
        dir.path().join("profiles.toml"),
        "[profile.nightly]\nusers = 2\niterations = 3\n",
    )
    .unwrap();
    dir
}

fn load(dir: &Path) -> convoy::scenario::Scenario {
    let path = dir.join("orders.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let suite_path = dir.join("suite.toml");
    let suite = std::fs::read_to_string(&suite_path).unwrap();
    parse::parse_in_suite(&path, &text, Some((&suite_path, &suite)), &TestEnv)
        .unwrap_or_else(|d| panic!("{d}"))
}

fn run(depot: &Depot, dir: &Path, iterations: u64) -> RunResult {
    run_one_user(&depot.url(), load(dir), iterations)
}

const SHAPES: &[(Auth, Tenancy)] = &[
    (Auth::Login, Tenancy::Header),
    (Auth::Login, Tenancy::Path),
    (Auth::ApiKey, Tenancy::Header),
    (Auth::Cookie, Tenancy::Path),
    (Auth::OAuth2, Tenancy::Header),
    (Auth::Expiring, Tenancy::Path),
];

#[test]
fn journeys_pass_on_every_healthy_shape() {
    for &(auth, tenancy) in SHAPES {
        let depot = Depot::start(auth, tenancy);
        let dir = folder(auth, tenancy);
        let r = run(&depot, dir.path(), 3);
        let shape = format!("{auth:?}/{tenancy:?}");
        assert_eq!(r.check_failures(), 0, "{shape}: {:#?}", failed_checks(&r));
        assert_eq!(
            r.violations[&Violation::TenantIsolationViolations],
            0,
            "{shape}"
        );
        assert_eq!(
            r.violations[&Violation::IdempotencyViolations],
            0,
            "{shape}"
        );
        assert_eq!(r.overall().errors, 0, "{shape}: {:#?}", failed_checks(&r));
        assert!(r.iterations == 3, "{shape}");
    }
}

/// Which kind of request a request the server saw was.
fn kind_of(s: &foreign_support::Seen) -> &'static str {
    let path = s.uri.split('?').next().unwrap();
    match (s.method.as_str(), path) {
        (_, "/v2/session" | "/session" | "/oauth/token") => "login",
        ("GET", p) if p.ends_with("/orders") => "verify",
        ("POST", _) => "replay",
        ("PUT", _) if s.headers.get("x-tenant-id").map(String::as_str) == Some("globex") => "probe",
        ("GET", _) if s.headers.get("x-tenant-id").map(String::as_str) == Some("globex") => "probe",
        _ => "step",
    }
}

#[test]
fn identity_headers_and_variables_reach_every_kind_of_request() {
    for &(auth, tenancy) in SHAPES {
        let depot = Depot::start(auth, tenancy);
        let dir = folder(auth, tenancy);
        let r = run(&depot, dir.path(), 1);
        let shape = format!("{auth:?}/{tenancy:?}");
        assert_eq!(r.check_failures(), 0, "{shape}: {:#?}", failed_checks(&r));
        let seen = depot.seen();
        let mut kinds = std::collections::BTreeSet::new();
        for s in &seen {
            let kind = kind_of(s);
            kinds.insert(kind);
            let tenant = s.headers.get("x-tenant-id").cloned().unwrap_or_default();
            assert!(
                tenant == "acme" || tenant == "globex",
                "{shape}: {kind} {} {} without its identity's header",
                s.method,
                s.uri
            );
            // The default header is rendered with the same identity.
            assert_eq!(
                s.headers.get("x-acting-as"),
                Some(&tenant),
                "{shape}: {kind} {}",
                s.uri
            );
            assert_eq!(
                s.headers.get("x-client").map(String::as_str),
                Some("convoy-tests")
            );
            if tenancy == Tenancy::Path && kind != "login" {
                assert!(
                    s.uri.starts_with(&format!("/tenants/{tenant}/")),
                    "{shape}: {kind} {} is not made with its identity's {{{{ tenant }}}}",
                    s.uri
                );
            }
        }
        let expected: &[&str] = if matches!(auth, Auth::ApiKey) {
            &["probe", "replay", "step", "verify"]
        } else {
            &["login", "probe", "replay", "step", "verify"]
        };
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            expected,
            "{shape}: {seen:#?}"
        );
    }
}

#[test]
fn an_expiring_token_is_renewed_and_counted_without_failing_the_journey() {
    let depot = Depot::start(Auth::Expiring, Tenancy::Header);
    let dir = folder(Auth::Expiring, Tenancy::Header);
    let r = run(&depot, dir.path(), 4);
    assert_eq!(r.check_failures(), 0, "{:#?}", failed_checks(&r));
    assert_eq!(r.overall().errors, 0, "a 401 that renews is no error");
    assert!(r.auth_renewals >= 2, "renewals: {}", r.auth_renewals);
    // Each renewal is one more login beyond each identity's first.
    let logins = depot
        .seen()
        .iter()
        .filter(|s| s.uri == "/v2/session")
        .count() as u64;
    assert_eq!(logins, 2 + r.auth_renewals);
    // The same journey on tokens that do not expire renews nothing.
    let fresh = Depot::start(Auth::Login, Tenancy::Header);
    assert_eq!(run(&fresh, dir.path(), 4).auth_renewals, 0);
}

#[test]
fn a_second_401_after_renewal_fails_the_step() {
    let depot = Depot::start(Auth::Login, Tenancy::Header);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.toml"), suite(Auth::Login)).unwrap();
    // `/denied` answers 401 whatever the token: renewed once, then the
    // step fails as any other.
    std::fs::write(
        dir.path().join("orders.toml"),
        "[[step]]\nname = \"denied\"\nas = \"acme\"\npath = \"/denied\"\n",
    )
    .unwrap();
    let r = run(&depot, dir.path(), 1);
    assert_eq!(
        r.check_failures(),
        2,
        "status and journey: {:#?}",
        failed_checks(&r)
    );
    assert_eq!(r.auth_renewals, 1);
    let seen = depot.seen();
    assert_eq!(seen.iter().filter(|s| s.uri == "/v2/session").count(), 2);
    assert_eq!(seen.iter().filter(|s| s.uri == "/denied").count(), 2);
    // The second 401 is the step's error; the first, which renewed, is not.
    assert_eq!(r.overall().errors, 1);
}

#[test]
fn a_planted_cross_tenant_leak_is_a_violation_on_every_tenancy() {
    for tenancy in [Tenancy::Header, Tenancy::Path] {
        let depot = Depot::start_with(Auth::Login, tenancy, true);
        let dir = folder(Auth::Login, tenancy);
        let r = run(&depot, dir.path(), 2);
        if tenancy == Tenancy::Header {
            // The probe carries globex's own tenant header: the leak is
            // served and counted, not refused as a malformed request.
            assert_eq!(
                r.violations[&Violation::TenantIsolationViolations],
                2,
                "{tenancy:?}"
            );
        } else {
            // globex names its own tenant in the path: the leaking GET
            // serves acme's order there too.
            assert_eq!(
                r.violations[&Violation::TenantIsolationViolations],
                2,
                "{tenancy:?}"
            );
        }
    }
}

/// `convoy ARGS` in `cwd` with the Depot users' secrets in its
/// environment.
fn convoy(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    convoy_with_env(args, cwd, env_vars())
}

/// `convoy run DIR` and `convoy smoke DIR` on every auth kind, with a
/// journey that fails on purpose (so failure samples hold requests and
/// answers that echo the credential): no password, key, client secret,
/// token or cookie in any file or on the terminal.
#[test]
fn no_secret_of_any_auth_kind_reaches_an_artifact() {
    for &(auth, tenancy) in SHAPES {
        let depot = Depot::start(auth, tenancy);
        let dir = folder(auth, tenancy);
        let p = match tenancy {
            Tenancy::Header => "",
            Tenancy::Path => "/tenants/{{ tenant }}",
        };
        std::fs::write(
            dir.path().join("echo.toml"),
            format!("name = \"echo\"\n[[step]]\nname = \"echo\"\nas = \"acme\"\npath = \"{p}/orders\"\nquery = {{ reference = \"x\" }}\nchecks = [{{ json = \"/count\", equals = 99 }}, {{ header = \"x-echo-credential\", equals = \"nothing\" }}]\n"),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let shape = format!("{auth:?}/{tenancy:?}");
        let run_out = out.path().join("run");
        let ran = convoy(
            &[
                "run",
                dir.path().to_str().unwrap(),
                "--target",
                &depot.url(),
                "--profile",
                "smoke",
                "--out",
                run_out.to_str().unwrap(),
            ],
            out.path(),
        );
        assert_eq!(
            ran.status.code(),
            Some(2),
            "{shape}: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
        let smoke_out = out.path().join("smoke");
        let junit = out.path().join("junit.xml");
        let smoked = convoy(
            &[
                "smoke",
                &format!("{}/", dir.path().display()),
                "--target",
                &depot.url(),
                "--out",
                smoke_out.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ],
            out.path(),
        );
        assert_eq!(
            smoked.status.code(),
            Some(2),
            "{shape}: {}",
            String::from_utf8_lossy(&smoked.stderr)
        );
        let mut artifacts = files_under(out.path());
        artifacts.extend(outputs("run", &ran));
        artifacts.extend(outputs("smoke", &smoked));
        let report = artifacts
            .iter()
            .find(|(n, _)| n.ends_with("run/report.json"))
            .expect("report.json");
        assert!(
            report.1.contains("seen_credential") || report.1.contains("x-echo-credential"),
            "{shape}: the failure samples show the echo"
        );
        let mut needles: Vec<String> = depot.issued();
        for (_, _, pass, key, _, secret) in USERS {
            needles.extend([pass.to_string(), key.to_string(), secret.to_string()]);
        }
        assert!(!needles.is_empty());
        for (name, text) in &artifacts {
            for n in &needles {
                assert!(
                    !text.contains(n.as_str()),
                    "{shape}: {name} holds a secret ({} chars)",
                    n.len()
                );
            }
        }
        // Both commands ran the folder's two scenarios, not its profiles
        // or suite file.
        let stdout = String::from_utf8_lossy(&smoked.stdout);
        assert!(
            stdout.contains("depot-orders") && stdout.contains("echo"),
            "{shape}: {stdout}"
        );
    }
}

/// The guide's example folder (docs/testing-your-own-api/), run with the
/// guide's commands: green on a healthy Depot, red on one that leaks.
#[test]
fn the_guides_folder_is_green_on_a_healthy_api_and_red_on_a_leaking_one() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/testing-your-own-api");
    let folder_arg = format!("{}/", folder.display());
    let out = tempfile::tempdir().unwrap();
    let healthy = Depot::start(Auth::ApiKey, Tenancy::Header);
    let o = convoy(
        &[
            "smoke",
            &folder_arg,
            "--target",
            &healthy.url(),
            "--out",
            out.path().join("a").to_str().unwrap(),
        ],
        out.path(),
    );
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let o = convoy(
        &[
            "run",
            &folder_arg,
            "--profiles",
            folder.join("profiles.toml").to_str().unwrap(),
            "--profile",
            "nightly",
            "--target",
            &healthy.url(),
            "--out",
            out.path().join("b").to_str().unwrap(),
            "-q",
        ],
        out.path(),
    );
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let leaking = Depot::start_with(Auth::ApiKey, Tenancy::Header, true);
    let o = convoy(
        &[
            "smoke",
            &folder_arg,
            "--target",
            &leaking.url(),
            "--out",
            out.path().join("c").to_str().unwrap(),
        ],
        out.path(),
    );
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("tenant_isolation_violations"), "{text}");
}
