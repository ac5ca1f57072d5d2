"""The age scan's Prometheus metrics: run outcomes and durations, what the last run found, optional per-secret ages."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_SCAN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class SecretAgeCollector(Collector):
    """`rotaudit_secret_age_seconds{secret_name,account,region}`: the last run's ages, swapped in whole."""

    def __init__(self) -> None:
        self._ages: dict[tuple[str, str, str], float] = {}

    def publish(self, ages: dict[tuple[str, str, str], float]) -> None:
        self._ages = ages

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "rotaudit_secret_age_seconds",
            "Per scanned secret: seconds since its last rotation or current version, at the last run.",
            labels=["secret_name", "account", "region"],
        )
        for labels, seconds in self._ages.items():
            family.add_metric(list(labels), seconds)
        yield family


class ScanMetrics:
    """The scan's metrics, built once on the app's registry; `age_gauge` adds the per-secret ages (opt-in: their
    labels name secrets, and /metrics is served without authentication)."""

    def __init__(self, r: CollectorRegistry, *, age_gauge: bool = False) -> None:
        self.runs = Counter(
            "rotaudit_scan_runs", "Scan runs by outcome (succeeded, partial, failed, skipped).", ["outcome"], registry=r
        )
        self.duration = Histogram(
            "rotaudit_scan_duration_seconds", "Wall time of a scan run.", buckets=_SCAN_BUCKETS, registry=r
        )
        self.last_success = Gauge(
            "rotaudit_scan_last_success_timestamp_seconds", "End of the last fully successful run.", registry=r
        )
        self.checked = Gauge("rotaudit_secrets_checked", "Secrets checked by the last run.", registry=r)
        self.needing = Gauge("rotaudit_secrets_needing_rotation", "Secrets flagged by the last run.", registry=r)
        self.ages = SecretAgeCollector() if age_gauge else None
        if self.ages is not None:
            r.register(self.ages)
