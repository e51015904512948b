//! The `sql` kind: what an API answer cannot prove, the database can. A
//! `sql` step runs one query against PostgreSQL, with parameters bound from
//! the journey's variables, and checks its rows (one order per idempotency
//! key, one ledger row per delivery). The query's latency is the step's.
//!
//! Queries are read-only unless the scenario says `writes = true`:
//! statements that write are refused at load (a [`Diagnostic`] pointing at
//! `query`), and every query runs inside `BEGIN READ ONLY`, so PostgreSQL
//! itself refuses whatever the load-time scan missed. Connections and
//! queries are `scenario/db.rs`'s.

use std::ops::Range;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use crate::engine::StepKind;
use crate::metrics::Outcome;
use crate::scenario::compile::{Compiler, StepTable};
use crate::scenario::db::{self, Rows, SqlFailure};
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::kind::{Compile, Kind, Registrar};
use crate::scenario::model::JsonTemplate;
use crate::scenario::render::render_json;
use crate::scenario::source::SpannedValue;
use crate::scenario::step_run::StepRun;
use crate::scenario::template::Template;

/// The table of a `sql` step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSql {
    pub url: Spanned<String>,
    pub query: Spanned<String>,
    #[serde(default)]
    pub params: Vec<Spanned<String>>,
    #[serde(default)]
    pub checks: Vec<Spanned<RawRowCheck>>,
    #[serde(default)]
    pub writes: bool,
}

/// One row check, as written: `{ rows = 1 }` or
/// `{ row = 0, column = "n", equals = 1 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRowCheck {
    pub rows: Option<Spanned<i64>>,
    pub row: Option<Spanned<i64>>,
    pub column: Option<Spanned<String>>,
    pub equals: Option<Spanned<SpannedValue>>,
}

/// A compiled `sql` step.
#[derive(Debug, Clone)]
pub struct SqlStep {
    /// The connection URL (a secret: never shown).
    pub url: String,
    /// One SQL statement, with `$1`, `$2`, ... placeholders.
    pub query: String,
    /// Values bound to the placeholders, in order, sent as text (PostgreSQL
    /// converts them to the parameter's type).
    pub params: Vec<Template>,
    /// What must hold of the rows.
    pub checks: Vec<RowCheck>,
    /// Whether the statement may write (outside a read-only transaction).
    pub writes: bool,
}

/// A check on the rows a query returned.
#[derive(Debug, Clone)]
pub enum RowCheck {
    /// Exactly this many rows.
    Rows(usize),
    /// The value of `column` in row `row` equals this.
    Value {
        /// 0-based row index.
        row: usize,
        /// Column name.
        column: String,
        /// Expected value (numbers and strings compare loosely: 1 == "1").
        equals: JsonTemplate,
        /// How the expected value reads in reports.
        shown: String,
    },
}

impl RowCheck {
    /// How the check reads in reports.
    pub fn label(&self) -> String {
        match self {
            RowCheck::Rows(n) => format!("sql: {n} row{}", if *n == 1 { "" } else { "s" }),
            RowCheck::Value {
                row, column, shown, ..
            } => format!("sql: row {row} {column} == {shown}"),
        }
    }
}

/// The check every `sql` step records: the query ran.
pub const QUERY_CHECK: &str = "sql: query runs";

impl<S: StepTable> Compile<S> for SqlStep {
    type Table = RawSql;

    const WHAT: &'static str = "an sql step";
    // A query sends no HTTP and logs nobody in.
    const STEP_KEYS: &'static [&'static str] = &[];

    fn unused_hint(key: &str) -> Option<String> {
        database_step_hint("sql", key)
    }

    fn compile(
        c: &Compiler<'_>,
        _step: &Spanned<S>,
        table: &Spanned<RawSql>,
    ) -> Result<Self, Diagnostic> {
        compile_sql(c, table.get_ref())
    }

    fn default_name(&self, _step: &S) -> String {
        "sql".to_string()
    }
}

