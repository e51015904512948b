//! The Kubernetes recipe in `ci/k8s/`, checked offline: valid YAML with
//! the fields the recipe relies on (an Indexed Job whose completions,
//! parallelism and `--shard I/N` agree, the shared volume mounted where the
//! commands write and read, a merge that waits for the same N, retries per
//! shard, a deadline on the wait), every `convoy` command in it accepted by
//! convoy's own command line, and the shell scripts run under `sh` with a
//! stand-in `convoy` (only complete reports are counted; the wait gives up).

use std::path::{Path, PathBuf};

use clap::Parser as _;
use yaml_rust2::{Yaml, YamlLoader};

fn k8s(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("ci/k8s")
        .join(name)
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    let mut docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

fn pod_spec(job: &Yaml) -> &Yaml {
    &job["spec"]["template"]["spec"]
}

fn env(container: &Yaml, name: &str) -> Option<String> {
    container["env"]
        .as_vec()?
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str().map(String::from))
}

/// The shell script a container runs (`sh -c SCRIPT`).
fn script(container: &Yaml) -> String {
    let command: Vec<&str> = container["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(command, ["/bin/sh", "-c"]);
    container["args"][0].as_str().unwrap().to_string()
}

/// The `convoy …` command lines of a script (continuations joined), as
/// words with quotes removed and the variables given example values.
fn convoy_commands(script: &str, vars: &[(&str, &str)]) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("convoy "))
        .map(|l| {
            let mut l = l.to_string();
            for (k, v) in vars {
                l = l.replace(&format!("${k}"), v);
            }
            assert!(!l.contains('$'), "unknown variable in {l}");
            words(&l)
        })
        .collect()
}

/// Splits on blanks outside double quotes, removing the quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn assert_accepted(args: &[String], origin: &str) {
    let argv = args.iter().cloned();
    if let Err(e) = convoy::cli::Cli::try_parse_from(argv) {
        panic!("{origin}: `{}` is rejected by convoy:\n{e}", args.join(" "));
    }
}

fn flag<'a>(cmd: &'a [String], name: &str) -> Option<&'a str> {
    cmd.iter()
        .position(|w| w == name)
        .map(|i| cmd[i + 1].as_str())
}

fn mount_path(container: &Yaml, volume: &str) -> String {
    container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some(volume))
        .unwrap_or_else(|| panic!("volume {volume} not mounted"))["mountPath"]
        .as_str()
        .unwrap()
        .to_string()
}

