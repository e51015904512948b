//! Load profiles: how much load, and the SLA that goes with it.
//!
//! Built in, as seed 004 defines them:
//!
//! | profile | load | SLA gates |
//! |---|---|---|
//! | `smoke` | 1 user × 1 iteration per journey | every check passes |
//! | `light` | 5 users × 10 iterations | p95 < 500 ms, 100 % success |
//! | `moderate` | 20 users × 10 iterations | p95 < 1 s, > 99 % success |
//! | `heavy` | 100 users × 5 iterations | p95 < 2 s, > 95 % success |
//!
//! A smoke profile (one user, one iteration: `smoke`, or a file's profile
//! of that shape) runs every journey once when `convoy run` mixes several,
//! as `convoy smoke` does: the iteration count becomes one per journey of
//! the weighted cycle (`every_journey_once` in the `convoy` crate's `cli::run`).
//!
//! Users define their own in TOML files:
//!
//! ```toml
//! [profile.soak]
//! users = 50
//! duration = "10m"
//! ramp_up = "1m"
//! gates = ["p95 < 300ms", "error_rate < 0.1%"]
//!
//! [profile.peak]
//! rate = "200/s"            # open model
//! stages = "200/s,1m;500/s,5m;0/s,30s"
//! max_in_flight = 500
//! gates = ["p99 < 1s", "dropped == 0"]
//! ```
//!
//! What a plan can send ([`run_bound`], [`smoke_bound`]) is judged here too,
//! for the allow-list ([`crate::safety::check_load`]): a profile's shape
//! alone does not say it, the scenarios' weights, replays and probes do.
//!
//! Layering: above scenarios and gates (a profile names gates and knows
//! how journeys are cycled) and the safety leaf; the engine and reports
//! never import it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::plan::{
    ClosedModel, LoadModel, OpenModel, Ramp, Rate, Stage, parse_duration, parse_stages,
};
use crate::safety::LoadBound;
use crate::scenario::runner::{MAX_CYCLE, reduced_weights};
use crate::scenario::{Diagnostic, Scenario};

/// A load shape with its SLA gates.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// The load.
    pub model: LoadModel,
    /// SLA gates, in the gate syntax.
    pub gates: Vec<String>,
}

/// Names of the built-in profiles.
pub const BUILTIN: &[&str] = &["smoke", "light", "moderate", "heavy"];

