//! Small logistics APIs shaped unlike the reference target, for the probe
//! tests: the tenant chosen by a request header that must match the
//! token's tenant, or by the path (`/tenants/{t}/orders/{id}`); their own
//! refusal status for another tenant's order; HS256 tokens from
//! `POST /auth/token` (or opaque ones). Each misbehaves on demand through
//! [`Shape`]: a cross-tenant leak, a broken answer, an auth check that lets
//! an expired, foreign-signed or `alg: none` token through.
//!
//! Users: `alice` (tenant `acme`) and `bob` (tenant `globex`); HS256 secret
//! [`SECRET`].

#![allow(dead_code)]
// Each test crate uses its own subset.
// Handlers refuse with the response itself; its size costs nothing in a test
// server.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

/// The secret the servers sign and check tokens with.
pub const SECRET: &str = "foreign-api-test-secret";

/// Where the API reads the tenant from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantIn {
    /// `X-Tenant-Id`, which must match the token's tenant; its absence is
    /// `400 {"error": "missing tenant header"}`.
    Header,
    /// `/tenants/{tenant}/orders/{id}`, which must be the token's tenant.
    Path,
}

/// How the API is shaped and how it misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Where the tenant is.
    pub tenant_in: TenantIn,
    /// The status another tenant's order is refused with (404 by default).
    pub refusal: u16,
    /// Fault: another tenant's order is served on reads.
    pub leak: bool,
    /// Fault: every cross-tenant request answers this instead of a refusal.
    pub broken: Option<u16>,
    /// Tokens are opaque ids, not JWTs.
    pub opaque_tokens: bool,
    /// Fault: expired tokens are accepted.
    pub accept_expired: bool,
    /// Fault: `alg: none` tokens are accepted.
    pub accept_alg_none: bool,
    /// Fault: signatures are not checked.
    pub accept_foreign_key: bool,
}

impl Shape {
    /// A healthy API with the tenant in `tenant_in`.
    pub fn healthy(tenant_in: TenantIn) -> Shape {
        Shape {
            tenant_in,
            refusal: 404,
            leak: false,
            broken: None,
            opaque_tokens: false,
            accept_expired: false,
            accept_alg_none: false,
            accept_foreign_key: false,
        }
    }
}

struct Api {
    shape: Shape,
    orders: Mutex<HashMap<String, (String, String)>>,
    next: Mutex<u64>,
}

/// A running API; stops when dropped.
pub struct ForeignApi {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ForeignApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts an API of `shape` on an ephemeral loopback port.
pub fn start(shape: Shape) -> ForeignApi {
    let api = Arc::new(Api {
        shape,
        orders: Mutex::new(HashMap::new()),
        next: Mutex::new(0),
    });
    let app = Router::new()
        .route("/auth/token", post(issue))
        .route("/me", get(me))
        .route("/orders", post(create_by_header))
        .route(
            "/orders/{id}",
            get(read_by_header)
                .patch(read_by_header)
                .delete(read_by_header),
        )
        .route("/tenants/{tenant}/orders", post(create_by_path))
        .route(
            "/tenants/{tenant}/orders/{id}",
            get(read_by_path).patch(read_by_path).delete(read_by_path),
        )
        .with_state(api);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    ForeignApi {
        base_url: format!("http://{addr}"),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(unsigned: &str, key: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(unsigned.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// An HS256 token for `user` of `tenant`, valid for 10 minutes.
pub fn token(user: &str, tenant: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"sub": user, "tenant": tenant, "iat": now(), "exp": now() + 600});
    let unsigned = format!(
        "{header}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let sig = URL_SAFE_NO_PAD.encode(sign(&unsigned, SECRET.as_bytes()));
    format!("{unsigned}.{sig}")
}

fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

/// `POST /auth/token {"user": "alice"}` → `{"access_token": ...}`.
async fn issue(State(api): State<Arc<Api>>, body: axum::body::Bytes) -> Response {
    let user = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["user"].as_str().map(str::to_string));
    let tenant = match user.as_deref() {
        Some("alice") => "acme",
        Some("bob") => "globex",
        _ => return error(401, "unknown user"),
    };
    let user = user.unwrap();
    let t = if api.shape.opaque_tokens {
        format!("opaque-session-{user}-0123456789")
    } else {
        token(&user, tenant)
    };
    axum::Json(json!({ "access_token": t, "expires_in": 600 })).into_response()
}

/// `GET /me`: the caller's tenant, for a valid token.
async fn me(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    match caller(&api, &headers) {
        Ok(tenant) => axum::Json(json!({ "tenant": tenant })).into_response(),
        Err(r) => r,
    }
}

/// The tenant of the request's bearer token, or the answer refusing it.
fn caller(api: &Api, headers: &HeaderMap) -> Result<String, Response> {
    let unauthorized = |m: &str| Err(error(401, m));
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return unauthorized("missing token");
    };
    let Some(t) = value.strip_prefix("Bearer ") else {
        return unauthorized("not a bearer token");
    };
    if api.shape.opaque_tokens {
        return match t {
            "opaque-session-alice-0123456789" => Ok("acme".into()),
            "opaque-session-bob-0123456789" => Ok("globex".into()),
            _ => unauthorized("unknown session"),
        };
    }
    let parts: Vec<&str> = t.split('.').collect();
    if parts.len() != 3 {
        return unauthorized("malformed token");
    }
    let decode = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (decode(parts[0]), decode(parts[1])) else {
        return unauthorized("malformed token");
    };
    match header["alg"].as_str() {
        Some("HS256") => {
            let unsigned = format!("{}.{}", parts[0], parts[1]);
            let good = URL_SAFE_NO_PAD
                .decode(parts[2])
                .is_ok_and(|s| s == sign(&unsigned, SECRET.as_bytes()));
            if !good && !api.shape.accept_foreign_key {
                return unauthorized("bad signature");
            }
        }
        Some("none") if api.shape.accept_alg_none => {}
        _ => return unauthorized("unsupported algorithm"),
    }
    if claims["exp"].as_u64().is_none_or(|e| e <= now()) && !api.shape.accept_expired {
        return unauthorized("token expired");
    }
    claims["tenant"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| error(401, "no tenant claim"))
}

fn create(api: &Api, tenant: &str, body: &[u8]) -> Response {
    let reference = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["reference"].as_str().map(str::to_string))
        .unwrap_or_default();
    let id = {
        let mut n = api.next.lock().unwrap();
        *n += 1;
        format!("ord-{n}")
    };
    api.orders
        .lock()
        .unwrap()
        .insert(id.clone(), (tenant.to_string(), reference.clone()));
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({ "id": id, "tenant": tenant, "reference": reference })),
    )
        .into_response()
}

