//! The target's PostgreSQL backend (`convoy target --database-url URL`):
//! tenants, orders with their idempotency keys, and `order_adjustments`, in
//! the schema of `migrations/`.
//!
//! Tenant isolation is the database's job. Startup migrates as the URL's
//! role, then every pooled connection switches to `convoy_app` (not a
//! superuser, no `BYPASSRLS`, owns nothing: startup refuses to serve if it
//! would bypass row-level security), and every request runs in one
//! transaction that sets its tenant with `set_config('app.tenant', $1,
//! true)`. The queries below carry no `tenant_id` filter on purpose: the
//! policies of `0001_orders_rls.sql` are all that keeps one tenant from
//! another's rows, so a test that disables them sees the API leak (and the
//! `rls` scenario step sees the coverage drop).
//!
//! Idempotent creation is `INSERT ... ON CONFLICT DO NOTHING` against the
//! per-tenant unique key `(tenant_id, idempotency_key)`; when nothing was
//! inserted the first order's stored answer (fingerprint, status, body) is
//! read back. Concurrent duplicates wait on the unique index for the first
//! transaction, so exactly one order is created.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use tokio_postgres::Row;
use uuid::Uuid;

use super::TENANTS;
use super::error::ApiError;
use super::migrate as schema;
use super::pool::{APP_ROLE, PgConn, Pool};
use super::storage::{Creation, Edited, OrderFilter};
use super::store::{Adjustment, DriverStats, IdempotentAnswer, Order, OrderStatus, TenantId};

/// A PostgreSQL connection URL. It holds a password, so it never prints:
/// `Debug` and `Display` show only where it points.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl DatabaseUrl {
    /// The URL itself, to connect with. Never print it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// `postgres://HOST:PORT/DATABASE`, without user and password, or a
    /// placeholder when the URL does not parse.
    pub fn redacted(&self) -> String {
        let Ok(config) = self.0.parse::<tokio_postgres::Config>() else {
            return "<invalid database URL>".to_string();
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or_default();
        format!("postgres://{host}:{port}/{db}")
    }

    /// Removes the URL and its password from `message`.
    fn scrub(&self, message: &str) -> String {
        // The URL itself and its password, however the driver quoted them.
        let mut secrets = vec![self.0.clone()];
        if let Ok(cfg) = self.0.parse::<tokio_postgres::Config>()
            && let Some(pw) = cfg.get_password()
        {
            secrets.push(String::from_utf8_lossy(pw).into_owned());
        }
        secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(message.to_string(), |m, secret| m.replace(secret, "***"))
    }

    /// Parses the URL; the error never repeats it.
    pub(crate) fn config(&self) -> Result<tokio_postgres::Config, TargetError> {
        self.0.parse().map_err(|e: tokio_postgres::Error| {
            TargetError::InvalidDatabaseUrl(self.scrub(&e.to_string()))
        })
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why the target cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The configuration cannot work (a usage error).
    #[error("{0}")]
    Config(String),
    /// `--database-url` does not parse.
    #[error("invalid database URL: {0}; write postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    InvalidDatabaseUrl(String),
    /// The database cannot be reached or refused the connection.
    #[error("cannot connect to the database at {at}: {reason}")]
    DatabaseUnreachable {
        /// Where, without user and password.
        at: String,
        /// The driver's reason.
        reason: String,
    },
    /// The database answered, but setting it up failed.
    #[error("cannot prepare the database at {at}: {reason}")]
    DatabaseSetup {
        /// Where, without user and password.
        at: String,
        /// What failed.
        reason: String,
    },
}

impl TargetError {
    /// Whether this is the user's mistake (exit code 3) rather than a
    /// failure of the environment (exit code 4).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            TargetError::Config(_) | TargetError::InvalidDatabaseUrl(_)
        )
    }
}

/// Timestamps as the memory backend writes them: RFC 3339, milliseconds, UTC.
macro_rules! rfc3339 {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        )
    };
}

