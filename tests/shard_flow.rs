//! A sharded run for real: N processes of the `convoy` binary, each running
//! one shard against one loopback reference target, then `convoy merge`.
//! The merged report must be exactly the union of the shards: request
//! count, histograms, checks, and gates computed on the union.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::{MockApi, command};
use convoy::gate::{self, Gate};
use convoy::metrics::StepStats;
use convoy::report::{Report, StepReport, artifacts};
use convoy::target::{self, TargetConfig};

const SHARDS: u32 = 3;

fn check(out: &Output, expected: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(expected),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs every shard of `convoy bench URL LOAD... -c 6` (see [`run_shards`]),
/// each writing its report to `dir/shard-I.json`; returns those paths.
fn bench_shards(url: &str, load: &[&str], dir: &Path) -> Vec<PathBuf> {
    let path = |i: u32| dir.join(format!("shard-{i}.json"));
    run_shards(|i| {
        let shard = format!("{i}/{SHARDS}");
        let mut args = vec!["bench", url, "--shard", &shard];
        args.extend_from_slice(load);
        let out = path(i);
        args.extend(["-c", "6", "--workers", "1", "-q", "--output"]);
        args.push(out.to_str().unwrap());
        args.into_iter().map(String::from).collect()
    });
    (0..SHARDS).map(path).collect()
}

/// Starts every shard at once (they share the target, as pods would) and
/// waits for all of them.
fn run_shards(args: impl Fn(u32) -> Vec<String>) {
    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            command()
                .args(args(i))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        check(&c.wait_with_output().unwrap(), 0, &format!("shard {i}"));
    }
}

fn merge(inputs: &[PathBuf], extra: &[&str], dir: &Path) -> (Output, Report) {
    let merged_json = dir.join("merged.json");
    let out = command()
        .arg("merge")
        .args(inputs)
        .arg("-o")
        .arg(&merged_json)
        .arg("--out")
        .arg(dir.join("merged"))
        .args(extra)
        .output()
        .unwrap();
    check(&out, 0, "convoy merge");
    let merged = artifacts::read_report(&merged_json).unwrap();
    // Every format is written, and the directory's JSON is the same report.
    for (name, _) in artifacts::FILES {
        assert!(dir.join("merged").join(name).exists(), "{name} missing");
    }
    assert_eq!(artifacts::read_report(&dir.join("merged")).unwrap(), merged);
    (out, merged)
}

/// The union of the shards built here, independently of `convoy merge`:
/// step by step with `StepStats::merge`, over the merged window.
fn union_of(shards: &[Report], duration_secs: f64) -> Report {
    let mut union = shards[0].clone();
    union.shard = None;
    union.duration_secs = duration_secs;
    let dropped: u64 = shards.iter().map(|r| r.overall.dropped).sum();
    let single = union.steps.len() == 1;
    let mut overall = StepStats::default();
    for (k, step) in union.steps.iter_mut().enumerate() {
        let mut stats = StepStats::default();
        for r in shards {
            stats.merge(&r.steps[k].stats());
        }
        if step.kind == convoy::engine::StepKind::Request {
            overall.merge(&stats);
        }
        let d = if single { dropped } else { 0 };
        *step = StepReport::new(&step.name, step.kind, &stats, duration_secs, d);
    }
    union.overall = StepReport::new(
        "overall",
        convoy::engine::StepKind::Request,
        &overall,
        duration_secs,
        dropped,
    );
    for (k, c) in union.checks.iter_mut().enumerate() {
        c.passes = shards.iter().map(|r| r.checks[k].passes).sum();
        c.failures = shards.iter().map(|r| r.checks[k].failures).sum();
    }
    for (kind, n) in union.violations.iter_mut() {
        *n = shards.iter().map(|r| r.violations[kind]).sum();
    }
    union
}

