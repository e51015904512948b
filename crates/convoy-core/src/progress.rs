//! Live progress on a terminal: elapsed and remaining time (or iterations),
//! current throughput, errors so far. Drawn with indicatif on stderr, and
//! only when stdout and stderr are terminals and the user did not ask for
//! quiet (piped or CI output stays clean).
//!
//! Layering: a view of a run in progress. It reads the engine's live status
//! and the report's number formatting; nothing below it imports it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::LiveStatus;
use crate::plan::format_duration;
use crate::report::text::{group, percent};

/// A progress display, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A display that draws only if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        let bar = (enabled && std::io::stdout().is_terminal() && std::io::stderr().is_terminal())
            .then(|| {
                let bar = ProgressBar::with_draw_target(
                    Some(1000),
                    ProgressDrawTarget::stderr_with_hz(4),
                );
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                        .expect("the template is valid")
                        .progress_chars("=> "),
                );
                bar
            });
        Progress { bar }
    }

    /// Updates the display.
    pub fn update(&self, s: &LiveStatus) {
        let Some(bar) = &self.bar else { return };
        let fraction = match (s.planned, s.planned_iterations) {
            (Some(p), _) if !p.is_zero() => s.elapsed.as_secs_f64() / p.as_secs_f64(),
            (_, Some(n)) if n > 0 => s.iterations as f64 / n as f64,
            _ => 0.0,
        };
        bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        bar.set_message(message(s));
    }

    /// Removes the display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Time left in the plan, in whole seconds rounded *up*: a run with 0.4 s
/// to go still has "1s left"; "0s left" means the plan is over (an open run
/// may still be serving late arrivals).
fn time_left(planned: Duration, elapsed: Duration) -> String {
    let left = planned.saturating_sub(elapsed);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format_duration(Duration::from_secs(secs))
}

/// The line shown beside the bar.
fn message(s: &LiveStatus) -> String {
    let remaining = match s.planned {
        Some(p) => format!(" / {} left", time_left(p, s.elapsed)),
        None => match s.planned_iterations {
            Some(n) => format!(" · {}/{} iterations", group(s.iterations), group(n)),
            None => String::new(),
        },
    };
    let error_rate = if s.requests > 0 {
        s.errors as f64 / s.requests as f64
    } else {
        0.0
    };
    format!(
        "{}{} · {} req · {:.0} req/s · {} errors ({}){}{}",
        format_duration(Duration::from_secs(s.elapsed.as_secs())),
        remaining,
        group(s.requests),
        s.current_rps,
        group(s.errors),
        percent(error_rate),
        if s.dropped > 0 {
            format!(" · {} dropped", group(s.dropped))
        } else {
            String::new()
        },
        if s.stopping { " · stopping" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(elapsed_ms: u64, planned_ms: u64) -> LiveStatus {
        LiveStatus {
            elapsed: Duration::from_millis(elapsed_ms),
            planned: Some(Duration::from_millis(planned_ms)),
            requests: 1500,
            errors: 15,
            dropped: 0,
            iterations: 1500,
            planned_iterations: None,
            current_rps: 1000.0,
            window_requests: 250,
            window_connect_failures: 0,
            stopping: false,
            snapshot: None,
        }
    }

    #[test]
    fn time_left_rounds_up_to_the_second() {
        let line = message(&status(1000, 2000));
        assert!(line.starts_with("1s / 1s left · 1,500 req"), "{line}");
        // Halfway through a 2 s run there is a second left, not none.
        assert_eq!(
            time_left(Duration::from_secs(2), Duration::from_millis(1250)),
            "1s"
        );
        assert_eq!(
            time_left(Duration::from_secs(2), Duration::from_millis(800)),
            "2s"
        );
        assert_eq!(
            time_left(Duration::from_secs(2), Duration::from_millis(1999)),
            "1s"
        );
        assert_eq!(
            time_left(Duration::from_secs(90), Duration::from_millis(100)),
            "1m30s"
        );
        // Only once the plan is over.
        assert_eq!(
            time_left(Duration::from_secs(2), Duration::from_secs(2)),
            "0s"
        );
        assert_eq!(
            time_left(Duration::from_secs(2), Duration::from_secs(3)),
            "0s"
        );
    }
}
