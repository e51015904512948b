//! Secrets convoy learns while it runs never come out of it (issue 14).
//!
//! A hostile target echoes everything it is sent: the request line,
//! headers and body go back in its JSON body, in its response headers and
//! base64-encoded, and the login hands out a fresh token each time. Two
//! scenarios of one run plant a login token, a cookie, an API key, a query
//! token, a secret variable and a password holding a quote and `/+=`, a
//! `passphrase` identity field, a captured value sent as `X-Auth`, and a
//! password of the other scenario's identity; checks fail on purpose so
//! failure samples and check messages are recorded. Then every artifact
//! (report.json, .md, .html, junit.xml, what `run` and `smoke` print, a
//! `/metrics` scrape, `bench`'s output and its error messages) is searched
//! for every secret in its raw, JSON-escaped, percent-encoded and base64
//! forms.

mod cli_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cli_support::{command, convoy, files_under, outputs};

const VAR_SECRET: &str = "var-S3cr/t+v=l\"ue";
const ALICE_PASSWORD: &str = "alice-Pa\"ss/+=w0rd";
const ALICE_PASSPHRASE: &str = "correct horse battery staple";
const BOB_PASSWORD: &str = "bob-Other/Scen+ario=Pw";
const COOKIE: &str = "cookie-Val-9f8e7d6c";
const API_KEY: &str = "apikey-5a6b7c8d9e";
const QUERY_TOKEN: &str = "qtoken-1b2c3d4e5f";
const BENCH_PW: &str = "bench-Url-Pw-77aa";
const BENCH_BEARER: &str = "bench-bearer-88bb99";
const BENCH_QUERY: [&str; 6] = [
    "jwt-val-1111aa",
    "auth-val-2222bb",
    "key-val-3333cc",
    "pwd-val-4444dd",
    "sig-val-5555ee",
    "code-val-6666ff",
];

/// A target that echoes each request everywhere it can and issues a fresh
/// login token (and a fresh session handle) per call; it remembers what
/// it issued.
struct Echo {
    addr: SocketAddr,
    issued: Arc<Mutex<Vec<String>>>,
}

fn echo_server() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let issued = Arc::new(Mutex::new(Vec::new()));
    let keep = issued.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let issued = keep.clone();
            std::thread::spawn(move || {
                let _ = serve(conn, &issued);
            });
        }
    });
    Echo { addr, issued }
}

fn serve(conn: TcpStream, issued: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut head = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let request_line = head.first().cloned().unwrap_or_default();
        let mut headers = Vec::new();
        let mut len = 0;
        for h in &head[1..] {
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let n = issued.lock().unwrap().len();
        let fresh = |prefix: &str| {
            let v = format!("{prefix}_{n}_{:x}", fastrand::u64(..));
            issued.lock().unwrap().push(v.clone());
            v
        };
        let answer = if path.starts_with("/login") {
            serde_json::json!({ "token": fresh("LOGINTOKEN") })
        } else if path.starts_with("/session") {
            serde_json::json!({ "handle": fresh("HANDLE") })
        } else {
            let whole = format!("{request_line}\n{}\n\n{body}", head[1..].join("\n"));
            let b64: Vec<String> = headers
                .iter()
                .flat_map(|(_, v)| {
                    let last = v.rsplit(' ').next().unwrap_or(v);
                    [b64(v), b64(last)]
                })
                .collect();
            serde_json::json!({
                "echo": whole,
                "headers": headers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "body": body,
                "b64": b64,
                "error": format!("denied: you sent {whole}"),
            })
        };
        let text = answer.to_string();
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            text.len()
        );
        for (k, v) in &headers {
            if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
                out.push_str(&format!("X-Echo-{k}: {v}\r\n"));
            }
        }
        out.push_str(&format!("X-Echo-Path: {path}\r\n\r\n{text}"));
        conn.write_all(out.as_bytes())?;
    }
}

