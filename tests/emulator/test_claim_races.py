"""Races between replicas on one remediation claim, each replayed step by step with the real ClaimStore.

These reproduce what the chaos run's remediation profile found (each failed before its fix).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from daemon.aws import Aws
from daemon.remediation.claims import ClaimStore
from daemon.remediation.state import Failure
from tests.support import REGION
from tests.support.remediation import FakeClock, table_items


class Interposed:
    """An Aws whose next call of one of `operations` runs `before` first: the other replica's step, at that moment."""

    def __init__(self, aws: Aws, operations: set[str], before: Callable[[], Awaitable[None]]) -> None:
        self.aws, self.operations, self.before = aws, operations, before

    async def call(self, service: str, operation: str, **params: Any) -> Any:
        if operation in self.operations and self.before is not None:
            before, self.before = self.before, None  # once
            await before()
        return await self.aws.call(service, operation, **params)


def failure() -> Failure:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:race/{uuid.uuid4().hex[:8]}-AbCdEf"
    return Failure(arn, arn.split(":")[-1], str(uuid.uuid4()), FakeClock()() - timedelta(seconds=10), "setSecret")


async def test_a_stale_wake_up_dropped_while_the_holder_saves_it_again_leaves_the_claim_due(
    endpoint: str, stack: dict[str, str]
) -> None:
    """Replica Y read a due wake-up, replica A took the claim over from it and saves the same retry time again
    while Y drops the wake-up as stale: the claim must still have a wake-up."""
    table, clock, lost = stack["table_name"], FakeClock(), failure()
    async with Aws(REGION, endpoint_url=endpoint) as aws:
        holder = ClaimStore(aws, table, holder="replica-a", lease_s=20, clock=clock)
        await holder.settle(lost, clock() - timedelta(seconds=5))
        first = await holder.acquire_due(lost.secret_arn, lost.rotation_id)  # the first pass: a retry is due at once
        assert first is not None
        retry_at = clock() - timedelta(seconds=1)
        await holder.save(first, {"stage": "retry_due", "retry_at": retry_at.isoformat()}, due_at=retry_at)
        (wake,) = await holder.due()  # replica Y's job reads the wake-up of that retry...
        second = await holder.acquire_due(lost.secret_arn, lost.rotation_id)  # ...replica A takes it over from it
        assert second is not None

        async def holder_saves_the_retry_time_again() -> None:
            await holder.save(second, {"outbox": None}, due_at=retry_at)  # as `_flush` does, with `_next_due`

        # The holder saves between the other replica's read of the claim and its delete of the wake-up.
        interposed: Any = Interposed(aws, {"delete_item", "transact_write_items"}, holder_saves_the_retry_time_again)
        other = ClaimStore(
            interposed,
            table,
            holder="replica-y",
            lease_s=20,
            clock=clock,
        )
        await _resume(other, wake)
        claim = next(i for i in table_items(endpoint, table) if i["sk"] == f"claim#{lost.rotation_id}")
        wakes = {i["sk"] for i in table_items(endpoint, table) if i["pk"] == "remediation-due"}
    assert claim["due_sk"] in wakes, "the claim's wake-up is gone: no job will ever find it"


async def _resume(store: ClaimStore, wake: dict[str, Any]) -> None:
    """What `Remediator.resume` does with a wake-up: take the claim over, or drop the wake-up as stale."""
    if await store.acquire_due(wake["secret_arn"], wake["rotation_id"]) is None:
        await store.drop_wake(wake)
