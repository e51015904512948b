//! The order lifecycle and its ledger: `created` → accept (driver) →
//! `accepted` → route → `routed` → deliver (driver) → `delivered`.
//!
//! Each transition is one edit of the storage (see `storage.rs`): the state
//! is checked and written atomically (under the tenant's lock in memory, in
//! one transaction with the row locked in PostgreSQL), so two drivers
//! accepting the same order at once yield one 200 and one 409. Delivery
//! writes a row to the order's ledger (`order_adjustments`) in the same
//! critical section or transaction as the status change.
//!
//! Each transition, once stored, is published as `order.status` on the
//! tenant's event stream (`events.rs`).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::{EventKind, OrderFacts};
use super::optimise::plan_route;
use super::orders::order_id;
use super::server::AppState;
use super::store::{Adjustment, Order, OrderStatus, TenantId, new_id, timestamp};

/// Delivery charge: a base fee plus a rate per km and per kg, in cents.
const BASE_FEE_CENTS: f64 = 450.0;
const CENTS_PER_KM: f64 = 120.0;
const CENTS_PER_KG: f64 = 5.0;
const CURRENCY: &str = "EUR";

fn illegal(order: &Order, action: &str, required: OrderStatus) -> ApiError {
    ApiError::conflict(
        "illegal_transition",
        format!(
            "cannot {action} an order that is {}: it must be {}",
            order.status.as_str(),
            required.as_str()
        ),
    )
}

fn assigned_to_caller(order: &Order, caller: &Caller) -> Result<(), ApiError> {
    // An order nobody accepted yet is a state problem (409), not a permission one.
    let assigned_elsewhere = order
        .driver_id
        .as_deref()
        .is_some_and(|d| d != caller.user_id);
    if caller.role == Role::Driver && assigned_elsewhere {
        return Err(ApiError::forbidden(
            "the order is assigned to another driver",
        ));
    }
    Ok(())
}

/// Publishes a stored transition as `order.status`.
fn published(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    status: OrderStatus,
    driver_id: Option<&str>,
) {
    state.events.publish(
        tenant,
        EventKind::OrderStatus,
        OrderFacts {
            id,
            status,
            driver_id,
        },
    );
}

/// `POST /orders/{id}/accept` (driver): the caller becomes the order's driver.
pub(crate) async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    caller.require(&[Role::Driver], "accept orders")?;
    let id = order_id(&id)?;
    let order = state
        .storage
        .edit_order(caller.tenant, id, |order| {
            if order.status != OrderStatus::Created {
                return Err(illegal(order, "accept", OrderStatus::Created));
            }
            order.status = OrderStatus::Accepted;
            order.driver_id = Some(caller.user_id.clone());
            order.updated_at = timestamp();
            Ok((order.clone(), None))
        })
        .await?;
    published(
        &state,
        caller.tenant,
        order.id,
        order.status,
        order.driver_id.as_deref(),
    );
    Ok(Json(order))
}

/// `POST /orders/{id}/route` (admin, dispatcher, the assigned driver): plans
/// the optimised route.
pub(crate) async fn route(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = order_id(&id)?;
    let answer = state
        .storage
        .edit_order(caller.tenant, id, |order| {
            assigned_to_caller(order, &caller)?;
            if order.status != OrderStatus::Accepted {
                return Err(illegal(order, "route", OrderStatus::Accepted));
            }
            let route = plan_route(&order.pickup, &order.stops, &order.dropoff);
            order.status = OrderStatus::Routed;
            order.updated_at = timestamp();
            let mut answer = serde_json::to_value(&route).expect("routes serialise");
            order.route = Some(route);
            answer["order_id"] = json!(order.id.to_string());
            answer["status"] = json!(order.status);
            Ok(((answer, order.driver_id.clone()), None))
        })
        .await?;
    let (answer, driver) = answer;
    published(
        &state,
        caller.tenant,
        id,
        OrderStatus::Routed,
        driver.as_deref(),
    );
    Ok(Json(answer))
}

/// `POST /orders/{id}/deliver` (the assigned driver): completes the order and
/// books its delivery charge, in the same transaction.
pub(crate) async fn deliver(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Driver], "deliver orders")?;
    let id = order_id(&id)?;
    let answer = state
        .storage
        .edit_order(caller.tenant, id, |order| {
            assigned_to_caller(order, &caller)?;
            if order.status != OrderStatus::Routed {
                return Err(illegal(order, "deliver", OrderStatus::Routed));
            }
            let now = timestamp();
            order.status = OrderStatus::Delivered;
            order.updated_at = now.clone();
            let distance_km = order.route.as_ref().map_or(0.0, |r| r.distance_km);
            let adjustment = Adjustment {
                id: new_id(),
                order_id: order.id,
                tenant: order.tenant,
                amount: (BASE_FEE_CENTS
                    + CENTS_PER_KM * distance_km
                    + CENTS_PER_KG * order.weight_kg)
                    .round() as i64,
                currency: CURRENCY.into(),
                reason: "delivery_charge".into(),
                created_at: now,
            };
            let answer = json!({ "order": order, "adjustment": adjustment });
            Ok(((answer, order.driver_id.clone()), Some(adjustment)))
        })
        .await?;
    let (answer, driver) = answer;
    published(
        &state,
        caller.tenant,
        id,
        OrderStatus::Delivered,
        driver.as_deref(),
    );
    Ok(Json(answer))
}

/// `GET /orders/{id}/adjustments` (admin, dispatcher): the order's ledger rows.
pub(crate) async fn adjustments(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "read the ledger")?;
    let id = order_id(&id)?;
    let mut rows = state.storage.adjustments(caller.tenant, id).await?;
    if rows.is_none() && state.faults.leaks_tenant() {
        // The tenant-leak fault: the lookup a buggy platform makes with the
        // wrong tenant (see `orders::leaked_order`).
        for tenant in TenantId::all().filter(|t| *t != caller.tenant) {
            rows = state.storage.adjustments(tenant, id).await?;
            if rows.is_some() {
                break;
            }
        }
    }
    let rows = rows.ok_or_else(|| ApiError::not_found("order"))?;
    let total: i64 = rows.iter().map(|r| r.amount).sum();
    Ok(Json(json!({
        "order_id": id.to_string(),
        "count": rows.len(),
        "total": total,
        "currency": CURRENCY,
        "adjustments": rows,
    })))
}
