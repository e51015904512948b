//! Targets that fail: refused connections, unknown hosts, TLS spoken to a
//! plain-HTTP server, silence, resets in the middle of a body, answers that
//! are not HTTP, text where JSON was expected, bodies far over the limit,
//! and slowloris servers. Each failure must be a counted request with a
//! categorised cause, never a panic, and the run must go on: the scripted
//! servers below alternate misbehaving and well-behaved connections, and
//! the well-behaved answers must be counted too.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use convoy::bench::{self, BenchPlan, RequestSpec};
use convoy::engine::{self, EngineOptions, RunControl, RunResult};
use convoy::metrics::ErrorCause;
use convoy::plan::{ClosedModel, HttpOptions, LoadModel, Ramp};
use convoy::scenario::{CustomRegistry, ScenarioWorkload, parse};
use convoy::target::{self, Fault, TargetConfig};

/// What a scripted server does with one connection: its index (0, 1, ...)
/// and the stream, after the request head has been read. It should return
/// soon after `stop` is set.
type Behaviour = dyn Fn(usize, TcpStream, &AtomicBool) + Send + Sync;

/// A loopback server whose connections each run a [`Behaviour`].
struct Scripted {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepter: Option<JoinHandle<()>>,
}

impl Scripted {
    fn start(behaviour: impl Fn(usize, TcpStream, &AtomicBool) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let accepter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut index = 0;
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            let (b, stop, i) = (behaviour.clone(), stop.clone(), index);
                            index += 1;
                            std::thread::spawn(move || {
                                if read_request_head(&mut stream) {
                                    b(i, stream, &stop);
                                }
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Scripted {
            addr,
            stop,
            accepter: Some(accepter),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accepter.take() {
            let _ = h.join();
        }
    }
}

/// Reads up to the blank line ending a request head (bounded); false when
/// the client went away first.
fn read_request_head(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// A correct answer that closes the connection, so the next request opens
/// the next scripted connection.
fn answer_ok(mut s: TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

/// Sleeps in small steps until `d` passes or the server stops.
fn wait(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn one_user(requests: u64) -> LoadModel {
    LoadModel::Closed(ClosedModel {
        users: Ramp::constant(1.0, Duration::ZERO),
        iterations_per_user: None,
        total_iterations: Some(requests),
        duration: None,
    })
}

/// Sends `requests` GETs to `url`, one at a time.
fn bench_with(url: &str, requests: u64, headers: http::HeaderMap, http: HttpOptions) -> RunResult {
    let plan = BenchPlan {
        request: RequestSpec {
            method: http::Method::GET,
            url: url.parse().unwrap(),
            headers,
            body: Bytes::new(),
        },
        model: one_user(requests),
        http,
        engine: EngineOptions {
            workers: 1,
            graceful_stop: Duration::from_secs(5),
            ..EngineOptions::default()
        },
    };
    bench::run(&plan, &RunControl::new(), |_| {}).expect("the run starts")
}

fn bench(url: &str, requests: u64, http: HttpOptions) -> RunResult {
    bench_with(url, requests, http::HeaderMap::new(), http)
}

fn quick() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        ..HttpOptions::default()
    }
}

fn count(r: &RunResult, cause: ErrorCause) -> u64 {
    r.overall().error_counts.get(&cause).copied().unwrap_or(0)
}

fn ok_count(r: &RunResult) -> u64 {
    r.overall().status_counts.get(&200).copied().unwrap_or(0)
}

/// Every request was counted and the run ended on its own.
fn assert_all_counted(r: &RunResult, requests: u64) {
    let o = r.overall();
    assert_eq!(o.requests, requests, "{o:?}");
    assert_eq!(r.iterations, requests, "{o:?}");
    assert!(!r.is_partial(), "{o:?}");
}

#[test]
fn connection_refused_is_counted_for_every_request() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let r = bench(&format!("http://127.0.0.1:{port}/health"), 4, quick());
    assert_all_counted(&r, 4);
    assert_eq!(count(&r, ErrorCause::Refused), 4, "{:?}", r.overall());
    assert_eq!(r.overall().errors, 4);
}

#[test]
#[ignore = "asks the system resolver, which may query a nameserver off this machine; run by hand"]
fn an_unknown_host_is_a_dns_error() {
    // `.invalid` never resolves (RFC 6761), but the system resolver may
    // still ask its nameserver, so CI does not run this.
    let r = bench("http://convoy-failing-targets.invalid/health", 2, quick());
    assert_all_counted(&r, 2);
    assert_eq!(count(&r, ErrorCause::Dns), 2, "{:?}", r.overall());
}

#[test]
fn tls_spoken_to_a_plain_http_server_is_a_tls_or_protocol_error() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let port: u16 = t.base_url().rsplit(':').next().unwrap().parse().unwrap();
    let r = bench(&format!("https://127.0.0.1:{port}/health"), 3, quick());
    assert_all_counted(&r, 3);
    let tls_or_protocol = count(&r, ErrorCause::Tls) + count(&r, ErrorCause::Protocol);
    assert_eq!(tls_or_protocol, 3, "{:?}", r.overall());
}

#[test]
fn a_silent_server_times_out_and_the_run_goes_on() {
    let server = Scripted::start(|i, s, stop| {
        if i % 2 == 0 {
            // Read the request, answer nothing, hold the connection.
            wait(Duration::from_secs(30), stop);
            drop(s);
        } else {
            answer_ok(s);
        }
    });
    let http = HttpOptions {
        timeout: Duration::from_millis(300),
        ..quick()
    };
    let r = bench(&server.url("/"), 4, http);
    assert_all_counted(&r, 4);
    assert_eq!(count(&r, ErrorCause::Timeout), 2, "{:?}", r.overall());
    assert_eq!(ok_count(&r), 2, "{:?}", r.overall());
}

#[test]
fn a_reset_in_the_middle_of_a_body_is_a_body_error() {
    // The reference target's fault: full Content-Length, half the body.
    // It cuts the login answer too, so the token comes from a healthy
    // target signing with the same secret.
    let t = target::spawn(TargetConfig::default().with_fault(Fault::TruncatedBody)).unwrap();
    let healthy = target::spawn(TargetConfig::default()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", login(&healthy.base_url()))
            .parse()
            .unwrap(),
    );
    let r = bench_with(&format!("{}/api/orders", t.base_url()), 3, headers, quick());
    assert_all_counted(&r, 3);
    assert_eq!(count(&r, ErrorCause::Body), 3, "{:?}", r.overall());

    // The same on a scripted server, between good answers.
    let server = Scripted::start(|i, mut s, _| {
        if i % 2 == 0 {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            let _ = s.write_all(&[b'x'; 500]);
            // Dropping the stream closes it with 500 bytes missing.
        } else {
            answer_ok(s);
        }
    });
    let r = bench(&server.url("/"), 4, quick());
    assert_all_counted(&r, 4);
    assert_eq!(count(&r, ErrorCause::Body), 2, "{:?}", r.overall());
    assert_eq!(ok_count(&r), 2, "{:?}", r.overall());
}

#[test]
fn an_answer_that_is_not_http_is_a_protocol_error() {
    let server = Scripted::start(|i, mut s, _| {
        if i % 2 == 0 {
            let _ = s.write_all(b"HELLO\r\n\r\n");
        } else {
            answer_ok(s);
        }
    });
    let r = bench(&server.url("/"), 4, quick());
    assert_all_counted(&r, 4);
    assert_eq!(count(&r, ErrorCause::Protocol), 2, "{:?}", r.overall());
    assert_eq!(ok_count(&r), 2, "{:?}", r.overall());
}

#[test]
fn a_connection_closed_before_any_answer_is_counted() {
    let server = Scripted::start(|i, s, _| {
        if i % 2 == 0 {
            drop(s);
        } else {
            answer_ok(s);
        }
    });
    let r = bench(&server.url("/"), 4, quick());
    assert_all_counted(&r, 4);
    assert_eq!(r.overall().errors, 2, "{:?}", r.overall());
    assert_eq!(ok_count(&r), 2, "{:?}", r.overall());
}

/// Peak resident memory of this process, in bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_body_far_over_the_limit_is_a_body_error_read_in_bounded_memory() {
    const DECLARED: u64 = 50 * 1024 * 1024;
    let sent = Arc::new(AtomicU64::new(0));
    let server = {
        let sent = sent.clone();
        Scripted::start(move |i, mut s, stop| {
            let head: &[u8] = if i % 2 == 0 {
                b"HTTP/1.1 200 OK\r\nContent-Length: 52428800\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            };
            if s.write_all(head).is_err() {
                return;
            }
            let chunk = vec![b'z'; 64 * 1024];
            let mut total = 0u64;
            while total < DECLARED && !stop.load(Ordering::Relaxed) {
                let ok = if i % 2 == 0 {
                    s.write_all(&chunk)
                } else {
                    write!(s, "{:x}\r\n", chunk.len())
                        .and_then(|_| s.write_all(&chunk))
                        .and_then(|_| s.write_all(b"\r\n"))
                };
                if ok.is_err() {
                    break;
                }
                total += chunk.len() as u64;
            }
            sent.fetch_max(total, Ordering::Relaxed);
        })
    };
    let before = peak_rss();
    let http = HttpOptions {
        max_body_bytes: 1024 * 1024,
        ..quick()
    };
    let r = bench(&server.url("/big"), 4, http);
    assert_all_counted(&r, 4);
    assert_eq!(count(&r, ErrorCause::Body), 4, "{:?}", r.overall());
    // The client stopped reading soon after the limit: the server could not
    // push more than the limit plus what the sockets buffer.
    let most = sent.load(Ordering::Relaxed);
    assert!(
        most < DECLARED / 2,
        "the server sent {most} bytes of one body"
    );
    if let (Some(before), Some(after)) = (before, peak_rss()) {
        assert!(
            after.saturating_sub(before) < 40 * 1024 * 1024,
            "peak memory grew by {} bytes",
            after - before
        );
    }
}

/// Trickles `bytes` one byte a second, stopping when the client leaves.
fn trickle(s: &mut TcpStream, bytes: &[u8], stop: &AtomicBool) {
    for b in bytes {
        if s.write_all(&[*b]).is_err() || stop.load(Ordering::Relaxed) {
            return;
        }
        wait(Duration::from_secs(1), stop);
    }
}

#[test]
fn a_slowloris_server_times_out_within_the_request_timeout() {
    let server = Scripted::start(|i, mut s, stop| match i % 3 {
        // The status line and headers, a byte a second.
        0 => trickle(
            &mut s,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            stop,
        ),
        // Headers at once, then the body a byte a second.
        1 => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n");
            trickle(&mut s, &[b'.'; 64], stop);
        }
        _ => answer_ok(s),
    });
    let timeout = Duration::from_millis(1500);
    let http = HttpOptions { timeout, ..quick() };
    let started = Instant::now();
    let r = bench(&server.url("/"), 6, http);
    let took = started.elapsed();
    assert_all_counted(&r, 6);
    assert_eq!(count(&r, ErrorCause::Timeout), 4, "{:?}", r.overall());
    assert_eq!(ok_count(&r), 2, "{:?}", r.overall());
    // Four timeouts of 1.5 s each, and nothing waited for the trickles to
    // end (they would take 40 s and more).
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_target_that_dies_mid_run_leaves_every_request_counted() {
    let t = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(3))).unwrap();
    let r = bench(&format!("{}/health", t.base_url()), 6, quick());
    assert_all_counted(&r, 6);
    assert_eq!(ok_count(&r), 3, "{:?}", r.overall());
    assert_eq!(r.overall().errors, 3, "{:?}", r.overall());
}

