#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz with libFuzzer and AddressSanitizer) for a
# bounded time each, starting from the seed corpus in fuzz/seeds/ (made by
# `cargo run --example fuzz_seeds`) with the SAML dictionary fuzz/saml.dict. A crash stops
# the run with its input in fuzz/artifacts/<target>/: turn it into a regression test.
#   scripts/fuzz.sh [seconds per target] [target...]
# The growing corpus is kept in target/fuzz-corpus/ between runs. An input that takes more
# than 2 s (-timeout) fails the run like a crash: every input's cost is bounded, so a slow
# one is a bug of the same weight.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(response_xml response_post redirect_binding link_response config magister_import)

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >&2
# libFuzzer's instrumentation needs unstable compiler flags: a nightly toolchain when there is
# one, else the stable compiler with its unstable features unlocked.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
"${fuzz[@]}" build >&2
for target in "${targets[@]}"; do
    corpus=target/fuzz-corpus/$target
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    echo "== $target: ${seconds}s" >&2
    log=$(mktemp)
    if ! "${fuzz[@]}" run "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -dict=fuzz/saml.dict -max_len=65536 -timeout=2 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|Done [0-9]+ runs" "$log" | tr '\n' ' ' >&2
    echo >&2
    rm -f "$log"
done
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash" >&2
