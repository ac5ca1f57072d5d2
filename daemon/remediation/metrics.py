"""The remediation feature's Prometheus metrics, built once on the app's registry and handed to its parts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class RemediationMetrics:
    """Labels from closed sets only: action kinds, results, outcomes, notification kinds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.remediations = Counter(
            "rotaudit_remediations",
            "Remediation steps by action (remove_pending, rollback, restart_consumers, rotate, escalate, none) "
            "and outcome (applied, already_done, dry_run, failed, skipped, cancelled, claim_lost).",
            ["action", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "rotaudit_remediation_seconds",
            "Time one remediation pass took, from taking the claim to saving its result.",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.notifications = Counter(
            "rotaudit_notifications",
            "SNS notifications published, by kind (remediated, needs_human, recovered, planned).",
            ["kind"],
            registry=registry,
        )
        for kind in ("remediated", "needs_human", "recovered", "planned"):  # at 0 from start-up, as in Metrics
            self.notifications.labels(kind)