/// Base64, written out here so the test does not trust convoy's.
fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of everything but unreserved characters, with `space`
/// for a space.
fn percent(s: &str, space: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (c as char).to_string()
            }
            b' ' => space.to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

/// The four encodings (and their variants) of `secret`.
fn encodings(secret: &str) -> Vec<(&'static str, String)> {
    let json = serde_json::to_string(secret).unwrap();
    let b = b64(secret);
    vec![
        ("raw", secret.to_string()),
        ("JSON-escaped", json[1..json.len() - 1].to_string()),
        ("percent-encoded (+)", percent(secret, "+")),
        ("percent-encoded (%20)", percent(secret, "%20")),
        ("base64", b.clone()),
        ("base64 unpadded", b.trim_end_matches('=').to_string()),
    ]
}

/// Every planted secret, with the values the target issued.
fn planted(issued: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        ("the secret variable", VAR_SECRET),
        ("alice's password", ALICE_PASSWORD),
        ("alice's passphrase", ALICE_PASSPHRASE),
        ("bob's password (another scenario)", BOB_PASSWORD),
        ("the cookie", COOKIE),
        ("the API key", API_KEY),
        ("the query token", QUERY_TOKEN),
        ("the bench URL password", BENCH_PW),
        ("the bench bearer", BENCH_BEARER),
    ]
    .iter()
    .map(|(w, s)| (w.to_string(), s.to_string()))
    .collect();
    out.extend(
        BENCH_QUERY
            .iter()
            .map(|s| ("a bench query value".to_string(), s.to_string())),
    );
    out.push((
        "alice's Basic pair".into(),
        format!("alice:{ALICE_PASSWORD}"),
    ));
    out.extend(issued.iter().map(|t| (format!("issued {t}"), t.clone())));
    out
}

