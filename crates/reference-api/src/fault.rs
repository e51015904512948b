//! The faults the reference target can inject, and their `NAME[=VALUE]`
//! syntax (`--fault` on the command line, [`Fault::from_str`] in code).
//!
//! Each fault imitates a way real logistics APIs fail in production, so that
//! convoy's checks, gates and reports can be shown to notice it. What a fault
//! does to requests lives in the injection middleware; this file only says
//! what the faults are and how they are written.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::duration::{format_duration, parse_duration};

/// Extra latency added to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Always this long: `latency=20ms`.
    Fixed(Duration),
    /// Uniformly distributed between the bounds (inclusive):
    /// `latency=10ms..50ms`.
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
}

impl Latency {
    /// Draws one delay.
    pub fn sample(&self) -> Duration {
        self.sample_with(&mut fastrand::Rng::new())
    }

    /// Draws one delay from `rng` (the event faults draw from a seeded one).
    pub fn sample_with(&self, rng: &mut fastrand::Rng) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => {
                let span = (max - min).as_nanos().min(u128::from(u64::MAX)) as u64;
                min + Duration::from_nanos(rng.u64(0..=span))
            }
        }
    }

    fn parse(value: &str) -> Result<Latency, &'static str> {
        const EXPECTED: &str = "a duration such as 20ms, or a range such as 10ms..50ms";
        match value.split_once("..") {
            None => Ok(Latency::Fixed(duration(value).ok_or(EXPECTED)?)),
            Some((min, max)) => {
                let min = duration(min).ok_or(EXPECTED)?;
                let max = duration(max).ok_or(EXPECTED)?;
                if min > max {
                    return Err("a range whose lower bound is not above its upper bound");
                }
                Ok(Latency::Uniform { min, max })
            }
        }
    }
}

impl fmt::Display for Latency {
    /// `20ms` or `10ms..50ms`, as parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Fixed(d) => f.write_str(&format_duration(*d)),
            Latency::Uniform { min, max } => {
                write!(f, "{}..{}", format_duration(*min), format_duration(*max))
            }
        }
    }
}

