//! Every CI recipe's install line, run for real against a stand-in for the
//! release page: a loopback HTTP server serving a release archive made from
//! this project's `convoy` binary and its `SHA256SUMS`, reached through the
//! recipe's own `CONVOY_RELEASES` variable. The line must end with this
//! project's binary on the job's PATH (the bytes served, answering `convoy
//! --version` and `convoy completions` as only it does), and must refuse an
//! archive whose checksum does not match before unpacking it.
//!
//! The lines run as their CI runs them: GitHub's `bash --noprofile --norc
//! -eo pipefail`, GitLab's `bash -eo pipefail` with the before_script lines
//! in one shell. They need curl, sha256sum and tar (every CI image the
//! recipes name has them); without curl the test is skipped with a notice
//! unless `CONVOY_REQUIRE_CURL` is set.

mod cli_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cli_support::{BIN, text};
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .remove(0)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the tools the install lines use are here; a notice if not.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["bash", "curl", "sha256sum", "tar"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CONVOY_REQUIRE_CURL").is_none(),
        "CONVOY_REQUIRE_CURL is set but {missing:?} are missing"
    );
    eprintln!(
        "NOTICE: skipping the install-line test: {missing:?} not found (apt-get install -y curl coreutils tar)"
    );
    false
}

/// A release page on loopback: `GET /v{VERSION}/{file}` serves the files
/// of `dir`; anything else is 404. Stopped when dropped.
struct ReleaseServer {
    base: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReleaseServer {
    fn start(dir: &Path) -> ReleaseServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let dir = dir.to_path_buf();
        let flag = stop.clone();
        let prefix = format!("/v{}/", env!("CARGO_PKG_VERSION"));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let (stream, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => continue,
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The rest of the request head.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let file = path
                    .strip_prefix(&prefix)
                    .filter(|f| !f.contains('/') && !f.is_empty())
                    .and_then(|f| std::fs::read(dir.join(f)).ok());
                let mut stream = stream;
                let _ = match file {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(&body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        ReleaseServer {
            base,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The architecture part of the archive name, as the recipes map `uname -m`.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        _ => "x86_64",
    }
}

fn archive_name() -> String {
    format!(
        "convoy-v{}-{}-unknown-linux-musl.tar.gz",
        env!("CARGO_PKG_VERSION"),
        arch()
    )
}

/// A release directory as the release workflow lays it out: the archive
/// holding `convoy` alone, and `SHA256SUMS` made by `sha256sum`. With
/// `tamper`, the archive is replaced after its checksum was taken.
fn release_dir(tamper: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let stage = tempfile::tempdir().unwrap();
    std::fs::copy(BIN, stage.path().join("convoy")).unwrap();
    let archive = archive_name();
    pack(stage.path(), &dir.path().join(&archive));
    let sums = Command::new("sha256sum")
        .arg(&archive)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(sums.status.success());
    std::fs::write(dir.path().join("SHA256SUMS"), &sums.stdout).unwrap();
    if tamper {
        std::fs::write(stage.path().join("convoy"), "#!/bin/sh\necho imposter\n").unwrap();
        pack(stage.path(), &dir.path().join(&archive));
    }
    dir
}

/// `tar -czf archive -C stage convoy`, compressed fast: the test binary is
/// a large debug build, and the format is what matters here.
fn pack(stage: &Path, archive: &Path) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(r#"tar -cf - -C "$1" convoy | gzip -1 > "$2""#)
        .arg("pack")
        .arg(stage)
        .arg(archive)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Runs `script` the way the CI runs it, with `vars` and nothing of this
/// machine's proxies.
fn run_script(shell: &[&str], script: &str, vars: &[(String, String)], home: &Path) -> Output {
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..]).arg(script);
    for proxy in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(proxy);
    }
    cmd.env("HOME", home).current_dir(home);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A string-valued mapping as (name, value) pairs.
fn string_vars(y: &Yaml) -> Vec<(String, String)> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} among {vars:?}"))
}

/// Asserts that `bin` is this project's convoy, as built for this test.
fn assert_is_this_convoy(bin: &Path, origin: &str) {
    assert_eq!(
        std::fs::read(bin).unwrap_or_else(|e| panic!("{origin}: {}: {e}", bin.display())),
        std::fs::read(BIN).unwrap(),
        "{origin}: the installed binary is not the one served"
    );
    let version = Command::new(bin).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("convoy {}", env!("CARGO_PKG_VERSION")),
        "{origin}"
    );
    // Subcommands only this project's convoy has.
    let completions = Command::new(bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8_lossy(&completions.stdout);
    for sub in ["smoke", "merge", "baseline", "target"] {
        assert!(script.contains(sub), "{origin}: completions lack {sub}");
    }
}

/// Variables as (name, value) pairs.
type Vars = Vec<(String, String)>;

/// The GitHub recipes' install steps: (workflow file, script, the
/// workflow's environment).
fn github_installs() -> Vec<(String, String, Vars)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("ci/github"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    for path in files {
        let y = load(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let env = string_vars(&y["env"]);
        let mut found = 0;
        for (_, job) in y["jobs"].as_hash().unwrap() {
            for step in job["steps"].as_vec().unwrap() {
                if step["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Install convoy"))
                {
                    let run = step["run"].as_str().expect("an install step runs a script");
                    out.push((name.clone(), run.to_string(), env.clone()));
                    found += 1;
                }
            }
        }
        assert_eq!(found, 1, "{name}: one install step");
    }
    out
}

/// GitLab's `.convoy` before_script, one shell as the runner runs it.
fn gitlab_install() -> (String, Vec<(String, String)>) {
    let y = load(&root().join("ci/gitlab/convoy.gitlab-ci.yml"));
    let lines: Vec<&str> = y[".convoy"]["before_script"]
        .as_vec()
        .expect(".convoy has a before_script")
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    (lines.join("\n"), string_vars(&y["variables"]))
}

#[test]
fn every_recipe_pins_this_version_and_one_release_location() {
    let mut releases = Vec::new();
    let mut all = github_installs()
        .into_iter()
        .map(|(n, _, e)| (n, e))
        .collect::<Vec<_>>();
    let (_, gl) = gitlab_install();
    all.push(("convoy.gitlab-ci.yml".into(), gl));
    for (name, env) in &all {
        assert_eq!(
            var(env, "CONVOY_VERSION"),
            env!("CARGO_PKG_VERSION"),
            "{name}: the recipes install the version this tree releases"
        );
        assert_eq!(var(env, "CONVOY_SHA256"), "", "{name}");
        releases.push(var(env, "CONVOY_RELEASES").to_string());
    }
    releases.dedup();
    assert_eq!(releases.len(), 1, "one release location: {releases:?}");
    // No recipe installs the crates.io crate named `convoy` (another
    // program) or builds with cargo at all.
    for path in ["ci/github", "ci/gitlab"] {
        for e in std::fs::read_dir(root().join(path)).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            assert!(!text.contains("cargo install"), "{path}: {text}");
        }
    }
}

