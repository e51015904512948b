//! The reference target on PostgreSQL (`convoy target --database-url`)
//! against a real server: the database scenarios of `scenarios/postgres/`
//! pass; a duplicate written behind the API's back fails the single-entry
//! check with its count; a tenant table without row-level security lowers
//! the coverage and fails its gate; another tenant's order is a 404 because
//! row-level security hides it; concurrent duplicate creations leave one
//! row; migrations apply once.
//!
//! Needs `CONVOY_TEST_DATABASE_URL` (a superuser on a throwaway server:
//! `eval "$(ci/postgres.sh)"`); each test makes its own database. Skipped,
//! with a notice, when the variable is unset, unless
//! `CONVOY_REQUIRE_POSTGRES` is set, as `.ci/run` does.

mod cli_support;
mod postgres_support;
mod target_support;

use std::path::Path;
use std::process::Output;

use cli_support::command;
use convoy::report::Report;
use convoy::target::{self, RunningTarget, TargetConfig};
use postgres_support::{block_on, empty_database, exec, fresh_database, query_i64, server_url};
use reqwest::{Method, StatusCode};
use target_support::{ACME_ADMIN, GLOBEX_ADMIN, Session, fresh_client, order_body, send};

/// A password the test server ignores (trust authentication) and that must
/// never show.
const PASSWORD: &str = "s3cret-db-pw";

/// `url` with [`PASSWORD`] in it.
fn with_password(url: &str) -> String {
    let mut url: url::Url = url.parse().unwrap();
    url.set_password(Some(PASSWORD)).unwrap();
    url.to_string()
}

/// The reference target on the database at `url`.
fn start(url: &str) -> RunningTarget {
    let config = TargetConfig {
        worker_threads: 2,
        ..TargetConfig::default()
    }
    .with_database(url);
    let target = target::spawn(config).expect("the target starts on PostgreSQL");
    assert!(
        target.storage().starts_with("PostgreSQL at "),
        "{}",
        target.storage()
    );
    assert!(!target.storage().contains(PASSWORD));
    target
}

/// `convoy run SCENARIOS --profile PROFILE` against `target`, its `sql` and
/// `rls` steps on `database`; the exit code, the report, and everything
/// printed.
fn run(
    target: &RunningTarget,
    database: &str,
    profile: &str,
    scenarios: &[&str],
) -> (i32, Report, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out: Output = command()
        .arg("run")
        .args(
            scenarios
                .iter()
                .map(|s| root.join("scenarios/postgres").join(s)),
        )
        .args([
            "--profile",
            profile,
            "--target",
            &target.base_url(),
            "--out",
        ])
        .arg(dir.path())
        .env("DATABASE_URL", database)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("report.json"))
        .unwrap_or_else(|e| panic!("no report.json ({e}): {printed}"));
    assert!(
        !text.contains(PASSWORD),
        "the database password leaked into report.json"
    );
    assert!(
        !printed.contains(PASSWORD),
        "the database password was printed"
    );
    let report: Report = serde_json::from_str(&text).unwrap();
    (out.status.code().unwrap_or(-1), report, printed)
}

