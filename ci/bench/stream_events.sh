#!/usr/bin/env bash
# Issue 16's throughput figure: events per CPU-second delivered to convoy.
# The relay of tests/streams_support (release build of
# `examples/stream_relay.rs --flood RATE`, pinned to CPU 0) pushes its own
# endless run of events to every subscriber, RATE per second each or as
# fast as it is read ("max"), and counts what it writes (GET /stats).
# convoy (pinned to CPU 1) holds N streams of one kind (subscribe, then a
# stream_isolation watch for a marker no event carries) for HOLD seconds.
# Over a window in which all N are held, from 1 s after the ramp to 2 s
# before the first stream ends (a loaded relay is late to accept the
# last subscribers), the events the relay wrote and convoy's
# CPU (utime+stime from /proc/PID/stat) are read at both ends; the figure
# is events / CPU-second. Reading both ends of a window in steady state
# cancels what sits in socket buffers (at most their size, about one
# socket's worth per stream, either way) rather than counting it.
#
# Usage: ci/bench/stream_events.sh [--streams N] [--kinds "sse ws"]
#                                  [--rates "100 max"] [--hold SECS] [--no-build]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"
# shellcheck source-path=SCRIPTDIR source=streams_scenario.sh
source "$BENCH_HERE/streams_scenario.sh"

STREAMS=100
KINDS="sse ws"
RATES="100 max"
HOLD=10
NO_BUILD=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --streams) positive_int "$1" "$2"; STREAMS=$2; shift 2 ;;
        --kinds) KINDS=$2; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --hold) positive_int "$1" "$2"; HOLD=$2; shift 2 ;;
        --no-build) NO_BUILD=1; shift ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for kind in $KINDS; do [[ $kind == sse || $kind == ws ]] || die "--kinds takes sse and ws"; done
for rate in $RATES; do [[ $rate == max || $rate =~ ^[1-9][0-9]*$ ]] || die "--rates takes positive integers and max"; done
RAMP=1
((HOLD >= RAMP + 5)) || die "--hold wants at least $((RAMP + 5)) s (the window is HOLD - RAMP - 3 s)"

require_tools taskset python3 ss curl
bench_scratch stream-events
bench_run_dir stream-events
raise_nofile 65536
if [[ $NO_BUILD != 1 ]]; then
    log "building convoy and the relay (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet --bin convoy && cargo build --release --quiet --example stream_relay) >&2
fi
RELAY=$REPO/target/release/examples/stream_relay
[[ -x $RELAY ]] || die "$RELAY not found: cargo build --release --example stream_relay"
copy_convoy "" 1 "$SCRATCH"
export RELAY_ACME_TOKEN=relay-acme-7f3c9e1d2b
printf '[profile.hold]\nusers = %s\niterations = 1\nramp_up = "%ss"\n' "$STREAMS" "$RAMP" >"$SCRATCH/profiles.toml"

: >"$RUN_DIR/window.tsv"
for rate in $RATES; do
    for kind in $KINDS; do
        name=$kind-$rate
        write_hold_journey "$SCRATCH/hold-$kind.toml" "$kind" "${HOLD}s"
        taskset -c 0 "$RELAY" --flood "$rate" >"$SCRATCH/relay-$name.url" 2>"$RUN_DIR/relay-$name.err" &
        relay=$!
        BENCH_PIDS+=("$relay")
        for _ in $(seq 50); do [[ -s $SCRATCH/relay-$name.url ]] && break; sleep 0.1; done
        url=$(head -1 "$SCRATCH/relay-$name.url")
        [[ -n $url ]] || die "the relay did not start"
        port=${url##*:}
        port=${port%/}
        log "$STREAMS $kind streams flooded at $rate events/s each, held for ${HOLD}s"
        taskset -c 1 "$CONVOY" run "$SCRATCH/hold-$kind.toml" --target "$url" \
            --profiles "$SCRATCH/profiles.toml" --profile hold -q \
            --out "$RUN_DIR/run-$name" >"$RUN_DIR/run-$name.out" 2>&1 &
        gen=$!
        BENCH_PIDS+=("$gen")
        sleep $((RAMP + 1))
        e0=$(curl -fsS "${url}stats")
        c0=$(proc_cpu_seconds "$gen")
        t0=$(date +%s.%N)
        h0=$(established_to "$port")
        sleep $((HOLD - RAMP - 3))
        e1=$(curl -fsS "${url}stats")
        c1=$(proc_cpu_seconds "$gen")
        t1=$(date +%s.%N)
        h1=$(established_to "$port")
        [[ -n $c1 ]] || die "convoy exited before the window closed (see $RUN_DIR/run-$name.out)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$rate" "$e0" "$e1" \
            "$(cpu_delta "$c0" "$c1")" "$(cpu_delta "$t0" "$t1")" "$h0" "$h1" "$(vmrss_kib "$gen")" \
            >>"$RUN_DIR/window.tsv"
        wait "$gen" || log "convoy exited $? (see $RUN_DIR/run-$name.out)"
        forget_pid "$gen"
        stop_pid "$relay"
    done
done

python3 - "$RUN_DIR" "$STREAMS" "$CONVOY_DESC" <<'PY' | tee "$RUN_DIR/summary.txt"
import json, sys
run_dir, streams, desc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(f"convoy {desc}; {streams} streams per run; relay on CPU 0, convoy on CPU 1")
print(f"{'kind':>4} {'rate/s':>7} {'held':>9} {'window s':>9} {'events':>10} {'events/s':>10} "
      f"{'convoy CPU s':>13} {'events per CPU-s':>17} {'RSS KiB':>8}")
for line in open(f"{run_dir}/window.tsv"):
    kind, rate, e0, e1, cpu, wall, h0, h1, rss = line.rstrip("\n").split("\t")
    n = json.loads(e1)[kind]["events"] - json.loads(e0)[kind]["events"]
    cpu, wall = float(cpu), float(wall)
    per = f"{n / cpu:,.0f}" if cpu > 0 else "n/a"
    print(f"{kind:>4} {rate:>7} {h0 + '/' + h1:>9} {wall:>9.2f} {n:>10,} {n / wall:>10,.0f} "
          f"{cpu:>13.2f} {per:>17} {rss:>8}")
PY
