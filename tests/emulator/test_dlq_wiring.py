"""The DLQ gauges as the daemon exports them."""

from __future__ import annotations

from tests.support import wait_until
from tests.support.daemon_thread import DaemonThread
from tests.support.dlq import daemon_config, event_body, seed


def test_the_daemon_exports_the_dlq_gauges(endpoint: str, queue_and_table: dict[str, str]) -> None:
    """Wired through features: the running daemon's registry has the DLQ depth and oldest age."""
    seed(endpoint, queue_and_table["dlq_url"], [(event_body("RotationFailed", f"gauge/{i}"), {}) for i in range(2)])
    with DaemonThread(daemon_config(endpoint, queue_and_table)) as running:
        registry = running.metrics.registry
        wait_until(lambda: registry.get_sample_value("rotaudit_dlq_messages") == 2)
        age = registry.get_sample_value("rotaudit_dlq_oldest_message_age_seconds")
    assert age is not None
    assert age >= 0
