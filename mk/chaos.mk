# The chaos run (tests/chaos): replicas SIGKILLed, the emulator stalled, a rolling SIGTERM restart, 5% AWS faults.
# `make test` already runs the short version through pytest (tests/e2e/test_chaos.py); this is the full one.
.PHONY: chaos

CHAOS_ARGS ?=

## make chaos: 10,000 events through 3 replicas under chaos; figures in tests/chaos/out/results.json.
chaos: install
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)
