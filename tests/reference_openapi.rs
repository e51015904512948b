//! The reference target's `GET /openapi.json` cannot drift from the target:
//! every route its router registers (read from its sources) is in the
//! document and every documented operation is served; each documented
//! operation, sent for real, answers one of its documented statuses; and
//! `convoy init --openapi http://…/openapi.json` drafts a suite that
//! `convoy smoke` passes against the healthy target and that turns red
//! (exit 2, violations counted in the report) on `--fault tenant-leak=1`
//! and on `--fault idempotency-race`.

mod cli_support;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;
use std::str::FromStr;

use cli_support::{convoy_with_env, init_args, request_steps, smoke_args, text};
use convoy::target::{Fault, RunningTarget, SEED_PASSWORD, TargetConfig, openapi_document, spawn};
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `{orderId}` and `{id}` name the same segment.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '{' => {
                skipping = true;
                out.push_str("{}");
            }
            '}' => skipping = false,
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

/// The text of a call starting at `open` (just past its `(`), up to its
/// matching `)`.
fn call_text(src: &str, open: usize) -> &str {
    let mut depth = 1;
    for (i, c) in src[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &src[open..open + i];
                }
            }
            _ => {}
        }
    }
    &src[open..]
}

/// The string literals of `const NAME: [&str; N] = [...]` in `src`.
fn const_strings(src: &str, name: &str) -> Vec<String> {
    let Some(at) = src.find(&format!("const {name}")) else {
        return Vec::new();
    };
    let rest = &src[at..];
    let list = &rest[rest.find("= [").unwrap() + 3..rest.find("];").unwrap()];
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Every `(METHOD, path)` the reference target's router registers, read
/// from `.route(PATH, get(..).post(..))` calls in its sources, `{prefix}`
/// expanded over `ORDER_PREFIXES`.
fn served_routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/reference-api/src");
    let server = std::fs::read_to_string(dir.join("server.rs")).unwrap();
    let prefixes = const_strings(&server, "ORDER_PREFIXES");
    assert!(
        !prefixes.is_empty(),
        "ORDER_PREFIXES not found in server.rs"
    );
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let mut from = 0;
        while let Some(i) = src[from..].find(".route(") {
            let open = from + i + ".route(".len();
            from = open;
            let call = call_text(&src, open);
            // The first argument: a literal, `&format!("{prefix}/...")`
            // or the loop's `prefix` itself.
            let mut depth = 0;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        ',' if depth == 0 => return true,
                        _ => {}
                    }
                    false
                })
                .map_or(call.len(), |(i, _)| i);
            let first = call[..end].trim();
            let template = if first == "prefix" {
                "{prefix}".to_string()
            } else if let Some(q) = first.find('"') {
                let rest = &first[q + 1..];
                rest[..rest.find('"').unwrap()].to_string()
            } else {
                panic!(
                    "{}: a .route( whose path convoy's test cannot read: {first}",
                    path.display()
                );
            };
            let paths: Vec<String> = if template.contains("{prefix}") {
                prefixes
                    .iter()
                    .map(|p| {
                        template
                            .replace("{prefix}", p)
                            .replace("{{", "{")
                            .replace("}}", "}")
                    })
                    .collect()
            } else {
                vec![template]
            };
            let methods: Vec<&str> = METHODS
                .iter()
                .copied()
                .filter(|m| {
                    call.contains(&format!(" {m}("))
                        || call.contains(&format!(".{m}("))
                        || call.contains(&format!("({m}("))
                })
                .collect();
            assert!(
                !methods.is_empty(),
                "{}: no method in .route({call})",
                path.display()
            );
            for p in &paths {
                for m in &methods {
                    out.insert((m.to_uppercase(), normalise(p)));
                }
            }
        }
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), normalise(path)));
            }
        }
    }
    out
}

/// `req` with `body` as JSON (reqwest is built without its `json` feature).
fn with_json(req: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
    req.header("content-type", "application/json")
        .body(body.to_string())
}

async fn json_of(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn target(faults: &[&str]) -> RunningTarget {
    let mut config = TargetConfig::default();
    for f in faults {
        config = config.with_fault(Fault::from_str(f).unwrap());
    }
    spawn(config).unwrap()
}

#[test]
fn the_document_lists_every_route_the_router_serves_and_no_other() {
    let doc = openapi_document();
    assert_eq!(doc["openapi"], "3.1.0");
    let served = served_routes();
    let listed = documented(&doc);
    let missing: Vec<_> = served.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "served but not in /openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in /openapi.json but not served: {extra:?}"
    );
    // What the tenant model, idempotency and auth rest on is stated.
    let text = doc.to_string();
    for needle in [
        "Idempotency-Key",
        "\"bearer\"",
        "/api/auth/login",
        "\"tenant\"",
    ] {
        assert!(text.contains(needle), "{needle} is not in the document");
    }
}

