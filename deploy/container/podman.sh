#!/usr/bin/env bash
# podman with this project's settings for a machine without systemd or an image registry: storage kept
# under /var/cache/rotaudit/podman (reused across runs), run state per boot, and containers.conf beside
# this script (runc, cgroupfs, rlimits the machine allows). The storage driver is overlay (native here);
# ROTAUDIT_PODMAN_DRIVER=vfs is the slow fallback for a kernel without overlayfs.
# Use it like podman: deploy/container/podman.sh images, deploy/container/podman.sh run ...
set -euo pipefail

cache=${ROTAUDIT_CACHE:-/var/cache/rotaudit}
driver=${ROTAUDIT_PODMAN_DRIVER:-overlay}
# Run state must not outlive a reboot: key it by the boot id so a restarted machine never sees stale locks.
boot_id=$(cat /proc/sys/kernel/random/boot_id)
run_dir=/run/rotaudit-podman/${boot_id:0:8} # podman refuses a runroot over 50 characters

export CONTAINERS_CONF
CONTAINERS_CONF=$(cd "$(dirname "$0")" && pwd)/containers.conf
exec podman \
    --root "$cache/podman/$driver" \
    --runroot "$run_dir/$driver" \
    --tmpdir "$run_dir/libpod-$driver" \
    --storage-driver "$driver" \
    "$@"
