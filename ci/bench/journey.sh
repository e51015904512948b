#!/usr/bin/env bash
# Issue 4's figure: "a five-step journey with JSON captures costs at most
# 2 x the CPU per request of `convoy bench` on the same target".
#
# One `convoy target` (release build, pinned to one CPU) serves every run;
# the generator runs pinned to the other CPU under /usr/bin/time. Rounds are
# interleaved (bench, ..., journey, bench, ..., journey, ...) and medians are
# compared, as in peers.sh. Workloads:
#
#   bench_health  convoy bench GET /health -c 50
#   bench_order   convoy bench GET /api/orders/{id} with a bearer token -c 50
#                 (a JSON body and a token check on the target, like a step)
#   run_health    convoy run health, 50 users (the scenario runner on the
#                 same request as bench_health: templates, checks)
#   journey       convoy run order-lifecycle, 50 users (five steps with JSON
#                 bodies, captures and checks; two logins per user)
#
# A generator's CPU per request depends on how fast the target answers: the
# slower the answers, the fewer responses each wake-up of the generator
# handles (the same `convoy bench GET /health` costs half as much again per
# request against a target that answers in 3 ms as against one that answers
# at once). Flat out, the journey's requests cost the target three times what
# /health does, so it runs at half the rate. --target-latency 5ms makes the
# target answer every request after 5 ms, so that every workload runs at
# about the same rate and the comparison is of the generators' own work.
#
# The figure is CPU seconds (user + sys) of the generator process per 10,000
# responses; the ratios journey/bench_health (the issue's figure) and
# journey/bench_order are printed with the goal. See ci/bench/README.md.
#
# Usage: ci/bench/journey.sh [--rounds N] [--duration SECS] [--users N]
#                            [--target-latency DUR] [--workloads LIST]
#                            [--no-build] [--convoy PATH]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"

usage() {
    cat <<'EOF'
Usage: ci/bench/journey.sh [options]

CPU per request of a five-step journey against `convoy bench`, on one
reference target (see ci/bench/README.md).

Options (each also settable by the environment variable shown):
  --rounds N          interleaved rounds                      [JOURNEY_ROUNDS=3]
  --duration SECS     length of each measured run             [JOURNEY_DURATION=10]
  --users N           connections of the benches, users of the runs [JOURNEY_USERS=50]
  --target-latency DUR  the target answers every request after DUR (e.g. 5ms),
                      so that all workloads run at the same rate [JOURNEY_TARGET_LATENCY]
  --workloads LIST    subset of bench_health,bench_order,run_health,journey
                                                              [JOURNEY_WORKLOADS=all]
  --no-build          use target/release/convoy as it is      [JOURNEY_NO_BUILD=1]
  --convoy PATH       use this convoy binary (implies --no-build) [JOURNEY_CONVOY]
  -h, --help          this text

Also: JOURNEY_SERVER_CPU=0, JOURNEY_GENERATOR_CPU=1, JOURNEY_TARGET_THREADS=1
(worker threads of `convoy target`, all pinned to the server CPU).

Results: a summary table on stdout, ci/bench/results/journey-<UTC time>.txt
and .json, and the raw output of every run in ci/bench/results/journey-<UTC time>/.
EOF
}

ALL_WORKLOADS=bench_health,bench_order,run_health,journey
ROUNDS=${JOURNEY_ROUNDS:-3}
DURATION=${JOURNEY_DURATION:-10}
USERS=${JOURNEY_USERS:-50}
WORKLOADS=${JOURNEY_WORKLOADS:-$ALL_WORKLOADS}
NO_BUILD=${JOURNEY_NO_BUILD:-0}
CONVOY_BIN=${JOURNEY_CONVOY:-}
SERVER_CPU=${JOURNEY_SERVER_CPU:-0}
GEN_CPU=${JOURNEY_GENERATOR_CPU:-1}
TARGET_THREADS=${JOURNEY_TARGET_THREADS:-1}
TARGET_LATENCY=${JOURNEY_TARGET_LATENCY:-}
# The goal of issue 4.
GOAL_RATIO=2

