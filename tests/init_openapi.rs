//! `convoy init --openapi`: a realistic logistics document
//! (`tests/fixtures/openapi/logistics.{json,yaml}`: orders created with an
//! `Idempotency-Key`, read, patched, listed and cancelled behind a bearer
//! login, under a `/v1` base path) is drafted into a suite that
//! `convoy smoke` passes on the first try against a small axum server
//! implementing that document, and fails against one that does not keep
//! an update. A malformed document is an error naming the file, not a
//! panic.

mod cli_support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cli_support::{
    assert_init_refuses, convoy_with_env, init_args, smoke_args, smoke_where_nothing_listens, text,
};
use serde_json::{Value, json};

const EMAIL: &str = "shipper@parcel.test";
const PASSWORD: &str = "init-test-password-7f3a";

/// The server's state: issued tokens, orders by id, idempotency keys, and
/// which operations were called (to prove every step reached it).
#[derive(Default)]
struct Depot {
    tokens: Vec<String>,
    orders: HashMap<String, Value>,
    keys: HashMap<String, String>,
    calls: Vec<&'static str>,
    /// Fault: PATCH answers 200 but drops the change.
    forgetful_update: bool,
}

type Shared = Arc<Mutex<Depot>>;

fn problem(status: StatusCode, title: &str) -> Response {
    (
        status,
        Json(json!({ "title": title, "status": status.as_u16() })),
    )
        .into_response()
}

fn authorised(state: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    state.lock().unwrap().tokens.iter().any(|t| t == token)
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn login(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    if body["email"] != EMAIL || body["password"] != PASSWORD {
        return problem(StatusCode::UNAUTHORIZED, "bad credentials");
    }
    let token = format!("tok-{}", uuid::Uuid::new_v4());
    let mut s = state.lock().unwrap();
    s.tokens.push(token.clone());
    s.calls.push("login");
    Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600 }))
        .into_response()
}

/// What the document says an address must be.
fn valid_address(a: &Value) -> bool {
    let s = |k: &str| a[k].as_str().unwrap_or("");
    let country = s("country");
    s("street").chars().count() >= 3
        && !s("city").is_empty()
        && !s("postal_code").is_empty()
        && country.len() == 2
        && country.chars().all(|c| c.is_ascii_uppercase())
}

/// What the document says an order must be; `Err` names the first fault.
fn validate(o: &Value) -> Result<(), &'static str> {
    let reference = o["reference"].as_str().ok_or("reference")?;
    if reference.is_empty() || reference.chars().count() > 40 {
        return Err("reference");
    }
    let w = o["weight_kg"].as_f64().ok_or("weight_kg")?;
    if !(0.1..=31.5).contains(&w) {
        return Err("weight_kg");
    }
    if !matches!(
        o["service_level"].as_str(),
        Some("standard" | "express" | "same_day")
    ) {
        return Err("service_level");
    }
    if !valid_address(&o["pickup"]) || !valid_address(&o["dropoff"]) {
        return Err("address");
    }
    let after = o["pickup_after"].as_str().ok_or("pickup_after")?;
    if after.len() < 20 || !after.contains('T') {
        return Err("pickup_after");
    }
    Ok(())
}

async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorised(&state, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "no token");
    }
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return problem(StatusCode::BAD_REQUEST, "Idempotency-Key is required");
    };
    if let Err(field) = validate(&body) {
        return problem(StatusCode::BAD_REQUEST, field);
    }
    let mut s = state.lock().unwrap();
    s.calls.push("create");
    if let Some(id) = s.keys.get(key) {
        return (StatusCode::CREATED, Json(s.orders[id].clone())).into_response();
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut order = body;
    order["id"] = json!(id);
    order["status"] = json!("created");
    order["created_at"] = json!("2026-12-07T10:00:00Z");
    s.keys.insert(key.to_string(), id.clone());
    s.orders.insert(id, order.clone());
    (StatusCode::CREATED, Json(order)).into_response()
}

async fn list(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "no token");
    }
    let mut s = state.lock().unwrap();
    s.calls.push("list");
    let items: Vec<Value> = s.orders.values().cloned().collect();
    Json(json!({ "items": items, "total": items.len() })).into_response()
}

async fn read(
    State(state): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !authorised(&state, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "no token");
    }
    let mut s = state.lock().unwrap();
    s.calls.push("read");
    match s.orders.get(&id) {
        Some(o) => Json(o.clone()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such order"),
    }
}

