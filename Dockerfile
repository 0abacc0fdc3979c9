# fng-gateway's container image.
#
#   docker build -t fng-gateway .
#   podman build --format docker --build-arg BASE_IMAGE=localhost/base-python:bookworm \
#       -t fng-gateway .    # with a local base, as the tests do (.ci/base-image makes it)
#
# The build stage makes a virtualenv in /opt/venv holding the project's wheel and exactly the
# locked dependencies (requirements/gateway.txt, with hashes; all published as binary wheels,
# so no compiler is needed); the final stage is the same base plus that virtualenv and nothing
# else. It runs as UID/GID 10001 and writes
# only to /var/lib/fng-gateway (the SQLite file, when SQLite is the store) and /tmp, so it
# runs with a read-only root filesystem given those two as volumes. A real deployment sets
# FNG_GATEWAY_DATABASE_URL to PostgreSQL and FNG_GATEWAY_MASTER_KEYS (or …_MASTER_KEYS_FILE).
# Podman keeps the HEALTHCHECK only with `--format docker` (the OCI format has no such field).

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Unset unless given: a CA bundle for reaching the package index through a TLS-inspecting
# proxy, e.g. `-v /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro` with
# `--build-arg PIP_CERT=/run/build-ca.crt` (podman). It exists in this stage only.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Exactly the locked dependencies, each checked against its hash (requirements/gateway.txt),
# alone first: the layer is cached until the lock changes. The build backend comes from its
# own lock into a venv that stays in this stage.
COPY requirements/gateway.txt requirements/build.txt ./requirements/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: --require-hashes \
      --requirement requirements/gateway.txt \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --only-binary=:all: --require-hashes \
      --requirement requirements/build.txt
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY gateway ./gateway
# The project as a wheel (schemas force-included as gateway/_schemas), built with the locked
# backend and installed without touching the dependencies; pip and setuptools leave, so the
# final image has no installer.
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps --no-index /tmp/wheels/fng_gateway-*.whl \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && /opt/venv/bin/fng-gateway --help > /dev/null

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="fng-gateway" \
      org.opencontainers.image.description="Lets software written for FMS 6 interfaces (E-Journal, budget planning, eProcurement) work with FNG unchanged." \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 fng-gateway \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/fng-gateway \
      --no-create-home --shell /usr/sbin/nologin fng-gateway \
 && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/fng-gateway
COPY --from=build /opt/venv /opt/venv
# No .pyc written at run time (the venv's are compiled at install); logs unbuffered; listen on
# every interface of the container; the SQLite default moved to the data directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FNG_GATEWAY_HOST=0.0.0.0 \
    FNG_GATEWAY_DATABASE_URL=sqlite+aiosqlite:////var/lib/fng-gateway/fng-gateway.db
WORKDIR /var/lib/fng-gateway
USER 10001:10001
EXPOSE 8080
# The slim base has no curl: Python's urllib asks /healthz (any answer but 2xx fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FNG_GATEWAY_PORT', '8080'), timeout=4)"]
# Exec form: fng-gateway is PID 1 and receives SIGTERM itself (it drains and exits).
ENTRYPOINT ["fng-gateway"]
CMD ["serve"]
