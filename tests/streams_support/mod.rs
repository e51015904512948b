//! "Relay", a small dispatch API that streams order events per tenant, for
//! `tests/streams.rs`: shaped unlike the reference target (the tenant in
//! the path, `/t/{tenant}/...`, which must be the caller's), with its own
//! server-sent events (`GET /t/{tenant}/events`, CRLF line endings, a
//! comment and `id:` between events, each event's JSON split over two
//! `data:` lines) and WebSocket (`GET /t/{tenant}/ws`, one text message
//! per event; a text message sent to it is answered
//! `{"type":"pong","echo":TEXT}`).
//!
//! Callers prove who they are with a token, as `Authorization: Bearer` or
//! `?access_token=`. `POST /t/{t}/orders` answers 201 `{"id"}` and emits
//! `order.status` `created`; `POST /t/{t}/orders/{id}/deliver` emits
//! `delivered`. Events read `{"type":"order.status","tenant","order_id",
//! "status","at","seq"}`.
//!
//! [`Knobs`] make it misbehave: delay events, drop them, leak them to every
//! tenant's subscribers, close each stream right after it opens, or refuse
//! streams with a status (whose body echoes the token given, so the tests
//! prove convoy keeps it out of every artifact).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::broadcast;

/// The tokens: (tenant, token). Secrets: no artifact may show them.
pub const TOKENS: &[(&str, &str)] = &[
    ("acme", "relay-acme-7f3c9e1d2b"),
    ("globex", "relay-globex-4a8b6c0e5f"),
];

/// How the relay misbehaves; every knob off is healthy.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Events are sent this long after the request that causes them.
    pub delay: Duration,
    /// Events are never sent.
    pub drop: bool,
    /// Events go to every tenant's subscribers.
    pub leak: bool,
    /// Streams close right after they open.
    pub close: bool,
    /// Streams are answered with this status instead.
    pub refuse: Option<u16>,
    /// Every subscriber gets its own endless run of events at this pace
    /// (instead of the events orders cause), counted in `GET /stats`.
    pub flood: Option<Flood>,
}

/// The pace of a flood, per subscriber.
#[derive(Debug, Clone, Copy)]
pub enum Flood {
    /// This many events per second.
    Rate(u32),
    /// As fast as the subscriber reads them.
    Max,
}

impl std::str::FromStr for Flood {
    type Err = String;
    fn from_str(s: &str) -> Result<Flood, String> {
        match s {
            "max" => Ok(Flood::Max),
            _ => match s.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Flood::Rate(n)),
                _ => Err(format!("{s:?} is neither a positive rate nor \"max\"")),
            },
        }
    }
}

/// Flood subscribers and the events written to them, per kind.
#[derive(Default)]
struct Counts {
    subscribers: AtomicU64,
    events: AtomicU64,
}

struct Relay {
    knobs: Mutex<Knobs>,
    bus: broadcast::Sender<(String, String)>,
    seq: AtomicU64,
    orders: AtomicU64,
    sse_flood: Counts,
    ws_flood: Counts,
}

