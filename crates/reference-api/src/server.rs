//! Running the target: the router, [`serve`] on a caller's runtime, and
//! [`spawn`] on a thread and runtime of its own.
//!
//! The load engine is synchronous and runs runtimes of its own, so an
//! in-process target must not borrow anybody's runtime: [`spawn`] binds the
//! port first (so it returns only once connections are accepted), then runs a
//! dedicated runtime on a background thread until [`RunningTarget::shutdown`]
//! or drop.
//!
//! Dying (the `crash-after` fault) and shutting down share one kill switch.
//! Tripping it stops the accept loop (the listener is dropped, so later
//! connects are refused) and fails the I/O of every open connection, so
//! clients see their connections drop instead of an answer.
//!
//! A crash keeps the fault's promise that the first N requests are answered:
//! request N + 1 trips the switch only once every answer to the first N has
//! been written to its socket (or its connection is gone). Each connection
//! keeps an [`AnswerLedger`] of the answers it owes; a flush settles those
//! whose bodies hyper has finished, since hyper writes its buffer out before
//! it flushes the socket.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

use super::TargetConfig;
use super::auth;
use super::dispatch;
use super::error::no_route;
use super::events::EventBus;
use super::inject::{self, FaultPlan};
use super::lifecycle;
use super::orders;
use super::postgres::{PgStore, TargetError};
use super::storage::{OrderFilter, Storage};
use super::store::{Store, TenantId};
use super::stream;

/// The shared state of a running target.
#[derive(Debug)]
pub(crate) struct TargetState {
    pub jwt_secret: String,
    pub token_ttl: Duration,
    pub faults: FaultPlan,
    pub storage: Storage,
    /// Every tenant's order and dispatch events, for `/events` and `/ws`.
    pub events: EventBus,
    /// When the server started; stall windows count from here.
    pub started: Instant,
    /// Requests seen so far, `/health` included.
    pub requests: AtomicU64,
    /// Answers to the first `crash-after` requests known to be written (or
    /// lost with their connection); the crash waits for all of them.
    pub settled: Arc<AtomicU64>,
    pub kill: Arc<KillSwitch>,
}

/// What handlers get: the state behind an `Arc`.
pub(crate) type AppState = Arc<TargetState>;

impl TargetState {
    /// Checks the configuration and opens the storage (connecting to and
    /// migrating the database, if there is one).
    async fn start(config: &TargetConfig) -> Result<AppState, TargetError> {
        config.validate()?;
        let storage = match &config.database {
            None => Storage::Memory(Store::new(config.max_orders_per_tenant)),
            Some(url) => {
                let (store, _applied) = PgStore::start(url, config.database_connections).await?;
                Storage::Postgres(Box::new(store))
            }
        };
        let faults = FaultPlan::new(&config.faults);
        Ok(Arc::new(TargetState {
            jwt_secret: config.jwt_secret.clone(),
            token_ttl: config.token_ttl,
            events: EventBus::new(config.event_buffer, &faults, config.event_seed),
            faults,
            storage,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            settled: Arc::new(AtomicU64::new(0)),
            kill: Arc::new(KillSwitch::default()),
        }))
    }
}

/// Why the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillReason {
    /// The `crash-after` fault fired.
    Crash = 1,
    /// The owner asked.
    Shutdown = 2,
}

/// Trips once; everything waiting on it wakes.
#[derive(Debug, Default)]
pub(crate) struct KillSwitch {
    reason: AtomicU8,
    notify: Arc<Notify>,
}

impl KillSwitch {
    /// Trips the switch; the first reason wins.
    pub fn trigger(&self, reason: KillReason) {
        if self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_waiters();
        }
    }

    /// Why the switch tripped, if it has.
    pub fn reason(&self) -> Option<KillReason> {
        match self.reason.load(Ordering::Acquire) {
            1 => Some(KillReason::Crash),
            2 => Some(KillReason::Shutdown),
            _ => None,
        }
    }

    /// Waits until the switch trips.
    pub async fn wait(&self) -> KillReason {
        loop {
            // Registered before the check, so a trip in between still wakes us.
            let notified = self.notify.notified();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }
}

/// The largest request body a route reads (axum's default, set here so the
/// 413 answer can say it); a larger one is refused with 413.
pub(crate) const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Order routes, mounted under each of these prefixes.
pub(crate) const ORDER_PREFIXES: [&str; 3] = ["/api/orders", "/api/shipments", "/orders"];

