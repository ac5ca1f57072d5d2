"""Table-driven tests for the remediation decision table (daemon.remediation.plan) and what it reads (state)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.remediation.plan import (
    Action,
    ActionKind,
    Budget,
    Mode,
    Plan,
    Policy,
    Reason,
    Resolution,
    SecretPolicy,
    decide_retry,
    plan_remediation,
    retry_delay_s,
    still_needed,
)
from daemon.remediation.state import Aftermath, Failure, SecretState, Strategy, held_label

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-a1b2c3"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CUR, PEND, PREV = "11111111-aaaa-4aaa-8aaa-111111111111", "22222222-bbbb-4bbb-8bbb-222222222222", "33333333-cccc"
HOLD_PEND = ("hold", PEND, None, held_label(PEND))
DROP = ("remove_pending", PEND, None, None)
PROMOTE = ("promote", CUR, PEND, None)
BACK = ("rollback", PEND, CUR, None)
HOLD_MOVED = ("hold", PEND, None, held_label(PEND))
RESTARTED = ("restart_consumers", None, None, None)


def _failure(step: str | None = "setSecret", rotation_id: str = "rot-1") -> Failure:
    return Failure(ARN, "app/db", rotation_id, T0, step)


def _state(labels: str, strategy: str = "", **extra: Any) -> SecretState:
    """`dangling`: AWSPENDING on its own version; `moved`: on AWSCURRENT (after finishSecret); `none`: absent."""
    current, pending, previous = {
        "dangling": (CUR, PEND, PREV),
        "moved": (PEND, PEND, CUR),
        "none": (CUR, None, PREV),
    }[labels]
    tags = {**({"rotaudit:strategy": strategy} if strategy else {}), **extra.pop("tags", {})}
    stages: dict[str, tuple[str, ...]] = {}
    for label, version in (("AWSCURRENT", current), ("AWSPENDING", pending), ("AWSPREVIOUS", previous)):
        if version:
            stages[version] = (*stages.get(version, ()), label)
    return SecretState(current=current, pending=pending, previous=previous, tags=tags, stages=stages, **extra)


def _actions(plan: Plan) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(a.kind.value, a.version_id, a.move_to, a.label) for a in plan.actions]


S, A, U = "single-user", "alternating-users", ""
MOVE = {"rotaudit:move-current": "allowed"}
MOVED_HERE = Aftermath(current_moved_to=frozenset({PEND}))


@pytest.mark.parametrize(
    ("step", "labels", "strategy", "tags", "aftermath", "resolution", "reason", "actions", "retry"),
    [
        # createSecret: the database never saw the pending version: clear it, rotate again (any strategy).
        ("createSecret", "dangling", U, {}, Aftermath(), "remediated", "stuck_pending_cleared", [DROP], True),
        ("createSecret", "dangling", S, MOVE, Aftermath(), "remediated", "stuck_pending_cleared", [DROP], True),
        # setSecret: the database may hold the pending version: hold it, clear AWSPENDING, rotate again.
        ("setSecret", "dangling", U, {}, Aftermath(), "remediated", "pending_set_aside", [HOLD_PEND, DROP], True),
        ("setSecret", "dangling", S, {}, Aftermath(), "remediated", "pending_set_aside", [HOLD_PEND, DROP], True),
        ("setSecret", "dangling", A, {}, Aftermath(), "remediated", "pending_set_aside", [HOLD_PEND, DROP], True),
        # testSecret: the database holds the pending version.
        ("testSecret", "dangling", S, MOVE, Aftermath(), "remediated", "pending_promoted", [PROMOTE], False),
        ("testSecret", "dangling", S, {}, Aftermath(), "needs_human", "move_not_allowed", [], False),
        ("testSecret", "dangling", A, {}, Aftermath(), "remediated", "pending_set_aside", [HOLD_PEND, DROP], True),
        ("testSecret", "dangling", A, MOVE, Aftermath(), "remediated", "pending_set_aside", [HOLD_PEND, DROP], True),
        ("testSecret", "dangling", U, MOVE, Aftermath(), "needs_human", "strategy_unknown", [], False),
        # finishSecret before its label move: the pending version passed its test.
        ("finishSecret", "dangling", S, MOVE, Aftermath(), "remediated", "pending_promoted", [PROMOTE], False),
        ("finishSecret", "dangling", U, MOVE, Aftermath(), "remediated", "pending_promoted", [PROMOTE], False),
        ("finishSecret", "dangling", A, MOVE, Aftermath(), "remediated", "pending_promoted", [PROMOTE], False),
        ("finishSecret", "dangling", S, {}, Aftermath(), "needs_human", "move_not_allowed", [], False),
        ("finishSecret", "dangling", U, {}, Aftermath(), "needs_human", "move_not_allowed", [], False),
        ("finishSecret", "dangling", A, {}, Aftermath(), "remediated", "pending_set_aside", [HOLD_PEND, DROP], True),
        # finishSecret after its label move: the work is done; a rollback needs history, strategy and opt-in.
        ("finishSecret", "moved", S, MOVE, MOVED_HERE, "skipped", "current_moved", [], False),
        ("finishSecret", "moved", U, MOVE, MOVED_HERE, "skipped", "current_moved", [], False),
        ("finishSecret", "moved", A, {}, MOVED_HERE, "skipped", "current_moved", [], False),
        ("finishSecret", "moved", A, MOVE, Aftermath(), "skipped", "current_moved", [], False),  # event's word only
        ("finishSecret", "moved", A, MOVE, MOVED_HERE, "remediated", "rolled_back", [BACK, HOLD_MOVED, DROP], False),
        # AWSPENDING on AWSCURRENT after another step is an earlier success's label; none at all blocks nothing.
        ("setSecret", "moved", S, MOVE, MOVED_HERE, "remediated", "no_pending", [], True),
        ("testSecret", "none", U, {}, Aftermath(), "remediated", "no_pending", [], True),
        ("finishSecret", "none", S, MOVE, Aftermath(), "remediated", "no_pending", [], True),
        # An unknown step: the database may hold either version; nobody should guess.
        (None, "dangling", S, MOVE, Aftermath(), "needs_human", "unknown_step", [], False),
        # What came after stands remediation down, whatever the row would have done.
        ("testSecret", "dangling", S, MOVE, Aftermath(succeeded_after=True), "skipped", "rotated_since", [], False),
        ("setSecret", "dangling", U, {}, Aftermath(later_rotation_started=True), "skipped", "moved_on", [], False),
        ("setSecret", "none", U, {}, Aftermath(abandoned_after=True), "skipped", "abandoned", [], False),
        ("finishSecret", "moved", A, MOVE, Aftermath(succeeded_after=True), "skipped", "rotated_since", [], False),
    ],
)
def test_decision_table(
    step: str | None,
    labels: str,
    strategy: str,
    tags: dict[str, str],
    aftermath: Aftermath,
    resolution: str,
    reason: str,
    actions: list[tuple[str, str | None, str | None, str | None]],
    retry: bool,
) -> None:
    """Each row of the README's table: failed step, labels, strategy, opt-in and what came after give the action."""
    state = _state(labels, strategy, tags=tags)
    plan = plan_remediation(
        _failure(step), state, aftermath, Policy.for_secret(Mode.APPLY, state.tags), Budget(3), jitter=0.0
    )
    assert (plan.resolution.value, plan.reason.value) == (resolution, reason)
    assert _actions(plan) == actions
    assert (plan.retry is not None) is retry


