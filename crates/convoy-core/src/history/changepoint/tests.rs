//! The change-point method's properties, on seeded synthetic series.

use super::*;

/// `n` points around `level` with Gaussian noise of relative size `sd`,
/// from a seeded generator.
fn noisy(rng: &mut fastrand::Rng, n: usize, level: f64, sd: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            // Box–Muller.
            let (u, v) = (1.0 - rng.f64(), rng.f64());
            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            level * (1.0 + sd * z)
        })
        .collect()
}

fn step_series(seed: u64, shift: f64, at: usize, len: usize) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut xs = noisy(&mut rng, at, 100.0, 0.01);
    xs.extend(noisy(&mut rng, len - at, 100.0 * (1.0 + shift), 0.01));
    xs
}

#[test]
fn steps_of_every_size_are_found_where_they_land() {
    for (seed, shift) in [(1, 0.05), (2, 0.10), (3, 0.20), (4, 0.50), (5, -0.20)] {
        let xs = step_series(seed, shift, 30, 60);
        let cps = detect(&xs, &Options::default());
        assert_eq!(cps.len(), 1, "shift {shift}: {cps:?}");
        let cp = cps[0];
        assert_eq!(cp.index, 30, "shift {shift}");
        let m = cp.magnitude.unwrap();
        // Levels are medians: within 2 % of the planted shift.
        assert!((m - shift).abs() < 0.02, "shift {shift}: magnitude {m}");
        assert!(cp.p_value <= 0.001);
        assert!((cp.before - 100.0).abs() < 1.0);
    }
}

#[test]
fn a_step_in_a_long_series_is_found_across_windows() {
    // 130 points: the step at 100 lies beyond the first two windows.
    let xs = step_series(9, 0.10, 100, 130);
    let cps = detect(&xs, &Options::default());
    assert_eq!(cps.iter().map(|c| c.index).collect::<Vec<_>>(), [100]);
}

#[test]
fn two_steps_are_two_change_points() {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut xs = noisy(&mut rng, 20, 100.0, 0.01);
    xs.extend(noisy(&mut rng, 20, 120.0, 0.01));
    xs.extend(noisy(&mut rng, 20, 90.0, 0.01));
    let cps = detect(&xs, &Options::default());
    assert_eq!(cps.iter().map(|c| c.index).collect::<Vec<_>>(), [20, 40]);
    assert!((cps[1].before - 120.0).abs() < 1.5);
}

#[test]
fn single_run_spikes_are_not_change_points() {
    let mut rng = fastrand::Rng::with_seed(21);
    let mut xs = noisy(&mut rng, 60, 100.0, 0.01);
    for i in [7, 25, 44, 59] {
        xs[i] *= 1.5;
    }
    assert_eq!(detect(&xs, &Options::default()), []);
}

#[test]
fn a_blip_that_returns_is_not_a_change_point() {
    let mut rng = fastrand::Rng::with_seed(31);
    let mut xs = noisy(&mut rng, 60, 100.0, 0.01);
    xs[30] *= 1.2;
    xs[31] *= 1.2;
    assert_eq!(detect(&xs, &Options::default()), []);
    // The same move held for the rest of the series is one.
    for x in &mut xs[32..] {
        *x *= 1.2;
    }
    let cps = detect(&xs, &Options::default());
    assert_eq!(cps.iter().map(|c| c.index).collect::<Vec<_>>(), [30]);
}

#[test]
fn two_slow_nights_are_a_blip_once_they_return() {
    // The newest two nights 30 % slower. Until the next night nobody
    // can tell a blip from a new level; with a level of min_run (4)
    // nights needed, most of them moved, and no change resting on one
    // night, few of these 100 series show a change that night (19
    // with min_run 3 alone). Once two ordinary nights follow, none
    // does.
    let series = |seed: u64| {
        let mut rng = fastrand::Rng::with_seed(4100 + seed);
        let mut xs = noisy(&mut rng, 47, 100.0, 0.02);
        xs[45] *= 1.3;
        xs[46] *= 1.3;
        let after = noisy(&mut rng, 2, 100.0, 0.02);
        (xs, after)
    };
    let mut early = 0;
    for seed in 0..100 {
        let (mut xs, after) = series(seed);
        early += usize::from(!detect(&xs, &Options::default()).is_empty());
        xs.extend(after);
        assert_eq!(detect(&xs, &Options::default()), [], "seed {seed}");
    }
    assert!(early <= 5, "{early} of 100");
    // Two more slow nights instead make it a change, dated where it
    // landed.
    let (mut xs, _) = series(0);
    xs.extend([130.5, 129.6]);
    let cps = detect(&xs, &Options::default());
    assert_eq!(cps.iter().map(|c| c.index).collect::<Vec<_>>(), [45]);
}

