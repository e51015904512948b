//! The `convoy.report/v1` document and its renderers.
//!
//! A [`Report`] is built once from an engine [`RunResult`] plus a little
//! metadata; every output format renders from it, and a report read back
//! from JSON renders exactly as the original (the histograms travel inside
//! it). The derived figures (percentiles, rates) are recomputed from the
//! histograms and counters when a report is read, so a hand-edited or merged
//! report can never disagree with its own data.
//!
//! # What this module owns, and what it must not import
//!
//! It owns the report document, building it from a run result, reading and
//! merging reports, comparing them with baselines, and every renderer.
//!
//! It may read the gates: a report carries [`GateResult`]s, provides the
//! figures gates are evaluated on (`impl gate::Figures for Report`) and, when
//! shards merge, evaluates their stored gates again on the merged report.
//! It uses `redact` to scrub a report of a run's secrets ([`Report::scrub`])
//! before it is rendered or written.
//!
//! It must not import `live` or the command line, nor execute anything of
//! the engine or the scenarios: it reads their results (`RunResult`,
//! `StepKind`, ...), it never runs them. Number formatting and latency
//! summaries come from [`crate::units`] and [`crate::summary`], which the
//! gates and the live exporter share.

pub mod artifacts;
mod bars;
pub mod compare;
pub(crate) mod figures;
pub mod fit;
pub mod format;
pub mod history;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
mod svg;
pub mod text;
pub mod trend;
pub mod validate;
pub mod verdict;

/// Gate verdicts are the gates' own type; reports carry them.
pub use crate::gate::GateResult;
/// Latency summaries live below the reports, where the live exporter and
/// the gates can use them too.
pub use crate::summary::LatencySummary;
pub use compare::{Comparison, compare};
pub use verdict::Verdict;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::{
    CheckInfo, CheckResult, RunResult, StepInfo, StepKind, StepResult, StopReason,
};
use crate::metrics::{
    CheckStats, ErrorCause, FailureSample, LatencyHistogram, StepStats, Timeline, Violation,
};
use crate::plan::LoadModel;

/// The schema identifier written into every report.
pub const SCHEMA: &str = "convoy.report/v1";

/// A complete run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Version of convoy that produced the report.
    pub convoy_version: String,
    /// A unique id for the run.
    pub run_id: String,
    /// Which command produced it: `bench`, `run`, `smoke`.
    pub command: String,
    /// What was tested (base URL, or method and URL for bench), secrets
    /// removed.
    pub target: String,
    /// Where the target of `run` and `smoke` came from: `--target`, the
    /// scenarios' `base_url`, or the built-in reference API started for
    /// the run (`None` for `bench`, and in reports written before it was
    /// recorded).
    #[serde(default)]
    pub target_source: Option<TargetSource>,
    /// True when the run was stopped before its plan ended.
    pub partial: bool,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// Wall-clock start.
    #[serde(with = "crate::engine::rfc3339")]
    pub started_at: SystemTime,
    /// Wall-clock end.
    #[serde(with = "crate::engine::rfc3339")]
    pub ended_at: SystemTime,
    /// Measured length of the run in seconds.
    pub duration_secs: f64,
    /// The load model used.
    pub load_model: LoadModel,
    /// Iterations that ran to completion.
    pub iterations: u64,
    /// Iterations cut off when the run stopped.
    pub interrupted: u64,
    /// Every request step together.
    pub overall: StepReport,
    /// Per step, in scenario order.
    pub steps: Vec<StepReport>,
    /// The run over time.
    pub timeline: Timeline,
    /// The scenario that ran, if any (`bench` has none).
    #[serde(default)]
    pub scenario: Option<String>,
    /// The load profile used, if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// The commit or version of the system under test (`--commit`, or the
    /// CI's commit variable), so a run history can name what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Which slice of a sharded run this report covers (`None`: the whole
    /// run, or shards already merged).
    #[serde(default)]
    pub shard: Option<crate::plan::Shard>,
    /// Every check with its passes and failures.
    #[serde(default)]
    pub checks: Vec<CheckReport>,
    /// `idempotency_violations`, `tenant_isolation_violations`,
    /// `auth_violations`.
    #[serde(default)]
    pub violations: BTreeMap<Violation, u64>,
    /// The first failures, redacted, as examples.
    #[serde(default)]
    pub failures: Vec<FailureSample>,
    /// Tokens renewed mid-run by a fresh login (expired, or answered 401);
    /// the request that met the 401 was sent again.
    #[serde(default)]
    pub auth_renewals: u64,
    /// SLA gates with their verdicts (empty when none were evaluated).
    #[serde(default)]
    pub gates: Vec<GateResult>,
    /// The comparison with a baseline, when the run was compared with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The compared figures over the recent runs of this series, with
    /// their change points, when the run was given a history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trends: Vec<trend::Trend>,
}

