#!/usr/bin/env bash
# Proxy overhead, measured side by side in one run: wrk against a minimal upstream directly,
# then through the bridge in headers mode (session cookie, identity headers, X-Bridge-Token).
#   scripts/bench-proxy.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example proxy_bench
out=$(mktemp)
target/release/examples/proxy_bench >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do grep -q READY "$out" && break; sleep 0.1; done
grep -q READY "$out" || { echo "the benchmark setup did not start" >&2; exit 1; }
direct=$(sed -n 's/^DIRECT //p' "$out")
proxied=$(sed -n 's/^PROXIED //p' "$out")
cookie=$(sed -n 's/^COOKIE //p' "$out")
echo "== upstream directly: $direct"
wrk -t2 -c"$connections" -d"${seconds}s" --latency "$direct" | grep -E "Requests/sec|Latency  |50%|99%"
echo "== through the bridge: $proxied"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Cookie: $cookie" "$proxied" | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx"
