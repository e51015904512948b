#!/usr/bin/env bash
# Issue 2 asked for the load engine "on tokio + reqwest (rustls; drop to
# hyper on the hot path only if the benchmark below shows reqwest is the
# bottleneck)". convoy's engine sends through hyper connections of its own
# (crates/convoy-core/src/engine/http.rs); this is the measurement behind that choice.
#
# ci/bench/reqwest-probe/ is `convoy bench` rebuilt on reqwest: the same
# closed model, the same worker layout (one current-thread runtime per CPU
# the process may use), each user looping GET, reading and dropping the body
# and recording its latency into an HdrHistogram. Both generators run in
# turn (convoy, reqwest-probe, convoy, ...) against one nginx worker pinned
# to CPU 0, each pinned to CPU 1 under /usr/bin/time, as in peers.sh. The
# figure is the generator's CPU seconds (user + sys) per 10,000 responses;
# the ratio convoy/reqwest below 1 means hyper as convoy uses it costs less
# CPU per response than reqwest. rps and peak RSS are printed beside it, and
# nginx's CPU over each run, to show which side was the limit.
#
# Usage: ci/bench/reqwest.sh [--rounds N] [--duration SECS] [--connections N]
#                            [--no-build] [--convoy PATH]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"
PROBE_DIR="$BENCH_HERE/reqwest-probe"

usage() {
    cat <<'EOF'
Usage: ci/bench/reqwest.sh [options]

CPU per response of `convoy bench` (hyper) against the same generator built
on reqwest (ci/bench/reqwest-probe), on one nginx worker (see ci/bench/README.md).

Options (each also settable by the environment variable shown):
  --rounds N          interleaved rounds                      [REQWEST_ROUNDS=3]
  --duration SECS     length of each measured run             [REQWEST_DURATION=10]
  --connections N     connections (users) of both generators  [REQWEST_CONNECTIONS=50]
  --no-build          use target/release/convoy and the probe as they are
                      (the probe is still built if it was never built) [REQWEST_NO_BUILD=1]
  --convoy PATH       use this convoy binary (implies --no-build for convoy) [REQWEST_CONVOY]
  -h, --help          this text

Also: REQWEST_SERVER_CPU=0, REQWEST_GENERATOR_CPU=1.

Results: a summary table on stdout, ci/bench/results/reqwest-<UTC time>.txt
and .json, and the raw output of every run in ci/bench/results/reqwest-<UTC time>/.
Exit status: 0 when it measured (whatever the figures), 1 when it could not.
EOF
}

ROUNDS=${REQWEST_ROUNDS:-3}
DURATION=${REQWEST_DURATION:-10}
CONNECTIONS=${REQWEST_CONNECTIONS:-50}
NO_BUILD=${REQWEST_NO_BUILD:-0}
CONVOY_BIN=${REQWEST_CONVOY:-}
SERVER_CPU=${REQWEST_SERVER_CPU:-0}
GEN_CPU=${REQWEST_GENERATOR_CPU:-1}

while (($#)); do
    case $1 in
    --rounds) ROUNDS=${2:?--rounds wants a value}; shift ;;
    --duration) DURATION=${2:?--duration wants a value}; DURATION=${DURATION%s}; shift ;;
    --connections) CONNECTIONS=${2:?--connections wants a value}; shift ;;
    --no-build) NO_BUILD=1 ;;
    --convoy) CONVOY_BIN=${2:?--convoy wants a path}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
positive_int --rounds "$ROUNDS"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds"
positive_int --connections "$CONNECTIONS"

one_cpu_fallback "server and generator" "$NOT_COMPARABLE"
missing=()
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx-light)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
require_tools curl ss taskset python3 cargo
bench_scratch reqwest

# --convoy skips only convoy's build; the probe is built unless --no-build.
convoy_no_build=$NO_BUILD
[[ -n $CONVOY_BIN ]] && convoy_no_build=1
copy_convoy "$CONVOY_BIN" "$convoy_no_build" "$SCRATCH"

# The probe has its own Cargo.lock and target directory (git-ignored): it is
# no part of convoy's build. --locked: the versions measured are the ones
# committed, which match convoy's own lock file for hyper, tokio and rustls.
probe_built=$PROBE_DIR/target/release/reqwest-probe
if [[ $NO_BUILD != 1 || ! -x $probe_built ]]; then
    log "building reqwest-probe (cargo build --release in ci/bench/reqwest-probe)"
    (cd "$PROBE_DIR" && cargo build --release --locked --quiet) >&2 ||
        die "building ci/bench/reqwest-probe failed"