/// Logs in to the reference target as the seeded admin.
fn login(base_url: &str) -> String {
    let addr = base_url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    let body = r#"{"email":"admin@acme.test","password":"convoy-demo"}"#;
    write!(
        s,
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let json = &answer[answer.find('{').unwrap()..=answer.rfind('}').unwrap()];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// Runs a one-step scenario `iterations` times against `base_url`.
fn run_scenario(text: &str, base_url: &str, iterations: u64) -> RunResult {
    let scenario = parse::parse(std::path::Path::new("failing.toml"), text, &parse::EnvScope)
        .unwrap_or_else(|d| panic!("{d}"));
    let url: url::Url = base_url.parse().unwrap();
    let workload =
        ScenarioWorkload::new(vec![scenario], Some(&url), quick(), CustomRegistry::new()).unwrap();
    let options = EngineOptions {
        workers: 1,
        graceful_stop: Duration::from_secs(5),
        ..EngineOptions::default()
    };
    let model = LoadModel::closed(1, iterations);
    engine::run(
        &model,
        &options,
        Arc::new(workload),
        &RunControl::new(),
        |_| {},
    )
    .unwrap()
}

const CAPTURE_THEN_USE: &str = r#"
[[step]]
name = "read"
path = "/text"
capture = { id = "/id" }

[[step]]
name = "use"
path = "/orders/{{ id }}"
"#;

/// A server answering every request with `200 text/plain`.
fn text_server() -> Scripted {
    Scripted::start(|_, mut s, _| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!",
        );
    })
}

