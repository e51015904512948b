//! What `convoy init --openapi` drafts beyond the lifecycle journeys and
//! how it treats what it cannot use: a tenant in the path makes two
//! identities and isolation probes whose files load; features it does not
//! draft are listed with their JSON pointers while the rest is drafted; a
//! URL that does not answer the document is an error naming it.

mod cli_support;

use std::path::PathBuf;

use cli_support::{convoy, init_args, text};
use serde_json::{Value, json};

/// `convoy init --openapi` of `doc`, written as `name` into a fresh
/// folder; the folder (kept while the test needs it) and the suite's.
fn draft(name: &str, doc: &Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join(name);
    std::fs::write(&spec, doc.to_string()).unwrap();
    let out = dir.path().join("suite");
    let o = convoy(&init_args("--openapi", &spec, &out), dir.path());
    assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
    (dir, out)
}

/// What convoy does not draft is named in the README with its JSON
/// pointer, and the rest of the document is still drafted: webhooks,
/// callbacks, HEAD, a required cookie, a scheme it cannot use, no servers.
#[test]
fn unsupported_features_are_listed_with_their_pointers() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Hooks", "version": "1" },
        "security": [{ "oidc": [] }],
        "components": { "securitySchemes": { "oidc": { "type": "openIdConnect", "openIdConnectUrl": "https://id.example/.well-known/openid-configuration" } } },
        "webhooks": { "orderShipped": { "post": { "responses": { "200": { "description": "ok" } } } } },
        "paths": {
            "/health": { "get": { "security": [], "responses": { "200": { "description": "ok" } } },
                         "head": { "responses": { "200": { "description": "ok" } } } },
            "/subscriptions": {
                "post": {
                    "parameters": [{ "name": "session", "in": "cookie", "required": true, "schema": { "type": "string" } }],
                    "callbacks": { "onEvent": { "{$request.body#/url}": { "post": { "responses": { "200": { "description": "ok" } } } } } },
                    "requestBody": { "content": { "application/json": { "schema": { "type": "object", "required": ["url"], "properties": { "url": { "type": "string", "format": "uri" } } } } } },
                    "responses": { "201": { "description": "ok" } }
                }
            }
        }
    });
    let (_dir, out) = draft("hooks.json", &doc);
    assert!(
        out.join("health.toml").exists(),
        "the rest is still drafted"
    );
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    for expected in [
        "#/webhooks/orderShipped",
        "#/paths/~1health/head",
        "#/paths/~1subscriptions/post/callbacks/onEvent",
        "#/paths/~1subscriptions/post/parameters/0",
        "#/components/securitySchemes/oidc",
        "#/servers",
    ] {
        assert!(readme.contains(expected), "{expected} not listed: {readme}");
    }
}

struct AnyEnv;

impl convoy_core::scenario::parse::Env for AnyEnv {
    fn get(&self, _: &str) -> Option<String> {
        Some("placeholder".into())
    }
}

/// A tenant in the path (`/tenants/{tenantId}/depots`) makes the draft
/// multi-tenant: the tenant is each identity's, written `{{ tenant }}` in
/// every path, probes included, and every drafted file loads.
#[test]
fn a_tenant_in_the_path_drafts_two_identities_and_probes() {
    let item = json!({
        "parameters": [
            { "name": "tenantId", "in": "path", "required": true, "schema": { "type": "string" } },
            { "name": "depotId", "in": "path", "required": true, "schema": { "type": "string" } }
        ],
        "get": { "responses": { "200": { "description": "ok" }, "404": { "description": "not found" } } },
        "delete": { "responses": { "204": { "description": "gone" }, "404": { "description": "not found" } } }
    });
    let doc = json!({
        "openapi": "3.0.3",
        "info": { "title": "Depots", "version": "1" },
        "servers": [{ "url": "http://127.0.0.1:9" }],
        "paths": {
            "/tenants/{tenantId}/depots": {
                "parameters": [{ "name": "tenantId", "in": "path", "required": true, "schema": { "type": "string" } }],
                "post": {
                    "parameters": [{ "name": "Idempotency-Key", "in": "header", "schema": { "type": "string" } }],
                    "requestBody": { "content": { "application/json": { "schema": {
                        "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } } } } },
                    "responses": { "201": { "description": "ok", "content": { "application/json": { "schema": {
                        "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } } } } } }
                },
                "get": { "responses": { "200": { "description": "ok" } } }
            },
            "/tenants/{tenantId}/depots/{depotId}": item
        }
    });
    let (_dir, out) = draft("depots.json", &doc);
    let suite = std::fs::read_to_string(out.join("suite.toml")).unwrap();
    assert!(
        suite.contains("[identities.tenant_a]") && suite.contains("{{ env.API_TENANT_B }}"),
        "{suite}"
    );
    let probes = std::fs::read_to_string(out.join("tenant-isolation.toml")).unwrap();
    assert!(
        probes.contains("resource = \"/tenants/{{ tenant }}/depots/{{ id }}\"")
            || probes.contains("resource = \"/tenants/{{ tenant }}/depots/{{ depot_id }}\""),
        "{probes}"
    );
    assert!(
        probes.contains("routes = [\"GET\", \"DELETE\"]"),
        "{probes}"
    );
    assert!(probes.contains("refused = [404]"), "{probes}");
    let replay = std::fs::read_to_string(out.join("idempotent-replay.toml")).unwrap();
    assert!(replay.contains("[step.replay]"), "{replay}");
    let suite_path = out.join("suite.toml");
    for name in [
        "depots-lifecycle.toml",
        "tenant-isolation.toml",
        "idempotent-replay.toml",
    ] {
        let path = out.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        convoy_core::scenario::parse::parse_in_suite(
            &path,
            &text,
            Some((&suite_path, &suite)),
            &AnyEnv,
        )
        .unwrap_or_else(|d| panic!("{d}"));
    }
}

/// A URL that answers no document, or nothing, is an error (exit 3) that
/// names it, and nothing is written.
#[test]
fn a_url_without_a_document_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A server that answers 404 to one request.
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    });
    let out = dir.path().join("suite");
    let url = format!("http://{addr}/openapi.json");
    let o = convoy(&init_args("--openapi", &url, &out), dir.path());
    server.join().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(err.contains(&url) && err.contains("404"), "{err}");
    // Nothing listens there any more: the refusal is named too.
    let o = convoy(&init_args("--openapi", &url, &out), dir.path());
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&url),
        "{}",
        text(&o)
    );
    assert!(!out.exists(), "nothing is written without a document");
}
