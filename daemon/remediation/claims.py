"""Remediation claims in the audit table: one fenced claim per failed rotation, and the wake-ups that find them.

Items (all in the audit table; none carries `secret_name`, so none appears on the `by_name` index):
    claim    pk "remediation#<secret ARN>"  sk "claim#<rotation id>"    the source of truth for one remediation
    wake-up  pk "remediation-due"           sk "<due ISO>#<ARN>#<id>"   when a claim needs attention again
    history  pk "secret#<secret ARN>"       sk "<failure time>#remediation#<rotation id>"   what `history` shows

A claim is taken with a conditional write; whoever holds it has a **fence** (a number bumped on every change of
holder) and a lease (`due_at_ms`). Every write the holder makes is conditional on its fence, so a holder that
lost the claim cannot write; before each side effect outside DynamoDB it re-checks the fence and that its lease
has a margin left (`check`). A claim whose lease ran out, or whose scheduled retry is due, can be taken over; a
wake-up item (one small partition, queried by key only) lets a periodic job find those without a scan.
Leases compare clocks across replicas: they assume clocks agree to well within the margin.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from daemon.aws import Aws
from daemon.errors import ClaimLost, PermanentAwsError, TransientAwsError
from daemon.remediation.claim_items import (
    DUE_PK,
    claim_key,
    delete_action,
    failure_fields,
    history_item,
    key_of,
    ms,
    update_action,
    wake_item,
)
from daemon.remediation.outcome import ACTING, SETTLING
from daemon.remediation.state import Failure
from daemon.table import TTL_ATTRIBUTE, from_dynamo, to_dynamo, utc_iso
from daemon.timer import Clock

CLOSED = frozenset({"skipped", "recovered"})  # finished and not a failure left open
CLAIM_RETENTION = timedelta(days=30)  # longer than any DLQ replay (SQS keeps messages up to 14 days)
RESULTS_KEPT = 20  # the newest action results a claim keeps (the item stays far below DynamoDB's 400 KB)


@dataclass(slots=True)
class Claim:
    """A claim this replica holds, with the claim item as last written."""

    failure: Failure
    fence: int
    item: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        return str(self.item.get("stage", ACTING))


def failure_from_item(item: dict[str, Any]) -> Failure:
    return Failure(
        secret_arn=item["secret_arn"],
        secret_name=item["name"],
        rotation_id=item["rotation_id"],
        failed_at=datetime.fromisoformat(item["failed_at"].replace("Z", "+00:00")),
        failed_step=item.get("failed_step"),
        event_id=item.get("event_id", ""),
        account=item.get("account"),
        region=item.get("region"),
    )


class ClaimStore:
    """Claims and wake-ups, for one holder (a replica)."""

    def __init__(self, aws: Aws, table: str, *, holder: str, lease_s: float, clock: Clock) -> None:
        self.aws = aws
        self.table = table
        self.holder = holder
        self.lease = timedelta(seconds=lease_s)
        # A side effect is started only while this much of the lease is left.
        self.margin = timedelta(seconds=min(30.0, lease_s / 4))
        self.clock = clock

    # --- waiting out Secrets Manager's own retries --------------------------------------------------------
    async def settle(self, failure: Failure, until: datetime) -> bool:
        """Record a failed rotation to decide on at `until`; a later failure of it pushes `until` on.

        The claim is held by nobody while it settles (fence 0): the job takes it once due. True when this call
        created the claim or moved its time on; False when it exists and is past settling (or settles longer).
        """
        key = claim_key(failure.secret_arn, failure.rotation_id)
        wake = wake_item(until, failure)
        now = self.clock()
        item: dict[str, Any] = {
            **key,
            "fence": 0,
            "holder": "",
            "stage": SETTLING,
            "is_open": True,
            "due_at_ms": ms(until),
            "due_sk": wake["sk"],
            "secret_arn": failure.secret_arn,
            "name": failure.secret_name,
            "rotation_id": failure.rotation_id,
            "failed_at": utc_iso(failure.failed_at),
            "last_failed_at": utc_iso(failure.failed_at),
            "history_sk": f"{utc_iso(failure.failed_at)}#remediation#{failure.rotation_id}",
            "updated_at": utc_iso(now),
            **{k: v for k, v in failure_fields(failure).items() if v},
        }
        put = {
            "Put": {
                "TableName": self.table,
                "Item": to_dynamo(item),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        history = {"Put": {"TableName": self.table, "Item": to_dynamo(history_item(item))}}
        reasons = await self._transact([put, {"Put": {"TableName": self.table, "Item": to_dynamo(wake)}}, history])
        if reasons is None:
            return True
        old = reasons[0].get("Item")
        existing = from_dynamo(old) if isinstance(old, dict) else await self.read(key)
        if not existing or existing.get("stage") != SETTLING or int(existing.get("due_at_ms", 0)) >= ms(until):
            return False
        # Secrets Manager retried and failed again: give its next retry as long as the first.
        updates = {"due_at_ms": ms(until), "due_sk": wake["sk"], "last_failed_at": utc_iso(failure.failed_at)}
        update = update_action(self.table, key, {**updates, "updated_at": utc_iso(now)})
        update["ConditionExpression"] = "stage = :settling AND fence = :fence AND due_at_ms = :due"
        update["ExpressionAttributeValues"].update(
            to_dynamo({":settling": SETTLING, ":fence": existing["fence"], ":due": existing["due_at_ms"]})
        )
        actions = [{"Update": update}, {"Put": {"TableName": self.table, "Item": to_dynamo(wake)}}]
        if existing.get("due_sk") and existing["due_sk"] != wake["sk"]:
            actions.append(delete_action(self.table, {"pk": DUE_PK, "sk": existing["due_sk"]}))
        return await self._transact(actions) is None

    # --- taking a claim ---------------------------------------------------------------------------------
    async def acquire(self, failure: Failure) -> Claim | None:
        """The claim for a failed rotation: new, or taken over if its lease ran out; None when not ours to act on."""
        now = self.clock()
        lease_until = now + self.lease
        key = claim_key(failure.secret_arn, failure.rotation_id)
        wake = wake_item(lease_until, failure)
        item: dict[str, Any] = {
            **key,
            "fence": 1,
            "holder": self.holder,
            "stage": ACTING,
            "is_open": True,
            "due_at_ms": ms(lease_until),
            "due_sk": wake["sk"],
            "secret_arn": failure.secret_arn,
            "name": failure.secret_name,
            "rotation_id": failure.rotation_id,
            "failed_at": utc_iso(failure.failed_at),
            "history_sk": f"{utc_iso(failure.failed_at)}#remediation#{failure.rotation_id}",
            "claimed_at": utc_iso(now),
            "claim_token": uuid.uuid4().hex,  # tells this call's own write from any other, should its response be lost
            "updated_at": utc_iso(now),
            **{k: v for k, v in failure_fields(failure).items() if v},
        }
        reasons = await self._transact(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_dynamo(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {"Put": {"TableName": self.table, "Item": to_dynamo(wake)}},
            ]
        )
        if reasons is None:
            return Claim(failure, 1, item)
        old = reasons[0].get("Item")
        existing = from_dynamo(old) if isinstance(old, dict) else await self.read(key)
        if existing and existing.get("claim_token") == item["claim_token"]:
            return Claim(failure, 1, item)  # this very call's write, whose response was lost: the claim is ours
        return await self._take_over(existing, now) if existing else None

    async def acquire_due(self, secret_arn: str, rotation_id: str) -> Claim | None:
        """Take over a claim whose lease ran out or whose retry is due (the periodic job's way in)."""
        existing = await self.read(claim_key(secret_arn, rotation_id))
        return await self._take_over(existing, self.clock()) if existing else None

    async def _take_over(self, existing: dict[str, Any], now: datetime) -> Claim | None:
        due = existing.get("due_at_ms")
        if due is None or int(due) > ms(now):
            return None  # finished, or held by a live holder, or its retry is not due yet
        old_fence = int(existing["fence"])
        failure = failure_from_item(existing)
        wake = wake_item(now + self.lease, failure)
        updates = {
            "fence": old_fence + 1,
            "holder": self.holder,
            "due_at_ms": ms(now + self.lease),
            "due_sk": wake["sk"],
            "claim_token": uuid.uuid4().hex,  # tells this take-over's own write, should its response be lost
            "taken_over_at": utc_iso(now),
            "updated_at": utc_iso(now),
        }
        update = update_action(self.table, claim_key(failure.secret_arn, failure.rotation_id), updates)
        update["ConditionExpression"] = "fence = :old_fence AND due_at_ms <= :now"
        update["ExpressionAttributeValues"].update(to_dynamo({":old_fence": old_fence, ":now": ms(now)}))
        actions: list[dict[str, Any]] = [
            {"Update": update},
            {"Put": {"TableName": self.table, "Item": to_dynamo(wake)}},
        ]
        if existing.get("due_sk") and existing["due_sk"] != wake["sk"]:
            actions.append(delete_action(self.table, {"pk": DUE_PK, "sk": existing["due_sk"]}))
        if await self._transact(actions) is not None:
            now_there = await self.read(claim_key(failure.secret_arn, failure.rotation_id))
            if not now_there or now_there.get("claim_token") != updates["claim_token"]:
                return None  # another replica took it first
            # This very take-over, whose response was lost and whose retry then found its own fence: ours.
        return Claim(failure, old_fence + 1, {**existing, **updates})

    # --- holding a claim --------------------------------------------------------------------------------
    async def check(self, claim: Claim, **fields: Any) -> None:
        """Raise ClaimLost unless the fence is still ours with lease to spare; also persists `fields`."""
        now = self.clock()
        updates = {**fields, "updated_at": utc_iso(now)}
        update = update_action(self.table, claim_key(claim.failure.secret_arn, claim.failure.rotation_id), updates)
        update["ConditionExpression"] = "fence = :fence AND due_at_ms > :deadline"
        update["ExpressionAttributeValues"].update(
            to_dynamo({":fence": claim.fence, ":deadline": ms(now + self.margin)})
        )
        try:
            await self.aws.call("dynamodb", "update_item", **update)
        except PermanentAwsError as exc:
            if exc.code == "ConditionalCheckFailedException":
                raise ClaimLost(f"claim on rotation {claim.failure.rotation_id} lost (fence {claim.fence})") from None
            raise
        claim.item.update(updates)

    async def save(self, claim: Claim, fields: dict[str, Any], *, due_at: datetime | None) -> None:
        """Persist `fields` (fenced) with the history item; wake up again at `due_at`, or never when None."""
        now = self.clock()
        failure = claim.failure
        updates: dict[str, Any] = {**bounded(fields), "updated_at": utc_iso(now)}
        removals: list[str] = []
        actions: list[dict[str, Any]] = []
        old_due = claim.item.get("due_sk")
        if due_at is not None:
            wake = wake_item(due_at, failure)
            updates.update({"due_at_ms": ms(due_at), "due_sk": wake["sk"]})
            if wake["sk"] != old_due:
                actions.append({"Put": {"TableName": self.table, "Item": to_dynamo(wake)}})
        else:
            removals = ["due_at_ms", "due_sk"]
            updates[TTL_ATTRIBUTE] = int((now + CLAIM_RETENTION).timestamp())
        if old_due and old_due != updates.get("due_sk"):
            actions.append(delete_action(self.table, {"pk": DUE_PK, "sk": old_due}))
        update = update_action(self.table, claim_key(failure.secret_arn, failure.rotation_id), updates, removals)
        update["ConditionExpression"] = "fence = :fence"
        update["ExpressionAttributeValues"].update(to_dynamo({":fence": claim.fence}))
        merged = {k: v for k, v in {**claim.item, **updates}.items() if k not in removals}
        history = {"Put": {"TableName": self.table, "Item": to_dynamo(history_item(merged))}}
        if await self._transact([{"Update": update}, history, *actions]) is not None:
            raise ClaimLost(f"claim on rotation {failure.rotation_id} lost (fence {claim.fence})")
        claim.item = merged

    async def release(self, claim: Claim, *, delay_s: float = 0.0) -> None:
        """Best effort, after a failure: a redelivery or the job may take the claim over after `delay_s`."""
        with contextlib.suppress(ClaimLost, PermanentAwsError, TransientAwsError):  # else the lease runs out
            await self.save(
                claim, {"results": claim.item.get("results", [])}, due_at=self.clock() + timedelta(seconds=delay_s)
            )

    # --- finding claims ---------------------------------------------------------------------------------
    async def read(self, key: dict[str, str]) -> dict[str, Any] | None:
        got = await self.aws.call("dynamodb", "get_item", TableName=self.table, Key=to_dynamo(key), ConsistentRead=True)
        return from_dynamo(got["Item"]) if got.get("Item") else None

    async def due(self, limit: int = 25) -> list[dict[str, Any]]:
        """Wake-up items due now, oldest first: each names a secret ARN and a rotation id."""
        page = await self.aws.call(
            "dynamodb",
            "query",
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk <= :upper",
            ExpressionAttributeValues=to_dynamo({":pk": DUE_PK, ":upper": utc_iso(self.clock()) + "#~"}),
            Limit=limit,
        )
        return [from_dynamo(item) for item in page.get("Items", [])]

    async def drop_wake(self, wake: dict[str, Any]) -> None:
        """Delete a wake-up item that no longer matches its claim. The check and the delete are one transaction:
        a holder may save the very same wake-up again (its retry time) between a read and a delete."""
        check = {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": to_dynamo(claim_key(wake["secret_arn"], wake["rotation_id"])),
                "ConditionExpression": "attribute_not_exists(pk) OR due_sk <> :sk",
                "ExpressionAttributeValues": to_dynamo({":sk": wake["sk"]}),
            }
        }
        await self._transact([check, delete_action(self.table, key_of(wake))])  # cancelled: the claim wants it

    async def open_claims(self, secret_arn: str) -> list[dict[str, Any]]:
        """Claims of this secret whose failure is not resolved yet."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :claim)",
            "FilterExpression": "is_open = :yes",
            "ExpressionAttributeValues": to_dynamo(
                {":pk": f"remediation#{secret_arn}", ":claim": "claim#", ":yes": True}
            ),
            "ConsistentRead": True,
        }
        while True:
            page = await self.aws.call("dynamodb", "query", **params)
            found.extend(from_dynamo(item) for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def close(self, existing: dict[str, Any], fields: dict[str, Any]) -> bool:
        """Resolve an open claim whoever holds it (bumping the fence stops the holder); False if it moved on."""
        now = self.clock()
        failure = failure_from_item(existing)
        old_fence = int(existing["fence"])
        updates = {
            **fields,
            "fence": old_fence + 1,
            "holder": self.holder,
            "is_open": False,
            "updated_at": utc_iso(now),
            TTL_ATTRIBUTE: int((now + CLAIM_RETENTION).timestamp()),
        }
        removals = ["due_at_ms", "due_sk"]
        update = update_action(self.table, claim_key(failure.secret_arn, failure.rotation_id), updates, removals)
        update["ConditionExpression"] = "fence = :old_fence AND is_open = :yes"
        update["ExpressionAttributeValues"].update(to_dynamo({":old_fence": old_fence, ":yes": True}))
        merged = {k: v for k, v in {**existing, **updates}.items() if k not in removals}
        actions: list[dict[str, Any]] = [
            {"Update": update},
            {"Put": {"TableName": self.table, "Item": to_dynamo(history_item(merged))}},
        ]
        if existing.get("due_sk"):
            actions.append(delete_action(self.table, {"pk": DUE_PK, "sk": existing["due_sk"]}))
        return await self._transact(actions) is None

    async def _transact(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """None when committed; the cancellation reasons when a condition failed. Conflicts are transient."""
        try:
            await self.aws.call("dynamodb", "transact_write_items", TransactItems=actions)
        except PermanentAwsError as exc:
            reasons = exc.details.get("CancellationReasons")
            if exc.code != "TransactionCanceledException" or not isinstance(reasons, list):
                raise
            codes = [str(reason.get("Code", "None")) for reason in reasons]
            if "ConditionalCheckFailed" in codes:
                return [reason if isinstance(reason, dict) else {} for reason in reasons]
            raise TransientAwsError(
                "dynamodb", "transact_write_items", "TransactionConflict", ",".join(codes)
            ) from None
        return None


def bounded(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with at most RESULTS_KEPT action results: the oldest go, counted in `results_dropped`."""
    results = fields.get("results")
    if not isinstance(results, list) or len(results) <= RESULTS_KEPT:
        return fields
    dropped = int(fields.get("results_dropped", 0)) + len(results) - RESULTS_KEPT
    return {**fields, "results": results[-RESULTS_KEPT:], "results_dropped": dropped}
