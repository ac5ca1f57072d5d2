# syntax=docker/dockerfile:1
# rotaudit: the daemon as PID 1, as a non-root user, on a read-only root filesystem.
#   docker build -t rotaudit .        (`make image` builds it with podman on a base made from Debian packages)
# BASE must provide python3 (3.11+) with the venv module and /bin/sh. The first and last stages both use it, so
# the virtualenv built in the first runs unchanged in the last.
ARG BASE=python:3.11-slim

FROM ${BASE} AS deps
# Runtime dependencies only (no dev or emulator extras), each pinned and its hash checked (requirements/runtime.txt,
# written by `make lock`): this layer is reused until the lock changes. The optional build secret `pip_cert` is a
# CA bundle for pip, for a machine whose route to the package index goes through an intercepting proxy.
COPY requirements/runtime.txt /src/requirements/
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    && python3 -m venv /opt/rotaudit \
    && /opt/rotaudit/bin/pip install --quiet --require-hashes -r /src/requirements/runtime.txt

FROM deps AS build
# The package itself (.dockerignore lets in only pyproject.toml, the runtime lock, README.md, LICENSE and daemon/
# without the dev tools in daemon/devtools/, which pyproject.toml also leaves out of the wheel).
COPY . /src/
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    && /opt/rotaudit/bin/pip install --quiet --no-deps /src \
    && /opt/rotaudit/bin/pip uninstall --quiet --yes pip setuptools

FROM ${BASE}
RUN useradd --no-log-init --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin rotaudit
# Settings before the application layer, so a code change rebuilds only the last step.
# Bytecode was compiled at install time; nothing writes at run time (read-only root filesystem works).
ENV PATH=/opt/rotaudit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 9108
# The daemon's own liveness endpoint (slim images have no curl). ECS ignores HEALTHCHECK and uses the task
# definition's healthCheck, which should run the same command.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ROTAUDIT_HTTP_PORT', '9108'), timeout=4)"]
# Exec form: rotaudit is PID 1 and gets SIGTERM itself, then drains and exits 0.
ENTRYPOINT ["rotaudit"]
CMD ["run"]
COPY --from=build /opt/rotaudit /opt/rotaudit
# OCI labels last, so a new commit changes only this step. deploy/container/build-image.sh passes the version (from
# daemon/__init__.py, its one place) and the git commit; a plain `docker build` leaves them "unknown".
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="rotaudit" \
      org.opencontainers.image.description="Keeps AWS Secrets Manager rotations honest: audits every rotation event exactly once." \
      org.opencontainers.image.source="https://github.com/rotaudit/rotaudit" \
      org.opencontainers.image.url="https://github.com/rotaudit/rotaudit" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
