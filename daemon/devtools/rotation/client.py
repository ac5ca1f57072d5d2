"""The Secrets Manager calls a rotation function makes, served from moto's backend in this process, one at a time.

A real rotation Lambda calls Secrets Manager through boto3; the stand-in makes the same calls (DescribeSecret,
GetSecretValue, PutSecretValue, UpdateSecretVersionStage) on moto's backend methods, each under `SECRETS_LOCK`,
the lock the patch also holds around every Secrets Manager request the emulator serves. Each call is atomic as
an API call is; a step's calls interleave with other clients' calls, as on AWS.
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import string
import threading
import time
from collections.abc import Iterator
from typing import Any

# Held around each Secrets Manager request (patches.rotation) and each call the engine or a function makes.
SECRETS_LOCK = threading.RLock()

# The templates' default ExcludeCharacters (':/@"\'\\') and PasswordLength (32) for GetRandomPassword.
_PASSWORD_ALPHABET = "".join(
    c for c in string.ascii_letters + string.digits + string.punctuation if c not in ":/@\"'\\"
)
PASSWORD_LENGTH = 32


class SecretsError(Exception):
    """An error Secrets Manager answered with; `code` is its error code (ResourceNotFoundException, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def random_password() -> str:
    """What GetRandomPassword returns for the templates' settings (inferred: its exact alphabet is not ours)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def secrets_backend(account: str, region: str) -> Any:
    from moto.secretsmanager.models import secretsmanager_backends

    return secretsmanager_backends[account][region]


class BackendSecrets:
    """One account and region's Secrets Manager, as a rotation function's boto3 client sees it."""

    def __init__(self, account: str, region: str) -> None:
        self._backend = secrets_backend(account, region)

    def describe(self, secret_id: str) -> dict[str, Any]:
        """DescribeSecret's answer (a copy: the caller reads it after the lock is released)."""
        with SECRETS_LOCK, _translated():
            return copy.deepcopy(self._backend.describe_secret(secret_id).to_dict())

    def get_value(self, secret_id: str, stage: str, version_id: str | None = None) -> str:
        """GetSecretValue's SecretString; ResourceNotFoundException for a version without a value."""
        with SECRETS_LOCK, _translated():
            answer = self._backend.get_secret_value(secret_id, version_id, stage)
        if "SecretString" not in answer:
            raise SecretsError("ResourceNotFoundException", "the version holds a binary value, not a string")
        return str(answer["SecretString"])

    def put_pending(self, secret_id: str, token: str, value: str) -> None:
        """PutSecretValue(ClientRequestToken=token, VersionStages=["AWSPENDING"]), as createSecret calls it."""
        with SECRETS_LOCK, _translated():
            self._backend.put_secret_value(secret_id, value, None, token, ["AWSPENDING"])

    def move_current(self, secret_id: str, token: str, remove_from: str | None) -> None:
        """UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId=token, RemoveFromVersionId=current), as
        finishSecret calls it (AWSPREVIOUS follows: AWS-FACTS §2); and LastRotatedDate, set when the rotation
        completes (DescribeSecret: "The last date and time that Secrets Manager rotated the secret")."""
        with SECRETS_LOCK, _translated():
            self._backend.update_secret_version_stage(secret_id, "AWSCURRENT", remove_from, token)
            secret = self._backend.describe_secret(secret_id)
            secret.last_rotation_date = int(time.time())
            if secret.auto_rotate_after_days:
                # DescribeSecret NextRotationDate: the interval is added to the date of the last rotation.
                secret.next_rotation_date = secret.last_rotation_date + int(secret.auto_rotate_after_days) * 86_400


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turns moto's Secrets Manager errors into SecretsError (the boto3 ClientError a Lambda would see)."""
    from moto.secretsmanager.exceptions import SecretsManagerClientError

    try:
        yield
    except SecretsManagerClientError as error:
        raise SecretsError(str(error.error_type), str(error.message)) from error
