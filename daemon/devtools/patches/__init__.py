"""Pinned patches that adapt moto (server mode) to what rotaudit relies on and to how AWS behaves.

The patches live one module per service (`sqs`, `dynamodb`, `iam`, `sts`, `ssm`, `secretsmanager`, `events`,
`securityhub`, `logs` for saved Logs Insights queries, `rotation` for Secrets Manager's rotation engine stand-in in
`daemon.devtools.rotation`, and `terraform` for what Terraform reads back), each importing only `registry` (and
`rotation` the engine it routes to); this module holds their order and `apply_patches()`.
Each patch checks its target first and raises `PatchError` when moto's internals have moved, so an upgrade fails
loudly instead of quietly changing behaviour. `apply_patches()` is idempotent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from daemon.devtools.patches import (
    dynamodb,
    events,
    iam,
    logs,
    rotation,
    secretsmanager,
    securityhub,
    sqs,
    ssm,
    sts,
    terraform,
)
from daemon.devtools.patches.registry import PINNED_MOTO, PatchError

__all__ = ["PINNED_MOTO", "PatchError", "apply_patches"]

_patch_lock = threading.Lock()

_PATCHES: tuple[tuple[str, Callable[[str], None]], ...] = (
    ("sqs-retention-check-o1", sqs.patch_retention_check),
    ("dynamodb-query-rejects-key-filter", dynamodb.patch_query_filter),
    ("ssm-automation-stand-in", ssm.patch_automation),
    ("sqs-send-dedup-check-o1", sqs.patch_send_dedup_check),
    ("dynamodb-transaction-check-then-write", dynamodb.patch_transactions),
    ("dynamodb-single-writer", dynamodb.patch_single_writer),
    ("sqs-serialised", sqs.patch_serialised),
    ("secretsmanager-list-in-one-pass", secretsmanager.patch_list_secrets),
    ("sqs-redrive-policy-compact", terraform.patch_sqs_redrive_format),
    ("ecs-service-az-rebalancing", terraform.patch_ecs_az_rebalancing),
    ("logs-query-definitions-stand-in", logs.patch_query_definitions),
    ("dynamodb-query-partition-o1", dynamodb.patch_query_partition),
    ("events-serialised", events.patch_serialised),
    ("secretsmanager-current-follows-label", secretsmanager.patch_current_follows_label),
    ("secretsmanager-rotation-engine", rotation.patch_rotation_engine),
    ("securityhub-findings-as-aws", securityhub.patch_findings),
    ("iam-simulate-principal-policy-stand-in", iam.patch_simulate_principal_policy),
    ("sts-assume-role-trust", sts.patch_assume_role_trust),
    ("events-test-event-pattern", events.patch_test_event_pattern),
)


def apply_patches() -> list[str]:
    """Idempotently patch moto in this process; return the names of the patches applied.

    Raises PatchError if a target is missing or moto's version is not PINNED_MOTO.x.
    """
    import moto

    version = str(getattr(moto, "__version__", "unknown"))
    if version.split(".")[:2] != PINNED_MOTO.split("."):
        raise PatchError(
            f"moto {version} is installed but the patches in daemon/devtools/patches/ were written for "
            f"{PINNED_MOTO}.x: install moto {PINNED_MOTO}.x, or re-check every patch and bump PINNED_MOTO."
        )
    with _patch_lock:
        for name, patch in _PATCHES:
            patch(name)
    return [name for name, _ in _PATCHES]