/// Fails naming every secret found, in which encoding, in which artifact.
fn assert_clean(artifacts: &[(String, String)], issued: &[String]) {
    let mut leaks = Vec::new();
    for (name, text) in artifacts {
        for (what, secret) in planted(issued) {
            for (form, needle) in encodings(&secret) {
                if let Some(at) = text.find(&needle) {
                    let mut from = at.saturating_sub(60);
                    while !text.is_char_boundary(from) {
                        from -= 1;
                    }
                    let mut to = (at + needle.len() + 30).min(text.len());
                    while !text.is_char_boundary(to) {
                        to += 1;
                    }
                    leaks.push(format!("{name}: {what} ({form}): …{}…", &text[from..to]));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Scenario "alpha": alice logs in (password with a quote and `/+=`, a
/// passphrase); a handle is fetched then sent as `X-Auth`; one request
/// sends everything to the echoing target and fails its check.
fn alpha() -> String {
    format!(
        r#"name = "alpha"
secrets = ["api_secret"]

[vars]
api_secret = {var}

[auth]
path = "/login"
body = {{ user = "{{{{ user }}}}", password = "{{{{ password }}}}", passphrase = "{{{{ passphrase }}}}" }}
token = "/token"

[identities.alice]
user = "alice"
password = {alice}
passphrase = {phrase}

[[step]]
method = "POST"
path = "/session"
capture = {{ handle = "/handle" }}

[[step]]
as = "alice"
method = "POST"
path = "/echo?access_token={qt}"
query = {{ note = "{{{{ api_secret }}}}", q = "{{{{ api_secret }}}}" }}
headers = {{ Cookie = "sid={cookie}", "X-Api-Key" = "{key}", "X-Auth" = "{{{{ handle }}}}", "X-Note" = {bob} }}
json = {{ note = "{{{{ api_secret }}}}", pw = {alice}, other = {bob} }}
checks = [{{ json = "/echo", equals = "nope" }}, {{ header = "X-Echo-Authorization", equals = "nope" }}, {{ header = "X-Echo-X-Auth", equals = "nope" }}]
"#,
        var = toml_str(VAR_SECRET),
        alice = toml_str(ALICE_PASSWORD),
        phrase = toml_str(ALICE_PASSPHRASE),
        bob = toml_str(BOB_PASSWORD),
        qt = QUERY_TOKEN,
        cookie = COOKIE,
        key = API_KEY,
    )
}

/// Scenario "beta": bob logs in; the target's echo of his token fails a
/// check, and another check names his password (a check name is a
/// Prometheus label).
fn beta() -> String {
    format!(
        r#"name = "beta"

[auth]
path = "/login"
body = {{ user = "{{{{ user }}}}", password = "{{{{ password }}}}" }}
token = "/token"

[identities.bob]
user = "bob"
password = {bob}

[[step]]
as = "bob"
path = "/echo/bob"
status = 418
checks = [{{ json = "/headers/0", equals = "nope" }}, {{ json = "/body", equals = {bob} }}]
"#,
        bob = toml_str(BOB_PASSWORD),
    )
}

fn write_scenarios(dir: &Path) -> Vec<String> {
    [("alpha", alpha()), ("beta", beta())]
        .into_iter()
        .map(|(n, text)| {
            let p = dir.join(format!("{n}.toml"));
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect()
}

/// The text of the `report.json` among `files`.
fn report_json(files: &[(String, String)]) -> String {
    files
        .iter()
        .find(|(n, _)| n.ends_with("report.json"))
        .unwrap_or_else(|| panic!("no report.json: {files:?}"))
        .1
        .clone()
}

/// The secrets did reach the target, and the reports say where they were
/// hidden: a test that finds nothing because nothing was sent proves
/// nothing.
fn assert_meaningful(echo: &Echo, report_json: &str) {
    let issued = echo.issued.lock().unwrap().clone();
    assert!(
        issued.iter().any(|t| t.starts_with("LOGINTOKEN")),
        "nobody logged in: {issued:?}"
    );
    assert!(
        issued.iter().any(|t| t.starts_with("HANDLE")),
        "no handle: {issued:?}"
    );
    assert!(
        report_json.contains("[REDACTED]"),
        "no redaction marker: {report_json}"
    );
    assert!(
        report_json.contains("found \\\"POST /echo?access_token=[REDACTED]&note=[REDACTED]"),
        "the check message shows where the secrets were: {report_json}"
    );
    assert!(
        report_json.contains("POST /echo?access_token=…"),
        "the step named from its path keeps the parameter, not its value: {report_json}"
    );
}

fn scrape(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: convoy\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

#[test]
fn convoy_run_of_two_scenarios_against_an_echoing_target_leaks_nothing() {
    let echo = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let scenarios = write_scenarios(dir.path());
    let out = dir.path().join("out");
    let metrics = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let target = format!("http://{}", echo.addr);
    let mut child = command()
        .args(["run", &scenarios[0], &scenarios[1]])
        .args(["--target", &target, "--profile", "smoke"])
        .args(["--out", out.to_str().unwrap()])
        .args([
            "--metrics-addr",
            &metrics.to_string(),
            "--metrics-linger",
            "2s",
        ])
        .current_dir(dir.path())
        .env_remove("CONVOY_TARGET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Scrape until the run is over (the exporter lingers after it).
    let mut scraped = None;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        if let Some(m) = scrape(metrics) {
            scraped = Some(m);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    let mut artifacts = outputs("convoy run", &o);
    assert!(
        !o.status.success(),
        "the checks fail on purpose: {artifacts:?}"
    );
    let scraped = scraped.expect("/metrics was scraped");
    assert!(scraped.contains("access_token=…"), "{scraped}");
    artifacts.push(("/metrics".into(), scraped));
    let files = files_under(&out);
    let json = report_json(&files);
    for ext in ["report.md", "report.html", "junit.xml"] {
        assert!(
            files.iter().any(|(n, _)| n.ends_with(ext)),
            "no {ext}: {files:?}"
        );
    }
    artifacts.extend(files);
    assert_meaningful(&echo, &json);
    assert_clean(&artifacts, &echo.issued.lock().unwrap());
}

#[test]
fn convoy_smoke_of_two_scenarios_against_an_echoing_target_leaks_nothing() {
    let echo = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let scenarios = write_scenarios(dir.path());
    let out = dir.path().join("out");
    let junit = dir.path().join("smoke.xml");
    let target = format!("http://{}", echo.addr);
    let o = convoy(
        &[
            "smoke",
            &scenarios[0],
            &scenarios[1],
            "--target",
            &target,
            "--junit",
            junit.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let mut artifacts = outputs("convoy smoke", &o);
    assert!(
        !o.status.success(),
        "the checks fail on purpose: {artifacts:?}"
    );
    assert!(
        artifacts[0].1.contains("[REDACTED]"),
        "the failure lines show where a secret was: {artifacts:?}"
    );
    artifacts.push((
        "smoke --junit".into(),
        std::fs::read_to_string(&junit).unwrap(),
    ));
    let files = files_under(&out);
    let json = report_json(&files);
    artifacts.extend(files);
    assert_meaningful(&echo, &json);
    assert_clean(&artifacts, &echo.issued.lock().unwrap());
}

#[test]
fn convoy_bench_with_secrets_in_its_url_and_headers_leaks_nothing() {
    let echo = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let [jwt, auth, key, pwd, sig, code] = BENCH_QUERY;
    let url = format!(
        "http://convoy:{BENCH_PW}@{}/echo?jwt={jwt}&auth={auth}&key={key}&pwd={pwd}&sig={sig}&code={code}&page=2",
        echo.addr
    );
    let bearer = format!("Authorization: Bearer {BENCH_BEARER}");
    let json_out = dir.path().join("bench.json");
    let o = convoy(
        &[
            "bench", &url, "-H", &bearer, "-n", "3", "-c", "1", "--json", "-q", "-o",
        ]
        .into_iter()
        .chain([json_out.to_str().unwrap()])
        .collect::<Vec<_>>(),
        dir.path(),
    );
    let mut artifacts = outputs("convoy bench", &o);
    assert!(o.status.success(), "{artifacts:?}");
    assert!(artifacts[0].1.contains("page=2"), "{artifacts:?}");
    let text = convoy(
        &["bench", &url, "-H", &bearer, "-n", "2", "-c", "1"],
        dir.path(),
    );
    artifacts.extend(outputs("convoy bench (table)", &text));
    artifacts.extend(files_under(dir.path()));
    assert_clean(&artifacts, &[]);
}

#[test]
fn invalid_urls_and_malformed_headers_are_not_echoed_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bad_url = format!(
        "http://convoy:{BENCH_PW}@[::1/x?access_token={QUERY_TOKEN}&jwt={}",
        BENCH_QUERY[0]
    );
    let good_url = "http://127.0.0.1:9/x";
    let mut artifacts = Vec::new();
    for (name, args) in [
        ("bench invalid URL", vec!["bench", &bad_url, "-n", "1"]),
        (
            "bench header without a colon",
            vec![
                "bench",
                good_url,
                "-n",
                "1",
                "-H",
                &format!("Authorization Bearer {BENCH_BEARER}"),
            ],
        ),
        (
            "bench header with a bad name",
            vec![
                "bench",
                good_url,
                "-n",
                "1",
                "-H",
                &format!("X Api Key: {API_KEY}"),
            ],
        ),
        (
            "run invalid --target",
            vec!["run", "health", "--target", &bad_url, "--profile", "smoke"],
        ),
    ]
    .iter()
    .map(|(n, a)| {
        (
            n.to_string(),
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    })
    .collect::<Vec<_>>()
    {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = convoy(&args, dir.path());
        assert!(!o.status.success(), "{name} is refused");
        let printed = outputs(name.as_str(), &o);
        assert!(
            printed[1].1.contains("invalid"),
            "{name} says what is wrong: {printed:?}"
        );
        artifacts.extend(printed);
    }
    assert_clean(&artifacts, &[]);
}
