#!/usr/bin/env bash
# Install the pinned openid-client RP driver dependencies (package-lock.json)
# into tests/interop/oidc/node-rp/node_modules.
#
#   tests/interop/oidc/node-rp/setup.sh
#
# Idempotent: runs `npm ci` only when node_modules is missing or older than
# package-lock.json. Prints nothing on stdout; npm's output and errors go to
# stderr. Concurrent callers are serialised on a lock file (flock).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lock_file="$here/package-lock.json"
modules="$here/node_modules"
stamp="$modules/.package-lock.json"   # written by npm ci / npm install

log() { printf 'node-rp setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$lock_file" ] || die "missing $lock_file"
command -v node >/dev/null 2>&1 || die "node not found on PATH"
command -v npm >/dev/null 2>&1 || die "npm not found on PATH"

node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "openid-client 6 needs node >= 20 (found $(node --version) at $(command -v node)); Debian bookworm's nodejs package is 18: install Node 20+ (e.g. NodeSource's nodejs 20, or Debian trixie's) and re-run"

is_ready() {
    [ -f "$stamp" ] && [ ! "$stamp" -ot "$lock_file" ] &&
        [ -f "$modules/openid-client/package.json" ] && [ -f "$modules/jose/package.json" ]
}

is_ready && exit 0

if command -v flock >/dev/null 2>&1; then
    exec 9>"$here/.setup.lock"
    flock 9
    is_ready && exit 0
fi

log "npm ci in $here"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
    die "npm ci failed"
# npm ci keeps the lock file's mtime; make the stamp strictly newer-or-equal.
touch "$stamp"
is_ready || die "node_modules is incomplete after npm ci"
