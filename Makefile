# rotaudit — every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/lock.txt | sha1sum | cut -c1-12)

.PHONY: install run test lint typecheck unit bench clean test-deploy

# Each deploy concern (container, terraform, monitoring, chaos) keeps its own targets in mk/<name>.mk.
include $(sort $(wildcard mk/*.mk))

install: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## make run: the daemon on an embedded AWS emulator, seeded with demo secrets and events.
run: install
	$(BIN)/rotaudit local

## make test: lint, type-check and every test.
test: install lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -m "not deploy"
	$(MAKE) test-deploy

## make test-deploy: the container image, Terraform, Prometheus rules and dashboard (each target in mk/*.mk runs
## its own file in tests/deploy/, which the main pytest run leaves out by the `deploy` marker).
test-deploy: $(DEPLOY_TESTS)

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
