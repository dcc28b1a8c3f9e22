# The registry as a container image.
#
#   docker build -t rs-registry .
#   docker run -d -p 5000:5000 -v registry-data:/var/lib/registry rs-registry
#
# Stage 1 builds the release binary with the Rust toolchain (Debian bookworm,
# so the glibc the binary needs is bookworm's) and assembles the runtime
# root filesystem with scripts/container-rootfs.sh: the binary, the shared
# libraries `ldd` names, /etc/passwd with the user `registry` (10001), and
# the CA bundle (for S3 over TLS). Stage 2 is that filesystem alone, on
# scratch: no shell, no package manager.
#
# scripts/docker-image.sh builds the same runtime stage (this file's text
# from `FROM scratch AS runtime` on) from a local release binary, offline;
# the docker test suite (tests/docker/) uses that.
ARG RUST_IMAGE=rust:1.95-bookworm

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin registry \
 && scripts/container-rootfs.sh target/release/registry /out/rootfs \
 && mkdir /out/empty

FROM scratch AS runtime
COPY --from=build /out/rootfs/ /
# The storage and cache folders, owned by the user the server runs as, so
# that a new named volume mounted there is writable (Docker copies the
# folder's owner into it). A bind mount keeps the host folder's owner:
# chown it to 10001 (docs/DEPLOY.md).
COPY --from=build --chown=10001:10001 /out/empty/ /var/lib/registry/
COPY --from=build --chown=10001:10001 /out/empty/ /var/cache/registry/
USER 10001:10001
ENV PATH=/usr/local/bin \
    REGISTRY_LISTEN=0.0.0.0:5000 \
    REGISTRY_STORAGE=fs:///var/lib/registry \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
VOLUME ["/var/lib/registry"]
EXPOSE 5000
# Liveness, not readiness (docs/OPERATIONS.md, "Health"): an orchestrator
# that replaces unhealthy containers must not replace every one of them when
# the store is down. No curl in the image: `registry probe` does the GET.
# Probes the default listener; with another REGISTRY_LISTEN, or TLS, override
# it (`docker run --health-cmd ...`).
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 \
  CMD ["registry", "probe", "--timeout=5s", "http://127.0.0.1:5000/livez"]
# No HEALTHCHECK yet: it comes with the health endpoints (/livez), which the
# server will answer itself; this image has no client (curl, wget, shell) to
# probe GET /v2/ with, and none is added just for that. Orchestrators can
# probe the port (deploy/kubernetes.yaml).
STOPSIGNAL SIGTERM
ENTRYPOINT ["registry", "serve"]