/// Where a request key written on a database step (`kind` is `sql` or
/// `rls`) belongs.
pub(crate) fn database_step_hint(kind: &str, key: &str) -> Option<String> {
    Some(match key {
        "checks" => format!("put its checks inside [step.{kind}]"),
        "as" => format!(
            "a database step connects with the `url` of [step.{kind}]: it acts as no identity"
        ),
        _ => format!("an {kind} step sends no HTTP request: move `{key}` to a step of its own"),
    })
}

/// Metric and check ids of a `sql` step.
#[derive(Debug, Clone, Default)]
pub(crate) struct SqlIds {
    /// The query's metric.
    pub metric: usize,
    /// [`QUERY_CHECK`].
    pub status: usize,
    /// Its row checks, in order.
    pub checks: Vec<usize>,
}

impl Kind for SqlStep {
    type Ids = SqlIds;

    fn register(&self, step: &str, r: &mut Registrar<'_>) -> Result<SqlIds, String> {
        let name = r.qualify(step);
        let metric = r.step(name.clone(), StepKind::Request);
        let status = r.check(&name, QUERY_CHECK.into());
        let checks = self
            .checks
            .iter()
            .map(|c| r.check(&name, c.label()))
            .collect();
        Ok(SqlIds {
            metric,
            status,
            checks,
        })
    }

    fn max_requests(&self) -> Option<u64> {
        Some(1)
    }

    /// A query goes to the database, not to the target.
    fn max_target_requests(&self) -> Option<u64> {
        Some(0)
    }

    /// A query logs no identity in.
    fn max_logins(&self) -> u64 {
        0
    }

    fn secrets(&self) -> Vec<String> {
        url_secrets(&self.url)
    }

    async fn execute(&self, ids: &SqlIds, run: &mut StepRun<'_>) -> bool {
        // Boxed: a database call makes a large future, which every plain
        // request step would otherwise carry and move.
        Box::pin(query(self, ids, run)).await
    }
}

/// Runs `sql` step `q`: the query's latency is the step's (status 200 when it
/// ran, its failure's cause when not), then its row checks.
async fn query(q: &SqlStep, ids: &SqlIds, run: &mut StepRun<'_>) -> bool {
    let ctx = run.ctx();
    let params = q
        .params
        .iter()
        .map(|t| t.render(&ctx))
        .collect::<Result<Vec<_>, _>>();
    let request = format!("SQL {}\nparams: {:?}", q.query, params);
    let params = match params {
        Ok(p) => p,
        Err(u) => {
            run.it.recorder.check(ids.status, false);
            let why = format!(
                "variable \"{}\" has no value (an earlier capture failed?)",
                u.0
            );
            run.sample(QUERY_CHECK, why, request, String::new());
            return false;
        }
    };
    let timeout = run.shared.http.timeout;
    let sent = Instant::now();
    let res = match run.user.db.get(&q.url, timeout).await {
        Ok(client) => db::query(client, &q.query, &params, q.writes, timeout).await,
        Err(f) => Err(f),
    };
    let rows = match record_db(run, ids.metric, ids.status, res, sent) {
        Ok(rows) => rows,
        Err(f) => {
            run.user.db.drop_connection(&q.url);
            run.sample(QUERY_CHECK, f.message, request, String::new());
            return false;
        }
    };
    run.it.recorder.check(ids.status, true);
    let mut ok = true;
    for (check, id) in q.checks.iter().zip(&ids.checks) {
        let expected = match check {
            RowCheck::Value { equals, .. } => Some(
                render_json(equals, &run.ctx())
                    .map_err(|u| format!("variable \"{}\" has no value", u.0)),
            ),
            RowCheck::Rows(_) => None,
        }
        .transpose();
        let verdict = expected.and_then(|e| evaluate(check, &rows, e.as_ref()));
        run.it.recorder.check(*id, verdict.is_ok());
        if let Err(why) = verdict {
            ok = false;
            run.sample(&check.label(), why, request.clone(), rows.show());
        }
    }
    ok
}

/// Records a database call under `metric`: `Status(200)` when it ran, its
/// cause when it failed (and failed check `status` with it).
pub(crate) fn record_db<T>(
    run: &mut StepRun<'_>,
    metric: usize,
    status: usize,
    res: Result<T, SqlFailure>,
    sent: Instant,
) -> Result<T, SqlFailure> {
    let done = Instant::now();
    let outcome = match &res {
        Ok(_) => Outcome::Status(200),
        Err(f) => Outcome::Failed(f.cause),
    };
    run.it.recorder.record_as(
        metric,
        done - run.scheduled,
        done - sent,
        outcome,
        res.is_err(),
    );
    if res.is_err() {
        run.it.recorder.check(status, false);
    }
    res
}

