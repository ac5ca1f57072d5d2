"""Remediation end to end against the emulator over HTTP: claims, label repairs, retries, replicas, notifications.

moto cannot make a rotation fail (its Lambda backend needs docker; AWS-FACTS §7), so each test injects the
`RotationFailed` event and leaves the dangling AWSPENDING version itself (`put_secret_value` with
`VersionStages=["AWSPENDING"]`). Events go through the real `Processor` (audit item first, then the hook).
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from structlog.testing import capture_logs

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.emit import build_event
from daemon.errors import ClaimLost
from daemon.remediation.claims import ClaimStore
from daemon.remediation.plan import Failure
from tests.support import REGION, boto
from tests.support.remediation import (
    CANARY,
    FakeClock,
    config,
    drain,
    failed,
    labels,
    make_secret,
    parsed,
    remediation_items,
    replicas,
    subscribe,
    table_items,
)

RETRY_WAIT_S = 61  # the first retry comes 30-60 s after the failure (backoff base 60 s, equal jitter)


async def test_set_secret_failure_clears_the_stuck_pending_and_retries_rotation(
    endpoint: str, stack: dict[str, str]
) -> None:
    """A setSecret failure: AWSPENDING is removed, RotateSecret retried later with the rotation's own token."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    event = failed(secret, "setSecret")
    token = Failure.from_event(parsed(event)).new_version_token
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        with capture_logs() as logs:
            await replica.feed(event)
            assert "AWSPENDING" not in labels(endpoint, secret.arn)
            assert await replica.job.run_once() == 0  # the retry is not due yet
            clock.advance(RETRY_WAIT_S)
            assert await replica.job.run_once() == 1
            assert await replica.job.run_once() == 0  # and it is done once
        assert labels(endpoint, secret.arn)["AWSCURRENT"] == token  # moto promotes the retried version at once
        assert replica.count("remove_pending", "applied") == 1
        assert replica.count("rotate", "applied") == 1
        assert replica.sample("rotaudit_notifications_total", kind="remediated") == 1
        assert replica.sample("rotaudit_remediation_seconds_count") == 2  # the first pass, then the retry
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            history = await AuditStore(aws, stack["table_name"]).history(secret.arn)
    assert [item["kind"] for item in reversed(history)] == ["event", "remediation"]
    remediation = history[0]
    assert (remediation["status"], remediation["reason"]) == ("remediated", "stuck_pending_cleared")
    assert [(r["action"], r["result"]) for r in remediation["results"]] == [
        ("remove_pending", "applied"),
        ("rotate", "applied"),
    ]
    (note,) = drain(endpoint, notes)
    assert note["attributes"] == {"severity": "warning", "event": "remediated", "secret": secret.name}
    assert note["body"]["rotation_id"] == parsed(event).rotation_id
    events = [entry["event"] for entry in logs]
    assert {"remediation.claimed", "remediation.planned", "remediation.retry_scheduled", "remediation.retried"} <= set(
        events
    )
    everything = json.dumps([table_items(endpoint, stack["table_name"]), note["raw"], logs], default=str)
    assert CANARY not in everything


async def test_finish_secret_failure_keeps_pending_and_resumes_that_rotation(
    endpoint: str, stack: dict[str, str]
) -> None:
    """A finishSecret failure keeps AWSPENDING; the retry resumes it with the pending version's id as token."""
    secret, clock = make_secret(endpoint), FakeClock()
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await replica.feed(failed(secret, "finishSecret"))
        assert labels(endpoint, secret.arn)["AWSPENDING"] == secret.pending
        assert replica.count("remove_pending", "applied") == 0
        clock.advance(RETRY_WAIT_S)
        await replica.job.run_once()
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["reason"] == "pending_kept"
    assert item["results"][-1]["token"] == secret.pending
    assert labels(endpoint, secret.arn)["AWSCURRENT"] == secret.pending  # moto, Lambda-less, promotes it at once


