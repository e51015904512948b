//! `convoy init --har`: a session recorded from the reference target
//! through its own API (an admin logs in, creates an order, reads it,
//! renames it, finds it by its idempotency key; a driver logs in and
//! accepts it), with the static assets, preflight and third-party calls a
//! browser would add, is drafted into a journey that `convoy smoke` passes
//! against a fresh target, and against one whose data differs, with no
//! recorded id, token or password written anywhere. A Chrome-style export
//! with its private fields parses; a broken file is named, not a panic.
//!
//! The recorder below is the test's own: it drives the target with a plain
//! HTTP client and writes HAR 1.2 from what it sent and received. The
//! fixture `tests/fixtures/har/reference-session.har` is its output
//! (`CONVOY_WRITE_HAR_FIXTURE=1 cargo nextest run --test init_har`
//! rewrites it).

mod cli_support;
#[path = "target_support/mod.rs"]
mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

use cli_support::{
    assert_init_refuses, convoy_with_env, init_args, smoke_args, smoke_where_nothing_listens, text,
};
use convoy::target::RunningTarget;
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = support::ACME_ADMIN;
const DRIVER: &str = support::ACME_DRIVER;
const PASSWORD: &str = convoy::target::SEED_PASSWORD;
/// The user's pause between two actions, as the recording keeps it.
const PAUSE_MS: u64 = 150;

/// Writes HAR 1.2 entries from the exchanges it performs.
struct Recorder {
    client: reqwest::Client,
    base: String,
    /// The recording's clock: real durations, with the user's pauses added.
    clock: SystemTime,
    entries: Vec<Value>,
}

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn pairs(h: &[(String, String)]) -> Value {
    Value::Array(
        h.iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect(),
    )
}

impl Recorder {
    fn new(target: &RunningTarget) -> Recorder {
        Recorder {
            client: support::client(),
            base: target.base_url(),
            clock: SystemTime::now(),
            entries: Vec::new(),
        }
    }