/// Where a run's target came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSource {
    /// `--target URL` (or `CONVOY_TARGET`).
    Flag,
    /// The scenarios' `base_url`.
    BaseUrl,
    /// The built-in reference API, started because nothing named a target.
    Builtin,
}

impl TargetSource {
    /// What a report's header says after the target's URL.
    pub fn describe(self) -> &'static str {
        match self {
            TargetSource::Flag => "from --target",
            TargetSource::BaseUrl => "the scenarios' base_url",
            TargetSource::Builtin => "the built-in reference API",
        }
    }
}

/// One check's outcome over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The step it belongs to.
    pub step: String,
    /// What it checks.
    pub name: String,
    /// Times it held.
    pub passes: u64,
    /// Times it did not.
    pub failures: u64,
    /// `passes / (passes + failures)`.
    pub pass_rate: f64,
}

/// Figures for one step (or for the whole run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The step's metric name (`overall` for the whole run).
    pub name: String,
    /// `request` or `journey`.
    pub kind: StepKind,
    /// Requests that completed (with a response or a transport error).
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Arrivals dropped before this step could start (open model; run-level
    /// figure shown on the overall row and on single-step runs).
    pub dropped: u64,
    /// Latency from scheduled start, in milliseconds.
    pub latency_ms: LatencySummary,
    /// Service time (from actual send), in milliseconds.
    pub service_ms: LatencySummary,
    /// Responses by HTTP status code.
    pub status_counts: BTreeMap<String, u64>,
    /// Transport failures by cause.
    pub error_counts: BTreeMap<ErrorCause, u64>,
    /// The raw histograms: HdrHistogram V2 (deflate), base64, microseconds.
    pub histograms: Histograms,
    /// The scenario rules out what this metric counts: the reconnects of a
    /// stream whose policy is `reconnect = "none"`. The row stays here
    /// (counting 0, for tools); the text, Markdown and HTML reports leave
    /// it out while it counts nothing ([`StepReport::shown`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ruled_out: bool,
}

/// The serialised histograms of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Latency from scheduled start.
    pub latency: LatencyHistogram,
    /// Service time.
    pub service: LatencyHistogram,
}

impl StepReport {
    /// Whether requests were made and none reached the target: no response
    /// at all, and every failure a refused, unresolvable or failed connect.
    /// A target that answers badly (resets, truncated bodies, timeouts) was
    /// reached; its failures are the run's findings, not an abort.
    pub fn never_reached(&self) -> bool {
        self.requests > 0
            && self.status_counts.is_empty()
            && self.error_counts.keys().all(|c| {
                matches!(
                    c,
                    ErrorCause::Refused | ErrorCause::Dns | ErrorCause::Connect
                )
            })
    }

    /// Summarises `stats` over a run of `duration_secs`.
    pub fn new(
        name: &str,
        kind: StepKind,
        stats: &StepStats,
        duration_secs: f64,
        dropped: u64,
    ) -> Self {
        StepReport {
            name: name.to_string(),
            kind,
            requests: stats.requests,
            errors: stats.errors,
            error_rate: stats.error_rate(),
            rps: crate::summary::throughput(stats.requests, duration_secs),
            dropped,
            latency_ms: LatencySummary::of(&stats.latency),
            service_ms: LatencySummary::of(&stats.service),
            status_counts: stats
                .status_counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            error_counts: stats.error_counts.clone(),
            histograms: Histograms {
                latency: stats.latency.clone(),
                service: stats.service.clone(),
            },
            ruled_out: false,
        }
    }

    /// Whether the human-readable reports show this row: every row but a
    /// ruled-out one ([`StepReport::ruled_out`]) that counted nothing.
    pub fn shown(&self) -> bool {
        !(self.ruled_out && self.requests == 0 && self.errors == 0)
    }

    /// Whether any response was timed: a step that never ran, or whose
    /// every request failed in transport, has no latency at all (its
    /// summary reads 0, which renderers must not show as a measurement).
    pub fn has_latency(&self) -> bool {
        !self.histograms.latency.is_empty()
    }

    /// The raw, mergeable measurements behind this summary.
    pub fn stats(&self) -> StepStats {
        StepStats {
            requests: self.requests,
            errors: self.errors,
            latency: self.histograms.latency.clone(),
            service: self.histograms.service.clone(),
            status_counts: self
                .status_counts
                .iter()
                .filter_map(|(k, v)| k.parse::<u16>().ok().map(|k| (k, *v)))
                .collect(),
            error_counts: self.error_counts.clone(),
        }
    }
}

