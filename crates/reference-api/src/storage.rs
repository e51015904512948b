//! Where the target keeps its data: in memory ([`Store`], the default) or in
//! PostgreSQL ([`PgStore`], `convoy target --database-url`).
//!
//! Handlers hold the API's rules (who may act, which transition is legal,
//! what the answer looks like) and call the operations of [`Storage`], which
//! are the same for both backends, so the HTTP API cannot drift between
//! them. An edit is a closure over the stored order: the memory backend runs
//! it under the tenant's lock, the PostgreSQL backend between a
//! `SELECT ... FOR UPDATE` and the `UPDATE` of one transaction, so in both a
//! check and the write that depends on it are atomic. A ledger row an edit
//! returns is written in the same critical section or transaction.

use uuid::Uuid;

use super::error::ApiError;
use super::postgres::PgStore;
use super::store::{
    Adjustment, DriverStats, IdempotentAnswer, Order, OrderStatus, Store, TenantId,
};

/// The target's data, in one of its backends.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Per-tenant maps behind mutexes.
    Memory(Store),
    /// Tables in PostgreSQL behind row-level security.
    Postgres(Box<PgStore>),
}

/// What storing a new order found.
#[derive(Debug)]
pub(crate) enum Creation {
    /// The order was stored, and with it its answer if it had a key.
    Created,
    /// The order's `Idempotency-Key` was used before: its first answer (the
    /// new order was not stored).
    Existing(IdempotentAnswer),
}

/// Which orders a listing wants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderFilter<'a> {
    pub status: Option<OrderStatus>,
    pub idempotency_key: Option<&'a str>,
    /// Most orders returned; the total counts them all.
    pub limit: usize,
}

/// What an edit of an order answers, and the ledger row it books, if any.
pub(crate) type Edited<T> = (T, Option<Adjustment>);

impl Storage {
    /// Stores `order`, unless its `Idempotency-Key` was used before in the
    /// tenant (when `enforce_key`): then the first answer comes back instead.
    /// `answer` is what a replay of this creation will get.
    pub async fn create_order(
        &self,
        tenant: TenantId,
        order: Order,
        answer: IdempotentAnswer,
        enforce_key: bool,
    ) -> Result<Creation, ApiError> {
        match self {
            Storage::Memory(store) => {
                let mut data = store.tenant(tenant);
                // The check and the insert under one lock: no
                // check-then-insert race.
                if enforce_key
                    && let Some(key) = &order.idempotency_key
                    && let Some(first) = data.idempotency.get(key)
                {
                    return Ok(Creation::Existing(first.clone()));
                }
                let key = order.idempotency_key.clone();
                data.insert(order);
                if let Some(key) = key {
                    data.idempotency.insert(key, answer);
                }
                Ok(Creation::Created)
            }
            Storage::Postgres(pg) => pg.create_order(tenant, &order, &answer).await,
        }
    }

    /// The tenant's orders matching `filter`, oldest first, and how many match
    /// in all.
    pub async fn list_orders(
        &self,
        tenant: TenantId,
        filter: OrderFilter<'_>,
    ) -> Result<(Vec<Order>, usize), ApiError> {
        match self {
            Storage::Memory(store) => {
                let data = store.tenant(tenant);
                let mut total = 0;
                let mut orders = Vec::new();
                for order in data.orders() {
                    if filter.status.is_some_and(|s| order.status != s)
                        || filter
                            .idempotency_key
                            .is_some_and(|k| order.idempotency_key.as_deref() != Some(k))
                    {
                        continue;
                    }
                    total += 1;
                    if orders.len() < filter.limit {
                        orders.push(order.clone());
                    }
                }
                Ok((orders, total))
            }
            Storage::Postgres(pg) => pg.list_orders(tenant, filter).await,
        }
    }

    /// The tenant's order `id`.
    pub async fn order(&self, tenant: TenantId, id: Uuid) -> Result<Option<Order>, ApiError> {
        match self {
            Storage::Memory(store) => Ok(store.tenant(tenant).get(&id).cloned()),
            Storage::Postgres(pg) => pg.order(tenant, id).await,
        }
    }

    /// Runs `edit` on the tenant's order `id` and stores the result with the
    /// ledger row it returns, atomically; nothing is stored if `edit` fails.
    /// A 404 when the tenant has no such order.
    pub async fn edit_order<T, F>(&self, tenant: TenantId, id: Uuid, edit: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Order) -> Result<Edited<T>, ApiError> + Send,
        T: Send,
    {
        match self {
            Storage::Memory(store) => {
                let mut data = store.tenant(tenant);
                let order = data
                    .get_mut(&id)
                    .ok_or_else(|| ApiError::not_found("order"))?;
                let before = order.status;
                let (answer, ledger) = edit(order)?;
                let after = order.status;
                let driver = order.driver_id.clone();
                if let Some(adjustment) = ledger {
                    data.record(adjustment);
                }
                data.follow_transition(before, after, driver.as_deref());
                Ok(answer)
            }
            Storage::Postgres(pg) => pg.edit_order(tenant, id, edit).await,
        }
    }

    /// Deletes the tenant's order `id` if `allow` agrees, freeing its
    /// `Idempotency-Key`. A 404 when the tenant has no such order.
    pub async fn delete_order<F>(
        &self,
        tenant: TenantId,
        id: Uuid,
        allow: F,
    ) -> Result<(), ApiError>
    where
        F: FnOnce(&Order) -> Result<(), ApiError> + Send,
    {
        match self {
            Storage::Memory(store) => {
                let mut data = store.tenant(tenant);
                let order = data.get(&id).ok_or_else(|| ApiError::not_found("order"))?;
                allow(order)?;
                data.remove(&id);
                Ok(())
            }
            Storage::Postgres(pg) => pg.delete_order(tenant, id, allow).await,
        }
    }

    /// The ledger rows of the tenant's order `id`, oldest first; `None` when
    /// the tenant has no such order.
    pub async fn adjustments(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<Vec<Adjustment>>, ApiError> {
        match self {
            Storage::Memory(store) => {
                let data = store.tenant(tenant);
                Ok(data.get(&id).map(|_| data.adjustments(&id).to_vec()))
            }
            Storage::Postgres(pg) => pg.adjustments(tenant, id).await,
        }
    }

    /// The workload and record of each of `drivers`, in order.
    pub async fn driver_stats(
        &self,
        tenant: TenantId,
        drivers: &[&str],
    ) -> Result<Vec<DriverStats>, ApiError> {
        match self {
            Storage::Memory(store) => {
                let data = store.tenant(tenant);
                Ok(drivers.iter().map(|d| data.driver_stats(d)).collect())
            }
            Storage::Postgres(pg) => pg.driver_stats(tenant, drivers).await,
        }
    }

    /// How many ledger rows the tenant has.
    pub async fn ledger_rows(&self, tenant: TenantId) -> Result<usize, ApiError> {
        match self {
            Storage::Memory(store) => {
                let data = store.tenant(tenant);
                Ok(data.orders().map(|o| data.adjustments(&o.id).len()).sum())
            }
            Storage::Postgres(pg) => pg.ledger_rows(tenant).await,
        }
    }
}
