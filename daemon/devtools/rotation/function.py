"""Rotation function stand-ins modelled on AWS's templates (single user, alternating users, generic), with faults.

The templates are AWS's own (aws-samples/aws-secrets-manager-rotation-lambdas,
`SecretsManagerRDSPostgreSQLRotationSingleUser` and `...MultiUser`): the same pre-check, the same four steps,
the same logins, against `FakeDatabase` instead of PostgreSQL. Where the stand-in departs from them it says so.
A step that fails raises `StepFailed` with a reason from a closed set (never a value: no password, no username).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from daemon.devtools.rotation.client import SecretsError, random_password
from daemon.devtools.rotation.database import FakeDatabase

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
SINGLE_USER, ALTERNATING_USERS, GENERIC = "single-user", "alternating-users", "generic"
STRATEGIES = (SINGLE_USER, ALTERNATING_USERS, GENERIC)
CLONE_SUFFIX = "_clone"  # the alternating template's get_alt_username


class SecretsApi(Protocol):
    """The Secrets Manager calls a template makes (`client.BackendSecrets` serves them from moto)."""

    def describe(self, secret_id: str) -> dict[str, Any]: ...
    def get_value(self, secret_id: str, stage: str, version_id: str | None = None) -> str: ...
    def put_pending(self, secret_id: str, token: str, value: str) -> None: ...
    def move_current(self, secret_id: str, token: str, remove_from: str | None) -> None: ...


class StepFailed(Exception):
    """The function raised during a step; `reason` is a code from a closed set, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Failure:
    """Fail `step` the next `times` times it runs (None: every time), before its change or `after` it."""

    step: str
    times: int | None = 1
    after: bool = False


@dataclass
class _Left:
    failure: Failure
    times: int | None  # None: every time


class Faults:
    """A secret's injected failures, consumed as the steps run (thread-safe)."""

    def __init__(self, failures: list[Failure] | None = None) -> None:
        self._left = [_Left(failure, failure.times) for failure in failures or []]
        self._lock = threading.Lock()

    def take(self, step: str) -> Failure | None:
        """The failure to inject into this run of `step`, if one is left."""
        with self._lock:
            for left in self._left:
                if left.failure.step == step and (left.times is None or left.times > 0):
                    if left.times is not None:
                        left.times -= 1
                    return left.failure
        return None


