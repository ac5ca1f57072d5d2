"""The chaos run's workload: the secrets remediation will act on, and the messages to send, with what they must yield.

Distinct events come in rotations: `RotationStarted` then `RotationSucceeded`, or `RotationStarted` then one to
three `RotationFailed` records of the same rotation (Secrets Manager retries a failed rotation, AWS-FACTS §1).
A third of the messages (or whatever `duplicate_share` says) are exact duplicate deliveries of a distinct one.

Failed rotations land only on secrets whose remediation ends, deterministically, in one notification:
- `disabled`: rotation never enabled, so the plan escalates (`needs_human`, reason `rotation_disabled`);
- `notify_only`: tagged `rotaudit:remediation=notify-only`, so the plan escalates (`needs_human`, `notify_only`);
- `retry`: rotation enabled with an AWSPENDING left dangling by a `setSecret` failure, one secret per failed
  rotation (a retry changes the secret's state): the plan clears AWSPENDING and schedules a `RotateSecret`
  retry 30-60 s later (`remediated`), which the emulator completes at once (no Lambda runs there), so the
  retry ends without a second notification.
Successful rotations name secrets that do not exist (nothing to remediate, nothing to recover), so no
`recovered` notification can race the failures. Every real secret is tagged `Managed=true`: the age scan
checks each of them in every window.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.emit import build_event
from daemon.events import RotationEvent, parse_message
from daemon.table import event_key

ACCOUNT = "123456789012"  # moto's default account: the daemon trusts events of its own account only
REGION = "us-east-1"
MANAGED_TAG = {"Key": "Managed", "Value": "true"}
# failure kind -> (status of its remediation item, notification kind)
EXPECTED_OUTCOME = {
    "disabled": ("needs_human", "needs_human"),
    "notify_only": ("needs_human", "needs_human"),
    "retry": ("remediated", "remediated"),
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
    def expected_notification(self) -> str:
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
    shared_secrets: int = 12  # per shared failure kind (disabled, notify_only)
    success_secrets: int = 200


def create_secrets(sm: Any, prefix: str, plan: Plan, retry_count: int) -> dict[str, list[str]]:
    """The real secrets failures land on, by failure kind (`retry` gets `retry_count`, one per failure)."""
    made: dict[str, list[str]] = {kind: [] for kind in plan.failure_kinds}
    for kind in plan.failure_kinds:
        count = retry_count if kind == "retry" else plan.shared_secrets
        for index in range(count):
            tags = [MANAGED_TAG]
            if kind == "notify_only":
                tags.append({"Key": "rotaudit:remediation", "Value": "notify-only"})
            name = f"{prefix}/{kind}-{index}"
            arn = str(sm.create_secret(Name=name, SecretString=uuid.uuid4().hex, Tags=tags)["ARN"])
            if kind == "retry":
                # Rotation on (moto turns it on only through RotateSecret, and promotes at once without a Lambda),
                # then a pending version that a failed setSecret left behind.
                sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
                sm.put_secret_value(SecretId=arn, SecretString=uuid.uuid4().hex, VersionStages=["AWSPENDING"])
            made[kind].append(arn)
    return made


def retry_secrets_needed(plan: Plan) -> int:
    """An upper bound of the failed rotations of kind `retry` the plan makes (one secret each)."""
    if "retry" not in plan.failure_kinds:
        return 0
    rotations = int(plan.messages * (1 - plan.duplicate_share) / 2) + 1
    return int(rotations * plan.failure_share / len(plan.failure_kinds) * 1.5) + 5


def build_workload(plan: Plan, secrets: dict[str, list[str]], rng: random.Random, start: datetime) -> Workload:
    """Rotations until the plan's distinct events are reached, then duplicates, shuffled."""
    distinct_target = plan.messages - int(plan.messages * plan.duplicate_share)
    fake = [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:chaos-ok/{i}-{uuid.uuid4().hex[:6]}"
        for i in range(plan.success_secrets)
    ]
    spare_retry = list(secrets.get("retry", []))
    envelopes: list[dict[str, Any]] = []
    failures: list[tuple[str, str, str, list[int]]] = []  # rotation id, arn, kind, indexes of its failed records
    while len(envelopes) < distinct_target:
        rotation_id = str(uuid.uuid4())
        when = start + timedelta(seconds=rng.uniform(0, 60))
        kinds = [k for k in plan.failure_kinds if k != "retry" or spare_retry]
        if kinds and rng.random() < plan.failure_share:
            kind = rng.choice(kinds)
            arn = spare_retry.pop() if kind == "retry" else rng.choice(secrets[kind])
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
        managed_secrets=sum(len(arns) for arns in secrets.values()),
        secrets_by_kind={kind: len(arns) for kind, arns in secrets.items()},
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
