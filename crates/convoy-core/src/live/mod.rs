//! Live metrics of a run in progress, for Prometheus (and so Grafana).
//!
//! `convoy run --metrics-addr 127.0.0.1:9464` (or `convoy bench`) starts an
//! [`Exporter`]: a tiny HTTP server on its own thread and runtime, apart from
//! the load generator's workers, serving `GET /metrics` in the Prometheus
//! text format. The engine hands the observer a merged snapshot of every
//! worker once a second ([`crate::engine::EngineOptions::live_snapshots`]);
//! the exporter keeps the latest one, evaluates the run's SLA gates on it,
//! and renders it ([`render`]) when scraped. When the run ends, the final
//! result replaces the last snapshot, so a scrape after the end sees exactly
//! the report's counts; the exporter can keep serving them a few seconds
//! (`--metrics-linger`) so that a scraper polling every 5 or 15 seconds does
//! not miss them.
//!
//! It binds loopback addresses only, unless told otherwise: the figures name
//! the scenarios and steps of the system under test.
//!
//! # What this module owns, and what it must not import
//!
//! It owns the exporter, the text format and the gates' view of a run in
//! progress: [`gate_figures`] turns a snapshot into the figures the gates
//! evaluate (no report is built), [`progress_figures`] turns an engine
//! status into what `--abort-on-fail` judges.
//!
//! It reads the engine's live statuses and results, `metrics`, `summary`
//! and the gates; it must not import `report` (the live figures are not a
//! report, and the report must not wait on the exporter) or the command
//! line, and it never drives a run: the engine calls it.

mod gates;
pub mod render;
mod serve;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub use gates::{gate_figures, progress_figures};
pub use render::{Figures, RunInfo};

use crate::engine::{LiveStatus, RunResult};
use crate::gate::{self, Gate};

/// The exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A non-loopback address without the explicit permission.
    #[error(
        "--metrics-addr {0} is not a loopback address: the metrics name the system under test; add --metrics-public to serve them on every network it reaches"
    )]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What the exporter needs to know about the run besides its figures.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Allow a non-loopback address.
    pub public: bool,
    /// For `convoy_run_info`.
    pub info: RunInfo,
    /// SLA gates to evaluate on the live figures (gates relative to a
    /// baseline are left out).
    pub gates: Vec<Gate>,
}

struct State {
    info: RunInfo,
    gates: Vec<Gate>,
    figures: Option<Figures>,
}

/// A running `/metrics` endpoint; stops when closed or dropped.
pub struct Exporter {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Exporter {
    /// Binds `config.addr` and starts serving on a thread of its own.
    pub fn start(config: ExporterConfig) -> Result<Exporter, LiveError> {
        if !config.public && !config.addr.ip().is_loopback() {
            return Err(LiveError::NotLoopback(config.addr));
        }
        let bind_error = |source| LiveError::Bind {
            addr: config.addr,
            source,
        };
        let listener = std::net::TcpListener::bind(config.addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let state = Arc::new(Mutex::new(State {
            info: config.info,
            gates: config
                .gates
                .into_iter()
                .filter(|g| !g.needs_baseline())
                .collect(),
            figures: None,
        }));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(bind_error)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = Arc::clone(&state);
        let thread = thread::Builder::new()
            .name("convoy-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    serve::serve(listener, served, rx).await;
                });
            })
            .map_err(bind_error)?;
        Ok(Exporter {
            state,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address served (with the port the OS chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the figures of a live status (once a second, from the engine's
    /// observer); statuses without a snapshot are ignored.
    pub fn observe(&self, status: &LiveStatus) {
        let Some(snap) = &status.snapshot else {
            return;
        };
        let figures = Figures {
            elapsed_secs: status.elapsed.as_secs_f64(),
            steps: snap
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let stats = snap.shard.steps.get(i).cloned().unwrap_or_default();
                    (s.clone(), stats)
                })
                .collect(),
            checks: snap
                .checks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let stats = snap.shard.book.checks.get(i).copied().unwrap_or_default();
                    (c.clone(), stats)
                })
                .collect(),
            violations: snap.shard.book.violations.clone(),
            active_users: snap.active_users,
            dropped: snap.shard.dropped,
            iterations: snap.shard.iterations,
            interrupted: snap.shard.interrupted,
            gates: Vec::new(),
            finished: false,
        };
        self.publish(figures);
    }

    /// Publishes the final result of the run: from now on scrapes see
    /// exactly the report's counts.
    pub fn finish(&self, result: &RunResult) {
        let figures = Figures {
            elapsed_secs: result.duration_secs,
            steps: result
                .steps
                .iter()
                .map(|s| (s.info.clone(), s.stats.clone()))
                .collect(),
            checks: result
                .checks
                .iter()
                .map(|c| (c.info.clone(), c.stats))
                .collect(),
            violations: result.violations.clone(),
            active_users: 0,
            dropped: result.dropped,
            iterations: result.iterations,
            interrupted: result.interrupted,
            gates: Vec::new(),
            finished: true,
        };
        self.publish(figures);
    }

    fn publish(&self, mut figures: Figures) {
        let gates = self.state.lock().expect("metrics state").gates.clone();
        if !gates.is_empty() {
            figures.gates = gates
                .iter()
                .zip(gate::evaluate(&gates, &gate_figures(&figures), None))
                .map(|(g, r)| (g.expression.clone(), r.passed))
                .collect();
        }
        self.state.lock().expect("metrics state").figures = Some(figures);
    }

    /// Keeps serving the final figures for `linger`, then stops the server
    /// and waits for its thread.
    pub fn close(mut self, linger: Duration) {
        if !linger.is_zero() {
            thread::sleep(linger);
        }
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(addr: &str) -> ExporterConfig {
        ExporterConfig {
            addr: addr.parse().unwrap(),
            public: false,
            info: RunInfo::default(),
            gates: vec!["p95 < 1s".parse().unwrap()],
        }
    }

    #[test]
    fn refuses_non_loopback_addresses_unless_public() {
        assert!(matches!(
            Exporter::start(config("0.0.0.0:0")),
            Err(LiveError::NotLoopback(_))
        ));
        let mut c = config("0.0.0.0:0");
        c.public = true;
        Exporter::start(c).unwrap().close(Duration::ZERO);
    }

    #[test]
    fn serves_the_text_format_until_closed() {
        use std::io::{Read, Write};
        let e = Exporter::start(config("127.0.0.1:0")).unwrap();
        let get = |addr: SocketAddr| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        };
        let text = get(e.addr());
        assert!(text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"));
        assert!(text.contains("content-type: text/plain; version=0.0.4"));
        assert!(text.contains("convoy_run_info{"));
        let addr = e.addr();
        e.close(Duration::ZERO);
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
