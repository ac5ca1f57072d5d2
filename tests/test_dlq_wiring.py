"""The DLQ gauges as the daemon exports them."""

from __future__ import annotations

from tests.daemon_thread import DaemonThread
from tests.dlq_support import daemon_config, event_body, seed
from tests.support import wait_until


def test_the_daemon_exports_the_dlq_gauges(endpoint: str, stack: dict[str, str]) -> None:
    """Wired through features: the running daemon's registry has the DLQ depth and oldest age."""
    seed(endpoint, stack["dlq_url"], [(event_body("RotationFailed", f"gauge/{i}"), {}) for i in range(2)])
    with DaemonThread(daemon_config(endpoint, stack)) as running:
        registry = running.metrics.registry
        wait_until(lambda: registry.get_sample_value("rotaudit_dlq_messages") == 2)
        age = registry.get_sample_value("rotaudit_dlq_oldest_message_age_seconds")
    assert age is not None
    assert age >= 0
