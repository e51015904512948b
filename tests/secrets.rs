//! Secrets given to convoy never come out of it. A journey with known
//! secrets (a login password, a static bearer token, a `[vars]` value
//! declared in `secrets`, and the bearer tokens the target issues) runs
//! against the reference target and fails on purpose, so failure samples
//! are recorded; then every artifact is searched for every secret: the
//! terminal table, report.json, report.md, junit.xml, report.html, and what
//! the real binary prints and writes for `convoy run` and `convoy bench`.

mod cli_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cli_support::{convoy, files_under, free_port, outputs};
use convoy::engine::{self, EngineOptions, RunControl};
use convoy::plan::{ClosedModel, HttpOptions, LoadModel, Ramp};
use convoy::redact::{REDACTED, redact_url};
use convoy::report::{self, Report, RunMeta};
use convoy::scenario::{CustomRegistry, ScenarioWorkload, parse};
use convoy::target::{self, RunningTarget, TargetConfig};

/// The password of every seeded user of the reference target.
const PASSWORD: &str = "convoy-demo";
/// A `[vars]` value declared secret.
const VAR_SECRET: &str = "sk-live-7Hq2ZpXv9-var-secret";
/// A static bearer token of an identity that does not log in.
const STATIC_TOKEN: &str = "static-token-Qm4Lr8Wt2-robot";
/// The password of an identity whose login fails.
const WRONG_PASSWORD: &str = "hunter2-Wr0ng-Passw0rd";
/// Secrets handed to `convoy bench` on its command line.
const BENCH_BEARER: &str = "bench-bearer-Zx81Kq0-secret";
const BENCH_API_KEY: &str = "bench-api-key-Pp37Yv2-secret";
const BENCH_QUERY_TOKEN: &str = "bench-query-token-Tt55Ll9";
const BENCH_URL_PASSWORD: &str = "bench-url-pass-Uu91Ww3";

/// What every journey of the test shares: a declared secret, a login, and
/// identities holding a password, a wrong password and a static token.
fn preamble() -> String {
    format!(
        r#"description = "handles secrets and fails on purpose"
secrets = ["api_key"]

[vars]
api_key = "{VAR_SECRET}"

[auth]
path = "/api/auth/login"
body = {{ email = "{{{{ email }}}}", password = "{{{{ password }}}}" }}
token = "/token"

[identities.admin]
email = "admin@acme.test"
password = "{PASSWORD}"

[identities.intruder]
email = "admin@globex.test"
password = "{WRONG_PASSWORD}"

[identities.robot]
token = "{STATIC_TOKEN}"
"#
    )
}

/// Journeys that each handle secrets and fail on purpose, so each leaves
/// failure samples (a journey stops at its first failed step).
fn journeys() -> Vec<(&'static str, String)> {
    vec![
        (
            // The declared secret travels in a path, a query and headers;
            // the status and the check fail.
            "with-key",
            r#"
[[step]]
name = "orders with the key"
as = "admin"
path = "/api/orders/{{ api_key }}"
query = { api_key = "{{ api_key }}", note = "key {{ api_key }}" }
headers = { "X-Api-Key" = "{{ api_key }}", "X-Note" = "uses {{ api_key }}" }
status = 418
checks = [{ json = "/orders", equals = "{{ api_key }}" }]
"#
            .to_string(),
        ),
        (
            // A login by hand: the password is in the request body, the
            // token in the answer; the status is wrong on purpose.
            "by-hand",
            format!(
                r#"
[[step]]
name = "log in by hand"
method = "POST"
path = "/api/auth/login"
json = {{ email = "admin@acme.test", password = "{PASSWORD}" }}
status = 299
checks = [{{ json = "/token_type", equals = "Basic" }}]
"#
            ),
        ),
        (
            // The static token is sent and refused.
            "robot",
            r#"
[[step]]
name = "robot is refused"
as = "robot"
path = "/api/orders"
status = 200
"#
            .to_string(),
        ),
        (
            // A login that fails: the wrong password must not show.
            "intruder",
            r#"
[[step]]
name = "intruder logs in"
as = "intruder"
path = "/api/orders"
status = 200
"#
            .to_string(),
        ),
    ]
}

