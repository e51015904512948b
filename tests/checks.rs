//! Checks against an API shaped unlike the reference target: an axum app,
//! written here, that wraps its answers in envelopes with nested arrays
//! (`{ "data": { "entries": [...] } }`), reports its rate limit in headers
//! and has one slow route. Each check kind passes on the healthy answer and
//! fails, saying which element and what it found, on the faulty one.

mod engine_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use convoy::engine::RunResult;
use convoy::plan::LoadModel;
use convoy::scenario::{CustomRegistry, parse};
use serde_json::json;

/// A ledger with a fare and a delivery fee, as a healthy API answers.
async fn ledger() -> impl IntoResponse {
    (
        [
            ("x-ratelimit-remaining", "42"),
            ("x-request-id", "req-7f3a"),
        ],
        axum::Json(json!({
            "data": {
                "order": "ord-1",
                "entries": [
                    { "kind": "fare", "amount": 1200, "ref": "adj-1" },
                    { "kind": "delivery_fee", "amount": "250", "ref": "adj-2" }
                ]
            }
        })),
    )
}

/// The same ledger with the fee missing, a refund that should not be
/// there, a malformed reference, a debug header, no quota left and the
/// wrong content type.
async fn faulty_ledger() -> impl IntoResponse {
    (
        [
            ("content-type", "text/plain"),
            ("x-ratelimit-remaining", "0"),
            ("x-request-id", "7f3a"),
            ("x-debug", "sql=SELECT"),
        ],
        axum::Json(json!({
            "data": {
                "order": "ord-1",
                "entries": [
                    { "kind": "fare", "amount": 1200, "ref": "adj-1" },
                    { "kind": "refund", "amount": -1200, "ref": "ADJ_2" }
                ]
            }
        })),
    )
}

/// Answers after 300 ms, far past the 50 ms bound the test sets.
async fn slow() -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(300)).await;
    axum::Json(json!({ "ok": true }))
}

/// Starts the API on an ephemeral loopback port, on a thread of its own
/// (it lives as long as the test process).
fn spawn_api() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/v2/ledger", get(ledger))
                .route("/v2/faulty-ledger", get(faulty_ledger))
                .route("/v2/slow", get(slow));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

/// The checks of the ledger steps: every kind this file tests.
const LEDGER_CHECKS: &str = r#"checks = [
  { json = "/data/entries/*/kind", equals = "delivery_fee" },
  { jsonpath = "$.data.entries[*].kind", not_equals = "refund" },
  { json = "/data/entries/*/amount", all = true, greater_than = 0 },
  { json = "/data/entries/*/ref", all = true, matches = "^adj-\\d+$" },
  { json = "/data/order", not_equals = "ord-0" },
  { json = "/data/entries/0/amount", between = [1000, 2000] },
  { header = "x-ratelimit-remaining", at_least = 1 },
  { header = "x-request-id", matches = "^req-" },
  { header = "content-type", contains = "json" },
  { header = "x-debug", exists = false },
  { body_not_contains = "refund" },
]"#;

/// A scenario of one step on `path` with `checks`.
fn scenario_text(path: &str, checks: &str) -> String {
    format!("name = \"ledger\"\n[[step]]\nname = \"ledger\"\npath = \"{path}\"\n{checks}\n")
}

/// Runs the one-step scenario twice (one user, two iterations).
fn run(addr: SocketAddr, text: &str) -> RunResult {
    let scenario = parse::parse(std::path::Path::new("ledger.toml"), text, &parse::EnvScope)
        .unwrap_or_else(|d| panic!("{d}"));
    engine_support::run_scenarios(
        &format!("http://{addr}"),
        vec![scenario],
        &LoadModel::closed(1, 2),
        CustomRegistry::new(),
        false,
    )
}

/// Each check's (passes, failures), by label.
fn counts(r: &RunResult) -> BTreeMap<String, (u64, u64)> {
    r.checks
        .iter()
        .map(|c| (c.info.name.clone(), (c.stats.passes, c.stats.failures)))
        .collect()
}

