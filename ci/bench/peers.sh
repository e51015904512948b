#!/usr/bin/env bash
# Measures issue 2's figures for convoy side by side with oha and wrk, in one
# run, on this machine: CPU per 10k responses and rps, peak RSS, p50 accuracy,
# open-model rate accuracy, and memory per held connection.
#
# Everything runs on 127.0.0.1. Servers are pinned to one CPU and generators
# to another, comparisons are interleaved round by round, and medians are
# reported, because the machines this runs on are small and shared. See
# ci/bench/README.md for what each figure means.
#
# Usage: ci/bench/peers.sh [--rounds N] [--duration SECS] [--long [SECS]]
#                          [--sections cpu,accuracy,open,vus] [--vus N]
#                          [--no-oha-vus] [--no-build] [--convoy PATH]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"

usage() {
    cat <<'EOF'
Usage: ci/bench/peers.sh [options]

Measures convoy against oha and wrk on loopback (see ci/bench/README.md).

Options (each also settable by the environment variable shown):
  --rounds N          interleaved rounds per comparison       [PEERS_ROUNDS=3]
  --duration SECS     length of each measured run             [PEERS_DURATION=10]
  --long [SECS]       also measure convoy's peak RSS over a long run
                      (RSS flatness; adds SECS, default 60)   [PEERS_LONG=60]
  --sections LIST     subset of cpu,accuracy,open,vus         [PEERS_SECTIONS=all]
  --vus N             connections held for the memory figure  [PEERS_VUS=10000]
  --no-oha-vus        measure convoy only in the memory figure [PEERS_OHA_VUS=0]
  --no-build          use target/release/convoy as it is      [PEERS_NO_BUILD=1]
  --convoy PATH       use this convoy binary (implies --no-build) [PEERS_CONVOY]
  -h, --help          this text

Also: PEERS_SERVER_CPU=0, PEERS_GENERATOR_CPU=1, PEERS_CONNECTIONS=50,
PEERS_OHA_THREADS=1 (oha's --worker-threads; its default is one per physical
core, which would put two threads on the one pinned CPU).

Results: a summary table on stdout, ci/bench/results/peers-<UTC time>.txt and
.json, and the raw output of every run in ci/bench/results/peers-<UTC time>/.
EOF
}

ROUNDS=${PEERS_ROUNDS:-3}
DURATION=${PEERS_DURATION:-10}
LONG=${PEERS_LONG:-0}
SECTIONS=${PEERS_SECTIONS:-cpu,accuracy,open,vus}
VUS=${PEERS_VUS:-10000}
VUS_LOW=100
OHA_VUS=${PEERS_OHA_VUS:-1}
NO_BUILD=${PEERS_NO_BUILD:-0}
CONVOY_BIN=${PEERS_CONVOY:-}
SERVER_CPU=${PEERS_SERVER_CPU:-0}
GEN_CPU=${PEERS_GENERATOR_CPU:-1}
CONNECTIONS=${PEERS_CONNECTIONS:-50}
OHA_THREADS=${PEERS_OHA_THREADS:-1}
ACCURACY_LATENCY=20ms
OPEN_RATE=1000
OPEN_CONNECTIONS=200
# The memory figure holds every connection on a request the target answers
# only after 30 s, samples VmRSS at 8 s and ends the run at 10 s.
VU_TARGET_FAULT=latency=30s
VU_SAMPLE_AT=8
VU_RUN=10

while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=${2%s}; shift ;;
    --long)
        LONG=60
        if [[ ${2:-} =~ ^[0-9]+s?$ ]]; then LONG=${2%s}; shift; fi
        ;;
    --sections) SECTIONS=$2; shift ;;
    --vus) VUS=$2; shift ;;
    --no-oha-vus) OHA_VUS=0 ;;
    --no-build) NO_BUILD=1 ;;
    --convoy) CONVOY_BIN=$2; NO_BUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done
positive_int --rounds "$ROUNDS"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds"
[[ $LONG =~ ^[0-9]+$ ]] || die "--long wants whole seconds"
section_on() { [[ ,$SECTIONS, == *,$1,* || $SECTIONS == all ]]; }

one_cpu_fallback "server and generator" "$NOT_COMPARABLE"

ensure_tools
OHA=$(tool_path oha)
WRK=$(tool_path wrk)
raise_nofile 65536

