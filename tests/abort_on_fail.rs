//! What `--abort-on-fail` relies on to judge an `error_rate` gate early: the
//! bound on the requests one iteration makes
//! ([`convoy::cli::run::max_requests_per_iteration`]) really bounds what
//! the journeys send, for every built-in scenario and for a scenario that
//! logs in before every step. Were it too small, a run whose errors could
//! still end below the threshold would be stopped as lost.

mod engine_support;

use convoy::cli::run::{every_journey_once, max_requests_per_iteration};
use convoy::engine::RunResult;
use convoy::plan::LoadModel;
use convoy::scenario::{self, CustomRegistry, Scenario};
use convoy::target::{self, TargetConfig};

fn run(scenarios: Vec<Scenario>, model: &LoadModel) -> RunResult {
    let t = target::spawn(TargetConfig::default()).unwrap();
    engine_support::run_scenarios(
        &t.base_url(),
        scenarios,
        model,
        CustomRegistry::new(),
        false,
    )
}

#[test]
fn the_bound_covers_every_builtin_journey() {
    for name in scenario::builtin::NAMES {
        let s = scenario::load(name).unwrap();
        let bound = max_requests_per_iteration(std::slice::from_ref(&s))
            .unwrap_or_else(|| panic!("{name}: no bound"));
        let r = run(vec![s], &LoadModel::closed(2, 5));
        let started = r.iterations + r.interrupted;
        assert_eq!(started, 10, "{name}");
        let requests = r.overall().requests;
        assert!(requests > 0, "{name}");
        assert!(
            requests <= started * bound,
            "{name}: {requests} requests in {started} iterations, bound {bound} each"
        );
    }
}

#[test]
fn a_journey_that_logs_in_before_every_step_stays_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relogin.toml");
    std::fs::write(
        &path,
        r#"name = "relogin"

[auth]
path = "/api/auth/login"
body = { email = "{{ email }}", password = "{{ password }}" }
token = "/token"
renew_after = "0s"

[identities.acme_admin]
email = "admin@acme.test"
password = "convoy-demo"

[[step]]
name = "orders"
as = "acme_admin"
path = "/api/orders"
status = 200

[[step]]
name = "orders again"
as = "acme_admin"
path = "/api/orders"
status = 200
"#,
    )
    .unwrap();
    let s = scenario::load(path.to_str().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    let bound = max_requests_per_iteration(std::slice::from_ref(&s)).unwrap();
    // Two steps, each with its login, each of which a 401 could renew
    // (a second login and the request again): 8 at most, 4 when no
    // token is refused.
    assert_eq!(bound, 8, "two steps, each with its login and a renewal");
    let r = run(vec![s], &LoadModel::closed(1, 3));
    assert_eq!(r.check_failures(), 0);
    assert_eq!(r.overall().requests, 3 * 4);
}

#[test]
fn the_bound_of_a_mix_is_its_largest_journey() {
    let all: Vec<Scenario> = scenario::builtin::NAMES
        .iter()
        .map(|n| scenario::load(n).unwrap())
        .collect();
    let each: Vec<u64> = all
        .iter()
        .map(|s| max_requests_per_iteration(std::slice::from_ref(s)).unwrap())
        .collect();
    assert_eq!(max_requests_per_iteration(&all), each.iter().copied().max());
}

#[test]
fn a_smoke_plan_becomes_one_iteration_per_journey_of_the_cycle() {
    let smoke = convoy::profile::builtin("smoke").unwrap().model;
    let m = every_journey_once(&smoke, 6);
    match &m {
        LoadModel::Closed(c) => {
            assert_eq!(c.users.peak(), 1.0);
            assert_eq!(c.iterations_per_user, Some(6));
            assert_eq!(c.total_iterations, None);
        }
        LoadModel::Open(_) => panic!("stays closed"),
    }
    m.validate().unwrap();
}
