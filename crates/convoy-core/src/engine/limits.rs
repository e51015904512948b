//! How many connections convoy can hold on this machine, so that a plan
//! asking for more is refused before it starts instead of growing without
//! bound (`bench -c 100000000` once grew by half a gigabyte a second) or
//! running out of file descriptors mid-run.
//!
//! Each virtual user (a closed-model user, an open-model slot) keeps one
//! keep-alive connection, and one more for each stream it holds
//! (`[step.subscribe]`): each a file descriptor and about
//! [`BYTES_PER_CONNECTION`] of memory (measured: `convoy bench -c 10000`
//! against the reference target holds about 20 KiB per connection). The
//! cap on users is the smaller of:
//!
//! - the open-file limit (`RLIMIT_NOFILE`'s soft value, read from
//!   `/proc/self/limits`) less [`RESERVED_FILES`] for convoy itself, divided
//!   by the descriptors each user needs ([`PerUser`]: its connections, twice
//!   when the reference target runs in the same process, as both ends of
//!   each connection are ours);
//! - half the machine's memory (`MemTotal` of `/proc/meminfo`) divided by
//!   [`BYTES_PER_CONNECTION`] times the user's connections.
//!
//! Where neither can be read (not Linux), [`FALLBACK_CAP`] applies.

use std::fmt;

/// Memory one held connection costs, with its user (measured; see the
/// module docs).
pub const BYTES_PER_CONNECTION: u64 = 20 * 1024;

/// File descriptors kept for convoy itself: standard streams, each worker
/// runtime's epoll and wake-up descriptors, the signal thread, the metrics
/// exporter, the target watch's probes, report files.
pub const RESERVED_FILES: u64 = 64;

/// The cap when neither the open-file limit nor the memory can be read.
pub const FALLBACK_CAP: u64 = 100_000;

/// What one user holds open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerUser {
    /// Connections: one for requests, one per stream it holds.
    pub connections: u64,
    /// File descriptors per connection: 1, or 2 when the target runs in
    /// this process.
    pub fds_per_connection: u64,
}

impl PerUser {
    /// One connection of one descriptor: a user of `convoy bench`.
    pub const ONE: PerUser = PerUser {
        connections: 1,
        fds_per_connection: 1,
    };

    /// A user holding `streams` streams besides its connection for
    /// requests, each connection `fds_per_connection` descriptors.
    pub fn with_streams(streams: u64, fds_per_connection: u64) -> Self {
        PerUser {
            connections: streams.saturating_add(1),
            fds_per_connection: fds_per_connection.max(1),
        }
    }

    fn fds(self) -> u64 {
        self.connections
            .max(1)
            .saturating_mul(self.fds_per_connection.max(1))
    }
}

/// The most users a run may hold, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCap {
    /// The cap.
    pub max: u64,
    /// The soft open-file limit, if known.
    pub open_files: Option<u64>,
    /// The machine's memory in bytes, if known.
    pub memory: Option<u64>,
    /// Which bound decided.
    pub bound: Bound,
    /// What each user holds.
    pub per_user: PerUser,
}

/// Which bound decided a [`ConnectionCap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The open-file limit.
    OpenFiles,
    /// Half the machine's memory.
    Memory,
    /// Neither could be read.
    Fallback,
}

impl ConnectionCap {
    /// The cap on this machine, for users each holding `per_user`.
    pub fn here(per_user: PerUser) -> Self {
        Self::from_limits(open_files(), memory_total(), per_user)
    }

    /// The cap given an open-file limit and a memory size.
    pub fn from_limits(open_files: Option<u64>, memory: Option<u64>, per_user: PerUser) -> Self {
        let by_files = open_files
            .map(|n| n.saturating_sub(RESERVED_FILES).max(1) / per_user.fds())
            .map(|n| n.max(1));
        let by_memory = memory.map(|m| {
            (m / 2 / BYTES_PER_CONNECTION.saturating_mul(per_user.connections.max(1))).max(1)
        });
        let (max, bound) = match (by_files, by_memory) {
            (Some(f), Some(m)) if m < f => (m, Bound::Memory),
            (Some(f), _) => (f, Bound::OpenFiles),
            (None, Some(m)) => (m, Bound::Memory),
            (None, None) => (FALLBACK_CAP, Bound::Fallback),
        };
        ConnectionCap {
            max,
            open_files,
            memory,
            bound,
            per_user,
        }
    }

    /// Checks `users` against the cap: the message says the cap, why, and
    /// how to raise it.
    pub fn check(&self, users: u64, what: &str) -> Result<(), String> {
        if users <= self.max {
            return Ok(());
        }
        Err(format!(
            "{what} asks for {users}, more than convoy can hold here: {self}"
        ))
    }
}

