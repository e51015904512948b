//! The `sql` and `rls` steps against a real PostgreSQL server: single-entry
//! and ledger checks pass on a clean database and fail on a duplicate
//! inserted behind the API's back; reads cannot write; the RLS coverage
//! probe drops when a tenant table loses row-level security.
//!
//! Needs `CONVOY_TEST_DATABASE_URL` (a superuser on a throwaway server:
//! `eval "$(ci/postgres.sh)"`). Each test creates its own database with the
//! schema of `migrations/`, applied as `convoy target --database-url` applies
//! it. Skipped, with a notice, when the variable is unset, unless
//! `CONVOY_REQUIRE_POSTGRES` is set, as `.ci/run` does. The reference target
//! on PostgreSQL is tested in `postgres_target.rs`.

mod postgres_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use convoy::engine::{self, EngineOptions, RunControl, RunResult};
use convoy::plan::{HttpOptions, LoadModel};
use convoy::scenario::parse::{self, Env};
use convoy::scenario::{CustomRegistry, ScenarioWorkload};
use postgres_support::{exec, server_url};

/// A fresh migrated database with one delivered order of `acme` under the
/// key `key-1` and its ledger row, written by hand.
fn fresh_database(server: &str, name: &str) -> String {
    let url = postgres_support::fresh_database(server, name);
    exec(
        &url,
        "INSERT INTO orders (tenant_id, idempotency_key, reference, status)
              VALUES ('acme', 'key-1', 'PO-1', 'delivered');
         INSERT INTO order_adjustments (tenant_id, order_id, kind, amount_cents)
              SELECT 'acme', id, 'delivery', 1250 FROM orders WHERE idempotency_key = 'key-1';",
    );
    url
}

/// The test's environment: `DATABASE_URL` only.
struct DbEnv(String);

impl Env for DbEnv {
    fn get(&self, name: &str) -> Option<String> {
        (name == "DATABASE_URL").then(|| self.0.clone())
    }
}

fn load(text: &str, url: &str) -> Result<convoy::scenario::Scenario, String> {
    parse::parse(Path::new("db.toml"), text, &DbEnv(url.to_string())).map_err(|d| d.to_string())
}

fn run(text: &str, url: &str, iterations: u64) -> RunResult {
    let scenario = load(text, url).unwrap_or_else(|d| panic!("{d}"));
    let target: url::Url = "http://127.0.0.1:9".parse().unwrap();
    let w = ScenarioWorkload::new(
        vec![scenario],
        Some(&target),
        HttpOptions::default(),
        CustomRegistry::new(),
    )
    .unwrap();
    let model = LoadModel::closed(2, iterations);
    let options = EngineOptions {
        workers: 1,
        graceful_stop: Duration::from_secs(10),
        ..EngineOptions::default()
    };
    engine::run(&model, &options, Arc::new(w), &RunControl::new(), |_| {}).unwrap()
}