#[test]
fn quiet_series_rarely_raise_a_change() {
    // Without the correction for the search, 5 of these 200 quiet
    // Gaussian series of 60 points raised a change at p <= 0.001.
    let alarms: Vec<u64> = (0..200)
        .filter(|&seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            !detect(&noisy(&mut rng, 60, 100.0, 0.03), &Options::default()).is_empty()
        })
        .collect();
    println!("quiet series with a change: {} of 200", alarms.len());
    assert!(alarms.len() <= 1, "{alarms:?}");
}

#[test]
fn heavy_tailed_quiet_series_rarely_raise_a_change() {
    // Latency-like noise: mostly 2 %, one night in ten 30 % slower.
    let alarms = (0..200)
        .filter(|&seed| {
            let mut rng = fastrand::Rng::with_seed(1000 + seed);
            let mut xs = noisy(&mut rng, 60, 100.0, 0.02);
            for x in &mut xs {
                if rng.f64() < 0.1 {
                    *x *= 1.3;
                }
            }
            !detect(&xs, &Options::default()).is_empty()
        })
        .count();
    println!("heavy-tailed quiet series with a change: {alarms} of 200");
    assert!(alarms <= 2, "{alarms}");
}

#[test]
fn the_search_correction_grows_with_the_splits_searched() {
    // One split: nothing to correct.
    assert!((searched(0.01, 6, 3) - 0.01).abs() < 1e-15);
    // 45 splits of a 50-point window: about 45 times as likely.
    let p = searched(1e-5, 50, 3);
    assert!((p - 45.0 * 1e-5).abs() < 1e-7, "{p}");
    assert_eq!(searched(0.5, 50, 3), 1.0 - 0.5f64.powi(45));
    assert_eq!(searched(0.0, 50, 3), 0.0);
}

#[test]
fn the_fast_energy_statistic_is_the_definition() {
    // The definition, straight from the paper, for the check.
    fn naive(left: &[f64], right: &[f64]) -> f64 {
        let within = |xs: &[f64]| {
            let k = xs.len();
            if k < 2 {
                return 0.0;
            }
            let mut sum = 0.0;
            for i in 0..k {
                for j in i + 1..k {
                    sum += (xs[i] - xs[j]).abs();
                }
            }
            sum / (k * (k - 1) / 2) as f64
        };
        let (m, n) = (left.len() as f64, right.len() as f64);
        let across: f64 = left
            .iter()
            .map(|a| right.iter().map(|b| (a - b).abs()).sum::<f64>())
            .sum::<f64>()
            / (m * n);
        (2.0 * across - within(left) - within(right)) * m * n / (m + n)
    }
    let xs = step_series(5, 0.1, 13, 31);
    let (best, q) = best_split(&xs, 2, 29, 3).unwrap();
    let seg = &xs[2..29];
    let mut expected = (0, f64::MIN);
    for tau in 3..=seg.len() - 3 {
        let q = naive(&seg[..tau], &seg[tau..]);
        if q > expected.1 {
            expected = (2 + tau, q);
        }
    }
    assert_eq!(best, expected.0);
    assert!(
        (q - expected.1).abs() < 1e-9 * expected.1.abs(),
        "{q} vs {expected:?}"
    );
}

#[test]
fn a_change_is_flagged_once_on_the_night_it_is_confirmed() {
    let mut rng = fastrand::Rng::with_seed(51);
    let mut xs = noisy(&mut rng, 30, 100.0, 0.01);
    xs.extend(noisy(&mut rng, 10, 120.0, 0.01));
    let o = Options::default();
    // Night by night, as a nightly gate sees the history grow.
    let mut flagged = Vec::new();
    for night in 0..xs.len() {
        let seen = &xs[..=night];
        for cp in detect(seen, &o) {
            if flagged_runs_ago(seen, &cp, &o, 1) == Some(0) {
                flagged.push((night, cp.index));
            }
        }
    }
    // Landed at 30; flagged once, on the night its new level has held
    // min_run (4) nights.
    assert_eq!(flagged, [(33, 30)]);
    let cp = detect(&xs, &o)[0];
    assert_eq!(flagged_runs_ago(&xs, &cp, &o, 50), Some(6));
    assert_eq!(flagged_runs_ago(&xs, &cp, &o, 5), None);
    // Welch's test needs more nights: a few points leave it few
    // degrees of freedom.
    let welch = Options {
        test: LevelTest::Welch,
        max_p_value: 0.001,
        ..o
    };
    let first = (0..xs.len())
        .find(|&night| !detect(&xs[..=night], &welch).is_empty())
        .unwrap();
    assert!(first > 33, "{first}");
}

