# entree-bridge: multi-stage build. The build stage has the toolchain and the -dev packages;
# the runtime stage only the shared libraries the binary links against (scripts/check-runtime-libs.sh
# compares the two in CI), and runs as a user without privileges.
#
# The image is the production build (--no-default-features): it has no demo (`entree-bridge demo`
# says so and exits 2), and config/entree-bridge.toml, the demo's config, does not run in it.
# Mount a config folder of your own, such as deploy/config/ (see deploy/config/README.md):
# entree-bridge.toml, apps/*.toml, and the keys and metadata it names. Key files are mode 0600:
# make them readable by the image's user (uid 10001), e.g. `sudo chown -R 10001 deploy/config/keys`.
#
#   docker build -t entree-bridge .
#   docker run --rm -v $PWD/deploy/config:/etc/entree-bridge:ro entree-bridge check-config
#   docker run -p 8080:8080 -v $PWD/deploy/config:/etc/entree-bridge:ro -v bridge-data:/var/lib/entree-bridge entree-bridge
#
# check-config checks the mounted /etc/entree-bridge/entree-bridge.toml (ENTREE_BRIDGE_CONFIG).
# The config folder is read-only: point writable paths at the data volume, e.g.
# sqlite_path = "/var/lib/entree-bridge/links.sqlite3" (relative paths resolve against the config folder).
# The image listens on 0.0.0.0:8080 whatever server.listen says (ENTREE_BRIDGE_SERVER__LISTEN).
# Several instances on Redis and PostgreSQL: deploy/compose.yaml.

FROM rust:1-bookworm AS build
# The production bridge (--no-default-features: no `demo`, so no samael/xmlsec): OpenSSL only;
# libxmlsec1, libxml2 and libclang are what the demo's development IdP signs with.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# samael, patched to build without xmlsec (vendor/samael/PATCHED.md).
COPY vendor ./vendor
COPY examples ./examples
RUN cargo build --release --locked --no-default-features --bin entree-bridge

FROM debian:bookworm-slim
# Runtime libraries of the binary (NEEDED entries): OpenSSL (libssl3) and the C library;
# ca-certificates for https metadata URLs, upstreams and rediss://. No xmlsec1 or libxml2:
# the bridge verifies XML signatures itself, and signing (the demo's IdP) is not built in.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/entree-bridge --shell /usr/sbin/nologin bridge \
 && mkdir -p /etc/entree-bridge /var/lib/entree-bridge \
 && chown bridge /var/lib/entree-bridge
COPY --from=build /src/target/release/entree-bridge /usr/local/bin/entree-bridge

# config (and keys, metadata) read-only; data (SQLite links, kept metadata copies) writable.
VOLUME ["/etc/entree-bridge", "/var/lib/entree-bridge"]
ENV ENTREE_BRIDGE_CONFIG=/etc/entree-bridge/entree-bridge.toml \
    ENTREE_BRIDGE_SERVER__LISTEN=0.0.0.0:8080
USER bridge
WORKDIR /var/lib/entree-bridge
EXPOSE 8080
# bash's /dev/tcp: no HTTP client needed in the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/entree-bridge"]
CMD ["serve"]
