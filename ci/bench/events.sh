#!/usr/bin/env bash
# Issue 16's accuracy figure: the event latency convoy measures against a
# planted delay. The relay of tests/streams_support (release build of
# `examples/stream_relay.rs`, pinned to one CPU) sends each order event
# DELAY after the request that causes it; convoy (pinned to the other CPU)
# subscribes over SSE, creates orders and awaits each one's event, timing
# it from the create request. Goal: the event latency p50 within 2 ms of
# DELAY plus the request's own p50, with and without a delay.
#
# Usage: ci/bench/events.sh [--delays "0ms 50ms"] [--users N] [--iterations N] [--no-build]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"
# shellcheck source-path=SCRIPTDIR source=streams_scenario.sh
source "$BENCH_HERE/streams_scenario.sh"

DELAYS="0ms 50ms"
USERS=10
ITERATIONS=200
NO_BUILD=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --delays) DELAYS=$2; shift 2 ;;
        --users) positive_int "$1" "$2"; USERS=$2; shift 2 ;;
        --iterations) positive_int "$1" "$2"; ITERATIONS=$2; shift 2 ;;
        --no-build) NO_BUILD=1; shift ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

require_tools taskset python3
bench_scratch events
bench_run_dir events
if [[ $NO_BUILD != 1 ]]; then
    log "building convoy and the relay (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet && cargo build --release --quiet --example stream_relay) >&2
fi
RELAY=$REPO/target/release/examples/stream_relay
[[ -x $RELAY ]] || die "$RELAY not found: cargo build --release --example stream_relay"
copy_convoy "" 1 "$SCRATCH"
export RELAY_ACME_TOKEN=relay-acme-7f3c9e1d2b

write_event_journey "$SCRATCH/events.toml"
printf '[profile.events]\nusers = %s\niterations = %s\n' "$USERS" "$ITERATIONS" >"$SCRATCH/profiles.toml"

for delay in $DELAYS; do
    taskset -c 0 "$RELAY" --delay "$delay" >"$SCRATCH/relay-$delay.url" 2>"$RUN_DIR/relay-$delay.err" &
    pid=$!
    BENCH_PIDS+=("$pid")
    for _ in $(seq 50); do [[ -s $SCRATCH/relay-$delay.url ]] && break; sleep 0.1; done
    url=$(head -1 "$SCRATCH/relay-$delay.url")
    [[ -n $url ]] || die "the relay did not start"
    log "delay $delay: $USERS users x $ITERATIONS iterations against $url"
    taskset -c 1 "$CONVOY" run "$SCRATCH/events.toml" --target "$url" \
        --profiles "$SCRATCH/profiles.toml" --profile events -q \
        --out "$RUN_DIR/run-$delay" >"$RUN_DIR/run-$delay.out" 2>&1 ||
        log "convoy exited $? (see $RUN_DIR/run-$delay.out)"
    stop_pid "$pid"
done

python3 - "$RUN_DIR" "$DELAYS" <<'PY' | tee "$RUN_DIR/summary.txt"
import json, re, sys
run_dir, delays = sys.argv[1], sys.argv[2].split()
print(f"{'delay':>7} {'events':>7} {'event p50':>10} {'event p99':>10} {'request p50':>12} {'p50 - delay - request':>22}  goal: within 2 ms")
for d in delays:
    ms = float(re.match(r"([0-9.]+)", d).group(1)) * (1000 if d.endswith("s") and not d.endswith("ms") else 1)
    r = json.load(open(f"{run_dir}/run-{d}/report.json"))
    steps = {s["name"]: s for s in r["steps"]}
    ev, req = steps["order created"], steps["create order"]
    off = ev["latency_ms"]["p50"] - ms - req["latency_ms"]["p50"]
    verdict = "ok" if abs(off) <= 2 else "MISSED"
    print(f"{d:>7} {ev['requests']:>7} {ev['latency_ms']['p50']:>8.2f}ms {ev['latency_ms']['p99']:>8.2f}ms {req['latency_ms']['p50']:>10.2f}ms {off:>+20.2f}ms  {verdict}")
PY
