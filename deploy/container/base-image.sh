#!/usr/bin/env bash
# Print a local base image reference with Python 3.11, built from Debian packages (no image registry needed).
#
# mmdebstrap makes a minimal Debian root filesystem with python3; `podman import` turns it into an image.
# The tarball is cached under $ROTAUDIT_CACHE/container, keyed by everything that goes into it, and the
# image is imported once per key, so repeated builds keep their layer cache.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
podman=$here/podman.sh
cache=${ROTAUDIT_CACHE:-/var/cache/rotaudit}/container
suite=bookworm # Debian 12: python3 is 3.11, like python:3.11-slim
packages=python3,python3-venv,ca-certificates
dpkg_opts=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
)
changes=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'CMD ["python3"]'
)

# sha1sum is GNU coreutils; macOS has shasum, which prints the same.
sha1=(sha1sum)
command -v sha1sum >/dev/null || sha1=(shasum -a 1)
key=$(printf '%s\n' "$suite" "$packages" "${dpkg_opts[@]}" "${changes[@]}" | "${sha1[@]}" | cut -c1-12)
ref=localhost/rotaudit-base:$suite-$key
tarball=$cache/base-$suite-$key.tar

if "$podman" image exists "$ref"; then
    echo "$ref"
    exit 0
fi
if [[ ! -f $tarball ]]; then
    mkdir -p "$cache"
    rm -rf "$tarball.partial"
    echo "base-image: mmdebstrap $suite with $packages -> $tarball" >&2
    mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" "${dpkg_opts[@]}" "$suite" "$tarball.partial" >&2
    mv "$tarball.partial" "$tarball"
fi
echo "base-image: importing $tarball as $ref" >&2
"$podman" import --quiet "${changes[@]}" "$tarball" "$ref" >/dev/null
echo "$ref"
