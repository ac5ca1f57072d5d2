"""RotateSecret as AWS runs it: its checks and bookkeeping, then the four steps asynchronously, retried on failure.

Documented (RotateSecret API reference unless named):
- RotateSecret "configures and starts the asynchronous process of rotating the secret": it returns at once and
  the steps run on the scheduler's thread, `step_delay_s` apart.
- "If the AWSPENDING staging label is present but not attached to the same version as AWSCURRENT, then any later
  invocation of RotateSecret assumes that a previous rotation request is still in progress and returns an
  error"; AWSPENDING on AWSCURRENT, or absent, is what a successful rotation leaves, and RotateSecret accepts it.
- ClientRequestToken "becomes the VersionId of the new version" (a new uuid when none is given, as the SDKs do).
- "During rotation, Secrets Manager creates an AWSPENDING version ID before creating the new secret version"
  (DescribeSecret VersionIdsToStages): the version is staged with no value, and createSecret puts one.
- "If you include the configuration parameters, the operation sets the values for the secret and then
  immediately starts a rotation. If you don't include the configuration parameters, the operation starts a
  rotation with the values already stored in the secret." RotationEnabled becomes true ("To turn on automatic
  rotation again, call RotateSecret", CancelRotateSecret).
- RotateImmediately=false: "Secrets Manager tests the rotation configuration by running the testSecret step of
  the Lambda rotation function. The test creates an AWSPENDING version of the secret and then removes it."
- "If rotation fails, Secrets Manager retries the entire rotation process multiple times" (DescribeSecret
  NextRotationDate), with the same token (AWS-FACTS §2).
- CancelRotateSecret "turns off automatic rotation, and if a rotation is currently in progress, cancels the
  rotation"; labels stay as they are.
- RotationAbandoned: a new value put by hand during a rotation; Secrets Manager removes AWSPENDING (AWS-FACTS §1).
Inferred (not documented): the refusal's wording (AWS's as far as known), the wording when no rotation function
is configured (the API reference lists the cause, not the message), the number and spacing of retries
(`retries`, `retry_delay_s`), that a repeated call with a token whose version exists starts nothing, that a test
rotation's version holds a copy of AWSCURRENT's value and is not retried, that a cancel or an abandonment emits
no event of its own beyond RotationAbandoned, and that a secret nobody configured gets the single-user function
when its value holds a username and password (its database seeded from AWSCURRENT), the generic one otherwise.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from daemon.devtools.rotation import events
from daemon.devtools.rotation.client import SECRETS_LOCK, BackendSecrets
from daemon.devtools.rotation.database import FakeDatabase
from daemon.devtools.rotation.function import (
    FUNCTIONS,
    GENERIC,
    SINGLE_USER,
    STEPS,
    Failure,
    Faults,
    StepFailed,
    credentials,
)
from daemon.devtools.rotation.scheduler import Scheduler

DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY_S = 0.5
DEFAULT_STEP_DELAY_S = 0.05
PREVIOUS_ROTATION_INCOMPLETE = "A previous rotation isn't complete. That rotation will be reattempted."
NO_ROTATION_FUNCTION = (
    "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you "
    "didn't include such an ARN as a parameter in this call."
)
RUNNING, SUCCEEDED, FAILED, CANCELLED, ABANDONED = "running", "succeeded", "failed", "cancelled", "abandoned"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """How a secret's rotation function behaves; what `POST /_rotaudit/rotation/configure` sets."""

    strategy: str | None = None  # None: by the secret's value
    failures: tuple[Failure, ...] = ()
    retries: int = DEFAULT_RETRIES
    retry_delay_s: float = DEFAULT_RETRY_DELAY_S
    step_delay_s: float = DEFAULT_STEP_DELAY_S


@dataclass
class Attempt:
    number: int
    outcome: str = RUNNING
    failed_step: str | None = None
    reason: str | None = None


@dataclass
class Rotation:
    """One RotateSecret call's rotation (or test) and its attempts."""

    secret_arn: str
    token: str
    request_uuid: str
    function_arn: str
    test: bool
    settings: Settings
    attempts: list[Attempt] = field(default_factory=list)
    status: str = RUNNING