fn assert_exact_union(shards: &[Report], merged: &Report, gates: &[Gate]) {
    assert_eq!(merged.shard, None);
    assert!(!merged.partial);
    let union = union_of(shards, merged.duration_secs);
    assert_eq!(merged.steps, union.steps, "steps differ from the union");
    assert_eq!(merged.overall, union.overall);
    assert_eq!(merged.checks, union.checks);
    assert_eq!(merged.violations, union.violations);
    // The histogram is the shards' histograms added, bucket for bucket.
    let mut latency = shards[0].overall.histograms.latency.clone();
    for r in &shards[1..] {
        latency.merge(&r.overall.histograms.latency);
    }
    assert_eq!(merged.overall.histograms.latency, latency);
    assert_eq!(
        merged.iterations,
        shards.iter().map(|r| r.iterations).sum::<u64>()
    );
    assert_eq!(
        merged.started_at,
        shards.iter().map(|r| r.started_at).min().unwrap()
    );
    assert_eq!(
        merged.ended_at,
        shards.iter().map(|r| r.ended_at).max().unwrap()
    );
    // The gates of the merged report are the gates of the union.
    assert_eq!(merged.gates, gate::evaluate(gates, &union, None));
    assert!(!merged.gates.is_empty());
}

#[test]
fn bench_shards_merge_into_exactly_the_union() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/health", t.base_url());
    let inputs = bench_shards(&url, &["-n", "900"], dir.path());
    let shards: Vec<Report> = inputs
        .iter()
        .map(|p| artifacts::read_report(p).unwrap())
        .collect();
    for (i, r) in shards.iter().enumerate() {
        assert_eq!(r.shard.unwrap().index, i as u32);
        assert_eq!(r.overall.requests, 300, "shard {i}");
    }
    let exprs = ["p95 < 500ms", "error_rate < 1%", "rps > 1"];
    let extra: Vec<&str> = exprs.iter().flat_map(|g| ["--gate", g]).collect();
    let (out, merged) = merge(&inputs, &extra, dir.path());

    assert_eq!(merged.command, "bench");
    assert_eq!(merged.overall.requests, 900);
    assert_eq!(merged.overall.status_counts["200"], 900);
    assert_eq!(t.requests_seen(), merged.overall.requests);
    let gates: Vec<Gate> = exprs.iter().map(|g| g.parse().unwrap()).collect();
    assert_exact_union(&shards, &merged, &gates);
    assert!(gate::all_passed(&merged.gates));
    assert!(String::from_utf8_lossy(&out.stderr).contains("merged 3 reports: 900 requests"));
}

#[test]
fn run_shards_merge_with_their_profile_gates_and_checks() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.toml");
    std::fs::write(
        &profiles,
        "[profile.trio]\nusers = 3\niterations = 20\ngates = [\"p95 < 500ms\", \"error_rate < 1%\", \"checks == 100%\"]\n",
    )
    .unwrap();
    let shard_dir = |i: u32| dir.path().join(format!("shard-{i}"));
    run_shards(|i| {
        [
            "run",
            "health",
            "--profiles",
            profiles.to_str().unwrap(),
            "--profile",
            "trio",
            "--target",
            &t.base_url(),
            "--shard",
            &format!("{i}/{SHARDS}"),
            "--workers",
            "1",
            "-q",
            "--out",
            shard_dir(i).to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    });
    let shards: Vec<Report> = (0..SHARDS)
        .map(|i| artifacts::read_report(&shard_dir(i)).unwrap())
        .collect();
    // Run directories are accepted as well as files.
    let inputs: Vec<PathBuf> = (0..SHARDS).map(shard_dir).collect();
    let (_, merged) = merge(&inputs, &[], dir.path());

    assert_eq!(merged.profile.as_deref(), Some("trio"));
    assert_eq!(merged.load_model.max_users(), 3);
    assert_eq!(merged.iterations, 60);
    assert_eq!(merged.overall.requests, 60);
    assert_eq!(t.requests_seen(), merged.overall.requests);
    assert!(
        merged
            .checks
            .iter()
            .all(|c| c.passes == 60 && c.failures == 0)
    );
    let gates: Vec<Gate> = shards[0]
        .gates
        .iter()
        .map(|g| g.expression.parse().unwrap())
        .collect();
    assert_eq!(gates.len(), 3);
    assert_exact_union(&shards, &merged, &gates);
}