/// Each documented operation, sent as the acme admin (or without a token
/// where the document says none is needed) with the document's example
/// body, answers one of the statuses the document lists for it.
#[test]
fn every_documented_operation_answers_a_documented_status() {
    let t = target(&[]);
    let base = format!("http://{}", t.addr());
    let rt = runtime();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let served: Value = rt.block_on(async {
        json_of(
            client
                .get(format!("{base}/openapi.json"))
                .send()
                .await
                .unwrap(),
        )
        .await
    });
    assert_eq!(served, openapi_document());
    let token = rt.block_on(async {
        let login = client.post(format!("{base}/api/auth/login"));
        let login = with_json(
            login,
            &json!({ "email": "admin@acme.test", "password": SEED_PASSWORD }),
        );
        let r = json_of(login.send().await.unwrap()).await;
        r["token"].as_str().unwrap().to_string()
    });
    let mut ops = Vec::new();
    for (path, item) in served["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                ops.push((m.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    let mut sent = 0;
    for (method, path, op) in &ops {
        let create = |prefix: &str| {
            let body = served["paths"][prefix]["post"]["requestBody"]["content"]["application/json"]["example"].clone();
            rt.block_on(async {
                let req = client.post(format!("{base}{prefix}")).bearer_auth(&token);
                let r = json_of(with_json(req, &body).send().await.unwrap()).await;
                r["id"].as_str().unwrap().to_string()
            })
        };
        let mut url_path = path.clone();
        if let Some(at) = path.find("/{orderId}") {
            url_path = url_path.replace("{orderId}", &create(&path[..at]));
        }
        url_path = url_path.replace("{driverId}", "drv-acme-1");
        assert!(
            !url_path.contains('{'),
            "{method} {path}: unfilled parameter"
        );
        let body = op
            .pointer("/requestBody/content/application~1json/example")
            .cloned();
        let public = op.get("security") == Some(&json!([]));
        let status = rt.block_on(async {
            let mut req = client.request(method.parse().unwrap(), format!("{base}{url_path}"));
            if !public {
                req = req.bearer_auth(&token);
            }
            if let Some(b) = &body {
                req = with_json(req, b);
            }
            req.send().await.unwrap().status().as_u16()
        });
        let listed: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        assert!(
            listed.iter().any(|k| **k == status.to_string()),
            "{method} {path} answered {status}, the document lists {listed:?}"
        );
        sent += 1;
    }
    assert_eq!(sent, ops.len());
    assert!(sent >= 30, "only {sent} operations documented");
}

/// `convoy ARGS` in `cwd` with the seeded admins of two tenants, as the
/// drafted suite reads them.
fn convoy(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    convoy_with_env(
        args,
        cwd,
        [
            ("API_TENANT_A_USERNAME", "admin@acme.test"),
            ("API_TENANT_A_PASSWORD", SEED_PASSWORD),
            ("API_TENANT_B_USERNAME", "admin@globex.test"),
            ("API_TENANT_B_PASSWORD", SEED_PASSWORD),
        ],
    )
}

fn smoke(suite: &Path, t: &RunningTarget, out: &Path) -> (Output, Value) {
    let o = convoy(
        &smoke_args(suite, &format!("http://{}", t.addr()), out),
        suite.parent().unwrap(),
    );
    let report = std::fs::read_to_string(out.join("report.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    (o, report)
}

#[test]
fn a_suite_drafted_from_its_url_passes_smoke_and_catches_both_faults() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = target(&[]);
    let url = format!("http://{}/openapi.json", healthy.addr());
    let suite = dir.path().join("suite");
    let o = convoy(&init_args("--openapi", &url, &suite), dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("a tenant-isolation journey"), "{stdout}");
    for file in [
        "tenant-isolation.toml",
        "idempotent-replay.toml",
        "profiles.toml",
    ] {
        assert!(suite.join(file).exists(), "{file} not drafted: {stdout}");
    }
    let readme = std::fs::read_to_string(suite.join("README.md")).unwrap();
    for var in ["API_TENANT_A_USERNAME", "API_TENANT_B_PASSWORD"] {
        assert!(readme.contains(var), "{var} not in the README: {readme}");
    }

    let (o, report) = smoke(&suite, &healthy, &dir.path().join("healthy"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(SEED_PASSWORD));
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() > 100, "{} checks in the report", checks.len());
    let (steps, green) = request_steps(&report);
    assert_eq!(green, steps.len());
    let journeys = std::fs::read_dir(&suite)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            std::fs::read_to_string(&p).is_ok_and(|t| t.contains("[[step]]"))
        })
        .count();
    println!(
        "figure: reference target (GET /openapi.json): {} operations found, {journeys} journeys drafted, {green} of {} steps green on the first run",
        openapi_document()["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
            .sum::<usize>(),
        steps.len()
    );

    for (fault, violation) in [
        ("tenant-leak=1", "tenant_isolation_violations"),
        ("idempotency-race", "idempotency_violations"),
    ] {
        let broken = target(&[fault]);
        let (o, report) = smoke(&suite, &broken, &dir.path().join(fault));
        assert_eq!(o.status.code(), Some(2), "{fault}: {}", text(&o));
        let counted = report["violations"][violation].as_u64().unwrap_or(0);
        assert!(
            counted > 0,
            "{fault}: no {violation}: {}",
            report["violations"]
        );
    }
}