@pytest.mark.parametrize(
    ("step", "labels", "strategy", "tags", "may_hold"),
    [
        ("createSecret", "dangling", U, {}, (CUR,)),
        ("setSecret", "dangling", S, {}, (CUR, PEND)),
        ("testSecret", "dangling", S, MOVE, (PEND,)),  # setSecret changed the only user's password
        ("testSecret", "dangling", A, {}, (CUR, PEND)),
        ("finishSecret", "dangling", A, MOVE, (CUR, PEND)),
        ("finishSecret", "moved", A, MOVE, (CUR, PEND)),  # rolled back: both users' passwords still work
    ],
)
def test_plan_records_which_versions_the_database_may_hold(
    step: str, labels: str, strategy: str, tags: dict[str, str], may_hold: tuple[str, ...]
) -> None:
    """Every plan says which versions the database may accept, so the invariants can be checked against it."""
    state = _state(labels, strategy, tags=tags)
    aftermath = MOVED_HERE if labels == "moved" else Aftermath()
    plan = plan_remediation(_failure(step), state, aftermath, Policy.for_secret(Mode.APPLY, tags), Budget(3), jitter=0)
    assert set(plan.may_hold) == set(may_hold)


def test_a_version_the_database_may_hold_is_never_left_without_a_label() -> None:
    """Across the table, AWSPENDING leaves a version only after a held label of its own was put on it first."""
    for step in ("setSecret", "testSecret", "finishSecret"):
        for strategy in (S, A, U):
            for tags in ({}, MOVE):
                state = _state("dangling", strategy, tags=tags)
                plan = plan_remediation(
                    _failure(step), state, Aftermath(), Policy.for_secret(Mode.APPLY, tags), Budget(3), jitter=0
                )
                kinds = [a.kind for a in plan.actions]
                if ActionKind.REMOVE_PENDING in kinds:
                    assert ActionKind.HOLD in kinds[: kinds.index(ActionKind.REMOVE_PENDING)], (step, strategy, tags)


