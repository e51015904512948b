//! Every report format from one hand-built report: human formats against
//! expected files, JSON parsed back into the typed report, JUnit parsed by
//! a real XML parser, the artifact set written to a directory.

mod report_support;

use convoy::report::{self, Format, Report, artifacts, compare, json};
use report_support::{
    assert_expected, check, result, showcase, showcase_with_gates, stats, step, synthetic,
};

#[test]
fn text_matches_the_expected_file() {
    assert_expected(
        "showcase.txt",
        &report::text::render(&showcase_with_gates()),
    );
}

#[test]
fn markdown_matches_the_expected_file() {
    assert_expected(
        "showcase.md",
        &report::markdown::render(&showcase_with_gates()),
    );
}

#[test]
fn a_passing_bench_report_stays_short() {
    let mut r = synthetic("20261118T044100Z-bench1", 0, 40.0, 0, 7);
    r.command = "bench".into();
    r.scenario = None;
    r.profile = None;
    r.gates = convoy::gate::evaluate(&convoy::gate::parse_all(&["p95 < 1s"]).unwrap(), &r, None);
    assert_expected("bench_pass.md", &report::markdown::render(&r));
    assert_expected("bench_pass.txt", &report::text::render(&r));
}

#[test]
fn comparison_sections_match_the_expected_files() {
    let history: Vec<Report> = (0..8)
        .map(|i| {
            synthetic(
                &format!("h{i}"),
                i,
                100.0 * (1.0 + 0.03 * (i % 3) as f64),
                0,
                100 + i,
            )
        })
        .collect();
    let base = synthetic("base", 8, 100.0, 0, 200);
    let current = synthetic("current", 9, 160.0, 30, 201);
    let c = compare(&base, &current, &history, 0.10);
    assert_expected("comparison.txt", &report::text::render_comparison(&c));
    assert_expected("comparison.md", &report::markdown::render_comparison(&c));
}

#[test]
fn json_round_trips_into_the_same_report() {
    let mut r = showcase_with_gates();
    let base = synthetic("base", 0, 100.0, 0, 1);
    r.comparison = Some(compare(&base, &r, &[], 0.10));
    let text = json::render(&r);
    let back = json::parse(&text).expect("parses");
    // Compare the texts first: a readable diff if they differ.
    assert_eq!(json::render(&back), text);
    assert!(back == r, "the typed report survives the round trip");
    // And renders identically in every format.
    for f in [Format::Table, Format::Md, Format::Junit, Format::Html] {
        assert_eq!(report::render(&back, f), report::render(&r, f), "{f:?}");
    }
}

