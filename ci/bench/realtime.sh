#!/usr/bin/env bash
# Issue 16's accuracy figure on the reference target: the event latency of
# the built-in `realtime` (SSE) and `realtime-ws` (WebSocket) journeys
# against `convoy target` (release build, one thread, pinned to CPU 0) with
# and without `--fault event-delay=50ms`; convoy runs pinned to CPU 1. For
# each state change of an order (created, accepted, routed, delivered) it
# prints the event latency p50, the p50 of the request that caused it, and
# event p50 - delay - request p50. Goal: within 2 ms (the event is timed
# from when its request was sent, so without a delay it is about the
# request's own latency, with one that plus the delay).
#
# Usage: ci/bench/realtime.sh [--users N] [--iterations N] [--convoy BIN] [--no-build]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"

USERS=10
ITERATIONS=100
BIN=
NO_BUILD=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --users) positive_int "$1" "$2"; USERS=$2; shift 2 ;;
        --iterations) positive_int "$1" "$2"; ITERATIONS=$2; shift 2 ;;
        --convoy) BIN=$2; shift 2 ;;
        --no-build) NO_BUILD=1; shift ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

require_tools taskset python3 ss
bench_scratch realtime
bench_run_dir realtime
copy_convoy "$BIN" "$NO_BUILD" "$SCRATCH"
printf '[profile.realtime]\nusers = %s\niterations = %s\n' "$USERS" "$ITERATIONS" >"$SCRATCH/profiles.toml"

FAULTS="none event-delay=50ms"
for fault in $FAULTS; do
    port=$(free_port $((20000 + RANDOM % 20000)))
    if [[ $fault == none ]]; then
        start_target "$CONVOY" "$port" 0 "$RUN_DIR/target-$fault.log"
    else
        start_target "$CONVOY" "$port" 0 "$RUN_DIR/target-$fault.log" "$fault"
    fi
    pid=$BENCH_LAST_PID
    for journey in realtime realtime-ws; do
        log "$journey, fault $fault: $USERS users x $ITERATIONS iterations against port $port"
        taskset -c 1 "$CONVOY" run "$journey" --target "http://127.0.0.1:$port/" \
            --profiles "$SCRATCH/profiles.toml" --profile realtime -q \
            --out "$RUN_DIR/run-$journey-$fault" >"$RUN_DIR/run-$journey-$fault.out" 2>&1 ||
            log "convoy exited $? (see $RUN_DIR/run-$journey-$fault.out)"
    done
    stop_pid "$pid"
done

python3 - "$RUN_DIR" "$FAULTS" "$CONVOY_DESC" <<'PY' | tee "$RUN_DIR/summary.txt"
import json, re, sys
run_dir, faults, desc = sys.argv[1], sys.argv[2].split(), sys.argv[3]
print(f"# convoy {desc}; convoy target (1 thread, CPU 0), convoy on CPU 1")
print(f"{'journey':<12} {'fault':<18} {'event':<24} {'events':>6} {'event p50':>10} {'request p50':>12} {'p50 - delay - request':>22}  goal: within 2 ms")
worst = 0.0
for journey, suffix, requests in [
    ("realtime", "", ["create order (sse)", "driver accepts (sse)", "optimise route (sse)", "deliver (sse)"]),
    ("realtime-ws", " (ws)", ["create order (ws)", "driver accepts (ws)", "optimise route (ws)", "deliver (ws)"]),
]:
    for f in faults:
        m = re.match(r"event-delay=([0-9.]+)ms$", f)
        delay = float(m.group(1)) if m else 0.0
        r = json.load(open(f"{run_dir}/run-{journey}-{f}/report.json"))
        steps = {s["name"]: s for s in r["steps"]}
        for state, req in zip(["created", "accepted", "routed", "delivered"], requests):
            ev, rq = steps[f"order {state}{suffix}"], steps[req]
            off = ev["latency_ms"]["p50"] - delay - rq["latency_ms"]["p50"]
            worst = max(worst, abs(off))
            verdict = "ok" if abs(off) <= 2 else "MISSED"
            print(f"{journey:<12} {f:<18} {'order ' + state + suffix:<24} {ev['requests']:>6} "
                  f"{ev['latency_ms']['p50']:>8.2f}ms {rq['latency_ms']['p50']:>10.2f}ms {off:>+20.2f}ms  {verdict}")
print(f"largest |p50 - delay - request p50|: {worst:.2f} ms (goal <= 2 ms)")
PY
