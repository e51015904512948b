//! JUnit as CI systems read it: a failure's `message` and text say why (the
//! first examples: where, what was answered, what the check found), test
//! names are the same from run to run (no port, run id or count) and unique
//! in the document, also when `convoy smoke` puts journeys side by side.
//!
//! Read back by two consumers CI systems use: `junitparser` (the Python
//! library many JUnit publishers build on) and `junit2html` (which renders
//! it as a page). Each is skipped, with a notice, when it is not installed,
//! unless `CONVOY_REQUIRE_JUNITPARSER` / `CONVOY_REQUIRE_JUNIT2HTML` is set,
//! as `.ci/run` does after `pip install junitparser junit2html`.

mod cli_support;
mod report_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cli_support::convoy;
use convoy::metrics::Violation;
use convoy::report::{self, Report, artifacts};
use convoy::target::{self, TargetConfig};
use report_support::showcase_with_gates;
use serde_json::Value;

/// A test case as junitparser reads it.
#[derive(Debug, serde::Deserialize)]
struct Case {
    suite: String,
    classname: String,
    name: String,
    failure: Option<String>,
    text: Option<String>,
    system_out: Option<String>,
}

const JUNITPARSER: &str = r#"
import json, sys
try:
    from junitparser import JUnitXml, Failure
except ImportError:
    print("MISSING")
    sys.exit(0)
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    n = 0
    for case in suite:
        n += 1
        failures = [r for r in case.result if isinstance(r, Failure)]
        out.append({
            "suite": suite.name,
            "classname": case.classname,
            "name": case.name,
            "failure": failures[0].message if failures else None,
            "text": failures[0].text if failures else None,
            "system_out": case.system_out,
        })
    assert suite.tests == n, (suite.name, suite.tests, n)
print(json.dumps(out))
"#;

fn skip(tool: &str, var: &str, why: &str) {
    assert!(std::env::var_os(var).is_none(), "{var} is set but {why}");
    eprintln!("NOTICE: skipping the {tool} check: {why} (pip install {tool})");
}

/// The document's cases as junitparser reads them; `None` when it is not
/// installed.
fn junitparser(xml: &str) -> Option<Vec<Case>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    let out = match Command::new("python3")
        .args(["-c", JUNITPARSER])
        .arg(&path)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            skip(
                "junitparser",
                "CONVOY_REQUIRE_JUNITPARSER",
                &format!("python3 does not run: {e}"),
            );
            return None;
        }
    };
    assert!(
        out.status.success(),
        "junitparser could not read the document:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    if stdout.trim() == "MISSING" {
        skip(
            "junitparser",
            "CONVOY_REQUIRE_JUNITPARSER",
            "python3 has no junitparser module",
        );
        return None;
    }
    Some(serde_json::from_str(&stdout).expect("the script prints JSON"))
}

