//! `convoy init --openapi` on documents this project did not write, and
//! the figures issue 17 asks for (run with `--no-capture` to see them):
//!
//! - documents that registry packages ship (`.ci/run` installs them with
//!   npm into `$CONVOY_OPENAPI_FIGURES`): each drafts a suite whose every
//!   file loads (scenarios compiled with their `suite.toml`, the profiles
//!   parsed); printed: operations found, journeys drafted, steps loaded;
//! - a FastAPI app written for the test (`tests/fixtures/fastapi/app.py`,
//!   tenants in a header, an API key, `Idempotency-Key`) served by uvicorn:
//!   the suite drafted from the `/openapi.json` FastAPI generates passes
//!   `convoy smoke` with no hand edit; printed: operations, journeys, steps
//!   green on the first run.
//!
//! Each test skips with a notice when what it needs is missing, unless
//! `CONVOY_REQUIRE_OPENAPI_FIGURES=1` / `CONVOY_REQUIRE_FASTAPI=1`.

mod cli_support;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{convoy_with_env, free_port, init_args, request_steps, smoke_args, text};
use convoy_core::init::openapi::{Options, draft_file};
use convoy_core::scenario::parse::{Env, FileKind, classify, parse_in_suite};
use serde_json::Value;

/// The documents: the npm package and the file in it.
const REGISTRY_DOCUMENTS: [(&str, &str); 4] = [
    ("@scalar/galaxy", "dist/latest.json"),
    ("@readme/oas-examples", "3.0/json/petstore.json"),
    ("@readme/oas-examples", "3.1/json/train-travel.json"),
    ("@blockfrost/openapi", "openapi.yaml"),
];

/// Skips (returns false) with a notice, or fails when `require` is set.
fn available(what: &str, require: &str, found: bool, install: &str) -> bool {
    if found {
        return true;
    }
    if std::env::var(require).as_deref() == Ok("1") {
        panic!("{what} is missing and {require}=1: {install}");
    }
    eprintln!("SKIPPED: {what} is missing ({install}; set {require}=1 to make this a failure)");
    false
}

/// Every variable a drafted suite reads gets a placeholder: loading is
/// what is tested, not credentials.
struct AnyEnv;

impl Env for AnyEnv {
    fn get(&self, _: &str) -> Option<String> {
        Some("placeholder-for-loading".into())
    }
}

/// Loads every file of a drafted folder as convoy does: scenarios with
/// the folder's `suite.toml`, profiles files as profiles. Returns the
/// scenarios and steps loaded.
fn load_folder(dir: &Path) -> (usize, usize) {
    let suite_path = dir.join("suite.toml");
    let suite = std::fs::read_to_string(&suite_path).unwrap();
    let (mut scenarios, mut steps) = (0, 0);
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        match classify(&path, &text).unwrap_or_else(|d| panic!("{d}")) {
            FileKind::Scenario => {
                let s = parse_in_suite(&path, &text, Some((&suite_path, &suite)), &AnyEnv)
                    .unwrap_or_else(|d| panic!("{d}"));
                scenarios += 1;
                steps += s.steps.len();
            }
            FileKind::Profiles => {
                let p = convoy_core::profile::parse(&path, &text).unwrap_or_else(|d| panic!("{d}"));
                assert_eq!(p.len(), 4, "{}", path.display());
            }
            FileKind::Suite => {}
            FileKind::Other => panic!("{}: neither scenario, suite nor profiles", path.display()),
        }
    }
    (scenarios, steps)
}