#[test]
fn a_change_that_wavers_is_still_flagged_once() {
    // 8 % shifts over 3 % noise: near the threshold, so some nights'
    // analyses lose the change, or date it a few nights off, and find
    // it again. Counting only from yesterday's analysis and within a
    // level's length of the date, 11 of these 40 series were flagged
    // twice; now 1 is (its first alarm came 2 nights after the shift,
    // dated 8 nights before it, with the noise leaning the same way).
    let o = Options::default();
    let (mut found, mut twice) = (0, 0);
    for seed in 0..40 {
        let mut rng = fastrand::Rng::with_seed(700 + seed);
        let mut xs = noisy(&mut rng, 30, 100.0, 0.03);
        xs.extend(noisy(&mut rng, 16, 108.0, 0.03));
        let nights = (30..xs.len())
            .filter(|&night| {
                let seen = &xs[..=night];
                detect(seen, &o).iter().any(|c| {
                    c.after > c.before && flagged_runs_ago(seen, c, &o, o.window) == Some(0)
                })
            })
            .count();
        found += usize::from(nights > 0);
        twice += usize::from(nights > 1);
    }
    println!("found {found} of 40, {twice} flagged twice");
    assert!(twice <= 1, "{twice} of 40 flagged twice");
    assert!(found >= 30, "{found} of 40 found");
}

#[test]
fn a_move_within_the_runs_noise_is_not_a_change() {
    // A 2 % step over 1 % noise held for 30 nights is significant for
    // the t-test and about 2σ of the runs: kept at 1σ, dropped at 3σ.
    let xs = step_series(61, 0.02, 30, 60);
    let cps = detect(&xs, &Options::default());
    assert_eq!(cps.len(), 1, "{cps:?}");
    assert!(cps[0].sigmas > 1.0 && cps[0].sigmas < 3.0, "{:?}", cps[0]);
    let strict = Options {
        min_sigmas: 3.0,
        ..Options::default()
    };
    assert_eq!(detect(&xs, &strict), []);
}

#[test]
fn a_constant_series_has_none_and_a_noiseless_step_is_certain() {
    assert_eq!(detect(&[5.0; 40], &Options::default()), []);
    assert_eq!(detect(&[0.0; 40], &Options::default()), []);
    let mut xs = vec![0.0; 20];
    xs.extend([0.02; 20]);
    let cps = detect(&xs, &Options::default());
    assert_eq!(cps.len(), 1);
    assert_eq!((cps[0].index, cps[0].magnitude), (20, None));
    assert!(cps[0].p_value < 1e-6, "{:?}", cps[0]);
}

#[test]
fn the_same_series_gives_the_same_answer() {
    let xs = step_series(77, 0.1, 25, 70);
    let first = detect(&xs, &Options::default());
    for _ in 0..5 {
        assert_eq!(detect(&xs, &Options::default()), first);
    }
    assert!(!first.is_empty());
}

#[test]
fn short_and_odd_series_are_handled() {
    for n in 0..8 {
        let xs: Vec<f64> = (0..n).map(|i| if i < n / 2 { 1.0 } else { 9.0 }).collect();
        let cps = detect(&xs, &Options::default());
        assert!(n >= 6 || cps.is_empty(), "{n}: {cps:?}");
    }
    assert_eq!(
        detect(&[1.0, f64::NAN, 2.0, 3.0, 4.0, 5.0], &Options::default()),
        []
    );
    let tiny = Options {
        window: 0,
        min_run: 0,
        ..Options::default()
    };
    let _ = detect(&step_series(3, 0.2, 10, 20), &tiny);
}

#[test]
fn min_magnitude_drops_small_changes() {
    let xs = step_series(4, 0.05, 30, 60);
    let o = Options {
        min_magnitude: 0.10,
        ..Options::default()
    };
    assert_eq!(detect(&xs, &o), []);
}