#[test]
fn json_errors_have_a_line_and_column() {
    let text = json::render(&showcase());
    let broken = text.replacen("\"requests\": 2002", "\"requests\": \"many\"", 1);
    match json::parse(&broken) {
        Err(json::ReadError::Parse {
            line,
            column,
            message,
        }) => {
            assert!(line > 1 && column > 1, "{line}:{column}");
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let other_schema = text.replacen("convoy.report/v1", "k6.summary/v0", 1);
    assert!(matches!(
        json::parse(&other_schema),
        Err(json::ReadError::Schema { .. })
    ));
}

/// The JUnit document as test cases: (suite, classname, name, failure
/// message if failed).
fn junit_cases(xml: &str) -> Vec<(String, String, String, Option<String>)> {
    let doc = roxmltree::Document::parse(xml).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut cases = Vec::new();
    let mut total = 0;
    let mut failed = 0;
    for suite in root.children().filter(|n| n.has_tag_name("testsuite")) {
        let suite_cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(
            suite.attribute("tests").unwrap(),
            suite_cases.len().to_string()
        );
        for c in suite_cases {
            let failure = c
                .children()
                .find(|n| n.has_tag_name("failure"))
                .map(|f| f.attribute("message").unwrap().to_string());
            total += 1;
            failed += usize::from(failure.is_some());
            cases.push((
                suite.attribute("name").unwrap().to_string(),
                c.attribute("classname").unwrap().to_string(),
                c.attribute("name").unwrap().to_string(),
                failure,
            ));
        }
    }
    assert_eq!(root.attribute("tests").unwrap(), total.to_string());
    assert_eq!(root.attribute("failures").unwrap(), failed.to_string());
    cases
}

#[test]
fn junit_has_a_test_case_per_gate_check_and_violation() {
    let r = showcase_with_gates();
    let xml = report::junit::render(&r);
    let cases = junit_cases(&xml);
    let gates: Vec<_> = cases.iter().filter(|c| c.0 == "convoy.gates").collect();
    assert_eq!(gates.len(), r.gates.len());
    for (case, gate) in gates.iter().zip(&r.gates) {
        // Names with `<` and quotes come back exactly.
        assert_eq!(case.2, gate.expression);
        assert_eq!(case.3.is_none(), gate.passed, "{}", gate.expression);
    }
    let failed_gate = gates
        .iter()
        .find(|c| c.2 == "checks > 99.9%")
        .expect("the checks gate");
    assert!(failed_gate.3.as_ref().unwrap().contains("99.75%"));

    let checks: Vec<_> = cases.iter().filter(|c| c.0 == "convoy.checks").collect();
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[0].1, "convoy.checks.create_order");
    assert_eq!(checks[0].2, "status == 201");
    assert!(
        checks[0]
            .3
            .as_deref()
            .is_some_and(|m| m.starts_with("4 of 800 evaluations failed; first: ")),
        "{:?}",
        checks[0].3
    );
    assert!(checks[1].3.is_none());

    let violations: Vec<_> = cases
        .iter()
        .filter(|c| c.0 == "convoy.violations")
        .collect();
    assert_eq!(violations.len(), 2);
    assert!(
        violations
            .iter()
            .any(|c| c.2 == "tenant_isolation_violations == 0" && c.3.is_some())
    );
    let run = cases.iter().find(|c| c.0 == "convoy.run").unwrap();
    assert!(run.3.is_none(), "a completed run");
}

#[test]
fn junit_quotes_failure_examples_safely_and_marks_partial_runs() {
    let mut r = showcase_with_gates();
    r.partial = true;
    r.stop_reason = convoy::engine::StopReason::Interrupted;
    let xml = report::junit::render(&r);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let body = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .filter_map(|n| n.text())
        .find(|t| t.contains("expected status 201"))
        .expect("the example is quoted in the failed check");
    assert!(body.contains(r#"{"ref":"a<b&c"}"#), "{body}");
    assert!(body.contains("internal error | ```boom```"), "{body}");
    assert!(!body.contains('\u{7}'), "control characters are replaced");
    let cases = junit_cases(&xml);
    let run = cases.iter().find(|c| c.0 == "convoy.run").unwrap();
    assert!(run.3.as_ref().unwrap().starts_with("INTERRUPTED: "));
}

#[test]
fn every_format_names_how_a_partial_run_stopped_in_words() {
    use convoy::engine::StopReason;
    for (reason, heading, json_name) in [
        (StopReason::Interrupted, "INTERRUPTED", "interrupted"),
        (StopReason::TargetDown, "TARGET DOWN", "target_down"),
        (
            StopReason::AbortedByGate,
            "ABORTED BY GATE",
            "aborted_by_gate",
        ),
    ] {
        let mut r = showcase_with_gates();
        r.partial = true;
        r.stop_reason = reason;
        let debug_name = format!("{reason:?}");
        let partial = format!("{heading} — partial result");
        let text = report::text::render(&r);
        assert!(text.starts_with("convoy run"), "{text}");
        assert!(
            text.lines().nth(1).unwrap().starts_with(&partial),
            "{heading}: {text}"
        );
        assert!(text.contains(&format!("\n{partial}: ")), "headline: {text}");
        let md = report::markdown::render(&r);
        assert!(md.lines().next().unwrap().contains(&partial), "{md}");
        assert!(md.contains(&format!("> {heading}: ")), "{md}");
        let html = report::html::render(&r);
        assert!(
            html.contains(&format!(
                r#"<span id="verdict" class="word">{partial}</span>"#
            )),
            "{heading} html"
        );
        let xml = report::junit::render(&r);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let failure = doc
            .descendants()
            .find(|n| {
                n.has_tag_name("failure")
                    && n.parent().and_then(|c| c.attribute("classname")) == Some("convoy.run")
            })
            .expect("a partial run fails the run case");
        assert_eq!(failure.attribute("type"), Some(json_name));
        assert!(
            failure.attribute("message").unwrap().starts_with(heading),
            "{xml}"
        );
        for (format, out) in [
            ("text", &text),
            ("md", &md),
            ("html", &html),
            ("junit", &xml),
        ] {
            assert!(
                !out.contains(&format!("({debug_name})"))
                    && !out.contains(&format!(": {debug_name}")),
                "{format} shows the Rust name {debug_name}"
            );
        }
    }
}

#[test]
fn junit_of_a_comparison_fails_the_regressed_figures() {
    let history: Vec<Report> = (0..6)
        .map(|i| synthetic(&format!("h{i}"), i, 100.0, 0, 50 + i))
        .collect();
    let base = synthetic("base", 6, 100.0, 0, 60);
    let mut current = synthetic("current", 7, 150.0, 0, 61);
    current.comparison = Some(compare(&base, &current, &history, 0.10));
    let cases = junit_cases(&report::junit::render(&current));
    let regressed: Vec<_> = cases
        .iter()
        .filter(|c| c.0 == "convoy.regressions" && c.3.is_some())
        .map(|c| (c.1.as_str(), c.2.as_str()))
        .collect();
    assert!(regressed.contains(&("convoy.regressions.create_order", "p95 not regressed")));
    assert!(regressed.contains(&("convoy.regressions.overall", "p50 not regressed")));
    assert!(!regressed.iter().any(|c| c.1 == "rps not regressed"));
}

#[test]
fn artifacts_are_the_four_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("reports").join("20261118T044100Z-abc123");
    let r = showcase_with_gates();
    let written = artifacts::write_all(&r, &run_dir).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["report.json", "report.md", "junit.xml", "report.html"]
    );
    let mut on_disk: Vec<_> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        ["junit.xml", "report.html", "report.json", "report.md"]
    );
    for p in &written {
        assert!(p.starts_with(&run_dir));
    }
    assert_eq!(artifacts::read_report(&run_dir).unwrap(), r);
    let md = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert_eq!(md, report::markdown::render(&r));
}

