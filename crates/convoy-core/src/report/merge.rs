//! Merging the reports of one sharded run (or of identical runs) into one
//! report, exactly.
//!
//! Every measurement in a [`Report`] is mergeable: histograms add bucket by
//! bucket, counters sum, checks and violations sum. So the merged report is
//! the report the union of the shards would have produced, not an
//! approximation: its percentiles come from the added HdrHistograms, never
//! from averaging per-shard percentiles.
//!
//! What "the same run" means:
//!
//! * same command (`bench`, `run`), scenario, profile and target (loopback
//!   targets compare without their port: every shard of a `convoy run`
//!   without `--target` tests its own embedded reference API);
//! * the same steps (name and kind, in order) and the same checks;
//! * either every report is a shard of the same `N` with the indexes
//!   `0..N` each present once, and the shards' load models are exactly the
//!   slices [`LoadModel::shard`] makes of one model; or no report is a shard
//!   and all have the same load model (repeated runs of one plan, e.g. on
//!   several machines; the merged model is then that model times the number
//!   of reports).
//!
//! Time: the merged run starts at the earliest `started_at` and ends at the
//! latest `ended_at`; its duration is that wall-clock span (never less than
//! the longest shard's own measured duration, in case of clock skew between
//! machines), so rates are requests over the whole window during which any
//! shard was sending. Timelines are aligned on absolute time
//! ([`Timeline::aligned`]): one grid of windows from the common start, each
//! shard's samples shifted by its start offset and put whole into the grid
//! window their middle falls in; merged windows never overlap, and their
//! percentiles come from the shards' window histograms added (exact; only
//! reports of versions that kept no window histograms merge them as the
//! highest shard value, an upper bound).

use std::collections::BTreeMap;
use std::time::Duration;

use super::validate::MAX_SECS;
use super::{Report, RunMeta};
use crate::engine::{CheckInfo, CheckResult, RunResult, StepInfo, StepResult, StopReason};
use crate::gate::{self, Gate};
use crate::metrics::checks::keep_example;
use crate::metrics::histogram::MAX_COUNT;
use crate::metrics::{CheckStats, FailureSample, Timeline};
use crate::plan::{ClosedModel, LoadModel, OpenModel, Ramp, Shard, Stage};

/// Why reports could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// Two reports disagree on something that must be equal.
    #[error("{field} differs: {first} has {first_value}, {other} has {other_value}")]
    Mismatch {
        /// What differs (`scenario`, `profile`, `steps`, ...).
        field: &'static str,
        /// The first report's label.
        first: String,
        /// Its value.
        first_value: String,
        /// The report that differs.
        other: String,
        /// Its value.
        other_value: String,
    },
    /// The shards do not make up one whole run.
    #[error("{0}")]
    Shards(String),
    /// A gate stored in a report could not be parsed again.
    #[error("{label}: gate {expression:?} cannot be re-evaluated: {message}")]
    Gate {
        /// The report it came from.
        label: String,
        /// The gate as stored.
        expression: String,
        /// Why it does not parse.
        message: String,
    },
}

/// Merges `reports`, labelled `report 1`, `report 2`... in errors.
pub fn merge(reports: &[Report]) -> Result<Report, MergeError> {
    let labels: Vec<String> = (1..=reports.len()).map(|i| format!("report {i}")).collect();
    merge_labelled(&labels, reports)
}

