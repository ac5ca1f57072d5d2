"""The publisher's batching and retries, against a stand-in Security Hub that refuses on demand.

The emulator accepts every well-formed finding: it cannot answer with the per-finding refusals
(`FailedFindings`) AWS sends under load, so this stand-in does, and counts the calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from daemon.findings.asff import Issue, Problem, SecretRef, active_finding
from daemon.findings.metrics import FindingsMetrics
from daemon.findings.publisher import FindingsPublisher

ACCOUNT = "111122223333"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Hub:
    """Answers BatchImportFindings; refuses each id in `refuse` with its code, `times` times."""

    region = "eu-west-1"

    def __init__(self, refuse: dict[str, str] | None = None, times: int = 1) -> None:
        self.refuse = dict(refuse or {})
        self.left = {fid: times for fid in self.refuse}
        self.batches: list[list[str]] = []

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        assert (service, operation) == ("securityhub", "batch_import_findings")
        ids = [f["Id"] for f in params["Findings"]]
        self.batches.append(ids)
        failed = []
        for fid in ids:
            if self.left.get(fid, 0) > 0:
                self.left[fid] -= 1
                failed.append({"Id": fid, "ErrorCode": self.refuse[fid], "ErrorMessage": "no"})
        return {"FailedCount": len(failed), "SuccessCount": len(ids) - len(failed), "FailedFindings": failed}


def findings(count: int) -> list[dict[str, Any]]:
    made = []
    for index in range(count):
        secret = SecretRef(f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:s{index}-AbCdEf", f"s{index}")
        issue = Issue(Problem.NEEDS_ROTATION, secret, NOW, ("older_than_max_age",))
        made.append(active_finding(issue, home_region="eu-west-1", created_at=NOW, updated_at=NOW))
    return made


async def no_sleep(_: float) -> None:
    return None


def publisher(hub: Hub) -> tuple[FindingsPublisher, CollectorRegistry]:
    registry = CollectorRegistry()
    return FindingsPublisher(hub, FindingsMetrics(registry), sleep=no_sleep, max_attempts=3), registry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return float(registry.get_sample_value(name, labels) or 0.0)


async def test_findings_go_in_batches_of_at_most_one_hundred() -> None:
    """250 findings are three calls: 100, 100 and 50 (BatchImportFindings' limit)."""
    hub = Hub()
    sender, registry = publisher(hub)
    assert await sender.publish(findings(250)) == 250
    assert [len(batch) for batch in hub.batches] == [100, 100, 50]
    assert sample(registry, "rotaudit_findings_imported_total", problem="needs_rotation", state="active") == 250


async def test_a_refusal_worth_retrying_is_sent_again_alone() -> None:
    """A finding refused with a throttling code goes again, without the ones already accepted."""
    batch = findings(3)
    hub = Hub({batch[1]["Id"]: "ThrottlingException"})
    sender, registry = publisher(hub)
    assert await sender.publish(batch) == 3
    assert hub.batches == [[f["Id"] for f in batch], [batch[1]["Id"]]]
    assert sample(registry, "rotaudit_findings_failed_total", outcome="refused") == 0


async def test_an_invalid_finding_is_not_retried_and_is_counted() -> None:
    """InvalidInput says the finding itself is wrong: one call, counted as refused, the others imported."""
    batch = findings(2)
    hub = Hub({batch[0]["Id"]: "InvalidInput"})
    sender, registry = publisher(hub)
    assert await sender.publish(batch) == 1
    assert len(hub.batches) == 1
    assert sample(registry, "rotaudit_findings_failed_total", outcome="refused") == 1


async def test_retries_are_bounded() -> None:
    """A finding refused on every attempt is given up after max_attempts calls and counted."""
    batch = findings(1)
    hub = Hub({batch[0]["Id"]: "InternalException"}, times=10)
    sender, registry = publisher(hub)
    assert await sender.publish(batch) == 0
    assert len(hub.batches) == 3
    assert sample(registry, "rotaudit_findings_failed_total", outcome="refused") == 1