/// The page junit2html renders of the document; `None` when it is not
/// installed.
fn junit2html(xml: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let page = dir.path().join("junit.html");
    std::fs::write(&path, xml).unwrap();
    let installed = Command::new("python3")
        .args(["-c", "import junit2htmlreport"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        skip(
            "junit2html",
            "CONVOY_REQUIRE_JUNIT2HTML",
            "python3 has no junit2htmlreport module",
        );
        return None;
    }
    let out = Command::new("python3")
        .args(["-m", "junit2htmlreport"])
        .arg(&path)
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "junit2html could not render the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read_to_string(&page).unwrap())
}

/// Every (classname, name) of the document, asserting they are unique.
fn unique_names(cases: &[Case]) -> BTreeSet<(String, String)> {
    let mut names = BTreeSet::new();
    for c in cases {
        assert!(
            names.insert((c.classname.clone(), c.name.clone())),
            "two test cases are named {} / {}",
            c.classname,
            c.name
        );
    }
    names
}

#[test]
fn a_failed_check_or_violation_says_why_in_its_message() {
    let r = showcase_with_gates();
    let xml = report::junit::render(&r);
    let Some(cases) = junitparser(&xml) else {
        return;
    };
    unique_names(&cases);
    let check = cases
        .iter()
        .find(|c| c.classname == "convoy.checks.create_order" && c.name == "status == 201")
        .expect("the failed check");
    let message = check.failure.as_deref().expect("it failed");
    // The count, then the first example: where, what it found, the answer.
    assert_eq!(
        message,
        "4 of 800 evaluations failed; first: create_order › status == 201: expected status 201, got 500 [HTTP 500]"
    );
    let text = check.text.as_deref().unwrap();
    assert!(
        text.contains(
            "--- example 1 of 1: create_order › status == 201 (vu 3, iteration 7) · HTTP 500"
        ),
        "{text}"
    );
    assert!(text.contains("authorization: [redacted]"), "{text}");

    let violation = cases
        .iter()
        .find(|c| c.name == "tenant_isolation_violations == 0" && c.suite == "convoy.violations")
        .unwrap();
    let message = violation.failure.as_deref().unwrap();
    assert!(
        message.starts_with("1 tenant_isolation_violations; first: tenant_isolation › ")
            && message.contains(
                "tenant B read order 42 of tenant A [HTTP 200, tenant_isolation_violations]"
            ),
        "{message}"
    );
    // A failed gate names what failed beneath it.
    let gate = cases.iter().find(|c| c.name == "checks > 99.9%").unwrap();
    let text = gate.text.as_deref().unwrap();
    assert!(
        text.contains("create_order › status == 201: 4 of 800 failed"),
        "{text}"
    );
    assert!(
        gate.failure.as_deref().unwrap().contains("; first: "),
        "{gate:?}"
    );
    // The run's case: counts and target in its output, not in its name.
    let run = cases.iter().find(|c| c.suite == "convoy.run").unwrap();
    assert_eq!(run.name, "run completed");
    assert!(run.system_out.as_deref().unwrap().contains(&r.target));

    let Some(page) = junit2html(&xml) else {
        return;
    };
    // The second consumer shows the same cases and why they failed.
    assert!(
        page.contains("tenant_isolation_violations == 0"),
        "{page:.2000}"
    );
    assert!(page.contains("expected status 201, got 500"));
    assert!(page.contains("run completed"));
}

/// `convoy smoke` of every built-in journey against a reference target
/// that leaks across tenants and fails some requests: its JUnit file.
fn smoke_junit(dir: &Path, label: &str) -> (String, Report) {
    let t = target::spawn(
        TargetConfig::default()
            .with_fault("tenant-leak=1".parse().unwrap())
            .with_fault("error-rate=0.2".parse().unwrap()),
    )
    .unwrap();
    let junit = dir.join(format!("{label}.xml"));
    let out = dir.join(label);
    let o = convoy(
        &[
            "smoke",
            "health",
            "login",
            "order-lifecycle",
            "idempotent-replay",
            "tenant-isolation",
            "dispatch",
            "--target",
            &t.base_url(),
            "--junit",
            junit.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
        dir,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "the leaking target fails the checks: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let report = artifacts::read_report(&out).unwrap();
    (xml, report)
}

#[test]
fn smoke_names_are_unique_and_the_same_in_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let (first_xml, first) = smoke_junit(dir.path(), "first");
    let (second_xml, second) = smoke_junit(dir.path(), "second");
    // One login check per identity, shared by the journeys that log in as
    // it: several in a smoke of every built-in journey.
    let logins = first
        .checks
        .iter()
        .filter(|c| c.step == report::junit::SHARED_LOGIN_STEP)
        .count();
    assert!(logins > 1, "one login check per identity: {logins}");
    assert_eq!(
        report::junit::SHARED_LOGIN_STEP,
        convoy::scenario::auth::LOGIN_METRIC
    );
    let Some(a) = junitparser(&first_xml) else {
        return;
    };
    let b = junitparser(&second_xml).unwrap();
    let names = unique_names(&a);
    assert_eq!(names, unique_names(&b), "test names change between runs");
    for (classname, name) in &names {
        let both = format!("{classname} {name}");
        for ephemeral in [&first.run_id, &first.target, &second.run_id, &second.target] {
            assert!(
                !both.contains(ephemeral.as_str()),
                "{both} holds {ephemeral}"
            );
        }
        assert!(!both.contains("127.0.0.1"), "{both}");
        assert!(
            !name.contains('#'),
            "{both}: named by its journey, not its rank"
        );
    }
    // Each identity's login is its own case, named with the identity.
    let login_cases: Vec<_> = a
        .iter()
        .filter(|c| c.classname == format!("convoy.checks.{}", report::junit::SHARED_LOGIN_STEP))
        .collect();
    assert_eq!(login_cases.len(), logins);
    for identity in ["admin", "acme_admin", "globex_admin"] {
        assert!(
            login_cases
                .iter()
                .any(|c| c.name == format!("login as {identity} answers 2xx with a token")),
            "{login_cases:?}"
        );
    }
    // Every failure says why: its first example, with the answer.
    let failed = a
        .iter()
        .filter(|c| c.suite == "convoy.checks" || c.suite == "convoy.violations");
    for c in failed {
        let Some(message) = &c.failure else {
            continue;
        };
        assert!(
            message.contains("; first: "),
            "{} / {}: {message}",
            c.classname,
            c.name
        );
        assert!(
            c.text.as_deref().unwrap().contains("--- example 1 of "),
            "{c:?}"
        );
    }
    // A leak is found when the journey gets as far as its probes (the
    // injected errors may stop it before): then its case says so.
    if first.violations[&Violation::TenantIsolationViolations] > 0 {
        let leak = a
            .iter()
            .find(|c| c.name == "tenant_isolation_violations == 0")
            .unwrap();
        assert!(
            leak.failure
                .as_deref()
                .is_some_and(|m| m.contains("tenant_isolation_violations]")),
            "{leak:?}"
        );
    }
    if let Some(page) = junit2html(&first_xml) {
        assert!(page.contains("login as acme_admin answers 2xx with a token"));
    }
}

/// A run whose 5xx answers outnumber its violations many times over still
/// keeps examples of every violation, check and cause.
#[test]
fn a_noisy_run_keeps_examples_of_every_kind() {
    let t = target::spawn(
        TargetConfig::default()
            .with_fault("tenant-leak=0.1".parse().unwrap())
            .with_fault("error-rate=0.3".parse().unwrap()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = convoy(
        &[
            "run",
            "tenant-isolation",
            "order-lifecycle",
            "--profile",
            "moderate",
            "--target",
            &t.base_url(),
            "--workers",
            "1",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = artifacts::read_report(&out).unwrap();
    let violations = r.violations[&Violation::TenantIsolationViolations];
    assert!(violations > 0, "the leaking target leaked");
    let kept: Vec<_> = r
        .failures
        .iter()
        .filter(|f| f.violation == Some(Violation::TenantIsolationViolations))
        .collect();
    assert!(!kept.is_empty(), "no example of {violations} violations");
    let noise = r.failures.iter().filter(|f| f.status >= Some(500)).count();
    assert!(noise > 0, "the 5xx answers have examples too");
    // Every failed check says why in JUnit: its first example.
    let xml = report::junit::render(&r);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let mut failed = 0;
    for f in doc.descendants().filter(|n| n.has_tag_name("failure")) {
        let case = f.parent().unwrap();
        let classname = case.attribute("classname").unwrap();
        if classname.starts_with("convoy.checks.") || classname == "convoy.violations" {
            failed += 1;
            let message = f.attribute("message").unwrap();
            assert!(
                message.contains("; first: "),
                "{classname} / {}: {message}",
                case.attribute("name").unwrap()
            );
        }
    }
    assert!(failed >= 3, "{xml}");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(
        doc["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["violation"] == "tenant_isolation_violations")
    );
}
