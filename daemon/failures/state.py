"""One secret's open failures as a pure value, and what a failure, an escalation or a success makes of it.

No I/O. The state is kept in two items of the audit table (`daemon.failures.store`):
    open       pk "failures-open"         sk "<secret ARN>"  only while the secret has a failure not yet recovered
    recovered  pk "failures#<secret ARN>"  sk "recovered"     the event time of the newest success seen, kept

Events arrive late, twice and out of order, so every change is decided on event times, never arrival order:
- a failure opens (or joins) the secret's open failures, unless a success at or after its time was seen;
- a success closes the open failures at or before its time, and moves the recovered time on; failures after it
  stay open (a success delivered after a newer failure does not hide it);
- remediation's escalation ("needs a human") marks the secret's open failures up to the newest (a success at or
  after it clears the mark); with none open (a success closed them) it changes nothing;
- the same event again changes nothing.
Times are `utc_iso` strings (fixed width, UTC), so they compare as text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

OPEN_PK = "failures-open"
RECOVERED_SK = "recovered"
FAILURES_KEPT = 20  # the newest open failure times an item keeps: the oldest (the one ages count from) is kept too


def open_key(secret_arn: str) -> dict[str, str]:
    return {"pk": OPEN_PK, "sk": secret_arn}


def recovered_key(secret_arn: str) -> dict[str, str]:
    return {"pk": f"failures#{secret_arn}", "sk": RECOVERED_SK}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SecretFailures:
    """A secret's open failure times (sorted), the escalated one if still open, and its newest success."""

    secret_arn: str
    secret_name: str = ""
    failed_at: tuple[str, ...] = ()
    needs_human_at: str | None = None
    recovered_at: str | None = None

    @property
    def is_open(self) -> bool:
        return bool(self.failed_at)

    @property
    def first_failed_at(self) -> str | None:
        return self.failed_at[0] if self.failed_at else None


@dataclass(frozen=True, slots=True)
class Change:
    """The state after an event, and the earliest failure a success closed (None when it closed none)."""

    state: SecretFailures
    closed_since: str | None = None
    gauges_moved: bool = True  # whether it changed what the gauges show (set by the store, which knows before)


def gauges_of(state: SecretFailures) -> tuple[bool, str | None, bool]:
    """What the gauges read of a secret's state: open, since when, escalated."""
    return (state.is_open, state.first_failed_at, state.needs_human_at is not None)


def _kept(times: set[str]) -> tuple[str, ...]:
    ordered = sorted(times)
    if len(ordered) <= FAILURES_KEPT:
        return tuple(ordered)
    return (ordered[0], *ordered[-(FAILURES_KEPT - 1) :])


def record_failure(state: SecretFailures, at: str, *, name: str = "") -> Change:
    """A failure at `at`."""
    if state.recovered_at is not None and at <= state.recovered_at:
        return Change(state)  # a late failure older than a success already seen: recovered already
    failed_at = _kept({*state.failed_at, at})
    return Change(dataclasses.replace(state, secret_name=name or state.secret_name, failed_at=failed_at))


def record_escalation(state: SecretFailures) -> Change:
    """Remediation escalated one of the secret's failures to a person (the notice carries no event time)."""
    if not state.is_open:
        return Change(state)  # recovered since: nothing left to mark
    return Change(dataclasses.replace(state, needs_human_at=state.failed_at[-1]))


def record_success(state: SecretFailures, at: str) -> Change:
    """A RotationSucceeded at `at`: closes the failures at or before it."""
    recovered_at = max(state.recovered_at or at, at)
    closed = [t for t in state.failed_at if t <= at]
    needs_human_at = state.needs_human_at
    if needs_human_at is not None and needs_human_at <= at:
        needs_human_at = None
    after = dataclasses.replace(
        state,
        failed_at=tuple(t for t in state.failed_at if t > at),
        needs_human_at=needs_human_at,
        recovered_at=recovered_at,
    )
    return Change(after, closed[0] if closed else None)


def recovery_seconds(closed_since: str, recovered_at: str) -> float:
    """Failure to recovery, in seconds (never negative)."""
    return max(0.0, (parse_time(recovered_at) - parse_time(closed_since)).total_seconds())
