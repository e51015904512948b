//! JUnit XML, the format every CI system shows natively: each gate, each
//! check, each violation kind and each compared figure becomes a test case,
//! failed when it failed, so a red build names what broke.
//!
//! Suites: `convoy.run` (the run completed), `convoy.gates`,
//! `convoy.checks`, `convoy.violations` (scenario runs) and
//! `convoy.regressions` (when compared with a baseline). The XML is written
//! by hand: the structure is flat, and [`escape`] makes any text safe,
//! including characters XML 1.0 cannot carry at all.
//!
//! A CI's test tab shows a failure's `message` first and its text on a
//! click: both carry the failure's first examples (the status or
//! transport cause, what the check found), redacted as the report is.
//!
//! Test names are what test-history tools key on, so they hold nothing
//! that changes from run to run (no port, run id or count: those go to
//! `system-out`), and they are unique in the document: when reports of
//! separate journeys are put side by side (`convoy smoke`), a check they
//! share (the login) is named with its journey (`journeys`), and
//! anything still repeated with its ordinal (`unique_names`).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::compare::Change;
use super::text::group;
use super::verdict::{stop_explanation, stop_heading};
use super::{Report, Verdict};
use crate::metrics::{FailureSample, Violation};

/// At most this many failure examples are quoted in a failed case.
const EXAMPLES_PER_CASE: usize = 5;

/// A failure's `message` attribute is cut here: CI tabs show it on one
/// line; the text below it has the rest.
const MESSAGE_LIMIT: usize = 300;

/// The check every journey has, on the journey's own step: it marks where
/// a journey's checks begin.
const JOURNEY_CHECK: &str = "journey completes";

/// The step of the login every journey with login identities shares
/// (`scenario::auth::LOGIN_METRIC`, which reports may not import: a test
/// keeps the two equal). Its check is registered before the journeys'.
pub const SHARED_LOGIN_STEP: &str = "auth login";

/// The check a failed login's example is kept under (on the step that
/// logged in).
const LOGIN_SAMPLE: &str = "login";

struct Case {
    classname: String,
    name: String,
    time: f64,
    failure: Option<(String, String, String)>, // type, message, body
    /// Why the case was not run (a check never evaluated): shown as
    /// skipped, neither passed nor failed.
    skipped: Option<String>,
    /// What the case measured that changes from run to run (the target's
    /// port, counts), kept out of its name.
    output: Option<String>,
}

struct Suite {
    name: &'static str,
    time: f64,
    cases: Vec<Case>,
}

/// Renders the report as a `<testsuites>` document.
pub fn render(report: &Report) -> String {
    let mut suites: Vec<Suite> = [
        Some(run_suite(report)),
        gates_suite(report),
        checks_suite(report),
        violations_suite(report),
        regressions_suite(report),
    ]
    .into_iter()
    .flatten()
    .collect();
    unique_names(&mut suites);
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
            if c.failure.is_none() && c.skipped.is_none() && c.output.is_none() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            match (&c.failure, &c.skipped) {
                (None, Some(why)) => {
                    let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(why));
                }
                (None, None) => {}
                (Some((kind, message, body)), _) => {
                    let _ = writeln!(
                        out,
                        "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                        escape(kind),
                        escape(&cut(message, MESSAGE_LIMIT)),
                        escape(body)
                    );
                }
            }
            if let Some(text) = &c.output {
                let _ = writeln!(out, "      <system-out>{}</system-out>", escape(text));
            }
            out.push_str("    </testcase>\n");
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
            name: "run completed".into(),
            time: report.duration_secs,
            failure,
            skipped: None,
            output: Some(format!(
                "{} requests against {}\nrun id: {}\n{}",
                group(report.overall.requests),
                report.target,
                report.run_id,
                v.headline()
            )),
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
            output: None,
            failure: (!g.passed).then(|| gate_failure(report, g)),
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
    let journeys = journeys(&report.checks);
    let mut repeats: HashMap<(&str, &str), usize> = HashMap::new();
    for c in &report.checks {
        *repeats.entry((&c.step, &c.name)).or_insert(0) += 1;
    }
    let cases = report
        .checks
        .iter()
        .zip(&journeys)
        .map(|(c, journey)| {
            let failure = (c.failures > 0).then(|| {
                let examples = check_examples(report, c, journey.map(|j| (j, journeys.as_slice())));
                let counted = format!(
                    "{} of {} evaluations failed",
                    group(c.failures),
                    group(c.passes + c.failures),
                );
                let mut body = format!(
                    "{counted} (pass rate {})\n",
                    super::format::percent(c.pass_rate)
                );
                write_examples(&mut body, &examples);
                ("check".to_string(), with_first(counted, &examples), body)
            });
            // A check whose step never ran was neither kept nor broken:
            // counting it as passed would hide that it was never tried.
            let skipped = (c.passes + c.failures == 0).then(|| {
                format!(
                    "never evaluated: no request of step {:?} reached this check",
                    c.step
                )
            });
            // Repeated because reports of separate journeys were put side
            // by side: named with its journey.
            let name = match journey {
                Some(j) if repeats[&(c.step.as_str(), c.name.as_str())] > 1 => {
                    format!("{} (journey {j})", c.name)
                }
                _ => c.name.clone(),
            };
            Case {
                classname: format!("convoy.checks.{}", c.step),
                name,
                time: 0.0,
                failure,
                skipped,
                output: None,
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
            output: None,
            failure: (*n > 0).then(|| {
                let examples = violation_examples(report, *v);
                let counted = format!("{} {v}", group(*n));
                let mut body = format!("{counted}\n");
                write_examples(&mut body, &examples);
                (
                    "violation".to_string(),
                    with_first(counted, &examples),
                    body,
                )
            }),
        })
        .collect();
    Some(Suite {
        name: "convoy.violations",
        time: 0.0,
        cases,
    })
}

