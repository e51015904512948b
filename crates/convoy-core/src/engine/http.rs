//! The HTTP client of the engine, on hyper directly.
//!
//! Each virtual user owns a [`Connection`]: one keep-alive connection per
//! endpoint, opened on first use and reopened after the server closes it or
//! a request fails. Each worker thread owns an [`HttpClient`] holding the
//! settings and the TLS configuration. Nothing is shared between users, so
//! sending a request takes no lock and no pool lookup: the reason this is
//! hyper and not reqwest, whose pooled client spent twice the CPU per response
//! (convoy/reqwest 0.52: `ci/bench/README.md#hyper-not-reqwest-reqwestsh`).
//!
//! Failures are classified into [`ErrorCause`]s here, once, so every
//! workload counts them the same way.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::EngineError;
use crate::metrics::{ErrorCause, Outcome};
use crate::plan::{HttpOptions, HttpVersion, format_duration};

/// Read buffer per connection with [`HttpOptions::small_buffers`].
const SMALL_READ_BUFFER: usize = 4096;

/// The body type of outgoing requests.
pub type RequestBody = Full<Bytes>;

/// A response whose body was read (up to the configured limit).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// A request that got no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFailure {
    /// Why, in a word.
    pub cause: ErrorCause,
    /// What went wrong, for people (never contains the URL's secrets).
    pub message: String,
}

impl HttpFailure {
    fn new(cause: ErrorCause, message: impl Into<String>) -> Self {
        HttpFailure {
            cause,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.cause, self.message)
    }
}

/// Where requests go: scheme, host and port, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
    scheme: Scheme,
    authority: Authority,
    host_header: HeaderValue,
}

impl Endpoint {
    /// The endpoint of an absolute `http` or `https` URL.
    pub fn from_url(url: &url::Url) -> Result<Self, String> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("unsupported scheme {other:?}: use http or https")),
        };
        let host = url.host_str().ok_or("the URL has no host")?.to_string();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let default_port = if tls { 443 } else { 80 };
        let authority_text = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let authority: Authority = authority_text
            .parse()
            .map_err(|e| format!("invalid host {host:?}: {e}"))?;
        let host_header = HeaderValue::from_str(&authority_text)
            .map_err(|e| format!("invalid host {host:?}: {e}"))?;
        Ok(Endpoint {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            scheme: if tls { Scheme::HTTPS } else { Scheme::HTTP },
            authority,
            host_header,
        })
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The origin-form URI (`/path?query`) of a URL, for building requests.
pub fn origin_form(url: &url::Url) -> Uri {
    let mut pq = url.path().to_string();
    if let Some(q) = url.query() {
        pq.push('?');
        pq.push_str(q);
    }
    let pq: PathAndQuery = pq
        .parse()
        .unwrap_or_else(|_| PathAndQuery::from_static("/"));
    Uri::from(pq)
}

enum Sender {
    H1(http1::SendRequest<RequestBody>),
    H2(http2::SendRequest<RequestBody>),
}

impl Sender {
    /// Waits until the connection can take a request; false if it closed.
    async fn ready(&mut self) -> bool {
        match self {
            Sender::H1(s) => s.ready().await.is_ok(),
            Sender::H2(s) => s.ready().await.is_ok(),
        }
    }

    /// Sends a request; on failure the request comes back if it was never
    /// written, so it can be retried on a fresh connection.
    async fn try_send(
        &mut self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>> {
        match self {
            Sender::H1(s) => s.try_send_request(req).await,
            Sender::H2(s) => s.try_send_request(req).await,
        }
    }
}

/// One virtual user's keep-alive connections, one per endpoint it talks to.
#[derive(Default)]
pub struct Connection {
    slots: Vec<(Authority, bool, Sender)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("open", &self.slots.len())
            .finish()
    }
}

impl Connection {
    /// A user with no connection yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn take(&mut self, ep: &Endpoint) -> Option<Sender> {
        let i = self
            .slots
            .iter()
            .position(|(a, tls, _)| *tls == ep.tls && *a == ep.authority)?;
        Some(self.slots.swap_remove(i).2)
    }

    fn put(&mut self, ep: &Endpoint, s: Sender) {
        self.slots.push((ep.authority.clone(), ep.tls, s));
    }

    /// Closes every connection.
    pub fn close(&mut self) {
        self.slots.clear();
    }
}