async fn health() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// The whole API, faults included.
fn router(state: AppState) -> Router {
    let mut api = Router::new()
        .route("/api/auth/login", post(auth::login))
        .route("/api/dispatch/assign", post(dispatch::assign))
        .route("/api/drivers/{id}/coaching", get(dispatch::coaching));
    for prefix in ORDER_PREFIXES {
        api = api
            .route(prefix, post(orders::create).get(orders::list))
            .route(
                &format!("{prefix}/{{id}}"),
                get(orders::get).patch(orders::patch).delete(orders::delete),
            )
            .route(&format!("{prefix}/{{id}}/accept"), post(lifecycle::accept))
            .route(&format!("{prefix}/{{id}}/route"), post(lifecycle::route))
            .route(
                &format!("{prefix}/{{id}}/deliver"),
                post(lifecycle::deliver),
            )
            .route(
                &format!("{prefix}/{{id}}/adjustments"),
                get(lifecycle::adjustments),
            );
    }
    if state.faults.has_body_faults() {
        api = api.layer(from_fn_with_state(state.clone(), inject::body_faults));
    }
    // The streams stay outside the body faults, which read a whole body
    // before re-sending it: a stream never ends.
    Router::new()
        .route("/health", get(health))
        .route("/api/health", get(health))
        .route("/openapi.json", get(super::openapi::serve))
        .route("/events", get(stream::sse))
        .route("/api/events", get(stream::sse))
        .route("/ws", get(stream::ws))
        .route("/api/ws", get(stream::ws))
        .merge(api)
        .method_not_allowed_fallback(super::error::method_not_allowed)
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), inject::front))
        .with_state(state)
}

/// Serves the reference API on `listener` until the `crash-after` fault
/// fires, on the caller's runtime. In-process users want [`spawn`];
/// `convoy target` uses [`prepare`], to tell a bad configuration from an
/// unreachable database before it serves.
///
/// Returns an error if the configuration is unusable or the database cannot
/// be set up, or when the server crashed on purpose
/// (`ErrorKind::ConnectionAborted`); it does not return otherwise, so stop it
/// by dropping the future.
pub async fn serve(listener: TcpListener, config: TargetConfig) -> io::Result<()> {
    let target = prepare(config).await.map_err(io::Error::other)?;
    target.serve(listener).await
}

/// A target whose storage is ready (its database connected, migrated and
/// checked), not yet serving.
#[derive(Debug)]
pub struct PreparedTarget {
    state: AppState,
}

/// Checks `config` and opens the target's storage, on the caller's runtime
/// (which the database connections then use).
pub async fn prepare(config: TargetConfig) -> Result<PreparedTarget, TargetError> {
    Ok(PreparedTarget {
        state: TargetState::start(&config).await?,
    })
}

impl PreparedTarget {
    /// Where the data lives, for people: `memory (...)` or the database
    /// without its credentials.
    pub fn storage(&self) -> String {
        describe(&self.state)
    }

    /// Serves on `listener`; see [`serve`].
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        serve_state(listener, self.state).await
    }
}

fn describe(state: &TargetState) -> String {
    match &state.storage {
        Storage::Memory(store) => {
            format!("memory (the newest {} orders per tenant)", store.capacity())
        }
        Storage::Postgres(pg) => pg.describe(),
    }
}

async fn serve_state(listener: TcpListener, state: AppState) -> io::Result<()> {
    let app = router(state.clone());
    let crash = state.faults.crash_after.is_some();
    let listener = KillableListener {
        inner: listener,
        kill: state.kill.clone(),
        settled: crash.then(|| state.settled.clone()),
    };
    // Only a crash needs to know which connection a request came on: the
    // per-request extension costs an allocation the hot path is spared.
    let served = async move {
        if crash {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<AnswerLedger>(),
            )
            .await
        } else {
            axum::serve(listener, app).await
        }
    };
    tokio::select! {
        result = served => result,
        reason = state.kill.wait() => match reason {
            KillReason::Shutdown => Ok(()),
            KillReason::Crash => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!(
                    "crash-after fault: the target died after {} requests",
                    state.faults.crash_after.unwrap_or_default()
                ),
            )),
        },
    }
}

/// The answers one connection owes under `crash-after`: requests within the
/// limit that it has read, and how far their answers have got.
#[derive(Debug)]
pub(crate) struct Answers {
    /// Requests within the limit read on this connection.
    started: AtomicU64,
    /// Of those, answers whose body hyper has finished with (sent whole into
    /// its write buffer, or given up).
    finished: AtomicU64,
    /// Of those, answers known to be in the socket (or lost with it).
    settled: AtomicU64,
    /// The target's count of settled answers.
    total: Arc<AtomicU64>,
}

impl Answers {
    fn new(total: Arc<AtomicU64>) -> Arc<Self> {
        Arc::new(Answers {
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            total,
        })
    }

    /// Adds the answers up to `upto` (a count of this connection's) to the
    /// settled ones, once each.
    fn settle(&self, upto: u64) {
        let before = self.settled.fetch_max(upto, Ordering::AcqRel);
        if upto > before {
            self.total.fetch_add(upto - before, Ordering::AcqRel);
        }
    }
}