@pytest.mark.parametrize(
    ("tags", "extra", "budget", "resolution", "reason"),
    [
        ({"rotaudit:remediation": "off"}, {}, Budget(3), "skipped", "policy_off"),
        ({"rotaudit:remediation": "notify-only"}, {}, Budget(3), "needs_human", "notify_only"),
        ({"rotaudit:remediation": "sometimes"}, {}, Budget(3), "needs_human", "policy_unrecognised"),
        ({}, {"rotation_enabled": False}, Budget(3), "needs_human", "rotation_disabled"),
        ({}, {}, Budget(3, used=3), "needs_human", "budget_exhausted"),
        ({}, {}, Budget(3, attempts_left=0), "needs_human", "attempts_exhausted"),
        ({}, {"exists": False}, Budget(3), "skipped", "secret_gone"),
        ({}, {"last_rotated_at": T0 + timedelta(minutes=1)}, Budget(3), "skipped", "rotated_since"),
    ],
)
def test_policy_budget_and_state_gate_a_retry(
    tags: dict[str, str], extra: dict[str, Any], budget: Budget, resolution: str, reason: str
) -> None:
    """A plan that would rotate again escalates, unchanged and without actions, when it may not."""
    state = _state("dangling", S, tags=tags, **extra)
    plan = plan_remediation(_failure(), state, Aftermath(), Policy.for_secret(Mode.APPLY, tags), budget, jitter=0.0)
    assert (plan.resolution.value, plan.reason.value) == (resolution, reason)
    assert plan.retry is None
    assert plan.actions == ()


def test_an_escalation_says_what_to_do_in_ids_and_commands() -> None:
    """A needs-human plan carries advice naming the versions and the exact label move; never a value."""
    plan = plan_remediation(_failure("testSecret"), _state("dangling", S), Aftermath(), Policy(), Budget(3), jitter=0.0)
    assert plan.reason is Reason.MOVE_NOT_ALLOWED
    assert f"--move-to-version-id {PEND}" in plan.advice
    assert f"--remove-from-version-id {CUR}" in plan.advice


