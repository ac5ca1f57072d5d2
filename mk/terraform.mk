# Terraform: deploy/terraform linted by checkov, applied to the embedded emulator through deploy/local.sh,
# compared with `rotaudit provision`, run through the tutorial's three scenarios and destroyed
# (tests/deploy/test_terraform.py, which runs the whole `local.sh up && test && down` loop).
#
# terraform and the hashicorp/aws provider are in no registry this project reaches: the machine image ships
# them (terraform on PATH, a provider mirror in /opt/tf-plugins). `make terraform-tools` checks for them.
# checkov pins an old boto3, so it lives in its own venv under the cache, keyed by its version.

ROTAUDIT_CACHE ?= /var/cache/rotaudit
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(ROTAUDIT_CACHE)/checkov-venv-$(CHECKOV_VERSION)
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: checkov-tools terraform-tools test-terraform local-loop
DEPLOY_TESTS += test-terraform

## make checkov-tools: checkov $(CHECKOV_VERSION) in its own venv under $(ROTAUDIT_CACHE).
checkov-tools: $(CHECKOV_STAMP)

$(CHECKOV_STAMP):
	@set -euo pipefail; \
	rm -rf $(CHECKOV_VENV); mkdir -p $(ROTAUDIT_CACHE); \
	$(PYTHON) -m venv $(CHECKOV_VENV); \
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check checkov==$(CHECKOV_VERSION) 2>&1 \
		| { grep -v "^WARNING: Location 'file:" || true; }; \
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV) --version; \
	touch $@

## make terraform-tools: check that terraform and a provider mirror with hashicorp/aws are on this machine.
terraform-tools:
	@deploy/local.sh tools || { echo "terraform and the provider mirror come with this machine's image; they cannot be fetched here" >&2; exit 1; }


## make test-terraform: checkov, then the stack up, checked, scenarios, down on the emulator (tests/deploy/test_terraform.py),
## and the task role held to what the daemon's code calls, planned for several settings (tests/deploy/test_iam.py).
test-terraform: install checkov-tools terraform-tools
	CHECKOV=$(CHECKOV) $(BIN)/pytest -q -p no:cacheprovider tests/deploy/test_terraform.py tests/deploy/test_iam.py

## make local-loop: deploy/local.sh up, test and down on an emulator of its own, each step timed.
local-loop: install terraform-tools
	@set -euo pipefail; \
	export ROTAUDIT_LOCAL_PORT=$$($(BIN)/python -c 'from tests.support import free_port; print(free_port())'); \
	export ROTAUDIT_LOCAL_DIR=$$(mktemp -d); \
	trap 'deploy/local.sh down >/dev/null 2>&1 || true; rm -rf "$$ROTAUDIT_LOCAL_DIR"' EXIT; \
	start=$$(date +%s); deploy/local.sh up && deploy/local.sh test && deploy/local.sh down; \
	echo "local loop: $$(( $$(date +%s) - start )) s"
