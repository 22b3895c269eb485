#!/usr/bin/env bash
# Create (or reuse) a Python venv of pinned requirements for the interop tests: by default
# the one that holds pysaml2.
#
#   tests/interop/setup-venv.sh          -> last stdout line: path of the venv's python
#
# Venv location: ${INTEROP_VENV:-<repo>/target/interop-venv}.
# Idempotent: a marker file inside the venv records the sha256 of
# requirements.txt; when it matches and pysaml2 imports, nothing is installed.
# Everything except the final python path goes to stderr.
#
# Other venvs (tests/interop/oidc/setup-venv.sh) run this script with SETUP_VENV_NAME,
# SETUP_VENV_REQUIREMENTS, SETUP_VENV_DIR, SETUP_VENV_MODULES (what must import) and
# SETUP_VENV_REPORT (the packages whose versions are logged).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"
name="${SETUP_VENV_NAME:-interop}"
req_file="${SETUP_VENV_REQUIREMENTS:-$script_dir/requirements.txt}"
venv_dir="${SETUP_VENV_DIR:-${INTEROP_VENV:-$repo_dir/target/interop-venv}}"
read -r -a modules <<<"${SETUP_VENV_MODULES:-saml2.server saml2.sigver cryptography}"
read -r -a report <<<"${SETUP_VENV_REPORT:-pysaml2}"

log() { printf 'setup-venv (%s): %s\n' "$name" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$req_file" ] || die "missing $req_file"
command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

# Absolute venv path (it may be relative to the caller's cwd).
mkdir -p "$(dirname "$venv_dir")"
venv_dir="$(cd "$(dirname "$venv_dir")" && pwd)/$(basename "$venv_dir")"
venv_python="$venv_dir/bin/python"
marker="$venv_dir/.$name-ready"

req_hash="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$req_file")"
want_marker="requirements-sha256=$req_hash"

is_ready() {
    [ -f "$marker" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want_marker" ] &&
        [ -x "$venv_python" ] &&
        "$venv_python" -c 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in sys.argv[1:]) else 1)' "${modules[@]}" >/dev/null 2>&1
}

# Fast path (no lock, no heavy imports): marker matches and the packages are there.
if is_ready; then
    printf '%s\n' "$venv_python"
    exit 0
fi

# Serialise concurrent callers (e.g. parallel cargo tests) on a lock file.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv_dir.lock"
    flock 9
    if is_ready; then
        printf '%s\n' "$venv_python"
        exit 0
    fi
fi

rm -f "$marker"

# (Re)create the venv when it is missing or its interpreter is broken.
if ! { [ -x "$venv_python" ] && "$venv_python" -c 'import sys' >/dev/null 2>&1; }; then
    if [ -e "$venv_dir" ] && [ ! -f "$venv_dir/pyvenv.cfg" ] &&
        [ -n "$(ls -A "$venv_dir" 2>/dev/null)" ]; then
        die "$venv_dir exists, is not empty and is not a venv; refusing to touch it"
    fi
    log "creating venv at $venv_dir"
    venv_err="$(mktemp)"
    if ! python3 -m venv --clear "$venv_dir" >"$venv_err" 2>&1; then
        cat "$venv_err" >&2
        rm -f "$venv_err"
        rm -rf "$venv_dir"
        if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
            die "'python3 -m venv' failed: ensurepip is unavailable. On Debian/Ubuntu install the python3-venv package (apt-get install python3-venv) and re-run."
        fi
        die "'python3 -m venv $venv_dir' failed (on Debian/Ubuntu make sure python3-venv is installed)"
    fi
    rm -f "$venv_err"
fi

log "installing pinned requirements from $req_file"
"$venv_python" -m pip install --disable-pip-version-check --no-input -q -r "$req_file" >&2 ||
    die "pip install -r $req_file failed"

"$venv_python" -W ignore -c 'import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]' "${modules[@]}" >&2 ||
    die "${modules[*]} do not import after installation"

printf '%s\n' "$want_marker" >"$marker.tmp"
mv -f "$marker.tmp" "$marker"
log "ready: $("$venv_python" -W ignore -c 'import importlib.metadata as m, sys; print(*(f"{p} {m.version(p)}" for p in sys.argv[1:]))' "${report[@]}")"
printf '%s\n' "$venv_python"
