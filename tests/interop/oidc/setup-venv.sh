#!/usr/bin/env bash
# Create (or reuse) the Python venv that holds Authlib for the OIDC RP driver
# (tests/interop/oidc/authlib_rp.py): tests/interop/setup-venv.sh with this folder's
# requirements.txt.
#
#   tests/interop/oidc/setup-venv.sh     -> last stdout line: path of the venv's python
#
# Venv location: ${OIDC_RP_VENV:-<repo>/target/oidc-rp-venv}.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$here/../../.." && pwd)"
SETUP_VENV_NAME="oidc-rp" \
    SETUP_VENV_REQUIREMENTS="$here/requirements.txt" \
    SETUP_VENV_DIR="${OIDC_RP_VENV:-$repo_dir/target/oidc-rp-venv}" \
    SETUP_VENV_MODULES="authlib.oidc.core authlib.integrations.requests_client joserfc.jwt requests" \
    SETUP_VENV_REPORT="Authlib joserfc" \
    exec bash "$here/../setup-venv.sh"
