# The chaos runs (tests/chaos). Ingest: replicas SIGKILLed, the emulator stalled, a rolling SIGTERM restart, 5% AWS
# faults. Remediation: rotations that really fail on the rotation stand-in at every step, remediated under SIGKILLs,
# a stall, a rolling restart, faults and duplicate deliveries, then the secrets' end state checked.
# `make test` already runs the short versions through pytest (tests/e2e/test_chaos.py); these are the full ones.
.PHONY: chaos chaos-ingest chaos-remediation

CHAOS_ARGS ?=

## make chaos: both full runs; figures in tests/chaos/out/results.json and tests/chaos/out/remediation-results.json.
chaos: chaos-ingest chaos-remediation

## make chaos-ingest: 10,000 events through 3 replicas under chaos; figures in tests/chaos/out/results.json.
chaos-ingest: install
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

## make chaos-remediation: 112 rotations failing in every way on the stand-in; tests/chaos/out/remediation-results.json.
chaos-remediation: install
	$(BIN)/python -m tests.chaos --remediation $(CHAOS_ARGS)