#[test]
fn html_is_self_contained() {
    let html = report::html::render(&showcase_with_gates());
    // Nothing is loaded from anywhere: no src or href attributes at all,
    // and a policy that forbids it even if one slipped in.
    assert!(!html.contains(" src="), "no external resources");
    assert!(!html.contains(" href="), "no links out");
    assert!(html.contains("default-src 'none'"));
    // Three charts, each drawn for a wide and for a narrow screen.
    assert_eq!(html.matches("<svg class=\"chart wide\"").count(), 3);
    assert_eq!(html.matches("<svg class=\"chart narrow\"").count(), 3);
    // Failure text is escaped, never markup.
    assert!(html.contains("a&lt;b&amp;c"));
    assert!(!html.contains("a<b&c"));
}

/// A run in which `cancel_order` never ran (the journey ended before it)
/// and `track_order` only failed in transport: neither has a latency, and
/// their checks were never evaluated.
fn with_steps_that_never_ran() -> Report {
    use convoy::engine::StepKind;
    let mut r = result(
        vec![
            step(
                "create_order",
                convoy::engine::StepKind::Request,
                stats(200, 0, 0, |i| 20.0 + (i % 10) as f64),
            ),
            step("track_order", StepKind::Request, stats(0, 0, 5, |_| 0.0)),
            step("cancel_order", StepKind::Request, Default::default()),
        ],
        10.0,
    );
    r.checks = vec![
        check("create_order", "status == 201", 200, 0),
        check("cancel_order", "status == 200", 0, 0),
    ];
    report_support::report(&r, "20261118T044100Z-never1")
}