async def test_three_replicas_and_repeated_failures_remediate_once_and_notify_once(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Five copies of one failure plus a second failure record of that rotation, across three replicas: one of each."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    rotation = str(uuid.uuid4())
    first = failed(secret, "setSecret", rotation_id=rotation)
    second = failed(secret, "setSecret", rotation_id=rotation)  # Secrets Manager's own retry: another eventID
    async with replicas(3, config(endpoint, stack), clock) as group:
        deliveries = [first] * 5 + [second]
        await asyncio.gather(*(group[i % 3].feed(envelope) for i, envelope in enumerate(deliveries)))
        assert sum(r.count("remove_pending", "applied") for r in group) == 1
        assert len(drain(endpoint, notes)) == 1
        clock.advance(RETRY_WAIT_S)
        await asyncio.gather(*(r.job.run_once() for r in group))
        await group[1].feed(first)  # a DLQ replay, after all that
        assert sum(r.count("rotate", "applied") for r in group) == 1
    assert drain(endpoint, notes) == []
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["fence"] == 2  # claimed once, taken over once by the job that made the retry
    assert [r["action"] for r in item["results"]] == ["remove_pending", "rotate"]


async def test_an_exhausted_budget_escalates_to_a_human(endpoint: str, stack: dict[str, str]) -> None:
    """With a budget of one retry, the retried rotation's own failure is escalated, not retried again."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    async with replicas(1, config(endpoint, stack, ROTAUDIT_REMEDIATION_BUDGET="1"), clock) as (replica,):
        await replica.feed(failed(secret, "setSecret"))
        clock.advance(RETRY_WAIT_S)
        await replica.job.run_once()
        await replica.feed(failed(secret, "testSecret"))  # the retried rotation failed too
        clock.advance(3600)
        assert await replica.job.run_once() == 0
        assert replica.count("rotate", "applied") == 1
        assert replica.count("escalate", "applied") == 1
    kinds = sorted((n["attributes"]["event"], n["attributes"]["severity"]) for n in drain(endpoint, notes))
    assert kinds == [("needs_human", "critical"), ("remediated", "warning")]
    reasons = {item["reason"] for item in remediation_items(endpoint, stack["table_name"], secret.arn)}
    assert reasons == {"stuck_pending_cleared", "budget_exhausted"}


async def test_dry_run_records_and_notifies_the_plan_but_changes_nothing(endpoint: str, stack: dict[str, str]) -> None:
    """Dry-run: the plan is audited and notified as `planned`; labels and versions stay as they were."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    before = labels(endpoint, secret.arn)
    async with replicas(1, config(endpoint, stack, ROTAUDIT_REMEDIATION_MODE="dry-run"), clock) as (replica,):
        await replica.feed(failed(secret, "setSecret"))
        clock.advance(3600)
        assert await replica.job.run_once() == 0
        assert replica.count("remove_pending", "dry_run") == 1
    assert labels(endpoint, secret.arn) == before
    (note,) = drain(endpoint, notes)
    assert note["attributes"]["event"] == "planned"
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] == "dry_run"
    assert [(a["action"], a["result"]) for a in item["results"]] == [("remove_pending", "dry_run")]
    assert item["plan"]["retry"]["action"] == "rotate"


@pytest.mark.parametrize("spoof", [{"account": "999999999999"}, {"region": "eu-west-1"}])
async def test_an_event_from_another_account_or_region_changes_nothing(
    endpoint: str, stack: dict[str, str], spoof: dict[str, str]
) -> None:
    """An event whose account or region is not the secret's own (and ours) is audited but never acted on."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    before = labels(endpoint, secret.arn)
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await replica.feed(failed(secret, "setSecret", **spoof))
        clock.advance(3600)
        assert await replica.job.run_once() == 0
        assert replica.count("none", "untrusted") == 1
    assert labels(endpoint, secret.arn) == before
    assert drain(endpoint, notes) == []
    assert remediation_items(endpoint, stack["table_name"], secret.arn) == []


async def test_a_crashed_holders_claim_is_taken_over_and_its_late_writes_refused(
    endpoint: str, stack: dict[str, str]
) -> None:
    """A holder that died after claiming blocks no one past its lease, and cannot act once fenced out."""
    secret, clock = make_secret(endpoint), FakeClock()
    event = failed(secret, "setSecret")
    cfg = config(endpoint, stack, ROTAUDIT_CLAIM_LEASE_S="30")
    async with Aws(REGION, endpoint_url=endpoint) as aws, replicas(1, cfg, clock) as (replica,):
        dead = ClaimStore(aws, cfg.audit_table, holder="crashed", lease_s=30, clock=clock)
        stale = await dead.acquire(Failure.from_event(parsed(event)))
        assert stale is not None
        await replica.feed(event)  # a redelivery while the lease holds: nothing happens
        assert labels(endpoint, secret.arn)["AWSPENDING"] == secret.pending
        clock.advance(31)
        assert await replica.job.run_once() == 1
        assert "AWSPENDING" not in labels(endpoint, secret.arn)
        with pytest.raises(ClaimLost):
            await dead.check(stale)
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert (item["fence"], item["holder"]) == (2, "replica-0")


async def test_a_success_after_a_failure_says_recovered_once(endpoint: str, stack: dict[str, str]) -> None:
    """A RotationSucceeded after a remediated failure closes it with one `recovered` message, however delivered."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    failure = failed(secret, "setSecret")
    async with replicas(2, config(endpoint, stack), clock) as group:
        await group[0].feed(failure)
        clock.advance(RETRY_WAIT_S)
        await group[0].job.run_once()
        success = build_event("RotationSucceeded", secret.arn)
        await asyncio.gather(group[0].feed(success), group[1].feed(success), group[1].feed(success))
        await group[0].feed(build_event("RotationSucceeded", secret.arn))  # a later rotation: nothing to recover
    seen = drain(endpoint, notes)
    assert sorted(n["attributes"]["event"] for n in seen) == ["recovered", "remediated"]
    by_kind = {n["attributes"]["event"]: n for n in seen}
    assert by_kind["recovered"]["attributes"]["severity"] == "info"
    assert by_kind["recovered"]["body"]["recovered_rotations"] == [parsed(failure).rotation_id]
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] == "recovered"


