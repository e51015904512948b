#!/usr/bin/env bash
# Issue 3 asks of the reference target: "fast enough never to be the
# bottleneck in convoy's own tests: at least 20,000 GET /health per second on
# one core, and order creation in the same order of magnitude".
#
# `convoy target --threads 1` runs pinned to CPU 0 on 127.0.0.1; `convoy
# bench` drives it from CPU 1 (50 connections, closed model, as fast as the
# target answers). Rounds are interleaved (health, orders, health, ...) and
# medians are reported. Workloads:
#
#   health   GET /health
#   orders   POST /api/orders as acme's admin (bearer token from a curl
#            login), one fixed valid body and no Idempotency-Key, so that
#            every request creates a new order (201)
#
# Figures per workload: the rps convoy measured against the 20,000/s floor
# (orders against a tenth of it, "the same order of magnitude"), the
# target's CPU seconds per 10,000 requests (from /proc/PID/stat before and
# after each run) and what that makes on one whole core (requests per CPU
# second, which a busy machine does not lower), and how busy target and
# generator were (a target near 100 % was the limit; a generator near 100 %
# means the figure is a lower bound for the target).
#
# Usage: ci/bench/target.sh [--rounds N] [--duration SECS] [--connections N]
#                           [--max-orders N] [--no-build] [--convoy PATH]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"

usage() {
    cat <<'EOF'
Usage: ci/bench/target.sh [options]

Throughput of the reference target (`convoy target --threads 1` on one CPU)
for GET /health and order creation, against issue 3's floor of 20,000/s
(see ci/bench/README.md).

Options (each also settable by the environment variable shown):
  --rounds N          interleaved rounds                      [TARGET_ROUNDS=3]
  --duration SECS     length of each measured run             [TARGET_DURATION=10]
  --connections N     connections of convoy bench             [TARGET_CONNECTIONS=50]
  --max-orders N      the target's --max-orders (orders kept per tenant; its
                      default is 100000, the oldest forgotten beyond) [TARGET_MAX_ORDERS]
  --workloads LIST    subset of health,orders                 [TARGET_WORKLOADS=health,orders]
  --no-build          use target/release/convoy as it is      [TARGET_NO_BUILD=1]
  --convoy PATH       use this convoy binary (implies --no-build) [TARGET_CONVOY]
  -h, --help          this text

Also: TARGET_SERVER_CPU=0, TARGET_GENERATOR_CPU=1, TARGET_THREADS=1 (runtime
threads of `convoy target`, all on the server CPU).

Results: a summary table on stdout, ci/bench/results/target-<UTC time>.txt
and .json, and the raw output of every run in ci/bench/results/target-<UTC time>/.
Exit status: 0 when it measured (met or MISSED), 1 when it could not.
EOF
}

ALL_WORKLOADS=health,orders
ROUNDS=${TARGET_ROUNDS:-3}
DURATION=${TARGET_DURATION:-10}
CONNECTIONS=${TARGET_CONNECTIONS:-50}
MAX_ORDERS=${TARGET_MAX_ORDERS:-}
WORKLOADS=${TARGET_WORKLOADS:-$ALL_WORKLOADS}
NO_BUILD=${TARGET_NO_BUILD:-0}
CONVOY_BIN=${TARGET_CONVOY:-}
SERVER_CPU=${TARGET_SERVER_CPU:-0}
GEN_CPU=${TARGET_GENERATOR_CPU:-1}
THREADS=${TARGET_THREADS:-1}
# Issue 3's floor for GET /health on one core; order creation is held to a
# tenth of it ("the same order of magnitude").
FLOOR_HEALTH=20000
FLOOR_ORDERS=2000
# The target's own default, for the report.
DEFAULT_MAX_ORDERS=100000

while (($#)); do
    case $1 in
    --rounds) ROUNDS=${2:?--rounds wants a value}; shift ;;
    --duration) DURATION=${2:?--duration wants a value}; DURATION=${DURATION%s}; shift ;;
    --connections) CONNECTIONS=${2:?--connections wants a value}; shift ;;
    --max-orders) MAX_ORDERS=${2:?--max-orders wants a value}; shift ;;
    --workloads) WORKLOADS=${2:?--workloads wants a value}; shift ;;
    --no-build) NO_BUILD=1 ;;
    --convoy) CONVOY_BIN=${2:?--convoy wants a path}; NO_BUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