fn gates(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A built-in profile by name.
pub fn builtin(name: &str) -> Option<Profile> {
    let (model, g) = match name {
        "smoke" => (LoadModel::closed(1, 1), gates(&["checks == 100%"])),
        "light" => (
            LoadModel::closed(5, 10),
            gates(&["p95 < 500ms", "error_rate == 0%", "checks == 100%"]),
        ),
        "moderate" => (
            LoadModel::closed(20, 10),
            gates(&["p95 < 1s", "error_rate < 1%"]),
        ),
        "heavy" => (
            LoadModel::closed(100, 5),
            gates(&["p95 < 2s", "error_rate < 5%"]),
        ),
        _ => return None,
    };
    Some(Profile {
        name: name.to_string(),
        model,
        gates: g,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    profile: BTreeMap<String, RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    users: Option<u32>,
    iterations: Option<u64>,
    duration: Option<Spanned<String>>,
    ramp_up: Option<Spanned<String>>,
    stages: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    max_in_flight: Option<u32>,
    max_lag: Option<Spanned<String>>,
    #[serde(default)]
    gates: Vec<Spanned<String>>,
}

/// Reads the profiles of a TOML file.
pub fn load_file(path: &Path) -> Result<Vec<Profile>, Diagnostic> {
    let bytes = crate::scenario::parse::read_bounded(path, crate::scenario::parse::MAX_FILE_BYTES)
        .map_err(|e| Diagnostic::file(path, format!("cannot read profile file: {e}")))?;
    if bytes.len() > crate::scenario::parse::MAX_FILE_BYTES {
        return Err(Diagnostic::file(
            path,
            "the profile file is larger than 4 MiB",
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Diagnostic::file(path, "the profile file is not valid UTF-8"))?;
    parse(path, &text)
}

/// Parses profile file `text`, which came from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Profile>, Diagnostic> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let d = Diagnostic::at(path, text, e.span().unwrap_or(0..0), e.message().trim());
        d.with_hint("profile keys: users, iterations, duration, ramp_up, stages, rate, max_in_flight, max_lag, gates")
    })?;
    let mut out = Vec::new();
    for (name, p) in raw.profile {
        let header = text.find(&format!("[profile.{name}]")).unwrap_or(0);
        let header = header..header + 9 + name.len();
        let bad = |span: std::ops::Range<usize>, m: String| {
            Diagnostic::at(path, text, span, format!("profile {name}: {m}"))
        };
        let dur = |s: &Option<Spanned<String>>| {
            s.as_ref()
                .map(|v| parse_duration(v.get_ref()).map_err(|e| bad(v.span(), e.to_string())))
                .transpose()
        };
        let model = if let Some(rate) = &p.rate {
            let r: Rate = rate
                .get_ref()
                .parse()
                .map_err(|e: crate::plan::PlanError| bad(rate.span(), e.to_string()))?;
            let ramp = match (&p.stages, dur(&p.duration)?) {
                // As k6's ramping-arrival-rate: `rate` is the start rate
                // the first stage ramps from ("0/s" ramps from zero).
                (Some(s), _) => Ramp {
                    start: r.0,
                    stages: parse_stages(s.get_ref(), true)
                        .map_err(|e| bad(s.span(), e.to_string()))?,
                },
                (None, Some(d)) => Ramp::constant(r.0, d),
                (None, None) => {
                    return Err(bad(
                        header.clone(),
                        "an open-model profile needs duration or stages".into(),
                    ));
                }
            };
            LoadModel::Open(OpenModel {
                rate: ramp,
                max_in_flight: p.max_in_flight.unwrap_or(100),
                max_lag: dur(&p.max_lag)?.unwrap_or(Duration::from_secs(1)),
                total_iterations: p.iterations,
            })
        } else {
            let users = p.users.unwrap_or(1) as f64;
            let ramp = match (&p.stages, dur(&p.ramp_up)?) {
                (Some(s), _) => Ramp {
                    start: 0.0,
                    stages: parse_stages(s.get_ref(), false)
                        .map_err(|e| bad(s.span(), e.to_string()))?,
                },
                (None, Some(r)) => {
                    let mut ramp = Ramp {
                        start: 0.0,
                        stages: vec![Stage {
                            target: users,
                            duration: r,
                        }],
                    };
                    if let Some(d) = dur(&p.duration)? {
                        ramp.stages.push(Stage {
                            target: users,
                            duration: d,
                        });
                    }
                    ramp
                }
                (None, None) => Ramp::constant(users, Duration::ZERO),
            };
            let duration = match (dur(&p.ramp_up)?, dur(&p.duration)?, &p.stages) {
                (Some(r), Some(d), _) => Some(r + d),
                // Stages bound the run by their total, even a single one.
                (_, None, Some(_)) => Some(ramp.duration()),
                (_, d, _) => d,
            };
            LoadModel::Closed(ClosedModel {
                users: ramp,
                iterations_per_user: p.iterations,
                total_iterations: None,
                duration,
            })
        };
        model
            .validate()
            .map_err(|e| bad(header.clone(), e.to_string()))?;
        for g in &p.gates {
            if let Err(e) = g.get_ref().parse::<crate::gate::Gate>() {
                let at = crate::scenario::diagnostic::column_in_string(
                    text,
                    g.span(),
                    g.get_ref(),
                    e.column,
                );
                return Err(bad(
                    at,
                    format!("invalid gate {:?}: {}", g.get_ref(), e.message),
                ));
            }
        }
        out.push(Profile {
            name,
            model,
            gates: p.gates.into_iter().map(Spanned::into_inner).collect(),
        });
    }
    Ok(out)
}

/// Finds profile `name` in `files` (later files win) or among the built-ins.
pub fn resolve(name: &str, files: &[std::path::PathBuf]) -> Result<Profile, String> {
    for f in files.iter().rev() {
        let profiles = load_file(f).map_err(|d| d.to_string())?;
        if let Some(p) = profiles.into_iter().find(|p| p.name == name) {
            return Ok(p);
        }
    }
    builtin(name).ok_or_else(|| {
        let hint = crate::scenario::diagnostic::did_you_mean(name, BUILTIN.iter().copied())
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        format!(
            "unknown profile \"{name}\"{hint}: built-in profiles are {}; define others with --profiles FILE",
            BUILTIN.join(", ")
        )
    })
}

/// The connections one user of a run over `scenarios` may hold besides its
/// own for requests: the streams of every journey it subscribes in, kept
/// across iterations.
pub fn held_connections(scenarios: &[Scenario]) -> u64 {
    scenarios
        .iter()
        .map(Scenario::held_connections)
        .fold(0, u64::saturating_add)
}

/// An upper bound on what `convoy run` with `model` over `scenarios` sends
/// to the target. A smoke-shaped model runs one iteration per journey of the
/// weighted cycle (as `every_journey_once` in the `convoy` crate makes it),
/// so weights of 1000000 and 999999 make a cycle of [`MAX_CYCLE`]
/// iterations; any other model runs its iteration cap, each iteration any
/// journey. Requests: iterations times the most one iteration sends;
/// in flight: users times the most one iteration has at once, the streams
/// a user holds included (every journey's: a user keeps them across
/// iterations); users: the model's peak. Shards split
/// this whole run: the bound is the run's, not one shard's.
pub fn run_bound(model: &LoadModel, scenarios: &[Scenario]) -> LoadBound {
    let per_iteration: Option<Vec<u64>> = scenarios
        .iter()
        .map(Scenario::max_target_requests_per_iteration)
        .collect();
    // A user keeps the streams of every journey it has run open while it
    // sends its requests, and any user may run every journey.
    let in_flight_each = scenarios
        .iter()
        .map(Scenario::max_in_flight_per_iteration)
        .max()
        .unwrap_or(1)
        .saturating_add(held_connections(scenarios));
    let requests = per_iteration.and_then(|each| {
        let most = each.iter().copied().max().unwrap_or(0);
        if model.is_smoke() {
            let weights: Vec<u32> = scenarios.iter().map(|s| s.weight).collect();
            let reduced = reduced_weights(&weights);
            let total: u64 = reduced.iter().map(|&w| u64::from(w)).sum();
            if total <= u64::from(MAX_CYCLE) {
                // A whole cycle runs each journey its reduced weight's
                // times, wherever it starts.
                Some(
                    reduced
                        .iter()
                        .zip(&each)
                        .map(|(&w, &n)| u64::from(w).saturating_mul(n))
                        .fold(0u64, u64::saturating_add),
                )
            } else {
                Some(u64::from(MAX_CYCLE).saturating_mul(most))
            }
        } else {
            model
                .max_iterations()
                .map(|iterations| iterations.saturating_mul(most))
        }
    });
    let in_flight = match model {
        LoadModel::Closed(_) if requests.is_some() => {
            Some(u64::from(model.max_users()).saturating_mul(in_flight_each))
        }
        _ => None,
    };
    LoadBound {
        requests,
        in_flight,
        users: match model {
            LoadModel::Closed(_) => Some(u64::from(model.max_users())),
            LoadModel::Open(_) => None,
        },
    }
}

/// An upper bound on what `convoy smoke --iterations N` over `scenarios`
/// sends: each scenario `iterations` times, one after another, by one
/// user. Every repetition counts: `--iterations 20` of the built-ins is
/// load, not a smoke.
pub fn smoke_bound(scenarios: &[Scenario], iterations: u64) -> LoadBound {
    let requests = scenarios
        .iter()
        .map(Scenario::max_target_requests_per_iteration)
        .try_fold(0u64, |sum, n| Some(sum.saturating_add(n?)))
        .map(|once| once.saturating_mul(iterations));
    LoadBound {
        requests,
        // Each journey runs on its own, its held streams closed when it
        // ends: at most one journey's streams are open beside a request.
        in_flight: requests.map(|_| {
            scenarios
                .iter()
                .map(|s| {
                    s.max_in_flight_per_iteration()
                        .saturating_add(s.held_connections())
                })
                .max()
                .unwrap_or(1)
        }),
        users: Some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users, iterations per user and gates of a built-in profile.
    fn shape(name: &str) -> (f64, Option<u64>, Vec<String>) {
        let p = builtin(name).unwrap_or_else(|| panic!("{name} is built in"));
        p.model.validate().unwrap();
        match p.model {
            LoadModel::Closed(c) => {
                assert_eq!(c.total_iterations, None, "{name}");
                assert_eq!(c.duration, None, "{name}: bounded by iterations");
                (c.users.peak(), c.iterations_per_user, p.gates)
            }
            LoadModel::Open(_) => panic!("{name}: closed"),
        }
    }

    #[test]
    fn builtins_match_seed_004() {
        // Seed 004: light 5 × 10, < 500 ms, 100 % success; moderate 20 × 10,
        // < 1000 ms, > 99 % success; heavy 100 × 5, < 2000 ms, > 95 %
        // success. Success is written as the error rate.
        let expected: [(&str, f64, u64, &[&str]); 4] = [
            ("smoke", 1.0, 1, &["checks == 100%"]),
            (
                "light",
                5.0,
                10,
                &["p95 < 500ms", "error_rate == 0%", "checks == 100%"],
            ),
            ("moderate", 20.0, 10, &["p95 < 1s", "error_rate < 1%"]),
            ("heavy", 100.0, 5, &["p95 < 2s", "error_rate < 5%"]),
        ];
        assert_eq!(
            BUILTIN.to_vec(),
            expected.iter().map(|e| e.0).collect::<Vec<_>>()
        );
        for (name, users, iterations, gates) in expected {
            assert_eq!(
                shape(name),
                (
                    users,
                    Some(iterations),
                    gates.iter().map(|g| g.to_string()).collect()
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn builtin_slas_mean_what_seed_004_says() {
        use crate::gate::{Gate, Metric, Op, Threshold};
        let gate = |name: &str, metric: Metric| -> Gate {
            let p = builtin(name).unwrap();
            let gates: Vec<Gate> = p.gates.iter().map(|g| g.parse().unwrap()).collect();
            gates
                .into_iter()
                .find(|g| g.metric == metric)
                .unwrap_or_else(|| panic!("{name} has a {metric} gate"))
        };
        let p95 = |name| {
            let g = gate(name, Metric::P95);
            (g.op, g.threshold)
        };
        assert_eq!(p95("light"), (Op::Lt, Threshold::Value(500.0)));
        assert_eq!(p95("moderate"), (Op::Lt, Threshold::Value(1000.0)));
        assert_eq!(p95("heavy"), (Op::Lt, Threshold::Value(2000.0)));
        // Success rate s is 1 - error_rate: 100 %, > 99 %, > 95 %.
        let success_holds = |name, success: f64| {
            let g = gate(name, Metric::ErrorRate);
            let Threshold::Value(limit) = g.threshold else {
                panic!("{name}: a fixed threshold")
            };
            g.op.holds(1.0 - success, limit)
        };
        assert!(success_holds("light", 1.0));
        assert!(!success_holds("light", 0.9999));
        assert!(success_holds("moderate", 0.9901));
        assert!(!success_holds("moderate", 0.99));
        assert!(success_holds("heavy", 0.9501));
        assert!(!success_holds("heavy", 0.95));
        // Only smoke is light enough to go to any host without --allow-host.
        for name in BUILTIN {
            assert_eq!(builtin(name).unwrap().model.is_smoke(), *name == "smoke");
        }
    }

    #[test]
    fn files_define_closed_and_open_profiles() {
        let text = r#"
[profile.soak]
users = 50
duration = "10m"
ramp_up = "1m"
gates = ["p95 < 300ms"]

[profile.peak]
rate = "200/s"
duration = "30s"
max_in_flight = 300
"#;
        let ps = parse(Path::new("p.toml"), text).unwrap();
        let soak = ps.iter().find(|p| p.name == "soak").unwrap();
        assert_eq!(
            soak.model.planned_duration(),
            Some(Duration::from_secs(660))
        );
        let peak = ps.iter().find(|p| p.name == "peak").unwrap();
        assert!(matches!(&peak.model, LoadModel::Open(o) if o.max_in_flight == 300));
    }

    #[test]
    fn stages_bound_the_run_and_rate_is_where_open_stages_start() {
        let text = r#"
[profile.one_stage]
stages = "10,1s"

[profile.ramp_from_rate]
rate = "999/s"
stages = "50/s,1s"
"#;
        let ps = parse(Path::new("p.toml"), text).unwrap();
        let one = ps.iter().find(|p| p.name == "one_stage").unwrap();
        assert_eq!(one.model.planned_duration(), Some(Duration::from_secs(1)));
        let ramp = ps.iter().find(|p| p.name == "ramp_from_rate").unwrap();
        assert!(
            matches!(&ramp.model, LoadModel::Open(o) if o.rate.start == 999.0),
            "{:?}",
            ramp.model
        );
    }

    #[test]
    fn mistakes_are_located() {
        let e = parse(
            Path::new("p.toml"),
            "[profile.x]\nusers = 5\nduraton = \"1m\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = parse(
            Path::new("p.toml"),
            "[profile.x]\nusers = 5\niterations = 1\ngates = [\"p95 <\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid gate"), "{e}");
        assert!(
            resolve("lihgt", &[])
                .unwrap_err()
                .contains("did you mean \"light\"")
        );
    }
}