/// The columns [`order_from_row`] reads, after the internal id.
macro_rules! order_columns {
    () => {
        concat!(
            "id, public_id::text, tenant_id, reference, status, pickup::text, dropoff::text, \
             stops::text, weight_kg, created_by, driver_id, route::text, idempotency_key, ",
            rfc3339!("created_at"),
            ", ",
            rfc3339!("updated_at")
        )
    };
}

const SET_TENANT: &str = "SELECT set_config('app.tenant', $1, true)";

const INSERT_ORDER: &str = "\
INSERT INTO orders (public_id, tenant_id, reference, status, pickup, dropoff, stops, weight_kg,
                    created_by, idempotency_key, created_at, updated_at,
                    idempotency_fingerprint, idempotency_status, idempotency_response)
     VALUES ($1::text::uuid, $2, $3, 'created', $4::text::jsonb, $5::text::jsonb, $6::text::jsonb, $7,
             $8, $9, $10::text::timestamptz, $10::text::timestamptz, $11, $12, $13)
ON CONFLICT DO NOTHING
  RETURNING id";

const FIRST_ANSWER: &str = "\
SELECT idempotency_fingerprint, idempotency_status, public_id::text, idempotency_response
  FROM orders WHERE idempotency_key = $1 ORDER BY id LIMIT 1";

const ORDER_BY_ID: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE public_id = $1::text::uuid"
);

const ORDER_FOR_UPDATE: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE public_id = $1::text::uuid FOR UPDATE"
);

const LIST_ORDERS: &str = concat!(
    "SELECT ",
    order_columns!(),
    ", count(*) OVER () FROM orders \
      WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR idempotency_key = $2) \
      ORDER BY id LIMIT $3"
);

const UPDATE_ORDER: &str = "\
UPDATE orders SET reference = $2, status = $3, pickup = $4::text::jsonb, dropoff = $5::text::jsonb,
                  stops = $6::text::jsonb, weight_kg = $7, driver_id = $8, route = $9::text::jsonb,
                  updated_at = $10::text::timestamptz
 WHERE id = $1";

const INSERT_ADJUSTMENT: &str = "\
INSERT INTO order_adjustments (public_id, tenant_id, order_id, kind, amount_cents, currency, created_at)
     VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7::text::timestamptz)";

const DELETE_ORDER: &str = "DELETE FROM orders WHERE id = $1";

const ADJUSTMENTS: &str = concat!(
    "SELECT o.id, a.public_id::text, a.amount_cents, a.currency, a.kind, ",
    rfc3339!("a.created_at"),
    " FROM orders o LEFT JOIN order_adjustments a ON a.order_id = o.id \
      WHERE o.public_id = $1::text::uuid ORDER BY a.id"
);

const DRIVER_STATS: &str = "\
SELECT driver_id,
       count(*) FILTER (WHERE status IN ('accepted', 'routed')),
       count(*) FILTER (WHERE status = 'delivered')
  FROM orders WHERE driver_id = ANY($1) GROUP BY driver_id";

const LEDGER_ROWS: &str = "SELECT count(*) FROM order_adjustments";

/// The target's data in PostgreSQL.
#[derive(Debug)]
pub(crate) struct PgStore {
    pool: Pool,
    at: String,
}

fn db(e: tokio_postgres::Error) -> ApiError {
    ApiError::storage(&e)
}

/// A row that the API cannot answer with (written by hand, say).
fn bad_row(what: impl fmt::Display) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        code: "storage_invalid_row",
        message: format!("an order in the database cannot be read: {what}").into(),
        field: None,
    }
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &Row,
    i: usize,
    name: &str,
) -> Result<T, ApiError> {
    let text: Option<String> = row.try_get(i).map_err(db)?;
    let text = text.ok_or_else(|| bad_row(format_args!("{name} is NULL")))?;
    serde_json::from_str(&text).map_err(|e| bad_row(format_args!("{name}: {e}")))
}

fn tenant_of(name: &str) -> Result<&'static str, ApiError> {
    TenantId::from_name(name)
        .map(TenantId::name)
        .ok_or_else(|| bad_row(format_args!("unknown tenant {name:?}")))
}

