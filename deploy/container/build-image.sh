#!/usr/bin/env bash
# Build the rotaudit image with podman on the local Debian-made base; print its reference.
#
# Each image is tagged with a hash of its inputs, so an unchanged tree is not built again and a changed one
# reuses the layer cache: localhost/rotaudit-deps:<hash> holds the dependency layers (tagged so that pruning
# keeps them), localhost/rotaudit:ctx-<hash> the image, also tagged localhost/rotaudit:latest.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
podman=$here/podman.sh
cd "$here/../.."

hash_of() {
    # Without daemon/devtools/, which .dockerignore keeps out of the context (a change there rebuilds nothing).
    find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path 'daemon/devtools/*' -print0 | sort -z |
        xargs -0 sha1sum |
        { echo "$base"; cat; } | sha1sum | cut -c1-12
}

base=$("$here/base-image.sh")
deps=localhost/rotaudit-deps:$(hash_of Dockerfile pyproject.toml requirements/lock.txt)
# The files .dockerignore lets into the context.
ref=localhost/rotaudit:ctx-$(hash_of Dockerfile .dockerignore pyproject.toml requirements/lock.txt README.md daemon)

if ! "$podman" image exists "$ref"; then
    # pip inside the build trusts this machine's CA bundle (egress may pass through an intercepting proxy).
    ca=${ROTAUDIT_PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
    # --format docker: the OCI format has no HEALTHCHECK. --isolation chroot: RUN steps need no OCI runtime
    # or container network (they share the host's, which reaches the package index).
    build=(build --quiet --isolation chroot --format docker --build-arg "BASE=$base")
    [[ -s $ca ]] && build+=(--secret "id=pip_cert,src=$ca")
    if ! "$podman" image exists "$deps"; then
        echo "build-image: building $deps on $base" >&2
        "$podman" "${build[@]}" --target deps --tag "$deps" . >/dev/null
    fi
    echo "build-image: building $ref" >&2
    "$podman" "${build[@]}" --tag "$ref" . >/dev/null
    "$podman" tag "$ref" localhost/rotaudit:latest
    # Keep the storage bounded: drop older trees' images, then the layers nothing tagged uses any more.
    "$podman" images --format '{{.Repository}}:{{.Tag}}' |
        { grep -E '^localhost/rotaudit(-deps)?:' || true; } |
        { grep -vxF -e "$ref" -e "$deps" -e localhost/rotaudit:latest || true; } |
        xargs --no-run-if-empty "$podman" rmi >/dev/null || echo "build-image: kept old images still in use" >&2
    "$podman" image prune --force >/dev/null
fi
"$podman" tag "$ref" localhost/rotaudit:latest
echo "$ref"
