#!/usr/bin/env bash
# Issue 18's figures: how well a nightly gate finds regressions on this
# machine's real run-to-run noise.
#
# 1. Records the noise: N back-to-back runs of the same short load against
#    one `convoy target` (pinned to CPU 0; convoy on CPU 1), each run's
#    p50/p95/p99 and throughput per step written to a CSV
#    (ci/bench/history-noise.csv unless --noise-out says otherwise; the
#    committed file is what the unit tests and a re-analysis use).
# 2. Checks that `convoy compare` does not cry wolf: consecutive pairs of
#    those identical runs compared without history and with the runs before
#    them as history; the regressions found are counted (goal: 0).
# 3. Runs the analysis (crates/convoy-core/examples/history_bench.rs):
#    synthetic nightly series resampled from the recorded noise with
#    planted shifts of 5, 10, 20 and 50 % and single-run spikes, judged by
#    `convoy history --fail-on-change-since 1`, by a plain "tonight vs
#    baseline ± tolerance" rule and by compare's rule; recall, precision
#    and false alarms per 100 quiet nights.
#
# Usage: ci/bench/history.sh [--runs N] [--scenario S] [--profile P]
#                            [--pairs N] [--series N] [--analyse-only FILE]
#                            [--reuse DIR]
#                            [--noise-out FILE] [--no-build] [--convoy PATH]
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_HERE/lib.sh"

usage() {
    cat <<'EOF'
Usage: ci/bench/history.sh [options]

Records the run-to-run noise of repeated short runs against `convoy target`,
checks `convoy compare` on identical back-to-back pairs, then measures the
nightly gate on synthetic series resampled from that noise (see
ci/bench/README.md, "Nightly change points").

Options (each also settable by the environment variable shown):
  --runs N            runs recorded                        [HISTORY_RUNS=60]
  --scenario S        scenario run each time               [HISTORY_SCENARIO=order-lifecycle]
  --profile P         its profile                          [HISTORY_PROFILE=nightly-noise-10s]
  --profiles FILE     profiles file                        [HISTORY_PROFILES=ci/bench/history-profiles.toml]
  --pairs N           identical pairs compared (<= runs/2) [HISTORY_PAIRS=10]
  --series N          synthetic series per case            [HISTORY_SERIES=200]
  --noise-out FILE    where the noise CSV goes             [HISTORY_NOISE=ci/bench/history-noise.csv]
  --analyse-only FILE skip recording; analyse this noise CSV
  --reuse DIR         skip recording; compare the pairs of an earlier run's
                      results directory (with this binary) and analyse --noise-out
  --no-build          use target/release/convoy as it is   [HISTORY_NO_BUILD=1]
  --convoy PATH       use this convoy binary (implies --no-build)
  -h, --help          this text

Results: the tables on stdout and in ci/bench/results/history-<UTC time>.txt,
every run's report in ci/bench/results/history-<UTC time>/.
EOF
}

RUNS=${HISTORY_RUNS:-60}
SCENARIO=${HISTORY_SCENARIO:-order-lifecycle}
PROFILE=${HISTORY_PROFILE:-nightly-noise-10s}
PROFILES=${HISTORY_PROFILES:-$BENCH_HERE/history-profiles.toml}
PAIRS=${HISTORY_PAIRS:-10}
SERIES=${HISTORY_SERIES:-200}
NOISE=${HISTORY_NOISE:-$BENCH_HERE/history-noise.csv}
NO_BUILD=${HISTORY_NO_BUILD:-0}
BIN=
ANALYSE_ONLY=
REUSE=
while (($#)); do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --scenario) SCENARIO=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --profiles) PROFILES=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --series) SERIES=$2; shift 2 ;;
    --noise-out) NOISE=$2; shift 2 ;;
    --analyse-only) ANALYSE_ONLY=$2; shift 2 ;;
    --reuse) REUSE=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    --convoy) BIN=$2; NO_BUILD=1; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
done
positive_int --runs "$RUNS"
positive_int --series "$SERIES"
[[ $PAIRS =~ ^[0-9]+$ ]] || die "--pairs wants a number"
((PAIRS * 2 <= RUNS)) || die "--pairs $PAIRS needs at least $((PAIRS * 2)) runs"

analyse() {
    log "analysing $1 ($SERIES series per case)"
    (cd "$REPO" && cargo run --release --quiet -p convoy-core --example history_bench -- "$1" "$SERIES")
}