/// A running relay on a loopback port.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    relay: Arc<Relay>,
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Starts a relay with `knobs`.
    pub fn start(knobs: Knobs) -> Server {
        let (bus, _) = broadcast::channel(4096);
        let relay = Arc::new(Relay {
            knobs: Mutex::new(knobs),
            bus,
            seq: AtomicU64::new(0),
            orders: AtomicU64::new(0),
            sse_flood: Counts::default(),
            ws_flood: Counts::default(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/t/{tenant}/orders", post(create))
            .route("/t/{tenant}/orders/{id}/deliver", post(deliver))
            .route("/t/{tenant}/events", get(sse))
            .route("/t/{tenant}/ws", get(ws))
            .route("/stats", get(stats))
            .with_state(relay.clone());
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            addr,
            relay,
            _runtime: runtime,
        }
    }

    /// Its base URL, with a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// The token a request carries: its bearer header or `?access_token=`.
fn token(headers: &HeaderMap, query: &Option<String>) -> Option<String> {
    if let Some(h) = headers.get("authorization").and_then(|v| v.to_str().ok())
        && let Some(t) = h.strip_prefix("Bearer ")
    {
        return Some(t.to_string());
    }
    query
        .as_deref()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("access_token=").map(str::to_string))
}

/// The refusal of a caller that may not act for `tenant`, if it may not.
fn forbidden(tenant: &str, headers: &HeaderMap, query: &Option<String>) -> Option<Response> {
    let Some(t) = token(headers, query) else {
        return Some((StatusCode::UNAUTHORIZED, "no token").into_response());
    };
    match TOKENS.iter().find(|(_, tok)| *tok == t) {
        None => Some((StatusCode::UNAUTHORIZED, format!("token {t} refused")).into_response()),
        Some((own, _)) if *own != tenant => Some(
            (
                StatusCode::FORBIDDEN,
                format!("token {t} is not of {tenant}"),
            )
                .into_response(),
        ),
        Some(_) => None,
    }
}

fn emit(relay: &Arc<Relay>, tenant: &str, order: &str, status: &str) {
    let knobs = relay.knobs.lock().unwrap().clone();
    if knobs.drop {
        return;
    }
    let relay = relay.clone();
    let tenant = tenant.to_string();
    let order = order.to_string();
    let status = status.to_string();
    let send = move || {
        let seq = relay.seq.fetch_add(1, Ordering::Relaxed);
        let event = json!({
            "type": "order.status",
            "tenant": tenant,
            "order_id": order,
            "status": status,
            "at": "2026-12-07T15:00:00Z",
            "seq": seq,
        });
        let _ = relay.bus.send((tenant, event.to_string()));
    };
    if knobs.delay.is_zero() {
        send();
    } else {
        tokio::spawn(async move {
            tokio::time::sleep(knobs.delay).await;
            send();
        });
    }
}

async fn create(
    State(relay): State<Arc<Relay>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = forbidden(&tenant, &headers, &query) {
        return r;
    }
    let id = format!(
        "ord-{tenant}-{}",
        relay.orders.fetch_add(1, Ordering::Relaxed)
    );
    emit(&relay, &tenant, &id, "created");
    (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
}

async fn deliver(
    State(relay): State<Arc<Relay>>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = forbidden(&tenant, &headers, &query) {
        return r;
    }
    emit(&relay, &tenant, &id, "delivered");
    axum::Json(json!({ "id": id, "status": "delivered" })).into_response()
}

/// Refuses a stream when the relay is told to (echoing the token).
fn refusal(relay: &Relay, headers: &HeaderMap, query: &Option<String>) -> Option<Response> {
    let code = relay.knobs.lock().unwrap().refuse?;
    let given = token(headers, query).unwrap_or_default();
    Some(
        (
            StatusCode::from_u16(code).unwrap(),
            format!("stream refused for token {given}"),
        )
            .into_response(),
    )
}

/// `GET /stats`: the flood subscribers so far and the events written to
/// them, per kind (an SSE event counts when handed to the HTTP server, a
/// WebSocket one when its send completes; either may still sit in socket
/// buffers).
async fn stats(State(relay): State<Arc<Relay>>) -> Response {
    let c = |c: &Counts| {
        json!({
            "subscribers": c.subscribers.load(Ordering::Relaxed),
            "events": c.events.load(Ordering::Relaxed),
        })
    };
    axum::Json(json!({ "sse": c(&relay.sse_flood), "ws": c(&relay.ws_flood) })).into_response()
}

/// One subscriber's flood: `order.status` events of `tenant` at `pace`.
fn flood_events(
    tenant: String,
    pace: Flood,
) -> impl futures_util::Stream<Item = String> + Send + 'static {
    let start = tokio::time::Instant::now();
    futures_util::stream::unfold(0u64, move |sent| {
        let tenant = tenant.clone();
        async move {
            if let Flood::Rate(rate) = pace {
                // Paced from the start rather than per event, so a late
                // wake-up sends what is due at once and the rate holds.
                let due = start + Duration::from_secs_f64((sent + 1) as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
            }
            let event = json!({
                "type": "order.status",
                "tenant": tenant,
                "order_id": "ord-flood",
                "status": "in_transit",
                "at": "2026-12-07T15:00:00Z",
                "seq": sent,
            });
            Some((event.to_string(), sent + 1))
        }
    })
}

/// An event as the event stream writes it: a comment, an id, its JSON
/// over two `data:` lines, CRLF line endings.
fn sse_text(json: &str) -> String {
    let data = match json.split_once(',') {
        Some((a, b)) => format!("data: {a},\r\ndata: {b}\r\n"),
        None => format!("data: {json}\r\n"),
    };
    format!(": tick\r\nevent: order.status\r\nid: 1\r\n{data}\r\n")
}

async fn sse(
    State(relay): State<Arc<Relay>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = forbidden(&tenant, &headers, &query) {
        return r;
    }
    if let Some(r) = refusal(&relay, &headers, &query) {
        return r;
    }
    let (close, flood) = {
        let k = relay.knobs.lock().unwrap();
        (k.close, k.flood)
    };
    use futures_util::StreamExt;
    if let Some(pace) = flood {
        relay.sse_flood.subscribers.fetch_add(1, Ordering::Relaxed);
        let counted = relay.clone();
        let hello = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b": hello\r\n\r\n"))
        });
        let events = flood_events(tenant, pace).map(move |json| {
            counted.sse_flood.events.fetch_add(1, Ordering::Relaxed);
            Ok(bytes::Bytes::from(sse_text(&json)))
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(Body::from_stream(hello.chain(events)))
            .unwrap();
    }
    let rx = relay.bus.subscribe();
    let hello = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b": hello\r\n\r\n"))
    });
    let events = futures_util::stream::unfold(
        (rx, relay.clone(), tenant, close),
        |(mut rx, relay, tenant, close)| async move {
            if close {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok((t, json)) => {
                        if t == tenant || relay.knobs.lock().unwrap().leak {
                            let chunk = bytes::Bytes::from(sse_text(&json));
                            return Some((Ok(chunk), (rx, relay, tenant, close)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(hello.chain(events)))
        .unwrap()
}

async fn ws(
    State(relay): State<Arc<Relay>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(r) = forbidden(&tenant, &headers, &query) {
        return r;
    }
    if let Some(r) = refusal(&relay, &headers, &query) {
        return r;
    }
    let (close, flood) = {
        let k = relay.knobs.lock().unwrap();
        (k.close, k.flood)
    };
    if let Some(pace) = flood {
        return upgrade.on_upgrade(move |socket| ws_flood(relay, socket, tenant, pace));
    }
    // Subscribed before the upgrade is answered: an event caused right
    // after the client sees the 101 reaches it.
    let mut rx = relay.bus.subscribe();
    upgrade.on_upgrade(move |mut socket| async move {
        if close {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok((t, json)) => {
                        if (t == tenant || relay.knobs.lock().unwrap().leak)
                            && socket.send(Message::Text(json.into())).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let pong = json!({ "type": "pong", "echo": t.as_str() }).to_string();
                        if socket.send(Message::Text(pong.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => return,
                },
            }
        }
    })
}

/// A WebSocket flood: events at `pace` until the client goes away.
async fn ws_flood(
    relay: Arc<Relay>,
    mut socket: axum::extract::ws::WebSocket,
    tenant: String,
    pace: Flood,
) {
    use futures_util::StreamExt;
    relay.ws_flood.subscribers.fetch_add(1, Ordering::Relaxed);
    let mut events = std::pin::pin!(flood_events(tenant, pace));
    loop {
        tokio::select! {
            Some(json) = events.next() => {
                if socket.send(Message::Text(json.into())).await.is_err() {
                    return;
                }
                relay.ws_flood.events.fetch_add(1, Ordering::Relaxed);
            }
            msg = socket.recv() => match msg {
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
        }
    }
}
