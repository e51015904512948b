//! The isolation and auth probes on APIs that are not the reference target
//! (`probes_support`): the tenant in a header, the tenant in the path, their
//! own refusal statuses, opaque tokens. On each, the probe passes on the
//! healthy API, counts the right violation (not only failed checks) when a
//! fault is planted, raises no false alarm when the API refuses with its own
//! status, and calls an answer that is neither a refusal nor an acceptance
//! an error, not a pass and not a violation.

mod engine_support;
mod probes_support;

use std::path::Path;

use convoy::cli::Exit;
use convoy::engine::RunResult;
use convoy::metrics::Violation;
use convoy::plan::LoadModel;
use convoy::scenario::parse::{self, EnvScope};
use convoy::scenario::{self, CustomRegistry};
use convoy::target::{self, Fault, TargetConfig};
use probes_support::{Shape, TenantIn};

const ITERATIONS: u64 = 3;

/// Runs scenario `text` once per iteration (1 user) against `base_url`.
fn run_text(base_url: &str, text: &str) -> RunResult {
    let s =
        parse::parse(Path::new("probe.toml"), text, &EnvScope).unwrap_or_else(|d| panic!("{d}"));
    engine_support::run_scenarios(
        base_url,
        vec![s],
        &LoadModel::closed(1, ITERATIONS),
        CustomRegistry::new(),
        false,
    )
}

fn violations(r: &RunResult, v: Violation) -> u64 {
    r.violations.get(&v).copied().unwrap_or(0)
}

/// The exit code `convoy run` gives `r` (no gates).
fn exit_of(r: &RunResult) -> Exit {
    let report = convoy::report::Report::new(r, convoy::report::RunMeta::new("run", "test"));
    convoy::cli::run::exit_code(&report)
}

/// Errors of the probe metrics (named `STEP · ...`).
fn probe_errors(r: &RunResult, step: &str) -> u64 {
    r.steps
        .iter()
        .filter(|s| s.info.name.starts_with(&format!("{step} · ")))
        .map(|s| s.stats.errors)
        .sum()
}

const IDENTITIES: &str = r#"
[auth]
path = "/auth/token"
body = { user = "{{ user }}" }
token = "/access_token"

[identities.alice]
user = "alice"

[identities.bob]
user = "bob"
"#;

/// alice (acme) creates an order with the tenant in a header; bob (globex)
/// probes it with `isolation` (a TOML fragment of `[step.isolation]`).
fn header_scenario(isolation: &str) -> String {
    format!(
        r#"{IDENTITIES}
[[step]]
name = "acme creates"
as = "alice"
method = "POST"
path = "/orders"
headers = {{ "X-Tenant-Id" = "acme" }}
let = {{ reference = "REF-{{{{ uuid }}}}" }}
json = {{ reference = "{{{{ reference }}}}" }}
status = 202
capture = {{ order_id = "/id" }}

[[step]]
name = "globex probes"
[step.isolation]
as = "bob"
resource = "/orders/{{{{ order_id }}}}"
routes = ["GET", "PATCH", "DELETE"]
markers = ["{{{{ reference }}}}"]
{isolation}
"#
    )
}

/// alice (acme) creates an order under `/tenants/acme`; bob (globex) tries
/// it under acme's path and under his own.
fn path_scenario(isolation: &str) -> String {
    format!(
        r#"{IDENTITIES}
[[step]]
name = "acme creates"
as = "alice"
method = "POST"
path = "/tenants/acme/orders"
let = {{ reference = "REF-{{{{ uuid }}}}" }}
json = {{ reference = "{{{{ reference }}}}" }}
status = 202
capture = {{ order_id = "/id" }}

[[step]]
name = "globex probes"
[step.isolation]
as = "bob"
routes = [
  {{ method = "GET", path = "/tenants/acme/orders/{{{{ order_id }}}}" }},
  {{ method = "DELETE", path = "/tenants/acme/orders/{{{{ order_id }}}}" }},
  {{ method = "GET", path = "/tenants/globex/orders/{{{{ order_id }}}}" }},
]
markers = ["{{{{ reference }}}}"]
{isolation}
"#
    )
}

const PROBER_HEADER: &str = r#"headers = { "X-Tenant-Id" = "globex" }"#;

