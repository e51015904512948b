//! The relay of `tests/streams.rs` as a program, for the stream benchmarks
//! (`ci/bench/events.sh`, `ci/bench/streams.sh`): prints its base URL on
//! the first line of stdout, then serves until killed.
//!
//! `cargo run --release --example stream_relay -- [--delay 50ms] [--flood RATE|max]`
//!
//! `--flood` gives every subscriber its own endless run of events (RATE per
//! second each, or as fast as it reads) and counts them in `GET /stats`
//! (`ci/bench/stream_events.sh`).

#[path = "../tests/streams_support/mod.rs"]
mod streams_support;

use std::time::Duration;

fn main() {
    let mut knobs = streams_support::Knobs::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--delay" => {
                let v = args.next().unwrap_or_default();
                knobs.delay = humantime::parse_duration(&v).unwrap_or_else(|e| {
                    eprintln!("stream_relay: --delay {v:?}: {e}");
                    std::process::exit(2)
                });
            }
            "--flood" => {
                let v = args.next().unwrap_or_default();
                knobs.flood = Some(v.parse().unwrap_or_else(|e| {
                    eprintln!("stream_relay: --flood: {e}");
                    std::process::exit(2)
                }));
            }
            other => {
                eprintln!(
                    "stream_relay: unknown argument {other:?} (takes --delay DURATION, --flood RATE|max)"
                );
                std::process::exit(2)
            }
        }
    }
    let server = streams_support::Server::start(knobs);
    println!("{}", server.url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
