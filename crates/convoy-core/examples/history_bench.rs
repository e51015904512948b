//! Issue 18's figures: how a nightly gate on change points, a plain
//! "tonight vs baseline ± tolerance" rule and `convoy compare`'s rule do on
//! synthetic nightly series resampled from recorded run-to-run noise (see
//! `convoy_core::history::evaluate` for the definitions).
//!
//! ```sh
//! cargo run --release -p convoy-core --example history_bench -- ci/bench/history-noise.csv [SERIES [LOOKAHEAD]]
//! ```
//!
//! `ci/bench/history.sh` records the noise file and runs this.

use convoy_core::history::LevelTest;
use convoy_core::history::evaluate::{self, Method, Plant, Setup};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!(
            "usage: history_bench NOISE.csv|gaussian:SD [SERIES_PER_CASE [LOOKAHEAD_NIGHTS]]"
        );
        std::process::exit(3);
    };
    // `gaussian:SD`: 1,000 runs of normal noise of relative size SD (e.g.
    // 0.03), to see the method where the machine is quieter than this one.
    let noises = if let Some(sd) = path.strip_prefix("gaussian:") {
        let sd: f64 = sd.parse().unwrap_or_else(|_| {
            eprintln!("gaussian:SD wants a number, e.g. gaussian:0.03");
            std::process::exit(3)
        });
        vec![evaluate::Noise {
            name: format!("overall gaussian {:.1}%", sd * 100.0),
            worse_when_up: true,
            values: evaluate::gaussian_noise(1000, sd, 7),
        }]
    } else {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(3)
        });
        evaluate::parse_noise(&text).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(3)
        })
    };
    let series = match args.next().map(|s| s.parse::<usize>()) {
        None => 200,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("SERIES_PER_CASE must be a positive integer");
            std::process::exit(3)
        }
    };
    let lookahead = match args.next().map(|s| s.parse::<usize>()) {
        None => Setup::default().lookahead,
        Some(Ok(n)) if (1..=20).contains(&n) => n,
        Some(_) => {
            eprintln!("LOOKAHEAD_NIGHTS must be 1 to 20 (the plant is at night 40 of 60)");
            std::process::exit(3)
        }
    };
    let mut setup = Setup {
        series,
        lookahead,
        ..Setup::default()
    };
    // Knobs for trying other settings of the method on the same noise.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(test) = env("HISTORY_TEST") {
        setup.options.test = match test.as_str() {
            "robust" => LevelTest::Robust,
            "ranks" => LevelTest::Ranks,
            "welch" => LevelTest::Welch,
            other => {
                eprintln!("HISTORY_TEST must be robust, ranks or welch, not {other}");
                std::process::exit(3)
            }
        };
    }
    if let Some(p) = env("HISTORY_P").and_then(|v| v.parse().ok()) {
        setup.options.max_p_value = p;
    }
    if let Some(n) = env("HISTORY_MIN_RUN").and_then(|v| v.parse().ok()) {
        setup.options.min_run = n;
    }
    if let Some(s) = env("HISTORY_MIN_SIGMAS").and_then(|v| v.parse().ok()) {
        setup.options.min_sigmas = s;
    }
    let methods: Vec<Method> = match env("HISTORY_METHODS").as_deref() {
        Some("convoy") => vec![Method::Convoy],
        _ => Method::ALL.to_vec(),
    };
    println!(
        "{} series per case, {} nights each, plant at night {}, judged from night {}, found = alarm within {} nights; tolerance {:.0}%; convoy: {:?} test, p ≤ {} (search-corrected), ≥ {}σ, min_run {}",
        setup.series,
        setup.len,
        setup.at,
        setup.warmup,
        setup.lookahead,
        setup.tolerance * 100.0,
        setup.options.test,
        setup.options.max_p_value,
        setup.options.min_sigmas,
        setup.options.min_run,
    );
    let plants = [
        ("quiet", Plant::Quiet),
        ("shift 5%", Plant::Shift(0.05)),
        ("shift 10%", Plant::Shift(0.10)),
        ("shift 20%", Plant::Shift(0.20)),
        ("shift 50%", Plant::Shift(0.50)),
        ("spike 50%", Plant::Spike(0.50)),
    ];
    // Each overall figure apart, then every step's latency figures pooled.
    let mut groups: Vec<(String, Vec<&evaluate::Noise>)> = noises
        .iter()
        .filter(|n| n.name.starts_with("overall "))
        .map(|n| {
            let spread = relative_spread(&n.values);
            (
                format!(
                    "{} ({} recorded runs, robust run-to-run spread {:.1}%)",
                    n.name,
                    n.values.len(),
                    spread * 100.0
                ),
                vec![n],
            )
        })
        .collect();
    let steps: Vec<&evaluate::Noise> = noises
        .iter()
        .filter(|n| !n.name.starts_with("overall ") && n.worse_when_up)
        .collect();
    if !steps.is_empty() {
        let spreads: Vec<f64> = steps.iter().map(|n| relative_spread(&n.values)).collect();
        groups.push((
            format!(
                "every step's p50, p95 and p99 pooled ({} figures, robust spreads {:.1}% to {:.1}%)",
                steps.len(),
                spreads.iter().copied().fold(f64::INFINITY, f64::min) * 100.0,
                spreads.iter().copied().fold(0.0, f64::max) * 100.0
            ),
            steps,
        ));
    }
    for (title, group) in &groups {
        println!("\n{title}");
        println!(
            "  {:<28} {:<10} {:>12} {:>9} {:>14} {:>8}",
            "method", "plant", "recall", "precision", "false/100 qn", "repeats"
        );
        for &method in &methods {
            for (label, plant) in plants {
                let mut s = evaluate::Score::default();
                for noise in group {
                    let one = evaluate::score(noise, plant, method, &setup);
                    s.series += one.series;
                    s.found += one.found;
                    s.false_alarms += one.false_alarms;
                    s.quiet_nights += one.quiet_nights;
                    s.repeats += one.repeats;
                }
                let (recall, precision) = match plant {
                    Plant::Quiet => ("-".to_string(), "-".to_string()),
                    Plant::Spike(_) => (
                        format!("{:.1}% flagged", s.recall() * 100.0),
                        "-".to_string(),
                    ),
                    Plant::Shift(_) => (
                        format!("{:.1}%", s.recall() * 100.0),
                        format!("{:.1}%", s.precision() * 100.0),
                    ),
                };
                println!(
                    "  {:<28} {:<10} {:>12} {:>9} {:>14.2} {:>8}",
                    method.name(),
                    label,
                    recall,
                    precision,
                    s.false_per_100(),
                    s.repeats
                );
            }
        }
    }
}

/// 1.4826 × MAD / median.
fn relative_spread(values: &[f64]) -> f64 {
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let m = median(&mut values.to_vec());
    let mut dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&mut dev) / m
}
