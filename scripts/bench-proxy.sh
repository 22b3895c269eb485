#!/usr/bin/env bash
# Proxy overhead, measured side by side in one run: wrk against a minimal upstream directly,
# then through the bridge in headers mode (session cookie, identity headers, X-Bridge-Token)
# with sessions in memory, in Redis, and in Redis with a local session cache.
#   scripts/bench-proxy.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
command -v wrk >/dev/null || $sudo apt-get install -y -qq wrk >/dev/null
# nginx as a reverse proxy on the same upstream: the familiar alternative, measured alongside.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release --quiet --example proxy_bench

# CPU time (user and system, clock ticks) of every thread of the given processes.
cpu_ticks() {
    local user=0 sys=0 f fields
    for p in "$@"; do
        for f in /proc/"$p"/task/*/stat; do
            read -r -a fields < <(sed 's/^.*) //' "$f")
            user=$((user + fields[11])); sys=$((sys + fields[12]))
        done
    done
    echo "$user $sys"
}

# wrk against $url, then the server side's CPU per request (the processes in $pids; the
# upstream runs inside the bridge's benchmark process, so it is counted on both sides).
measure() {
    local url=$1 pids=$2; shift 2
    local u0 s0 u1 s1 out requests hz
    hz=$(getconf CLK_TCK)
    read -r u0 s0 < <(cpu_ticks $pids)
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "$@" "$url")
    read -r u1 s1 < <(cpu_ticks $pids)
    grep -E "Requests/sec|Latency  |50%|99%|Non-2xx" <<<"$out"
    requests=$(awk '/requests in/{print $1}' <<<"$out")
    awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$requests" -v hz="$hz" \
        'BEGIN { printf "  CPU per request, server side: user %.1f us, system %.1f us\n", u / hz / n * 1e6, s / hz / n * 1e6 }'
}

# nginx (2 workers, keep-alive to the upstream) in front of the same upstream.
nginx_proxy() {
    local direct=$1 bench_pid=$2 upstream port dir
    upstream=$(sed -E 's#^http://([^/]+)/.*#\1#' <<<"$direct")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d)
    cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir;
    proxy_temp_path $dir;
    upstream app { server $upstream; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
CONF
    "$nginx_bin" -c "$dir/nginx.conf" -p "$dir" &
    local nginx_pid=$!
    for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    echo "== through nginx (reverse proxy, 2 workers): http://127.0.0.1:$port/bench/page"
    measure "http://127.0.0.1:$port/bench/page" "$bench_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    rm -rf "$dir"
}

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
        measure "$direct" "$pid"
        nginx_proxy "$direct" "$pid"
        local floor
        floor=$(sed -n 's/^FLOOR //p' "$out")
        echo "== through a bare hyper proxy (server + pooled client, nothing else; same process): $floor"
        measure "$floor" "$pid"
    fi
    echo "== through the bridge, $store sessions: $proxied"
    measure "$proxied" "$pid" -H "Cookie: $cookie"
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    rm -f "$out"
}

run memory
run redis
run redis-cached
