"""Remediation stays bounded and honest: capped passes, notices that neither block nor vanish, an atomic budget,
claims taken over from dead holders, and events that cannot be forged or echoed into action."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from daemon.aws import Aws
from daemon.emit import build_event
from daemon.errors import ClaimLost, PermanentAwsError
from daemon.processor import Verdict
from daemon.remediation.budget import AttemptLedger
from daemon.remediation.claims import ClaimStore
from daemon.remediation.state import Failure, SecretState
from daemon.remediation.world import World
from daemon.table import to_dynamo
from tests.support import REGION, boto
from tests.support.remediation import (
    RETRY_WAIT_S,
    FakeClock,
    config,
    drain,
    event_name,
    labels,
    parsed,
    pump,
    receive_envelopes,
    remediation_items,
    replicas,
    retry_token,
    retry_until_settled,
    rotate,
    rotating_secret,
    subscribe,
)
from tests.support.rotation import Failure as Fault
from tests.support.rotation import state, wait_for_outcome

pytestmark = pytest.mark.usefixtures("rotations_settle")

ALWAYS = None


class DeniedWorld(World):
    """DescribeSecret refused, as AWS refuses a role without `secretsmanager:DescribeSecret`.

    A stand-in: moto enforces no IAM (AWS-FACTS §7), so it never answers AccessDenied.
    """

    async def describe(self, secret_arn: str) -> SecretState:
        raise PermanentAwsError("secretsmanager", "describe_secret", "AccessDeniedException", "not authorized")


async def test_a_permanent_error_escalates_once_after_the_capped_passes(endpoint: str, stack: dict[str, str]) -> None:
    """AccessDenied on every pass: backoff, then one needs-human naming the permission, then nothing more."""
    secret = rotating_secret(endpoint, failures=[Fault("setSecret", ALWAYS)])
    notes, clock = subscribe(endpoint, stack["topic_arn"]), FakeClock()
    rotate(endpoint, secret)
    cfg = config(endpoint, stack, ROTAUDIT_REMEDIATION_MAX_PASSES="3")
    async with replicas(1, cfg, clock, world=lambda aws: DeniedWorld(aws, cfg.audit_table)) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")  # pass 1 fails
        for _ in range(6):
            clock.advance(3600)
            await replica.job.run_once()
        assert await replica.job.run_once() == 0  # no wake-up left
    (note,) = drain(endpoint, notes)
    assert (note["attributes"]["event"], note["body"]["reason"]) == ("needs_human", "aws_error")
    assert "secretsmanager:DescribeSecret" in note["body"]["advice"]
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert (item["status"], item["failed_passes"], item["error"]) == ("needs_human", 3, "AccessDeniedException")


async def test_a_failed_publish_never_blocks_the_retry_schedule(endpoint: str, stack: dict[str, str]) -> None:
    """SNS refusing the notice: the retry is scheduled and made anyway, and the notice goes out once SNS is back."""
    secret = rotating_secret(endpoint, failures=[Fault("createSecret", 1)])
    topic_name = f"late-topic-{uuid.uuid4().hex[:8]}"
    topic_arn = f"arn:aws:sns:{REGION}:123456789012:{topic_name}"  # not created yet: Publish fails
    clock = FakeClock()
    failed = rotate(endpoint, secret)
    async with replicas(1, config(endpoint, {**stack, "topic_arn": topic_arn}), clock) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
        assert (item["status"], item.get("retry_at") is not None) == ("retry_due", True)
        boto("sns", endpoint).create_topic(Name=topic_name)
        notes = subscribe(endpoint, topic_arn)
        clock.advance(RETRY_WAIT_S)
        await replica.job.run_once()
        assert replica.count("rotate", "applied") == 1
    assert wait_for_outcome(endpoint, secret.arn, retry_token(secret, failed.rotation_id)).status == "succeeded"
    assert [n["attributes"]["event"] for n in drain(endpoint, notes)] == ["remediated"]


async def test_a_recovered_notice_survives_a_crash_mid_publish(endpoint: str, stack: dict[str, str]) -> None:
    """A replica died between marking the notice `sending` and recording it sent: the redelivery sends it."""
    secret = rotating_secret(endpoint, failures=[Fault("createSecret", 1)])
    notes, clock = subscribe(endpoint, stack["topic_arn"]), FakeClock()
    failed = rotate(endpoint, secret)
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        clock.advance(RETRY_WAIT_S)
        await replica.job.run_once()
        wait_for_outcome(endpoint, secret.arn, retry_token(secret, failed.rotation_id))
        arrived = receive_envelopes(endpoint, stack["queue_url"], until="RotationSucceeded")
        successes = [e for e in arrived if event_name(e) == "RotationSucceeded"]
        (success,) = successes
        plant_sending_marker(endpoint, stack["table_name"], secret.arn, parsed(success).rotation_id, clock())
        assert await replica.deliver(success) is Verdict.RETRY  # in flight elsewhere: hand the message back
        (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
        assert item["status"] == "rotated"  # still open: not closed without its notice
        clock.advance(60)  # the queue's visibility timeout: the marker is stale by the redelivery
        await replica.feed(success)
    assert sorted(n["attributes"]["event"] for n in drain(endpoint, notes)) == ["recovered", "remediated"]
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] == "recovered"


async def test_the_budget_is_spent_atomically_between_replicas(endpoint: str, stack: dict[str, str]) -> None:
    """Two replicas racing for the last RotateSecret slot: exactly one gets it; the same token counts once."""
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:budget-{uuid.uuid4().hex[:8]}"
    clock = FakeClock()
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        ledgers = [AttemptLedger(aws, stack["table_name"], clock=clock) for _ in range(2)]
        failures = [Failure(arn, "budget", f"rot-{i}", datetime.now(UTC)) for i in range(2)]
        taken = await asyncio.gather(*(ledgers[i].take(failures[i], f"token-{i}", 1) for i in range(2)))
        assert sorted(taken) == [False, True]
        winner = taken.index(True)
        assert await ledgers[1 - winner].take(failures[winner], f"token-{winner}", 1)  # a retried call
        assert await ledgers[0].used(arn) == 1
        clock.advance(24 * 3600 + 1)
        assert await ledgers[1 - winner].take(failures[1 - winner], "token-later", 1)  # the window moved on


async def test_a_forged_finish_failure_never_rolls_back_a_rotated_secret(endpoint: str, stack: dict[str, str]) -> None:
    """A RotationFailed (finishSecret) injected for a secret in its normal post-success state moves nothing."""
    tags = {"rotaudit:move-current": "allowed", "rotaudit:rollback": "allowed"}
    secret = rotating_secret(endpoint, strategy="alternating-users", tags=tags)
    assert rotate(endpoint, secret).status == "succeeded"
    before = labels(endpoint, secret.arn)
    async with replicas(1, config(endpoint, stack), FakeClock()) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationSucceeded")
        await replica.feed(build_event("RotationFailed", secret.arn, step="finishSecret"))
        assert replica.count("rollback", "applied") == 0
    assert labels(endpoint, secret.arn) == before
    assert state(endpoint, secret.arn).current_works


async def test_a_forged_success_does_not_close_a_real_failure(endpoint: str, stack: dict[str, str]) -> None:
    """A RotationSucceeded the secret does not confirm (AWSPENDING still dangling) leaves the failure open."""
    secret = rotating_secret(endpoint, failures=[Fault("setSecret", ALWAYS)])
    rotate(endpoint, secret)
    cfg = config(endpoint, stack, ROTAUDIT_REMEDIATION_SETTLE_S="3600")
    async with replicas(1, cfg, FakeClock()) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        await replica.feed(build_event("RotationSucceeded", secret.arn))
        assert replica.count("none", "unconfirmed") == 1
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] == "settling"


@pytest.mark.parametrize("spoof", [{"account": "999999999999"}, {"region": "eu-west-1"}])
async def test_an_event_from_another_account_or_region_changes_nothing(
    endpoint: str, stack: dict[str, str], spoof: dict[str, str]
) -> None:
    """An event whose account or region is not the secret's own (and ours) is audited but never acted on."""
    secret = rotating_secret(endpoint, failures=[Fault("setSecret", ALWAYS)])
    rotate(endpoint, secret)
    receive_envelopes(endpoint, stack["queue_url"], until="RotationFailed")  # the real events are not this test's
    before = labels(endpoint, secret.arn)
    async with replicas(1, config(endpoint, stack), FakeClock()) as (replica,):
        await replica.feed(build_event("RotationFailed", secret.arn, step="setSecret", **spoof))
        assert replica.count("none", "untrusted") == 1
    assert labels(endpoint, secret.arn) == before
    assert remediation_items(endpoint, stack["table_name"], secret.arn) == []