/// A failed gate: what was measured against what was expected, and what
/// the run saw that explains it (the failed checks, the errors, the
/// violations), with examples.
fn gate_failure(report: &Report, g: &super::GateResult) -> (String, String, String) {
    let head = format!(
        "{}: {}, expected {}",
        g.metric, g.actual_display, g.threshold
    );
    let mut body = format!(
        "scope: {}\nmetric: {}\nthreshold: {}\nactual: {}\n",
        g.scope, g.metric, g.threshold, g.actual_display
    );
    let in_scope = |step: &str| g.scope == "overall" || in_scope(&g.scope, step);
    let examples: Vec<&FailureSample> = match g.metric.as_str() {
        "checks" => {
            body.push_str("\nfailed checks:\n");
            for c in report.checks.iter().filter(|c| c.failures > 0) {
                let _ = writeln!(
                    body,
                    "  {} › {}: {} of {} failed",
                    c.step,
                    c.name,
                    group(c.failures),
                    group(c.passes + c.failures)
                );
            }
            report.failures.iter().take(EXAMPLES_PER_CASE).collect()
        }
        m if m.ends_with("_violations") => report
            .failures
            .iter()
            .filter(|f| f.violation.is_some_and(|v| v.as_str() == m) || f.check == m)
            .take(EXAMPLES_PER_CASE)
            .collect(),
        "error_rate" | "errors" => {
            let step = report
                .steps
                .iter()
                .find(|s| in_scope(&s.name))
                .filter(|_| g.scope != "overall")
                .unwrap_or(&report.overall);
            let answers = error_answers(step);
            if !answers.is_empty() {
                let _ = writeln!(body, "\nanswers: {answers}");
            }
            report
                .failures
                .iter()
                .filter(|f| in_scope(&f.step) && (f.cause.is_some() || f.status >= Some(400)))
                .take(EXAMPLES_PER_CASE)
                .collect()
        }
        _ => Vec::new(),
    };
    write_examples(&mut body, &examples);
    ("gate".to_string(), with_first(head, &examples), body)
}

/// Whether gate scope `scope` (`step:NAME`, `journey:"A NAME"`) names `step`.
fn in_scope(scope: &str, step: &str) -> bool {
    [
        crate::gate::Scope::Step(step.to_string()),
        crate::gate::Scope::Journey(step.to_string()),
        crate::gate::Scope::Event(step.to_string()),
        crate::gate::Scope::Stream(step.to_string()),
    ]
    .iter()
    .any(|s| s.to_string() == scope)
}

/// The answers of a step that are not a success, most frequent first:
/// `503 × 40, timeout × 2`.
fn error_answers(step: &super::StepReport) -> String {
    let mut all: Vec<(String, u64)> = step
        .status_counts
        .iter()
        .filter(|(code, _)| !code.starts_with('2') && !code.starts_with('3'))
        .map(|(code, n)| (format!("HTTP {code}"), *n))
        .chain(step.error_counts.iter().map(|(c, n)| (c.to_string(), *n)))
        .collect();
    all.sort_by_key(|a| std::cmp::Reverse(a.1));
    all.iter()
        .map(|(what, n)| format!("{what} × {}", group(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The examples of a failed check, the closest first: its own; those of
/// its request (a probe's or a verify request's failures are kept under the
/// step that sent it, whose metric is `STEP · PROBE`: the probe's label
/// ends with the same words); for a journey's own check (`journey
/// completes`), its steps' failures; for the shared login's check, the
/// login failures of its journey (kept under the step that logged in, as
/// check `login`); else its step's.
fn check_examples<'r>(
    report: &'r Report,
    c: &super::CheckReport,
    journey: Option<(&str, &[Option<&str>])>,
) -> Vec<&'r FailureSample> {
    let pick = |keep: &dyn Fn(&FailureSample) -> bool| -> Vec<&'r FailureSample> {
        report
            .failures
            .iter()
            .filter(|f| keep(f))
            .take(EXAMPLES_PER_CASE)
            .collect()
    };
    let probe = c.step.rsplit_once(METRIC_PART).map(|(_, p)| p);
    // Whether `step` is one of the check's journey (any, when the journey
    // is not known).
    let in_journey = |step: &str| {
        journey.is_none_or(|(j, journeys)| {
            step == j
                || report
                    .checks
                    .iter()
                    .zip(journeys)
                    .any(|(k, kj)| *kj == Some(j) && of_step(&k.step, step))
        })
    };
    let candidates: [&dyn Fn(&FailureSample) -> bool; 4] = [
        &|f| f.step == c.step && f.check == c.name,
        &|f| of_step(&c.step, &f.step) && probe.is_some_and(|p| f.check.ends_with(p)),
        &|f| {
            if c.name == JOURNEY_CHECK && journey.is_some() {
                in_journey(&f.step)
            } else if c.step == SHARED_LOGIN_STEP {
                // One login check per identity (`login as NAME answers
                // ...`): its failures say `login as "NAME" ...`. Older
                // reports had one per journey.
                f.check == LOGIN_SAMPLE
                    && match login_identity(&c.name) {
                        Some(name) => f.message.starts_with(&format!("login as \"{name}\"")),
                        None => in_journey(&f.step),
                    }
            } else {
                false
            }
        },
        &|f| of_step(&c.step, &f.step),
    ];
    candidates
        .iter()
        .map(|keep| pick(keep))
        .find(|found| !found.is_empty())
        .unwrap_or_default()
}

/// The identity a login check is of, from its name (`login as NAME
/// answers 2xx with a token`).
fn login_identity(check: &str) -> Option<&str> {
    check
        .strip_prefix("login as ")?
        .split_once(" answers ")
        .map(|(name, _)| name)
}

/// How a step's metric names a part of it: `globex probes · GET`,
/// `create order (replayed) · verify`.
const METRIC_PART: &str = " · ";

/// Whether a failure kept under step `sample_step` is of metric `metric`:
/// the step's own, or one of its parts.
fn of_step(metric: &str, sample_step: &str) -> bool {
    metric
        .strip_prefix(sample_step)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(METRIC_PART))
}

