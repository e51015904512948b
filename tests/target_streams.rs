//! The reference target's event streams, `GET /events` (server-sent events)
//! and `GET /ws` (WebSocket), read by plain clients over real HTTP: the
//! lifecycle's events in order with their documented fields, tenants kept
//! apart, the `?types=` filter, authentication, a lagging subscriber, and
//! each event fault off and on.
//!
//! Timing is checked only as a lower bound (a sleep never ends early); the
//! read timeouts below only keep a broken stream from hanging the test.
//! With `CONVOY_TEST_TARGET_ON_POSTGRES=1` (see `target_support`) the same
//! tests run on PostgreSQL; `postgres_storage_publishes_the_same_events`
//! does so whenever `CONVOY_TEST_DATABASE_URL` is set.

mod postgres_support;
mod target_streams_support;
mod target_support;

use std::time::{Duration, Instant};

use convoy::target::{self, TargetConfig};
use futures_util::SinkExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use target_streams_support::{Sse, Ws, expect_lifecycle, run_lifecycle};
use target_support::{
    ACME_ADMIN, ACME_DISPATCHER, GLOBEX_ADMIN, GLOBEX_DISPATCHER, Session, start,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn sse_delivers_the_lifecycle_in_order_with_the_documented_fields() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let mut stream = Sse::open(&dispatcher, "/events").await;
    assert_eq!(stream.content_type, "text/event-stream");
    let order = run_lifecycle(&target).await;
    let mut events = Vec::new();
    for _ in 0..5 {
        let frame = stream.next().await.expect("an event");
        // The SSE id is the event's sequence number.
        assert_eq!(
            frame.id.as_deref(),
            Some(frame.json()["seq"].to_string().as_str())
        );
        assert_eq!(frame.event.as_deref(), frame.json()["type"].as_str());
        events.push(frame.json());
    }
    expect_lifecycle(&events, "acme", &order);
}

#[tokio::test]
async fn websocket_delivers_the_lifecycle_in_order_with_the_documented_fields() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let mut ws = Ws::open(&dispatcher, "/ws").await;
    let order = run_lifecycle(&target).await;
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(ws.next().await.expect("an event"));
    }
    expect_lifecycle(&events, "acme", &order);
}

#[tokio::test]
async fn a_tenant_never_receives_another_tenants_events() {
    let target = start(&[]);
    let globex = Session::login(&target, GLOBEX_DISPATCHER).await;
    let mut sse = Sse::open(&globex, "/events").await;
    let mut ws = Ws::open(&globex, "/ws").await;
    run_lifecycle(&target).await;
    // globex's own order, made after acme's whole lifecycle, must be the
    // first thing globex hears: nothing of acme's came before it.
    let marker = Session::login(&target, GLOBEX_ADMIN)
        .await
        .create_order("GX-1")
        .await;
    for first in [
        sse.next().await.expect("an event").json(),
        ws.next().await.expect("an event"),
    ] {
        assert_eq!(first["tenant"], "globex", "{first}");
        assert_eq!(first["order_id"], marker.as_str(), "{first}");
        assert_eq!(first["type"], "order.created");
    }
}

#[tokio::test]
async fn the_types_filter_keeps_only_the_kinds_asked_for() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let mut sse = Sse::open(&dispatcher, "/events?types=order.status").await;
    let mut ws = Ws::open(&dispatcher, "/ws?types=order.status,dispatch.assigned").await;
    run_lifecycle(&target).await;
    let statuses: Vec<Value> = {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(sse.next().await.expect("an event").json()["status"].clone());
        }
        got
    };
    assert_eq!(statuses, ["accepted", "routed", "delivered"]);
    assert_eq!(ws.next().await.unwrap()["type"], "dispatch.assigned");
    assert_eq!(ws.next().await.unwrap()["status"], "accepted");

    let unknown = dispatcher.get("/events?types=order.deleted").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.json["field"], "types");
}

#[tokio::test]
async fn streams_refuse_requests_without_a_valid_token() {
    let target = start(&[]);
    let base = target.base_url();
    let client = target_support::client();
    for path in ["/events", "/ws", "/events?access_token=not-a-token"] {
        let reply = target_support::send(client.get(format!("{base}{path}"))).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.json["code"], "unauthorized", "{path}");
        assert!(!reply.text.contains("not-a-token"), "{}", reply.text);
    }
    // A WebSocket handshake without credentials is refused the same way.
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", target.addr())).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn ws_without_an_upgrade_says_it_is_a_websocket() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let reply = dispatcher.get("/ws").await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    assert_eq!(
        reply.json["code"], "websocket_upgrade_required",
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn the_token_may_come_in_the_query_for_clients_without_headers() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let query = format!("?access_token={}", dispatcher.token);
    let mut sse = Sse::open_unauthenticated(&target, &format!("/events{query}")).await;
    let mut ws = Ws::open_unauthenticated(&target, &format!("/ws{query}")).await;
    let id = Session::login(&target, ACME_ADMIN)
        .await
        .create_order("Q-1")
        .await;
    assert_eq!(sse.next().await.unwrap().json()["order_id"], id.as_str());
    assert_eq!(ws.next().await.unwrap()["order_id"], id.as_str());
}