/// The client of one worker thread: settings and TLS configuration.
#[derive(Clone)]
pub struct HttpClient {
    opts: HttpOptions,
    /// The target watch of the run whose worker built this client, if that
    /// run is watched ([`super::watch`]): every answer and every refused
    /// connect is fed to it here, whichever workload sends.
    watch: Option<super::watch::Feed>,
    /// Built on the first https connection: plain-http runs never load a
    /// trust store.
    tls: Arc<std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>>>,
    /// The same for stream connections (HTTP/1.1 in ALPN).
    tls_stream: Arc<std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("opts", &self.opts)
            .finish()
    }
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Someone else may have installed one already; either way a
        // provider is in place afterwards.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpClient {
    /// Builds a client from the run's HTTP options. Built on a worker
    /// thread of a run with a target watch ([`Workload::worker`], or
    /// anything else that runs there), it feeds that watch.
    ///
    /// [`Workload::worker`]: super::Workload::worker
    pub fn new(opts: &HttpOptions) -> Result<Self, EngineError> {
        Ok(HttpClient {
            opts: opts.clone(),
            watch: super::watch::current(),
            tls: Arc::default(),
            tls_stream: Arc::default(),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Sends `req` (whose URI is in origin form, `/path?query`) to `ep` and
    /// reads the whole body, up to the limit.
    pub async fn send(
        &self,
        conn: &mut Connection,
        ep: &Endpoint,
        req: Request<RequestBody>,
    ) -> Result<HttpResponse, HttpFailure> {
        let fut = async {
            let resp = self.exchange(conn, ep, req).await?;
            let (parts, mut body) = resp.into_parts();
            // A body that comes in one frame (most of them) is kept as it
            // is, without a copy; more frames are gathered.
            let mut first = Bytes::new();
            let mut more = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| body_failure(&e))?;
                if let Ok(data) = frame.into_data() {
                    if first.len() + more.len() + data.len() > self.opts.max_body_bytes {
                        return Err(too_large(self.opts.max_body_bytes));
                    }
                    if first.is_empty() && more.is_empty() {
                        first = data;
                    } else {
                        if more.is_empty() {
                            more.extend_from_slice(&first);
                        }
                        more.extend_from_slice(&data);
                    }
                }
            }
            Ok(HttpResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: if more.is_empty() {
                    first
                } else {
                    more.freeze()
                },
            })
        };
        match tokio::time::timeout(self.opts.timeout, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                conn.close();
                Err(e)
            }
            Err(_) => {
                conn.close();
                Err(self.timed_out())
            }
        }
    }

    /// Like [`HttpClient::send`] but discards the body: the fast path of
    /// `convoy bench`.
    pub async fn send_discard(
        &self,
        conn: &mut Connection,
        ep: &Endpoint,
        req: Request<RequestBody>,
    ) -> Outcome {
        let fut = async {
            let resp = self.exchange(conn, ep, req).await?;
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            let mut read = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| body_failure(&e))?;
                if let Some(data) = frame.data_ref() {
                    read += data.len();
                    if read > self.opts.max_body_bytes {
                        return Err(too_large(self.opts.max_body_bytes));
                    }
                }
            }
            Ok(status)
        };
        match tokio::time::timeout(self.opts.timeout, fut).await {
            Ok(Ok(status)) => Outcome::Status(status),
            Ok(Err(e)) => {
                conn.close();
                Outcome::Failed(e.cause)
            }
            Err(_) => {
                conn.close();
                Outcome::Failed(ErrorCause::Timeout)
            }
        }
    }

    fn timed_out(&self) -> HttpFailure {
        HttpFailure::new(
            ErrorCause::Timeout,
            format!(
                "no complete response within {}",
                format_duration(self.opts.timeout)
            ),
        )
    }

    /// Sends the request head and body; returns once the response head
    /// arrived. Reuses the user's connection, reconnecting once if the
    /// server had closed it before the request went out.
    async fn exchange(
        &self,
        conn: &mut Connection,
        ep: &Endpoint,
        mut req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, HttpFailure> {
        let mut fresh = false;
        let mut sender = match conn.take(ep) {
            Some(s) => s,
            None => {
                fresh = true;
                Box::pin(self.connect(ep)).await?
            }
        };
        // The request's form depends on the protocol: HTTP/1 wants a Host
        // header, HTTP/2 an absolute URI.
        match self.opts.version {
            HttpVersion::Http1 => {
                if !req.headers().contains_key(HOST) {
                    req.headers_mut().insert(HOST, ep.host_header.clone());
                }
            }
            HttpVersion::Http2 => {
                if req.uri().scheme().is_none() {
                    let mut parts = req.uri().clone().into_parts();
                    parts.scheme = Some(ep.scheme.clone());
                    parts.authority = Some(ep.authority.clone());
                    if parts.path_and_query.is_none() {
                        parts.path_and_query = Some(PathAndQuery::from_static("/"));
                    }
                    *req.uri_mut() = Uri::from_parts(parts)
                        .map_err(|e| HttpFailure::new(ErrorCause::Other, e.to_string()))?;
                }
            }
        }
        loop {
            if !sender.ready().await {
                if fresh {
                    return Err(HttpFailure::new(
                        ErrorCause::Reset,
                        "connection closed before the request was sent",
                    ));
                }
                fresh = true;
                sender = Box::pin(self.connect(ep)).await?;
                continue;
            }
            match sender.try_send(req).await {
                Ok(resp) => {
                    if let Some(w) = &self.watch {
                        w.answered();
                    }
                    conn.put(ep, sender);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if !fresh => {
                        req = back;
                        fresh = true;
                        sender = Box::pin(self.connect(ep)).await?;
                    }
                    _ => return Err(hyper_failure(e.error())),
                },
            }
        }
    }

    /// Opens a connection to `ep`: TCP, then TLS for https, then the HTTP
    /// handshake; the connection's driver runs as a task of this worker.
    async fn connect(&self, ep: &Endpoint) -> Result<Sender, HttpFailure> {
        let stream = self.dial(ep).await?;
        if ep.tls {
            let tls = self.secure(ep, stream, &self.tls).await?;
            self.handshake(tls).await
        } else {
            self.handshake(stream).await
        }
    }

    /// Opens a stream (server-sent events, or a WebSocket upgrade) to
    /// `ep`: a connection of its own, HTTP/1.1 whatever the run's version
    /// (an upgrade needs it), not pooled, with upgrades allowed. Returns
    /// the response head once it arrived (within the request timeout); its
    /// body is the stream, or `hyper::upgrade::on` takes the connection
    /// over after a 101.
    pub async fn open_stream(
        &self,
        ep: &Endpoint,
        mut req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, HttpFailure> {
        if !req.headers().contains_key(HOST) {
            req.headers_mut().insert(HOST, ep.host_header.clone());
        }
        let fut = async {
            let stream = self.dial(ep).await?;
            if ep.tls {
                let tls = self.secure(ep, stream, &self.tls_stream).await?;
                stream_request(tls, req).await
            } else {
                stream_request(stream, req).await
            }
        };
        let res = tokio::time::timeout(self.opts.timeout, fut)
            .await
            .unwrap_or_else(|_| Err(self.timed_out()));
        if let (Ok(_), Some(w)) = (&res, &self.watch) {
            w.answered();
        }
        res
    }

    /// The TCP connection to `ep`, within the connect timeout.
    async fn dial(&self, ep: &Endpoint) -> Result<TcpStream, HttpFailure> {
        let limit = self.opts.connect_timeout;
        let fut = async {
            let addrs = tokio::net::lookup_host((ep.host.as_str(), ep.port))
                .await
                .map_err(|e| {
                    let f = HttpFailure::new(
                        ErrorCause::Dns,
                        format!("cannot resolve {}: {e}", ep.host),
                    );
                    (f, None)
                })?;
            let mut last = HttpFailure::new(ErrorCause::Dns, format!("{} has no address", ep.host));
            // The last address tried, while every one refused.
            let mut refused = None;
            let mut tried = 0;
            for addr in addrs {
                tried += 1;
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(stream);
                    }
                    Err(e) => {
                        last = HttpFailure::new(
                            classify_io(&e).unwrap_or(ErrorCause::Connect),
                            format!("cannot connect to {addr}: {e}"),
                        );
                        if last.cause == ErrorCause::Refused && (tried == 1 || refused.is_some()) {
                            refused = Some(addr);
                        } else {
                            refused = None;
                        }
                    }
                }
            }
            Err((last, refused))
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err((failure, refused))) => {
                // Refused on every address: the one proof of death the
                // target watch takes.
                if let (Some(w), Some(addr)) = (&self.watch, refused) {
                    w.refused(addr);
                }
                Err(failure)
            }
            Err(_) => Err(HttpFailure::new(
                ErrorCause::Timeout,
                format!(
                    "cannot connect to {}: no answer within {}",
                    ep.address(),
                    format_duration(limit)
                ),
            )),
        }
    }

    /// TLS over `stream` to `ep` with the connector kept in `slot` (built
    /// on first use), within the connect timeout.
    async fn secure(
        &self,
        ep: &Endpoint,
        stream: TcpStream,
        slot: &std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>>,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpFailure> {
        let limit = self.opts.connect_timeout;
        let streams = std::ptr::eq(slot, &*self.tls_stream);
        let connector = slot
            .get_or_init(|| tls_connector(&self.opts, streams))
            .as_ref()
            .map_err(|e| HttpFailure::new(ErrorCause::Tls, e.clone()))?;
        let name = rustls::pki_types::ServerName::try_from(ep.host.clone()).map_err(|e| {
            HttpFailure::new(
                ErrorCause::Tls,
                format!("invalid TLS server name {:?}: {e}", ep.host),
            )
        })?;
        match tokio::time::timeout(limit, connector.connect(name, stream)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => {
                let cause = classify_io(&e)
                    .filter(|c| *c != ErrorCause::Other)
                    .unwrap_or(ErrorCause::Tls);
                Err(HttpFailure::new(
                    cause,
                    format!("TLS handshake with {} failed: {e}", ep.address()),
                ))
            }
            Err(_) => Err(HttpFailure::new(
                ErrorCause::Timeout,
                format!(
                    "TLS handshake with {} took longer than {}",
                    ep.address(),
                    format_duration(limit)
                ),
            )),
        }
    }

    async fn handshake<S>(&self, io: S) -> Result<Sender, HttpFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        match self.opts.version {
            HttpVersion::Http1 => {
                let mut builder = http1::Builder::new();
                if self.opts.small_buffers {
                    builder.read_buf_exact_size(Some(SMALL_READ_BUFFER));
                }
                let (sender, driver) =
                    builder.handshake(io).await.map_err(|e| hyper_failure(&e))?;
                tokio::spawn(async move {
                    let _ = driver.await;
                });
                Ok(Sender::H1(sender))
            }
            HttpVersion::Http2 => {
                let (sender, driver) = http2::Builder::new(TokioExecutor::new())
                    .handshake(io)
                    .await
                    .map_err(|e| hyper_failure(&e))?;
                tokio::spawn(async move {
                    let _ = driver.await;
                });
                Ok(Sender::H2(sender))
            }
        }
    }
}

