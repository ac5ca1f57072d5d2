"""The open-failure feature's Prometheus metrics: state gauges read from the table, and time to recover."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

# Failure to recovery: Secrets Manager's own retries (minutes), remediation (an hour or two), a person (days).
RECOVERY_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400, 172_800, 604_800, 2_592_000)


class FailureMetrics:
    """No labels: the gauges count secrets fleet-wide, so every replica reports the same values."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge(
            "rotaudit_rotation_failures_open",
            "Secrets with a failed (or abandoned) rotation not yet recovered by a later RotationSucceeded, read "
            "from the audit table (every replica reports the same).",
            registry=registry,
        )
        self.needing_human = Gauge(
            "rotaudit_rotation_failures_needing_human",
            "Secrets whose open failure remediation escalated to a person (needs_human), from the audit table.",
            registry=registry,
        )
        self.oldest = Gauge(
            "rotaudit_rotation_failure_oldest_open_timestamp_seconds",
            "Event time of the oldest failure not yet recovered; 0 when none is open.",
            registry=registry,
        )
        self.refreshed = Gauge(
            "rotaudit_rotation_failures_refresh_timestamp_seconds",
            "When this replica last read the open failures from the audit table.",
            registry=registry,
        )
        self.recovery_seconds = Histogram(
            "rotaudit_rotation_recovery_seconds",
            "Time from a rotation failure to the RotationSucceeded that recovered it (by event times), observed "
            "once per recovery by the replica that closed it.",
            buckets=RECOVERY_BUCKETS,
            registry=registry,
        )