/// (passes, failures) of the check `name` of step `step`.
fn check(report: &Report, step: &str, name: &str) -> (u64, u64) {
    let c = report
        .checks
        .iter()
        .find(|c| c.step == step && c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} of {step:?} in {:#?}", report.checks));
    (c.passes, c.failures)
}

/// Whether the gate `expression` held, and its value.
fn gate(report: &Report, expression: &str) -> (bool, Option<f64>) {
    let g = report
        .gates
        .iter()
        .find(|g| g.expression == expression)
        .unwrap_or_else(|| panic!("no gate {expression:?} in {:#?}", report.gates));
    (g.passed, g.actual)
}

const SINGLE_ENTRY_STEP: &str = "db: one order for the key";

#[test]
fn the_database_scenarios_pass_against_the_target_on_postgres() {
    let Some(server) = server_url() else { return };
    let db = with_password(&fresh_database(&server, "scenarios"));
    let target = start(&db);
    // The light profile: 5 users x 10 iterations of each scenario.
    let (code, report, printed) = run(
        &target,
        &db,
        "light",
        &["order-lifecycle.toml", "idempotent-replay.toml"],
    );
    assert_eq!(code, 0, "{printed}\n{:#?}", report.failures);
    assert_eq!(report.check_failures(), 0);
    assert_eq!(gate(&report, "rls_coverage == 100%"), (true, Some(1.0)));
    assert_eq!(
        gate(&report, "idempotency_violations == 0"),
        (true, Some(0.0))
    );
    // 50 iterations, shared by the two scenarios.
    let (lifecycles, _) = check(&report, "order-lifecycle-db", "journey completes");
    let (replays, _) = check(&report, "idempotent-replay-db", "journey completes");
    assert_eq!(lifecycles + replays, 50);
    assert!(lifecycles > 0 && replays > 0);
    assert_eq!(
        check(
            &report,
            "order-lifecycle-db/db: one order for the key",
            "sql: row 0 n == 1"
        ),
        (lifecycles, 0)
    );
    assert_eq!(
        check(
            &report,
            "db: one ledger row for the delivery",
            "sql: row 0 ledger_rows == 1"
        ),
        (lifecycles, 0)
    );
    assert_eq!(
        check(
            &report,
            "idempotent-replay-db/db: one order for the key",
            "sql: row 0 n == 1"
        ),
        (replays, 0)
    );
    // Two tenant tables per probe, both covered.
    assert_eq!(
        check(&report, "db: row-level security", convoy::rls::TABLE_CHECK),
        (2 * lifecycles, 0)
    );
    // What the database holds: one order per journey, one ledger row per
    // delivery, no key twice.
    assert_eq!(query_i64(&db, "SELECT count(*) FROM orders"), 50);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM order_adjustments") as u64,
        lifecycles
    );
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM (SELECT 1 FROM orders GROUP BY tenant_id, idempotency_key HAVING count(*) > 1) d"
        ),
        0
    );
    assert_eq!(target.orders_count("acme"), 50);
    assert_eq!(target.ledger_rows("acme") as u64, lifecycles);
    assert_eq!(target.orders_count("globex"), 0);
}

#[test]
fn a_duplicate_written_behind_the_apis_back_fails_the_single_entry_check() {
    let Some(server) = server_url() else { return };
    let db = fresh_database(&server, "duplicate");
    // A platform whose schema lacks the per-tenant unique key, and something
    // (a retried job, a second writer) that writes every order twice, as
    // the superuser, behind the API's back.
    exec(
        &db,
        "ALTER TABLE orders DROP CONSTRAINT orders_tenant_id_idempotency_key_key;
         CREATE FUNCTION write_twice() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
         BEGIN
             INSERT INTO orders (tenant_id, idempotency_key, reference, status, pickup, dropoff,
                                 stops, weight_kg, created_by)
                  VALUES (NEW.tenant_id, NEW.idempotency_key, NEW.reference, NEW.status, NEW.pickup,
                          NEW.dropoff, NEW.stops, NEW.weight_kg, 'behind the API');
             RETURN NEW;
         END $$;
         CREATE TRIGGER write_twice AFTER INSERT ON orders
             FOR EACH ROW WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION write_twice();",
    );
    let target = start(&db);
    let (code, report, printed) = run(&target, &db, "smoke", &["order-lifecycle.toml"]);
    assert_eq!(code, 2, "checks failed: {printed}");
    // The API saw nothing wrong: its lifecycle and ledger checks pass.
    assert_eq!(
        check(&report, "ledger adjusted", "json /count == 1"),
        (1, 0)
    );
    assert_eq!(
        check(
            &report,
            "db: one ledger row for the delivery",
            "sql: row 0 ledger_rows == 1"
        ),
        (1, 0)
    );
    // The database holds two orders for the key.
    assert_eq!(
        check(&report, SINGLE_ENTRY_STEP, "sql: row 0 n == 1"),
        (0, 1)
    );
    let sample = report
        .failures
        .iter()
        .find(|f| f.step == SINGLE_ENTRY_STEP)
        .expect("a failure sample");
    assert!(sample.message.contains("n is 2, expected 1"), "{sample:?}");
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM orders WHERE created_by = 'behind the API'"
        ),
        1
    );
}