positive_int --rounds "$ROUNDS"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds"
positive_int --connections "$CONNECTIONS"
[[ -z $MAX_ORDERS ]] || positive_int --max-orders "$MAX_ORDERS"
positive_int TARGET_THREADS "$THREADS"
IFS=, read -r -a workloads <<<"$WORKLOADS"
((${#workloads[@]})) || die "--workloads is empty"
for w in "${workloads[@]}"; do
    [[ ,$ALL_WORKLOADS, == *,$w,* ]] || die "unknown workload $w (known: $ALL_WORKLOADS)"
done

one_cpu_fallback "target and generator" "$NOT_COMPARABLE"
require_tools curl ss taskset python3
bench_scratch target
copy_convoy "$CONVOY_BIN" "$NO_BUILD" "$SCRATCH"
bench_run_dir target --runs

port=$(free_port 18580)
url=http://127.0.0.1:$port
target_args=(--threads "$THREADS")
[[ -n $MAX_ORDERS ]] && target_args+=(--max-orders "$MAX_ORDERS")
log "convoy target on CPU $SERVER_CPU port $port ($THREADS thread(s)${MAX_ORDERS:+, --max-orders $MAX_ORDERS}); generator on CPU $GEN_CPU"
start_target_with "$CONVOY" "$port" "$SERVER_CPU" "$RUN_DIR/target.log" "${target_args[@]}"
target_pid=$BENCH_LAST_PID
wait_http "$url/health"
kill -0 "$target_pid" 2>/dev/null ||
    die "convoy target exited: $(tail -3 "$RUN_DIR/target.log")"

# Orders are created as acme's admin.
token=$(admin_token "$url")
ORDER_BODY='{"reference":"PO-target-sh","weight_kg":120.5,"pickup":{"address":"Am Sandtorkai 1, Hamburg","lat":53.5436,"lon":9.9885},"dropoff":{"address":"Moenckebergstrasse 7, Hamburg","lat":53.5503,"lon":10.0006},"stops":[{"address":"Grosse Elbstrasse 39, Hamburg","lat":53.5451,"lon":9.9421}]}'
# One order by hand first: a body the target refuses would otherwise show up
# only as a run full of 422s.
code=$(curl -sS -o "$RUN_DIR/first-order.json" -w '%{http_code}' -H 'content-type: application/json' \
    -H "authorization: Bearer $token" -d "$ORDER_BODY" "$url/api/orders") || code=000
[[ $code == 201 ]] || die "POST /api/orders answered $code: $(head -c 300 "$RUN_DIR/first-order.json")"

# Fills CMD with the generator's command line for workload $1.
workload_cmd() {
    case $1 in
    health) CMD=("$CONVOY" bench "$url/health" -c "$CONNECTIONS" -d "${DURATION}s" -q --json) ;;
    orders) CMD=("$CONVOY" bench "$url/api/orders" -m POST -H 'Content-Type: application/json'
        -H "Authorization: Bearer $token" -b "$ORDER_BODY" -c "$CONNECTIONS" -d "${DURATION}s" -q --json) ;;
    esac
}

# Runs workload W for round R, timed and pinned, with the target's CPU over
# the same span, and appends its record to runs.jsonl.
measure() {
    local w=$1 round=$2 base=$RUN_DIR/$1-$2
    workload_cmd "$w"
    # The token is a secret of the target only, but keep it out of the
    # recorded command line all the same.
    run_measured "$base" "$target_pid" "convoy target (see $RUN_DIR/target.log)" "$token"
    python3 "$REPORT" record target convoy "$round" "$base.out" "$base.time" \
        "workload=$w" "target_cpu_s=$SERVER_CPU_S" \
        "target_rss_kib=$(vmrss_kib "$target_pid")" >>"$RUNS"
    log_last_run "round $round $w" rps target_cpu_s cpu_s_per_10k errors
}

log_estimate "${workloads[*]}" $((ROUNDS * ${#workloads[@]} * (DURATION + 1) + 4))

# Warm-up, not recorded: the first runs after a start are not typical.
taskset -c "$GEN_CPU" "$CONVOY" bench "$url/health" -c "$CONNECTIONS" -d 2s -q >/dev/null 2>&1 || true

for round in $(seq 1 "$ROUNDS"); do
    for w in "${workloads[@]}"; do
        measure "$w" "$round"
    done
done
target_hwm=$(vmhwm_kib "$target_pid")
stop_pid "$target_pid"

bench_summary target <<PY
import json, sys
from peers_report import fmt, median, read_runs, table, write_summary

run_dir, text_out, json_out = sys.argv[1:4]
meta = {
    "started_at": "$STAMP", "rounds": $ROUNDS, "duration_s": $DURATION,
    "connections": $CONNECTIONS, "server_cpu": $SERVER_CPU, "generator_cpu": $GEN_CPU,
    "target_threads": $THREADS, "cpus": $CPUS, "convoy_commit": "$CONVOY_DESC",
    "max_orders": ${MAX_ORDERS:-$DEFAULT_MAX_ORDERS},
    "max_orders_given": "${MAX_ORDERS:+yes}" == "yes",
    "target_peak_rss_kib": ${target_hwm:-0},
    "load_average_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
}
FLOORS = {"health": $FLOOR_HEALTH, "orders": $FLOOR_ORDERS}
WHAT = {
    "health": "GET /health",
    "orders": "POST /api/orders (201, a new order each)",
}
EXPECTED = {"health": "200", "orders": "201"}
runs = read_runs(run_dir)

for r in runs:
    r["expected"] = 0
    try:
        with open(f"{run_dir}/{r['workload']}-{r['round']}.out") as f:
            r["expected"] = json.load(f)["overall"].get("status_counts", {}).get(EXPECTED[r["workload"]], 0)
    except (OSError, ValueError, KeyError):
        pass
    cpu, n, wall = r.get("target_cpu_s"), r.get("responses"), r.get("elapsed_s")
    if cpu and n:
        r["target_cpu_s_per_10k"] = cpu / n * 10_000
        r["per_core_second"] = n / cpu
    if cpu is not None and wall:
        r["target_busy_pct"] = cpu / wall * 100
    if r.get("user_s") is not None and wall:
        r["generator_busy_pct"] = (r["user_s"] + r["sys_s"]) / wall * 100

out = [f"convoy reference target throughput  {meta['started_at']}  ({run_dir})",
       f"convoy {meta['convoy_commit']} | {meta['cpus']} CPUs, convoy target ({meta['target_threads']} "
       f"thread) on CPU {meta['server_cpu']}, convoy bench on CPU {meta['generator_cpu']}, "
       f"{meta['rounds']} rounds x {meta['duration_s']} s, -c {meta['connections']} (closed), "
       f"load average at end {meta['load_average_at_end']}"]
for r in runs:
    if r.get("exit", 0) != 0 or "parse_error" in r or r.get("errors") or not r.get("responses"):
        out.append(f"WARNING: {r['workload']} round {r['round']}: exit {r.get('exit')}, "
                   f"{r.get('errors', '?')} errors of {r.get('requests', '?')} requests "
                   f"{r.get('parse_error', '')}".rstrip())

summary = {"schema": "convoy.target-throughput/v1", "meta": meta, "workloads": {}}
rows, verdicts = [], []
for w in WHAT:
    rs = [r for r in runs if r["workload"] == w]
    if not rs:
        continue
    s = {
        "rps": median(r.get("rps") for r in rs),
        "per_round_rps": [r.get("rps") for r in rs],
        "target_cpu_s_per_10k": median(r.get("target_cpu_s_per_10k") for r in rs),
        "per_core_second": median(r.get("per_core_second") for r in rs),
        "target_busy_pct": median(r.get("target_busy_pct") for r in rs),
        "generator_busy_pct": median(r.get("generator_busy_pct") for r in rs),
        "generator_cpu_s_per_10k": median(r.get("cpu_s_per_10k") for r in rs),
        "p50_ms": median(r.get("p50_ms") for r in rs),
        "p99_ms": median(r.get("p99_ms") for r in rs),
        "expected_status_total": sum(r["expected"] for r in rs),
        "errors": sum(r.get("errors", 0) for r in rs),
        "floor_rps": FLOORS[w],
    }
    s["floor_met"] = s["rps"] is not None and s["rps"] >= FLOORS[w]
    summary["workloads"][w] = s
    rows.append([w, WHAT[w], fmt(s["rps"], ",.0f"), " ".join(fmt(x, ",.0f") for x in s["per_round_rps"]),
                 fmt(s["target_cpu_s_per_10k"], ".4f"), fmt(s["per_core_second"], ",.0f"),
                 fmt(s["target_busy_pct"], ".0f"), fmt(s["generator_busy_pct"], ".0f"),
                 fmt(s["p50_ms"], ".2f"), fmt(s["p99_ms"], ".2f"), s["errors"]])
    verdicts.append(f"{w}: {fmt(s['rps'], ',.0f')} rps against a floor of {FLOORS[w]:,}/s: "
                    f"{'met' if s['floor_met'] else 'MISSED'}"
                    f"  (on one whole core: {fmt(s['per_core_second'], ',.0f')}/s)")

headers = ["workload", "what", "rps", "per round", "target_cpu_s/10k", "per_core_s",
           "target_busy_%", "gen_busy_%", "p50_ms", "p99_ms", "errors"]
out += ["", "Reference target on one core (median of rounds, interleaved)"] + table(headers, rows)
out += [""] + verdicts
h, o = summary["workloads"].get("health"), summary["workloads"].get("orders")
if h and o and h["rps"] and o["rps"]:
    summary["health_over_orders_rps"] = h["rps"] / o["rps"]
    out.append(f"GET /health / order creation rps = {h['rps'] / o['rps']:.2f}")
if o:
    created = o["expected_status_total"] + 1  # and the one created by hand first
    cap = meta["max_orders"]
    summary["orders_created"] = created
    note = (f"orders created: {created:,} in tenant acme; the target keeps {cap:,} per tenant"
            f"{'' if meta['max_orders_given'] else ' (its default)'}")
    if created > cap:
        note += (f": the limit was reached, and each creation beyond it also forgot the oldest "
                 f"order ({created - cap:,} forgotten)")
    else:
        note += ": the limit was not reached"
    out.append(note)
out.append(f"target peak RSS: {meta['target_peak_rss_kib'] / 1024:.1f} MiB")

sys.stdout.write(write_summary(out, summary, text_out, json_out))
PY
