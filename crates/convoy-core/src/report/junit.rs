//! JUnit XML, the format every CI system shows natively: each gate, each
//! check, each violation kind and each compared figure becomes a test case,
//! failed when it failed, so a red build names what broke.
//!
//! Suites: `convoy.run` (the run completed), `convoy.gates`,
//! `convoy.checks`, `convoy.violations` (scenario runs) and
//! `convoy.regressions` (when compared with a baseline). The XML is written
//! by hand: the structure is flat, and [`escape`] makes any text safe,
//! including characters XML 1.0 cannot carry at all.

use std::fmt::Write as _;

use super::compare::Change;
use super::text::group;
use super::verdict::{stop_explanation, stop_heading};
use super::{Report, Verdict};

/// At most this many failure examples are quoted in a failed check.
const EXAMPLES_PER_CHECK: usize = 5;

struct Case {
    classname: String,
    name: String,
    time: f64,
    failure: Option<(String, String, String)>, // type, message, body
    /// Why the case was not run (a check never evaluated): shown as
    /// skipped, neither passed nor failed.
    skipped: Option<String>,
}

struct Suite {
    name: &'static str,
    time: f64,
    cases: Vec<Case>,
}

/// Renders the report as a `<testsuites>` document.
pub fn render(report: &Report) -> String {
    let suites: Vec<Suite> = [
        Some(run_suite(report)),
        gates_suite(report),
        checks_suite(report),
        violations_suite(report),
        regressions_suite(report),
    ]
    .into_iter()
    .flatten()
    .collect();
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.failure.is_some())
        .count();
    let timestamp = humantime::format_rfc3339_seconds(report.started_at).to_string();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="{}" tests="{tests}" failures="{failures}" errors="0" time="{:.3}" timestamp="{}">"#,
        escape(&format!(
            "convoy {}",
            report.scenario.as_deref().unwrap_or(&report.command)
        )),
        report.duration_secs,
        escape(timestamp.trim_end_matches('Z')),
    );
    for s in &suites {
        let failed = s.cases.iter().filter(|c| c.failure.is_some()).count();
        let skipped = s.cases.iter().filter(|c| c.skipped.is_some()).count();
        let _ = writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{failed}" errors="0" skipped="{skipped}" time="{:.3}" timestamp="{}">"#,
            s.name,
            s.cases.len(),
            s.time,
            escape(timestamp.trim_end_matches('Z')),
        );
        for c in &s.cases {
            let _ = write!(
                out,
                r#"    <testcase classname="{}" name="{}" time="{:.3}""#,
                escape(&c.classname),
                escape(&c.name),
                c.time
            );
            match (&c.failure, &c.skipped) {
                (None, Some(why)) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(why)
                    );
                }
                (None, None) => out.push_str("/>\n"),
                (Some((kind, message, body)), _) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                        escape(kind),
                        escape(message),
                        escape(body)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn run_suite(report: &Report) -> Suite {
    let v = Verdict::of(report);
    let failure = report.partial.then(|| {
        let reason = report.stop_reason;
        (
            // The serialised name (`target_down`), as in report.json.
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "interrupted".to_string()),
            format!("{}: {}", stop_heading(reason), stop_explanation(reason)),
            format!(
                "stop reason: {}\niterations completed: {}\niterations cut off: {}\n{}",
                stop_explanation(reason),
                report.iterations,
                report.interrupted,
                v.headline()
            ),
        )
    });
    Suite {
        name: "convoy.run",
        time: report.duration_secs,
        cases: vec![Case {
            classname: "convoy.run".into(),
            name: format!(
                "run completed: {} requests against {}",
                group(report.overall.requests),
                report.target_label()
            ),
            time: report.duration_secs,
            failure,
            skipped: None,
        }],
    }
}

fn gates_suite(report: &Report) -> Option<Suite> {
    if report.gates.is_empty() {
        return None;
    }
    let cases = report
        .gates
        .iter()
        .map(|g| Case {
            classname: "convoy.gates".into(),
            name: g.expression.clone(),
            time: 0.0,
            skipped: None,
            failure: (!g.passed).then(|| {
                (
                    "gate".to_string(),
                    format!(
                        "{}: {}, expected {}",
                        g.metric, g.actual_display, g.threshold
                    ),
                    format!(
                        "scope: {}\nmetric: {}\nthreshold: {}\nactual: {}",
                        g.scope, g.metric, g.threshold, g.actual_display
                    ),
                )
            }),
        })
        .collect();
    Some(Suite {
        name: "convoy.gates",
        time: 0.0,
        cases,
    })
}

