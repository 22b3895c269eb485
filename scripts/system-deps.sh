#!/usr/bin/env bash
# Installs the Debian packages the bridge builds and tests with, when they are missing.
#   pkg-config, libssl-dev: openssl; all the production bridge needs
#     (`cargo build --release --no-default-features`, as the Dockerfile builds it)
#   libxmlsec1-dev, libxml2-dev, libclang-dev: only the default build, whose `demo` feature
#     (the demo's development IdP, the tests' responses) signs XML with samael's xmlsec
#     bindings (libclang for their bindgen); the production bridge needs none of them
#   xmlsec1: the pysaml2 interop IdP signs with it
#   python3-venv: the interop IdP's virtualenv
#   redis-server: the scale-out tests start Redis servers of their own (and the shared one, when missing)
#   chromium: the browser test walks the demo in headless Chromium
#   nodejs, npm: the openid-client RP driver of the OIDC interop tests (tests/interop/oidc/node-rp),
#     only when no node/npm is on PATH. openid-client 6 needs Node >= 20 and Debian bookworm's
#     nodejs is 18: there, install Node 20+ (e.g. NodeSource's nodejs) yourself;
#     tests/interop/oidc/node-rp/setup.sh refuses an older node and says so
# xmlsec1, python3-venv, redis-server and chromium only with --test: the demo does not need them.
set -euo pipefail

# The demo/test build's packages; production needs only the first two.
packages=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev)
# `scripts/system-deps.sh --test`: also what only the tests use.
if [ "${1:-}" = "--test" ]; then
    packages+=(xmlsec1 python3 python3-venv redis-server chromium)
    packages+=(simplesamlphp php-cli php-xml php-mbstring) # the SimpleSAMLphp 1.19 interop IdP (tests/interop/simplesamlphp/)
    # The OIDC interop tests' Node driver; a node from elsewhere (NodeSource bundles npm) is fine.
    command -v node >/dev/null || packages+=(nodejs)
    command -v npm >/dev/null || packages+=(npm)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A python3 from elsewhere (pyenv) with a working venv module is fine too.
if [[ " ${missing[*]} " == *" python3-venv "* ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing=("${missing[@]/python3-venv}")
fi
if [[ " ${missing[*]} " == *" python3 "* ]] && command -v python3 >/dev/null; then
    missing=("${missing[@]/python3}")
fi
read -r -a missing <<<"${missing[*]}"
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