/// The examples of violation `v` (reports written before samples named
/// their violation kept them under its name).
fn violation_examples(report: &Report, v: Violation) -> Vec<&FailureSample> {
    report
        .failures
        .iter()
        .filter(|f| f.violation == Some(v) || f.check == v.as_str())
        .take(EXAMPLES_PER_CASE)
        .collect()
}

/// `head`, then what the first example found and how it was answered:
/// the line a CI's test tab shows.
fn with_first(head: String, examples: &[&FailureSample]) -> String {
    match examples.first() {
        None => head,
        Some(f) => {
            let answer = answer(f).map_or(String::new(), |a| format!(" [{a}]"));
            format!(
                "{head}; first: {} › {}: {}{answer}",
                f.step, f.check, f.message
            )
        }
    }
}

/// How a failure was answered: `HTTP 503`, `timeout`, with the violation
/// it counted.
fn answer(f: &FailureSample) -> Option<String> {
    let parts: Vec<String> = f
        .status
        .map(|s| format!("HTTP {s}"))
        .into_iter()
        .chain(f.cause.map(|c| c.to_string()))
        .chain(f.violation.map(|v| v.to_string()))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn write_examples(body: &mut String, examples: &[&FailureSample]) {
    for (i, f) in examples.iter().enumerate() {
        let answer = answer(f).map_or(String::new(), |a| format!(" · {a}"));
        let _ = write!(
            body,
            "\n--- example {} of {}: {} › {} (vu {}, iteration {}){answer}\n{}\n\n{}\n\n{}\n",
            i + 1,
            examples.len(),
            f.step,
            f.check,
            f.vu,
            f.iteration,
            f.message,
            f.request.trim_end(),
            f.response.trim_end()
        );
    }
}

/// `s` cut at `limit` bytes (on a character boundary), marked when cut.
fn cut(s: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= limit {
        return s.into();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

/// Makes every `(classname, name)` of the document unique, keeping names
/// that already are as they were: what is still repeated once checks are
/// named with their journey gets its ordinal (`#2`), which is stable as
/// long as the scenarios are.
fn unique_names(suites: &mut [Suite]) {
    let mut taken: HashMap<(String, String), usize> = HashMap::new();
    for c in suites.iter_mut().flat_map(|s| s.cases.iter_mut()) {
        let n = taken
            .entry((c.classname.clone(), c.name.clone()))
            .or_insert(0);
        *n += 1;
        if *n > 1 {
            c.name = format!("{} #{n}", c.name);
        }
    }
}

/// The journey each check belongs to, from the order checks are
/// registered in: a journey's own check (`journey completes`, on the
/// journey's step) comes first, then its steps' checks; the shared login's
/// check comes before every journey's (it belongs to the one after it).
fn journeys(checks: &[super::CheckReport]) -> Vec<Option<&str>> {
    fn journey_of(c: &super::CheckReport) -> Option<&str> {
        (c.name == JOURNEY_CHECK).then_some(c.step.as_str())
    }
    let mut out = Vec::with_capacity(checks.len());
    let mut current = None;
    for c in checks {
        current = journey_of(c).or(current);
        out.push(current);
    }
    let mut next = None;
    for (c, j) in checks.iter().zip(out.iter_mut()).rev() {
        if let Some(journey) = journey_of(c) {
            next = Some(journey);
        } else if c.step == SHARED_LOGIN_STEP {
            *j = next;
        }
    }
    out
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
            output: None,
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