fn checks_suite(report: &Report) -> Option<Suite> {
    if report.checks.is_empty() {
        return None;
    }
    let cases = report
        .checks
        .iter()
        .map(|c| {
            let failure = (c.failures > 0).then(|| {
                let mut body = format!(
                    "{} of {} evaluations failed (pass rate {})\n",
                    group(c.failures),
                    group(c.passes + c.failures),
                    super::format::percent(c.pass_rate)
                );
                let examples = report
                    .failures
                    .iter()
                    .filter(|f| f.step == c.step && f.check == c.name)
                    .take(EXAMPLES_PER_CHECK);
                for f in examples {
                    let _ = write!(
                        body,
                        "\n--- vu {}, iteration {}: {}\n{}\n\n{}\n",
                        f.vu,
                        f.iteration,
                        f.message,
                        f.request.trim_end(),
                        f.response.trim_end()
                    );
                }
                (
                    "check".to_string(),
                    format!(
                        "{} of {} evaluations failed",
                        group(c.failures),
                        group(c.passes + c.failures)
                    ),
                    body,
                )
            });
            // A check whose step never ran was neither kept nor broken:
            // counting it as passed would hide that it was never tried.
            let skipped = (c.passes + c.failures == 0).then(|| {
                format!(
                    "never evaluated: no request of step {:?} reached this check",
                    c.step
                )
            });
            Case {
                classname: format!("convoy.checks.{}", c.step),
                name: c.name.clone(),
                time: 0.0,
                failure,
                skipped,
            }
        })
        .collect();
    Some(Suite {
        name: "convoy.checks",
        time: 0.0,
        cases,
    })
}

fn violations_suite(report: &Report) -> Option<Suite> {
    let any = report.violations.values().any(|n| *n > 0);
    if report.violations.is_empty() || !(any || report.scenario.is_some()) {
        return None;
    }
    let cases = report
        .violations
        .iter()
        .map(|(v, n)| Case {
            classname: "convoy.violations".into(),
            name: format!("{v} == 0"),
            time: 0.0,
            skipped: None,
            failure: (*n > 0).then(|| {
                let mut body = String::new();
                for f in report.failures.iter().filter(|f| f.check == v.as_str()) {
                    let _ = writeln!(body, "{} (vu {}): {}", f.step, f.vu, f.message);
                }
                ("violation".to_string(), format!("{} {v}", group(*n)), body)
            }),
        })
        .collect();
    Some(Suite {
        name: "convoy.violations",
        time: 0.0,
        cases,
    })
}

fn regressions_suite(report: &Report) -> Option<Suite> {
    let c = report.comparison.as_ref()?;
    let cases = c
        .rows
        .iter()
        .filter(|r| !matches!(r.change, Change::Added | Change::Removed | Change::NoData))
        .map(|r| Case {
            classname: format!("convoy.regressions.{}", r.step),
            name: format!("{} not regressed", r.figure.name()),
            time: 0.0,
            skipped: None,
            failure: (r.change == Change::Regression).then(|| {
                let f = r.figure;
                let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| f.format(v));
                (
                    "regression".to_string(),
                    format!(
                        "{} {} → {} ({})",
                        f.name(),
                        fmt(r.baseline),
                        fmt(r.current),
                        r.relative
                            .map_or("-".to_string(), |x| format!("{:+.1}%", x * 100.0))
                    ),
                    format!(
                        "baseline run: {}\ntolerance: {}\nnoise band: {}",
                        c.baseline_run_id,
                        super::format::percent(c.tolerance),
                        r.noise
                            .map_or("unknown (short history)".to_string(), |n| f.format(n))
                    ),
                )
            }),
        })
        .collect();
    Some(Suite {
        name: "convoy.regressions",
        time: 0.0,
        cases,
    })
}

/// Escapes text for an XML attribute or element. Characters XML 1.0 cannot
/// carry at all (most control characters, unpaired surrogates cannot occur
/// in a Rust string) become `U+FFFD`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(escape("tab\tnl\n"), "tab\tnl\n");
    }
}