/// The message of the first failure sample of the check labelled `label`.
fn message<'r>(r: &'r RunResult, label: &str) -> &'r str {
    &r.failures
        .iter()
        .find(|f| f.check == label)
        .unwrap_or_else(|| panic!("no failure sample of {label}: {:#?}", r.failures))
        .message
}

const LABELS: [&str; 11] = [
    r#"some json /data/entries/*/kind == "delivery_fee""#,
    r#"no jsonpath $.data.entries[*].kind == "refund""#,
    "every json /data/entries/*/amount > 0",
    r#"every json /data/entries/*/ref matches "^adj-\\d+$""#,
    r#"json /data/order != "ord-0""#,
    "json /data/entries/0/amount between 1000 and 2000",
    "header x-ratelimit-remaining >= 1",
    r#"header x-request-id matches "^req-""#,
    r#"header content-type contains "json""#,
    "header x-debug is absent",
    r#"body does not contain "refund""#,
];

#[test]
fn every_check_kind_passes_on_the_healthy_ledger() {
    let addr = spawn_api();
    let r = run(addr, &scenario_text("/v2/ledger", LEDGER_CHECKS));
    let counts = counts(&r);
    for label in LABELS {
        assert_eq!(
            counts.get(label),
            Some(&(2, 0)),
            "{label}: {counts:#?}\n{:#?}",
            r.failures
        );
    }
    assert_eq!(r.check_failures(), 0, "{:#?}", r.failures);
}

#[test]
fn every_check_kind_fails_on_the_faulty_ledger_saying_what_it_found() {
    let addr = spawn_api();
    let r = run(addr, &scenario_text("/v2/faulty-ledger", LEDGER_CHECKS));
    let counts = counts(&r);
    // The order is right and the first amount too: only they pass.
    for label in &LABELS[4..6] {
        assert_eq!(counts.get(*label), Some(&(2, 0)), "{label}: {counts:#?}");
    }
    for label in LABELS.iter().take(4).chain(&LABELS[6..]) {
        assert_eq!(counts.get(*label), Some(&(0, 2)), "{label}: {counts:#?}");
    }
    assert_eq!(
        message(&r, LABELS[0]),
        r#"none of the 2 elements passes: /data/entries/0/kind "fare", /data/entries/1/kind "refund""#
    );
    assert_eq!(
        message(&r, LABELS[1]),
        r#"/data/entries/1/kind: found "refund" (1 of 2 elements fail)"#
    );
    assert_eq!(
        message(&r, LABELS[2]),
        "/data/entries/1/amount: found -1200 (1 of 2 elements fail)"
    );
    assert_eq!(
        message(&r, LABELS[3]),
        r#"/data/entries/1/ref: "ADJ_2" does not match (1 of 2 elements fail)"#
    );
    assert_eq!(message(&r, LABELS[6]), r#"found "0""#);
    assert_eq!(message(&r, LABELS[7]), r#""7f3a" does not match"#);
    assert_eq!(
        message(&r, LABELS[8]),
        r#""text/plain" does not contain "json""#
    );
    assert_eq!(message(&r, LABELS[9]), r#"present: "sql=SELECT""#);
    assert!(
        message(&r, LABELS[10]).ends_with(r#"contains "refund""#),
        "{}",
        message(&r, LABELS[10])
    );
}

#[test]
fn a_latency_bound_fails_a_step_slower_than_it() {
    let addr = spawn_api();
    let r = run(
        addr,
        &scenario_text(
            "/v2/slow",
            r#"checks = [{ json = "/ok", equals = true }, { latency_below = "50ms" }]"#,
        ),
    );
    let counts = counts(&r);
    // The answer is right; only its time fails.
    assert_eq!(counts.get("json /ok == true"), Some(&(2, 0)), "{counts:#?}");
    assert_eq!(counts.get("latency < 50ms"), Some(&(0, 2)), "{counts:#?}");
    assert!(
        message(&r, "latency < 50ms").starts_with("took "),
        "{:#?}",
        r.failures
    );
}