async def test_events_caused_by_remediation_trigger_nothing(endpoint: str, stack: dict[str, str]) -> None:
    """Label moves and rotations rotaudit itself made come back as events; none of them remediates or notifies."""
    secret, clock, notes = make_secret(endpoint), FakeClock(), subscribe(endpoint, stack["topic_arn"])
    failure = failed(secret, "setSecret")
    token = Failure.from_event(parsed(failure)).new_version_token
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await replica.feed(failure)
        clock.advance(RETRY_WAIT_S)
        await replica.job.run_once()
        drain(endpoint, notes)
        after = labels(endpoint, secret.arn)
        echoes = [
            build_event("SecretLabelUpdated", secret.arn, version_id=secret.pending, label="AWSPENDING"),
            build_event("SecretLabelUpdated", secret.arn, version_id=token, label="AWSCURRENT"),
            build_event("UpdateSecretVersionStage", secret.arn),
            build_event("RotateSecret", secret.arn, rotation_id=token),
            build_event("RotationStarted", secret.arn, rotation_id=token),
            build_event("TestRotationFailed", secret.arn, step="testSecret"),
        ]
        for echo in echoes:
            await replica.feed(echo)
        clock.advance(3600)
        assert await replica.job.run_once() == 0
        assert replica.count("remove_pending", "applied") + replica.count("rotate", "applied") == 2
    assert labels(endpoint, secret.arn) == after
    assert drain(endpoint, notes) == []
    assert len(remediation_items(endpoint, stack["table_name"], secret.arn)) == 1


async def test_rollback_moves_current_back_and_restarts_consumers(endpoint: str, stack: dict[str, str]) -> None:
    """Where the secret allows rollback, AWSCURRENT moved by a failed finishSecret goes back, and the restart runs.

    moto has no SSM Automation (AWS-FACTS §7): `daemon.devtools.patches.ssm` registers a stand-in in the emulator
    that records each StartAutomationExecution and reports success at once; this test reads that record.
    """
    from daemon.devtools.patches.ssm import automation_executions

    tags = {"rotaudit:rollback": "allowed", "rotaudit:restart-document": "Restart-Payments"}
    secret, clock = make_secret(endpoint, tags=tags, pending="on_current"), FakeClock()
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await replica.feed(failed(secret, "finishSecret"))
        assert replica.count("rollback", "applied") == 1
    after = labels(endpoint, secret.arn)
    assert (after["AWSCURRENT"], after["AWSPREVIOUS"]) == (secret.previous, secret.current)
    assert "AWSPENDING" not in after
    started = [
        run
        for runs in automation_executions.values()
        for run in runs.values()
        if run["Parameters"].get("SecretArn") == [secret.arn]
    ]
    assert [run["DocumentName"] for run in started] == ["Restart-Payments"]
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert [r["action"] for r in item["results"]] == ["rollback", "remove_pending", "restart_consumers"]


async def test_a_notification_that_failed_is_sent_by_the_next_delivery_without_repeating_actions(
    endpoint: str, stack: dict[str, str]
) -> None:
    """SNS failing after the label fix releases the claim; the redelivery sends the message and redoes nothing."""
    secret, clock = make_secret(endpoint), FakeClock()
    topic_name = f"late-topic-{uuid.uuid4().hex[:8]}"
    topic_arn = f"arn:aws:sns:{REGION}:123456789012:{topic_name}"  # not created yet: Publish fails
    event = failed(secret, "setSecret")
    async with replicas(1, config(endpoint, {**stack, "topic_arn": topic_arn}), clock) as (replica,):
        with capture_logs() as logs:
            await replica.feed(event)
        assert "remediation.failed" in [entry["event"] for entry in logs]
        assert "AWSPENDING" not in labels(endpoint, secret.arn)
        assert boto("sns", endpoint).create_topic(Name=topic_name)["TopicArn"] == topic_arn
        notes = subscribe(endpoint, topic_arn)
        await replica.feed(event)
        assert replica.count("remove_pending", "applied") == 1
        assert replica.count("remove_pending", "already_done") == 1
    (note,) = drain(endpoint, notes)
    assert note["attributes"]["event"] == "remediated"
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert (item["status"], item["fence"]) == ("retry_due", 2)
    assert [r["result"] for r in item["results"]] == ["applied", "already_done"]  # both passes, in order