/// The internal id and the order of a row selected with `order_columns!`.
fn order_from_row(row: &Row) -> Result<(i64, Order), ApiError> {
    let id: i64 = row.try_get(0).map_err(db)?;
    let public_id: String = row.try_get(1).map_err(db)?;
    let tenant: String = row.try_get(2).map_err(db)?;
    let status: String = row.try_get(4).map_err(db)?;
    let route: Option<String> = row.try_get(11).map_err(db)?;
    let order = Order {
        id: Uuid::parse_str(&public_id).map_err(bad_row)?,
        tenant: tenant_of(&tenant)?,
        reference: row.try_get(3).map_err(db)?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| bad_row(format_args!("unknown status {status:?}")))?,
        pickup: json_column(row, 5, "pickup")?,
        dropoff: json_column(row, 6, "dropoff")?,
        stops: json_column(row, 7, "stops")?,
        weight_kg: row
            .try_get::<_, Option<f64>>(8)
            .map_err(db)?
            .ok_or_else(|| bad_row("weight_kg is NULL"))?,
        created_by: row
            .try_get::<_, Option<String>>(9)
            .map_err(db)?
            .unwrap_or_default(),
        driver_id: row.try_get(10).map_err(db)?,
        route: match route {
            None => None,
            Some(text) => {
                Some(serde_json::from_str(&text).map_err(|e| bad_row(format_args!("route: {e}")))?)
            }
        },
        idempotency_key: row.try_get(12).map_err(db)?,
        created_at: row.try_get(13).map_err(db)?,
        updated_at: row.try_get(14).map_err(db)?,
    };
    Ok((id, order))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("orders serialise")
}

/// Starts a transaction in `tenant`: every statement of it sees and writes
/// only that tenant's rows.
/// The tenant's order `id` (the transaction's tenant), locked until the
/// transaction ends by `select` (`ORDER_FOR_UPDATE`); a 404 when there is
/// none.
async fn lock_order(
    tx: &tokio_postgres::Transaction<'_>,
    select: &tokio_postgres::Statement,
    id: Uuid,
) -> Result<(i64, Order), ApiError> {
    let row = tx
        .query_opt(select, &[&id.to_string()])
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found("order"))?;
    order_from_row(&row)
}

async fn begin(
    conn: &mut PgConn,
    tenant: TenantId,
    read_only: bool,
) -> Result<tokio_postgres::Transaction<'_>, tokio_postgres::Error> {
    let set = conn.statement(SET_TENANT).await?;
    let tx = conn
        .client
        .build_transaction()
        .read_only(read_only)
        .start()
        .await?;
    tx.query_one(&set, &[&tenant.name()]).await?;
    Ok(tx)
}

impl PgStore {
    /// Connects, migrates, seeds the tenants, and checks that requests will
    /// run under row-level security. Returns the store and the migrations
    /// applied now.
    pub async fn start(
        url: &super::DatabaseUrl,
        pool_size: usize,
    ) -> Result<(PgStore, Vec<&'static str>), TargetError> {
        let (config, applied) = prepare_database(url).await?;
        let at = url.redacted();
        let setup = |what: &str, e: tokio_postgres::Error| TargetError::DatabaseSetup {
            at: at.clone(),
            reason: url.scrub(&format!("{what}: {}", pg_reason(&e))),
        };
        let pool = Pool::new(config, pool_size);
        {
            let conn = pool
                .get()
                .await
                .map_err(|e| setup(&format!("switching to role {APP_ROLE}"), e))?;
            let row = conn
                .client
                .query_one(
                    "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
                    &[],
                )
                .await
                .map_err(|e| setup("reading the request role", e))?;
            let (role, superuser, bypass): (String, bool, bool) =
                (row.get(0), row.get(1), row.get(2));
            if superuser || bypass {
                return Err(TargetError::DatabaseSetup {
                    at: at.clone(),
                    reason: format!(
                        "requests would run as {role}, which {} row-level security; refusing to serve",
                        if superuser {
                            "as a superuser bypasses"
                        } else {
                            "has BYPASSRLS and bypasses"
                        }
                    ),
                });
            }
        }
        Ok((PgStore { pool, at }, applied))
    }