#[test]
fn tenant_in_a_header_the_isolation_probe_passes_on_the_healthy_api() {
    let api = probes_support::start(Shape::healthy(TenantIn::Header));
    let r = run_text(&api.base_url, &header_scenario(PROBER_HEADER));
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(r.overall().errors, 0, "{:?}", r.overall().status_counts);
    assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
    // Every probe was sent and refused: 3 routes x 3 iterations of 404.
    assert_eq!(r.overall().status_counts.get(&404), Some(&9));
    assert_eq!(exit_of(&r), Exit::Pass);
}

#[test]
fn tenant_in_a_header_a_leak_counts_isolation_violations() {
    let api = probes_support::start(Shape {
        leak: true,
        ..Shape::healthy(TenantIn::Header)
    });
    let r = run_text(&api.base_url, &header_scenario(PROBER_HEADER));
    // Every route of every iteration served acme's order to globex.
    assert_eq!(
        violations(&r, Violation::TenantIsolationViolations),
        3 * ITERATIONS,
        "{:#?}",
        r.failures
    );
    assert!(r.check_failures() > 0);
    let sample = r
        .failures
        .iter()
        .find(|f| f.check.starts_with("tenant isolation"))
        .expect("a sample");
    assert!(
        sample.message.contains("served another tenant"),
        "{}",
        sample.message
    );
    assert_eq!(exit_of(&r), Exit::ChecksFailed);
}

#[test]
fn tenant_in_a_header_a_probe_without_the_tenant_header_is_an_error_not_a_pass() {
    // Without its tenant header the API answers 400: the probe tested a
    // malformed request, not the tenant wall. No pass, no violation.
    let api = probes_support::start(Shape {
        leak: true,
        ..Shape::healthy(TenantIn::Header)
    });
    let r = run_text(&api.base_url, &header_scenario(""));
    assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
    assert_eq!(probe_errors(&r, "globex probes"), 3 * ITERATIONS);
    assert_eq!(r.overall().status_counts.get(&400), Some(&(3 * ITERATIONS)));
    let sample = r
        .failures
        .iter()
        .find(|f| f.check.starts_with("tenant isolation"))
        .expect("a sample");
    assert!(
        sample
            .message
            .starts_with("error, not a violation: answered 400"),
        "{}",
        sample.message
    );
    assert!(
        sample.response.contains("missing tenant header"),
        "{}",
        sample.response
    );
    assert_eq!(exit_of(&r), Exit::ChecksFailed);
}

#[test]
fn tenant_in_a_header_the_apis_own_refusal_status_is_no_false_alarm_once_named() {
    for status in [401, 400] {
        let api = probes_support::start(Shape {
            refusal: status,
            ..Shape::healthy(TenantIn::Header)
        });
        // Named: a pass.
        let named = format!("{PROBER_HEADER}\nrefused = [{status}]");
        let r = run_text(&api.base_url, &header_scenario(&named));
        assert_eq!(r.check_failures(), 0, "{status}: {:#?}", r.failures);
        assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
        assert_eq!(exit_of(&r), Exit::Pass);
        // Not named: an error to look at, never a violation.
        let r = run_text(&api.base_url, &header_scenario(PROBER_HEADER));
        assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
        assert_eq!(probe_errors(&r, "globex probes"), 3 * ITERATIONS);
        assert!(r.check_failures() > 0);
    }
}

#[test]
fn tenant_in_a_header_a_500_or_400_answer_is_an_error_with_its_cause() {
    for status in [500, 400] {
        let api = probes_support::start(Shape {
            broken: Some(status),
            ..Shape::healthy(TenantIn::Header)
        });
        let r = run_text(&api.base_url, &header_scenario(PROBER_HEADER));
        assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
        assert_eq!(probe_errors(&r, "globex probes"), 3 * ITERATIONS);
        assert_eq!(
            r.overall().status_counts.get(&status),
            Some(&(3 * ITERATIONS))
        );
        let sample = r
            .failures
            .iter()
            .find(|f| f.check.starts_with("tenant isolation"))
            .expect("a sample");
        assert!(
            sample
                .message
                .starts_with(&format!("error, not a violation: answered {status}")),
            "{}",
            sample.message
        );
        assert_eq!(exit_of(&r), Exit::ChecksFailed);
    }
}

