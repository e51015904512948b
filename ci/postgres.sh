#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on 127.0.0.1 for the database tests
# (tests/postgres.rs) and prints the line to evaluate:
#
#     eval "$(ci/postgres.sh)"     # exports CONVOY_TEST_DATABASE_URL
#     ci/postgres.sh stop "$CONVOY_TEST_PG_DIR"   # stops it, deletes its files
#
# Installs Debian's postgresql when no initdb is found. PostgreSQL refuses
# to run as root, so the cluster belongs to the `postgres` user (or the
# current user when not root), lives in a temporary directory, listens on
# loopback only on a free port, and trusts loopback connections. It keeps
# running until `ci/postgres.sh stop DIR` or the machine restarts.
set -euo pipefail

log() { echo "$@" >&2; }

find_bin() {
    local name=$1 dir
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/$name" ]; then echo "$dir/$name"; return; fi
    done
    return 1
}

if ! find_bin initdb >/dev/null; then
    log "== installing postgresql (database tests)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
run_as=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
    owner=postgres
    run_as=(runuser -u postgres --)
fi

if [ "${1:-}" = stop ]; then
    dir=${2:?usage: ci/postgres.sh stop DIR}
    case $dir in
        /tmp/convoy-pg.*) ;;
        *) log "ci/postgres.sh: $dir is not a cluster this script made"; exit 2 ;;
    esac
    if [ -d "$dir/data" ]; then
        "${run_as[@]}" "$(find_bin pg_ctl)" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    exit 0
fi

INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)

dir=$(mktemp -d /tmp/convoy-pg.XXXXXX)
chown "$owner" "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"${run_as[@]}" "$INITDB" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
"${run_as[@]}" "$PG_CTL" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
log "== postgresql on 127.0.0.1:$port (data in $dir/data)"

echo "export CONVOY_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:$port/postgres'"
echo "export CONVOY_TEST_PG_DIR='$dir'"
