//! Regression detection on synthetic runs: a real slowdown is flagged, the
//! same-sized move in a history that shows that much noise is not, and the
//! history is filtered to comparable runs.

mod report_support;

use convoy::report::compare::{Change, Comparison, Figure, compare};
use convoy::report::{Report, history, json};
use report_support::synthetic;

/// Eight earlier runs whose medians move by the given factors around 100 ms.
fn history_with(factors: &[f64]) -> Vec<Report> {
    factors
        .iter()
        .enumerate()
        .map(|(i, f)| synthetic(&format!("h{i}"), i as u64, 100.0 * f, 0, 1000 + i as u64))
        .collect()
}

fn change(c: &Comparison, step: &str, figure: Figure) -> Change {
    c.rows
        .iter()
        .find(|r| r.step == step && r.figure == figure)
        .unwrap_or_else(|| panic!("no row {step} {figure:?}"))
        .change
}

const CALM: [f64; 8] = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0];
const NOISY: [f64; 8] = [0.85, 1.12, 0.95, 1.15, 0.9, 1.05, 0.88, 1.1];

#[test]
fn a_real_slowdown_is_flagged() {
    let history = history_with(&CALM);
    let base = synthetic("base", 10, 100.0, 0, 1);
    let current = synthetic("current", 11, 130.0, 0, 2);
    let c = compare(&base, &current, &history, 0.10);
    assert_eq!(c.history_runs, 8);
    for step in ["overall", "create_order"] {
        for f in [Figure::P50, Figure::P95, Figure::P99] {
            assert_eq!(change(&c, step, f), Change::Regression, "{step} {f:?}");
        }
        assert_eq!(change(&c, step, Figure::Rps), Change::Unchanged);
        assert_eq!(change(&c, step, Figure::ErrorRate), Change::Unchanged);
    }
    assert!(c.has_regressions());
    let row = c
        .rows
        .iter()
        .find(|r| r.step == "create_order" && r.figure == Figure::P95)
        .unwrap();
    let rel = row.relative.unwrap();
    assert!((0.2..0.4).contains(&rel), "about +30%: {rel}");
    assert!(row.noise.unwrap() < row.delta.unwrap());
    assert!(c.summary().starts_with("6 regressions"), "{}", c.summary());
}

#[test]
fn noise_the_history_has_seen_is_not_a_regression() {
    let history = history_with(&NOISY);
    // Baseline on a fast night, current on a slow one: +24 %, well beyond
    // a 10 % tolerance, but the history swings that much with no change.
    let base = synthetic("base", 10, 90.0, 0, 1);
    let current = synthetic("current", 11, 112.0, 0, 2);
    let c = compare(&base, &current, &history, 0.10);
    assert!(
        !c.has_regressions(),
        "{}",
        convoy::report::text::render_comparison(&c)
    );
    assert_eq!(change(&c, "overall", Figure::P50), Change::Noise);
    // Without the history the same pair is beyond the noise within the
    // two runs (2,000 samples each), but run-to-run noise is unknown: it
    // is listed as unconfirmed, not failed.
    let blind = compare(&base, &current, &[], 0.10);
    assert_eq!(blind.history_runs, 0);
    assert_eq!(change(&blind, "overall", Figure::P50), Change::Unconfirmed);
    assert!(!blind.has_regressions());
    assert!(
        blind
            .summary()
            .contains("no history: noise within the runs")
    );
    assert!(
        blind.summary().contains("unconfirmed"),
        "{}",
        blind.summary()
    );
}

