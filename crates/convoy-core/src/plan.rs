//! Validated run plans: what the engine executes.
//!
//! The command line and scenario files are parsed elsewhere and turned into
//! these types; the engine never sees raw user input. Every parser here
//! returns a [`PlanError`] that says what was expected and what was found.
//!
//! Layering: a leaf. It imports no other module of the harness (the engine,
//! scenarios and the command line build on it), so a plan can be built and
//! checked without anything that runs.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A value given by the user could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A duration such as `30s`, `1m30s`, `250ms`.
    #[error(
        "invalid duration {found:?}: expected a number with a unit, such as 500ms, 30s, 2m or 1h30m"
    )]
    Duration {
        /// What the user wrote.
        found: String,
    },
    /// A duration longer than any run convoy plans ([`MAX_DURATION`]).
    #[error(
        "duration {found:?} is too long: convoy plans runs, timeouts and stages of at most 365 days"
    )]
    DurationTooLong {
        /// What the user wrote.
        found: String,
    },
    /// A rate such as `500/s`.
    #[error(
        "invalid rate {found:?}: expected requests per unit, such as 500/s, 30/m or 2/h (a plain number means per second)"
    )]
    Rate {
        /// What the user wrote.
        found: String,
    },
    /// A staged plan such as `10,30s;50,1m`.
    #[error(
        "invalid stage {found:?} in {plan:?}: expected TARGET,DURATION separated by ';', such as 10,30s;50,1m;0,10s"
    )]
    Stage {
        /// The offending stage.
        found: String,
        /// The whole plan.
        plan: String,
    },
    /// The plan as a whole is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Parses a human duration: `250ms`, `30s`, `2m`, `1h30m`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, PlanError> {
    let d = parse_unbounded(s)?;
    if d > MAX_DURATION {
        return Err(PlanError::DurationTooLong {
            found: s.to_string(),
        });
    }
    Ok(d)
}

/// The longest duration any flag, profile or stage may give: 365 days. Far
/// beyond a real soak test, and far enough below the limits of the clock
/// (`Instant + Duration` panics on overflow) that deadlines computed from
/// it, summed over stages or added to the run's start, cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

fn parse_unbounded(s: &str) -> Result<Duration, PlanError> {
    let t = s.trim();
    let err = || PlanError::Duration {
        found: s.to_string(),
    };
    if t.is_empty() {
        return Err(err());
    }
    // Decimal seconds and friends ("1.5s") which humantime rejects.
    if let Some((num, unit)) = split_number(t)
        && num.contains('.')
    {
        let v: f64 = num.parse().map_err(|_| err())?;
        let secs = match unit {
            "ms" => v / 1000.0,
            "s" => v,
            "m" => v * 60.0,
            "h" => v * 3600.0,
            _ => return Err(err()),
        };
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    let d = humantime::parse_duration(t).map_err(|_| err())?;
    Ok(d)
}

fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)?;
    Some((&s[..end], s[end..].trim()))
}

/// Formats a duration compactly for tables and reports (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    if d.subsec_nanos() != 0 && d < Duration::from_secs(10) {
        let ms = d.as_secs_f64() * 1000.0;
        if ms < 1000.0 {
            return format!("{}ms", trim_float(ms));
        }
        return format!("{}s", trim_float(d.as_secs_f64()));
    }
    humantime::format_duration(Duration::from_secs(d.as_secs()))
        .to_string()
        .replace(' ', "")
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A rate of arrivals per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(pub f64);

impl Rate {
    /// Arrivals per second.
    pub fn per_second(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = PlanError;
    fn from_str(s: &str) -> Result<Self, PlanError> {
        let err = || PlanError::Rate {
            found: s.to_string(),
        };
        let t = s.trim();
        let (num, per) = match t.split_once('/') {
            Some((n, u)) => (n.trim(), u.trim()),
            None => (t, "s"),
        };
        let v: f64 = num.parse().map_err(|_| err())?;
        if !v.is_finite() || v < 0.0 {
            return Err(err());
        }
        let per_secs = match per {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => parse_duration(other).map_err(|_| err())?.as_secs_f64(),
        };
        if per_secs <= 0.0 {
            return Err(err());
        }
        Ok(Rate(v / per_secs))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", trim_float(self.0))
    }
}

/// One stage of a staged plan: move linearly to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Users (closed model) or arrivals per second (open model) at the end
    /// of the stage.
    pub target: f64,
    /// How long the stage lasts.
    #[serde(with = "serde_duration")]
    pub duration: Duration,
}

