#!/usr/bin/env bash
# deploy/local.sh up | test | down | tools — the Terraform stack (deploy/terraform/examples/complete, which calls
# modules/rotaudit) on the embedded AWS emulator.
#
#   up    start the emulator if nothing answers on the port, apply examples/complete from a working copy of
#         deploy/terraform (with the emulator provider settings of deploy/terraform/emulator/), seed three demo secrets
#   test  the three scenarios: the schedule is what we configured, a rotation check (`rotaudit scan --once`)
#         flags the right secrets, and the audit rows carry status and timestamp; then `rotaudit doctor`
#   down  delete the demo secrets, destroy the stack, check nothing with the prefix is left, stop the emulator
#         if `up` started it
#   tools check that terraform and a provider mirror holding hashicorp/aws are here (`make terraform-tools`)
#
# Each step prints its time. Settings (environment): ROTAUDIT_LOCAL_PORT (4566), ROTAUDIT_LOCAL_PREFIX
# (rotaudit-local), ROTAUDIT_LOCAL_SCHEDULE ("rate(1 hour)"), ROTAUDIT_LOCAL_DIR (working copy, state and logs;
# default $TMPDIR/rotaudit-local-PORT), TF_PLUGIN_DIR (a provider mirror; found in the usual places if unset),
# ROTAUDIT_LOCAL_VERBOSE=1 (stream terraform's output).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${ROTAUDIT_PYTHON:-$ROOT/.venv/bin/python}
HOST=127.0.0.1
PORT=${ROTAUDIT_LOCAL_PORT:-4566}
ENDPOINT=http://$HOST:$PORT
PREFIX=${ROTAUDIT_LOCAL_PREFIX:-rotaudit-local}
SCHEDULE=${ROTAUDIT_LOCAL_SCHEDULE:-rate(1 hour)}
DIR=${ROTAUDIT_LOCAL_DIR:-${TMPDIR:-/tmp}/rotaudit-local-$PORT}
TREE=$DIR/terraform   # a copy of deploy/terraform's modules and examples/complete
WORK=$TREE/examples/complete

# Only the emulator: fake credentials, no profile, no real endpoint.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=$ENDPOINT
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export TF_IN_AUTOMATION=1 TF_INPUT=0
# The AWS provider is a 700 MB Go binary that starts several times per command and collects garbage hard while
# it builds its schema: GOGC=400 trades ~200 MB per provider process for ~30% less CPU (measured here).
export GOGC=${GOGC:-400}
# A CLI config that names a missing file only makes terraform warn on every command.
if [[ -n ${TF_CLI_CONFIG_FILE:-} && ! -e $TF_CLI_CONFIG_FILE ]]; then unset TF_CLI_CONFIG_FILE; fi

# Seconds since the epoch: to the microsecond on bash 5 (EPOCHREALTIME; a comma in some locales), whole seconds on
# macOS's bash 3.2, which has no EPOCHREALTIME (and under set -u would stop on it).
now() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then printf '%s' "${EPOCHREALTIME/,/.}"; else date +%s; fi
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# step NAME COMMAND...: run, print the seconds it took; on failure show the command's log.
step() {
    local name=$1 t0 log rc=0
    shift
    t0=$(now)
    log="$DIR/logs/${name// /-}.log"
    if [[ ${ROTAUDIT_LOCAL_VERBOSE:-0} == 1 ]]; then
        "$@" 2>&1 | tee "$log" || rc=$?
    else
        "$@" >"$log" 2>&1 || rc=$?
    fi
    printf '  %-24s %6s s\n' "$name" "$(since "$t0")"
    if ((rc != 0)); then
        echo "local.sh: '$name' failed (exit $rc); the end of $log:" >&2
        tail -n 40 "$log" >&2
    fi
    return "$rc"
}

helper() { (cd "$ROOT" && "$PY" -m tests.support.terraform "$1" --endpoint "$ENDPOINT" --prefix "$PREFIX" \
    --schedule "$SCHEDULE" "${@:2}"); }

answering() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

start_emulator() {
    if answering; then
        echo "an emulator already answers at $ENDPOINT: using it"
        return
    fi
    (cd "$ROOT" && exec "$PY" -m daemon.devtools.emulator --host "$HOST" --port "$PORT") >"$DIR/emulator.out" 2>&1 &
    echo $! >"$DIR/emulator.pid"
    local deadline=$((SECONDS + 30))
    until answering; do
        kill -0 "$(cat "$DIR/emulator.pid")" 2>/dev/null || { cat "$DIR/emulator.out"; return 1; }
        ((SECONDS < deadline)) || { echo "the emulator did not answer at $ENDPOINT within 30 s"; return 1; }
        sleep 0.1
    done
    echo "started the emulator at $ENDPOINT (pid $(cat "$DIR/emulator.pid"))"
}

