#!/usr/bin/env bash
# Makes sure the services the tests use are running:
# - Redis on 127.0.0.1:6379 (`ENTREE_BRIDGE_TEST_REDIS`): started from the installed
#   redis-server, without persistence, when nothing answers there. Tests use key prefixes of
#   their own; the fault tests start private servers on ports of their own.
# - PostgreSQL on 127.0.0.1:5432. On a machine that has one running (trust auth), nothing
#   happens. On a fresh Debian machine it installs and starts the distribution's server and
#   gives the `postgres` user the password the tests use (`ENTREE_BRIDGE_TEST_POSTGRES`,
#   default postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

redis_ready() { command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
start_redis() {
    redis_ready && return 0
    echo "services: starting redis-server on 127.0.0.1:6379" >&2
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 30); do redis_ready && return 0; sleep 0.2; done
    echo "services: Redis did not come up on 127.0.0.1:6379" >&2
    return 1
}

pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
start_postgres() {
    pg_ready && return 0
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "services: installing PostgreSQL" >&2
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || $sudo pg_ctlcluster "$version" main start || true
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || { echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; return 1; }
    # A fresh cluster asks for a password over TCP: set the one the tests use.
    $sudo -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 ||
        su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
}

start_redis
start_postgres
