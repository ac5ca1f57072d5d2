"""The chaos run's workload: the secrets remediation will act on, and the messages to send, with what they must yield.

Distinct events come in rotations: `RotationStarted` then `RotationSucceeded`, or `RotationStarted` then one to
three `RotationFailed` records of the same rotation (Secrets Manager retries a failed rotation, AWS-FACTS §1).
A third of the messages (or whatever `duplicate_share` says) are exact duplicate deliveries of a distinct one.

Each failed rotation lands on a secret of its own (a later rotation of the same secret would stand the remediation
down, as the README's "Then, re-check" says), of a kind whose remediation ends deterministically:
- `disabled`: rotation never enabled, so the plan escalates (`needs_human`, reason `rotation_disabled`);
- `notify_only`: tagged `rotaudit:remediation=notify-only`, so the plan escalates (`needs_human`, `notify_only`);
- `retry`: a rotation of it really failed in `setSecret` on the emulator's rotation stand-in (before the stack
  exists, so its own events reach no queue), leaving AWSPENDING dangling: the plan holds the pending version,
  removes AWSPENDING and schedules a `RotateSecret` (`remediated`); that rotation succeeds on the stand-in, and
  its `RotationSucceeded` closes the failure (`recovered`, with a `recovered` notice naming it). The events of
  that rotation (and the label moves) come from the emulator, not from the workload.
Successful rotations name secrets that do not exist (nothing to remediate, nothing to recover). Every real secret
is tagged `Managed=true`: the age scan checks each of them in every window.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.emit import build_event
from daemon.events import RotationEvent, parse_message
from daemon.table import event_key
from tests.support import rotation

ACCOUNT = "123456789012"  # moto's default account: the daemon trusts events of its own account only
REGION = "us-east-1"
MANAGED_TAG = {"Key": "Managed", "Value": "true"}
# failure kind -> (final status of its remediation item, the notifications about it)
EXPECTED_OUTCOME: dict[str, tuple[str, frozenset[str]]] = {
    "disabled": ("needs_human", frozenset({"needs_human"})),
    "notify_only": ("needs_human", frozenset({"needs_human"})),
    "retry": ("recovered", frozenset({"remediated", "recovered"})),
}
_FAILED_RECORDS = ((1, 0.5), (2, 0.3), (3, 0.2))  # RotationFailed records per failed rotation, with weights


@dataclass(frozen=True, slots=True)
class FailedRotation:
    rotation_id: str
    secret_arn: str
    kind: str  # a key of EXPECTED_OUTCOME
    records: int  # RotationFailed records sent (distinct events)

    @property
    def expected_status(self) -> str:
        return EXPECTED_OUTCOME[self.kind][0]

    @property
    def expected_notifications(self) -> frozenset[str]:
        return EXPECTED_OUTCOME[self.kind][1]


@dataclass
class Workload:
    """Messages to send, in order, and what the table and the topic must hold once they are processed."""

    bodies: list[str]
    expected_keys: set[tuple[str, str]]  # (pk, sk) of every distinct event's audit item
    failed: dict[str, FailedRotation]  # by rotation id
    managed_secrets: int
    secrets_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def distinct(self) -> int:
        return len(self.expected_keys)


@dataclass(frozen=True, slots=True)
class Plan:
    """The workload's shape."""

    messages: int
    duplicate_share: float = 1 / 3
    failure_share: float = 0.08  # of rotations
    failure_kinds: tuple[str, ...] = ("disabled", "notify_only", "retry")
    success_secrets: int = 200


class SecretMaker:
    """Makes the secret each failed rotation lands on (before the stack exists: `retry` rotates one for real)."""

    def __init__(self, sm: Any, endpoint: str, prefix: str) -> None:
        self.sm, self.endpoint, self.prefix = sm, endpoint, prefix
        self.made: dict[str, list[str]] = {}

    def __call__(self, kind: str) -> str:
        tags = [MANAGED_TAG]
        if kind == "notify_only":
            tags.append({"Key": "rotaudit:remediation", "Value": "notify-only"})
        name = f"{self.prefix}/{kind}-{len(self.made.get(kind, []))}"
        arn = str(self.sm.create_secret(Name=name, SecretString=uuid.uuid4().hex, Tags=tags)["ARN"])
        if kind == "retry":
            # The stand-in's function (a generic one: the value is not credentials) fails setSecret once, and
            # Secrets Manager does not retry: AWSPENDING dangles; rotaudit's own RotateSecret will then succeed.
            rotation.configure(self.endpoint, arn, failures=[rotation.Failure("setSecret", times=1)], retries=0)
            token = self.sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
            assert rotation.wait_for_outcome(self.endpoint, arn, token).status == "failed"
        self.made.setdefault(kind, []).append(arn)
        return arn


