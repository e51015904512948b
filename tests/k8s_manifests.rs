//! The Kubernetes recipe in `ci/k8s/`, checked offline: valid YAML with
//! the fields the recipe relies on (an Indexed Job whose completions,
//! parallelism and `--shard I/N` agree, the shared volume mounted where the
//! commands write and read, a merge that waits for the same N), and every
//! `convoy` command in it accepted by convoy's own command line.

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
        &[("JOB_COMPLETION_INDEX", "3"), ("SHARDS", &n.to_string())],
    );
    assert_eq!(cmds.len(), 1, "one convoy command in\n{s}");
    let cmd = &cmds[0];
    assert_eq!(cmd[1], "run");
    assert_accepted(cmd, "shards-job.yaml");
    // The index the Job controller sets becomes --shard I/N.
    assert!(s.contains("--shard \"$JOB_COMPLETION_INDEX/$SHARDS\""));
    assert_eq!(flag(cmd, "--shard"), Some(format!("3/{n}").as_str()));
    // Reports go to the shared volume, one directory per shard.
    let reports = mount_path(c, "reports");
    assert_eq!(
        flag(cmd, "--out"),
        Some(format!("{reports}/shard-3").as_str())
    );
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
