"""Derived secrets against the emulator: bad input, missing secrets, AWS down, and no password anywhere."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest
import structlog
from prometheus_client import CollectorRegistry

from daemon.audit import Outcome
from daemon.aws import Aws
from daemon.config_values import SyncPair
from daemon.errors import TransientAwsError
from daemon.logs import configure_logging
from daemon.sync.metrics import SyncMetrics
from daemon.sync.syncer import Syncer, SyncOutcome, Trigger
from tests.support import REGION, boto, free_port
from tests.support.sync import (
    INITIAL_URL,
    NASTY_PASSWORD,
    alert_queue,
    alerts,
    all_items,
    drain,
    eventually,
    make_secret,
    new_syncer,
    parsed_event,
    rds_pair,
    rotate,
    sync_count,
    sync_items,
    unique_name,
    versions,
)


@pytest.fixture
async def aws(endpoint: str) -> AsyncIterator[Aws]:
    async with Aws(REGION, endpoint_url=endpoint, max_attempts=2) as client:
        yield client


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line of the test, as JSON, at debug level."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    yield stream
    structlog.reset_defaults()


# --- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source_value", "target_value", "template", "reason"),
    [
        ({"username": "app"}, INITIAL_URL, "", "missing_field"),
        ({"username": "app", "password": "pw"}, json.dumps({"url": INITIAL_URL}), "", "target_unparseable"),
        ({"username": "app", "password": "pw"}, INITIAL_URL, "{password}@{hots}", "bad_template"),
    ],
)
async def test_bad_input_leaves_the_target_untouched_and_alerts_once(
    endpoint: str,
    stack: dict[str, str],
    source_value: dict[str, str],
    target_value: str,
    template: str,
    reason: str,
    aws: Aws,
) -> None:
    """A missing field, an unparseable target or an unknown template field: error audited, counted, alerted once."""
    alert_url = alert_queue(endpoint, stack["topic_arn"])
    source = make_secret(endpoint, unique_name("src"), json.dumps(source_value))
    target = make_secret(endpoint, unique_name("dst"), target_value)
    pair = SyncPair(name="bad", source=source, target=target, template=template)
    registry = CollectorRegistry()
    syncer = new_syncer(aws, stack, pair, registry=registry)
    results = [*(await syncer.run_once()), *(await syncer.run_once(trigger=Trigger.RECONCILE))]
    assert [(r.outcome, r.reason) for r in results] == [(SyncOutcome.ERROR, reason)] * 2
    assert versions(endpoint, target) == 1
    assert sync_count(registry, "bad", "error") == 2
    items = sync_items(endpoint, stack["table_name"], target)
    assert [(item["outcome"], item["reason"]) for item in items] == [("error", reason)] * 2
    sent = await eventually(lambda: alerts(endpoint, alert_url))
    assert [(alert["pair"], alert["reason"]) for alert in sent] == [("bad", reason)]


async def test_missing_secrets_are_errors(endpoint: str, stack: dict[str, str], aws: Aws) -> None:
    """A source or target that does not exist is an error, audited under the configured target."""
    source = make_secret(endpoint, unique_name("src"), json.dumps({"username": "app", "password": "pw"}))
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope-{uuid.uuid4().hex[:6]}"
    pairs = (
        SyncPair(name="no-source", source=unique_name("absent"), target=source),
        SyncPair(name="no-target", source=source, target=missing),
    )
    results = await new_syncer(aws, stack, *pairs).run_once()
    assert [(r.outcome, r.reason) for r in results] == [
        (SyncOutcome.ERROR, "source_not_found"),
        (SyncOutcome.ERROR, "target_not_found"),
    ]
    assert [item["reason"] for item in sync_items(endpoint, stack["table_name"], missing)] == ["target_not_found"]


async def test_transient_failures_retry_the_event_and_fail_the_reconcile(stack: dict[str, str]) -> None:
    """With AWS unreachable the hook raises for redelivery; run_once reports aws_unavailable."""
    pair = SyncPair(name="p", source="src", target="dst")
    async with Aws(REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1) as down:
        syncer = Syncer(down, (pair,), audit_table=stack["table_name"], metrics=SyncMetrics(CollectorRegistry()))
        event = parsed_event("RotationSucceeded", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:src-abcdef")
        with pytest.raises(TransientAwsError):
            await syncer.on_event(event, Outcome.RECORDED)
        assert [(r.outcome, r.reason) for r in await syncer.run_once()] == [(SyncOutcome.ERROR, "aws_unavailable")]


# --- no leaks --------------------------------------------------------------------------------------------
async def test_no_password_in_logs_audit_items_alerts_or_metrics(
    endpoint: str,
    aws: Aws,
    stack: dict[str, str],
    logs: io.StringIO,
) -> None:
    """Updates, duplicates, a repair, bad input and a failed redeploy: the password appears nowhere we write."""
    pair, source, target = rds_pair(endpoint)
    alert_url = alert_queue(endpoint, stack["topic_arn"])
    bad_target = make_secret(endpoint, unique_name("bad"), json.dumps({"nope": NASTY_PASSWORD}))
    pairs = (
        SyncPair(name=pair.name, source=source, target=target, ecs_services=("nocluster/nosvc",)),
        SyncPair(name="bad", source=source, target=bad_target),
    )
    registry = CollectorRegistry()
    syncer = new_syncer(aws, stack, *pairs, registry=registry)
    rotate(endpoint, source, NASTY_PASSWORD)
    event = parsed_event("RotationSucceeded", source)
    await syncer.on_event(event, Outcome.RECORDED)
    await syncer.on_event(event, Outcome.DUPLICATE)
    boto("secretsmanager", endpoint).put_secret_value(SecretId=target, SecretString=INITIAL_URL)
    await syncer.run_once(trigger=Trigger.RECONCILE)
    assert sync_count(registry, pair.name, "updated") == 2
    assert sync_count(registry, "bad", "error") == 3

    forms = {NASTY_PASSWORD, quote(NASTY_PASSWORD, safe=""), json.dumps(NASTY_PASSWORD)[1:-1]}
    sent = drain(endpoint, alert_url)
    assert {json.loads(json.loads(body)["Message"])["reason"] for body in sent} == {"target_unparseable", ""}
    written = {
        "logs": logs.getvalue(),
        "audit": json.dumps(all_items(endpoint, stack["table_name"]), default=str),
        "alerts": "\n".join(sent),
        "metrics": "\n".join(f"{m.name} {s.labels}" for m in registry.collect() for s in m.samples),
    }
    assert "sync.pair_synced" in written["logs"]
    assert "sync.pair_failed" in written["logs"]
    leaks = [(where, form) for where, text in written.items() for form in forms if form in text]
    assert leaks == []