/// Compiles a `[step.sql]` table.
fn compile_sql(c: &Compiler<'_>, raw: &RawSql) -> Result<SqlStep, Diagnostic> {
    let url = database_url(c, &raw.url)?;
    let q = raw.query.get_ref();
    if q.trim().is_empty() {
        return Err(c.err(raw.query.span(), "the query is empty"));
    }
    if !raw.writes
        && let Some((at, keyword)) = first_write_keyword(q)
    {
        return Err(c
            .err_inside(
                &raw.query,
                at,
                format!("{keyword} writes: sql steps are read-only"),
            )
            .with_hint("verify with SELECT; if the scenario must write, say `writes = true`"));
    }
    let params = raw
        .params
        .iter()
        .map(|p| c.template(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut checks = Vec::new();
    for chk in &raw.checks {
        let r = chk.get_ref();
        let check = match (&r.rows, &r.row, &r.column, &r.equals) {
            (Some(n), None, None, None) => RowCheck::Rows(
                usize::try_from(*n.get_ref())
                    .map_err(|_| c.err(n.span(), "rows takes a whole number"))?,
            ),
            (None, row, Some(column), Some(equals)) => {
                let row = match row {
                    Some(i) => usize::try_from(*i.get_ref())
                        .map_err(|_| c.err(i.span(), "row takes a whole number"))?,
                    None => 0,
                };
                RowCheck::Value {
                    row,
                    column: column.get_ref().clone(),
                    equals: c.json_template(equals, &[])?,
                    shown: serde_json::to_string(equals.get_ref()).unwrap_or_default(),
                }
            }
            _ => {
                return Err(c
                    .err(chk.span(), "a row check is { rows = N } or { row = N, column = \"NAME\", equals = VALUE }")
                    .with_hint("row defaults to 0"));
            }
        };
        checks.push(check);
    }
    Ok(SqlStep {
        url,
        query: q.clone(),
        params,
        checks,
        writes: raw.writes,
    })
}

/// A database URL: `{{ env.NAME }}` allowed, nothing per request. The
/// value is never echoed (it holds a password).
pub(crate) fn database_url(c: &Compiler<'_>, u: &Spanned<String>) -> Result<String, Diagnostic> {
    let t = c.template(u)?;
    let text = t.as_literal().ok_or_else(|| {
        c.err(
            u.span(),
            "a database URL may use {{ env.NAME }} but no per-request placeholder",
        )
    })?;
    text.parse::<tokio_postgres::Config>().map_err(|e| {
        c.err(u.span(), format!("invalid database URL: {e}"))
            .with_hint("write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
    })?;
    Ok(text.to_string())
}

/// What to redact for a database URL: the URL and its password.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Ok(cfg) = url.parse::<tokio_postgres::Config>()
        && let Some(pw) = cfg.get_password()
    {
        out.push(String::from_utf8_lossy(pw).into_owned());
    }
    out
}

/// Statements that change data, schema, permissions or the transaction
/// itself (which could lift `READ ONLY`). Refused at load unless
/// `writes = true`.
const WRITE_KEYWORDS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "TRUNCATE",
    "CREATE",
    "DROP",
    "ALTER",
    "GRANT",
    "REVOKE",
    "COPY",
    "CALL",
    "DO",
    "VACUUM",
    "REINDEX",
    "CLUSTER",
    "LOCK",
    "REFRESH",
    "COMMENT",
    "SECURITY",
    "SET",
    "RESET",
    "BEGIN",
    "START",
    "COMMIT",
    "ROLLBACK",
    "ABORT",
    "END",
    "SAVEPOINT",
    "RELEASE",
    "PREPARE",
    "EXECUTE",
    "DISCARD",
    "IMPORT",
    "REASSIGN",
    "NOTIFY",
    "LISTEN",
    "UNLISTEN",
    "LOAD",
];

/// The first keyword of `query` that writes (outside string literals,
/// quoted identifiers and comments), with its byte range.
pub fn first_write_keyword(query: &str) -> Option<(Range<usize>, &'static str)> {
    let b = query.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                // $1 placeholders, or a $tag$ ... $tag$ dollar-quoted string.
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if b.get(i) == Some(&b'$') {
                    let tag = &query[start..=i];
                    i += 1;
                    i = query[i..]
                        .find(tag)
                        .map_or(b.len(), |at| i + at + tag.len());
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &query[start..i];
                if let Some(k) = WRITE_KEYWORDS.iter().find(|k| k.eq_ignore_ascii_case(word)) {
                    return Some((start..i, k));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Evaluates one row check against `rows`; `expected` is the rendered
/// `equals` of a value check. `Err` says what was found instead.
pub fn evaluate(check: &RowCheck, rows: &Rows, expected: Option<&Value>) -> Result<(), String> {
    match check {
        RowCheck::Rows(n) => {
            if rows.rows.len() == *n {
                Ok(())
            } else {
                Err(format!("expected {n} rows, found {}", rows.rows.len()))
            }
        }
        RowCheck::Value { row, column, .. } => {
            let Some(r) = rows.rows.get(*row) else {
                return Err(format!(
                    "no row {row}: the query returned {} rows",
                    rows.rows.len()
                ));
            };
            let Some(ci) = rows.columns.iter().position(|c| c == column) else {
                return Err(format!(
                    "no column {column:?} (columns: {})",
                    rows.columns.join(", ")
                ));
            };
            let found = &r[ci];
            let want = expected.unwrap_or(&Value::Null);
            if loosely_equal(found, want) {
                Ok(())
            } else {
                Err(format!("{column} is {found}, expected {want}"))
            }
        }
    }
}

/// Numbers and their text compare equal (`count(*)` is a number, a
/// captured id may be text).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_found_outside_literals_and_comments() {
        assert_eq!(
            first_write_keyword("SELECT count(*) FROM orders WHERE k = $1"),
            None
        );
        assert_eq!(
            first_write_keyword("SELECT 'DELETE' AS x -- drop\n, \"update\" FROM t /* insert */"),
            None
        );
        assert_eq!(first_write_keyword("SELECT $q$ drop $q$"), None);
        let q = "WITH x AS (DELETE FROM orders RETURNING 1) SELECT * FROM x";
        let (at, k) = first_write_keyword(q).unwrap();
        assert_eq!((&q[at], k), ("DELETE", "DELETE"));
        assert_eq!(first_write_keyword("commit").unwrap().1, "COMMIT");
        assert_eq!(
            first_write_keyword("set transaction read write").unwrap().1,
            "SET"
        );
        // Words that merely contain a keyword are not keywords.
        assert_eq!(
            first_write_keyword("SELECT updated_at, offset_x FROM t"),
            None
        );
    }

    fn rows() -> Rows {
        Rows {
            columns: vec!["n".into(), "ref".into()],
            rows: vec![vec![Value::from(1), Value::from("PO-1")]],
        }
    }

    #[test]
    fn row_checks() {
        assert_eq!(evaluate(&RowCheck::Rows(1), &rows(), None), Ok(()));
        assert_eq!(
            evaluate(&RowCheck::Rows(2), &rows(), None),
            Err("expected 2 rows, found 1".into())
        );
        let value = |row, column: &str| RowCheck::Value {
            row,
            column: column.into(),
            equals: JsonTemplate::Fixed(Value::Null),
            shown: String::new(),
        };
        assert_eq!(
            evaluate(&value(0, "n"), &rows(), Some(&Value::from("1"))),
            Ok(())
        );
        assert_eq!(
            evaluate(&value(0, "n"), &rows(), Some(&Value::from(2))),
            Err("n is 1, expected 2".into())
        );
        assert!(
            evaluate(&value(1, "n"), &rows(), Some(&Value::from(1)))
                .unwrap_err()
                .contains("no row 1")
        );
        assert!(
            evaluate(&value(0, "x"), &rows(), Some(&Value::from(1)))
                .unwrap_err()
                .contains("no column")
        );
    }
}
