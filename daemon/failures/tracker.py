"""Keeps the open-failure state: the event hook, remediation's escalations, and the gauges' periodic refresh.

`FailureTracker.on_event` is an event hook (`async (event, outcome) -> None`): RotationFailed and
RotationAbandoned open a failure, RotationSucceeded closes those at or before it (observing the time to recover
once, from the replica whose write closed it). `needs_human` is remediation's escalation (a notice listener,
wired in `daemon.features`). `run` refreshes the gauges from the table on every replica (`every`), so each
replica, old or just started, reports what the table holds: the alert rules read state, not counters, and so see
a failure that happened before the first scrape or on a task that died since.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from daemon.audit import Outcome
from daemon.errors import AwsError, PermanentAwsError
from daemon.events import RotationEvent
from daemon.failures.metrics import FailureMetrics
from daemon.failures.state import (
    Change,
    SecretFailures,
    parse_time,
    record_escalation,
    record_failure,
    record_success,
    recovery_seconds,
)
from daemon.failures.store import FailureStore
from daemon.logs import get_logger
from daemon.table import utc_iso
from daemon.timer import Clock, every, utc_now

FAILURES = frozenset({"RotationFailed", "RotationAbandoned"})
SUCCEEDED = "RotationSucceeded"
REFRESH_S = 60.0
_APPLIED = 10_000  # event ids remembered as applied by this tracker

_Decide = Callable[[SecretFailures], Change]


class FailureTracker:
    """One replica's view of the open failures."""

    def __init__(
        self, store: FailureStore, metrics: FailureMetrics, *, refresh_s: float = REFRESH_S, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.refresh_s = refresh_s
        self.clock = clock
        self.log = get_logger("failures")
        self._applied: OrderedDict[str, None] = OrderedDict()  # event ids whose change is in the table
        self._refreshing = False  # a refresh after a change is running
        self._again = False  # ... and another change asked for one since it began

    async def on_event(self, event: RotationEvent, outcome: Outcome) -> None:
        """The hook. Raises TransientAwsError to have the message redelivered; duplicates change nothing.

        An event this tracker has already applied (the same event id delivered again to this replica) costs no
        call: its change is in the table. Any other delivery, a redelivery after a crash included, is decided on
        the table (a repeat decides "no change")."""
        del outcome
        if event.event_id in self._applied:
            return
        at = utc_iso(event.event_time)
        name = event.secret_name
        if event.event_name in FAILURES:
            applied = await self._change(
                event.secret_arn, lambda s: record_failure(s, at, name=name), event.event_name, name
            )
        elif event.event_name == SUCCEEDED:
            applied = await self._change(event.secret_arn, lambda s: record_success(s, at), event.event_name, name)
        else:
            return
        if not applied:
            return
        self._applied[event.event_id] = None
        while len(self._applied) > _APPLIED:
            self._applied.popitem(last=False)

    async def needs_human(self, secret_arn: str, secret_name: str, rotation_id: str) -> None:
        """Remediation escalated a failure of the secret (rotation `rotation_id`): mark its open failures."""
        self.log.debug("failures.escalated", secret_name=secret_name, rotation_id=rotation_id)
        await self._change(secret_arn, record_escalation, "needs_human", secret_name)

    async def _change(self, secret_arn: str, decide: _Decide, cause: str, name: str) -> bool:
        """Whether the change is in the table (made now, or found made)."""
        try:
            change = await self.store.change(secret_arn, decide, monotonic=cause != "needs_human")
        except PermanentAwsError as exc:
            # Not worth a redelivery: the gauges miss this change, and rotaudit_aws_errors_total{kind="permanent"}
            # (an alert) says why.
            self.log.error("failures.write_failed", error=str(exc), cause=cause, secret_name=name)
            return False
        if change is None:
            return True
        state = change.state
        if change.closed_since is not None and state.recovered_at is not None:
            self.metrics.recovery_seconds.observe(recovery_seconds(change.closed_since, state.recovered_at))
        if cause == SUCCEEDED and change.closed_since is None:
            return True  # only the secret's newest success moved on: no open failure changed
        self.log.info(
            "failures.state_changed",
            cause=cause,
            secret_name=name,
            secret_arn=secret_arn,
            open=len(state.failed_at),
            needs_human=state.needs_human_at is not None,
            closed_since=change.closed_since,
        )
        if change.gauges_moved:  # not for a retried rotation's next failure: the secret was open already
            await self._refresh_after_change()  # this replica's gauges at once; the others' on their next refresh
        return True

    async def _refresh_after_change(self) -> None:
        """Refresh now, or, when a refresh is already running (another message's change), have it run once more
        after it: its Query may have begun before this change was written. Changes made meanwhile share that one
        more, so a burst costs a Query per round trip, not per change."""
        if self._refreshing:
            self._again = True
            return
        self._refreshing = True
        try:
            self._again = True
            while self._again:
                self._again = False
                try:
                    await self.refresh()
                except AwsError as exc:
                    self._refresh_failed(exc)
        finally:
            self._refreshing = False

    async def refresh(self) -> None:
        """Set the gauges from the open partition."""
        items = await self.store.open_failures()
        firsts = [parse_time(str(item["first_failed_at"])) for item in items if item.get("first_failed_at")]
        self.metrics.open.set(len(items))
        self.metrics.needing_human.set(sum(1 for item in items if item.get("needs_human_at")))
        self.metrics.oldest.set(min(firsts).timestamp() if firsts else 0)
        self.metrics.refreshed.set(self.clock().timestamp())

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `refresh_s` until `stop` (at once first); a failed refresh keeps the last values."""
        await every(self.refresh_s, stop, self.refresh, on_error=self._refresh_failed)

    def _refresh_failed(self, exc: AwsError) -> None:
        self.log.warning("failures.refresh_failed", error=str(exc))