#[test]
fn tenant_in_the_path_the_isolation_probe_passes_and_catches_a_leak() {
    let api = probes_support::start(Shape::healthy(TenantIn::Path));
    let r = run_text(&api.base_url, &path_scenario(""));
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
    assert_eq!(r.overall().status_counts.get(&404), Some(&(3 * ITERATIONS)));
    // Routes named by their whole path are metrics of their own.
    assert!(
        r.steps
            .iter()
            .any(|s| s.info.name == "globex probes · GET /tenants/globex/orders/{{ order_id }}"),
        "{:?}",
        r.steps.iter().map(|s| &s.info.name).collect::<Vec<_>>()
    );

    let leaky = probes_support::start(Shape {
        leak: true,
        ..Shape::healthy(TenantIn::Path)
    });
    let r = run_text(&leaky.base_url, &path_scenario(""));
    assert_eq!(
        violations(&r, Violation::TenantIsolationViolations),
        3 * ITERATIONS,
        "{:#?}",
        r.failures
    );
    assert_eq!(exit_of(&r), Exit::ChecksFailed);
}

#[test]
fn tenant_in_the_path_own_refusals_pass_once_named_and_a_500_is_an_error() {
    let api = probes_support::start(Shape {
        refusal: 401,
        ..Shape::healthy(TenantIn::Path)
    });
    let r = run_text(&api.base_url, &path_scenario("refused = [401]"));
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);

    let broken = probes_support::start(Shape {
        broken: Some(500),
        ..Shape::healthy(TenantIn::Path)
    });
    let r = run_text(&broken.base_url, &path_scenario(""));
    assert_eq!(violations(&r, Violation::TenantIsolationViolations), 0);
    assert_eq!(probe_errors(&r, "globex probes"), 3 * ITERATIONS);
    assert!(r.check_failures() > 0);
}

/// An auth probe of `GET /me` as alice, with `extra` keys in
/// `[step.auth_probe]`.
fn auth_scenario(extra: &str) -> String {
    format!(
        r#"{IDENTITIES}
[[step]]
name = "orders need a token"
as = "alice"
path = "/me"

[step.auth_probe]
{extra}
"#
    )
}

const ALL_PROBES: &str =
    r#"probes = ["no-token", "expired", "foreign-key", "alg-none", "garbled"]"#;

fn with_key(probes: &str) -> String {
    format!("{probes}\nkey = \"{}\"", probes_support::SECRET)
}

#[test]
fn auth_probes_pass_on_a_healthy_api() {
    let api = probes_support::start(Shape::healthy(TenantIn::Path));
    let r = run_text(&api.base_url, &auth_scenario(&with_key(ALL_PROBES)));
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(violations(&r, Violation::AuthViolations), 0);
    // Five probes per iteration, each refused 401.
    assert_eq!(r.overall().status_counts.get(&401), Some(&(5 * ITERATIONS)));
    // The defaults, given a key, are the same five.
    let r = run_text(&api.base_url, &auth_scenario(&with_key("")));
    assert_eq!(r.overall().status_counts.get(&401), Some(&(5 * ITERATIONS)));
    assert_eq!(exit_of(&r), Exit::Pass);
}

#[test]
fn an_api_accepting_a_forged_token_fails_with_auth_violations() {
    type Plant = fn(&mut Shape);
    let faults: [(&str, Plant); 3] = [
        ("expired token", |s| s.accept_expired = true),
        ("token signed by another key", |s| {
            s.accept_foreign_key = true
        }),
        ("alg none token", |s| s.accept_alg_none = true),
    ];
    for (probe, plant) in faults {
        let mut shape = Shape::healthy(TenantIn::Path);
        plant(&mut shape);
        let api = probes_support::start(shape);
        let r = run_text(&api.base_url, &auth_scenario(&with_key(ALL_PROBES)));
        // Exactly the planted flaw, once per iteration.
        assert_eq!(
            violations(&r, Violation::AuthViolations),
            ITERATIONS,
            "{probe}: {:#?}",
            r.failures
        );
        // The journey ("probe") fails with the one probe that did.
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.stats.failures > 0 && c.info.step != "probe")
            .map(|c| c.info.step.as_str())
            .collect();
        assert_eq!(
            failed,
            [format!("orders need a token · {probe}")],
            "{probe}"
        );
        assert_eq!(exit_of(&r), Exit::ChecksFailed, "{probe}");
        let sample = r
            .failures
            .iter()
            .find(|f| f.check.ends_with(probe))
            .unwrap();
        assert!(
            sample.message.starts_with("accepted: answered 200"),
            "{}",
            sample.message
        );
        // The forged token is a credential sent: it never reaches a sample.
        assert!(
            sample.request.contains("authorization: [REDACTED]"),
            "{}",
            sample.request
        );
    }
}