def alternate_username(username: str) -> str:
    """`name` ↔ `name_clone`, as the alternating template's get_alt_username."""
    if username.endswith(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    return username + CLONE_SUFFIX


def credentials(value: str) -> dict[str, Any] | None:
    """The secret's JSON when it holds a string username and password, else None."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("username"), str) and isinstance(parsed.get("password"), str):
        return parsed
    return None


class RotationFunction:
    """One rotation Lambda: `handle` is its lambda_handler; subclasses hold the strategy's steps."""

    strategy = GENERIC

    def __init__(self, secrets: SecretsApi, database: FakeDatabase | None, faults: Faults) -> None:
        self.secrets = secrets
        self.database = database
        self.faults = faults

    def handle(self, secret_id: str, token: str, step: str) -> None:
        """The templates' lambda_handler: the pre-check, then the step (injected faults around it)."""
        metadata = self.secrets.describe(secret_id)
        if "RotationEnabled" in metadata and not metadata["RotationEnabled"]:
            raise StepFailed("rotation_disabled")
        versions: dict[str, list[str]] = metadata.get("VersionIdsToStages") or {}
        if token not in versions:
            raise StepFailed("no_such_version")
        if "AWSCURRENT" in versions[token]:
            return  # "already set as AWSCURRENT": every step of a finished rotation is a no-op
        if "AWSPENDING" not in versions[token]:
            # So removing AWSPENDING breaks Secrets Manager's own retries of the rotation, as on AWS.
            raise StepFailed("not_pending")
        fault = self.faults.take(step)
        if fault is not None and not fault.after:
            raise StepFailed("injected")
        try:
            {
                "createSecret": self.create_secret,
                "setSecret": self.set_secret,
                "testSecret": self.test_secret,
                "finishSecret": self.finish_secret,
            }[step](secret_id, token)
        except (SecretsError, KeyError, ValueError) as exc:  # what a template lets escape
            raise StepFailed("error") from exc
        if fault is not None:
            raise StepFailed("injected")  # after the step's change: the hazard worth testing

    # --- the steps; the generic function's, overridden by the database strategies --------------------------
    def create_secret(self, secret_id: str, token: str) -> None:
        """Put a new value under AWSPENDING, unless the pending version already holds one."""
        current = self.secrets.get_value(secret_id, "AWSCURRENT")
        if not self._has_pending_value(secret_id, token):
            self.secrets.put_pending(secret_id, token, self.new_value(current))

    def new_value(self, current: str) -> str:
        """Generic (inferred, no template): a random string in place of the value."""
        return random_password()

    def set_secret(self, secret_id: str, token: str) -> None:
        """Generic: nothing outside Secrets Manager to change."""

    def test_secret(self, secret_id: str, token: str) -> None:
        """Generic: nothing to log in to."""

    def finish_secret(self, secret_id: str, token: str) -> None:
        """Move AWSCURRENT to the token, RemoveFromVersionId = the current version (both templates)."""
        versions: dict[str, list[str]] = self.secrets.describe(secret_id).get("VersionIdsToStages") or {}
        current = next((version for version, stages in versions.items() if "AWSCURRENT" in stages), None)
        if current == token:
            return
        self.secrets.move_current(secret_id, token, current)

    # --- helpers ----------------------------------------------------------------------------------------------
    def _has_pending_value(self, secret_id: str, token: str) -> bool:
        try:
            self.secrets.get_value(secret_id, "AWSPENDING", token)
        except SecretsError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            return False
        return True

    def _credentials(self, secret_id: str, stage: str, token: str | None = None) -> dict[str, Any]:
        found = credentials(self.secrets.get_value(secret_id, stage, token))
        if found is None:
            raise StepFailed("bad_secret")  # the templates' KeyError: username/password missing
        return found

    def _login(self, creds: dict[str, Any]) -> bool:
        return self.database is not None and self.database.login(creds["username"], creds["password"])

    def _require_database(self) -> FakeDatabase:
        if self.database is None:
            raise StepFailed("error")
        return self.database

    def test_login(self, secret_id: str, token: str) -> None:
        """Both templates' testSecret: log in with AWSPENDING, or fail."""
        if not self._login(self._credentials(secret_id, "AWSPENDING", token)):
            raise StepFailed("login_failed")


class SingleUserFunction(RotationFunction):
    """SecretsManagerRDSPostgreSQLRotationSingleUser: the user changes its own password."""

    strategy = SINGLE_USER

    def new_value(self, current: str) -> str:
        found = credentials(current)
        if found is None:
            raise StepFailed("bad_secret")
        return json.dumps({**found, "password": random_password()})

    def set_secret(self, secret_id: str, token: str) -> None:
        """Pending works → done; else log in with AWSCURRENT, else AWSPREVIOUS, and set the pending password."""
        database = self._require_database()
        try:
            previous: dict[str, Any] | None = self._credentials(secret_id, "AWSPREVIOUS")
        except (SecretsError, StepFailed):
            previous = None
        current = self._credentials(secret_id, "AWSCURRENT")
        pending = self._credentials(secret_id, "AWSPENDING", token)
        if self._login(pending):
            return
        if current["username"] != pending["username"] or current.get("host") != pending.get("host"):
            raise StepFailed("wrong_user")
        works = self._login(current)
        if not works and previous is not None:
            works = self._login(previous)
            if previous["username"] != pending["username"] or previous.get("host") != pending.get("host"):
                raise StepFailed("wrong_user")
        if not works:
            raise StepFailed("login_failed")
        database.set_password(pending["username"], pending["password"])

    def test_secret(self, secret_id: str, token: str) -> None:
        self.test_login(secret_id, token)


class AlternatingUsersFunction(RotationFunction):
    """SecretsManagerRDSPostgreSQLRotationMultiUser: the master sets the *other* user's password.

    Departure (inferred): the template reads the master's credentials from `masterarn` and logs in with them;
    here the fake database's master always works, so `masterarn` is neither needed nor read.
    """

    strategy = ALTERNATING_USERS

    def new_value(self, current: str) -> str:
        found = credentials(current)
        if found is None:
            raise StepFailed("bad_secret")
        return json.dumps({**found, "username": alternate_username(found["username"]), "password": random_password()})

    def set_secret(self, secret_id: str, token: str) -> None:
        """Pending works → done; AWSCURRENT must work; the master sets (or creates) the pending user."""
        database = self._require_database()
        current = self._credentials(secret_id, "AWSCURRENT")
        pending = self._credentials(secret_id, "AWSPENDING", token)
        if self._login(pending):
            return
        if alternate_username(current["username"]) != pending["username"] or current.get("host") != pending.get("host"):
            raise StepFailed("wrong_user")
        if not self._login(current):
            raise StepFailed("login_failed")  # "protect against a confused deputy attack" (the template)
        database.set_password(pending["username"], pending["password"])

    def test_secret(self, secret_id: str, token: str) -> None:
        self.test_login(secret_id, token)


FUNCTIONS: dict[str, type[RotationFunction]] = {
    GENERIC: RotationFunction,
    SINGLE_USER: SingleUserFunction,
    ALTERNATING_USERS: AlternatingUsersFunction,
}