async def test_a_crashed_holders_claim_is_taken_over_and_its_late_writes_refused(
    endpoint: str, stack: dict[str, str]
) -> None:
    """A holder that died after taking a settled claim blocks no one past its lease, and cannot act once fenced out."""
    secret = rotating_secret(endpoint, failures=[Fault("setSecret", ALWAYS)])
    rotate(endpoint, secret)
    envelopes = receive_envelopes(endpoint, stack["queue_url"], until="RotationFailed")
    (failure_event,) = [e for e in envelopes if event_name(e) == "RotationFailed"]
    clock = FakeClock()
    cfg = config(endpoint, stack, ROTAUDIT_CLAIM_LEASE_S="30", ROTAUDIT_REMEDIATION_SETTLE_S="10")
    async with Aws(REGION, endpoint_url=endpoint) as aws, replicas(1, cfg, clock) as (replica,):
        await replica.feed(failure_event)  # settling for 10 s
        clock.advance(11)
        dead = ClaimStore(aws, cfg.audit_table, holder="crashed", lease_s=30, clock=clock)
        failure = Failure.from_event(parsed(failure_event))
        stale = await dead.acquire_due(failure.secret_arn, failure.rotation_id)
        assert stale is not None
        assert await replica.job.run_once() == 0  # the dead holder's lease holds: nothing is due
        assert "AWSPENDING" in labels(endpoint, secret.arn)
        clock.advance(31)
        await replica.job.run_once()
        assert "AWSPENDING" not in labels(endpoint, secret.arn)
        with pytest.raises(ClaimLost):
            await dead.check(stale)
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["holder"] == "replica-0"