/// Parses `10,30s;50,1m;0,10s` into stages. Targets may be rates (`500/s`)
/// when `rates` is true.
pub fn parse_stages(s: &str, rates: bool) -> Result<Vec<Stage>, PlanError> {
    let mut out = Vec::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let err = || PlanError::Stage {
            found: part.to_string(),
            plan: s.to_string(),
        };
        let (target, duration) = part.split_once(',').ok_or_else(err)?;
        let target = if rates {
            target.parse::<Rate>().map_err(|_| err())?.0
        } else {
            let users: u32 = target.trim().parse().map_err(|_| err())?;
            users as f64
        };
        let duration = parse_duration(duration).map_err(|e| match e {
            PlanError::DurationTooLong { .. } => e,
            _ => err(),
        })?;
        out.push(Stage { target, duration });
    }
    if out.is_empty() {
        return Err(PlanError::Stage {
            found: String::new(),
            plan: s.to_string(),
        });
    }
    Ok(out)
}

/// A piecewise-linear plan: a start value and stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ramp {
    /// Value at time zero.
    pub start: f64,
    /// Stages, in order.
    pub stages: Vec<Stage>,
}

impl Ramp {
    /// A constant value held for `duration`.
    pub fn constant(value: f64, duration: Duration) -> Self {
        Ramp {
            start: value,
            stages: vec![Stage {
                target: value,
                duration,
            }],
        }
    }

    /// Total length of the stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The largest value the plan reaches.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, f64::max)
    }

    /// The value at `t` (linear within a stage; the last target after the
    /// end).
    pub fn value_at(&self, t: Duration) -> f64 {
        let mut from = self.start;
        let mut begin = Duration::ZERO;
        for s in &self.stages {
            let end = begin + s.duration;
            if t < end {
                let frac = if s.duration.is_zero() {
                    1.0
                } else {
                    (t - begin).as_secs_f64() / s.duration.as_secs_f64()
                };
                return from + (s.target - from) * frac;
            }
            from = s.target;
            begin = end;
        }
        from
    }

    /// Open model: the time of arrival number `n` (0-based) when the value is
    /// a rate per second, or `None` if the plan ends first.
    ///
    /// The cumulative number of arrivals is the integral of the rate; each
    /// stage is linear, so inverting it solves a quadratic.
    pub fn arrival_time(&self, n: u64) -> Option<Duration> {
        // Arrival n happens when the integral reaches n (the first at t=0
        // when the start rate is positive, like wrk2 and k6).
        let target = n as f64;
        let mut from = self.start;
        let mut begin = 0.0f64;
        let mut acc = 0.0f64;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            let area = (from + s.target) / 2.0 * d;
            if acc + area > target {
                let need = target - acc;
                let slope = if d > 0.0 { (s.target - from) / d } else { 0.0 };
                let x = if slope.abs() < 1e-12 {
                    if from <= 0.0 {
                        return None;
                    }
                    need / from
                } else {
                    // from*x + slope/2*x^2 = need
                    let disc = from * from + 2.0 * slope * need;
                    (-from + disc.max(0.0).sqrt()) / slope
                };
                return Duration::try_from_secs_f64(begin + x.clamp(0.0, d)).ok();
            }
            acc += area;
            begin += d;
            from = s.target;
        }
        None
    }

    /// Open model: how many arrivals are due by `t` (those whose
    /// [`Ramp::arrival_time`] is at most `t`); [`Duration::MAX`] counts
    /// every arrival of the plan.
    pub fn arrivals_until(&self, t: Duration) -> u64 {
        let due = |n: u64| self.arrival_time(n).is_some_and(|a| a <= t);
        // Arrival times only grow, so the due ones are a prefix: find its
        // end by bisection, within the plan's total (rounded up) plus one.
        let end = (self.total_arrivals().ceil().max(0.0) as u64).saturating_add(1);
        let (mut lo, mut hi) = (0u64, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if due(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Total arrivals the plan produces when the value is a rate per second.
    pub fn total_arrivals(&self) -> f64 {
        let mut from = self.start;
        let mut acc = 0.0;
        for s in &self.stages {
            acc += (from + s.target) / 2.0 * s.duration.as_secs_f64();
            from = s.target;
        }
        acc
    }
}

/// How load is generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum LoadModel {
    /// Virtual users looping over iterations, each starting when the
    /// previous one ends.
    Closed(ClosedModel),
    /// Iterations started at a given arrival rate, independent of how fast
    /// the target answers.
    Open(OpenModel),
}

/// Closed model: a number of virtual users over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedModel {
    /// Virtual users over time; users above the current value park (their
    /// connections stay open) until the plan raises it again.
    pub users: Ramp,
    /// Stop each user after this many iterations.
    pub iterations_per_user: Option<u64>,
    /// Stop the whole run after this many iterations.
    pub total_iterations: Option<u64>,
    /// Stop after this long (in addition to the ramp's end, if any).
    #[serde(with = "serde_opt_duration")]
    pub duration: Option<Duration>,
}

