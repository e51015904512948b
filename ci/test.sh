#!/usr/bin/env bash
# convoy's test command: formatting, lints, then every test. CI (.ci/run)
# calls exactly this script, so what CI does can be run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast
    cargo test --locked --doc
    if [ -n "${CONVOY_TEST_DATABASE_URL:-}" ]; then
        echo "== the reference target's API and journey tests on its PostgreSQL storage"
        CONVOY_TEST_TARGET_ON_POSTGRES=1 cargo nextest run --locked --no-fail-fast \
            --test target_api --test target_journeys
    fi
else
    cargo test --locked --no-fail-fast
    if [ -n "${CONVOY_TEST_DATABASE_URL:-}" ]; then
        CONVOY_TEST_TARGET_ON_POSTGRES=1 cargo test --locked --no-fail-fast \
            --test target_api --test target_journeys
    fi
fi
