//! A logistics API shaped unlike the reference target, for the tests of
//! identities, auth kinds and suites (`tests/foreign_apis.rs`) and the
//! guide's example (`docs/testing-your-own-api.md`).
//!
//! "Depot" keeps orders per tenant. How a caller proves who it is
//! ([`Auth`]) and where the tenant is named ([`Tenancy`]) are chosen at
//! start: a login answering `{"data": {"access": TOKEN}}`, an API key, a
//! session cookie, OAuth2 client credentials, or a login whose tokens
//! expire after a few uses; the tenant in an `X-Tenant-Id` header (which
//! must match the caller's) or in the path (`/tenants/{t}/orders`).
//! Creating an order answers 202 with a nested id
//! (`{"order": {"id": ...}}`); its status moves with `PUT
//! /orders/{id}/status`. Every answer echoes the credential it was given
//! (in `X-Echo-Credential` and the body's `seen_credential`), so the tests
//! prove convoy redacts what a careless server repeats. Every request is
//! logged ([`Seen`]) so the tests can tell which headers reached which
//! kind of request.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{Value, json};

/// How a caller authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `POST /v2/session` `{"user", "pass"}` answers `{"data": {"access"}}`;
    /// requests send `Authorization: Bearer`.
    Login,
    /// `X-Api-Key: KEY`.
    ApiKey,
    /// `POST /session` `{"user", "pass"}` sets cookie `depot_sid`.
    Cookie,
    /// `POST /oauth/token`, client credentials, form-encoded.
    OAuth2,
    /// As `Login`, but a token is refused (401) after `EXPIRING_USES` uses.
    Expiring,
}

/// Where the tenant is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    /// `X-Tenant-Id`, which must be the caller's tenant (400 without it).
    Header,
    /// `/tenants/{t}/...`, which must be the caller's tenant.
    Path,
}

/// Uses of an `Expiring` token before it is refused.
pub const EXPIRING_USES: u32 = 3;

/// The users: (tenant, user, password, API key, client id, client secret).
pub const USERS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "acme",
        "ops@acme.example",
        "acme-Pa55word-1",
        "ak_acme_7f3c9e1d2b4a",
        "acme-client",
        "cs_acme_91b2c3d4e5f6",
    ),
    (
        "globex",
        "ops@globex.example",
        "globex-Pa55word-2",
        "ak_globex_5e6f7a8b9c0d",
        "globex-client",
        "cs_globex_a1b2c3d4e5f6",
    ),
];

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Its headers, lower-case names.
    pub headers: HashMap<String, String>,
    /// Its status.
    pub status: u16,
}

#[derive(Default)]
struct State {
    auth: Option<Auth>,
    tenancy: Option<Tenancy>,
    /// Serve another tenant's order on GET (a planted leak).
    leak: bool,
    /// Token (or cookie) → (tenant, uses).
    tokens: HashMap<String, (String, u32)>,
    issued: u64,
    /// Order id → (tenant, order).
    orders: HashMap<String, (String, Value)>,
    /// Idempotency key → order id.
    keys: HashMap<String, String>,
    seen: Vec<Seen>,
}

/// A running Depot API on a loopback port.
pub struct Depot {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl Depot {
    /// Starts a healthy Depot.
    pub fn start(auth: Auth, tenancy: Tenancy) -> Depot {
        Self::start_with(auth, tenancy, false)
    }

    /// Starts a Depot that serves any tenant's order on GET when `leak`.
    pub fn start_with(auth: Auth, tenancy: Tenancy, leak: bool) -> Depot {
        let state = Arc::new(Mutex::new(State {
            auth: Some(auth),
            tenancy: Some(tenancy),
            leak,
            ..State::default()
        }));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let s = state.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let s = s.clone();
            async move { handle(s, req).await }
        });
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Depot {
            addr,
            state,
            _runtime: runtime,
        }
    }

    /// Its base URL, with a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Tokens (and session cookies) issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().tokens.keys().cloned().collect()
    }
}

fn answer(status: u16, body: Value, echo: &str) -> Response<Body> {
    let mut body = body;
    if let Value::Object(m) = &mut body {
        m.insert("seen_credential".into(), Value::from(echo));
    }
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if !echo.is_empty() {
        r = r.header("x-echo-credential", echo);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut st = state.lock().unwrap();
    let resp = route(
        &mut st,
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    st.seen.push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        status: resp.status().as_u16(),
    });
    resp
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn issue(st: &mut State, tenant: &str) -> String {
    st.issued += 1;
    let token = format!(
        "tok-{tenant}-{:08x}-{}",
        st.issued * 2_654_435_761 % 0xffff_ffff,
        uuid::Uuid::new_v4().simple()
    );
    st.tokens.insert(token.clone(), (tenant.to_string(), 0));
    token
}

fn user_of(body: &[u8]) -> Option<&'static str> {
    let v: Value = serde_json::from_slice(body).ok()?;
    USERS
        .iter()
        .find(|u| v["user"] == u.1 && v["pass"] == u.2)
        .map(|u| u.0)
}

