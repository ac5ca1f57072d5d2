"""The DLQ monitor's Prometheus gauges, built once on the app's registry and handed to the monitor."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge


class DlqMetrics:
    """What the DLQ holds and how old its oldest message is: no labels."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Gauge(
            "rotaudit_dlq_messages",
            "Messages in the DLQ: visible, in flight and delayed (GetQueueAttributes).",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "rotaudit_dlq_oldest_message_age_seconds",
            "Age (since SentTimestamp) of the oldest of up to 10 peeked DLQ messages: a lower bound; "
            "0 when empty, NaN when the DLQ has its own redrive policy (no peeking).",
            registry=registry,
        )