async def test_events_caused_by_remediation_trigger_nothing(endpoint: str, stack: dict[str, str]) -> None:
    """The label moves and the rotation rotaudit itself caused come back as events; they start nothing new."""
    secret = rotating_secret(endpoint, failures=[Fault("setSecret", 1)])
    notes, clock = subscribe(endpoint, stack["topic_arn"]), FakeClock()
    failed = rotate(endpoint, secret)
    token = retry_token(secret, failed.rotation_id)
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        await retry_until_settled(endpoint, stack["queue_url"], replica, clock, secret, failed.rotation_id)
        after = labels(endpoint, secret.arn)
        echoes = [
            build_event("SecretLabelUpdated", secret.arn, version_id=failed.token, label="rotaudit-held-x"),
            build_event("SecretLabelUpdated", secret.arn, version_id=token, label="AWSCURRENT"),
            build_event("UpdateSecretVersionStage", secret.arn),
            build_event("RotateSecret", secret.arn, rotation_id=token),
            build_event("TestRotationFailed", secret.arn, step="testSecret"),
        ]
        for echo in echoes:
            await replica.feed(echo)
        clock.advance(3600)
        assert await replica.job.run_once() == 0
        assert replica.count("rotate", "applied") == 1
    assert labels(endpoint, secret.arn) == after
    assert sorted(n["attributes"]["event"] for n in drain(endpoint, notes)) == ["recovered", "remediated"]
    assert len(remediation_items(endpoint, stack["table_name"], secret.arn)) == 1


def plant_sending_marker(endpoint: str, table: str, arn: str, rotation_id: str, at: datetime) -> None:
    """The marker a replica leaves when it dies mid-publish: state `sending`, never `sent`."""
    item = {
        "pk": f"notify#{arn}",
        "sk": f"recovered#{rotation_id}",
        "state": "sending",
        "claimed_at_ms": int(at.timestamp() * 1000),
    }
    boto("dynamodb", endpoint).put_item(TableName=table, Item=to_dynamo(item))
