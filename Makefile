# rotaudit — every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The hash-pinned locks `make lock` writes: runtime.txt (the image) and dev.txt (runtime + dev, what .venv gets).
LOCKS := requirements/runtime.txt requirements/dev.txt
# Keyed by pyproject.toml and the locks, so a change to any of them reinstalls. cksum is POSIX (macOS has no sha1sum).
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCKS) | cksum | cut -d' ' -f1)
# The deploy checks' tools (checkov, hadolint, promtool, uv, podman's storage): shared by every checkout of the
# machine as root (CI, the Debian machines), in the user's own cache otherwise.
ROTAUDIT_CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/rotaudit,$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rotaudit)

.PHONY: install run test lint typecheck unit bench clean test-deploy lock

# Each deploy concern (container, terraform, monitoring, chaos) keeps its own targets in mk/<name>.mk.
include $(sort $(wildcard mk/*.mk))

install: $(STAMP)

# Every package comes from dev.txt with its hash checked; the project itself goes in editable, without deps.
$(STAMP): pyproject.toml $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

# uv pins for every platform (--universal: a Mac gets hashes for its wheels too), as Python 3.11 resolves.
UV_VERSION := 0.13.8
UV_VENV := $(ROTAUDIT_CACHE)/uv-venv-$(UV_VERSION)
UV_COMPILE = $(UV_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_ARGS)

## make lock: re-pin requirements/runtime.txt and dev.txt from pyproject.toml, with hashes. Pins already there stay
## unless pyproject.toml rules them out; LOCK_ARGS=--upgrade (or --upgrade-package NAME) moves them. dev.txt is
## held to runtime.txt's pins, so the image runs what the tests ran.
lock: $(UV_VENV)/.installed
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.txt
	$(UV_COMPILE) --extra dev -c requirements/runtime.txt pyproject.toml -o requirements/dev.txt

$(UV_VENV)/.installed:
	@set -euo pipefail; \
	rm -rf $(UV_VENV); mkdir -p $(ROTAUDIT_CACHE); \
	$(PYTHON) -m venv $(UV_VENV); \
	$(UV_VENV)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION); \
	touch $@

## make run: the daemon on an embedded AWS emulator, seeded with demo secrets and events.
run: install
	$(BIN)/rotaudit local

## make test: lint, type-check and every test, then a summary of what ran and what this machine had to skip.
test: install lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -m "not deploy"
	@$(DEPLOY_CHECKS) --ran "ruff, mypy --strict, pytest -m 'not deploy'" $(DEPLOY_TESTS)

## make test-deploy: the container image, Terraform, Prometheus rules and dashboard (each target in mk/*.mk runs
## its own file in tests/deploy/, which the main pytest run leaves out by the `deploy` marker). mk/deploy-checks.sh
## runs each one this machine can run and skips, saying why and how, those it cannot; in CI (CI=true) and as root
## on Debian it skips nothing, so a missing tool fails there. `make test-container` (etc.) alone never skips.
test-deploy: install
	@$(DEPLOY_CHECKS) $(DEPLOY_TESTS)

# DEPLOY_MAKE is expanded here, so the recipes do not name $(MAKE): `make -n test` then runs no deploy check.
DEPLOY_MAKE := $(MAKE)
DEPLOY_CHECKS = ROTAUDIT_CACHE=$(ROTAUDIT_CACHE) PROMTOOL=$(PROMTOOL) PROMETHEUS=$(PROMETHEUS) MAKE="$(DEPLOY_MAKE)" mk/deploy-checks.sh

lint: install
	$(BIN)/ruff check daemon tests $(wildcard bench)
	$(BIN)/ruff format --check daemon tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy

## make bench: ingest benchmark against baselines on the same emulator; writes bench/results.json.
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
