//! reqwest-probe: `convoy bench URL -c N -d SECS`, rebuilt on reqwest.
//!
//! Issue 2 asked for the engine on reqwest unless a benchmark showed reqwest
//! to be the bottleneck; convoy sends through hyper connections of its own.
//! This program is the other side of that measurement (ci/bench/reqwest.sh):
//! the same closed model with the same worker layout as convoy's engine, so
//! that the CPU each spends per response can be compared.
//!
//! - One OS thread per CPU the process may run on (`available_parallelism`
//!   honours the affinity mask, as in convoy), each with a current-thread
//!   tokio runtime; pinned to one CPU, that is one thread, as convoy.
//! - Users are spread round-robin over the workers and loop until the
//!   deadline: GET, read the body to the end and drop it, record the latency
//!   in microseconds into the worker's HdrHistogram (3 significant digits)
//!   and count the status. Requests still in flight at the deadline are cut.
//! - One `reqwest::Client` per worker, the way an engine on reqwest would
//!   hold it: its pool keeps one keep-alive connection per user. The request
//!   and connect timeouts are convoy's defaults (30 s and 5 s).
//!
//! It prints one JSON object; CPU time and memory are measured from outside
//! (`/usr/bin/time`).
//!
//! Usage: reqwest-probe URL [-c CONNECTIONS] [-d SECONDS]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What one worker counted.
struct Tally {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    /// Requests that failed without a response (refused, reset, timeout...).
    errors: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 µs to 1 h, as convoy's histograms.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            statuses: BTreeMap::new(),
            errors: 0,
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with the same bounds add");
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        self.errors += other.errors;
    }
}

struct Args {
    url: reqwest::Url,
    connections: usize,
    duration: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut connections = 50usize;
    let mut seconds = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} wants a value"));
        match arg.as_str() {
            "-c" | "--connections" => {
                connections = value("-c")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("-c wants a positive integer")?;
            }
            "-d" | "--duration" => {
                let v = value("-d")?;
                seconds = v
                    .trim_end_matches('s')
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("-d wants whole seconds, found {v:?}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            _ if url.is_none() && !arg.starts_with('-') => {
                let parsed = reqwest::Url::parse(&arg).map_err(|e| format!("{arg}: {e}"))?;
                url = Some(parsed);
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Args {
        url: url.ok_or("a URL is required")?,
        connections,
        duration: Duration::from_secs(seconds),
    })
}

/// One worker: a current-thread runtime running `users` looping users until
/// `deadline`.
fn run_worker(url: reqwest::Url, users: usize, deadline: Instant) -> Result<Tally, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(users)
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot build the client: {e}"))?;
    let tally = Rc::new(RefCell::new(Tally::new()));
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..users {
            let (client, url, tally) = (client.clone(), url.clone(), tally.clone());
            tasks.spawn_local(async move {
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = match client.get(url.clone()).send().await {
                        Ok(mut response) => {
                            let status = response.status().as_u16();
                            // Read to the end and drop each chunk, as convoy's
                            // send_discard does.
                            loop {
                                match response.chunk().await {
                                    Ok(Some(_)) => {}
                                    Ok(None) => break Some(status),
                                    Err(_) => break None,
                                }
                            }
                        }
                        Err(_) => None,
                    };
                    let elapsed = sent.elapsed();
                    let mut t = tally.borrow_mut();
                    match outcome {
                        Some(status) => {
                            let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                            t.latency_us.saturating_record(us.max(1));
                            *t.statuses.entry(status).or_default() += 1;
                        }
                        None => t.errors += 1,
                    }
                }
            });
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        // What is still in flight at the deadline is cut, as in convoy.
        let _ = tokio::time::timeout_at(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
    });
    drop(local);
    let tally = Rc::try_unwrap(tally)
        .map_err(|_| "a user outlived its worker".to_string())?
        .into_inner();
    Ok(tally)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("reqwest-probe: {e}");
            }
            eprintln!("usage: reqwest-probe URL [-c CONNECTIONS] [-d SECONDS]");
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    // rustls with ring, as convoy installs it; plain http:// never uses it,
    // but the client is built as it would be for https.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(args.connections);
    let start = Instant::now();
    let deadline = start + args.duration;
    let handles: Vec<_> = (0..workers)
        .map(|index| {
            // Round-robin, as convoy: worker i runs users i, i + workers, ...
            let users = (index..args.connections).step_by(workers).count();
            let url = args.url.clone();
            thread::Builder::new()
                .name(format!("probe-worker-{index}"))
                .spawn(move || run_worker(url, users, deadline))
        })
        .collect();
    let mut total = Tally::new();
    for handle in handles {
        let joined = match handle {
            Ok(h) => h.join().map_err(|_| "a worker panicked".to_string()),
            Err(e) => Err(format!("cannot start a worker thread: {e}")),
        };
        match joined.and_then(|r| r) {
            Ok(t) => total.merge(&t),
            Err(e) => {
                eprintln!("reqwest-probe: {e}");
                return ExitCode::from(3);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let responses: u64 = total.statuses.values().sum();
    let statuses: Vec<String> = total
        .statuses
        .iter()
        .map(|(s, n)| format!("\"{s}\":{n}"))
        .collect();
    let ms = |q: f64| total.latency_us.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{{\"tool\":\"reqwest-probe\",\"workers\":{workers},\"connections\":{},\
         \"duration_s\":{elapsed:.3},\"responses\":{responses},\"errors\":{},\
         \"status_counts\":{{{}}},\"rps\":{:.1},\
         \"latency_ms\":{{\"p50\":{:.3},\"p99\":{:.3},\"max\":{:.3}}}}}",
        args.connections,
        total.errors,
        statuses.join(","),
        responses as f64 / elapsed,
        ms(0.5),
        ms(0.99),
        total.latency_us.max() as f64 / 1000.0,
    );
    if responses == 0 {
        eprintln!("reqwest-probe: no response received from {}", args.url);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
