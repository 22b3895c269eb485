#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use is running on 127.0.0.1:5432. On a machine that has
# one running (trust auth), nothing happens. On a fresh Debian machine it installs and starts
# the distribution's server and gives the `postgres` user the password the tests use
# (`ENTREE_BRIDGE_TEST_POSTGRES`, default postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail

ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
ready && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "services: installing PostgreSQL" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
$sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || $sudo pg_ctlcluster "$version" main start || true
for _ in $(seq 1 30); do ready && break; sleep 1; done
ready || { echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
# A fresh cluster asks for a password over TCP: set the one the tests use.
$sudo -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 ||
    su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