@dataclass
class SecretRecord:
    """What the engine keeps for one secret: its function, its database, its rotations, its refusals."""

    strategy: str
    settings: Settings
    faults: Faults
    database: FakeDatabase | None
    configured: bool = False
    rotations: list[Rotation] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)

    def running(self) -> list[Rotation]:
        return [rotation for rotation in self.rotations if rotation.status == RUNNING]


class RotationEngine:
    """Every secret's rotations in this emulator process. All bookkeeping is under SECRETS_LOCK."""

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        self.scheduler = scheduler or Scheduler()
        self.installed = False  # set by the patch that routes RotateSecret here
        self.records: dict[str, SecretRecord] = {}  # by secret ARN

    # --- configuration --------------------------------------------------------------------------------------
    def configure(self, secret: Any, settings: Settings, function_arn: str | None) -> SecretRecord:
        """Set the secret's function and faults; seed its database with AWSCURRENT's user and password."""
        with SECRETS_LOCK:
            current = _current_string(secret)
            creds = credentials(current) if current is not None else None
            strategy = settings.strategy or (SINGLE_USER if creds else GENERIC)
            database = FakeDatabase({creds["username"]: creds["password"]}) if creds else None
            record = SecretRecord(strategy, settings, Faults(list(settings.failures)), database, configured=True)
            if secret.arn in self.records:
                record.rotations = self.records[secret.arn].rotations
                record.refusals = self.records[secret.arn].refusals
            self.records[secret.arn] = record
            if function_arn:
                # The function attached earlier, as a rotation configured and later cancelled leaves it.
                secret.rotation_lambda_arn = function_arn
                secret.rotation_requested = True
            return record

    def _record(self, secret: Any) -> SecretRecord:
        if (record := self.records.get(secret.arn)) is None:
            current = _current_string(secret)
            creds = credentials(current) if current is not None else None
            database = FakeDatabase({creds["username"]: creds["password"]}) if creds else None
            record = SecretRecord(SINGLE_USER if creds else GENERIC, Settings(), Faults(), database)
            self.records[secret.arn] = record
        return record

    # --- RotateSecret -------------------------------------------------------------------------------------------
    def rotate_secret(
        self,
        backend: Any,
        secret_id: str,
        client_request_token: str | None,
        rotation_lambda_arn: str | None,
        rotation_rules: dict[str, Any] | None,
        rotate_immediately: bool,
    ) -> str:
        """SecretsManagerBackend.rotate_secret: checks, bookkeeping, then the rotation starts on the scheduler."""
        from moto.secretsmanager import exceptions

        with SECRETS_LOCK:
            secret = _checked_secret(backend, secret_id, rotation_lambda_arn, rotation_rules)
            token = client_request_token or str(uuid.uuid4())
            if client_request_token:
                backend._client_request_token_validator(client_request_token)
            record = self._record(secret)
            pending = next((v for v, d in secret.versions.items() if "AWSPENDING" in d["version_stages"]), None)
            dangling = pending is not None and "AWSCURRENT" not in secret.versions[pending]["version_stages"]
            if client_request_token and token in secret.versions:
                repeat = any(rotation.token == token for rotation in record.running())
                if not dangling or repeat:
                    return str(secret.to_short_dict(version_id=token))  # the same request again: nothing new
            if dangling:
                record.refusals["previous_rotation_incomplete"] = (
                    record.refusals.get("previous_rotation_incomplete", 0) + 1
                )
                raise exceptions.InvalidRequestException(PREVIOUS_ROTATION_INCOMPLETE)
            function_arn = rotation_lambda_arn or secret.rotation_lambda_arn
            if not function_arn:
                record.refusals["no_rotation_function"] = record.refusals.get("no_rotation_function", 0) + 1
                raise exceptions.InvalidRequestException(NO_ROTATION_FUNCTION)
            _configure_rotation(secret, function_arn, rotation_rules)
            secret.remove_version_stages_from_old_versions(["AWSPENDING"])
            version: dict[str, Any] = {"createdate": _now(), "version_id": token, "version_stages": ["AWSPENDING"]}
            if not rotate_immediately and (current := _current_string(secret)) is not None:
                version["secret_string"] = current
            secret.versions[token] = version
            rotation = Rotation(
                secret.arn, token, str(uuid.uuid4()), function_arn, not rotate_immediately, record.settings
            )
            record.rotations.append(rotation)
            self.scheduler.call_later(0.0, lambda: self._start_attempt(secret, rotation))
            return str(secret.to_short_dict(version_id=token))

    def cancel(self, secret: Any) -> None:
        """CancelRotateSecret: a rotation in progress stops (no further step, no retry); labels stay."""
        with SECRETS_LOCK:
            if (record := self.records.get(secret.arn)) is not None:
                for rotation in record.running():
                    rotation.status = CANCELLED
                    if rotation.attempts and rotation.attempts[-1].outcome == RUNNING:
                        rotation.attempts[-1].outcome = CANCELLED

    def after_manual_change(self, secret: Any, current_before: str | None) -> None:
        """A new value put by hand during a rotation (AWSCURRENT moved elsewhere): RotationAbandoned."""
        abandoned: list[Rotation] = []
        with SECRETS_LOCK:
            record = self.records.get(secret.arn)
            current = _current_version(secret)
            if record is None or current in (None, current_before):
                return
            for rotation in record.running():
                if rotation.test or rotation.token == current:
                    continue
                rotation.status = ABANDONED
                if rotation.attempts and rotation.attempts[-1].outcome == RUNNING:
                    rotation.attempts[-1].outcome = ABANDONED
                stages = secret.versions.get(rotation.token, {}).get("version_stages", [])
                if "AWSPENDING" in stages:
                    stages.remove("AWSPENDING")
                abandoned.append(rotation)
        for rotation in abandoned:
            _publish("RotationAbandoned", rotation)

    def idle(self) -> bool:
        """True when no rotation runs anywhere and no step is mid-way (a settled rotation's jobs do nothing)."""
        with SECRETS_LOCK:
            running = any(record.running() for record in self.records.values())
        return not running and not self.scheduler.busy()

    # --- the attempts, on the scheduler's thread -----------------------------------------------------------
    def _start_attempt(self, secret: Any, rotation: Rotation) -> None:
        with SECRETS_LOCK:
            if rotation.status != RUNNING:
                return
            rotation.attempts.append(attempt := Attempt(len(rotation.attempts) + 1))
        _publish("TestRotationStarted" if rotation.test else "RotationStarted", rotation)
        steps = ("testSecret",) if rotation.test else STEPS
        self.scheduler.call_later(
            rotation.settings.step_delay_s, lambda: self._run_step(secret, rotation, attempt, steps)
        )

    def _run_step(self, secret: Any, rotation: Rotation, attempt: Attempt, steps: tuple[str, ...]) -> None:
        with SECRETS_LOCK:
            if rotation.status != RUNNING:
                return
            record = self._record(secret)
            function = FUNCTIONS[record.strategy](
                BackendSecrets(secret.account_id, secret.region), record.database, record.faults
            )
        step = steps[0]
        try:
            function.handle(rotation.secret_arn, rotation.token, step)
        except StepFailed as failed:
            self._fail(secret, rotation, attempt, step, failed.reason)
            return
        except Exception:  # any other error a Lambda raises is a failed step too
            _log.exception("rotation function stand-in raised")
            self._fail(secret, rotation, attempt, step, "error")
            return
        if len(steps) > 1:
            delay = rotation.settings.step_delay_s
            self.scheduler.call_later(delay, lambda: self._run_step(secret, rotation, attempt, steps[1:]))
            return
        with SECRETS_LOCK:
            if rotation.status != RUNNING:
                return
            attempt.outcome = rotation.status = SUCCEEDED
            if rotation.test:
                _remove_test_version(secret, rotation.token)
        _publish("TestRotationSucceeded" if rotation.test else "RotationSucceeded", rotation)

    def _fail(self, secret: Any, rotation: Rotation, attempt: Attempt, step: str, reason: str) -> None:
        with SECRETS_LOCK:
            if rotation.status != RUNNING:
                return
            attempt.outcome, attempt.failed_step, attempt.reason = FAILED, step, reason
            retry = not rotation.test and len(rotation.attempts) <= rotation.settings.retries
            if not retry:
                rotation.status = FAILED
                if rotation.test:
                    _remove_test_version(secret, rotation.token)
        message = events.failure_message(rotation.function_arn, step)
        _publish("TestRotationFailed" if rotation.test else "RotationFailed", rotation, message)
        if retry:
            delay = rotation.settings.retry_delay_s
            self.scheduler.call_later(delay, lambda: self._start_attempt(secret, rotation))