#[test]
fn text_where_a_json_capture_was_expected_fails_the_capture_not_the_run() {
    let server = text_server();
    let r = run_scenario(CAPTURE_THEN_USE, &server.url(""), 3);
    assert_eq!(r.iterations, 3, "every iteration ran");
    assert!(r.check_failures() >= 3, "{:#?}", r.failures);
    let sample = r
        .failures
        .iter()
        .find(|f| f.step == "read")
        .unwrap_or_else(|| panic!("no sample of the capture: {:#?}", r.failures));
    assert!(sample.message.contains("id"), "{sample:#?}");
    assert!(sample.response.contains("not json!"), "{sample:#?}");
}

/// A capture from a body that is not JSON says so, as a check in the same
/// spot does, rather than only "nothing to capture for id".
#[test]
fn a_failed_capture_says_the_answer_is_not_json() {
    let server = text_server();
    let r = run_scenario(CAPTURE_THEN_USE, &server.url(""), 1);
    let sample = r
        .failures
        .iter()
        .find(|f| f.step == "read")
        .expect("sampled");
    assert!(
        sample.message.contains("not JSON"),
        "the sample says why: {sample:#?}"
    );
}

#[test]
fn a_json_answer_without_the_captured_field_fails_the_capture_not_the_run() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let text = CAPTURE_THEN_USE.replace("/text", "/health");
    let r = run_scenario(&text, &t.base_url(), 3);
    assert_eq!(r.iterations, 3, "every iteration ran");
    assert!(r.check_failures() >= 3, "{:#?}", r.failures);
    assert!(
        r.failures.iter().any(|f| f.step == "read"),
        "{:#?}",
        r.failures
    );
}
