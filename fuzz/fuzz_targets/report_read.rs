//! Saved reports are input too: `convoy report`, `merge`, `compare`,
//! `baseline` and the history read files someone else wrote. Any bytes
//! either are refused by the report reader with an error naming the file,
//! or make a report that renders in every format, is judged by gates,
//! merges with itself and compares with itself, all without panicking.

#![no_main]

use std::path::Path;

use convoy::gate::{self, Gate};
use convoy::report::{self, Format, artifacts, compare, merge};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 5] = [
    Format::Table,
    Format::Json,
    Format::Md,
    Format::Junit,
    Format::Html,
];

/// Gates over whole-run latency, rates, counts and the baseline.
const GATES: [&str; 6] = [
    "p95 < 1s",
    "p99 <= 250ms",
    "error_rate < 1%",
    "rps > 10",
    "checks > 99%",
    "p95 <= baseline * 1.10",
];

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz/report.json");
    let report = match artifacts::parse_report(path, data) {
        Ok(r) => r,
        Err(e) => {
            // Refused, with the file named.
            assert!(e.to_string().contains("fuzz/report.json"), "{e}");
            return;
        }
    };
    for format in FORMATS {
        let _ = report::render(&report, format);
    }
    // A report written back reads again.
    let again = artifacts::parse_report(path, report::json::render(&report).as_bytes());
    assert!(
        again.is_ok(),
        "a rendered report does not read back: {again:?}"
    );

    let gates: Vec<Gate> = GATES.iter().map(|g| g.parse().unwrap()).collect();
    let judged = gate::evaluate(&gates, &report, Some(&report));
    let _ = gate::all_passed(&judged);

    if let Ok(mut merged) = merge::merge(&[report.clone(), report.clone()]) {
        merged.gates = gate::evaluate(&gates, &merged, Some(&report));
        for format in FORMATS {
            let _ = report::render(&merged, format);
        }
    }

    let mut compared = report.clone();
    compared.comparison = Some(compare::compare(&report, &report, &[report.clone()], 0.1));
    for format in FORMATS {
        let _ = report::render(&compared, format);
    }
});