#[test]
fn reports_of_different_runs_are_refused_with_exit_3() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.json");
    let out = command()
        .args(["bench", &format!("{}/health", t.base_url()), "-n", "20"])
        .args(["-c", "2", "--shard", "0/2", "-q", "--output"])
        .arg(&bench)
        .output()
        .unwrap();
    check(&out, 0, "bench");
    let run = dir.path().join("run");
    let out = command()
        .args(["run", "health", "--profile", "smoke", "--target"])
        .arg(t.base_url())
        .args(["-q", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    check(&out, 0, "run");
    let out = command()
        .arg("merge")
        .arg(&bench)
        .arg(&run)
        .arg("-o")
        .arg(dir.path().join("m.json"))
        .output()
        .unwrap();
    check(&out, 3, "merge of a bench and a run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("command differs") && err.contains("bench.json"),
        "{err}"
    );
    assert!(!dir.path().join("m.json").exists());

    // One shard of two is not a whole run.
    let out = command().arg("merge").arg(&bench).output().unwrap();
    check(&out, 3, "merge of one shard of two");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing shard 1/2"));
}

/// Runs shard `i` of [`SHARDS`] of `scenario` with `profile` (in
/// `profiles`) against `target`, writing no report.
fn run_one_shard(scenario: &Path, profiles: &Path, target: &str, i: u32) -> Output {
    command()
        .arg("run")
        .arg(scenario)
        .arg("--profiles")
        .arg(profiles)
        .args(["--profile", "six", "--target", target, "--workers", "1"])
        .args(["--shard", &format!("{i}/{SHARDS}"), "-q", "--no-reports"])
        .output()
        .unwrap()
}

/// The data rows each shard's requests carried, as the target saw them:
/// the scenario asks for `/row/{{ data.id }}/vu/{{ vu }}`, and a global
/// user number `k * N + I` names its shard `I`.
fn rows_per_shard(requests: &[wiremock::Request]) -> Vec<std::collections::BTreeSet<u32>> {
    let mut out = vec![std::collections::BTreeSet::new(); SHARDS as usize];
    for r in requests {
        let parts: Vec<&str> = r.url.path().split('/').collect();
        let [_, "row", row, "vu", vu] = parts[..] else {
            panic!("unexpected request {}", r.url)
        };
        let vu: u32 = vu.parse().unwrap();
        out[(vu % SHARDS) as usize].insert(row.parse().unwrap());
    }
    out
}

#[test]
fn shards_use_disjoint_data_rows() {
    use std::collections::BTreeSet;
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let dir = tempfile::tempdir().unwrap();
    // 12 rows; 6 users of 4 iterations: 2 users a shard, each walking the
    // 4 rows of its shard's block.
    let rows: String = (0..12).map(|i| format!("{i}\n")).collect();
    std::fs::write(dir.path().join("rows.csv"), format!("id\n{rows}")).unwrap();
    let profiles = dir.path().join("profiles.toml");
    std::fs::write(&profiles, "[profile.six]\nusers = 6\niterations = 4\n").unwrap();
    for mode in ["sequential", "random"] {
        let server = MockApi::start();
        server.mount(Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)));
        let scenario = dir.path().join(format!("rows-{mode}.toml"));
        std::fs::write(
            &scenario,
            format!(
                "name = \"rows\"\n[data]\nfile = \"rows.csv\"\nmode = \"{mode}\"\n\n\
                 [[step]]\nname = \"row\"\npath = \"/row/{{{{ data.id }}}}/vu/{{{{ vu }}}}\"\nstatus = 200\n"
            ),
        )
        .unwrap();
        for i in 0..SHARDS {
            let out = run_one_shard(&scenario, &profiles, &server.uri(), i);
            check(&out, 0, &format!("{mode} shard {i}"));
        }
        let requests = server.received();
        assert_eq!(requests.len(), 24, "{mode}");
        let used = rows_per_shard(&requests);
        for (i, rows) in used.iter().enumerate() {
            let block: BTreeSet<u32> = (4 * i as u32..4 * i as u32 + 4).collect();
            assert!(!rows.is_empty(), "{mode}: shard {i} sent nothing");
            assert!(rows.is_subset(&block), "{mode}: shard {i} used {rows:?}");
            for (j, other) in used.iter().enumerate().skip(i + 1) {
                assert!(
                    rows.is_disjoint(other),
                    "{mode}: shards {i} and {j} both used {:?}",
                    rows.intersection(other).collect::<Vec<_>>()
                );
            }
        }
        if mode == "sequential" {
            // Each user takes the next row every iteration: four iterations
            // walk a shard's whole block, so the shards cover the file.
            let union: BTreeSet<u32> = used.iter().flatten().copied().collect();
            assert_eq!(union, (0..12).collect());
        }
    }

    // Fewer rows than shards: a shard would have none, so it is refused.
    std::fs::write(dir.path().join("rows.csv"), "id\n0\n1\n").unwrap();
    let scenario = dir.path().join("rows-sequential.toml");
    let out = run_one_shard(&scenario, &profiles, "http://127.0.0.1:9", 2);
    check(&out, 3, "shard 2/3 of two rows");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shard 2/3 has no data row")
            && err.contains("2 row(s), fewer than the 3 shards"),
        "{err}"
    );
}

