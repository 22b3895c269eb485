#!/usr/bin/env bash
# Checks that the Dockerfile's runtime stage installs the Debian package of every shared
# library the binary links against directly (its NEEDED entries), so the image cannot miss one.
#   scripts/check-runtime-libs.sh [binary]   (default: target/debug/entree-bridge)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/entree-bridge}
[ -x "$binary" ] || { echo "check-runtime-libs: $binary is not built" >&2; exit 1; }
# In the base image already (bookworm-slim): the C library and the GCC runtime.
base_packages="libc6 libgcc-s1"
runtime_line=$(awk '/^FROM debian/{runtime=1} runtime && /apt-get install/{print}' Dockerfile)
missing=0
for lib in $(objdump -p "$binary" | awk '/NEEDED/{print $2}'); do
    # awk reads everything (no early exit): under pipefail a closed pipe would fail the script.
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found {print $NF; found = 1}')
    [ -n "$path" ] || { echo "check-runtime-libs: $lib is not on this machine" >&2; missing=1; continue; }
    package=$( (dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true) |
        awk -F: 'NR == 1 {print $1}')
    if [ -z "$package" ]; then
        echo "check-runtime-libs: no Debian package owns $path ($lib)" >&2
        missing=1
    elif [[ " $base_packages " == *" $package "* ]]; then
        continue
    elif ! grep -qw -- "$package" <<<"$runtime_line"; then
        echo "check-runtime-libs: $lib comes from $package, which the Dockerfile's runtime stage does not install" >&2
        missing=1
    else
        echo "check-runtime-libs: $lib <- $package (installed)"
    fi
done
exit $missing
