//! Orders (a.k.a. shipments): create, list, read, patch, delete.
//!
//! Creation honours `Idempotency-Key` the way payment APIs do: the first
//! answer is stored per tenant and key, a replay with the same body gets it
//! back verbatim (with `Idempotent-Replayed: true`), a replay with another
//! body is a 422. The check and the insert happen under one tenant lock, so
//! concurrent replays create exactly one order. Every lookup is scoped to the
//! caller's tenant; another tenant's order is a 404.

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
use super::server::AppState;
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
    let order = Order {
        id: new_id(),
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
        idempotency_key: key.clone(),
        created_at: now.clone(),
        updated_at: now,
    };
    let answer = IdempotentAnswer {
        fingerprint,
        status: StatusCode::CREATED,
        order_id: order.id,
        body: Bytes::from(serde_json::to_vec(&order).expect("orders serialise")),
    };

    // The check and the insert under one lock: no check-then-insert race.
    let mut tenant = state.store.tenant(caller.tenant);
    if let Some(key) = &key
        && !state.faults.idempotency_race
        && let Some(first) = tenant.idempotency.get(key)
    {
        if first.fingerprint != fingerprint {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "Idempotency-Key was already used with a different request body",
            )
            .with_code("idempotency_key_reused"));
        }
        return Ok(stored_answer(first, true));
    }
    let response = stored_answer(&answer, false);
    tenant.insert(order);
    if let Some(key) = key {
        tenant.idempotency.insert(key, answer);
    }
    Ok(response)
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
    let key = query.get("idempotency_key");
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
    let tenant = state.store.tenant(caller.tenant);
    let mut total = 0;
    let mut orders = Vec::new();
    for order in tenant.orders() {
        if status.is_some_and(|s| order.status != s)
            || key.is_some_and(|k| order.idempotency_key.as_ref() != Some(k))
        {
            continue;
        }
        total += 1;
        if orders.len() < limit {
            orders.push(serde_json::to_value(order).expect("orders serialise"));
        }
    }
    drop(tenant);
    Ok(Json(
        json!({ "count": orders.len(), "total": total, "orders": orders }),
    ))
}

/// Parses an order id from the path; an unparsable id names no order.
pub(crate) fn order_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("order"))
}

/// Finds an order of another tenant, for the `tenant-leak` fault.
pub(crate) fn leaked_order(state: &AppState, caller: TenantId, id: &Uuid) -> Option<Order> {
    TenantId::all()
        .filter(|t| *t != caller)
        .find_map(|t| state.store.tenant(t).get(id).cloned())
}

/// `GET /orders/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let id = order_id(&id)?;
    let found = state.store.tenant(caller.tenant).get(&id).cloned();
    match found {
        Some(order) => Ok(Json(order)),
        None if state.faults.leaks_tenant() => leaked_order(&state, caller.tenant, &id)
            .map(Json)
            .ok_or_else(|| ApiError::not_found("order")),
        None => Err(ApiError::not_found("order")),
    }
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
    let mut tenant = state.store.tenant(caller.tenant);
    let order = tenant
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("order"))?;
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
    Ok(Json(order.clone()))
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
    let mut tenant = state.store.tenant(caller.tenant);
    let order = tenant
        .get(&id)
        .ok_or_else(|| ApiError::not_found("order"))?;
    if order.status == OrderStatus::Delivered {
        return Err(ApiError::conflict(
            "order_delivered",
            "a delivered order has ledger rows and cannot be deleted",
        ));
    }
    tenant.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}
