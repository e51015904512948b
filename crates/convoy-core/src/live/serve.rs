//! The `/metrics` endpoint's HTTP server: hyper, one connection per task,
//! nothing a client does can keep convoy alive.
//!
//! A scrape is one small GET. A client that sends half a request head is cut
//! off after [`HEAD_TIMEOUT`]; a connection is closed after
//! [`CONNECTION_LIFETIME`] whatever it is doing (a scraper that pipelines
//! and never reads, say). Shutdown stops accepting and drops every
//! connection at once: the thread's runtime is dropped with its tasks, so it
//! never waits for a client.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::State;
use super::render;

/// How long a client may take to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one connection may stay open, however busy.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Accepts connections until `shutdown` fires, then returns at once.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: wait a little instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, Arc::clone(&state)));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = if req.uri().path() != "/metrics" {
        plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        )
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET /metrics\n");
        r.headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        let text = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            render::render(&s.info, s.figures.as_ref())
        };
        let mut r = Response::new(Full::new(Bytes::from(text)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static(render::CONTENT_TYPE),
        );
        r
    };
    Ok(response)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