#[tokio::test]
async fn websocket_answers_ping_and_says_what_it_does_not_understand() {
    let target = start(&[]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let mut ws = Ws::open(&dispatcher, "/ws").await;
    ws.socket
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap(), json!({"type": "pong"}));
    ws.socket
        .send(Message::text(r#"{"type":"subscribe"}"#))
        .await
        .unwrap();
    let error = ws.next().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "unknown_message");
    // The stream goes on.
    let id = Session::login(&target, ACME_ADMIN)
        .await
        .create_order("P-1")
        .await;
    assert_eq!(ws.next().await.unwrap()["order_id"], id.as_str());
}

/// A target with a two-event buffer and slow delivery: a subscriber falls
/// behind while orders keep coming.
async fn lagging(kind: &str) {
    let config = TargetConfig {
        worker_threads: 1,
        event_buffer: 2,
        ..TargetConfig::default()
    }
    .with_fault("event-delay=200ms".parse().unwrap());
    let target = target::spawn(config).unwrap();
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let admin = Session::login(&target, ACME_ADMIN).await;
    let mut reader = if kind == "sse" {
        target_streams_support::Reader::Sse(Sse::open(&dispatcher, "/events").await)
    } else {
        target_streams_support::Reader::Ws(Ws::open(&dispatcher, "/ws").await)
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut created = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && created < 2000 {
                admin.create_order("LAG").await;
                created += 1;
            }
        }
    });
    let mut skipped = None;
    let mut after = None;
    while after.is_none() {
        let json = reader.next().await.expect("the stream goes on");
        match (json["type"].as_str(), skipped) {
            (Some("lagged"), _) => {
                assert_eq!(json.as_object().unwrap().len(), 2, "{json}");
                skipped = json["skipped"].as_u64();
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            (Some("order.created"), Some(_)) => after = Some(json),
            (Some("order.created"), None) => {}
            _ => panic!("unexpected {json}"),
        }
    }
    writer.await.unwrap();
    assert!(skipped.unwrap() >= 1, "{skipped:?}");
}

#[tokio::test]
async fn a_lagging_sse_subscriber_is_told_what_it_missed_and_goes_on() {
    lagging("sse").await;
}

#[tokio::test]
async fn a_lagging_websocket_subscriber_is_told_what_it_missed_and_goes_on() {
    lagging("ws").await;
}

