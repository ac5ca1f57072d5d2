#!/usr/bin/env bash
# mk/deploy-checks.sh [--ran WHAT] TARGET... — the deploy checks that `make test` and `make test-deploy` end with.
#
# Each TARGET (test-container, test-evidence, test-monitoring, test-terraform) is run with make when this machine can run it.
# Where it cannot (a laptop that is not Debian, not root, has no podman, terraform or promtool), the check is
# skipped with a line saying what it needs and how to run it, and the run goes on. In CI (CI set and not false)
# and as root on Debian nothing is skipped: every check runs, and a missing tool fails it there. The summary at
# the end lists what passed, failed and was skipped (and WHAT ran before, for `make test`); the exit status is 1
# when a check failed. Running one target by hand (`make test-terraform`) never skips.
#
# Portable bash 3.2 (macOS): no associative arrays, no empty-array expansion under set -u.
# For tests: ROTAUDIT_DEPLOY_UID, ROTAUDIT_DEPLOY_KERNEL and ROTAUDIT_DEPLOY_DEBIAN_FILE stand in for `id -u`,
# `uname -s` and /etc/debian_version, so a test can play a Mac laptop or a root Debian machine; PATH decides which
# tools are there. MAKE names the make to run the targets with; PROMTOOL, PROMETHEUS and ROTAUDIT_CACHE come from the
# Makefile.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
uid=${ROTAUDIT_DEPLOY_UID:-$(id -u)}
kernel=${ROTAUDIT_DEPLOY_KERNEL:-$(uname -s)}
debian_file=${ROTAUDIT_DEPLOY_DEBIAN_FILE:-/etc/debian_version}
make_cmd=${MAKE:-make}

ran=
if [[ ${1:-} == --ran ]]; then
    ran=$2
    shift 2
fi

# Strict: CI, or root on Debian (where every tool can be installed): a check that cannot run is a failure.
strict=0
why_strict=
case ${CI:-} in
    '' | false | FALSE | False | 0) ;;
    *) strict=1 why_strict="CI=$CI" ;;
esac
if [[ $strict == 0 && $uid == 0 && -f $debian_file ]]; then
    strict=1 why_strict="root on Debian"
fi

have() { command -v "$1" >/dev/null 2>&1; }
# Root on Linux with apt-get: the mk/*.mk targets install their Debian packages themselves.
can_apt() { [[ $uid == 0 && $kernel == Linux ]] && have apt-get; }

# need_TARGET: succeeds when this machine can run TARGET; otherwise sets `need` (what is missing) and `how`.
need_test_container() {
    local missing="" tool
    if [[ $kernel != Linux ]]; then
        need="Linux (podman builds and runs the image on the host's kernel, from Debian packages)"
        how="sudo make test-container on a Linux machine (CI runs it)"
        return 1
    fi
    if [[ $uid != 0 ]]; then
        need="root (podman's storage is under /var/cache/rotaudit and its run state under /run)"
        how="sudo make test-container"
        return 1
    fi
    for tool in podman runc mmdebstrap; do have "$tool" || missing="$missing $tool"; done
    if [[ -n $missing ]] && ! can_apt; then
        need="podman, runc and mmdebstrap (missing:$missing), or apt-get to install them"
        how="install them from your distribution, then: make test-container"
        return 1
    fi
}

need_test_monitoring() {
    if can_apt && have dpkg-deb; then return 0; fi
    if { [[ -x ${PROMTOOL:-} ]] || have promtool; } && { [[ -x ${PROMETHEUS:-} ]] || have prometheus; }; then
        return 0
    fi
    need="promtool and prometheus (both ship with Prometheus), on PATH or named by PROMTOOL and PROMETHEUS"
    how="install Prometheus (e.g. brew install prometheus), then: make test-monitoring"
    return 1
}

need_test_evidence() {
    if [[ -n ${CHROMIUM:-} ]] || have chromium || can_apt; then return 0; fi
    need="Chromium (Debian's chromium package, or any Chromium named by CHROMIUM) to render the evidence HTML"
    how="install Chromium, then: CHROMIUM=/path/to/chromium make test-evidence"
    return 1
}

need_test_terraform() {
    if ! have terraform; then
        need="terraform on PATH and a provider mirror holding hashicorp/aws"
        how="install terraform, make a mirror (terraform providers mirror DIR), then: TF_PLUGIN_DIR=DIR make test-terraform"
        return 1
    fi
    if ! "$root/deploy/local.sh" tools >/dev/null 2>&1; then
        need="a provider mirror holding hashicorp/aws (none in TF_PLUGIN_DIR or the usual plugin folders)"
        how="terraform providers mirror DIR in a folder with the AWS provider required, then: TF_PLUGIN_DIR=DIR make test-terraform"
        return 1
    fi
}

passed= failed= skipped=
for target in "$@"; do
    need= how=
    if ! declare -F "need_${target//-/_}" >/dev/null; then
        echo "deploy-checks: no capability check for '$target' (add need_${target//-/_} to $0)" >&2
        exit 64
    fi
    if ! "need_${target//-/_}"; then
        if [[ $strict == 0 ]]; then
            echo "skipped: $target needs $need; run it with: $how"
            skipped="$skipped$target|$need|$how"$'\n'
            continue
        fi
        echo "$target: this machine lacks $need; running it anyway ($why_strict: nothing is skipped)" >&2
    fi
    start=$SECONDS
    if "$make_cmd" --no-print-directory "$target"; then
        passed="$passed$target ($((SECONDS - start)) s)"$'\n'
    else
        failed="$failed$target ($((SECONDS - start)) s)"$'\n'
    fi
done

echo
echo "summary:"
[[ -z $ran ]] || echo "  passed   $ran"
while IFS= read -r line; do [[ -z $line ]] || echo "  passed   $line"; done <<<"$passed"
while IFS= read -r line; do [[ -z $line ]] || echo "  FAILED   $line"; done <<<"$failed"
while IFS='|' read -r target need how; do
    [[ -z $target ]] || printf '  skipped  %s: needs %s\n           run it with: %s\n' "$target" "$need" "$how"
done <<<"$skipped"
if [[ -n $skipped ]]; then
    echo "  (CI and root on Debian skip nothing: there a missing tool fails its check)"
fi
[[ -z $failed ]]