def test_dry_run_plans_the_same_actions_and_says_so() -> None:
    """Dry-run is the same plan, flagged: what would happen is recorded and notified, not done."""
    state = _state("dangling", A)
    live = plan_remediation(_failure(), state, Aftermath(), Policy(mode=Mode.APPLY), Budget(3), jitter=0.1)
    dry = plan_remediation(_failure(), state, Aftermath(), Policy(mode=Mode.DRY_RUN), Budget(3), jitter=0.1)
    assert dry.dry_run
    assert not live.dry_run
    assert (dry.resolution, dry.reason, dry.actions, dry.retry) == (
        live.resolution,
        live.reason,
        live.actions,
        live.retry,
    )


def test_restart_follows_every_move_of_awscurrent() -> None:
    """Consumers restart after a promotion or a rollback when the secret names a document."""
    tags = {**MOVE, "rotaudit:restart-document": "Restart-App"}
    plan = plan_remediation(
        _failure("finishSecret"), _state("dangling", S, tags=tags), Aftermath(), Policy.for_secret(Mode.APPLY, tags),
        Budget(3), jitter=0.0,
    )  # fmt: skip
    assert [a.kind for a in plan.actions] == [ActionKind.PROMOTE, ActionKind.RESTART_CONSUMERS]
    assert plan.actions[-1].document == "Restart-App"


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
    state = _state("none")
    first = plan_remediation(_failure(), state, Aftermath(), Policy(), Budget(3, used=0), jitter=0.0)
    second = plan_remediation(_failure(), state, Aftermath(), Policy(), Budget(3, used=1), jitter=0.0)
    assert first.retry is not None
    assert second.retry is not None
    assert second.retry.delay_s == 2 * first.retry.delay_s


NEW = _failure().new_version_token


@pytest.mark.parametrize(
    ("labels", "tags", "extra", "aftermath", "used", "resolution", "reason", "token"),
    [
        ("none", {}, {}, Aftermath(), 0, "remediated", "no_pending", NEW),
        ("moved", {}, {}, Aftermath(), 2, "remediated", "no_pending", NEW),  # RotateSecret accepts it
        ("dangling", {}, {}, Aftermath(), 0, "skipped", "rotation_in_progress", None),  # AWS would refuse
        ("none", {}, {}, Aftermath(), 3, "needs_human", "budget_exhausted", None),
        ("none", {}, {"rotation_enabled": False}, Aftermath(), 0, "needs_human", "rotation_disabled", None),
        ("none", {}, {"last_rotated_at": T0 + timedelta(minutes=1)}, Aftermath(), 0, "skipped", "rotated_since", None),
        ("none", {}, {}, Aftermath(succeeded_after=True), 0, "skipped", "rotated_since", None),
        ("none", {}, {}, Aftermath(later_rotation_started=True), 0, "skipped", "moved_on", None),
        ("none", {}, {"exists": False}, Aftermath(), 0, "skipped", "secret_gone", None),
        ("none", {"rotaudit:remediation": "notify-only"}, {}, Aftermath(), 0, "skipped", "policy_off", None),
    ],
)
def test_retry_decision_table(
    labels: str,
    tags: dict[str, str],
    extra: dict[str, Any],
    aftermath: Aftermath,
    used: int,
    resolution: str,
    reason: str,
    token: str | None,
) -> None:
    """A due retry re-checks fresh state: RotateSecret only where AWS accepts it, else stop with a reason."""
    state = _state(labels, tags=tags, **extra)
    decision = decide_retry(_failure(), state, aftermath, Policy.for_secret(Mode.APPLY, tags), Budget(3, used))
    assert (decision.resolution.value, decision.reason.value, decision.token) == (resolution, reason, token)