#[tokio::test]
async fn event_delay_holds_events_at_least_that_long_after_the_write() {
    let target = start(&["event-delay=120ms"]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let admin = Session::login(&target, ACME_ADMIN).await;
    let mut sse = Sse::open(&dispatcher, "/events").await;
    let mut ws = Ws::open(&dispatcher, "/ws").await;
    let sent = Instant::now();
    let id = admin.create_order("D-1").await;
    assert_eq!(sse.next().await.unwrap().json()["order_id"], id.as_str());
    assert!(
        sent.elapsed() >= Duration::from_millis(120),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(ws.next().await.unwrap()["order_id"], id.as_str());
    assert!(
        sent.elapsed() >= Duration::from_millis(120),
        "{:?}",
        sent.elapsed()
    );
}

/// The sequence numbers one subscriber of each kind receives of `count`
/// orders, on a target with `faults` and the seed 42, once every order has
/// been answered and the streams have been quiet for a while.
async fn received_seqs(faults: &[&str], count: usize) -> (Vec<u64>, Vec<u64>) {
    let mut config = TargetConfig {
        worker_threads: 1,
        event_seed: Some(42),
        ..TargetConfig::default()
    };
    for fault in faults {
        config = config.with_fault(fault.parse().unwrap());
    }
    let target = target::spawn(config).unwrap();
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let admin = Session::login(&target, ACME_ADMIN).await;
    let mut sse = Sse::open(&dispatcher, "/events").await;
    let mut ws = Ws::open(&dispatcher, "/ws").await;
    for i in 0..count {
        admin.create_order(&format!("S-{i}")).await;
    }
    // Every event was published before its order's answer; a second of
    // silence after the last answer means the rest were dropped.
    let quiet = Duration::from_secs(1);
    let mut from_sse = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout(quiet, sse.next()).await {
        from_sse.push(frame.json()["seq"].as_u64().unwrap());
    }
    let mut from_ws = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(quiet, ws.next()).await {
        from_ws.push(event["seq"].as_u64().unwrap());
    }
    (from_sse, from_ws)
}

#[tokio::test]
async fn event_drop_loses_a_seeded_share_per_subscriber() {
    let all: Vec<u64> = (1..=60).collect();
    assert_eq!(received_seqs(&[], 60).await, (all.clone(), all.clone()));

    let (sse, ws) = received_seqs(&["event-drop=0.5"], 60).await;
    for got in [&sse, &ws] {
        // 60 draws at one half, seeded: far from none and from all.
        assert!((10..=50).contains(&got.len()), "{got:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        assert!(got.iter().all(|seq| all.contains(seq)));
    }
    assert_ne!(sse, ws, "each subscriber draws its own drops");
    // The same seed, the same subscribers in the same order: the same drops.
    assert_eq!(received_seqs(&["event-drop=0.5"], 60).await, (sse, ws));
}

#[tokio::test]
async fn event_leak_sends_another_tenants_events_to_a_subscriber() {
    let target = start(&["event-leak=1"]);
    let globex = Session::login(&target, GLOBEX_DISPATCHER).await;
    let mut sse = Sse::open(&globex, "/events").await;
    let mut ws = Ws::open(&globex, "/ws").await;
    let id = Session::login(&target, ACME_ADMIN)
        .await
        .create_order("LEAK-1")
        .await;
    for leaked in [sse.next().await.unwrap().json(), ws.next().await.unwrap()] {
        assert_eq!(leaked["tenant"], "acme", "{leaked}");
        assert_eq!(leaked["order_id"], id.as_str(), "{leaked}");
    }
}

#[tokio::test]
async fn event_leak_at_a_rate_leaks_a_seeded_share() {
    let mut config = TargetConfig {
        worker_threads: 1,
        event_seed: Some(7),
        ..TargetConfig::default()
    }
    .with_fault("event-leak=0.3".parse().unwrap());
    config.event_buffer = 256;
    let target = target::spawn(config).unwrap();
    let globex = Session::login(&target, GLOBEX_DISPATCHER).await;
    let mut sse = Sse::open(&globex, "/events").await;
    let admin = Session::login(&target, ACME_ADMIN).await;
    for i in 0..50 {
        admin.create_order(&format!("L-{i}")).await;
    }
    let marker = Session::login(&target, GLOBEX_ADMIN)
        .await
        .create_order("GX")
        .await;
    let mut leaked = 0;
    loop {
        let event = sse.next().await.unwrap().json();
        if event["order_id"] == marker.as_str() {
            break;
        }
        assert_eq!(event["tenant"], "acme", "{event}");
        leaked += 1;
    }
    // 50 draws at 0.3, seeded: some leaked, not all.
    assert!((3..=30).contains(&leaked), "{leaked}");
}

#[tokio::test]
async fn stream_close_ends_each_stream_after_its_time() {
    let target = start(&["stream-close=700ms"]);
    let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
    let opened = Instant::now();
    let mut sse = Sse::open(&dispatcher, "/events").await;
    let mut ws = Ws::open(&dispatcher, "/ws").await;
    // Events flow until then.
    let id = Session::login(&target, ACME_ADMIN)
        .await
        .create_order("C-1")
        .await;
    assert_eq!(sse.next().await.unwrap().json()["order_id"], id.as_str());
    assert_eq!(ws.next().await.unwrap()["order_id"], id.as_str());
    assert!(sse.next().await.is_none(), "the SSE body ends");
    assert!(opened.elapsed() >= Duration::from_millis(700));
    let close = ws.close_frame().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "stream-close fault");
}

#[test]
fn postgres_storage_publishes_the_same_events() {
    let Some(server) = postgres_support::server_url() else {
        return;
    };
    let url = postgres_support::empty_database(&server, "streams");
    let target = target::spawn(
        TargetConfig {
            worker_threads: 2,
            ..TargetConfig::default()
        }
        .with_database(url),
    )
    .expect("the target starts on PostgreSQL");
    postgres_support::block_on(async move {
        let dispatcher = Session::login(&target, ACME_DISPATCHER).await;
        let mut sse = Sse::open(&dispatcher, "/events").await;
        let mut ws = Ws::open(&dispatcher, "/ws").await;
        let order = run_lifecycle(&target).await;
        let mut from_sse = Vec::new();
        let mut from_ws = Vec::new();
        for _ in 0..5 {
            from_sse.push(sse.next().await.unwrap().json());
            from_ws.push(ws.next().await.unwrap());
        }
        expect_lifecycle(&from_sse, "acme", &order);
        assert_eq!(from_sse, from_ws);
        // The order the events name is the one the API returns.
        let reply = dispatcher.get(&format!("/api/orders/{order}")).await;
        assert_eq!(reply.json["id"], order.as_str());
    });
}