bench_scratch peers

copy_convoy "$CONVOY_BIN" "$NO_BUILD" "$SCRATCH"
# Cargo judges freshness by file times; a target/ directory copied from
# elsewhere can hold a binary older than the sources it claims to match.
"$CONVOY" target --help 2>/dev/null | grep -q -- '--fault' ||
    die "${CONVOY_BIN:-target/release/convoy} has no 'target --fault': stale build? try: cargo clean --release -p convoy-load && cargo build --release"

bench_run_dir peers --runs

python3 "$REPORT" meta \
    "started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "convoy_commit=$CONVOY_DESC" \
    "oha_version=$("$OHA" --version | awk '{print $2}')" \
    "wrk_version=$("$WRK" -v 2>&1 | awk 'NR==1 {print $2}')" \
    "nginx_version=$("$(nginx_path)" -v 2>&1 | sed 's|.*nginx/||')" \
    "cpus=$CPUS" "server_cpu=$SERVER_CPU" "generator_cpu=$GEN_CPU" \
    "load_average=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "rounds=$ROUNDS" "duration_s=$DURATION" "connections=$CONNECTIONS" \
    "oha_threads=$OHA_THREADS" "open_connections=$OPEN_CONNECTIONS" \
    "accuracy_latency=$ACCURACY_LATENCY" "vu_target=$VU_TARGET_FAULT" \
    "vu_sample_at_s=$VU_SAMPLE_AT" "nofile=$(ulimit -n)" >"$RUN_DIR/meta.json"

estimate=0
section_on cpu && estimate=$((estimate + 3 * ROUNDS * (DURATION + 1) + LONG))
section_on accuracy && estimate=$((estimate + 3 * ROUNDS * (DURATION + 1)))
section_on open && estimate=$((estimate + DURATION + 2))
section_on vus && estimate=$((estimate + (1 + OHA_VUS) * 2 * (VU_RUN + 2)))
log_estimate "$SECTIONS" "$estimate"

# Fills CMD with the command line of generator $1 against URL $2 for $3 s.
generator_cmd() {
    local tool=$1 url=$2 secs=$3
    case $tool in
    convoy) CMD=("$CONVOY" bench "$url" -c "$CONNECTIONS" -d "${secs}s" -q --json) ;;
    oha) CMD=("$OHA" "$url" -z "${secs}s" -c "$CONNECTIONS" --no-tui --output-format json
        --worker-threads "$OHA_THREADS") ;;
    wrk) CMD=("$WRK" -t1 "-c$CONNECTIONS" "-d${secs}s" --latency "$url") ;;
    esac
}

# Runs generator TOOL for SECTION/ROUND against URL, timed and pinned, and
# appends its record to runs.jsonl. Extra KEY=VALUE pairs are recorded too.
measure() {
    local section=$1 tool=$2 round=$3 url=$4
    shift 4
    local base=$RUN_DIR/$section-$tool-$round
    generator_cmd "$tool" "$url" "$DURATION"
    run_measured "$base"
    python3 "$REPORT" record "$section" "$tool" "$round" "$base.out" "$base.time" "$@" >>"$RUNS"
    log_last_run "$section round $round $tool" rps cpu_s_per_10k p50_ms maxrss_kib
}

# --- 1 and 2: CPU per 10k responses, rps, peak RSS against nginx ------------
if section_on cpu; then
    port=$(free_port 18080)
    log "1. CPU per 10k responses: nginx on CPU $SERVER_CPU port $port, generators on CPU $GEN_CPU"
    start_nginx "$port" "$SERVER_CPU" "$SCRATCH"
    nginx_pid=$BENCH_LAST_PID
    url=http://127.0.0.1:$port/
    # Warm-up, not recorded: the first run after a start is not typical.
    taskset -c "$GEN_CPU" "$CONVOY" bench "$url" -c "$CONNECTIONS" -d 2s -q >/dev/null 2>&1 || true
    for round in $(seq 1 "$ROUNDS"); do
        for tool in convoy oha wrk; do
            measure cpu "$tool" "$round" "$url"
        done
    done
    if ((LONG > 0)); then
        log "2. convoy peak RSS over ${LONG} s"
        base=$RUN_DIR/rss_long-convoy-1
        CMD=("$CONVOY" bench "$url" -c "$CONNECTIONS" -d "${LONG}s" -q --json)
        run_measured "$base"
        python3 "$REPORT" record rss_long convoy 1 "$base.out" "$base.time" "duration_s_planned=$LONG" >>"$RUNS"
    fi
    stop_pid "$nginx_pid"
