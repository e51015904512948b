//! The reference target's own OpenAPI 3.1 document, served at
//! `GET /openapi.json`: every route the router serves, with its auth (a
//! bearer token from `POST /api/auth/login`), its tenant model (the
//! tenant is the logged-in user's: the login answers it in `user.tenant`,
//! and another tenant's order is a 404), its `Idempotency-Key` and its
//! error statuses. The order routes are written once per prefix of
//! `server::ORDER_PREFIXES`, so a new prefix cannot be left out, and
//! `tests/reference_openapi.rs` checks the document against the router's
//! routes and the target's answers so the two cannot drift apart.

use axum::Json;
use serde_json::{Map, Value, json};

use super::server::ORDER_PREFIXES;

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Json<Value> {
    Json(document())
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn order_id_param() -> Value {
    json!({
        "name": "orderId", "in": "path", "required": true,
        "description": "The order's id (a UUID). Another tenant's order is a 404, never a 403.",
        "schema": { "type": "string", "format": "uuid" }
    })
}

/// The responses every order route shares, plus `extra`.
fn with_errors(mut responses: Map<String, Value>, codes: &[&str]) -> Value {
    for code in codes {
        let text = match *code {
            "400" => "malformed JSON",
            "401" => "no valid, unexpired bearer token",
            "403" => "the caller's role may not do this",
            "404" => "no such order in the caller's tenant (another tenant's order included)",
            "409" => "the order's status does not allow this transition",
            "422" => "a well-formed body with an invalid field",
            _ => "error",
        };
        responses.insert((*code).to_string(), error(text));
    }
    Value::Object(responses)
}

fn responses(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn order_paths(prefix: &str, paths: &mut Map<String, Value>) {
    let name = prefix.trim_start_matches('/').replace('/', "-");
    let op = |verb: &str| format!("{verb}-{name}");
    let order = json!({ "$ref": "#/components/schemas/Order" });
    paths.insert(
        prefix.to_string(),
        json!({
            "post": {
                "operationId": op("createOrder"),
                "summary": "Create an order (admin, dispatcher)",
                "parameters": [{
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "A replay with the same key and body answers the first order again (with `Idempotent-Replayed: true`); with another body, 422.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
                }],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/NewOrder" },
                    "example": {
                        "reference": "PO-1001",
                        "pickup": { "address": "Am Sandtorkai 1, Hamburg", "lat": 53.5436, "lon": 9.9885 },
                        "dropoff": { "address": "Mönckebergstraße 7, Hamburg", "lat": 53.5503, "lon": 10.0006 },
                        "weight_kg": 120.5
                    }
                } } },
                "responses": with_errors(responses(vec![(
                    "201",
                    {
                        let mut r = ok("the order (a replay answers the first one)", order.clone());
                        r["links"] = json!({ "ReadOrder": {
                            "operationId": op("getOrder"),
                            "parameters": { "orderId": "$response.body#/id" }
                        } });
                        r
                    },
                )]), &["400", "401", "403", "422"])
            },
            "get": {
                "operationId": op("listOrders"),
                "summary": "The tenant's orders, oldest first",
                "parameters": [
                    { "name": "status", "in": "query", "schema": { "$ref": "#/components/schemas/OrderStatus" } },
                    { "name": "idempotency_key", "in": "query", "description": "Only the order created with this key.", "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                ],
                "responses": with_errors(responses(vec![("200", ok("the orders", json!({
                    "type": "object", "required": ["orders", "count", "total"],
                    "properties": {
                        "orders": { "type": "array", "items": order.clone() },
                        "count": { "type": "integer", "description": "orders in this answer" },
                        "total": { "type": "integer", "description": "orders matching, before the limit" }
                    }
                })))]), &["401", "422"])
            }
        }),
    );
    let item = format!("{prefix}/{{orderId}}");
    paths.insert(
        item.clone(),
        json!({
            "parameters": [order_id_param()],
            "get": {
                "operationId": op("getOrder"),
                "summary": "Read an order",
                "responses": with_errors(responses(vec![("200", ok("the order", order.clone()))]), &["401", "404"])
            },
            "patch": {
                "operationId": op("updateOrder"),
                "summary": "Change an order (admin)",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/OrderPatch" },
                    "example": { "weight_kg": 99.5 }
                } } },
                "responses": with_errors(responses(vec![("200", ok("the order, changed", order.clone()))]), &["400", "401", "403", "404", "422"])
            },
            "delete": {
                "operationId": op("deleteOrder"),
                "summary": "Delete an order (admin); frees its Idempotency-Key",
                "responses": with_errors(responses(vec![("204", json!({ "description": "deleted" }))]), &["401", "403", "404"])
            }
        }),
    );
    for (action, role, next) in [
        ("accept", "driver", "accepted"),
        ("route", "admin, dispatcher, the assigned driver", "routed"),
        ("deliver", "the assigned driver", "delivered"),
    ] {
        paths.insert(
            format!("{item}/{action}"),
            json!({
                "parameters": [order_id_param()],
                "post": {
                    "operationId": op(&format!("{action}Order")),
                    "summary": format!("Move the order to `{next}` ({role})"),
                    "responses": with_errors(responses(vec![("200", ok("the order, or the route, or the order and its ledger row", json!({ "type": "object" })))]), &["401", "403", "404", "409"])
                }
            }),
        );
    }
    paths.insert(
        format!("{item}/adjustments"),
        json!({
            "parameters": [order_id_param()],
            "get": {
                "operationId": op("listAdjustments"),
                "summary": "The order's ledger rows (admin, dispatcher)",
                "responses": with_errors(responses(vec![("200", ok("the ledger rows", json!({
                    "type": "object", "required": ["order_id", "count", "total", "currency", "adjustments"],
                    "properties": {
                        "order_id": { "type": "string" }, "count": { "type": "integer" },
                        "total": { "type": "integer", "description": "in minor units (cents)" },
                        "currency": { "type": "string" },
                        "adjustments": { "type": "array", "items": { "type": "object" } }
                    }
                })))]), &["401", "403", "404"])
            }
        }),
    );
}

