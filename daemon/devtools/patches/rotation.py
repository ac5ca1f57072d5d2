"""A pinned moto patch for Secrets Manager rotation: RotateSecret and its neighbours routed to the rotation engine.

Registered by `daemon.devtools.patches.apply_patches()`; the engine itself is `daemon.devtools.rotation`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from daemon.devtools.patches.registry import MARK, broken, install, require
from daemon.devtools.rotation import events
from daemon.devtools.rotation.client import SECRETS_LOCK
from daemon.devtools.rotation.engine import engine

_log = logging.getLogger(__name__)

# --- secretsmanager-rotation-engine: RotateSecret as AWS runs it ---------------------------------------------------
# WHY: moto's RotateSecret is wrong, not just lax (AWS-FACTS §7): it refuses when AWSPENDING sits on AWSCURRENT
# (the state a successful rotation leaves, which AWS accepts) and accepts it dangling (which AWS refuses); without
# a Lambda it promotes the new version to AWSCURRENT at once; and rotation Lambdas never run, so no rotation can
# fail. A test passing against that proves the opposite of AWS. The engine replaces rotate_secret; CancelRotateSecret
# now also stops a rotation in progress, and a value put by hand during a rotation abandons it. moto publishes no
# `Secret Label Updated` event, which AWS sends whenever a label other than AWSPENDING/AWSPREVIOUS moves (a
# finishSecret, a rollback, a value put by hand, a custom label): UpdateSecretVersionStage, PutSecretValue and
# UpdateSecret now publish one per label moved (`rotation.events`). moto also lets a label sit on a version twice
# (moved again where it already is) or on two versions at once (moved without RemoveFromVersionId), which AWS never
# allows ("Each staging label can be attached to only one version at a time"): UpdateSecretVersionStage now follows
# AWS there. The engine's own
# calls and every Secrets Manager request take one lock, so a rotation step and a request never interleave inside
# moto (each API call stays atomic, as on AWS).
_ROTATE_PARAMS = ("secret_id", "client_request_token", "rotation_lambda_arn", "rotation_rules", "rotate_immediately")
# Backend operations that can move a label onto another version (CreateSecret's first version is not a move).
_LABEL_MOVERS = ("update_secret_version_stage", "put_secret_value", "update_secret")
_RESPONSE_ACTIONS = (
    "get_secret_value",
    "batch_get_secret_value",
    "create_secret",
    "update_secret",
    "describe_secret",
    "rotate_secret",
    "cancel_rotate_secret",
    "put_secret_value",
    "list_secret_version_ids",
    "list_secrets",
    "delete_secret",
    "restore_secret",
    "update_secret_version_stage",
)


def patch_rotation_engine(patch: str) -> None:
    from moto.events import models as events_models
    from moto.secretsmanager import exceptions, models, responses

    backend = require(models, patch, "SecretsManagerBackend")
    original = require(
        backend, patch, "rotate_secret", "cancel_rotate_secret", "put_secret_value", "update_secret", *_LABEL_MOVERS
    )
    require(backend, patch, "_client_request_token_validator", "_is_valid_identifier")
    require(models, patch, "ReplicaSecret", "secretsmanager_backends")
    require(
        models.FakeSecret, patch, "remove_version_stages_from_old_versions", "to_short_dict", "to_dict", "is_deleted"
    )
    require(
        exceptions,
        patch,
        "SecretNotFoundException",
        "OperationNotPermittedOnReplica",
        "InvalidRequestException",
        "InvalidParameterException",
        "SecretsManagerClientError",
    )
    require(events_models, patch, "events_backends")
    require(events_models.EventsBackend, patch, "put_events")
    _lock_responses(patch, require(responses, patch, "SecretsManagerResponse"))
    engine().installed = True
    if getattr(original, MARK, None):
        return
    if missing := [name for name in _ROTATE_PARAMS if name not in inspect.signature(original).parameters]:
        raise broken(patch, f"SecretsManagerBackend.rotate_secret lost its parameters {missing}")

    def rotate_secret(
        self: Any,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,
    ) -> str:
        return engine().rotate_secret(
            self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately
        )

    install(backend, rotate_secret, patch)
    _wrap_cancel(backend, patch)
    for name in ("put_secret_value", "update_secret"):
        _wrap_manual_change(backend, name, patch)
    _wrap_label_rules(backend, patch)
    for name in _LABEL_MOVERS:
        _wrap_label_announcements(backend, name, patch)


def _lock_responses(patch: str, response_class: Any) -> None:
    """Every Secrets Manager request the emulator serves runs under SECRETS_LOCK."""
    require(response_class, patch, *_RESPONSE_ACTIONS)
    for name in _RESPONSE_ACTIONS:
        action = getattr(response_class, name)
        if getattr(action, MARK + "_lock", None):
            continue

        def locked(self: Any, __action: Callable[..., Any] = action) -> Any:
            with SECRETS_LOCK:
                return __action(self)

        functools.update_wrapper(locked, action)
        setattr(locked, MARK + "_lock", patch)
        setattr(response_class, name, locked)


def _wrap_cancel(backend: Any, patch: str) -> None:
    original = backend.cancel_rotate_secret

    @functools.wraps(original)
    def cancel_rotate_secret(self: Any, secret_id: str) -> str:
        with SECRETS_LOCK:
            answer = original(self, secret_id)
            engine().cancel(self.secrets[secret_id])
            return str(answer)

    install(backend, cancel_rotate_secret, patch)


def _wrap_manual_change(backend: Any, name: str, patch: str) -> None:
    original = getattr(backend, name)

    @functools.wraps(original)
    def changed(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        with SECRETS_LOCK:
            secret = self.secrets.get(secret_id) if self._is_valid_identifier(secret_id) else None
            versions = getattr(secret, "versions", {})
            before = next((v for v, data in versions.items() if "AWSCURRENT" in data["version_stages"]), None)
            answer = original(self, secret_id, *args, **kwargs)
            if secret is not None:
                engine().after_manual_change(secret, before)
            return answer

    install(backend, changed, patch)


def _wrap_label_announcements(backend: Any, name: str, patch: str) -> None:
    """After a call that moved announced labels, one Secret Label Updated event per label moved.

    Published while SECRETS_LOCK may still be held (a request, or a finishSecret step): the lock order is always
    Secrets Manager, then EventBridge, then SQS, and neither of those ever waits for Secrets Manager.
    """
    original = getattr(backend, name)

    @functools.wraps(original)
    def announced(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        with SECRETS_LOCK:
            before = _label_holders(self, secret_id)
            answer = original(self, secret_id, *args, **kwargs)
            moved = events.moved_labels(before, _label_holders(self, secret_id))
            arn, name = (str(self.secrets[secret_id].arn), str(self.secrets[secret_id].name)) if moved else ("", "")
        for label, version in moved:
            try:
                events.publish_label_updated(arn, name, label, version)
            except Exception:  # best effort, as AWS's event delivery is; the call itself succeeded
                _log.exception("label event not published")
        return answer

    install(backend, announced, patch)


def _label_holders(backend: Any, secret_id: str) -> dict[str, str]:
    """Label -> the version carrying it, for a secret that exists; {} otherwise."""
    if not backend._is_valid_identifier(secret_id):
        return {}
    versions = getattr(backend.secrets[secret_id], "versions", {})
    return {label: version for version, data in versions.items() for label in data.get("version_stages", [])}


def _wrap_label_rules(backend: Any, patch: str) -> None:
    """UpdateSecretVersionStage keeps each label on one version, once.

    "If the staging label you are trying to attach to one version is already attached to a different version, then
    you must include this parameter [RemoveFromVersionId] ... If the label is attached and you either do not specify
    this parameter, or the version ID does not match, then the operation fails" (API reference; moto checks that
    for AWSCURRENT only, and a mismatched RemoveFromVersionId already fails there). Moving a label to the version
    that has it changes nothing (inferred: the API reference does not say; moto appended it a second time).
    """
    from moto.secretsmanager.exceptions import InvalidParameterException

    original = backend.update_secret_version_stage

    @functools.wraps(original)
    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> Any:
        with SECRETS_LOCK:
            holders = _label_holders(self, secret_id)
            holder = holders.get(version_stage)
            if move_to_version_id and holder is not None and not remove_from_version_id:
                if holder == move_to_version_id:
                    secret = self.secrets[secret_id]
                    return secret.arn, secret.name
                raise InvalidParameterException(
                    f"The parameter RemoveFromVersionId can't be empty. Staging label {version_stage} is currently "
                    f"attached to version {holder}, so you must explicitly reference that version in "
                    "RemoveFromVersionId."
                )
            return original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)

    install(backend, update_secret_version_stage, patch)