/// A connection's [`Answers`], handed to every request read on it.
#[derive(Debug, Clone)]
pub(crate) struct AnswerLedger(Arc<Answers>);

impl AnswerLedger {
    /// A request within the crash limit was read; its answer is now owed.
    pub fn owe(&self) {
        self.0.started.fetch_add(1, Ordering::AcqRel);
    }

    /// The owed answer's body is finished with: the next flush of the
    /// connection puts it on the wire.
    pub fn finished(&self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, KillableListener>>
    for AnswerLedger
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, KillableListener>) -> Self {
        let answers = stream.io().answers.clone().unwrap_or_else(|| {
            // Not reached: the ledger is asked for only when the crash fault
            // is on, and then every connection has answers to keep.
            Answers::new(Arc::new(AtomicU64::new(0)))
        });
        AnswerLedger(answers)
    }
}

/// Accepts connections whose I/O fails once the kill switch trips.
pub(crate) struct KillableListener {
    inner: TcpListener,
    kill: Arc<KillSwitch>,
    /// The target's settled answers, when the crash fault is on.
    settled: Option<Arc<AtomicU64>>,
}

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Small JSON answers must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    let killed = Box::pin(self.kill.notify.clone().notified_owned());
                    let answers = self.settled.clone().map(Answers::new);
                    let stream = KillableStream {
                        inner: stream,
                        kill: self.kill.clone(),
                        killed,
                        answers,
                    };
                    return (stream, addr);
                }
                // Out of file descriptors and the like: wait and try again,
                // as a real server would.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails with `ConnectionAborted` once the kill switch trips.
pub(crate) struct KillableStream {
    inner: TcpStream,
    kill: Arc<KillSwitch>,
    /// Wakes a connection that is waiting on I/O when the switch trips.
    killed: Pin<Box<OwnedNotified>>,
    /// The answers this connection owes, when the crash fault is on.
    answers: Option<Arc<Answers>>,
}

impl Drop for KillableStream {
    /// Whatever the connection still owed is lost with it: settled, so the
    /// crash does not wait for it.
    fn drop(&mut self) {
        if let Some(answers) = &self.answers {
            answers.settle(answers.started.load(Ordering::Acquire));
        }
    }
}

impl KillableStream {
    fn aborted() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionAborted, "the target was killed")
    }

    /// Checked before any I/O.
    fn check(&self) -> io::Result<()> {
        match self.kill.reason() {
            Some(_) => Err(Self::aborted()),
            None => Ok(()),
        }
    }

    /// Called when the inner I/O would block: registers for the kill switch
    /// too, so an idle connection is woken (and failed) when it trips. Only on
    /// this slow path, so busy connections never touch the shared `Notify`.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.killed.as_mut().poll(cx).is_ready() || self.kill.reason().is_some() {
            return Poll::Ready(Err(Self::aborted()));
        }
        Poll::Pending
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes only once its buffer is written: every answer
        // finished before this call is in the socket.
        if let Some(answers) = &self.answers {
            answers.settle(answers.finished.load(Ordering::Acquire));
        }
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A target running in process on its own thread and runtime; see [`spawn`].
/// Dropping it shuts it down.
#[derive(Debug)]
pub struct RunningTarget {
    addr: SocketAddr,
    state: AppState,
    /// The target's runtime, where database work of the helpers runs.
    runtime: tokio::runtime::Handle,
    thread: Option<JoinHandle<()>>,
}

/// Starts the reference target on `127.0.0.1` and an ephemeral port, on a
/// background thread with a runtime of its own; returns once it listens.
pub fn spawn(config: TargetConfig) -> io::Result<RunningTarget> {
    spawn_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
}

/// Like [`spawn`], on the given address.
pub fn spawn_on(addr: SocketAddr, config: TargetConfig) -> io::Result<RunningTarget> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = if config.worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("convoy-target-worker")
            .enable_all()
            .build()?
    };
    let handle = runtime.handle().clone();
    let listener = {
        let _guard = runtime.enter();
        TcpListener::from_std(listener)?
    };
    // The storage opens on the target's own runtime (its database
    // connections live there), and the caller may be inside a runtime that
    // must not be blocked on: the thread reports back once it is ready.
    let (ready, started) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("convoy-target".into())
        .spawn(move || {
            let state = match runtime.block_on(TargetState::start(&config)) {
                Ok(state) => state,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(state.clone()));
            // A crash is this target's purpose, not a failure of the thread;
            // the owner learns of it through `has_crashed`.
            let _ = runtime.block_on(serve_state(listener, state));
            // Dropping the runtime cancels every connection task, so no
            // connection outlives the server.
            drop(runtime);
        })?;
    let state = match started.recv() {
        Ok(Ok(state)) => state,
        Ok(Err(e)) => {
            let _ = thread.join();
            let kind = if e.is_usage() {
                io::ErrorKind::InvalidInput
            } else {
                io::ErrorKind::Other
            };
            return Err(io::Error::new(kind, e.to_string()));
        }
        Err(_) => {
            let _ = thread.join();
            return Err(io::Error::other(
                "the target's thread ended before it started",
            ));
        }
    };
    Ok(RunningTarget {
        addr,
        state,
        runtime: handle,
        thread: Some(thread),
    })
}