/// Sends `req` on a fresh HTTP/1.1 connection over `io` whose driver
/// allows upgrades; the connection lives as long as the response's body
/// (or the upgraded connection).
async fn stream_request<S>(
    io: S,
    req: Request<RequestBody>,
) -> Result<Response<Incoming>, HttpFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, driver) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| hyper_failure(&e))?;
    tokio::spawn(async move {
        let _ = driver.with_upgrades().await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| hyper_failure(&e))
}

/// The TLS configuration of the run's options; `streams`: for stream
/// connections, which speak HTTP/1.1 whatever the run's version.
fn tls_connector(opts: &HttpOptions, streams: bool) -> Result<tokio_rustls::TlsConnector, String> {
    install_crypto_provider();
    let builder = rustls::ClientConfig::builder();
    let mut config = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnyCert::new()))
            .with_no_client_auth()
    } else {
        use rustls_platform_verifier::BuilderVerifierExt;
        builder
            .with_platform_verifier()
            .map_err(|e| format!("cannot load the TLS trust store: {e}"))?
            .with_no_client_auth()
    };
    config.alpn_protocols = match opts.version {
        _ if streams => vec![b"http/1.1".to_vec()],
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

mod insecure {
    //! `--insecure`: accept any server certificate (staging targets with
    //! self-signed certificates). Signatures are still checked.

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub struct AcceptAnyCert(CryptoProvider);

    impl AcceptAnyCert {
        pub fn new() -> Self {
            AcceptAnyCert(rustls::crypto::ring::default_provider())
        }
    }

    impl ServerCertVerifier for AcceptAnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

fn too_large(limit: usize) -> HttpFailure {
    HttpFailure::new(
        ErrorCause::Body,
        format!("response body larger than the {limit} byte limit"),
    )
}

fn body_failure(e: &hyper::Error) -> HttpFailure {
    let mut f = hyper_failure(e);
    if matches!(f.cause, ErrorCause::Reset | ErrorCause::Other) {
        f.cause = ErrorCause::Body;
    }
    f.message = format!("reading the body failed: {}", f.message);
    f
}

fn hyper_failure(e: &hyper::Error) -> HttpFailure {
    HttpFailure::new(classify_hyper(e), error_chain(e))
}

/// Sorts an I/O error into a cause, if its kind says one.
pub fn classify_io(e: &io::Error) -> Option<ErrorCause> {
    use io::ErrorKind::*;
    if e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        return Some(ErrorCause::Tls);
    }
    if is_local_exhaustion(e) {
        return Some(ErrorCause::Local);
    }
    Some(match e.kind() {
        ConnectionRefused => ErrorCause::Refused,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => ErrorCause::Reset,
        TimedOut => ErrorCause::Timeout,
        HostUnreachable | NetworkUnreachable | AddrNotAvailable => ErrorCause::Connect,
        InvalidData => ErrorCause::Tls,
        _ => return None,
    })
}

/// Whether `e` says convoy's own process or machine ran out of what a
/// connection needs: file descriptors (`EMFILE` 24, `ENFILE` 23, the same
/// numbers on Linux, macOS and the BSDs) or socket buffers (`ENOBUFS`:
/// 105 on Linux). Such a failure is convoy's, not the target's.
pub fn is_local_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        #[cfg(target_os = "linux")]
        const ENOBUFS: i32 = 105;
        #[cfg(not(target_os = "linux"))]
        const ENOBUFS: i32 = 55;
        matches!(e.raw_os_error(), Some(ENFILE | EMFILE | ENOBUFS))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Sorts a hyper error into a cause.
pub fn classify_hyper(e: &hyper::Error) -> ErrorCause {
    if e.is_timeout() {
        return ErrorCause::Timeout;
    }
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return ErrorCause::Protocol;
    }
    let mut cur: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && let Some(c) = classify_io(io)
        {
            return c;
        }
        cur = err.source();
    }
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        return ErrorCause::Reset;
    }
    if e.is_body_write_aborted() || e.is_user() {
        return ErrorCause::Other;
    }
    ErrorCause::Other
}