    /// Where the store is, without user and password, and how many
    /// connections it may open.
    pub fn describe(&self) -> String {
        format!(
            "PostgreSQL at {} (requests as role {APP_ROLE} under row-level security, up to {} connections)",
            self.at,
            self.pool.size()
        )
    }

    pub async fn create_order(
        &self,
        tenant: TenantId,
        order: &Order,
        answer: &IdempotentAnswer,
    ) -> Result<Creation, ApiError> {
        let mut conn = self.pool.get().await.map_err(db)?;
        let insert = conn.statement(INSERT_ORDER).await.map_err(db)?;
        let first = conn.statement(FIRST_ANSWER).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, false).await.map_err(db)?;
        let id = order.id.to_string();
        let (pickup, dropoff, stops) = (
            to_json(&order.pickup),
            to_json(&order.dropoff),
            to_json(&order.stops),
        );
        let keyed = order.idempotency_key.is_some();
        let fingerprint = keyed.then_some(&answer.fingerprint[..]);
        let status = keyed.then_some(answer.status.as_u16() as i16);
        let body = keyed.then(|| String::from_utf8_lossy(&answer.body).into_owned());
        // Two rounds at most: the first order of the key may be deleted
        // between our insert and our read.
        for _ in 0..2 {
            let inserted = tx
                .query(
                    &insert,
                    &[
                        &id,
                        &tenant.name(),
                        &order.reference,
                        &pickup,
                        &dropoff,
                        &stops,
                        &order.weight_kg,
                        &order.created_by,
                        &order.idempotency_key,
                        &order.created_at,
                        &fingerprint,
                        &status,
                        &body,
                    ],
                )
                .await
                .map_err(db)?;
            if !inserted.is_empty() {
                tx.commit().await.map_err(db)?;
                return Ok(Creation::Created);
            }
            let Some(key) = &order.idempotency_key else {
                break;
            };
            if let Some(row) = tx.query_opt(&first, &[key]).await.map_err(db)? {
                let existing = first_answer(&row)?;
                tx.commit().await.map_err(db)?;
                return Ok(Creation::Existing(existing));
            }
        }
        Err(ApiError::conflict(
            "idempotency_conflict",
            "the order could not be stored: retry the request",
        ))
    }

    pub async fn list_orders(
        &self,
        tenant: TenantId,
        filter: OrderFilter<'_>,
    ) -> Result<(Vec<Order>, usize), ApiError> {
        let mut conn = self.pool.get().await.map_err(db)?;
        let list = conn.statement(LIST_ORDERS).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, true).await.map_err(db)?;
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows = tx
            .query(
                &list,
                &[
                    &filter.status.map(OrderStatus::as_str),
                    &filter.idempotency_key,
                    &limit,
                ],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let total = rows
            .first()
            .map_or(Ok(0), |r| r.try_get::<_, i64>(15))
            .map_err(db)?;
        let orders = rows
            .iter()
            .map(|r| order_from_row(r).map(|(_, o)| o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((orders, usize::try_from(total).unwrap_or(0)))
    }

    pub async fn order(&self, tenant: TenantId, id: Uuid) -> Result<Option<Order>, ApiError> {
        let mut conn = self.pool.get().await.map_err(db)?;
        let select = conn.statement(ORDER_BY_ID).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, true).await.map_err(db)?;
        let row = tx
            .query_opt(&select, &[&id.to_string()])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(|r| order_from_row(&r).map(|(_, o)| o)).transpose()
    }

    pub async fn edit_order<T, F>(&self, tenant: TenantId, id: Uuid, edit: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Order) -> Result<Edited<T>, ApiError> + Send,
        T: Send,
    {
        let mut conn = self.pool.get().await.map_err(db)?;
        let select = conn.statement(ORDER_FOR_UPDATE).await.map_err(db)?;
        let update = conn.statement(UPDATE_ORDER).await.map_err(db)?;
        let ledger = conn.statement(INSERT_ADJUSTMENT).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, false).await.map_err(db)?;
        let (internal, mut order) = lock_order(&tx, &select, id).await?;
        // An error drops the transaction, which rolls it back.
        let (answer, adjustment) = edit(&mut order)?;
        let route = order.route.as_ref().map(to_json);
        tx.execute(
            &update,
            &[
                &internal,
                &order.reference,
                &order.status.as_str(),
                &to_json(&order.pickup),
                &to_json(&order.dropoff),
                &to_json(&order.stops),
                &order.weight_kg,
                &order.driver_id,
                &route,
                &order.updated_at,
            ],
        )
        .await
        .map_err(db)?;
        if let Some(a) = adjustment {
            tx.execute(
                &ledger,
                &[
                    &a.id.to_string(),
                    &a.tenant,
                    &internal,
                    &a.reason.as_ref(),
                    &a.amount,
                    &a.currency.as_ref(),
                    &a.created_at,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(answer)
    }

    pub async fn delete_order<F>(
        &self,
        tenant: TenantId,
        id: Uuid,
        allow: F,
    ) -> Result<(), ApiError>
    where
        F: FnOnce(&Order) -> Result<(), ApiError> + Send,
    {
        let mut conn = self.pool.get().await.map_err(db)?;
        let select = conn.statement(ORDER_FOR_UPDATE).await.map_err(db)?;
        let delete = conn.statement(DELETE_ORDER).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, false).await.map_err(db)?;
        let (internal, order) = lock_order(&tx, &select, id).await?;
        allow(&order)?;
        tx.execute(&delete, &[&internal]).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub async fn adjustments(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<Vec<Adjustment>>, ApiError> {
        let mut conn = self.pool.get().await.map_err(db)?;
        let select = conn.statement(ADJUSTMENTS).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, true).await.map_err(db)?;
        let rows = tx.query(&select, &[&id.to_string()]).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut adjustments = Vec::new();
        for row in &rows {
            let Some(public_id) = row.try_get::<_, Option<String>>(1).map_err(db)? else {
                continue; // the order has no ledger row (LEFT JOIN)
            };
            adjustments.push(Adjustment {
                id: Uuid::parse_str(&public_id).map_err(bad_row)?,
                order_id: id,
                tenant: tenant.name(),
                amount: row.try_get(2).map_err(db)?,
                currency: row.try_get::<_, String>(3).map_err(db)?.into(),
                reason: row.try_get::<_, String>(4).map_err(db)?.into(),
                created_at: row.try_get(5).map_err(db)?,
            });
        }
        Ok(Some(adjustments))
    }

    pub async fn driver_stats(
        &self,
        tenant: TenantId,
        drivers: &[&str],
    ) -> Result<Vec<DriverStats>, ApiError> {
        let mut conn = self.pool.get().await.map_err(db)?;
        let select = conn.statement(DRIVER_STATS).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, true).await.map_err(db)?;
        let rows = tx.query(&select, &[&drivers]).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut stats = vec![DriverStats::default(); drivers.len()];
        for row in &rows {
            let driver: String = row.try_get(0).map_err(db)?;
            let (active, delivered): (i64, i64) =
                (row.try_get(1).map_err(db)?, row.try_get(2).map_err(db)?);
            for (slot, _) in stats.iter_mut().zip(drivers).filter(|(_, d)| **d == driver) {
                *slot = DriverStats {
                    active: usize::try_from(active).unwrap_or(0),
                    delivered: usize::try_from(delivered).unwrap_or(0),
                };
            }
        }
        Ok(stats)
    }

    pub async fn ledger_rows(&self, tenant: TenantId) -> Result<usize, ApiError> {
        let mut conn = self.pool.get().await.map_err(db)?;
        let select = conn.statement(LEDGER_ROWS).await.map_err(db)?;
        let tx = begin(&mut conn, tenant, true).await.map_err(db)?;
        let n: i64 = tx.query_one(&select, &[]).await.map_err(db)?.get(0);
        tx.commit().await.map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// Applies the pending migrations of `migrations/` to the database at `url`
/// and seeds the tenants, as `convoy target --database-url` does at startup,
/// with the URL's role (which must be able to create tables and the role
/// `convoy_app`). Returns the versions applied now: none when the schema is
/// up to date.
pub async fn migrate(url: &DatabaseUrl) -> Result<Vec<&'static str>, TargetError> {
    prepare_database(url).await.map(|(_, applied)| applied)
}

/// [`migrate`], also returning the parsed connection configuration.
async fn prepare_database(
    url: &DatabaseUrl,
) -> Result<(tokio_postgres::Config, Vec<&'static str>), TargetError> {
    let mut config = url.config()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    let at = url.redacted();
    let setup = |what: &str, e: tokio_postgres::Error| TargetError::DatabaseSetup {
        at: at.clone(),
        reason: url.scrub(&format!("{what}: {}", pg_reason(&e))),
    };
    let (mut admin, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        TargetError::DatabaseUnreachable {
            at: at.clone(),
            reason: url.scrub(&pg_reason(&e)),
        }
    })?;
    let io = tokio::spawn(async move {
        let _ = connection.await;
    });
    let applied = schema::migrate(&mut admin)
        .await
        .map_err(|e| setup("applying migrations", e))?;
    let names: Vec<String> = TENANTS.iter().map(|t| capitalised(t)).collect();
    admin
        .execute(
            "INSERT INTO tenants (id, name) SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT (id) DO NOTHING",
            &[&TENANTS, &names],
        )
        .await
        .map_err(|e| setup("seeding the tenants", e))?;
    drop(admin);
    io.abort();
    Ok((config, applied))
}

/// The stored first answer of a key.
fn first_answer(row: &Row) -> Result<IdempotentAnswer, ApiError> {
    let fingerprint: Option<Vec<u8>> = row.try_get(0).map_err(db)?;
    let status: Option<i16> = row.try_get(1).map_err(db)?;
    let order_id: String = row.try_get(2).map_err(db)?;
    let body: Option<String> = row.try_get(3).map_err(db)?;
    let (Some(fingerprint), Some(status), Some(body)) = (fingerprint, status, body) else {
        return Err(bad_row(
            "an order with an Idempotency-Key has no stored answer",
        ));
    };
    Ok(IdempotentAnswer {
        fingerprint: fingerprint
            .try_into()
            .map_err(|_| bad_row("the stored fingerprint is not 32 bytes"))?,
        status: u16::try_from(status)
            .ok()
            .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
            .ok_or_else(|| bad_row("the stored status is not an HTTP status"))?,
        order_id: Uuid::parse_str(&order_id).map_err(bad_row)?,
        body: Bytes::from(body),
    })
}

/// The driver's reason, with the server's message when there is one.
fn pg_reason(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => match e.source() {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_print_their_credentials() {
        let url = DatabaseUrl::from("postgres://app:s3cret@db.internal:6543/convoy".to_string());
        for shown in [format!("{url}"), format!("{url:?}"), url.redacted()] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(!shown.contains("app:"), "{shown}");
            assert!(shown.contains("db.internal:6543/convoy"), "{shown}");
        }
        assert_eq!(
            url.scrub("failed for postgres://app:s3cret@db.internal:6543/convoy and s3cret"),
            "failed for *** and ***"
        );
    }

    #[test]
    fn invalid_urls_are_usage_errors_that_do_not_repeat_them() {
        let url = DatabaseUrl::from("postgres://u:pw@host:notaport/db".to_string());
        let err = url.config().unwrap_err();
        assert!(err.is_usage());
        assert!(!err.to_string().contains("pw@"), "{err}");
        assert_eq!(url.redacted(), "<invalid database URL>");
    }

    #[test]
    fn timestamps_are_read_as_the_memory_backend_writes_them() {
        assert_eq!(
            rfc3339!("created_at"),
            "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        );
        assert_eq!(capitalised("acme"), "Acme");
    }
}
