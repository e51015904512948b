//! Plain clients for the reference target's event streams: an SSE reader
//! over reqwest and a WebSocket over tokio-tungstenite, plus the order
//! lifecycle whose events the stream tests expect.

#![allow(dead_code)] // Each test crate uses its own subset.

use std::time::Duration;

use convoy::target::RunningTarget;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::target_support::{ACME_ADMIN, ACME_DISPATCHER, ACME_DRIVER, Session, client};

/// Longest wait for one frame: only a guard against a hung stream.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// One server-sent event.
#[derive(Debug, Default)]
pub struct Frame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl Frame {
    /// The data, parsed.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// An open `GET /events`.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
    pub content_type: String,
}

impl Sse {
    /// Subscribes as `session` (bearer header) to `path`.
    pub async fn open(session: &Session, path: &str) -> Sse {
        Sse::from_request(session.request(reqwest::Method::GET, path)).await
    }

    /// Subscribes to `path` without a header (the token, if any, in the
    /// query).
    pub async fn open_unauthenticated(target: &RunningTarget, path: &str) -> Sse {
        Sse::from_request(client().get(format!("{}{path}", target.base_url()))).await
    }

    async fn from_request(request: reqwest::RequestBuilder) -> Sse {
        let response = request.send().await.expect("the stream answers");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Sse {
            response,
            buffer: String::new(),
            content_type,
        }
    }

    /// The next event with data (comments skipped); `None` when the body
    /// ends.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame::default();
                let mut has_data = false;
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => frame.event = Some(value.to_string()),
                        "id" => frame.id = Some(value.to_string()),
                        "data" => {
                            if has_data {
                                frame.data.push('\n');
                            }
                            frame.data.push_str(value);
                            has_data = true;
                        }
                        _ => {}
                    }
                }
                if has_data {
                    return Some(frame);
                }
            }
            let chunk = tokio::time::timeout(HANG_GUARD, self.response.chunk())
                .await
                .expect("the stream stays alive")
                .ok()??;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// An open `GET /ws`.
pub struct Ws {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects as `session` (bearer header) to `path`.
    pub async fn open(session: &Session, path: &str) -> Ws {
        let url = format!("{}{path}", session.base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", session.token).parse().unwrap(),
        );
        Ws::connect(request).await
    }

    /// Connects to `path` without a header.
    pub async fn open_unauthenticated(target: &RunningTarget, path: &str) -> Ws {
        let url = format!("ws://{}{path}", target.addr());
        Ws::connect(url.into_client_request().unwrap()).await
    }

    async fn connect(request: tungstenite::handshake::client::Request) -> Ws {
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        assert_eq!(response.status().as_u16(), 101);
        Ws { socket }
    }

    async fn message(&mut self) -> Option<Message> {
        tokio::time::timeout(HANG_GUARD, self.socket.next())
            .await
            .expect("the stream stays alive")?
            .ok()
    }

    /// The next text frame, parsed; `None` once the socket closes.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match self.message().await? {
                Message::Text(text) => {
                    return Some(serde_json::from_str(text.as_str()).expect("frames are JSON"));
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The close frame the server sends, skipping any events before it.
    pub async fn close_frame(&mut self) -> Option<CloseFrame> {
        loop {
            if let Message::Close(frame) = self.message().await? {
                return frame;
            }
        }
    }
}

/// Either stream, read as JSON.
pub enum Reader {
    Sse(Sse),
    Ws(Ws),
}

impl Reader {
    /// The next event's JSON.
    pub async fn next(&mut self) -> Option<Value> {
        match self {
            Reader::Sse(sse) => sse.next().await.map(|f| f.json()),
            Reader::Ws(ws) => ws.next().await,
        }
    }
}

/// An acme order through its whole life, with a dispatch recommendation
/// after creation: five events. Returns its id.
pub async fn run_lifecycle(target: &RunningTarget) -> String {
    let admin = Session::login(target, ACME_ADMIN).await;
    let dispatcher = Session::login(target, ACME_DISPATCHER).await;
    let driver = Session::login(target, ACME_DRIVER).await;
    let id = admin.create_order("EV-1").await;
    let assign = dispatcher
        .post("/api/dispatch/assign", &json!({ "loadId": id }))
        .await;
    assert_eq!(assign.status, StatusCode::OK, "{}", assign.text);
    for step in ["accept", "route", "deliver"] {
        let reply = driver.post_empty(&format!("/api/orders/{id}/{step}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{step}: {}", reply.text);
    }
    id
}

/// Checks the five events of [`run_lifecycle`], in order, with every
/// documented field.
pub fn expect_lifecycle(events: &[Value], tenant: &str, order: &str) {
    let expected = [
        ("order.created", "created"),
        ("dispatch.assigned", "created"),
        ("order.status", "accepted"),
        ("order.status", "routed"),
        ("order.status", "delivered"),
    ];
    assert_eq!(events.len(), expected.len(), "{events:?}");
    let first_seq = events[0]["seq"].as_u64().expect("seq is a number");
    for (i, (event, (kind, status))) in events.iter().zip(expected).enumerate() {
        assert_eq!(event["type"], kind, "{event}");
        assert_eq!(event["tenant"], tenant, "{event}");
        assert_eq!(event["order_id"], order, "{event}");
        assert_eq!(event["status"], status, "{event}");
        assert_eq!(event["seq"].as_u64(), Some(first_seq + i as u64), "{event}");
        let at = event["at"].as_str().expect("at is text");
        assert!(humantime::parse_rfc3339(at).is_ok(), "{at}");
        // RFC 3339 in UTC with microseconds: 2026-12-07T15:03:54.123456Z.
        assert_eq!(at.len(), 27, "{at}");
        match (kind, status) {
            ("order.created", _) => assert!(event.get("driver_id").is_none(), "{event}"),
            ("dispatch.assigned", _) => assert!(
                event["driver_id"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("drv-acme-")),
                "{event}"
            ),
            _ => assert_eq!(event["driver_id"], "drv-acme-1", "{event}"),
        }
    }
}