/// What the caller knows about a run besides its measurements.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// `bench`, `run`, `smoke`.
    pub command: String,
    /// What was tested, secrets removed.
    pub target: String,
    /// Where the target came from (`run` and `smoke`).
    pub target_source: Option<TargetSource>,
    /// The run id; generated when `None`.
    pub run_id: Option<String>,
    /// The scenario that ran, if any.
    pub scenario: Option<String>,
    /// The load profile used, if any.
    pub profile: Option<String>,
    /// The commit or version under test, if known.
    pub commit: Option<String>,
    /// The shard this process ran, if sharded.
    pub shard: Option<crate::plan::Shard>,
}

impl RunMeta {
    /// Metadata of a run of `command` against `target`.
    pub fn new(command: &str, target: &str) -> Self {
        RunMeta {
            command: command.to_string(),
            target: target.to_string(),
            target_source: None,
            run_id: None,
            scenario: None,
            profile: None,
            commit: None,
            shard: None,
        }
    }
}

impl Report {
    /// Builds the report of a finished run.
    pub fn new(result: &RunResult, meta: RunMeta) -> Self {
        let single = result.steps.len() == 1;
        let d = result.duration_secs;
        let steps = result
            .steps
            .iter()
            .map(|s| {
                let dropped = if single { result.dropped } else { 0 };
                StepReport::new(&s.info.name, s.info.kind, &s.stats, d, dropped)
            })
            .collect();
        Report {
            schema: SCHEMA.to_string(),
            convoy_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: meta.run_id.unwrap_or_else(|| new_run_id(result.started_at)),
            command: meta.command,
            target: meta.target,
            target_source: meta.target_source,
            partial: result.is_partial(),
            stop_reason: result.stop_reason,
            started_at: result.started_at,
            ended_at: result.ended_at,
            duration_secs: d,
            load_model: result.model.clone(),
            iterations: result.iterations,
            interrupted: result.interrupted,
            overall: StepReport::new(
                "overall",
                StepKind::Request,
                &result.overall(),
                d,
                result.dropped,
            ),
            steps,
            timeline: result.timeline.clone(),
            scenario: meta.scenario,
            profile: meta.profile,
            commit: meta.commit,
            shard: meta.shard,
            checks: result
                .checks
                .iter()
                .map(|c| CheckReport {
                    step: c.info.step.clone(),
                    name: c.info.name.clone(),
                    passes: c.stats.passes,
                    failures: c.stats.failures,
                    pass_rate: c.stats.pass_rate(),
                })
                .collect(),
            violations: result.violations.clone(),
            failures: result.failures.clone(),
            auth_renewals: result.auth_renewals,
            gates: Vec::new(),
            comparison: None,
            trends: Vec::new(),
        }
    }

    /// Marks the rows named in `names` as ruled out by their scenario
    /// ([`StepReport::ruled_out`]).
    pub fn rule_out<S: AsRef<str>>(&mut self, names: &[S]) {
        for s in &mut self.steps {
            if names.iter().any(|n| n.as_ref() == s.name) {
                s.ruled_out = true;
            }
        }
    }

