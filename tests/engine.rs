//! The engine against real servers on ephemeral loopback ports: the
//! reference target (with faults) and wiremock for exact request matching.

use std::time::Duration;

use bytes::Bytes;
use convoy::bench::{self, BenchPlan, RequestSpec};
use convoy::engine::{EngineOptions, RunControl, RunResult};
use convoy::metrics::ErrorCause;
use convoy::plan::{ClosedModel, HttpOptions, HttpVersion, LoadModel, OpenModel, Ramp};
use convoy::report::{self, Report, RunMeta};
use convoy::target::{self, Fault, TargetConfig};

fn closed(
    users: u32,
    total: Option<u64>,
    per_user: Option<u64>,
    duration: Option<Duration>,
) -> LoadModel {
    LoadModel::Closed(ClosedModel {
        users: Ramp::constant(users as f64, Duration::ZERO),
        iterations_per_user: per_user,
        total_iterations: total,
        duration,
    })
}

fn open(rate: f64, secs: f64, in_flight: u32, max_lag: Duration) -> LoadModel {
    LoadModel::Open(OpenModel {
        rate: Ramp::constant(rate, Duration::from_secs_f64(secs)),
        max_in_flight: in_flight,
        max_lag,
        total_iterations: None,
    })
}

fn plan(url: &str, model: LoadModel) -> BenchPlan {
    BenchPlan {
        request: RequestSpec {
            method: http::Method::GET,
            url: url.parse().unwrap(),
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
        },
        model,
        http: HttpOptions::default(),
        engine: EngineOptions {
            workers: 2,
            graceful_stop: Duration::from_secs(10),
            ..EngineOptions::default()
        },
    }
}

fn run(plan: &BenchPlan) -> RunResult {
    bench::run(plan, &RunControl::new(), |_| {}).expect("the run starts")
}

fn health(t: &target::RunningTarget) -> String {
    format!("{}/health", t.base_url())
}

#[test]
fn closed_model_sends_exactly_the_requested_count() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let r = run(&plan(&health(&t), closed(8, Some(500), None, None)));
    let o = r.overall();
    assert_eq!(o.requests, 500);
    assert_eq!(o.status_counts.get(&200), Some(&500));
    assert_eq!(o.errors, 0);
    assert_eq!(r.iterations, 500);
    assert_eq!(o.latency.count(), 500);
    assert!(!r.is_partial());
    assert_eq!(
        t.requests_seen(),
        500,
        "the target saw exactly what we counted"
    );
}

#[test]
fn closed_model_runs_iterations_per_user() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let r = run(&plan(&health(&t), closed(5, None, Some(10), None)));
    assert_eq!(r.overall().requests, 50);
    assert_eq!(r.iterations, 50);
}

#[test]
fn closed_model_with_duration_stops_on_time_and_keeps_connections_alive() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let r = run(&plan(
        &health(&t),
        closed(4, None, None, Some(Duration::from_millis(600))),
    ));
    assert!(r.overall().requests > 4, "{}", r.overall().requests);
    assert!(r.duration_secs >= 0.6, "{}", r.duration_secs);
    assert!(!r.is_partial());
}

#[test]
fn open_model_sends_every_scheduled_arrival() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    // 200/s for 2 s is 400 arrivals; with a generous lag bound none drops.
    let r = run(&plan(
        &health(&t),
        open(200.0, 2.0, 20, Duration::from_secs(60)),
    ));
    assert_eq!(r.overall().requests + r.dropped + r.interrupted, 400);
    assert_eq!(r.overall().requests, 400);
    assert_eq!(r.dropped, 0);
    // The schedule, not the target, sets the pace: the run lasts the plan.
    assert!(r.duration_secs >= 1.99, "{}", r.duration_secs);
}

#[test]
fn open_model_counts_late_arrivals_as_dropped() {
    // One slot, a target that takes 50 ms, 200 arrivals per second: most
    // arrivals cannot start within 10 ms of their time.
    let t =
        target::spawn(TargetConfig::default().with_fault("latency=50ms".parse::<Fault>().unwrap()))
            .unwrap();
    let r = run(&plan(
        &health(&t),
        open(200.0, 1.0, 1, Duration::from_millis(10)),
    ));
    assert_eq!(r.overall().requests + r.dropped + r.interrupted, 200);
    assert!(r.dropped > 100, "dropped {}", r.dropped);
    assert!(r.overall().requests >= 1);
}

