"""Remediation end to end on the rotation engine stand-in: real failures, real events, the table's rows and rules.

Rotations fail on the emulator's stand-in (`daemon/devtools/rotation/`), which runs RotateSecret and the four
steps as AWS and its rotation templates do, against a fake database. Its CloudTrail-shaped events reach the
stack's queue through the real EventBridge rules; `pump` hands them to the replicas' real `Processor` (audit
item first, then the hook). After each test the stand-in's state endpoint checks the rules the table keeps.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from daemon.audit import AuditStore
from daemon.aws import Aws
from daemon.processor import Verdict
from daemon.remediation.state import held_label
from tests.support import REGION, boto
from tests.support.remediation import (
    CANARY,
    RETRY_WAIT_S,
    FakeClock,
    config,
    drain,
    labels,
    pump,
    receive_envelopes,
    remediation_items,
    replicas,
    retry_token,
    retry_until_settled,
    rotate,
    rotating_secret,
    subscribe,
    table_items,
)
from tests.support.rotation import Failure, state, wait_for_outcome

pytestmark = pytest.mark.usefixtures("rotations_settle")

ALWAYS = None
MOVE = {"rotaudit:move-current": "allowed"}


def assert_rules_kept(endpoint: str, arn: str, *, current_works: bool | None = True) -> None:
    """The invariants: AWSCURRENT works (where the row says it must), nothing the database accepts is left
    unlabelled, and RotateSecret was never called where AWS refuses it."""
    after = state(endpoint, arn)
    assert after.unlabelled_held == []
    assert after.refusals == 0, after.refusals_by_reason
    if current_works is not None:
        assert after.current_works is current_works


SCENARIOS = [
    # step, failing after its change?, strategy, tags, reason, actions of the first pass, retried, AWSCURRENT works
    ("createSecret", False, "single-user", {}, "stuck_pending_cleared", ["remove_pending"], True, True),
    ("setSecret", False, "single-user", {}, "pending_set_aside", ["hold", "remove_pending"], True, True),
    ("setSecret", True, "alternating-users", {}, "pending_set_aside", ["hold", "remove_pending"], True, True),
    ("testSecret", False, "single-user", MOVE, "pending_promoted", ["promote"], False, True),
    ("testSecret", False, "alternating-users", {}, "pending_set_aside", ["hold", "remove_pending"], True, True),
    ("finishSecret", False, "single-user", MOVE, "pending_promoted", ["promote"], False, True),
    ("finishSecret", False, "alternating-users", {}, "pending_set_aside", ["hold", "remove_pending"], True, True),
    ("finishSecret", True, "single-user", MOVE, "current_moved", [], False, True),
    (
        "finishSecret",
        True,
        "alternating-users",
        MOVE,
        "rolled_back",
        ["rollback", "hold", "remove_pending"],
        False,
        True,
    ),
]


@pytest.mark.parametrize(
    ("step", "after", "strategy", "tags", "reason", "actions", "retried", "works"),
    SCENARIOS,
    ids=[f"{s[0]}-{'after' if s[1] else 'before'}-{s[2]}-{'move' if s[3] else 'no-move'}" for s in SCENARIOS],
)
async def test_a_row_of_the_table_on_the_stand_in(
    endpoint: str,
    stack: dict[str, str],
    step: str,
    after: bool,
    strategy: str,
    tags: dict[str, str],
    reason: str,
    actions: list[str],
    retried: bool,
    works: bool,
) -> None:
    """A rotation that really fails at `step` gets the table's action, and the secret ends working and whole."""
    secret = rotating_secret(endpoint, strategy=strategy, failures=[Failure(step, 1, after=after)], tags=tags)
    clock = FakeClock()
    failed = rotate(endpoint, secret)
    assert failed.status == "failed"
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        assert "RotationFailed" in await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
        assert item["reason"] == reason
        assert [r["action"] for r in item.get("results", [])] == actions
        if retried:
            retried_rotation = await retry_until_settled(
                endpoint, stack["queue_url"], replica, clock, secret, failed.rotation_id
            )
            assert retried_rotation.status == "succeeded"
            assert replica.count("rotate", "applied") == 1
            (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
            assert item["status"] == "recovered"
    assert_rules_kept(endpoint, secret.arn, current_works=works)
    if "hold" in actions:
        pending = failed.token
        assert held_label(pending) in boto_stages(endpoint, secret.arn)[pending]


@pytest.mark.parametrize(
    ("strategy", "tags", "reason"),
    [("single-user", {}, "move_not_allowed"), ("unknown", MOVE, "strategy_unknown")],
)
async def test_where_no_action_is_safe_it_escalates_once_with_what_to_do(
    endpoint: str, stack: dict[str, str], strategy: str, tags: dict[str, str], reason: str
) -> None:
    """testSecret failed after setSecret changed the database: without a safe move, one needs-human with the command."""
    secret = rotating_secret(endpoint, strategy=strategy, failures=[Failure("testSecret", ALWAYS)], tags=tags)
    notes = subscribe(endpoint, stack["topic_arn"])
    failed = rotate(endpoint, secret)
    before = labels(endpoint, secret.arn)
    async with replicas(2, config(endpoint, stack), FakeClock()) as group:
        events = await pump(endpoint, stack["queue_url"], *group, until="RotationFailed")
        await pump(endpoint, stack["queue_url"], *group)
    assert events.count("RotationFailed") == 1
    assert labels(endpoint, secret.arn) == before  # nothing moved
    (note,) = drain(endpoint, notes)
    assert (note["attributes"]["event"], note["body"]["reason"]) == ("needs_human", reason)
    assert f"--move-to-version-id {failed.token}" in note["body"]["advice"]
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert set(item["may_hold"]) >= {failed.token}
    assert_rules_kept(endpoint, secret.arn, current_works=False)  # setSecret broke it; rotaudit did not


async def test_a_set_secret_failure_after_the_change_keeps_the_only_working_password(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Single-user, setSecret changed the database then failed: the pending version is held, never deprecated."""
    secret = rotating_secret(endpoint, failures=[Failure("setSecret", ALWAYS, after=True)])
    failed = rotate(endpoint, secret)
    async with replicas(1, config(endpoint, stack, ROTAUDIT_REMEDIATION_BUDGET="1"), FakeClock()) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
    found = state(endpoint, secret.arn)
    assert found.db_accepts == [failed.token]
    assert held_label(failed.token) in found.labels[failed.token]
    assert "AWSPENDING" not in found.labels[failed.token]
    assert_rules_kept(endpoint, secret.arn, current_works=False)


async def test_remediation_waits_for_secrets_managers_own_retry(endpoint: str, stack: dict[str, str]) -> None:
    """A failure Secrets Manager's retry fixes: rotaudit only settles, changes nothing, and tells nobody."""
    secret = rotating_secret(endpoint, failures=[Failure("setSecret", 1, after=True)], retries=1)
    notes = subscribe(endpoint, stack["topic_arn"])
    token = boto_rotate(endpoint, secret.arn)
    async with replicas(1, config(endpoint, stack, ROTAUDIT_REMEDIATION_SETTLE_S="3600"), FakeClock()) as (replica,):
        # The failure is delivered first, while Secrets Manager's retry runs: rotaudit only records it.
        assert wait_for_outcome(endpoint, secret.arn, token).status == "succeeded"
        events = await pump(endpoint, stack["queue_url"], replica, until="RotationSucceeded")
        assert events.index("RotationFailed") < events.index("RotationSucceeded")
        assert await replica.job.run_once() == 0
    assert drain(endpoint, notes) == []
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert (item["status"], item["reason"]) == ("recovered", "recovered_while_settling")
    assert item.get("results", []) == []
    assert_rules_kept(endpoint, secret.arn)


async def test_a_late_failure_of_a_rotation_that_succeeded_is_never_rolled_back(
    endpoint: str, stack: dict[str, str]
) -> None:
    """finishSecret failed after its label move, Secrets Manager retried to success: the late failure moves nothing."""
    tags = {**MOVE, "rotaudit:rollback": "allowed"}
    secret = rotating_secret(
        endpoint, strategy="alternating-users", failures=[Failure("finishSecret", 1, after=True)], retries=1, tags=tags
    )
    finished = rotate(endpoint, secret)
    assert finished.status == "succeeded"
    after_rotation = labels(endpoint, secret.arn)
    clock = FakeClock()
    async with replicas(1, config(endpoint, stack, ROTAUDIT_REMEDIATION_SETTLE_S="600"), clock) as (replica,):
        events = await pump(endpoint, stack["queue_url"], replica, until="RotationSucceeded")
        clock.advance(601)
        assert await replica.job.run_once() == 0  # the success closed the settling claim: nothing is due
    assert events.index("RotationFailed") < events.index("RotationSucceeded")
    assert labels(endpoint, secret.arn) == after_rotation
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] in ("skipped", "recovered")
    assert_rules_kept(endpoint, secret.arn)


async def test_three_replicas_and_repeated_deliveries_remediate_once_and_notify_once(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Every event delivered three times across three replicas: one claim, one set of actions, one of each notice."""
    secret = rotating_secret(endpoint, failures=[Failure("setSecret", 1)])
    notes, clock = subscribe(endpoint, stack["topic_arn"]), FakeClock()
    failed = rotate(endpoint, secret)
    sqs_events = receive_envelopes(endpoint, stack["queue_url"], until="RotationFailed")
    async with replicas(3, config(endpoint, stack), clock) as group:
        await asyncio.gather(*(group[i % 3].feed(e) for i, e in enumerate(sqs_events * 3)))
        clock.advance(RETRY_WAIT_S)
        await asyncio.gather(*(r.job.run_once() for r in group))
        wait_for_outcome(endpoint, secret.arn, retry_token(secret, failed.rotation_id))
        successes = receive_envelopes(endpoint, stack["queue_url"], until="RotationSucceeded")
        verdicts = await asyncio.gather(*(group[i % 3].deliver(e) for i, e in enumerate(successes * 3)))
        # A delivery that meets another replica's notice in flight is handed back; its redelivery finds it sent.
        again = [e for e, verdict in zip(successes * 3, verdicts, strict=True) if verdict is Verdict.RETRY]
        for envelope in again:
            await group[0].feed(envelope)
        assert sum(r.count("hold", "applied") for r in group) == 1
        assert sum(r.count("rotate", "applied") for r in group) == 1
    kinds = sorted(n["attributes"]["event"] for n in drain(endpoint, notes))
    assert kinds == ["recovered", "remediated"]
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] == "recovered"
    assert_rules_kept(endpoint, secret.arn)
    everything = json.dumps([table_items(endpoint, stack["table_name"])], default=str)
    assert CANARY not in everything


async def test_dry_run_records_and_notifies_the_plan_but_changes_nothing(endpoint: str, stack: dict[str, str]) -> None:
    """Dry-run: the plan is audited and notified as `planned`; labels and versions stay as they were."""
    secret = rotating_secret(endpoint, failures=[Failure("setSecret", ALWAYS)])
    notes = subscribe(endpoint, stack["topic_arn"])
    rotate(endpoint, secret)
    before = labels(endpoint, secret.arn)
    async with replicas(1, config(endpoint, stack, ROTAUDIT_REMEDIATION_MODE="dry-run"), FakeClock()) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        assert replica.count("hold", "dry_run") == 1
    assert labels(endpoint, secret.arn) == before
    (note,) = drain(endpoint, notes)
    assert note["attributes"]["event"] == "planned"
    (item,) = remediation_items(endpoint, stack["table_name"], secret.arn)
    assert item["status"] == "dry_run"
    assert [(a["action"], a["result"]) for a in item["results"]] == [("hold", "dry_run"), ("remove_pending", "dry_run")]


async def test_the_history_reads_event_then_remediation_then_outcome(endpoint: str, stack: dict[str, str]) -> None:
    """`rotaudit history`'s store: the failure's events, then the remediation item with its plan and results."""
    secret = rotating_secret(endpoint, failures=[Failure("createSecret", 1)])
    clock = FakeClock()
    failed = rotate(endpoint, secret)
    async with replicas(1, config(endpoint, stack), clock) as (replica,):
        await pump(endpoint, stack["queue_url"], replica, until="RotationFailed")
        await retry_until_settled(endpoint, stack["queue_url"], replica, clock, secret, failed.rotation_id)
        async with Aws(REGION, endpoint_url=endpoint) as aws:
            history = await AuditStore(aws, stack["table_name"]).history(secret.arn)
    ordered = [(i["kind"], i.get("event_name", i.get("status")), i["rotation_id"]) for i in reversed(history)]
    # Oldest first. CloudTrail times have whole seconds: items of one second sort by kind, then ids.
    failure_at = ordered.index(("event", "RotationFailed", failed.rotation_id))
    assert ordered.index(("event", "RotationStarted", failed.rotation_id)) < ordered.index(
        ("remediation", "recovered", failed.rotation_id)
    )
    assert failure_at < ordered.index(("remediation", "recovered", failed.rotation_id))
    remediation = next(item for item in history if item["kind"] == "remediation")
    assert [(r["action"], r["result"]) for r in remediation["results"]] == [
        ("remove_pending", "applied"),
        ("rotate", "applied"),
    ]


def boto_rotate(endpoint: str, arn: str) -> str:
    """Start a rotation without waiting for it; its token."""
    return str(boto("secretsmanager", endpoint).rotate_secret(SecretId=arn)["VersionId"])


def boto_stages(endpoint: str, arn: str) -> dict[str, list[str]]:
    """Version id -> its labels, from DescribeSecret."""
    return dict(boto("secretsmanager", endpoint).describe_secret(SecretId=arn)["VersionIdsToStages"])