    /// Sends a request to the target and records it; returns the answer's JSON.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut sent: Vec<(String, String)> = vec![
            (
                "Host".into(),
                self.base.trim_start_matches("http://").into(),
            ),
            (
                "User-Agent".into(),
                "Mozilla/5.0 (X11; Linux x86_64) convoy-test".into(),
            ),
            ("Accept".into(), "application/json, text/plain, */*".into()),
            ("Accept-Encoding".into(), "gzip, deflate".into()),
            ("Origin".into(), self.base.clone()),
        ];
        sent.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let mut rb = self.client.request(method.clone(), &url);
        for (n, v) in &sent {
            if n != "Host" && n != "Accept-Encoding" {
                rb = rb.header(n, v);
            }
        }
        let text = body.map(Value::to_string);
        if let Some(t) = &text {
            sent.push(("Content-Type".into(), "application/json".into()));
            rb = rb
                .header("content-type", "application/json")
                .body(t.clone());
        }
        let started = self.clock;
        let t0 = Instant::now();
        let reply = support::send(rb).await;
        let took = t0.elapsed();
        self.clock += took + Duration::from_millis(PAUSE_MS);
        let resp_headers: Vec<(String, String)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let query: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut request = json!({
            "method": method.as_str(),
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": pairs(&sent),
            "queryString": pairs(&query),
            "headersSize": -1,
            "bodySize": text.as_ref().map_or(0, |t| t.len() as i64),
        });
        if let Some(t) = &text {
            request["postData"] = json!({ "mimeType": "application/json", "text": t });
        }
        let mime = reply.header("content-type").unwrap_or("").to_string();
        self.entries.push(json!({
            "startedDateTime": iso(started),
            "time": took.as_secs_f64() * 1000.0,
            "request": request,
            "response": {
                "status": reply.status.as_u16(),
                "statusText": reply.status.canonical_reason().unwrap_or(""),
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": pairs(&resp_headers),
                "content": { "size": reply.text.len(), "mimeType": mime, "text": reply.text },
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": reply.text.len(),
            },
            "cache": {},
            "timings": { "send": 0, "wait": took.as_secs_f64() * 1000.0, "receive": 0 },
            "_resourceType": "fetch",
        }));
        (reply.status.as_u16(), reply.json)
    }

    /// Records what a browser fetched besides the API, without sending it:
    /// the page's assets, a CORS preflight, a font and an analytics beacon
    /// on other hosts. They must all be dropped.
    fn browser_noise(&mut self, url: &str, method: &str, mime: &str, kind: &str, body: &str) {
        self.entries.push(json!({
            "startedDateTime": iso(self.clock),
            "time": 1.5,
            "request": { "method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                "headers": [{ "name": "Accept", "value": "*/*" }], "queryString": [], "headersSize": -1, "bodySize": 0 },
            "response": { "status": if method == "OPTIONS" { 204 } else { 200 }, "statusText": "OK", "httpVersion": "HTTP/1.1",
                "cookies": [], "headers": [{ "name": "Content-Type", "value": mime }],
                "content": { "size": body.len(), "mimeType": mime, "text": body }, "redirectURL": "", "headersSize": -1, "bodySize": body.len() },
            "cache": {}, "timings": { "send": 0, "wait": 1.5, "receive": 0 },
            "_resourceType": kind,
        }));
    }

    fn har(&self) -> Value {
        json!({ "log": {
            "version": "1.2",
            "creator": { "name": "convoy test recorder", "version": "1" },
            "pages": [],
            "entries": self.entries,
        }})
    }
}

/// What the recording holds that must never be written as recorded.
struct Recorded {
    har: Value,
    /// Order ids, idempotency keys, tokens.
    made_up: Vec<String>,
}

/// Records the session against `target`.
fn record(target: &RunningTarget) -> Recorded {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = Recorder::new(target);
        let base = r.base.clone();
        // What a browser fetches before anyone logs in.
        for (url, mime, kind, body) in [
            (format!("{base}/"), "text/html", "document", "<html></html>"),
            (
                format!("{base}/static/app.js"),
                "text/javascript",
                "script",
                "let a;",
            ),
            (
                format!("{base}/static/app.css"),
                "text/css",
                "stylesheet",
                "a{}",
            ),
            (
                "https://fonts.example.net/inter.woff2".into(),
                "font/woff2",
                "font",
                "",
            ),
        ] {
            r.browser_noise(&url, "GET", mime, kind, body);
        }
        let (st, login) = r
            .send(
                Method::POST,
                "/api/auth/login",
                &[],
                Some(&json!({ "email": ADMIN, "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, 200, "{login}");
        let admin_token = login["token"].as_str().unwrap().to_string();
        let bearer = format!("Bearer {admin_token}");
        r.browser_noise(
            &format!("{base}/api/orders"),
            "OPTIONS",
            "",
            "preflight",
            "",
        );
        r.browser_noise(
            "https://analytics.example.org/collect",
            "POST",
            "application/json",
            "fetch",
            "{\"ok\":true,\"session\":\"a1b2c3d4e5f6\"}",
        );
        let key = uuid::Uuid::new_v4().to_string();
        let order = support::order_body("PO-HAR-1");
        let (st, created) = r
            .send(
                Method::POST,
                "/api/orders",
                &[("Authorization", &bearer), ("Idempotency-Key", &key)],
                Some(&order),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        let (st, _) = r
            .send(
                Method::GET,
                &format!("/api/orders/{id}"),
                &[("Authorization", &bearer)],
                None,
            )
            .await;
        assert_eq!(st, 200);
        let (st, patched) = r
            .send(
                Method::PATCH,
                &format!("/api/orders/{id}"),
                &[("Authorization", &bearer)],
                Some(&json!({ "reference": "PO-HAR-1-renamed" })),
            )
            .await;
        assert_eq!(st, 200, "{patched}");
        let (st, list) = r
            .send(
                Method::GET,
                &format!("/api/orders?idempotency_key={key}&limit=10"),
                &[("Authorization", &bearer)],
                None,
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(list["count"], 1, "{list}");
        let (st, login2) = r
            .send(
                Method::POST,
                "/api/auth/login",
                &[],
                Some(&json!({ "email": DRIVER, "password": PASSWORD })),
            )
            .await;
        assert_eq!(st, 200);
        let driver_token = login2["token"].as_str().unwrap().to_string();
        let (st, accepted) = r
            .send(
                Method::POST,
                &format!("/api/orders/{id}/accept"),
                &[("Authorization", &format!("Bearer {driver_token}"))],
                None,
            )
            .await;
        assert_eq!(st, 200, "{accepted}");
        assert_eq!(accepted["status"], "accepted");
        let (st, _) = r
            .send(
                Method::GET,
                &format!("/api/orders/{id}"),
                &[("Authorization", &bearer)],
                None,
            )
            .await;
        assert_eq!(st, 200);
        Recorded {
            har: r.har(),
            made_up: vec![id, key, admin_token, driver_token],
        }
    })
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/har")
        .join(name)
}

/// `convoy ARGS` in `cwd` with the recorded users' credentials, as the
/// drafted suites read them.
fn convoy(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    convoy_with_env(
        args,
        cwd,
        [
            ("API_USERNAME", ADMIN),
            ("API_PASSWORD", PASSWORD),
            ("API_USER2_USERNAME", DRIVER),
            ("API_USER2_PASSWORD", PASSWORD),
        ],
    )
}

fn init(har: &Path, out: &Path, cwd: &Path) {
    let o = convoy(&init_args("--har", har, out), cwd);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// `convoy init --har` of `har` into `dir/suite`, checked against what
/// the recording holds; the suite's folder.
fn draft_checked(har_file: &Path, har: &Value, dir: &Path) -> PathBuf {
    let suite = dir.join("suite");
    init(har_file, &suite, dir);
    check_draft(&suite, har);
    suite
}

/// Every file of `dir`, concatenated.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        s.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    s
}

fn smoke(suite: &Path, target: &RunningTarget, dir: &Path) -> Output {
    convoy(
        &smoke_args(suite, &target.base_url(), &dir.join("reports")),
        dir,
    )
}

/// The values of the recording that were made up by the server or the
/// client, and the credentials: read back from the HAR itself.
fn recorded_values(har: &Value) -> (Vec<String>, Vec<String>) {
    let mut made_up = Vec::new();
    let mut secrets = vec![PASSWORD.to_string()];
    for e in har["log"]["entries"].as_array().unwrap() {
        let body: Value = e["response"]["content"]["text"]
            .as_str()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null);
        for p in ["/id", "/orders/0/id"] {
            if let Some(id) = body.pointer(p).and_then(Value::as_str) {
                made_up.push(id.to_string());
            }
        }
        if let Some(t) = body.pointer("/token").and_then(Value::as_str) {
            secrets.push(t.to_string());
        }
        for h in e["request"]["headers"].as_array().unwrap() {
            if h["name"] == "Idempotency-Key" {
                made_up.push(h["value"].as_str().unwrap().to_string());
            }
        }
    }
    made_up.sort();
    made_up.dedup();
    (made_up, secrets)
}

fn check_draft(suite: &Path, har: &Value) {
    let (made_up, secrets) = recorded_values(har);
    assert!(made_up.len() >= 2, "the recording has ids: {made_up:?}");
    assert_eq!(secrets.len(), 3, "a password and two tokens: {secrets:?}");
    let all = all_text(suite);
    for v in made_up
        .iter()
        .chain(&secrets)
        .chain([&ADMIN.to_string(), &DRIVER.to_string()])
    {
        assert!(
            !all.contains(v.as_str()),
            "{v} is written as recorded:\n{all}"
        );
    }
    let journey = std::fs::read_to_string(suite.join("reference-session.toml")).unwrap();
    for expected in [
        "capture = { order_id = \"/id\" }",
        "path = \"/api/orders/{{ order_id }}\"",
        "path = \"/api/orders/{{ order_id }}/accept\"",
        "let = { idempotency_key = \"{{ uuid }}\" }",
        "Idempotency-Key = \"{{ idempotency_key }}\"",
        "query = { idempotency_key = \"{{ idempotency_key }}\", limit = \"10\" }",
        "as = \"user2\"",
        "status = 201",
        "think = \"",
    ] {
        assert!(journey.contains(expected), "no `{expected}` in:\n{journey}");
    }
    for dropped in [
        "app.js",
        "app.css",
        "analytics",
        "fonts.example",
        "OPTIONS",
        "/api/auth/login",
    ] {
        assert!(
            !journey.contains(dropped),
            "{dropped} is in the journey:\n{journey}"
        );
    }
    let suite_toml = std::fs::read_to_string(suite.join("suite.toml")).unwrap();
    for expected in [
        "path = \"/api/auth/login\"",
        "body = { email = \"{{ username }}\", password = \"{{ password }}\" }",
        "token = \"/token\"",
        "[identities.user]",
        "[identities.user2]",
        "{{ env.API_USER2_PASSWORD }}",
    ] {
        assert!(
            suite_toml.contains(expected),
            "no `{expected}` in:\n{suite_toml}"
        );
    }
    let readme = std::fs::read_to_string(suite.join("README.md")).unwrap();
    for expected in [
        "analytics.example.org",
        "fonts.example.net",
        "CORS preflight",
        "static asset",
        "`order_id`",
    ] {
        assert!(readme.contains(expected), "no `{expected}` in:\n{readme}");
    }
}

/// The fixture, recorded from the reference target, replays green on a
/// fresh target, and on one whose data differs: more orders, other ids.
#[test]
fn recorded_session_replays_against_fresh_and_shifted_targets() {
    let path = fixture("reference-session.har");
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let suite = draft_checked(&path, &har, dir.path());

    let fresh = support::start(&[]);
    let o = smoke(&suite, &fresh, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let shifted = support::start(&[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let admin = support::Session::login(&shifted, ADMIN).await;
        for n in 0..3 {
            admin.create_order(&format!("PO-OTHER-{n}")).await;
        }
    });
    let o = smoke(&suite, &shifted, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains(PASSWORD), "the password reached the output");
}

/// The recorder's output today drafts the same way (so the fixture is what
/// the recorder makes), and a journey whose ids were replayed literally
/// would fail: the recorded order is not on another target.
#[test]
fn a_fresh_recording_drafts_a_passing_journey() {
    let recorded_on = support::start(&[]);
    let rec = record(&recorded_on);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reference-session.har");
    let text_har = serde_json::to_string_pretty(&rec.har).unwrap();
    std::fs::write(&path, &text_har).unwrap();
    if std::env::var_os("CONVOY_WRITE_HAR_FIXTURE").is_some() {
        std::fs::write(fixture("reference-session.har"), &text_har).unwrap();
    }
    let suite = draft_checked(&path, &rec.har, dir.path());
    let all = all_text(&suite);
    for v in &rec.made_up {
        assert!(!all.contains(v.as_str()), "{v} is written as recorded");
    }
    let other = support::start(&[]);
    let o = smoke(&suite, &other, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // The same journey with the recorded id put back fails on another
    // target: what the correlation prevents is a real failure.
    let journey = suite.join("reference-session.toml");
    let literal = std::fs::read_to_string(&journey).unwrap().replace(
        "/api/orders/{{ order_id }}",
        &format!("/api/orders/{}", rec.made_up[0]),
    );
    std::fs::write(&journey, literal).unwrap();
    let o = smoke(&suite, &other, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// A Chrome export with its private fields (`_initiator`, `_priority`,
/// `_resourceType`, `_transferSize`), pseudo-headers, a base64 body, a
/// form posted as `params`, comments, and members left out, parses; its
/// static bearer token and session cookie become `token` auth from the
/// environment and are written nowhere.
#[test]
fn chrome_export_with_odd_fields_drafts_a_suite_convoy_loads() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    init(&fixture("chrome-odd.har"), &suite, dir.path());
    let all = all_text(&suite);
    for secret in [
        "chrome-static-token-5f1d2e3c4b5a",
        "sess-9a8b7c6d5e4f3a2b1c0d",
        "shp_7Hk29QzL",
    ] {
        assert!(!all.contains(secret), "{secret} is written:\n{all}");
    }
    let suite_toml = std::fs::read_to_string(suite.join("suite.toml")).unwrap();
    assert!(suite_toml.contains("kind = \"token\""), "{suite_toml}");
    let journey = std::fs::read_to_string(suite.join("chrome-odd.toml")).unwrap();
    for expected in [
        "path = \"/v2/shipments/{{ shipment_id }}\"",
        "capture = { shipment_id = \"/data/shipmentId\" }",
        "body = \"carrier=dhl&note=",
        "x-tenant = \"north\"",
    ] {
        assert!(journey.contains(expected), "no `{expected}` in:\n{journey}");
    }
    assert!(
        !journey.contains(":authority") && !journey.contains("gtag"),
        "{journey}"
    );
    // It loads: with the token set, smoke gets as far as connecting
    // (exit 4: nothing listens) rather than refusing a file (exit 3).
    let o = smoke_where_nothing_listens(
        &suite,
        &dir.path().join("reports"),
        dir.path(),
        [("API_TOKEN", "not-a-real-token-1234")],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

#[test]
fn broken_recordings_are_named_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "truncated.har",
            "{\"log\": {\"entries\": [",
            "truncated.har:1:",
        ),
        ("not-har.har", "{\"entries\": []}", "no `log` object"),
        (
            "no-url.har",
            r#"{"log":{"entries":[{"request":{"method":"GET","url":"http://h/a"},"response":{"status":200}},{"request":{"method":"GET"}}]}}"#,
            "#/log/entries/1/request/url: entry 1: no url",
        ),
        (
            "assets-only.har",
            r#"{"log":{"entries":[{"request":{"method":"GET","url":"http://h/app.js"},"response":{"status":200,"content":{"mimeType":"text/javascript"}}}]}}"#,
            "no API call",
        ),
    ];
    assert_init_refuses("--har", &cases, dir.path(), convoy);
    let o = convoy(
        &["init", "--har", "x.har", "--openapi", "y.json"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// A HAR of `entries`: `(method, url, request headers, JSON body,
/// response headers, response body)`.
fn small_har(entries: &[(&str, &str, Value, &str, Value, &str)]) -> String {
    let list: Vec<Value> = entries
        .iter()
        .map(|(m, u, rh, body, sh, resp)| {
            let mut req = json!({ "method": m, "url": u, "headers": rh });
            if !body.is_empty() {
                req["postData"] = json!({ "mimeType": "application/json", "text": body });
            }
            json!({
                "startedDateTime": "2026-12-01T08:00:00.000Z",
                "time": 5,
                "request": req,
                "response": { "status": 200, "headers": sh,
                    "content": { "mimeType": "application/json", "text": resp } },
            })
        })
        .collect();
    json!({ "log": { "version": "1.2", "creator": { "name": "t", "version": "1" }, "entries": list } })
        .to_string()
}

/// Every kind of credential a recording can carry drafts a suite convoy
/// loads (exit 4 against a port nothing listens on, not 3), its kind as
/// expected, with no recorded secret written.
#[test]
fn every_credential_kind_drafts_a_suite_convoy_loads() {
    let h = |n: &str, v: &str| json!([{ "name": n, "value": v }]);
    let cases = [
        (
            "cookie-login",
            small_har(&[
                (
                    "POST",
                    "http://127.0.0.1:9/session",
                    json!([]),
                    r#"{"login":"ann","secret":"hunter2-long"}"#,
                    h("Set-Cookie", "sid=abc123def456ghi; Path=/; HttpOnly"),
                    "{}",
                ),
                (
                    "GET",
                    "http://127.0.0.1:9/me",
                    h("Cookie", "sid=abc123def456ghi"),
                    "",
                    json!([]),
                    "{\"ok\":1}",
                ),
            ]),
            "kind = \"cookie\"",
            ["hunter2-long", "abc123def456ghi", "ann"],
        ),
        (
            "header-token-in-query",
            small_har(&[
                (
                    "POST",
                    "http://127.0.0.1:9/auth",
                    json!([]),
                    r#"{"email":"a@b.example","password":"pw-123456"}"#,
                    h("X-Auth-Token", "tkn-0987654321"),
                    "{}",
                ),
                (
                    "GET",
                    "http://127.0.0.1:9/orders?access_token=tkn-0987654321",
                    json!([]),
                    "",
                    json!([]),
                    "{\"ok\":1}",
                ),
            ]),
            "query = \"access_token\"",
            ["pw-123456", "tkn-0987654321", "a@b.example"],
        ),
        (
            "api-key",
            small_har(&[(
                "GET",
                "http://127.0.0.1:9/a",
                h("X-Api-Key", "k-1234567890"),
                "",
                json!([]),
                "{\"ok\":1}",
            )]),
            "header = \"X-Api-Key\"",
            ["k-1234567890", "k-1234567890", "k-1234567890"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, har, expected, secrets) in cases {
        let path = dir.path().join(format!("{name}.har"));
        std::fs::write(&path, har).unwrap();
        let suite = dir.path().join(name);
        init(&path, &suite, dir.path());
        let all = all_text(&suite);
        assert!(all.contains(expected), "{name}: no `{expected}` in:\n{all}");
        for s in secrets {
            assert!(!all.contains(s), "{name}: {s} is written:\n{all}");
        }
        let o = smoke_where_nothing_listens(
            &suite,
            &dir.path().join(format!("reports-{name}")),
            dir.path(),
            [
                ("API_USERNAME", "someone"),
                ("API_PASSWORD", "not-a-real-secret-1234"),
                ("API_TOKEN", "not-a-real-token-1234"),
            ],
        );
        assert_eq!(o.status.code(), Some(4), "{name}: {}\n{all}", text(&o));
    }
}

/// Replaces the `n`-th node of `v` (depth first) with `with`.
fn replace_nth(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, n, with)),
        Value::Object(m) => m.values_mut().any(|x| replace_nth(x, n, with)),
        _ => false,
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Mangled recordings (cut short anywhere, any member replaced by a value
/// of another type) are drafted or refused, never a panic.
#[test]
fn mangled_recordings_never_panic() {
    use convoy::init::har::{Options, draft, model::Har};
    let text = std::fs::read_to_string(fixture("chrome-odd.har")).unwrap()
        + &std::fs::read_to_string(fixture("reference-session.har")).unwrap();
    let (chrome, reference) = text.split_at(text.find("\n{").unwrap() + 1);
    let opts = Options {
        env_prefix: "API".into(),
        source_name: "m.har".into(),
        host: None,
    };
    let mut rng = fastrand::Rng::with_seed(17);
    let odd = [
        json!(null),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!([{ "name": 1 }]),
        json!("%zz/../\u{0}"),
        json!(u64::MAX),
    ];
    let (mut drafted, mut refused) = (0, 0);
    for base in [chrome, reference] {
        let doc: Value = serde_json::from_str(base).unwrap();
        let nodes = count_nodes(&doc);
        for round in 0..400 {
            let mangled = if round % 4 == 0 {
                let mut cut = rng.usize(..base.len());
                while !base.is_char_boundary(cut) {
                    cut -= 1;
                }
                base[..cut].to_string()
            } else {
                let mut d = doc.clone();
                for _ in 0..=round % 3 {
                    let mut n = rng.usize(..nodes);
                    replace_nth(&mut d, &mut n, &odd[rng.usize(..odd.len())]);
                }
                d.to_string()
            };
            match Har::parse("m.har", &mangled).and_then(|h| draft(&h, &opts)) {
                Ok(_) => drafted += 1,
                Err(e) => {
                    assert!(e.to_string().starts_with("m.har"), "{e}");
                    refused += 1;
                }
            }
        }
    }
    assert!(
        drafted > 100 && refused > 100,
        "{drafted} drafted, {refused} refused"
    );
}
