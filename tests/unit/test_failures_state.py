"""The open-failure state's decisions: sequences of failures, escalations and successes, in any arrival order."""

from __future__ import annotations

import pytest

from daemon.failures.state import (
    FAILURES_KEPT,
    SecretFailures,
    record_escalation,
    record_failure,
    record_success,
    recovery_seconds,
)

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"


def t(minute: int) -> str:
    return f"2026-03-01T12:{minute:02d}:00.000Z"


def play(steps: list[tuple[str, int]]) -> tuple[SecretFailures, list[str | None]]:
    """Apply ("fail" | "human" | "ok", minute) steps in order (an escalation has no time: its minute is unused);
    the state and each success's closed_since."""
    state, closed = SecretFailures(ARN), []
    for kind, minute in steps:
        if kind == "ok":
            change = record_success(state, t(minute))
            closed.append(change.closed_since)
        elif kind == "human":
            change = record_escalation(state)
        else:
            change = record_failure(state, t(minute), name="db")
        state = change.state
    return state, closed


@pytest.mark.parametrize(
    ("steps", "open_at", "needs_human", "closed"),
    [
        ([("fail", 0)], [0], None, []),
        ([("fail", 0), ("fail", 0)], [0], None, []),
        ([("fail", 5), ("fail", 0)], [0, 5], None, []),
        ([("fail", 0), ("ok", 10)], [], None, [t(0)]),
        ([("fail", 0), ("ok", 0)], [], None, [t(0)]),
        ([("fail", 0), ("ok", 10), ("ok", 10)], [], None, [t(0), None]),
        ([("ok", 10), ("fail", 5)], [], None, [None]),
        ([("ok", 10), ("fail", 10)], [], None, [None]),
        ([("ok", 10), ("fail", 15)], [15], None, [None]),
        ([("fail", 0), ("fail", 30), ("ok", 10)], [30], None, [t(0)]),
        ([("fail", 30), ("ok", 10)], [30], None, [None]),
        ([("fail", 0), ("human", 0)], [0], 0, []),
        ([("human", 0)], [], None, []),
        ([("fail", 0), ("human", 0), ("ok", 10)], [], None, [t(0)]),
        ([("fail", 0), ("ok", 10), ("human", 0)], [], None, [t(0)]),
        ([("fail", 0), ("fail", 20), ("human", 0), ("ok", 10)], [20], 20, [t(0)]),
        ([("fail", 0), ("human", 0), ("fail", 20), ("ok", 10)], [20], None, [t(0)]),
        ([("fail", 0), ("ok", 10), ("ok", 5)], [], None, [t(0), None]),
    ],
)
def test_decisions_follow_event_times_not_arrival_order(
    steps: list[tuple[str, int]], open_at: list[int], needs_human: int | None, closed: list[str | None]
) -> None:
    """Open failures, the escalated one and what each success closed, for each sequence."""
    state, closed_since = play(steps)
    assert state.failed_at == tuple(t(m) for m in open_at)
    assert state.needs_human_at == (None if needs_human is None else t(needs_human))
    assert closed_since == closed


def test_the_newest_success_is_kept_whatever_the_order() -> None:
    """A success older than one already seen does not move the recovered time back."""
    state, _ = play([("ok", 10), ("ok", 5)])
    assert state.recovered_at == t(10)


def test_a_secret_failing_for_ever_keeps_its_first_failure_and_the_newest() -> None:
    """The item stays small: the oldest failure (ages count from it) and the newest ones."""
    state, _ = play([("fail", minute) for minute in range(50)])
    assert len(state.failed_at) == FAILURES_KEPT
    assert state.failed_at[0] == t(0)
    assert state.failed_at[-1] == t(49)


@pytest.mark.parametrize(
    ("failed", "recovered", "seconds"),
    [(t(0), t(10), 600.0), (t(10), t(10), 0.0), ("2026-03-01T12:00:00.000Z", "2026-03-03T12:00:00.500Z", 172800.5)],
)
def test_recovery_seconds(failed: str, recovered: str, seconds: float) -> None:
    """Failure to recovery in seconds, from the items' ISO times."""
    assert recovery_seconds(failed, recovered) == seconds
