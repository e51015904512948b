//! The WebSocket side of streams: the upgrade request's headers, taking
//! the connection over once hyper got its 101 (`hyper::upgrade`), framing
//! by `tokio-tungstenite` (built without its own handshake or TLS: the
//! engine's client did both), reading messages into a stream's channel and
//! sending text on it. Pings are answered by the framing layer as they are
//! read.

use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{Channel, Reader, first_event};

/// The read buffer of a held WebSocket, in bytes.
const WS_READ_BUFFER: usize = 4096;

/// The upgraded connection, framed.
type Socket = WebSocketStream<TokioIo<Upgraded>>;
/// A WebSocket's writing half.
pub(crate) type Sink = SplitSink<Socket, Message>;
/// A WebSocket's reading half.
pub(crate) type Read = SplitStream<Socket>;

/// Adds the headers of a WebSocket upgrade (RFC 6455 §4.1) to `h`.
pub(crate) fn request_headers(h: &mut http::HeaderMap) {
    use http::HeaderValue;
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        http::header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    let key: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    h.insert(
        http::header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key).expect("base64 is a valid header value"),
    );
}

/// Takes over the connection answered 101 by `resp`, framing messages of
/// at most `max` bytes.
pub(crate) async fn upgrade(
    resp: http::Response<Incoming>,
    max: usize,
) -> Result<(Sink, Read), String> {
    let upgrade_ok = resp
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade_ok {
        return Err("answered 101 without `Upgrade: websocket`".into());
    }
    let upgraded = hyper::upgrade::on(resp)
        .await
        .map_err(|e| format!("the WebSocket upgrade failed: {e}"))?;
    // Streams are held by the thousand and carry small events: a 4 KiB
    // read buffer (it is eagerly allocated; 128 KiB by default made a held
    // WebSocket cost 145 KiB, `ci/bench/streams.sh --kind ws`), and sends
    // written at once (a send step is one message).
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config)).await;
    Ok(socket.split())
}

/// Reads messages into `ch` until the socket ends; returns why it ended.
pub(crate) async fn read(ch: &Channel, mut read: Read, opened: Instant, r: &Reader) -> String {
    let mut pending = true;
    loop {
        let msg = match read.next().await {
            None => return "the WebSocket ended".into(),
            Some(Err(e)) => return format!("the WebSocket broke: {e}"),
            Some(Ok(m)) => m,
        };
        let at = Instant::now();
        let data = match msg {
            Message::Text(t) => Bytes::from(t),
            Message::Binary(b) => b,
            Message::Close(frame) => {
                return match frame {
                    Some(f) if f.reason.is_empty() => {
                        format!("the server closed the WebSocket (code {})", f.code)
                    }
                    Some(f) => format!(
                        "the server closed the WebSocket (code {}: {})",
                        f.code,
                        f.reason.as_str()
                    ),
                    None => "the server closed the WebSocket".into(),
                };
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        first_event(r, &mut pending, opened, at);
        ch.push(None, data, at);
    }
}

/// Sends `text` on the WebSocket of `ch`.
pub(crate) async fn send(ch: &Channel, text: String) -> Result<(), String> {
    let mut sink = ch.sink.lock().await;
    let Some(s) = sink.as_mut() else {
        return Err("the WebSocket is not connected".into());
    };
    s.send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("sending on the WebSocket failed: {e}"))
}