#[test]
fn github_install_lines_end_with_this_convoy_on_the_path() {
    if !tools_present() {
        return;
    }
    let release = release_dir(false);
    let server = ReleaseServer::start(release.path());
    let pinned = sha256_of(&release.path().join(archive_name()));
    for (name, script, env) in github_installs() {
        for sha in ["", pinned.as_str()] {
            let home = tempfile::tempdir().unwrap();
            let github_path = home.path().join("github_path");
            std::fs::write(&github_path, "").unwrap();
            let vars = vec![
                ("CONVOY_VERSION".into(), var(&env, "CONVOY_VERSION").into()),
                ("CONVOY_RELEASES".into(), server.base.clone()),
                ("CONVOY_SHA256".into(), sha.to_string()),
                ("GITHUB_PATH".into(), github_path.display().to_string()),
            ];
            let o = run_script(
                &["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
                &script,
                &vars,
                home.path(),
            );
            assert!(o.status.success(), "{name}: {}", text(&o));
            assert!(
                String::from_utf8_lossy(&o.stdout)
                    .contains(&format!("convoy {}", env!("CARGO_PKG_VERSION"))),
                "{name}: the step prints the version it installed: {}",
                text(&o)
            );
            let dir = std::fs::read_to_string(&github_path).unwrap();
            let dir = Path::new(dir.trim());
            assert_eq!(
                dir,
                home.path().join(".local/bin"),
                "{name}: the bin directory goes on the job's PATH"
            );
            assert_is_this_convoy(&dir.join("convoy"), &name);
        }
    }
}

#[test]
fn gitlab_install_lines_end_with_this_convoy_on_the_path() {
    if !tools_present() {
        return;
    }
    let release = release_dir(false);
    let server = ReleaseServer::start(release.path());
    let (script, env) = gitlab_install();
    let project = tempfile::tempdir().unwrap();
    let vars = vec![
        ("CONVOY_VERSION".into(), var(&env, "CONVOY_VERSION").into()),
        ("CONVOY_RELEASES".into(), server.base.clone()),
        ("CONVOY_SHA256".into(), String::new()),
        (
            "CI_PROJECT_DIR".into(),
            project.path().display().to_string(),
        ),
    ];
    // The job's script runs in the same shell after the before_script.
    let script = format!("{script}\ncommand -v convoy");
    let o = run_script(
        &["bash", "-eo", "pipefail", "-c"],
        &script,
        &vars,
        project.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let found = stdout.lines().last().unwrap_or("");
    let expected = project.path().join(".convoy/bin/convoy");
    assert_eq!(Path::new(found), expected, "{}", text(&o));
    assert_is_this_convoy(&expected, "gitlab");
}

#[test]
fn a_tampered_archive_or_a_wrong_pin_is_refused_before_it_is_unpacked() {
    if !tools_present() {
        return;
    }
    let good = release_dir(false);
    let tampered = release_dir(true);
    let (gitlab_script, _) = gitlab_install();
    let (_, github_script, _) = github_installs().remove(0);
    let cases = [
        (tampered.path(), "", "tampered archive"),
        (good.path(), &"0".repeat(64)[..], "wrong CONVOY_SHA256"),
    ];
    for (dir, sha, what) in cases {
        let server = ReleaseServer::start(dir);
        for (shell, script) in [
            (
                &["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"][..],
                github_script.as_str(),
            ),
            (&["bash", "-eo", "pipefail", "-c"][..], &gitlab_script),
        ] {
            let home = tempfile::tempdir().unwrap();
            let vars = vec![
                ("CONVOY_VERSION".into(), env!("CARGO_PKG_VERSION").into()),
                ("CONVOY_RELEASES".into(), server.base.clone()),
                ("CONVOY_SHA256".into(), sha.to_string()),
                (
                    "GITHUB_PATH".into(),
                    home.path().join("p").display().to_string(),
                ),
                ("CI_PROJECT_DIR".into(), home.path().display().to_string()),
            ];
            let o = run_script(shell, script, &vars, home.path());
            assert!(!o.status.success(), "{what}: accepted: {}", text(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("FAILED")
                    || String::from_utf8_lossy(&o.stdout).contains("FAILED"),
                "{what}: sha256sum says why: {}",
                text(&o)
            );
            for bin in [".local/bin/convoy", ".convoy/bin/convoy"] {
                assert!(
                    !home.path().join(bin).exists(),
                    "{what}: unpacked anyway: {}",
                    text(&o)
                );
            }
        }
    }
}

#[test]
fn a_release_without_the_archive_fails_the_install() {
    if !tools_present() {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let server = ReleaseServer::start(empty.path());
    let (_, script, _) = github_installs().remove(0);
    let home = tempfile::tempdir().unwrap();
    let vars = vec![
        ("CONVOY_VERSION".into(), env!("CARGO_PKG_VERSION").into()),
        ("CONVOY_RELEASES".into(), server.base.clone()),
        ("CONVOY_SHA256".into(), String::new()),
        (
            "GITHUB_PATH".into(),
            home.path().join("p").display().to_string(),
        ),
    ];
    let o = run_script(
        &["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"],
        &script,
        &vars,
        home.path(),
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("404"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_release_workflow_publishes_what_the_recipes_download() {
    let y = load(&root().join(".github/workflows/release.yml"));
    assert!(
        !y["on"]["push"]["tags"].is_badvalue(),
        "released from a tag"
    );
    let targets: Vec<&str> = y["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    for t in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(targets.contains(&t), "{t} is not built: {targets:?}");
    }
    let scripts = |job: &str| -> String {
        y["jobs"][job]["steps"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The archive name the recipes build from CONVOY_VERSION and the
    // architecture, holding the binary `convoy` alone, as release_dir()
    // above lays it out.
    let build = scripts("build");
    assert!(
        build.contains(
            r#"tar -czf "dist/convoy-v$VERSION-$TARGET.tar.gz" -C "target/$TARGET/release" convoy"#
        ),
        "{build}"
    );
    let publish = scripts("publish");
    assert!(
        publish.contains("sha256sum -- *.tar.gz > SHA256SUMS"),
        "{publish}"
    );
    assert!(publish.contains("gh release create"), "{publish}");
    // The recipes ask for v{version}/ under the release location: the tag.
    let version = scripts("version");
    assert!(
        version.contains(r#""v$version" != "$GITHUB_REF_NAME""#),
        "{version}"
    );
}