while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=${2%s}; shift ;;
    --users) USERS=$2; shift ;;
    --target-latency) TARGET_LATENCY=$2; shift ;;
    --workloads) WORKLOADS=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    --convoy) CONVOY_BIN=$2; NO_BUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
positive_int --rounds "$ROUNDS"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds"
positive_int --users "$USERS"
positive_int JOURNEY_TARGET_THREADS "$TARGET_THREADS"
[[ -z $TARGET_LATENCY || $TARGET_LATENCY =~ ^[0-9]+(us|ms|s)$ ]] || die "--target-latency wants a duration such as 5ms"
[[ $WORKLOADS == all ]] && WORKLOADS=$ALL_WORKLOADS
IFS=, read -r -a workloads <<<"$WORKLOADS"
for w in "${workloads[@]}"; do
    [[ ,$ALL_WORKLOADS, == *,$w,* ]] || die "unknown workload $w (known: $ALL_WORKLOADS)"
done

one_cpu_fallback "target and generator" "$NOT_COMPARABLE"
require_tools curl ss taskset python3
bench_scratch journey
copy_convoy "$CONVOY_BIN" "$NO_BUILD" "$SCRATCH"

bench_run_dir journey --runs

# All the target's runtime threads run on the server CPU.
port=$(free_port 18480)
log "convoy target on CPU $SERVER_CPU port $port ($TARGET_THREADS thread(s)${TARGET_LATENCY:+, latency $TARGET_LATENCY}); generator on CPU $GEN_CPU"
target_args=(--threads "$TARGET_THREADS")
[[ -n $TARGET_LATENCY ]] && target_args+=(--fault "latency=$TARGET_LATENCY")
start_target_with "$CONVOY" "$port" "$SERVER_CPU" "$RUN_DIR/target.log" "${target_args[@]}"
target_pid=$BENCH_LAST_PID
url=http://127.0.0.1:$port
wait_http "$url/health"

# bench_order reads one order as its admin, like the journey's steps do. The
# order is created afresh before each bench_order run: the in-memory target
# keeps the newest 100,000 orders per tenant, and the journey runs create
# more than that, so an order made once would be gone by a later round.
order_url='' token=''
fresh_order() {
    local order_id
    order_id=$(curl -fsS -H 'content-type: application/json' -H "authorization: Bearer $token" \
        -d '{"reference":"PO-journey-sh","weight_kg":120.5,"pickup":{"address":"Am Sandtorkai 1, Hamburg","lat":53.5436,"lon":9.9885},"dropoff":{"address":"Moenckebergstrasse 7, Hamburg","lat":53.5503,"lon":10.0006}}' \
        "$url/api/orders" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
        die "creating the order for bench_order failed"
    order_url=$url/api/orders/$order_id
    curl -fsS -o /dev/null -H "authorization: Bearer $token" "$order_url" ||
        die "GET $order_url with the admin's token failed"
}
if [[ ,$WORKLOADS, == *,bench_order,* ]]; then
    token=$(admin_token "$url")
    fresh_order
fi

# Closed profiles for the runs: USERS users looping for DURATION seconds.
profiles() {
    printf '# Written by ci/bench/journey.sh.\n[profile.cpu]\nusers = %s\nduration = "%ss"\n' "$USERS" "$1"
}
profiles "$DURATION" >"$RUN_DIR/profiles.toml"
profiles 2 >"$SCRATCH/warmup.toml"

# Fills CMD with the generator's command line for workload $1.
workload_cmd() {
    case $1 in
    bench_health) CMD=("$CONVOY" bench "$url/health" -c "$USERS" -d "${DURATION}s" -q --json) ;;
    # The token is a secret of the target only, but keep it out of the
    # recorded command line all the same.
    bench_order)
        fresh_order
        CMD=("$CONVOY" bench "$order_url" -H "Authorization: Bearer $token" -c "$USERS"
        -d "${DURATION}s" -q --json) ;;
    run_health) CMD=("$CONVOY" run health --target "$url" --profiles "$RUN_DIR/profiles.toml"
        --profile cpu --json --no-reports -q) ;;
    journey) CMD=("$CONVOY" run order-lifecycle --target "$url" --profiles "$RUN_DIR/profiles.toml"
        --profile cpu --json --no-reports -q) ;;
    esac
}