#[test]
fn registry_documents_draft_suites_that_load() {
    let root = std::env::var_os("CONVOY_OPENAPI_FIGURES").map(PathBuf::from);
    let modules = root.as_ref().map(|r| r.join("node_modules"));
    if !available(
        "the OpenAPI documents of npm packages",
        "CONVOY_REQUIRE_OPENAPI_FIGURES",
        modules.as_ref().is_some_and(|m| m.is_dir()),
        "npm install --prefix \"$CONVOY_OPENAPI_FIGURES\" @scalar/galaxy @readme/oas-examples @blockfrost/openapi (see .ci/run)",
    ) {
        return;
    }
    let modules = modules.unwrap();
    let out = tempfile::tempdir().unwrap();
    for (i, (package, file)) in REGISTRY_DOCUMENTS.iter().enumerate() {
        let doc = modules.join(package).join(file);
        assert!(doc.is_file(), "{} is not installed", doc.display());
        let opts = Options {
            env_prefix: "API".into(),
            source_name: format!("{package}/{file}"),
        };
        let draft = draft_file(&doc, &opts).unwrap_or_else(|e| panic!("{package}/{file}: {e}"));
        let dir = out.path().join(format!("suite-{i}"));
        draft.write(&dir, false).unwrap();
        let (scenarios, steps) = load_folder(&dir);
        assert!(draft.operations > 0, "{package}/{file}: no operation found");
        assert!(scenarios > 0, "{package}/{file}: no scenario drafted");
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let left_out = readme
            .split("## Left out")
            .nth(1)
            .map_or(0, |s| s.lines().filter(|l| l.starts_with("- ")).count());
        println!(
            "figure: {package}/{file}: {} operations found, {} journeys drafted ({} lifecycle, {} replay, {} isolation, health {}), {scenarios} scenario files and {steps} steps load, {left_out} operations and features listed as left out",
            draft.operations,
            scenarios,
            draft.journeys,
            draft.replays,
            u8::from(draft.isolation),
            if dir.join("health.toml").exists() {
                "yes"
            } else {
                "no"
            },
        );
    }
}

/// uvicorn serving the FastAPI app, stopped when dropped.
struct Uvicorn(Child);

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `GET /health` answers 200.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

#[test]
fn fastapi_app_drafted_from_its_own_openapi_passes_smoke() {
    let found = Command::new("python3")
        .args(["-c", "import fastapi, uvicorn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available(
        "python3 fastapi and uvicorn",
        "CONVOY_REQUIRE_FASTAPI",
        found,
        "python3 -m pip install fastapi uvicorn",
    ) {
        return;
    }
    let app_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fastapi");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = Uvicorn(
        Command::new("python3")
            .args(["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--app-dir")
            .arg(&app_dir)
            .arg("--log-level")
            .arg("warning")
            .stdout(Stdio::null())
            .spawn()
            .expect("uvicorn starts"),
    );
    let start = Instant::now();
    while !healthy(addr) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "uvicorn did not answer on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    let convoy = |args: &[OsString]| {
        convoy_with_env(
            args,
            dir.path(),
            [
                ("API_TENANT_A_KEY", "key-acme-7d1f"),
                ("API_TENANT_A", "acme"),
                ("API_TENANT_B_KEY", "key-globex-52c9"),
                ("API_TENANT_B", "globex"),
            ],
        )
    };
    let url = format!("http://{addr}/openapi.json");
    let o = convoy(&init_args("--openapi", &url, &suite));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    for file in [
        "shipments-lifecycle.toml",
        "idempotent-replay.toml",
        "tenant-isolation.toml",
    ] {
        assert!(suite.join(file).is_file(), "{file} not drafted: {said}");
    }
    let (scenarios, _) = load_folder(&suite);

    let reports = dir.path().join("reports");
    let target = format!("http://{addr}");
    let o = convoy(&smoke_args(&suite, &target, &reports));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !out.contains("key-acme-7d1f"),
        "an API key reached the output"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap())
            .unwrap();
    let (steps, green) = request_steps(&report);
    // The probes were refused and the replays agreed: they ran.
    assert!(
        steps
            .iter()
            .any(|s| s["name"].as_str().unwrap().contains("probes")),
        "no isolation probe ran"
    );
    assert_eq!(report["violations"]["tenant_isolation_violations"], 0);
    assert_eq!(report["violations"]["idempotency_violations"], 0);
    assert_eq!(green, steps.len(), "not every step is green");
    let operations = said
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("?");
    println!(
        "figure: FastAPI app (tests/fixtures/fastapi/app.py, its /openapi.json): {operations} operations found, {scenarios} journeys drafted, {green} of {} steps green on the first run",
        steps.len()
    );
}
