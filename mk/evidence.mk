# Evidence: the `rotaudit evidence` HTML rendered, printed and read back in headless Chromium (Debian's package).
#
# Chromium is installed with apt-get (after apt-get update) only when it is missing; an installed one is reused.

.PHONY: evidence-tools test-evidence
DEPLOY_TESTS += test-evidence

## make evidence-tools: Debian's chromium, unless one is installed (or CHROMIUM names one).
evidence-tools:
	@test -n "$${CHROMIUM:-}" || command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq -o DPkg::Lock::Timeout=300 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 chromium; }

## make test-evidence: the evidence HTML in headless Chromium, checked against the JSON output.
## EVIDENCE_SCREENSHOT=deploy/evidence/report.png also keeps its screenshot (the README's).
test-evidence: install evidence-tools
	CHROMIUM=$${CHROMIUM:-$$(command -v chromium)} EVIDENCE_SCREENSHOT=$(EVIDENCE_SCREENSHOT) $(BIN)/pytest -q -p no:cacheprovider tests/deploy/test_evidence_html.py
