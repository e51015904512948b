//! Orders (a.k.a. shipments): create, list, read, patch, delete.
//!
//! Creation honours `Idempotency-Key` the way payment APIs do: the first
//! answer is stored per tenant and key, a replay with the same body gets it
//! back verbatim (with `Idempotent-Replayed: true`), a replay with another
//! body is a 422. The check and the insert are one atomic step of the
//! storage (one tenant lock in memory, `INSERT ... ON CONFLICT` on the
//! per-tenant unique key in PostgreSQL), so concurrent replays create
//! exactly one order. Every lookup is scoped to the caller's tenant; another
//! tenant's order is a 404. A stored order (not a replay) is published as
//! `order.created` on the tenant's event stream.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::events::{EventKind, OrderFacts};
use super::server::AppState;
use super::storage::{Creation, OrderFilter};
use super::store::{IdempotentAnswer, Order, OrderStatus, TenantId, new_id, timestamp};
use super::validate::{self, NewOrder, OrderPatch};

/// Default and largest page of `GET /orders`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `POST /orders`: creates an order (admin, dispatcher).
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "create orders")?;
    let object = validate::json_object(&body)?;
    let new = NewOrder::from_json(&object)?;
    let key = validate::idempotency_key(&headers)?;
    // serde_json's maps are sorted, so re-serialising gives one canonical form
    // whatever the key order and whitespace of the request.
    let fingerprint: [u8; 32] =
        Sha256::digest(serde_json::Value::Object(object).to_string()).into();

    let now = timestamp();
    let id = new_id();
    let order = Order {
        id,
        tenant: caller.tenant.name(),
        reference: new.reference,
        status: OrderStatus::Created,
        pickup: new.pickup,
        dropoff: new.dropoff,
        stops: new.stops,
        weight_kg: new.weight_kg,
        created_by: caller.user_id,
        driver_id: None,
        route: None,
        idempotency_key: key,
        created_at: now.clone(),
        updated_at: now,
    };
    let answer = IdempotentAnswer {
        fingerprint,
        status: StatusCode::CREATED,
        order_id: order.id,
        body: Bytes::from(serde_json::to_vec(&order).expect("orders serialise")),
    };

    match state
        .storage
        .create_order(
            caller.tenant,
            order,
            answer.clone(),
            !state.faults.idempotency_race,
        )
        .await?
    {
        Creation::Created => {
            state.events.publish(
                caller.tenant,
                EventKind::OrderCreated,
                OrderFacts {
                    id,
                    status: OrderStatus::Created,
                    driver_id: None,
                },
            );
            Ok(stored_answer(&answer, false))
        }
        Creation::Existing(first) if first.fingerprint != fingerprint => Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key was already used with a different request body",
        )
        .with_code("idempotency_key_reused")),
        Creation::Existing(first) => Ok(stored_answer(&first, true)),
    }
}

fn stored_answer(answer: &IdempotentAnswer, replayed: bool) -> Response {
    let mut response = (answer.status, answer.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let location = format!("/api/orders/{}", answer.order_id);
    headers.insert(
        LOCATION,
        HeaderValue::from_str(&location).expect("a path is a header value"),
    );
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// `GET /orders?status=&idempotency_key=&limit=`: the tenant's orders, oldest
/// first.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = match query.get("status") {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "status must be one of created, accepted, routed, delivered",
            )
        })?),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let filter = OrderFilter {
        status,
        idempotency_key: query.get("idempotency_key").map(String::as_str),
        limit,
    };
    let (orders, total) = state.storage.list_orders(caller.tenant, filter).await?;
    Ok(Json(
        json!({ "count": orders.len(), "total": total, "orders": orders }),
    ))
}

/// Parses an order id from the path; an unparsable id names no order.
pub(crate) fn order_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("order"))
}

/// Finds an order of another tenant, for the `tenant-leak` fault: the
/// lookup a buggy platform makes when it takes the tenant from the wrong
/// place. With PostgreSQL, each lookup's transaction is set to the other
/// tenant, which row-level security cannot tell from a legitimate one.
pub(crate) async fn leaked_order(
    state: &AppState,
    caller: TenantId,
    id: Uuid,
) -> Result<Option<Order>, ApiError> {
    for tenant in TenantId::all().filter(|t| *t != caller) {
        if let Some(order) = state.storage.order(tenant, id).await? {
            return Ok(Some(order));
        }
    }
    Ok(None)
}

/// `GET /orders/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let id = order_id(&id)?;
    let found = match state.storage.order(caller.tenant, id).await? {
        Some(order) => Some(order),
        None if state.faults.leaks_tenant() => leaked_order(&state, caller.tenant, id).await?,
        None => None,
    };
    found.map(Json).ok_or_else(|| ApiError::not_found("order"))
}

/// `PATCH /orders/{id}` (admin). The plan (addresses, stops, weight) may only
/// change before a driver accepts; the reference may change until delivery.
pub(crate) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Order>, ApiError> {
    caller.require(&[Role::Admin], "edit orders")?;
    let id = order_id(&id)?;
    let object = validate::json_object(&body)?;
    let patch = OrderPatch::from_json(&object)?;
    let order = state
        .storage
        .edit_order(caller.tenant, id, move |order| {
            apply_patch(order, patch)?;
            Ok((order.clone(), None))
        })
        .await?;
    Ok(Json(order))
}

/// Applies a patch within the lifecycle's rules.
fn apply_patch(order: &mut Order, patch: OrderPatch) -> Result<(), ApiError> {
    if order.status == OrderStatus::Delivered {
        return Err(ApiError::conflict(
            "order_delivered",
            "a delivered order cannot be changed",
        ));
    }
    if patch.changes_plan() && order.status != OrderStatus::Created {
        return Err(ApiError::conflict(
            "illegal_transition",
            format!(
                "order is {}: pickup, dropoff, stops and weight_kg can only change while it is created",
                order.status.as_str()
            ),
        ));
    }
    if let Some(reference) = patch.reference {
        order.reference = reference;
    }
    if let Some(pickup) = patch.pickup {
        order.pickup = pickup;
    }
    if let Some(dropoff) = patch.dropoff {
        order.dropoff = dropoff;
    }
    if let Some(stops) = patch.stops {
        order.stops = stops;
    }
    if let Some(weight) = patch.weight_kg {
        order.weight_kg = weight;
    }
    order.updated_at = timestamp();
    Ok(())
}

/// `DELETE /orders/{id}` (admin); frees the order's `Idempotency-Key`.
/// Delivered orders have ledger rows and stay.
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin], "delete orders")?;
    let id = order_id(&id)?;
    state
        .storage
        .delete_order(caller.tenant, id, |order| {
            if order.status == OrderStatus::Delivered {
                return Err(ApiError::conflict(
                    "order_delivered",
                    "a delivered order has ledger rows and cannot be deleted",
                ));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