def build_workload(plan: Plan, new_secret: Callable[[str], str], rng: random.Random, start: datetime) -> Workload:
    """Rotations until the plan's distinct events are reached, then duplicates, shuffled. `new_secret(kind)` makes
    the secret a failed rotation of that kind lands on."""
    distinct_target = plan.messages - int(plan.messages * plan.duplicate_share)
    fake = [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:chaos-ok/{i}-{uuid.uuid4().hex[:6]}"
        for i in range(plan.success_secrets)
    ]
    envelopes: list[dict[str, Any]] = []
    failures: list[tuple[str, str, str, list[int]]] = []  # rotation id, arn, kind, indexes of its failed records
    secrets_by_kind: Counter[str] = Counter()
    while len(envelopes) < distinct_target:
        rotation_id = str(uuid.uuid4())
        when = start + timedelta(seconds=rng.uniform(0, 60))
        if plan.failure_kinds and rng.random() < plan.failure_share:
            kind = rng.choice(plan.failure_kinds)
            arn = new_secret(kind)
            secrets_by_kind[kind] += 1
            envelopes.append(build_event("RotationStarted", arn, rotation_id=rotation_id, when=when))
            records = rng.choices([n for n, _ in _FAILED_RECORDS], [w for _, w in _FAILED_RECORDS])[0]
            indexes = []
            for record in range(records):
                indexes.append(len(envelopes))
                later = when + timedelta(seconds=record + 1)
                envelopes.append(
                    build_event("RotationFailed", arn, rotation_id=rotation_id, step="setSecret", when=later)
                )
            failures.append((rotation_id, arn, kind, indexes))
        else:
            arn = rng.choice(fake)
            envelopes.append(build_event("RotationStarted", arn, rotation_id=rotation_id, when=when))
            later = when + timedelta(seconds=1)
            envelopes.append(build_event("RotationSucceeded", arn, rotation_id=rotation_id, when=later))
    envelopes = envelopes[:distinct_target]
    failed = {}
    for rotation_id, arn, kind, indexes in failures:
        kept = [i for i in indexes if i < distinct_target]
        if kept:
            failed[rotation_id] = FailedRotation(rotation_id, arn, kind, len(kept))
    bodies = [json.dumps(envelope) for envelope in envelopes]
    bodies += rng.choices(bodies, k=plan.messages - len(bodies))
    rng.shuffle(bodies)
    return Workload(
        bodies=bodies,
        expected_keys={expected_key(body) for body in bodies},
        failed=failed,
        managed_secrets=sum(secrets_by_kind.values()),
        secrets_by_kind=dict(secrets_by_kind),
    )


def expected_key(body: str) -> tuple[str, str]:
    """The audit item key the daemon must write for this message, as its own parser reads it."""
    event = parse_message(body)
    if not isinstance(event, RotationEvent):
        raise ValueError(f"the workload built a message the parser rejects: {event}")
    key = event_key(event)
    return key["pk"], key["sk"]


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def now_utc() -> datetime:
    return datetime.now(UTC)


class Sender(threading.Thread):
    """Sends the messages in batches of 10, evenly over `duration_s`, straight to the emulator's queue."""

    def __init__(self, sqs: Any, queue_url: str, bodies: list[str], duration_s: float) -> None:
        super().__init__(name="chaos-sender", daemon=True)
        self.sqs, self.queue_url, self.bodies, self.duration_s = sqs, queue_url, bodies, duration_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for start in range(0, len(self.bodies), 10):
                due = started + self.duration_s * start / len(self.bodies)
                time.sleep(max(0.0, due - time.monotonic()))  # pacing, not synchronisation
                entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(self.bodies[start : start + 10])]
                while entries:
                    failed = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
                    self.sent += len(entries) - len(failed)
                    ids = {f["Id"] for f in failed}
                    entries = [e for e in entries if e["Id"] in ids]
        except BaseException as exc:  # reported by the harness, which owns the deadline
            self.error = exc
