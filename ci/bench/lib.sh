# shellcheck shell=bash
# Helpers shared by the benchmark scripts of ci/bench: logging, installing
# the peers, starting and stopping loopback servers, timing a pinned process.
#
# Sourced, not run. Every server started here is recorded in BENCH_PIDS so
# that bench_cleanup (installed as an EXIT trap by the caller) stops exactly
# the processes this script started, and nothing else.

# The repository ($BENCH_HERE, set by the caller, is its ci/bench) and the
# parser of every run's output (`record`, see peers_report.py).
REPO=$(cd "$BENCH_HERE/../.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
REPORT=$BENCH_HERE/peers_report.py

BENCH_PIDS=()
# Set by start_nginx and start_target; read by the caller.
export BENCH_LAST_PID=

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Dies unless VALUE ($2) is a positive integer, naming OPTION ($1).
positive_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 wants a positive integer"; }

# Sets CPUS to the machine's CPU count; on a one-CPU machine moves the
# server and the generator both to CPU 0 (SERVER_CPU and GEN_CPU), saying
# so with WHO ($1, e.g. "target and generator") and NOTE ($2, appended).
one_cpu_fallback() {
    CPUS=$(nproc --all)
    if ((CPUS < 2)); then
        log "only $CPUS CPU: $1 will share CPU 0${2:-}"
        # shellcheck disable=SC2034 # the caller's
        SERVER_CPU=0 GEN_CPU=0
    fi
}
# The note of the throughput benchmarks, whose figures depend on it.
# shellcheck disable=SC2034 # used by the scripts that source this file
NOT_COMPARABLE=" (figures are not comparable with 2-CPU runs)"

# Installs /usr/bin/time when it is missing and dies unless every other
# tool named is on PATH.
require_tools() {
    [[ -x /usr/bin/time ]] || apt_install time
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
}

# Makes SCRATCH, a private directory for NAME's run ($1), and installs the
# traps that stop this script's servers and delete it on exit.
bench_scratch() {
    SCRATCH=$(mktemp -d -t "convoy-$1.XXXXXX")
    trap 'bench_cleanup; rm -rf "$SCRATCH"' EXIT
    trap 'exit 130' INT TERM
}

# Sets STAMP (UTC now), RESULTS (ci/bench/results) and RUN_DIR
# (RESULTS/NAME-STAMP, created) for benchmark NAME ($1); with --runs also
# RUNS, an empty RUN_DIR/runs.jsonl for `peers_report.py record` lines.
bench_run_dir() {
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    RESULTS=$BENCH_HERE/results
    RUN_DIR=$RESULTS/$1-$STAMP
    mkdir -p "$RUN_DIR"
    if [[ ${2:-} == --runs ]]; then
        RUNS=$RUN_DIR/runs.jsonl
        : >"$RUNS"
    fi
}

# Runs the Python summary on stdin with RUN_DIR, RESULTS/NAME-STAMP.txt and
# RESULTS/NAME-STAMP.json as its arguments (NAME is $1) and peers_report.py
# importable (without a __pycache__ in ci/bench), then says where the
# summary went. Returns the summary's exit status.
bench_summary() {
    local status=0
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$BENCH_HERE${PYTHONPATH:+:$PYTHONPATH} \
        python3 - "$RUN_DIR" "$RESULTS/$1-$STAMP.txt" "$RESULTS/$1-$STAMP.json" || status=$?
    log "summary: $RESULTS/$1-$STAMP.txt and .json"
    return "$status"
}

# Says what is measured ($1) and for about how long ($2 seconds).
log_estimate() {
    log "measuring $1 for about $(($2 / 60)) min $(($2 % 60)) s; raw output in $RUN_DIR"
}

# Logs LABEL ($1) and the numeric fields KEYS (the rest) of the last record
# in RUNS, the whole record when it has none of them.
log_last_run() {
    local label=$1
    shift
    log "  $label: $(tail -1 "$RUNS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(", ".join(f"{k}={r[k]:.4g}" for k in sys.argv[1:] if isinstance(r.get(k),(int,float))) or r)' "$@")"
}

# B - A ($2 - $1) with two decimals: CPU seconds between two readings of
# proc_cpu_seconds (an empty reading counts as 0).
cpu_delta() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { printf "%.2f", b - a }'; }

# A bearer token of acme's admin from the reference target at URL ($1).
# Admin may create orders; the token lives an hour, longer than any run.
admin_token() {
    curl -fsS -H 'content-type: application/json' \
        -d '{"email":"admin@acme.test","password":"convoy-demo"}' "$1/api/auth/login" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' ||
        die "logging in as admin@acme.test failed"
}

# Installs the Debian packages named, once per script run.
BENCH_APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    if [[ $BENCH_APT_UPDATED == 0 ]]; then
        apt-get update -qq >&2
        BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Makes sure every tool the peer benchmark needs is on the machine.
ensure_tools() {
    local missing=()
    [[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v ss >/dev/null || missing+=(iproute2)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
    if ! command -v oha >/dev/null && [[ ! -x $HOME/.cargo/bin/oha ]]; then
        log "installing oha (cargo install oha --locked; takes a few minutes)"
        cargo install oha --locked >&2
    fi
}

# Path of a tool, preferring PATH and falling back to cargo's bin directory.
tool_path() {
    command -v "$1" 2>/dev/null || { [[ -x $HOME/.cargo/bin/$1 ]] && echo "$HOME/.cargo/bin/$1"; } ||
        die "$1 not found"
}

nginx_path() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

# True when nothing listens on 127.0.0.1:PORT.
port_free() { [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# Prints the first free port from $1 upwards.
free_port() {
    local p=$1
    while ! port_free "$p"; do p=$((p + 1)); done
    echo "$p"
}

# Waits until URL answers, at most 10 s.
wait_http() {
    local url=$1 i
    for i in $(seq 1 100); do
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$url did not answer within 10 s"
}

# Starts nginx from ci/bench/nginx.conf on PORT, pinned to CPU, in its own
# prefix directory under DIR. Sets BENCH_LAST_PID to the master's PID (a
# global rather than output: a command substitution would run this in a
# subshell and lose the PID from BENCH_PIDS).
start_nginx() {
    local port=$1 cpu=$2 dir=$3/nginx
    mkdir -p "$dir/tmp"
    sed "s/127\.0\.0\.1:18080/127.0.0.1:$port/" "$BENCH_HERE/nginx.conf" >"$dir/nginx.conf"
    taskset -c "$cpu" "$(nginx_path)" -p "$dir" -c "$dir/nginx.conf" -e stderr \
        >"$dir/stdout.log" 2>"$dir/stderr.log" &
    local pid=$!
    BENCH_PIDS+=("$pid")
    BENCH_LAST_PID=$pid
    wait_http "http://127.0.0.1:$port/"
}

# Sets CONVOY to a private copy of the convoy binary in directory $3, so
# that a rebuild by someone else during the run cannot swap it, and
# CONVOY_DESC to what is measured as of now: the work tree's commit, and
# whether the binary was built from it here. $1 is a binary given with
# --convoy, or empty for target/release/convoy of $REPO, built first unless
# $2 is 1.
copy_convoy() {
    local bin=$1 no_build=$2 scratch=$3
    local built=$REPO/target/release/convoy
    if [[ -z $bin ]]; then
        if [[ $no_build != 1 ]]; then
            log "building convoy (cargo build --release)"
            (cd "$REPO" && cargo build --release --quiet) >&2
        fi
        bin=$built
    fi
    [[ -x $bin ]] || die "$bin not found: run cargo build --release"
    cp "$bin" "$scratch/convoy"
    # shellcheck disable=SC2034 # CONVOY and CONVOY_DESC are the caller's.
    CONVOY=$scratch/convoy
    CONVOY_DESC=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
    if [[ $bin != "$built" ]]; then
        CONVOY_DESC="binary $bin (work tree at $CONVOY_DESC)"
    elif [[ $no_build == 1 ]]; then
        CONVOY_DESC="$CONVOY_DESC (target/release/convoy, not rebuilt)"
    fi
}

# Starts `convoy target` on PORT pinned to CPU with one runtime thread and
# the faults given after the fourth argument. Sets BENCH_LAST_PID.
start_target() {
    local convoy=$1 port=$2 cpu=$3 log=$4
    shift 4
    local faults=()
    local f
    for f in "$@"; do faults+=(--fault "$f"); done
    start_target_with "$convoy" "$port" "$cpu" "$log" --threads 1 ${faults[@]+"${faults[@]}"}
}

# start_target with the arguments after the fourth passed to `convoy target`
# as they are (--threads, --max-orders, --fault ...). Sets BENCH_LAST_PID.
start_target_with() {
    local convoy=$1 port=$2 cpu=$3 log=$4
    shift 4
    taskset -c "$cpu" "$convoy" target --addr "127.0.0.1:$port" "$@" \
        >"$log" 2>&1 &
    local pid=$!
    BENCH_PIDS+=("$pid")
    BENCH_LAST_PID=$pid
    # /health answers after the injected latency; a 30 s latency would make
    # the readiness probe itself slow, so probe the port instead.
    local i
    for i in $(seq 1 100); do
        port_free "$port" || return 0
        kill -0 "$pid" 2>/dev/null || die "convoy target exited early: $(tail -3 "$log")"
        sleep 0.1
    done
    die "convoy target did not listen on $port within 10 s"
}

# Drops PID from BENCH_PIDS once it has been reaped, so that the EXIT trap
# never signals a recycled PID that now belongs to someone else.
forget_pid() {
    local pid keep=()
    for pid in "${BENCH_PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    BENCH_PIDS=("${keep[@]}")
}

# Stops one process started by this script: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
    local pid=$1 i
    forget_pid "$pid"
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}

# Stops every server this script started (EXIT trap).
bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
}

# Runs a command pinned to CPU under /usr/bin/time. Stdout goes to OUT,
# stderr to ERR, and "user sys maxrss_kb elapsed exit" to TIMEFILE. A
# failing generator is recorded, not fatal: the summary reports it.
run_timed() {
    local cpu=$1 out=$2 err=$3 timefile=$4
    shift 4
    /usr/bin/time -f '%U %S %M %e %x' -o "$timefile" taskset -c "$cpu" "$@" >"$out" 2>"$err" || true
}

# Runs the command in the array CMD pinned to GEN_CPU under /usr/bin/time
# (run_timed), its command line, output and timing in BASE ($1).cmd, .out,
# .err and .time. With a server PID ($2), sets SERVER_CPU_S to the CPU
# seconds it spent meanwhile, or dies when it died, naming WHAT ($3). A
# SECRET ($4) on the command line is kept out of BASE.cmd.
run_measured() {
    local base=$1 pid=${2:-} what=${3:-} secret=${4:-} c0 c1
    if [[ -n $secret ]]; then
        printf '%q ' taskset -c "$GEN_CPU" "${CMD[@]}" | sed "s/$secret/<token>/" >"$base.cmd"
    else
        printf '%q ' taskset -c "$GEN_CPU" "${CMD[@]}" >"$base.cmd"
    fi
    [[ -z $pid ]] || c0=$(proc_cpu_seconds "$pid")
    run_timed "$GEN_CPU" "$base.out" "$base.err" "$base.time" "${CMD[@]}"
    [[ -n $pid ]] || return 0
    c1=$(proc_cpu_seconds "$pid")
    [[ -n $c1 ]] || die "$what died during $base"
    # shellcheck disable=SC2034 # the caller's
    SERVER_CPU_S=$(cpu_delta "$c0" "$c1")
}

# Resident set size of PID in KiB, from /proc.
vmrss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Established TCP connections to 127.0.0.1:PORT.
established_to() { ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l; }

# Raises the open-file limit as far as allowed (10k connections need 10k
# descriptors in the generator and as many in the target).
raise_nofile() {
    local want=$1 hard
    ulimit -n "$want" 2>/dev/null && return 0
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want
    ulimit -n "$hard"
    log "open-file limit is $hard (could not raise it to $want)"
}

# user+system CPU seconds of PID so far, from fields 14 and 15 of
# /proc/PID/stat (counted after the parenthesised command name, which may
# hold spaces). Empty when PID is gone.
proc_cpu_seconds() {
    local stat
    { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 0
    stat=${stat##*) }
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$stat"
}

# Peak resident set size of PID in KiB (VmHWM), from /proc.
vmhwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
