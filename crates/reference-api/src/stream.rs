//! The event streams: `GET /events` (server-sent events) and `GET /ws`
//! (WebSocket), each a subscription to the caller's tenant on the event bus
//! (`events.rs`).
//!
//! Both authenticate like every other route (`Authorization: Bearer`), and
//! also take the token as `?access_token=`, because a browser's
//! `EventSource` cannot set headers; the header wins when both are given.
//! The query's token is a secret: it is never echoed, and [`StreamQuery`]'s
//! `Debug` hides it. `?types=order.status,dispatch.assigned` keeps only
//! those kinds.
//!
//! The subscription is made before the answer's head goes out (the SSE
//! `200` or the WebSocket `101`), so a client that has seen it cannot miss
//! an event of a write it starts afterwards.
//!
//! SSE: each event is `event: KIND`, `id: SEQ`, `data: JSON`; a lagging
//! subscriber gets `event: lagged` with `{"type":"lagged","skipped":N}`;
//! a `: keepalive` comment follows 15 s of silence; the body starts with a
//! `: subscribed` comment. WebSocket: each event is one text frame of the
//! same JSON; the lag notice too; a ping frame after 15 s of silence. Client
//! text frames: `{"type":"ping"}` is answered `{"type":"pong"}`, anything
//! else (binary frames too) with `{"type":"error","code":"unknown_message",
//! "error":...}`; the stream goes on either way.
//!
//! The `stream-close` fault ends each stream that long after it opened: the
//! SSE body ends, the WebSocket gets a close frame (1001, going away).

use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::time::Instant;

use super::auth::Caller;
use super::error::ApiError;
use super::events::{Delivery, KindSet, Subscription, lagged_json};
use super::server::AppState;

/// Silence after which a keep-alive goes out.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// WebSocket close code of the `stream-close` fault: the server is going
/// away from this stream.
const GOING_AWAY: u16 = 1001;

/// The query of a stream route.
#[derive(Default, Deserialize)]
pub(crate) struct StreamQuery {
    /// The bearer token, for clients that cannot set headers.
    access_token: Option<String>,
    /// A comma-separated list of event kinds.
    types: Option<String>,
}

impl fmt::Debug for StreamQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamQuery")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("types", &self.types)
            .finish()
    }
}

/// Authenticates a stream request and opens its subscription.
fn subscribe(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(Subscription, Option<Instant>), ApiError> {
    // The rejection's text could quote the query, token and all: not echoed.
    let Query(query) = query.map_err(|_| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "malformed_query",
        message: "the query string is not valid form encoding".into(),
        field: None,
    })?;
    let caller = match (headers.get(AUTHORIZATION), &query.access_token) {
        (Some(header), _) => Caller::from_header(state, header)?,
        (None, Some(token)) => Caller::from_token(state, token)?,
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing Authorization: Bearer token (or ?access_token= where headers cannot be set)",
            ));
        }
    };
    let kinds = match &query.types {
        None => KindSet::ALL,
        Some(list) => KindSet::parse(list).map_err(|e| ApiError::invalid("types", e))?,
    };
    let close_at = state
        .faults
        .stream_close
        .map(|after| Instant::now() + after);
    Ok((state.events.subscribe(caller.tenant, kinds), close_at))
}

/// Waits until `close_at`, or forever.
async fn closing(close_at: Option<Instant>) {
    match close_at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `GET /events`: the caller's tenant's events as server-sent events.
pub(crate) async fn sse(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (subscription, close_at) = subscribe(&state, &headers, query)?;
    let opening = SseEvent::default().comment("subscribed");
    let events = futures_util::stream::unfold(
        (Some(opening), subscription),
        move |(opening, mut subscription)| async move {
            if let Some(opening) = opening {
                return Some((Ok::<_, Infallible>(opening), (None, subscription)));
            }
            let delivery = tokio::select! {
                delivery = subscription.next() => delivery,
                () = closing(close_at) => return None,
            };
            let event = match delivery {
                Delivery::Event(event) => SseEvent::default()
                    .event(event.kind.name())
                    .id(event.seq.to_string())
                    .data(event.json.as_str()),
                Delivery::Lagged(skipped) => SseEvent::default()
                    .event("lagged")
                    .data(lagged_json(skipped)),
                Delivery::Closed => return None,
            };
            Some((Ok(event), (None, subscription)))
        },
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEPALIVE).text("keepalive"))
        .into_response())
}

/// `GET /ws`: the caller's tenant's events over a WebSocket.
pub(crate) async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Credentials first: a request without them is a 401 whatever else it is.
    let (subscription, close_at) = subscribe(&state, &headers, query)?;
    let upgrade = upgrade.map_err(|rejection| ApiError {
        status: rejection.status(),
        code: "websocket_upgrade_required",
        message: format!("GET /ws is a WebSocket: {}", rejection.body_text()).into(),
        field: None,
    })?;
    Ok(upgrade.on_upgrade(move |socket| serve_socket(socket, subscription, close_at)))
}

/// Sends events on `socket` until either side closes it.
async fn serve_socket(
    mut socket: WebSocket,
    mut subscription: Subscription,
    close_at: Option<Instant>,
) {
    let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
    let closing = closing(close_at);
    tokio::pin!(closing);
    loop {
        let outgoing = tokio::select! {
            delivery = subscription.next() => match delivery {
                Delivery::Event(event) => Message::Text(event.json.clone()),
                Delivery::Lagged(skipped) => Message::Text(lagged_json(skipped).into()),
                Delivery::Closed => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => Message::Text(answer(text.as_str()).into()),
                Some(Ok(Message::Binary(_))) => Message::Text(answer("").into()),
                // Pings are answered by the socket itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            },
            _ = keepalive.tick() => Message::Ping(Default::default()),
            () = &mut closing => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: GOING_AWAY,
                        reason: Utf8Bytes::from_static("stream-close fault"),
                    })))
                    .await;
                return;
            }
        };
        if socket.send(outgoing).await.is_err() {
            return;
        }
        keepalive.reset();
    }
}

/// The answer to a client's text frame.
fn answer(text: &str) -> String {
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type")?.as_str().map(str::to_string));
    match kind.as_deref() {
        Some("ping") => r#"{"type":"pong"}"#.to_string(),
        _ => serde_json::json!({
            "type": "error",
            "code": "unknown_message",
            "error": "the only message this stream takes is {\"type\":\"ping\"}",
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ping_gets_a_pong() {
        assert_eq!(answer(r#"{"type":"ping"}"#), r#"{"type":"pong"}"#);
        for other in [r#"{"type":"subscribe"}"#, "ping", "", "[1]"] {
            let reply: serde_json::Value = serde_json::from_str(&answer(other)).unwrap();
            assert_eq!(reply["type"], "error", "{other}");
            assert_eq!(reply["code"], "unknown_message", "{other}");
        }
    }

    #[test]
    fn the_query_token_never_shows_in_debug() {
        let query = StreamQuery {
            access_token: Some("eyJhbGciOi.secret.sig".to_string()),
            types: Some("order.status".to_string()),
        };
        let shown = format!("{query:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("redacted") && shown.contains("order.status"));
    }
}
