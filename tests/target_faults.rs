//! Every fault of the reference target, switched on in process and observed
//! over real HTTP. Timing bounds are lower bounds with slack (a sleep never
//! ends early), so a loaded machine cannot make these tests fail.

mod cli_support;
mod target_support;

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use cli_support::command;
use convoy::target::{Claims, DEV_JWT_SECRET, Fault, Role, TargetConfig, sign_token};
use reqwest::{Method, StatusCode};
use target_support::{Session, client, fresh_client, order_body, send, start};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn fixed_latency_delays_health_and_api_routes() {
    let target = start(&["latency=60ms"]);
    let client = client();
    let started = Instant::now();
    let reply = send(client.get(format!("{}/health", target.base_url()))).await;
    assert!(
        started.elapsed() >= Duration::from_millis(55),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, StatusCode::OK);

    let admin = Session::login(&target, "admin@acme.test").await;
    let started = Instant::now();
    assert_eq!(admin.get("/api/orders").await.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(55),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn ranged_latency_stays_at_or_above_its_lower_bound() {
    let target = start(&["latency=40ms..80ms"]);
    let client = client();
    for _ in 0..5 {
        let started = Instant::now();
        let reply = send(client.get(format!("{}/api/health", target.base_url()))).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            started.elapsed() >= Duration::from_millis(35),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn error_rate_one_fails_every_request_before_it_is_handled() {
    let target = start(&["error-rate=1.0"]);
    let client = client();
    let base = target.base_url();
    for _ in 0..20 {
        let reply = send(client.get(format!("{base}/health"))).await;
        assert!(
            matches!(
                reply.status,
                StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{}",
            reply.status
        );
        assert_eq!(reply.json["code"], "injected_fault");
        assert!(reply.header("x-request-id").is_some());
    }
    let login = send(
        client
            .post(format!("{base}/api/auth/login"))
            .body(r#"{"email":"admin@acme.test","password":"convoy-demo"}"#),
    )
    .await;
    assert!(login.status.is_server_error(), "{}", login.status);
}

#[tokio::test]
async fn error_rate_one_half_fails_some_and_passes_some() {
    let target = start(&["error-rate=0.5"]);
    let client = client();
    let mut failed = 0;
    for _ in 0..200 {
        let reply = send(client.get(format!("{}/health", target.base_url()))).await;
        if reply.status.is_server_error() {
            failed += 1;
        } else {
            assert_eq!(reply.status, StatusCode::OK);
        }
    }
    // Binomial(200, 0.5): outside 50..=150 with probability below 1e-12.
    assert!((50..=150).contains(&failed), "{failed} of 200 failed");
}

#[tokio::test]
async fn error_rate_does_not_create_orders_it_refuses() {
    let target = start(&["error-rate=1.0"]);
    // Logging in fails too, so sign the admin's token directly.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        sub: "usr-acme-admin".into(),
        tenant: "acme".into(),
        role: Role::Admin,
        iat: now,
        exp: now + 600,
    };
    let token = sign_token(DEV_JWT_SECRET.as_bytes(), &claims);
    let client = client();
    for _ in 0..5 {
        let reply = send(
            client
                .post(format!("{}/api/orders", target.base_url()))
                .bearer_auth(&token)
                .body(order_body("ER-1").to_string()),
        )
        .await;
        assert!(reply.status.is_server_error(), "{}", reply.status);
    }
    assert_eq!(target.orders_count("acme"), 0);
}

#[tokio::test]
async fn a_request_arriving_in_a_stall_window_hangs_until_it_ends() {
    // The window runs from 0.5 s to 3.5 s after the server's start, which
    // lies between `before` and `spawn` returning.
    let before = Instant::now();
    let target = start(&["stall=3s@500ms"]);
    let client = client();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let sent = Instant::now();
    let reply = send(client.get(format!("{}/health", target.base_url()))).await;
    let took = sent.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    let sent_at = sent - before;
    assert!(
        sent_at < Duration::from_millis(3000),
        "test too late for the window: {sent_at:?}"
    );
    // The answer cannot come before the window's end.
    let window_left = Duration::from_millis(3500) - sent_at;
    assert!(
        took >= window_left,
        "took {took:?}, the window had {window_left:?} left"
    );

    // After the window, requests go through again.
    let after = send(client.get(format!("{}/health", target.base_url()))).await;
    assert_eq!(after.status, StatusCode::OK);
}

#[tokio::test]
async fn tenant_leak_one_answers_cross_tenant_reads_with_the_other_tenants_order() {
    let target = start(&["tenant-leak=1"]);
    let acme = Session::login(&target, "admin@acme.test").await;
    let globex = Session::login(&target, "admin@globex.test").await;
    let id = acme.create_order("LEAK-1").await;
    let leaked = globex.get(&format!("/api/orders/{id}")).await;
    assert_eq!(leaked.status, StatusCode::OK, "{}", leaked.text);
    assert_eq!(leaked.json["tenant"], "acme");
    assert_eq!(leaked.json["reference"], "LEAK-1");
    let ledger = globex.get(&format!("/api/orders/{id}/adjustments")).await;
    assert_eq!(ledger.status, StatusCode::OK);
    // Orders that exist nowhere are still 404s, and lists stay scoped.
    assert_eq!(
        globex
            .get("/api/orders/00000000-0000-4000-8000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(globex.get("/api/orders").await.json["count"], 0);
}

#[tokio::test]
async fn tenant_leak_one_half_leaks_some_reads() {
    let target = start(&["tenant-leak=0.5"]);
    let acme = Session::login(&target, "admin@acme.test").await;
    let globex = Session::login(&target, "admin@globex.test").await;
    let id = acme.create_order("LEAK-2").await;
    let mut leaked = 0;
    for _ in 0..100 {
        match globex.get(&format!("/orders/{id}")).await.status {
            StatusCode::OK => leaked += 1,
            status => assert_eq!(status, StatusCode::NOT_FOUND),
        }
    }
    assert!((15..=85).contains(&leaked), "{leaked} of 100 leaked");
}

#[tokio::test]
async fn idempotency_race_creates_duplicates_for_sequential_and_concurrent_replays() {
    let target = start(&["idempotency-race"]);
    let admin = Session::login(&target, "admin@acme.test").await;
    let create = || {
        send(
            admin
                .json(Method::POST, "/api/orders", &order_body("RACE"))
                .header("idempotency-key", "raced"),
        )
    };
    let first = create().await;
    let second = create().await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_ne!(first.json["id"], second.json["id"]);
    assert!(second.header("idempotent-replayed").is_none());
    let concurrent: Vec<_> = (0..8).map(|_| tokio::spawn(create())).collect();
    for handle in concurrent {
        assert_eq!(handle.await.unwrap().status, StatusCode::CREATED);
    }
    assert_eq!(target.orders_with_idempotency_key("acme", "raced"), 10);
    let listed = admin.get("/api/orders?idempotency_key=raced").await;
    assert_eq!(listed.json["count"], 10);
}

#[tokio::test]
async fn slow_body_trickles_the_answer_in_chunks() {
    let target = start(&["slow-body=64/40ms"]);
    let admin = Session::login(&target, "admin@acme.test").await;
    let id = admin.create_order("SLOW-1").await;
    // Timed from before the request, so the bound below holds strictly.
    let started = Instant::now();
    let response = admin
        .request(Method::GET, &format!("/api/orders/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let declared = response
        .content_length()
        .expect("content-length is declared") as usize;
    assert!(declared > 64 * 4, "a body of {declared} bytes");
    let mut response = response;
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.expect("the body completes") {
        body.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert_eq!(body.len(), declared);
    let order: serde_json::Value = serde_json::from_slice(&body).expect("the body is intact");
    assert_eq!(order["reference"], "SLOW-1");
    // 40 ms between 64-byte chunks: the client sees them separately.
    assert!(chunks >= 3, "{chunks} chunks");
    let expected = Duration::from_millis(40) * (declared.div_ceil(64) as u32 - 1);
    assert!(
        started.elapsed() >= expected,
        "{:?} < {expected:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn truncated_body_breaks_api_bodies_but_not_health() {
    let target = start(&["truncated-body"]);
    let client = fresh_client();
    let base = target.base_url();
    let login = client
        .post(format!("{base}/api/auth/login"))
        .body(r#"{"email":"admin@acme.test","password":"convoy-demo"}"#)
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.content_length().is_some_and(|n| n > 100));
    let error = login
        .bytes()
        .await
        .expect_err("the body ends before its Content-Length");
    assert!(
        error.is_body() || error.is_decode() || error.is_request(),
        "{error:?}"
    );

    for _ in 0..3 {
        let health = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.bytes().await.unwrap(), r#"{"status":"ok"}"#);
    }
}

#[tokio::test]
async fn crash_after_answers_n_requests_then_drops_everything() {
    let target = start(&["crash-after=5"]);
    let addr = target.addr();
    let client = fresh_client();
    // A connection opened before the crash, idle when it happens.
    let mut idle = std::net::TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for i in 0..5 {
        let reply = send(client.get(format!("{}/health", target.base_url()))).await;
        assert_eq!(reply.status, StatusCode::OK, "request {}", i + 1);
    }
    assert!(!target.has_crashed());
    let sixth = client
        .get(format!("{}/health", target.base_url()))
        .send()
        .await;
    assert!(sixth.is_err(), "request 6 must not be answered: {sixth:?}");
    assert!(target.has_crashed());

    // The idle connection is dropped rather than left hanging.
    let mut buffer = [0u8; 16];
    match idle.read(&mut buffer) {
        Ok(0) => {}
        Ok(n) => panic!("the idle connection received {n} bytes"),
        Err(e) => assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the idle connection stayed open: {e}"
        ),
    }
    // And nobody listens any more.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            // A connection that reached the backlog while the listener was
            // being closed is reset rather than refused: still closing.
            Err(e) if e.kind() == ErrorKind::ConnectionReset && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("connecting to the crashed target failed oddly: {e}"),
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(_) => panic!("the crashed target still accepts connections"),
        }
    }
    let later = client
        .get(format!("{}/health", target.base_url()))
        .send()
        .await;
    assert!(
        later.is_err_and(|e| e.is_connect()),
        "later requests cannot connect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_answers_exactly_n_requests_however_many_connections_race_it() {
    // Many keep-alive connections race for the last answers: the answer to
    // request N must reach its client even when request N + 1 arrives on
    // another connection before it is written.
    const N: u64 = 150;
    const CONNECTIONS: usize = 12;
    for round in 0..8 {
        // Two server threads, so request N + 1 can be read while the answer
        // to request N is being written.
        let config = TargetConfig {
            worker_threads: 2,
            ..TargetConfig::default()
        }
        .with_fault(Fault::CrashAfter(N));
        let target = convoy::target::spawn(config).unwrap();
        let url = format!("{}/health", target.base_url());
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            let url = url.clone();
            clients.push(tokio::spawn(async move {
                let client = fresh_client();
                let mut answered = 0u64;
                loop {
                    let Ok(response) = client.get(&url).send().await else {
                        return answered;
                    };
                    assert_eq!(response.status(), StatusCode::OK);
                    match response.bytes().await {
                        Ok(_) => answered += 1,
                        Err(_) => return answered,
                    }
                }
            }));
        }
        let mut answered = 0;
        for client in clients {
            answered += client.await.unwrap();
        }
        assert!(target.has_crashed());
        assert_eq!(answered, N, "round {round}");
    }
}

#[tokio::test]
async fn crash_after_counts_api_requests_too() {
    let target = start(&["crash-after=3"]);
    let admin = Session::login(&target, "admin@acme.test").await; // 1
    assert_eq!(admin.get("/api/orders").await.status, StatusCode::OK); // 2
    assert_eq!(admin.get("/api/shipments").await.status, StatusCode::OK); // 3
    assert!(
        admin
            .request(Method::GET, "/api/orders")
            .send()
            .await
            .is_err()
    );
    assert_eq!(target.requests_seen(), 4);
}

#[tokio::test]
async fn faults_combine() {
    let target = start(&["latency=30ms", "tenant-leak=1", "idempotency-race"]);
    let acme = Session::login(&target, "admin@acme.test").await;
    let globex = Session::login(&target, "admin@globex.test").await;
    let id = acme.create_order("MIX-1").await;
    let started = Instant::now();
    let leaked = globex.get(&format!("/api/orders/{id}")).await;
    assert!(started.elapsed() >= Duration::from_millis(25));
    assert_eq!(leaked.status, StatusCode::OK);
}

#[tokio::test]
async fn serve_on_the_callers_runtime_returns_an_error_and_cuts_connections_on_crash() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = TargetConfig::default().with_fault(Fault::CrashAfter(1));
    let server = tokio::spawn(convoy::target::serve(listener, config));
    let health = format!("http://{addr}/health");
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client = fresh_client();
    assert_eq!(send(client.get(&health)).await.status, StatusCode::OK);
    assert!(
        client.get(&health).send().await.is_err(),
        "request 2 finds the target dead"
    );

    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once crashed")
        .unwrap();
    assert_eq!(served.unwrap_err().kind(), ErrorKind::ConnectionAborted);
    // This runtime lives on, yet the idle connection is cut, not left open.
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buffer))
        .await
        .expect("the idle connection is cut");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_crash_cuts_requests_in_flight_on_the_callers_runtime() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = TargetConfig::default()
        .with_fault(Fault::CrashAfter(1))
        .with_fault("stall=30s@0s".parse().unwrap());
    let server = tokio::spawn(convoy::target::serve(listener, config));
    let health = format!("http://{addr}/health");
    let client = fresh_client();
    // Request 1 hangs in the stall; request 2 kills the target once the
    // crash gives up waiting for request 1's answer.
    let stalled = tokio::spawn(client.get(&health).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(client.get(&health).send().await.is_err());
    let stalled = tokio::time::timeout(Duration::from_secs(20), stalled)
        .await
        .expect("the stalled request ends with the crash, not with the stall")
        .unwrap();
    assert!(stalled.is_err(), "{stalled:?}");
    assert!(server.await.unwrap().is_err());
}

/// `convoy run --target URL` with the built-in journeys at the light profile
/// (50 iterations, far more than 100 requests), writing its report to `out`.
fn convoy_run(
    target: &convoy::target::RunningTarget,
    out: &std::path::Path,
) -> (Option<i32>, serde_json::Value) {
    let output = command()
        .args(["run", "--quiet", "--target", &target.base_url(), "--out"])
        .arg(out)
        .output()
        .expect("convoy runs");
    let text = std::fs::read_to_string(out.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), serde_json::from_str(&text).unwrap())
}

#[test]
fn a_crash_during_a_fixed_iteration_run_is_target_down_not_failed_checks() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = start(&[]);
    let (code, report) = convoy_run(&healthy, &dir.path().join("off"));
    // The control: a healthy target completes. Its latency gates are not
    // what this test is about (on a machine busy with other tests an event
    // gate of 100 ms can fail, exit 1); any other exit would be.
    assert!(matches!(code, Some(0) | Some(1)), "{code:?}: {report:#}");
    if code == Some(1) {
        let failed: Vec<&serde_json::Value> = report["gates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["passed"] == false)
            .collect();
        assert!(
            failed
                .iter()
                .all(|g| g["metric"].as_str().is_some_and(|m| m.starts_with('p'))),
            "only latency gates may fail the healthy control: {failed:#?}"
        );
    }
    assert_eq!(report["stop_reason"], "completed");
    assert_eq!(report["partial"], false);

    let crashing = start(&["crash-after=100"]);
    let (code, report) = convoy_run(&crashing, &dir.path().join("on"));
    assert!(crashing.has_crashed());
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["stop_reason"], "target_down");
    assert_eq!(report["partial"], true);
    // Refused replays and probes are errors, not violations.
    for (name, count) in report["violations"].as_object().unwrap() {
        assert_eq!(count, 0, "{name}");
    }
}