fi
cp "$probe_built" "$SCRATCH/reqwest-probe"
PROBE=$SCRATCH/reqwest-probe
REQWEST_VERSION=$(awk '/^name = "reqwest"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$PROBE_DIR/Cargo.lock")
HYPER_VERSION=$(awk '/^name = "hyper"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$REPO/Cargo.lock")

bench_run_dir reqwest --runs

port=$(free_port 18080)
log "nginx (one worker) on CPU $SERVER_CPU port $port; generators on CPU $GEN_CPU"
start_nginx "$port" "$SERVER_CPU" "$RUN_DIR"
nginx_master=$BENCH_LAST_PID
url=http://127.0.0.1:$port/
# The worker is the master's only child (worker_processes 1): its CPU over a
# run shows whether nginx was the limit.
nginx_worker=$(tr ' ' '\n' <"/proc/$nginx_master/task/$nginx_master/children" | grep -m1 . || true)
[[ -n $nginx_worker ]] || die "no nginx worker under master $nginx_master"

# Fills CMD with tool $1's command line.
tool_cmd() {
    case $1 in
    convoy) CMD=("$CONVOY" bench "$url" -c "$CONNECTIONS" -d "${DURATION}s" -q --json) ;;
    reqwest) CMD=("$PROBE" "$url" -c "$CONNECTIONS" -d "$DURATION") ;;
    esac
}

# The probe's JSON as KEY=VALUE pairs for `peers_report.py record`, under the
# names its convoy parser uses; nothing when the output does not parse (the
# record then has no responses and the summary warns).
probe_fields() {
    python3 - "$1" <<'PY' || true
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print(f"parse_error={type(e).__name__}")
    sys.exit(0)
non2xx = sum(n for s, n in r["status_counts"].items() if not 200 <= int(s) < 300)
print(f"responses={r['responses']} errors={r['errors'] + non2xx} rps={r['rps']} "
      f"duration_s={r['duration_s']} p50_ms={r['latency_ms']['p50']} p99_ms={r['latency_ms']['p99']}")
PY
}

# Runs tool $1 for round $2, pinned and timed, with nginx's worker CPU over
# the same span, and appends its record to runs.jsonl.
measure() {
    local tool=$1 round=$2 base=$RUN_DIR/$1-$2 nginx_s
    tool_cmd "$tool"
    run_measured "$base" "$nginx_worker" "the nginx worker"
    nginx_s=$SERVER_CPU_S
    if [[ $tool == convoy ]]; then
        python3 "$REPORT" record reqwest convoy "$round" "$base.out" "$base.time" \
            "nginx_cpu_s=$nginx_s" >>"$RUNS"
    else
        # shellcheck disable=SC2046 # one KEY=VALUE word per field
        python3 "$REPORT" record reqwest reqwest "$round" - "$base.time" \
            "nginx_cpu_s=$nginx_s" $(probe_fields "$base.out") >>"$RUNS"
    fi
    log_last_run "round $round $tool" rps cpu_s_per_10k maxrss_kib nginx_cpu_s
}

log_estimate "convoy and reqwest-probe" $((ROUNDS * 2 * (DURATION + 1) + 6))

# Warm-up, not recorded: the first runs after a start are not typical.
taskset -c "$GEN_CPU" "$CONVOY" bench "$url" -c "$CONNECTIONS" -d 2s -q >/dev/null 2>&1 || true
taskset -c "$GEN_CPU" "$PROBE" "$url" -c "$CONNECTIONS" -d 2 >/dev/null 2>&1 || true

for round in $(seq 1 "$ROUNDS"); do
    measure convoy "$round"
    measure reqwest "$round"
done
stop_pid "$nginx_master"

bench_summary reqwest <<PY
import json, sys
from peers_report import fmt, median, read_runs, table, write_summary

