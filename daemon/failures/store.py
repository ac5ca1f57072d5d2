"""The open-failure items in the audit table: read one secret's state, commit a change to it, list what is open.

Keys are `daemon.failures.state`'s. Every change is optimistic, and first tried blind: assuming the common case
(no open failure, no success at or after the event's time), one transaction writes the change conditional on
exactly that. When the assumption is wrong (a duplicate, a repeat failure, a success closing failures) the two
items are read consistently with their `version` (random: every write changes it), the change is decided on what
is there, and one transaction writes both, each conditional on the version read (or on absence); a concurrent
change cancels it and it is decided again on a fresh read. So replicas handling a secret's events at once never
lose one, and a success and a late failure cannot interleave wrongly. The open partition holds only secrets with
an open failure: listing it costs one Query, whatever the table holds.

Each store remembers the state and versions it last wrote or read for a secret (`_known`, bounded): the next change
to that secret is tried against them first, in one transaction conditional on those versions, so a rotation that
Secrets Manager retries (several RotationFailed) costs one call per event rather than a blind attempt and two
reads. A stale memory only loses the race (another replica wrote since): it is then read afresh, as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daemon.aws import Aws, query_pages
from daemon.errors import PermanentAwsError, TransientAwsError
from daemon.failures.state import OPEN_PK, Change, SecretFailures, gauges_of, open_key, recovered_key
from daemon.table import from_dynamo, to_dynamo, utc_iso
from daemon.timer import Clock, utc_now

_ATTEMPTS = 5
_KNOWN = 10_000  # secrets whose last written state a store remembers (about 1 KB each at most)
UNKNOWN = "?"  # a remembered recovered item's version when the blind path only checked it (never read)
_RETRYABLE = frozenset({"ConditionalCheckFailed", "TransactionConflict", "None"})


@dataclass(frozen=True, slots=True)
class Stored:
    """A state as read, with the versions its writes are conditional on (0: the item is absent)."""

    state: SecretFailures
    open_version: str = ""
    recovered_version: str = ""


def _open_item(state: SecretFailures, version: str, now: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        **open_key(state.secret_arn),
        "kind": "open_failure",
        "secret_arn": state.secret_arn,
        "name": state.secret_name,
        "failed_at": list(state.failed_at),
        "first_failed_at": state.first_failed_at,
        "version": version,
        "updated_at": now,
    }
    if state.needs_human_at is not None:
        item["needs_human_at"] = state.needs_human_at
    return item


def _recovered_item(state: SecretFailures, version: str, now: str) -> dict[str, Any]:
    return {
        **recovered_key(state.secret_arn),
        "kind": "recovered",
        "secret_arn": state.secret_arn,
        "recovered_at": state.recovered_at,
        "version": version,
        "updated_at": now,
    }


def _condition(version: str) -> dict[str, Any]:
    """The item is as read: absent ("") or at that version."""
    if not version:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#v = :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": to_dynamo({":v": version}),
    }


def _recovered_before(at: str) -> dict[str, Any]:
    """The blind path's assumption about the recovered item: absent, or a success older than `at`."""
    return {
        "ConditionExpression": "attribute_not_exists(pk) OR #r < :at",
        "ExpressionAttributeNames": {"#r": "recovered_at"},
        "ExpressionAttributeValues": to_dynamo({":at": at}),
    }


def _new_version() -> str:
    return uuid.uuid4().hex