@pytest.mark.parametrize(
    ("action", "labels", "needed"),
    [
        (Action(ActionKind.REMOVE_PENDING, version_id=PEND), "dangling", True),
        (Action(ActionKind.REMOVE_PENDING, version_id=PEND), "none", False),
        (Action(ActionKind.HOLD, version_id=PEND, label=held_label(PEND)), "dangling", True),
        (Action(ActionKind.PROMOTE, version_id=CUR, move_to=PEND), "dangling", True),
        (Action(ActionKind.PROMOTE, version_id=CUR, move_to=PEND), "moved", False),
        (Action(ActionKind.ROLLBACK, version_id=PEND, move_to=CUR), "moved", True),
        (Action(ActionKind.ROLLBACK, version_id=PEND, move_to=CUR), "dangling", False),
        (Action(ActionKind.RESTART_CONSUMERS, document="Doc"), "none", True),
    ],
)
def test_still_needed_skips_work_already_done(action: Action, labels: str, needed: bool) -> None:
    """A plan resumed after a crash only repeats label moves the fresh state still calls for."""
    assert still_needed(action, _state(labels)) is needed


def test_a_held_version_needs_no_second_hold() -> None:
    """Once the held label is on the version, holding it again is already done."""
    state = _state("dangling")
    held = dataclasses.replace(state, stages={**state.stages, PEND: ("AWSPENDING", held_label(PEND))})
    assert not still_needed(Action(ActionKind.HOLD, version_id=PEND, label=held_label(PEND)), held)
    assert held.held(PEND)


def test_secret_state_from_describe_reads_labels_dates_tags_and_strategy() -> None:
    """DescribeSecret's labels, rotation flag, dates, tags and owner become a SecretState."""
    described = {
        "ARN": ARN,
        "Name": "rds!db-123",
        "OwningService": "rds",
        "RotationEnabled": True,
        "VersionIdsToStages": {CUR: ["AWSCURRENT"], PEND: ["AWSPENDING"], PREV: ["AWSPREVIOUS"], "old": []},
        "LastRotatedDate": T0,
        "NextRotationDate": T0 + timedelta(days=30),
        "Tags": [{"Key": "rotaudit:move-current", "Value": "allowed"}],
    }
    state = SecretState.from_describe(described)
    assert (state.current, state.pending, state.previous) == (CUR, PEND, PREV)
    assert state.rotation_enabled
    assert state.pending_dangles
    assert state.strategy is Strategy.SINGLE_USER  # RDS-managed rotation changes one user's password
    assert state.diagnosis()["next_rotation_at"] == (T0 + timedelta(days=30)).isoformat()
    bare = SecretState.from_describe({"ARN": ARN})
    assert (bare.current, bare.pending, bare.rotation_enabled, bare.tags) == (None, None, False, {})
    assert bare.strategy is Strategy.UNKNOWN


@pytest.mark.parametrize(
    ("tags", "remediation", "move", "document"),
    [
        ({}, SecretPolicy.AUTO, False, None),
        ({"rotaudit:remediation": " OFF "}, SecretPolicy.OFF, False, None),
        (
            {"rotaudit:remediation": "notify-only", "rotaudit:move-current": "Allowed"},
            SecretPolicy.NOTIFY_ONLY,
            True,
            None,
        ),
        ({"rotaudit:rollback": "allowed"}, SecretPolicy.AUTO, True, None),  # the older name still counts
        ({"rotaudit:move-current": "yes"}, SecretPolicy.AUTO, False, None),  # only "allowed" is permission
        ({"rotaudit:remediation": "sometimes"}, None, False, None),
        ({"rotaudit:restart-document": "AWS-RestartEC2Instance"}, SecretPolicy.AUTO, False, "AWS-RestartEC2Instance"),
        ({"rotaudit:restart-document": "no spaces allowed"}, SecretPolicy.AUTO, False, None),
    ],
)
def test_policy_from_tags(
    tags: dict[str, str], remediation: SecretPolicy | None, move: bool, document: str | None
) -> None:
    """Tags give the per-secret policy; unrecognised values are never read as permission."""
    policy = Policy.for_secret(Mode.APPLY, tags)
    assert (policy.remediation, policy.move_current_allowed, policy.restart_document) == (remediation, move, document)


