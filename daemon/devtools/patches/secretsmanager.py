"""Pinned moto patches for Secrets Manager: ListSecrets in one pass, GetSecretValue following AWSCURRENT.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import functools
from typing import Any

from daemon.devtools.patches.registry import MARK, install, require


# WHY: moto's list_secrets evaluates the filters on every secret and renders every match on every call, then
# slices out one page: walking N secrets in pages of 100 costs O(N²/100) filter evaluations (10,000 managed
# secrets among 12,000: 110 pages, 1.3 M evaluations, about 10 s of the emulator's CPU per scan). Here the
# token is the position to resume from, so each secret is examined once per walk and only the page is
# rendered. Same pages, same order (moto's insertion order); the last page carries no token, as in moto.
def patch_list_secrets(patch: str) -> None:
    from moto.secretsmanager import models

    backend = models.SecretsManagerBackend
    if getattr(require(backend, patch, "list_secrets"), MARK, None):
        return
    matches = require(models, patch, "_matches", "MAX_RESULTS_DEFAULT")
    default_page = models.MAX_RESULTS_DEFAULT

    def list_secrets(
        self: Any,
        filters: list[dict[str, Any]],
        max_results: int | None = default_page,
        next_token: str | None = None,
        include_planned_deletion: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        secrets = list(self.secrets.values())
        wanted = int(max_results or default_page)
        page: list[dict[str, Any]] = []
        position = int(next_token or 0)
        while position < len(secrets):
            secret = secrets[position]
            hidden = getattr(secret, "deleted_date", None) and not include_planned_deletion
            if not hidden and matches(secret, filters):
                if len(page) == wanted:
                    return page, str(position)  # the next page starts at this match
                page.append(secret.to_dict())
            position += 1
        return page, None

    install(backend, list_secrets, patch)


# --- secretsmanager-current-follows-label: GetSecretValue follows AWSCURRENT ------------------------------------
# WHY: moto answers GetSecretValue without VersionId/VersionStage from `default_version_id`, which
# UpdateSecretVersionStage never moves: after AWSCURRENT moves (a rotation's finishSecret, a rollback) moto keeps
# returning the old value, where AWS returns AWSCURRENT's ("If you don't specify either a VersionStage or
# VersionId, Secrets Manager returns the AWSCURRENT version", GetSecretValue). The default now follows the label.
def patch_current_follows_label(patch: str) -> None:
    from moto.secretsmanager import models

    backend = models.SecretsManagerBackend
    original = require(backend, patch, "update_secret_version_stage")
    if getattr(original, MARK, None):
        return
    require(models.FakeSecret, patch, "set_default_version_id")

    @functools.wraps(original)
    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> Any:
        answer = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return answer

    install(backend, update_secret_version_stage, patch)