stop_emulator() {
    [[ -f $DIR/emulator.pid ]] || { echo "the emulator was not started by local.sh: left running"; return; }
    local pid
    pid=$(cat "$DIR/emulator.pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$DIR/emulator.pid"
    echo "stopped the emulator (pid $pid)"
}

plugin_dir() {
    local candidate
    for candidate in ${TF_PLUGIN_DIR:-} /opt/tf-plugins "$HOME/.terraform.d/plugins" \
        "${XDG_DATA_HOME:-$HOME/.local/share}/terraform/plugins" /usr/local/share/terraform/plugins \
        /usr/share/terraform/plugins; do
        if [[ -d $candidate/registry.terraform.io/hashicorp/aws ]]; then
            printf '%s' "$candidate"
            return
        fi
    done
}

working_copy() {
    rm -rf "$TREE" && mkdir -p "$WORK" "$TREE/modules"
    cp -R "$ROOT"/deploy/terraform/modules/rotaudit "$TREE/modules/"
    cp "$ROOT"/deploy/terraform/examples/complete/*.tf "$ROOT"/deploy/terraform/examples/complete/.terraform.lock.hcl \
        "$ROOT"/deploy/terraform/emulator/*.tf "$WORK"/
    helper tfvars >"$WORK/terraform.tfvars.json"
    cat "$WORK/terraform.tfvars.json"
}

terraform_init() {
    local mirror
    mirror=$(plugin_dir)
    if [[ -n $mirror ]]; then
        terraform -chdir="$WORK" init -input=false -no-color -plugin-dir="$mirror"
    else
        terraform -chdir="$WORK" init -input=false -no-color # no local mirror: from the registry
    fi
}

outputs() { terraform -chdir="$WORK" output -no-color -json >"$DIR/outputs.json" && cat "$DIR/outputs.json"; }

up() {
    local t0
    t0=$(now)
    mkdir -p "$DIR/logs"
    command -v terraform >/dev/null || { echo "local.sh: terraform is not on PATH" >&2; exit 1; }
    [[ -x $PY ]] || { echo "local.sh: no $PY: run 'make install' first" >&2; exit 1; }
    echo "local.sh up: stack '$PREFIX' on $ENDPOINT (working copy $WORK)"
    step "emulator" start_emulator
    step "working copy" working_copy
    step "terraform init" terraform_init
    step "terraform apply" terraform -chdir="$WORK" apply -auto-approve -input=false -no-color
    step "outputs" outputs
    step "seed secrets" helper seed
    printf '  %-24s %6s s\n' "up total" "$(since "$t0")"
}

# `rotaudit doctor` on the stack, configured from its outputs as the task is. Not --probe: ECS tasks never run on the
# emulator, so no daemon would record the probe.
run_doctor() {
    output() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["value"])' "$DIR/outputs.json" "$1"; }
    (cd "$ROOT" && ROTAUDIT_QUEUE_URL=$(output queue_url) ROTAUDIT_DLQ_URL=$(output dlq_url) \
        ROTAUDIT_AUDIT_TABLE=$(output table_name) ROTAUDIT_SNS_TOPIC_ARN=$(output topic_arn) \
        "$PY" -m daemon doctor --prefix "$PREFIX" --role-arn "$(output task_role_arn)")
}

run_tests() {
    local t0
    t0=$(now)
    [[ -f $DIR/outputs.json ]] || { echo "local.sh: no stack in $DIR: run 'deploy/local.sh up' first" >&2; exit 1; }
    echo "local.sh test: stack '$PREFIX' on $ENDPOINT"
    mkdir -p "$DIR/logs"
    step "scenarios" helper scenarios --outputs "$DIR/outputs.json"
    grep -E '^  (PASS|FAIL)' "$DIR/logs/scenarios.log" || true
    step "doctor" run_doctor
    grep -E '^[^ ]+ +(FAIL|WARN) ' "$DIR/logs/doctor.log" | sed 's/^/  /' || true
    printf '  %-24s %6s s\n' "test total" "$(since "$t0")"
}

down() {
    local t0
    t0=$(now)
    echo "local.sh down: stack '$PREFIX' on $ENDPOINT"
    mkdir -p "$DIR/logs"
    # Whatever fails below, an emulator that `up` started does not outlive `down`.
    trap 'stop_emulator >/dev/null 2>&1 || true' EXIT
    if answering; then
        step "delete secrets" helper unseed
        # moto's DeleteTrail ignores the ARN terraform destroy passes (AWS takes a name or an ARN): by name first.
        step "delete trail by name" helper delete-trail
        if [[ -f $WORK/terraform.tfstate ]]; then
            step "terraform destroy" terraform -chdir="$WORK" destroy -auto-approve -input=false -no-color
        fi
        local left=0
        step "nothing left behind" helper leftovers || left=$?
        grep -E '^  (clean|left)' "$DIR/logs/nothing-left-behind.log" || true
        ((left == 0)) || exit "$left"
    else
        echo "  no emulator answers at $ENDPOINT: nothing to tear down"
    fi
    step "stop emulator" stop_emulator
    rm -rf "$TREE" "$DIR/outputs.json"
    printf '  %-24s %6s s\n' "down total" "$(since "$t0")"
}

tools() {
    command -v terraform >/dev/null || { echo "local.sh: terraform is not on PATH" >&2; exit 1; }
    terraform version -no-color | sed -n 1p
    local mirror
    mirror=$(plugin_dir)
    [[ -n $mirror ]] || { echo "local.sh: no provider mirror holding hashicorp/aws: set TF_PLUGIN_DIR" >&2; exit 1; }
    echo "provider mirror: $mirror"
}

case ${1:-} in
    up) up ;;
    test) run_tests ;;
    down) down ;;
    tools) tools ;;
    *)
        echo "usage: deploy/local.sh up | test | down | tools" >&2
        exit 64
        ;;
esac