fn location() -> Value {
    json!({
        "type": "object", "required": ["address", "lat", "lon"],
        "properties": {
            "address": { "type": "string", "minLength": 1, "maxLength": 200 },
            "lat": { "type": "number", "minimum": -90, "maximum": 90 },
            "lon": { "type": "number", "minimum": -180, "maximum": 180 }
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let health = json!({
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": { "200": ok("alive", json!({
                "type": "object", "required": ["status"], "properties": { "status": { "type": "string", "enum": ["ok"] } }
            })) }
        }
    });
    let mut paths = Map::new();
    paths.insert("/health".into(), health.clone());
    paths.insert("/api/health".into(), health);
    let types_param = json!({
        "name": "types", "in": "query", "required": false,
        "description": "Comma-separated event types to receive (order.created, order.status, dispatch.assigned); all when absent.",
        "schema": { "type": "string" }
    });
    let token_param = json!({
        "name": "access_token", "in": "query", "required": false,
        "description": "The bearer token, for clients that cannot set headers (EventSource); the header wins when both are given.",
        "schema": { "type": "string" }
    });
    let event = json!({ "$ref": "#/components/schemas/Event" });
    let events = json!({ "get": {
        "operationId": "events",
        "summary": "The caller's tenant's order and dispatch events as server-sent events (event: TYPE, id: SEQ, data: one-line JSON)",
        "parameters": [types_param.clone(), token_param.clone()],
        "responses": with_errors(responses(vec![("200", json!({
            "description": "an endless event stream; `: keepalive` comments after 15 s of silence; `event: lagged` when the subscriber fell behind",
            "content": { "text/event-stream": { "schema": event.clone() } }
        }))]), &["401", "422"])
    } });
    let ws = json!({ "get": {
        "operationId": "events-websocket",
        "summary": "The same events over a WebSocket, one JSON text frame each; {\"type\":\"ping\"} is answered {\"type\":\"pong\"}",
        "parameters": [types_param, token_param],
        "responses": with_errors(responses(vec![
            ("101", json!({ "description": "switching to the WebSocket protocol" })),
            ("400", json!({ "description": "not a valid WebSocket handshake" })),
            ("426", json!({ "description": "a plain GET without the WebSocket upgrade" })),
        ]), &["401", "422"])
    } });
    paths.insert("/events".into(), events.clone());
    paths.insert("/api/events".into(), events);
    paths.insert("/ws".into(), ws.clone());
    paths.insert("/api/ws".into(), ws);
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "summary": "This document",
            "security": [],
            "responses": { "200": ok("the OpenAPI document", json!({ "type": "object" })) }
        } }),
    );
    paths.insert(
        "/api/auth/login".into(),
        json!({ "post": {
            "operationId": "login",
            "summary": "Trade a seeded user's email and password for a bearer token",
            "security": [],
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": ["email", "password"],
                "properties": {
                    "email": { "type": "string", "format": "email", "maxLength": 254 },
                    "password": { "type": "string", "format": "password", "maxLength": 256 }
                }
            }, "example": { "email": "admin@acme.test", "password": super::SEED_PASSWORD } } } },
            "responses": with_errors(responses(vec![("200", ok("a token for the user, who belongs to one tenant", json!({
                "type": "object", "required": ["token", "token_type", "expires_in", "user"],
                "properties": {
                    "token": { "type": "string", "description": "an HS256 JWT carrying the user's tenant and role" },
                    "token_type": { "type": "string", "enum": ["Bearer"] },
                    "expires_in": { "type": "integer", "description": "seconds" },
                    "user": { "type": "object", "required": ["id", "email", "tenant", "role"], "properties": {
                        "id": { "type": "string" }, "email": { "type": "string" }, "name": { "type": "string" },
                        "tenant": { "type": "string", "description": "the tenant every request made with the token acts for" },
                        "role": { "type": "string", "enum": ["admin", "dispatcher", "driver"] }
                    } }
                }
            })))]), &["400", "401", "422"])
        } }),
    );
    paths.insert(
        "/api/dispatch/assign".into(),
        json!({ "post": {
            "operationId": "assignLoad",
            "summary": "Recommend a driver of the caller's tenant for a load (admin, dispatcher)",
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "type": "object", "required": ["loadId"], "properties": { "loadId": { "type": "string", "minLength": 1, "maxLength": 128 } } },
                "example": { "loadId": "load-1" }
            } } },
            "responses": with_errors(responses(vec![("200", ok("the recommendation", json!({
                "type": "object", "required": ["loadId", "driverId", "reason", "score"],
                "properties": { "loadId": { "type": "string" }, "driverId": { "type": "string" }, "reason": { "type": "string" }, "score": { "type": "number" } }
            })))]), &["400", "401", "403", "404", "422"])
        } }),
    );
    paths.insert(
        "/api/drivers/{driverId}/coaching".into(),
        json!({ "get": {
            "operationId": "driverCoaching",
            "summary": "Coaching tips for a driver of the caller's tenant (admin, dispatcher, the driver)",
            "parameters": [{ "name": "driverId", "in": "path", "required": true, "schema": { "type": "string" }, "example": "drv-acme-1" }],
            "responses": with_errors(responses(vec![("200", ok("the tips", json!({ "type": "object" })))]), &["401", "403", "404"])
        } }),
    );
    for prefix in ORDER_PREFIXES {
        order_paths(prefix, &mut paths);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "convoy reference logistics API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Two tenants (acme, globex) on one API. A user logs in with POST /api/auth/login and acts, with the bearer token it gets, for its own tenant (the login answers it in user.tenant): another tenant's order is a 404, never a 403. Orders may be created with an Idempotency-Key."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "the token of POST /api/auth/login" }
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error", "code"],
                    "properties": { "error": { "type": "string" }, "code": { "type": "string" }, "field": { "type": "string" } }
                },
                "Location": location(),
                "OrderStatus": { "type": "string", "enum": ["created", "accepted", "routed", "delivered"] },
                "Event": {
                    "type": "object", "required": ["type", "tenant", "order_id", "status", "at", "seq"],
                    "properties": {
                        "type": { "type": "string", "enum": ["order.created", "order.status", "dispatch.assigned"] },
                        "tenant": { "type": "string" },
                        "order_id": { "type": "string", "format": "uuid" },
                        "status": { "$ref": "#/components/schemas/OrderStatus" },
                        "driver_id": { "type": "string" },
                        "at": { "type": "string", "format": "date-time" },
                        "seq": { "type": "integer", "minimum": 0, "description": "per tenant and per process" }
                    }
                },
                "NewOrder": {
                    "type": "object", "required": ["pickup", "dropoff", "weight_kg"],
                    "properties": {
                        "reference": { "type": "string", "minLength": 1, "maxLength": 64 },
                        "pickup": { "$ref": "#/components/schemas/Location" },
                        "dropoff": { "$ref": "#/components/schemas/Location" },
                        "stops": { "type": "array", "maxItems": 20, "items": { "$ref": "#/components/schemas/Location" } },
                        "weight_kg": { "type": "number", "exclusiveMinimum": 0, "maximum": 40000 }
                    }
                },
                "OrderPatch": {
                    "type": "object", "minProperties": 1,
                    "properties": {
                        "reference": { "type": ["string", "null"], "minLength": 1, "maxLength": 64 },
                        "pickup": { "$ref": "#/components/schemas/Location" },
                        "dropoff": { "$ref": "#/components/schemas/Location" },
                        "stops": { "type": "array", "maxItems": 20, "items": { "$ref": "#/components/schemas/Location" } },
                        "weight_kg": { "type": "number", "exclusiveMinimum": 0, "maximum": 40000 }
                    }
                },
                "Order": {
                    "type": "object",
                    "required": ["id", "tenant", "status", "pickup", "dropoff", "stops", "weight_kg", "created_by", "created_at", "updated_at"],
                    "properties": {
                        "id": { "type": "string", "format": "uuid", "readOnly": true },
                        "tenant": { "type": "string", "readOnly": true },
                        "reference": { "type": ["string", "null"] },
                        "status": { "$ref": "#/components/schemas/OrderStatus" },
                        "pickup": { "$ref": "#/components/schemas/Location" },
                        "dropoff": { "$ref": "#/components/schemas/Location" },
                        "stops": { "type": "array", "items": { "$ref": "#/components/schemas/Location" } },
                        "weight_kg": { "type": "number" },
                        "created_by": { "type": "string" },
                        "driver_id": { "type": ["string", "null"] },
                        "route": { "type": ["object", "null"] },
                        "idempotency_key": { "type": ["string", "null"] },
                        "created_at": { "type": "string", "format": "date-time" },
                        "updated_at": { "type": "string", "format": "date-time" }
                    }
                }
            }
        }
    })
}
