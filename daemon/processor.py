"""One batch of messages end to end: parse, audit, run follow-up hooks, and say what to do with each message.

The consumer owns SQS mechanics; this module owns meaning. A message is `DONE` (its effects are durable:
delete it), `REJECT` (a bad message: to the DLQ with the reason) or `RETRY` (a transient failure: leave it
for redelivery).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from daemon.audit import AuditStore, Outcome, PendingWrite
from daemon.errors import AwsError, TransientAwsError
from daemon.events import Rejection, RotationEvent, parse_message
from daemon.logs import get_logger
from daemon.metrics import Metrics
from daemon.probe import parse_probe, record_probe
from daemon.timer import utc_now

# A follow-up for an audited event (remediation, sync, ...). It runs for duplicates too, so that a
# redelivery after a crash finishes what the first delivery started; hooks are idempotent themselves.
EventHook = Callable[[RotationEvent, Outcome], Awaitable[None]]


class Verdict(StrEnum):
    DONE = "done"
    REJECT = "reject"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Message:
    """What the processor needs of an SQS message."""

    message_id: str
    body: str
    receipt_handle: str
    receive_count: int = 1
    sent_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    received_at_s: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Disposition:
    verdict: Verdict
    rejection: Rejection | None = None
    event: RotationEvent | None = None
    outcome: str = ""


class Processor:
    """Turns messages into audit items and verdicts."""

    def __init__(
        self,
        store: AuditStore,
        metrics: Metrics,
        *,
        allowed_accounts: frozenset[str] = frozenset(),
        allowed_regions: frozenset[str] = frozenset(),
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.allowed_accounts = allowed_accounts
        self.allowed_regions = allowed_regions
        self.hooks = tuple(hooks)
        self.log = get_logger("processor")

    async def process(self, messages: Sequence[Message]) -> list[Disposition]:
        """Dispositions for `messages`, in order. Never raises for a bad message."""
        now = utc_now()
        dispositions: list[Disposition | None] = [None] * len(messages)
        writes: list[tuple[int, RotationEvent]] = []
        for index, message in enumerate(messages):
            if message.sent_at is not None:
                self.metrics.event_lag_seconds.observe(max(0.0, (now - message.sent_at).total_seconds()))
            probe_id = parse_probe(message.body)
            if probe_id is not None:  # `rotaudit doctor --probe`: recorded apart, never a rotation (daemon/probe.py)
                dispositions[index] = await self._record_probe(probe_id, message)
                continue
            parsed = parse_message(
                message.body, allowed_accounts=self.allowed_accounts, allowed_regions=self.allowed_regions
            )
            if isinstance(parsed, Rejection):
                dispositions[index] = Disposition(Verdict.REJECT, rejection=parsed)
            else:
                writes.append((index, parsed))

        if writes:
            # Follow-ups of one secret's events run in order; different secrets' run at once: each hook's calls
            # are round trips, and a batch of ten must not wait for ten in a row.
            by_secret: dict[str, list[tuple[int, RotationEvent, Outcome]]] = {}
            for (index, event), result in zip(writes, await self._record(messages, writes), strict=True):
                if isinstance(result, AwsError):
                    self.metrics.events_processed.labels(event.event_name, "failed").inc()
                    dispositions[index] = Disposition(Verdict.RETRY, event=event, outcome="write_failed")
                else:
                    by_secret.setdefault(event.secret_arn, []).append((index, event, result))

            async def follow_up(group: list[tuple[int, RotationEvent, Outcome]]) -> None:
                for index, event, outcome in group:
                    dispositions[index] = await self._follow_up(event, outcome)

            await asyncio.gather(*(follow_up(group) for group in by_secret.values()))
        return [d if d is not None else Disposition(Verdict.RETRY) for d in dispositions]

    async def _record_probe(self, probe_id: str, message: Message) -> Disposition:
        try:
            await record_probe(self.store.aws, self.store.table, probe_id, message_id=message.message_id, now=utc_now())
        except AwsError as exc:
            self.log.warning("event.probe_write_failed", probe_id=probe_id, error=str(exc))
            return Disposition(Verdict.RETRY, outcome="write_failed")
        self.log.info("event.probe_recorded", probe_id=probe_id)
        return Disposition(Verdict.DONE, outcome="probe")

    async def _record(
        self, messages: Sequence[Message], writes: list[tuple[int, RotationEvent]]
    ) -> list[Outcome | AwsError]:
        """One outcome or error per write. A permanent error fails a batch's transaction as a whole, so the batch
        is then written item by item: one item AWS refuses must not hold back the others."""
        pending = [PendingWrite(event, messages[i].message_id) for i, event in writes]
        try:
            return list(await self.store.record_many(pending))
        except AwsError as exc:
            self._log_write_failure(exc, len(pending))
            if isinstance(exc, TransientAwsError) or len(pending) == 1:
                return [exc] * len(pending)
        results: list[Outcome | AwsError] = []
        for write in pending:
            try:
                results.extend(await self.store.record_many([write]))
            except AwsError as exc:
                self._log_write_failure(exc, 1, **_ids(write.event))
                results.append(exc)
        return results

    def _log_write_failure(self, exc: AwsError, messages: int, **ids: str) -> None:
        transient = isinstance(exc, TransientAwsError)
        self.log.warning("event.write_failed", error=str(exc), transient=transient, messages=messages, **ids)

    async def _follow_up(self, event: RotationEvent, outcome: Outcome) -> Disposition:
        for hook in self.hooks:
            try:
                await hook(event, outcome)
            except TransientAwsError as exc:
                self.log.warning("event.hook_failed", hook=_name(hook), error=str(exc), **_ids(event))
                self.metrics.events_processed.labels(event.event_name, "failed").inc()
                return Disposition(Verdict.RETRY, event=event, outcome="hook_failed")
        self.metrics.events_processed.labels(event.event_name, outcome.value).inc()
        return Disposition(Verdict.DONE, event=event, outcome=outcome.value)


def _name(hook: EventHook) -> str:
    return getattr(hook, "__qualname__", type(hook).__name__)


def _ids(event: RotationEvent) -> dict[str, str]:
    """What a log line may say about an event: names and ids, never a payload."""
    return {
        "event_name": event.event_name,
        "secret_name": event.secret_name,
        "rotation_id": event.rotation_id,
        "event_id": event.event_id,
    }