#[test]
fn bad_shard_values_and_unsplittable_loads_exit_3() {
    for bad in ["0/0", "3/2", "garbage", "1/", "-1/3"] {
        for cmd in [
            vec!["bench", "http://127.0.0.1:9/", "-n", "1"],
            vec!["run", "health", "--target", "http://127.0.0.1:9"],
        ] {
            let out = command()
                .args(&cmd)
                .arg(format!("--shard={bad}"))
                .output()
                .unwrap();
            check(&out, 3, &format!("{} --shard {bad}", cmd[0]));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!(
                    "invalid shard \"{bad}\": expected I/N with 0 <= I < N"
                )),
                "{} --shard {bad}: {err}",
                cmd[0]
            );
        }
    }
    // An in-flight cap of 1 cannot be split over 3 shards (each would run
    // one, three in all); refused before any request.
    let out = command()
        .args(["bench", "http://127.0.0.1:9/", "--rate", "10/s", "-d", "1s"])
        .args(["-c", "1", "--shard", "1/3"])
        .output()
        .unwrap();
    check(&out, 3, "bench -c 1 --rate --shard 1/3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shard 1/3 has no request in flight") && err.contains("in-flight cap is 1"),
        "{err}"
    );
    let out = command()
        .args([
            "bench",
            "http://127.0.0.1:9/",
            "-n",
            "10",
            "-c",
            "2",
            "--shard",
            "2/3",
        ])
        .output()
        .unwrap();
    check(&out, 3, "bench -c 2 --shard 2/3");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard 2/3 has no user"));
}

#[test]
fn shard_timelines_merge_onto_one_grid() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/health", t.base_url());
    let inputs = bench_shards(&url, &["--rate", "90/s", "-d", "3s"], dir.path());
    let (_, merged) = merge(&inputs, &[], dir.path());
    assert_eq!(merged.overall.status_counts["200"], merged.overall.requests);
    let s = merged.timeline.samples();
    assert!(s.len() >= 3, "{s:?}");
    let w = s.iter().map(|x| x.window).fold(0.0, f64::max);
    for x in s {
        let k = x.t / w;
        assert!((k - k.round()).abs() < 1e-9, "{x:?} is off the {w} s grid");
    }
    for pair in s.windows(2) {
        assert!(pair[0].t + pair[0].window <= pair[1].t, "{pair:?} overlap");
    }
    // Every request is in exactly one window, and the windows' histograms
    // add up to the merged histogram: window percentiles are exact.
    assert_eq!(
        s.iter().map(|x| x.requests).sum::<u64>(),
        merged.overall.requests
    );
    let mut all = convoy::metrics::LatencyHistogram::new();
    for x in s {
        let h = x.latency.as_ref().expect("window histogram").decode();
        assert_eq!(x.p99_ms, h.quantile_micros(0.99) as f64 / 1000.0);
        all.merge(&h);
    }
    assert_eq!(all, merged.overall.histograms.latency);
}
