"""A moto fix the tests apply until it moves into daemon/devtools/patches/ (the emulator is being rewritten there).

moto 5.2's UpdateSecretVersionStage moves the AWSCURRENT label but not its notion of the default version: after
the move, GetSecretValue without a stage still returns the old version, and the next PutSecretValue relabels from
the stale default, leaving two versions labelled AWSCURRENT. On AWS a label sits on one version at a time and
GetSecretValue's default is whatever carries AWSCURRENT (API reference, UpdateSecretVersionStage and
GetSecretValue). The sync's conditional write moves AWSCURRENT this way, so its tests need the emulator to follow.
"""

from __future__ import annotations

from typing import Any

from daemon.devtools.patches.registry import MARK, install, require

PATCH = "secretsmanager-label-move-sets-default"


def patch_label_move() -> None:
    """Idempotently make moto's default version follow AWSCURRENT when UpdateSecretVersionStage moves it."""
    from moto.secretsmanager import models

    backend = models.SecretsManagerBackend
    original = require(backend, PATCH, "update_secret_version_stage")
    if getattr(original, MARK, None):
        return
    require(models.FakeSecret, PATCH, "set_default_version_id")

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> tuple[str, str]:
        result: tuple[str, str] = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return result

    install(backend, update_secret_version_stage, PATCH)
