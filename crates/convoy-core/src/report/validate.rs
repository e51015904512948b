//! What a saved report must satisfy before convoy computes with it.
//!
//! A report file is input like any other: hand-edited, truncated, written by
//! another version, or hostile. Every number read from it that later feeds
//! arithmetic, a [`Duration`](std::time::Duration) conversion or an
//! allocation is checked here, right after parsing and before anything is
//! derived from it: finite (JSON cannot say NaN or infinity, but it can say
//! `1e308`), not negative, and within bounds no real run comes near. A
//! report that fails is refused with the field named
//! (`duration_secs is 1e308: ...`), so renderers, gates, merges and
//! comparisons only ever see sane values.
//!
//! Two bounds are checked in a first pass over the JSON text, before the
//! report is built ([`Shape`]), because building it decodes every
//! histogram: the number of steps and of timeline windows. That pass keeps
//! nothing of the document but the schema and those two counts.
//!
//! The histograms themselves are bounded when decoded
//! ([`LatencyHistogram::from_base64`](crate::metrics::LatencyHistogram::from_base64)):
//! significant digits, trackable range, payload size and total count.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Report, StepReport};
use crate::metrics::TimelineSample;
use crate::metrics::histogram::MAX_COUNT;
use crate::plan::{LoadModel, Ramp};

/// The longest run a report may describe, in seconds: a year (366 days).
/// Durations, timeline offsets and windows, and load-model stages beyond
/// it are refused: no load test runs that long, and every value below it
/// converts to a [`Duration`](std::time::Duration) and adds up without
/// overflow.
pub const MAX_SECS: f64 = 366.0 * 86_400.0;

/// The most steps a report may have. A scenario has a handful to a few
/// dozen; each step holds two histograms of up to a couple of hundred
/// kilobytes in memory, so this bounds what reading a report can allocate.
pub const MAX_STEPS: usize = 1_000;

/// The most timeline windows a report may have: a run keeps at most
/// [`Timeline::MAX_SAMPLES`](crate::metrics::Timeline::MAX_SAMPLES); merged
/// shards that started apart may have more.
pub const MAX_WINDOWS: usize = 100_000;

/// The most stages a load model's ramp may have.
pub const MAX_STAGES: usize = 10_000;

/// The largest number of virtual users or arrivals per second a load model
/// may name.
pub const MAX_LOAD: f64 = 1e9;

/// The largest latency, in milliseconds, a timeline window may show (a
/// histogram clamps at an hour; this leaves room for rounding).
pub const MAX_LATENCY_MS: f64 = 1e9;

/// A report whose values are out of bounds: `field` names the value as a
/// path into the document (`steps[2].requests`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} is {value}: {why}")]
pub struct Invalid {
    /// Where the value is.
    pub field: String,
    /// The value as read.
    pub value: String,
    /// What it should have been.
    pub why: String,
}

