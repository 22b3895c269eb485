#!/usr/bin/env bash
# Proxy overhead, measured side by side in one run: wrk against a minimal upstream directly,
# then through the bridge in headers mode (session cookie, identity headers, X-Bridge-Token)
# with sessions in memory, in Redis, and in Redis with a local session cache.
#   scripts/bench-proxy.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example proxy_bench

# One bridge per session store: memory, Redis, Redis with a 5-second local session cache.
run() {
    local store=$1 out pid
    out=$(mktemp)
    target/release/examples/proxy_bench "$store" >"$out" 2>/dev/null &
    pid=$!
    for _ in $(seq 1 100); do grep -q READY "$out" && break; sleep 0.1; done
    grep -q READY "$out" || { echo "the $store benchmark setup did not start" >&2; kill $pid; exit 1; }
    local direct proxied cookie
    direct=$(sed -n 's/^DIRECT //p' "$out")
    proxied=$(sed -n 's/^PROXIED //p' "$out")
    cookie=$(sed -n 's/^COOKIE //p' "$out")
    if [ "$store" = memory ]; then
        echo "== upstream directly: $direct"
        wrk -t2 -c"$connections" -d"${seconds}s" --latency "$direct" | grep -E "Requests/sec|Latency  |50%|99%"
    fi
    echo "== through the bridge, $store sessions: $proxied"
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Cookie: $cookie" "$proxied" | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx"
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    rm -f "$out"
}

run memory
run redis
run redis-cached