async fn update(
    State(state): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    if !authorised(&state, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "no token");
    }
    let mut s = state.lock().unwrap();
    s.calls.push("update");
    let forgetful = s.forgetful_update;
    let Some(order) = s.orders.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "no such order");
    };
    let Some(changes) = body.as_object() else {
        return problem(StatusCode::BAD_REQUEST, "an object is expected");
    };
    let mut changed = order.clone();
    for (k, v) in changes {
        if !matches!(k.as_str(), "notes" | "service_level" | "dropoff") {
            return problem(StatusCode::BAD_REQUEST, "not a field an update may change");
        }
        changed[k] = v.clone();
    }
    if validate(&changed).is_err() {
        return problem(StatusCode::BAD_REQUEST, "invalid change");
    }
    if !forgetful {
        *order = changed;
    }
    Json(order.clone()).into_response()
}

async fn cancel(
    State(state): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !authorised(&state, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "no token");
    }
    let mut s = state.lock().unwrap();
    s.calls.push("delete");
    match s.orders.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such order"),
    }
}

/// Serves the document's API under `/v1` on an ephemeral loopback port,
/// on a thread of its own.
fn spawn_depot(forgetful_update: bool) -> (SocketAddr, Shared) {
    let state: Shared = Arc::new(Mutex::new(Depot {
        forgetful_update,
        ..Depot::default()
    }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app_state = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let api = Router::new()
                .route("/health", get(health))
                .route("/auth/login", post(login))
                .route("/orders", post(create).get(list))
                .route("/orders/{id}", get(read).patch(update).delete(cancel))
                .with_state(app_state);
            let app = Router::new().nest("/v1", api);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (addr, state)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi")
        .join(name)
}

/// `convoy ARGS` in `cwd` with the depot's credentials, as the drafted
/// suites read them.
fn convoy(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    convoy_with_env(
        args,
        cwd,
        [("API_USERNAME", EMAIL), ("API_PASSWORD", PASSWORD)],
    )
}

/// Drafts the suite of `spec` into a fresh folder and returns it.
fn init(spec: &str, dir: &Path) -> PathBuf {
    let out = dir.join("suite");
    let o = convoy(&init_args("--openapi", fixture(spec), &out), dir);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    out
}

fn smoke(suite: &Path, addr: SocketAddr, dir: &Path) -> Output {
    let target = format!("http://{addr}/v1");
    convoy(&smoke_args(suite, &target, &dir.join("reports")), dir)
}

fn drafted_smoke_passes(spec: &str) {
    let dir = tempfile::tempdir().unwrap();
    let suite = init(spec, dir.path());
    let readme = std::fs::read_to_string(suite.join("README.md")).unwrap();
    assert!(
        readme.contains("API_USERNAME") && readme.contains("API_PASSWORD"),
        "{readme}"
    );
    assert!(
        readme.contains("proof-of-delivery"),
        "the multipart upload is listed as left out: {readme}"
    );
    let lifecycle = std::fs::read_to_string(suite.join("orders-lifecycle.toml")).unwrap();
    assert!(lifecycle.contains("operationId createOrder"), "{lifecycle}");
    assert!(
        lifecycle.contains("\"Idempotency-Key\" = \"{{ uuid }}\"")
            || lifecycle.contains("Idempotency-Key = \"{{ uuid }}\""),
        "{lifecycle}"
    );

    let (addr, state) = spawn_depot(false);
    let o = smoke(&suite, addr, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let calls = state.lock().unwrap().calls.clone();
    for op in ["login", "create", "read", "update", "list", "delete"] {
        assert!(
            calls.contains(&op),
            "{op} never reached the server: {calls:?}"
        );
    }
    // The id captured from the create answer is the one read after the
    // delete: the journey ends on a 404 the server only gives for it.
    assert_eq!(
        calls.iter().filter(|c| **c == "read").count(),
        2,
        "{calls:?}"
    );
    assert!(
        state.lock().unwrap().orders.is_empty(),
        "the journey deleted what it created"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains(PASSWORD), "the password reached the output");
}

#[test]
fn json_document_drafts_a_suite_that_passes_smoke() {
    drafted_smoke_passes("logistics.json");
}

#[test]
fn yaml_document_drafts_a_suite_that_passes_smoke() {
    drafted_smoke_passes("logistics.yaml");
}

#[test]
fn drafted_suite_fails_on_an_update_that_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let suite = init("logistics.json", dir.path());
    let (addr, _) = spawn_depot(true);
    let o = smoke(&suite, addr, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/notes"),
        "{}",
        text(&o)
    );
}

#[test]
fn malformed_documents_are_named_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "broken.yaml",
            "openapi: 3.0.3\npaths:\n  /x: [\n",
            "invalid YAML",
        ),
        (
            "broken.json",
            "{\"openapi\": \"3.0.3\", \"paths\": {",
            "invalid JSON",
        ),
        (
            "swagger.json",
            "{\"swagger\": \"2.0\", \"paths\": {}}",
            "Swagger 2.0",
        ),
        (
            "dangling.json",
            r##"{"openapi":"3.1.0","paths":{"/orders":{"post":{"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}},"responses":{"201":{"description":"ok"}}},"get":{"responses":{"200":{"description":"ok"}}}}}}"##,
            "#/paths/~1orders/post/requestBody/content/application~1json/schema/$ref",
        ),
    ];
    assert_init_refuses("--openapi", &cases, dir.path(), convoy);
}