/// Reads order `id` for a caller of `tenant`: the order, or the API's
/// refusal (its `broken` or `leak` fault aside).
fn read(api: &Api, tenant: &str, id: &str) -> Response {
    let order = api.orders.lock().unwrap().get(id).cloned();
    match order {
        Some((owner, reference)) if owner == tenant || api.shape.leak => {
            axum::Json(json!({ "id": id, "tenant": owner, "reference": reference })).into_response()
        }
        Some(_) => match api.shape.broken {
            Some(s) => error(s, "internal error"),
            None => error(api.shape.refusal, "not found"),
        },
        None => error(404, "not found"),
    }
}

fn tenant_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The header-shaped API's tenant check: a header, matching the token.
fn header_tenant(api: &Api, headers: &HeaderMap) -> Result<String, Response> {
    let tenant = caller(api, headers)?;
    match tenant_header(headers) {
        None => Err(error(400, "missing tenant header")),
        Some(t) if t != tenant => Err(error(403, "tenant header does not match the token")),
        Some(t) => Ok(t),
    }
}

async fn create_by_header(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match header_tenant(&api, &headers) {
        Ok(t) => create(&api, &t, &body),
        Err(r) => r,
    }
}

async fn read_by_header(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match header_tenant(&api, &headers) {
        Ok(t) => read(&api, &t, &id),
        Err(r) => r,
    }
}

/// The path-shaped API's tenant check: the path's tenant is the token's.
fn path_tenant(api: &Api, headers: &HeaderMap, tenant: &str) -> Result<(), Response> {
    let own = caller(api, headers)?;
    if own != tenant && !api.shape.leak {
        return Err(match api.shape.broken {
            Some(s) => error(s, "internal error"),
            None => error(api.shape.refusal, "not your tenant"),
        });
    }
    Ok(())
}

async fn create_by_path(
    State(api): State<Arc<Api>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match path_tenant(&api, &headers, &tenant) {
        Ok(()) => create(&api, &tenant, &body),
        Err(r) => r,
    }
}

async fn read_by_path(
    State(api): State<Arc<Api>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = path_tenant(&api, &headers, &tenant) {
        return r;
    }
    // An order of another tenant under this tenant's path is not found
    // here: its owner is not `tenant`.
    let owner = api.orders.lock().unwrap().get(&id).map(|o| o.0.clone());
    match owner {
        Some(o) if o != tenant && !api.shape.leak => match api.shape.broken {
            Some(s) => error(s, "internal error"),
            None => error(api.shape.refusal, "not found"),
        },
        _ => read(&api, &tenant, &id),
    }
}
