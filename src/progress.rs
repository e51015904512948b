//! Live progress on a terminal: elapsed and remaining time (or iterations),
//! current throughput, errors so far. Drawn with indicatif on stderr, and
//! only when stdout and stderr are terminals and the user did not ask for
//! quiet (piped or CI output stays clean).

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
        let remaining = match s.planned {
            Some(p) => format!(
                " / {} left",
                format_duration(Duration::from_secs(p.saturating_sub(s.elapsed).as_secs()))
            ),
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
        bar.set_message(format!(
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
        ));
    }

    /// Removes the display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