#[test]
fn a_tenant_table_without_row_level_security_lowers_the_coverage_and_fails_the_gate() {
    let Some(server) = server_url() else { return };
    let db = fresh_database(&server, "rls_off");
    let target = start(&db);
    exec(
        &db,
        "ALTER TABLE order_adjustments DISABLE ROW LEVEL SECURITY",
    );
    let (code, report, printed) = run(&target, &db, "smoke", &["order-lifecycle.toml"]);
    assert_eq!(code, 2, "the rls step's check fails: {printed}");
    // Everything else still holds.
    assert_eq!(
        check(&report, SINGLE_ENTRY_STEP, "sql: row 0 n == 1"),
        (1, 0)
    );
    assert_eq!(
        check(&report, "db: row-level security", convoy::rls::TABLE_CHECK),
        (1, 1)
    );
    assert_eq!(gate(&report, "rls_coverage == 100%"), (false, Some(0.5)));
    let sample = report
        .failures
        .iter()
        .find(|f| f.step == "db: row-level security")
        .expect("a failure sample");
    assert!(
        sample.message.contains("RLS coverage 1/2 (50.0 %)")
            && sample
                .message
                .contains("public.order_adjustments (row-level security disabled)"),
        "{sample:?}"
    );
}

/// `SELECT count(*) FROM orders`, without any tenant filter, as the target's
/// requests run: role convoy_app, the transaction's tenant set (or not).
fn orders_visible_to(db: &str, tenant: Option<&str>) -> i64 {
    let (db, tenant) = (db.to_string(), tenant.map(str::to_string));
    block_on(async move {
        let (mut client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let tx = client.transaction().await.unwrap();
        tx.batch_execute("SET LOCAL ROLE convoy_app").await.unwrap();
        if let Some(tenant) = tenant {
            tx.execute("SELECT set_config('app.tenant', $1, true)", &[&tenant])
                .await
                .unwrap();
        }
        tx.query_one("SELECT count(*) FROM orders", &[])
            .await
            .unwrap()
            .get(0)
    })
}

#[tokio::test]
async fn another_tenants_order_is_404_because_row_level_security_hides_it() {
    let Some(server) = server_url() else { return };
    let db = fresh_database(&server, "isolation");
    let target = start(&db);
    let acme = Session::login(&target, ACME_ADMIN).await;
    let globex = Session::login(&target, GLOBEX_ADMIN).await;
    let id = acme.create_order("PO-ACME-1").await;
    let path = format!("/api/orders/{id}");

    for (method, suffix) in [
        (Method::GET, ""),
        (Method::PATCH, ""),
        (Method::DELETE, ""),
        (Method::GET, "/adjustments"),
    ] {
        let reply = send(
            globex
                .request(method.clone(), &format!("{path}{suffix}"))
                .header("content-type", "application/json")
                .body(r#"{"reference":"hijacked"}"#),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {suffix}: {}",
            reply.text
        );
        assert!(!reply.text.contains(&id), "{}", reply.text);
    }
    assert_eq!(globex.get("/api/orders").await.json["total"], 0);
    assert_eq!(acme.get(&path).await.json["reference"], "PO-ACME-1");

    // The role the requests run as, with no WHERE on the tenant: only the
    // transaction's tenant decides what it sees.
    assert_eq!(orders_visible_to(&db, Some("acme")), 1);
    assert_eq!(orders_visible_to(&db, Some("globex")), 0);
    assert_eq!(orders_visible_to(&db, None), 0);

    // The target's queries carry no tenant filter of their own: without the
    // policy, globex reads acme's order. Row-level security was the guard.
    exec(&db, "ALTER TABLE orders DISABLE ROW LEVEL SECURITY");
    let leaked = globex.get(&path).await;
    assert_eq!(leaked.status, StatusCode::OK, "{}", leaked.text);
    assert_eq!(leaked.json["tenant"], "acme");
}

#[tokio::test]
async fn concurrent_duplicate_creations_leave_exactly_one_row() {
    let Some(server) = server_url() else { return };
    let db = fresh_database(&server, "concurrent");
    let target = start(&db);
    let acme = Session::login(&target, ACME_ADMIN).await;
    let body = order_body("PO-RACE").to_string();
    // Twenty at once, each on its own connection.
    let requests = (0..20).map(|_| {
        let client = fresh_client();
        let request = client
            .post(format!("{}/api/orders", target.base_url()))
            .bearer_auth(&acme.token)
            .header("content-type", "application/json")
            .header("idempotency-key", "race-key")
            .body(body.clone());
        tokio::spawn(send(request))
    });
    let mut replies = Vec::new();
    for r in requests.collect::<Vec<_>>() {
        replies.push(r.await.unwrap());
    }
    let first = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 1, "exactly one creation is not a replay");
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        // Replays get the first answer, byte for byte.
        assert_eq!(reply.text, first[0].text);
    }
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM orders WHERE idempotency_key = 'race-key'"
        ),
        1
    );
    assert_eq!(target.orders_with_idempotency_key("acme", "race-key"), 1);

    // The same key with another body is refused; in another tenant it is
    // another tenant's key.
    let other = acme.post("/api/orders", &order_body("PO-OTHER")).await;
    assert_eq!(other.status, StatusCode::CREATED, "no key: a new order");
    let reused = send(
        acme.json(Method::POST, "/api/orders", &order_body("PO-OTHER"))
            .header("idempotency-key", "race-key"),
    )
    .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.text
    );
    assert_eq!(reused.json["code"], "idempotency_key_reused");
    let globex = Session::login(&target, GLOBEX_ADMIN).await;
    let theirs = send(
        globex
            .json(Method::POST, "/api/orders", &order_body("PO-RACE"))
            .header("idempotency-key", "race-key"),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert!(theirs.header("idempotent-replayed").is_none());
    assert_eq!(
        query_i64(
            &db,
            "SELECT count(*) FROM orders WHERE idempotency_key = 'race-key'"
        ),
        2
    );
}

#[test]
fn migrations_apply_once_and_targets_share_a_migrated_database() {
    let Some(server) = server_url() else { return };
    let db = empty_database(&server, "migrations");
    let url = target::DatabaseUrl::from(db.clone());
    let first = block_on({
        let url = url.clone();
        async move { target::migrate(&url).await }
    })
    .unwrap();
    assert_eq!(
        first,
        ["0001_orders_rls", "0002_reference_target", "0003_app_role"]
    );
    let again = block_on(async move { target::migrate(&url).await }).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM schema_migrations"), 3);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM tenants"), 2);
    // Two targets on one database see each other's orders.
    let a = start(&db);
    let b = start(&db);
    let order = block_on({
        let base = a.base_url();
        async move {
            let client = fresh_client();
            let login = send(
                client
                    .post(format!("{base}/api/auth/login"))
                    .body(r#"{"email":"admin@acme.test","password":"convoy-demo"}"#),
            )
            .await;
            let token = login.json["token"].as_str().unwrap().to_string();
            send(
                client
                    .post(format!("{base}/api/orders"))
                    .bearer_auth(token)
                    .body(order_body("PO-SHARED").to_string()),
            )
            .await
        }
    });
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert_eq!(b.orders_count("acme"), 1);
}
