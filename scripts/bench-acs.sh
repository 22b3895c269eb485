#!/usr/bin/env bash
# ACS logins per second, memory store and Redis store side by side in one run: wrk posts
# pre-generated, signed, unsolicited Entree-like responses (RSA-2048, ten attributes), each
# once, to a bridge in jwt mode. Every accepted login is validated, replay-checked, looked up
# in the link store (SQLite) and handed off as a signed JWT page.
#   scripts/bench-acs.sh [seconds] [connections]
# Redis: ENTREE_BRIDGE_BENCH_REDIS (default redis://127.0.0.1:6379), keys under a fresh prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-32}
# Enough bodies that none is posted twice at up to 14,000 logins/s.
count=$((seconds * 14000))
# pysaml2 validates the same responses (the comparison with SATOSA's engine).
venv_python=$(bash tests/interop/setup-venv.sh)
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example acs_bench

run() {
    local store=$1 out pid
    out=$(mktemp)
    target/release/examples/acs_bench "$store" "$count" >"$out" 2>/dev/null &
    pid=$!
    for _ in $(seq 1 1200); do grep -q READY "$out" && break; sleep 0.1; done
    grep -q READY "$out" || { echo "the $store benchmark setup did not start" >&2; kill $pid; exit 1; }
    local acs bodies
    acs=$(sed -n 's/^ACS //p' "$out")
    bodies=$(sed -n 's/^BODIES //p' "$out")
    echo "== ACS, $store store: $count responses of $(sed -n 's/^BODY_BYTES //p' "$out") bytes, $connections connections, ${seconds}s"
    BODIES="$bodies" THREADS=2 wrk -t2 -c"$connections" -d"${seconds}s" --latency -s scripts/acs-bench.lua "$acs" |
        grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|requests in|accepted|NOT A VALID"
    if [ "$store" = memory ]; then
        echo "== pysaml2 $("$venv_python" -c 'import importlib.metadata as m; print(m.version("pysaml2"))') validating the same responses (one process, xmlsec1):"
        "$venv_python" scripts/bench-pysaml2.py "$bodies" "$(dirname "$bodies")/idp.xml" "${acs%/acs}/metadata" "$acs" 300
    fi
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    rm -f "$out"
}

echo "== openssl speed rsa2048 (verify/s, the floor of the work per login), 1 core:"
openssl speed -seconds 3 rsa2048 2>/dev/null | grep -E "^rsa 2048" || true
run memory
run redis