fi

# --- 3 and 4: accuracy and open model against a fixed-latency target -------
if section_on accuracy || section_on open; then
    port=$(free_port 18180)
    log "3/4. convoy target --fault latency=$ACCURACY_LATENCY on CPU $SERVER_CPU port $port"
    start_target "$CONVOY" "$port" "$SERVER_CPU" "$RUN_DIR/target-accuracy.log" "latency=$ACCURACY_LATENCY"
    target_pid=$BENCH_LAST_PID
    url=http://127.0.0.1:$port/health
    wait_http "$url"
    if section_on accuracy; then
        for round in $(seq 1 "$ROUNDS"); do
            for tool in convoy oha wrk; do
                measure accuracy "$tool" "$round" "$url"
            done
        done
    fi
    if section_on open; then
        base=$RUN_DIR/open-convoy-1
        CMD=("$CONVOY" bench "$url" --rate "$OPEN_RATE/s" -c "$OPEN_CONNECTIONS" -d "${DURATION}s" -q --json)
        run_measured "$base"
        python3 "$REPORT" record open convoy 1 "$base.out" "$base.time" "rate=$OPEN_RATE" "planned_duration_s=$DURATION" >>"$RUNS"
        log "  open model: $(tail -1 "$RUNS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("requests"), "requests in", r.get("duration_s"), "s, dropped", r.get("dropped"))')"
    fi
    stop_pid "$target_pid"
fi

# --- 5: memory per held connection ------------------------------------------
# Starts generator TOOL holding N connections against a fresh slow target,
# samples its VmRSS once they are established, and records the figure.
hold_connections() {
    local tool=$1 n=$2 port base gen_pid rss est
    port=$(free_port 18280)
    start_target "$CONVOY" "$port" "$SERVER_CPU" "$RUN_DIR/target-vus-$tool-$n.log" "$VU_TARGET_FAULT"
    local target_pid=$BENCH_LAST_PID
    local url=http://127.0.0.1:$port/health
    base=$RUN_DIR/vus-$tool-$n
    case $tool in
    convoy) CMD=("$CONVOY" bench "$url" -c "$n" -d "${VU_RUN}s" -t 60s -q --json) ;;
    oha) CMD=("$OHA" "$url" -c "$n" -z "${VU_RUN}s" --no-tui --output-format json
        --worker-threads "$OHA_THREADS") ;;
    esac
    printf '%q ' taskset -c "$GEN_CPU" "${CMD[@]}" >"$base.cmd"
    taskset -c "$GEN_CPU" "${CMD[@]}" >"$base.out" 2>"$base.err" &
    gen_pid=$!
    BENCH_PIDS+=("$gen_pid")
    sleep "$VU_SAMPLE_AT"
    rss=$(vmrss_kib "$gen_pid")
    est=$(established_to "$port")
    grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|Threads)' "/proc/$gen_pid/status" >"$base.status" 2>/dev/null || true
    wait "$gen_pid" || log "  $tool -c $n exited with $?"
    forget_pid "$gen_pid"
    python3 "$REPORT" record vus "$tool" 1 - - "connections=$n" "established=$est" "vmrss_kib=$rss" >>"$RUNS"
    log "  $tool -c $n: $est established, VmRSS $rss KiB"
    stop_pid "$target_pid"
}

if section_on vus; then
    log "5. memory per held connection: -c $VUS_LOW and -c $VUS against --fault $VU_TARGET_FAULT (open files: $(ulimit -n))"
    ((VUS + 100 < $(ulimit -n))) || log "  open-file limit $(ulimit -n) is too low for $VUS connections: expect failures"
    vu_tools=(convoy)
    ((OHA_VUS)) && vu_tools+=(oha)
    for tool in "${vu_tools[@]}"; do
        hold_connections "$tool" "$VUS_LOW"
        hold_connections "$tool" "$VUS"
    done
fi

python3 "$REPORT" summarise "$RUN_DIR" "$RESULTS/peers-$STAMP.txt" "$RESULTS/peers-$STAMP.json"
log "summary: $RESULTS/peers-$STAMP.txt and .json"