/// Open model: arrivals per second over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenModel {
    /// Arrival rate over time, per second.
    pub rate: Ramp,
    /// At most this many iterations in flight; the virtual users that serve
    /// arrivals.
    pub max_in_flight: u32,
    /// An arrival that cannot start within this delay of its scheduled time
    /// is counted as dropped instead of being sent late.
    #[serde(with = "serde_duration")]
    pub max_lag: Duration,
    /// Stop after this many arrivals.
    pub total_iterations: Option<u64>,
}

impl LoadModel {
    /// A closed model of `users` users, started at once, each running
    /// `iterations_per_user` iterations: the built-in profiles' shape.
    pub fn closed(users: u32, iterations_per_user: u64) -> Self {
        LoadModel::Closed(ClosedModel {
            users: Ramp::constant(users as f64, Duration::ZERO),
            iterations_per_user: Some(iterations_per_user),
            total_iterations: None,
            duration: None,
        })
    }

    /// The longest the run can last before its graceful stop, if bounded by
    /// time.
    pub fn planned_duration(&self) -> Option<Duration> {
        match self {
            LoadModel::Closed(c) => {
                let ramp = c.users.duration();
                match c.duration {
                    Some(d) => Some(d.max(ramp)),
                    None if ramp > Duration::ZERO && c.users.stages.len() > 1 => Some(ramp),
                    None => None,
                }
            }
            LoadModel::Open(o) => Some(o.rate.duration()),
        }
    }

    /// True for a smoke-sized plan: one user running at most one iteration.
    /// Anything heavier is load, which the allow-list guards.
    pub fn is_smoke(&self) -> bool {
        match self {
            LoadModel::Closed(c) => {
                c.users.peak() <= 1.0
                    && (c.iterations_per_user.is_some_and(|n| n <= 1)
                        || c.total_iterations.is_some_and(|n| n <= 1))
            }
            LoadModel::Open(_) => false,
        }
    }