class FailureStore:
    """Reads and writes one table's open-failure items."""

    def __init__(self, aws: Aws, table: str, *, clock: Clock = utc_now) -> None:
        self.aws = aws
        self.table = table
        self.clock = clock
        self._known: OrderedDict[str, Stored] = OrderedDict()

    def _remember(self, stored: Stored) -> None:
        self._known[stored.state.secret_arn] = stored
        self._known.move_to_end(stored.state.secret_arn)
        while len(self._known) > _KNOWN:
            self._known.popitem(last=False)

    async def read(self, secret_arn: str) -> Stored:
        """The secret's state, read consistently, with the items' versions."""
        opened = await self._get(open_key(secret_arn))
        recovered = await self._get(recovered_key(secret_arn))
        state = SecretFailures(
            secret_arn,
            secret_name=str(opened.get("name", "")),
            failed_at=tuple(str(t) for t in opened.get("failed_at", [])),
            needs_human_at=opened.get("needs_human_at"),
            recovered_at=recovered.get("recovered_at"),
        )
        return Stored(state, str(opened.get("version", "")), str(recovered.get("version", "")))

    async def _get(self, key: dict[str, str]) -> dict[str, Any]:
        found = await self.aws.call(
            "dynamodb", "get_item", TableName=self.table, Key=to_dynamo(key), ConsistentRead=True
        )
        return from_dynamo(found.get("Item", {}))

    async def change(
        self, secret_arn: str, decide: Callable[[SecretFailures], Change], *, monotonic: bool = False
    ) -> Change | None:
        """Apply `decide` to the secret's state and commit it; the change made, or None when it changed nothing
        (a duplicate, a late failure already recovered). Raises TransientAwsError if concurrent changes keep
        winning, PermanentAwsError on anything AWS refuses."""
        known = self._known.pop(secret_arn, None)
        if known is not None:
            # What this store last wrote or read: conditional on its versions, so stale only means a lost race. An
            # escalation's "no change" on it is not trusted (a failure may have opened since): read afresh below.
            change = decide(known.state)
            if change.state == known.state and monotonic:
                # An event's decision (`monotonic`) that changes nothing on a remembered state changes nothing on
                # any later one: a success's time only grows, and no failure at or before it is ever kept.
                self._remember(known)
                return None
            if change.state != known.state:
                try:
                    self._remember(await self._commit(known, change.state))
                except PermanentAwsError as exc:
                    if not _lost_race(exc):
                        raise
                except _Stale:
                    pass
                else:
                    return _moved(known.state, change)
        else:
            blind = decide(SecretFailures(secret_arn))
            at = blind.state.recovered_at or blind.state.first_failed_at
            if at is not None:
                try:
                    written = await self._commit(Stored(SecretFailures(secret_arn)), blind.state, recovered_before=at)
                except PermanentAwsError as exc:
                    if not _lost_race(exc):
                        raise
                else:
                    self._remember(written)
                    return _moved(SecretFailures(secret_arn), blind)
        for attempt in range(1, _ATTEMPTS + 1):
            stored = await self.read(secret_arn)
            change = decide(stored.state)
            if change.state == stored.state:
                self._remember(stored)
                return None
            try:
                self._remember(await self._commit(stored, change.state))
            except PermanentAwsError as exc:
                if not _lost_race(exc) or attempt == _ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            return _moved(stored.state, change)
        raise TransientAwsError("dynamodb", "transact_write_items", "TransactionConflict", "kept changing")

    async def _commit(self, stored: Stored, after: SecretFailures, *, recovered_before: str = "") -> Stored:
        """One transaction: the open item put, deleted or checked; the recovered item put or checked. Each is
        conditional on the version read or, on the blind path (`recovered_before`), on the assumption made.
        Returns the state written with the items' versions after it ("" for the recovered item's when the blind
        path only checked it: its version was never read)."""
        now = utc_iso(self.clock())
        before = stored.state
        parts: list[dict[str, Any]] = []
        key = {"TableName": self.table, "Key": to_dynamo(open_key(after.secret_arn))}
        open_version = ""
        if after.is_open:
            open_version = _new_version()
            item = to_dynamo(_open_item(after, open_version, now))
            parts.append({"Put": {"TableName": self.table, "Item": item, **_condition(stored.open_version)}})
        elif stored.open_version:
            parts.append({"Delete": {**key, **_condition(stored.open_version)}})
        else:
            parts.append({"ConditionCheck": {**key, **_condition("")}})
        key = {"TableName": self.table, "Key": to_dynamo(recovered_key(after.secret_arn))}
        if not recovered_before and stored.recovered_version == UNKNOWN:
            # Remembered from a blind write that only checked the recovered item: hold it to the same kind of
            # assumption, no success at or after the time this change is about (else: a lost race, read afresh).
            recovered_before = _about(before, after)
        condition = _recovered_before(recovered_before) if recovered_before else _condition(stored.recovered_version)
        recovered_version = UNKNOWN if recovered_before else stored.recovered_version
        if after.recovered_at != before.recovered_at:
            recovered_version = _new_version()
            item = to_dynamo(_recovered_item(after, recovered_version, now))
            parts.append({"Put": {"TableName": self.table, "Item": item, **condition}})
        else:
            parts.append({"ConditionCheck": {**key, **condition}})
        await self.aws.call("dynamodb", "transact_write_items", TransactItems=parts)
        return Stored(after, open_version, recovered_version)

    async def open_failures(self) -> list[dict[str, Any]]:
        """Every open-failure item: one Query of the open partition (paged)."""
        found: list[dict[str, Any]] = []
        async for page in query_pages(
            self.aws,
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_dynamo({":pk": OPEN_PK}),
        ):
            found.extend(from_dynamo(item) for item in page.get("Items", []))
        return found


def _moved(before: SecretFailures, change: Change) -> Change:
    return dataclasses.replace(change, gauges_moved=gauges_of(before) != gauges_of(change.state))


def _about(before: SecretFailures, after: SecretFailures) -> str:
    """The time a change is about: the success it records, else the (earliest) failure it adds, else its newest
    failure (an escalation marks that one). No success may be at or after it."""
    if after.recovered_at is not None and after.recovered_at != before.recovered_at:
        return after.recovered_at
    added = set(after.failed_at) - set(before.failed_at)
    if added:
        return min(added)
    newest = max((*after.failed_at, *before.failed_at), default="")
    if not newest:
        raise _Stale
    return newest


class _Stale(Exception):
    """A remembered state that cannot be held to an assumption: read afresh instead."""


def _lost_race(exc: PermanentAwsError) -> bool:
    """A cancelled transaction whose every reason is a version check or a conflict: decide again."""
    if exc.code != "TransactionCanceledException":
        return False
    reasons = exc.details.get("CancellationReasons")
    if not isinstance(reasons, list):
        return False
    codes = {str(reason.get("Code", "None")) for reason in reasons}
    return codes <= _RETRYABLE and codes != {"None"}