/// A fault to inject, written `NAME[=VALUE]`.
///
/// | syntax | effect |
/// |---|---|
/// | `latency=20ms`, `latency=10ms..50ms` | every request (including `/health`) waits that long, or a uniformly drawn time between the bounds, before it is handled |
/// | `error-rate=0.05` (or `5%`) | that fraction of requests (including `/health`) answer 500 or 503, without being handled |
/// | `stall=1s@5s` | from 5 s after start, for 1 s, every arriving request hangs until the window ends, like a GC pause or a `SIGSTOP`; repeat the fault for more windows |
/// | `tenant-leak=0.05` | that fraction (0 < p ≤ 1) of reads of another tenant's order (`GET /orders/{id}` and its `/adjustments`) answer 200 with it instead of 404 |
/// | `idempotency-race` | `Idempotency-Key` is recorded but not checked: replays, concurrent or not, create duplicate orders |
/// | `slow-body=20ms`, `slow-body=64/20ms` | API response bodies are sent in chunks of 32 (or the given number of) bytes, one chunk every 20 ms |
/// | `truncated-body` | API responses declare their full `Content-Length` but the connection is cut after half the body |
/// | `auth-accept-expired` | tokens whose `exp` has passed are accepted (their signature still checked) |
/// | `auth-accept-alg-none` | tokens whose header says `alg: none` are accepted unsigned |
/// | `auth-accept-foreign-key` | HS256 tokens are accepted whatever key signed them (the signature is not checked) |
/// | `crash-after=1000` | the first 1000 requests are answered; at the next one the server dies (once those answers are written, or after 5 s): it stops accepting, drops every connection, and `convoy target` exits non-zero |
/// | `event-delay=50ms`, `event-delay=20ms..80ms` | every event of `/events` and `/ws` reaches each subscriber that long (or a uniformly drawn time between the bounds, drawn per event and subscriber) after its write was committed |
/// | `event-drop=0.1` | each subscriber misses that fraction of the events it would receive (drawn per event and subscriber) |
/// | `event-leak=0.05` | that fraction of events (drawn once per event) is also delivered to the subscribers of another tenant |
/// | `stream-close=30s` | the server closes every event stream that long after it opened (SSE: the body ends; WebSocket: a close frame, code 1001) |
///
/// Durations are written as convoy writes them elsewhere (`250ms`, `1s`,
/// `1.5s`, `1m`). Names may use `_` for `-`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// `latency=…`: extra latency on every request.
    Latency(Latency),
    /// `error-rate=P`: fraction of requests answered 500/503.
    ErrorRate(f64),
    /// `stall=DURATION@START`: requests arriving in the window hang until it
    /// ends.
    Stall {
        /// How long the stall lasts.
        duration: Duration,
        /// When it starts, counted from the server's start.
        after: Duration,
    },
    /// `tenant-leak=P`: fraction of cross-tenant order reads that leak.
    TenantLeak(f64),
    /// `idempotency-race`: idempotency keys are not enforced.
    IdempotencyRace,
    /// `slow-body=[BYTES/]INTERVAL`: bodies trickle out.
    SlowBody {
        /// Time between chunks.
        interval: Duration,
        /// Bytes per chunk.
        chunk_bytes: usize,
    },
    /// `truncated-body`: bodies end early against their `Content-Length`.
    TruncatedBody,
    /// `crash-after=N`: the server dies at request N + 1.
    CrashAfter(u64),
    /// `auth-accept-expired`: expired tokens are accepted.
    AuthAcceptExpired,
    /// `auth-accept-alg-none`: unsigned `alg: none` tokens are accepted.
    AuthAcceptAlgNone,
    /// `auth-accept-foreign-key`: token signatures are not checked.
    AuthAcceptForeignKey,
    /// `event-delay=…`: events reach subscribers late.
    EventDelay(Latency),
    /// `event-drop=P`: fraction of events each subscriber misses.
    EventDrop(f64),
    /// `event-leak=P`: fraction of events also sent to another tenant.
    EventLeak(f64),
    /// `stream-close=DURATION`: streams are closed that long after opening.
    StreamClose(Duration),
}

/// Default chunk size of `slow-body`.
pub const SLOW_BODY_CHUNK: usize = 32;

const NAMES: [&str; 15] = [
    "latency",
    "error-rate",
    "stall",
    "tenant-leak",
    "idempotency-race",
    "slow-body",
    "truncated-body",
    "crash-after",
    "auth-accept-expired",
    "auth-accept-alg-none",
    "auth-accept-foreign-key",
    "event-delay",
    "event-drop",
    "event-leak",
    "stream-close",
];