fn route(
    st: &mut State,
    method: &Method,
    path: &str,
    query: Option<&str>,
    h: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    let auth = st.auth.unwrap();
    // Logins.
    match (method, path, auth) {
        (&Method::POST, "/v2/session", Auth::Login | Auth::Expiring) => {
            return match user_of(body) {
                Some(t) => {
                    let token = issue(st, t);
                    answer(200, json!({"data": {"access": token}}), "")
                }
                None => answer(401, json!({"error": "bad credentials"}), ""),
            };
        }
        (&Method::POST, "/session", Auth::Cookie) => {
            return match user_of(body) {
                Some(t) => {
                    let sid = issue(st, t);
                    let mut r = answer(204, json!({}), "");
                    r.headers_mut().insert(
                        "set-cookie",
                        format!("depot_sid={sid}; Path=/; HttpOnly")
                            .parse()
                            .unwrap(),
                    );
                    r
                }
                None => answer(401, json!({"error": "bad credentials"}), ""),
            };
        }
        (&Method::POST, "/oauth/token", Auth::OAuth2) => {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(body).into_owned().collect();
            let client = USERS.iter().find(|u| {
                form.get("client_id").map(String::as_str) == Some(u.4)
                    && form.get("client_secret").map(String::as_str) == Some(u.5)
            });
            return match (form.get("grant_type").map(String::as_str), client) {
                (Some("client_credentials"), Some(u)) => {
                    let token = issue(st, u.0);
                    answer(
                        200,
                        json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
                        "",
                    )
                }
                _ => answer(401, json!({"error": "invalid_client"}), ""),
            };
        }
        _ => {}
    }
    if path == "/health" {
        return answer(200, json!({"status": "ok"}), "");
    }
    // Who is calling.
    let (credential, caller) = match auth {
        Auth::ApiKey => {
            let key = header(h, "x-api-key").to_string();
            let t = USERS.iter().find(|u| u.3 == key).map(|u| u.0.to_string());
            (key, t)
        }
        Auth::Cookie => {
            let cookie = header(h, "cookie");
            let sid = cookie
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("depot_sid="))
                .next()
                .unwrap_or("")
                .to_string();
            let t = st.tokens.get(&sid).map(|(t, _)| t.clone());
            (sid, t)
        }
        _ => {
            let token = header(h, "authorization")
                .strip_prefix("Bearer ")
                .unwrap_or("")
                .to_string();
            let t = match st.tokens.get_mut(&token) {
                Some((t, uses)) => {
                    *uses += 1;
                    (auth != Auth::Expiring || *uses <= EXPIRING_USES).then(|| t.clone())
                }
                None => None,
            };
            (token, t)
        }
    };
    let Some(caller) = caller else {
        return answer(401, json!({"error": "unauthenticated"}), &credential);
    };
    if path == "/denied" {
        return answer(401, json!({"error": "revoked"}), &credential);
    }
    // Which tenant the request names.
    let (tenant, rest) = match st.tenancy.unwrap() {
        Tenancy::Header => {
            let t = header(h, "x-tenant-id");
            if t.is_empty() {
                return answer(400, json!({"error": "missing tenant header"}), &credential);
            }
            (t.to_string(), path.to_string())
        }
        Tenancy::Path => {
            let Some(p) = path.strip_prefix("/tenants/") else {
                return answer(404, json!({"error": "not found"}), &credential);
            };
            let (t, rest) = p.split_once('/').unwrap_or((p, ""));
            (t.to_string(), format!("/{rest}"))
        }
    };
    if tenant != caller {
        return answer(403, json!({"error": "not your tenant"}), &credential);
    }
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["orders"]) => {
            let key = header(h, "idempotency-key").to_string();
            if let Some(id) = st.keys.get(&key).filter(|_| !key.is_empty()) {
                let order = st.orders[id].1.clone();
                return answer(202, json!({"order": order}), &credential);
            }
            let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let id = format!("ord_{}", uuid::Uuid::new_v4().simple());
            let order = json!({"id": id, "reference": input["reference"], "status": "new"});
            st.orders.insert(id.clone(), (tenant, order.clone()));
            if !key.is_empty() {
                st.keys.insert(key, id);
            }
            answer(202, json!({"order": order}), &credential)
        }
        (&Method::GET, ["orders"]) => {
            let reference = query
                .and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "reference")
                })
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let n = st
                .orders
                .values()
                .filter(|(t, o)| *t == tenant && o["reference"] == reference.as_str())
                .count();
            answer(200, json!({"count": n}), &credential)
        }
        (m, ["orders", id, more @ ..]) => {
            let Some((owner, order)) = st.orders.get(*id).cloned() else {
                return answer(404, json!({"error": "no such order"}), &credential);
            };
            let leaked = st.leak && m == Method::GET && more.is_empty();
            if owner != tenant && !leaked {
                return answer(404, json!({"error": "no such order"}), &credential);
            }
            match (m, more) {
                (&Method::GET, []) => answer(200, json!({"order": order}), &credential),
                (&Method::PUT, ["status"]) => {
                    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    let Some(status) = input["status"].as_str() else {
                        return answer(422, json!({"error": "status required"}), &credential);
                    };
                    let mut order = order;
                    order["status"] = Value::from(status);
                    st.orders.insert(id.to_string(), (owner, order.clone()));
                    answer(200, json!({"order": order}), &credential)
                }
                _ => answer(405, json!({"error": "method not allowed"}), &credential),
            }
        }
        _ => answer(404, json!({"error": "not found"}), &credential),
    }
}

/// The built-in status as text.
pub fn status_text(s: u16) -> String {
    StatusCode::from_u16(s).map_or(s.to_string(), |c| c.to_string())
}