#[test]
fn open_model_latency_includes_the_stall_service_time_does_not() {
    // The server stalls for 1 s starting 1 s in. In the open model the
    // arrivals scheduled during the stall wait for a free slot; their
    // latency counts from their scheduled time (wrk2-style), while their
    // service time, once sent, is short.
    let t =
        target::spawn(TargetConfig::default().with_fault("stall=1s@1s".parse::<Fault>().unwrap()))
            .unwrap();
    let r = run(&plan(
        &health(&t),
        open(100.0, 4.0, 4, Duration::from_secs(30)),
    ));
    let o = r.overall();
    assert_eq!(o.requests, 400);
    let latency_p99 = o.latency.quantile_micros(0.99);
    let service_p90 = o.service.quantile_micros(0.90);
    assert!(
        latency_p99 >= 500_000,
        "latency p99 {latency_p99} µs should show the 1 s stall"
    );
    assert!(
        service_p90 < 200_000,
        "service p90 {service_p90} µs should stay low"
    );
    // Only the few requests in flight during the stall took long to serve.
    let slow_served = o.service.inner().count_between(500_000, u64::MAX);
    let slow_latency = o.latency.inner().count_between(500_000, u64::MAX);
    assert!(
        slow_served <= 8,
        "{slow_served} requests were slow to serve"
    );
    assert!(
        slow_latency >= 20,
        "only {slow_latency} requests saw the stall"
    );
}

#[test]
fn closed_model_latency_equals_service_time() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let r = run(&plan(&health(&t), closed(2, Some(100), None, None)));
    let o = r.overall();
    // Both are measured around the same request; the closed model has no
    // queueing, so they differ only by the time to build the request.
    let diff = o.latency.mean_micros() - o.service.mean_micros();
    assert!(
        (0.0..1000.0).contains(&diff),
        "latency - service = {diff} µs"
    );
}

#[test]
fn refused_connections_are_counted_not_fatal() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(&plan(
        &format!("http://127.0.0.1:{port}/"),
        closed(2, Some(10), None, None),
    ));
    let o = r.overall();
    assert_eq!(o.requests, 10);
    assert_eq!(o.errors, 10);
    assert_eq!(
        o.error_counts.get(&ErrorCause::Refused),
        Some(&10),
        "{:?}",
        o.error_counts
    );
    assert!(o.status_counts.is_empty());
}

#[test]
fn timeouts_are_counted_as_timeouts() {
    let t =
        target::spawn(TargetConfig::default().with_fault("latency=2s".parse::<Fault>().unwrap()))
            .unwrap();
    let mut p = plan(&health(&t), closed(2, Some(4), None, None));
    p.http.timeout = Duration::from_millis(100);
    let o = run(&p).overall();
    assert_eq!(o.requests, 4);
    assert_eq!(
        o.error_counts.get(&ErrorCause::Timeout),
        Some(&4),
        "{:?}",
        o.error_counts
    );
}

#[test]
fn truncated_bodies_are_body_errors() {
    // The fault applies to API routes: log in, whose answer gets cut short.
    let t = target::spawn(TargetConfig::default().with_fault(Fault::TruncatedBody)).unwrap();
    let mut p = plan(
        &format!("{}/api/auth/login", t.base_url()),
        closed(1, Some(5), None, None),
    );
    p.request.method = http::Method::POST;
    p.request
        .headers
        .insert("content-type", "application/json".parse().unwrap());
    let login = format!(
        r#"{{"email":"admin@acme.test","password":"{}"}}"#,
        target::SEED_PASSWORD
    );
    p.request.body = Bytes::from(login);
    let o = run(&p).overall();
    assert_eq!(o.requests, 5);
    assert_eq!(
        o.error_counts.get(&ErrorCause::Body),
        Some(&5),
        "{:?} {:?}",
        o.error_counts,
        o.status_counts
    );
}

#[test]
fn a_target_that_dies_mid_run_keeps_earlier_measurements() {
    let t = target::spawn(TargetConfig::default().with_fault(Fault::CrashAfter(50))).unwrap();
    let o = run(&plan(&health(&t), closed(1, Some(80), None, None))).overall();
    assert_eq!(o.requests, 80);
    assert_eq!(o.status_counts.get(&200), Some(&50));
    assert_eq!(o.errors, 30);
    let failures: u64 = o.error_counts.values().sum();
    assert_eq!(failures, 30);
}

#[test]
fn server_errors_count_as_errors_with_their_status() {
    let t = target::spawn(TargetConfig::default().with_fault(Fault::ErrorRate(1.0))).unwrap();
    let o = run(&plan(&health(&t), closed(2, Some(20), None, None))).overall();
    assert_eq!(o.errors, 20);
    let fivexx: u64 = o
        .status_counts
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(fivexx, 20);
    assert!(o.error_counts.is_empty());
}