/// A `--fault` value that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The name is not one of the known faults.
    #[error("unknown fault {found:?}: expected one of {}{}", NAMES.join(", "), suggestion.map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownName {
        /// What the user wrote.
        found: String,
        /// The closest known name, if one is close.
        suggestion: Option<&'static str>,
    },
    /// The fault needs a value.
    #[error("fault {name} needs a value, such as {example}")]
    MissingValue {
        /// The fault.
        name: &'static str,
        /// A valid example.
        example: &'static str,
    },
    /// The fault takes no value.
    #[error("fault {name} takes no value, found {found:?}: write just {name}")]
    UnexpectedValue {
        /// The fault.
        name: &'static str,
        /// The value given.
        found: String,
    },
    /// The value does not fit the fault.
    #[error("invalid value {found:?} for fault {name}: expected {expected}")]
    InvalidValue {
        /// The fault.
        name: &'static str,
        /// The value given.
        found: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (raw_name, value) = match s.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (s.trim(), None),
        };
        let normalised = raw_name.to_ascii_lowercase().replace('_', "-");
        let Some(&name) = NAMES.iter().find(|n| **n == normalised) else {
            return Err(FaultError::UnknownName {
                found: raw_name.to_string(),
                suggestion: closest_name(&normalised),
            });
        };
        let invalid = |expected: &'static str| FaultError::InvalidValue {
            name,
            found: value.unwrap_or_default().to_string(),
            expected,
        };
        let needs = |example: &'static str| value.ok_or(FaultError::MissingValue { name, example });
        let flag = |fault: Fault| match value {
            None => Ok(fault),
            Some(found) => Err(FaultError::UnexpectedValue {
                name,
                found: found.to_string(),
            }),
        };
        match name {
            "latency" => {
                let value = needs("latency=20ms or latency=10ms..50ms")?;
                Ok(Fault::Latency(Latency::parse(value).map_err(invalid)?))
            }
            "event-delay" => {
                let value = needs("event-delay=50ms or event-delay=20ms..80ms")?;
                Ok(Fault::EventDelay(Latency::parse(value).map_err(invalid)?))
            }
            "event-drop" => {
                let p = probability(needs("event-drop=0.1")?)
                    .filter(|p| *p > 0.0)
                    .ok_or_else(|| invalid("a fraction above 0 and at most 1, such as 0.1"))?;
                Ok(Fault::EventDrop(p))
            }
            "event-leak" => {
                let p = probability(needs("event-leak=0.05")?)
                    .filter(|p| *p > 0.0)
                    .ok_or_else(|| invalid("a fraction above 0 and at most 1, such as 0.05"))?;
                Ok(Fault::EventLeak(p))
            }
            "stream-close" => {
                let d = duration(needs("stream-close=30s")?)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| invalid("a duration above zero, such as 30s"))?;
                Ok(Fault::StreamClose(d))
            }
            "error-rate" => {
                let p = probability(needs("error-rate=0.05")?)
                    .ok_or_else(|| invalid("a fraction between 0 and 1, such as 0.05 or 5%"))?;
                Ok(Fault::ErrorRate(p))
            }
            "stall" => {
                const EXPECTED: &str =
                    "DURATION@START, such as 1s@5s (stall for 1s starting 5s after start)";
                let value = needs("stall=1s@5s")?;
                let (length, start) = value.split_once('@').ok_or_else(|| invalid(EXPECTED))?;
                let duration = duration(length)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| invalid(EXPECTED))?;
                let after = self::duration(start).ok_or_else(|| invalid(EXPECTED))?;
                Ok(Fault::Stall { duration, after })
            }
            "tenant-leak" => {
                let p = probability(needs("tenant-leak=0.05")?)
                    .filter(|p| *p > 0.0)
                    .ok_or_else(|| invalid("a fraction above 0 and at most 1, such as 0.05"))?;
                Ok(Fault::TenantLeak(p))
            }
            "idempotency-race" => flag(Fault::IdempotencyRace),
            "slow-body" => {
                const EXPECTED: &str =
                    "an interval such as 20ms, or BYTES/INTERVAL such as 64/20ms";
                let value = needs("slow-body=20ms or slow-body=64/20ms")?;
                let (chunk_bytes, interval) = match value.split_once('/') {
                    None => (SLOW_BODY_CHUNK, value),
                    Some((bytes, interval)) => (
                        bytes
                            .trim()
                            .parse()
                            .ok()
                            .filter(|b| *b > 0)
                            .ok_or_else(|| invalid(EXPECTED))?,
                        interval,
                    ),
                };
                let interval = duration(interval)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| invalid(EXPECTED))?;
                Ok(Fault::SlowBody {
                    interval,
                    chunk_bytes,
                })
            }
            "truncated-body" => flag(Fault::TruncatedBody),
            "auth-accept-expired" => flag(Fault::AuthAcceptExpired),
            "auth-accept-alg-none" => flag(Fault::AuthAcceptAlgNone),
            "auth-accept-foreign-key" => flag(Fault::AuthAcceptForeignKey),
            "crash-after" => {
                let n = needs("crash-after=1000")?
                    .parse()
                    .map_err(|_| invalid("a whole number of requests, such as 1000"))?;
                Ok(Fault::CrashAfter(n))
            }
            _ => unreachable!("every name in NAMES is handled"),
        }
    }
}