    /// An upper bound on the iterations the plan starts, when it has one:
    /// the whole run's iteration cap, or each user's cap times the most
    /// users (a user above the ramp's current value parks, it does not start
    /// again with a fresh count), whichever is smaller. `None` for an open
    /// model and for a closed one that only a duration or its stages end.
    pub fn max_iterations(&self) -> Option<u64> {
        match self {
            LoadModel::Closed(c) => {
                let per_user = c
                    .iterations_per_user
                    .map(|n| n.saturating_mul(c.users.peak().ceil().max(0.0) as u64));
                match (per_user, c.total_iterations) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            LoadModel::Open(_) => None,
        }
    }

    /// Number of virtual users (closed) or in-flight slots (open) to create.
    pub fn max_users(&self) -> u32 {
        match self {
            LoadModel::Closed(c) => c.users.peak().ceil() as u32,
            LoadModel::Open(o) => o.max_in_flight,
        }
    }

    /// Checks that the plan can run and will end.
    pub fn validate(&self) -> Result<(), PlanError> {
        match self {
            LoadModel::Closed(c) => {
                if c.users.peak() < 1.0 {
                    return Err(PlanError::Invalid(
                        "the plan never has a virtual user: set at least 1 user".into(),
                    ));
                }
                if c.duration.is_none()
                    && c.iterations_per_user.is_none()
                    && c.total_iterations.is_none()
                    && self.planned_duration().is_none()
                {
                    return Err(PlanError::Invalid(
                        "the run would never end: give a duration, a number of requests or iterations, or stages".into(),
                    ));
                }
            }
            LoadModel::Open(o) => {
                if o.max_in_flight == 0 {
                    return Err(PlanError::Invalid(
                        "the in-flight cap must be at least 1".into(),
                    ));
                }
                if o.rate.peak() <= 0.0 {
                    return Err(PlanError::Invalid(
                        "the arrival rate must be above 0".into(),
                    ));
                }
                if o.rate.duration().is_zero() {
                    return Err(PlanError::Invalid(
                        "an open-model run needs a duration".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A one-line human description: `50 users for 10s`, `1000/s for 10s`.
    pub fn describe(&self) -> String {
        match self {
            LoadModel::Closed(c) => {
                let mut s = if c.users.stages.len() > 1 || c.users.start != c.users.peak() {
                    let n = c.users.stages.len();
                    format!(
                        "up to {} users in {n} stage{}",
                        c.users.peak(),
                        if n == 1 { "" } else { "s" }
                    )
                } else {
                    format!("{} users", c.users.peak())
                };
                if let Some(n) = c.iterations_per_user {
                    s += &format!(" x {n} iterations");
                }
                if let Some(n) = c.total_iterations {
                    s += &format!(", {n} requests");
                }
                if let Some(d) = self.planned_duration() {
                    s += &format!(" for {}", format_duration(d));
                }
                s
            }
            LoadModel::Open(o) => {
                let rate = if o.rate.stages.len() > 1 || o.rate.start != o.rate.peak() {
                    format!("up to {}", Rate(o.rate.peak()))
                } else {
                    Rate(o.rate.peak()).to_string()
                };
                format!(
                    "{rate} for {} (at most {} in flight)",
                    format_duration(o.rate.duration()),
                    o.max_in_flight
                )
            }
        }
    }
}

/// Which slice of a distributed run this process runs: shard `index` of
/// `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// How many shards share the load.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = PlanError;
    /// Parses `I/N`, such as `0/4`.
    fn from_str(s: &str) -> Result<Self, PlanError> {
        let bad = || {
            PlanError::Invalid(format!(
                "invalid shard {s:?}: expected I/N with 0 <= I < N, such as 0/4"
            ))
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This shard's part of `total` whole things (users, requests): the
    /// parts of every shard add up to `total` exactly and differ by at most
    /// one.
    pub fn split(&self, total: u64) -> u64 {
        let (i, n) = (self.index as u64, self.count as u64);
        total / n + u64::from(i < total % n)
    }

    /// The indexes of this shard's part of `total` numbered things (data
    /// rows): consecutive blocks of [`Shard::split`] sizes, in shard order,
    /// so the shards' ranges are disjoint and together cover `0..total`.
    pub fn range(&self, total: u64) -> std::ops::Range<u64> {
        let (i, n) = (self.index as u64, self.count as u64);
        let start = i * (total / n) + i.min(total % n);
        start..start + self.split(total)
    }
}

impl Ramp {
    /// The ramp of users one shard runs (whole users, split exactly).
    fn shard_users(&self, shard: &Shard) -> Ramp {
        let split = |v: f64| shard.split(v.round().max(0.0) as u64) as f64;
        Ramp {
            start: split(self.start),
            stages: self
                .stages
                .iter()
                .map(|s| Stage {
                    target: split(s.target),
                    duration: s.duration,
                })
                .collect(),
        }
    }

    /// The ramp of arrival rate one shard runs (an exact fraction).
    fn shard_rate(&self, shard: &Shard) -> Ramp {
        let n = shard.count as f64;
        Ramp {
            start: self.start / n,
            stages: self
                .stages
                .iter()
                .map(|s| Stage {
                    target: s.target / n,
                    duration: s.duration,
                })
                .collect(),
        }
    }
}

impl LoadModel {
    /// [`LoadModel::shard`], refused when the slice would run nothing: a
    /// closed model with fewer users than shards, or an open model whose
    /// in-flight cap is smaller than the number of shards (each shard would
    /// need at least one request in flight, and together they would exceed
    /// the cap the run asked for).
    pub fn shard_checked(&self, shard: &Shard) -> Result<LoadModel, PlanError> {
        let m = self.shard(shard);
        if m.max_users() > 0 {
            return Ok(m);
        }
        let n = shard.count;
        Err(PlanError::Invalid(match self {
            LoadModel::Closed(c) => format!(
                "shard {shard} has no user: the load has {} user(s) (-c, or users in a profile), \
                 fewer than the {n} shards; add users or run at most that many shards",
                c.users.peak().round()
            ),
            LoadModel::Open(o) => format!(
                "shard {shard} has no request in flight: the in-flight cap is {} \
                 (-c, or max_in_flight in a profile), fewer than the {n} shards; \
                 raise the cap or run at most that many shards",
                o.max_in_flight
            ),
        }))
    }

    /// The deterministic slice of this load that `shard` runs: users,
    /// arrival rate, in-flight cap and request totals are divided so that
    /// all shards together produce the load of one unsharded run. A part
    /// may be zero (fewer users or in-flight slots than shards): see
    /// [`LoadModel::shard_checked`].
    pub fn shard(&self, shard: &Shard) -> LoadModel {
        match self {
            LoadModel::Closed(c) => LoadModel::Closed(ClosedModel {
                users: c.users.shard_users(shard),
                iterations_per_user: c.iterations_per_user,
                total_iterations: c.total_iterations.map(|t| shard.split(t)),
                duration: c.duration,
            }),
            LoadModel::Open(o) => LoadModel::Open(OpenModel {
                rate: o.rate.shard_rate(shard),
                // Never rounded up to 1: shards would then exceed the cap
                // together (shard_checked refuses an empty slice instead).
                max_in_flight: shard.split(o.max_in_flight as u64) as u32,
                max_lag: o.max_lag,
                total_iterations: o.total_iterations.map(|t| shard.split(t)),
            }),
        }
    }
}

/// HTTP client settings shared by every request of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpOptions {
    /// Time allowed to establish a connection (TCP and TLS).
    #[serde(with = "serde_duration")]
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// Which HTTP version to speak.
    pub version: HttpVersion,
    /// Accept invalid TLS certificates (self-signed staging targets).
    pub insecure: bool,
    /// Read at most this many bytes of a response body.
    pub max_body_bytes: usize,
    /// Use small fixed read buffers (4 KiB instead of hyper's 8 KiB that
    /// grow): for runs holding thousands of connections, where memory per
    /// connection matters more than reading large bodies in few syscalls.
    #[serde(default)]
    pub small_buffers: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            version: HttpVersion::Http1,
            insecure: false,
            max_body_bytes: 10 * 1024 * 1024,
            small_buffers: false,
        }
    }
}

/// HTTP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpVersion {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 (prior knowledge on plain http, ALPN on https).
    Http2,
}

impl HttpVersion {
    /// The names `FromStr` accepts, as `--http` spells them.
    pub const NAMES: &[&str] = &["1.1", "2"];
}

impl std::str::FromStr for HttpVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<HttpVersion, String> {
        match s {
            "1.1" => Ok(HttpVersion::Http1),
            "2" => Ok(HttpVersion::Http2),
            _ => Err(format!("unknown HTTP version {s:?} (1.1 or 2)")),
        }
    }
}

/// Serde helpers: durations as human strings ("1m30s", "250ms").
pub mod serde_duration {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Serialises as a human string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Parses a human string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers: optional durations as human strings.
pub mod serde_opt_duration {
    use super::*;
    use serde::{Deserializer, Serializer};

    /// Serialises as a human string or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Parses a human string or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(" 2h ").unwrap(), Duration::from_secs(7200));
        for bad in ["", "10", "ten s", "5 parsecs", "-1s", "1.5x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        // Longer than any run: refused, never an overflow later.
        for huge in [
            "18446744073709551615s",
            "500000000000y",
            "366days",
            "1e300s",
        ] {
            assert!(parse_duration(huge).is_err(), "{huge:?} accepted");
        }
        assert!(matches!(
            parse_duration("400d"),
            Err(PlanError::DurationTooLong { .. })
        ));
        assert_eq!(parse_duration("365d").unwrap(), MAX_DURATION);
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn rates() {
        assert_eq!("500/s".parse::<Rate>().unwrap(), Rate(500.0));
        assert_eq!("500".parse::<Rate>().unwrap(), Rate(500.0));
        assert_eq!("30/m".parse::<Rate>().unwrap(), Rate(0.5));
        assert_eq!("100/10s".parse::<Rate>().unwrap(), Rate(10.0));
        for bad in ["", "fast", "-5/s", "10/parsec", "nan"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn stages() {
        let s = parse_stages("10,30s;50,1m;0,10s", false).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].target, 50.0);
        assert_eq!(s[1].duration, Duration::from_secs(60));
        let r = parse_stages("100/s,10s; 500/s,1m", true).unwrap();
        assert_eq!(r[1].target, 500.0);
        let e = parse_stages("10,30s;fifty,1m", false).unwrap_err();
        assert!(e.to_string().contains("\"fifty,1m\""), "{e}");
        assert!(parse_stages("", false).is_err());
        assert!(parse_stages("10", false).is_err());
    }

    #[test]
    fn ramp_interpolates() {
        let r = Ramp {
            start: 0.0,
            stages: parse_stages("10,10s;10,10s;0,10s", false).unwrap(),
        };
        assert_eq!(r.value_at(Duration::from_secs(5)), 5.0);
        assert_eq!(r.value_at(Duration::from_secs(15)), 10.0);
        assert_eq!(r.value_at(Duration::from_secs(25)), 5.0);
        assert_eq!(r.value_at(Duration::from_secs(99)), 0.0);
        assert_eq!(r.peak(), 10.0);
        assert_eq!(r.duration(), Duration::from_secs(30));
    }

    #[test]
    fn constant_rate_arrivals_are_evenly_spaced() {
        let r = Ramp::constant(1000.0, Duration::from_secs(10));
        assert_eq!(r.arrival_time(0), Some(Duration::ZERO));
        let t = r.arrival_time(500).unwrap().as_secs_f64();
        assert!((t - 0.5).abs() < 1e-9, "{t}");
        assert!(r.arrival_time(9_999).is_some());
        assert_eq!(r.arrival_time(10_000), None);
        assert_eq!(r.total_arrivals(), 10_000.0);
    }

    #[test]
    fn ramping_rate_arrivals_follow_the_integral() {
        // 0 -> 100/s over 10 s: 500 arrivals, the n-th at sqrt(n/5) s.
        let r = Ramp {
            start: 0.0,
            stages: vec![Stage {
                target: 100.0,
                duration: Duration::from_secs(10),
            }],
        };
        assert_eq!(r.total_arrivals(), 500.0);
        let t = r.arrival_time(125).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-9, "{t}");
        assert_eq!(r.arrival_time(500), None);
        // Times are monotonic.
        let mut last = Duration::ZERO;
        for n in 0..500 {
            let t = r.arrival_time(n).unwrap();
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn arrivals_until_counts_the_due_prefix_of_the_schedule() {
        let r = Ramp::constant(1000.0, Duration::from_secs(3));
        assert_eq!(r.arrivals_until(Duration::ZERO), 1, "the first is due at 0");
        assert_eq!(r.arrivals_until(Duration::from_millis(1500)), 1501);
        assert_eq!(r.arrivals_until(Duration::from_secs(3)), 3000);
        assert_eq!(r.arrivals_until(Duration::MAX), 3000);
        // A ramp from 0: arrival n at sqrt(n/5) s, so arrivals 0..=125 are
        // due just after 5 s (the next at 5.02 s), and the plan's 500 in all.
        let ramp = Ramp {
            start: 0.0,
            stages: vec![Stage {
                target: 100.0,
                duration: Duration::from_secs(10),
            }],
        };
        assert_eq!(ramp.arrivals_until(Duration::from_millis(5001)), 126);
        assert_eq!(ramp.arrivals_until(Duration::MAX), 500);
    }

    #[test]
    fn a_single_closed_stage_runs_for_its_duration_when_bounded() {
        let one = LoadModel::Closed(ClosedModel {
            users: Ramp {
                start: 0.0,
                stages: parse_stages("10,1s", false).unwrap(),
            },
            iterations_per_user: None,
            total_iterations: None,
            duration: Some(Duration::from_secs(1)),
        });
        assert!(one.validate().is_ok());
        assert_eq!(one.planned_duration(), Some(Duration::from_secs(1)));
        assert_eq!(one.describe(), "up to 10 users in 1 stage for 1s");
    }

    #[test]
    fn shards_split_exactly() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        assert_eq!(
            shards.iter().map(|s| s.split(10)).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
        assert_eq!(shards.iter().map(|s| s.split(2)).sum::<u64>(), 2);
        let closed = LoadModel::Closed(ClosedModel {
            users: Ramp::constant(10.0, Duration::ZERO),
            iterations_per_user: Some(5),
            total_iterations: Some(1001),
            duration: None,
        });
        let users: f64 = shards
            .iter()
            .map(|s| closed.shard(s).max_users() as f64)
            .sum();
        assert_eq!(users, 10.0);
        let open = LoadModel::Open(OpenModel {
            rate: Ramp::constant(1000.0, Duration::from_secs(10)),
            max_in_flight: 100,
            max_lag: Duration::from_secs(1),
            total_iterations: None,
        });
        let total: f64 = shards
            .iter()
            .map(|s| match open.shard(s) {
                LoadModel::Open(o) => o.rate.total_arrivals(),
                _ => unreachable!(),
            })
            .sum();
        assert!((total - 10_000.0).abs() < 1e-6, "{total}");
        for bad in ["3/3", "1", "a/b", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_ranges_are_disjoint_blocks_covering_the_whole() {
        for (total, n) in [(12u64, 3u32), (10, 4), (3, 3), (7, 1)] {
            let mut next = 0;
            for i in 0..n {
                let r = Shard { index: i, count: n }.range(total);
                assert_eq!(r.start, next, "{total} over {n}");
                assert_eq!(r.end - r.start, Shard { index: i, count: n }.split(total));
                next = r.end;
            }
            assert_eq!(next, total);
        }
        assert!(Shard { index: 2, count: 3 }.range(2).is_empty());
    }

    #[test]
    fn an_in_flight_cap_smaller_than_the_shards_is_refused() {
        let open = |cap: u32| {
            LoadModel::Open(OpenModel {
                rate: Ramp::constant(30.0, Duration::from_secs(10)),
                max_in_flight: cap,
                max_lag: Duration::from_secs(1),
                total_iterations: None,
            })
        };
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        // The caps of the shards add up to the run's cap, never more.
        let caps: u32 = shards
            .iter()
            .map(|s| open(4).shard_checked(s).unwrap().max_users())
            .sum();
        assert_eq!(caps, 4);
        assert_eq!(open(1).shard(&shards[0]).max_users(), 1);
        let err = open(1).shard_checked(&shards[1]).unwrap_err().to_string();
        assert!(err.contains("shard 1/3 has no request in flight"), "{err}");
        assert!(err.contains("in-flight cap is 1"), "{err}");
        let closed = LoadModel::Closed(ClosedModel {
            users: Ramp::constant(2.0, Duration::ZERO),
            iterations_per_user: Some(1),
            total_iterations: None,
            duration: None,
        });
        let err = closed.shard_checked(&shards[2]).unwrap_err().to_string();
        assert!(
            err.contains("shard 2/3 has no user: the load has 2 user(s)"),
            "{err}"
        );
    }

    #[test]
    fn validation_rejects_endless_and_empty_plans() {
        let endless = LoadModel::Closed(ClosedModel {
            users: Ramp::constant(5.0, Duration::ZERO),
            iterations_per_user: None,
            total_iterations: None,
            duration: None,
        });
        assert!(endless.validate().is_err());
        let nobody = LoadModel::Closed(ClosedModel {
            users: Ramp::constant(0.0, Duration::ZERO),
            iterations_per_user: Some(1),
            total_iterations: None,
            duration: None,
        });
        assert!(nobody.validate().is_err());
    }
}
