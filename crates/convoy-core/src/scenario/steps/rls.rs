//! The `rls` kind: the row-level-security coverage probe of
//! [`crate::rls`] against a PostgreSQL database. One evaluation of
//! [`crate::rls::TABLE_CHECK`] per tenant table; the step passes when the
//! share of covered tables reaches its `min_coverage`.

use std::time::Instant;

use serde::Deserialize;
use toml::Spanned;

use super::sql::{database_url, record_db, url_secrets};
use crate::engine::StepKind;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::db::SqlFailure;
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::step_run::StepRun;

/// The table of an `rls` step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRls {
    pub url: Spanned<String>,
    pub tenant_columns: Option<Spanned<Vec<String>>>,
    pub min_coverage: Option<Spanned<String>>,
}

/// A compiled `rls` step.
#[derive(Debug, Clone)]
pub struct RlsStep {
    /// The connection URL (a secret: never shown).
    pub url: String,
    /// Names of the columns that make a table a tenant table.
    pub tenant_columns: Vec<String>,
    /// The lowest coverage that passes, as a fraction.
    pub min_coverage: f64,
}

impl RlsStep {
    /// The step's verdict check: `rls coverage >= 100%`.
    pub fn label(&self) -> String {
        format!("rls coverage >= {}%", self.min_coverage * 100.0)
    }
}

impl<S: StepTable> Compile<S> for RlsStep {
    type Table = RawRls;

    const WHAT: &'static str = "an rls step";
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(key: &str) -> Option<String> {
        super::sql::database_step_hint("rls", key)
    }

    fn compile(
        c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<RawRls>,
    ) -> Result<Self, Diagnostic> {
        compile_rls(c, table.get_ref())
    }

    fn default_name(&self, _step: &S) -> String {
        "rls".to_string()
    }
}

/// Metric and check ids of an `rls` step.
#[derive(Debug, Clone, Default)]
pub(crate) struct RlsIds {
    /// The probe's metric.
    pub metric: usize,
    /// The verdict: coverage reaches its minimum.
    pub status: usize,
    /// [`crate::rls::TABLE_CHECK`], once per tenant table.
    pub table: usize,
}

impl Kind for RlsStep {
    type Ids = RlsIds;

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<RlsIds, String> {
        let name = r.qualify(step);
        let metric = r.step(name.clone(), StepKind::Request);
        let status = r.check(&name, self.label());
        let table = r.check(&name, crate::rls::TABLE_CHECK.into());
        Ok(RlsIds {
            metric,
            status,
            table,
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(1)
    }

    /// The probe queries the database, not the target.
    fn max_target_requests(&self) -> Option<u64> {
        Some(0)
    }

    /// The probe logs no identity in.
    fn max_logins(&self) -> u64 {
        0
    }

    fn secrets(&self) -> Vec<String> {
        url_secrets(&self.url)
    }

    async fn execute(&self, ids: &RlsIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: a database call makes a large future, which every plain
        // request step would otherwise carry and move.
        Box::pin(probe(self, ids, run)).await
    }
}

/// Runs `rls` step `r`: one evaluation of [`crate::rls::TABLE_CHECK`] per
/// tenant table, and the step passes when coverage reaches its minimum.
async fn probe(r: &RlsStep, ids: &RlsIds, run: &mut StepRun<'_>) -> bool {
    let timeout = run.shared.http.timeout;
    let sent = Instant::now();
    let res = match run.user.db.get(&r.url, timeout).await {
        Ok(client) => {
            let doing = "probing row-level security";
            match tokio::time::timeout(timeout, crate::rls::probe(client, &r.tenant_columns)).await
            {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(SqlFailure::from_pg(&e, doing)),
                Err(_) => Err(SqlFailure::timeout(doing, timeout)),
            }
        }
        Err(f) => Err(f),
    };
    let request = format!(
        "RLS probe of tables with a column {}",
        r.tenant_columns.join(" or ")
    );
    let coverage = match record_db(run, ids.metric, ids.status, res, sent) {
        Ok(c) => c,
        Err(f) => {
            run.user.db.drop_connection(&r.url);
            run.sample(&r.label(), f.message, request, String::new());
            return false;
        }
    };
    for t in &coverage.tables {
        run.it.recorder.check(ids.table, t.covered());
    }
    let ok = coverage
        .fraction()
        .is_some_and(|f| f + 1e-9 >= r.min_coverage);
    run.it.recorder.check(ids.status, ok);
    if !ok {
        run.sample(&r.label(), coverage.summary(), request, String::new());
    }
    ok
}

/// Compiles a `[step.rls]` table.
fn compile_rls(c: &Compiler<'_>, raw: &RawRls) -> Result<RlsStep, Diagnostic> {
    let url = database_url(c, &raw.url)?;
    let tenant_columns = match &raw.tenant_columns {
        Some(cols) if cols.get_ref().is_empty() => {
            return Err(c.err(cols.span(), "tenant_columns names at least one column"));
        }
        Some(cols) => cols.get_ref().clone(),
        None => crate::rls::DEFAULT_TENANT_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let min_coverage = match &raw.min_coverage {
        Some(m) => parse_fraction(m.get_ref()).map_err(|e| c.err(m.span(), e))?,
        None => 1.0,
    };
    Ok(RlsStep {
        url,
        tenant_columns,
        min_coverage,
    })
}

/// Parses a coverage such as `100%`, `95.5%` or `0.9` into a fraction.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("invalid coverage {s:?}: expected a percentage such as \"100%\""))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "invalid coverage {s:?}: it lies between 0% and 100%"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_thresholds_parse() {
        assert_eq!(parse_fraction("100%"), Ok(1.0));
        assert_eq!(parse_fraction("0.9"), Ok(0.9));
        assert!(parse_fraction("120%").is_err());
        assert!(parse_fraction("all").is_err());
    }
}