/// The error and its sources, joined with `: `.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Why a preflight failed: the target did not accept a connection, or
/// convoy's own machine could not open one (out of file descriptors or
/// socket buffers), which is never the target's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightError {
    /// The target cannot be resolved or did not accept a connection.
    Unreachable(String),
    /// convoy could not open a socket at all.
    Local(String),
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreflightError::Unreachable(m) => write!(f, "target unreachable: {m}"),
            PreflightError::Local(m) => write!(
                f,
                "{m}: convoy ran out of file descriptors or socket buffers on this machine \
                 (a local error, not the target); raise the open-file limit with `ulimit -n`"
            ),
        }
    }
}

impl std::error::Error for PreflightError {}

/// Checks that the target of `url` accepts TCP connections within
/// `timeout`, so an unreachable target is reported before a run starts.
pub fn preflight(url: &url::Url, timeout: Duration) -> Result<(), PreflightError> {
    use std::net::{TcpStream, ToSocketAddrs};
    let ep = Endpoint::from_url(url).map_err(PreflightError::Unreachable)?;
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| PreflightError::Unreachable(format!("cannot resolve {}: {e}", ep.host)))?
        .collect();
    let mut last = format!("{} has no address", ep.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) if is_local_exhaustion(&e) => {
                return Err(PreflightError::Local(format!(
                    "cannot open a connection to {addr}: {e}"
                )));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                last = format!(
                    "cannot connect to {addr}: no answer within {}",
                    format_duration(timeout)
                );
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(PreflightError::Unreachable(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_once() {
        let ep = Endpoint::from_url(&"http://127.0.0.1:8080/x?y=1".parse().unwrap()).unwrap();
        assert_eq!(ep.address(), "127.0.0.1:8080");
        assert_eq!(ep.host_header, "127.0.0.1:8080");
        let ep = Endpoint::from_url(&"https://[::1]/".parse().unwrap()).unwrap();
        assert_eq!(ep.host, "::1");
        assert_eq!(ep.port, 443);
        assert_eq!(ep.host_header, "[::1]");
        assert!(Endpoint::from_url(&"ftp://127.0.0.1/".parse().unwrap()).is_err());
    }

    #[test]
    fn origin_form_keeps_path_and_query() {
        let u = origin_form(&"http://h/a/b?c=d&e".parse().unwrap());
        assert_eq!(u.to_string(), "/a/b?c=d&e");
        assert_eq!(origin_form(&"http://h".parse().unwrap()).to_string(), "/");
    }

    #[test]
    fn io_errors_map_to_causes() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_io(&e), Some(ErrorCause::Refused));
        let e = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify_io(&e), Some(ErrorCause::Reset));
        #[cfg(unix)]
        for errno in [23, 24] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(classify_io(&e), Some(ErrorCause::Local), "{e}");
        }
        assert_eq!(classify_io(&io::Error::other("x")), None);
    }
}
