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

# sha1sum is GNU coreutils; macOS has shasum, which prints the same. An array, not a function: xargs runs it.
sha1=(sha1sum)
command -v sha1sum >/dev/null || sha1=(shasum -a 1)

# hash_of EXTRA FILE...: a short hash of the base, EXTRA and the files' contents.
hash_of() {
    local extra=$1
    shift
    # Without daemon/devtools/, which .dockerignore keeps out of the context (a change there rebuilds nothing).
    find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path 'daemon/devtools/*' -print0 | sort -z |
        xargs -0 "${sha1[@]}" |
        { echo "$base"; [[ -z $extra ]] || echo "$extra"; cat; } | "${sha1[@]}" | cut -c1-12
}

base=$("$here/base-image.sh")
# The OCI labels' facts: the version from its one place (daemon/__init__.py), the commit from git. A tree with
# uncommitted changes is labelled <commit>-dirty, so the label never claims a commit the image was not built from.
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' daemon/__init__.py)
[[ -n $version ]] || { echo "build-image: no __version__ = \"...\" in daemon/__init__.py" >&2; exit 1; }
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown && -n $(git status --porcelain -- Dockerfile .dockerignore pyproject.toml requirements README.md LICENSE daemon 2>/dev/null) ]]; then
    revision=$revision-dirty
fi
labels="version=$version revision=$revision"
deps=localhost/rotaudit-deps:$(hash_of "" Dockerfile pyproject.toml requirements/runtime.txt)
# The files .dockerignore lets into the context, and the labels (a new commit is a new image, however small).
ref=localhost/rotaudit:ctx-$(hash_of "$labels" Dockerfile .dockerignore pyproject.toml requirements/runtime.txt README.md LICENSE daemon)

if ! "$podman" image exists "$ref"; then
    # pip inside the build trusts this machine's CA bundle (egress may pass through an intercepting proxy).
    ca=${ROTAUDIT_PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
    # --format docker: the OCI format has no HEALTHCHECK. --isolation chroot: RUN steps need no OCI runtime
    # or container network (they share the host's, which reaches the package index).
    build=(build --quiet --isolation chroot --format docker --build-arg "BASE=$base"
        --build-arg "VERSION=$version" --build-arg "REVISION=$revision")
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
        while read -r old; do "$podman" rmi "$old" >/dev/null || echo "build-image: kept $old, still in use" >&2; done
    "$podman" image prune --force >/dev/null
fi
"$podman" tag "$ref" localhost/rotaudit:latest
echo "$ref"
