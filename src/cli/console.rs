//! Standard output and standard error that never panic.
//!
//! `println!` panics when a write fails: `convoy smoke | head -1` (the
//! reader went away: `EPIPE`) or `convoy run > /dev/full` (`ENOSPC`) ended
//! in exit 101, before the reports were written. Everything the command
//! line prints goes through [`outln!`], [`out!`] and [`errln!`] instead:
//!
//! * a closed pipe on either stream ends that stream quietly, as ripgrep
//!   does: the run goes on and writes its report files;
//! * any other failure on standard output is remembered, and [`finish`]
//!   turns it into a clear error once the command is done (the verdict's
//!   exit code stands when it is already a failure; a pass becomes exit 3,
//!   since the output the user asked for is lost);
//! * a failure on standard error is ignored: there is nowhere left to say it.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Writes to standard output; see the module docs for failures.
pub fn write_out(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Writes to standard error, ignoring every failure.
pub fn write_err(args: fmt::Arguments<'_>) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut err = io::stderr().lock();
    if err.write_fmt(args).is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// The first failure to write standard output other than a closed pipe.
pub fn stdout_failure() -> Option<String> {
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The exit code of a command whose verdict is `code`, once standard
/// output is accounted for: a pass whose output was lost is a local error.
pub fn finish(code: std::process::ExitCode) -> std::process::ExitCode {
    let Some(why) = stdout_failure() else {
        return code;
    };
    crate::errln!("error: cannot write to standard output: {why}");
    if code == std::process::ExitCode::SUCCESS {
        super::Exit::Usage.into()
    } else {
        code
    }
}

/// `println!` to standard output that never panics.
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::console::write_out(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::console::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to standard output that never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::console::write_out(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    () => { $crate::cli::console::write_err(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::console::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub use crate::{errln, out, outln};

/// The width the summaries are fitted to: `COLUMNS` when it is set to a
/// number, else the terminal's width when standard output is one, else
/// `None` (a file or a pipe gets every column). Never below
/// [`crate::report::fit::MIN_WIDTH`].
pub fn width() -> Option<usize> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    columns
        .or_else(|| {
            ::console::Term::stdout()
                .size_checked()
                .map(|(_rows, cols)| usize::from(cols))
        })
        .map(|w| w.max(crate::report::fit::MIN_WIDTH))
}
