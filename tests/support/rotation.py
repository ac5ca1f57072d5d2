"""A typed client for the emulator's rotation stand-in (`/_rotaudit/rotation/*`): configure, state, wait."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.support import boto, wait_until

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:rotaudit-test-rotation"
SETTLED = frozenset({"succeeded", "failed", "cancelled", "abandoned"})


@dataclass(frozen=True)
class Failure:
    """Fail `step` the next `times` times (None: always), before its change or `after` it."""

    step: str
    times: int | None = 1
    after: bool = False


@dataclass(frozen=True)
class Attempt:
    attempt: int
    outcome: str
    failed_step: str | None
    reason: str | None


@dataclass(frozen=True)
class Rotation:
    """One RotateSecret call's rotation: its id (the uuid in the events' requestID), token and attempts."""

    rotation_id: str
    token: str
    test: bool
    status: str
    attempts: list[Attempt]

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


@dataclass(frozen=True)
class RotationState:
    """What `GET /_rotaudit/rotation/state` answers: version ids, booleans and outcomes, never a password."""

    secret_arn: str
    strategy: str | None
    labels: dict[str, list[str]]
    current_works: bool | None
    db_accepts: list[str]
    unlabelled_held: list[str]
    rotations: list[Rotation]
    running: bool
    refusals: int
    refusals_by_reason: dict[str, int] = field(default_factory=dict)

    def holder(self, label: str) -> str | None:
        """The version id carrying `label`, if any."""
        return next((version for version, stages in self.labels.items() if label in stages), None)

    def rotation(self, token: str | None = None) -> Rotation | None:
        """The rotation of `token`, else the latest one."""
        found = [r for r in self.rotations if token is None or r.token == token]
        return found[-1] if found else None


def configure(
    endpoint: str,
    secret_id: str,
    *,
    strategy: str | None = None,
    failures: list[Failure] | None = None,
    retries: int | None = None,
    retry_delay_s: float | None = None,
    step_delay_s: float | None = None,
    function_arn: str | None = FUNCTION_ARN,
) -> dict[str, Any]:
    """Set the secret's rotation function (and attach `function_arn` to the secret); seed its database."""
    request: dict[str, Any] = {"secret_id": secret_id, "function_arn": function_arn}
    if strategy is not None:
        request["strategy"] = strategy
    if failures:
        request["failures"] = [{"step": f.step, "times": f.times, "after": f.after} for f in failures]
    for key, value in (("retries", retries), ("retry_delay_s", retry_delay_s), ("step_delay_s", step_delay_s)):
        if value is not None:
            request[key] = value
    return _call(endpoint, "POST", "configure", json.dumps(request).encode())


def state(endpoint: str, secret_id: str) -> RotationState:
    raw = _call(endpoint, "GET", "state?" + urlencode({"secret_id": secret_id}))
    rotations = [
        Rotation(r["rotation_id"], r["token"], r["test"], r["status"], [Attempt(**a) for a in r["attempts"]])
        for r in raw["rotations"]
    ]
    return RotationState(
        secret_arn=raw["secret_arn"],
        strategy=raw["strategy"],
        labels=raw["labels"],
        current_works=raw["current_works"],
        db_accepts=raw["db_accepts"],
        unlabelled_held=raw["unlabelled_held"],
        rotations=rotations,
        running=raw["running"],
        refusals=raw["refusals"],
        refusals_by_reason=raw["refusals_by_reason"],
    )


def raw_state(endpoint: str, secret_id: str) -> str:
    """The state endpoint's body exactly as served (for checks on what it may show)."""
    url = f"{endpoint}/_rotaudit/rotation/state?" + urlencode({"secret_id": secret_id})
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310  # the emulator's own http:// URL
        return str(answer.read().decode())


def wait_for_outcome(endpoint: str, secret_id: str, token: str | None = None, timeout_s: float = 30.0) -> Rotation:
    """The rotation of `token` (else the latest) once it has settled: no further attempt will run."""

    def settled() -> Rotation | None:
        found = state(endpoint, secret_id).rotation(token)
        return found if found is not None and found.settled else None

    result: Rotation = wait_until(settled, timeout_s)
    return result


def wait_until_idle(endpoint: str, timeout_s: float = 30.0) -> None:
    """Wait until no rotation runs anywhere in the emulator (so none publishes into a later test's queues)."""
    wait_until(lambda: _call(endpoint, "GET", "idle")["idle"], timeout_s)


def received_events(endpoint: str, queue_url: str, secret_arn: str, wanted: int, timeout_s: float = 30.0) -> list[Any]:
    """The EventBridge events about `secret_arn` in the queue, oldest first (in arrival order within a second),
    once `wanted` of them have arrived. Every message read is deleted: other secrets' events too."""
    sqs, found = boto("sqs", endpoint), {}

    def arrived() -> bool:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            envelope = json.loads(message["Body"])
            detail = envelope.get("detail") or {}
            if secret_arn in (
                *envelope.get("resources", []),
                (detail.get("additionalEventData") or {}).get("SecretId"),
            ):
                found[envelope["id"]] = envelope
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(found) >= wanted

    wait_until(arrived, timeout_s)
    return sorted(found.values(), key=lambda envelope: envelope["detail"].get("eventTime") or envelope["time"])


def _call(endpoint: str, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
    request = urllib.request.Request(f"{endpoint}/_rotaudit/rotation/{path}", data=body, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310  # the emulator's own URL
            result: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path}: HTTP {error.code}: {error.read().decode()}") from None
    return result