fn claim_of(job: &Yaml, volume: &str) -> String {
    pod_spec(job)["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some(volume))
        .unwrap()["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_shard_job_is_indexed_and_its_shards_match_its_completions() {
    let job = load(&k8s("shards-job.yaml"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(n));
    assert_eq!(pod_spec(&job)["restartPolicy"].as_str(), Some("Never"));

    let c = &pod_spec(&job)["containers"][0];
    assert_eq!(env(c, "SHARDS"), Some(n.to_string()));
    let s = script(c);
    let cmds = convoy_commands(
        &s,
        &[
            ("JOB_COMPLETION_INDEX", "3"),
            ("SHARDS", &n.to_string()),
            ("tmp", "/reports/.shard-3.pod"),
        ],
    );
    assert_eq!(cmds.len(), 1, "one convoy command in\n{s}");
    let cmd = &cmds[0];
    assert_eq!(cmd[1], "run");
    assert_accepted(cmd, "shards-job.yaml");
    // The index the Job controller sets becomes --shard I/N.
    assert!(s.contains("--shard \"$JOB_COMPLETION_INDEX/$SHARDS\""));
    assert_eq!(flag(cmd, "--shard"), Some(format!("3/{n}").as_str()));
    // Reports go to the shared volume: a temporary directory there, renamed
    // to one directory per shard once complete.
    let reports = mount_path(c, "reports");
    assert!(s.contains(&format!(
        "tmp=\"{reports}/.shard-$JOB_COMPLETION_INDEX.$HOSTNAME\""
    )));
    assert_eq!(flag(cmd, "--out"), Some("/reports/.shard-3.pod"));
    assert!(s.contains(&format!(
        "mv \"$tmp\" \"{reports}/shard-$JOB_COMPLETION_INDEX\""
    )));
    assert_eq!(claim_of(&job, "reports"), "convoy-reports");
    // Metrics on the port the annotations advertise.
    let port = job["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
        .as_str()
        .unwrap();
    assert!(
        flag(cmd, "--metrics-addr")
            .unwrap()
            .ends_with(&format!(":{port}"))
    );
}

#[test]
fn each_shard_is_retried_once_on_its_own_budget() {
    let job = load(&k8s("shards-job.yaml"));
    let spec = &job["spec"];
    // Per index, not a budget shared by the whole Job.
    assert_eq!(spec["backoffLimitPerIndex"].as_i64(), Some(1));
    assert!(
        spec["backoffLimit"].is_badvalue(),
        "backoffLimit is one budget for every shard: leave it to backoffLimitPerIndex"
    );
    // A usage error (exit 3) fails its index at once.
    let rule = &spec["podFailurePolicy"]["rules"][0];
    assert_eq!(rule["action"].as_str(), Some("FailIndex"));
    let codes = &rule["onExitCodes"];
    assert_eq!(
        codes["containerName"].as_str(),
        pod_spec(&job)["containers"][0]["name"].as_str()
    );
    assert_eq!(codes["operator"].as_str(), Some("In"));
    assert_eq!(codes["values"].as_vec().map(Vec::len), Some(1));
    assert_eq!(codes["values"][0].as_i64(), Some(3));
}

/// A directory with a stand-in `convoy` that writes `report.json` under
/// `--out` and exits with `$FAKE_EXIT`, as a real run that wrote its report
/// (0-2) or was interrupted after writing a partial one (5).
fn fake_convoy(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let convoy = bin.join("convoy");
    std::fs::write(
        &convoy,
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --out ] && out=$2; shift; done\n\
         mkdir -p \"$out\" && echo '{}' > \"$out/report.json\"\nexit \"$FAKE_EXIT\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&convoy, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Runs a container's script under `sh`, its reports mount moved to
/// `reports`, with `env`.
fn run_script(container: &Yaml, reports: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mount = mount_path(container, "reports");
    let s = script(container).replace(&mount, reports.to_str().unwrap());
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(s).envs(env.iter().copied());
    cmd.output().unwrap()
}

#[test]
fn only_complete_shard_reports_are_counted_and_the_wait_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let path = format!(
        "{}:{}",
        fake_convoy(dir.path()).display(),
        std::env::var("PATH").unwrap()
    );
    let shards = load(&k8s("shards-job.yaml"));
    let shard = &pod_spec(&shards)["containers"][0];
    let attempt = |index: &str, exit: &str| {
        run_script(
            shard,
            &reports,
            &[
                ("PATH", path.as_str()),
                ("JOB_COMPLETION_INDEX", index),
                ("SHARDS", "2"),
                ("HOSTNAME", "pod-a"),
                ("FAKE_EXIT", exit),
            ],
        )
    };
    // Interrupted after writing a partial report: the attempt fails and the
    // merge sees no report of shard 0.
    assert_eq!(attempt("0", "5").status.code(), Some(5));
    assert!(!reports.join("shard-0/report.json").exists());
    // Gates failed on the slice (1): the report is complete and counted.
    assert_eq!(attempt("0", "1").status.code(), Some(0));
    assert!(reports.join("shard-0/report.json").exists());
    assert!(!reports.join(".shard-0.pod-a").exists());

    let merge = load(&k8s("merge-job.yaml"));
    let wait = &pod_spec(&merge)["initContainers"][0];
    let wait_for = |seconds: &str| {
        run_script(
            wait,
            &reports,
            &[("SHARDS", "2"), ("WAIT_SECONDS", seconds)],
        )
    };
    // One of two: the wait ends at its deadline, saying why.
    let out = wait_for("0");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only 1 of 2 shard reports after 0s"), "{err}");
    // Both: it ends at once, successfully.
    assert_eq!(attempt("1", "0").status.code(), Some(0));
    assert_eq!(wait_for("0").status.code(), Some(0));
    // The Job's own deadline is a backstop beyond the wait's.
    let wait_seconds: i64 = env(wait, "WAIT_SECONDS").unwrap().parse().unwrap();
    let deadline = merge["spec"]["activeDeadlineSeconds"].as_i64().unwrap();
    assert!(deadline > wait_seconds, "{deadline} <= {wait_seconds}");
}

#[test]
fn the_readme_waits_for_the_merge_to_complete_or_fail() {
    let readme = std::fs::read_to_string(k8s("README.md")).unwrap();
    let waits: Vec<&str> = readme
        .lines()
        .filter(|l| l.contains("convoy-merge") && (l.contains("wait") || l.contains("until")))
        .collect();
    assert!(!waits.is_empty(), "no wait for the merge Job in the README");
    for l in &waits {
        assert!(
            !l.contains("--for=condition=complete"),
            "waiting for complete alone blocks when the merge fails: {l}"
        );
    }
    assert!(readme.contains("Complete|Failed"));
}

#[test]
fn the_merge_job_waits_for_the_same_n_and_merges_the_shard_reports() {
    let shards = load(&k8s("shards-job.yaml"));
    let n = shards["spec"]["completions"].as_i64().unwrap();
    let shard_out = mount_path(&pod_spec(&shards)["containers"][0], "reports");

    let job = load(&k8s("merge-job.yaml"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(claim_of(&job, "reports"), claim_of(&shards, "reports"));
    let wait = &pod_spec(&job)["initContainers"][0];
    assert_eq!(env(wait, "SHARDS"), Some(n.to_string()));
    assert_eq!(mount_path(wait, "reports"), shard_out);
    assert!(script(wait).contains(&format!("{shard_out}/shard-*/report.json")));

    let c = &pod_spec(&job)["containers"][0];
    assert_eq!(mount_path(c, "reports"), shard_out);
    let s = script(c);
    // The shell expands the glob; give the parser what it would see.
    let expanded: Vec<String> = (0..n)
        .map(|i| format!("{shard_out}/shard-{i}/report.json"))
        .collect();
    let cmds = convoy_commands(
        &s.replace(
            &format!("{shard_out}/shard-*/report.json"),
            &expanded.join(" "),
        ),
        &[],
    );
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0][1], "merge");
    assert_accepted(&cmds[0], "merge-job.yaml");
    assert!(flag(&cmds[0], "--out").unwrap().starts_with(&shard_out));
}

#[test]
fn the_claim_is_shared_between_nodes() {
    let pvc = load(&k8s("pvc.yaml"));
    assert_eq!(pvc["kind"].as_str(), Some("PersistentVolumeClaim"));
    assert_eq!(pvc["metadata"]["name"].as_str(), Some("convoy-reports"));
    assert_eq!(
        pvc["spec"]["accessModes"][0].as_str(),
        Some("ReadWriteMany")
    );
}