@pytest.mark.parametrize(
    ("tags", "name", "owner", "strategy"),
    [
        ({}, "app/db", "", Strategy.UNKNOWN),
        ({"rotaudit:strategy": "Single-User"}, "app/db", "", Strategy.SINGLE_USER),
        ({"rotaudit:strategy": "alternating-users"}, "app/db", "", Strategy.ALTERNATING_USERS),
        ({"rotaudit:strategy": "both"}, "app/db", "", Strategy.UNKNOWN),
        ({}, "rds!cluster-1", "", Strategy.SINGLE_USER),
        ({}, "x", "rds", Strategy.SINGLE_USER),
    ],
)
def test_strategy_from_tags_and_owner(tags: dict[str, str], name: str, owner: str, strategy: Strategy) -> None:
    """The strategy tag wins; RDS-managed secrets are single-user; anything else is unknown."""
    assert Strategy.of(tags, name=name, owning_service=owner) is strategy


def test_aftermath_reads_success_later_rotations_and_label_moves_from_history() -> None:
    """History since the failure: successes, later rotations, manual values, and AWSCURRENT moves in this rotation."""
    at = lambda minutes: (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    items = [
        {"kind": "event", "event_name": "RotationStarted", "rotation_id": "rot-1", "event_time": at(-5)},
        {
            "kind": "event",
            "event_name": "Secret Label Updated",
            "label": "AWSCURRENT",
            "version_id": PEND,
            "event_time": at(-1),
        },
        {
            "kind": "event",
            "event_name": "Secret Label Updated",
            "label": "AWSCURRENT",
            "version_id": "early",
            "event_time": at(-9),
        },
        {"kind": "scan", "event_name": "RotationSucceeded", "event_time": at(5)},  # not an event item: ignored
        {"kind": "event", "event_name": "RotationStarted", "rotation_id": "rot-2", "event_time": at(3)},
    ]
    after = Aftermath.from_history(items, _failure(), at(0))
    assert after == Aftermath(later_rotation_started=True, current_moved_to=frozenset({PEND}))


def test_tokens_are_deterministic_per_rotation_and_valid_for_aws() -> None:
    """The same failed rotation always gets the same ClientRequestToken (32-64 chars); another rotation another."""
    first, again, other = _failure().new_version_token, _failure().new_version_token, _failure(rotation_id="rot-2")
    assert first == again != other.new_version_token
    assert 32 <= len(first) <= 64
    assert _failure().restart_token not in (first, other.new_version_token)


def test_plan_survives_a_round_trip_through_an_item() -> None:
    """A stored plan reads back identically, so a replica taking over applies the same plan."""
    tags = {**MOVE, "rotaudit:restart-document": "Restart-App", "rotaudit:strategy": A}
    state = _state("moved", tags=tags)
    plan = plan_remediation(
        _failure("finishSecret"), state, MOVED_HERE, Policy.for_secret(Mode.DRY_RUN, tags), Budget(3, 1), jitter=0.3
    )
    again = Plan.from_item(plan.to_item())
    assert again.actions == plan.actions
    assert again.dry_run
    assert again.reason is Reason.ROLLED_BACK
    assert again.resolution is Resolution.REMEDIATED
    assert again.may_hold == plan.may_hold


def test_a_claim_keeps_its_newest_results_and_counts_the_rest() -> None:
    """However many passes a failure takes, its claim item keeps 20 results and the number dropped."""
    from daemon.remediation.claims import RESULTS_KEPT, bounded

    results = [{"action": "rotate", "result": "failed", "n": n} for n in range(RESULTS_KEPT + 7)]
    kept = bounded({"results": results, "results_dropped": 3})
    assert [r["n"] for r in kept["results"]] == list(range(7, RESULTS_KEPT + 7))
    assert kept["results_dropped"] == 10
    assert bounded({"results": results[:5]}) == {"results": results[:5]}
