//! The allow-list counts what a plan can send, not the profile's shape: a
//! plan whose upper bound on requests or requests in flight exceeds the
//! smoke allowance is refused against a host that is neither loopback nor
//! allowed, before any lookup or connection; every built-in scenario and
//! every preset still fits the allowance, by `convoy smoke` and by
//! `convoy run -p smoke`.
//!
//! The refused target is `not-allowed.invalid`: `.invalid` never resolves
//! (RFC 6761), so a refusal that came after a lookup or a connection would
//! be "target unreachable" (exit 4), not the allow-list's exit 3.

mod cli_support;

use std::path::Path;
use std::process::Output;

use cli_support::{convoy_as_is, stderr};
use convoy::profile::{run_bound, smoke_bound};
use convoy::safety::{SMOKE_MAX_IN_FLIGHT, SMOKE_MAX_REQUESTS, SMOKE_MAX_USERS};
use convoy::scenario::{self, Scenario};
use convoy::target::{self, TargetConfig};

const REFUSED: &str = "https://not-allowed.invalid";
const ALLOWANCE: &str = "smoke allowance of 500 requests, 20 at once, from 1 user";

/// Exit 3, naming the bound, the allowance and the flag for the host.
fn assert_refused(out: &Output, bound: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(bound), "expected {bound:?} in:\n{err}");
    assert!(err.contains(ALLOWANCE), "{err}");
    assert!(err.contains("--allow-host not-allowed.invalid"), "{err}");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn presets() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/presets");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p.to_string_lossy().ends_with(".profiles.toml")
        })
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn load(names: &[String]) -> Vec<Scenario> {
    names
        .iter()
        .map(|n| scenario::load(n).unwrap_or_else(|d| panic!("{d}")))
        .collect()
}

#[test]
fn the_allowance_documented_is_the_one_enforced() {
    assert_eq!(SMOKE_MAX_REQUESTS, 500);
    assert_eq!(SMOKE_MAX_IN_FLIGHT, 20);
    assert_eq!(SMOKE_MAX_USERS, 1);
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        readme.contains("at most 500 requests, 20 at once, from 1 user"),
        "the README states the allowance"
    );
}

#[test]
fn every_builtin_scenario_and_preset_fits_the_smoke_allowance_by_both_commands() {
    let smoke = convoy::profile::builtin("smoke").unwrap().model;
    let builtins: Vec<String> = scenario::builtin::NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut sets: Vec<Vec<String>> = vec![builtins.clone()];
    sets.extend(builtins.iter().map(|n| vec![n.clone()]));
    sets.extend(presets().into_iter().map(|p| vec![p]));
    assert_eq!(sets.len(), 1 + builtins.len() + 5, "five presets");
    for names in sets {
        let scenarios = load(&names);
        for (command, bound) in [
            ("smoke", smoke_bound(&scenarios, 1)),
            ("run -p smoke", run_bound(&smoke, &scenarios)),
        ] {
            assert!(bound.is_smoke(), "{command} {names:?}: {bound}");
        }
    }
}