#[test]
fn steps_without_a_response_show_no_latency_in_any_table() {
    let r = with_steps_that_never_ran();
    let text = report::text::render(&r);
    let md = report::markdown::render(&r);
    assert_expected("never_ran.txt", &text);
    assert_expected("never_ran.md", &md);
    for name in ["track_order", "cancel_order"] {
        let line = text.lines().find(|l| l.contains(name)).unwrap();
        assert!(!line.split('│').any(|c| c.trim() == "0.00"), "{line}");
        assert_eq!(line.matches('–').count(), 7, "every latency column: {line}");
        let line = md.lines().find(|l| l.contains(name)).unwrap();
        assert!(!line.contains("0.000ms"), "{line}");
        assert_eq!(line.matches('–').count(), 5, "{line}");
    }
    let html = report::html::render(&r);
    let row = html
        .lines()
        .find(|l| l.contains("<code>cancel_order</code>") && l.starts_with("<tr"))
        .unwrap();
    assert!(!row.contains("0.000ms"), "{row}");
    assert_eq!(row.matches(r#"<td class="num">–</td>"#).count(), 6, "{row}");
    // Its check was not run: neither passed nor failed.
    assert!(text.contains("  – cancel_order › status == 200: never evaluated\n"));
    assert!(md.contains("| ➖ not run | `cancel_order` | `status == 200` | 0 | 0 | – |"));
    assert!(html.contains(
        r#"<tr class="skip"><td class="verdict-cell">not run</td><td><code>cancel_order</code>"#
    ));
    // The step that ran keeps its figures.
    // (all but p99.9, which its 200 samples do not support).
    let ran = text.lines().find(|l| l.contains("create_order")).unwrap();
    assert_eq!(ran.matches('–').count(), 1, "{ran}");
    assert!(ran.contains("29.01 │        – │"), "{ran}");
}

#[test]
fn junit_skips_checks_that_were_never_evaluated() {
    let xml = report::junit::render(&with_steps_that_never_ran());
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("convoy.checks"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("0"));
    assert_eq!(suite.attribute("skipped"), Some("1"));
    let case = suite
        .children()
        .find(|n| n.attribute("classname") == Some("convoy.checks.cancel_order"))
        .unwrap();
    let skipped = case
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .expect("the never-evaluated check is skipped");
    assert!(
        skipped
            .attribute("message")
            .unwrap()
            .contains("never evaluated"),
        "{xml}"
    );
    let ran = suite
        .children()
        .find(|n| n.attribute("classname") == Some("convoy.checks.create_order"))
        .unwrap();
    assert!(ran.children().all(|n| !n.has_tag_name("skipped")));
    // Every other suite skips nothing.
    for s in doc.descendants().filter(|n| n.has_tag_name("testsuite")) {
        if s.attribute("name") != Some("convoy.checks") {
            assert_eq!(s.attribute("skipped"), Some("0"));
        }
    }
}

#[test]
fn markdown_quotes_one_failure_example_of_each_kind() {
    let mut r = showcase_with_gates();
    let first = r.failures[0].clone();
    for i in 0..40 {
        let mut f = first.clone();
        f.iteration = 100 + i;
        r.failures.push(f);
    }
    let md = report::markdown::render(&r);
    assert!(
        md.contains("Failure examples (2 of 42 kept, one of each kind;"),
        "{md}"
    );
    // The showcase's two kinds: its 5xx and its violation, once each.
    assert_eq!(md.matches("(vu 3, iteration 7)").count(), 1);
    assert!(!md.contains("iteration 100)"));
    assert!(md.contains("tenant B read order 42 of tenant A"));
}

#[test]
fn a_narrow_width_keeps_every_line_inside_it_and_says_what_it_left_out() {
    let r = showcase_with_gates();
    let full = report::text::render(&r);
    for width in [60, 80, 100] {
        let opts = report::text::TextOptions {
            width: Some(width),
            histogram: true,
        };
        let text = report::text::render_with(&r, opts);
        for line in text.lines() {
            assert!(line.chars().count() <= width, "{line:?} in\n{text}");
        }
        assert!(
            text.contains(&format!("left out to fit {width} columns")),
            "{text}"
        );
        // The columns that matter stay; the verdict is whole.
        assert!(
            text.contains("p95 ms") && text.contains("requests"),
            "{text}"
        );
        assert!(text.contains("FAILED: 3 of 8 gates failed"), "{text}");
    }
    // Without a width nothing is left out.
    assert!(
        full.contains("p99.9 ms") && full.contains("mean ms"),
        "{full}"
    );
    assert!(!full.contains("left out"), "{full}");
}

#[test]
fn percentiles_beyond_the_samples_are_not_shown() {
    let r = report_support::report(
        &result(
            vec![step(
                "few",
                convoy::engine::StepKind::Request,
                stats(50, 0, 0, |i| (i + 1) as f64),
            )],
            10.0,
        ),
        "few-samples",
    );
    let l = r.steps[0].latency_ms;
    let fixed = |v: f64| report::text::fixed(v, 2);
    let text = report::text::render(&r);
    let row = text.lines().find(|l| l.contains("few")).unwrap();
    let cells: Vec<&str> = row.split('│').map(str::trim).collect();
    // step, requests, req/s, errors, p50, p90, p95, p99, p99.9, max, mean
    assert_eq!(cells[5], fixed(l.p50), "p50: {row}");
    assert_eq!(cells[7], fixed(l.p95), "p95: {row}");
    assert_eq!(cells[8], "–", "p99 needs 100 samples: {row}");
    assert_eq!(cells[9], "–", "p99.9 needs 1,000: {row}");
    assert_eq!(cells[10], fixed(l.max), "max: {row}");
    assert_eq!(text.matches("too few samples").count(), 1, "{text}");
    // The report files keep every figure.
    assert!(report::json::render(&r).contains("\"p999\""));
}