run_dir, text_out, json_out = sys.argv[1:4]
meta = {
    "started_at": "$STAMP", "rounds": $ROUNDS, "duration_s": $DURATION,
    "connections": $CONNECTIONS, "server_cpu": $SERVER_CPU, "generator_cpu": $GEN_CPU,
    "cpus": $CPUS, "convoy_commit": "$CONVOY_DESC", "reqwest": "$REQWEST_VERSION",
    "hyper": "$HYPER_VERSION", "load_average_at_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
}
WHAT = {
    "convoy": f"convoy bench (hyper {meta['hyper']} connections of its own)",
    "reqwest": f"reqwest-probe (reqwest {meta['reqwest']}, one Client per worker)",
}
runs = read_runs(run_dir)
for r in runs:
    if r.get("nginx_cpu_s") is not None and r.get("elapsed_s"):
        r["nginx_busy_pct"] = r["nginx_cpu_s"] / r["elapsed_s"] * 100

out = [f"convoy vs reqwest CPU benchmark  {meta['started_at']}  ({run_dir})",
       f"convoy {meta['convoy_commit']} | {meta['cpus']} CPUs, nginx (1 worker) on CPU "
       f"{meta['server_cpu']}, generators on CPU {meta['generator_cpu']}, {meta['rounds']} rounds x "
       f"{meta['duration_s']} s, {meta['connections']} connections (closed), "
       f"load average at end {meta['load_average_at_end']}"]
for r in runs:
    if r.get("exit", 0) != 0 or "parse_error" in r or r.get("errors") or not r.get("responses"):
        out.append(f"WARNING: {r['tool']} round {r['round']}: exit {r.get('exit')}, "
                   f"{r.get('errors', '?')} errors, {r.get('responses', 0)} responses "
                   f"{r.get('parse_error', '')}".rstrip())

summary = {"schema": "convoy.reqwest-cpu/v1", "meta": meta, "tools": {}}
rows = []
for tool in WHAT:
    rs = [r for r in runs if r["tool"] == tool]
    s = {
        "cpu_s_per_10k": median(r.get("cpu_s_per_10k") for r in rs),
        "per_round": [r.get("cpu_s_per_10k") for r in rs],
        "rps": median(r.get("rps") for r in rs),
        "responses": median(r.get("responses") for r in rs),
        "errors": sum(r.get("errors", 0) for r in rs),
        "peak_rss_kib": median(r.get("maxrss_kib") for r in rs),
        "p50_ms": median(r.get("p50_ms") for r in rs),
        "nginx_busy_pct": median(r.get("nginx_busy_pct") for r in rs),
    }
    summary["tools"][tool] = s
    rows.append([tool, WHAT[tool], fmt(s["cpu_s_per_10k"], ".4f"), " ".join(fmt(x, ".4f") for x in s["per_round"]),
                 fmt(s["rps"], ",.0f"), fmt(s["p50_ms"], ".3f"),
                 fmt(s["peak_rss_kib"] / 1024 if s["peak_rss_kib"] else None, ".1f"),
                 fmt(s["nginx_busy_pct"], ".0f"), s["errors"]])

headers = ["tool", "what", "cpu_s/10k", "per round", "rps", "p50_ms", "peak_rss_MiB",
           "nginx_busy_%", "errors"]
out += ["", "Generator CPU seconds (user+sys) per 10,000 responses (median of rounds, interleaved)"]
out += table(headers, rows)

c, q = summary["tools"]["convoy"], summary["tools"]["reqwest"]
ratios = {}
if c["cpu_s_per_10k"] and q["cpu_s_per_10k"]:
    value = c["cpu_s_per_10k"] / q["cpu_s_per_10k"]
    paired = [a / b for a, b in zip(c["per_round"], q["per_round"]) if a and b]
    ratios["convoy_over_reqwest"] = {"ratio": value, "per_round": paired}
    out += ["", f"convoy / reqwest CPU per response = {value:.2f}  "
                f"(per round {' '.join(f'{p:.2f}' for p in paired)}; below 1: hyper as convoy "
                f"uses it costs less)"]
    if c["rps"] and q["rps"]:
        rps = c["rps"] / q["rps"]
        ratios["convoy_over_reqwest_rps"] = rps
        out.append(f"convoy / reqwest rps = {rps:.2f}")
    if c["peak_rss_kib"] and q["peak_rss_kib"]:
        rss = c["peak_rss_kib"] / q["peak_rss_kib"]
        ratios["convoy_over_reqwest_peak_rss"] = rss
        out.append(f"convoy / reqwest peak RSS = {rss:.2f}")
summary["ratios"] = ratios

sys.stdout.write(write_summary(out, summary, text_out, json_out))
PY