#[test]
fn the_smoke_bound_really_bounds_what_convoy_smoke_sends() {
    let t = target::spawn(TargetConfig::default()).unwrap();
    let out = convoy_as_is(&["smoke", "--json", "--no-reports", "--target", &t.base_url()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = report["overall"]["requests"].as_u64().unwrap();
    let names: Vec<String> = scenario::builtin::NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let bound = smoke_bound(&load(&names), 1).requests.unwrap();
    assert!(sent > 0 && sent <= bound, "{sent} requests, bound {bound}");
}

#[test]
fn heavy_weights_make_run_p_smoke_a_load_refused_before_any_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let heavy = write(
        dir.path(),
        "heavy.toml",
        "name = \"heavy\"\nweight = 1000000\n\n[[step]]\npath = \"/health\"\nstatus = 200\n",
    );
    let light = write(
        dir.path(),
        "light.toml",
        "name = \"light\"\nweight = 999999\n\n[[step]]\npath = \"/health\"\nstatus = 200\n",
    );
    let out = convoy_as_is(&[
        "run",
        &heavy,
        &light,
        "--profile",
        "smoke",
        "--no-reports",
        "--target",
        REFUSED,
    ]);
    // The cycle of 1999999 iterations is cut at 100000, one request each.
    assert_refused(
        &out,
        "refusing to send up to 100000 requests, 1 at once, from 1 user to",
    );
    // Allowed by name, the same plan passes the allow-list and stops only
    // at the lookup.
    let out = convoy_as_is(&[
        "run",
        &heavy,
        &light,
        "--profile",
        "smoke",
        "--no-reports",
        "--target",
        REFUSED,
        "--allow-host",
        "not-allowed.invalid",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
}

#[test]
fn a_large_concurrent_replay_is_refused_in_smoke_and_run_but_goes_to_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let replay = |times: u32| {
        format!(
            "name = \"replays\"\n\n[[step]]\nmethod = \"POST\"\npath = \"/api/orders\"\n\n[step.replay]\ntimes = {times}\nconcurrent = true\nid = \"/id\"\n"
        )
    };
    let big = write(dir.path(), "big.toml", &replay(1000));
    for command in [
        vec!["smoke", &big, "--no-reports", "--target", REFUSED],
        vec![
            "run",
            &big,
            "--profile",
            "smoke",
            "--no-reports",
            "--target",
            REFUSED,
        ],
    ] {
        let out = convoy_as_is(&command);
        assert_refused(
            &out,
            "refusing to send up to 1000 requests, 1000 at once, from 1 user to",
        );
    }
    // Few requests, too many at once.
    let wide = write(dir.path(), "wide.toml", &replay(21));
    let out = convoy_as_is(&["smoke", &wide, "--no-reports", "--target", REFUSED]);
    assert_refused(&out, "up to 21 requests, 21 at once, from 1 user");
    // The same plan to loopback is not the allow-list's business.
    let t = target::spawn(TargetConfig::default()).unwrap();
    let out = convoy_as_is(&["smoke", &wide, "--no-reports", "--target", &t.base_url()]);
    assert!(!stderr(&out).contains("refusing"), "{}", stderr(&out));
    assert_ne!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_duration_or_open_model_is_never_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = write(
        dir.path(),
        "p.profiles.toml",
        "[profile.one-user-for-a-second]\nusers = 1\nduration = \"1s\"\n\n[profile.trickle]\nrate = \"1/s\"\nduration = \"1s\"\nmax_in_flight = 1\n",
    );
    for profile in ["one-user-for-a-second", "trickle"] {
        let out = convoy_as_is(&[
            "run",
            "health",
            "--profiles",
            &profiles,
            "--profile",
            profile,
            "--no-reports",
            "--target",
            REFUSED,
        ]);
        assert_refused(&out, "an unbounded number of requests");
    }
}

#[test]
fn few_requests_from_several_users_are_load() {
    // `light` on `health`: 50 requests, 5 users.
    let out = convoy_as_is(&[
        "run",
        "health",
        "--profile",
        "light",
        "--no-reports",
        "--target",
        REFUSED,
    ]);
    assert_refused(&out, "up to 50 requests, 5 at once, from 5 users");
}

#[test]
fn builtin_smoke_still_goes_to_any_host() {
    // Refused only by the lookup, after the allow-list let it through.
    for command in [
        vec!["smoke", "--no-reports", "--target", REFUSED],
        vec![
            "run",
            "--profile",
            "smoke",
            "--no-reports",
            "--target",
            REFUSED,
        ],
    ] {
        let out = convoy_as_is(&command);
        let err = stderr(&out);
        assert!(!err.contains("refusing"), "{err}");
        assert_eq!(out.status.code(), Some(4), "{err}");
    }
}