/// Writes the journeys into `dir` and returns their paths.
fn write_journeys(dir: &Path) -> Vec<PathBuf> {
    journeys()
        .into_iter()
        .map(|(name, steps)| {
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, format!("name = \"{name}\"\n{}{steps}", preamble())).unwrap();
            path
        })
        .collect()
}

/// One user running every journey twice.
fn twice_each() -> LoadModel {
    LoadModel::Closed(ClosedModel {
        users: Ramp::constant(1.0, Duration::ZERO),
        iterations_per_user: Some(2 * journeys().len() as u64),
        total_iterations: None,
        duration: None,
    })
}

/// POSTs JSON over a plain TCP connection and returns the response body.
fn post_json(base_url: &str, path: &str, body: &str) -> String {
    let url: url::Url = base_url.parse().unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    body.to_string()
}

/// Logs in as the seeded admin, as the journey does.
fn issued_token(t: &RunningTarget) -> String {
    let body = post_json(
        &t.base_url(),
        "/api/auth/login",
        &format!(r#"{{"email":"admin@acme.test","password":"{PASSWORD}"}}"#),
    );
    let start = body.find('{').expect("a JSON answer");
    let v: serde_json::Value = serde_json::from_str(&body[start..=body.rfind('}').unwrap()])
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    v["token"].as_str().expect("a token").to_string()
}

/// Every string that must never appear. Tokens carry their issue time, so
/// besides the one we obtain ourselves, any token of this target is caught
/// by its header segment followed by a dot (the start of every JWT).
fn needles(token: &str) -> Vec<(&'static str, String)> {
    let jwt_header = token.split('.').next().unwrap().to_string();
    vec![
        ("the login password", PASSWORD.to_string()),
        ("the [vars] secret", VAR_SECRET.to_string()),
        ("the static token", STATIC_TOKEN.to_string()),
        ("the wrong password", WRONG_PASSWORD.to_string()),
        ("the issued bearer token", token.to_string()),
        (
            "the signature of the issued token",
            token.rsplit('.').next().unwrap().to_string(),
        ),
        ("a token of this target", format!("{jwt_header}.")),
        ("the bench bearer token", BENCH_BEARER.to_string()),
        ("the bench API key", BENCH_API_KEY.to_string()),
        ("the bench query token", BENCH_QUERY_TOKEN.to_string()),
        ("the bench URL password", BENCH_URL_PASSWORD.to_string()),
    ]
}

/// Fails naming each secret found in each artifact.
fn assert_clean(artifacts: &[(String, String)], token: &str) {
    let mut leaks = Vec::new();
    for (name, text) in artifacts {
        for (what, needle) in needles(token) {
            if let Some(at) = text.find(&needle) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(60)
                    .map_or(0, |(i, _)| i);
                let to = (at + needle.len() + 40).min(text.len());
                let to = (to..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                leaks.push(format!("{name} contains {what}: …{}…", &text[from..to]));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

#[test]
fn no_artifact_of_a_failing_journey_holds_a_secret() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenarios = write_journeys(dir.path())
        .iter()
        .map(|p| parse::load_file(p).unwrap_or_else(|d| panic!("{d}")))
        .collect();
    let url: url::Url = t.base_url().parse().unwrap();
    let workload = ScenarioWorkload::new(
        scenarios,
        Some(&url),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .unwrap();
    let options = EngineOptions {
        workers: 1,
        graceful_stop: Duration::from_secs(10),
        ..EngineOptions::default()
    };
    let result = engine::run(
        &twice_each(),
        &options,
        Arc::new(workload),
        &RunControl::new(),
        |_| {},
    )
    .unwrap();
    let token = issued_token(&t);

    let mut meta = RunMeta::new("run", &redact_url(&url));
    meta.scenario = Some("secret-journey".into());
    meta.profile = Some("smoke".into());
    let mut report = Report::new(&result, meta);
    let gates: Vec<convoy::gate::Gate> = ["checks == 100%", "error_rate == 0%"]
        .iter()
        .map(|g| g.parse().unwrap())
        .collect();
    report.gates = convoy::gate::evaluate(&gates, &report, None);

    // The run failed where it should, so there is something to leak.
    assert!(report.check_failures() > 0, "no check failed");
    for step in ["orders with the key", "log in by hand", "robot is refused"] {
        assert!(
            report.failures.iter().any(|f| f.step == step),
            "no failure sample of {step:?}: {:#?}",
            report.failures
        );
    }
    let by_hand = report
        .failures
        .iter()
        .find(|f| f.step == "log in by hand")
        .expect("sampled above");
    assert!(
        by_hand
            .response
            .contains(&format!("\"token\":\"{REDACTED}\"")),
        "the login answer was sampled, its token redacted: {by_hand:#?}"
    );
    assert!(
        report.failures.iter().any(|f| f.request.contains(REDACTED)),
        "the samples show no redaction at all: {:#?}",
        report.failures
    );

    let out = dir.path().join("out");
    let written = report::artifacts::write_all(&report, &out).unwrap();
    assert!(written.len() >= 4, "{written:?}");
    let mut artifacts = files_under(&out);
    artifacts.extend([
        ("text::render".to_string(), report::text::render(&report)),
        ("json::render".to_string(), report::json::render(&report)),
        (
            "markdown::render".to_string(),
            report::markdown::render(&report),
        ),
        ("junit::render".to_string(), report::junit::render(&report)),
        ("html::render".to_string(), report::html::render(&report)),
        ("the report's Debug form".to_string(), format!("{report:?}")),
    ]);
    assert_clean(&artifacts, &token);
}

/// `convoy run JOURNEY --profile smoke`, once per journey (smoke runs one
/// iteration, so one journey per run).
#[test]
fn convoy_run_prints_and_writes_no_secret() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut artifacts = Vec::new();
    for journey in write_journeys(dir.path()) {
        let name = journey.file_stem().unwrap().to_string_lossy().into_owned();
        let out = dir.path().join(format!("out-{name}"));
        let o = convoy(
            &[
                "run",
                journey.to_str().unwrap(),
                "--target",
                &t.base_url(),
                "--profile",
                "smoke",
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
        );
        let printed = outputs(&format!("convoy run {name}"), &o);
        assert!(!o.status.success(), "{name} fails on purpose: {printed:?}");
        let report =
            report::artifacts::read_report(&out).unwrap_or_else(|e| panic!("{e}: {printed:?}"));
        assert!(
            !report.failures.is_empty(),
            "{name} recorded no failure sample"
        );
        artifacts.extend(printed);
        artifacts.extend(files_under(&out));
    }
    assert_clean(&artifacts, &issued_token(&t));
}

/// `convoy smoke JOURNEY... --junit FILE`: every journey once, the JUnit
/// file CI systems publish, and the reports.
#[test]
fn convoy_smoke_prints_and_writes_no_secret() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journeys = write_journeys(dir.path());
    let junit = dir.path().join("smoke-junit.xml");
    let out = dir.path().join("smoke-out");
    let mut args = vec!["smoke".to_string()];
    args.extend(journeys.iter().map(|p| p.display().to_string()));
    args.extend(
        [
            "--target",
            &t.base_url(),
            "--junit",
            junit.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let o = convoy(&args, dir.path());
    let mut artifacts = outputs("convoy smoke", &o);
    assert!(
        !o.status.success(),
        "the journeys fail on purpose: {artifacts:?}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("{e}: {artifacts:?}"));
    assert!(
        xml.contains("<failure"),
        "the JUnit file records the failures"
    );
    artifacts.push(("smoke --junit file".into(), xml));
    artifacts.extend(files_under(&out));
    assert_clean(&artifacts, &issued_token(&t));
}

#[test]
fn convoy_bench_prints_and_writes_no_secret() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let token = issued_token(&t);
    let dir = tempfile::tempdir().unwrap();
    let base: url::Url = t.base_url().parse().unwrap();
    let url = format!(
        "http://convoy:{BENCH_URL_PASSWORD}@127.0.0.1:{}/api/orders?access_token={BENCH_QUERY_TOKEN}&limit=1",
        base.port().unwrap()
    );
    let bearer = format!("Authorization: Bearer {BENCH_BEARER}");
    let api_key = format!("X-Api-Key: {BENCH_API_KEY}");
    let json_out = dir.path().join("bench.json");
    let o = convoy(
        &[
            "bench",
            &url,
            "-H",
            &bearer,
            "-H",
            &api_key,
            "-n",
            "5",
            "-c",
            "1",
            "--json",
            "-q",
            "-o",
            json_out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let mut artifacts = outputs("convoy bench", &o);
    assert!(o.status.success(), "{artifacts:?}");
    let report = report::json::parse(&artifacts[0].1).expect("bench --json prints a report");
    assert_eq!(report.overall.requests, 5, "{artifacts:?}");
    artifacts.extend(files_under(dir.path()));
    // The issued token was never given to bench; this also proves the
    // bearer header itself is what is checked above.
    assert_clean(&artifacts, &token);
}

#[test]
fn failing_convoy_bench_error_messages_hold_no_secret() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let token = issued_token(&t);
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bench fails before or while sending.
    let port = free_port();
    let url = format!(
        "http://convoy:{BENCH_URL_PASSWORD}@127.0.0.1:{port}/api/orders?token={BENCH_QUERY_TOKEN}"
    );
    let bearer = format!("Authorization: Bearer {BENCH_BEARER}");
    let o = convoy(
        &[
            "bench",
            &url,
            "-H",
            &bearer,
            "-n",
            "3",
            "-q",
            "--connect-timeout",
            "1s",
        ],
        dir.path(),
    );
    let artifacts = outputs("failing convoy bench", &o);
    let all: String = artifacts.iter().map(|(_, t)| t.as_str()).collect();
    assert!(!all.trim().is_empty(), "bench said nothing at all");
    assert_clean(&artifacts, &token);
}

/// Runs `journeys` (name, steps) once each against `t` and returns every
/// rendering of the report.
fn run_and_render(t: &RunningTarget, journeys: &[(&str, &str)]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = journeys
        .iter()
        .map(|(name, steps)| {
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, format!("name = \"{name}\"\n{}{steps}", preamble())).unwrap();
            parse::load_file(&path).unwrap_or_else(|d| panic!("{d}"))
        })
        .collect();
    let url: url::Url = t.base_url().parse().unwrap();
    let workload = ScenarioWorkload::new(
        scenarios,
        Some(&url),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .unwrap();
    let model = LoadModel::Closed(ClosedModel {
        users: Ramp::constant(1.0, Duration::ZERO),
        iterations_per_user: Some(journeys.len() as u64),
        total_iterations: None,
        duration: None,
    });
    let options = EngineOptions {
        workers: 1,
        ..EngineOptions::default()
    };
    let result = engine::run(
        &model,
        &options,
        Arc::new(workload),
        &RunControl::new(),
        |_| {},
    )
    .unwrap();
    let report = Report::new(&result, RunMeta::new("run", &redact_url(&url)));
    assert!(!report.failures.is_empty(), "nothing failed");
    let out = dir.path().join("out");
    report::artifacts::write_all(&report, &out).unwrap();
    let mut artifacts = files_under(&out);
    artifacts.push(("text::render".into(), report::text::render(&report)));
    artifacts
}

/// A login step that captures the token it is given.
fn login_and_capture() -> String {
    format!(
        r#"
[[step]]
name = "log in"
method = "POST"
path = "/api/auth/login"
json = {{ email = "admin@acme.test", password = "{PASSWORD}" }}
status = 200
capture = {{ session = "/token" }}
"#
    )
}

/// A token captured at run time is a secret too: sent in a query
/// parameter (`access_token`, a sensitive name), the run learns it, and the
/// sampled request line of every artifact shows it redacted.
#[test]
fn a_captured_token_sent_in_a_query_is_redacted() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let steps = format!(
        r#"{}
[[step]]
name = "token in a query"
path = "/api/orders"
query = {{ access_token = "{{{{ session }}}}" }}
status = 418
"#,
        login_and_capture()
    );
    let artifacts = run_and_render(&t, &[("in-query", &steps)]);
    assert_clean(&artifacts, &issued_token(&t));
}

/// A failed check on a token field does not print what it found: the
/// field is named like a secret, and the token the login answered is one.
#[test]
fn a_failed_check_on_a_token_field_does_not_show_the_token() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let steps = format!(
        r#"
[[step]]
name = "token checked"
method = "POST"
path = "/api/auth/login"
json = {{ email = "admin@acme.test", password = "{PASSWORD}" }}
checks = [{{ json = "/token", equals = "not-this" }}]
"#
    );
    let artifacts = run_and_render(&t, &[("checked", &steps)]);
    assert_clean(&artifacts, &issued_token(&t));
}