#[test]
fn a_slowdown_beyond_even_a_noisy_history_is_flagged() {
    // Nine runs swinging ±15 %: σ ≈ 16 %, and Student's t for 8 degrees
    // of freedom puts the band at about 4.1 × √2 × σ ≈ 93 %. A doubling
    // sits on that edge; two and a half times is beyond it.
    let history = history_with(&NOISY);
    let base = synthetic("base", 10, 100.0, 0, 1);
    let current = synthetic("current", 11, 250.0, 0, 2);
    let c = compare(&base, &current, &history, 0.10);
    assert_eq!(change(&c, "overall", Figure::P95), Change::Regression);
    // The same doubling over a calm history of the same length is plain.
    let calm = compare(
        &base,
        &synthetic("current", 11, 200.0, 0, 2),
        &history_with(&CALM),
        0.10,
    );
    assert_eq!(change(&calm, "overall", Figure::P95), Change::Regression);
}

#[test]
fn faster_is_an_improvement_and_small_moves_are_unchanged() {
    let history = history_with(&CALM);
    let base = synthetic("base", 10, 100.0, 0, 1);
    let faster = synthetic("faster", 11, 60.0, 0, 2);
    let c = compare(&base, &faster, &history, 0.10);
    assert_eq!(change(&c, "overall", Figure::P95), Change::Improvement);
    assert!(!c.has_regressions());
    let same = synthetic("same", 11, 102.0, 0, 1);
    let c = compare(&base, &same, &history, 0.10);
    assert_eq!(change(&c, "overall", Figure::P50), Change::Unchanged);
}

#[test]
fn error_rates_use_a_floor_for_relative_change() {
    let history = history_with(&CALM);
    let base = synthetic("base", 10, 100.0, 0, 1);
    // One error in 2,000 (0.05 %) is 5 % of the 1 % floor: unchanged.
    let one = synthetic("one", 11, 100.0, 1, 1);
    assert_eq!(
        change(
            &compare(&base, &one, &history, 0.10),
            "overall",
            Figure::ErrorRate
        ),
        Change::Unchanged
    );
    // 40 in 2,000 (2 %) is a regression.
    let many = synthetic("many", 11, 100.0, 40, 1);
    assert_eq!(
        change(
            &compare(&base, &many, &history, 0.10),
            "overall",
            Figure::ErrorRate
        ),
        Change::Regression
    );
}

#[test]
fn only_comparable_runs_make_the_history() {
    let mut history = history_with(&NOISY);
    history[0].profile = Some("heavy".into());
    history[1].partial = true;
    history[2].scenario = Some("smoke".into());
    let current = synthetic("current", 11, 112.0, 0, 2);
    history.push(current.clone());
    let base = synthetic("base", 10, 90.0, 0, 1);
    let c = compare(&base, &current, &history, 0.10);
    assert_eq!(c.history_runs, 5, "8 + current - 3 incomparable - current");
    // Five runs plus the baseline still estimate the noise.
    let row = c.rows.iter().find(|r| r.figure == Figure::P50).unwrap();
    assert_eq!(row.history_values, 6);
    assert!(row.noise.is_some());
}

#[test]
fn steps_that_appear_or_vanish_are_reported_not_flagged() {
    let base = synthetic("base", 10, 100.0, 0, 1);
    let mut current = synthetic("current", 11, 100.0, 0, 1);
    current.steps[0].name = "create_order_v2".into();
    let c = compare(&base, &current, &[], 0.10);
    assert!(!c.has_regressions());
    assert_eq!(change(&c, "create_order_v2", Figure::P95), Change::Added);
    assert_eq!(change(&c, "create_order", Figure::P95), Change::Removed);
    assert_eq!(c.count(Change::Added), 5);
}

#[test]
fn history_directory_round_trip_prunes_and_skips_damage() {
    let dir = tempfile::tempdir().unwrap();
    for r in history_with(&CALM) {
        history::record(&r, dir.path(), Some(5)).unwrap();
    }
    std::fs::write(dir.path().join("damaged.json"), "{ not json").unwrap();
    let h = history::load(dir.path()).unwrap();
    let ids: Vec<_> = h.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["h3", "h4", "h5", "h6", "h7"], "oldest pruned, sorted");
    assert_eq!(h.skipped.len(), 1);
    assert!(h.skipped[0].0.ends_with("damaged.json"));
    let back = &h.runs[0];
    let original = &history_with(&CALM)[3];
    assert_eq!(json::render(back), json::render(original));
}

