//! Row-level security coverage: which tenant tables PostgreSQL would let one
//! tenant read another's rows from.
//!
//! A *tenant table* is an ordinary or partitioned table, outside the system
//! schemas, with a column named like a tenant key (`tenant_id`, `tenant` by
//! default). It is *covered* when row-level security is enabled on it
//! (`pg_class.relrowsecurity`) and at least one policy exists for it
//! (`pg_policies`): enabled without a policy denies everything, a policy
//! without enabling does nothing. Coverage is covered / total.
//!
//! The scenario `rls` step runs [`probe`] and records one evaluation per
//! tenant table under the check [`TABLE_CHECK`], so that check's pass rate
//! *is* the coverage: reports show it, shards merge it, and the
//! `rls_coverage` gate reads it.
//!
//! Layering: a leaf (the scenario step, reports and gates use its names);
//! it imports no other module of the harness.

use serde::Serialize;

/// The check under which an `rls` step records one pass or failure per
/// tenant table; its pass rate is the RLS coverage.
pub const TABLE_CHECK: &str = "rls coverage: tenant tables with row-level security and a policy";

/// Tenant column names looked for when a step names none.
pub const DEFAULT_TENANT_COLUMNS: &[&str] = &["tenant_id", "tenant"];

/// One tenant table and its protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantTable {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub table: String,
    /// Row-level security is enabled.
    pub rls_enabled: bool,
    /// Row-level security also applies to the table's owner.
    pub rls_forced: bool,
    /// Number of policies defined on it.
    pub policies: i64,
}

impl TenantTable {
    /// Enabled and with at least one policy.
    pub fn covered(&self) -> bool {
        self.rls_enabled && self.policies > 0
    }

    /// What is missing, for people: `public.orders (row-level security disabled)`.
    pub fn describe(&self) -> String {
        let why = match (self.rls_enabled, self.policies > 0) {
            (true, true) => "covered",
            (false, true) => "row-level security disabled",
            (true, false) => "no policy",
            (false, false) => "row-level security disabled, no policy",
        };
        format!("{}.{} ({why})", self.schema, self.table)
    }
}

/// The result of a probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RlsCoverage {
    /// Every tenant table, by schema and name.
    pub tables: Vec<TenantTable>,
}

impl RlsCoverage {
    /// Tables that are covered.
    pub fn covered(&self) -> usize {
        self.tables.iter().filter(|t| t.covered()).count()
    }

    /// Covered over total; `None` when there is no tenant table (nothing to
    /// measure is not 100 %).
    pub fn fraction(&self) -> Option<f64> {
        if self.tables.is_empty() {
            None
        } else {
            Some(self.covered() as f64 / self.tables.len() as f64)
        }
    }

    /// Tables that are not covered.
    pub fn uncovered(&self) -> impl Iterator<Item = &TenantTable> {
        self.tables.iter().filter(|t| !t.covered())
    }

    /// `RLS coverage 2/3 (66.7 %); uncovered: public.x (no policy)`.
    pub fn summary(&self) -> String {
        let Some(f) = self.fraction() else {
            return "no tenant table found".into();
        };
        let mut s = format!(
            "RLS coverage {}/{} ({:.1} %)",
            self.covered(),
            self.tables.len(),
            f * 100.0
        );
        let missing: Vec<String> = self.uncovered().map(TenantTable::describe).collect();
        if !missing.is_empty() {
            s.push_str("; uncovered: ");
            s.push_str(&missing.join(", "));
        }
        s
    }
}

const PROBE_QUERY: &str = "\
SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_catalog.pg_policies p
         WHERE p.schemaname = n.nspname AND p.tablename = c.relname)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname <> 'information_schema'
   AND n.nspname NOT LIKE 'pg\\_%'
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND a.attname::text = ANY($1::text[]))
 ORDER BY 1, 2";

/// Lists the tenant tables visible to `client` (tables with a column named
/// in `tenant_columns`) and whether each is covered.
pub async fn probe(
    client: &tokio_postgres::Client,
    tenant_columns: &[String],
) -> Result<RlsCoverage, tokio_postgres::Error> {
    let rows = client.query(PROBE_QUERY, &[&tenant_columns]).await?;
    Ok(RlsCoverage {
        tables: rows
            .iter()
            .map(|r| TenantTable {
                schema: r.get(0),
                table: r.get(1),
                rls_enabled: r.get(2),
                rls_forced: r.get(3),
                policies: r.get(4),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rls_enabled: bool, policies: i64) -> TenantTable {
        TenantTable {
            schema: "public".into(),
            table: name.into(),
            rls_enabled,
            rls_forced: false,
            policies,
        }
    }

    #[test]
    fn coverage_counts_enabled_tables_with_a_policy() {
        let c = RlsCoverage {
            tables: vec![
                table("orders", true, 1),
                table("order_adjustments", false, 1),
                table("tenants", true, 0),
            ],
        };
        assert_eq!(c.covered(), 1);
        assert!((c.fraction().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            c.summary(),
            "RLS coverage 1/3 (33.3 %); uncovered: public.order_adjustments (row-level security disabled), public.tenants (no policy)"
        );
    }

    #[test]
    fn no_tenant_table_is_no_coverage() {
        assert_eq!(RlsCoverage::default().fraction(), None);
    }
}
