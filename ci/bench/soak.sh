#!/usr/bin/env bash
# Issue 6's soak: a long open-model `convoy run` against a separate
# `convoy target` process, watching the generator for leaks. Every
# --interval seconds it samples the generator's resident memory (VmRSS from
# /proc/PID/status) and its open file descriptors (/proc/PID/fd), prints the
# series, and ends with a verdict: memory is flat when the last sample of the
# plan is within --tolerance of the first minute's peak, and descriptors
# have not grown past the first minute's peak.
#
# The target runs pinned to one CPU and the generator to another, as in
# peers.sh; see ci/bench/README.md for what the figures mean.
#
# Usage: ci/bench/soak.sh [--minutes M] [--rate N] [--scenario NAME]
#                         [--interval SECS] [--tolerance PCT] [--strict]
#                         [--no-build] [--convoy PATH]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"

usage() {
    cat <<'EOF'
Usage: ci/bench/soak.sh [options]

A long open-model run that samples the generator's RSS and open file
descriptors (see ci/bench/README.md).

Options (each also settable by the environment variable shown):
  --minutes M         length of the run (decimals allowed)    [SOAK_MINUTES=10]
  --rate N            arrivals (iterations) per second         [SOAK_RATE=200]
  --scenario NAME     built-in scenario or file to run         [SOAK_SCENARIO=order-lifecycle]
  --max-in-flight N   open-model slots (one connection each)   [SOAK_MAX_IN_FLIGHT=100]
  --interval SECS     seconds between samples                  [SOAK_INTERVAL=10]
  --tolerance PCT     allowed RSS growth, last vs first minute [SOAK_TOLERANCE=10]
  --strict            exit 1 when the verdict is not flat      [SOAK_STRICT=1]
  --no-build          use target/release/convoy as it is       [SOAK_NO_BUILD=1]
  --convoy PATH       use this convoy binary (implies --no-build) [SOAK_CONVOY]
  -h, --help          this text

Also: SOAK_SERVER_CPU=0, SOAK_GENERATOR_CPU=1, SOAK_TARGET_FAULTS (space-
separated --fault values for the target, e.g. "latency=5ms").

Results: the series and verdict on stdout, ci/bench/results/soak-<UTC time>.txt
and .json, and the raw material in ci/bench/results/soak-<UTC time>/.
EOF
}

MINUTES=${SOAK_MINUTES:-10}
RATE=${SOAK_RATE:-200}
SCENARIO=${SOAK_SCENARIO:-order-lifecycle}
MAX_IN_FLIGHT=${SOAK_MAX_IN_FLIGHT:-100}
INTERVAL=${SOAK_INTERVAL:-10}
TOLERANCE=${SOAK_TOLERANCE:-10}
STRICT=${SOAK_STRICT:-0}
NO_BUILD=${SOAK_NO_BUILD:-0}
CONVOY_BIN=${SOAK_CONVOY:-}
SERVER_CPU=${SOAK_SERVER_CPU:-0}
GEN_CPU=${SOAK_GENERATOR_CPU:-1}
read -r -a TARGET_FAULTS <<<"${SOAK_TARGET_FAULTS:-}"

while (($#)); do
    case $1 in
    --minutes) MINUTES=$2; shift ;;
    --rate) RATE=${2%/s}; shift ;;
    --scenario) SCENARIO=$2; shift ;;
    --max-in-flight) MAX_IN_FLIGHT=$2; shift ;;
    --interval) INTERVAL=${2%s}; shift ;;
    --tolerance) TOLERANCE=${2%\%}; shift ;;
    --strict) STRICT=1 ;;
    --no-build) NO_BUILD=1 ;;
    --convoy) CONVOY_BIN=$2; NO_BUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