/// (passes, failures) of the check named `name`.
fn check(r: &RunResult, name: &str) -> (u64, u64) {
    let c = r
        .checks
        .iter()
        .find(|c| c.info.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {:#?}", r.checks));
    (c.stats.passes, c.stats.failures)
}

const SINGLE_ENTRY: &str = r#"
name = "single entry"
secrets = []

[vars]
key = "key-1"

[[step]]
name = "order by key"
[step.sql]
url = "{{ env.DATABASE_URL }}"
query = "SELECT count(*) AS n, min(id) AS id FROM orders WHERE idempotency_key = $1"
params = ["{{ key }}"]
checks = [{ row = 0, column = "n", equals = 1 }, { rows = 1 }]

[[step]]
name = "one ledger row"
[step.sql]
url = "{{ env.DATABASE_URL }}"
query = """
SELECT a.kind, a.amount_cents FROM order_adjustments a
  JOIN orders o ON o.id = a.order_id
 WHERE o.idempotency_key = $1 AND o.status = $2"""
params = ["{{ key }}", "delivered"]
checks = [{ rows = 1 }, { column = "kind", equals = "delivery" }, { column = "amount_cents", equals = "1250" }]
"#;

#[test]
fn single_entry_passes_then_a_duplicate_behind_the_apis_back_fails_it() {
    let Some(server) = server_url() else { return };
    // A password in the URL: trust auth ignores it, redaction must not.
    let mut url: url::Url = fresh_database(&server, "single").parse().unwrap();
    url.set_password(Some("s3cret-db-pw")).unwrap();
    let url = url.to_string();

    let r = run(SINGLE_ENTRY, &url, 3);
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
    assert_eq!(check(&r, "sql: row 0 n == 1"), (6, 0));
    assert_eq!(check(&r, "sql: row 0 kind == \"delivery\""), (6, 0));
    let step = r
        .steps
        .iter()
        .find(|s| s.info.name == "order by key")
        .unwrap();
    assert_eq!(step.stats.requests, 6);
    assert_eq!(step.stats.errors, 0);

    // The same key again, for another tenant: the API's contract is one
    // order per key, so the database proves a duplicate.
    exec(
        &url,
        "INSERT INTO orders (tenant_id, idempotency_key, reference) VALUES ('globex', 'key-1', 'PO-2')",
    );
    let r = run(SINGLE_ENTRY, &url, 1);
    assert_eq!(check(&r, "sql: row 0 n == 1"), (0, 2));
    let sample = r
        .failures
        .iter()
        .find(|f| f.check == "sql: row 0 n == 1")
        .expect("a failure sample");
    assert!(sample.message.contains("n is 2, expected 1"), "{sample:?}");
    assert!(sample.request.contains("key-1"), "{sample:?}");
    let all = serde_json::to_string(&r).unwrap();
    assert!(
        !all.contains("s3cret-db-pw"),
        "the database password leaked"
    );
}

#[test]
fn sql_steps_cannot_write_unless_the_scenario_says_so() {
    let Some(server) = server_url() else { return };
    let url = fresh_database(&server, "readonly");
    let delete = r#"
[[step]]
name = "purge"
[step.sql]
url = "{{ env.DATABASE_URL }}"
query = "SELECT 1; DELETE FROM orders"
"#;
    let e = load(delete, &url).unwrap_err();
    assert!(e.contains("db.toml:6:20"), "{e}");
    assert!(e.contains("DELETE writes: sql steps are read-only"), "{e}");
    assert!(!e.contains(&url), "{e}");

    // What the scan cannot see, the read-only transaction refuses.
    let sneaky = r#"
[[step]]
name = "next id"
[step.sql]
url = "{{ env.DATABASE_URL }}"
query = "SELECT nextval('orders_id_seq') AS n"
checks = [{ rows = 1 }]
"#;
    let r = run(sneaky, &url, 1);
    assert_eq!(check(&r, "sql: query runs"), (0, 2));
    let step = r.steps.iter().find(|s| s.info.name == "next id").unwrap();
    assert_eq!(step.stats.errors, 2);
    let sample = r.failures.iter().find(|f| f.step == "next id").unwrap();
    assert!(sample.message.contains("25006"), "{sample:?}");

    // Said explicitly, a write runs and commits.
    let allowed = sneaky.replace(
        "checks = [{ rows = 1 }]",
        "checks = [{ rows = 1 }]\nwrites = true",
    );
    let r = run(&allowed, &url, 1);
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
}

const RLS: &str = r#"
[[step]]
name = "rls"
[step.rls]
url = "{{ env.DATABASE_URL }}"
min_coverage = "100%"
"#;

#[test]
fn rls_coverage_drops_when_a_tenant_table_loses_row_level_security() {
    let Some(server) = server_url() else { return };
    let url = fresh_database(&server, "rls");
    let r = run(RLS, &url, 1);
    // orders and order_adjustments have tenant_id; tenants does not.
    assert_eq!(check(&r, convoy::rls::TABLE_CHECK), (4, 0));
    assert_eq!(check(&r, "rls coverage >= 100%"), (2, 0));

    exec(
        &url,
        "ALTER TABLE order_adjustments DISABLE ROW LEVEL SECURITY;
         CREATE TABLE invoices (id bigserial PRIMARY KEY, tenant text NOT NULL);
         ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;",
    );
    let r = run(RLS, &url, 1);
    // Three tenant tables, one covered.
    assert_eq!(check(&r, convoy::rls::TABLE_CHECK), (2, 4));
    assert_eq!(check(&r, "rls coverage >= 100%"), (0, 2));
    let sample = r.failures.iter().find(|f| f.step == "rls").unwrap();
    assert!(
        sample.message.contains("RLS coverage 1/3 (33.3 %)")
            && sample
                .message
                .contains("public.order_adjustments (row-level security disabled)")
            && sample.message.contains("public.invoices (no policy)"),
        "{sample:?}"
    );
}