#[test]
fn stop_ends_the_run_early_and_marks_it_partial() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let p = plan(
        &health(&t),
        closed(2, None, None, Some(Duration::from_secs(60))),
    );
    let control = RunControl::new();
    let stopper = control.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stopper.stop();
    });
    let r = bench::run(&p, &control, |_| {}).unwrap();
    assert!(r.is_partial());
    assert!(r.duration_secs < 30.0, "{}", r.duration_secs);
    assert!(r.overall().requests > 0);
}

#[test]
fn staged_users_ramp_up_and_down() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let model = LoadModel::Closed(ClosedModel {
        users: Ramp {
            start: 0.0,
            stages: convoy::plan::parse_stages("6,400ms;6,400ms;0,400ms", false).unwrap(),
        },
        iterations_per_user: None,
        total_iterations: None,
        duration: None,
    });
    let r = run(&plan(&health(&t), model));
    assert!(!r.is_partial());
    assert!(r.overall().requests > 0);
    let peak = r
        .timeline
        .samples()
        .iter()
        .map(|s| s.active_users)
        .max()
        .unwrap_or(0);
    assert!(peak <= 6, "peak {peak}");
}

#[test]
fn http2_prior_knowledge_works() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let mut p = plan(&health(&t), closed(3, Some(30), None, None));
    p.http.version = HttpVersion::Http2;
    let o = run(&p).overall();
    assert_eq!(o.status_counts.get(&200), Some(&30), "{:?}", o.error_counts);
}

#[test]
fn method_headers_and_body_are_sent_as_given() {
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/orders"))
            .and(header("x-tenant", "acme"))
            .and(body_string("{\"weight_kg\":1}"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&server)
            .await;
        server
    });
    let mut p = plan(
        &format!("{}/api/orders", server.uri()),
        closed(2, Some(20), None, None),
    );
    p.request.method = http::Method::POST;
    p.request
        .headers
        .insert("x-tenant", "acme".parse().unwrap());
    p.request.body = Bytes::from_static(b"{\"weight_kg\":1}");
    let o = run(&p).overall();
    assert_eq!(
        o.status_counts.get(&201),
        Some(&20),
        "{:?}",
        o.status_counts
    );
    drop(server);
}

#[test]
fn a_report_survives_json_and_merges_exactly() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let a = run(&plan(&health(&t), closed(2, Some(120), None, None)));
    let b = run(&plan(&health(&t), closed(3, Some(80), None, None)));
    let meta = || RunMeta::new("bench", "test");
    let ra = Report::new(&a, meta());
    let text = report::json::render(&ra);
    let back = report::json::parse(&text).unwrap();
    assert_eq!(back.overall, ra.overall);
    assert_eq!(back.steps, ra.steps);
    assert_eq!(back.to_result().overall(), a.overall());

    // Merging the two runs' histograms equals recording the union.
    let mut merged = a.overall();
    merged.merge(&b.overall());
    assert_eq!(merged.requests, 200);
    let mut union = convoy::metrics::LatencyHistogram::new();
    for h in [&a.overall().latency, &b.overall().latency] {
        for v in h.inner().iter_recorded() {
            for _ in 0..v.count_at_value() {
                union.record_micros(v.value_iterated_to());
            }
        }
    }
    assert_eq!(merged.latency, union);
}

#[test]
fn live_totals_count_each_request_once() {
    // Statuses come every 250 ms, timeline windows last a second: a
    // request must be in the live totals once, whichever tick saw it.
    let t = target::spawn(TargetConfig::default()).unwrap();
    let p = plan(
        &health(&t),
        closed(4, None, None, Some(Duration::from_millis(1600))),
    );
    let mut statuses = Vec::new();
    let r = bench::run(&p, &RunControl::new(), |s| {
        statuses.push((s.requests, s.errors, s.window_requests));
        // From the first status on, a rate once anything was sent (the
        // first whole second is not needed for it).
        assert!(
            s.requests == 0 || s.current_rps > 0.0,
            "{} requests at {:?} but no rate",
            s.requests,
            s.elapsed
        );
    })
    .unwrap();
    assert!(statuses.len() >= 3, "{} statuses", statuses.len());
    let mut running = 0;
    for (i, (requests, errors, window)) in statuses.iter().enumerate() {
        running += window;
        assert_eq!(*requests, running, "status {i} of {statuses:?}");
        assert_eq!(*errors, 0);
    }
    let o = r.overall();
    assert_eq!(statuses.last().unwrap().0, o.requests);
    assert_eq!(running, o.requests, "every window together is the run");
    // The target saw every request counted, and perhaps some of those cut
    // off in flight when the time was up.
    let seen = t.requests_seen();
    assert!(
        (o.requests..=o.requests + r.interrupted).contains(&seen),
        "{seen} seen, {} answered, {} cut off",
        o.requests,
        r.interrupted
    );
}