if [[ -n $ANALYSE_ONLY ]]; then
    [[ -f $ANALYSE_ONLY ]] || die "$ANALYSE_ONLY not found"
    analyse "$ANALYSE_ONLY"
    exit 0
fi

require_tools jq taskset curl
bench_scratch history
copy_convoy "$BIN" "$NO_BUILD" "$SCRATCH"
# Identical back-to-back pairs: runs (2k-1, 2k) of DIR ($1), with and
# without the runs before them as history.
compare_pairs() {
    local dir=$1 k a b hist j n1 u1 n2 rows json=$SCRATCH/compare.json
    local regress_plain=0 regress_history=0
    echo "convoy compare on $PAIRS pairs of identical back-to-back runs:"
    # Counts rows of CHANGE ($1) in the comparison of the rest ($2...);
    # compare exits 1 on a regression, which is what is being counted.
    count() {
        local change=$1
        shift
        "$CONVOY" compare "$@" --format json >"$json" || true
        jq --arg c "$change" '[.rows[] | select(if $c == "any" then .delta != null else .change == $c end)] | length' "$json"
    }
    for ((k = 1; k <= PAIRS; k++)); do
        a=$dir/run-$(printf '%03d' $((2 * k - 1)))
        b=$dir/run-$(printf '%03d' $((2 * k)))
        hist=$dir/history-$k
        mkdir -p "$hist"
        for ((j = 1; j < 2 * k - 1; j++)); do
            cp "$dir/run-$(printf '%03d' "$j")/report.json" "$hist/run-$j.json"
        done
        n1=$(count regression "$a" "$b")
        u1=$(count unconfirmed "$a" "$b")
        rows=$(count any "$a" "$b")
        n2=$(count regression "$a" "$b" --history "$hist")
        echo "  pair $k: $n1 regression(s) ($u1 unconfirmed) of $rows figures without history, $n2 with $((2 * k - 2)) earlier runs"
        regress_plain=$((regress_plain + n1)) regress_history=$((regress_history + n2))
    done
    echo "  total: $regress_plain without history, $regress_history with history (goal: 0 and 0)"
}

if [[ -n $REUSE ]]; then
    [[ -d $REUSE ]] || die "$REUSE not found"
    {
        compare_pairs "$REUSE"
        echo
        analyse "$NOISE"
    } | tee "$REUSE.rerun.txt"
    exit 0
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$BENCH_HERE/results/history-$STAMP
mkdir -p "$OUT"
SUMMARY=$OUT.txt

PORT=$(free_port 18400)
start_target "$CONVOY" "$PORT" 0 "$OUT/target.log"
wait_http "http://127.0.0.1:$PORT/health"
URL=http://127.0.0.1:$PORT

log "recording $RUNS runs of '$SCENARIO --profile $PROFILE' against $URL ($CONVOY_DESC)"
started=$SECONDS
tmp_csv=$OUT/noise.csv
{
    echo "# $RUNS runs of convoy run $SCENARIO --profile $PROFILE ($(basename "$PROFILES")) against convoy target (1 thread, CPU 0), convoy on CPU 1; $CONVOY_DESC; $(date -u +%FT%TZ); $(nproc) CPUs"
    echo "run,step,p50_ms,p95_ms,p99_ms,rps"  # steps with at least 100 requests (p99 needs them)
} >"$tmp_csv"
for ((i = 1; i <= RUNS; i++)); do
    dir=$OUT/run-$(printf '%03d' "$i")
    taskset -c 1 "$CONVOY" run "$SCENARIO" --profiles "$PROFILES" --profile "$PROFILE" --target "$URL" \
        --out "$dir" --quiet >"$dir.log" 2>&1 || log "run $i exited $? (kept: its figures are noise too)"
    [[ -f $dir/report.json ]] || die "run $i wrote no report: $(tail -3 "$dir.log")"
    jq -r --arg run "$i" '
        ([.overall] + .steps)[]
        | select(.latency_ms != null and .requests >= 100)
        | [$run, (.name | gsub(","; " ")), .latency_ms.p50, .latency_ms.p95, .latency_ms.p99, .rps]
        | @csv' "$dir/report.json" | tr -d '"' >>"$tmp_csv"
done
log "recorded in $((SECONDS - started)) s"
cp "$tmp_csv" "$NOISE"

{
    compare_pairs "$OUT"
    echo
    analyse "$NOISE"
} | tee "$SUMMARY"
log "summary in $SUMMARY; noise in $NOISE"
