//! The `sql` and `rls` steps: what an API answer cannot prove, the database
//! can. A `sql` step runs one query against PostgreSQL, with parameters
//! bound from the journey's variables, and checks its rows (one order per
//! idempotency key, one ledger row per delivery). An `rls` step runs the
//! row-level-security coverage probe of [`crate::rls`].
//!
//! Queries are read-only unless the scenario says `writes = true`: statements
//! that write are refused at load (a [`Diagnostic`] pointing at `query`), and
//! every query runs inside `BEGIN READ ONLY`, so PostgreSQL itself refuses
//! whatever the load-time scan missed.
//!
//! Each virtual user opens its own connection per database URL on first use
//! ([`Connections`]); the connection task is spawned on the worker's runtime.
//! TLS is not supported yet: URLs must allow a plain connection (loopback or
//! a private network), which `sslmode=require` does not.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};
use toml::Spanned;

use super::diagnostic::Diagnostic;
use super::model::JsonTemplate;
use super::parse::Compiler;
use super::template::Template;
use crate::metrics::ErrorCause;

/// The table of a `sql` step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSql {
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
pub(super) struct RawRowCheck {
    pub rows: Option<Spanned<i64>>,
    pub row: Option<Spanned<i64>>,
    pub column: Option<Spanned<String>>,
    pub equals: Option<Spanned<super::source::SpannedValue>>,
}

/// The table of an `rls` step, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRls {
    pub url: Spanned<String>,
    pub tenant_columns: Option<Spanned<Vec<String>>>,
    pub min_coverage: Option<Spanned<String>>,
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

