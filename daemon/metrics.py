"""Prometheus metrics: one registry per app, so tests and benchmarks build their own.

Labels come from closed sets only (event names, outcomes, reasons, AWS operations): never a secret name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics

from daemon import __version__
from daemon.events import ROTATION_OUTCOMES

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class Metrics:
    """Every metric the daemon exports, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # The *_created series double the exposition and no dashboard reads them. (Untyped upstream.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_processed = Counter(
            "rotaudit_events_processed",
            "Rotation events handled, by event name and outcome (recorded, duplicate, failed).",
            ["event_name", "outcome"],
            registry=r,
        )
        # Rotation outcomes' series exist at 0 from start-up: a series born at 1 hides its first event from
        # increase(), which the alert rules (deploy/prometheus/rules.yml) take of them.
        for event_name in sorted(ROTATION_OUTCOMES):
            for outcome in ("recorded", "duplicate", "failed"):
                self.events_processed.labels(event_name, outcome)
        self.event_processing_seconds = Histogram(
            "rotaudit_event_processing_seconds",
            "Time from receiving a message to its deletion from the queue.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.messages_rejected = Counter(
            "rotaudit_messages_rejected",
            "Messages sent to the DLQ because they are not a usable rotation event, by reason.",
            ["reason"],
            registry=r,
        )
        self.events_in_flight = Gauge("rotaudit_events_in_flight", "Messages received and not yet settled.", registry=r)
        self.event_lag_seconds = Histogram(
            "rotaudit_event_lag_seconds",
            "Now minus the message's SQS SentTimestamp, when its processing starts.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.aws_calls = Counter(
            "rotaudit_aws_calls",
            "AWS API calls made, by service and operation.",
            ["service", "operation"],
            registry=r,
        )
        self.aws_errors = Counter(
            "rotaudit_aws_errors",
            "AWS API calls that failed, by service, operation and kind (transient, permanent, condition: a "
            "conditional write's condition was false, an expected outcome such as a duplicate).",
            ["service", "operation", "kind"],
            registry=r,
        )
        self.messages_received = Counter(
            "rotaudit_messages_received", "Messages received from the rotation-event queue.", registry=r
        )
        self.messages_deleted = Counter(
            "rotaudit_messages_deleted",
            "Messages deleted from the queue after their effects were durable.",
            registry=r,
        )
        self.messages_released = Counter(
            "rotaudit_messages_released",
            "Messages handed back to the queue (visibility 0) or left for redelivery, by reason.",
            ["reason"],
            registry=r,
        )
        self.delete_failures = Counter(
            "rotaudit_message_delete_failures",
            "DeleteMessageBatch entries that failed (the message will be redelivered and deduplicated).",
            registry=r,
        )
        self.visibility_extensions = Counter(
            "rotaudit_visibility_extensions",
            "Messages whose visibility timeout was extended because their work ran long.",
            registry=r,
        )
        self.ready = Gauge("rotaudit_ready", "1 when started and not draining.", registry=r)
        self.cloudtrail_logging = Gauge(
            "rotaudit_cloudtrail_logging",
            "1 when a CloudTrail trail logged this region at start-up, 0 when none did (no event will arrive), NaN "
            "when the check failed.",
            registry=r,
        )
        self.build_info = Info("rotaudit_build", "Build information.", registry=r)
        self.build_info.info({"version": __version__})
