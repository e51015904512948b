//! The reference target's schema: the versioned SQL files of `migrations/`,
//! compiled into the binary and applied in order at startup.
//!
//! Applied versions are recorded in `schema_migrations`, so a restart
//! applies nothing twice. Everything pending is applied in one transaction
//! that first takes an advisory lock, so targets starting at once against
//! one database migrate it once, and a failing migration leaves the schema
//! as it was.

/// One migration: its version (the file name without `.sql`) and its SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. A unit test checks that this list matches the
/// files in `migrations/`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: "0001_orders_rls",
        sql: include_str!("../migrations/0001_orders_rls.sql"),
    },
    Migration {
        version: "0002_reference_target",
        sql: include_str!("../migrations/0002_reference_target.sql"),
    },
    Migration {
        version: "0003_app_role",
        sql: include_str!("../migrations/0003_app_role.sql"),
    },
];

/// Key of the advisory lock held while migrating ("convoy" in ASCII).
const LOCK_KEY: i64 = 0x636f_6e76_6f79;

/// Applies the pending migrations; returns the versions applied now.
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<String> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut now = Vec::new();
    for migration in MIGRATIONS {
        if applied.iter().any(|v| v == migration.version) {
            continue;
        }
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&migration.version],
        )
        .await?;
        now.push(migration.version);
    }
    tx.commit().await?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".sql").map(str::to_string))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(files, listed);
    }
}
