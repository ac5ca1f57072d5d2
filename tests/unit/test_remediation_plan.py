"""Table-driven tests for daemon.remediation.plan: the pure plan, the retry decision, backoff, policy, state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.remediation.plan import (
    Action,
    ActionKind,
    Budget,
    Failure,
    Mode,
    Plan,
    Policy,
    Reason,
    Resolution,
    SecretPolicy,
    SecretState,
    decide_retry,
    plan_remediation,
    retry_delay_s,
    still_needed,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-a1b2c3"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CUR, PEND, PREV = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222", "33333333-cccc"


def _failure(step: str | None = "setSecret", rotation_id: str = "rot-1") -> Failure:
    return Failure(ARN, "app/db", rotation_id, T0, step)


NEW = _failure().new_version_token
DANGLING: dict[str, Any] = {"current": CUR, "pending": PEND, "previous": PREV}
MOVED: dict[str, Any] = {"current": PEND, "pending": PEND, "previous": CUR}
CLEAN: dict[str, Any] = {"current": CUR, "previous": PREV}
ROLLBACK = {"rotaudit:rollback": "allowed"}
RESTART = {"rotaudit:restart-document": "Restart-App_Consumers"}
AUTO = {"rotaudit:remediation": "auto"}
BAD_DOCUMENT = {**ROLLBACK, "rotaudit:restart-document": "x"}  # not a document name: ignored
DROP = ("remove_pending", PEND, None, None)
BACK = ("rollback", PEND, CUR, None)
RESTARTED = ("restart_consumers", None, None, "Restart-App_Consumers")


def _actions(plan: Plan) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(a.kind.value, a.version_id, a.move_to, a.document) for a in plan.actions]


@pytest.mark.parametrize(
    ("step", "state", "tags", "used", "resolution", "reason", "actions", "retry_token"),
    [
        # The failing step decides whether a dangling AWSPENDING goes or stays.
        ("setSecret", DANGLING, {}, 0, "remediated", "stuck_pending_cleared", [DROP], NEW),
        ("createSecret", DANGLING, {}, 0, "remediated", "stuck_pending_cleared", [DROP], NEW),
        ("testSecret", DANGLING, {}, 0, "remediated", "pending_kept", [], PEND),
        ("finishSecret", DANGLING, {}, 0, "remediated", "pending_kept", [], PEND),
        (None, DANGLING, {}, 0, "remediated", "pending_kept", [], PEND),  # unknown step: keep it, retry
        ("setSecret", CLEAN, {}, 0, "remediated", "no_pending", [], NEW),
        ("finishSecret", CLEAN, {}, 2, "remediated", "no_pending", [], NEW),
        # AWSCURRENT moved within this rotation: roll back only where the secret allows it.
        ("finishSecret", MOVED, ROLLBACK, 0, "remediated", "rolled_back", [BACK, DROP], NEW),
        ("finishSecret", MOVED, {**ROLLBACK, **RESTART}, 0, "remediated", "rolled_back", [BACK, DROP, RESTARTED], NEW),
        ("finishSecret", MOVED, {}, 0, "needs_human", "current_moved", [], None),
        ("finishSecret", MOVED, RESTART, 0, "needs_human", "current_moved", [RESTARTED], None),
        ("finishSecret", {"current": PEND, "pending": PEND}, ROLLBACK, 0, "needs_human", "current_moved", [], None),
        ("finishSecret", MOVED, {"rotaudit:rollback": "yes"}, 0, "needs_human", "current_moved", [], None),
        # AWSPENDING on AWSCURRENT after another step: a successful rotation's leftover, never a reason to roll back.
        ("setSecret", MOVED, ROLLBACK, 0, "remediated", "no_pending", [], NEW),
        ("testSecret", MOVED, ROLLBACK, 0, "remediated", "no_pending", [], NEW),
        (None, MOVED, ROLLBACK, 0, "remediated", "no_pending", [], NEW),
        (
            "createSecret",
            {**MOVED, "last_rotated_at": T0 + timedelta(seconds=5)},
            ROLLBACK,
            0,
            "skipped",
            "rotated_since",
            [],
            None,
        ),
        # The budget: label fixes still happen, the retry does not.
        ("setSecret", DANGLING, {}, 3, "needs_human", "budget_exhausted", [DROP], None),
        ("testSecret", DANGLING, {}, 3, "needs_human", "budget_exhausted", [], None),
        ("finishSecret", MOVED, ROLLBACK, 5, "needs_human", "budget_exhausted", [BACK, DROP], None),
        # Policy tags: exact keys, values case-insensitive.
        ("setSecret", DANGLING, {"rotaudit:remediation": "off"}, 0, "skipped", "policy_off", [], None),
        ("setSecret", DANGLING, {"rotaudit:remediation": "Notify-Only"}, 0, "needs_human", "notify_only", [], None),
        ("setSecret", DANGLING, {"rotaudit:remediation": "maybe"}, 0, "needs_human", "policy_unrecognised", [], None),
        ("setSecret", DANGLING, AUTO, 0, "remediated", "stuck_pending_cleared", [DROP], NEW),
        ("setSecret", DANGLING, {"Rotaudit:Remediation": "off"}, 0, "remediated", "stuck_pending_cleared", [DROP], NEW),
        ("finishSecret", MOVED, BAD_DOCUMENT, 0, "remediated", "rolled_back", [BACK, DROP], NEW),
        # The secret itself.
        ("setSecret", {**DANGLING, "rotation_enabled": False}, {}, 0, "needs_human", "rotation_disabled", [], None),
        ("setSecret", {"exists": False}, {}, 0, "skipped", "secret_gone", [], None),
        ("setSecret", {**DANGLING, "deleted_at": T0}, {}, 0, "skipped", "secret_gone", [], None),
        (
            "setSecret",
            {**DANGLING, "last_rotated_at": T0 + timedelta(seconds=1)},
            {},
            0,
            "skipped",
            "rotated_since",
            [],
            None,
        ),
        ("setSecret", {**DANGLING, "last_rotated_at": T0}, {}, 0, "remediated", "stuck_pending_cleared", [DROP], NEW),
        (
            "finishSecret",
            {**MOVED, "last_rotated_at": T0 + timedelta(seconds=5)},
            ROLLBACK,
            0,
            "remediated",
            "rolled_back",
            [BACK, DROP],
            NEW,
        ),
    ],
)
def test_plan_table(
    step: str | None,
    state: dict[str, Any],
    tags: dict[str, str],
    used: int,
    resolution: str,
    reason: str,
    actions: list[tuple[str, str | None, str | None, str | None]],
    retry_token: str | None,
) -> None:
    """Each combination of failing step, labels, tags and budget gives the documented plan."""
    secret = SecretState(**state, tags=tags)
    policy = Policy.for_secret(Mode.APPLY, tags)
    plan = plan_remediation(_failure(step), secret, policy, Budget(limit=3, used=used), jitter=0.5)
    assert (plan.resolution.value, plan.reason.value) == (resolution, reason)
    assert _actions(plan) == actions
    assert (plan.retry.token if plan.retry else None) == retry_token
    assert not plan.dry_run


def test_kept_pending_retry_names_the_pending_version() -> None:
    """Keeping AWSPENDING resumes that very rotation: the retry's token and version are the pending version's id."""
    plan = plan_remediation(_failure("testSecret"), SecretState(**DANGLING), Policy(), Budget(3), jitter=0.0)
    assert plan.retry == Action(ActionKind.ROTATE, version_id=PEND, token=PEND, delay_s=30.0)


def test_dry_run_plans_the_same_actions_and_says_so() -> None:
    """Dry-run is the same plan, flagged: what would happen is recorded and notified, not done."""
    secret = SecretState(**DANGLING)
    live = plan_remediation(_failure(), secret, Policy(mode=Mode.APPLY), Budget(3), jitter=0.1)
    dry = plan_remediation(_failure(), secret, Policy(mode=Mode.DRY_RUN), Budget(3), jitter=0.1)
    assert dry.dry_run
    assert not live.dry_run
    assert (dry.resolution, dry.reason, dry.actions, dry.retry) == (
        live.resolution,
        live.reason,
        live.actions,
        live.retry,
    )


@pytest.mark.parametrize(
    ("used", "jitter", "expected"),
    [
        (0, 0.0, 30.0),
        (0, 1.0, 60.0),
        (1, 0.0, 60.0),
        (2, 0.5, 180.0),
        (5, 1.0, 1920.0),
        (6, 1.0, 3600.0),
        (50, 0.0, 1800.0),  # capped, never overflowing
        (0, -3.0, 30.0),  # jitter clamped to [0, 1]
        (0, 7.0, 60.0),
    ],
)
def test_retry_delay_backs_off_exponentially_with_jitter(used: int, jitter: float, expected: float) -> None:
    """Delay doubles per attempt already used, capped at an hour; jitter spreads the upper half."""
    assert retry_delay_s(used, jitter) == pytest.approx(expected)


def test_plan_delay_follows_the_budget_already_used() -> None:
    """The second retry of a secret within 24 h waits twice as long as the first."""
    secret = SecretState(**CLEAN)
    first = plan_remediation(_failure(), secret, Policy(), Budget(3, used=0), jitter=0.0)
    second = plan_remediation(_failure(), secret, Policy(), Budget(3, used=1), jitter=0.0)
    assert first.retry is not None
    assert second.retry is not None
    assert second.retry.delay_s == 2 * first.retry.delay_s


KEPT = Action(ActionKind.ROTATE, version_id=PEND, token=PEND)
CLEARED = Action(ActionKind.ROTATE, token=NEW)


@pytest.mark.parametrize(
    ("state", "tags", "used", "planned", "resolution", "reason", "token"),
    [
        (DANGLING, {}, 0, KEPT, "remediated", "pending_kept", PEND),
        (CLEAN, {}, 0, KEPT, "remediated", "no_pending", NEW),  # the pending version went meanwhile
        (CLEAN, {}, 2, CLEARED, "remediated", "no_pending", NEW),
        ({**CLEAN, "pending": "someone-elses"}, {}, 0, KEPT, "skipped", "rotation_in_progress", None),
        (DANGLING, {}, 0, CLEARED, "skipped", "rotation_in_progress", None),
        (CLEAN, {}, 3, CLEARED, "needs_human", "budget_exhausted", None),
        ({**CLEAN, "rotation_enabled": False}, {}, 0, CLEARED, "needs_human", "rotation_disabled", None),
        ({**CLEAN, "last_rotated_at": T0 + timedelta(minutes=1)}, {}, 0, CLEARED, "skipped", "rotated_since", None),
        ({"exists": False}, {}, 0, CLEARED, "skipped", "secret_gone", None),
        (CLEAN, {"rotaudit:remediation": "notify-only"}, 0, CLEARED, "skipped", "policy_off", None),
    ],
)
def test_retry_decision_table(
    state: dict[str, Any],
    tags: dict[str, str],
    used: int,
    planned: Action,
    resolution: str,
    reason: str,
    token: str | None,
) -> None:
    """A due retry re-checks fresh state: rotate with the right token, or stop with a reason."""
    decision = decide_retry(
        _failure(), SecretState(**state, tags=tags), Policy.for_secret(Mode.APPLY, tags), Budget(3, used), planned
    )
    assert (decision.resolution.value, decision.reason.value, decision.token) == (resolution, reason, token)


@pytest.mark.parametrize(
    ("action", "state", "needed"),
    [
        (Action(ActionKind.REMOVE_PENDING, version_id=PEND), DANGLING, True),
        (Action(ActionKind.REMOVE_PENDING, version_id=PEND), CLEAN, False),
        (Action(ActionKind.REMOVE_PENDING, version_id=PEND), {**CLEAN, "pending": "other"}, False),
        (Action(ActionKind.ROLLBACK, version_id=PEND, move_to=CUR), MOVED, True),
        (Action(ActionKind.ROLLBACK, version_id=PEND, move_to=CUR), {"current": CUR, "pending": PEND}, False),
        (Action(ActionKind.RESTART_CONSUMERS, document="Doc"), CLEAN, True),
    ],
)
def test_still_needed_skips_work_already_done(action: Action, state: dict[str, Any], needed: bool) -> None:
    """A plan resumed after a crash only repeats label moves the fresh state still calls for."""
    assert still_needed(action, SecretState(**state)) is needed


def test_secret_state_from_describe_reads_labels_dates_and_tags() -> None:
    """DescribeSecret's labels, rotation flag, dates and tags become a SecretState."""
    described = {
        "ARN": ARN,
        "RotationEnabled": True,
        "VersionIdsToStages": {CUR: ["AWSCURRENT"], PEND: ["AWSPENDING"], PREV: ["AWSPREVIOUS"], "old": []},
        "LastRotatedDate": T0,
        "NextRotationDate": T0 + timedelta(days=30),
        "Tags": [{"Key": "rotaudit:rollback", "Value": "allowed"}],
    }
    state = SecretState.from_describe(described)
    assert (state.current, state.pending, state.previous) == (CUR, PEND, PREV)
    assert state.rotation_enabled
    assert state.pending_dangles
    assert not state.pending_on_current
    assert state.tags == {"rotaudit:rollback": "allowed"}
    assert state.diagnosis()["next_rotation_at"] == (T0 + timedelta(days=30)).isoformat()
    bare = SecretState.from_describe({"ARN": ARN})
    assert (bare.current, bare.pending, bare.rotation_enabled, bare.tags) == (None, None, False, {})


