# Monitoring: the Prometheus scrape config, alert rules and their unit tests, and the Grafana dashboard.
#
# promtool comes from Debian's `prometheus` package. Only its promtool (one static binary) is needed, so the
# package is fetched with `apt-get download` and unpacked into the cache with `dpkg-deb -x`: nothing is installed
# system-wide, no prometheus service is enabled or started, no dpkg lock is taken, and no dependency is pulled.

MONITORING_CACHE ?= $(ROTAUDIT_CACHE)/monitoring
# A promtool on PATH (e.g. from a Prometheus install) is used as it is.
PROMTOOL ?= $(or $(shell command -v promtool 2>/dev/null),$(MONITORING_CACHE)/bin/promtool)

.PHONY: monitoring-tools test-monitoring
DEPLOY_TESTS += test-monitoring

## make monitoring-tools: promtool from Debian's prometheus package, unpacked under $(MONITORING_CACHE).
monitoring-tools: $(PROMTOOL)

$(PROMTOOL):
	@set -euo pipefail; \
	mkdir -p $(MONITORING_CACHE); \
	work=$$(mktemp -d $(MONITORING_CACHE)/fetch.XXXXXX); \
	trap 'rm -rf "$$work"' EXIT; \
	apt-get update -qq -o DPkg::Lock::Timeout=300; \
	cd "$$work" && apt-get download -qq -o APT::Sandbox::User=root prometheus; \
	dpkg-deb -x prometheus_*.deb "$$work/root"; \
	"$$work/root/usr/bin/promtool" --version | head -1; \
	mkdir -p $(dir $(PROMTOOL)) && mv "$$work/root/usr/bin/promtool" $(PROMTOOL)


## make test-monitoring: promtool check config/rules, promtool test rules, and the metric-name cross-checks.
test-monitoring: install monitoring-tools
	PROMTOOL=$(PROMTOOL) $(BIN)/pytest -q -p no:cacheprovider tests/deploy/test_monitoring.py