    /// The step rows the human-readable reports show, in order (see
    /// [`StepReport::shown`]).
    pub fn shown_steps(&self) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(|s| s.shown())
    }

    /// Rebuilds the engine result this report was made from.
    pub fn to_result(&self) -> RunResult {
        RunResult {
            steps: self
                .steps
                .iter()
                .map(|s| StepResult {
                    info: StepInfo {
                        name: s.name.clone(),
                        kind: s.kind,
                    },
                    stats: s.stats(),
                })
                .collect(),
            iterations: self.iterations,
            dropped: self.overall.dropped,
            interrupted: self.interrupted,
            started_at: self.started_at,
            ended_at: self.ended_at,
            duration_secs: self.duration_secs,
            model: self.load_model.clone(),
            stop_reason: self.stop_reason,
            timeline: self.timeline.clone(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckResult {
                    info: CheckInfo {
                        step: c.step.clone(),
                        name: c.name.clone(),
                    },
                    stats: CheckStats {
                        passes: c.passes,
                        failures: c.failures,
                    },
                })
                .collect(),
            violations: self.violations.clone(),
            failures: self.failures.clone(),
            auth_renewals: self.auth_renewals,
        }
    }

    /// The target as a report's header shows it: its URL, and where it came
    /// from (`(the built-in reference API)`) when the report knows.
    pub fn target_label(&self) -> String {
        match self.target_source {
            Some(s) => format!("{} ({})", self.target, s.describe()),
            None => self.target.clone(),
        }
    }

    /// Violations of every kind together.
    pub fn violation_count(&self) -> u64 {
        self.violations
            .values()
            .fold(0u64, |n, v| n.saturating_add(*v))
    }

    /// Failed check evaluations over every check.
    pub fn check_failures(&self) -> u64 {
        self.checks
            .iter()
            .fold(0u64, |n, c| n.saturating_add(c.failures))
    }

    /// Fraction of check evaluations that passed (1 when there were none).
    pub fn checks_pass_rate(&self) -> f64 {
        let passes = self
            .checks
            .iter()
            .fold(0u64, |n, c| n.saturating_add(c.passes));
        let total = passes.saturating_add(self.check_failures());
        if total == 0 {
            1.0
        } else {
            passes as f64 / total as f64
        }
    }

    /// Recomputes every derived figure from the histograms and counters.
    pub fn recompute(&mut self) {
        let meta = RunMeta {
            command: self.command.clone(),
            target: self.target.clone(),
            target_source: self.target_source,
            run_id: Some(self.run_id.clone()),
            scenario: self.scenario.clone(),
            profile: self.profile.clone(),
            commit: self.commit.clone(),
            shard: self.shard,
        };
        let version = std::mem::take(&mut self.convoy_version);
        let gates = std::mem::take(&mut self.gates);
        let comparison = self.comparison.take();
        let ruled_out: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.ruled_out)
            .map(|s| s.name.clone())
            .collect();
        *self = Report::new(&self.to_result(), meta);
        self.rule_out(&ruled_out);
        self.convoy_version = version;
        self.gates = gates;
        self.comparison = comparison;
    }

    /// Every string of the report scrubbed of `secrets`, before it is
    /// rendered or written: failure samples, check and step names, the
    /// target, gates, the comparison (the encoded histograms aside, which
    /// hold no text). The schema and the figures are unchanged.
    pub fn scrub(&mut self, secrets: &crate::redact::Secrets) {
        if secrets.is_empty() {
            return;
        }
        if let Some(clean) = secrets.scrub_serialized(&*self, &["histograms"]) {
            *self = clean;
            return;
        }
        // A secret is also a fixed word of the format (an enum's name):
        // scrub the free text field by field.
        let s = |t: &mut String| secrets.scrub_in_place(t);
        s(&mut self.target);
        self.scenario.iter_mut().for_each(s);
        for st in &mut self.steps {
            s(&mut st.name);
        }
        for c in &mut self.checks {
            s(&mut c.step);
            s(&mut c.name);
        }
        for f in &mut self.failures {
            for t in [
                &mut f.step,
                &mut f.check,
                &mut f.message,
                &mut f.request,
                &mut f.response,
            ] {
                s(t);
            }
        }
        for g in &mut self.gates {
            s(&mut g.expression);
            s(&mut g.actual_display);
        }
    }

    /// Measured length of the run (reports read from files are validated,
    /// but a report built in memory is not: out-of-range values clamp).
    pub fn duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.duration_secs.max(0.0)).unwrap_or(Duration::MAX)
    }
}

/// A run id that sorts by time: `20261122T044100Z-1a2b3c`.
pub fn new_run_id(at: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace(['-', ':'], "");
    let short = uuid::Uuid::new_v4().simple().to_string();
    format!("{stamp}-{}", &short[..6])
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The terminal summary table.
    Table,
    /// The `convoy.report/v1` JSON document.
    Json,
    /// Markdown for a GitHub step summary or a pull-request comment.
    Md,
    /// JUnit XML: gates and checks as test cases.
    Junit,
    /// One self-contained HTML page with charts.
    Html,
}

impl Format {
    /// The names `FromStr` accepts, aliases included.
    pub const NAMES: &[&str] = &["table", "json", "md", "markdown", "junit", "xml", "html"];

    /// The usual file extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Json => "json",
            Format::Md => "md",
            Format::Junit => "xml",
            Format::Html => "html",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "table" => Format::Table,
            "json" => Format::Json,
            "md" | "markdown" => Format::Md,
            "junit" | "xml" => Format::Junit,
            "html" => Format::Html,
            _ => {
                return Err(format!(
                    "unknown format {s:?} (one of {})",
                    Format::NAMES.join(", ")
                ));
            }
        })
    }
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => text::render(report),
        Format::Json => json::render(report),
        Format::Md => markdown::render(report),
        Format::Junit => junit::render(report),
        Format::Html => html::render(report),
    }
}
