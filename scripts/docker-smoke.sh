#!/usr/bin/env bash
# The image as the Dockerfile builds it, run as its header says: a config folder of one app
# (written by `entree-bridge init`) mounted read-only, the demo's development IdP's metadata
# standing in for Entree's, SQLite links on the data volume. It must pass check-config in the
# container, become ready, serve the app's SP metadata and send a login to the IdP; and
# deploy/compose.yaml must be a valid compose file.
#
# Needs a Docker daemon and the Dockerfile's base images. Where either is missing, it says
# so and exits 0: the image is then not tried, and CI's log says that it was not.
#   bash scripts/docker-smoke.sh [BRIDGE]    # BRIDGE: a build with the demo (default target/debug/entree-bridge)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
    echo "docker-smoke: skipped, no Docker daemon answers here (docker info); the image was not built"
    exit 0
fi
bridge=${1:-target/debug/entree-bridge}
port=${ENTREE_BRIDGE_SMOKE_PORT:-18080}
name=entree-bridge-smoke-$$
work=$(mktemp -d)
trap 'docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# The Dockerfile's base images come from a registry this machine may not reach.
for image in rust:1-bookworm debian:bookworm-slim; do
    if ! docker image inspect "$image" >/dev/null 2>&1 && ! docker pull --quiet "$image" >/dev/null 2>&1; then
        echo "docker-smoke: skipped, the base image $image cannot be pulled here; the image was not built"
        exit 0
    fi
done
if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/compose.yaml config --quiet
fi
docker build --quiet -t entree-bridge:smoke .

# One app, as a new admin starts; the development IdP's metadata as Entree's.
"$bridge" init --dir "$work/config" --app numo \
    --base-url "http://localhost:$port/numo" --callback-url "http://localhost:$port/callback" >/dev/null
# The demo's files made afresh (its IdP at the demo's own address), not a data/demo of old.
mkdir -p "$work/demo/config"
cp config/entree-bridge.toml "$work/demo/config/"
"$bridge" check-config --config "$work/demo/config/entree-bridge.toml" >/dev/null
cp "$work/demo/data/demo/idp-metadata.xml" "$work/config/metadata/entree-staging.xml"
sed -i 's|^sqlite_path = .*|sqlite_path = "/var/lib/entree-bridge/links.sqlite3"|' "$work/config/entree-bridge.toml"
# The image runs as uid 10001; the keys are mode 0600 (a throwaway copy: readable by all).
chmod -R a+rX "$work/config"

docker run --rm -v "$work/config:/etc/entree-bridge:ro" entree-bridge:smoke check-config
docker run -d --name "$name" -p "127.0.0.1:$port:8080" -v "$work/config:/etc/entree-bridge:ro" entree-bridge:smoke >/dev/null
curl_app() { curl -sS --resolve "localhost:$port:127.0.0.1" "$@"; }
for _ in $(seq 1 60); do
    if curl_app -fo /dev/null "http://localhost:$port/readyz" 2>/dev/null; then break; fi
    sleep 0.5
done
curl_app -f "http://localhost:$port/readyz" >/dev/null || { docker logs "$name"; exit 1; }
curl_app -f "http://localhost:$port/numo/saml2/kennisnet/metadata" | grep -q "EntityDescriptor" \
    || { echo "docker-smoke: no SP metadata" >&2; docker logs "$name"; exit 1; }
login=$(curl_app -o /dev/null -w '%{http_code} %{redirect_url}' "http://localhost:$port/numo/saml2/kennisnet/login")
case "$login" in
    "302 http://127.0.0.1:8080/demo/idp/sso?SAMLRequest="*) ;;
    *) echo "docker-smoke: the login did not go to the IdP: $login" >&2; docker logs "$name"; exit 1 ;;
esac
echo "docker-smoke: the image checks its config, is ready, serves SP metadata and sends a login to the IdP"