# Runs workload W for round R, timed and pinned, with the target's CPU over
# the same span, and appends its record to runs.jsonl.
measure() {
    local w=$1 round=$2 base=$RUN_DIR/$1-$2
    workload_cmd "$w"
    run_measured "$base" "$target_pid" "convoy target (see $RUN_DIR/target.log)" "$token"
    python3 "$REPORT" record journey convoy "$round" "$base.out" "$base.time" \
        "workload=$w" "target_cpu_s=$SERVER_CPU_S" >>"$RUNS"
    log_last_run "round $round $w" rps cpu_s_per_10k target_cpu_s
}

log_estimate "${workloads[*]}" $((ROUNDS * ${#workloads[@]} * (DURATION + 1) + 6))

# Warm-up, not recorded: the first runs after a start are not typical.
taskset -c "$GEN_CPU" "$CONVOY" bench "$url/health" -c "$USERS" -d 2s -q >/dev/null 2>&1 || true
if [[ ,$WORKLOADS, == *,journey,* ]]; then
    taskset -c "$GEN_CPU" "$CONVOY" run order-lifecycle --target "$url" --profiles "$SCRATCH/warmup.toml" \
        --profile cpu --no-reports -q >/dev/null 2>&1 || true
fi

for round in $(seq 1 "$ROUNDS"); do
    for w in "${workloads[@]}"; do
        measure "$w" "$round"
    done
done
stop_pid "$target_pid"

bench_summary journey <<PY
import json, sys
from peers_report import fmt, median, read_runs, table, write_summary

run_dir, text_out, json_out = sys.argv[1:4]
meta = {
    "started_at": "$STAMP", "rounds": $ROUNDS, "duration_s": $DURATION, "users": $USERS,
    "server_cpu": $SERVER_CPU, "generator_cpu": $GEN_CPU, "target_threads": $TARGET_THREADS,
    "goal_ratio": $GOAL_RATIO, "cpus": $CPUS, "target_latency": "${TARGET_LATENCY:-none}",
    "convoy_commit": "$CONVOY_DESC",
    "load_average_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
}
WHAT = {
    "bench_health": "convoy bench GET /health",
    "bench_order": "convoy bench GET /api/orders/{id}, bearer token",
    "run_health": "convoy run health",
    "journey": "convoy run order-lifecycle (5 steps + 2 logins/user)",
}
runs = read_runs(run_dir)

# Journeys per second come from the journey's own metric in the report.
for r in runs:
    r["journeys_per_s"] = None
    if r["workload"] in ("run_health", "journey"):
        try:
            with open(f"{run_dir}/{r['workload']}-{r['round']}.out") as f:
                steps = json.load(f).get("steps", [])
            j = [s for s in steps if s.get("kind") == "journey"]
            r["journeys_per_s"] = j[0]["rps"] if j else None
        except (OSError, ValueError):
            pass
    if r.get("target_cpu_s") is not None and r.get("responses"):
        r["target_cpu_s_per_10k"] = r["target_cpu_s"] / r["responses"] * 10_000
        r["target_busy_pct"] = r["target_cpu_s"] / r["elapsed_s"] * 100 if r.get("elapsed_s") else None

out = [f"convoy journey CPU benchmark  {meta['started_at']}  ({run_dir})",
       f"convoy {meta['convoy_commit']} | {meta['cpus']} CPUs, convoy target ({meta['target_threads']} thread) "
       f"on CPU {meta['server_cpu']}, target latency {meta['target_latency']}, "
       f"generator on CPU {meta['generator_cpu']}, {meta['rounds']} rounds x "
       f"{meta['duration_s']} s, -c {meta['users']} / {meta['users']} users (closed)"]
for r in runs:
    if r.get("exit", 0) != 0 or "parse_error" in r or r.get("errors"):
        out.append(f"WARNING: {r['workload']} round {r['round']}: exit {r.get('exit')}, "
                   f"{r.get('errors', '?')} errors {r.get('parse_error', '')}".rstrip())

summary = {"schema": "convoy.journey-cpu/v1", "meta": meta, "workloads": {}}
rows = []
for w in WHAT:
    rs = [r for r in runs if r["workload"] == w]
    if not rs:
        continue
    s = {
        "cpu_s_per_10k": median(r.get("cpu_s_per_10k") for r in rs),
        "per_round": [r.get("cpu_s_per_10k") for r in rs],
        "rps": median(r.get("rps") for r in rs),
        "journeys_per_s": median(r.get("journeys_per_s") for r in rs),
        "responses": median(r.get("responses") for r in rs),
        "errors": sum(r.get("errors", 0) for r in rs),
        "target_cpu_s_per_10k": median(r.get("target_cpu_s_per_10k") for r in rs),
        "target_busy_pct": median(r.get("target_busy_pct") for r in rs),
        "peak_rss_kib": median(r.get("maxrss_kib") for r in rs),
    }
    summary["workloads"][w] = s
    rows.append([w, WHAT[w], fmt(s["cpu_s_per_10k"], ".4f"), " ".join(fmt(x, ".4f") for x in s["per_round"]),
                 fmt(s["rps"], ",.0f"), fmt(s["journeys_per_s"], ",.0f"),
                 fmt(s["target_cpu_s_per_10k"], ".4f"), fmt(s["target_busy_pct"], ".0f"),
                 fmt(s["peak_rss_kib"] / 1024 if s["peak_rss_kib"] else None, ".1f"), s["errors"]])

headers = ["workload", "what", "cpu_s/10k", "per round", "rps", "journeys/s",
           "target_cpu_s/10k", "target_busy_%", "peak_rss_MiB", "errors"]
out += ["", "Generator CPU seconds (user+sys) per 10,000 responses (median of rounds, interleaved)"]
out += table(headers, rows)

# Ratios: of the medians, and per round (each round's runs were seconds apart).
ratios = {}
def ratio(num, den, label, goal=None):
    a, b = summary["workloads"].get(num), summary["workloads"].get(den)
    if not a or not b or not b["cpu_s_per_10k"]:
        return
    value = a["cpu_s_per_10k"] / b["cpu_s_per_10k"]
    paired = [x / y for x, y in zip(a["per_round"], b["per_round"]) if x and y]
    ok = None if goal is None else value <= goal
    ratios[f"{num}_over_{den}"] = {"ratio": value, "per_round": paired, "goal": goal, "goal_met": ok}
    text = f"{label} = {value:.2f}  (per round {' '.join(f'{p:.2f}' for p in paired)})"
    if goal is not None:
        text += f"  goal <= {goal}: {'met' if ok else 'MISSED'}"
    out.append(text)

out.append("")
ratio("journey", "bench_health", "journey / bench_health (issue 4's figure)", meta["goal_ratio"])
ratio("journey", "bench_order", "journey / bench_order (same per-request work on the target)", meta["goal_ratio"])
ratio("run_health", "bench_health", "run_health / bench_health (scenario runner, one step)")
ratio("journey", "run_health", "journey / run_health (five steps with JSON bodies and captures)")
summary["ratios"] = ratios

sys.stdout.write(write_summary(out, summary, text_out, json_out))
PY
