#!/usr/bin/env bash
# Issue 16's memory figure: what a held stream costs convoy. N virtual users
# each subscribe to the relay of tests/streams_support (release build of
# `examples/stream_relay.rs`) and hold the stream for HOLD; midway, convoy's
# RSS and the established connections are read. KiB per held stream is
# (RSS at N - RSS at 1) / N. Goal: at most 32 KiB. Connection errors, if
# any, are listed by cause from the report.
#
# Usage: ci/bench/streams.sh [--counts "1000 10000"] [--kind sse|ws]
#                            [--hold SECS] [--no-build]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"
# shellcheck source-path=SCRIPTDIR source=streams_scenario.sh
source "$BENCH_HERE/streams_scenario.sh"

COUNTS="1000 10000"
KIND=sse
HOLD=20
NO_BUILD=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --counts) COUNTS=$2; shift 2 ;;
        --kind) KIND=$2; shift 2 ;;
        --hold) positive_int "$1" "$2"; HOLD=$2; shift 2 ;;
        --no-build) NO_BUILD=1; shift ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $KIND == sse || $KIND == ws ]] || die "--kind is sse or ws"

require_tools taskset python3 ss
bench_scratch streams
bench_run_dir streams
raise_nofile 65536
if [[ $NO_BUILD != 1 ]]; then
    log "building convoy and the relay (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet && cargo build --release --quiet --example stream_relay) >&2
fi
RELAY=$REPO/target/release/examples/stream_relay
[[ -x $RELAY ]] || die "$RELAY not found: cargo build --release --example stream_relay"
copy_convoy "" 1 "$SCRATCH"
export RELAY_ACME_TOKEN=relay-acme-7f3c9e1d2b
write_hold_journey "$SCRATCH/hold.toml" "$KIND" "${HOLD}s"

: >"$RUN_DIR/held.tsv"
for n in 1 $COUNTS; do
    ramp=$((n >= 1000 ? 5 : 1))
    printf '[profile.hold]\nusers = %s\niterations = 1\nramp_up = "%ss"\n' "$n" "$ramp" >"$SCRATCH/profiles.toml"
    taskset -c 0 "$RELAY" >"$SCRATCH/relay-$n.url" 2>"$RUN_DIR/relay-$n.err" &
    relay=$!
    BENCH_PIDS+=("$relay")
    for _ in $(seq 50); do [[ -s $SCRATCH/relay-$n.url ]] && break; sleep 0.1; done
    url=$(head -1 "$SCRATCH/relay-$n.url")
    [[ -n $url ]] || die "the relay did not start"
    port=${url##*:}
    port=${port%/}
    log "$n $KIND streams held for ${HOLD}s (ramp ${ramp}s)"
    taskset -c 1 "$CONVOY" run "$SCRATCH/hold.toml" --target "$url" \
        --profiles "$SCRATCH/profiles.toml" --profile hold -q \
        --out "$RUN_DIR/run-$n" >"$RUN_DIR/run-$n.out" 2>&1 &
    gen=$!
    BENCH_PIDS+=("$gen")
    sleep $((ramp + HOLD / 2))
    rss=$(vmrss_kib "$gen")
    est=$(established_to "$port")
    printf '%s\t%s\t%s\n' "$n" "$rss" "$est" >>"$RUN_DIR/held.tsv"
    log "  RSS ${rss} KiB, ${est} connections established"
    wait "$gen" || log "convoy exited $? (see $RUN_DIR/run-$n.out)"
    forget_pid "$gen"
    stop_pid "$relay"
done

python3 - "$RUN_DIR" <<'PY' | tee "$RUN_DIR/summary.txt"
import json, sys
run_dir = sys.argv[1]
rows = [line.split("\t") for line in open(f"{run_dir}/held.tsv").read().split("\n") if line]
base = int(rows[0][1])
print(f"{'streams':>8} {'held':>7} {'RSS KiB':>9} {'KiB/stream':>11} {'connect errors by cause'}  goal: <= 32 KiB")
for n, rss, est in rows:
    n, rss, est = int(n), int(rss), int(est)
    r = json.load(open(f"{run_dir}/run-{n}/report.json"))
    s = next(s for s in r["steps"] if s["name"] == "orders")
    errors = ", ".join(f"{k} x {v}" for k, v in sorted(s.get("error_counts", {}).items())) or "none"
    per = "" if n == 1 else f"{(rss - base) / n:.1f}"
    verdict = "" if n == 1 else ("ok" if (rss - base) / n <= 32 else "MISSED")
    print(f"{n:>8} {est:>7} {rss:>9} {per:>11} {errors}  {verdict}")
PY