@pytest.mark.parametrize(
    ("tags", "remediation", "rollback", "document"),
    [
        ({}, SecretPolicy.AUTO, False, None),
        ({"rotaudit:remediation": " OFF "}, SecretPolicy.OFF, False, None),
        ({"rotaudit:remediation": "notify-only", "rotaudit:rollback": "Allowed"}, SecretPolicy.NOTIFY_ONLY, True, None),
        ({"rotaudit:remediation": "sometimes"}, None, False, None),
        ({"rotaudit:restart-document": "AWS-RestartEC2Instance"}, SecretPolicy.AUTO, False, "AWS-RestartEC2Instance"),
        (
            {"rotaudit:restart-document": "arn:aws:ssm:us-east-1:123456789012:document/Restart"},
            SecretPolicy.AUTO,
            False,
            "arn:aws:ssm:us-east-1:123456789012:document/Restart",
        ),
        ({"rotaudit:restart-document": "no spaces allowed"}, SecretPolicy.AUTO, False, None),
    ],
)
def test_policy_from_tags(
    tags: dict[str, str], remediation: SecretPolicy | None, rollback: bool, document: str | None
) -> None:
    """Tags give the per-secret policy; unrecognised values are never read as permission."""
    policy = Policy.for_secret(Mode.APPLY, tags)
    assert (policy.remediation, policy.rollback_allowed, policy.restart_document) == (remediation, rollback, document)


def test_tokens_are_deterministic_per_rotation_and_valid_for_aws() -> None:
    """The same failed rotation always gets the same ClientRequestToken (32-64 chars); another rotation another."""
    first, again, other = _failure().new_version_token, _failure().new_version_token, _failure(rotation_id="rot-2")
    assert first == again != other.new_version_token
    assert 32 <= len(first) <= 64
    assert _failure().restart_token not in (first, other.new_version_token)


def test_plan_survives_a_round_trip_through_an_item() -> None:
    """A stored plan reads back identically, so a replica taking over applies the same plan."""
    secret = SecretState(**MOVED, tags={**ROLLBACK, **RESTART})
    plan = plan_remediation(
        _failure("finishSecret"), secret, Policy.for_secret(Mode.DRY_RUN, secret.tags), Budget(3, 1), jitter=0.3
    )
    again = Plan.from_item(plan.to_item())
    assert again.actions == plan.actions
    assert again.dry_run
    assert again.reason is Reason.ROLLED_BACK
    assert again.retry is not None
    assert plan.retry is not None
    assert (again.retry.token, again.retry.delay_s) == (plan.retry.token, round(plan.retry.delay_s))
    assert again.resolution is Resolution.REMEDIATED