/// A one-resource document secured by `scheme` (a securitySchemes entry).
fn secured_doc(scheme: Value) -> String {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Depots", "version": "1" },
        "security": [{ "s": [] }],
        "components": { "securitySchemes": { "s": scheme } },
        "paths": {
            "/depots": {
                "post": {
                    "operationId": "createDepot",
                    "requestBody": { "content": { "application/json": { "schema": {
                        "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } } } } },
                    "responses": { "201": { "description": "ok", "content": { "application/json": { "schema": {
                        "type": "object", "required": ["depot_id"], "properties": { "depot_id": { "type": "integer" } } } } } } }
                },
                "get": { "responses": { "200": { "description": "ok" } } }
            },
            "/depots/{depotId}": {
                "get": { "parameters": [{ "name": "depotId", "in": "path", "required": true, "schema": { "type": "integer" } }],
                         "responses": { "200": { "description": "ok" } } }
            }
        }
    })
    .to_string()
}

/// Every auth kind drafts a suite convoy loads: with the README's variables
/// set, `convoy smoke` gets past loading (exit 4: nothing listens on the
/// target) rather than refusing a file (exit 3).
#[test]
fn every_auth_kind_drafts_a_suite_convoy_loads() {
    let kinds = [
        (
            json!({ "type": "apiKey", "in": "header", "name": "X-Api-Key" }),
            "header = \"X-Api-Key\"",
            &["API_KEY"][..],
        ),
        (
            json!({ "type": "apiKey", "in": "query", "name": "key" }),
            "query = \"key\"",
            &["API_KEY"][..],
        ),
        (
            json!({ "type": "apiKey", "in": "cookie", "name": "sid" }),
            "cookie = \"sid\"",
            &["API_KEY"][..],
        ),
        (
            json!({ "type": "http", "scheme": "basic" }),
            "kind = \"basic\"",
            &["API_USERNAME", "API_PASSWORD"][..],
        ),
        (
            json!({ "type": "http", "scheme": "bearer" }),
            "kind = \"token\"",
            &["API_TOKEN"][..],
        ),
        (
            json!({ "type": "oauth2", "flows": { "clientCredentials": { "tokenUrl": "/oauth/token", "scopes": {} } } }),
            "kind = \"oauth2\"",
            &["API_CLIENT_ID", "API_CLIENT_SECRET"][..],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (scheme, expected, vars)) in kinds.into_iter().enumerate() {
        let spec = dir.path().join(format!("spec-{i}.json"));
        std::fs::write(&spec, secured_doc(scheme.clone())).unwrap();
        let out = dir.path().join(format!("suite-{i}"));
        let o = convoy(&init_args("--openapi", &spec, &out), dir.path());
        assert_eq!(o.status.code(), Some(0), "{scheme}: {}", text(&o));
        let suite = std::fs::read_to_string(out.join("suite.toml")).unwrap();
        assert!(suite.contains(expected), "{scheme}: {suite}");
        let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
        let lifecycle = std::fs::read_to_string(out.join("depots-lifecycle.toml")).unwrap();
        assert!(
            lifecycle.contains("capture = { depot_id = \"/depot_id\" }"),
            "{lifecycle}"
        );
        assert!(
            lifecycle.contains("path = \"/depots/{{ depot_id }}\""),
            "{lifecycle}"
        );
        for v in vars {
            assert!(
                readme.contains(v),
                "{scheme}: {v} not in the README: {readme}"
            );
        }
        let o = smoke_where_nothing_listens(
            &out,
            &dir.path().join(format!("reports-{i}")),
            dir.path(),
            vars.iter().map(|v| (v, "not-a-real-secret-1234")),
        );
        assert_eq!(o.status.code(), Some(4), "{scheme}: {}", text(&o));
    }
}