def _checked_secret(
    backend: Any, secret_id: str, rotation_lambda_arn: str | None, rotation_rules: dict[str, Any] | None
) -> Any:
    """moto's own checks, in moto's order and words: unknown, replica, deleted, ARN length, rules range."""
    from moto.secretsmanager import exceptions
    from moto.secretsmanager.models import ReplicaSecret

    if not backend._is_valid_identifier(secret_id):
        raise exceptions.SecretNotFoundException()
    secret = backend.secrets[secret_id]
    if isinstance(secret, ReplicaSecret):
        raise exceptions.OperationNotPermittedOnReplica
    if secret.is_deleted():
        raise exceptions.InvalidRequestException(
            "You tried to perform the operation on a secret that's currently marked deleted."
        )
    if rotation_lambda_arn and len(rotation_lambda_arn) > 2048:
        raise exceptions.InvalidParameterException("RotationLambdaARN must <= 2048 characters long.")
    days = (rotation_rules or {}).get("AutomaticallyAfterDays")
    if days is not None and not 1 <= int(days) <= 1000:
        raise exceptions.InvalidParameterException("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
    return secret


def _configure_rotation(secret: Any, function_arn: str, rotation_rules: dict[str, Any] | None) -> None:
    """Sets the values for the secret (RotateSecret): function, schedule, RotationEnabled."""
    secret.rotation_lambda_arn = function_arn
    days = (rotation_rules or {}).get("AutomaticallyAfterDays")
    if days is not None:
        secret.auto_rotate_after_days = int(days)
        secret.next_rotation_date = _now() + int(days) * 86_400
    secret.rotation_enabled = True
    secret.rotation_requested = True  # moto shows the rotation fields only once this is set


def _current_version(secret: Any) -> str | None:
    return next((v for v, d in secret.versions.items() if "AWSCURRENT" in d["version_stages"]), None)


def _current_string(secret: Any) -> str | None:
    version = _current_version(secret)
    value = secret.versions[version].get("secret_string") if version is not None else None
    return str(value) if value is not None else None


def _remove_test_version(secret: Any, token: str) -> None:
    """The test "creates an AWSPENDING version of the secret and then removes it"."""
    stages = secret.versions.get(token, {}).get("version_stages")
    if stages is not None and "AWSPENDING" in stages:
        stages.remove("AWSPENDING")
    if stages is not None and not stages:
        del secret.versions[token]


def _publish(event_name: str, rotation: Rotation, error_message: str | None = None) -> None:
    detail = events.service_event_detail(
        event_name, rotation.secret_arn, rotation.request_uuid, error_message=error_message
    )
    try:
        events.publish(detail)
    except Exception:  # a lost event is what AWS's best-effort delivery allows; the rotation carries on
        _log.exception("rotation event not published")


def _now() -> int:
    return int(time.time())


_engine: RotationEngine | None = None


def engine() -> RotationEngine:
    """The process's engine (one emulator per process, as moto's backends are), made on first use."""
    global _engine  # a process-wide singleton, like the moto backends it drives
    with SECRETS_LOCK:
        if _engine is None:
            _engine = RotationEngine()
        return _engine
