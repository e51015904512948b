//! The PostgreSQL side of the `sql` and `rls` steps: each virtual user's
//! connections ([`Connections`], one per database URL, opened on first use,
//! their I/O task spawned on the worker's runtime), queries run in a
//! transaction that is `READ ONLY` unless the step writes, rows read as
//! JSON, and failures classified as the report counts them.
//!
//! TLS is not supported yet: URLs must allow a plain connection (loopback
//! or a private network), which `sslmode=require` does not.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::types::{Format, IsNull, ToSql, Type};

use crate::metrics::ErrorCause;

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
