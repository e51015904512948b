//! Helpers shared by the PostgreSQL tests: the server from
//! `CONVOY_TEST_DATABASE_URL` (skipped, with a notice, when it is unset,
//! unless `CONVOY_REQUIRE_POSTGRES` is set, as `.ci/run` does), a fresh
//! database per test, and SQL run as the server's superuser.

#![allow(dead_code)] // Each test crate uses its own subset.

/// The superuser URL of the test server, or `None` to skip.
pub fn server_url() -> Option<String> {
    match std::env::var("CONVOY_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CONVOY_REQUIRE_POSTGRES").is_none(),
                "CONVOY_REQUIRE_POSTGRES is set but CONVOY_TEST_DATABASE_URL is not (run ci/postgres.sh)"
            );
            eprintln!(
                "NOTICE: skipping the PostgreSQL test: CONVOY_TEST_DATABASE_URL is unset (eval \"$(ci/postgres.sh)\")"
            );
            None
        }
    }
}

/// Runs `f` to completion on a runtime of its own, on a thread of its own
/// (so that it works from inside a test's runtime too).
pub fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database: {e}"));
    tokio::spawn(conn);
    client
}

/// Runs SQL statements (as the superuser) in `url`'s database.
pub fn exec(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    block_on(async move {
        connect(&url)
            .await
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    });
}

/// The one `bigint` (or `count(*)`) a query returns, as the superuser.
pub fn query_i64(url: &str, sql: &str) -> i64 {
    let (url, sql) = (url.to_string(), sql.to_string());
    block_on(async move {
        let row = connect(&url)
            .await
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        row.get(0)
    })
}

/// An empty database of its own for this test; its URL.
pub fn empty_database(server: &str, name: &str) -> String {
    let db = format!("convoy_{name}_{}", std::process::id());
    // One statement per call: several form an implicit transaction, which
    // CREATE DATABASE refuses.
    exec(
        server,
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
    );
    exec(server, &format!("CREATE DATABASE {db}"));
    let mut url: url::Url = server.parse().unwrap();
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// A database of its own with the schema of `migrations/` applied and the
/// tenants seeded, by the code `convoy target --database-url` runs at
/// startup; its URL.
pub fn fresh_database(server: &str, name: &str) -> String {
    let url = empty_database(server, name);
    let target_url = convoy::target::DatabaseUrl::from(url.clone());
    let applied = block_on(async move { convoy::target::migrate(&target_url).await })
        .unwrap_or_else(|e| panic!("migrating: {e}"));
    assert!(
        !applied.is_empty(),
        "a fresh database has migrations to apply"
    );
    url
}
