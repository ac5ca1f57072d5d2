# Monitoring: the Prometheus scrape config, alert rules and their unit tests, and the Grafana dashboard.
#
# promtool and prometheus come from Debian's `prometheus` package (2.42). Only its two static binaries are needed,
# so the package is fetched with `apt-get download` and unpacked into the cache with `dpkg-deb -x`: nothing is
# installed system-wide, no prometheus service is enabled or started, no dpkg lock is taken, and no dependency is
# pulled. The server runs only inside tests/deploy/test_prometheus_live.py, on a temporary directory and port.

MONITORING_CACHE ?= $(ROTAUDIT_CACHE)/monitoring
# A promtool on PATH (e.g. from a Prometheus install) is used as it is.
PROMTOOL ?= $(or $(shell command -v promtool 2>/dev/null),$(MONITORING_CACHE)/bin/promtool)
PROMETHEUS ?= $(or $(shell command -v prometheus 2>/dev/null),$(MONITORING_CACHE)/bin/prometheus)

.PHONY: monitoring-tools test-monitoring
DEPLOY_TESTS += test-monitoring

## make monitoring-tools: promtool and prometheus from Debian's prometheus package, under $(MONITORING_CACHE).
monitoring-tools: $(PROMTOOL) $(PROMETHEUS)

# Either one missing (a cache made before the server was needed holds only promtool) fetches both; each lands by
# rename from a directory in the cache, so a test running the other one never sees it missing.
$(PROMTOOL) $(PROMETHEUS):
	@set -euo pipefail; \
	mkdir -p $(MONITORING_CACHE); \
	work=$$(mktemp -d $(MONITORING_CACHE)/fetch.XXXXXX); \
	trap 'rm -rf "$$work"' EXIT; \
	apt-get update -qq -o DPkg::Lock::Timeout=300; \
	cd "$$work" && apt-get download -qq -o APT::Sandbox::User=root prometheus; \
	dpkg-deb -x prometheus_*.deb "$$work/root"; \
	"$$work/root/usr/bin/promtool" --version | head -1; \
	mkdir -p $(MONITORING_CACHE)/bin; \
	mv "$$work/root/usr/bin/prometheus" $(MONITORING_CACHE)/bin/prometheus; \
	mv "$$work/root/usr/bin/promtool" $(MONITORING_CACHE)/bin/promtool


## make test-monitoring: promtool check config/rules, promtool test rules, the metric-name cross-checks, and the
## rules in a real Prometheus scraping a daemon whose rotation failed before the first scrape.
test-monitoring: install monitoring-tools
	PROMTOOL=$(PROMTOOL) PROMETHEUS=$(PROMETHEUS) $(BIN)/pytest -q -p no:cacheprovider \
		tests/deploy/test_monitoring.py tests/deploy/test_prometheus_live.py