/// Merges `reports`; `labels` (file names, say) name them in errors.
///
/// The merged report has no shard, is partial when any input was, carries
/// the union of the inputs' gates re-evaluated on the merged figures, and
/// no comparison.
pub fn merge_labelled<S: AsRef<str>>(
    labels: &[S],
    reports: &[Report],
) -> Result<Report, MergeError> {
    let label = |i: usize| {
        labels
            .get(i)
            .map_or_else(|| format!("report {}", i + 1), |l| l.as_ref().to_string())
    };
    let first = reports.first().ok_or(MergeError::Empty)?;
    for (i, r) in reports.iter().enumerate().skip(1) {
        let differs = |field: &'static str, a: String, b: String| MergeError::Mismatch {
            field,
            first: label(0),
            first_value: a,
            other: label(i),
            other_value: b,
        };
        if r.command != first.command {
            return Err(differs("command", q(&first.command), q(&r.command)));
        }
        if r.scenario != first.scenario {
            return Err(differs("scenario", opt(&first.scenario), opt(&r.scenario)));
        }
        if r.profile != first.profile {
            return Err(differs("profile", opt(&first.profile), opt(&r.profile)));
        }
        if target_identity(&r.target) != target_identity(&first.target) {
            return Err(differs("target", q(&first.target), q(&r.target)));
        }
        let steps = |r: &Report| {
            r.steps
                .iter()
                .map(|s| format!("{} ({:?})", s.name, s.kind).to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if steps(r) != steps(first) {
            return Err(differs("steps", steps(first), steps(r)));
        }
        let checks = |r: &Report| {
            r.checks
                .iter()
                .map(|c| format!("{}/{}", c.step, c.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if checks(r) != checks(first) {
            return Err(differs("checks", checks(first), checks(r)));
        }
    }
    let model = merged_model(reports, &label)?;
    check_counts(reports)?;

    let mut result = RunResult {
        steps: first
            .steps
            .iter()
            .map(|s| StepResult {
                info: StepInfo {
                    name: s.name.clone(),
                    kind: s.kind,
                },
                stats: Default::default(),
            })
            .collect(),
        iterations: 0,
        dropped: 0,
        interrupted: 0,
        started_at: reports
            .iter()
            .map(|r| r.started_at)
            .min()
            .expect("non-empty"),
        ended_at: reports.iter().map(|r| r.ended_at).max().expect("non-empty"),
        duration_secs: 0.0,
        model,
        stop_reason: StopReason::Completed,
        timeline: Timeline::default(),
        checks: first
            .checks
            .iter()
            .map(|c| CheckResult {
                info: CheckInfo {
                    step: c.step.clone(),
                    name: c.name.clone(),
                },
                stats: CheckStats::default(),
            })
            .collect(),
        violations: BTreeMap::new(),
        failures: Vec::new(),
        auth_renewals: 0,
    };
    let span = result
        .ended_at
        .duration_since(result.started_at)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64();
    if span > MAX_SECS {
        return Err(MergeError::Shards(format!(
            "the reports span {} (from {} to {}): more than a year, not one run",
            crate::plan::format_duration(Duration::from_secs(span as u64)),
            humantime::format_rfc3339_seconds(result.started_at),
            humantime::format_rfc3339_seconds(result.ended_at)
        )));
    }
    result.duration_secs = reports.iter().map(|r| r.duration_secs).fold(span, f64::max);
    for r in reports {
        for (into, from) in result.steps.iter_mut().zip(&r.steps) {
            into.stats.merge(&from.stats());
        }
        for (into, from) in result.checks.iter_mut().zip(&r.checks) {
            into.stats.merge(&CheckStats {
                passes: from.passes,
                failures: from.failures,
            });
        }
        for (k, v) in &r.violations {
            let n = result.violations.entry(*k).or_insert(0);
            *n = n.saturating_add(*v);
        }
        result.iterations = result.iterations.saturating_add(r.iterations);
        result.interrupted = result.interrupted.saturating_add(r.interrupted);
        result.auth_renewals = result.auth_renewals.saturating_add(r.auth_renewals);
        result.dropped = result.dropped.saturating_add(r.overall.dropped);
        result.stop_reason = worse(result.stop_reason, r.stop_reason);
    }
    let origin = result.started_at;
    let timelines: Vec<(f64, &Timeline)> = reports
        .iter()
        .map(|r| {
            let offset = r
                .started_at
                .duration_since(origin)
                .unwrap_or(Duration::ZERO);
            (offset.as_secs_f64(), &r.timeline)
        })
        .collect();
    result.timeline = Timeline::aligned(&timelines);
    result.failures = interleaved_failures(reports);

    let mut meta = RunMeta::new(&first.command, &merged_target(reports));
    meta.scenario = first.scenario.clone();
    meta.profile = first.profile.clone();
    meta.commit = first.commit.clone();
    // Shards that disagree on where their target came from say nothing.
    meta.target_source = first.target_source.filter(|s| {
        reports
            .iter()
            .all(|r| r.target_source.is_none_or(|x| x == *s))
    });
    let mut merged = Report::new(&result, meta);
    // The shards ran the same scenarios: what one rules out, all do.
    let ruled_out: Vec<&str> = first
        .steps
        .iter()
        .filter(|s| s.ruled_out)
        .map(|s| s.name.as_str())
        .collect();
    merged.rule_out(&ruled_out);
    let gates = stored_gates(reports, label)?;
    merged.gates = gate::evaluate(&gates, &merged, None);
    Ok(merged)
}

/// The gates stored in `reports` (their union, in first-seen order), parsed
/// again from their expressions.
pub fn stored_gates<S: AsRef<str>>(
    reports: &[Report],
    label: impl Fn(usize) -> S,
) -> Result<Vec<Gate>, MergeError> {
    let mut gates: Vec<Gate> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        for g in &r.gates {
            if gates.iter().any(|x| x.expression == g.expression.trim()) {
                continue;
            }
            let parsed = g.expression.parse::<Gate>().map_err(|e| MergeError::Gate {
                label: label(i).as_ref().to_string(),
                expression: g.expression.clone(),
                message: e.to_string(),
            })?;
            gates.push(parsed);
        }
    }
    Ok(gates)
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "none".to_string(), q)
}

/// The target with the port of loopback hosts removed: shards that each ran
/// against their own embedded reference API tested the same thing, and so
/// did two runs of `convoy run` without `--target` (each on a port of the
/// day). Merging and comparing both judge targets by this.
pub fn target_identity(target: &str) -> String {
    let Some(scheme_end) = target.find("://") else {
        return target.to_string();
    };
    let rest = &target[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = match authority.rfind(':') {
        Some(c) if !authority[c..].contains(']') => &authority[..c],
        _ => authority,
    };
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    if loopback {
        format!(
            "{}{host}{}",
            &target[..scheme_end + 3],
            &rest[authority_end..]
        )
    } else {
        target.to_string()
    }
}

/// The merged report's target: the common one, or the distinct ones listed.
fn merged_target(reports: &[Report]) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for r in reports {
        if !distinct.contains(&r.target.as_str()) {
            distinct.push(&r.target);
        }
    }
    distinct.join(", ")
}

/// The worse of two ways a run ended: a dead target over an interruption
/// over completion.
fn worse(a: StopReason, b: StopReason) -> StopReason {
    let rank = |s: StopReason| match s {
        StopReason::Completed => 0,
        StopReason::Interrupted => 1,
        StopReason::AbortedByGate => 2,
        StopReason::TargetDown => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Failure samples taken in turn from each report, so that every shard's
/// failures are represented, kept per kind as a run keeps them
/// ([`keep_example`]: a few of each kind, at most
/// [`MAX_FAILURE_SAMPLES`](crate::metrics::checks::MAX_FAILURE_SAMPLES)).
fn interleaved_failures(reports: &[Report]) -> Vec<FailureSample> {
    let mut out = Vec::new();
    let longest = reports.iter().map(|r| r.failures.len()).max().unwrap_or(0);
    for k in 0..longest {
        for r in reports {
            if let Some(f) = r.failures.get(k) {
                keep_example(&mut out, f.clone());
            }
        }
    }
    out
}

/// The load model of the merged run, after checking that the reports are
/// the shards of one run (or repeats of one plan).
fn merged_model(
    reports: &[Report],
    label: &impl Fn(usize) -> String,
) -> Result<LoadModel, MergeError> {
    let sharded: Vec<Option<Shard>> = reports.iter().map(|r| r.shard).collect();
    if sharded.iter().all(Option::is_none) {
        for (i, r) in reports.iter().enumerate().skip(1) {
            if r.run_id == reports[0].run_id {
                return Err(MergeError::Shards(format!(
                    "{} and {} are the same run ({}): merging it twice would count it twice",
                    label(0),
                    label(i),
                    r.run_id
                )));
            }
            if !same_model(&r.load_model, &reports[0].load_model) {
                return Err(MergeError::Mismatch {
                    field: "load model",
                    first: label(0),
                    first_value: reports[0].load_model.describe(),
                    other: label(i),
                    other_value: r.load_model.describe(),
                });
            }
        }
        let models: Vec<&LoadModel> = reports.iter().map(|r| &r.load_model).collect();
        return sum_models(&models).ok_or_else(|| unreachable_shape(label));
    }
    if let Some(i) = sharded.iter().position(Option::is_none) {
        return Err(MergeError::Shards(format!(
            "{} is not a shard but {} is: merge the shards of one run, or whole runs only",
            label(i),
            label(sharded.iter().position(Option::is_some).expect("some"))
        )));
    }
    let shards: Vec<Shard> = sharded.into_iter().flatten().collect();
    let count = shards[0].count;
    if let Some(i) = shards.iter().position(|s| s.count != count) {
        return Err(MergeError::Mismatch {
            field: "shard count",
            first: label(0),
            first_value: format!("shard {}", shards[0]),
            other: label(i),
            other_value: format!("shard {}", shards[i]),
        });
    }
    // Which report is each shard; the count comes from a file, so nothing
    // is allocated for it.
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, s) in shards.iter().enumerate() {
        if s.index >= count {
            return Err(MergeError::Shards(format!(
                "{} is shard {s}: its index is not below its count",
                label(i)
            )));
        }
        if let Some(j) = seen.insert(s.index, i) {
            return Err(MergeError::Shards(format!(
                "{} and {} are both shard {s}",
                label(j),
                label(i)
            )));
        }
    }
    let absent = count as usize - seen.len();
    if absent > 0 {
        const LISTED: usize = 20;
        let mut missing: Vec<String> = (0..count)
            .filter(|k| !seen.contains_key(k))
            .take(LISTED)
            .map(|k| format!("{k}/{count}"))
            .collect();
        if absent > LISTED {
            missing.push(format!("... ({absent} in all)"));
        }
        return Err(MergeError::Shards(format!(
            "missing shard {} of {count}: the merged report would not be the whole run",
            missing.join(", ")
        )));
    }
    let models: Vec<&LoadModel> = reports.iter().map(|r| &r.load_model).collect();
    let whole = sum_models(&models).ok_or_else(|| {
        MergeError::Shards(
            "the shards' load models have different shapes (closed and open, or other stages): \
             they come from different plans"
                .to_string(),
        )
    })?;
    for (i, (r, s)) in reports.iter().zip(&shards).enumerate() {
        if !same_model(&whole.shard(s), &r.load_model) {
            return Err(MergeError::Shards(format!(
                "{} (shard {s}, {}) is not shard {s} of the run the others make up ({})",
                label(i),
                r.load_model.describe(),
                whole.describe()
            )));
        }
    }
    Ok(whole)
}

/// Refuses reports whose histograms together would hold more samples
/// than a histogram may ([`MAX_COUNT`]): the merged report could not be
/// read back, and sums of bucket counts could overflow. A merged histogram
/// (a step's, or a timeline window's) adds at most every histogram of each
/// report, so each report counts with its largest step histogram or the
/// sum of its windows, whichever is more.
fn check_counts(reports: &[Report]) -> Result<(), MergeError> {
    let mut total: u64 = 0;
    for r in reports {
        let steps = std::iter::once(&r.overall)
            .chain(&r.steps)
            .flat_map(|s| [s.histograms.latency.count(), s.histograms.service.count()])
            .max()
            .unwrap_or(0);
        let windows = r
            .timeline
            .samples()
            .iter()
            .filter_map(|s| s.latency.as_ref())
            .fold(0u64, |n, w| n.saturating_add(w.decode().count()));
        // Counters that the merged report sums and its reader bounds too.
        let counters = [
            r.iterations,
            r.interrupted,
            r.auth_renewals,
            r.overall.requests,
            r.overall.dropped,
            r.checks.iter().fold(0u64, |n, c| {
                n.saturating_add(c.passes).saturating_add(c.failures)
            }),
            r.timeline
                .samples()
                .iter()
                .fold(0u64, |n, s| n.saturating_add(s.requests)),
        ];
        let most = counters.into_iter().fold(steps.max(windows), u64::max);
        total = total.saturating_add(most);
    }
    if total > MAX_COUNT {
        return Err(MergeError::Shards(format!(
            "together the reports count more than {MAX_COUNT} samples (in one histogram \
             or counter): more than a merged report can hold"
        )));
    }
    Ok(())
}

fn unreachable_shape(label: &impl Fn(usize) -> String) -> MergeError {
    MergeError::Shards(format!(
        "{}: the load models have different shapes",
        label(0)
    ))
}

/// Equal up to floating-point rounding of rates.
fn same_model(a: &LoadModel, b: &LoadModel) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
    let same_ramp = |x: &Ramp, y: &Ramp| {
        close(x.start, y.start)
            && x.stages.len() == y.stages.len()
            && x.stages
                .iter()
                .zip(&y.stages)
                .all(|(p, q)| close(p.target, q.target) && p.duration == q.duration)
    };
    match (a, b) {
        (LoadModel::Closed(x), LoadModel::Closed(y)) => {
            same_ramp(&x.users, &y.users)
                && x.iterations_per_user == y.iterations_per_user
                && x.total_iterations == y.total_iterations
                && x.duration == y.duration
        }
        (LoadModel::Open(x), LoadModel::Open(y)) => {
            same_ramp(&x.rate, &y.rate)
                && x.max_in_flight == y.max_in_flight
                && x.max_lag == y.max_lag
                && x.total_iterations == y.total_iterations
        }
        _ => false,
    }
}

/// The load of all `models` run side by side: users, rates, in-flight caps
/// and totals add; times and per-user limits must be equal. `None` when the
/// shapes differ.
fn sum_models(models: &[&LoadModel]) -> Option<LoadModel> {
    let sum_ramps = |ramps: Vec<&Ramp>| -> Option<Ramp> {
        let first = ramps[0];
        let mut out = Ramp {
            start: 0.0,
            stages: first
                .stages
                .iter()
                .map(|s| Stage {
                    target: 0.0,
                    duration: s.duration,
                })
                .collect(),
        };
        for r in ramps {
            if r.stages.len() != out.stages.len() {
                return None;
            }
            out.start += r.start;
            for (o, s) in out.stages.iter_mut().zip(&r.stages) {
                if o.duration != s.duration {
                    return None;
                }
                o.target += s.target;
            }
        }
        Some(out)
    };
    let sum_totals = |t: Vec<Option<u64>>| -> Option<Option<u64>> {
        if t.iter().all(Option::is_none) {
            Some(None)
        } else if t.iter().all(Option::is_some) {
            Some(Some(
                t.into_iter().flatten().fold(0u64, u64::saturating_add),
            ))
        } else {
            None
        }
    };
    match models[0] {
        LoadModel::Closed(c0) => {
            let closed: Vec<&ClosedModel> = models
                .iter()
                .map(|m| match m {
                    LoadModel::Closed(c) => Some(c),
                    LoadModel::Open(_) => None,
                })
                .collect::<Option<_>>()?;
            if closed.iter().any(|c| {
                c.iterations_per_user != c0.iterations_per_user || c.duration != c0.duration
            }) {
                return None;
            }
            Some(LoadModel::Closed(ClosedModel {
                users: sum_ramps(closed.iter().map(|c| &c.users).collect())?,
                iterations_per_user: c0.iterations_per_user,
                total_iterations: sum_totals(closed.iter().map(|c| c.total_iterations).collect())?,
                duration: c0.duration,
            }))
        }
        LoadModel::Open(o0) => {
            let open: Vec<&OpenModel> = models
                .iter()
                .map(|m| match m {
                    LoadModel::Open(o) => Some(o),
                    LoadModel::Closed(_) => None,
                })
                .collect::<Option<_>>()?;
            if open.iter().any(|o| o.max_lag != o0.max_lag) {
                return None;
            }
            Some(LoadModel::Open(OpenModel {
                rate: sum_ramps(open.iter().map(|o| &o.rate).collect())?,
                max_in_flight: open
                    .iter()
                    .fold(0u32, |n, o| n.saturating_add(o.max_in_flight)),
                max_lag: o0.max_lag,
                total_iterations: sum_totals(open.iter().map(|o| o.total_iterations).collect())?,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StepKind;
    use crate::metrics::checks::MAX_FAILURE_SAMPLES;
    use crate::metrics::recorder::IntervalStats;
    use crate::metrics::{LatencyHistogram, Outcome, StepStats, TimelineSample, Violation};
    use crate::report::GateResult;
    use std::time::SystemTime;

    const MS: Duration = Duration::from_millis(1);

    fn closed(users: f64, total: Option<u64>) -> LoadModel {
        LoadModel::Closed(ClosedModel {
            users: Ramp::constant(users, Duration::ZERO),
            iterations_per_user: None,
            total_iterations: total,
            duration: None,
        })
    }

    /// A report of `requests` requests of `latency_ms` each, started
    /// `start_secs` after an arbitrary epoch.
    fn report(shard: Option<&str>, model: LoadModel, requests: u64, latency_ms: u32) -> Report {
        let mut stats = StepStats::default();
        for i in 0..requests {
            let status = if i % 10 == 0 { 503 } else { 200 };
            stats.record(MS * latency_ms, MS * latency_ms, Outcome::Status(status));
        }
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut timeline = Timeline::default();
        timeline.push(TimelineSample {
            t: 0.0,
            window: 1.0,
            requests,
            errors: 0,
            dropped: 0,
            p50_ms: latency_ms as f64,
            p95_ms: latency_ms as f64,
            p99_ms: latency_ms as f64,
            max_ms: latency_ms as f64,
            active_users: 1,
            latency: None,
        });
        let result = RunResult {
            steps: vec![StepResult {
                info: StepInfo {
                    name: "GET /".into(),
                    kind: StepKind::Request,
                },
                stats,
            }],
            iterations: requests,
            dropped: 0,
            interrupted: 0,
            auth_renewals: 0,
            started_at: start,
            ended_at: start + Duration::from_secs(2),
            duration_secs: 2.0,
            model,
            stop_reason: StopReason::Completed,
            timeline,
            checks: vec![CheckResult {
                info: CheckInfo {
                    step: "GET /".into(),
                    name: "status".into(),
                },
                stats: CheckStats {
                    passes: requests,
                    failures: 0,
                },
            }],
            violations: [(Violation::TenantIsolationViolations, 1)].into(),
            failures: Vec::new(),
        };
        let mut meta = RunMeta::new("run", "http://127.0.0.1:4000");
        meta.scenario = Some("health".into());
        meta.profile = Some("smoke".into());
        meta.shard = shard.map(|s| s.parse().unwrap());
        let mut r = Report::new(&result, meta);
        r.gates = vec![GateResult {
            expression: "p95 < 30ms".into(),
            scope: "overall".into(),
            metric: "p95".into(),
            threshold: "< 30ms".into(),
            actual: None,
            actual_display: String::new(),
            passed: true,
        }];
        r
    }

    fn shards_of(model: &LoadModel, n: u32) -> Vec<Report> {
        (0..n)
            .map(|i| {
                let s: Shard = format!("{i}/{n}").parse().unwrap();
                let mut r = report(Some(&s.to_string()), model.shard(&s), 100, 10 + 20 * i);
                r.target = format!("http://127.0.0.1:{}", 4000 + i);
                r
            })
            .collect()
    }

    #[test]
    fn shards_add_up_exactly() {
        let whole = closed(7.0, Some(300));
        let shards = shards_of(&whole, 3);
        let merged = merge(&shards).unwrap();
        assert_eq!(merged.load_model, whole);
        assert_eq!(merged.shard, None);
        assert_eq!(merged.overall.requests, 300);
        assert_eq!(merged.overall.status_counts["503"], 30);
        assert_eq!(merged.checks[0].passes, 300);
        assert_eq!(merged.violations[&Violation::TenantIsolationViolations], 3);
        let mut union = StepStats::default();
        for r in &shards {
            union.merge(&r.steps[0].stats());
        }
        assert_eq!(merged.steps[0].stats(), union);
        // 10ms, 30ms and 50ms: the merged p95 is a slow shard's, which no
        // average of per-shard percentiles gives.
        assert!(merged.overall.latency_ms.p95 >= 49.0);
        // The gate is re-evaluated on the merged figures and now fails.
        assert_eq!(merged.gates.len(), 1);
        assert!(!merged.gates[0].passed);
        assert_eq!(merged.timeline.samples().len(), 1);
        assert_eq!(merged.timeline.samples()[0].requests, 300);
    }

    #[test]
    fn open_model_shards_rebuild_the_whole_rate() {
        let whole = LoadModel::Open(OpenModel {
            rate: Ramp::constant(100.0, Duration::from_secs(10)),
            max_in_flight: 10,
            max_lag: Duration::from_secs(1),
            total_iterations: None,
        });
        let merged = merge(&shards_of(&whole, 3)).unwrap();
        assert!(same_model(&merged.load_model, &whole));
    }

    #[test]
    fn different_scenarios_are_refused_by_name() {
        let whole = closed(4.0, None);
        let mut shards = shards_of(&whole, 2);
        shards[1].scenario = Some("login".into());
        let err = merge_labelled(&["a.json", "b.json"], &shards)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"scenario differs: a.json has "health", b.json has "login""#
        );
    }

    #[test]
    fn different_profiles_and_targets_are_refused() {
        let whole = closed(4.0, None);
        let mut shards = shards_of(&whole, 2);
        shards[1].profile = Some("heavy".into());
        assert!(matches!(
            merge(&shards),
            Err(MergeError::Mismatch {
                field: "profile",
                ..
            })
        ));
        let mut shards = shards_of(&whole, 2);
        shards[1].target = "https://api.example.com".into();
        assert!(matches!(
            merge(&shards),
            Err(MergeError::Mismatch {
                field: "target",
                ..
            })
        ));
    }

    #[test]
    fn missing_duplicate_and_foreign_shards_are_refused() {
        let whole = closed(6.0, None);
        let shards = shards_of(&whole, 3);
        let err = merge(&shards[..2]).unwrap_err().to_string();
        assert!(err.contains("missing shard 2/3"), "{err}");
        let dup = vec![shards[0].clone(), shards[1].clone(), shards[1].clone()];
        let err = merge(&dup).unwrap_err().to_string();
        assert!(err.contains("both shard 1/3"), "{err}");
        // A shard of another plan (9 users, not 6) does not fit.
        let mut other = shards.clone();
        other[2] = shards_of(&closed(9.0, None), 3).remove(2);
        let err = merge(&other).unwrap_err().to_string();
        assert!(err.contains("is not shard"), "{err}");
        let mut mixed = shards.clone();
        mixed[1].shard = None;
        assert!(merge(&mixed).is_err());
    }

    #[test]
    fn whole_runs_of_one_plan_merge_once_each() {
        let a = report(None, closed(2.0, Some(100)), 100, 5);
        let mut b = report(None, closed(2.0, Some(100)), 100, 5);
        b.run_id = "other".into();
        let merged = merge(&[a.clone(), b]).unwrap();
        assert_eq!(merged.overall.requests, 200);
        assert_eq!(merged.load_model, closed(4.0, Some(200)));
        let err = merge(&[a.clone(), a]).unwrap_err().to_string();
        assert!(err.contains("same run"), "{err}");
    }

    #[test]
    fn windows_align_on_absolute_time_and_the_worst_ending_wins() {
        let whole = closed(4.0, None);
        let mut shards = shards_of(&whole, 2);
        shards[1].started_at += Duration::from_secs(3);
        shards[1].ended_at += Duration::from_secs(3);
        shards[1].stop_reason = StopReason::Interrupted;
        let merged = merge(&shards).unwrap();
        assert_eq!(merged.duration_secs, 5.0);
        assert!((merged.overall.rps - 40.0).abs() < 1e-9);
        let t: Vec<f64> = merged.timeline.samples().iter().map(|s| s.t).collect();
        assert_eq!(t, vec![0.0, 3.0]);
        assert!(merged.partial);
        assert_eq!(merged.stop_reason, StopReason::Interrupted);
    }

    #[test]
    fn drifting_shard_windows_merge_onto_one_grid_with_exact_percentiles() {
        // The audit's case: windows starting at 0, 1.002 and 2.250 s; the
        // second shard started 0.3 s later and is ten times slower.
        let whole = closed(4.0, None);
        let mut shards = shards_of(&whole, 2);
        let mut union = LatencyHistogram::new();
        for (i, r) in shards.iter_mut().enumerate() {
            let mut timeline = Timeline::default();
            for (t, next) in [(0.0, 1.002), (1.002, 2.250), (2.250, 3.250)] {
                let mut iv = IntervalStats::default();
                for k in 1..=50u64 {
                    let d = MS * (k * (1 + 9 * i as u64)) as u32;
                    iv.requests += 1;
                    iv.latency.record(d);
                    union.record(d);
                }
                timeline.push(TimelineSample::from_interval(t, next - t, &iv, 2));
            }
            r.timeline = timeline;
        }
        shards[1].started_at += Duration::from_millis(300);
        let merged = merge(&shards).unwrap();
        let s = merged.timeline.samples();
        assert_eq!(
            s.iter().map(|x| x.t).collect::<Vec<_>>(),
            [0.0, 1.0, 2.0, 3.0]
        );
        for pair in s.windows(2) {
            assert!(pair[0].t + pair[0].window <= pair[1].t, "{pair:?}");
        }
        assert_eq!(s.iter().map(|x| x.requests).sum::<u64>(), 300);
        // Every window's percentiles are those of its histogram, and the
        // windows' histograms add up to every request of both shards.
        let mut all = LatencyHistogram::new();
        for x in s {
            let h = x.latency.as_ref().unwrap().decode();
            assert_eq!(x.p95_ms, h.quantile_micros(0.95) as f64 / 1000.0);
            all.merge(&h);
        }
        assert_eq!(all, union);
    }

    #[test]
    fn failure_samples_are_taken_in_turn_and_bounded() {
        let whole = closed(4.0, None);
        let mut shards = shards_of(&whole, 2);
        for (i, r) in shards.iter_mut().enumerate() {
            r.failures = (0..MAX_FAILURE_SAMPLES)
                .map(|k| FailureSample {
                    step: format!("shard {i}"),
                    check: format!("{k}"),
                    message: String::new(),
                    request: String::new(),
                    response: String::new(),
                    vu: 0,
                    iteration: 0,
                    violation: None,
                    status: None,
                    cause: None,
                })
                .collect();
        }
        let merged = merge(&shards).unwrap();
        assert_eq!(merged.failures.len(), MAX_FAILURE_SAMPLES);
        assert_eq!(merged.failures[0].step, "shard 0");
        assert_eq!(merged.failures[1].step, "shard 1");
    }

    #[test]
    fn loopback_ports_do_not_make_targets_different() {
        assert_eq!(
            target_identity("GET http://127.0.0.1:4000/x"),
            target_identity("GET http://127.0.0.1:5000/x")
        );
        assert_ne!(
            target_identity("http://api.example.com:4000"),
            target_identity("http://api.example.com:5000")
        );
        assert_eq!(
            target_identity("http://127.0.0.1:41089/"),
            target_identity("http://127.0.0.1:5555/")
        );
        assert_ne!(
            target_identity("https://staging.example.test:8443/api"),
            target_identity("https://staging.example.test:9443/api")
        );
        assert_eq!(target_identity("GET /x"), "GET /x");
    }
}
