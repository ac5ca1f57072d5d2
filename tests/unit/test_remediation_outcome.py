"""How a first remediation pass ends, for every plan resolution, dry run, retry and action result (table-driven)."""

from __future__ import annotations

import pytest

from daemon.remediation.outcome import DRY_RUN, RETRY_DUE, Kind, PassOutcome, first_pass_outcome
from daemon.remediation.plan import Action, ActionKind, Plan, Reason, Resolution

R, H, S = Resolution.REMEDIATED, Resolution.NEEDS_HUMAN, Resolution.SKIPPED
PLAN_REASON, FAILED = Reason.NO_PENDING, Reason.ACTION_FAILED
ESCALATED, ESCALATE_DRY = ("escalate", "applied"), ("escalate", "dry_run")
SKIP, ROTATE, ROTATE_DRY = ("none", "skipped"), ("rotate", "scheduled"), ("rotate", "dry_run")

# (plan resolution, dry run, plan has a retry, an action failed)
#   -> (resolution, reason, stage, notification, metric labels, retry scheduled)
OUTCOMES = [
    ((R, False, True, False), (R, PLAN_REASON, RETRY_DUE, Kind.REMEDIATED, ROTATE, True)),
    ((R, False, True, True), (H, FAILED, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((R, False, False, False), (R, PLAN_REASON, "remediated", Kind.REMEDIATED, None, False)),
    ((R, False, False, True), (H, FAILED, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((R, True, True, False), (R, PLAN_REASON, DRY_RUN, Kind.PLANNED, ROTATE_DRY, False)),
    ((R, True, True, True), (H, FAILED, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((R, True, False, False), (R, PLAN_REASON, DRY_RUN, Kind.PLANNED, None, False)),
    ((R, True, False, True), (H, FAILED, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((H, False, True, False), (H, PLAN_REASON, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((H, False, True, True), (H, FAILED, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((H, False, False, False), (H, PLAN_REASON, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((H, False, False, True), (H, FAILED, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((H, True, True, False), (H, PLAN_REASON, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((H, True, True, True), (H, FAILED, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((H, True, False, False), (H, PLAN_REASON, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((H, True, False, True), (H, FAILED, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((S, False, True, False), (S, PLAN_REASON, "skipped", None, SKIP, False)),
    ((S, False, True, True), (H, FAILED, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((S, False, False, False), (S, PLAN_REASON, "skipped", None, SKIP, False)),
    ((S, False, False, True), (H, FAILED, "needs_human", Kind.NEEDS_HUMAN, ESCALATED, False)),
    ((S, True, True, False), (S, PLAN_REASON, DRY_RUN, Kind.PLANNED, SKIP, False)),
    ((S, True, True, True), (H, FAILED, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
    ((S, True, False, False), (S, PLAN_REASON, DRY_RUN, Kind.PLANNED, SKIP, False)),
    ((S, True, False, True), (H, FAILED, DRY_RUN, Kind.PLANNED, ESCALATE_DRY, False)),
]


def test_the_table_covers_every_combination() -> None:
    """Every (resolution, dry run, retry, action failed) appears exactly once."""
    combinations = [case for case, _ in OUTCOMES]
    assert len(set(combinations)) == len(combinations) == len(Resolution) * 2 * 2 * 2


@pytest.mark.parametrize(("case", "expected"), OUTCOMES)
def test_first_pass_outcome(
    case: tuple[Resolution, bool, bool, bool],
    expected: tuple[Resolution, Reason, str, Kind | None, tuple[str, str] | None, bool],
) -> None:
    """A pass's stage, notification, metric and retry follow from the plan and whether an action failed."""
    resolution, dry_run, has_retry, action_failed = case
    retry = Action(ActionKind.ROTATE, token="t", delay_s=60.0) if has_retry else None
    plan = Plan(resolution, PLAN_REASON, retry=retry, dry_run=dry_run)
    assert first_pass_outcome(plan, action_failed=action_failed) == PassOutcome(*expected)


@pytest.mark.parametrize(("resolution", "is_open"), [(R, True), (H, True), (S, False)])
def test_only_a_skip_closes_the_failure(resolution: Resolution, is_open: bool) -> None:
    """A skipped failure is closed; a remediated or escalated one stays open until a rotation succeeds."""
    outcome = first_pass_outcome(Plan(resolution, PLAN_REASON), action_failed=False)
    assert outcome.is_open is is_open