impl fmt::Display for ConnectionCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Users that hold streams are counted as users, each with its
        // connections; a plain user is one connection.
        let (what, each) = match self.per_user.connections {
            0 | 1 => ("connections", String::new()),
            n => (
                "users",
                format!(
                    " of {n} connections each (one for requests, {} for the streams it holds)",
                    n - 1
                ),
            ),
        };
        match self.bound {
            Bound::OpenFiles => write!(
                f,
                "at most {} {what}{each}, as each connection holds a file descriptor and the open-file limit is {} ({} kept for convoy itself); raise it with `ulimit -n` (up to the hard limit) to allow more",
                self.max,
                self.open_files.unwrap_or(0),
                RESERVED_FILES
            ),
            Bound::Memory => write!(
                f,
                "at most {} {what}{each}, as each connection holds about {} KiB and they must fit in half of this machine's {} MiB of memory; use a bigger machine, or several shards (--shard)",
                self.max,
                BYTES_PER_CONNECTION / 1024,
                self.memory.unwrap_or(0) / (1024 * 1024)
            ),
            Bound::Fallback => write!(
                f,
                "at most {} {what}{each} (the open-file limit and the memory of this system cannot be read); run several shards (--shard) for more",
                self.max
            ),
        }
    }
}

/// The soft open-file limit of this process (`ulimit -n`), if known.
pub fn open_files() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_limits(&text)
}

/// The soft value of `Max open files` in the text of `/proc/PID/limits`.
fn parse_limits(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// The machine's memory in bytes (`MemTotal`), if known.
pub fn memory_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => n.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            20000                524288               files     \n";

    #[test]
    fn reads_the_soft_open_file_limit() {
        assert_eq!(parse_limits(LIMITS), Some(20000));
        assert_eq!(
            parse_limits(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Some(u64::MAX)
        );
        assert_eq!(parse_limits("nothing"), None);
    }

    #[test]
    fn reads_the_memory_total() {
        assert_eq!(
            parse_meminfo("MemTotal:       24000000 kB\nMemFree: 1 kB\n"),
            Some(24_000_000 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn the_smaller_bound_decides() {
        let gib = 1024 * 1024 * 1024;
        let cap = ConnectionCap::from_limits(Some(20_000), Some(24 * gib), PerUser::ONE);
        assert_eq!((cap.max, cap.bound), (19_936, Bound::OpenFiles));
        let cap =
            ConnectionCap::from_limits(Some(20_000), Some(24 * gib), PerUser::with_streams(0, 2));
        assert_eq!(cap.max, 9_968);
        let cap = ConnectionCap::from_limits(Some(u64::MAX), Some(gib), PerUser::ONE);
        assert_eq!(
            (cap.max, cap.bound),
            (gib / 2 / BYTES_PER_CONNECTION, Bound::Memory)
        );
        let cap = ConnectionCap::from_limits(None, None, PerUser::ONE);
        assert_eq!((cap.max, cap.bound), (FALLBACK_CAP, Bound::Fallback));
        let cap = ConnectionCap::from_limits(Some(10), None, PerUser::ONE);
        assert_eq!(cap.max, 1, "never zero");
    }

    #[test]
    fn the_refusal_says_the_cap_why_and_how_to_raise_it() {
        let cap = ConnectionCap::from_limits(Some(20_000), None, PerUser::ONE);
        assert!(cap.check(19_936, "-c").is_ok());
        let e = cap.check(100_000_000, "-c/--connections").unwrap_err();
        assert!(e.contains("100000000"), "{e}");
        assert!(e.contains("at most 19936"), "{e}");
        assert!(e.contains("open-file limit is 20000"), "{e}");
        assert!(e.contains("ulimit -n"), "{e}");
    }

    #[test]
    fn held_streams_count_as_connections_of_their_user() {
        let gib = 1024 * 1024 * 1024;
        // Two streams beside the user's connection, both ends in this
        // process: six descriptors a user.
        let per_user = PerUser::with_streams(2, 2);
        let cap = ConnectionCap::from_limits(Some(20_000), Some(24 * gib), per_user);
        assert_eq!((cap.max, cap.bound), (19_936 / 6, Bound::OpenFiles));
        let cap = ConnectionCap::from_limits(Some(u64::MAX), Some(gib), per_user);
        assert_eq!(cap.max, gib / 2 / BYTES_PER_CONNECTION / 3);
        let cap = ConnectionCap::from_limits(Some(664), None, per_user);
        assert_eq!(cap.max, 100);
        assert!(cap.check(100, "profile").is_ok());
        let e = cap.check(101, "profile").unwrap_err();
        assert!(
            e.contains("at most 100 users of 3 connections each (one for requests, 2 for the streams it holds)"),
            "{e}"
        );
    }
}