/// The row of `figure` for `step`.
fn row<'a>(
    c: &'a Comparison,
    step: &str,
    figure: Figure,
) -> &'a convoy::report::compare::FigureDelta {
    c.rows
        .iter()
        .find(|r| r.step == step && r.figure == figure)
        .unwrap()
}

#[test]
fn a_history_of_mostly_equal_runs_still_has_noise() {
    // Seven runs with the very same latencies (same seed: every percentile
    // identical, so the MAD is 0) and one that was 40 % slower, with no
    // change behind it.
    let mut history: Vec<Report> = (0..7)
        .map(|i| synthetic(&format!("h{i}"), i, 100.0, 0, 7))
        .collect();
    history.push(synthetic("h7", 7, 140.0, 0, 7));
    let p95s: Vec<f64> = history.iter().map(|r| r.overall.latency_ms.p95).collect();
    assert!(p95s[..7].iter().all(|v| *v == p95s[0]), "{p95s:?}");
    let base = synthetic("base", 8, 100.0, 0, 7);

    // +15 %: beyond the tolerance, but the history has seen +40 %.
    let current = synthetic("current", 9, 115.0, 0, 7);
    let c = compare(&base, &current, &history, 0.10);
    let p95 = row(&c, "overall", Figure::P95);
    let noise = p95.noise.expect("eight runs and the baseline");
    assert!(noise > 0.0, "the band did not collapse to 0");
    assert!(
        noise >= 0.15 * p95.baseline.unwrap(),
        "the band reflects the one run that moved: {noise}"
    );
    assert_eq!(p95.change, Change::Noise);
    assert!(
        !c.has_regressions(),
        "{}",
        convoy::report::text::render_comparison(&c)
    );

    // Twice as slow is beyond anything the history showed.
    let slow = synthetic("slow", 9, 200.0, 0, 7);
    let c = compare(&base, &slow, &history, 0.10);
    assert_eq!(change(&c, "overall", Figure::P95), Change::Regression);

    // And when every run was equal, the band is the histogram's resolution
    // at that latency (not 0): a +15 % move is a regression.
    let flat: Vec<Report> = (0..8)
        .map(|i| synthetic(&format!("f{i}"), i, 100.0, 0, 7))
        .collect();
    let c = compare(&base, &current, &flat, 0.10);
    let p95 = row(&c, "overall", Figure::P95);
    let resolution = convoy::report::compare::latency_resolution_ms(p95.baseline.unwrap());
    assert!(p95.noise.unwrap() >= resolution, "{:?}", p95.noise);
    assert_eq!(p95.change, Change::Regression);
}

#[test]
fn an_incomparable_baseline_is_named_in_the_comparison() {
    let base = synthetic("base", 0, 100.0, 0, 1);
    let mut current = synthetic("current", 1, 100.0, 0, 2);
    assert!(compare(&base, &current, &[], 0.10).mismatches.is_empty());
    current.profile = Some("heavy".into());
    current.scenario = Some("order_lifecycle, dispatch".into());
    current.shard = Some("0/2".parse().unwrap());
    current.steps[0].name = "create_order_v2".into();
    let c = compare(&base, &current, &[], 0.10);
    let fields: Vec<_> = c.mismatches.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["scenario", "profile", "steps", "shard"]);
    let warning = c.mismatch_warning().unwrap();
    assert!(
        warning.contains(r#"profile differs: baseline "moderate", this run "heavy""#),
        "{warning}"
    );
    assert!(
        warning.contains("shard differs: baseline the whole run, this run shard 0/2"),
        "{warning}"
    );
    assert!(
        warning.contains("steps differ: baseline also create_order, this run also create_order_v2"),
        "{warning}"
    );
}