impl RunningTarget {
    /// The address the target listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the target: no more connections are accepted, open ones are
    /// dropped. Returns once its thread has ended.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.state.kill.trigger(KillReason::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Whether the `crash-after` fault has fired.
    pub fn has_crashed(&self) -> bool {
        self.state.kill.reason() == Some(KillReason::Crash)
    }

    /// Requests seen so far, `/health` and refused ones included.
    pub fn requests_seen(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Where the target keeps its data, for people.
    pub fn storage(&self) -> String {
        describe(&self.state)
    }

    /// How many orders `tenant` has (0 for an unknown tenant).
    pub fn orders_count(&self, tenant: &str) -> usize {
        self.count_orders(tenant, None)
    }

    /// How many orders of `tenant` were created with `Idempotency-Key: key`:
    /// 1 after any number of replays, unless the `idempotency-race` fault is
    /// on.
    pub fn orders_with_idempotency_key(&self, tenant: &str, key: &str) -> usize {
        self.count_orders(tenant, Some(key))
    }

    /// How many ledger rows `tenant` has written.
    pub fn ledger_rows(&self, tenant: &str) -> usize {
        let Some(tenant) = TenantId::from_name(tenant) else {
            return 0;
        };
        let state = self.state.clone();
        self.on_target(async move { state.storage.ledger_rows(tenant).await })
    }

    fn count_orders(&self, tenant: &str, key: Option<&str>) -> usize {
        let Some(tenant) = TenantId::from_name(tenant) else {
            return 0;
        };
        let state = self.state.clone();
        let key = key.map(str::to_string);
        self.on_target(async move {
            let filter = OrderFilter {
                status: None,
                idempotency_key: key.as_deref(),
                limit: 1,
            };
            state
                .storage
                .list_orders(tenant, filter)
                .await
                .map(|(_, total)| total)
        })
    }

    /// Runs a storage query for the helpers above. In memory it runs here; a
    /// database query runs on the target's runtime, where its connections
    /// live, while this thread (perhaps a test's runtime) waits.
    ///
    /// # Panics
    ///
    /// If the target has stopped or its database fails: these helpers are
    /// for tests.
    fn on_target<T: Send + 'static>(
        &self,
        query: impl Future<Output = Result<T, super::error::ApiError>> + Send + 'static,
    ) -> T {
        let result = if matches!(self.state.storage, Storage::Memory(_)) {
            run_ready(query)
        } else {
            let (tx, rx) = std::sync::mpsc::channel();
            self.runtime.spawn(async move {
                let _ = tx.send(query.await);
            });
            rx.recv().expect("the target is running")
        };
        result.unwrap_or_else(|e| panic!("the target's storage failed: {}", e.message))
    }
}

/// Polls a future that never waits (the memory backend's operations) to
/// completion on this thread.
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        // The memory backend never returns Pending; yield if it ever does.
        std::thread::yield_now();
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kill_switch_wakes_waiters_and_keeps_the_first_reason() {
        let kill = Arc::new(KillSwitch::default());
        let waiter = tokio::spawn({
            let kill = kill.clone();
            async move { kill.wait().await }
        });
        tokio::task::yield_now().await;
        kill.trigger(KillReason::Crash);
        kill.trigger(KillReason::Shutdown);
        assert_eq!(waiter.await.unwrap(), KillReason::Crash);
        assert_eq!(kill.reason(), Some(KillReason::Crash));
        assert_eq!(kill.wait().await, KillReason::Crash);
    }

    #[test]
    fn an_empty_secret_is_refused() {
        let config = TargetConfig {
            jwt_secret: String::new(),
            ..TargetConfig::default()
        };
        assert_eq!(
            spawn(config).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn spawn_listens_on_loopback_and_shuts_down() {
        let target = spawn(TargetConfig::default()).unwrap();
        assert!(target.addr().ip().is_loopback());
        assert_ne!(target.addr().port(), 0);
        assert_eq!(
            target.base_url(),
            format!("http://127.0.0.1:{}", target.addr().port())
        );
        let addr = target.addr();
        std::net::TcpStream::connect(addr).unwrap();
        target.shutdown();
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
