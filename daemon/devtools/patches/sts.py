"""A pinned moto patch for STS: AssumeRole consults an existing role's trust policy, as AWS does.

Registered by `daemon.devtools.patches.apply_patches()`.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from daemon.devtools.patches.registry import MARK, install, require

# --- sts-assume-role-trust -----------------------------------------------------------------------------------------
# WHY: moto's AssumeRole succeeds for any ARN ("the role does not need to exist"), so a scan role that the caller may
# not assume never fails on the emulator, and `rotaudit doctor` could not show that failure. AWS (STS API reference,
# AssumeRole): the role's trust policy must allow the caller, else AccessDenied. This stand-in checks the trust policy
# of a role that exists in the emulator's IAM: an Allow of sts:AssumeRole to an AWS principal that is "*", the
# caller's account (id or root ARN) or the caller's ARN. A role that does not exist is still assumable, as in stock
# moto, because tests assume roles in other accounts without creating them. Conditions are not evaluated.


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def trusts(document: Any, caller_arn: str, caller_account: str) -> bool:
    """Whether a trust policy lets the caller (an IAM ARN in `caller_account`) assume the role."""
    policy = json.loads(document) if isinstance(document, str) else document
    admitted = {"*", caller_account, f"arn:aws:iam::{caller_account}:root", caller_arn}
    for statement in _as_list(policy.get("Statement", [])):
        actions = [str(a).lower() for a in _as_list(statement.get("Action", []))]
        if statement.get("Effect") != "Allow" or not any(fnmatch.fnmatchcase("sts:assumerole", a) for a in actions):
            continue
        principal = statement.get("Principal")
        aws = ["*"] if principal == "*" else _as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
        if admitted & {str(p) for p in aws}:
            return True
    return False


def patch_assume_role_trust(patch: str) -> None:
    from moto.core import exceptions
    from moto.iam.models import iam_backends
    from moto.sts import responses as sts_responses

    response_class = require(sts_responses, patch, "TokenResponse")
    original = require(response_class, patch, "assume_role", "get_caller_identity")
    if getattr(original, MARK, None):
        return
    # moto's REST error renders AccessDenied (403) as AWS does; STS's own error models have no AccessDenied shape.
    access_denied = require(exceptions, patch, "AccessDeniedError")

    def assume_role(self: Any) -> Any:
        role_arn = str(self._get_param("RoleArn") or "")
        parts = role_arn.split(":")
        if len(parts) == 6:
            try:
                role = iam_backends[parts[4]][parts[1]].get_role_by_arn(role_arn)
            except Exception:  # no such role (or account): stock moto's answer
                role = None
            if role is not None:
                _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
                if not trusts(role.assume_role_policy_document, str(caller_arn), str(caller_account)):
                    raise access_denied(str(caller_arn), f"sts:AssumeRole on resource: {role_arn}")
        return original(self)

    install(response_class, assume_role, patch)
