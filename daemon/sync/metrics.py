"""The derived-secret sync's Prometheus metrics, built once on the app's registry and handed to the syncer."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SyncMetrics:
    """Per pair (a closed set: the configured pairs): syncs by outcome, and the last time it was in sync."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.syncs = Counter(
            "rotaudit_sync", "Syncs of derived secrets, by pair and outcome.", ["pair", "outcome"], registry=registry
        )
        self.last_success = Gauge(
            "rotaudit_sync_last_success_timestamp_seconds",
            "When a pair was last found or made in sync.",
            ["pair"],
            registry=registry,
        )