impl Rows {
    /// The rows for a failure sample: columns, then up to 20 rows as JSON.
    pub fn show(&self) -> String {
        let mut s = format!(
            "{} rows; columns: {}\n",
            self.rows.len(),
            self.columns.join(", ")
        );
        for r in self.rows.iter().take(20) {
            s.push_str(&serde_json::to_string(r).unwrap_or_default());
            s.push('\n');
        }
        s
    }
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

/// Compiles a `[step.sql]` table.
pub(super) fn compile_sql(c: &Compiler<'_>, raw: &RawSql) -> Result<SqlStep, Diagnostic> {
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

/// Compiles a `[step.rls]` table.
pub(super) fn compile_rls(c: &Compiler<'_>, raw: &RawRls) -> Result<RlsStep, Diagnostic> {
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

/// A database URL: `{{ env.NAME }}` allowed, nothing per request. The
/// value is never echoed (it holds a password).
fn database_url(c: &Compiler<'_>, u: &Spanned<String>) -> Result<String, Diagnostic> {
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

impl RlsStep {
    /// The step's verdict check: `rls coverage >= 100%`.
    pub fn label(&self) -> String {
        format!("rls coverage >= {}%", self.min_coverage * 100.0)
    }
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

/// A query or connection failure: what the report counts, and why.
#[derive(Debug, Clone)]
pub struct SqlFailure {
    /// The cause the step's metric counts.
    pub cause: ErrorCause,
    /// What happened (may contain the URL's parts: scrub before showing).
    pub message: String,
}

impl SqlFailure {
    /// Classifies a driver error; `doing` says what was being done.
    pub fn from_pg(e: &tokio_postgres::Error, doing: &str) -> Self {
        use std::error::Error as _;
        let io = e
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        let cause = match io {
            Some(std::io::ErrorKind::ConnectionRefused) => ErrorCause::Refused,
            Some(std::io::ErrorKind::TimedOut) => ErrorCause::Timeout,
            Some(
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof,
            ) => ErrorCause::Reset,
            Some(_) => ErrorCause::Connect,
            None if e.is_closed() => ErrorCause::Reset,
            None => ErrorCause::Other,
        };
        let detail = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => format!("{e:#}"),
        };
        SqlFailure {
            cause,
            message: format!("{doing}: {detail}"),
        }
    }

    /// No answer within `after`.
    pub fn timeout(doing: &str, after: Duration) -> Self {
        SqlFailure {
            cause: ErrorCause::Timeout,
            message: format!("{doing}: no answer within {after:?}"),
        }
    }
}

/// A virtual user's database connections, one per URL, opened on first use.
#[derive(Default)]
pub struct Connections {
    open: HashMap<String, tokio_postgres::Client>,
}

impl Connections {
    /// The connection to `url`, opening it (within `timeout`) if there is
    /// none or the last one closed.
    pub async fn get(
        &mut self,
        url: &str,
        timeout: Duration,
    ) -> Result<&tokio_postgres::Client, SqlFailure> {
        if self.open.get(url).is_some_and(|c| c.is_closed()) {
            self.open.remove(url);
        }
        if !self.open.contains_key(url) {
            let client = connect(url, timeout).await?;
            self.open.insert(url.to_string(), client);
        }
        Ok(self.open.get(url).expect("inserted above"))
    }

    /// Forgets the connection to `url` (after a failure that may have left
    /// it in an unknown state).
    pub fn drop_connection(&mut self, url: &str) {
        self.open.remove(url);
    }
}

/// Opens a connection and spawns its I/O task on the current runtime.
pub async fn connect(url: &str, timeout: Duration) -> Result<tokio_postgres::Client, SqlFailure> {
    let doing = "connecting to the database";
    let (client, connection) =
        match tokio::time::timeout(timeout, tokio_postgres::connect(url, tokio_postgres::NoTls))
            .await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(SqlFailure::from_pg(&e, doing)),
            Err(_) => return Err(SqlFailure::timeout(doing, timeout)),
        };
    // Ends by itself when the client is dropped; errors surface on the
    // client's next call.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A parameter sent in text format, so PostgreSQL parses it as whatever
/// type the placeholder has (integer, uuid, timestamptz, ...).
#[derive(Debug)]
struct TextParam(String);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// The rows of a query: column names, and one JSON value per column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Value>>,
}

/// Runs `query` with `params` (rendered text) in a transaction: `READ ONLY`
/// and rolled back unless `writes`, else committed.
pub async fn query(
    client: &tokio_postgres::Client,
    query: &str,
    params: &[String],
    writes: bool,
    timeout: Duration,
) -> Result<Rows, SqlFailure> {
    let work = async {
        let begin = if writes { "BEGIN" } else { "BEGIN READ ONLY" };
        client
            .batch_execute(begin)
            .await
            .map_err(|e| SqlFailure::from_pg(&e, "starting the transaction"))?;
        let bound: Vec<TextParam> = params.iter().cloned().map(TextParam).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let result = client.query(query, &refs).await;
        let end = if writes && result.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        // End the transaction even when the query failed: the connection
        // is reused by the user's next query.
        let ended = client.batch_execute(end).await;
        let rows = result.map_err(|e| SqlFailure::from_pg(&e, "running the query"))?;
        ended.map_err(|e| SqlFailure::from_pg(&e, "ending the transaction"))?;
        let columns = rows
            .first()
            .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
            .unwrap_or_default();
        let rows = rows
            .iter()
            .map(|r| (0..r.len()).map(|i| column_value(r, i)).collect())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rows { columns, rows })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(SqlFailure::timeout("running the query", timeout)),
    }
}

/// One column of a row as JSON.
fn column_value(row: &tokio_postgres::Row, i: usize) -> Result<Value, SqlFailure> {
    let col = &row.columns()[i];
    let bad = |e: tokio_postgres::Error| SqlFailure::from_pg(&e, "reading the rows");
    let ty = col.type_();
    let v = match *ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(bad)?
            .map(Value::from),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => row
            .try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map(Value::from),
        _ => {
            return Err(SqlFailure {
                cause: ErrorCause::Other,
                message: format!(
                    "column {:?} has type {}, which the sql step does not read: cast it in the query ({}::text or {}::bigint)",
                    col.name(),
                    ty.name(),
                    col.name(),
                    col.name()
                ),
            });
        }
    };
    Ok(v.unwrap_or(Value::Null))
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

    #[test]
    fn coverage_thresholds_parse() {
        assert_eq!(parse_fraction("100%"), Ok(1.0));
        assert_eq!(parse_fraction("0.9"), Ok(0.9));
        assert!(parse_fraction("120%").is_err());
        assert!(parse_fraction("all").is_err());
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