#[test]
fn a_key_that_did_not_sign_the_token_sends_no_expired_probe() {
    // An expired token signed with a wrong key would be refused for its
    // signature: it would pass whatever the API thinks of expiry.
    let api = probes_support::start(Shape {
        accept_expired: true,
        ..Shape::healthy(TenantIn::Path)
    });
    let r = run_text(
        &api.base_url,
        &auth_scenario("probes = [\"expired\"]\nkey = \"not-the-secret\""),
    );
    // The login alone (its token is kept): no probe was sent.
    assert_eq!(r.overall().requests, 1);
    assert_eq!(violations(&r, Violation::AuthViolations), 0);
    let check = r
        .checks
        .iter()
        .find(|c| c.info.step.ends_with("expired token"))
        .unwrap();
    assert_eq!(
        check.stats.passes + check.stats.failures,
        0,
        "never evaluated"
    );
    let sample = &r.failures[0];
    assert!(
        sample.message.contains("`key` did not sign"),
        "{}",
        sample.message
    );
    assert!(
        !sample.message.contains("not-the-secret"),
        "{}",
        sample.message
    );
}

#[test]
fn an_opaque_token_is_probed_only_where_that_applies() {
    let api = probes_support::start(Shape {
        opaque_tokens: true,
        accept_alg_none: true,
        accept_foreign_key: true,
        ..Shape::healthy(TenantIn::Path)
    });
    let r = run_text(&api.base_url, &auth_scenario(""));
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(violations(&r, Violation::AuthViolations), 0);
    // no-token and garbled were sent and refused; the forged ones were not.
    assert_eq!(r.overall().status_counts.get(&401), Some(&(2 * ITERATIONS)));
    let sample = r
        .failures
        .iter()
        .find(|f| f.check.ends_with("token signed by another key"))
        .expect("a note on the probe not sent");
    assert!(sample.message.contains("not a JWT"), "{}", sample.message);
}

#[test]
fn the_reference_target_passes_the_auth_probes_and_fails_with_each_auth_fault() {
    let text = || {
        format!(
            r#"
[auth]
path = "/api/auth/login"
body = {{ email = "admin@acme.test", password = "convoy-demo" }}
token = "/token"

[identities.admin]
email = "admin@acme.test"

[[step]]
name = "orders need a token"
as = "admin"
path = "/api/orders"

[step.auth_probe]
{}
"#,
            with_key(ALL_PROBES).replace(probes_support::SECRET, convoy::target::DEV_JWT_SECRET)
        )
    };
    let healthy = target::spawn(TargetConfig::default()).unwrap();
    let r = run_text(&healthy.base_url(), &text());
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(violations(&r, Violation::AuthViolations), 0);
    for fault in [
        Fault::AuthAcceptExpired,
        Fault::AuthAcceptAlgNone,
        Fault::AuthAcceptForeignKey,
    ] {
        let t = target::spawn(TargetConfig::default().with_fault(fault)).unwrap();
        let r = run_text(&t.base_url(), &text());
        assert_eq!(
            violations(&r, Violation::AuthViolations),
            ITERATIONS,
            "{fault}: {:#?}",
            r.failures
        );
    }
}

#[test]
fn the_seed_presets_with_auth_probes_pass_and_catch_the_faults() {
    for preset in ["rodistaa", "logistics-ai"] {
        let path = format!(
            "{}/scenarios/presets/{preset}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let s = scenario::load(&path).unwrap_or_else(|d| panic!("{d}"));
        let has_probe = s
            .steps
            .iter()
            .any(|st| matches!(st.action, scenario::Action::AuthProbe(_)));
        assert!(has_probe, "{preset} has an auth probe");
        let healthy = target::spawn(TargetConfig::default()).unwrap();
        let r = engine_support::run_scenarios(
            &healthy.base_url(),
            vec![s.clone()],
            &LoadModel::closed(1, 1),
            CustomRegistry::new(),
            false,
        );
        assert_eq!(r.check_failures(), 0, "{preset}: {:#?}", r.failures);
        let faulty = target::spawn(
            TargetConfig::default()
                .with_fault(Fault::AuthAcceptExpired)
                .with_fault(Fault::AuthAcceptAlgNone)
                .with_fault(Fault::AuthAcceptForeignKey),
        )
        .unwrap();
        let r = engine_support::run_scenarios(
            &faulty.base_url(),
            vec![s],
            &LoadModel::closed(1, 1),
            CustomRegistry::new(),
            false,
        );
        assert_eq!(
            violations(&r, Violation::AuthViolations),
            3,
            "{preset}: {:#?}",
            r.failures
        );
    }
}