fn duration(s: &str) -> Option<Duration> {
    parse_duration(s)
}

fn probability(s: &str) -> Option<f64> {
    let s = s.trim();
    let p = match s.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&p).then_some(p)
}

/// The known name within two edits of `found`, if any.
fn closest_name(found: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .map(|name| (edit_distance(found, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

impl fmt::Display for Fault {
    /// Writes the fault back in the syntax it is parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Latency(latency) => write!(f, "latency={latency}"),
            Fault::EventDelay(latency) => write!(f, "event-delay={latency}"),
            Fault::EventDrop(p) => write!(f, "event-drop={p}"),
            Fault::EventLeak(p) => write!(f, "event-leak={p}"),
            Fault::StreamClose(d) => write!(f, "stream-close={}", format_duration(*d)),
            Fault::ErrorRate(p) => write!(f, "error-rate={p}"),
            Fault::Stall { duration, after } => {
                write!(
                    f,
                    "stall={}@{}",
                    format_duration(*duration),
                    format_duration(*after)
                )
            }
            Fault::TenantLeak(p) => write!(f, "tenant-leak={p}"),
            Fault::IdempotencyRace => f.write_str("idempotency-race"),
            Fault::SlowBody {
                interval,
                chunk_bytes,
            } => {
                write!(f, "slow-body={chunk_bytes}/{}", format_duration(*interval))
            }
            Fault::TruncatedBody => f.write_str("truncated-body"),
            Fault::CrashAfter(n) => write!(f, "crash-after={n}"),
            Fault::AuthAcceptExpired => f.write_str("auth-accept-expired"),
            Fault::AuthAcceptAlgNone => f.write_str("auth-accept-alg-none"),
            Fault::AuthAcceptForeignKey => f.write_str("auth-accept-foreign-key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Fault, FaultError> {
        s.parse()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_fault_parses() {
        assert_eq!(
            parse("latency=20ms"),
            Ok(Fault::Latency(Latency::Fixed(ms(20))))
        );
        assert_eq!(
            parse("latency=10ms..50ms"),
            Ok(Fault::Latency(Latency::Uniform {
                min: ms(10),
                max: ms(50)
            }))
        );
        assert_eq!(parse("error-rate=0.05"), Ok(Fault::ErrorRate(0.05)));
        assert_eq!(parse("error-rate=5%"), Ok(Fault::ErrorRate(0.05)));
        assert_eq!(
            parse("stall=1s@5s"),
            Ok(Fault::Stall {
                duration: ms(1000),
                after: ms(5000)
            })
        );
        assert_eq!(parse("tenant-leak=1"), Ok(Fault::TenantLeak(1.0)));
        assert_eq!(parse("idempotency-race"), Ok(Fault::IdempotencyRace));
        assert_eq!(
            parse("slow-body=20ms"),
            Ok(Fault::SlowBody {
                interval: ms(20),
                chunk_bytes: SLOW_BODY_CHUNK
            })
        );
        assert_eq!(
            parse("slow-body=64/20ms"),
            Ok(Fault::SlowBody {
                interval: ms(20),
                chunk_bytes: 64
            })
        );
        assert_eq!(parse("truncated-body"), Ok(Fault::TruncatedBody));
        assert_eq!(parse("crash-after=1000"), Ok(Fault::CrashAfter(1000)));
        assert_eq!(
            parse("event-delay=50ms"),
            Ok(Fault::EventDelay(Latency::Fixed(ms(50))))
        );
        assert_eq!(
            parse("event-delay=20ms..80ms"),
            Ok(Fault::EventDelay(Latency::Uniform {
                min: ms(20),
                max: ms(80)
            }))
        );
        assert_eq!(parse("event-drop=0.1"), Ok(Fault::EventDrop(0.1)));
        assert_eq!(parse("event-leak=5%"), Ok(Fault::EventLeak(0.05)));
        assert_eq!(
            parse("stream-close=30s"),
            Ok(Fault::StreamClose(ms(30_000)))
        );
    }

    #[test]
    fn names_are_forgiving_about_case_and_underscores() {
        assert_eq!(parse("Error_Rate=0.5"), Ok(Fault::ErrorRate(0.5)));
        assert_eq!(parse(" crash-after = 3 "), Ok(Fault::CrashAfter(3)));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "latency=20ms",
            "latency=10ms..50ms",
            "error-rate=0.05",
            "stall=1s@5s",
            "tenant-leak=0.5",
            "idempotency-race",
            "slow-body=64/20ms",
            "truncated-body",
            "crash-after=7",
            "auth-accept-expired",
            "auth-accept-alg-none",
            "auth-accept-foreign-key",
            "event-delay=50ms",
            "event-delay=20ms..80ms",
            "event-drop=0.1",
            "event-leak=0.05",
            "stream-close=30s",
        ] {
            let fault = parse(s).unwrap();
            assert_eq!(parse(&fault.to_string()), Ok(fault), "{s}");
        }
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let err = parse("latancy=20ms").unwrap_err();
        assert_eq!(
            err,
            FaultError::UnknownName {
                found: "latancy".into(),
                suggestion: Some("latency")
            }
        );
        let message = err.to_string();
        assert!(message.contains("did you mean \"latency\"?"), "{message}");
        assert!(message.contains("crash-after"), "{message}");
        assert!(matches!(
            parse("gremlins"),
            Err(FaultError::UnknownName {
                suggestion: None,
                ..
            })
        ));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        for (s, expected_in_message) in [
            ("latency=fast", "10ms..50ms"),
            ("latency=50ms..10ms", "lower bound"),
            ("error-rate=1.5", "between 0 and 1"),
            ("error-rate=-0.1", "between 0 and 1"),
            ("stall=1s", "DURATION@START"),
            ("stall=0s@1s", "DURATION@START"),
            ("tenant-leak=0", "above 0"),
            ("slow-body=0/20ms", "BYTES/INTERVAL"),
            ("crash-after=lots", "whole number"),
            ("event-delay=soon", "10ms..50ms"),
            ("event-delay=80ms..20ms", "lower bound"),
            ("event-drop=0", "above 0"),
            ("event-leak=2", "at most 1"),
            ("stream-close=0s", "above zero"),
        ] {
            let err = parse(s).unwrap_err();
            assert!(
                matches!(err, FaultError::InvalidValue { .. }),
                "{s}: {err:?}"
            );
            assert!(err.to_string().contains(expected_in_message), "{s}: {err}");
        }
    }

    #[test]
    fn values_missing_or_unexpected_are_refused() {
        assert!(matches!(
            parse("latency"),
            Err(FaultError::MissingValue {
                name: "latency",
                ..
            })
        ));
        assert!(matches!(
            parse("crash-after="),
            Err(FaultError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse("truncated-body=yes"),
            Err(FaultError::UnexpectedValue {
                name: "truncated-body",
                ..
            })
        ));
    }

    #[test]
    fn uniform_latency_samples_stay_in_bounds() {
        let latency = Latency::Uniform {
            min: ms(10),
            max: ms(12),
        };
        for _ in 0..1000 {
            let d = latency.sample();
            assert!(ms(10) <= d && d <= ms(12), "{d:?}");
        }
        assert_eq!(Latency::Fixed(ms(3)).sample(), ms(3));
    }
}