fn invalid(field: impl Into<String>, value: impl ToString, why: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// What a first pass over a report's JSON learns, allocating nothing for
/// the rest of the document: the schema (when it is a string) and how many
/// steps and timeline windows there are. Any JSON value deserialises into
/// it (a document that is not an object has no schema).
#[derive(Debug, Default)]
pub struct Shape {
    /// The `schema` field, when it is a string.
    pub schema: Option<String>,
    /// Items of the `steps` array (0 when it is not an array).
    pub steps: usize,
    /// Items of the `timeline` array.
    pub windows: usize,
}

impl Shape {
    /// Bounds checked before the report is built: the number of steps and
    /// of timeline windows (each holds histograms that building the report
    /// decodes).
    pub fn check(&self) -> Result<(), Invalid> {
        if self.steps > MAX_STEPS {
            return Err(invalid(
                "steps",
                format!("a list of {}", self.steps),
                format!("more than {MAX_STEPS} steps; not the report of a scenario"),
            ));
        }
        if self.windows > MAX_WINDOWS {
            return Err(invalid(
                "timeline",
                format!("a list of {} windows", self.windows),
                format!("more than {MAX_WINDOWS}; not the timeline of a run"),
            ));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

/// Visits any JSON value; only an object's `schema`, `steps` and
/// `timeline` are looked at.
struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut shape = Shape::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "schema" => shape.schema = map.next_value::<Items>()?.text,
                "steps" => shape.steps = map.next_value::<Items>()?.count,
                "timeline" => shape.windows = map.next_value::<Items>()?.count,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(shape)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::default())
    }
}

/// Any JSON value, of which only a string's text or an array's length is
/// kept.
#[derive(Default)]
struct Items {
    text: Option<String>,
    count: usize,
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut count = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(Items { text: None, count })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Items::default())
    }

    fn visit_str<E>(self, s: &str) -> Result<Items, E> {
        Ok(Items {
            text: Some(s.to_string()),
            count: 0,
        })
    }
    fn visit_bool<E>(self, _: bool) -> Result<Items, E> {
        Ok(Items::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Items, E> {
        Ok(Items::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Items, E> {
        Ok(Items::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Items, E> {
        Ok(Items::default())
    }
    fn visit_unit<E>(self) -> Result<Items, E> {
        Ok(Items::default())
    }
}

/// Checks every number of `report` that convoy computes with.
pub fn check(report: &Report) -> Result<(), Invalid> {
    secs("duration_secs", report.duration_secs)?;
    if let Ok(span) = report.ended_at.duration_since(report.started_at)
        && span.as_secs_f64() > MAX_SECS
    {
        return Err(invalid(
            "ended_at",
            humantime::format_rfc3339_seconds(report.ended_at),
            format!(
                "{} seconds after started_at ({}): more than a year; not the span of a run",
                span.as_secs(),
                humantime::format_rfc3339_seconds(report.started_at)
            ),
        ));
    }
    count("iterations", report.iterations)?;
    count("interrupted", report.interrupted)?;
    count("auth_renewals", report.auth_renewals)?;
    if report.steps.len() > MAX_STEPS {
        return Err(invalid(
            "steps",
            format!("a list of {}", report.steps.len()),
            format!("more than {MAX_STEPS} steps"),
        ));
    }
    step("overall", &report.overall)?;
    for (i, s) in report.steps.iter().enumerate() {
        step(&format!("steps[{i}]"), s)?;
    }
    load_model(&report.load_model)?;
    if let Some(shard) = report.shard
        && (shard.count == 0 || shard.index >= shard.count)
    {
        return Err(invalid(
            "shard",
            format!("{}/{}", shard.index, shard.count),
            "expected I/N with 0 <= I < N",
        ));
    }
    for (i, c) in report.checks.iter().enumerate() {
        count(&format!("checks[{i}].passes"), c.passes)?;
        count(&format!("checks[{i}].failures"), c.failures)?;
        finite(&format!("checks[{i}].pass_rate"), c.pass_rate)?;
    }
    // Gates and renderers add these up: the sums must stay counts too.
    let evaluations = report.checks.iter().try_fold(0u64, |n, c| {
        n.checked_add(c.passes)?.checked_add(c.failures)
    });
    total("checks", "check evaluations", evaluations)?;
    for (k, v) in &report.violations {
        count(&format!("violations.{k}"), *v)?;
    }
    let samples = report.timeline.samples();
    if samples.len() > MAX_WINDOWS {
        return Err(invalid(
            "timeline",
            format!("a list of {} windows", samples.len()),
            format!("more than {MAX_WINDOWS}"),
        ));
    }
    for (i, s) in samples.iter().enumerate() {
        let f = |name: &str| format!("timeline[{i}].{name}");
        secs(&f("t"), s.t)?;
        secs(&f("window"), s.window)?;
        count(&f("requests"), s.requests)?;
        count(&f("errors"), s.errors)?;
        count(&f("dropped"), s.dropped)?;
        count(&f("active_users"), s.active_users)?;
        for (name, v) in [
            ("p50_ms", s.p50_ms),
            ("p95_ms", s.p95_ms),
            ("p99_ms", s.p99_ms),
            ("max_ms", s.max_ms),
        ] {
            bounded(&f(name), v, MAX_LATENCY_MS, "milliseconds")?;
        }
    }
    for (name, of) in [
        ("requests", (|s| s.requests) as fn(&TimelineSample) -> u64),
        ("errors", |s| s.errors),
        ("dropped", |s| s.dropped),
        ("active_users", |s| s.active_users),
    ] {
        let sum = samples.iter().try_fold(0u64, |n, s| n.checked_add(of(s)));
        total("timeline", &format!("{name} over its windows"), sum)?;
    }
    for (i, g) in report.gates.iter().enumerate() {
        if let Some(v) = g.actual {
            finite(&format!("gates[{i}].actual"), v)?;
        }
    }
    if let Some(c) = &report.comparison {
        finite("comparison.tolerance", c.tolerance)?;
        if c.tolerance < 0.0 {
            return Err(invalid(
                "comparison.tolerance",
                fmt(c.tolerance),
                "a tolerance is not negative",
            ));
        }
        for (i, row) in c.rows.iter().enumerate() {
            let f = |name: &str| format!("comparison.rows[{i}].{name}");
            for (name, v) in [
                ("baseline", row.baseline),
                ("current", row.current),
                ("delta", row.delta),
                ("relative", row.relative),
                ("noise", row.noise),
            ] {
                if let Some(v) = v {
                    finite(&f(name), v)?;
                }
            }
        }
    }
    Ok(())
}

fn step(path: &str, s: &StepReport) -> Result<(), Invalid> {
    let f = |name: &str| format!("{path}.{name}");
    count(&f("requests"), s.requests)?;
    count(&f("errors"), s.errors)?;
    count(&f("dropped"), s.dropped)?;
    for (code, n) in &s.status_counts {
        count(&format!("{path}.status_counts.{code}"), *n)?;
    }
    for (cause, n) in &s.error_counts {
        count(&format!("{path}.error_counts.{cause}"), *n)?;
    }
    // The derived figures are recomputed from the histograms and counters
    // when a report is read; they are still refused when absurd, so that a
    // damaged file does not pass as a report.
    finite(&f("error_rate"), s.error_rate)?;
    finite(&f("rps"), s.rps)?;
    Ok(())
}

fn load_model(m: &LoadModel) -> Result<(), Invalid> {
    match m {
        LoadModel::Closed(c) => {
            ramp("load_model.closed.users", &c.users)?;
            if let Some(n) = c.iterations_per_user {
                count("load_model.closed.iterations_per_user", n)?;
            }
            if let Some(n) = c.total_iterations {
                count("load_model.closed.total_iterations", n)?;
            }
            if let Some(d) = c.duration {
                secs("load_model.closed.duration", d.as_secs_f64())?;
            }
        }
        LoadModel::Open(o) => {
            ramp("load_model.open.rate", &o.rate)?;
            secs("load_model.open.max_lag", o.max_lag.as_secs_f64())?;
            if let Some(n) = o.total_iterations {
                count("load_model.open.total_iterations", n)?;
            }
        }
    }
    Ok(())
}

fn ramp(path: &str, r: &Ramp) -> Result<(), Invalid> {
    bounded(
        &format!("{path}.start"),
        r.start,
        MAX_LOAD,
        "users or arrivals/s",
    )?;
    if r.stages.len() > MAX_STAGES {
        return Err(invalid(
            format!("{path}.stages"),
            format!("a list of {}", r.stages.len()),
            format!("more than {MAX_STAGES} stages"),
        ));
    }
    for (i, s) in r.stages.iter().enumerate() {
        bounded(
            &format!("{path}.stages[{i}].target"),
            s.target,
            MAX_LOAD,
            "users or arrivals/s",
        )?;
        secs(
            &format!("{path}.stages[{i}].duration"),
            s.duration.as_secs_f64(),
        )?;
    }
    Ok(())
}

/// `v` as JSON would write it, short: `1e308`, not 309 digits.
fn fmt(v: f64) -> String {
    format!("{v:?}")
}

fn finite(field: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(field, fmt(v), "expected a finite number"))
    }
}

fn bounded(field: &str, v: f64, max: f64, unit: &str) -> Result<(), Invalid> {
    finite(field, v)?;
    if v < 0.0 {
        return Err(invalid(field, fmt(v), format!("{unit} cannot be negative")));
    }
    if v > max {
        return Err(invalid(
            field,
            fmt(v),
            format!("more than {} {unit}; not a measured run", fmt(max)),
        ));
    }
    Ok(())
}

fn secs(field: &str, v: f64) -> Result<(), Invalid> {
    finite(field, v)?;
    if v < 0.0 {
        return Err(invalid(
            field,
            fmt(v),
            "a length of time cannot be negative",
        ));
    }
    if v > MAX_SECS {
        return Err(invalid(
            field,
            fmt(v),
            format!(
                "more than a year ({} seconds); not the length of a run",
                MAX_SECS as u64
            ),
        ));
    }
    Ok(())
}

/// A sum over a list (`None`: it overflowed) must be a count too.
fn total(field: &str, what: &str, sum: Option<u64>) -> Result<(), Invalid> {
    match sum {
        Some(n) if n <= MAX_COUNT => Ok(()),
        _ => Err(invalid(
            field,
            format!(
                "a list whose {what} add up to {}",
                sum.map_or("more than 2^64".to_string(), |n| n.to_string())
            ),
            format!("more than 2^53 ({MAX_COUNT}); not the counts of a run"),
        )),
    }
}

fn count(field: &str, v: u64) -> Result<(), Invalid> {
    if v > MAX_COUNT {
        return Err(invalid(
            field,
            v,
            format!("more than 2^53 ({MAX_COUNT}); not a count of a run"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_negative_and_tiny_values_are_told_apart() {
        let e = secs("duration_secs", 1e308).unwrap_err();
        assert_eq!(e.field, "duration_secs");
        assert_eq!(e.value, "1e308");
        assert!(
            e.to_string()
                .starts_with("duration_secs is 1e308: more than a year")
        );
        let e = secs("duration_secs", -1.0).unwrap_err();
        assert!(e.to_string().contains("cannot be negative"), "{e}");
        assert!(secs("duration_secs", f64::NAN).is_err());
        assert!(secs("duration_secs", 0.0).is_ok());
        assert!(secs("duration_secs", MAX_SECS).is_ok());
        assert!(count("iterations", MAX_COUNT).is_ok());
        assert!(count("iterations", u64::MAX).is_err());
    }

    fn shape(text: &str) -> Shape {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn too_many_steps_are_refused_before_the_report_is_built() {
        let steps = vec!["null"; MAX_STEPS + 1].join(",");
        let s = shape(&format!(
            r#"{{"schema": "x", "steps": [{steps}], "timeline": [1, 2]}}"#
        ));
        assert_eq!(
            (s.schema.as_deref(), s.steps, s.windows),
            (Some("x"), MAX_STEPS + 1, 2)
        );
        assert_eq!(s.check().unwrap_err().field, "steps");
        assert!(shape(r#"{"steps": []}"#).check().is_ok());
    }

    #[test]
    fn any_json_value_has_a_shape() {
        for text in [
            "[1, {}]",
            "3",
            "-1.5",
            "\"s\"",
            "null",
            "true",
            r#"{"schema": 5, "steps": {"a": 1}}"#,
        ] {
            let s = shape(text);
            assert_eq!((s.schema, s.steps, s.windows), (None, 0, 0), "{text}");
        }
        // The last of duplicate keys counts, as in a full parse.
        let s = shape(r#"{"schema": "a", "schema": "convoy.report/v1"}"#);
        assert_eq!(s.schema.as_deref(), Some("convoy.report/v1"));
        assert!(serde_json::from_str::<Shape>("{\"schema\": ").is_err());
    }
}