[[ $MINUTES =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "--minutes wants a number"
[[ $RATE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--rate wants arrivals per second, e.g. 200"
[[ $MAX_IN_FLIGHT =~ ^[1-9][0-9]*$ ]] || die "--max-in-flight wants a positive integer"
[[ $INTERVAL =~ ^[1-9][0-9]*$ ]] || die "--interval wants whole seconds"
[[ $TOLERANCE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--tolerance wants a percentage"
DURATION_S=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 0.5 }')
((DURATION_S >= 2 * INTERVAL)) || die "the run ($DURATION_S s) must last at least two --interval ($INTERVAL s)"

one_cpu_fallback "target and generator"
require_tools curl ss taskset pgrep python3
bench_scratch soak
copy_convoy "$CONVOY_BIN" "$NO_BUILD" "$SCRATCH"

bench_run_dir soak

port=$(free_port 18380)
log "convoy target on CPU $SERVER_CPU port $port${TARGET_FAULTS[*]:+ (faults: ${TARGET_FAULTS[*]})}"
start_target "$CONVOY" "$port" "$SERVER_CPU" "$RUN_DIR/target.log" "${TARGET_FAULTS[@]}"
target_pid=$BENCH_LAST_PID
url=http://127.0.0.1:$port
wait_http "$url/health"

cat >"$RUN_DIR/profiles.toml" <<EOF
# Written by ci/bench/soak.sh.
[profile.soak]
rate = "$RATE/s"
duration = "${DURATION_S}s"
max_in_flight = $MAX_IN_FLIGHT
EOF

CMD=("$CONVOY" run "$SCENARIO" --target "$url" --profiles "$RUN_DIR/profiles.toml" --profile soak
    --json --no-reports -q)
printf '%q ' taskset -c "$GEN_CPU" "${CMD[@]}" >"$RUN_DIR/generator.cmd"
log "soak: $SCENARIO at $RATE/s for $DURATION_S s (max_in_flight $MAX_IN_FLIGHT), generator on CPU $GEN_CPU, a sample every $INTERVAL s; raw output in $RUN_DIR"

# Microseconds since the epoch, from bash's own clock (no fork per sample).
now_us() { echo "${EPOCHREALTIME/./}"; }

# One line of samples.tsv for generator PID, at T_S seconds into the run.
sample() {
    local pid=$1 t_s=$2 status rss hwm threads fds sockets cpu
    # Read once: the generator can exit between two reads, which ends the
    # series quietly.
    { status=$(<"/proc/$pid/status"); } 2>/dev/null || return 1
    rss=$(awk '/^VmRSS:/ {print $2}' <<<"$status")
    [[ -n $rss ]] || return 1
    hwm=$(awk '/^VmHWM:/ {print $2}' <<<"$status")
    threads=$(awk '/^Threads:/ {print $2}' <<<"$status")
    # shellcheck disable=SC2012 # counting entries, names do not matter
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    sockets=$(find "/proc/$pid/fd" -lname 'socket:*' 2>/dev/null | wc -l)
    cpu=$(proc_cpu_seconds "$pid")
    [[ -n $cpu ]] || return 1
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t_s" "$rss" "$hwm" "$fds" "$sockets" "$threads" \
        "$cpu" "$(vmrss_kib "$target_pid")"
}

printf 't_s\trss_kib\thwm_kib\tfds\tsockets\tthreads\tcpu_s\ttarget_rss_kib\n' >"$RUN_DIR/samples.tsv"
start_us=$(now_us)
/usr/bin/time -f '%U %S %M %e %x' -o "$RUN_DIR/generator.time" \
    taskset -c "$GEN_CPU" "${CMD[@]}" >"$RUN_DIR/report.json" 2>"$RUN_DIR/generator.err" &
time_pid=$!
BENCH_PIDS+=("$time_pid")
# /usr/bin/time forks the generator (taskset execs it): sample that child.
# It goes first in BENCH_PIDS so that an interrupted soak stops it first.
gen_pid=
for _ in $(seq 1 50); do
    gen_pid=$(pgrep -P "$time_pid" | head -1) && [[ -n $gen_pid ]] && break
    sleep 0.1
done
[[ -n $gen_pid ]] || die "the generator did not start: $(tail -3 "$RUN_DIR/generator.err")"
BENCH_PIDS=("$gen_pid" "${BENCH_PIDS[@]}")

# Samples at INTERVAL, 2*INTERVAL, ... seconds after the start, scheduled
# from the start time so that the sampling itself does not drift the series.
k=1
while kill -0 "$gen_pid" 2>/dev/null; do
    due_us=$((start_us + k * INTERVAL * 1000000))
    wait_us=$((due_us - $(now_us)))
    if ((wait_us > 0)); then
        sleep "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
    fi
    elapsed_us=$(($(now_us) - start_us))
    t_s=$((elapsed_us / 1000000)).$(printf '%01d' $((elapsed_us % 1000000 / 100000)))
    line=$(sample "$gen_pid" "$t_s") || break
    printf '%s\n' "$line" >>"$RUN_DIR/samples.tsv"
    IFS=$'\t' read -r _ rss _ fds sockets _ cpu _ <<<"$line"
    # Progress every minute, so a long run shows it is alive.
    if ((k * INTERVAL % 60 == 0)); then
        log "  ${t_s} s: VmRSS $rss KiB, $fds fds ($sockets sockets), $cpu CPU s"
    fi
    k=$((k + 1))
done
gen_exit=0
wait "$time_pid" || gen_exit=$?
forget_pid "$gen_pid"
forget_pid "$time_pid"
stop_pid "$target_pid"
((gen_exit == 0)) || log "generator exited with $gen_exit: $(tail -3 "$RUN_DIR/generator.err")"

# The summary: the series, the run's own figures and the verdict. Exit
# status 3 from Python means "not flat" (only acted on with --strict).
summary_exit=0
bench_summary soak <<PY || summary_exit=$?
import csv, json, statistics, sys
from peers_report import write_summary

run_dir, text_out, json_out = sys.argv[1:4]
duration_s, interval, tolerance = $DURATION_S, $INTERVAL, $TOLERANCE
meta = {
    "started_at": "$STAMP", "scenario": "$SCENARIO", "rate_per_s": $RATE,
    "duration_s": duration_s, "max_in_flight": $MAX_IN_FLIGHT, "interval_s": interval,
    "tolerance_pct": tolerance, "server_cpu": $SERVER_CPU, "generator_cpu": $GEN_CPU,
    "target_faults": "${TARGET_FAULTS[*]}", "generator_exit": $gen_exit,
    "convoy_commit": "$CONVOY_DESC",
    "load_average_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
}
with open(f"{run_dir}/samples.tsv") as f:
    rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f, delimiter="\t")]

out = [f"convoy soak  {meta['started_at']}  ({run_dir})",
       f"convoy {meta['convoy_commit']} | run {meta['scenario']} at {meta['rate_per_s']:g}/s for "
       f"{duration_s} s, max_in_flight {meta['max_in_flight']}, target on CPU {meta['server_cpu']}, "
       f"generator on CPU {meta['generator_cpu']}"]
report = {}
try:
    with open(f"{run_dir}/report.json") as f:
        report = json.load(f)
except (OSError, ValueError) as e:
    out.append(f"WARNING: no report from the generator ({type(e).__name__}: {e}); exit {meta['generator_exit']}")
if meta["generator_exit"] != 0:
    out.append(f"WARNING: the generator exited with {meta['generator_exit']} (see generator.err)")

# Whole-process CPU and peak RSS from /usr/bin/time (the last sample comes
# up to one interval before the end).
timing = {}
try:
    with open(f"{run_dir}/generator.time") as f:
        user, sys_, maxrss, elapsed, _ = f.read().split()[-5:]
    timing = {"cpu_s": float(user) + float(sys_), "maxrss_kib": int(maxrss), "elapsed_s": float(elapsed)}
except (OSError, ValueError):
    pass

run = {}
if report:
    o = report["overall"]
    journeys = [s for s in report.get("steps", []) if s.get("kind") == "journey"]
    run = {
        "requests": o["requests"], "errors": o["errors"], "dropped": o.get("dropped", 0),
        "rps": o["rps"], "duration_s": report["duration_secs"],
        "iterations": report.get("iterations"),
        "p50_ms": o["latency_ms"]["p50"], "p99_ms": o["latency_ms"]["p99"],
        "max_ms": o["latency_ms"]["max"],
        "journey_p50_ms": journeys[0]["latency_ms"]["p50"] if journeys else None,
    }
    out.append(
        f"run: {run['requests']:,} requests in {run['duration_s']:.1f} s = {run['rps']:,.1f} rps, "
        f"{run['errors']} errors, {run['dropped']} dropped, request p50 {run['p50_ms']:.2f} ms, "
        f"p99 {run['p99_ms']:.2f} ms, max {run['max_ms']:.1f} ms"
        + (f", journey p50 {run['journey_p50_ms']:.2f} ms" if journeys else "")
    )

out += ["", "   t_s  VmRSS_KiB  VmHWM_KiB  fds  sockets  threads  cpu_s  target_RSS_KiB"]
for r in rows:
    mark = "  (after the plan)" if r["t_s"] >= duration_s else ""
    out.append(f"{r['t_s']:6.1f}  {r['rss_kib']:9.0f}  {r['hwm_kib']:9.0f}  {r['fds']:3.0f}  "
               f"{r['sockets']:7.0f}  {r['threads']:7.0f}  {r['cpu_s']:5.1f}  {r['target_rss_kib']:14.0f}{mark}")

# The warm-up window: the first minute, or the first quarter of a shorter
# run; the verdict compares the last sample taken while the plan still ran
# with the peak of that window.
window = min(60.0, duration_s / 4)
during = [r for r in rows if r["t_s"] < duration_s]
early = [r for r in during if r["t_s"] <= window] or during[:1]
verdict = {"flat": None}
if len(during) >= 2:
    base_rss = max(r["rss_kib"] for r in early)
    base_fds = max(r["fds"] for r in early)
    last = during[-1]
    growth = (last["rss_kib"] - base_rss) / base_rss * 100.0
    # Least-squares slope of RSS after the warm-up window, in KiB per minute:
    # a steady leak shows here even when it is still under the tolerance.
    late = [r for r in during if r["t_s"] > window]
    slope = None
    if len(late) >= 3:
        slope = statistics.linear_regression([r["t_s"] for r in late], [r["rss_kib"] for r in late]).slope * 60
    rss_flat = growth <= tolerance
    fds_flat = last["fds"] <= base_fds
    verdict = {
        "window_s": window, "first_minute_peak_rss_kib": base_rss, "last_rss_kib": last["rss_kib"],
        "last_t_s": last["t_s"], "rss_growth_pct": growth, "rss_slope_kib_per_min": slope,
        "peak_rss_kib": max(r["hwm_kib"] for r in rows), "first_minute_max_fds": base_fds,
        "last_fds": last["fds"], "max_fds": max(r["fds"] for r in during),
        "rss_flat": rss_flat, "fds_flat": fds_flat, "flat": rss_flat and fds_flat,
        "cpu_s": timing.get("cpu_s", rows[-1]["cpu_s"]),
        "maxrss_kib": timing.get("maxrss_kib"),
    }
    out += ["",
            f"memory: VmRSS {last['rss_kib']:.0f} KiB at {last['t_s']:.0f} s vs {base_rss:.0f} KiB "
            f"(peak of the first {window:.0f} s): {growth:+.1f} % (tolerance {tolerance:g} %): "
            + ("flat" if rss_flat else "GROWING")
            + (f"; slope after {window:.0f} s {slope:+.1f} KiB/min" if slope is not None else ""),
            f"descriptors: {last['fds']:.0f} at {last['t_s']:.0f} s vs at most {base_fds:.0f} in the first "
            f"{window:.0f} s (max over the run {verdict['max_fds']:.0f}): "
            + ("no growth" if fds_flat else "GROWING"),
            f"verdict: {'flat' if verdict['flat'] else 'NOT FLAT'}"
            + (f" ({verdict['cpu_s']:.1f} CPU s for {run['requests']:,} requests = "
               f"{verdict['cpu_s'] / run['requests'] * 10000:.3f} CPU s per 10k, peak VmHWM "
               f"{verdict['peak_rss_kib']:.0f} KiB)" if run.get("requests") else "")]
else:
    out += ["", "verdict: n/a (fewer than two samples while the plan ran)"]

summary = {"schema": "convoy.soak/v1", "meta": meta, "run": run, "verdict": verdict, "samples": rows}
sys.stdout.write(write_summary(out, summary, text_out, json_out))
sys.exit(0 if verdict["flat"] else 3)
PY
if ((summary_exit != 0 && summary_exit != 3)); then
    die "the summary failed (exit $summary_exit)"
fi
if ((STRICT && summary_exit == 3)); then
    exit 1
fi
