"""The whole exception tree, and the exit codes the process ends with.

    RotauditError
    ├── ConfigError        a setting is missing or bad          → exit 78 (EX_CONFIG)
    ├── StartupError       AWS resources unreachable or unready → exit 3
    ├── AwsError           an AWS call failed (translated in daemon.aws only)
    │   ├── TransientAwsError   throttling, 5xx, timeouts: retry with jittered backoff
    │   └── PermanentAwsError   validation, access denied, not found: do not retry
    ├── ClaimLost          this replica no longer holds a remediation claim: stop acting on it
    ├── LeaseLost          this replica no longer holds the scan window's lease: stop writing the run
    │   internal control flow, private to one module, caught there and never raised past it:
    ├── events._Rejected   a bad message, out of the parsing helpers; `parse_message` returns its `Rejection`
    └── sync.secrets.SyncFailed  one pair's sync cannot go on; `Syncer.sync_pair` returns it as an `error` result

A rejected message is not an exception: `daemon.events.parse_message` returns a `Rejection`.
A duplicate write is not an exception either: `daemon.audit` returns an outcome.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # a bad command line (argparse's own code)
EXIT_STARTUP = 3
EXIT_FINDINGS = 4  # `rotaudit report --fail-on`: the run found what the caller gates on (as Prowler exits 3)
EXIT_FORCED = 130
EXIT_CONFIG = 78


class RotauditError(Exception):
    """Root of every error rotaudit raises on purpose."""


class ConfigError(RotauditError):
    """One or more settings are missing or bad; `problems` names every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class StartupError(RotauditError):
    """A start-up check failed (queue unreachable, table not ACTIVE, ...)."""


class AwsError(RotauditError):
    """An AWS call failed. Carries the service, operation and error code, never a payload."""

    def __init__(self, service: str, operation: str, code: str, message: str) -> None:
        self.service = service
        self.operation = operation
        self.code = code
        # Parsed parts of the error response (e.g. CancellationReasons), for callers that expect them.
        self.details: dict[str, object] = {}
        super().__init__(f"{service}.{operation} failed: {code}: {message}")


class TransientAwsError(AwsError):
    """Worth retrying: throttling, server errors, timeouts, connection failures."""


class PermanentAwsError(AwsError):
    """Not worth retrying: the request itself is wrong or not allowed."""


class ClaimLost(RotauditError):
    """This replica no longer holds the claim: another took it over, or the failure was resolved meanwhile."""


class LeaseLost(RotauditError):
    """Another replica holds the window's lease now: this replica must stop its run."""