#[test]
fn open_model_counts_arrivals_still_waiting_at_the_end_as_dropped() {
    // One slot, a target that takes 200 ms and 100 arrivals in 1 s with
    // 500 ms of allowed lag: the slot is always busy, and when the run ends
    // (1.5 s) the arrivals of the last ~100 ms are still waiting for it.
    // They never start; they must be counted, not lost.
    let t = target::spawn(
        TargetConfig::default().with_fault("latency=200ms".parse::<Fault>().unwrap()),
    )
    .unwrap();
    let mut p = plan(&health(&t), open(100.0, 1.0, 1, Duration::from_millis(500)));
    p.engine.graceful_stop = Duration::ZERO;
    let r = run(&p);
    let o = r.overall();
    assert_eq!(o.requests, r.iterations);
    assert_eq!(
        r.iterations + r.dropped + r.interrupted,
        100,
        "{} sent, {} dropped, {} cut off",
        r.iterations,
        r.dropped,
        r.interrupted
    );
    assert!(r.dropped > 50, "dropped {}", r.dropped);
    let timeline_dropped: u64 = r.timeline.samples().iter().map(|s| s.dropped).sum();
    assert_eq!(timeline_dropped, r.dropped, "the timeline has them too");
}

#[test]
fn open_model_schedules_rate_times_duration_arrivals_and_loses_none() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    for (rate, secs) in [(300.0, 1.5), (250.0, 1.0)] {
        let r = run(&plan(
            &health(&t),
            open(rate, secs, 20, Duration::from_secs(1)),
        ));
        let expected = rate * secs;
        let scheduled = (r.overall().requests + r.dropped) as f64;
        assert!(
            (scheduled - expected).abs() <= 1.0,
            "{rate}/s over {secs}s: {scheduled} arrivals"
        );
        assert_eq!(r.interrupted, 0);
        assert_eq!(r.overall().requests, r.iterations);
        assert!(!r.is_partial());
    }
}

/// A workload that sends nothing and notes which arrival each iteration
/// served: the engine's schedule, seen from inside.
struct ArrivalLog(std::sync::Mutex<Vec<convoy::engine::Arrival>>);

impl convoy::engine::Workload for ArrivalLog {
    type Worker = ();
    type User = ();

    fn steps(&self) -> Vec<convoy::engine::StepInfo> {
        vec![convoy::engine::StepInfo {
            name: "noop".into(),
            kind: convoy::engine::StepKind::Request,
        }]
    }

    fn worker(&self, _index: usize) -> Result<(), convoy::engine::EngineError> {
        Ok(())
    }

    fn user(&self, _worker: &(), _vu: u64) {}

    async fn iteration<'a>(
        &'a self,
        _worker: &'a (),
        _user: &'a mut (),
        it: convoy::engine::Iteration<'a>,
    ) {
        let arrival = it
            .arrival
            .expect("open-model iterations name their arrival");
        self.0.lock().unwrap().push(arrival);
    }
}

#[test]
fn open_model_serves_each_arrival_of_the_schedule_once_at_its_spacing() {
    let log = std::sync::Arc::new(ArrivalLog(std::sync::Mutex::new(Vec::new())));
    let (rate, secs) = (400.0, 1.0);
    let model = open(rate, secs, 8, Duration::from_secs(5));
    let options = EngineOptions {
        workers: 2,
        ..EngineOptions::default()
    };
    let r = convoy::engine::run(&model, &options, log.clone(), &RunControl::new(), |_| {}).unwrap();
    let mut served = log.0.lock().unwrap().clone();
    served.sort_by_key(|a| a.number);
    let numbers: Vec<u64> = served.iter().map(|a| a.number).collect();
    assert_eq!(
        numbers,
        (0..400).collect::<Vec<_>>(),
        "each arrival exactly once"
    );
    assert_eq!(r.iterations + r.dropped, 400);
    assert_eq!(served[0].due, Duration::ZERO);
    // Due times from the schedule, not the clock: 1/rate apart.
    for pair in served.windows(2) {
        let gap = (pair[1].due - pair[0].due).as_secs_f64();
        assert!(
            (gap - 1.0 / rate).abs() < 1e-6,
            "gap {gap} s at {:?}",
            pair[1]
        );
    }
    assert!(served.last().unwrap().due < Duration::from_secs_f64(secs));
}
