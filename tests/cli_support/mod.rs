//! Running the `convoy` binary from integration tests: the one place that
//! names the built binary, says which of the caller's environment a run
//! drops, and shows a finished run in an assertion message. Also the few
//! things every CLI test needs around a run: the files it wrote, a free
//! loopback port, a reference target or a wiremock API to run against, a
//! child process that dies with the test.
//!
//! Each test file includes it with `mod cli_support;`; a file uses only
//! part of it, hence `dead_code` is allowed.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use convoy::target::{self, RunningTarget, TargetConfig};
use serde_json::Value;
use wiremock::{Mock, MockServer};

/// The path of the built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_convoy");

/// The built binary, with the caller's environment and working folder as
/// they are; callers add arguments, environment and stdio.
pub fn command() -> Command {
    Command::new(BIN)
}

/// [`command`] without `COLUMNS`: summaries fit `COLUMNS` when it is set,
/// and the tests that use this read them whole.
pub fn full_width() -> Command {
    let mut c = command();
    c.env_remove("COLUMNS");
    c
}

/// `convoy ARGS` in `cwd`, run to its end. The caller's `CONVOY_TARGET`
/// is dropped: the tests decide the target.
pub fn convoy(args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    convoy_with_env(args, cwd, std::iter::empty::<(&str, &str)>())
}

/// [`convoy`] with `env` set as well (credentials the scenarios read).
pub fn convoy_with_env<E, K, V>(args: &[impl AsRef<OsStr>], cwd: &Path, env: E) -> Output
where
    E: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut c = command();
    c.env_remove("CONVOY_TARGET").envs(env);
    output_in(c, args, cwd)
}

/// Runs `c` (a [`command`] or [`full_width`]) with `args` in `cwd` to its
/// end.
pub fn output_in(mut c: Command, args: &[impl AsRef<OsStr>], cwd: &Path) -> Output {
    c.args(args)
        .current_dir(cwd)
        .output()
        .expect("the convoy binary runs")
}

/// `convoy ARGS` exactly as the test process would start it: its working
/// folder (the package root), its whole environment.
pub fn convoy_as_is(args: &[impl AsRef<OsStr>]) -> Output {
    command()
        .args(args)
        .output()
        .expect("the convoy binary runs")
}

/// [`convoy`] from the package root, the test process's own working
/// folder, so relative paths read as the test writes them.
pub fn convoy_from_root(args: &[impl AsRef<OsStr>]) -> Output {
    convoy(args, Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The arguments of `convoy init FROM INPUT --out OUT`, `from` being
/// `--openapi` or `--har`, `input` a file or a URL.
pub fn init_args(from: &str, input: impl AsRef<OsStr>, out: &Path) -> Vec<OsString> {
    vec![
        "init".into(),
        from.into(),
        input.as_ref().into(),
        "--out".into(),
        out.into(),
    ]
}

/// Each `(file name, body, expected)` case written into `dir` and drafted
/// with `convoy init FROM FILE`, run by `convoy`, is refused: exit 3, a
/// message naming the file and `expected`, no panic, nothing written.
pub fn assert_init_refuses(
    from: &str,
    cases: &[(&str, &str, &str)],
    dir: &Path,
    convoy: impl Fn(&[OsString], &Path) -> Output,
) {
    for (name, body, expected) in cases {
        let path = write(dir, name, body);
        let out = dir.join(format!("out-{name}"));
        let o = convoy(&init_args(from, &path, &out), dir);
        let err = lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{name}: {}", text(&o));
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            !out.exists(),
            "{name}: nothing is written for a refused file"
        );
    }
}

/// The arguments of `convoy smoke SUITE --target TARGET --out OUT`.
pub fn smoke_args(suite: &Path, target: &str, out: &Path) -> Vec<OsString> {
    vec![
        "smoke".into(),
        suite.into(),
        "--target".into(),
        target.into(),
        "--out".into(),
        out.into(),
    ]
}

/// `convoy smoke SUITE --out OUT` in `cwd` with `env`, against a loopback
/// port nothing listens on: exit 4 (nothing answers) shows that convoy
/// loaded the suite, where a suite it refuses is exit 3.
pub fn smoke_where_nothing_listens<E, K, V>(suite: &Path, out: &Path, cwd: &Path, env: E) -> Output
where
    E: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let target = format!("http://127.0.0.1:{}", free_port());
    convoy_with_env(&smoke_args(suite, &target, out), cwd, env)
}

/// A finished run as an assertion message shows it: exit status, stdout,
/// stderr.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A run's stdout as text.
pub fn stdout(o: &Output) -> String {
    lossy(&o.stdout)
}

/// A run's stderr as text.
pub fn stderr(o: &Output) -> String {
    lossy(&o.stderr)
}

/// A run's exit code; a run ended by a signal fails the test.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited with a code, not a signal")
}

/// A stream of bytes as text, invalid UTF-8 replaced.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A run's stdout and stderr as two named texts, for the tests that scan
/// everything a run showed or wrote for a secret.
pub fn outputs(name: &str, o: &Output) -> Vec<(String, String)> {
    vec![
        (format!("{name} stdout"), lossy(&o.stdout)),
        (format!("{name} stderr"), lossy(&o.stderr)),
    ]
}

/// Every file under `dir`, at any depth, with its path and its text.
pub fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = lossy(&std::fs::read(&p).unwrap());
                out.push((p.display().to_string(), text));
            }
        }
    }
    out
}

/// Writes `body` to `dir/name` (a scenario, a profiles file) and returns
/// its path.
pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// The reference target on one worker thread with `faults` (as
/// `--fault` takes them) injected.
pub fn start_target(faults: &[&str]) -> RunningTarget {
    let mut config = TargetConfig {
        worker_threads: 1,
        ..TargetConfig::default()
    };
    for f in faults {
        config = config.with_fault(f.parse().expect("a valid fault"));
    }
    target::spawn(config).expect("the target starts")
}

/// The request steps of a `report.json`, and how many of them are green:
/// no error, every check on them passed.
pub fn request_steps(report: &Value) -> (Vec<&Value>, usize) {
    let checks = report["checks"].as_array().unwrap();
    let steps: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "request")
        .collect();
    let green = steps
        .iter()
        .filter(|s| {
            s["errors"] == 0
                && checks
                    .iter()
                    .filter(|c| c["step"] == s["name"])
                    .all(|c| c["failures"] == 0)
        })
        .count();
    (steps, green)
}

/// A loopback port nothing listens on (for now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process (a `convoy target`, say) killed and reaped when the
/// test ends, passed or failed.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A wiremock server on a runtime of its own: the CLI tests are plain
/// blocking tests, and the server must go on answering while the binary
/// runs.
pub struct MockApi {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl MockApi {
    /// A server with nothing mounted: it answers 404 to everything.
    pub fn start() -> MockApi {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(MockServer::start());
        MockApi { rt, server }
    }

    /// Mounts `mock`.
    pub fn mount(&self, mock: Mock) {
        self.rt.block_on(mock.mount(&self.server));
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<wiremock::Request> {
        self.rt
            .block_on(self.server.received_requests())
            .expect("recording is on")
    }
}
